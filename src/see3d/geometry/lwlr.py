"""Dense scale/shift maps by locally weighted linear regression (LWLR, paper §3.3 Eqs. 5-6).

Given sparse anchors ``k`` at pixels ``u_k`` with prediction ``x_k`` and target ``y_k`` (both in the
alignment space: depth, or disparity = 1/depth), every pixel ``p`` gets its own scale ``a(p)`` and shift
``c(p)`` minimising::

    sum_k w_k(p) (a x_k + c - y_k)^2 / y_k^2  +  lam * ridge(a, c)
    w_k(p) = exp(-|p - u_k|^2 / (2 b^2))          (Gaussian kernel, bandwidth b pixels)

Residuals are relative (divided by ``y_k``, normalised by the anchors' median), so near and far anchors
count alike. Our design where the paper is silent: the ridge term pulls ``(a, c)`` towards a *prior*
fit ``(a0, c0)`` (the robust global fit)::

    lam_slope var(x) (a - a0)^2  +  lam ((a - a0) xbar(p) + (c - c0))^2 / ybar(p)^2

i.e. one penalty on the slope (scaled by the anchors' spread of x) and one on the local level, the
fit's value at the local mean ``xbar(p)`` of x (``ybar(p) = a0 xbar(p) + c0``). A small ``lam`` lets the
level follow the anchors closely; a larger ``lam_slope`` keeps the slope from chasing anchor noise where
the anchors nearby span little of x. Both are in units of "one anchor at distance 0" (the paper's kernel carries a constant ``1/sqrt(2 pi)``; ours peaks at 1).
Where anchors crowd, the level follows them and the slope moves only if their x spread supports it;
far from every anchor the map becomes the global fit instead of blowing up.

The local slope is bounded below by ``min_scale_ratio * a0`` (a0 > 0): with few, noisy anchors the
unconstrained 2x2 solve can turn the slope negative (seen on DTU scan65 with ~35 anchors), which inverts the
prediction's relief. The objective is a convex quadratic in ``(a, c)``, so where the bound is active the
constrained optimum has ``a`` on the bound and ``c`` the best level for it (``c = (r1 - m01 a) / m11``).

Cost: the five weighted sums are Gaussian-filtered images of the anchors splatted onto a grid of cell
size ``stride`` (default ``b / 4``), the 2x2 solve happens per grid cell, and the maps are bilinearly
upsampled; the cost is O(H W / stride^2 + K) instead of O(H W K).
"""

from __future__ import annotations

import cv2
import numpy as np


