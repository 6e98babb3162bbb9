"""Image-quality metrics in torch: PSNR, SSIM (differentiable), optionally masked.

All functions take batched images ``(B, C, H, W)`` with values in ``[0, data_range]`` and return one
value per image ``(B,)``. ``mask`` is ``(B, H, W)`` (or ``(B, 1, H, W)``) bool/float, True/1 = pixel
counts. LPIPS lives in :mod:`see3d.perceptual` (it needs user-given network weights). This module sits
below ``splat``, ``train`` and ``eval``, which all use it (the 3DGS D-SSIM loss, training losses, scores).

SSIM follows Wang et al. 2004 exactly as scikit-image's ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False)`` and the Mip-NeRF/RegNeRF evaluation code compute it: an
11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, statistics only where the whole window lies
inside the image ("valid" convolution), the map averaged over pixels and then over channels.
``padding="same"`` (zero padding, as the 3DGS training loss uses) is available for losses.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

MAX_PSNR_DB = 100.0  # an exact match would be +inf; MSE is floored at 1e-10 (of data_range^2), so JSON stays finite


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"metrics: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.ndim != 4:
        raise ValueError(f"metrics: expected (B, C, H, W) images, got shape {tuple(pred.shape)}")


def _mask4(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, H, W) or (B, 1, H, W) -> float (B, 1, H, W) on ``like``'s device and dtype."""
    if mask.ndim == 3:
        mask = mask[:, None]
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != like.shape[0] or mask.shape[-2:] != like.shape[-2:]:
        raise ValueError(f"metrics: mask of shape {tuple(mask.shape)} does not fit images of shape {tuple(like.shape)}")
    return mask.to(device=like.device, dtype=like.dtype)


def mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per image ``(B,)``; with ``mask`` the mean runs over valid pixels (all channels)."""
    _check_pair(pred, target)
    err = (pred - target) ** 2
    if mask is None:
        return err.flatten(1).mean(1)
    m = _mask4(mask, pred)
    denom = (m.flatten(1).sum(1) * pred.shape[1]).clamp_min(1.0)
    return (err * m).flatten(1).sum(1) / denom


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB per image ``(B,)``: ``10 log10(data_range^2 / MSE)``, MSE over valid pixels when masked.

    Capped at :data:`MAX_PSNR_DB` for identical images.
    """
    m = mse(pred, target, mask) / (data_range**2)
    return -10.0 * torch.log10(m.clamp_min(10 ** (-MAX_PSNR_DB / 10)))


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian ``(size,)`` centred on the middle tap."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur(x: torch.Tensor, g: torch.Tensor, padding: str) -> torch.Tensor:
    """Separable depthwise Gaussian filter of ``x (B, C, H, W)``; 'valid' shrinks H and W by len(g) - 1."""
    c = x.shape[1]
    k = len(g)
    pad = 0 if padding == "valid" else k // 2
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), padding=(pad, 0), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), padding=(0, pad), groups=c)


def ssim_map(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    padding: Literal["valid", "same"] = "valid",
) -> torch.Tensor:
    """Per-pixel, per-channel SSIM ``(B, C, H', W')``; ``H' = H - window_size + 1`` for 'valid' padding.

    Differentiable with respect to both inputs.
    """
    _check_pair(pred, target)
    if padding not in ("valid", "same"):
        raise ValueError(f"ssim: padding must be 'valid' or 'same', got {padding!r}")
    if padding == "valid" and min(pred.shape[-2:]) < window_size:
        raise ValueError(f"ssim: images of {pred.shape[-1]}x{pred.shape[-2]} are smaller than the {window_size}px window")
    g = gaussian_window(window_size, sigma, dtype=pred.dtype, device=pred.device)
    c = pred.shape[1]
    # One grouped pass over [x, y, x^2, y^2, xy] (5C channels) instead of five.
    stats = _blur(torch.cat([pred, target, pred * pred, target * target, pred * target], 1), g, padding)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(c, dim=1)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return num / den


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    padding: Literal["valid", "same"] = "valid",
) -> torch.Tensor:
    """Mean SSIM per image ``(B,)`` (mean over the map, then over channels). Differentiable.

    With ``mask``, the map is averaged over pixels whose window centre is valid (the mask is cropped
    like the map for 'valid' padding). Use ``1 - ssim(...)`` as the D-SSIM loss.
    """
    smap = ssim_map(pred, target, data_range, window_size, sigma, k1, k2, padding)
    if mask is None:
        return smap.flatten(1).mean(1)
    m = _mask4(mask, pred)
    if padding == "valid":
        r = window_size // 2
        m = m[..., r : m.shape[-2] - r, r : m.shape[-1] - r]
    denom = (m.flatten(1).sum(1) * smap.shape[1]).clamp_min(1.0)
    return (smap * m).flatten(1).sum(1) / denom


def to_tensor_batch(images: np.ndarray | torch.Tensor, device=None) -> torch.Tensor:
    """``(H, W, 3)`` or ``(N, H, W, 3)`` float images (numpy or torch) -> ``(N, 3, H, W)`` float32 tensor."""
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[-1] not in (1, 3):
        raise ValueError(f"expected (N, H, W, 3) images, got shape {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2).to(device=device, dtype=torch.float32).contiguous()
