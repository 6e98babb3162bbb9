"""`see3d demo` end to end on the bundled sample (tiny settings so it stays fast)."""

import json

from see3d.cli import main
from see3d.io.views import Views
from see3d.splat.gaussians import read_ply


def test_demo_writes_views_splats_and_video(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--fill", "telea", "--n-frames", "4", "--iters", "40", "--video-frames", "6"]) == 0
    report = json.loads((out / "demo.json").read_text())
    assert report["filler"].startswith("telea")
    views = Views.load(out / "views")
    assert len(views) == 5 and views.depth is not None
    g = read_ply(out / "splats" / "splats.ply")
    assert len(g) > 1000
    assert (out / "splats" / "flythrough.mp4").stat().st_size > 1000
    assert "see3d view" in capsys.readouterr().out
    # the cameras beside the .ply, input first, for `see3d view` to open at and to toggle by role
    from see3d.viewer.camera_path import read_camera_roles

    assert read_camera_roles(out / "splats" / "splats.cameras.json") == ["input"] + ["generated"] * 4


def test_demo_with_missing_weights_is_a_clear_error(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--fill", "mvd", "--weights", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err


def test_demo_refuses_a_bad_fill_smoothing_before_writing(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--fill-smoothing", "-1"]) == 1
    assert "fill_smoothing" in capsys.readouterr().err and not (tmp_path / "d").exists()


def test_demo_runs_the_shipped_small_model_by_default(tmp_path):
    """The package ships the small See3D model; `see3d demo` fills the holes with it unless told otherwise."""
    import numpy as np

    from see3d.demo import default_demo_weights

    assert (default_demo_weights() / "unet" / "config.json").is_file()
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-frames", "4", "--steps", "4", "--iters", "40", "--video-frames", "6"]) == 0
    report = json.loads((out / "demo.json").read_text())
    assert report["filler"].startswith("mvd")
    views = Views.load(out / "views")
    assert len(views) == 5
    new = np.asarray(views.images[1:])
    holes = ~np.asarray(views.masks[1:]) if views.masks is not None else None
    assert holes is not None and holes.any()
    # the model painted the holes (not left black) with plausible colours of the scene
    assert new[holes].mean() > 0.05 and np.isfinite(new).all()
