"""Protocols, report and ``see3d eval`` with tiny injectable components on tiny synthetic scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from see3d.cli import main
from see3d.datasets import Scene, load_scene
from see3d.datasets.splits import Split
from see3d.errors import See3DError
from see3d.eval.protocols import ReconstructRequest, cameras_between, run_dense, run_single, run_sparse, split_for
from see3d.eval.runner import EvalConfig, evaluate
from see3d.eval.scoring import Scorer
from see3d.io.cameras import Cameras, look_at
from see3d.io.views import Views

W, H = 40, 32


def _scene(n: int = 10, fmt: str = "llff", seed: int = 0, points: bool = False, split: Split | None = None) -> Scene:
    rng = np.random.default_rng(seed)
    c2w = np.stack([look_at(np.array([a, 0.0, -4.0]), np.array([a * 0.5, 0.0, 0.0])) for a in np.linspace(-1, 1, n)])
    cams = Cameras.from_fov(c2w, 50.0, W, H)
    views = Views(rng.random((n, H, W, 3)).astype(np.float32), cams, names=[f"v{i:02d}" for i in range(n)])
    pts = rng.normal(size=(30, 3)) if points else None
    return Scene("tiny", fmt, Path("/nonexistent/tiny"), views, split=split, bounds=np.tile([1.0, 8.0], (n, 1)), points=pts, point_colors=None if pts is None else np.full((30, 3), 0.5))


class Oracle:
    """Reconstruct component that records its requests and renders the true image of a matching camera."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.requests: list[ReconstructRequest] = []

    def __call__(self, req: ReconstructRequest):
        self.requests.append(req)

        def render(cams: Cameras) -> np.ndarray:
            out = []
            for c in cams.c2w:
                i = int(np.argmin(np.abs(self.scene.views.cameras.c2w - c).sum((1, 2))))
                out.append(self.scene.views.images[i])
            return np.stack(out)

        return render


def _gray(req: ReconstructRequest):
    return lambda cams: np.full((len(cams), cams.height, cams.width, 3), 0.5, np.float32)


def test_split_for_each_protocol():
    s = _scene(20)
    assert split_for(s, "sparse3") == Split((1, 10, 19), (0, 8, 16), split_for(s, "sparse3").rule)
    assert len(split_for(s, "sparse9").train) == 9
    assert split_for(s, "dense").train == tuple(i for i in range(20) if i % 8)
    assert split_for(s, "single", 5).train == (0,)
    given = _scene(12, "transforms", split=Split(tuple(range(8)), (8, 9, 10, 11), "dataset"))
    sp = split_for(given, "sparse3")
    assert sp.train == (0, 4, 7) and sp.test == (8, 9, 10, 11)
    assert split_for(given, "dense") == given.split
    with pytest.raises(ValueError, match="unknown protocol"):
        split_for(s, "sparse4")


def test_cameras_between_interpolates():
    cams = _scene(3).views.cameras
    mid = cameras_between(cams, 1)
    assert len(mid) == 2
    np.testing.assert_allclose(mid.centers[0], 0.5 * (cams.centers[0] + cams.centers[1]))
    np.testing.assert_allclose(np.linalg.det(mid.c2w[:, :3, :3]), 1.0, atol=1e-9)
    assert len(cameras_between(cams, 4)) == 8
    assert len(cameras_between(cams[[0]], 4)) == 0


def test_sparse_baseline_uses_exactly_the_inputs():
    scene = _scene(10, points=True)
    oracle = Oracle(scene)
    r = run_sparse(scene, 3, oracle, Scorer(), iters=7)
    (req,) = oracle.requests
    assert r.split.train == (1, 5, 9) and r.split.test == (0, 8)
    np.testing.assert_array_equal(req.views.images, scene.views.images[[1, 5, 9]])
    assert req.num_inputs == 3 and req.iters == 7 and req.bounds.shape == (3, 2)
    assert req.points is None  # SfM points come from all views: not given to a sparse-view method
    assert r.mean["psnr"] == 100.0 and r.mean["ssim"] == pytest.approx(1.0) and r.mean["lpips"] is None
    assert r.num_generated == 0 and "baseline" in r.method and any("baseline" in n for n in r.notes)
    assert r.test_names == ["v00", "v08"] and r.pred.shape == (2, H, W, 3)


def test_sparse_with_generation_adds_views_between_inputs():
    scene = _scene(10)
    oracle = Oracle(scene)
    calls = []

    def generate(inputs: Views, targets: Cameras) -> Views:
        calls.append((inputs, targets))
        return Views(np.full((len(targets), H, W, 3), 0.25, np.float32), targets)

    r = run_sparse(scene, 3, oracle, Scorer(), generate=generate, generated_per_gap=2)
    (inputs, targets), = calls
    np.testing.assert_array_equal(inputs.images, scene.views.images[[1, 5, 9]])
    assert len(targets) == 4 and r.num_generated == 4
    # generated cameras lie between the inputs, never at a held-out test camera
    xs = targets.centers[:, 0]
    lo, hi = scene.views.cameras.centers[[1, 9], 0]
    assert ((xs > lo) & (xs < hi)).all()
    for t in (0, 8):
        assert np.abs(targets.centers - scene.views.cameras.centers[t]).sum(1).min() > 1e-3
    (req,) = oracle.requests
    assert len(req.views) == 7 and req.num_inputs == 3
    np.testing.assert_array_equal(req.views.images[:3], scene.views.images[[1, 5, 9]])
    assert (req.views.images[3:] == 0.25).all()
    assert "generated" in r.method and "generate" in r.seconds


