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


def _setting(size, key: str) -> int | None:
    """``size[key]`` of an image processor's size setting (a dict, or transformers' ``SizeDict``), None when unset."""
    v = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return None if v is None else int(v)


def clip_pixel_values(reference: torch.Tensor, processor) -> torch.Tensor:
    """The CLIP image encoder's input for one reference view, computed as the official pipeline computes it.

    Official path (transformers 4.x ``CLIPImageProcessor`` on a float tensor with ``do_rescale=False``): the view,
    loaded as uint8 and mapped to [-1, 1] then back to [0, 1], is turned into uint8 by ``x * 255`` *truncated*,
    resized with PIL bicubic so its short side is ``size`` (long side ``int(size * long / short)``), centre-cropped
    (offsets rounded down), scaled by 1/255 and normalised with the processor's mean/std. Current transformers
    resize float tensors with torchvision instead (up to 0.05 apart in normalised units), so the steps are done
    here, with PIL, reading only the processor's settings.

    Args:
        reference: (3, H, W) float in [0, 1] (a uint8 image / 255).
        processor: a CLIP image processor (``size``, ``crop_size``, ``image_mean``, ``image_std``, ``resample``).
    Returns:
        (1, 3, S, S) float32 pixel values.
    """
    u8 = torch.round(reference.detach().float().cpu().clamp(0, 1) * 255)
    x = ((u8 / 127.5 - 1) + 1) / 2  # the official [-1, 1] round trip, float32
    arr = (x.permute(1, 2, 0).numpy().astype(np.float64) * 255).astype(np.float32).astype(np.uint8)  # transformers' to_pil_image
    img = PIL.Image.fromarray(arr)
    resample = PIL.Image.Resampling(int(getattr(processor, "resample", None) or PIL.Image.Resampling.BICUBIC))
    if getattr(processor, "do_resize", True):
        short = _setting(processor.size, "shortest_edge")
        w, h = img.size
        if short is not None:
            new = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
        else:
            new = (_setting(processor.size, "width"), _setting(processor.size, "height"))
        img = img.resize(new, resample=resample)
    out = np.asarray(img, dtype=np.uint8)
    if getattr(processor, "do_center_crop", True):
        ch, cw = _setting(processor.crop_size, "height"), _setting(processor.crop_size, "width")
        h, w = out.shape[:2]
        top, left = (h - ch) // 2, (w - cw) // 2
        if top < 0 or left < 0:
            raise InputError(None, f"CLIP preprocessing: {w}x{h} is smaller than the {cw}x{ch} crop")
        out = out[top : top + ch, left : left + cw]
    pix = (out.astype(np.float64) * (1 / 255)).astype(np.float32)
    if getattr(processor, "do_normalize", True):
        mean = np.asarray(processor.image_mean, dtype=np.float32)
        std = np.asarray(processor.image_std, dtype=np.float32)
        pix = (pix - mean) / std
    return torch.from_numpy(np.ascontiguousarray(pix.transpose(2, 0, 1)))[None].float()
