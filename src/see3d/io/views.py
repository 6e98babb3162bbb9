"""`Views`: images + cameras (+ optional depth and masks), and their folder layout on disk.

Folder layout (what ``see3d generate`` writes and ``see3d reconstruct`` / ``see3d eval`` read)::

    images/<name>.png      RGB
    depth/<name>.npy       float32 (H, W); metric metres unless transforms.json says otherwise
    masks/<name>.png       white = valid
    transforms.json        cameras (nerfstudio convention on disk, OpenCV in memory)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from see3d.errors import InputError
from see3d.io.cameras import Cameras
from see3d.io.images import load_depth, load_image, load_mask, save_depth, save_image
from see3d.io.transforms_json import frame_path, read_transforms_json, write_transforms_json


@dataclass
class Views:
    """N posed images.

    Attributes:
        images: (N, H, W, 3) float32 in [0, 1].
        cameras: the N cameras (OpenCV c2w), image size W x H.
        depth: optional (N, H, W) float32 depth along the optical axis.
        depth_is_metric: False when ``depth`` is relative (known only up to scale/shift).
        masks: optional (N, H, W) bool, True = valid pixel.
        names: N file stems.
    """

    images: np.ndarray
    cameras: Cameras
    depth: np.ndarray | None = None
    depth_is_metric: bool = True
    masks: np.ndarray | None = None
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.float32)
        n = len(self.images)
        if self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"Views: images must be (N,H,W,3), got {self.images.shape}")
        if len(self.cameras) != n:
            raise ValueError(f"Views: {n} images but {len(self.cameras)} cameras")
        h, w = self.images.shape[1:3]
        if (self.cameras.width, self.cameras.height) != (w, h):
            raise ValueError(f"Views: images are {w}x{h} but cameras are {self.cameras.width}x{self.cameras.height}")
        if self.depth is not None and self.depth.shape != (n, h, w):
            raise ValueError(f"Views: depth shape {self.depth.shape} != {(n, h, w)}")
        if self.masks is not None and self.masks.shape != (n, h, w):
            raise ValueError(f"Views: masks shape {self.masks.shape} != {(n, h, w)}")
        if not self.names:
            self.names = [f"{i:05d}" for i in range(n)]
        if len(self.names) != n:
            raise ValueError(f"Views: {len(self.names)} names for {n} images")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx) -> Views:
        idx = np.atleast_1d(np.arange(len(self))[idx])
        return Views(
            self.images[idx],
            self.cameras[idx],
            None if self.depth is None else self.depth[idx],
            self.depth_is_metric,
            None if self.masks is None else self.masks[idx],
            [self.names[i] for i in idx],
        )

    # ------------------------------------------------------------------ disk
    def save(self, folder: str | Path, image_ext: str = ".png") -> Path:
        """Write the folder layout above (each file atomically); returns the folder."""
        folder = Path(folder)
        frames = []
        for i, name in enumerate(self.names):
            entry = {"file_path": f"images/{name}{image_ext}"}
            save_image(folder / entry["file_path"], self.images[i])
            if self.depth is not None:
                entry["depth_file_path"] = f"depth/{name}.npy"
                save_depth(folder / entry["depth_file_path"], self.depth[i])
            if self.masks is not None:
                entry["mask_path"] = f"masks/{name}.png"
                save_image(folder / entry["mask_path"], self.masks[i])
            frames.append(entry)
        extra = {"depth_is_metric": bool(self.depth_is_metric)} if self.depth is not None else None
        write_transforms_json(folder / "transforms.json", self.cameras, frames, extra)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Views:
        """Read a folder written by :meth:`save` (or any nerfstudio-style transforms.json folder).

        Images of a size other than the cameras' are an error (resize the cameras with
        :meth:`Cameras.resized` explicitly instead).
        """
        folder = Path(folder)
        tj = folder / "transforms.json" if folder.is_dir() else folder
        folder = tj.parent
        cams, frames = read_transforms_json(tj)
        images, depths, masks, names = [], [], [], []
        for i, f in enumerate(frames):
            if "file_path" not in f:
                raise InputError(tj, f"frame {i} has no file_path")
            p = frame_path(folder, f["file_path"], tj)
            img = load_image(p)
            if img.shape[:2] != (cams.height, cams.width):
                raise InputError(p, f"image is {img.shape[1]}x{img.shape[0]} but transforms.json says {cams.width}x{cams.height}")
            images.append(img)
            names.append(Path(f["file_path"]).stem)
            if "depth_file_path" in f:
                depths.append(load_depth(frame_path(folder, f["depth_file_path"], tj)))
            if "mask_path" in f:
                masks.append(load_mask(frame_path(folder, f["mask_path"], tj)))
        depth = np.stack(depths) if depths and len(depths) == len(images) else None
        mask = np.stack(masks) if masks and len(masks) == len(images) else None
        import json

        meta = json.loads(tj.read_text())
        return cls(np.stack(images), cams, depth, bool(meta.get("depth_is_metric", True)), mask, names)

