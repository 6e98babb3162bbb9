"""Keypoint anchors, LWLR and the alignment front door, against the synthetic world's true depth."""

from __future__ import annotations

import numpy as np
import pytest

from see3d.geometry.anchor_align import AlignConfig, AlignmentError, align_to_anchors
from see3d.geometry.anchors import AnchorStore, ray_depths
from see3d.geometry.lwlr import lwlr_maps
from see3d.io.cameras import Cameras, look_at
from see3d.synth import make_scene, render_full
from see3d.synth.depth_errors import as_relative, distort_depth

W, H = 256, 192


def _world(seed: int, offsets=(-0.3, 0.0, 0.3)):
    scene = make_scene(seed, kind="room")
    eye0 = scene.focus + np.array([0.0, -0.4, -2.4])
    cams = Cameras.from_fov(np.stack([look_at(eye0 + np.array([dx, 0, 0]), scene.focus) for dx in offsets]), 60.0, W, H)
    return render_full(scene, cams), cams


@pytest.fixture(scope="module")
def worlds():
    out = []
    for seed in (3, 4):
        r, cams = _world(seed)
        store = AnchorStore()
        store.add_views(r.rgb, cams)
        out.append((r, cams, store))
    return out


def _absrel(d, truth):
    v = truth > 0
    return float(np.median(np.abs(d[v] - truth[v]) / truth[v]))


def test_anchors_lie_on_the_true_surfaces(worlds):
    for r, cams, store in worlds:
        for i in range(len(cams)):
            a = store.view_anchors(i)
            assert len(a) >= 40
            j, k = np.floor(a.uv[:, 0]).astype(int), np.floor(a.uv[:, 1]).astype(int)
            truth = r.depth[i][k, j]
            assert np.median(np.abs(a.z - truth) / truth) < 0.01


def test_ray_depths_solve_eq4_exactly():
    r, cams = _world(3)
    rng = np.random.default_rng(0)
    ij = np.stack([rng.integers(10, H - 10, 50), rng.integers(10, W - 10, 50)], 1)
    uv0 = ij[:, ::-1] + 0.5
    z0 = r.depth[0][ij[:, 0], ij[:, 1]].astype(np.float64)
    xc = np.concatenate([uv0, np.ones((50, 1))], 1) @ np.linalg.inv(cams.K[0]).T * z0[:, None]
    pw = xc @ cams.c2w[0, :3, :3].T + cams.c2w[0, :3, 3]
    uv1, _ = cams[1].project(pw)
    np.testing.assert_allclose(ray_depths(uv0, cams[0], uv1[0], cams[1]), z0, rtol=1e-6)


def test_lwlr_follows_local_scale_and_returns_to_the_prior_far_away():
    rng = np.random.default_rng(0)
    uv = np.stack([rng.uniform(0, 60, 300), rng.uniform(0, 200, 300)], 1)  # anchors in the left strip only
    x = rng.uniform(1, 3, 300)
    scale, shift = lwlr_maps(uv, x, 2.0 * x, 200, 400, bandwidth_px=20, lam=0.03, prior=(1.0, 0.0), lam_slope=1.0)
    assert abs(np.median(scale[:, 10:50]) - 2.0) < 0.02 and abs(np.median(shift[:, 10:50])) < 0.05
    assert abs(np.median(scale[:, 300:]) - 1.0) < 0.02 and abs(np.median(shift[:, 300:])) < 0.02


