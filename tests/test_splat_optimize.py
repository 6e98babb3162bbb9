"""Splat optimisation: fits a tiny synthetic scene, densifies consistently, resumes exactly, rejects bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from see3d.errors import InputError
from see3d.splat.config import ReconstructConfig
from see3d.splat.densify import SplatParams, densify_and_prune
from see3d.splat.gaussians import Gaussians
from see3d.splat.optimize import SplatTrainer, initial_gaussians
from splat_scenes import assert_resume_is_exact, synthetic_views


@pytest.fixture(scope="module")
def scene():
    return synthetic_views(n_views=6, width=32, height=24)


def _cfg(**kw) -> ReconstructConfig:
    base = dict(iters=150, sh_degree=1, init="random", init_points=1500, background=[1.0, 1.0, 1.0], backend="cpu", checkpoint_every=0)
    base.update(kw)
    return ReconstructConfig(**base)


def _psnr_all(trainer: SplatTrainer) -> float:
    from see3d.splat.rasterize import render

    g, v = trainer.gaussians(), trainer.views
    errs = []
    with torch.no_grad():
        for i in range(len(v)):
            out = render(g, v.cameras.K[i], v.cameras.width, v.cameras.height, c2w=v.cameras.c2w[i], background=[1, 1, 1])
            errs.append(float(((out["rgb"].clamp(0, 1) - torch.as_tensor(v.images[i])) ** 2).mean()))
    return float(-10 * np.log10(np.mean(errs)))


def test_optimisation_fits_a_tiny_scene(scene):
    views, _ = scene
    cfg = _cfg()
    init = initial_gaussians(views, cfg, np.random.default_rng(0), bounds=(1.5, 5.0))
    tr = SplatTrainer(views, cfg, init)
    before = _psnr_all(tr)
    losses = [tr.train_step()["loss"] for _ in range(cfg.iters)]
    after = _psnr_all(tr)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    assert after > 24.0, (before, after)
    assert after > before + 8.0


def test_densification_keeps_params_and_adam_state_consistent():
    g = Gaussians.from_points(np.random.default_rng(0).uniform(-1, 1, (100, 3)), sh_degree=1)
    g.log_scales[:50] = np.log(0.5)  # big -> split
    g.log_scales[50:] = np.log(0.01)  # small -> clone
    sp = SplatParams(g, {"means": 1e-3, "quats": 1e-3, "log_scales": 1e-3, "opacity_logits": 1e-2, "sh_dc": 1e-3, "sh_rest": 1e-3})
    loss = sum(p.square().sum() for p in sp.params.values())
    loss.backward()
    sp.optimizer.step()
    grads = torch.zeros(100)
    grads[[0, 1, 60, 61, 62]] = 1.0  # two big (split), three small (clone)
    stats = densify_and_prune(sp, grads, extent=1.0, grad_threshold=0.5, percent_dense=0.1, min_opacity=0.005, max_gaussians=10_000, prune_big=False, generator=torch.Generator().manual_seed(0))
    assert stats["cloned"] == 3 and stats["split"] == 2
    assert len(sp) == 100 + 3 + 2 * 2 - 2
    for grp in sp.optimizer.param_groups:
        p = grp["params"][0]
        assert sp.params[grp["name"]] is p
        st = sp.optimizer.state[p]
        assert st["exp_avg"].shape == p.shape and st["exp_avg_sq"].shape == p.shape
    # split children are 1.6x smaller than their parent
    assert torch.allclose(sp.params["log_scales"][-4:].exp(), torch.full((4, 3), 0.5 / 1.6), rtol=2e-3)
    # budget: no growth past max_gaussians
    n = len(sp)
    densify_and_prune(sp, torch.ones(n), 1.0, 0.5, 0.1, 0.005, max_gaussians=n + 2, prune_big=False, generator=torch.Generator())
    assert len(sp) <= n + 2


def test_checkpoint_resume_continues_identically(scene, tmp_path):
    views, _ = scene
    # a schedule with densification, an opacity reset and SH increases inside both halves
    cfg = _cfg(iters=60, densify_from=5, densify_every=10, densify_until=50, opacity_reset_every=25, sh_interval=20, densify_grad=1e-5)
    init = initial_gaussians(views, cfg, np.random.default_rng(0), bounds=(1.5, 5.0))
    first = SplatTrainer(views, cfg, init)
    for _ in range(30):
        first.train_step()
    assert len(first.sp) != len(init)  # densification happens before the checkpoint
    assert_resume_is_exact(views, cfg, init, 30, tmp_path)


def test_bad_input_errors(scene, tmp_path):
    views, _ = scene
    with pytest.raises(InputError, match="no checkpoint"):
        SplatTrainer.load(tmp_path, views)
    (tmp_path / "checkpoint.json").write_text("{not json")
    (tmp_path / "checkpoint.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="unreadable"):
        SplatTrainer.load(tmp_path, views)
    with pytest.raises(InputError, match="no initial points"):
        initial_gaussians(views, _cfg(init="points"), np.random.default_rng(0))
    with pytest.raises(InputError, match="no depth"):
        initial_gaussians(views, _cfg(init="depth"), np.random.default_rng(0))
    with pytest.raises(ValueError, match="iters"):
        ReconstructConfig(iters=0)
    with pytest.raises(ValueError, match="sh_degree"):
        ReconstructConfig(sh_degree=4)


def test_init_from_metric_depth_lands_on_the_surface(scene):
    views, gt = scene
    from see3d.io.views import Views
    from see3d.splat.rasterize import render

    depth = np.stack(
        [render(gt, views.cameras.K[i], 32, 24, c2w=views.cameras.c2w[i], backend="cpu")["depth"].numpy() for i in range(len(views))]
    ).astype(np.float32)
    dv = Views(views.images, views.cameras, depth=depth)
    g = initial_gaussians(dv, _cfg(init="auto", init_points=500), np.random.default_rng(0))
    assert len(g) == 500
    # every initial splat lies within the ground-truth blobs' region, not spread through the frustum
    assert float(g.means.abs().max()) < 1.3


def test_depth_init_colours_from_pixels_and_scales_from_the_pixel_footprint():
    from see3d.io.cameras import Cameras, look_at
    from see3d.io.views import Views
    from see3d.splat.init import points_from_depth

    rng = np.random.default_rng(0)
    cams = Cameras.from_fov(np.stack([look_at(np.array([0.0, 0, -3]), np.zeros(3))] * 2), 60.0, 40, 30)
    depth = np.stack([np.full((30, 40), 2.0), np.full((30, 40), 4.0)]).astype(np.float32)
    images = rng.uniform(0, 1, (2, 30, 40, 3)).astype(np.float32)
    pts, cols, scales = points_from_depth(Views(images, cams, depth=depth), 600, rng)
    assert len(pts) == 600
    f = cams.K[0, 0, 0]
    spacing = np.sqrt(2 * 30 * 40 / 600)  # 2 valid pixels per kept point
    z = pts @ cams.c2w[0, :3, 2] - cams.c2w[0, :3, 3] @ cams.c2w[0, :3, 2]  # depth along the optical axis
    np.testing.assert_allclose(scales, 0.5 * spacing * z / f, rtol=1e-5)
    assert set(np.round(z, 4)) == {2.0, 4.0}
    # each colour is its pixel's colour
    pix = np.rint(((pts - cams.c2w[0, :3, 3]) @ cams.c2w[0, :3, :3]) / z[:, None] @ cams.K[0].T - 0.5).astype(int)[:, :2]
    view = (np.round(z) == 4).astype(int)
    np.testing.assert_allclose(cols, images[view, pix[:, 1], pix[:, 0]], atol=1e-6)


def test_half_resolution_maps_pixels_masks_and_intrinsics_exactly():
    from see3d.splat.optimize import half_resolution

    rng = np.random.default_rng(0)
    blocks = torch.as_tensor(rng.uniform(0, 1, (2, 6, 8, 3)), dtype=torch.float32)
    images = blocks.repeat_interleave(2, 1).repeat_interleave(2, 2)  # (2, 12, 16, 3), constant on 2x2 blocks
    masks = torch.ones(2, 12, 16, dtype=torch.bool)
    masks[0, 3, 5] = False  # one pixel out -> its whole coarse pixel (1, 2) out
    K = torch.tensor([[[20.0, 0.0, 8.0], [0.0, 21.0, 6.0], [0.0, 0.0, 1.0]]]).repeat(2, 1, 1)
    small, small_masks, K2 = half_resolution(images, masks, K)
    assert small.shape == (2, 6, 8, 3) and torch.allclose(small, blocks)
    assert not small_masks[0, 1, 2] and int(small_masks.sum()) == 2 * 48 - 1
    # a point seen at fine pixel coordinates (u, v) is seen at (u / 2, v / 2) in the coarse image
    X = torch.tensor([0.3, -0.2, 2.0])
    uv = (K[0] @ X)[:2] / X[2]
    uv2 = (K2[0] @ X)[:2] / X[2]
    torch.testing.assert_close(uv2, uv / 2)
    # an odd last row/column is dropped, not averaged with padding
    assert half_resolution(images[:, :11, :15], None, K)[0].shape == (2, 5, 7, 3)


def test_coarse_to_fine_schedule_and_resume(tmp_path):
    """The first ``coarse_until`` steps fit half-resolution views, the rest full resolution; the default
    is two thirds of the run on the CPU rasterizer, none on gsplat or for small images; resume across the switch is exact."""
    assert ReconstructConfig(iters=1000).coarse_steps("cpu", 504, 378) == 666
    assert ReconstructConfig(iters=1000).coarse_steps("gsplat", 504, 378) == 0
    assert ReconstructConfig(iters=1000).coarse_steps("cpu", 100, 300) == 0  # too small to halve
    assert ReconstructConfig(iters=1000, coarse_until=0).coarse_steps("cpu", 504, 378) == 0
    # refined cameras fit at full resolution throughout unless asked otherwise (a coarse phase biases them)
    assert ReconstructConfig(iters=1000, refine_cameras=True).coarse_steps("cpu", 504, 378) == 0
    assert ReconstructConfig(iters=1000, refine_cameras=True, coarse_until=300).coarse_steps("cpu", 504, 378) == 300
    views, _ = synthetic_views(n_views=3, width=128, height=128, n_splats=60)
    cfg = _cfg(iters=12, coarse_until=6, init_points=300, densify_from=2, densify_every=3, densify_until=10, densify_grad=1e-6)
    init = initial_gaussians(views, cfg, np.random.default_rng(0), bounds=(1.5, 5.0))
    straight = SplatTrainer(views, cfg, init)
    sizes = []
    for _ in range(cfg.iters):
        sizes.append(straight._view(0)[1].shape[:2])
        straight.train_step()
    assert sizes == [(64, 64)] * 6 + [(128, 128)] * 6
    assert_resume_is_exact(views, cfg, init, 4, tmp_path, straight=straight)


def test_eps2d_is_used_for_training_and_for_the_runs_evaluation(scene, monkeypatch):
    """``ReconstructConfig.eps2d`` (the screen-space dilation) reaches the training renders, and ``evaluate``
    renders with the dilation it is given (a fit at 0.05 scored at 0.3 would be scored blurred)."""
    import see3d.splat.optimize as optimize
    from see3d.splat.rasterize import render
    from see3d.splat.reconstruct import evaluate

    views, g = scene
    seen = []

    def spy(*args, **kw):
        seen.append(kw.get("eps2d"))
        return render(*args, **kw)

    monkeypatch.setattr(optimize, "render", spy)
    cfg = _cfg(eps2d=0.05, iters=3)
    SplatTrainer(views, cfg, initial_gaussians(views, cfg, np.random.default_rng(0), bounds=(1.5, 5.0))).train(show_progress=False)
    assert seen == [0.05] * 3

    g = g.to(dtype=torch.float32)
    scores = {e: evaluate(g, views, [1.0, 1.0, 1.0], "cpu", eps2d=e)["psnr"] for e in (0.05, 0.3)}
    with torch.no_grad():
        out = render(g, views.cameras.K[0], views.cameras.width, views.cameras.height, c2w=views.cameras.c2w[0], background=[1, 1, 1], eps2d=0.05)
    mse = float(((out["rgb"].clamp(0, 1) - torch.as_tensor(views.images[0])) ** 2).mean())
    assert abs(evaluate(g, views[[0]], [1.0, 1.0, 1.0], "cpu", eps2d=0.05)["psnr"] + 10 * np.log10(mse)) < 1e-3
    assert scores[0.05] != scores[0.3]
