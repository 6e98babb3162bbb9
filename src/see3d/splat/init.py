"""Initial splats for optimisation: from given points (SfM / warped), from metric depth, or random.

All functions return points ``(P, 3)`` in world units (OpenCV world of the cameras) and colours
``(P, 3)`` in [0, 1]; :meth:`see3d.splat.gaussians.Gaussians.from_points` turns them into splats.
"""

from __future__ import annotations

import numpy as np
import torch

from see3d.geometry.projection import unproject_depth
from see3d.io.views import Views


def scene_extent(views: Views, points: np.ndarray | None = None) -> float:
    """Scene scale as 3DGS measures it: 1.1 x the largest camera distance from the cameras' mean centre.

    When the cameras (nearly) coincide, falls back to the median camera-to-point distance (or 1.0).
    """
    c = views.cameras.centers
    ext = 1.1 * float(np.linalg.norm(c - c.mean(0), axis=1).max()) if len(c) else 0.0
    if ext > 1e-6:
        return ext
    if points is not None and len(points):
        d = float(np.median(np.linalg.norm(np.asarray(points) - c.mean(0), axis=1)))
        if d > 1e-6:
            return d
    return 1.0


def points_from_depth(views: Views, max_points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unproject a random subset of the valid pixels of ``views.depth`` (metric z) — what ``see3d generate``
    writes per view, aligned to the input depth.

    Returns points ``(P, 3)``, their pixels' colours ``(P, 3)`` and scales ``(P,)``: the pixel footprint
    ``z / f`` times half the spacing of the kept pixels (``sqrt(valid / kept)`` pixels, at least one), so the
    splats tile each view about once however strongly it was subsampled (nearest-neighbour scales of
    pixel-dense points are a small fraction of a pixel and need many steps to grow).
    """
    if views.depth is None:
        raise ValueError("points_from_depth: the views have no depth")
    K, c2w = views.cameras.torch(dtype=torch.float64)
    pts = unproject_depth(torch.as_tensor(views.depth, dtype=torch.float64), K, c2w).numpy().reshape(-1, 3)
    cols = views.images.reshape(-1, 3)
    depth = views.depth.reshape(-1)
    valid = np.isfinite(depth) & (depth > 0)
    if views.masks is not None:
        valid &= views.masks.reshape(-1)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        raise ValueError("points_from_depth: no valid depth pixel")
    spacing = max(1.0, float(np.sqrt(len(idx) / max_points)))
    if len(idx) > max_points:
        idx = np.sort(rng.choice(idx, max_points, replace=False))
    per_view = views.depth[0].size
    focal = np.sqrt(views.cameras.K[idx // per_view, 0, 0] * views.cameras.K[idx // per_view, 1, 1])
    return pts[idx], cols[idx], 0.5 * spacing * depth[idx] / focal


def points_in_frusta(
    views: Views, num: int, rng: np.random.Generator, near: float | None = None, far: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random points along random pixel rays of the training views, uniform in disparity between
    ``near`` and ``far`` (default: 0.05 and 20 times the scene extent), coloured with the pixel's colour.

    Works for forward-facing scenes without SfM points (LLFF): every point projects into some view.
    Returns points, colours and scales ``(P,)``: the world size of ``sigma_px`` pixels at the point's depth
    in the view it came from, with ``sigma_px`` chosen so the splats cover each image about three times
    (nearest-neighbour scales of random points are far too large and make the first steps very slow).
    """
    ext = scene_extent(views)
    near = 0.05 * ext if near is None else float(near)
    far = 20.0 * ext if far is None else float(far)
    if not 0 < near < far:
        raise ValueError(f"points_in_frusta: need 0 < near < far, got {near}, {far}")
    n, h, w = views.images.shape[:3]
    vi = rng.integers(0, n, num)
    py = rng.integers(0, h, num)
    px = rng.integers(0, w, num)
    disp = rng.uniform(1.0 / far, 1.0 / near, num)
    z = 1.0 / disp
    K, c2w = views.cameras.K[vi], views.cameras.c2w[vi]
    x = (px + 0.5 - K[:, 0, 2]) / K[:, 0, 0] * z
    y = (py + 0.5 - K[:, 1, 2]) / K[:, 1, 1] * z
    pc = np.stack([x, y, z], 1)
    pts = np.einsum("nij,nj->ni", c2w[:, :3, :3], pc) + c2w[:, :3, 3]
    sigma_px = float(np.clip(np.sqrt(3.0 * h * w / (np.pi * num)), 0.5, 10.0))
    scales = sigma_px * z / K[:, 0, 0]
    return pts, views.images[vi, py, px], scales

