"""The evaluation protocols with a real (tiny, random-weight) See3D model generating the extra views."""

from __future__ import annotations

import json

import numpy as np
import pytest

from see3d.cli import main
from see3d.datasets import load_scene
from see3d.eval.protocols import ReconstructRequest, cameras_between, order_along_path
from see3d.eval.runner import EvalConfig, evaluate
from see3d.io.cameras import Cameras, look_at


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """A 10-view synthetic scene with true depth (transforms.json layout) and a tiny See3D model folder."""
    from see3d.pipelines.tiny import write_tiny_see3d
    from see3d.synth import make_scene, scene_views

    root = tmp_path_factory.mktemp("eval_mvd")
    sc = make_scene(3)
    dist = float(np.mean(sc.view_distance))
    c2w = np.stack([look_at(sc.focus + np.array([np.sin(a) * dist, -0.3, -np.cos(a) * dist]), sc.focus) for a in np.linspace(-0.5, 0.5, 10)])
    views = scene_views(sc, Cameras.from_fov(c2w, 60.0, 48, 40))
    views.names = [f"f{i:02d}" for i in range(10)]
    views.save(root / "scene")
    write_tiny_see3d(root / "mvd", variants=("single", "sparse"))
    return root


def test_sparse3_with_tiny_mvd_feeds_generated_views_to_3dgs(tiny_setup, tmp_path):
    root = tiny_setup
    scene = load_scene(root / "scene")
    assert scene.views.depth is not None  # the generator warps with the scene's true depth
    requests: list[ReconstructRequest] = []

    def reconstruct(req):
        requests.append(req)
        return lambda cams: np.full((len(cams), cams.height, cams.width, 3), 0.5, np.float32)

    cfg = EvalConfig(data=root / "scene", out=tmp_path / "out", mvd_weights=root / "mvd", mvd_steps=2, mvd_size=64, generated_per_gap=2, device="cpu")
    data = evaluate(cfg, reconstruct=reconstruct)
    assert data["method"].startswith("see3d") and data["scenes"][0]["num_generated"] == 4
    assert not any("baseline" in n for n in data["notes"])
    (req,) = requests
    assert len(req.views) == 7 and req.num_inputs == 3
    np.testing.assert_array_equal(req.views.images[:3], scene.views.images[[1, 5, 9]])
    gen = req.views.images[3:]
    assert gen.shape == (4, 40, 48, 3) and np.isfinite(gen).all() and gen.min() >= 0 and gen.max() <= 1 and gen.std() > 0
    inputs = scene.views.cameras[[1, 5, 9]]
    expect = cameras_between(inputs[order_along_path(inputs)], 2)
    np.testing.assert_allclose(req.views.cameras.c2w[3:], expect.c2w, atol=1e-9)
    md = (tmp_path / "out" / "results.md").read_text()
    assert "MVD-generated views" in md and "| scene | transforms |" in md


def test_cli_single_view_protocol_with_tiny_mvd(tiny_setup, tmp_path):
    root = tiny_setup
    out = tmp_path / "single"
    args = ["eval", "--protocol", "single", "--data", str(root / "scene"), "--out", str(out), "--mvd-weights", str(root / "mvd")]
    assert main(args + ["--mvd-steps", "2", "--mvd-size", "64", "--single-targets", "3", "--device", "cpu"]) == 0
    js = json.loads((out / "results.json").read_text())
    sc = js["scenes"][0]
    assert sc["train_views"] == [0] and len(sc["per_view"]) == 3 and sc["test_views"][-1] == 9
    assert all(np.isfinite(v["psnr"]) for v in sc["per_view"])
    assert (out / "strips" / "scene.png").is_file() and len(list((out / "renders" / "scene").iterdir())) == 3
