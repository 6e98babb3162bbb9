"""Dataset readers: LLFF, DTU (IDR cameras.npz), COLMAP, and transforms.json scenes, and their published splits.

Used by ``see3d reconstruct`` (a dataset folder as training data) and ``see3d eval``; built on :mod:`see3d.io` only.

Each reader returns a :class:`Scene` (a :class:`~see3d.io.views.Views` plus split information).
:func:`load_scene` picks the reader from the folder's files; :func:`find_scenes` accepts one scene or
a folder of scenes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from see3d.datasets.colmap import is_colmap, read_colmap_scene
from see3d.datasets.dtu import is_dtu, read_dtu
from see3d.datasets.llff import is_llff, read_llff
from see3d.datasets.scene import Scene
from see3d.datasets.transforms import is_transforms, read_transforms
from see3d.errors import InputError

Format = Literal["auto", "llff", "dtu", "colmap", "transforms"]
FORMATS = ("llff", "dtu", "colmap", "transforms")
# The resolution each benchmark is scored at (image size divided by this), used when no factor is given.
DEFAULT_FACTORS = {"llff": 8, "dtu": 4, "colmap": 4, "transforms": 1}

__all__ = ["Scene", "FORMATS", "DEFAULT_FACTORS", "detect_format", "load_scene", "find_scenes"]


def detect_format(folder: str | Path) -> str | None:
    """The format of a scene folder, or None. LLFF wins over COLMAP (LLFF scenes often ship both)."""
    folder = Path(folder)
    for name, test in (("llff", is_llff), ("dtu", is_dtu), ("transforms", is_transforms), ("colmap", is_colmap)):
        if test(folder):
            return name
    return None


def load_scene(folder: str | Path, format: Format = "auto", factor: int | None = None) -> Scene:
    """Read one scene. ``factor`` divides the image size (None: the benchmark's default, :data:`DEFAULT_FACTORS`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "scene folder not found")
    fmt = detect_format(folder) if format == "auto" else format
    if fmt is None:
        raise InputError(folder, "cannot tell the dataset format (no poses_bounds.npy, cameras.npz, transforms*.json or sparse/ model)")
    if fmt not in FORMATS:
        raise InputError(None, f"unknown dataset format {fmt!r} (choose from {', '.join(FORMATS)})")
    f = DEFAULT_FACTORS[fmt] if factor is None else factor
    if fmt == "llff":
        return read_llff(folder, f)
    if fmt == "dtu":
        return read_dtu(folder, f)
    if fmt == "colmap":
        return read_colmap_scene(folder, f)
    return read_transforms(folder, f)


def find_scenes(data: str | Path, format: Format = "auto") -> list[Path]:
    """``data`` itself when it is a scene (of ``format``), else its sub-folders that are (sorted by name)."""
    data = Path(data)
    if not data.is_dir():
        raise InputError(data, "data folder not found")
    tests = {"llff": is_llff, "dtu": is_dtu, "colmap": is_colmap, "transforms": is_transforms}
    if format != "auto" and format not in tests:
        raise InputError(None, f"unknown dataset format {format!r} (choose from {', '.join(FORMATS)})")
    is_scene = (lambda p: detect_format(p) is not None) if format == "auto" else tests[format]
    if is_scene(data):
        return [data]
    scenes = sorted(p for p in data.iterdir() if p.is_dir() and is_scene(p))
    if not scenes:
        what = "poses_bounds.npy, cameras.npz, transforms*.json or sparse/" if format == "auto" else f"{format} scene files"
        raise InputError(data, f"is neither a scene nor a folder of scenes (no {what} found)")
    return scenes
