"""Depth of each view in scene units during generation: predict, anchor, align (paper §3.3).

- :func:`reference_depths`: the input views. One view: its prediction defines the scene scale. Several
  views: keypoints matched between them are triangulated with their cameras (given or SfM) into
  anchors (plus any SfM observations), and each prediction is aligned to its anchors
  (:func:`see3d.geometry.anchor_align.align_to_anchors`, LWLR or global).
- :func:`new_view_depth`: a generated view. Its anchors are keypoints matched to earlier views
  (:meth:`see3d.geometry.anchors.AnchorStore.add_view`) and/or the point cache's depth rendered into
  its camera, sampled on a grid (``AlignConfig.new_view_anchors``).

Alignment failures raise :class:`see3d.geometry.anchor_align.AlignmentError` naming the view, unless
``AlignConfig.fallback`` opts into a fallback (recorded in the view's statistics).
"""

from __future__ import annotations

import cv2
import numpy as np

from see3d.depth.base import DepthBackend, DepthPrediction
from see3d.errors import See3DError
from see3d.geometry.align import align_depth
from see3d.geometry.anchor_align import AlignConfig, AlignmentError, AlignStats, align_to_anchors
from see3d.geometry.anchors import AnchorStore
from see3d.io.cameras import Cameras
from see3d.log import get_logger

log = get_logger(__name__)


