"""Low-pass the generated pixels of a view whose valid (warped) pixels are kept.

A fill generated in few steps by a small model carries high-frequency error: the block grid of a
pixel-unshuffle latent (each latent position decodes to its own r x r block) and grain left from the initial
noise. Blurring the composited view and taking the blurred values in the holes only removes it while the
warped pixels stay exact; the blur reaches a little across the hole edge, so the fill also continues the
valid pixels beside it. (torchvision's ``gaussian_blur`` does the filtering.)
"""

from __future__ import annotations

import math

import torch

from see3d.errors import InputError


def check_fill_smoothing(sigma: float, height: int, width: int) -> None:
    """Refuse (:class:`InputError`) a smoothing sigma that is not finite, negative, or over a tenth of the image side."""
    if not (math.isfinite(sigma) and 0 <= sigma <= 0.1 * min(height, width)):
        raise InputError(None, f"fill_smoothing is a blur sigma in pixels, 0 to a tenth of the image side (got {sigma})")


def smooth_fill(images: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor, sigma: float) -> torch.Tensor:
    """Views with the valid pixels of ``targets`` and the Gaussian-smoothed fill of ``images`` in the holes.

    Args:
        images: (T, 3, H, W) generated views in [0, 1].
        targets: (T, 3, H, W) warped views; only their valid pixels are read.
        masks: (T, 1, H, W) validity, 1 (> 0.5) = valid warped pixel.
        sigma: standard deviation of the Gaussian in pixels; 0 only pastes the valid pixels.
    Returns:
        (T, 3, H, W): ``targets`` where valid, the blurred composite in the holes.
    """
    from torchvision.transforms.functional import gaussian_blur

    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
    valid = masks > 0.5
    composite = torch.where(valid, targets.to(images.dtype), images)
    if sigma == 0:
        return composite
    size = 2 * math.ceil(3 * sigma) + 1
    blurred = gaussian_blur(composite, [size, size], [float(sigma), float(sigma)])
    return torch.where(valid, composite, blurred)
