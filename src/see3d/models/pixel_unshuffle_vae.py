"""A lossless, parameter-free "VAE": pixel-unshuffle (space-to-depth) latents for small models.

No pretrained autoencoder can be downloaded here and a learned one would cap quality at its own
reconstruction error, so the small CPU configuration diffuses in a *pixel-unshuffle* space: each r x r block
of RGB pixels becomes 3·r² channels (``torch.nn.functional.pixel_unshuffle``). It is exactly invertible, has
no weights, and keeps the See3D recipe (condition latents, masks at latent resolution, loss on targets)
unchanged. :class:`PixelUnshuffleVAE` has the parts of diffusers' ``AutoencoderKL`` interface that trainers
and pipelines use (``encode(x).latent_dist``, ``decode(z).sample``, ``config.scaling_factor``,
``config.latent_channels``), so it can stand in for the VAE of a pipeline folder. (Hand-written because
diffusers has no parameter-free space-to-depth autoencoder.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin


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
