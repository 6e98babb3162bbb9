"""3D editing: the user edits ONE view of a generated (or captured) scene; the edit propagates to the
other views through the multi-view diffusion model (paper §4.4: no text, a single edited image drives it).

For every other view j: the edited view is forward-warped into j with its depth. Inside the *affected
region* (where the edit mask lands in view j, with the old or the new geometry) pixels take the warped
edited colours where the warp covers them and become holes where it does not; outside it, view j keeps
its own pixels. The See3D model then fills the holes with the edited view as its clean reference.

Conventions: OpenCV c2w; depth = z in scene units; images float32 (H, W, 3) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from see3d.config import check_fields
from see3d.depth.base import DepthBackend
from see3d.errors import InputError
from see3d.geometry.warp import warp_to_cameras
from see3d.io.views import Views
from see3d.pipelines.generation import HoleFiller
from see3d.pipelines.view_depth import aligned_depth, predict


def edit_mask_from_difference(original: np.ndarray, edited: np.ndarray, threshold: float = 0.06, dilate_px: int = 3) -> np.ndarray:
    """(H, W) bool: pixels the edit changed (max channel difference > ``threshold``), dilated a little."""
    m = (np.abs(edited - original).max(-1) > threshold).astype(np.uint8)
    if dilate_px > 0:
        m = cv2.dilate(m, np.ones((2 * dilate_px + 1,) * 2, np.uint8))
    return m.astype(bool)


@dataclass
class EditConfig:
    """Diffusion settings of ``see3d edit`` (used with See3D weights)."""

    steps: int = field(default=50, metadata={"min": 1, "help": "diffusion steps"})
    guidance: float = field(default=2.0, metadata={"help": "guidance scale"})
    seed: int = field(default=0, metadata={"help": "random seed"})

    def __post_init__(self) -> None:
        check_fields(self)


def propagate_edit(
    views: Views,
    view_index: int,
    edited: np.ndarray,
    filler: HoleFiller,
    mask: np.ndarray | None = None,
    depth_backend: DepthBackend | None = None,
    dilate_px: int = 2,
) -> tuple[Views, np.ndarray, np.ndarray]:
    """Propagate an edit of view ``view_index`` to every view.

    Args:
        views: the scene (images, cameras and ``depth`` required).
        edited: (H, W, 3) the edited image of that view (same size as the views).
        mask: (H, W) bool region the user edited; default: where ``edited`` differs from the original.
        depth_backend: re-estimates depth of the edited view inside the mask (aligned to the old depth
            outside it); without one the edit is treated as a change of appearance on the same geometry.

    Returns:
        ``(new_views, conditions (N-1, H, W, 3), condition_masks (N-1, H, W))`` for the other views.
    """
    if views.depth is None:
        raise InputError(None, "editing needs the scene's depth (a `see3d generate` output folder has it)")
    n = len(views)
    if not 0 <= view_index < n:
        raise InputError(None, f"view index {view_index} out of range (scene has {n} views)")
    H, W = views.images.shape[1:3]
    edited = np.asarray(edited, dtype=np.float32)
    if edited.shape != (H, W, 3):
        raise InputError(None, f"edited image is {edited.shape[1]}x{edited.shape[0]}, the view is {W}x{H}")
    orig = views.images[view_index]
    mask = edit_mask_from_difference(orig, edited) if mask is None else np.asarray(mask, dtype=bool)
    if not mask.any():
        raise InputError(None, "the edited image does not differ from the original view (no edit found)")
    old_depth = views.depth[view_index]
    new_depth = old_depth
    if depth_backend is not None:
        pred = predict(depth_backend, edited, views.names[view_index], views.cameras[view_index])
        d = aligned_depth(pred, old_depth, ~mask & (old_depth > 0), fallback=old_depth)
        new_depth = np.where(mask & (d > 0), d, old_depth).astype(np.float32)
    others = [j for j in range(n) if j != view_index]
    cams = views.cameras[others]
    src = views.cameras[view_index]
    grow = np.ones((2 * dilate_px + 1,) * 2, np.uint8)
    # where the edited region lands in the other views, with the old and with the new geometry
    region_old, _, _ = warp_to_cameras(mask[..., None].astype(np.float32), old_depth, src, cams)
    region_new, ok_new, _ = warp_to_cameras(mask[..., None].astype(np.float32), new_depth, src, cams)
    warped, ok, _ = warp_to_cameras(edited, new_depth, src, cams)
    conds, cmasks, untouched = [], [], []
    for k, j in enumerate(others):
        affected = (region_old[k, ..., 0] > 0.5) | ((region_new[k, ..., 0] > 0.5) & ok_new[k])
        affected = cv2.dilate(affected.astype(np.uint8), grow).astype(bool)
        take = affected & ok[k] & (region_new[k, ..., 0] > 0.5)
        cond = views.images[j].copy()
        cond[take] = warped[k][take]
        valid = ~affected | take
        cond[~valid] = 0.0
        conds.append(cond)
        cmasks.append(valid)
        untouched.append(~affected)
    conds_a, cmasks_a = np.stack(conds), np.stack(cmasks)
    filled = np.asarray(filler(edited[None], conds_a, cmasks_a), dtype=np.float32)
    # pixels outside the affected region keep their original values exactly
    filled = np.where(np.stack(untouched)[..., None], conds_a, filled)
    images = views.images.copy()
    images[view_index] = edited
    images[others] = filled
    depth = views.depth.copy()
    depth[view_index] = new_depth
    return Views(images, views.cameras, depth, views.depth_is_metric, views.masks, list(views.names)), conds_a, cmasks_a
