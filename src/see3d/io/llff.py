"""LLFF ``poses_bounds.npy`` <-> :class:`Cameras` + near/far bounds.

File layout: an ``(N, 17)`` float array. Row i holds a flattened 3x5 matrix ``[R | t | hwf]`` -- the
camera-to-world rotation with columns in LLFF's (down, right, back) axis order, the camera centre, and
``(height, width, focal)`` in pixels of the *original* images -- followed by the near and far scene bounds
(depth along the optical axis). LLFF assumes square pixels and a centred principal point.

The axis conversion lives in :mod:`see3d.io.conventions` (:func:`llff_to_opencv`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from see3d.errors import InputError
from see3d.io.atomic import atomic_path
from see3d.io.cameras import Cameras
from see3d.io.conventions import llff_to_opencv, opencv_to_llff


def read_poses_bounds(path: str | Path, image_size: tuple[int, int] | None = None) -> tuple[Cameras, np.ndarray]:
    """Read ``poses_bounds.npy``.

    Args:
        image_size: optional ``(width, height)`` of the images actually used (e.g. LLFF's ``images_8``);
            the intrinsics are rescaled from the stored full-resolution ``hwf``.

    Returns:
        cameras (OpenCV c2w, principal point at the image centre), bounds (N, 2) near/far depth.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "poses_bounds.npy not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputError(path, f"not a readable .npy array ({e})") from e
    if arr.ndim != 2 or arr.shape[1] != 17 or len(arr) == 0:
        raise InputError(path, f"expected an (N, 17) array, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InputError(path, "contains NaN or inf")
    poses = arr[:, :15].reshape(-1, 3, 5)
    bounds = arr[:, 15:17].copy()
    hwf = poses[:, :, 4]
    if not np.allclose(hwf[:, :2], hwf[0, :2]):
        raise InputError(path, "images have different sizes (hwf differs between rows)")
    h, w = hwf[0, 0], hwf[0, 1]
    if h <= 0 or w <= 0 or (hwf[:, 2] <= 0).any():
        raise InputError(path, f"non-positive image size or focal in hwf ({hwf[0]})")
    if abs(h - round(h)) > 1e-6 or abs(w - round(w)) > 1e-6:
        raise InputError(path, f"image size in hwf is not integral ({w} x {h})")
    f = hwf[:, 2]
    K = np.zeros((len(arr), 3, 3))
    K[:, 0, 0] = K[:, 1, 1] = f
    K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = w / 2.0, h / 2.0, 1.0
    cams = Cameras(K, llff_to_opencv(poses[:, :, :4]), int(round(w)), int(round(h))).check(path)
    if image_size is not None:
        cams = cams.resized(*image_size)
    return cams, bounds


def write_poses_bounds(path: str | Path, cameras: Cameras, bounds: np.ndarray) -> None:
    """Write ``cameras`` and ``bounds (N, 2)`` near/far depths as ``poses_bounds.npy`` (atomically).

    The cameras must have square pixels (fx == fy) and a centred principal point, which is all LLFF can
    store; anything else raises ``ValueError`` rather than silently changing the cameras.
    """
    bounds = np.asarray(bounds, dtype=np.float64)
    if bounds.shape != (len(cameras), 2):
        raise ValueError(f"write_poses_bounds: bounds must be ({len(cameras)}, 2), got {bounds.shape}")
    K = cameras.K
    tol = 1e-9 * max(cameras.width, cameras.height)
    if not np.allclose(K[:, 0, 0], K[:, 1, 1], rtol=1e-12, atol=0):
        raise ValueError("write_poses_bounds: LLFF stores one focal length; fx != fy")
    if not (np.abs(K[:, 0, 2] - cameras.width / 2) < tol).all() or not (np.abs(K[:, 1, 2] - cameras.height / 2) < tol).all():
        raise ValueError("write_poses_bounds: LLFF assumes the principal point at the image centre")
    poses = np.empty((len(cameras), 3, 5))
    poses[:, :, :4] = opencv_to_llff(cameras.c2w)
    poses[:, 0, 4], poses[:, 1, 4], poses[:, 2, 4] = cameras.height, cameras.width, K[:, 0, 0]
    out = np.concatenate([poses.reshape(-1, 15), bounds], axis=1)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, out)


def bounds_from_points(cameras: Cameras, points: np.ndarray, lo_pct: float = 0.1, hi_pct: float = 99.9) -> np.ndarray:
    """(N, 2) near/far bounds as LLFF computes them: percentiles of the depths of ``points (P, 3)`` in front of each camera."""
    uv, z = cameras.project(points)
    out = np.zeros((len(cameras), 2))
    for i in range(len(cameras)):
        inside = (z[i] > 0) & (uv[i, :, 0] >= 0) & (uv[i, :, 0] <= cameras.width) & (uv[i, :, 1] >= 0) & (uv[i, :, 1] <= cameras.height)
        zi = z[i][inside] if inside.any() else z[i][z[i] > 0]
        if len(zi) == 0:
            raise ValueError(f"bounds_from_points: no point lies in front of camera {i}")
        out[i] = np.percentile(zi, lo_pct), np.percentile(zi, hi_pct)
    return out
