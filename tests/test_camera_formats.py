"""Camera file formats: COLMAP (text + binary), LLFF poses_bounds.npy, nerfstudio camera_path.json.
Round trips are lossless, axes are converted correctly, and bad files give clear errors."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from see3d.errors import InputError
from see3d.io.camera_path import read_camera_path, write_camera_path
from see3d.io.cameras import Cameras, look_at
from see3d.io.colmap import (
    ColmapCamera,
    ColmapImage,
    ColmapModel,
    ColmapPoints3D,
    model_to_cameras,
    read_colmap,
    read_model,
    write_colmap,
    write_model,
)
from see3d.io.conventions import c2w_to_colmap, colmap_to_c2w, llff_to_opencv, opencv_to_llff, quat_wxyz_to_rotmat
from see3d.io.llff import bounds_from_points, read_poses_bounds, write_poses_bounds
from see3d.io.transforms_json import read_transforms_json, write_transforms_json


def _cams(n: int = 4, w: int = 64, h: int = 48, seed: int = 0) -> Cameras:
    rng = np.random.default_rng(seed)
    c2w = np.stack([look_at(rng.normal(size=3), rng.normal(size=3) + [0, 0, 5]) for _ in range(n)])
    K = np.stack([Cameras.intrinsics_from_fov(40 + 10 * rng.random(), w, h) for _ in range(n)])
    K[:, 0, 2] += rng.normal(size=n)  # off-centre principal points, fx != fy
    K[:, 1, 1] *= 1.01
    return Cameras(K, c2w, w, h)


# ----------------------------------------------------------------------------- conventions
def test_llff_axis_order_is_down_right_back():
    c2w = look_at([1.0, 2.0, 3.0], [0.0, 0.5, 9.0])
    llff = opencv_to_llff(c2w)
    np.testing.assert_allclose(llff[:, 0], c2w[:3, 1])  # down = OpenCV +y
    np.testing.assert_allclose(llff[:, 1], c2w[:3, 0])  # right = OpenCV +x
    np.testing.assert_allclose(llff[:, 2], -c2w[:3, 2])  # back = -forward
    np.testing.assert_allclose(llff[:, 3], [1, 2, 3])
    np.testing.assert_allclose(llff_to_opencv(llff), c2w, atol=1e-15)
    assert np.linalg.det(llff[:, :3]) == pytest.approx(1.0)  # still a rotation


def test_colmap_pose_is_world_to_camera():
    cams = _cams()
    q, t = c2w_to_colmap(cams.c2w)
    assert (q[:, 0] >= 0).all()
    np.testing.assert_allclose(colmap_to_c2w(q, t), cams.c2w, atol=1e-12)
    X = np.array([0.3, -0.2, 4.0])
    uv, z = cams.project(X[None])
    for i in range(len(cams)):
        pc = quat_wxyz_to_rotmat(q[i]) @ X + t[i]  # COLMAP: X_cam = R X_world + t
        assert pc[2] == pytest.approx(z[i, 0])
        np.testing.assert_allclose((cams.K[i] @ pc)[:2] / pc[2], uv[i, 0], atol=1e-9)


# ----------------------------------------------------------------------------- COLMAP
def _model() -> ColmapModel:
    rng = np.random.default_rng(3)
    cams = {
        1: ColmapCamera(1, "PINHOLE", 64, 48, np.array([50.1, 51.2, 32.3, 23.9])),
        3: ColmapCamera(3, "SIMPLE_RADIAL", 64, 48, np.array([49.0, 32.0, 24.0, 1e-5])),
    }
    images = {}
    for iid in (1, 2, 5):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        xys = rng.random((6, 2)) * [64, 48]
        p3 = np.array([1, -1, 2, -1, 7, 8], dtype=np.int64)
        images[iid] = ColmapImage(iid, q, rng.normal(size=3), 1 if iid != 5 else 3, f"img {iid:02d}.jpg", xys, p3)
    images[9] = ColmapImage(9, np.array([1.0, 0, 0, 0]), np.zeros(3), 1, "no_points.png")
    pts = ColmapPoints3D(
        np.array([1, 2, 7, 8], dtype=np.int64),
        rng.normal(size=(4, 3)),
        rng.integers(0, 256, (4, 3)).astype(np.uint8),
        rng.random(4),
        [np.array([[1, 0], [2, 0]]), np.array([[1, 2]]), np.zeros((0, 2), np.int64), np.array([[5, 4], [1, 5], [2, 5]])],
    )
    return ColmapModel(cams, images, pts)


def _assert_models_equal(a: ColmapModel, b: ColmapModel) -> None:
    assert a.cameras.keys() == b.cameras.keys()
    for k in a.cameras:
        ca, cb = a.cameras[k], b.cameras[k]
        assert (ca.model, ca.width, ca.height) == (cb.model, cb.width, cb.height)
        assert np.array_equal(ca.params, cb.params)
    assert a.images.keys() == b.images.keys()
    for k in a.images:
        ia, ib = a.images[k], b.images[k]
        assert (ia.name, ia.camera_id) == (ib.name, ib.camera_id)
        assert np.array_equal(ia.qvec, ib.qvec) and np.array_equal(ia.tvec, ib.tvec)
        assert np.array_equal(ia.xys, ib.xys) and np.array_equal(ia.point3D_ids, ib.point3D_ids)
    pa, pb = a.points3D, b.points3D
    assert np.array_equal(pa.ids, pb.ids) and np.array_equal(pa.xyz, pb.xyz) and np.array_equal(pa.rgb, pb.rgb)
    assert np.array_equal(pa.error, pb.error)
    assert all(np.array_equal(x.reshape(-1, 2), y.reshape(-1, 2)) for x, y in zip(pa.tracks, pb.tracks))


@pytest.mark.parametrize("binary", [True, False])
def test_colmap_records_round_trip_exactly(tmp_path, binary):
    model = _model()
    write_model(model, tmp_path / "a", binary=binary)
    back = read_model(tmp_path / "a")
    _assert_models_equal(model, back)
    # binary -> text -> binary gives the same bytes
    write_model(back, tmp_path / "b", binary=not binary)
    write_model(read_model(tmp_path / "b"), tmp_path / "c", binary=binary)
    for name in ("cameras", "images", "points3D"):
        ext = ".bin" if binary else ".txt"
        assert (tmp_path / "a" / f"{name}{ext}").read_bytes() == (tmp_path / "c" / f"{name}{ext}").read_bytes()


@pytest.mark.parametrize("binary", [True, False])
def test_colmap_cameras_round_trip_and_pycolmap_agrees(tmp_path, binary):
    import pycolmap

    cams = _cams()
    names = [f"{i:03d}.png" for i in range(len(cams))]
    pts = np.random.default_rng(1).normal(size=(10, 3))
    write_colmap(tmp_path / "m", cams, names, pts, np.full((10, 3), 0.5), binary=binary)
    back, back_names, back_pts, back_cols = read_colmap(tmp_path / "m")
    assert back_names == names
    np.testing.assert_allclose(back.c2w, cams.c2w, atol=1e-12)
    np.testing.assert_array_equal(back.K, cams.K)
    np.testing.assert_array_equal(back_pts, pts)
    assert np.allclose(back_cols, 128 / 255)
    # pycolmap reads our files as the same cameras, and we read what pycolmap writes
    rec = pycolmap.Reconstruction(str(tmp_path / "m"))
    for im in rec.images.values():
        i = names.index(im.name)
        w2c = np.eye(4)
        w2c[:3] = im.cam_from_world().matrix()
        np.testing.assert_allclose(np.linalg.inv(w2c), cams.c2w[i], atol=1e-9)
        np.testing.assert_allclose(rec.cameras[im.camera_id].calibration_matrix(), cams.K[i], atol=1e-9)
    (tmp_path / "pt").mkdir()
    (tmp_path / "pb").mkdir()
    rec.write_text(str(tmp_path / "pt"))
    rec.write_binary(str(tmp_path / "pb"))
    for sub in ("pt", "pb"):
        c2, n2, p2, _ = read_colmap(tmp_path / sub)
        assert n2 == names
        np.testing.assert_allclose(c2.c2w, cams.c2w, atol=1e-9)
        np.testing.assert_allclose(c2.K, cams.K, atol=1e-9)
        np.testing.assert_allclose(p2, pts, atol=1e-9)


def test_colmap_distortion_small_is_ignored_large_is_refused(tmp_path, caplog):
    model = _model()
    model.images = {k: v for k, v in model.images.items() if v.camera_id == 3}  # only the SIMPLE_RADIAL camera
    with caplog.at_level(logging.WARNING, logger="see3d"):
        cams, names, ids = model_to_cameras(model)
    assert "ignored" in caplog.text
    np.testing.assert_allclose(cams.K[0], [[49, 0, 32], [0, 49, 24], [0, 0, 1]])
    model.cameras[3] = ColmapCamera(3, "OPENCV", 64, 48, np.array([50, 50, 32, 24, -0.2, 0.05, 0.0, 0.0]))
    write_model(model, tmp_path / "d")
    with pytest.raises(InputError, match="undistort"):
        read_colmap(tmp_path / "d")
    model.cameras[3] = ColmapCamera(3, "OPENCV_FISHEYE", 64, 48, np.array([50, 50, 32, 24, 0.0, 0.0, 0.0, 0.0]))
    with pytest.raises(InputError, match="OPENCV_FISHEYE"):
        model_to_cameras(model)


def test_colmap_bad_files_name_the_file(tmp_path):
    write_model(_model(), tmp_path / "m", binary=True)
    data = (tmp_path / "m" / "images.bin").read_bytes()
    (tmp_path / "m" / "images.bin").write_bytes(data[:-5])
    with pytest.raises(InputError, match=r"images\.bin.*truncated"):
        read_model(tmp_path / "m")
    write_model(_model(), tmp_path / "t", binary=False)
    txt = (tmp_path / "t" / "cameras.txt").read_text().replace("PINHOLE 64 48", "PINHOLE 64 48 1.0")
    (tmp_path / "t" / "cameras.txt").write_text(txt)
    with pytest.raises(InputError, match=r"cameras\.txt.*line 4.*PINHOLE takes 4 parameters"):
        read_model(tmp_path / "t")
    with pytest.raises(InputError, match="no COLMAP model"):
        read_model(tmp_path)


def test_colmap_files_pycolmap_misreads_fail_clearly_or_read_exactly(tmp_path):
    """Files pycolmap 4.0 reads into silent garbage (see see3d/io/colmap.py): a truncated cameras.bin or
    points3D.bin is an error naming the file, names with spaces in images.txt read back whole; and a
    non-numeric pose names the file and line."""
    import shutil

    write_model(_model(), tmp_path / "b", binary=True)
    for name in ("cameras.bin", "points3D.bin"):
        d = tmp_path / name
        shutil.copytree(tmp_path / "b", d)
        (d / name).write_bytes((d / name).read_bytes()[:-5])
        with pytest.raises(InputError, match=name.replace(".", r"\.") + ".*truncated"):
            read_model(d)
    write_model(_model(), tmp_path / "t", binary=False)
    assert sorted(im.name for im in read_model(tmp_path / "t").images.values()) == sorted(im.name for im in _model().images.values())
    lines = (tmp_path / "t" / "images.txt").read_text().splitlines()
    first = next(i for i, ln in enumerate(lines) if not ln.startswith("#"))
    tok = lines[first].split()
    lines[first] = " ".join([tok[0], "x" + tok[1], *tok[2:]])
    (tmp_path / "t" / "images.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"images\.txt.*line {first + 1}: malformed image"):
        read_model(tmp_path / "t")


# ----------------------------------------------------------------------------- LLFF
def test_llff_round_trip(tmp_path):
    cams = Cameras.from_fov(_cams().c2w, 50, 64, 48)
    bounds = np.array([[1.0, 9.0], [1.5, 8.0], [0.5, 7.0], [2.0, 10.0]])
    write_poses_bounds(tmp_path / "poses_bounds.npy", cams, bounds)
    arr = np.load(tmp_path / "poses_bounds.npy")
    assert arr.shape == (4, 17)
    np.testing.assert_array_equal(arr[:, 4:15:5], np.broadcast_to([48, 64, cams.K[0, 0, 0]], (4, 3)))  # hwf
    back, b2 = read_poses_bounds(tmp_path / "poses_bounds.npy")
    np.testing.assert_array_equal(back.c2w, cams.c2w)
    np.testing.assert_array_equal(back.K, cams.K)
    np.testing.assert_array_equal(b2, bounds)
    with pytest.raises(ValueError, match="fx != fy"):
        write_poses_bounds(tmp_path / "x.npy", _cams(), bounds)
    off = Cameras(cams.K.copy(), cams.c2w, 64, 48)
    off.K[:, 0, 2] += 1.0
    with pytest.raises(ValueError, match="principal point"):
        write_poses_bounds(tmp_path / "x.npy", off, bounds)
    np.save(tmp_path / "bad.npy", np.zeros((3, 15)))
    with pytest.raises(InputError, match=r"bad\.npy.*\(N, 17\)"):
        read_poses_bounds(tmp_path / "bad.npy")


def test_llff_bounds_from_points():
    cams = Cameras.from_fov(look_at([0, 0, 0], [0, 0, 1])[None], 60, 64, 48)
    pts = np.stack([np.zeros(100), np.zeros(100), np.linspace(2, 8, 100)], -1)
    near, far = bounds_from_points(cams, pts, 0, 100)[0]
    assert (near, far) == pytest.approx((2.0, 8.0))


def test_llff_fern_file_round_trips_bit_for_bit(shared, tmp_path):
    src = shared("data", "llff_fern", "poses_bounds.npy")
    cams, bounds = read_poses_bounds(src)
    assert (cams.width, cams.height) == (4032, 3024)
    small, _ = read_poses_bounds(src, image_size=(504, 378))
    assert small.K[0, 0, 0] == pytest.approx(cams.K[0, 0, 0] / 8) and small.K[0, 0, 2] == 252
    # forward-facing capture: every camera looks the same way, and the bounds are positive depths
    fwd = cams.c2w[:, :3, 2]
    assert (fwd @ fwd.mean(0) / np.linalg.norm(fwd.mean(0)) > 0.95).all()
    assert (bounds > 0).all() and (bounds[:, 1] > bounds[:, 0]).all()
    write_poses_bounds(tmp_path / "poses_bounds.npy", cams, bounds)
    np.testing.assert_array_equal(np.load(tmp_path / "poses_bounds.npy"), np.load(src))


# ----------------------------------------------------------------------------- nerfstudio camera_path.json
def test_camera_path_round_trip_and_nerfstudio_meaning(tmp_path):
    cams = _cams()
    write_camera_path(tmp_path / "camera_path.json", cams, fps=10)
    back = read_camera_path(tmp_path / "camera_path.json")
    np.testing.assert_allclose(back.c2w, cams.c2w, atol=1e-15)
    np.testing.assert_array_equal(back.K, cams.K)
    data = json.loads((tmp_path / "camera_path.json").read_text())
    assert data["seconds"] == pytest.approx(0.4) and data["render_width"] == 64
    entry = data["camera_path"][0]
    m = np.array(entry["camera_to_world"]).reshape(4, 4)
    np.testing.assert_allclose(m[:3, 2], -cams.c2w[0, :3, 2])  # OpenGL: the camera looks along -z
    assert entry["fov"] == pytest.approx(np.degrees(2 * np.arctan(24 / cams.K[0, 1, 1])))
    # a plain nerfstudio file (no see3d extension): vertical fov, square pixels, centred
    for e in data["camera_path"]:
        del e["see3d_intrinsics"]
    (tmp_path / "plain.json").write_text(json.dumps(data))
    plain = read_camera_path(tmp_path / "plain.json")
    np.testing.assert_allclose(plain.K[:, 1, 1], cams.K[:, 1, 1])
    np.testing.assert_allclose(plain.K[:, 0, 0], cams.K[:, 1, 1])
    np.testing.assert_allclose(plain.K[:, :2, 2], np.broadcast_to([32, 24], (4, 2)))
    data["camera_type"] = "fisheye"
    (tmp_path / "fish.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="fisheye"):
        read_camera_path(tmp_path / "fish.json")


def test_all_formats_agree(tmp_path):
    """The same cameras through transforms.json, camera_path.json, COLMAP and LLFF come back identical."""
    cams = Cameras.from_fov(_cams().c2w, 55, 64, 48)
    write_transforms_json(tmp_path / "transforms.json", cams)
    write_camera_path(tmp_path / "camera_path.json", cams)
    write_colmap(tmp_path / "sparse", cams, [f"{i}.png" for i in range(len(cams))], binary=False)
    write_poses_bounds(tmp_path / "poses_bounds.npy", cams, np.ones((len(cams), 2)))
    outs = [
        read_transforms_json(tmp_path / "transforms.json")[0],
        read_camera_path(tmp_path / "camera_path.json"),
        read_colmap(tmp_path / "sparse")[0],
        read_poses_bounds(tmp_path / "poses_bounds.npy")[0],
    ]
    for o in outs:
        np.testing.assert_allclose(o.c2w, cams.c2w, atol=1e-12)
        np.testing.assert_allclose(o.K, cams.K, atol=1e-12)
