"""Robust scale/shift alignment of a predicted depth map to geometry already known.

A monocular depth network gives depth only up to an unknown affine map, in one of two spaces:

* ``"depth"``: the output is (affine-invariant or metric) depth, ``z ≈ s * pred + b`` (MoGe, Depth Pro,
  ZoeDepth, metric Depth Anything, given or true depth maps). For metric outputs the fit mostly corrects
  scale.
* ``"disparity"``: the output is relative inverse depth (MiDaS / DPT, relative Depth Anything), so the
  affine map holds in inverse depth: ``1 / z ≈ s * pred + b``. Fitting it in depth would be wrong.

:attr:`see3d.depth.base.DepthPrediction.alignment_space` says which applies to a backend's output.

The fit uses the pixels where the new view overlaps the geometry seen so far (the point cache rendered
into the new camera: :func:`align_depth`) or sparse 3D points (SfM points or cache points projected into
the view: :func:`align_depth_to_points`). Residuals are *relative* (divided by the target value), so near
and far pixels count alike. Robustness: RANSAC over 2-point hypotheses picks the inlier set, then Huber
IRLS refines on it (gross outliers get zero weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from see3d.errors import See3DError
from see3d.io.cameras import Cameras


@dataclass
class Alignment:
    """``target ≈ scale * pred + shift`` in ``space`` ("depth" or "disparity").

    Attributes:
        inlier_ratio: fraction of the samples within the inlier threshold after refinement.
        residual: median absolute relative residual of the inliers.
        n_samples: number of (pred, target) pairs used.
    """

    scale: float
    shift: float
    space: str
    inlier_ratio: float
    residual: float
    n_samples: int

    def apply(self, pred: np.ndarray, min_depth: float = 1e-6) -> np.ndarray:
        """Aligned z-depth (same shape as ``pred``); 0 where the mapping gives no positive depth."""
        val = self.scale * np.asarray(pred, dtype=np.float64) + self.shift
        if self.space == "depth":
            out = val
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.where(val > 0, 1.0 / np.where(val > 0, val, 1.0), 0.0)
        out = np.where(np.isfinite(out) & (out > min_depth), out, 0.0)
        return out.astype(np.float32)


def fit_scale_shift(
    x: np.ndarray,
    y: np.ndarray,
    inlier_thresh: float = 0.05,
    ransac_iters: int = 256,
    irls_iters: int = 10,
    max_score_samples: int = 4096,
    positive_scale: bool = True,
    seed: int = 0,
) -> tuple[float, float, np.ndarray]:
    """Robust fit of ``y ≈ s * x + b`` with relative residuals ``(s x + b - y) / |y|``.

    Args:
        x, y: (N,) samples (N >= 2; ``y`` nonzero).
        inlier_thresh: relative residual below which a sample is an inlier (RANSAC) and the Huber
            threshold of the refinement.
        ransac_iters: number of 2-point hypotheses; irls_iters: Huber IRLS iterations.
        max_score_samples: hypotheses are scored on at most this many random samples.
        positive_scale: reject hypotheses with ``s <= 0`` (prediction and target increase together).

    Returns:
        scale, shift, inlier mask (N,) bool.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    ok = np.isfinite(x) & np.isfinite(y) & (np.abs(y) > 0)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 2:
        raise See3DError(f"depth alignment: only {n} usable samples (need at least 2 overlapping pixels or points)")
    rng = np.random.default_rng(seed)
    ay = np.abs(y)
    # ---- RANSAC over 2-point hypotheses (vectorised)
    i = rng.integers(0, n, ransac_iters)
    j = rng.integers(0, n, ransac_iters)
    dx = x[i] - x[j]
    good = np.abs(dx) > 1e-12 * (np.abs(x[i]) + np.abs(x[j]) + 1e-30)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(good, (y[i] - y[j]) / np.where(good, dx, 1.0), np.nan)
    b = y[i] - s * x[i]
    if positive_scale:
        good &= s > 0
    if not good.any():  # degenerate sample (e.g. constant prediction): fall back to scale only
        s_all = np.median(y / np.where(np.abs(x) > 0, x, np.nan))
        s, b = np.array([s_all]), np.array([0.0])
        good = np.isfinite(s)
        if not good.any():
            raise See3DError("depth alignment: the prediction is constant or zero over the overlap")
    s, b = s[good], b[good]
    score_idx = rng.choice(n, size=min(n, max_score_samples), replace=False)
    xs, ys, ays = x[score_idx], y[score_idx], ay[score_idx]
    res = np.abs(s[:, None] * xs[None] + b[:, None] - ys[None]) / ays[None]
    score = np.minimum(res, inlier_thresh).sum(1)  # MSAC: truncated residual cost
    best = int(np.argmin(score))
    scale, shift = float(s[best]), float(b[best])
    # ---- Huber IRLS on all samples, redescending beyond 3x the threshold
    for _ in range(irls_iters):
        r = (scale * x + shift - y) / ay
        ar = np.abs(r)
        w = np.where(ar <= inlier_thresh, 1.0, inlier_thresh / np.maximum(ar, 1e-30))
        w = np.where(ar > 3 * inlier_thresh, 0.0, w) / (ay * ay)
        if w.sum() <= 0:
            break
        A = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
        rhs = np.array([np.sum(w * x * y), np.sum(w * y)])
        if abs(np.linalg.det(A)) < 1e-300:
            break
        new_scale, new_shift = np.linalg.solve(A, rhs)
        done = abs(new_scale - scale) <= 1e-10 * abs(scale) and abs(new_shift - shift) <= 1e-10 * (abs(shift) + abs(scale))
        scale, shift = float(new_scale), float(new_shift)
        if done:
            break
    inl = np.zeros(len(ok), dtype=bool)
    inl[np.flatnonzero(ok)] = np.abs(scale * x + shift - y) / ay <= inlier_thresh
    return scale, shift, inl


