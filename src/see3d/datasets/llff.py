"""LLFF scenes: ``poses_bounds.npy`` + ``images/`` (full size) and/or ``images_<factor>/`` (downscaled).

Camera ``i`` belongs to the i-th image in plain lexicographic file-name order (what LLFF's own
``imgs2poses`` and ``load_llff_data`` use). The stored intrinsics are for the full-size images and are
rescaled to the images actually read. The sparse-view benchmarks use ``images_8`` (504x378 for the
standard scenes).
"""

from __future__ import annotations

from pathlib import Path

from see3d.datasets.scene import Scene, load_images, pick_image_dir
from see3d.errors import InputError
from see3d.io.llff import read_poses_bounds
from see3d.io.views import Views

DEFAULT_FACTOR = 8


def is_llff(folder: Path) -> bool:
    return (folder / "poses_bounds.npy").is_file()


def read_llff(folder: str | Path, factor: int | None = DEFAULT_FACTOR) -> Scene:
    """Read an LLFF scene at 1/``factor`` resolution (``images_<factor>/``, else ``images/`` area-downscaled)."""
    folder = Path(folder)
    pb = folder / "poses_bounds.npy"
    if not pb.is_file():
        raise InputError(folder, "no poses_bounds.npy (not an LLFF scene folder)")
    cams, bounds = read_poses_bounds(pb)
    files, size = pick_image_dir(folder, factor, natural=False)
    if len(files) != len(cams):
        raise InputError(pb, f"holds {len(cams)} poses but {files[0].parent} has {len(files)} images")
    imgs = load_images(files, size=size)
    h, w = imgs.shape[1:3]
    if abs(w / h - cams.width / cams.height) > 0.02:
        raise InputError(files[0], f"image aspect {w}x{h} does not match the {cams.width}x{cams.height} stored in {pb.name}")
    views = Views(imgs, cams.resized(w, h), names=[p.stem for p in files])
    return Scene(folder.name, "llff", folder, views, bounds=bounds)
