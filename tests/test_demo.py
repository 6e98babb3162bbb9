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


def test_demo_with_missing_weights_is_a_clear_error(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--fill", "mvd", "--weights", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err
