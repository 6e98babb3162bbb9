"""Image files <-> float arrays ``(H, W, 3)`` in [0, 1], with clear errors and atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from see3d.errors import InputError
from see3d.io.atomic import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MAX_PIXELS = 16384 * 16384  # refuse absurd sizes before allocating


def list_images(folder: str | Path) -> list[Path]:
    """Image files in ``folder``, sorted by name (natural order for numbered names)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    return sorted(files, key=natural_key)


def natural_key(path: str | Path) -> list:
    """Sort key in which digit runs compare as integers (``frame_2`` < ``frame_10``)."""
    import re

    name = Path(path).name
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image as float32 RGB ``(H, W, 3)`` in [0, 1].

    Grayscale, palette, 16-bit and alpha images are converted to RGB (alpha is composited on black).
    ``size=(width, height)`` resizes with bicubic filtering.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "image file not found")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise InputError(path, f"image is {im.width}x{im.height}, larger than the {MAX_PIXELS} pixel limit")
            if im.mode in ("I;16", "I;16B", "I", "F"):
                arr = np.asarray(im, dtype=np.float32)
                arr = arr / max(float(arr.max()), 1.0)
                im = Image.fromarray((arr * 255).astype(np.uint8))
            has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
            im = im.convert("RGBA" if has_alpha else "RGB")
            if size is not None:
                im = im.resize(tuple(size), Image.BICUBIC)
            arr = np.asarray(im, dtype=np.float32) / 255.0
            if has_alpha:  # composite on black: colour times alpha
                arr = arr[..., :3] * arr[..., 3:4]
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(path, f"not a readable image ({e})") from e
    return arr


def load_mask(path: str | Path, size: tuple[int, int] | None = None, threshold: float = 0.5) -> np.ndarray:
    """Read a mask image as bool ``(H, W)``: True where the gray value exceeds ``threshold`` (of 1)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mask file not found")
    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if size is not None:
                im = im.resize(tuple(size), Image.NEAREST)
            return np.asarray(im, dtype=np.float32) / 255.0 > threshold
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(path, f"not a readable mask image ({e})") from e


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] (or bool) array -> uint8 with rounding and clipping."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == bool:
        return img.astype(np.uint8) * 255
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_image(path: str | Path, img: np.ndarray, quality: int = 95) -> None:
    """Write an image atomically. ``img``: (H, W, 3) or (H, W) float in [0, 1], bool, or uint8."""
    arr = to_uint8(np.asarray(img))
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=_pil_format(Path(path)), quality=quality)


def _pil_format(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}.get(ext, "PNG")


def save_depth(path: str | Path, depth: np.ndarray) -> None:
    """Write a depth map ``(H, W)`` in metres: ``.npy`` keeps float32; ``.png`` stores uint16 millimetres."""
    path = Path(path)
    depth = np.asarray(depth, dtype=np.float32)
    with atomic_path(path) as tmp:
        if path.suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, depth)
        else:
            mm = np.clip(np.nan_to_num(depth, nan=0.0) * 1000.0 + 0.5, 0, 65535).astype(np.uint16)
            Image.fromarray(mm).save(tmp, format="PNG")


def load_depth(path: str | Path) -> np.ndarray:
    """Read a depth map written by :func:`save_depth` as float32 ``(H, W)`` metres."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "depth file not found")
    try:
        if path.suffix == ".npy":
            d = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as im:
                d = np.asarray(im, dtype=np.float32) / 1000.0
    except (ValueError, OSError, UnidentifiedImageError) as e:
        raise InputError(path, f"not a readable depth map ({e})") from e
    if d.ndim != 2:
        raise InputError(path, f"depth map must be 2-D, got shape {d.shape}")
    return d.astype(np.float32)
