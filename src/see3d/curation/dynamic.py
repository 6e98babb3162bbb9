"""Stage 3: non-rigid dynamic filtering from optical flow and epipolar geometry.

For every ``pair_step``-th pair of consecutive sampled frames (at most ``max_pairs``):

1. forward and backward flow (:mod:`see3d.curation.flow`);
2. forward-backward consistency (the official rule: ``|f + b(x + f)| < a1 (|f| + |b(x + f)|) + a2``
   with a1 = a2 = 0.5, the backward flow sampled by cubic interpolation);
3. trusted pixels: consistent, textured (flow in flat regions is interpolated, not measured), off
   the border, and photometrically consistent: frame b warped back by the flow matches frame a
   (local NCC at least ``photo_ncc``). Forward-backward consistency alone accepts a flow that is
   wrong the same way in both directions, as DIS is on large displacements (a fast orbit: 10-30
   degrees between sampled frames) and on water; such flow is ignored, not counted as motion;
4. a fundamental matrix F from ``ransac_points`` trusted matches (seeded draw) by least median of
   squares (the official estimator), refined by least squares on every trusted pixel within
   ``refine_px`` (much more stable than a plain RANSAC fit from a random sample); when the camera
   barely moves (median flow below ``static_flow_px``) F is ill-posed and the rigid model is "no
   motion" instead;
5. per-pixel Sampson distance (first-order distance to the epipolar line, pixels); trusted pixels
   above ``sampson_px + sampson_rel * median |flow|`` are dynamic; only blobs of at least
   ``min_blob`` of the image are kept (moving objects are compact; flow noise is speckle);
6. movers the flow does not follow: a small, fast object is often not followed by the flow at all
   (DIS smooths it into the background), nor is an object that turns a lot between sampled frames
   (a spinning box), but their content then disagrees with the flow-warped frame. Isolated regions
   of such change, in two size tiers followed separately (``small_blob`` to ``small_blob_max`` of
   the image, and above that up to ``large_blob_max``; at most ``max_movers`` per pair in each),
   are linked from pair to pair when they move on their own (off the position their own flow
   predicts); a chain through ``persist_pairs`` of the pairs makes the clip dynamic however small
   its area.

Per pair: the dynamic fraction of the trusted area and of the central box [H/4:3H/4, W/4:3W/4] (the
paper's centre; the official code used [H/2:3H/4, W/2:3W/4] by mistake), and the paper's Eq. 8 score
(reported, not used to decide). The clip is ``dynamic`` when the mean fraction reaches ``area_drop``
or at least ``frames_drop`` of the pairs exceed ``frame_area``.

Thresholds: the official rule (drop when 60% of frames have any dynamic pixel, with RAFT at 768 px)
rejects nearly every clip with DIS noise at 256 px, and the paper's Eq. 8 bands (5% / 12% areas) miss
objects covering 5-15% of the image. The defaults were tuned on the labelled ``see3d synth`` seeds 0
and 1 and the tuning real clips named in docs/curation.md, with DIS ``medium`` (seed 2 was examined
clip by clip later, without a change of threshold; ``large_blob_max`` was chosen on seeds 0-5);
accuracy on held-out seeds and clips, and the failure mechanisms that remain, are reported there.

Limitations: motion along the epipolar lines (an object moving in the direction of the camera's
translation, e.g. sliding sideways while the camera orbits) is invisible to a two-view test and is
only caught through the other components of its motion. Where the flow fails (large
displacements), the photometric check removes it and with it the evidence in those pixels: objects
whose appearance changes between frames (turning, deforming) lose part of their dynamic area, so
borderline movers can be missed (use RAFT, or sample more densely, for such footage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from see3d.curation.flow import FlowBackend

_F_METHODS = {"ransac": cv2.FM_RANSAC, "lmeds": cv2.FM_LMEDS, "magsac": cv2.USAC_MAGSAC, "accurate": cv2.USAC_ACCURATE}


@dataclass
class DynamicConfig:
    """Stage 3 settings (pixel thresholds are at the analysis resolution, see SampleConfig.short_side)."""

    pair_step: int = field(default=2, metadata={"help": "analyse every n-th pair of consecutive sampled frames"})
    max_pairs: int = field(default=0, metadata={"help": "at most this many pairs per clip, evenly spread (0 = no limit)"})
    ransac_points: int = field(default=500, metadata={"help": "flow matches given to the robust F estimator (official: 500)"})
    f_method: Literal["lmeds", "ransac", "magsac", "accurate"] = field(default="lmeds", metadata={"help": "robust F estimator: lmeds (official) | ransac | magsac | accurate (OpenCV USAC variants)"})
    ransac_px: float = field(default=1.0, metadata={"help": "RANSAC inlier threshold, pixels (not used by lmeds)"})
    ransac_iters: int = field(default=1000, metadata={"help": "RANSAC iterations (not used by lmeds)"})
    refine_rounds: int = field(default=2, metadata={"help": "least-squares refits of F on the matches within refine_px"})
    refine_points: int = field(default=5000, metadata={"help": "trusted pixels (regularly subsampled) used in the refits"})
    refine_px: float = field(default=1.0, metadata={"help": "Sampson distance of the matches used in the refits, pixels"})
    sampson_px: float = field(default=1.5, metadata={"help": "Sampson distance above which a pixel is dynamic, pixels (plus sampson_rel)"})
    sampson_rel: float = field(default=0.1, metadata={"help": "added to sampson_px per pixel of median flow (flow errors grow with displacement)"})
    photo_ncc: float = field(default=0.5, metadata={"help": "trusted flow lands on matching content: local 7x7 NCC of frame a and the flow-warped frame b at least this (-1 = off)"})
    texture: float = field(default=1e-4, metadata={"help": "smallest structure-tensor eigenvalue (grey in [0,1], 5x5) of a trusted flow pixel"})
    min_reliable: float = field(default=0.25, metadata={"help": "dynamic fractions are taken over the trusted pixels, but at least this fraction of the image"})
    static_flow_px: float = field(default=0.3, metadata={"help": "median flow below which the camera is taken as still (no F)"})
    border: float = field(default=0.03, metadata={"help": "ignored image border, fraction of the short side"})
    blob_kernel: int = field(default=5, metadata={"help": "closing kernel joining dynamic pixels into blobs, pixels"})
    min_blob: float = field(default=0.006, metadata={"help": "smallest dynamic blob kept, fraction of the image"})
    change_ncc: float = field(default=0.3, metadata={"help": "measured pixels below this photometric NCC show content the flow did not follow (small movers)"})
    small_blob: float = field(default=0.001, metadata={"help": "smallest region of changed content followed as a small mover, fraction of the image"})
    small_blob_max: float = field(default=0.02, metadata={"help": "largest such region (larger movers are the epipolar test's)"})
    max_movers: int = field(default=3, metadata={"help": "pairs with more changed regions are flow failure or noise, not followed"})
    large_blob_max: float = field(default=0.1, metadata={"help": "changed regions above small_blob_max up to this are followed as a second tier (an object that turns, which the flow does not follow); 0 = off"})
    persist_pairs: float = field(default=0.75, metadata={"help": "drop when one small mover is followed through this fraction of the pairs"})
    persist_min: int = field(default=3, metadata={"help": "... and at least this many pairs"})
    persist_step: float = field(default=0.2, metadata={"help": "largest move of a followed region between analysed pairs, fraction of the diagonal"})
    persist_dev: float = field(default=0.008, metadata={"help": "a followed region must miss its flow-predicted position by this (fraction of the diagonal): it moves on its own"})
    frame_area: float = field(default=0.02, metadata={"help": "dynamic area above which a pair counts as dynamic"})
    frames_drop: float = field(default=0.3, metadata={"help": "drop when at least this fraction of pairs is dynamic"})
    area_drop: float = field(default=0.018, metadata={"help": "drop when the mean dynamic area reaches this"})


@dataclass
class DynamicStats:
    """Per-clip results of stage 3; per-pair arrays have one entry per analysed pair."""

    area: np.ndarray  # (P,) dynamic fraction of the image
    center: np.ndarray  # (P,) dynamic fraction of the central box
    fb_consistent: np.ndarray  # (P,) fraction of forward-backward consistent pixels
    flow_mag: np.ndarray  # (P,) mean flow magnitude, pixels
    score: np.ndarray  # (P,) Eq. 8 score per pair
    dynamic_pairs: float  # fraction of pairs with area > frame_area
    drop: bool
    message: str


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx, gy


def fb_consistency(fwd: np.ndarray, bwd: np.ndarray, alpha1: float = 0.5, alpha2: float = 0.5) -> np.ndarray:
    """Forward-backward consistent pixels of ``fwd`` (official WebVi3D rule), bool ``(H, W)``.

    ``fwd``, ``bwd``: float32 ``(H, W, 2)`` pixels. The backward flow is sampled at ``x + fwd`` with
    cubic interpolation and a zero border (``cv2.remap``).
    """
    h, w = fwd.shape[:2]
    gx, gy = _grid(h, w)
    warped = cv2.remap(bwd, gx + fwd[..., 0], gy + fwd[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    lr = cv2.magnitude(fwd[..., 0] + warped[..., 0], fwd[..., 1] + warped[..., 1])
    bound = cv2.magnitude(fwd[..., 0], fwd[..., 1]) + cv2.magnitude(warped[..., 0], warped[..., 1])
    return lr < alpha1 * bound + alpha2


def _sampson(F: np.ndarray, u1, v1, u2, v2):
    """The Sampson formula on broadcastable coordinate arrays, computed in their dtype (F of the same dtype)."""
    l0 = F[0, 0] * u1 + F[0, 1] * v1 + F[0, 2]
    l1 = F[1, 0] * u1 + F[1, 1] * v1 + F[1, 2]
    l2 = F[2, 0] * u1 + F[2, 1] * v1 + F[2, 2]
    m0 = F[0, 0] * u2 + F[1, 0] * v2 + F[2, 0]
    m1 = F[0, 1] * u2 + F[1, 1] * v2 + F[2, 1]
    num = np.abs(u2 * l0 + v2 * l1 + l2)
    return num / np.maximum(np.sqrt(l0 * l0 + l1 * l1 + m0 * m0 + m1 * m1), 1e-12)


def sampson_distance(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """First-order geometric (Sampson) distance, pixels, of matches ``x1 -> x2`` (``(..., 2)`` pixel
    coordinates) to the epipolar geometry ``x2^T F x1 = 0``:
    ``|x2^T F x1| / sqrt((F x1)_0^2 + (F x1)_1^2 + (F^T x2)_0^2 + (F^T x2)_1^2)``. Returns shape ``(...)``
    (float64)."""
    u1, v1 = x1[..., 0].astype(np.float64), x1[..., 1].astype(np.float64)
    u2, v2 = x2[..., 0].astype(np.float64), x2[..., 1].astype(np.float64)
    return _sampson(np.asarray(F, np.float64), u1, v1, u2, v2)


def sampson_dense(F: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """:func:`sampson_distance` of every pixel centre ``x1 = (j + 0.5, i + 0.5)`` and ``x1 + flow``,
    float32 ``(H, W)`` pixels, for flow ``(H, W, 2)`` (broadcast grids and float32 with a unit-norm F, for speed)."""
    h, w = flow.shape[:2]
    F = np.asarray(F, np.float64)
    F = (F / np.linalg.norm(F)).astype(np.float32)
    u = np.arange(w, dtype=np.float32)[None, :] + 0.5
    v = np.arange(h, dtype=np.float32)[:, None] + 0.5
    return _sampson(F, u, v, u + flow[..., 0], v + flow[..., 1])


def eq8_score(area: float, center: float) -> float:
    """The paper's per-frame score (Eq. 8) with the official bands: large dynamic areas, above all
    central ones, score high."""
    if area >= 0.12 and center >= 0.35:
        return 2.0
    if area >= 0.12 and center < 0.2:
        return 0.8
    if area >= 0.05 and center >= 0.2:
        return 1.5
    if area < 0.05 and center >= 0.2:
        return 1.0
    if area >= 0.05:
        return 0.5
    return 0.0


def photo_consistency(grey_a: np.ndarray, grey_b: np.ndarray, fwd: np.ndarray, window: int = 7) -> np.ndarray:
    """Local normalised cross-correlation, float32 ``(H, W)`` in [-1, 1], between frame a and frame b
    warped back by the flow a->b (``window`` x ``window`` boxes; grey images uint8 ``(H, W)``).

    A flow vector that lands on the same image content scores near 1 also for a moving object; one
    that does not (a failed match: large displacements, strong perspective, specular or rippling
    surfaces) scores low, however forward-backward consistent the flow is."""
    h, w = grey_a.shape
    gx, gy = _grid(h, w)
    a = grey_a.astype(np.float32) * (1.0 / 255.0)
    b = cv2.remap(grey_b.astype(np.float32) * (1.0 / 255.0), gx + fwd[..., 0], gy + fwd[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    k = (window, window)
    ma, mb = cv2.blur(a, k), cv2.blur(b, k)
    va, vb = cv2.blur(a * a, k) - ma * ma, cv2.blur(b * b, k) - mb * mb
    return (cv2.blur(a * b, k) - ma * mb) / np.sqrt(np.maximum(va * vb, 1e-10))


def reliable_pixels(grey: np.ndarray, consistent: np.ndarray, cfg: DynamicConfig) -> np.ndarray:
    """Pixels whose flow is a measurement, bool ``(H, W)``: forward-backward consistent, textured
    (smallest structure-tensor eigenvalue of the grey image in [0, 1] above ``texture``; flow in flat
    regions is an interpolation, not a measurement) and away from the border. The epipolar test also
    requires photometric consistency (:func:`photo_consistency` at least ``photo_ncc``). Unreliable
    flow is ignored, never counted as motion."""
    h, w = grey.shape
    tex = cv2.cornerMinEigenVal(grey.astype(np.float32) * (1.0 / 255.0), 5, 3) > cfg.texture
    b = int(round(cfg.border * min(h, w)))
    inside = np.zeros((h, w), bool)
    inside[b : h - b, b : w - b] = True
    return consistent & tex & inside


def fit_fundamental(p1: np.ndarray, p2: np.ndarray, cfg: DynamicConfig, q1: np.ndarray | None = None, q2: np.ndarray | None = None) -> np.ndarray | None:
    """Robust F from matches ``p1 -> p2`` ((N, 2) pixels): OpenCV's estimator (``f_method``; least
    median of squares by default, as the official code), then ``refine_rounds`` least-squares
    8-point refits on the matches ``q1 -> q2`` (default: the same; pass many, e.g. every trusted
    pixel, for a stable F) within ``refine_px`` Sampson distance. None when degenerate."""
    try:
        if cfg.f_method == "lmeds":
            F, _ = cv2.findFundamentalMat(p1, p2, cv2.FM_LMEDS)
        else:
            F, _ = cv2.findFundamentalMat(p1, p2, _F_METHODS[cfg.f_method], cfg.ransac_px, 0.999, cfg.ransac_iters)
    except cv2.error:
        return None
    if F is None or F.shape != (3, 3):
        return None
    q1, q2 = (p1, p2) if q1 is None else (q1, q2)
    for _ in range(cfg.refine_rounds):
        inl = sampson_distance(F, q1, q2) < cfg.refine_px
        if inl.sum() < 16:
            break
        F2, _ = cv2.findFundamentalMat(q1[inl], q2[inl], cv2.FM_8POINT)
        if F2 is None or F2.shape != (3, 3):
            break
        F = F2
    return F


def dynamic_mask(fwd: np.ndarray, reliable: np.ndarray, cfg: DynamicConfig, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Dynamic pixels of frame a, bool ``(H, W)`` (blobs of at least ``min_blob`` of the image), and
    the threshold used (pixels).

    ``fwd``: (H, W, 2) flow a->b in pixels; ``reliable``: pixels to trust (:func:`reliable_pixels`).
    A pixel is dynamic when it is reliable and its Sampson distance to the epipolar geometry
    (:func:`fit_fundamental`) exceeds ``sampson_px + sampson_rel * median |flow|`` (flow errors grow with the
    displacement). When the camera barely moves, the rigid model is "no motion" and the flow
    magnitude itself is tested.
    """
    h, w = fwd.shape[:2]
    mag = cv2.magnitude(fwd[..., 0], fwd[..., 1])
    idx = np.flatnonzero(reliable.ravel())
    med = float(np.median(mag.ravel()[idx])) if len(idx) else 0.0
    thr = cfg.sampson_px + cfg.sampson_rel * med
    err = None
    if len(idx) >= 16 and med >= cfg.static_flow_px:
        # matches at pixel centres: x1 = (j + 0.5, i + 0.5), x2 = x1 + flow
        f = fwd.reshape(-1, 2)
        x1 = np.stack([idx % w + 0.5, idx // w + 0.5], 1).astype(np.float64)
        pick = rng.choice(len(idx), size=min(cfg.ransac_points, len(idx)), replace=False)
        dense = np.arange(0, len(idx), max(1, len(idx) // cfg.refine_points))
        F = fit_fundamental(x1[pick], x1[pick] + f[idx[pick]].astype(np.float64), cfg, x1[dense], x1[dense] + f[idx[dense]].astype(np.float64))
        if F is not None:
            err = sampson_dense(F, fwd)
    if err is None:  # no usable F: the rigid model is a still camera
        err = mag
    mask = (err > thr) & reliable
    # keep only blobs: independently moving objects give compact regions off the epipolar geometry,
    # flow noise gives thin scattered specks (tile edges, texture boundaries)
    k = max(3, cfg.blob_kernel | 1)
    closed = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    big = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= cfg.min_blob * h * w) + 1
    keep = np.zeros(n, bool)
    keep[big] = True
    mask = keep[lab] & reliable
    return mask, thr


def changed_blobs(changed: np.ndarray, fwd: np.ndarray, cfg: DynamicConfig, sizes: tuple[float, float] | None = None) -> list[tuple[float, float, float, float, float]]:
    """Isolated regions whose content the flow did not follow: ``(x, y, area, u, v)`` per blob
    (centroid in pixels, fraction of the image, median flow in the blob) for blobs of ``changed``
    (bool ``(H, W)``) from ``sizes[0]`` to ``sizes[1]`` of the image (default: ``small_blob`` to
    ``small_blob_max``); none when more than ``max_movers`` blobs are at least ``sizes[0]``
    (widespread change is flow failure or noise, not a mover)."""
    lo, hi = (cfg.small_blob, cfg.small_blob_max) if sizes is None else sizes
    h, w = changed.shape
    k = max(3, cfg.blob_kernel | 1)
    closed = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, lab, stats, cen = cv2.connectedComponentsWithStats(closed, connectivity=8)
    size = stats[1:, cv2.CC_STAT_AREA] / float(h * w)
    ids = np.flatnonzero(size >= lo) + 1
    if len(ids) > cfg.max_movers:
        return []
    out = []
    for j in ids:
        if size[j - 1] <= hi:
            u, v = np.median(fwd[lab == j], axis=0)
            out.append((float(cen[j, 0]), float(cen[j, 1]), float(size[j - 1]), float(u), float(v)))
    return out


def persistent_movers(blobs: list[list[tuple[float, float, float, float, float]]], frames_apart: list[int], max_step: float, min_dev: float) -> int:
    """Length, in consecutive analysed pairs, of the longest chain of :func:`changed_blobs` that move
    independently: a blob links to one of the previous pair within ``max_step`` pixels whose
    position predicted by its own flow (``frames_apart`` frames later) misses it by at least
    ``min_dev`` pixels (artefacts at occlusions or highlights move with the scene; a small fast
    object the flow missed does not)."""
    best, run, prev = 0, [], []
    for cur, gap in zip(blobs, frames_apart):
        now = []
        for x, y, _, _, _ in cur:
            links = [
                run[j]
                for j, (px, py, _, pu, pv) in enumerate(prev)
                if np.hypot(x - px, y - py) <= max_step and np.hypot(x - px - gap * pu, y - py - gap * pv) >= min_dev
            ]
            now.append(1 + max(links, default=0))
        best = max([best, *now])
        prev, run = cur, now
    return best


def pair_indices(num_frames: int, step: int = 1, max_pairs: int = 0) -> list[int]:
    """First-frame indices of the analysed consecutive pairs: every ``step``-th, at most ``max_pairs``
    evenly spread (0 = no limit)."""
    idx = list(range(0, max(num_frames - 1, 0), max(1, step)))
    if max_pairs > 0 and len(idx) > max_pairs:
        idx = [idx[int(round(x))] for x in np.linspace(0, len(idx) - 1, max_pairs)]
    return idx


def analyse_dynamic(frames: np.ndarray, flow: FlowBackend, cfg: DynamicConfig, seed: int = 0, early_exit: bool = True) -> DynamicStats:
    """Stage 3 on one clip. ``frames``: (T, H, W, 3) uint8 RGB at analysis resolution.

    ``early_exit``: stop as soon as the drop is certain whatever the remaining pairs show (the
    summed area or the count of dynamic pairs already reaches the threshold for the whole clip);
    the decision is the same, the statistics then cover the pairs analysed.
    """
    rng = np.random.default_rng(seed)
    cv2.setRNGSeed(int(seed) % (2**31))
    h, w = frames.shape[1:3]
    cy0, cy1, cx0, cx1 = h // 4, (3 * h) // 4, w // 4, (3 * w) // 4
    pairs = pair_indices(len(frames), cfg.pair_step, cfg.max_pairs)
    tiers = [(cfg.small_blob, cfg.small_blob_max)] + ([(cfg.small_blob_max, cfg.large_blob_max)] if cfg.large_blob_max > cfg.small_blob_max else [])
    area, center, fbc, mags, scores = [], [], [], [], []
    blobs: list[list[list]] = [[] for _ in tiers]  # per tier, per pair: changed_blobs
    for i in pairs:
        fwd, bwd = flow.pair(frames[i], frames[i + 1])
        cons = fb_consistency(fwd, bwd)
        grey_a = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY)
        ncc = photo_consistency(grey_a, cv2.cvtColor(frames[i + 1], cv2.COLOR_RGB2GRAY), fwd)
        measured = reliable_pixels(grey_a, cons, cfg)
        rel = measured & (ncc >= cfg.photo_ncc)
        changed = measured & (ncc < cfg.change_ncc)
        for tier, sizes in zip(blobs, tiers):
            tier.append(changed_blobs(changed, fwd, cfg, sizes))
        mask, _ = dynamic_mask(fwd, rel, cfg, rng)
        # fractions of the trusted area (at least min_reliable of the image, so a nearly
        # texture-less pair cannot report a large fraction from a few pixels)
        a = float(mask.sum() / max(rel.sum(), cfg.min_reliable * h * w))
        c_rel = rel[cy0:cy1, cx0:cx1]
        c = float(mask[cy0:cy1, cx0:cx1].sum() / max(c_rel.sum(), cfg.min_reliable * c_rel.size))
        area.append(a)
        center.append(c)
        fbc.append(float(cons.mean()))
        mags.append(float(cv2.magnitude(fwd[..., 0], fwd[..., 1]).mean()))
        scores.append(eq8_score(a, c))
        if early_exit and (sum(area) >= cfg.area_drop * len(pairs) or sum(x > cfg.frame_area for x in area) >= cfg.frames_drop * len(pairs)):
            break
    arr = [np.asarray(x, np.float64) for x in (area, center, fbc, mags, scores)]
    if not area:
        return DynamicStats(*arr, dynamic_pairs=float("nan"), drop=False, message="no frame pairs")
    total = len(pairs)
    dyn_count = int(np.sum(arr[0] > cfg.frame_area))
    drop = arr[0].sum() >= cfg.area_drop * total or dyn_count >= cfg.frames_drop * total
    dyn_pairs = dyn_count / len(area)
    done = "" if len(area) == total else f" (decided after {len(area)} of {total} pairs)"
    msg = f"dynamic area {arr[0].mean():.4f} (drop at {cfg.area_drop}), {dyn_pairs:.0%} of pairs above {cfg.frame_area} (drop at {cfg.frames_drop:.0%}){done}"
    diag = float(np.hypot(h, w))
    chains = [persistent_movers(tier, [pairs[0] + 1, *np.diff(pairs)], cfg.persist_step * diag, cfg.persist_dev * diag) for tier in blobs]
    k = int(np.argmax(chains))
    need = max(cfg.persist_min, int(np.ceil(cfg.persist_pairs * total)))
    if not drop and len(area) == total and chains[k] >= need:
        drop = True
        what = "a small object" if k == 0 else "an object the flow does not follow"
        msg = f"{what} moves on its own through {chains[k]} consecutive pairs of {total} (drop at {need}); {msg}"
    return DynamicStats(*arr, dynamic_pairs=dyn_pairs, drop=bool(drop), message=msg)
