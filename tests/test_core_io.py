"""Shared types and file formats of the foundation: cameras, transforms.json, view folders, images, video."""

import json

import numpy as np
import pytest

from see3d.errors import InputError
from see3d.io.cameras import Cameras, look_at
from see3d.io.conventions import opencv_to_opengl, quat_wxyz_to_rotmat, rotmat_to_quat_wxyz
from see3d.io.images import load_image, save_image
from see3d.io.transforms_json import read_transforms_json, write_transforms_json
from see3d.io.video import read_frames, write_video
from see3d.io.views import Views


def _cams(n=3, w=40, h=30):
    c2w = [look_at([np.cos(a) * 3, -0.5, np.sin(a) * 3], [0, 0, 0]) for a in np.linspace(0, 1, n)]
    return Cameras.from_fov(np.stack(c2w), 60.0, w, h)


def test_look_at_is_opencv_and_projects_target_to_centre():
    cams = _cams()
    R = cams.c2w[:, :3, :3]
    assert np.allclose(np.einsum("nij,nkj->nik", R, R), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(R), 1.0)
    uv, z = cams.project(np.zeros((1, 3)))
    assert np.allclose(uv[:, 0], [20, 15]) and (z > 0).all()
    assert np.allclose(cams.w2c @ cams.c2w, np.eye(4), atol=1e-12)


def test_world_up_appears_up_in_image():
    cam = Cameras.from_fov(look_at([0, 0, -5], [0, 0, 0]), 60, 40, 30)
    uv, _ = cam.project(np.array([[0.0, -1.0, 0.0]]))  # world -y is "up" in our default
    assert uv[0, 0, 1] < 15


def test_transforms_json_round_trip_is_lossless(tmp_path):
    cams = _cams()
    cams.K[1, 0, 0] += 3  # per-frame intrinsics
    write_transforms_json(tmp_path / "t.json", cams, [{"file_path": f"images/{i}.png"} for i in range(3)])
    back, frames = read_transforms_json(tmp_path / "t.json")
    assert np.allclose(back.K, cams.K) and np.allclose(back.c2w, cams.c2w)
    data = json.loads((tmp_path / "t.json").read_text())
    assert np.allclose(data["frames"][0]["transform_matrix"], opencv_to_opengl(cams.c2w[0]))
    assert frames[2]["file_path"] == "images/2.png"


@pytest.mark.parametrize("content", ["{not json", '{"frames": []}', '{"w": 4, "h": 4, "frames": [{"transform_matrix": [[1]]}]}'])
def test_bad_transforms_json_names_file(tmp_path, content):
    p = tmp_path / "transforms.json"
    p.write_text(content)
    with pytest.raises(InputError, match="transforms.json"):
        read_transforms_json(p)


def test_views_folder_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    cams = _cams()
    v = Views(rng.random((3, 30, 40, 3)).astype(np.float32), cams, depth=rng.random((3, 30, 40)).astype(np.float32) + 1,
              masks=rng.random((3, 30, 40)) > 0.5)
    v.save(tmp_path / "v")
    back = Views.load(tmp_path / "v")
    assert np.abs(back.images - v.images).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(back.depth, v.depth) and np.array_equal(back.masks, v.masks)
    assert np.allclose(back.cameras.c2w, cams.c2w)
    assert back.names == v.names
    assert not list((tmp_path / "v").rglob(".*"))  # no temp files left behind


def test_quaternion_round_trip():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(20, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, :1])
    assert np.allclose(rotmat_to_quat_wxyz(quat_wxyz_to_rotmat(q)), q, atol=1e-10)


def test_image_modes_and_errors(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((5, 6), 128, np.uint8), "L").save(tmp_path / "g.png")
    Image.fromarray(np.zeros((5, 6, 4), np.uint8), "RGBA").save(tmp_path / "a.png")
    assert load_image(tmp_path / "g.png").shape == (5, 6, 3)
    assert load_image(tmp_path / "a.png").shape == (5, 6, 3)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="bad.png"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(InputError, match="missing.png"):
        load_image(tmp_path / "missing.png")
    save_image(tmp_path / "out.jpg", np.ones((4, 4, 3)))
    assert load_image(tmp_path / "out.jpg").min() > 0.95


def test_video_write_read_round_trip_and_errors(tmp_path):
    frames = np.zeros((6, 32, 48, 3), np.uint8)
    for i in range(6):
        frames[i, :, i * 8 : i * 8 + 8] = 255
    write_video(tmp_path / "v.mp4", frames, fps=10)
    back = read_frames(tmp_path / "v.mp4")
    assert back.shape == frames.shape
    assert np.abs(back.astype(float) - frames).mean() < 8
    (tmp_path / "c.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="c.mp4"):
        read_frames(tmp_path / "c.mp4")


def test_atomic_writes_get_normal_permissions_and_leave_nothing_on_error(tmp_path):
    import os

    from see3d.io.atomic import atomic_path, write_text_atomic

    write_text_atomic(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
