"""The real components the protocols run with: 3DGS reconstruction and See3D generation.

- :func:`splat_reconstruct` fits Gaussian splats with :class:`see3d.splat.optimize.SplatTrainer` and
  renders them with :func:`see3d.splat.rasterize.render`.
- :func:`mvd_generate` loads a See3D multi-view diffusion folder and generates views at target cameras
  through the warping-based generation pipeline (:mod:`see3d.pipelines.generation`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from see3d.errors import See3DError
from see3d.eval.protocols import GenerateFn, ReconstructFn, ReconstructRequest, RenderFn
from see3d.geometry.cameras import Cameras
from see3d.log import get_logger

log = get_logger(__name__)


def splat_reconstruct(base=None, device: str = "auto", sparse_max_views: int = 9, show_progress: bool = True) -> ReconstructFn:
    """A reconstruct component: 3DGS optimisation with ``base`` (a ``ReconstructConfig``; default settings when None).

    The request decides ``iters`` (when given), ``seed`` and ``sparse``: fits of at most
    ``sparse_max_views`` views, all real (none generated), use the optimiser's sparse-input settings (no
    densification, random background, scale regularisation). Initial splats: the request's points when
    given (dense protocol on COLMAP scenes), else random in the view frusta, between the LLFF near/far
    bounds when known.
    """

    def reconstruct(req: ReconstructRequest) -> RenderFn:
        import torch

        from see3d.splat.config import ReconstructConfig
        from see3d.splat.optimize import SplatTrainer, initial_gaussians
        from see3d.splat.rasterize import render

        sparse = len(req.views) <= sparse_max_views and len(req.views) == req.num_inputs
        cfg = dataclasses.replace(base or ReconstructConfig(), device=device, seed=req.seed, sparse=sparse)
        if req.iters is not None:
            cfg = dataclasses.replace(cfg, iters=req.iters)
        rng = np.random.default_rng(cfg.seed)
        bounds = None
        if req.bounds is not None:
            b = np.asarray(req.bounds, dtype=np.float64)
            bounds = (float(b[:, 0].min()), float(b[:, 1].max()))
        init = initial_gaussians(req.views, cfg, rng, req.points, req.point_colors, bounds)
        trainer = SplatTrainer(req.views, cfg, init)
        log.info("3DGS: %d views (%d real), %d steps, sparse=%s, backend %s", len(req.views), req.num_inputs, cfg.iters, sparse, trainer.backend)
        trainer.train(show_progress=show_progress)
        g = trainer.sp.gaussians().detach()
        bg = torch.tensor(cfg.background, dtype=torch.float32, device=g.device)

        @torch.no_grad()
        def render_fn(cameras: Cameras) -> np.ndarray:
            K, c2w = cameras.torch(device=g.device)
            out = [render(g, K[i], cameras.width, cameras.height, c2w=c2w[i], background=bg, backend=trainer.backend)["rgb"] for i in range(len(cameras))]
            return torch.stack(out).clamp(0, 1).cpu().numpy()

        return render_fn

    return reconstruct


def mvd_generate(weights: str | Path, device: str = "cpu", seed: int = 0) -> GenerateFn:
    """A generate component from a See3D model folder (the official layout, or ``write_tiny_see3d``'s).

    Raises:
        See3DError: the warping-based generation pipeline is not part of this installation.
    """
    try:
        from see3d.pipelines import generation
    except ImportError as e:
        raise See3DError(
            "--mvd-weights needs the warping-based generation pipeline (see3d.pipelines.generation), which this installation lacks; "
            "run without --mvd-weights for the reconstruction-only baseline"
        ) from e
    return generation.make_generate_fn(Path(weights), device=device, seed=seed)  # type: ignore[attr-defined]
