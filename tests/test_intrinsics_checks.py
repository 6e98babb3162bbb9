"""Camera readers refuse intrinsics that do not fit the image; DTU in MonoSDF's layout gets its crop/resize."""

from __future__ import annotations

import json

import numpy as np
import pytest

from see3d.errors import InputError
from see3d.io.cameras import Cameras, look_at
from see3d.io.transforms_json import read_transforms_json, write_transforms_json


def test_camera_check_refuses_intrinsics_of_another_image():
    K = np.array([[300.0, 0, 192], [0, 300, 192], [0, 0, 1]])

    def cam(k):
        return Cameras(k, np.eye(4), 384, 384)

    cam(K).check("cams.npz")
    bad = K.copy()
    bad[0, 2], bad[1, 2] = 823.0, 619.0
    with pytest.raises(InputError, match=r"cams.npz: camera 0: principal point \(823, 619\) lies outside the 384x384"):
        cam(bad).check("cams.npz")
    tiny = K.copy()
    tiny[0, 0] = tiny[1, 1] = 5.0
    with pytest.raises(InputError, match="implausible"):
        cam(tiny).check()
    skew = K.copy()
    skew[1, 1] = 30.0
    with pytest.raises(InputError, match="differ by more than"):
        cam(skew).check()


def test_transforms_json_with_intrinsics_of_another_size_is_refused(tmp_path):
    cams = Cameras.from_fov(np.eye(4)[None], 60.0, 1600, 1200)
    p = tmp_path / "transforms.json"
    write_transforms_json(p, cams)
    data = json.loads(p.read_text())
    data["w"], data["h"] = 384, 384  # the images were cropped and resized, the intrinsics were not
    p.write_text(json.dumps(data))
    with pytest.raises(InputError, match="transforms.json: camera 0: principal point"):
        read_transforms_json(p)


def test_dtu_monosdf_layout_gets_the_centre_crop_and_resize(tmp_path):
    from see3d.datasets.dtu import read_dtu
    from see3d.io.images import save_image

    K0 = np.array([[2892.3, 0.0, 823.2], [0.0, 2883.2, 619.1], [0.0, 0.0, 1.0]])  # DTU's 1600x1200 photos
    c2ws = [look_at(np.array([x, -0.5, -3.0]), np.zeros(3)) for x in (-0.4, 0.0, 0.4)]
    scan = tmp_path / "scan65"
    mats = {}
    for i, c2w in enumerate(c2ws):
        w2c = np.linalg.inv(c2w)
        mats[f"world_mat_{i}"] = np.vstack([K0 @ w2c[:3], [0, 0, 0, 1]])
        mats[f"scale_mat_{i}"] = np.eye(4)
        save_image(scan / f"{i:06d}_rgb.png", np.full((384, 384, 3), 0.5, np.float32))
    np.savez(scan / "cameras.npz", **mats)
    scene = read_dtu(scan)
    cams = scene.views.cameras
    assert (cams.width, cams.height) == (384, 384)
    s = 384 / 1200
    np.testing.assert_allclose(cams.K[0], [[K0[0, 0] * s, 0, (K0[0, 2] - 200) * s], [0, K0[1, 1] * s, K0[1, 2] * s], [0, 0, 1]], atol=1e-3)
    # a world point lands where the crop + resize moves its pixel in the original photo
    X = np.array([0.1, -0.2, 0.3])
    u0 = K0 @ (np.linalg.inv(c2ws[1]) @ np.append(X, 1))[:3]
    uv, _ = cams[1].project(X[None])
    np.testing.assert_allclose(uv[0, 0], [(u0[0] / u0[2] - 200) * s, u0[1] / u0[2] * s], atol=1e-3)
