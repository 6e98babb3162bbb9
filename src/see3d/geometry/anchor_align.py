"""Align one view's depth prediction to its metric anchors: dense LWLR or one robust global fit.

- ``method="lwlr"``: the robust global fit (:func:`see3d.geometry.align.fit_scale_shift`, RANSAC + Huber)
  is the prior; a dense scale/shift map by LWLR (:func:`see3d.geometry.lwlr.lwlr_maps`) corrects it
  locally. Anchors whose relative residual against the local fit exceeds ``max(4 * 1.4826 * MAD, 2 %)``
  are dropped and the maps refitted (``robust_iters`` times).
- ``method="global"``: one scale/shift for the whole view (the baseline).

The fit happens in the prediction's alignment space (depth, or disparity for relative-disparity
outputs: :attr:`see3d.depth.base.DepthPrediction.alignment_space`).

No silent garbage: too few anchors, a degenerate fit or an aligned depth that is non-positive over much
of the view raise :class:`AlignmentError` naming the view and the reason. ``fallback="global"`` lets a
view with too few anchors for LWLR use the global fit instead (recorded in its :class:`AlignStats`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from see3d.errors import See3DError
from see3d.geometry.align import fit_scale_shift, sample_bilinear
from see3d.geometry.lwlr import lwlr_maps, upsample


class AlignmentError(See3DError):
    """A view's depth could not be aligned to its anchors (the message names the view and the reason)."""


@dataclass
class AlignConfig:
    """Depth-alignment settings (``see3d generate --align*``)."""

    method: Literal["lwlr", "global"] = field(default="lwlr", metadata={"help": "lwlr: dense local scale/shift map (paper Eqs. 5-6); global: one robust scale/shift per view"})
    bandwidth: float = field(default=0.1, metadata={"help": "LWLR Gaussian kernel bandwidth b as a fraction of the image's long side"})
    lam: float = field(default=0.03, metadata={"help": "LWLR ridge weight of the local level towards the global fit, in units of anchors"})
    lam_slope: float = field(default=1.0, metadata={"help": "LWLR ridge weight of the local slope towards the global fit, in units of anchors"})
    min_local_scale: float = field(
        default=0.25,
        metadata={"help": "LWLR: the local scale may not fall below this fraction of the global fit's scale (0 = unbounded; "
                          "guards against a slope that inverts the prediction where anchors are few)"},
    )
    min_anchors: int = field(default=12, metadata={"help": "fewest anchors a view may be aligned with"})
    min_anchors_lwlr: int = field(default=30, metadata={"help": "fewest anchors for LWLR (fewer: error, or the global fit with --align-fallback global)"})
    fallback: Literal["none", "global", "warped"] = field(
        default="none",
        metadata={"help": "none: a view that cannot be aligned as asked is an error; global: LWLR falls back to the global fit when a view "
                          "has too few anchors; warped: as global, and a generated view that cannot be aligned at all keeps its warped depth"},
    )
    new_view_anchors: Literal["keypoints", "cache", "both"] = field(
        default="both", metadata={"help": "anchors of generated views: keypoints matched to earlier views, the point cache's rendered depth, or both"}
    )
    inlier_thresh: float = field(default=0.05, metadata={"help": "relative residual of an inlier in the global fit"})
    edge_ratio: float = field(
        default=0.0, metadata={"help": "anchors where the prediction varies by more than this factor within --align-edge-window are dropped (0 = keep all)"}
    )
    edge_window: float = field(default=0.035, metadata={"help": "window of the depth-edge test of anchors, as a fraction of the image's long side (odd, >= 3 px)"})
    robust_iters: int = field(default=2, metadata={"help": "LWLR outlier-rejection rounds"})
    min_valid_fraction: float = field(default=0.5, metadata={"help": "an aligned depth positive on less than this fraction of the predicted pixels is an error"})


@dataclass
class AlignStats:
    """What the alignment of one view did (written to generate_config.json)."""

    view: str
    method: str
    anchors: int
    inliers: int
    residual: float
    scale: float
    shift: float
    space: str
    note: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        for k, nd in (("residual", 5), ("scale", 6), ("shift", 6)):
            d[k] = round(float(d[k]), nd) if np.isfinite(d[k]) else None
        return d


def to_space(depth: np.ndarray, space: str) -> np.ndarray:
    """z-depth -> the alignment space (``depth`` unchanged, ``disparity`` = 1 / depth)."""
    if space == "depth":
        return np.asarray(depth, dtype=np.float64)
    if space == "disparity":
        with np.errstate(divide="ignore"):
            return 1.0 / np.asarray(depth, dtype=np.float64)
    raise ValueError(f"alignment space must be 'depth' or 'disparity', got {space!r}")


def from_space(val: np.ndarray, space: str) -> np.ndarray:
    """Values in the alignment space -> z-depth; 0 where no positive depth results."""
    val = np.asarray(val, dtype=np.float64)
    if space == "disparity":
        with np.errstate(divide="ignore", invalid="ignore"):
            val = np.where(val > 0, 1.0 / np.where(val > 0, val, 1.0), 0.0)
    return np.where(np.isfinite(val) & (val > 0), val, 0.0).astype(np.float32)


