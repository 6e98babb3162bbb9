"""COLMAP scenes (e.g. Mip-NeRF 360): ``sparse/0/`` (or ``sparse/``) + ``images/`` and/or ``images_<factor>/``.

Views are the registered images in file-name order (natural sort, as :func:`see3d.io.colmap.read_colmap`
returns them); the model's intrinsics are rescaled to the images actually read. The sparse 3D points
come along (for initialising a reconstruction). Images must be undistorted (pinhole-like models with
negligible distortion).
"""

from __future__ import annotations

from pathlib import Path

from see3d.datasets.scene import Scene, load_images, pick_image_dir
from see3d.errors import InputError
from see3d.io.colmap import read_colmap
from see3d.io.views import Views

DEFAULT_FACTOR = 4


def sparse_dir(folder: Path) -> Path | None:
    for sub in ("sparse/0", "sparse"):
        d = folder / sub
        if any((d / f"cameras{ext}").is_file() for ext in (".bin", ".txt")):
            return d
    return None


def is_colmap(folder: Path) -> bool:
    return sparse_dir(folder) is not None


def read_colmap_scene(folder: str | Path, factor: int | None = DEFAULT_FACTOR) -> Scene:
    """Read a COLMAP scene at 1/``factor`` resolution (``images_<factor>/``, else ``images/`` area-downscaled)."""
    folder = Path(folder)
    sp = sparse_dir(folder)
    if sp is None:
        raise InputError(folder, "no COLMAP model in sparse/0/ or sparse/")
    cams, names, points, colors = read_colmap(sp)
    files, size = pick_image_dir(folder, factor, natural=True)
    by_name = {p.name: p for p in files}
    by_stem = {p.stem: p for p in files}
    chosen = []
    for n in names:
        p = by_name.get(Path(n).name) or by_stem.get(Path(n).stem)
        if p is None:
            raise InputError(files[0].parent, f"has no image {n!r} registered in {sp}")
        chosen.append(p)
    imgs = load_images(chosen, size=size)
    h, w = imgs.shape[1:3]
    if abs(w / h - cams.width / cams.height) > 0.02:
        raise InputError(chosen[0], f"image aspect {w}x{h} does not match the model's {cams.width}x{cams.height}")
    views = Views(imgs, cams.resized(w, h), names=[Path(n).stem for n in names])
    return Scene(folder.name, "colmap", folder, views, points=points if len(points) else None, point_colors=colors if len(points) else None)
