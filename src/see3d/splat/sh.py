"""Real spherical harmonics (degree 0..3) for view-dependent splat colour, in the basis and sign
convention of the reference 3DGS implementation (so `.ply` files from other tools render alike)."""

from __future__ import annotations

import torch

from see3d.splat.gaussians import SH_C0, num_sh_coeffs

SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def sh_basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Basis values ``(..., K)``, ``K = (degree+1)^2``, for unit directions ``dirs (..., 3)``."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [SH_C2[0] * xy, SH_C2[1] * yz, SH_C2[2] * (2 * zz - xx - yy), SH_C2[3] * xz, SH_C2[4] * (xx - yy)]
    if degree >= 3:
        out += [
            SH_C3[0] * y * (3 * xx - yy),
            SH_C3[1] * xy * z,
            SH_C3[2] * y * (4 * zz - xx - yy),
            SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            SH_C3[4] * x * (4 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, -1)


def sh_to_rgb(sh: torch.Tensor, dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Colour ``(G, 3)`` >= 0 of coefficients ``sh (G, K, 3)`` seen along unit ``dirs (G, 3)``
    (camera centre -> splat), using the first ``(degree+1)^2`` coefficients; 3DGS adds 0.5 and clamps
    at 0 (not at 1)."""
    k = num_sh_coeffs(degree)
    if sh.shape[1] < k:
        raise ValueError(f"sh has {sh.shape[1]} coefficients, degree {degree} needs {k}")
    basis = sh_basis(dirs, degree)  # (G, k)
    rgb = (basis[..., None] * sh[:, :k]).sum(-2)
    return torch.clamp_min(rgb + 0.5, 0.0)
