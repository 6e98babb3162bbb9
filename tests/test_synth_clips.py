"""Synthetic clips: determinism, labels, camera paths that stay in free space, textures rich enough to track."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from see3d import labels
from see3d.io.cameras import Cameras
from see3d.synth import GOOD_KINDS, KINDS, PATHS, camera_path, label_of, make_clip, make_scene, render_full
from see3d.synth.shapes import Box, Cylinder, RoomShell, Sphere
from see3d.synth.textures import filtered_square


def test_same_seed_same_clip_bit_for_bit_and_seeds_differ():
    a = make_clip(3, "handheld", n_frames=4, size=(32, 24))
    b = make_clip(3, "handheld", n_frames=4, size=(32, 24))
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.depth, b.depth)
    assert np.array_equal(a.cameras.c2w, b.cameras.c2w) and np.array_equal(a.cameras.K, b.cameras.K)
    assert a.meta == b.meta
    c = make_clip(4, "handheld", n_frames=4, size=(32, 24))
    assert not np.array_equal(a.frames, c.frames) and not np.allclose(a.cameras.c2w, c.cameras.c2w)
    d = make_clip(3, "handheld", n_frames=4, size=(32, 24), fps=12.0)
    assert np.array_equal(a.cameras.c2w, d.cameras.c2w)  # a static scene does not depend on the frame rate


def test_scenes_vary_with_seed():
    kinds = {make_scene(s).kind for s in range(12)}
    assert kinds == {"room", "outdoor"}
    a, b = make_scene(0), make_scene(1)
    assert len(a.objects) >= 2 and len(b.objects) >= 2
    assert not np.allclose(a.objects[0].centre, b.objects[0].centre)


@pytest.mark.parametrize("kind", KINDS)
def test_labels_and_frame_counts_per_kind(kind):
    clip = make_clip(11, kind, n_frames=10, size=(24, 16))
    label, reason = label_of(kind)
    assert (clip.label, clip.reason) == (label, reason)
    assert label in labels.DECISIONS and reason in labels.REASONS
    assert clip.frames.shape[1:] == (16, 24, 3) and clip.frames.dtype == np.float32
    assert clip.depth.shape == clip.frames.shape[:3] and (clip.depth > 0).all()
    assert len(clip.cameras) == len(clip.frames) == len(clip.times)
    if kind == "too_short":
        assert 4 <= len(clip.frames) <= 6
    else:
        assert len(clip.frames) == 10
    if kind in GOOD_KINDS:
        assert (label, reason) == (labels.KEEP, labels.OK)
    else:
        assert label == labels.DROP and reason == kind  # reject kinds are named by their reason code


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown clip kind"):
        make_clip(0, "teleport")


@pytest.mark.parametrize("seed", range(4))
def test_camera_motion_matches_the_label(seed):
    n = 12
    static = make_clip(seed, "static_camera", n_frames=n, size=(16, 12))
    assert np.array_equal(static.cameras.c2w, np.repeat(static.cameras.c2w[:1], n, axis=0))
    for kind in GOOD_KINDS:
        clip = make_clip(seed, kind, n_frames=n, size=(16, 12))
        # a good clip moves the camera by a clear fraction of the scene depth (parallax for 3D)
        assert clip.meta["translation_m"] > 0.08 * clip.meta["median_depth_m"], (kind, clip.meta)
    small = make_clip(seed, "small_motion", n_frames=n, size=(16, 12))
    assert 0 < small.meta["translation_m"] < 0.02 * small.meta["median_depth_m"]


def _inside(shape, p: np.ndarray) -> bool:
    c, R = shape.pose(0.0)
    q = (p - c) @ R
    if isinstance(shape, Sphere):
        return np.linalg.norm(q) < shape.radius
    if isinstance(shape, Box):
        return bool((np.abs(q) < shape.half).all())
    if isinstance(shape, Cylinder):
        return np.hypot(q[0], q[2]) < shape.radius and abs(q[1]) < shape.half_height
    raise TypeError(shape)


@pytest.mark.parametrize("seed", range(6))
def test_cameras_stay_in_the_room_above_ground_and_out_of_objects(seed):
    scene = make_scene(seed)
    rng = np.random.default_rng(seed)
    for kind in PATHS:
        c2w = camera_path(kind, scene, 16, rng)
        for p in c2w[:, :3, 3]:
            assert p[1] < -0.2, "camera above the floor / ground"
            if scene.kind == "room":
                room = next(s for s in scene.shapes if isinstance(s, RoomShell))
                assert (np.abs(p - room.centre) < room.half - 0.2).all(), "camera inside the room"
            assert not any(_inside(o, p) for o in scene.objects), "camera inside an object"
        # nothing touches the lens: the nearest visible surface is well in front of the camera
        depth = render_full(scene, Cameras.from_fov(c2w, 70.0, 16, 12), shade=False).depth
        assert depth.min() > 0.3, (kind, depth.min())


def test_frames_are_rich_enough_to_track():
    clip = make_clip(1, "orbit", n_frames=2, size=(128, 96))
    gray = cv2.cvtColor((clip.frames[0] * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    corners = cv2.goodFeaturesToTrack(gray, maxCorners=500, qualityLevel=0.01, minDistance=4)
    assert corners is not None and len(corners) >= 60
    assert clip.frames[0].std() > 0.05


def test_filtered_square_wave_is_the_box_filtered_wave():
    rng = np.random.default_rng(0)
    x = rng.uniform(-5, 5, 200)
    w = rng.uniform(0.01, 3.0, 200)
    dense = np.linspace(-0.5, 0.5, 4001)
    xs = x[:, None] + dense[None] * w[:, None]
    wave = np.where(np.floor(xs) % 2 == 0, 1.0, -1.0)
    np.testing.assert_allclose(filtered_square(x, w), wave.mean(axis=1), atol=2e-3)
    assert np.abs(filtered_square(x, np.full_like(x, 40.0))).max() < 0.03  # far away: the mean
