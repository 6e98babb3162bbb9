"""``load_see3d``: the See3D pipeline from a local folder, placed on a device -- the one loader every verb uses.

Takes either folder layout (:meth:`See3DPipeline.load`: the released ``MVD_weights`` or a ``save_pretrained``
folder), resolves ``device`` / ``dtype`` by the package's policy (:mod:`see3d.device`), places the models
(or enables model CPU offload onto that CUDA device), and turns on VAE slicing and tiling as the official
wrappers do, so ``see3d mvd``, ``see3d generate``, ``see3d edit`` and ``see3d eval`` decode the same way at
every size.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from see3d.device import resolve_device_dtype
from see3d.errors import InputError
from see3d.log import get_logger

log = get_logger(__name__)


def default_demo_weights() -> Path:
    """The small See3D model shipped with the package (``save_pretrained`` layout; see docs/training.md)."""
    return Path(str(resources.files("see3d") / "assets" / "demo_mvd"))


def place_pipeline(pipe, device: torch.device, offload: bool = False):
    """Move ``pipe`` (any diffusers pipeline) to ``device``, or with ``offload`` enable model CPU offload onto that
    CUDA device (``cuda:N`` honoured). Returns ``pipe``. Offload on a non-CUDA device is an :class:`InputError`."""
    if offload:
        if device.type != "cuda":
            raise InputError(None, f"model CPU offload moves models onto a CUDA device; the device is {device} (drop --offload)")
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


def enable_vae_memory_savers(pipe, tiling: bool = True) -> None:
    """VAE slicing (one frame at a time) and, with ``tiling``, tiling above the VAE's ``sample_size`` (official
    settings; results below that size are unchanged). VAEs without them (the lossless pixel-unshuffle VAE) need neither."""
    vae = pipe.vae
    if hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    if tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()


def load_see3d(
    weights: str | Path,
    variant: str = "single",
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    offload: bool = False,
    sr: bool = False,
    vae_tiling: bool = True,
    show_progress: bool = False,
):
    """Load :class:`See3DPipeline` from ``weights`` (either layout) onto ``device`` in ``dtype``.

    Args:
        variant: "single" or "sparse" UNet of the released layout (a ``save_pretrained`` folder has one UNet).
        device, dtype: as ``--device`` / ``--dtype`` (:func:`see3d.device.resolve_device_dtype`).
        offload: model CPU offload onto the CUDA ``device`` (less GPU memory, slower).
        sr: also load the x2 super-resolution UNet.
        vae_tiling: tiled VAE above its ``sample_size`` (official); slicing is always on.
        show_progress: keep the denoising progress bars.
    Raises:
        WeightsError / InputError naming the folder or the setting that does not fit.
    """
    from see3d.pipelines.see3d_pipeline import See3DPipeline

    dev, dt = resolve_device_dtype(device, dtype)
    log.info("See3D pipeline on %s in %s%s", dev, str(dt).removeprefix("torch."), " (model CPU offload)" if offload else "")
    pipe = See3DPipeline.load(weights, variant=variant, torch_dtype=dt, sr=sr)
    place_pipeline(pipe, dev, offload)
    enable_vae_memory_savers(pipe, vae_tiling)
    pipe.set_progress_bar_config(disable=None if show_progress else True)
    return pipe
