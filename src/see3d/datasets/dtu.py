"""DTU scans in the IDR / NeuS / MonoSDF layout (``cameras.npz`` with ``world_mat_i`` / ``scale_mat_i``).

Layout (one scan)::

    scanNN/cameras.npz            world_mat_i (3x4 or 4x4, P = K [R | t]) and optional scale_mat_i (4x4)
           (or cameras_sphere.npz)
    scanNN/image/000000.png ...   or images/*, or MonoSDF's 000000_rgb.png in the scan folder
    scanNN/mask/000.png ...       optional object masks (white = object), or *_mask.png

Camera ``i`` belongs to the i-th image in file-name order. MonoSDF's preprocessed DTU scans (``*_rgb.png``,
384x384) keep the projection matrices of the 1600x1200 originals; MonoSDF's loader crops the centre
1200x1200 and resizes in code, and so does this reader (:func:`monosdf_intrinsics`) when the images are
square ``*_rgb.png`` and the intrinsics' principal point lies outside them. Intrinsics are then checked
against the image size (:meth:`see3d.io.cameras.Cameras.check`). The projection is ``P = world_mat @ scale_mat``
(``scale_mat`` maps the normalised unit-sphere frame to the world, as in IDR), decomposed with
``cv2.decomposeProjectionMatrix`` into ``K`` (divided by ``K[2, 2]``), the world-to-camera rotation and
the camera centre; poses are therefore in the normalised frame (``use_scale_mat=False`` keeps world units).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from see3d.datasets.scene import Scene, downscaled_size, load_images, load_masks
from see3d.errors import InputError
from see3d.io.cameras import Cameras
from see3d.io.images import list_images
from see3d.io.views import Views

CAMERA_FILES = ("cameras.npz", "cameras_sphere.npz")
DTU_ORIGINAL_SIZE = (1600, 1200)  # width, height of the DTU photos the projection matrices belong to


def is_dtu(folder: Path) -> bool:
    return any((folder / n).is_file() for n in CAMERA_FILES)


def decompose_projection(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``P (3, 4)`` -> ``(K (3, 3) with K[2,2] = 1, c2w (4, 4) OpenCV)``."""
    import cv2

    K, R, c = cv2.decomposeProjectionMatrix(np.asarray(P, dtype=np.float64))[:3]
    K = K / K[2, 2]
    c2w = np.eye(4)
    c2w[:3, :3] = R.T
    c2w[:3, 3] = (c[:3] / c[3]).ravel()
    return K, c2w


def monosdf_intrinsics(K: np.ndarray, size: int, original: tuple[int, int] = DTU_ORIGINAL_SIZE) -> np.ndarray:
    """Intrinsics ``K (N, 3, 3)`` of the ``original`` (width, height) photos -> those of MonoSDF's square
    ``size x size`` images: centre crop to ``min(width, height)`` squared, then resize."""
    w0, h0 = original
    side = min(w0, h0)
    K = np.array(K, dtype=np.float64)
    K[:, 0, 2] -= (w0 - side) / 2.0
    K[:, 1, 2] -= (h0 - side) / 2.0
    K[:, :2, :] *= size / side
    return K


def _image_files(folder: Path) -> tuple[list[Path], list[Path] | None]:
    for sub in ("image", "images", "rgb"):
        if (folder / sub).is_dir():
            imgs = list_images(folder / sub)
            masks = list_images(folder / "mask") if (folder / "mask").is_dir() else None
            return imgs, masks
    imgs = [p for p in list_images(folder) if re.search(r"_rgb$", p.stem)]
    masks = [p for p in list_images(folder) if re.search(r"_mask$", p.stem)] or None
    return imgs, masks


def read_dtu(folder: str | Path, factor: float = 1.0, use_scale_mat: bool = True) -> Scene:
    """Read one DTU scan (see the module docstring). ``factor`` divides the image size (area resampling)."""
    folder = Path(folder)
    cam_file = next((folder / n for n in CAMERA_FILES if (folder / n).is_file()), None)
    if cam_file is None:
        raise InputError(folder, f"no {' or '.join(CAMERA_FILES)} (not a DTU/IDR scan folder)")
    try:
        cams = dict(np.load(cam_file, allow_pickle=False))
    except (ValueError, OSError) as e:
        raise InputError(cam_file, f"not a readable .npz file ({e})") from e
    ids = sorted(int(m.group(1)) for k in cams if (m := re.fullmatch(r"world_mat_(\d+)", k)))
    if not ids:
        raise InputError(cam_file, "has no world_mat_<i> entries")
    if ids != list(range(len(ids))):
        raise InputError(cam_file, f"world_mat indices are not 0..{len(ids) - 1} (got {ids[:5]}...)")
    images, mask_files = _image_files(folder)
    if not images:
        raise InputError(folder, "no images found (expected image/, images/ or *_rgb.png)")
    if len(images) != len(ids):
        raise InputError(cam_file, f"has {len(ids)} cameras but {images[0].parent} holds {len(images)} images")
    Ks, c2ws = [], []
    for i in ids:
        wm = np.asarray(cams[f"world_mat_{i}"], dtype=np.float64)
        if wm.shape not in ((3, 4), (4, 4)):
            raise InputError(cam_file, f"world_mat_{i} has shape {wm.shape}, expected 3x4 or 4x4")
        if wm.shape == (3, 4):
            wm = np.vstack([wm, [0, 0, 0, 1]])
        sm = np.asarray(cams.get(f"scale_mat_{i}", np.eye(4)), dtype=np.float64) if use_scale_mat else np.eye(4)
        if sm.shape != (4, 4):
            raise InputError(cam_file, f"scale_mat_{i} has shape {sm.shape}, expected 4x4")
        if not np.isfinite(wm).all() or abs(np.linalg.det(wm[:3, :3])) < 1e-12:
            raise InputError(cam_file, f"world_mat_{i} is not a valid projection matrix")
        K, c2w = decompose_projection((wm @ sm)[:3, :4])
        Ks.append(K)
        c2ws.append(c2w)
    from PIL import Image

    with Image.open(images[0]) as im:
        w0, h0 = im.size
    Ks = np.stack(Ks)
    monosdf = images[0].stem.endswith("_rgb") and w0 == h0 and (Ks[:, 0, 2] > w0).any()
    if monosdf:
        Ks = monosdf_intrinsics(Ks, w0)
    size = downscaled_size(w0, h0, factor)
    imgs = load_images(images, size=size)
    cameras = Cameras(Ks, np.stack(c2ws), w0, h0).check(cam_file).resized(*size)
    masks = None
    if mask_files is not None:
        if len(mask_files) != len(images):
            raise InputError(mask_files[0].parent, f"has {len(mask_files)} masks for {len(images)} images")
        masks = load_masks(mask_files, size)
    views = Views(imgs, cameras, masks=masks, names=[p.stem for p in images])
    return Scene(folder.name, "dtu", folder, views, masked_metrics=masks is not None)
