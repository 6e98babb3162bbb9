"""`reconstruct`: posed images -> Gaussian splats (+ optional mesh and flythrough); the API behind
``see3d reconstruct``.

Reads a Views folder (``transforms.json`` + images, optional depth/masks), an LLFF scene
(``poses_bounds.npy``), a COLMAP scene (``sparse/0``) or another layout the evaluation readers know.
Writes into ``out``: ``splats.ply`` (standard 3DGS layout) with its cameras ``splats.cameras.json`` (refined when
camera refinement is on), ``config.json``, ``checkpoint.*``, ``train_log.json``, with camera refinement
``transforms.json`` (the refined training cameras, each frame with its correction), optionally ``metrics.json``
(held-out PSNR/SSIM), ``mesh.ply|glb`` and ``flythrough.mp4``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from see3d.config import save_config
from see3d.errors import InputError
from see3d.io.atomic import write_json_atomic
from see3d.io.cameras import Cameras
from see3d.io.outdir import check_out_dir
from see3d.io.views import Views
from see3d.log import get_logger
from see3d.splat.config import ReconstructConfig
from see3d.splat.export import write_scene_cameras
from see3d.splat.gaussians import Gaussians, write_ply
from see3d.splat.optimize import SplatTrainer
from see3d.splat.project import EPS2D

log = get_logger(__name__)


@dataclass
class TrainingData:
    """Posed images plus what the format offers for initialisation."""

    views: Views
    points: np.ndarray | None = None  # (P, 3) sparse world points (SfM)
    point_colors: np.ndarray | None = None  # (P, 3) in [0, 1]
    bounds: tuple[float, float] | None = None  # near/far depth over all views
    generated: bool = False  # views made by `see3d generate` (nominal cameras only approximately fit the pixels)


def load_training_data(data: str | Path, factor: int | None = None) -> TrainingData:
    """Read a scene folder (see the module docstring). ``factor`` downsizes images (LLFF default: 8, i.e. ``images_8``)."""
    data = Path(data)
    if not data.exists():
        raise InputError(data, "data folder not found")
    if (data / "transforms.json").is_file() and (data / "images").is_dir() and factor in (None, 1):
        try:
            return TrainingData(Views.load(data), generated=(data / "generate_config.json").is_file())
        except InputError:
            raise
        except (KeyError, ValueError) as e:
            log.info("%s is not a see3d Views folder (%s); trying the dataset readers", data, e)
    from see3d.datasets import load_scene

    scene = load_scene(data, factor=factor)
    bounds = None
    if scene.bounds is not None:
        bounds = (float(scene.bounds[:, 0].min()) * 0.9, float(scene.bounds[:, 1].max()) * 1.1)
    return TrainingData(scene.views, scene.points, scene.point_colors, bounds)


def evaluate(gaussians: Gaussians, views: Views, background=(0.0, 0.0, 0.0), backend: str = "auto", eps2d: float = EPS2D) -> dict:
    """PSNR / SSIM of ``gaussians`` rendered at ``views`` with ``backend`` on the splats' device (per view and mean;
    ``eps2d``: the screen-space dilation they were fitted with)."""
    from see3d.metrics import psnr, ssim
    from see3d.splat.export import render_views

    per = []
    for i, (rgb, _, _) in enumerate(render_views(gaussians, views.cameras, background, backend, desc="eval", eps2d=eps2d)):
        p = torch.as_tensor(rgb).permute(2, 0, 1)[None]
        t = torch.as_tensor(views.images[i]).permute(2, 0, 1)[None]
        per.append({"view": views.names[i], "psnr": float(psnr(p, t)[0]), "ssim": float(ssim(p, t)[0])})
    return {
        "psnr": float(np.mean([r["psnr"] for r in per])),
        "ssim": float(np.mean([r["ssim"] for r in per])),
        "views": per,
    }


def write_refined_cameras(path: Path, cameras, c2w: np.ndarray, report: list[dict]) -> dict:
    """Write the refined training cameras as a transforms.json (each frame: view name + its correction);
    returns the largest and mean correction."""
    from see3d.io.cameras import Cameras
    from see3d.io.transforms_json import write_transforms_json

    frames = [{"name": r["view"], "correction": {k: v for k, v in r.items() if k != "view"}} for r in report]
    write_transforms_json(path, Cameras(cameras.K, c2w, cameras.width, cameras.height), frames)
    rot = [r["rotation_deg"] for r in report]
    pct = [r["translation_pct_extent"] for r in report]
    return {"file": str(path), "max_rotation_deg": max(rot), "mean_rotation_deg": float(np.mean(rot)), "max_translation_pct_extent": max(pct)}


def reconstruct(
    data: TrainingData | Views,
    out: str | Path,
    cfg: ReconstructConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    holdout_every: int = 0,
    train_views: list[int] | None = None,
    mesh: str | None = None,
    video: bool = False,
    mesh_resolution: int = 192,
    video_frames: int = 120,
    show_progress: bool = True,
    view_roles: list[str] | None = None,
) -> dict:
    """Fit splats to ``data`` and write the outputs into ``out``. Returns a summary dict.

    Args:
        holdout_every: when > 0, views 0, k, 2k, ... are held out and scored into ``metrics.json``.
        train_views: indices (among the non-held-out views) to train on, e.g. 3 views for the sparse setting.
        mesh: None, "ply" or "glb": also extract a TSDF mesh from the training cameras.
        video: also render ``flythrough.mp4`` (``video_frames`` frames at 24 fps) along a path through the training cameras.
        resume: continue from the checkpoint in ``out`` (refused when it was made from other data).
        overwrite: without ``resume``, ``out`` must be new or empty unless this is set (its old content is then removed
            first), so the folder always describes one run.
        view_roles: optional role of each view (e.g. "input" / "generated"), kept with the cameras beside the ``.ply``
            so ``see3d view`` can colour and toggle them.
    """
    cfg = cfg or ReconstructConfig()
    if isinstance(data, Views):
        data = TrainingData(data)
    data.views.cameras.check("the training cameras")  # before anything is written
    cfg = cfg.resolved_for(generated=data.generated)
    out = Path(out)
    if not resume:
        check_out_dir(out, overwrite)
        if overwrite and out.is_dir():
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    views = data.views
    n = len(views)
    test_idx = list(range(0, n, holdout_every)) if holdout_every > 0 else []
    rest = [i for i in range(n) if i not in test_idx]
    if train_views is not None:
        bad = [i for i in train_views if i not in rest]
        if bad:
            raise InputError(None, f"train views {bad} are not among the {len(rest)} available (non-held-out) views")
        rest = list(train_views)
    if not rest:
        raise InputError(None, f"no training views left ({n} views, holding out every {holdout_every})")
    train = views[rest]
    t0 = time.time()
    if resume:
        trainer = SplatTrainer.load(out, train, cfg)
        log.info("resuming at step %d of %d", trainer.step, cfg.iters)
    else:
        trainer = SplatTrainer.create(train, cfg, data.points, data.point_colors, data.bounds, show_progress=show_progress)
    save_config(cfg, out / "config.json")
    g = trainer.train(out, show_progress=show_progress)
    train_s = time.time() - t0
    write_ply(out / "splats.ply", g)
    scene_cams = Cameras(train.cameras.K, trainer.refined_c2w(), train.cameras.width, train.cameras.height)
    roles = None if view_roles is None else [view_roles[i] for i in rest]
    write_scene_cameras(out / "splats.ply", scene_cams, [views.names[i] for i in rest], roles)
    # held-out scores, mesh and video render where the trainer did: its device with its rasterizer
    g_dev, backend = trainer.gaussians(trainer.device), trainer.backend
    write_json_atomic(out / "train_log.json", {"history": trainer.history, "seconds": train_s})
    summary: dict = {"splats": str(out / "splats.ply"), "num_gaussians": len(g), "train_seconds": train_s, "train_views": [views.names[i] for i in rest]}
    if trainer.poses is not None:
        summary["camera_corrections"] = write_refined_cameras(out / "transforms.json", train.cameras, trainer.refined_c2w(), trainer.pose_report())
    if trainer.registration is not None:
        summary["camera_registration"] = {k: v for k, v in trainer.registration.items() if k != "corrections"}
    if test_idx:
        metrics = evaluate(g_dev, views[test_idx], cfg.background, backend, cfg.eps2d)
        metrics.update(train_views=summary["train_views"], train_seconds=train_s, iters=cfg.iters, num_gaussians=len(g))
        write_json_atomic(out / "metrics.json", metrics)
        summary["test_psnr"] = metrics["psnr"]
        summary["test_ssim"] = metrics["ssim"]
    if mesh:
        from see3d.splat.export import extract_mesh

        extract_mesh(g_dev, train.cameras, out / f"mesh.{mesh}", resolution=mesh_resolution, backend=backend, eps2d=cfg.eps2d)
        summary["mesh"] = str(out / f"mesh.{mesh}")
    if video:
        from see3d.splat.export import flythrough_path, write_flythrough

        write_flythrough(out / "flythrough.mp4", g_dev, flythrough_path(train.cameras, video_frames), background=cfg.background, backend=backend, eps2d=cfg.eps2d)
        summary["video"] = str(out / "flythrough.mp4")
    return summary
