"""Depth alignment recovers a known scale and shift despite outliers, in depth and in disparity space."""

from __future__ import annotations

import numpy as np
import pytest

from see3d.errors import See3DError
from see3d.geometry.align import align_depth, align_depth_to_points, fit_scale_shift, sample_bilinear
from see3d.io.cameras import Cameras, look_at


def _scene_depth(h=60, w=80, seed=0):
    rng = np.random.default_rng(seed)
    v, u = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    return (2.0 + 3.0 * v + 0.5 * np.sin(6 * u) + 0.05 * rng.random((h, w))).astype(np.float64)


def _corrupt(x, frac, rng):
    """Replace a fraction of entries with gross outliers (wrong by factors 0.3-3)."""
    x = x.copy()
    bad = rng.random(x.shape) < frac
    x[bad] *= rng.uniform(0.3, 3.0, bad.sum())
    return x, bad


@pytest.mark.parametrize("outliers", [0.0, 0.3])
def test_recovers_scale_and_shift_in_depth_space(outliers):
    rng = np.random.default_rng(1)
    true = _scene_depth()
    s, b = 2.5, 0.7  # true = s * pred + b
    pred = (true - b) / s * (1 + 0.01 * rng.standard_normal(true.shape))  # 1% noise
    target, bad = _corrupt(true, outliers, rng)
    a = align_depth(pred, target, space="depth")
    assert a.scale == pytest.approx(s, rel=0.01)
    assert a.shift == pytest.approx(b, rel=0.01)
    assert a.inlier_ratio == pytest.approx(1 - outliers, abs=0.05)
    aligned = a.apply(pred)
    assert np.median(np.abs(aligned - true) / true) < 0.01


def test_recovers_scale_and_shift_in_disparity_space():
    """Relative-disparity outputs (MiDaS / Depth Anything) are affine in 1/z, not in z."""
    rng = np.random.default_rng(2)
    true = _scene_depth()
    s, b = 0.8, 0.05  # 1/true = s * pred + b
    pred = (1.0 / true - b) / s * (1 + 0.01 * rng.standard_normal(true.shape))
    target, _ = _corrupt(true, 0.3, rng)
    mask = rng.random(true.shape) > 0.5  # only half the view overlaps known geometry
    a = align_depth(pred, target, mask=mask, space="disparity")
    assert a.space == "disparity"
    assert a.scale == pytest.approx(s, rel=0.01)
    assert a.shift == pytest.approx(b, rel=0.01)
    assert np.median(np.abs(a.apply(pred) - true) / true) < 0.01
    # the same data fitted in the wrong space is visibly worse
    wrong = align_depth(pred, target, mask=mask, space="depth")
    assert np.median(np.abs(wrong.apply(pred) - true) / true) > 3 * np.median(np.abs(a.apply(pred) - true) / true)


def test_align_to_sparse_points():
    h, w = 48, 64
    cam = Cameras.from_fov(look_at([0.2, -0.1, 0.0], [0.0, 0.0, 4.0])[None], 60, w, h)
    true = _scene_depth(h, w, seed=3)
    pred = (true - 0.4) / 1.7
    rng = np.random.default_rng(4)
    # sparse "SfM" points on the true surface at random pixels, 20% of them wrong
    ij = np.stack([rng.integers(0, h, 300), rng.integers(0, w, 300)], -1)
    z = true[ij[:, 0], ij[:, 1]].copy()
    z[:60] *= rng.uniform(0.3, 3.0, 60)
    uv = np.stack([ij[:, 1] + 0.5, ij[:, 0] + 0.5], -1)
    pc = np.concatenate([(uv - cam.K[0, :2, 2]) / cam.K[0, [0, 1], [0, 1]], np.ones((300, 1))], -1) * z[:, None]
    pts = pc @ cam.c2w[0, :3, :3].T + cam.c2w[0, :3, 3]
    a = align_depth_to_points(pred, cam, pts, space="depth")
    assert a.scale == pytest.approx(1.7, rel=0.01) and a.shift == pytest.approx(0.4, rel=0.01)
    assert a.n_samples == 300


def test_sample_bilinear_uses_pixel_centres():
    img = np.arange(12, dtype=np.float64).reshape(3, 4)
    uv = np.array([[0.5, 0.5], [1.0, 0.5], [3.5, 2.5], [0.1, 0.1], [2.5, 1.5], [-0.1, 1.0], [4.0, 3.0]])
    out = sample_bilinear(img, uv)
    assert out[0] == 0 and out[1] == 0.5 and out[2] == 11 and out[3] == 0 and out[4] == 6
    assert np.isnan(out[5]) and out[6] == 11  # outside -> NaN; the image's far corner clamps to the last pixel


def test_too_little_overlap_is_a_clear_error():
    with pytest.raises(See3DError, match="overlap"):
        align_depth(np.ones((8, 8)), np.zeros((8, 8)))
    with pytest.raises(See3DError, match="constant"):
        fit_scale_shift(np.zeros(50), np.ones(50))
