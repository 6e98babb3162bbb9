"""Pure-torch reference rasterizer: dense, per pixel, differentiable by autograd.

Small and obviously correct, for checking the fast paths (it is slow: O(pixels x splats) memory per
chunk). Every pixel composites every splat front to back with the reference 3DGS rules:

- ``power = -0.5 d^T conic d`` with ``d = mean2d - pixel_centre``; skip when ``power > 0``,
- ``alpha = min(0.99, opacity * exp(power))``; skip when ``alpha < 1/255``,
- stop before the splat that would bring the transmittance below ``1e-4``.

Outputs are the *accumulated* colour and depth (no background) and the alpha ``1 - T``.
"""

from __future__ import annotations

import torch

from see3d.splat.project import ALPHA_MAX, ALPHA_MIN, T_MIN, Projected


def composite_ref(p: Projected, width: int, height: int, pixel_chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Composite projected splats ``p``.

    Returns:
        rgb: (H, W, 3) accumulated colour sum_i w_i c_i, depth: (H, W) sum_i w_i z_i, alpha: (H, W) sum_i w_i,
        with w_i = alpha_i T_i.
    """
    dtype, device = p.means2d.dtype, p.means2d.device
    order = torch.argsort(p.depths.detach(), stable=True)
    m, con, col, op, z = p.means2d[order], p.conics[order], p.colors[order], p.opacities[order], p.depths[order]
    jj, ii = torch.meshgrid(torch.arange(width, device=device), torch.arange(height, device=device), indexing="xy")
    pix = torch.stack([jj, ii], -1).reshape(-1, 2).to(dtype) + 0.5  # (P, 2) pixel centres
    outs = []
    for s in range(0, len(pix), pixel_chunk):
        d = m[None, :, :] - pix[s : s + pixel_chunk, None, :]  # (P, G, 2)
        dx, dy = d[..., 0], d[..., 1]
        power = -0.5 * (con[:, 0] * dx * dx + con[:, 2] * dy * dy) - con[:, 1] * dx * dy
        alpha = torch.clamp(op * torch.exp(power), max=ALPHA_MAX)
        alpha = torch.where((power > 0) | (alpha < ALPHA_MIN), torch.zeros_like(alpha), alpha)
        t_after = torch.cumprod(1 - alpha, dim=1)
        alpha = torch.where(t_after.detach() < T_MIN, torch.zeros_like(alpha), alpha)  # T only decreases: stop rule
        t_before = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), dim=1)
        w = alpha * t_before
        outs.append(torch.cat([w @ col, (w @ z)[:, None], w.sum(1, keepdim=True)], 1))
    out = torch.cat(outs).reshape(height, width, 5) if outs else torch.zeros(height, width, 5, dtype=dtype, device=device)
    return out[..., :3], out[..., 3], out[..., 4]
