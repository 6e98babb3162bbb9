"""Tiny synthetic splat scenes for the splat tests (generated in code; no files)."""

from __future__ import annotations

import numpy as np
import torch

from see3d.io.cameras import Cameras, look_at
from see3d.io.views import Views
from see3d.splat.gaussians import Gaussians
from see3d.splat.rasterize import render


def random_gaussians(n: int, seed: int = 0, sh_degree: int = 3, dtype=torch.float64, spread: float = 0.6) -> Gaussians:
    """``n`` random anisotropic splats around the origin with random SH colours and opacities."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    k = (sh_degree + 1) ** 2
    return Gaussians(r(n, 3) * spread, r(n, 4), r(n, 3) * 0.5 - 2.0, r(n) * 2.0, r(n, k, 3) * 0.5)


def orbit_cameras(n: int, width: int, height: int, radius: float = 3.0, arc: float = 1.2, fov: float = 55.0) -> Cameras:
    """``n`` cameras on a horizontal arc around the origin, looking at it (OpenCV, world y down)."""
    c2w = [look_at(np.array([radius * np.sin(a), -0.4, -radius * np.cos(a)]), np.zeros(3)) for a in np.linspace(-arc / 2, arc / 2, n)]
    return Cameras.from_fov(np.stack(c2w), fov, width, height)


def synthetic_views(n_views: int = 6, width: int = 32, height: int = 24, n_splats: int = 200, seed: int = 0) -> tuple[Views, Gaussians]:
    """Views rendered (white background) from a ground-truth scene of opaque coloured blobs."""
    rng = np.random.default_rng(seed)
    gt = Gaussians.from_points(rng.uniform(-0.8, 0.8, (n_splats, 3)), rng.uniform(0, 1, (n_splats, 3)), scales=0.12, opacity=0.9, sh_degree=0)
    cams = orbit_cameras(n_views, width, height)
    imgs = [render(gt, cams.K[i], width, height, c2w=cams.c2w[i], background=[1, 1, 1], backend="cpu")["rgb"].numpy() for i in range(n_views)]
    return Views(np.clip(np.stack(imgs), 0, 1), cams), gt


def assert_resume_is_exact(views: Views, cfg, init: Gaussians, split_at: int, tmp_path, straight=None):
    """Train ``cfg.iters`` steps straight (unless ``straight`` is a trainer already trained), and again with a
    checkpoint at ``split_at`` and a resume from it; asserts identical splats. Returns (straight, resumed)."""
    from see3d.splat.optimize import SplatTrainer

    if straight is None:
        straight = SplatTrainer(views, cfg, init)
        straight.train(show_progress=False)
    first = SplatTrainer(views, cfg, init)
    for _ in range(split_at):
        first.train_step()
    first.save(tmp_path)
    resumed = SplatTrainer.load(tmp_path, views)
    assert resumed.step == split_at
    resumed.train(show_progress=False)
    a, b = straight.gaussians(), resumed.gaussians()
    assert len(a) == len(b)
    for k, v in a.tensors().items():
        assert torch.equal(v, b.tensors()[k]), k
    return straight, resumed
