"""Monocular-depth-like errors applied to true depth (for measuring depth alignment).

A network's depth is wrong in ways a single scale/shift cannot undo. Each error here is seeded and
applied to a true z-depth map ``(H, W)`` (metres, <= 0 = no surface):

- ``"affine"``: none beyond the unknown affine map (the case a global fit handles exactly);
- ``"smooth"``: a smooth low-frequency warp of log-depth (a few random cosines with wavelengths of
  half the image or more; ``strength`` = amplitude in log units);
- ``"regions"``: a different scale per region (per object when ``ids`` is given, else Voronoi cells of
  random seeds); ``strength`` = max |log scale|;
- ``"edges"``: edge bleeding: depth blurred across discontinuities (Gaussian, sigma ``2 + 20 *
  strength`` px, only where the depth varies by more than 5 % locally);
- ``"mixed"``: smooth + regions + edges.

:func:`as_relative` then hides the scale: it returns relative depth (``s z + t``) or relative
disparity (``s / z + t``) with random ``s``, ``t``, as the depth-backend kinds of :mod:`see3d.depth.base`.
"""

from __future__ import annotations

import cv2
import numpy as np

ERRORS = ("affine", "smooth", "regions", "edges", "mixed")


def _smooth_field(rng: np.random.Generator, H: int, W: int, n: int = 4) -> np.ndarray:
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    L = max(H, W)
    f = np.zeros((H, W))
    for _ in range(n):
        theta = rng.uniform(0, np.pi)
        wl = rng.uniform(0.5, 1.5) * L
        phase = rng.uniform(0, 2 * np.pi)
        f += np.cos(2 * np.pi * (u * np.cos(theta) + v * np.sin(theta)) / wl + phase)
    return f / np.sqrt(n / 2)


def _regions(rng: np.random.Generator, H: int, W: int, ids: np.ndarray | None, n: int = 6) -> np.ndarray:
    if ids is not None:
        return np.asarray(ids, dtype=np.int64) + 1
    pts = rng.uniform(0, 1, (n, 2)) * [W, H]
    v, u = np.mgrid[0:H, 0:W]
    d = (u[..., None] - pts[:, 0]) ** 2 + (v[..., None] - pts[:, 1]) ** 2
    return np.argmin(d, axis=-1)


def distort_depth(depth: np.ndarray, error: str, seed: int = 0, strength: float = 0.2, ids: np.ndarray | None = None) -> np.ndarray:
    """True z-depth ``(H, W)`` -> depth with the spatially varying ``error`` (see the module docstring);
    0 stays 0."""
    if error not in ERRORS:
        raise ValueError(f"distort_depth: error must be one of {ERRORS}, got {error!r}")
    rng = np.random.default_rng([int(seed), 0xDE97])
    z = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(z) & (z > 0)
    H, W = z.shape
    logz = np.log(np.where(valid, z, 1.0))
    kinds = ("smooth", "regions", "edges") if error == "mixed" else (error,)
    if "smooth" in kinds:
        logz = logz + strength * _smooth_field(rng, H, W)
    if "regions" in kinds:
        lab = _regions(rng, H, W, ids)
        scales = rng.uniform(-strength, strength, int(lab.max()) + 1)
        logz = logz + scales[lab]
    out = np.exp(logz)
    if "edges" in kinds:
        sigma = 2.0 + 20.0 * strength
        k = 2 * int(np.ceil(3 * sigma)) + 1
        wv = cv2.GaussianBlur(valid.astype(np.float64), (k, k), sigma)
        blurred = cv2.GaussianBlur(np.where(valid, out, 0.0), (k, k), sigma) / np.maximum(wv, 1e-6)
        lo = cv2.erode(np.where(valid, out, np.inf).astype(np.float32), np.ones((5, 5), np.uint8))
        hi = cv2.dilate(np.where(valid, out, 0).astype(np.float32), np.ones((5, 5), np.uint8))
        near_edge = cv2.dilate(((hi > 1.05 * lo) & valid).astype(np.uint8), np.ones((k // 2 * 2 + 1,) * 2, np.uint8)) > 0
        out = np.where(near_edge & (wv > 1e-3), blurred, out)
    return np.where(valid, out, 0.0).astype(np.float32)


def as_relative(depth: np.ndarray, kind: str = "relative_depth", seed: int = 0) -> np.ndarray:
    """Depth ``(H, W)`` -> a relative prediction of ``kind`` (``relative_depth``: ``s z + t``; ``relative_disparity``:
    ``s / z + t``; ``metric_depth``: ``s z`` with s near 1) with seeded random ``s``, ``t``; 0 where depth is 0."""
    rng = np.random.default_rng([int(seed), 0xAFF1])
    z = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(z) & (z > 0)
    med = float(np.median(z[valid])) if valid.any() else 1.0
    if kind == "relative_depth":
        s = rng.uniform(0.2, 5.0) / med
        val = s * z + rng.uniform(0.0, 0.5)
    elif kind == "relative_disparity":
        s = rng.uniform(0.2, 5.0) * med
        val = s / np.where(valid, z, 1.0) + rng.uniform(0.0, 0.05) * s / med
    elif kind == "metric_depth":
        val = rng.uniform(0.8, 1.25) * z
    else:
        raise ValueError(f"as_relative: unknown kind {kind!r}")
    return np.where(valid, val, 0.0).astype(np.float32)