def test_scores_match_a_direct_computation():
    scene = _scene(10)
    r = run_sparse(scene, 3, _gray, Scorer())
    truth = scene.views.images[[0, 8]]
    expect = [-10 * np.log10(np.mean((truth[i] - 0.5) ** 2)) for i in range(2)]
    assert [v["psnr"] for v in r.per_view] == pytest.approx(expect, abs=1e-3)
    assert r.mean["psnr"] == pytest.approx(np.mean(expect), abs=1e-3)


def test_masked_metrics_for_masked_scenes():
    scene = _scene(10, fmt="dtu")
    scene.views.masks = np.zeros((10, H, W), bool)
    scene.views.masks[:, :, : W // 2] = True
    scene.masked_metrics = True

    def half_right(req):  # truth on the masked (left) half, garbage on the right half
        def render(cams):
            idx = [int(np.argmin(np.abs(scene.views.cameras.c2w - c).sum((1, 2)))) for c in cams.c2w]
            out = scene.views.images[idx].copy()
            out[:, :, W // 2 :] = 0
            return out

        return render

    r = run_dense(scene, half_right, Scorer())
    assert r.mean["psnr"] == 100.0
    scene.masked_metrics = False
    assert run_dense(scene, half_right, Scorer()).mean["psnr"] < 30


def test_dense_and_single():
    scene = _scene(10, points=True)
    oracle = Oracle(scene)
    r = run_dense(scene, oracle, Scorer(), iters=3)
    (req,) = oracle.requests
    assert r.split.test == (0, 8) and len(req.views) == 8 and req.points is not None and req.iters == 3
    seen = []

    def generate(inputs, targets):
        seen.append((inputs.names, targets))
        return Views(np.zeros((len(targets), H, W, 3), np.float32), targets)

    s = run_single(scene, generate, Scorer(), n_targets=3)
    (names, targets), = seen
    assert names == ["v00"] and len(targets) == 3 and s.split.test[-1] == 9
    np.testing.assert_allclose(targets.c2w, scene.views.cameras.c2w[list(s.split.test)])
    expect = np.mean([-10 * np.log10(np.mean(scene.views.images[i] ** 2)) for i in s.split.test])
    assert s.mean["psnr"] == pytest.approx(expect, abs=1e-3)


# ---------------------------------------------------------------------------------------------- end to end
def _write_tiny_llff(folder: Path, n: int = 10) -> Scene:
    from see3d.io.images import save_image
    from see3d.io.llff import write_poses_bounds

    s = _scene(n)
    write_poses_bounds(folder / "poses_bounds.npy", s.views.cameras, s.bounds)
    for i, im in enumerate(s.views.images):
        save_image(folder / "images" / f"img{i:03d}.png", im)
    return s


def test_evaluate_writes_report_and_records_bad_scenes(tmp_path):
    _write_tiny_llff(tmp_path / "data" / "good")
    (tmp_path / "data" / "bad").mkdir()
    np.save(tmp_path / "data" / "bad" / "poses_bounds.npy", np.zeros((3, 5)))
    scene = load_scene(tmp_path / "data" / "good", factor=1)
    cfg = EvalConfig(data=tmp_path / "data", out=tmp_path / "out", factor=1, iters=5)
    data = evaluate(cfg, reconstruct=Oracle(scene), command="see3d eval --test")
    out = tmp_path / "out"
    js = json.loads((out / "results.json").read_text())
    assert js == json.loads(json.dumps(data))
    assert js["num_scenes"] == 1 and js["scenes"][0]["scene"] == "good" and js["scenes"][0]["train_views"] == [1, 5, 9]
    assert js["failures"][0]["scene"] == "bad" and "(N, 17)" in js["failures"][0]["error"]
    assert js["lpips"] == "skipped (no weights given)" and js["mean"]["lpips"] is None
    assert js["mean"]["psnr"] == 100.0 and js["command"] == "see3d eval --test"
    assert "torch" in js["versions"] and "cpu_count" in js["hardware"]
    assert "reconstruction-only baseline" in js["method"]
    md = (out / "results.md").read_text()
    assert "| good | llff | 1, 5, 9 | 2 |" in md and "lpips: skipped (no weights given)" in md
    assert "reconstruction-only baseline" in md and "CAT3D" in md and "bad:" in md
    strip = np.asarray(Image.open(out / "strips" / "good.png"))
    assert strip.shape[0] > 3 * 100 and strip.shape[2] == 3
    assert sorted(p.name for p in (out / "renders" / "good").iterdir()) == ["img000.png", "img008.png"]
    assert json.loads((out / "config.json").read_text())["protocol"] == "sparse3"


def test_evaluate_needs_a_generator_for_single(tmp_path):
    _write_tiny_llff(tmp_path / "s")
    with pytest.raises(See3DError, match="mvd-weights"):
        evaluate(EvalConfig(data=tmp_path / "s", protocol="single", out=tmp_path / "o"), reconstruct=_gray)


def test_cli_eval_runs_real_3dgs_on_a_tiny_scene(tmp_path, capsys):
    _write_tiny_llff(tmp_path / "scene")
    rc = main(
        ["eval", "--data", str(tmp_path / "scene"), "--out", str(tmp_path / "out"), "--factor", "1", "--iters", "20"]
        + ["--splat-init-points", "300", "--splat-sh-degree", "0", "--device", "cpu"]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "sparse3" in printed and "PSNR" in printed
    js = json.loads((tmp_path / "out" / "results.json").read_text())
    assert js["config"]["splat"]["init_points"] == 300 and js["config"]["iters"] == 20
    psnr = js["scenes"][0]["mean"]["psnr"]
    assert 3.0 < psnr < 40.0  # a real, finite score of real renders
    renders = np.asarray(Image.open(tmp_path / "out" / "renders" / "scene" / "img000.png"))
    assert renders.shape == (H, W, 3)
    assert main(["eval", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")]) == 1
    assert "data folder not found" in capsys.readouterr().err
