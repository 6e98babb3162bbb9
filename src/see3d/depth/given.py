"""Depth maps the user gives, one file per image (``.npy`` float metres or 16-bit ``.png`` millimetres).

Maps are matched to images by file stem (``images/0003.jpg`` <-> ``depth/0003.npy``; a view named
``images_0003`` by a dataset reader matches ``0003`` too) or by index into the sorted file list. A map of a different size than its image is resized with nearest-neighbour
interpolation (no blending across depth edges).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from see3d.depth.base import KINDS, DepthPrediction
from see3d.errors import InputError
from see3d.io.images import load_depth, natural_key
from see3d.log import get_logger

log = get_logger(__name__)
DEPTH_EXTS = (".npy", ".png")


class GivenDepth:
    """Depth from files.

    Args:
        source: a folder of depth files, or an explicit list of files (index order; a list of one file is the map
            of the single input image, whatever the names).
        kind: what the maps hold (default metric z-depth; ``relative_depth`` / ``relative_disparity`` for
            maps known only up to scale and shift).
        scale: multiplier applied on load (e.g. 0.001 for maps stored in millimetres as .npy).
    """

    def __init__(self, source: str | Path | list[str | Path], kind: str = "metric_depth", scale: float = 1.0):
        if kind not in KINDS:
            raise ValueError(f"GivenDepth: kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.scale = kind, float(scale)
        if isinstance(source, str | Path):
            folder = Path(source)
            if not folder.is_dir():
                raise InputError(folder, "depth folder not found")
            files = sorted((p for p in folder.iterdir() if p.suffix.lower() in DEPTH_EXTS), key=natural_key)
            if not files:
                raise InputError(folder, f"no depth maps ({', '.join(DEPTH_EXTS)}) in this folder")
            self.where: Path | None = folder
        else:
            files = [Path(p) for p in source]
            self.where = None
        self.files = files
        self.by_stem = {p.stem: p for p in files}
        self.name = "given"

    def path_for(self, key: str | int) -> Path:
        """The depth file for image ``key`` (file stem or name, or index)."""
        if isinstance(key, int | np.integer):
            if not 0 <= int(key) < len(self.files):
                raise InputError(self.where, f"no depth map for image index {key} ({len(self.files)} maps)")
            return self.files[int(key)]
        stem = Path(str(key)).stem
        if stem in self.by_stem:
            return self.by_stem[stem]
        if self.where is None and len(self.files) == 1:
            return self.files[0]  # one file given explicitly: the map of the (single) image, whatever its name
        # dataset readers name views by their path with "/" -> "_" (images/0003.png -> images_0003)
        tails = [s for s in self.by_stem if stem.endswith("_" + s)]
        if len(tails) == 1:
            return self.by_stem[tails[0]]
        raise InputError(self.where, f"no depth map for image {key!r} (expected {stem}.npy or {stem}.png)")

    def predict(self, image: np.ndarray, key: str | int | None = None, focal_px: float | None = None) -> DepthPrediction:
        """The map for ``key`` at the size of ``image (H, W, 3)``."""
        if key is None:
            raise ValueError("GivenDepth.predict: a key (image name or index) is required")
        path = self.path_for(key)
        d = load_depth(path) * self.scale
        H, W = np.asarray(image).shape[:2]
        if d.shape != (H, W):
            log.info("%s: depth %s resized to the image's %dx%d (nearest)", path, d.shape, W, H)
            d = cv2.resize(d, (W, H), interpolation=cv2.INTER_NEAREST)
        valid = np.isfinite(d) & (d > 0)
        if not valid.any():
            raise InputError(path, "depth map has no positive values")
        return DepthPrediction(d, self.kind, valid=valid)
