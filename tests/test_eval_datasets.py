"""Evaluation dataset readers and splits: tiny datasets written in each format, plus the real LLFF fern."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from see3d.datasets import detect_format, find_scenes, load_scene
from see3d.datasets.splits import DTU_EXCLUDED, Split, dtu_split, holdout_split, single_view_split
from see3d.errors import InputError
from see3d.io.cameras import Cameras, look_at
from see3d.io.colmap import write_colmap
from see3d.io.conventions import opencv_to_opengl
from see3d.io.images import save_image
from see3d.io.llff import write_poses_bounds

W, H = 32, 24


def _cameras(n: int, w: int = W, h: int = H, f: float = 30.0) -> Cameras:
    c2w = np.stack([look_at(np.array([np.sin(a) * 3, -0.5, -np.cos(a) * 3]), np.zeros(3)) for a in np.linspace(-0.6, 0.6, n)])
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    return Cameras(np.repeat(K[None], n, 0), c2w, w, h)


def _images(n: int, w: int = W, h: int = H, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, h, w, 3)).astype(np.float32)


def _write_images(folder: Path, imgs: np.ndarray, names: list[str]) -> None:
    for im, n in zip(imgs, names):
        save_image(folder / n, im)


# ---------------------------------------------------------------------------------------------- splits
def test_holdout_split_matches_the_published_convention():
    s3 = holdout_split(20, 3)
    assert s3.test == (0, 8, 16) and s3.train == (1, 10, 19)
    assert holdout_split(20, 6).train == (1, 4, 7, 12, 15, 19)
    assert holdout_split(20, 9).train == (1, 3, 5, 7, 10, 12, 14, 17, 19)
    dense = holdout_split(20)
    assert dense.test == (0, 8, 16) and len(dense.train) == 17
    with pytest.raises(ValueError):
        holdout_split(3, 3)


def test_dtu_and_single_splits():
    s = dtu_split(3)
    assert s.train == (25, 22, 28)
    assert len(s.test) == 25 and not set(s.test) & set(DTU_EXCLUDED) and not set(s.test) & {0, 8, 13, 40, 44, 48}
    assert dtu_split(9).test == s.test
    with pytest.raises(ValueError):
        dtu_split(10)
    one = single_view_split(25, 4)
    assert one.train == (0,) and one.test[-1] == 24 and len(one.test) == 4 and list(one.test) == sorted(one.test)
    assert single_view_split(5).test == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="both train and test"):
        Split((1, 2), (2, 3), "x")


# ---------------------------------------------------------------------------------------------- LLFF
def _write_llff(folder: Path, n: int = 10, factor: int | None = None) -> tuple[Cameras, np.ndarray]:
    cams = _cameras(n)
    imgs = _images(n)
    names = [f"IMG_{i:04d}.png" for i in range(n)]
    write_poses_bounds(folder / "poses_bounds.npy", cams, np.tile([1.0, 5.0], (n, 1)))
    if factor is None:
        _write_images(folder / "images", imgs, names)
    else:
        small = imgs[:, ::factor, ::factor]
        _write_images(folder / f"images_{factor}", small, names)
    return cams, imgs


def test_llff_reader_scales_intrinsics(tmp_path):
    cams, imgs = _write_llff(tmp_path / "scene", factor=None)
    s = load_scene(tmp_path / "scene", factor=1)
    assert s.format == "llff" and len(s) == 10 and s.bounds.shape == (10, 2)
    np.testing.assert_allclose(s.views.cameras.c2w, cams.c2w, atol=1e-12)
    np.testing.assert_allclose(s.views.cameras.K, cams.K)
    np.testing.assert_allclose(s.views.images, imgs, atol=1 / 255)
    half = load_scene(tmp_path / "scene", factor=2)  # no images_2/: images/ area-downscaled
    assert half.views.images.shape == (10, H // 2, W // 2, 3)
    np.testing.assert_allclose(half.views.cameras.K[:, 0, 0], cams.K[:, 0, 0] / 2)
    # images_4 is used when present
    _write_llff(tmp_path / "s4", factor=4)
    q = load_scene(tmp_path / "s4", factor=4)
    assert q.views.images.shape == (10, H // 4, W // 4, 3)
    np.testing.assert_allclose(q.views.cameras.K[0, 0, 2], W / 8)
    with pytest.raises(InputError, match="images_8"):
        load_scene(tmp_path / "s4", factor=8)


def test_llff_reader_errors(tmp_path):
    _write_llff(tmp_path / "a")
    (tmp_path / "a" / "images" / "IMG_0000.png").unlink()
    with pytest.raises(InputError, match="9 images") as e:
        load_scene(tmp_path / "a", factor=1)
    assert "poses_bounds.npy" in str(e.value)
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "b" / "poses_bounds.npy", np.zeros((4, 12)))
    with pytest.raises(InputError, match=r"\(N, 17\)"):
        load_scene(tmp_path / "b", format="llff")


def test_llff_fern(shared):
    fern = shared("data", "llff_fern")
    s = load_scene(fern)
    assert s.format == "llff" and len(s) == 20
    assert s.views.images.shape == (20, 378, 504, 3)
    assert s.views.cameras.K[0, 0, 2] == pytest.approx(252.0)
    # rotations are proper and the forward axes point roughly the same way (forward-facing capture)
    R = s.views.cameras.c2w[:, :3, :3]
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-6)
    fwd = R[:, :, 2]
    assert (fwd @ fwd.mean(0) > 0.9 * np.linalg.norm(fwd.mean(0))).all()
    assert (s.bounds[:, 0] > 0).all() and (s.bounds[:, 1] > s.bounds[:, 0]).all()


# ---------------------------------------------------------------------------------------------- DTU
def _write_dtu(folder: Path, n: int = 6, masks: bool = True) -> Cameras:
    cams = _cameras(n)
    rng = np.random.default_rng(1)
    scale = np.diag([2.0, 2.0, 2.0, 1.0])
    scale[:3, 3] = [0.1, -0.2, 0.3]
    data = {}
    for i in range(n):
        P = np.eye(4)
        P[:3, :4] = cams.K[i] @ cams.w2c[i][:3, :4] * rng.uniform(0.5, 2.0)  # P is defined up to scale
        data[f"world_mat_{i}"] = P
        data[f"scale_mat_{i}"] = scale
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "cameras.npz", **data)
    _write_images(folder / "image", _images(n), [f"{i:06d}.png" for i in range(n)])
    if masks:
        m = np.zeros((n, H, W), bool)
        m[:, 4:20, 8:24] = True
        _write_images(folder / "mask", m, [f"{i:03d}.png" for i in range(n)])
    return cams


def test_dtu_reader_recovers_projection(tmp_path):
    cams = _write_dtu(tmp_path / "scan1")
    s = load_scene(tmp_path / "scan1", factor=1)
    assert s.format == "dtu" and s.masked_metrics and s.views.masks.shape == (6, H, W)
    assert s.views.masks[:, 10, 10].all() and not s.views.masks[:, 0, 0].any()
    np.testing.assert_allclose(s.views.cameras.K, cams.K, atol=1e-9)
    # a point in the normalised frame projects like the world point scale_mat @ X does in the true cameras
    scale = np.diag([2.0, 2.0, 2.0, 1.0])
    scale[:3, 3] = [0.1, -0.2, 0.3]
    xn = np.array([[0.1, 0.2, -0.1], [0.0, -0.3, 0.2]])
    xw = (scale @ np.c_[xn, np.ones(2)].T).T[:, :3]
    uv_n, _ = s.views.cameras.project(xn)
    uv_w, _ = cams.project(xw)
    np.testing.assert_allclose(uv_n, uv_w, atol=1e-8)
    np.testing.assert_allclose(np.linalg.det(s.views.cameras.c2w[:, :3, :3]), 1.0, atol=1e-9)
    world = load_scene(tmp_path / "scan1", factor=1, format="dtu")
    assert world.views.cameras.c2w.shape == (6, 4, 4)
    half = load_scene(tmp_path / "scan1", factor=2)
    assert half.views.images.shape == (6, H // 2, W // 2, 3) and half.views.masks.shape == (6, H // 2, W // 2)


def test_dtu_reader_errors(tmp_path):
    _write_dtu(tmp_path / "s", masks=False)
    (tmp_path / "s" / "image" / "000005.png").unlink()
    with pytest.raises(InputError, match="6 cameras but"):
        load_scene(tmp_path / "s")
    (tmp_path / "t").mkdir()
    np.savez(tmp_path / "t" / "cameras.npz", foo=np.eye(4))
    with pytest.raises(InputError, match="world_mat") as e:
        load_scene(tmp_path / "t")
    assert "cameras.npz" in str(e.value)
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "cameras.npz").write_bytes(b"garbage")
    with pytest.raises(InputError, match="readable"):
        load_scene(tmp_path / "u")


# ---------------------------------------------------------------------------------------------- COLMAP
def test_colmap_reader(tmp_path):
    n = 9
    cams = _cameras(n)
    names = [f"frame_{i}.png" for i in range(n)]
    pts = np.random.default_rng(2).normal(size=(50, 3))
    write_colmap(tmp_path / "room" / "sparse" / "0", cams, names, pts, np.full((50, 3), 0.5))
    imgs = _images(n)
    _write_images(tmp_path / "room" / "images", imgs, names)
    s = load_scene(tmp_path / "room", factor=1)
    assert s.format == "colmap" and s.views.names == [f"frame_{i}" for i in range(n)]
    np.testing.assert_allclose(s.views.cameras.c2w, cams.c2w, atol=1e-9)
    np.testing.assert_allclose(s.points, pts)
    assert s.point_colors.shape == (50, 3)
    half = load_scene(tmp_path / "room", factor=2)
    np.testing.assert_allclose(half.views.cameras.K[:, 0, 0], cams.K[:, 0, 0] / 2)
    (tmp_path / "room" / "images" / "frame_3.png").unlink()
    with pytest.raises(InputError, match="frame_3.png"):
        load_scene(tmp_path / "room", factor=1)


# ---------------------------------------------------------------------------------------------- transforms
def _blender_frames(cams: Cameras, prefix: str) -> list[dict]:
    gl = opencv_to_opengl(cams.c2w)
    return [{"file_path": f"./{prefix}/r_{i}", "transform_matrix": gl[i].tolist()} for i in range(len(cams))]


def test_blender_transforms_with_alpha(tmp_path):
    folder = tmp_path / "lego"
    cams = _cameras(5)
    angle = 2 * np.arctan(0.5 * W / 30.0)
    for split, idx in (("train", [0, 1, 2]), ("test", [3, 4])):
        (folder / split).mkdir(parents=True)
        for j in range(len(idx)):
            rgba = np.zeros((H, W, 4), np.uint8)
            rgba[..., 0] = 200
            rgba[:12, :, 3] = 255  # top half opaque red, bottom half transparent
            Image.fromarray(rgba, "RGBA").save(folder / split / f"r_{j}.png")
        sub = cams[idx]
        (folder / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": angle, "frames": _blender_frames(sub, split)}))
    s = load_scene(folder)
    assert s.format == "transforms" and len(s) == 5
    assert s.split.train == (0, 1, 2) and s.split.test == (3, 4)
    np.testing.assert_allclose(s.views.cameras.K[:, 0, 0], 30.0)
    np.testing.assert_allclose(s.views.cameras.c2w, cams.c2w, atol=1e-12)
    np.testing.assert_allclose(s.views.images[0, 20, 5], [1.0, 1.0, 1.0])  # transparent -> white background
    np.testing.assert_allclose(s.views.images[0, 2, 5], [200 / 255, 0, 0], atol=1e-6)
    assert s.views.masks[0, 2, 5] and not s.views.masks[0, 20, 5]
    (folder / "transforms_test.json").write_text("{not json")
    with pytest.raises(InputError, match="transforms_test.json.*not valid JSON"):
        load_scene(folder)


def test_nerfstudio_transforms_with_split_file(tmp_path):
    folder = tmp_path / "garden"
    cams = _cameras(6)
    names = [f"images/f{i}.png" for i in range(6)]
    _write_images(folder, _images(6), names)
    K = cams.K[0]
    gl = opencv_to_opengl(cams.c2w)
    tj = {"w": W, "h": H, "fl_x": K[0, 0], "fl_y": K[1, 1], "cx": K[0, 2], "cy": K[1, 2]}
    tj["frames"] = [{"file_path": names[i], "transform_matrix": gl[i].tolist()} for i in range(6)]
    (folder / "transforms.json").write_text(json.dumps(tj))
    assert load_scene(folder).split is None
    (folder / "split.json").write_text(json.dumps({"train": ["f0", "f2.png", "images/f4.png"], "test": ["f1", "f5"]}))
    s = load_scene(folder)
    assert s.split.train == (0, 2, 4) and s.split.test == (1, 5)
    np.testing.assert_allclose(s.views.cameras.c2w, cams.c2w, atol=1e-12)
    (folder / "split.json").write_text(json.dumps({"train": ["f0", "nope"], "test": ["f1"]}))
    with pytest.raises(InputError, match="'nope'") as e:
        load_scene(folder)
    assert "split.json" in str(e.value)
    (folder / "split.json").unlink()
    tj["train_filenames"], tj["test_filenames"] = names[:4], names[3:]
    (folder / "transforms.json").write_text(json.dumps(tj))
    with pytest.raises(InputError, match="both train and test"):
        load_scene(folder)
    tj["frames"][0].pop("transform_matrix")
    (folder / "transforms.json").write_text(json.dumps(tj))
    with pytest.raises(InputError, match="malformed camera"):
        load_scene(folder)


# ---------------------------------------------------------------------------------------------- discovery
def test_detect_and_find_scenes(tmp_path):
    _write_llff(tmp_path / "data" / "fern")
    _write_dtu(tmp_path / "data" / "scan2")
    (tmp_path / "data" / "notes").mkdir()
    assert detect_format(tmp_path / "data" / "fern") == "llff"
    assert detect_format(tmp_path / "data" / "scan2") == "dtu"
    assert detect_format(tmp_path / "data") is None
    assert [p.name for p in find_scenes(tmp_path / "data")] == ["fern", "scan2"]
    assert find_scenes(tmp_path / "data" / "fern") == [tmp_path / "data" / "fern"]
    assert [p.name for p in find_scenes(tmp_path / "data", format="dtu")] == ["scan2"]
    with pytest.raises(InputError, match="neither a scene"):
        find_scenes(tmp_path / "data" / "notes")
    with pytest.raises(InputError, match="format"):
        load_scene(tmp_path / "data" / "notes")
