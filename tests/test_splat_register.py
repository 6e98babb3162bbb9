"""Camera registration with per-view metric depth (see3d.splat.register) and its place before joint refinement."""

from __future__ import annotations

import numpy as np
import pytest

from see3d.errors import InputError
from see3d.io.cameras import Cameras
from see3d.splat.config import ReconstructConfig
from see3d.splat.init import scene_extent
from see3d.splat.optimize import SplatTrainer
from see3d.splat.poses import perturb_c2w, rotation_angle_deg
from see3d.splat.register import register_views


def _rot_err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return rotation_angle_deg(np.swapaxes(a[:, :3, :3], 1, 2) @ b[:, :3, :3])


@pytest.fixture(scope="module")
def synth():
    """(true views, the same views with cameras 2..N rotated 1-2 deg and moved 2% of the extent) of a see3d.synth
    scene with its true metric depth."""
    from see3d.synth import camera_path, make_scene, scene_views

    rng = np.random.default_rng(0)
    scene = make_scene(1)
    views = scene_views(scene, Cameras.from_fov(camera_path("orbit", scene, 6, rng), 60.0, 64, 48))
    moved = views[:]
    moved.cameras = Cameras(views.cameras.K, perturb_c2w(views.cameras.c2w, (1.0, 2.0), 0.02 * scene_extent(views), rng), 64, 48)
    return views, moved


def test_registration_recovers_perturbed_cameras_from_depth(synth):
    views, moved = synth
    reg, summary = register_views(moved, steps=150)
    before, after = _rot_err(views.cameras.c2w, moved.cameras.c2w), _rot_err(views.cameras.c2w, reg.cameras.c2w)
    print("rotation error before", before.round(3), "after", after.round(3), summary["loss_start"], summary["loss_end"])
    assert before[1:].min() > 0.99
    np.testing.assert_allclose(reg.cameras.c2w[0], views.cameras.c2w[0], atol=1e-6)  # view 0 is the gauge
    assert after.max() < 0.1, after
    centre = np.linalg.norm(reg.cameras.centers - views.cameras.centers, axis=1) / scene_extent(views)
    assert centre.max() < 0.005, centre  # the depth fixes the scale: centres back within 0.5% of the extent
    assert summary["loss_end"] < 0.5 * summary["loss_start"] and summary["unregistered_views"] == []
    assert [c["view"] for c in summary["corrections"]] == moved.names
    np.testing.assert_array_equal(reg.images, moved.images)  # only the cameras change


def test_registration_refuses_views_without_metric_depth_or_overlap(synth):
    views, _ = synth
    no_depth = views[:]
    no_depth.depth = None
    with pytest.raises(InputError, match="needs metric depth"):
        register_views(no_depth)
    relative = views[:]
    relative.depth_is_metric = False
    with pytest.raises(InputError, match="needs metric depth"):
        register_views(relative)
    apart = views[[0, 3]]
    c2w = apart.cameras.c2w.copy()
    c2w[1, :3, 3] += 100.0  # the second camera far away: nothing of one view lands in the other
    apart.cameras = Cameras(apart.cameras.K, c2w, 64, 48)
    with pytest.raises(InputError, match="no two views overlap"):
        register_views(apart)


def test_trainer_registers_before_refinement_reports_from_the_given_cameras_and_resumes(synth, tmp_path):
    views, moved = synth
    cfg = ReconstructConfig(
        iters=12, sh_degree=0, init="depth", init_points=2000, checkpoint_every=0, refine_cameras=True, register_cameras=True, register_steps=150
    )
    tr = SplatTrainer.create(moved, cfg)
    assert tr.registration is not None and tr.given is moved
    assert _rot_err(views.cameras.c2w, tr.views.cameras.c2w).max() < 0.15  # trains at the registered cameras
    for _ in range(6):
        tr.train_step()
    report = tr.pose_report()  # from the cameras as given, not the registered ones
    np.testing.assert_allclose([r["rotation_deg"] for r in report], _rot_err(moved.cameras.c2w, tr.refined_c2w()), atol=1e-6)
    assert min(r["rotation_deg"] for r in report[1:]) > 0.9
    tr.save(tmp_path)
    back = SplatTrainer.load(tmp_path, moved)  # resumed with the given views: the registered cameras come from the checkpoint
    np.testing.assert_array_equal(back.views.cameras.c2w, tr.views.cameras.c2w)
    np.testing.assert_array_equal(back.refined_c2w(), tr.refined_c2w())
    assert back.registration == tr.registration
    off = SplatTrainer.create(moved, ReconstructConfig(iters=12, sh_degree=0, init="depth", init_points=2000, refine_cameras=True))
    assert off.registration is None and off.views is moved
    calibrated = SplatTrainer.create(
        moved, ReconstructConfig(iters=12, sh_degree=0, init="depth", init_points=2000, refine_cameras=False, register_cameras=True)
    )
    assert calibrated.registration is None  # no camera refinement, no registration