def resize_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W) map resized to ``width x height`` with nearest-neighbour sampling (no blending across edges)."""
    if depth.shape == (height, width):
        return depth
    return cv2.resize(depth.astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST)


def first_view_depth(pred: DepthPrediction) -> np.ndarray:
    """Depth of the first view when nothing else is known. Metric and relative depth are used as given;
    relative disparity is inverted with zero shift and normalised so the median depth is 1 (the scene's
    scale is arbitrary for a single image)."""
    if pred.kind != "relative_disparity":
        return pred.depth()
    disp = np.where(pred.mask, pred.values, 0.0)
    med = np.median(disp[pred.mask]) if pred.mask.any() else 0.0
    if med <= 0:
        raise See3DError("depth: the predicted disparity of the input view is empty or non-positive")
    with np.errstate(divide="ignore"):
        return np.where(pred.mask, med / np.maximum(disp, 1e-6), 0.0).astype(np.float32)


def predict(backend: DepthBackend, image: np.ndarray, key, camera: Cameras) -> DepthPrediction:
    """``backend``'s prediction for ``image (H, W, 3)`` at the image's size."""
    pred = backend.predict(image, key=key, focal_px=float(camera.K[0, 0, 0]))
    H, W = image.shape[:2]
    if pred.values.shape != (H, W):
        valid = None if pred.valid is None else resize_depth(pred.valid.astype(np.float32), W, H) > 0.5
        pred = DepthPrediction(resize_depth(pred.values, W, H), pred.kind, valid, pred.focal_px)
    return pred


def aligned_depth(pred: DepthPrediction, rendered_depth: np.ndarray, rendered_mask: np.ndarray, fallback: np.ndarray | None) -> np.ndarray:
    """Align a prediction to a dense known depth (one robust global scale/shift over the overlap); used by
    editing, where the edited view's old depth is known everywhere outside the edit.

    Falls back to ``fallback`` (e.g. the old depth itself) when the overlap is too small to fit.
    Returns (H, W) z-depth, 0 where unknown.
    """
    try:
        al = align_depth(pred.values, rendered_depth, rendered_mask & pred.mask, space=pred.alignment_space)
        d = al.apply(pred.values)
        return np.where(pred.mask & np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)
    except See3DError as e:
        log.warning("depth alignment failed (%s); keeping the known depth only", e)
        return np.zeros_like(rendered_depth, dtype=np.float32) if fallback is None else fallback.astype(np.float32)


def reference_depths(
    images: np.ndarray,
    cameras: Cameras,
    preds: list[DepthPrediction],
    names: list[str],
    align: AlignConfig,
    extra_anchors: list[tuple[np.ndarray, np.ndarray]] | None = None,
    match_images: np.ndarray | None = None,
    match_cameras: Cameras | None = None,
) -> tuple[np.ndarray, list[dict], AnchorStore]:
    """Input views' depth in the cameras' units.

    Args:
        images: (N, H, W, 3); cameras: N cameras of that size; preds: their predictions; names: view names.
        extra_anchors: optional per view ``(uv (K, 2) px, z (K,))`` more anchors (e.g. SfM observations).
        match_images, match_cameras: the same views at another (e.g. their original, larger) resolution to
            find keypoints in; anchor pixels are rescaled to ``images``' size.
    Returns:
        depth (N, H, W) float32 (0 = unknown), per-view statistics, and the anchor store (for new views).
    """
    store = AnchorStore()
    if match_images is None:
        match_images, match_cameras = images, cameras
    store.add_views(match_images, match_cameras)
    to_work = np.array([cameras.width / match_cameras.width, cameras.height / match_cameras.height])
    if len(images) == 1 and not extra_anchors:
        d = first_view_depth(preds[0])
        if not (d > 0).any():
            raise See3DError(f"depth: input view {names[0]!r} has no valid depth")
        stat = AlignStats(names[0], "none", 0, 0, float("nan"), 1.0, 0.0, preds[0].alignment_space, "single input view: its depth sets the scene scale")
        return d[None], [stat.to_json()], store
    out, stats = [], []
    for i, pred in enumerate(preds):
        a = store.view_anchors(i)
        uv, z = a.uv * to_work, a.z
        if extra_anchors:
            uv = np.concatenate([uv, extra_anchors[i][0]])
            z = np.concatenate([z, extra_anchors[i][1]])
        d, st = align_to_anchors(pred.values, pred.mask, pred.alignment_space, uv, z, align, names[i])
        out.append(d)
        stats.append(st.to_json())
    return np.stack(out), stats, store


def cache_samples(depth: np.ndarray, mask: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Known depth ``(H, W)`` (valid where ``mask``) sampled at the centres of a ``stride``-pixel grid ->
    ``(uv (K, 2) px, z (K,))``."""
    H, W = depth.shape
    ii, jj = np.mgrid[stride // 2 : H : stride, stride // 2 : W : stride]
    ok = mask[ii, jj] & (depth[ii, jj] > 0) & np.isfinite(depth[ii, jj])
    uv = np.stack([jj[ok] + 0.5, ii[ok] + 0.5], 1).astype(np.float64)
    return uv, depth[ii[ok], jj[ok]].astype(np.float64)


def new_view_depth(
    pred: DepthPrediction,
    image: np.ndarray,
    camera: Cameras,
    warped_depth: np.ndarray,
    warped_mask: np.ndarray,
    store: AnchorStore,
    align: AlignConfig,
    name: str,
) -> tuple[np.ndarray, dict]:
    """A generated view's depth: ``pred`` aligned to its anchors (see the module docstring).

    ``warped_depth``/``warped_mask`` (H, W): the cache rendered into ``camera``. With
    ``align.fallback == "warped"`` a view that cannot be aligned keeps the warped depth (its filled holes
    then add no geometry); otherwise the failure is raised.
    """
    uvs, zs = [np.zeros((0, 2))], [np.zeros(0)]
    if align.new_view_anchors in ("keypoints", "both"):
        a = store.add_view(image, camera)
        uvs.append(a.uv)
        zs.append(a.z)
    if align.new_view_anchors in ("cache", "both"):
        stride = max(4, max(warped_depth.shape) // 64)
        u, z = cache_samples(warped_depth, warped_mask, stride)
        uvs.append(u)
        zs.append(z)
    try:
        d, st = align_to_anchors(pred.values, pred.mask, pred.alignment_space, np.concatenate(uvs), np.concatenate(zs), align, name)
        return d, st.to_json()
    except AlignmentError as e:
        if align.fallback != "warped":
            raise
        log.warning("%s; keeping its warped depth (--align-fallback warped)", e)
        d = np.where(warped_mask, warped_depth, 0.0).astype(np.float32)
        n = sum(len(z) for z in zs)
        return d, AlignStats(name, "warped", n, 0, float("nan"), float("nan"), float("nan"), pred.alignment_space, f"fallback: {e}").to_json()
