"""Sampling options beyond the paper's sampler: the knobs of the small-scale reproduction's experiments.

All off (the defaults) is the official See3D sampler. :class:`~see3d.pipelines.see3d_pipeline.See3DPipeline`
takes them as one ``options=`` argument, so its call signature stays the official one.
"""

from __future__ import annotations

from dataclasses import dataclass

from see3d.errors import InputError
from see3d.pipelines.fill_smoothing import check_fill_smoothing


@dataclass(frozen=True)
class SamplerOptions:
    """Experiment knobs of :meth:`See3DPipeline.__call__ <see3d.pipelines.see3d_pipeline.See3DPipeline.__call__>`.

    Attributes:
        keep_known: keep the warped pixels: blend known latent blocks in at every step and paste the valid
            pixels into the output (off in the official method, which may correct warp errors; useful when the
            warps are exact, e.g. from true depth).
        fill_smoothing: with ``keep_known``, Gaussian sigma in pixels of a low-pass applied to the generated
            pixels only (:func:`see3d.pipelines.fill_smoothing.smooth_fill`): removes the block grid and grain
            of a small pixel-space model's fill (the shipped small model: 1.0); 0 = off.
        clean_condition: condition the base model on the clean warp latents at every step (how a mask-only
            model, trained without the time-dependent noise, saw its condition) instead of the See3D mix.
    """

    keep_known: bool = False
    fill_smoothing: float = 0.0
    clean_condition: bool = False

    def check(self, height: int, width: int) -> None:
        """Refuse (:class:`InputError`) a bad smoothing sigma for ``height x width`` views, or smoothing without ``keep_known``."""
        check_fill_smoothing(self.fill_smoothing, height, width)
        if self.fill_smoothing and not self.keep_known:
            raise InputError(None, "fill_smoothing smooths the fill between kept warped pixels: it needs keep_known")
