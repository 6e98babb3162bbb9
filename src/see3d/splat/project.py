"""EWA projection of 3D Gaussians into one pinhole camera (pure torch, differentiable by autograd).

Shared by the torch reference rasterizer and the CPU fast path: projection is O(G) and cheap in
vectorised torch; the per-pixel compositing is where the two differ (dense autograd vs. tiled numba
kernels with a hand-written backward).

Conventions: OpenCV world-to-camera ``w2c (4, 4)`` (x right, y down, z forward); intrinsics
``K (3, 3)`` in pixels with the image's top-left corner at (0, 0), so pixel (row i, col j) has its
centre at (j + 0.5, i + 0.5). The 2D covariance follows Zwicker et al.'s EWA splatting as the
reference 3DGS implementation does: ``cov2d = J W Sigma W^T J^T + eps2d * I`` with the Jacobian's
x/z, y/z clamped to 1.3x the field of view, and splats closer than ``near_plane`` culled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from see3d.splat.gaussians import Gaussians
from see3d.splat.sh import sh_to_rgb

ALPHA_MIN = 1.0 / 255.0  # 3DGS: contributions below this alpha are skipped
ALPHA_MAX = 0.99  # 3DGS: alpha is clamped to this
T_MIN = 1e-4  # 3DGS: a pixel stops compositing once its transmittance would drop below this
EPS2D = 0.3  # 3DGS / gsplat: screen-space dilation added to every 2D covariance, pixels^2


@dataclass
class Projected:
    """Splats in screen space; splats behind the near plane have opacity 0 and an empty box.

    Attributes:
        ids: (M,) long indices into the input Gaussians (currently all of them, M = G).
        means2d: (M, 2) pixel coordinates of the centres (x, y).
        conics: (M, 3) inverse 2D covariance (a, b, c) = [[a, b], [b, c]], 1/px^2.
        depths: (M,) camera-space z (same units as the poses).
        opacities: (M,) in (0, 1).
        colors: (M, 3) view-dependent colour >= 0.
        rects: (M, 4) int64 inclusive pixel bounds (x0, x1, y0, y1) of the region where the splat's
            alpha can reach ``ALPHA_MIN``; empty (x0 > x1 or y0 > y1) when it misses the image.
    """

    ids: torch.Tensor
    means2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor
    rects: torch.Tensor

    @property
    def visible(self) -> torch.Tensor:
        """(M,) bool: the splat touches at least one pixel."""
        r = self.rects
        return (r[:, 0] <= r[:, 1]) & (r[:, 2] <= r[:, 3])


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """(G, 4) quaternions (w, x, y, z), any norm -> (G, 3, 3) rotation matrices."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        -1,
    ).reshape(quats.shape[:-1] + (3, 3))  # fmt: skip


