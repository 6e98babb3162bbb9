"""The low-pass on a kept-pixel fill (see3d.pipelines.fill_smoothing)."""

import cv2
import numpy as np
import pytest
import torch

from see3d.pipelines.fill_smoothing import smooth_fill


def _views(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 3, 32, 32, generator=g)
    targets = torch.rand(2, 3, 32, 32, generator=g)
    masks = torch.ones(2, 1, 32, 32)
    masks[:, :, 8:20, 10:26] = 0
    masks[1, :, :, :4] = 0  # a hole at the image border too
    return images, targets, masks


def test_valid_pixels_stay_exact_and_holes_get_the_blurred_composite():
    images, targets, masks = _views()
    out = smooth_fill(images, targets, masks, 1.0)
    valid = masks.expand_as(out) > 0.5
    assert torch.equal(out[valid], targets[valid])
    composite = torch.where(valid, targets, images).permute(0, 2, 3, 1).numpy()
    # an independent reference: OpenCV's Gaussian blur (reflect-101 borders, as torchvision pads)
    ref = np.stack([cv2.GaussianBlur(c, (7, 7), 1.0) for c in composite])
    got = out.permute(0, 2, 3, 1).numpy()
    holes = ~valid.permute(0, 2, 3, 1).numpy()
    assert np.abs(got[holes] - ref[holes]).max() < 1e-5


def test_zero_sigma_only_pastes_and_bad_sigma_is_refused():
    images, targets, masks = _views(1)
    out = smooth_fill(images, targets, masks, 0.0)
    assert torch.equal(out, torch.where(masks > 0.5, targets, images))
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            smooth_fill(images, targets, masks, bad)


def test_smoothing_removes_a_block_grid_from_the_fill():
    """A smooth ramp with a 4 x 4 block pattern added in the hole (what a pixel-unshuffle latent's fill shows):
    the smoothed fill is closer to the ramp."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    truth = ((xx + yy) / 2).expand(1, 3, 32, 32).clone()
    grid = 0.1 * ((torch.arange(32) % 4 < 2)[:, None] ^ (torch.arange(32) % 4 < 2)[None]).float() - 0.05  # zero mean
    masks = torch.ones(1, 1, 32, 32)
    masks[..., 8:24, 8:24] = 0
    out = smooth_fill(truth + grid, truth, masks, 1.0)
    holes = masks.expand_as(out) < 0.5
    assert (out - truth)[holes].abs().mean() < 0.3 * grid.abs().mean()
