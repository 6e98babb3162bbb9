"""See3D's multi-view UNet: the SD-2.1 LDM UNet with MVDream 3D self-attention and a 9-channel input.

Input channels per frame: ``[x_t (4) ; visual-condition latent V_t (4) ; validity mask (1, 1 = known)]``.
A batch of ``N*F`` frames is ``N`` contiguous groups of ``F = num_frames`` views; the self-attention of every
transformer attends jointly over the ``F * H * W`` tokens of a group, everything else is per frame.

Constructor arguments carry the official ``config.json`` names, so the released ``unet/*/ema-checkpoint``
configs load unchanged (unknown keys such as ``use_checkpoint`` or ``legacy`` are ignored). State-dict keys are
the LDM names (``input_blocks.*``, ``middle_block.*``, ``output_blocks.*``, ``time_embed.*``, ``out.*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from see3d.models.loading import load_model, read_model_config
from see3d.models.mv_unet_blocks import CondSequential, Downsample, ResBlock, SpatialTransformer3D, Upsample, group_norm, timestep_embedding

# The released See3D UNet: SD-2.1-base / MVDream hyper-parameters with the 9-channel input (spec: official_release §1.1;
# 865,925,124 parameters). Training builds it, the full-size dry run and the GPU check build it with random weights.
SD21_UNET_CONFIG = {
    "image_size": 32,
    "in_channels": 9,
    "model_channels": 320,
    "out_channels": 4,
    "num_res_blocks": 2,
    "attention_resolutions": [4, 2, 1],
    "channel_mult": [1, 2, 4, 4],
    "num_head_channels": 64,
    "transformer_depth": 1,
    "context_dim": 1024,
}


def _heads(ch: int, num_heads: int, num_head_channels: int) -> tuple[int, int]:
    """(number of heads, head width) for a layer of width ``ch``."""
    if num_head_channels == -1:
        return num_heads, ch // num_heads
    return ch // num_head_channels, num_head_channels


class MultiViewUNet(ModelMixin, ConfigMixin):
    """Multi-view LDM UNet (See3D / MVDream). See the module docstring for the input layout.

    Only the options the released checkpoints use are implemented; the others (``num_classes``,
    ``resblock_updown``, ``conv_resample=False``, ``dims != 2``, ``n_embed``, ``ip_dim > 0``) raise a
    ``ValueError``. ``camera_dim`` is accepted and recorded but no camera embedding is built: See3D never passes a
    camera, and ``camera_embed.*`` weights are dropped on load.
    """

    _supports_gradient_checkpointing = True
    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        image_size: int,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int | Sequence[int],
        attention_resolutions: Sequence[int],
        dropout: float = 0.0,
        channel_mult: Sequence[int] = (1, 2, 4, 8),
        conv_resample: bool = True,
        dims: int = 2,
        num_classes: int | None = None,
        num_heads: int = -1,
        num_head_channels: int = -1,
        num_heads_upsample: int = -1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        transformer_depth: int = 1,
        context_dim: int | None = None,
        n_embed: int | None = None,
        num_attention_blocks: Sequence[int] | None = None,
        adm_in_channels: int | None = None,
        camera_dim: int | None = None,
        ip_dim: int = 0,
        ip_weight: float = 1.0,
    ):
        super().__init__()
        if context_dim is None:
            raise ValueError("MultiViewUNet needs context_dim (the cross-attention width, 1024 for SD-2.1)")
        if (num_heads == -1) == (num_head_channels == -1):
            raise ValueError("set exactly one of num_heads and num_head_channels")
        unsupported = {
            "num_classes": num_classes is not None,
            "resblock_updown": resblock_updown,
            "conv_resample=False": not conv_resample,
            "dims != 2": dims != 2,
            "n_embed": n_embed is not None,
            "ip_dim > 0": ip_dim > 0,
        }
        bad = [k for k, v in unsupported.items() if v]
        if bad:
            raise ValueError(f"MultiViewUNet does not implement {', '.join(bad)} (the See3D checkpoints use none of them)")
        levels = len(channel_mult)
        nrb = [num_res_blocks] * levels if isinstance(num_res_blocks, int) else list(num_res_blocks)
        if len(nrb) != levels:
            raise ValueError(f"num_res_blocks has {len(nrb)} entries for {levels} levels")
        if num_attention_blocks is not None and len(num_attention_blocks) != levels:
            raise ValueError(f"num_attention_blocks has {len(num_attention_blocks)} entries for {levels} levels")
        self.gradient_checkpointing = False

        emb_dim = model_channels * 4
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        def transformer(ch: int) -> SpatialTransformer3D:
            heads, d_head = _heads(ch, num_heads, num_head_channels)
            return SpatialTransformer3D(ch, heads, d_head, context_dim, depth=transformer_depth, dropout=dropout)

        def has_attn(ds: int, level: int, i: int) -> bool:
            return ds in attention_resolutions and (num_attention_blocks is None or i < num_attention_blocks[level])

        self.input_blocks = nn.ModuleList([CondSequential(nn.Conv2d(in_channels, model_channels, 3, padding=1))])
        skip_chans = [model_channels]
        ch, ds = model_channels, 1
        for level, mult in enumerate(channel_mult):
            for i in range(nrb[level]):
                layers: list[nn.Module] = [ResBlock(ch, emb_dim, dropout, mult * model_channels, use_scale_shift_norm)]
                ch = mult * model_channels
                if has_attn(ds, level, i):
                    layers.append(transformer(ch))
                self.input_blocks.append(CondSequential(*layers))
                skip_chans.append(ch)
            if level != levels - 1:
                self.input_blocks.append(CondSequential(Downsample(ch)))
                skip_chans.append(ch)
                ds *= 2

        self.middle_block = CondSequential(
            ResBlock(ch, emb_dim, dropout, ch, use_scale_shift_norm),
            transformer(ch),
            ResBlock(ch, emb_dim, dropout, ch, use_scale_shift_norm),
        )

        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(nrb[level] + 1):
                skip = skip_chans.pop()
                layers = [ResBlock(ch + skip, emb_dim, dropout, model_channels * mult, use_scale_shift_norm)]
                ch = model_channels * mult
                if has_attn(ds, level, i):
                    layers.append(transformer(ch))
                if level and i == nrb[level]:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(CondSequential(*layers))

        self.out = nn.Sequential(group_norm(ch), nn.SiLU(), nn.Conv2d(model_channels, out_channels, 3, padding=1))
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

    def _run(self, block: CondSequential, h: torch.Tensor, emb: torch.Tensor, context: torch.Tensor, num_frames: int) -> torch.Tensor:
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return self._gradient_checkpointing_func(block, h, emb, context, num_frames)
        return block(h, emb, context, num_frames)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor | float, context: torch.Tensor, num_frames: int = 1) -> torch.Tensor:
        """Predict the diffusion target (v or epsilon, as the checkpoint was trained) for every frame.

        Args:
            x: (N*F, in_channels, h, w) latents; ``h`` and ``w`` divisible by ``2 ** (len(channel_mult) - 1)``.
            timesteps: (N*F,) diffusion timesteps, or a scalar for all rows. Embedded in float32, so pass
                them as float32 or integers (bf16 cannot represent e.g. 999).
            context: (N*F, L, context_dim) cross-attention tokens, one row per frame.
            num_frames: group size F; rows ``k*F .. k*F+F-1`` form one multi-view group.
        Returns:
            (N*F, out_channels, h, w) in ``x``'s dtype.
        """
        n = x.shape[0]
        if num_frames < 1 or n % num_frames:
            raise ValueError(f"batch of {n} frames is not a whole number of groups of num_frames={num_frames}")
        if context.shape[0] != n:
            raise ValueError(f"context has {context.shape[0]} rows for {n} frames")
        timesteps = torch.as_tensor(timesteps, device=x.device)
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(n)
        t_emb = timestep_embedding(timesteps, self.config.model_channels).to(x.dtype)
        emb = self.time_embed(t_emb)
        hs = []
        h = x
        for block in self.input_blocks:
            h = self._run(block, h, emb, context, num_frames)
            hs.append(h)
        h = self._run(self.middle_block, h, emb, context, num_frames)
        for block in self.output_blocks:
            h = self._run(block, torch.cat([h, hs.pop()], dim=1), emb, context, num_frames)
        return self.out(h)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | Path, subfolder: str | None = None, torch_dtype: torch.dtype | None = None, **kwargs
    ):  # type: ignore[override]
        """Load from a local folder holding ``config.json`` + ``diffusion_pytorch_model.safetensors`` (or ``.bin``).

        This is the official ``unet/{single,sparse,SR}/ema-checkpoint`` layout and also what
        :meth:`save_pretrained` writes. Weights are read with safetensors or ``torch.load(weights_only=True)``;
        missing or mis-shaped keys raise :class:`see3d.errors.WeightsError` naming the file. Other diffusers
        loading options (``low_cpu_mem_usage``, ``variant`` ...) are accepted and ignored. Nothing is downloaded.
        """
        folder = Path(pretrained_model_name_or_path)
        if subfolder:
            folder = folder / subfolder
        return load_model(cls, folder, dtype=torch_dtype)


def load_mv_unet(folder: str | Path, dtype: torch.dtype | None = None, device: str | torch.device = "cpu") -> MultiViewUNet:
    """A :class:`MultiViewUNet` from a checkpoint folder (``config.json`` + weights), in eval mode on ``device``;
    ``dtype=None`` gives float32 (see :func:`see3d.models.loading.load_model`)."""
    return load_model(MultiViewUNet, folder, dtype, device)


def read_unet_config(folder: str | Path) -> dict:
    """``config.json`` of a UNet folder, reduced to :class:`MultiViewUNet`'s arguments (others are logged and dropped)."""
    return read_model_config(folder, MultiViewUNet)