def project(
    gaussians: Gaussians,
    K: torch.Tensor,
    w2c: torch.Tensor,
    width: int,
    height: int,
    sh_degree: int | None = None,
    near_plane: float = 0.01,
    eps2d: float = EPS2D,
) -> Projected:
    """Project ``gaussians`` into the camera ``K (3, 3)``, ``w2c (4, 4)`` (OpenCV) of size ``width x height``.

    ``sh_degree`` (default: all stored bands) selects how many SH bands colour the splats.
    """
    g = gaussians
    dtype = g.means.dtype
    K = K.to(device=g.device, dtype=dtype)
    w2c = w2c.to(device=g.device, dtype=dtype)
    R, t = w2c[:3, :3], w2c[:3, 3]
    # Every splat goes through the same vectorised math (no gathers: their backward is slow on CPU);
    # splats behind the near plane get a safe depth, zero opacity and an empty pixel box.
    p_cam = g.means @ R.T + t
    valid = p_cam[:, 2].detach() > near_plane
    x, y = p_cam[:, 0], p_cam[:, 1]
    z = torch.where(valid, p_cam[:, 2], torch.ones_like(p_cam[:, 2]))
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]

    # Jacobian of the perspective projection at the splat centre (x/z, y/z clamped as 3DGS does)
    lim_xp = (width - cx) / fx + 0.3 * (0.5 * width / fx)
    lim_xn = cx / fx + 0.3 * (0.5 * width / fx)
    lim_yp = (height - cy) / fy + 0.3 * (0.5 * height / fy)
    lim_yn = cy / fy + 0.3 * (0.5 * height / fy)
    tx = z * torch.minimum(torch.maximum(x / z, -lim_xn), lim_xp)
    ty = z * torch.minimum(torch.maximum(y / z, -lim_yn), lim_yp)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * tx / (z * z), zero, fy / z, -fy * ty / (z * z)], -1).reshape(-1, 2, 3)
    T = (J.reshape(-1, 3) @ R).reshape(-1, 2, 3)  # d(pixel)/d(world), (G, 2, 3)
    # cov2d = T Sigma T^T with Sigma = M M^T, M = R_q diag(s): cov2d = A A^T, A = T M. Written with
    # broadcasting instead of batched 3x3 matmuls, whose CPU backward is very slow for many splats.
    M = quat_to_rotmat(g.quats) * g.log_scales.exp()[:, None, :]
    A = (T[:, :, :, None] * M[:, None, :, :]).sum(2)  # (G, 2, 3)
    a = (A[:, 0] * A[:, 0]).sum(-1) + eps2d
    b = (A[:, 0] * A[:, 1]).sum(-1)
    c = (A[:, 1] * A[:, 1]).sum(-1) + eps2d
    det = a * c - b * b
    conics = torch.stack([c / det, -b / det, a / det], -1)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], -1)

    opacities = torch.sigmoid(g.opacity_logits) * valid
    cam_center = -R.T @ t
    dirs = g.means - cam_center
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    degree = g.sh_degree if sh_degree is None else min(int(sh_degree), g.sh_degree)
    colors = sh_to_rgb(g.sh, dirs, degree)
    rects = alpha_rects(means2d.detach(), conics.detach(), opacities.detach(), width, height)
    ids = torch.arange(len(g), device=g.device)
    return Projected(ids, means2d, conics, z, opacities, colors, rects)


def alpha_rects(means2d: torch.Tensor, conics: torch.Tensor, opacities: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(M, 4) int64 inclusive pixel bounds (x0, x1, y0, y1) that contain every pixel where
    ``opacity * exp(-0.5 d^T conic d) >= ALPHA_MIN``.

    The ellipse ``d^T conic d <= 2 ln(255 opacity)`` has half-extents ``r sqrt(cov_xx)``,
    ``r sqrt(cov_yy)`` (cov = conic^-1), so culling with this box never drops a contributing pixel
    (a small margin absorbs rounding); the per-pixel alpha test still decides.
    """
    a, b, c = conics.double().unbind(-1)
    det = a * c - b * b
    r2 = (2.0 * torch.log(255.0 * opacities.double())).clamp_min(0.0)
    ex = torch.sqrt(r2 * (c / det).clamp_min(0)) * 1.001 + 1e-3
    ey = torch.sqrt(r2 * (a / det).clamp_min(0)) * 1.001 + 1e-3
    mx, my = means2d.double().unbind(-1)
    # pixel j is touched when |j + 0.5 - mx| <= ex
    x0 = torch.ceil(mx - ex - 0.5).clamp(0, width)
    x1 = torch.floor(mx + ex - 0.5).clamp(-1, width - 1)
    y0 = torch.ceil(my - ey - 0.5).clamp(0, height)
    y1 = torch.floor(my + ey - 0.5).clamp(-1, height - 1)
    rects = torch.stack([x0, x1, y0, y1], -1)
    bad = ~torch.isfinite(rects).all(-1) | (r2 <= 0)
    rects = torch.where(bad[:, None], torch.tensor([0.0, -1.0, 0.0, -1.0], dtype=rects.dtype, device=rects.device), rects)
    return rects.to(torch.int64)