def _splat(gu: np.ndarray, gv: np.ndarray, vals: np.ndarray, hg: int, wg: int) -> np.ndarray:
    """Bilinear splat of ``vals (C, K)`` at continuous grid indices ``(gu, gv)`` -> (C, hg, wg)."""
    x0, y0 = np.floor(gu).astype(np.int64), np.floor(gv).astype(np.int64)
    fx, fy = gu - x0, gv - y0
    out = np.zeros((len(vals), hg * wg))
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = np.clip(x0 + dx, 0, wg - 1), np.clip(y0 + dy, 0, hg - 1)
        idx = yi * wg + xi
        for c in range(len(vals)):
            out[c] += np.bincount(idx, weights=vals[c] * w, minlength=hg * wg)
    return out.reshape(len(vals), hg, wg)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Sum of ``exp(-d^2 / (2 sigma^2))`` over the splatted values (an un-normalised Gaussian: peak 1)."""
    k = 2 * int(np.ceil(4 * sigma)) + 1
    return cv2.GaussianBlur(img, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT) * (2 * np.pi * sigma * sigma)


def lwlr_maps(
    uv: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    height: int,
    width: int,
    bandwidth_px: float,
    lam: float = 1.0,
    prior: tuple[float, float] = (1.0, 0.0),
    weights: np.ndarray | None = None,
    stride: int | None = None,
    full_res: bool = True,
    lam_slope: float | None = None,
    min_scale_ratio: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Scale and shift maps of LWLR (see the module docstring).

    Args:
        uv: (K, 2) anchor pixels (pixel centres at +0.5); x, y: (K,) prediction and target at the anchors.
        height, width: output size; bandwidth_px: kernel bandwidth b in pixels; lam: ridge weight of the
            level (> 0); lam_slope: ridge weight of the slope (default ``lam``).
        prior: (scale, shift) the ridge pulls towards; weights: optional (K,) per-anchor weights (0 = ignore).
        stride: grid cell in pixels (default ``max(1, b / 4)``); full_res: False returns the grid maps.
        min_scale_ratio: lower bound of the local scale as a fraction of the prior's (positive) scale;
            0 leaves the slope free.
    Returns:
        scale, shift: (H, W) float32 (or the (ceil(H/stride), ceil(W/stride)) grid with ``full_res=False``).
    """
    if lam <= 0:
        raise ValueError(f"lwlr_maps: lam must be > 0, got {lam}")
    stride = int(stride or max(1, round(bandwidth_px / 4)))
    hg, wg = -(-height // stride), -(-width // stride)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    ref = float(np.median(np.abs(y[w > 0]))) if (w > 0).any() else 1.0
    w = w * (ref / np.maximum(np.abs(y), 1e-30)) ** 2  # relative residuals
    # Normalise so the kernel weights are in "anchors": scale-free sums (x, y divided by ref).
    xs, ys = x / ref, y / ref
    gu, gv = uv[:, 0] / stride - 0.5, uv[:, 1] / stride - 0.5
    S = _splat(gu, gv, np.stack([w, w * xs, w * xs * xs, w * ys, w * xs * ys]), hg, wg)
    S = np.stack([_blur(s, bandwidth_px / stride) for s in S])
    # ridge towards the prior (a0, c0): on the slope, weighted by the anchors' spread of x, and on the
    # local level (the fit's value at the local mean of x), each of weight lam in units of anchors
    a0, c0 = prior[0], prior[1] / ref
    wsum = max(w.sum(), 1e-30)
    mx = float((w * xs).sum() / wsum)
    var = float(max((w * (xs - mx) ** 2).sum() / wsum, 1e-12))
    sw, sx_, sxx, sy, sxy = S
    eps = 1e-3
    xl = (sx_ + eps * mx) / (sw + eps)  # local mean of x (the global one far from anchors)
    yl = a0 * xl + c0
    wl = lam / np.maximum(yl * yl, 1e-12)  # relative weighting, as for the anchors
    ls = lam if lam_slope is None else lam_slope
    m00 = sxx + ls * var + wl * xl * xl
    m01 = sx_ + wl * xl
    m11 = sw + wl
    r0 = sxy + ls * var * a0 + wl * xl * yl
    r1 = sy + wl * yl
    det = m00 * m11 - m01 * m01
    det = np.where(np.abs(det) > 1e-30, det, 1e-30)
    scale = (m11 * r0 - m01 * r1) / det
    shift = (m00 * r1 - m01 * r0) / det
    if min_scale_ratio > 0 and a0 > 0:
        floor = min_scale_ratio * a0
        low = scale < floor
        scale = np.where(low, floor, scale)
        shift = np.where(low, (r1 - m01 * floor) / m11, shift)
    shift = shift * ref
    if not full_res:
        return scale.astype(np.float32), shift.astype(np.float32)
    return upsample(scale, stride, height, width), upsample(shift, stride, height, width)


def upsample(grid: np.ndarray, stride: int, height: int, width: int) -> np.ndarray:
    """Grid map (cell centres at ``(g + 0.5) * stride`` px) -> (height, width) float32, bilinear."""
    g = np.asarray(grid, dtype=np.float32)
    return cv2.resize(g, (g.shape[1] * stride, g.shape[0] * stride), interpolation=cv2.INTER_LINEAR)[:height, :width]
