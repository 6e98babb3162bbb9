"""`Scene`: one evaluation scene as the dataset readers return it, plus shared image-loading helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from see3d.datasets.splits import Split
from see3d.errors import InputError
from see3d.io.images import load_image, load_mask
from see3d.io.views import Views


@dataclass
class Scene:
    """Posed images of one scene, in the dataset's order (file-name order for image folders).

    Attributes:
        name: scene name (the folder name).
        format: the reader that made it (``llff``, ``dtu``, ``colmap``, ``transforms``).
        path: the scene folder.
        views: all views; ``views.masks`` holds object masks where the dataset has them (DTU).
        split: a split the dataset itself defines (``transforms_train/test.json``, a split file), or None.
        bounds: optional (N, 2) near/far depth per view, world units (LLFF).
        points: optional (P, 3) sparse world points (COLMAP), ``point_colors`` (P, 3) in [0, 1].
        masked_metrics: True when the benchmark scores only inside ``views.masks`` (DTU).
    """

    name: str
    format: str
    path: Path
    views: Views
    split: Split | None = None
    bounds: np.ndarray | None = None
    points: np.ndarray | None = None
    point_colors: np.ndarray | None = None
    masked_metrics: bool = False

    def __len__(self) -> int:
        return len(self.views)


def downscaled_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """Image size after dividing by ``factor`` (rounded, at least 1 px)."""
    return max(1, round(width / factor)), max(1, round(height / factor))


def load_images(paths: list[Path], size: tuple[int, int] | None = None) -> np.ndarray:
    """Read images as ``(N, H, W, 3)`` float32, optionally area-resized to ``size=(width, height)``.

    All images must share one size (the evaluation cameras assume it).
    """
    import cv2

    out = []
    for p in paths:
        img = load_image(p)
        if out and img.shape != out[0].shape and size is None:
            raise InputError(p, f"image is {img.shape[1]}x{img.shape[0]} but {paths[0].name} is {out[0].shape[1]}x{out[0].shape[0]}")
        if size is not None and (img.shape[1], img.shape[0]) != tuple(size):
            img = cv2.resize(img, tuple(size), interpolation=cv2.INTER_AREA)
        out.append(img)
    if not out:
        raise InputError(None, "no images to load")
    return np.stack(out).astype(np.float32)


def load_masks(paths: list[Path], size: tuple[int, int]) -> np.ndarray:
    """Read masks as ``(N, H, W)`` bool (white = valid), resized to ``size=(width, height)`` if needed."""
    return np.stack([load_mask(p, size=tuple(size)) for p in paths])


def pick_image_dir(folder: Path, factor: int | None, natural: bool = True) -> tuple[list[Path], tuple[int, int] | None]:
    """Image files of a scene at 1/``factor`` resolution, and the size to resize them to (None = as stored).

    Uses ``images_<factor>/`` when present; otherwise ``images/`` with a resize by ``factor``. With
    ``factor`` None or 1: ``images/``, or the only ``images_<n>/`` folder. ``natural=False`` sorts names
    lexicographically (LLFF's order) instead of naturally.
    """
    from see3d.io.images import IMAGE_EXTENSIONS, natural_key

    def listing(d: Path) -> list[Path]:
        files = [p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
        if not files:
            raise InputError(d, "holds no images")
        return sorted(files, key=natural_key if natural else (lambda p: p.name))

    full = folder / "images"
    scaled = sorted(p for p in folder.glob("images_*") if p.is_dir())
    if factor not in (None, 1):
        d = folder / f"images_{factor}"
        if d.is_dir():
            return listing(d), None
        if full.is_dir():
            files = listing(full)
            from PIL import Image

            with Image.open(files[0]) as im:
                return files, downscaled_size(im.width, im.height, factor)
        raise InputError(folder, f"no images_{factor}/ or images/ folder (found: {', '.join(p.name for p in scaled) or 'none'})")
    if full.is_dir():
        return listing(full), None
    if len(scaled) == 1:
        return listing(scaled[0]), None
    raise InputError(folder, f"no images/ folder (found: {', '.join(p.name for p in scaled) or 'none'}); pick one with a factor")
