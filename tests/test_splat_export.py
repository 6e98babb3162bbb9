"""Exports: TSDF mesh of a known shape, flythrough video, and the `see3d reconstruct` verb end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from see3d.cli import main
from see3d.errors import See3DError
from see3d.io.cameras import Cameras, look_at
from see3d.io.video import probe_video
from see3d.splat.export import extract_mesh, flythrough_path, write_flythrough
from see3d.splat.gaussians import Gaussians, read_ply
from splat_scenes import orbit_cameras, synthetic_views


def _sphere_splats(n: int = 6000, radius: float = 1.0) -> Gaussians:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    pts = radius * np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)
    return Gaussians.from_points(pts, np.full((n, 3), 0.7), scales=0.03, opacity=0.99, sh_degree=0)


def _ring_cameras(n: int, w: int, h: int) -> Cameras:
    c2w = []
    for a in np.linspace(0, 2 * np.pi, n, endpoint=False):
        for y in (-1.5, 1.5):
            c2w.append(look_at(np.array([3.0 * np.cos(a), y, 3.0 * np.sin(a)]), np.zeros(3)))
    return Cameras.from_fov(np.stack(c2w), 50, w, h)


def test_tsdf_mesh_of_a_sphere(tmp_path):
    cams = _ring_cameras(5, 64, 48)
    mesh = extract_mesh(_sphere_splats(), cams, tmp_path / "mesh.ply", resolution=40, backend="cpu")
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert len(mesh.faces) > 500
    assert abs(np.median(r) - 1.0) < 0.08  # on the splats (the rendered surface is ~1.5 sigma outside their centres)
    assert np.percentile(r, 95) - np.percentile(r, 5) < 0.08  # one clean shell ~1.5 voxels thick, no inner or outer walls
    n = mesh.vertex_normals
    assert np.mean(np.sum(n * mesh.vertices, 1) > 0) > 0.9  # normals point outwards (towards the cameras)
    import trimesh

    back = trimesh.load(tmp_path / "mesh.ply")
    assert len(back.vertices) == len(mesh.vertices)
    extract_mesh(_sphere_splats(), cams[:4], tmp_path / "mesh.glb", resolution=16, backend="cpu")
    assert (tmp_path / "mesh.glb").read_bytes()[:4] == b"glTF"


def test_mesh_errors_when_nothing_is_visible(tmp_path):
    cams = Cameras.from_fov(look_at(np.array([0.0, 0.0, 5.0]), np.array([0.0, 0.0, 10.0]))[None], 50, 32, 24)  # looking away
    with pytest.raises(See3DError, match="no pixel"):
        extract_mesh(_sphere_splats(200), cams, tmp_path / "m.ply", resolution=16)
    assert not (tmp_path / "m.ply").exists()


def test_flythrough_video(tmp_path):
    cams = orbit_cameras(3, 32, 24)
    path = flythrough_path(cams, 7)
    assert len(path) == 7
    np.testing.assert_allclose(path.c2w[0], cams.c2w[0], atol=1e-9)
    np.testing.assert_allclose(path.c2w[-1], cams.c2w[-1], atol=1e-9)
    out = write_flythrough(tmp_path / "fly.mp4", _sphere_splats(500).to(dtype=torch.float32), path, fps=10)
    info = probe_video(out)
    assert (info.width, info.height) == (32, 24) and info.num_frames in (0, 7)


def test_reconstruct_cli_end_to_end(tmp_path, capsys):
    views, _ = synthetic_views(n_views=9, width=32, height=24)
    views.save(tmp_path / "scene")
    out = tmp_path / "out"
    args = ["reconstruct", "--data", str(tmp_path / "scene"), "--out", str(out), "--iters", "60", "--sh-degree", "1", "--init-points", "800"]
    args += ["--background", "1", "1", "1", "--holdout-every", "4", "--checkpoint-every", "30", "--mesh", "ply", "--mesh-resolution", "24", "--video", "--video-frames", "12"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    for name in ("splats.ply", "config.json", "checkpoint.json", "checkpoint.safetensors", "metrics.json", "mesh.ply", "flythrough.mp4", "train_log.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert [v["view"] for v in metrics["views"]] == [views.names[i] for i in (0, 4, 8)]
    assert summary["test_psnr"] == pytest.approx(metrics["psnr"])
    g = read_ply(out / "splats.ply")
    assert len(g) == summary["num_gaussians"] and g.sh_degree == 1
    # the training cameras beside the .ply (what `see3d view` opens at), first camera first
    from see3d.io.transforms_json import read_transforms_json

    cams, frames = read_transforms_json(out / "splats.cameras.json")
    train = [i for i in range(len(views)) if i % 4]
    np.testing.assert_allclose(cams.c2w, views.cameras.c2w[train], atol=1e-9)
    assert [f["name"] for f in frames] == [views.names[i] for i in train]
    # resume to more steps continues from the checkpoint (step 40) instead of starting over
    assert main(["reconstruct", "--data", str(tmp_path / "scene"), "--out", str(out), "--iters", "70", "--sh-degree", "1", "--holdout-every", "4", "--resume"]) == 0
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 70
    log = json.loads((out / "train_log.json").read_text())["history"]
    assert [h["step"] for h in log] == list(range(61, 71))


def test_reconstruct_cli_bad_input(tmp_path, capsys):
    assert main(["reconstruct", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["reconstruct", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 1
    assert "cannot tell the dataset format" in capsys.readouterr().err
    views, _ = synthetic_views(n_views=2, width=32, height=24)
    views.save(tmp_path / "scene")
    assert main(["reconstruct", "--data", str(tmp_path / "scene"), "--out", str(tmp_path / "o"), "--resume"]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["reconstruct", "--data", str(tmp_path / "scene"), "--out", str(tmp_path / "o"), "--iters", "0"]) == 1
    assert "iters" in capsys.readouterr().err
