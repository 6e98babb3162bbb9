"""Batched pinhole unprojection / projection in torch (CPU or CUDA).

Conventions (same as :class:`see3d.io.cameras.Cameras`): intrinsics ``K (B, 3, 3)`` in pixels,
camera-to-world ``c2w (B, 4, 4)`` with OpenCV axes (x right, y down, z forward). The image's top-left
corner is pixel coordinate (0, 0), so pixel (row i, column j) has its centre at ``(u, v) = (j + 0.5, i + 0.5)``.
Depth is z along the optical axis (not the ray length), in the scene's units.
"""

from __future__ import annotations

import torch


def pixel_centers(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(H, W, 2) pixel-centre coordinates ``(u, v) = (j + 0.5, i + 0.5)``."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1)


def invert_rigid(T: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) rigid transform -> its inverse (closed form: ``[R^T | -R^T t]``)."""
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    out = torch.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1.0
    return out


def unproject_depth(depth: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor | None = None) -> torch.Tensor:
    """Lift every pixel centre to 3D.

    Args:
        depth: (B, H, W) z-depth.
        K: (B, 3, 3) intrinsics.
        c2w: (B, 4, 4) OpenCV camera-to-world; ``None`` returns camera-space points.

    Returns:
        (B, H, W, 3) points in world (or camera) coordinates.
    """
    B, H, W = depth.shape
    uv = pixel_centers(H, W, device=depth.device, dtype=depth.dtype)
    fx, fy = K[:, 0, 0].view(B, 1, 1), K[:, 1, 1].view(B, 1, 1)
    cx, cy = K[:, 0, 2].view(B, 1, 1), K[:, 1, 2].view(B, 1, 1)
    skew = K[:, 0, 1].view(B, 1, 1)
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - skew * y) / fx
    pts = torch.stack([x * depth, y * depth, depth], dim=-1)
    if c2w is None:
        return pts
    return transform_points(pts.reshape(B, -1, 3), c2w).reshape(B, H, W, 3)


def transform_points(points: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Apply ``T (B, 4, 4)`` to ``points (B, P, 3)`` -> (B, P, 3)."""
    return points @ T[:, :3, :3].transpose(-1, -2) + T[:, None, :3, 3]


def project_points(points: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world ``points (B, P, 3)`` into cameras ``K (B, 3, 3)``, ``c2w (B, 4, 4)``.

    Returns:
        uv: (B, P, 2) pixel coordinates (top-left corner (0, 0)); meaningless where ``z <= 0``.
        z: (B, P) depth along each camera's optical axis.
    """
    pc = transform_points(points, invert_rigid(c2w))
    z = pc[..., 2]
    zs = torch.where(z.abs() < eps, torch.full_like(z, eps), z)
    uvw = pc @ K.transpose(-1, -2)
    uv = uvw[..., :2] / zs[..., None]
    return uv, z


def relative_pose(c2w_src: torch.Tensor, c2w_dst: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) transform taking source-camera coordinates to destination-camera coordinates."""
    return invert_rigid(c2w_dst) @ c2w_src
