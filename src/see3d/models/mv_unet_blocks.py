"""Building blocks of the multi-view UNet (LDM / "openaimodel" layout with MVDream's 3D self-attention).

Module and parameter names follow the Stable Diffusion LDM checkpoints (``model.diffusion_model.*`` minus the
prefix), so SD-2.1, MVDream and See3D weights load by name. Every block works on a batch of ``N*F`` frames laid
out as ``N`` contiguous groups of ``F = num_frames`` views; only the self-attention of
:class:`SpatialTransformer3D` mixes frames, and only inside a group.

Shapes: ``x (N*F, C, H, W)``, ``emb (N*F, E)``, ``context (N*F, L, D)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal timestep embedding, **cos first, then sin** (LDM order).

    Args:
        timesteps: (N,) diffusion timesteps (any numeric dtype; integers and fractions both work).
        dim: embedding width; frequency i is ``max_period ** (-i / (dim // 2))`` for ``i < dim // 2``.
    Returns:
        (N, dim) float32. An odd ``dim`` gets one zero column at the end.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps.to(torch.float32)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def group_norm(channels: int, eps: float = 1e-5) -> nn.GroupNorm:
    """GroupNorm with 32 groups (the LDM ``normalization``)."""
    return nn.GroupNorm(32, channels, eps=eps, affine=True)


class ResBlock(nn.Module):
    """Residual block: ``skip(x) + conv(drop(SiLU(GN(conv(SiLU(GN(x))) + proj(emb)))))``.

    Keys: ``in_layers.{0,2}``, ``emb_layers.1``, ``out_layers.{0,3}``, optional ``skip_connection`` (1x1 conv
    when the width changes). With ``use_scale_shift_norm`` the embedding gives a scale and shift for the second
    GroupNorm instead of being added.
    """

    def __init__(
        self, channels: int, emb_channels: int, dropout: float = 0.0, out_channels: int | None = None, use_scale_shift_norm: bool = False
    ):
        super().__init__()
        out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(group_norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels))
        self.out_layers = nn.Sequential(
            group_norm(out_channels), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        emb_out = self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[3](self.out_layers[2](self.out_layers[1](h)))
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class Downsample(nn.Module):
    """Stride-2 3x3 convolution (key ``op``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 convolution (key ``conv``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Attention(nn.Module):
    """Multi-head softmax attention ``softmax(Q K^T / sqrt(d_head)) V`` with no mask and no positional encoding.

    Keys: ``to_q``, ``to_k``, ``to_v`` (no bias), ``to_out.0`` (with bias). ``context=None`` gives self-attention.
    Uses :func:`torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient kernels where the
    device has them; the math kernel otherwise).
    """

    def __init__(self, query_dim: int, heads: int, dim_head: int, context_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        inner = heads * dim_head
        context_dim = context_dim or query_dim
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, Lq, query_dim); context: (B, Lk, context_dim) or None -> (B, Lq, query_dim)."""
        context = x if context is None else context
        b, lq, _ = x.shape
        q = self.to_q(x).view(b, lq, self.heads, self.dim_head).transpose(1, 2)
        k = self.to_k(context).view(b, context.shape[1], self.heads, self.dim_head).transpose(1, 2)
        v = self.to_v(context).view(b, context.shape[1], self.heads, self.dim_head).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, lq, self.heads * self.dim_head))


class GEGLU(nn.Module):
    """``a * GELU(gate)`` with ``(a, gate) = proj(x).chunk(2)`` and the exact (erf) GELU (key ``proj``)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward ``C -> 4C -> C`` (keys ``net.0.proj``, ``net.2``)."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock3D(nn.Module):
    """Multi-view self-attention over all views of a group, per-frame cross-attention, feed-forward.

    Keys (in checkpoint order): ``attn1``, ``ff``, ``attn2``, ``norm1``, ``norm2``, ``norm3``.
    """

    def __init__(self, dim: int, n_heads: int, d_head: int, context_dim: int, dropout: float = 0.0):
        super().__init__()
        self.attn1 = Attention(dim, n_heads, d_head, None, dropout)
        self.ff = FeedForward(dim, dropout=dropout)
        self.attn2 = Attention(dim, n_heads, d_head, context_dim, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, num_frames: int) -> torch.Tensor:
        """x: (N*F, L, C) tokens; context: (N*F, Lc, D); returns (N*F, L, C)."""
        nf, length, c = x.shape
        # "(b f) l c -> b (f l) c": the F views of a group form one frame-major token sequence.
        x = x.reshape(nf // num_frames, num_frames * length, c)
        x = self.attn1(self.norm1(x)) + x
        x = x.reshape(nf, length, c)
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer3D(nn.Module):
    """GN -> tokens -> ``proj_in`` -> transformer blocks -> ``proj_out`` -> image, plus the input (residual).

    Keys: ``norm`` (GroupNorm eps 1e-6), ``proj_in``/``proj_out`` (Linear on tokens), ``transformer_blocks.{i}``.
    """

    def __init__(self, in_channels: int, n_heads: int, d_head: int, context_dim: int, depth: int = 1, dropout: float = 0.0):
        super().__init__()
        inner = n_heads * d_head
        self.norm = group_norm(in_channels, eps=1e-6)
        self.proj_in = nn.Linear(in_channels, inner)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock3D(inner, n_heads, d_head, context_dim, dropout) for _ in range(depth)]
        )
        self.proj_out = nn.Linear(inner, in_channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor, num_frames: int) -> torch.Tensor:
        b, c, h, w = x.shape
        x_in = x
        x = self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, context, num_frames)
        x = self.proj_out(x)
        return x.reshape(b, h, w, -1).permute(0, 3, 1, 2) + x_in


class CondSequential(nn.Sequential):
    """A sequence of layers where ResBlocks get ``emb`` and transformers get ``context`` and ``num_frames``."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor, num_frames: int) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer3D):
                x = layer(x, context, num_frames)
            else:
                x = layer(x)
        return x
