"""The small CPU configuration: a lossless pixel "VAE" and a tiny multi-view UNet at 64x64.

No pretrained autoencoder can be downloaded here and a learned one would cap quality at its own
reconstruction error, so the small config diffuses in a *pixel-unshuffle* space: each r x r block of
RGB pixels becomes 3·r² channels (``torch.nn.functional.pixel_unshuffle``). It is exactly invertible,
has no weights, and keeps the See3D recipe (condition latents, masks at latent resolution, loss on
targets) unchanged. :class:`PixelUnshuffleVAE` has the parts of diffusers' ``AutoencoderKL`` interface
that trainers and pipelines use (``encode(x).latent_dist``, ``decode(z).sample``,
``config.scaling_factor``, ``config.latent_channels``), so it can stand in for the VAE of a pipeline
folder. (Hand-written because diffusers has no parameter-free space-to-depth autoencoder.)
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin

from see3d.train.config import TrainConfig


class PixelUnshuffleVAE(ModelMixin, ConfigMixin):
    """Parameter-free space-to-depth "autoencoder": (B, 3, H, W) in [-1, 1] <-> (B, 3r², H/r, W/r).

    ``encode`` returns a deterministic posterior (std 0) whose mean is the unshuffled image;
    ``decode`` inverts it exactly. ``shift_factor`` and ``scaling_factor`` are applied by the caller as with
    diffusers' AutoencoderKL (``z = (x - shift) * scale``); the trainer sets them from the data's pixel mean
    and standard deviation so that latents have unit variance, as SD's scaling factor does for its VAE
    (LDM's "scale by std").
    """

    @register_to_config
    def __init__(
        self,
        factor: int = 4,
        in_channels: int = 3,
        scaling_factor: float = 1.0,
        sample_size: int = 64,
        block_out_channels: tuple[int, ...] | None = None,
        shift_factor: float = 0.0,
    ):
        """``block_out_channels`` is derived (one entry per factor of two), only so that code which computes
        AutoencoderKL's downsampling as ``2 ** (len(block_out_channels) - 1)`` gets ``factor``."""
        super().__init__()
        levels = int(round(math.log2(factor)))
        if 2**levels != factor:
            raise ValueError(f"PixelUnshuffleVAE: factor must be a power of two, got {factor}")
        self.register_to_config(block_out_channels=[in_channels * 4**i for i in range(levels + 1)])
        # one buffer so that save/load and .to(device, dtype) behave like any model
        self.register_buffer("_anchor", torch.zeros(1), persistent=True)

    @property
    def latent_channels(self) -> int:
        return self.config.in_channels * self.config.factor**2

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        """x: (B, 3, H, W), H and W divisible by ``factor``."""
        r = self.config.factor
        if x.shape[-1] % r or x.shape[-2] % r:
            raise ValueError(f"PixelUnshuffleVAE: image size {tuple(x.shape[-2:])} is not divisible by {r}")
        mean = F.pixel_unshuffle(x, r)
        dist = DiagonalGaussianDistribution(torch.cat([mean, torch.zeros_like(mean)], dim=1), deterministic=True)
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True, generator=None):
        """z: (B, 3r², h, w) -> (B, 3, h·r, w·r)."""
        x = F.pixel_shuffle(z, self.config.factor)
        return DecoderOutput(sample=x) if return_dict else (x,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).latent_dist.mode()).sample


def pixel_stats(clips, resolution: int, resize_mode: str = "crop", max_clip_frames: int | None = 200, n_clips: int = 16, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of the pixels (in [-1, 1]) of up to ``n_clips`` clips (a seeded choice)."""
    import numpy as np

    from see3d.errors import InputError
    from see3d.train.data import load_clip_frames, resize_frames

    rng = np.random.default_rng([int(seed), 11])
    picks = rng.permutation(len(clips))[:n_clips]
    s1 = s2 = n = 0.0
    for i in picks:
        try:
            x = resize_frames(load_clip_frames(clips[int(i)], max_clip_frames), resolution, resize_mode).astype(np.float64) / 127.5 - 1.0
        except InputError:
            continue
        s1, s2, n = s1 + x.sum(), s2 + (x * x).sum(), n + x.size
    if n == 0:
        raise InputError(None, "no readable clip to measure the pixel statistics")
    mean = s1 / n
    return float(mean), float(max(np.sqrt(max(s2 / n - mean * mean, 0.0)), 1e-3))


def small_unet_config(latent_channels: int = 48, model_channels: int = 64, context_dim: int = 32) -> dict:
    """Constructor kwargs of a tiny :class:`see3d.models.mv_unet.MultiViewUNet` for 16x16 latents.

    Three levels (16, 8, 4) with multi-view attention at 16 and 8 (the SD-2.1 pattern at small scale).
    Input channels: latent + condition latent + mask.
    """
    return {
        "image_size": 16,
        "in_channels": 2 * latent_channels + 1,
        "model_channels": model_channels,
        "out_channels": latent_channels,
        "num_res_blocks": 1,
        "attention_resolutions": [1, 2],
        "channel_mult": [1, 2, 2],
        "num_head_channels": 32,
        "transformer_depth": 1,
        "context_dim": context_dim,
    }


def small_train_config(data: str | Path, output_dir: str | Path, **overrides) -> TrainConfig:
    """The CPU reproduction: 64x64, 5 frames (1 reference), pixel-unshuffle r=4, tiny UNet, context from tiny
    random CLIP encoders (written by :func:`see3d.pipelines.tiny.write_tiny_see3d`), exported as a pipeline.

    LR and EMA are raised for a short run (the paper's 1e-5 / 0.9999 are for 100K+ steps).
    """
    cfg = dict(
        data=Path(data),
        output_dir=Path(output_dir),
        preset="small",
        num_frames=5,
        num_refs=[1],
        resolution=64,
        max_stride=3,
        latent_space="pixel_unshuffle",
        pixel_unshuffle_factor=4,
        context="encoders",
        random_encoders=True,
        export_pipeline=True,
        preload=True,
        batch_size=2,
        learning_rate=4e-4,
        lr_scheduler="constant_with_warmup",
        lr_warmup_steps=100,
        weight_decay=0.0,
        ema_decay=0.995,
        max_steps=3000,
        checkpoint_every=250,
        log_every=10,
    )
    cfg.update(overrides)
    return TrainConfig(**cfg)
