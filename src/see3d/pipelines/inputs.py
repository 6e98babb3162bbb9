"""Turning user images and masks (PIL, numpy or torch) into the pipeline's tensors.

Images become ``(N, 3, H, W)`` float32 in [0, 1]; masks become ``(N, 1, H, W)`` float32 in {0, 1} with
1 = valid (known) pixel. Resizing follows the official preprocessing: bicubic for images and masks, then masks
are thresholded at > 0.9 (so soft edges count as holes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from see3d.errors import InputError

MASK_THRESHOLD = 0.9

ImageInput = torch.Tensor | np.ndarray | PIL.Image.Image | Sequence[PIL.Image.Image] | Sequence[np.ndarray] | Sequence[torch.Tensor]


def _stack(items, name: str) -> torch.Tensor:
    """Any accepted input -> float (N, C, H, W) tensor with values as given (PIL/uint8 scaled to [0, 1])."""
    if isinstance(items, (PIL.Image.Image, np.ndarray, torch.Tensor)) and not (
        isinstance(items, (np.ndarray, torch.Tensor)) and items.ndim == 4
    ):
        items = [items]
    if isinstance(items, np.ndarray):  # (N, H, W, C)
        items = list(items)
    if isinstance(items, torch.Tensor):
        return items.detach().float().cpu()
    if len(items) == 0:
        raise InputError(None, f"{name}: no images given")
    out = []
    for i, it in enumerate(items):
        if isinstance(it, PIL.Image.Image):
            arr = np.asarray(it if it.mode in ("L", "RGB") else it.convert("RGB"), dtype=np.float32) / 255.0
            t = torch.from_numpy(arr)
            t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
        elif isinstance(it, np.ndarray):
            arr = it.astype(np.float32) / (255.0 if it.dtype == np.uint8 else 1.0)
            t = torch.from_numpy(arr)
            t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
        elif isinstance(it, torch.Tensor):
            t = it.detach().float().cpu()
            t = t[None] if t.ndim == 2 else t
        else:
            raise InputError(None, f"{name}[{i}]: unsupported type {type(it).__name__} (use PIL images, arrays or tensors)")
        out.append(t)
    shapes = {tuple(t.shape) for t in out}
    if len(shapes) > 1:
        raise InputError(None, f"{name}: images have different sizes {sorted(shapes)}; pass them at one size")
    return torch.stack(out)


def _resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if x.shape[-2:] == (height, width):
        return x
    return F.interpolate(x, size=(height, width), mode="bicubic", antialias=True, align_corners=False)


def _pil_resized(items, height: int, width: int, mode: str):
    """PIL images are resized with PIL's bicubic filter (official); other inputs pass through."""
    if isinstance(items, PIL.Image.Image):
        items = [items]
    if isinstance(items, (list, tuple)) and items and all(isinstance(i, PIL.Image.Image) for i in items):
        return [i.convert(mode).resize((width, height), PIL.Image.BICUBIC) for i in items]
    return items


def to_image_batch(images: ImageInput, height: int, width: int, name: str = "images") -> torch.Tensor:
    """Images -> (N, 3, height, width) float32 in [0, 1]. Tensors are (N, 3, H, W) or (3, H, W) in [0, 1];
    arrays (N, H, W, 3) / (H, W, 3) uint8 or float in [0, 1]; PIL images any mode."""
    x = _stack(_pil_resized(images, height, width, "RGB"), name)
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(None, f"{name}: expected (N, 3, H, W) images, got shape {tuple(x.shape)}")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(None, f"{name}: values must be in [0, 1], found [{lo:.3f}, {hi:.3f}]")
    return _resize(x, height, width).clamp(0, 1)


def to_mask_batch(masks: ImageInput, height: int, width: int, name: str = "target_masks") -> torch.Tensor:
    """Masks (1 / white = valid) -> (N, 1, height, width) float32 in {0, 1}, thresholded at > 0.9 after resizing.
    Tensors are (N, 1, H, W), (N, H, W) or (H, W), bool or float in [0, 1]; arrays (N, H, W), (H, W) or
    (N, H, W, 1), bool, uint8 or float; PIL images any mode."""
    if isinstance(masks, np.ndarray):  # (H, W), (N, H, W) or (N, H, W, 1); bool, uint8 or float
        m = torch.from_numpy(masks.astype(np.float32) / (255.0 if masks.dtype == np.uint8 else 1.0))
        masks = m[None, None] if m.ndim == 2 else m[:, None] if m.ndim == 3 else m.permute(0, 3, 1, 2) if m.ndim == 4 else m
    if isinstance(masks, torch.Tensor) and masks.ndim == 3 and masks.shape[0] != 1:
        masks = masks[:, None]
    x = _stack(_pil_resized(masks, height, width, "L"), name)
    if x.ndim != 4 or x.shape[1] != 1:
        raise InputError(None, f"{name}: expected (N, 1, H, W) masks, got shape {tuple(x.shape)}")
    return (_resize(x, height, width) > MASK_THRESHOLD).float()


def to_output(images: torch.Tensor, output_type: str):
    """(N, 3, H, W) [0, 1] -> "pt" tensor, "np" (N, H, W, 3) float32 array, or "pil" list."""
    images = images.float().clamp(0, 1).cpu()
    if output_type == "pt":
        return images
    arr = images.permute(0, 2, 3, 1).numpy()
    if output_type == "np":
        return arr
    if output_type == "pil":
        return [PIL.Image.fromarray((a * 255).round().astype(np.uint8)) for a in arr]
    raise InputError(None, f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