def test_pose_prior_holds_cameras_where_the_images_do_not_ask_for_a_move(synth):
    """The prior on the corrections (default on after registration only) keeps the refined cameras near the ones
    training started from; without it joint refinement moves them freely."""
    from see3d.splat.config import REGISTERED_POSE_PRIOR

    views, _ = synth
    base = dict(iters=60, sh_degree=0, init="depth", init_points=2000, checkpoint_every=0, refine_cameras=True, register_cameras=False)
    moved = {}
    for prior in (0.0, 1e5):
        tr = SplatTrainer.create(views, ReconstructConfig(**base, pose_prior=prior))  # the true cameras: nothing to correct
        tr.train(show_progress=False)
        moved[prior] = _rot_err(views.cameras.c2w, tr.refined_c2w())[1:].max()
    print("largest camera move from the true cameras, by prior weight:", moved)
    assert moved[1e5] < 0.25 * moved[0.0], moved
    cfg = ReconstructConfig()
    assert cfg.pose_prior_weight(registered=True) == REGISTERED_POSE_PRIOR and cfg.pose_prior_weight(registered=False) == 0.0
    assert ReconstructConfig(pose_prior=3.0).pose_prior_weight(registered=True) == 3.0


def test_reconstruct_registers_generated_views_and_reports_corrections_from_the_given_cameras(synth, tmp_path):
    """`see3d reconstruct --register-cameras` on a generate output (metric depth per view): the cameras are
    registered first, the summary says so, transforms.json holds the final cameras with each view's correction from the given one,
    and a resume picks the registered cameras up from the checkpoint."""
    import json

    from see3d.splat.reconstruct import load_training_data, reconstruct

    views, moved = synth
    moved.save(tmp_path / "gen")
    (tmp_path / "gen" / "generate_config.json").write_text("{}")  # marks a see3d generate output
    # cameras held still in the joint phase (pose_start past the end): transforms.json then holds the registered ones
    cfg = ReconstructConfig(iters=8, sh_degree=0, init_points=2000, checkpoint_every=4, register_cameras=True, register_steps=150, pose_start=1000)
    summary = reconstruct(load_training_data(tmp_path / "gen"), tmp_path / "out", cfg, show_progress=False)
    reg = summary["camera_registration"]
    assert reg["pairs"] > 0 and reg["loss_end"] < reg["loss_start"] and reg["unregistered_views"] == []
    tj = json.loads((tmp_path / "out" / "transforms.json").read_text())
    rot = np.array([f["correction"]["rotation_deg"] for f in tj["frames"]])
    truth = _rot_err(moved.cameras.c2w, views.cameras.c2w)  # how far each given camera is from the true one
    assert rot[0] == 0.0 and np.abs(rot[1:] - truth[1:]).max() < 0.1, (rot, truth)
    from see3d.io.transforms_json import read_transforms_json

    final, _ = read_transforms_json(tmp_path / "out" / "transforms.json")
    assert _rot_err(views.cameras.c2w, final.c2w).max() < 0.1  # the given cameras were 1.4-2 deg off
    again = reconstruct(load_training_data(tmp_path / "gen"), tmp_path / "out", ReconstructConfig(**{**cfg.__dict__, "iters": 10}), resume=True, show_progress=False)
    assert again["camera_registration"] == reg