def near_edges(pred: np.ndarray, valid: np.ndarray, window: int, ratio: float) -> np.ndarray:
    """(H, W) bool: pixels whose ``window x window`` neighbourhood in ``pred`` (positive values) spans more
    than a factor ``1 + ratio`` (or touches an invalid pixel): where a network's depth bleeds across edges."""
    import cv2

    k = np.ones((window, window), np.uint8)
    p = np.where(valid, np.abs(pred), np.nan).astype(np.float32)
    hi = cv2.dilate(np.nan_to_num(p, nan=np.inf), k)
    lo = cv2.erode(np.nan_to_num(p, nan=0.0), k)
    with np.errstate(divide="ignore", invalid="ignore"):
        return ~(hi <= (1 + ratio) * lo)


def anchor_samples(pred: np.ndarray, valid: np.ndarray, uv: np.ndarray, z: np.ndarray, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prediction at the anchors (nearest pixel, so no blending across depth edges) -> ``(uv, x, z)`` of
    the anchors inside the image, in front of the camera, on valid predicted pixels and not on ``exclude``."""
    H, W = pred.shape
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    j, i = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
    inside = (i >= 0) & (i < H) & (j >= 0) & (j < W) & np.isfinite(z) & (z > 0)
    ii, jj = np.clip(i, 0, H - 1), np.clip(j, 0, W - 1)
    ok = inside & valid[ii, jj] & np.isfinite(pred[ii, jj])
    if exclude is not None:
        ok &= ~exclude[ii, jj]
    return uv[ok], pred[ii[ok], jj[ok]].astype(np.float64), z[ok]


def align_to_anchors(
    pred: np.ndarray, valid: np.ndarray, space: str, uv: np.ndarray, z: np.ndarray, cfg: AlignConfig | None = None, view: str = "view"
) -> tuple[np.ndarray, AlignStats]:
    """Align ``pred (H, W)`` (valid where ``valid (H, W)``) to anchors ``uv (K, 2)`` px with z-depth ``z (K,)``.

    Returns ``(depth (H, W) float32 z-depth, 0 where invalid, stats)``. Raises :class:`AlignmentError`.
    """
    cfg = cfg or AlignConfig()
    pred = np.asarray(pred, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool) & np.isfinite(pred)
    H, W = pred.shape
    win = max(3, int(round(cfg.edge_window * max(H, W))) // 2 * 2 + 1)
    edges = near_edges(pred, valid, win, cfg.edge_ratio) if cfg.edge_ratio > 0 else None
    auv, x, za = anchor_samples(pred, valid, uv, z, edges)
    n = len(x)
    if n < cfg.min_anchors:
        raise AlignmentError(f"view {view!r}: depth alignment failed: only {n} usable anchors (need {cfg.min_anchors}); "
                             "the view shares too few matched keypoints with views of known geometry")  # fmt: skip
    y = to_space(za, space)
    try:
        s, b, inl = fit_scale_shift(x, y, inlier_thresh=cfg.inlier_thresh)
    except See3DError as e:
        raise AlignmentError(f"view {view!r}: depth alignment failed: {e}") from e
    if inl.sum() < max(2, cfg.min_anchors // 2):
        raise AlignmentError(f"view {view!r}: depth alignment failed: degenerate global fit ({int(inl.sum())} of {n} anchors agree)")
    method, note = cfg.method, ""
    if method == "lwlr" and n < cfg.min_anchors_lwlr:
        if cfg.fallback == "none":
            raise AlignmentError(f"view {view!r}: LWLR alignment needs {cfg.min_anchors_lwlr} anchors, found {n} "
                                 "(use --align global, or --align-fallback global)")  # fmt: skip
        method, note = "global", f"fallback: {n} anchors < {cfg.min_anchors_lwlr} for LWLR"
    if method == "global":
        val = s * pred + b
        r = np.abs(s * x + b - y) / np.abs(y)
        keep = inl
        scale_rep, shift_rep = s, b
    else:
        bw = cfg.bandwidth * max(H, W)
        stride = max(1, int(round(bw / 4)))
        keep = np.ones(n, bool)
        for it in range(cfg.robust_iters + 1):
            a_g, c_g = lwlr_maps(auv, x, y, H, W, bw, cfg.lam, (s, b), keep.astype(np.float64), stride, full_res=False, lam_slope=cfg.lam_slope,
                                min_scale_ratio=cfg.min_local_scale)
            g_uv = auv / stride
            r = np.abs(sample_bilinear(a_g, g_uv) * x + sample_bilinear(c_g, g_uv) * 1.0 - y) / np.abs(y)
            if it == cfg.robust_iters:
                break
            med = np.median(r[keep])
            mad = np.median(np.abs(r[keep] - med))
            new_keep = r <= max(med + 4 * 1.4826 * mad, 0.02)
            if new_keep.sum() < cfg.min_anchors or (new_keep == keep).all():
                break
            keep = new_keep
        up = [upsample(m, stride, H, W) for m in (a_g, c_g)]
        val = up[0] * pred + up[1]
        scale_rep, shift_rep = float(np.median(up[0])), float(np.median(up[1]))
    depth = np.where(valid, from_space(val, space), 0.0).astype(np.float32)
    frac = float((depth > 0).sum()) / max(int(valid.sum()), 1)
    if frac < cfg.min_valid_fraction:
        raise AlignmentError(f"view {view!r}: depth alignment failed: aligned depth is positive on only {100 * frac:.0f}% of the predicted pixels")
    res = float(np.median(r[keep])) if keep.any() else float("inf")
    return depth, AlignStats(view, method, n, int(keep.sum()), res, scale_rep, shift_rep, space, note)
