"""Obviously-correct per-pixel loop implementation of :func:`see3d.geometry.warp.forward_warp`.

Same rule as the batched torch code (see :mod:`see3d.geometry.warp`), written one pixel and one point at a
time in float64 numpy. Only for tests and benchmarks on tiny images: it is orders of magnitude slower.
"""

from __future__ import annotations

import math

import numpy as np


def _tangent(P: np.ndarray, Z: np.ndarray, V: np.ndarray, i: int, j: int, di: int, dj: int, edge_tol: float):
    """Step to the next pixel along (di, dj): central / one-sided difference across continuous neighbours, or None."""
    H, W = Z.shape

    def cont(i2: int, j2: int) -> bool:
        if not (0 <= i2 < H and 0 <= j2 < W) or not V[i2, j2]:
            return False
        return abs(Z[i2, j2] - Z[i, j]) <= edge_tol * min(Z[i2, j2], Z[i, j])

    f = cont(i + di, j + dj)
    b = cont(i - di, j - dj)
    if f and b:
        return 0.5 * (P[i + di, j + dj] - P[i - di, j - dj])
    if f:
        return P[i + di, j + dj] - P[i, j]
    if b:
        return P[i, j] - P[i - di, j - dj]
    return None


def forward_warp_reference(
    image: np.ndarray,
    depth: np.ndarray,
    K_src: np.ndarray,
    c2w_src: np.ndarray,
    K_dst: np.ndarray,
    c2w_dst: np.ndarray,
    out_size: tuple[int, int] | None = None,
    depth_tol: float = 0.03,
    edge_tol: float = 0.05,
    max_footprint: float = 2.0,
    near: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp one view ``image (H, W, C)``, ``depth (H, W)`` from ``(K_src, c2w_src)`` into ``(K_dst, c2w_dst)``.

    Returns ``(image (H', W', C), mask (H', W') bool, depth (H', W'))`` like :class:`WarpResult`.
    """
    image = np.asarray(image, np.float64)
    depth = np.asarray(depth, np.float64)
    H, W = depth.shape
    Ho, Wo = out_size or (H, W)
    C = image.shape[2]
    valid = np.isfinite(depth) & (depth > 0)
    Kinv = np.linalg.inv(K_src)
    # 1. unproject every valid pixel centre
    P = np.zeros((H, W, 3))
    for i in range(H):
        for j in range(W):
            if valid[i, j]:
                ray = Kinv @ np.array([j + 0.5, i + 0.5, 1.0])
                P[i, j] = (c2w_src @ np.append(ray * depth[i, j], 1.0))[:3]
    w2c = np.linalg.inv(c2w_dst)
    # 2. per point: projection, footprint, candidates
    cands = []  # (pixel index, z, weight, is_core, colour)
    for i in range(H):
        for j in range(W):
            if not valid[i, j]:
                continue
            tx = _tangent(P, depth, valid, i, j, 0, 1, edge_tol)
            ty = _tangent(P, depth, valid, i, j, 1, 0, edge_tol)
            if tx is None and ty is None:
                tx = depth[i, j] / K_src[0, 0] * c2w_src[:3, 0]
                ty = depth[i, j] / K_src[1, 1] * c2w_src[:3, 1]
            elif tx is None:
                tx = depth[i, j] / K_src[0, 0] * c2w_src[:3, 0]
            elif ty is None:
                ty = depth[i, j] / K_src[1, 1] * c2w_src[:3, 1]
            pc = (w2c @ np.append(P[i, j], 1.0))[:3]
            z = pc[2]
            if z <= near:
                continue
            u, v = (K_dst @ pc)[:2] / z
            half = np.full(2, 0.5)
            for t in (tx, ty):
                tcam = w2c[:3, :3] @ t
                duv = ((K_dst @ tcam)[:2] - np.array([u, v]) * tcam[2]) / z
                half += 0.5 * np.abs(duv)
            half = np.minimum(half, max_footprint)
            # every destination pixel whose centre may lie inside the box (the test below decides)
            for ii in range(max(0, math.floor(v - half[1]) - 1), min(Ho, math.ceil(v + half[1]) + 1)):
                for jj in range(max(0, math.floor(u - half[0]) - 1), min(Wo, math.ceil(u + half[0]) + 1)):
                    du, dv = jj + 0.5 - u, ii + 0.5 - v
                    if abs(du) < half[0] and abs(dv) < half[1]:
                        core = abs(du) <= half[0] - 0.5 and abs(dv) <= half[1] - 0.5
                        w = (1 - abs(du) / half[0]) * (1 - abs(dv) / half[1])
                        cands.append((ii * Wo + jj, z, w, core, image[i, j]))
    # 3. soft z-buffer per destination pixel
    zcore = np.full(Ho * Wo, math.inf)
    zall = np.full(Ho * Wo, math.inf)
    for p, z, _, core, _ in cands:
        zall[p] = min(zall[p], z)
        if core:
            zcore[p] = min(zcore[p], z)
    zref = np.where(np.isfinite(zcore), zcore, zall)
    acc = np.zeros((Ho * Wo, C))
    wsum = np.zeros(Ho * Wo)
    dsum = np.zeros(Ho * Wo)
    for p, z, w, _, c in cands:
        if abs(z - zref[p]) <= depth_tol * zref[p]:
            acc[p] += w * c
            wsum[p] += w
            dsum[p] += w * z
    mask = wsum > 0
    out = np.zeros((Ho * Wo, C))
    out[mask] = acc[mask] / wsum[mask, None]
    dep = np.zeros(Ho * Wo)
    dep[mask] = dsum[mask] / wsum[mask]
    return out.reshape(Ho, Wo, C), mask.reshape(Ho, Wo), dep.reshape(Ho, Wo)
