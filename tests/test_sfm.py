"""Sparse-view structure from motion (pycolmap) on real LLFF fern photos, checked against poses_bounds.npy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from see3d.errors import InputError, See3DError
from see3d.geometry.sfm import align_poses_sim3, apply_sim3, relative_rotation_errors_deg, rotation_errors_deg, run_sfm, umeyama
from see3d.io.cameras import Cameras, look_at
from see3d.io.llff import read_poses_bounds


def _relative_rotation_errors(a: Cameras, b: Cameras) -> np.ndarray:
    """Alignment-free check: angle between a's and b's relative rotations for every camera pair."""
    pairs = [[i, j] for i in range(len(a)) for j in range(i + 1, len(a))]
    return np.concatenate([relative_rotation_errors_deg(a[p], b[p]) for p in pairs])


def test_fern_poses_agree_with_llff(shared, tmp_path):
    root = shared("data", "llff_fern")
    images = sorted((root / "images_8").glob("*.png"))
    sel = [0, 4, 8, 12, 16]
    res = run_sfm([images[i] for i in sel], workspace=tmp_path / "ws", num_threads=2)
    assert res.names == [images[i].name for i in sel] and not res.unregistered
    assert (tmp_path / "ws" / "database.db").is_file()
    gt, _ = read_poses_bounds(root / "poses_bounds.npy", image_size=(504, 378))
    gt = gt[sel]
    # similarity (Sim3) alignment of the SfM frame onto the LLFF frame, then per-camera rotation error
    s, R, t = align_poses_sim3(res.cameras, gt)
    aligned = apply_sim3(res.cameras, s, R, t)
    assert rotation_errors_deg(aligned, gt).max() < 2.0
    assert _relative_rotation_errors(res.cameras, gt).max() < 1.0
    spread = np.linalg.norm(gt.centers - gt.centers.mean(0), axis=1).mean()
    assert np.linalg.norm(aligned.centers - gt.centers, axis=1).max() < 0.05 * spread
    # focal length agrees with LLFF's (both from COLMAP on the same scene)
    assert res.cameras.K[0, 0, 0] == pytest.approx(gt.K[0, 0, 0], rel=0.03)
    # sparse points, moved into the LLFF frame, reproject onto their observations in the LLFF cameras:
    # this also checks the LLFF axis conversion end to end
    # (a few px: the remaining ~0.5 deg between 5-view and 20-view COLMAP poses; a wrong axis order gives hundreds)
    pts = s * res.points @ R.T + t
    errs, own = [], []
    for i in range(len(sel)):
        idx, uv = res.observations[i]
        assert len(idx) > 30
        proj, z = gt[i].project(pts[idx])
        assert (z > 0).all()
        errs.append(np.linalg.norm(proj[0] - uv, axis=1))
        own.append(np.linalg.norm(res.cameras[i].project(res.points[idx])[0][0] - uv, axis=1))
    assert np.median(np.concatenate(errs)) < 6.0
    assert np.median(np.concatenate(own)) < 1.0  # pixel convention of observations == Cameras'
    _, _, zs = res.observed_points(0)
    assert (zs > 0).all() and res.colors.shape == res.points.shape and (res.colors <= 1).all()


def test_unmatchable_images_fail_clearly(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        p = tmp_path / f"noise{i}.png"
        Image.fromarray((rng.random((96, 128, 3)) * 255).astype(np.uint8)).save(p)
        paths.append(p)
    with pytest.raises(See3DError, match="structure from motion"):
        run_sfm(paths, num_threads=2)
    with pytest.raises(InputError, match="at least 2"):
        run_sfm(paths[:1])
    Image.fromarray(np.zeros((50, 60, 3), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(InputError, match="different sizes"):
        run_sfm([paths[0], tmp_path / "small.png"])
    with pytest.raises(InputError, match="not found"):
        run_sfm([paths[0], tmp_path / "missing.png"])


def test_umeyama_recovers_similarity():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(20, 3))
    R = look_at([0, 0, 0], [1, 2, 3])[:3, :3]
    dst = 2.5 * src @ R.T + [1, -2, 3]
    s, R2, t = umeyama(src, dst)
    assert s == pytest.approx(2.5) and np.allclose(R2, R) and np.allclose(t, [1, -2, 3])


def test_relative_rotation_error_ignores_the_world_frame_and_sees_a_bending_trajectory():
    from see3d.splat.poses import se3_exp

    c2w = np.stack([look_at([3 * np.cos(a), 0.5, 3 * np.sin(a)], [0, 0, 0]) for a in np.linspace(0, 1, 6)])
    true = Cameras.from_fov(c2w, 60.0, 64, 48)
    # the same trajectory in another world frame: absolute errors are large, relative ones zero
    moved = apply_sim3(true, 2.0, look_at([0, 0, 0], [1, 2, 3])[:3, :3], np.array([1.0, 0.0, -1.0]))
    assert rotation_errors_deg(moved, true).min() > 10
    assert np.allclose(relative_rotation_errors_deg(moved, true), 0, atol=1e-5)
    # every camera turned about its centre 0.1 deg more than the one before, about one world axis (a bending
    # drift): 0.1 deg per consecutive pair, 0.5 deg for the last camera
    bent = c2w.copy()
    for i in range(len(bent)):
        bent[i, :3, :3] = se3_exp(torch.tensor([[0, 0, 0, 0, 0, np.radians(0.1 * i)]], dtype=torch.float64))[0, :3, :3].numpy() @ bent[i, :3, :3]
    bent = Cameras.from_fov(bent, 60.0, 64, 48)
    rpe = relative_rotation_errors_deg(bent, true)
    assert rpe.shape == (5,) and np.allclose(rpe, 0.1, atol=1e-4)
    assert rotation_errors_deg(bent, true)[-1] == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ValueError, match="same number"):
        relative_rotation_errors_deg(true[:1], true[:1])
