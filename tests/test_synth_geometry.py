"""The synthetic world is geometrically right: metric depth, view-consistent colours, true dynamics."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from see3d.io.cameras import Cameras, look_at
from see3d.synth import Scene, make_clip, make_scene, render, render_full, scene_views
from see3d.synth.shapes import Box, GroundPlane, SkyDome, Sphere
from see3d.synth.textures import Texture

# ----------------------------------------------------------------------------- helpers (independent of the renderer)


def unproject(depth: np.ndarray, cams: Cameras, i: int) -> np.ndarray:
    """World points (H, W, 3) of camera ``i``'s pixel centres at z-depth ``depth (H, W)``."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    pix = np.stack([u, v, np.ones_like(u)], axis=-1)
    pc = (pix @ np.linalg.inv(cams.K[i]).T) * depth[..., None]
    return pc @ cams.c2w[i, :3, :3].T + cams.c2w[i, :3, 3]


def sample(img: np.ndarray, uv: np.ndarray, nearest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``img`` at pixel coordinates ``uv (H, W, 2)`` (centres at +0.5); also returns the inside mask."""
    h, w = img.shape[:2]
    mx = (uv[..., 0] - 0.5).astype(np.float32)
    my = (uv[..., 1] - 0.5).astype(np.float32)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    out = cv2.remap(
        np.ascontiguousarray(img, dtype=np.float32),
        mx,
        my,
        cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return out, inside


def consistency(frames: np.ndarray, depth: np.ndarray, cams: Cameras, i: int, j: int) -> dict:
    """Reproject frame i into frame j assuming a static world: per-pixel maps over frame i of
    ``visible`` (lands in j and passes the depth test), ``inside``, ``depth_err`` (relative), ``color_err``."""
    h, w = depth[i].shape
    uv, z = cams[j].project(unproject(depth[i], cams, i).reshape(-1, 3))
    uv, z = uv[0].reshape(h, w, 2), z[0].reshape(h, w)
    dj, inside = sample(depth[j], uv, nearest=True)
    cj, _ = sample(frames[j], uv)
    inside &= z > 0
    rel = np.abs(dj - z) / np.maximum(z, 1e-6)
    col = np.abs(cj - frames[i]).mean(axis=-1)
    return {"inside": inside, "visible": inside & (rel < 0.03), "depth_err": rel, "color_err": col}


def _plain(color=(0.5, 0.5, 0.5)) -> Texture:
    return Texture("checker", np.array([color, color, color]), scale=1.0, detail=0.0)


# ----------------------------------------------------------------------------- depth


def test_depth_is_metric_on_known_geometry():
    """Camera 1.5 m above the ground, looking along +z at a sphere of radius 0.5 whose centre is 4 m away."""
    h_cam, dist, r = 1.5, 4.0, 0.5
    shapes = [
        GroundPlane(_plain(), np.zeros(3)),
        Sphere(_plain((0.8, 0.2, 0.2)), np.array([0.0, -h_cam, 0.0]), radius=r),
        SkyDome(_plain((0.3, 0.5, 0.9)), np.zeros(3), radius=60.0, emissive=True),
    ]
    scene = Scene(0, "outdoor", shapes, np.array([0.0, 1.0, 0.0]), 0.4, np.zeros(3), np.array([[-9.0] * 3, [9.0] * 3]), (1.0, 5.0))
    w, h = 65, 49  # odd: the centre pixel's centre is the principal point
    cams = Cameras.from_fov(look_at([0.0, -h_cam, -dist], [0.0, -h_cam, 0.0]), 60.0, w, h)
    out = render_full(scene, cams)
    depth, ids = out.depth[0], out.ids[0]
    assert depth[h // 2, w // 2] == pytest.approx(dist - r, abs=1e-5)
    # ground pixels: z-depth = camera height / ((v - cy) / fy) exactly
    rows = np.arange(h)[:, None] + 0.5
    K = cams.K[0]
    with np.errstate(divide="ignore"):
        expected = h_cam / ((rows - K[1, 2]) / K[1, 1])
    ground = ids == 0
    assert ground.sum() > 0.3 * w * h
    np.testing.assert_allclose(depth[ground], np.broadcast_to(expected, (h, w))[ground], rtol=1e-5)
    # every sphere pixel unprojects onto the sphere; the sky is 60 m away along each ray
    pts = unproject(depth, cams, 0)
    sph = ids == 1
    assert sph.sum() > 20
    np.testing.assert_allclose(np.linalg.norm(pts[sph] - [0.0, -h_cam, 0.0], axis=1), r, atol=1e-4)
    sky = ids == 2
    np.testing.assert_allclose(np.linalg.norm(pts[sky], axis=1), 60.0, rtol=1e-5)


def test_room_depth_lies_on_floor_walls_and_boxes():
    scene = make_scene(3, kind="room")
    room = scene.shapes[0]
    cams = Cameras.from_fov(look_at(scene.focus + [2.5, -0.9, 1.0], scene.focus), 70.0, 80, 60)
    out = render_full(scene, cams)
    pts = unproject(out.depth[0], cams, 0)
    on_room = out.ids[0] == 0
    local = np.abs(pts[on_room] - room.centre) / room.half
    assert on_room.mean() > 0.2
    # a room pixel lies on one of the six faces: its largest normalised coordinate is 1
    np.testing.assert_allclose(local.max(axis=1), 1.0, atol=1e-6)
    floor = np.abs(pts[on_room][:, 1]) < 1e-6
    assert floor.any()  # the floor y = 0 is visible
    for k, shape in enumerate(scene.shapes):
        if isinstance(shape, Box) and (out.ids[0] == k).sum() > 3:
            c, R = shape.pose(0.0)
            loc = (pts[out.ids[0] == k] - c) @ R
            np.testing.assert_allclose((np.abs(loc) / shape.half).max(axis=1), 1.0, atol=1e-6)


# ----------------------------------------------------------------------------- view consistency


@pytest.mark.parametrize("seed, kind", [(0, "orbit"), (1, "handheld"), (5, "dolly")])
def test_reprojected_pixels_see_the_same_surface_colour(seed, kind):
    clip = make_clip(seed, kind, n_frames=6, size=(96, 72))
    c = consistency(clip.frames, clip.depth, clip.cameras, 0, 2)
    vis = c["visible"]
    assert vis.mean() > 0.3, "most of frame 0 should be visible in frame 2"
    err = c["color_err"][vis]
    assert np.median(err) < 0.02 and err.mean() < 0.04, (np.median(err), err.mean())
    # control: with a wrong pose (camera 2 shifted 20 cm sideways) the same check fails clearly
    wrong = Cameras(clip.cameras.K, clip.cameras.c2w.copy(), clip.cameras.width, clip.cameras.height)
    wrong.c2w[2, :3, 3] += wrong.c2w[2, :3, 0] * 0.2
    bad = consistency(clip.frames, clip.depth, wrong, 0, 2)
    assert bad["color_err"][bad["inside"]].mean() > 2 * err.mean() + 0.02


def test_scene_views_carry_true_metric_depth():
    scene = make_scene(4)
    cams = Cameras.from_fov(np.stack([look_at(scene.focus + [3.0, -1.0, s], scene.focus) for s in (0.0, 0.5)]), 60, 40, 30)
    v = scene_views(scene, cams)
    rgb, depth = render(scene, cams)
    assert v.depth_is_metric and np.array_equal(v.depth, depth) and np.array_equal(v.images, rgb)
    assert v.images.dtype == np.float32 and 0.0 <= v.images.min() and v.images.max() <= 1.0
    assert (v.depth > 0).all()


# ----------------------------------------------------------------------------- reject variants are what they claim


@pytest.mark.parametrize("seed", [2, 8])
def test_dynamic_clip_has_an_independently_moving_object(seed):
    clip = make_clip(seed, "dynamic", n_frames=8, size=(80, 60))
    assert clip.label == "drop" and clip.reason == "dynamic"
    assert clip.moving_mask is not None and clip.moving_mask.shape == clip.depth.shape
    assert clip.moving_mask.mean() > 0.05, "the moving object should cover a clear part of the image"
    h, w = clip.depth.shape[1:]
    mover_ok, static_ok = [], []
    for j in range(1, len(clip.frames)):
        c = consistency(clip.frames, clip.depth, clip.cameras, 0, j)
        ok = c["visible"] & (c["color_err"] < 0.1)  # the static-world reprojection explains the pixel
        uv, _ = clip.cameras[j].project(unproject(clip.depth[0], clip.cameras, 0).reshape(-1, 3))
        lands_on_mover, _ = sample(clip.moving_mask[j].astype(np.float32), uv[0].reshape(h, w, 2), nearest=True)
        mover = clip.moving_mask[0] & c["inside"]
        static = ~clip.moving_mask[0] & c["inside"] & (lands_on_mover < 0.5)
        assert mover.sum() > 30
        mover_ok.append(ok[mover].mean())
        static_ok.append(ok[static].mean())
    # the static world reprojects consistently in every frame; the moving object's pixels mostly do not
    assert min(static_ok) > 0.8, static_ok
    assert np.mean(mover_ok) < 0.3, mover_ok


def test_rotation_only_clip_keeps_its_centre_and_rotates_clearly():
    clip = make_clip(6, "rotation_only", n_frames=8, size=(48, 36))
    c = clip.cameras.centers
    np.testing.assert_allclose(c, np.repeat(c[:1], len(c), axis=0), atol=1e-12)
    assert clip.meta["rotation_deg"] > 20
    # no parallax: reprojection does not depend on depth (scaling depth moves no pixel)
    i, j = 0, 7
    uv1, _ = clip.cameras[j].project(unproject(clip.depth[i], clip.cameras, i).reshape(-1, 3))
    uv2, _ = clip.cameras[j].project(unproject(clip.depth[i] * 3.0, clip.cameras, i).reshape(-1, 3))
    np.testing.assert_allclose(uv1, uv2, atol=1e-6)
    u, v = np.meshgrid(np.arange(48) + 0.5, np.arange(36) + 0.5)
    moved = np.linalg.norm(uv1[0] - np.stack([u, v], -1).reshape(-1, 2), axis=1)
    assert np.median(moved) > 5.0  # and the image really moves


def test_small_motion_clip_moves_the_image_by_at_most_a_few_pixels():
    clip = make_clip(8, "small_motion", n_frames=12, size=(64, 48))
    cams = clip.cameras
    assert 0 < clip.meta["translation_m"] < 0.02 * clip.meta["median_depth_m"]
    assert clip.meta["rotation_deg"] < 1e-6
    pts = unproject(clip.depth[0], cams, 0).reshape(-1, 3)
    flow = np.linalg.norm(cams[-1].project(pts)[0] - cams[0].project(pts)[0], axis=-1) * (256 / 64)  # at 256 px wide
    assert 0 < np.median(flow) < 5.0, np.median(flow)  # a few pixels over the clip
    assert np.median(flow) / (len(cams) - 1) < 0.4  # and well under the 0.4 px/frame "no motion" bar per frame
