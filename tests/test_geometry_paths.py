"""Camera path presets and batched projection: start at the input camera, move the way their names say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from see3d.errors import InputError
from see3d.geometry.paths import PATHS, interpolate_cameras, list_paths, make_path, scene_depth_from
from see3d.geometry.projection import invert_rigid, project_points, unproject_depth
from see3d.io.cameras import Cameras, look_at

W, H = 64, 48
START = Cameras.from_fov(look_at([1.0, -0.5, -2.0], [0.2, 0.1, 3.0]), 60, W, H)
D = 4.0


def _local(cams: Cameras) -> np.ndarray:
    """Poses expressed in the start camera's frame (x right, y down, z forward)."""
    return np.linalg.inv(START.c2w[0]) @ cams.c2w


@pytest.mark.parametrize("name", list_paths())
def test_every_preset_starts_at_the_input_camera_with_valid_poses(name):
    cams = make_path(name, START, 9, D)
    assert len(cams) == 9 and (cams.width, cams.height) == (W, H)
    np.testing.assert_allclose(cams.c2w[0], START.c2w[0], atol=1e-9)
    np.testing.assert_allclose(cams.K[0], START.K[0], atol=1e-9)
    R = cams.c2w[:, :3, :3]
    np.testing.assert_allclose(R @ np.transpose(R, (0, 2, 1)), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
    # consecutive frames move smoothly (no jumps): no step is much larger than the average step
    steps = np.linalg.norm(np.diff(cams.c2w[:, :3, :], axis=0).reshape(8, -1), axis=1) + np.abs(np.diff(cams.K[:, 0, 0]))
    if steps.max() > 0:
        assert steps.max() < 3 * steps.mean() + 1e-9


def test_orbits_circle_the_pivot_and_face_it():
    for name, sign_x, sign_y in (("orbit_left", -1, 0), ("orbit_right", 1, 0), ("orbit_up", 0, -1), ("orbit_down", 0, 1)):
        rel = _local(make_path(name, START, 5, D, angle_deg=40, pivot=0.5))
        pivot = np.array([0, 0, 0.5 * D])
        c = rel[:, :3, 3]
        np.testing.assert_allclose(np.linalg.norm(c - pivot, axis=1), 0.5 * D, rtol=1e-9)
        fwd = rel[:, :3, 2]
        to_pivot = (pivot - c) / np.linalg.norm(pivot - c, axis=1, keepdims=True)
        np.testing.assert_allclose(fwd, to_pivot, atol=1e-9)  # always looking at the pivot
        if sign_x:
            assert np.sign(c[-1, 0]) == sign_x and abs(c[-1, 1]) < 1e-9
        else:
            assert np.sign(c[-1, 1]) == sign_y and abs(c[-1, 0]) < 1e-9
        # the total angle travelled is angle_deg
        cosang = np.dot(-c[0] + pivot, -c[-1] + pivot) / (0.5 * D) ** 2
        assert np.degrees(np.arccos(np.clip(cosang, -1, 1))) == pytest.approx(40, abs=1e-6)


def test_orbit_360_is_a_closed_loop_without_duplicate():
    rel = _local(make_path("orbit_360", START, 12, D))
    ang = np.degrees(np.arctan2(rel[:, 0, 3], -(rel[:, 2, 3] - D)))
    np.testing.assert_allclose(np.diff(np.unwrap(np.radians(ang))), np.radians(30), atol=1e-9)


def test_translations_and_rotations_in_place():
    rel = _local(make_path("dolly_in", START, 3, D, distance=0.25))
    np.testing.assert_allclose(rel[-1, :3, 3], [0, 0, 1.0], atol=1e-9)
    np.testing.assert_allclose(rel[:, :3, :3], np.broadcast_to(np.eye(3), (3, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(_local(make_path("dolly_out", START, 3, D, distance=0.25))[-1, :3, 3], [0, 0, -1.0], atol=1e-9)
    np.testing.assert_allclose(_local(make_path("truck_left", START, 3, D, distance=0.5))[-1, :3, 3], [-2.0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(_local(make_path("pedestal_up", START, 3, D, distance=0.5))[-1, :3, 3], [0, -2.0, 0], atol=1e-9)
    pan = _local(make_path("pan_right", START, 3, D, angle_deg=30))
    np.testing.assert_allclose(pan[:, :3, 3], 0, atol=1e-12)
    assert pan[-1, 0, 2] == pytest.approx(np.sin(np.radians(30)))  # looks to the right
    tilt = _local(make_path("tilt_up", START, 3, D, angle_deg=20))
    assert tilt[-1, 1, 2] == pytest.approx(-np.sin(np.radians(20)))  # looks up (-y)


def test_zoom_changes_only_the_focal_length():
    cams = make_path("zoom_in", START, 5, D, factor=2.0)
    np.testing.assert_allclose(cams.c2w, np.broadcast_to(START.c2w, cams.c2w.shape))
    np.testing.assert_allclose(cams.K[:, 0, 0] / START.K[0, 0, 0], 2.0 ** np.linspace(0, 1, 5))
    np.testing.assert_allclose(cams.K[:, :2, 2], np.broadcast_to(START.K[0, :2, 2], (5, 2)))
    out = make_path("zoom_out", START, 2, D, factor=2.0)
    assert out.K[-1, 1, 1] == pytest.approx(START.K[0, 1, 1] / 2)


def test_spiral_and_look_around_return_towards_start():
    sp = _local(make_path("spiral", START, 40, D, radius=0.1, focus=1.0))
    r = np.linalg.norm(sp[:, :2, 3], axis=1)
    assert r.max() == pytest.approx(0.1 * D, rel=0.02) and r[-1] < 0.1 * r.max()
    fwd = sp[:, :3, 2]
    to_focus = np.array([0, 0, D]) - sp[:, :3, 3]
    np.testing.assert_allclose(fwd, to_focus / np.linalg.norm(to_focus, axis=1, keepdims=True), atol=1e-9)
    la = _local(make_path("look_around", START, 16, D, yaw_deg=20, pitch_deg=10))
    np.testing.assert_allclose(la[:, :3, 3], 0, atol=1e-12)
    yaw = np.degrees(np.arctan2(la[:, 0, 2], la[:, 2, 2]))
    assert yaw.max() == pytest.approx(20, abs=0.5) and yaw.min() == pytest.approx(-20, abs=0.5)


def test_distances_scale_with_scene_depth():
    a = _local(make_path("orbit_left", START, 3, 1.0))
    b = _local(make_path("orbit_left", START, 3, 10.0))
    np.testing.assert_allclose(b[:, :3, 3], 10 * a[:, :3, 3], atol=1e-9)
    np.testing.assert_allclose(b[:, :3, :3], a[:, :3, :3], atol=1e-12)


def test_bad_requests_are_clear_errors():
    with pytest.raises(InputError, match="unknown camera path"):
        make_path("barrel_roll", START, 5, D)
    with pytest.raises(InputError, match="no parameter"):
        make_path("orbit_left", START, 5, D, angel_deg=10)
    with pytest.raises(InputError, match="scene_depth"):
        make_path("orbit_left", START, 5, 0.0)
    with pytest.raises(InputError, match="n_frames"):
        make_path("orbit_left", START, 0, D)
    assert set(PATHS["orbit"].defaults) == {"yaw_deg", "pitch_deg", "pivot"}


def test_scene_depth_and_interpolation():
    d = np.full((4, 4), 2.0)
    d[0, 0] = 0.0
    d[1, 1] = np.nan
    d[2, 2] = 100.0
    assert scene_depth_from(d) == 2.0
    with pytest.raises(InputError):
        scene_depth_from(np.zeros((3, 3)))
    keys = make_path("orbit_right", START, 3, D, angle_deg=60)
    cams = interpolate_cameras(keys, 5)
    np.testing.assert_allclose(cams.c2w[[0, 2, 4]], keys.c2w, atol=1e-9)
    mid = cams.c2w[1, :3, :3].T @ keys.c2w[0, :3, :3]
    assert np.degrees(np.arccos((np.trace(mid) - 1) / 2)) == pytest.approx(15, abs=1e-6)


# ----------------------------------------------------------------------------- projection
def test_unproject_project_round_trip_and_pixel_convention():
    rng = np.random.default_rng(1)
    cams = Cameras.cat([START, make_path("orbit_left", START, 2, D)[1:]])
    K, c2w = cams.torch(dtype=torch.float64)
    depth = torch.tensor(1 + 3 * rng.random((2, H, W)))
    pts = unproject_depth(depth, K, c2w)
    uv, z = project_points(pts.reshape(2, -1, 3), K, c2w)
    v, u = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    np.testing.assert_allclose(uv.reshape(2, H, W, 2)[..., 0].numpy(), np.broadcast_to(u, (2, H, W)), atol=1e-9)
    np.testing.assert_allclose(uv.reshape(2, H, W, 2)[..., 1].numpy(), np.broadcast_to(v, (2, H, W)), atol=1e-9)
    np.testing.assert_allclose(z.reshape(2, H, W).numpy(), depth.numpy(), atol=1e-9)
    # agrees with the numpy Cameras.project
    uv_np, z_np = cams[1].project(pts[0].reshape(-1, 3).numpy())
    uv_t, z_t = project_points(pts[0].reshape(1, -1, 3), K[1:], c2w[1:])
    np.testing.assert_allclose(uv_t[0].numpy(), uv_np[0], atol=1e-8)
    np.testing.assert_allclose(z_t[0].numpy(), z_np[0], atol=1e-10)
    # the principal point's pixel centre unprojects onto the optical axis
    K1 = Cameras.intrinsics_from_fov(90, 4, 2)  # cx = 2, cy = 1: the corner between four pixel centres
    p = unproject_depth(torch.ones(1, 2, 4, dtype=torch.float64), torch.tensor(K1)[None])
    np.testing.assert_allclose(p[0, 0, 1, :2].numpy(), [-0.5 / K1[0, 0], -0.5 / K1[1, 1]])
    np.testing.assert_allclose(invert_rigid(c2w).numpy(), np.linalg.inv(cams.c2w), atol=1e-12)
