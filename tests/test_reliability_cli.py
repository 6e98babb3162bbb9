"""Reliability, group "cli" (issue 22): bad arguments give one line and exit 1 with nothing written; anything
unexpected gives one line naming the full log (-v prints the traceback); curate reports empty inputs;
generate --depth FILE works for a single image; frame paths cannot leave the scene folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from see3d.cli import main
from see3d.errors import InputError
from see3d.io.images import save_image
from test_curation_common import good_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _image(path: Path, size: int = 64) -> Path:
    rng = np.random.default_rng(0)
    save_image(path, rng.random((size, size, 3)).astype(np.float32))
    return path


def _one_error_line(capsys, verb: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [ln for ln in err if ln.startswith(f"see3d {verb}:")]
    assert len(lines) == 1, err
    assert "Traceback" not in "\n".join(err)
    return lines[0]


# ------------------------------------------------------------------------------------------ last-resort handler
def test_unexpected_error_is_one_line_with_the_log_path(tmp_path, capsys, monkeypatch):
    import see3d.commands.synth as synth

    def boom(args):
        return 1 / 0

    monkeypatch.setenv("SEE3D_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(synth, "run", boom)
    assert main(["synth", "--out", str(tmp_path / "s")]) == 1
    line = _one_error_line(capsys, "synth")
    assert "internal error: ZeroDivisionError" in line and "-v prints the traceback" in line
    (log,) = (tmp_path / "logs").iterdir()
    assert str(log) in line
    text = log.read_text()
    assert "Traceback" in text and "ZeroDivisionError" in text and "synth --out" in text
    # -v: the traceback on stderr as well
    assert main(["synth", "-v", "--out", str(tmp_path / "s")]) == 1
    assert "Traceback" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ option ranges
@pytest.mark.parametrize(
    "verb, args, option",
    [
        ("generate", ["--steps", "0"], "--steps"),
        ("generate", ["--n-frames", "0"], "--n-frames"),
        ("generate", ["--chunk-size", "0"], "--chunk-size"),
        ("generate", ["--fov-deg", "0"], "--fov-deg"),
        ("generate", ["--fov-deg", "180"], "--fov-deg"),
        ("reconstruct", ["--init-points", "0"], "--init-points"),
        ("reconstruct", ["--iters", "0"], "--iters"),
        ("demo", ["--size", "70"], "--size"),
        ("demo", ["--n-frames", "0"], "--n-frames"),
        ("edit", ["--steps", "0"], "--steps"),
        ("curate", ["--sample-fps", "0"], "--sample-fps"),
        ("curate", ["--quality", "101"], "--quality"),
        ("mvd", ["--steps", "0"], "--steps"),
        ("eval", ["--mvd-size", "70"], "--mvd-size"),
        ("synth", ["--n", "0"], "--n"),
        ("train", ["--max-steps", "0"], "--max-steps"),
    ],
)
def test_bad_option_is_one_argument_error_and_writes_nothing(verb, args, option, tmp_path, capsys):
    img = _image(tmp_path / "in.png")
    out = tmp_path / "out"
    base = {
        "generate": ["--image", str(img), "--fill", "telea", "--depth", str(tmp_path / "d.npy"), "--out", str(out)],
        "reconstruct": ["--data", str(tmp_path), "--out", str(out)],
        "demo": ["--out", str(out)],
        "edit": ["--scene", str(tmp_path), "--view", "0", "--edited", str(img), "--out", str(out)],
        "curate": [str(tmp_path), "--out", str(out)],
        "mvd": ["--weights", str(tmp_path), "--refs", str(tmp_path), "--warps", str(tmp_path), "--out", str(out)],
        "eval": ["--data", str(tmp_path), "--out", str(out)],
        "synth": ["--out", str(out)],
        "train": ["--data", str(tmp_path), "--output-dir", str(out), "--unet-config", str(tmp_path / "u.json")],
    }[verb]
    assert main([verb, *base, *args]) == 1
    line = _one_error_line(capsys, verb)
    assert option in line and "internal error" not in line
    assert not out.exists()


@pytest.mark.parametrize("verb", ["generate", "reconstruct", "edit", "demo", "mvd", "eval", "synth", "train"])
def test_out_pointing_at_a_file_is_refused(verb, tmp_path, capsys):
    img = _image(tmp_path / "in.png")
    f = tmp_path / "taken.txt"
    f.write_text("keep me")
    args = {
        "generate": ["--image", str(img), "--fill", "telea", "--depth", str(tmp_path / "d.npy"), "--out", str(f)],
        "reconstruct": ["--data", str(tmp_path), "--out", str(f)],
        "edit": ["--scene", str(tmp_path), "--view", "0", "--edited", str(img), "--out", str(f)],
        "demo": ["--out", str(f)],
        "mvd": ["--weights", str(tmp_path), "--refs", str(tmp_path), "--warps", str(tmp_path), "--out", str(f)],
        "eval": ["--data", str(tmp_path), "--out", str(f)],
        "synth": ["--out", str(f)],
        "train": ["--data", str(tmp_path), "--output-dir", str(f)],
    }[verb]
    assert main([verb, *args]) == 1
    line = _one_error_line(capsys, verb)
    assert "taken.txt" in line and ("existing file" in line) and "internal error" not in line
    assert f.read_text() == "keep me"


# ------------------------------------------------------------------------------------------ view
def test_view_bad_port_and_foreign_host_exit_at_once(tmp_path):
    import torch

    from see3d.splat.gaussians import Gaussians, write_ply

    ply = write_ply(tmp_path / "s.ply", Gaussians(torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]]), torch.zeros(1, 3), torch.zeros(1), torch.zeros(1, 1, 3)))
    cmd = [sys.executable, "-m", "see3d.cli", "view", str(ply)]
    for extra, expect in ((["--port", "99999"], "--port must be in 0..65535"), (["--host", "192.0.2.77"], "not an address of this machine")):
        p = subprocess.run(cmd + extra, capture_output=True, text=True, timeout=60)  # a hang fails the test by timeout
        assert p.returncode == 1, p.stderr
        assert expect in p.stderr and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_view_on_all_interfaces_warns(tmp_path, caplog):
    import torch

    from see3d.splat.gaussians import Gaussians, write_ply
    from see3d.viewer import serve

    ply = write_ply(tmp_path / "s.ply", Gaussians(torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]]), torch.zeros(1, 3), torch.zeros(1), torch.zeros(1, 1, 3)))
    viewer = serve(ply, host="0.0.0.0", port=0)
    try:
        assert any("other machines can reach it" in r.message for r in caplog.records)
    finally:
        viewer.stop()


# ------------------------------------------------------------------------------------------ curate inputs
def test_curate_reports_a_folder_without_videos(tmp_path, capsys, caplog):
    from see3d.curation import curate
    from see3d.curation.config import CurateConfig

    vid = good_video(tmp_path / "v" / "good.mp4", seconds=3)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no videos here")
    cfg = CurateConfig(workers=0, progress=False)
    summary = curate([str(vid), str(tmp_path / "empty")], tmp_path / "out", cfg)
    assert summary.videos == 1 and summary.empty_inputs == [str(tmp_path / "empty")]
    assert "held no videos" in summary.line() and any("holds no video files" in r.message for r in caplog.records)
    # only empty inputs: one argument error
    assert main(["curate", str(tmp_path / "empty"), "--out", str(tmp_path / "out2")]) == 1
    assert "no input videos given" in _one_error_line(capsys, "curate")


# ------------------------------------------------------------------------------------------ generate --depth FILE
def test_generate_single_image_with_one_depth_file(tmp_path, capsys):
    img = _image(tmp_path / "photo.png")
    np.save(tmp_path / "photo_depth_map.npy", np.full((64, 64), 2.0, np.float32))  # another stem than the image
    out = tmp_path / "gen"
    rc = main(["generate", "--image", str(img), "--depth", str(tmp_path / "photo_depth_map.npy"), "--fill", "telea",
               "--size", "64", "--n-frames", "2", "--chunk-size", "2", "--out", str(out)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["generated"] == 2
    assert (out / "transforms.json").is_file() and len(list((out / "images").iterdir())) == 3


# ------------------------------------------------------------------------------------------ frame paths
@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "images/../../outside.png"])
def test_transforms_json_paths_may_not_leave_the_scene(tmp_path, bad):
    from see3d.datasets import load_scene
    from see3d.io.cameras import Cameras
    from see3d.io.transforms_json import write_transforms_json
    from see3d.io.views import Views

    scene = tmp_path / "scene"
    _image(scene / "images" / "a.png")
    _image(tmp_path / "outside.png")
    write_transforms_json(scene / "transforms.json", Cameras.from_fov(np.eye(4)[None].repeat(2, 0), 50, 64, 64),
                          [{"file_path": "images/a.png"}, {"file_path": bad}])  # fmt: skip
    with pytest.raises(InputError, match="leaves the scene folder"):
        Views.load(scene)
    with pytest.raises(InputError, match="leaves the scene folder"):
        load_scene(scene, "transforms")
