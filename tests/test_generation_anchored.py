"""The issue-17 case end to end: given cameras + relative depth maps + no SfM points, ``--targets`` with
``--images``, per-view alignment statistics, and a view that cannot be aligned failing loudly."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from see3d.io.cameras import Cameras, look_at
from see3d.io.images import load_image, save_image
from see3d.io.transforms_json import write_transforms_json
from see3d.io.views import Views
from see3d.synth import make_scene, render_full
from see3d.synth.depth_errors import as_relative, distort_depth

W, H = 256, 192


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "see3d.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def world():
    scene = make_scene(3, kind="room")
    eye0 = scene.focus + np.array([0.0, -0.4, -2.4])
    inputs = [eye0 + np.array([dx, 0, 0]) for dx in (-0.3, 0.0, 0.3)]
    targets = [eye0 + np.array([dx, -0.1, 0.1]) for dx in (-0.2, -0.1, 0.1, 0.2)]
    cams = Cameras.from_fov(np.stack([look_at(e, scene.focus) for e in inputs + targets]), 60.0, W, H)
    return render_full(scene, cams), cams


def _write_inputs(tmp_path, r, cams, input_cams=None):
    for i, name in enumerate("abc"):
        save_image(tmp_path / "in" / f"{name}.png", r.rgb[i])
        # a network-like relative depth: smooth log-depth warp, unknown scale and shift, median ~0.03
        rel = as_relative(distort_depth(r.depth[i], "smooth", seed=i, strength=0.15), "relative_depth", seed=i) * 0.01
        (tmp_path / "depth").mkdir(exist_ok=True)
        np.save(tmp_path / "depth" / f"{name}.npy", rel)
    write_transforms_json(tmp_path / "cams.json", cams[:3] if input_cams is None else input_cams)
    write_transforms_json(tmp_path / "targets.json", cams[3:])


def test_given_cameras_relative_depth_without_sfm_points(world, tmp_path):
    r, cams = world
    _write_inputs(tmp_path, r, cams)
    out = tmp_path / "out"
    p = _cli("generate", "--images", str(tmp_path / "in"), "--cameras", str(tmp_path / "cams.json"), "--depth", str(tmp_path / "depth"),
             "--depth-kind", "relative_depth", "--targets", str(tmp_path / "targets.json"), "--fill", "telea", "--size", str(W),
             "--chunk-size", "2", "--out", str(out))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["generated"] == 4  # the --targets cameras, not a default path
    cfg = json.loads((out / "generate_config.json").read_text())
    stats = cfg["alignment"]
    assert [s["view"] for s in stats[:3]] == ["a", "b", "c"]
    assert all(s["method"] == "lwlr" and s["anchors"] >= 30 and s["residual"] < 0.05 for s in stats[:3])
    assert all(s["method"] == "warped" for s in stats[3:])  # depth files exist for the inputs only
    views = Views.load(out)
    for i in range(3):  # the inputs' depth is in the cameras' units now (the raw maps' median is ~0.03)
        v = r.depth[i] > 0
        assert abs(np.median(views.depth[i][v]) / np.median(r.depth[i][v]) - 1) < 0.1
        assert np.median(np.abs(views.depth[i][v] - r.depth[i][v]) / r.depth[i][v]) < 0.15  # raw maps: ~1.0
    # the warps line up with the true renders of the target cameras and cover most of them
    for j in range(4):
        m = views.masks[3 + j]
        warp = load_image(out / "official" / "warps" / f"warp_{j:03d}.png")
        assert m.mean() > 0.75
        mse = float(((warp - r.rgb[3 + j]) ** 2)[m].mean())
        assert 10 * np.log10(1 / mse) > 22


def test_a_view_that_cannot_be_aligned_is_an_error_naming_it(world, tmp_path):
    r, cams = world
    # view c's camera is turned away from what its image shows: its keypoints match nothing consistently
    bad = cams[:3].c2w.copy()
    bad[2] = look_at(cams.centers[2], cams.centers[2] + np.array([0.0, 0.0, -1.0]))
    _write_inputs(tmp_path, r, cams, Cameras(cams.K[:3], bad, W, H))
    out = tmp_path / "out"
    p = _cli("generate", "--images", str(tmp_path / "in"), "--cameras", str(tmp_path / "cams.json"), "--depth", str(tmp_path / "depth"),
             "--depth-kind", "relative_depth", "--fill", "telea", "--size", str(W), "--out", str(out))  # fmt: skip
    assert p.returncode == 1
    assert "view 'c'" in p.stderr and "anchors" in p.stderr and "Traceback" not in p.stderr
    assert not (out / "generate_config.json").exists()


def test_sparse_inputs_along_a_path_preset(world):
    from see3d.depth.true_depth import TrueDepth
    from see3d.pipelines.generation import GenerateConfig, generate_from_sparse

    r, cams = world
    names = ["a", "b", "c"]
    cfg = GenerateConfig(n_frames=3, chunk_size=3, size=W, fill="telea", sparse_path="orbit_right")
    res = generate_from_sparse(list(r.rgb[:3]), names, TrueDepth(r.depth[:3], names), cfg, cameras=cams[:3], new_view_depth=None)
    assert len(res.warps) == 3
    # an orbit to the right of the first input camera, not the interpolation through the inputs
    right = cams.c2w[0, :3, 0]
    steps = (res.views.cameras.centers[3:] - cams.centers[0]) @ right
    assert (np.diff(steps) > 0).all() and steps[0] > 0
    assert [s["method"] for s in res.alignment] == ["lwlr"] * 3 + ["warped"] * 3
