"""Forward warping: matches true renders of known scenes, leaves no cracks, agrees with the loop reference,
and the point cache reproduces earlier views on a chunked path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from see3d.geometry.paths import make_path, scene_depth_from
from see3d.geometry.point_cache import PointCache
from see3d.geometry.warp import forward_warp, splat_points, warp_to_cameras
from see3d.geometry.warp_reference import forward_warp_reference
from see3d.io.cameras import Cameras, look_at

# ----------------------------------------------------------------------------- an analytic scene, ray cast here
# Planes n.X = d (OpenCV world, y down): a back wall, a floor, a floating box face in front. Smooth textures,
# so resampling by a warp is accurate and the test measures geometry, not texture aliasing.


def _tex_wall(X):
    x, y = X[..., 0], X[..., 1]
    return np.stack([0.5 + 0.25 * np.sin(3 * x + 1), 0.5 + 0.25 * np.sin(2.5 * y), 0.5 + 0.2 * np.sin(2 * x + 2 * y)], -1)


def _tex_floor(X):
    x, z = X[..., 0], X[..., 2]
    return np.stack([0.45 + 0.2 * np.sin(4 * x), 0.4 + 0.2 * np.cos(3 * z), 0.55 + 0.2 * np.sin(3 * x - 2 * z)], -1)


def _tex_box(X):
    x, y = X[..., 0], X[..., 1]
    return np.stack([0.35 + 0.25 * np.cos(6 * x), 0.6 + 0.2 * np.sin(5 * y), 0.3 + 0.2 * np.cos(4 * x + 4 * y)], -1)


PLANES = [
    (np.array([0, 0, 1.0]), 6.0, lambda X: np.ones(X.shape[:-1], bool), _tex_wall),
    (np.array([0, 1.0, 0]), 1.5, lambda X: X[..., 2] < 6.0, _tex_floor),
    (np.array([0, 0, 1.0]), 3.5, lambda X: (X[..., 0] > -0.8) & (X[..., 0] < 0.3) & (X[..., 1] > -0.5) & (X[..., 1] < 0.6), _tex_box),
]
H, W = 72, 96
K = Cameras.intrinsics_from_fov(60, W, H)
TARGET = np.array([0.0, 0.2, 4.0])


def cast(origins, dirs):
    """Nearest hit along rays: ray parameter (inf = miss) and colour."""
    best = np.full(dirs.shape[:-1], np.inf)
    col = np.zeros(dirs.shape)
    for n, d, inside, tex in PLANES:
        den = dirs @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (d - origins @ n) / den
        X = origins + t[..., None] * dirs
        ok = (t > 1e-9) & np.isfinite(t) & inside(X) & (t < best)
        best = np.where(ok, t, best)
        col = np.where(ok[..., None], tex(X), col)
    return best, col


def rays(c2w):
    v, u = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    d_cam = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T  # z = 1: ray parameter = z-depth
    return d_cam @ c2w[:3, :3].T


def render(c2w):
    """(H, W, 3) colours and (H, W) z-depth seen from ``c2w``."""
    d = rays(c2w)
    t, col = cast(np.broadcast_to(c2w[:3, 3], d.shape), d)
    return col.astype(np.float32), t.astype(np.float32)


def true_visibility(dst_c2w, src_c2w):
    """(H, W) bool: the surface point seen at each destination pixel is also seen by the source camera."""
    d = rays(dst_c2w)
    t, _ = cast(np.broadcast_to(dst_c2w[:3, 3], d.shape), d)
    X = dst_c2w[:3, 3] + t[..., None] * d
    cs = src_c2w[:3, 3]
    ts, _ = cast(np.broadcast_to(cs, X.shape), X - cs)  # first hit from the source towards X: at parameter 1 if unoccluded
    pc = (X - cs) @ src_c2w[:3, :3]
    uv = pc @ K.T
    uv = uv[..., :2] / uv[..., 2:3]
    inside = (pc[..., 2] > 0) & (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
    return inside & (np.abs(ts - 1) < 1e-6)


def psnr(a, b, m):
    return -10 * np.log10(np.mean((a - b)[m] ** 2))


SRC = look_at([0, 0, 0], TARGET)
MOVES = {
    "right": [0.3, 0, 0],
    "up_left_back": [-0.4, -0.2, 0.3],
    "forward_right": [0.2, 0.1, -0.5],
    "back": [0, 0, 0.8],
}


# ----------------------------------------------------------------------------- done-when: true renders and visibility
@pytest.mark.parametrize("move", sorted(MOVES))
def test_warp_matches_true_render_and_visibility(move):
    img, dep = render(SRC)
    dst = look_at(MOVES[move], TARGET)
    truth, _ = render(dst)
    vis = true_visibility(dst, SRC)
    wi, wm, wd = warp_to_cameras(img, dep, Cameras(K, SRC, W, H), Cameras(K, dst, W, H))
    wi, wm = wi[0], wm[0]
    assert psnr(wi, truth, wm) >= 30.0
    iou = (wm & vis).sum() / (wm | vis).sum()
    assert iou >= 0.95, iou
    # disocclusions stay holes: the wall right behind the box's edge must not be filled for sideways moves
    if move == "right":
        assert (~wm).sum() > 0.01 * H * W


def test_warped_depth_is_destination_depth():
    img, dep = render(SRC)
    dst = look_at(MOVES["right"], TARGET)
    _, tdep = render(dst)
    _, wm, wd = warp_to_cameras(img, dep, Cameras(K, SRC, W, H), Cameras(K, dst, W, H))
    vis = true_visibility(dst, SRC)
    rel = np.abs(wd[0] - tdep) / tdep
    assert np.median(rel[wm[0] & vis]) < 1e-3


def test_identity_warp_reproduces_image():
    img, dep = render(SRC)
    wi, wm, wd = warp_to_cameras(img, dep, Cameras(K, SRC, W, H), Cameras(K, SRC, W, H))
    assert wm.all()
    # exact on fronto-parallel surfaces; the receding floor's slightly larger footprints blend in a trace of
    # the neighbours
    assert np.abs(wi[0] - img).max() < 2e-3
    assert np.abs(wi[0] - img)[:30].max() < 1e-5
    assert (np.abs(wd[0] - dep) / dep).max() < 5e-4


@pytest.mark.parametrize("factor", [1.5, 2.5])
def test_no_cracks_when_magnifying(factor):
    """Zooming in / moving close stretches every source pixel; splats must still cover every pixel."""
    img, dep = render(SRC)
    src = Cameras(K, SRC, W, H)
    dst = make_path("zoom_in", src, 2, 4.0, factor=factor)[1:]
    _, wm, _ = warp_to_cameras(img, dep, src, dst)
    assert wm.all()
    close = make_path("dolly_in", src, 2, scene_depth_from(dep), distance=0.3)[1:]
    _, wm2, _ = warp_to_cameras(img, dep, src, close)
    # only the floor's near edge may be uncovered (it leaves the view), never isolated pixels inside
    holes = ~wm2[0]
    inner = holes[1:-1, 1:-1] & ~holes[:-2, 1:-1] & ~holes[2:, 1:-1] & ~holes[1:-1, :-2] & ~holes[1:-1, 2:]
    assert inner.sum() == 0


def test_batched_warp_matches_loop_reference():
    """The torch fast path and the per-pixel loop reference implement the same rule (float64, tiny images)."""
    rng = np.random.default_rng(0)
    h, w = 9, 11
    img = rng.random((h, w, 3))
    dep = 2.0 + 0.05 * rng.random((h, w))
    dep[3:6, 4:8] = 1.2  # an occluder: depth edges, disocclusions
    dep[0, 0] = 0.0  # an invalid pixel
    k = Cameras.intrinsics_from_fov(55, w, h)
    src = np.eye(4)
    for eye in ([0.15, 0.05, 0.02], [-0.2, 0.0, 0.3], [0.0, 0.1, -0.4]):
        dst = look_at(eye, [0.05, 0.0, 2.0])
        k2 = k.copy()
        k2[0, 0] *= 1.3
        k2[1, 1] *= 1.3

        def t(x):
            return torch.tensor(np.asarray(x), dtype=torch.float64)[None]

        r = forward_warp(t(img), t(dep), t(k), t(src), t(k2), t(dst))
        ri, rm, rd = forward_warp_reference(img, dep, k, src, k2, dst)
        assert (r.mask[0].numpy() == rm).all()
        assert np.abs(r.image[0].numpy() - ri).max() < 1e-6
        assert np.abs(r.depth[0].numpy() - rd).max() < 1e-6


def test_one_source_broadcasts_to_many_cameras():
    img, dep = render(SRC)
    src = Cameras(K, SRC, W, H)
    dsts = Cameras.cat([Cameras(K, look_at(MOVES[m], TARGET), W, H) for m in sorted(MOVES)])
    wi, wm, wd = warp_to_cameras(img, dep, src, dsts)
    for i in range(len(dsts)):
        si, sm, sd = warp_to_cameras(img, dep, src, dsts[i])
        assert (sm[0] == wm[i]).all()
        assert np.abs(si[0] - wi[i]).max() < 1e-5


def test_warp_other_output_size_and_channels():
    img, dep = render(SRC)
    feat = np.concatenate([img, dep[..., None]], -1)  # 4 channels
    src = Cameras(K, SRC, W, H)
    dst = src.resized(W // 2, H // 2)
    wi, wm, _ = warp_to_cameras(feat, dep, src, dst)
    assert wi.shape == (1, H // 2, W // 2, 4)
    assert wm.all()
    # same pose at half resolution: each output pixel is the blend of a 2x2 source block, so the 4th channel
    # (the source depth) matches the block means wherever a block holds one surface
    blocks = dep.reshape(H // 2, 2, W // 2, 2)
    one_surface = (blocks.max((1, 3)) - blocks.min((1, 3))) < 0.01 * blocks.min((1, 3))
    assert (np.abs(wi[0, ..., 3] - blocks.mean((1, 3))) / blocks.mean((1, 3)))[one_surface].max() < 1e-3


def test_splat_points_without_tangents_uses_small_footprint():
    pts = torch.tensor([[0.0, 0.0, 2.0]])
    col = torch.tensor([[1.0, 0.5, 0.25]])
    k = torch.tensor(Cameras.intrinsics_from_fov(60, 8, 8), dtype=torch.float32)[None]
    r = splat_points(pts, col, k, torch.eye(4)[None], 8, 8)
    assert r.mask.sum() == 4  # projects onto the corner shared by 4 pixel centres: a 2x2 splat
    assert torch.allclose(r.image[r.mask], col.expand(4, 3))
    behind = splat_points(torch.tensor([[0.0, 0.0, -2.0]]), col, k, torch.eye(4)[None], 8, 8)
    assert not behind.mask.any()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    img, dep = render(SRC)
    src = Cameras(K, SRC, W, H)
    dst = Cameras(K, look_at(MOVES["up_left_back"], TARGET), W, H)
    ci, cm, cd = warp_to_cameras(img, dep, src, dst, device="cpu")
    gi, gm, gd = warp_to_cameras(img, dep, src, dst, device="cuda")
    assert (cm != gm).mean() < 1e-3
    both = cm & gm
    assert np.abs(ci - gi)[both].max() < 1e-3


# ----------------------------------------------------------------------------- the point cache (chunked generation)
def test_point_cache_returns_to_start_view():
    """Chunked path: start view, then views along an orbit (each added with its depth), then back to the start.
    Rendering the cache at the start camera reproduces the first view's own warp."""
    img0, dep0 = render(SRC)
    start = Cameras(K, SRC, W, H)
    path = make_path("orbit_right", start, 5, scene_depth_from(dep0), angle_deg=20)
    cache = PointCache()
    assert cache.add_view(img0, dep0, start) == H * W
    first = cache.render(start)
    for i in range(1, len(path)):
        r = cache.render(path[i])
        assert r.mask.float().mean() > 0.3  # the cache already explains much of each new view
        img, dep = render(path.c2w[i])  # "generated" view: here the true render
        added = cache.add_view(img, dep, path[i])
        assert 0 < added < H * W  # only the newly seen parts are added
    back = cache.render(start)
    assert torch.equal(back.mask, first.mask)
    # identical up to faint blending with same-surface points just outside the first view's frame
    diff = (back.image - first.image).abs()
    assert diff.max() < 0.02 and diff.mean() < 1e-4
    direct, dmask, _ = warp_to_cameras(img0, dep0, start, start)
    assert np.abs(back.image[0].numpy() - direct[0]).max() < 0.02
    # the last orbit view is now explained almost completely by the cache
    assert cache.render(path[-1]).mask.float().mean() > 0.98