def test_lwlr_local_scale_floor_keeps_the_relief_upright_and_is_the_best_level_for_it():
    # a handful of anchors whose local trend is inverted (noise): unbounded, the local slope goes negative
    rng = np.random.default_rng(1)
    uv = np.stack([rng.uniform(0, 40, 12), rng.uniform(0, 40, 12)], 1)
    x = rng.uniform(1, 3, 12)
    y = 4.0 - x  # locally decreasing; the prior (global fit) says scale 1
    free, _ = lwlr_maps(uv, x, y, 40, 40, bandwidth_px=10, lam=0.03, prior=(1.0, 0.0), lam_slope=0.01, full_res=False, stride=4)
    assert free.min() < 0
    a, c = lwlr_maps(uv, x, y, 40, 40, bandwidth_px=10, lam=0.03, prior=(1.0, 0.0), lam_slope=0.01, full_res=False, stride=4,
                     min_scale_ratio=0.25)
    assert a.min() >= 0.25 - 1e-6 and np.isclose(a, 0.25).any()
    # where the bound is active, c is the level minimising the kernel-weighted residuals for that slope:
    # nudging c either way does not lower the (relative, ridge-free here: far from the prior's pull) objective
    i, j = np.unravel_index(np.argmin(np.abs(a - 0.25) + (free > 0.25) * 1e9), a.shape)
    p = np.array([(j + 0.5) * 4, (i + 0.5) * 4])
    w = np.exp(-((uv - p) ** 2).sum(1) / (2 * 10.0**2)) / y**2
    def obj(cc):  # noqa: E306
        return (w * (0.25 * x + cc - y) ** 2).sum()
    assert obj(c[i, j]) <= min(obj(c[i, j] + 0.05), obj(c[i, j] - 0.05)) + 1e-3


@pytest.mark.parametrize("kind", ["relative_depth", "relative_disparity"])
def test_lwlr_beats_global_where_the_error_varies_and_ties_where_it_does_not(worlds, kind):
    space = "disparity" if kind == "relative_disparity" else "depth"
    res = {}
    for error in ("affine", "smooth", "regions"):
        for method in ("global", "lwlr"):
            vals = []
            for w, (r, cams, store) in enumerate(worlds):
                for i in range(len(cams)):
                    p = as_relative(distort_depth(r.depth[i], error, seed=10 * w + i, ids=r.ids[i]), kind, seed=10 * w + i)
                    a = store.view_anchors(i)
                    d, st = align_to_anchors(p, p > 0, space, a.uv, a.z, AlignConfig(method=method), f"v{i}")
                    assert st.method == method and st.anchors >= 40
                    vals.append(_absrel(d, r.depth[i]))
            res[error, method] = float(np.mean(vals))
    assert res["affine", "lwlr"] <= res["affine", "global"] + 0.003
    for error in ("smooth", "regions"):
        assert res[error, "lwlr"] < 0.7 * res[error, "global"], res


def test_too_few_anchors_is_an_error_naming_the_view_unless_a_fallback_is_chosen():
    pred = np.ones((32, 32), np.float32) + 0.2 * np.linspace(0, 1, 32)[None]
    uv = np.array([[1.5 + 2 * k, 16.5] for k in range(15)])
    z = 2.0 * pred[16, (uv[:, 0] - 0.5).astype(int)]
    with pytest.raises(AlignmentError, match="'left'.*LWLR.*15"):
        align_to_anchors(pred, pred > 0, "depth", uv, z, AlignConfig(), "left")
    d, st = align_to_anchors(pred, pred > 0, "depth", uv, z, AlignConfig(fallback="global"), "left")
    assert st.method == "global" and "fallback" in st.note
    np.testing.assert_allclose(d, 2 * pred, rtol=1e-4)
    with pytest.raises(AlignmentError, match="'right'.*only 3 usable anchors"):
        align_to_anchors(pred, pred > 0, "depth", uv[:3], z[:3], AlignConfig(method="global"), "right")


def test_a_new_view_reuses_earlier_anchors_and_triangulates_new_ones():
    r, cams = _world(3, offsets=(-0.3, 0.0, 0.3, 0.15))
    store = AnchorStore()
    store.add_views(r.rgb[:3], cams[:3])
    n_before = len(store.points)
    a = store.add_view(r.rgb[3], cams[3])
    assert len(a) >= 40
    assert (a.point_ids < n_before).sum() >= 20 and (a.point_ids >= n_before).any()  # reused and new points
    j, k = np.floor(a.uv[:, 0]).astype(int), np.floor(a.uv[:, 1]).astype(int)
    assert np.median(np.abs(a.z - r.depth[3][k, j]) / r.depth[3][k, j]) < 0.01