def _to_space(depth: np.ndarray, space: str) -> np.ndarray:
    if space == "depth":
        return depth
    if space == "disparity":
        with np.errstate(divide="ignore"):
            return 1.0 / depth
    raise ValueError(f"alignment space must be 'depth' or 'disparity', got {space!r}")


def _finish(pred_s: np.ndarray, target_depth: np.ndarray, space: str, min_samples: int, **kw) -> Alignment:
    n = len(pred_s)
    if n < min_samples:
        raise See3DError(
            f"depth alignment: only {n} overlapping samples (need {min_samples}); the new view does not overlap the known geometry"
        )
    y = _to_space(target_depth, space)
    s, b, inl = fit_scale_shift(pred_s, y, **kw)
    r = np.abs(s * pred_s + b - y) / np.abs(y)
    return Alignment(s, b, space, float(inl.mean()), float(np.median(r[inl])) if inl.any() else float("inf"), n)


def align_depth(
    pred: np.ndarray,
    target_depth: np.ndarray,
    mask: np.ndarray | None = None,
    space: str = "depth",
    min_samples: int = 16,
    max_samples: int = 200_000,
    seed: int = 0,
    **kw,
) -> Alignment:
    """Align a prediction to a target z-depth over overlapping pixels.

    Args:
        pred: (H, W) network output (depth or disparity-like, per ``space``).
        target_depth: (H, W) known z-depth (e.g. the point cache rendered into this camera); <= 0 = unknown.
        mask: optional (H, W) bool, True where ``target_depth`` is valid (e.g. the render's mask).
        space: "depth" or "disparity" (see the module docstring).
        max_samples: random subsample of the overlap used for the fit.
        **kw: passed to :func:`fit_scale_shift` (``inlier_thresh``, ``ransac_iters``, ...).
    """
    pred = np.asarray(pred, dtype=np.float64)
    tgt = np.asarray(target_depth, dtype=np.float64)
    if pred.shape != tgt.shape:
        raise ValueError(f"align_depth: prediction {pred.shape} and target {tgt.shape} differ in shape")
    ok = np.isfinite(pred) & np.isfinite(tgt) & (tgt > 0)
    if mask is not None:
        ok &= np.asarray(mask, dtype=bool)
    idx = np.flatnonzero(ok)
    if len(idx) > max_samples:
        idx = np.random.default_rng(seed).choice(idx, max_samples, replace=False)
    return _finish(pred.reshape(-1)[idx], tgt.reshape(-1)[idx], space, min_samples, seed=seed, **kw)


def sample_bilinear(img: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Sample ``img (H, W)`` at pixel coordinates ``uv (P, 2)`` (pixel centres at +0.5), clamping to the
    outermost pixel centres within the image; NaN outside the image ``[0, W] x [0, H]``."""
    H, W = img.shape
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= W) & (uv[:, 1] >= 0) & (uv[:, 1] <= H)
    x = np.clip(uv[:, 0] - 0.5, 0, W - 1)
    y = np.clip(uv[:, 1] - 0.5, 0, H - 1)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, max(W - 2, 0))
    y0 = np.clip(np.floor(y).astype(np.int64), 0, max(H - 2, 0))
    x1, y1 = np.minimum(x0 + 1, W - 1), np.minimum(y0 + 1, H - 1)
    fx, fy = np.clip(x - x0, 0, 1), np.clip(y - y0, 0, 1)
    v = img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x1] * fx * (1 - fy) + img[y1, x0] * (1 - fx) * fy + img[y1, x1] * fx * fy
    return np.where(inside, v, np.nan)


def align_depth_to_points(
    pred: np.ndarray,
    camera: Cameras,
    points: np.ndarray,
    space: str = "depth",
    min_samples: int = 8,
    **kw,
) -> Alignment:
    """Align a prediction to sparse world points (SfM points or cache points) seen by ``camera``.

    Args:
        pred: (H, W) network output for the view of ``camera`` (1 camera, size W x H).
        points: (P, 3) world points; those in front of the camera and inside the image are used, with
            the prediction sampled bilinearly at their projections and their z-depth as target.
            Pass only points observed in this view (e.g. an SfM track's observations) when occlusion matters.
    """
    if len(camera) != 1:
        raise ValueError(f"align_depth_to_points: expected one camera, got {len(camera)}")
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape != (camera.height, camera.width):
        raise ValueError(f"align_depth_to_points: prediction {pred.shape} vs camera {camera.width}x{camera.height}")
    uv, z = camera.project(np.asarray(points, dtype=np.float64).reshape(-1, 3))
    uv, z = uv[0], z[0]
    front = z > 0
    p = sample_bilinear(pred, uv[front])
    ok = np.isfinite(p)
    return _finish(p[ok], z[front][ok], space, min_samples, **kw)
