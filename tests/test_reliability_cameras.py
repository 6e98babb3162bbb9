"""Reliability, group "cameras" (issue 22): one validation of :class:`Cameras` (``Cameras.check``) at every boundary
where cameras enter -- readers, generate, reconstruct, view; targets that see nothing are warned about and their
coverage is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from see3d.cli import main
from see3d.errors import InputError
from see3d.io.cameras import Cameras, look_at
from see3d.io.conventions import opencv_to_opengl
from see3d.io.images import save_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")

W, H = 64, 48


def _good() -> Cameras:
    return Cameras.from_fov(np.stack([look_at(np.array([x, 0.0, -3.0]), np.zeros(3)) for x in (-0.5, 0.5)]), 50.0, W, H)


def _broken(kind: str) -> Cameras:
    cams = _good()
    K, c2w = cams.K.copy(), cams.c2w.copy()
    if kind == "singular":
        c2w[1, :3, :3] = 0.0
    elif kind == "rank_deficient":
        c2w[1, :3, 2] = c2w[1, :3, 0]
    elif kind == "scaled_rotation":
        c2w[1, :3, :3] *= 2.0
    elif kind == "mirrored":
        c2w[1, :3, 0] *= -1.0
    elif kind == "focal_zero":
        K[1, 0, 0] = 0.0
    elif kind == "negative_focal":
        K[1, 1, 1] = -K[1, 1, 1]
    elif kind == "principal_point":
        K[1, 0, 2] = 10 * W
    elif kind == "last_row":
        c2w[1, 3] = [0.0, 0.0, 1.0, 1.0]
    return Cameras(K, c2w, W, H)


BAD = {
    "singular": "not a proper rotation",
    "rank_deficient": "not a proper rotation",
    "scaled_rotation": "not a proper rotation",
    "mirrored": "not a proper rotation",
    "focal_zero": "focal length must be positive",
    "negative_focal": "focal length must be positive",
    "principal_point": "principal point",
    "last_row": "last row",
}


def test_good_cameras_pass():
    cams = _good()
    assert cams.check("x") is cams


@pytest.mark.parametrize("kind", sorted(BAD))
def test_each_invalid_camera_is_one_clear_error(kind):
    with pytest.raises(InputError, match=BAD[kind]) as e:
        _broken(kind).check("cams.json")
    assert "cams.json: camera 1:" in str(e.value)


def _transforms(path: Path, cams: Cameras) -> Path:
    data = {"w": W, "h": H, "fl_x": float(cams.K[0, 0, 0]), "fl_y": float(cams.K[0, 1, 1]), "cx": float(cams.K[0, 0, 2]), "cy": float(cams.K[0, 1, 2]),
            "frames": [{"file_path": f"images/{i}.png", "transform_matrix": m.tolist(), "fl_x": float(cams.K[i, 0, 0]), "fl_y": float(cams.K[i, 1, 1]),
                        "cx": float(cams.K[i, 0, 2]), "cy": float(cams.K[i, 1, 2])}
                       for i, m in enumerate(opencv_to_opengl(cams.c2w))]}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _camera_path(path: Path, cams: Cameras) -> Path:
    data = {"render_width": W, "render_height": H, "camera_type": "perspective",
            "camera_path": [{"camera_to_world": m.reshape(-1).tolist(), "see3d_intrinsics": {"fx": float(K[0, 0]), "fy": float(K[1, 1]),
                             "cx": float(K[0, 2]), "cy": float(K[1, 2])}} for m, K in zip(opencv_to_opengl(cams.c2w), cams.K, strict=True)]}  # fmt: skip
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("kind", ["singular", "focal_zero", "negative_focal", "scaled_rotation"])
def test_every_reader_checks_cameras(kind, tmp_path):
    from see3d.io.camera_path import read_camera_path
    from see3d.io.transforms_json import read_transforms_json
    from see3d.viewer.camera_path import load_camera_path

    bad = _broken(kind)
    tj = _transforms(tmp_path / "transforms.json", bad)
    cp = _camera_path(tmp_path / "camera_path.json", bad)
    for read, path in ((read_transforms_json, tj), (read_camera_path, cp), (load_camera_path, tj), (load_camera_path, cp)):
        with pytest.raises(InputError, match=BAD[kind]) as e:
            read(path)
        assert str(path) in str(e.value)


def test_llff_reader_checks_cameras(tmp_path):
    from see3d.io.llff import read_poses_bounds, write_poses_bounds

    write_poses_bounds(tmp_path / "poses_bounds.npy", _broken("scaled_rotation"), np.tile([1.0, 8.0], (2, 1)))
    with pytest.raises(InputError, match="not a proper rotation"):
        read_poses_bounds(tmp_path / "poses_bounds.npy")


@pytest.mark.parametrize("kind", ["singular", "focal_zero", "negative_focal"])
def test_generate_refuses_bad_target_cameras_in_one_line(kind, tmp_path, capsys):
    rng = np.random.default_rng(0)
    save_image(tmp_path / "in.png", rng.random((H, W, 3)).astype(np.float32))
    np.save(tmp_path / "in.npy", np.full((H, W), 2.0, np.float32))
    targets = _transforms(tmp_path / "targets" / "transforms.json", _broken(kind))
    out = tmp_path / "out"
    rc = main(["generate", "--image", str(tmp_path / "in.png"), "--depth", str(tmp_path / "in.npy"), "--fill", "telea",
               "--size", "64", "--targets", str(targets), "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and BAD[kind] in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_reconstruct_refuses_bad_training_cameras_before_writing(tmp_path):
    from see3d.io.views import Views
    from see3d.splat.config import ReconstructConfig
    from see3d.splat.reconstruct import reconstruct

    views = Views(np.random.default_rng(0).random((2, H, W, 3)).astype(np.float32), _broken("focal_zero"), names=["a", "b"])
    with pytest.raises(InputError, match="focal length must be positive"):
        reconstruct(views, tmp_path / "out", ReconstructConfig(iters=2, init="random", init_points=10, backend="cpu"), show_progress=False)
    assert not (tmp_path / "out").exists()


def test_targets_that_see_nothing_are_warned_and_recorded(tmp_path, caplog):
    from see3d.io.views import Views
    from see3d.pipelines.generation import MIN_COVERAGE, TeleaFiller, generate_along_path

    rng = np.random.default_rng(0)
    inputs = Views(rng.random((1, H, W, 3)).astype(np.float32), _good()[0], np.full((1, H, W), 3.0, np.float32), names=["in"])
    c_in = _good()[0].c2w[0]
    away = c_in.copy()
    away[:3, :3] = c_in[:3, :3] @ np.diag([-1.0, 1.0, -1.0])  # turned around: looks away from everything known
    far = look_at(np.array([0.0, 0.0, -3000.0]), np.array([0.0, 0.0, -6000.0]))
    targets = Cameras(np.repeat(_good().K[:1], 3, 0), np.stack([c_in, away, far]), W, H)
    res = generate_along_path(inputs, targets, TeleaFiller(), None, chunk_size=3, target_names=["same", "away", "far"])
    assert res.coverage[0] > 0.9 and res.coverage[1] < MIN_COVERAGE and res.coverage[2] < MIN_COVERAGE
    warned = [r.message for r in caplog.records if "sees almost nothing" in r.message]
    assert len(warned) == 2 and "away" in warned[0] and "far" in warned[1]
    out = res.save(tmp_path / "gen")
    cov = json.loads((out / "coverage.json").read_text())
    assert cov["seeing_nothing"] == ["away", "far"] and cov["views"]["same"] > 0.9