def test_point_cache_fills_view_that_one_source_cannot(tmp_path):
    img0, dep0 = render(SRC)
    start = Cameras(K, SRC, W, H)
    left = Cameras(K, look_at([-0.5, 0, 0], TARGET), W, H)
    right = Cameras(K, look_at([0.5, 0, 0], TARGET), W, H)
    cache = PointCache()
    cache.add_view(img0, dep0, start)
    only_start = cache.render(right).mask.float().mean()
    cache.add_view(*render(left.c2w[0]), left)
    cache.add_view(*render(right.c2w[0]), right)
    both = cache.render(right)
    truth, _ = render(right.c2w[0])
    assert both.mask.float().mean() > only_start
    assert psnr(both.image[0].numpy(), truth, both.mask[0].numpy()) >= 30
    cache.save_ply(tmp_path / "cache.ply")
    from plyfile import PlyData

    assert PlyData.read(str(tmp_path / "cache.ply"))["vertex"].count == len(cache)


# ----------------------------------------------------------------------------- a procedural see3d.synth world
def test_warp_on_synth_scene():
    from see3d import synth

    scene = synth.make_scene(1)
    h, w = 72, 96
    eye = scene.focus + np.array([0, -0.3, -scene.view_distance[0] * 1.2])
    start = Cameras.from_fov(look_at(eye, scene.focus), 60, w, h)
    rgb, dep = synth.render(scene, start)
    for name, kw in (("truck_right", {"distance": 0.05}), ("orbit_left", {"angle_deg": 5})):
        cam = make_path(name, start, 2, scene_depth_from(dep[0]), **kw)[1:]
        trgb, tdep = synth.render(scene, cam)
        wi, wm, _ = warp_to_cameras(rgb[0], dep[0], start, cam)
        # true visibility by a depth test of the destination's true surface against the source depth
        X = _unproject(tdep[0], cam)
        uv, z = start.project(X.reshape(-1, 3))
        uv, z = uv[0].reshape(h, w, 2), z[0].reshape(h, w)
        j = np.clip(uv[..., 0].astype(int), 0, w - 1)
        i = np.clip(uv[..., 1].astype(int), 0, h - 1)
        inside = (z > 0) & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
        vis = inside & (np.abs(dep[0][i, j] - z) < 0.03 * z)
        m = wm[0]
        assert (m & vis).sum() / (m | vis).sum() >= 0.9
        # the synth world has high-contrast silhouettes whose sub-pixel position no single view pins down,
        # so colour accuracy is measured where the warp and the true visibility agree
        assert psnr(wi[0], trgb[0], m & vis) >= 30


def _unproject(depth, cam):
    h, w = depth.shape
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    pc = (np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(cam.K[0]).T) * depth[..., None]
    return pc @ cam.c2w[0, :3, :3].T + cam.c2w[0, :3, 3]
