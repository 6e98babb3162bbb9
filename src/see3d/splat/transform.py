"""Rigid motion of a splat set: positions, orientations and view-dependent (SH) colour moved together, so
the splats render the same images from cameras moved by the same transform."""

from __future__ import annotations

import math

import torch

from see3d.io.conventions import quat_wxyz_to_rotmat, rotmat_to_quat_wxyz
from see3d.splat.gaussians import Gaussians
from see3d.splat.sh import sh_basis


def sh_rotation(R: torch.Tensor, degree: int, samples: int = 64) -> torch.Tensor:
    """``(K, K)`` matrix ``M`` (``K = (degree+1)^2``, block-diagonal per band) with ``sh' = M @ sh`` for splats
    rotated by ``R (3, 3)``: the colour seen along ``R d`` after equals the colour seen along ``d`` before.

    Solved by least squares on ``samples`` fixed directions; exact up to rounding because every SH band is
    closed under rotation (no Wigner formulas needed)."""
    gen = torch.Generator().manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(samples, 3, generator=gen, dtype=torch.float64), dim=-1)
    R = R.detach().to(torch.float64).cpu()
    before, after = sh_basis(d, degree), sh_basis(d @ R.T, degree)  # (S, K)
    return torch.linalg.lstsq(after, before).solution  # after @ M = before


def transform_gaussians(g: Gaussians, T: torch.Tensor) -> Gaussians:
    """Splats moved by the similarity ``T (4, 4)`` (world -> world, top-left block ``s R``, ``s > 0``):
    ``means' = s R means + t``, orientations ``R_q' = R R_q``, scales times ``s``, SH bands rotated
    (:func:`sh_rotation`); opacities unchanged. Renders from cameras moved alike are unchanged."""
    T = T.detach().to(torch.float64).cpu()
    s = float(torch.linalg.det(T[:3, :3])) ** (1 / 3)
    R, t = T[:3, :3] / s, T[:3, 3]
    dt, dev = g.means.dtype, g.means.device
    means = (s * g.means.detach().double().cpu() @ R.T + t).to(dev, dt)
    rot = R.numpy() @ quat_wxyz_to_rotmat(g.quats.detach().double().cpu().numpy())
    quats = torch.as_tensor(rotmat_to_quat_wxyz(rot)).to(dev, dt)
    M = sh_rotation(R, g.sh_degree)
    sh = torch.einsum("kj,gjc->gkc", M, g.sh.detach().double().cpu()).to(dev, dt)
    return Gaussians(means=means, quats=quats, log_scales=g.log_scales.detach() + math.log(s), opacity_logits=g.opacity_logits.detach().clone(), sh=sh)
