"""Joint camera refinement on a synthetic scene (``see3d.synth``): perturbed cameras, with and without refinement.

A procedural scene is rendered (true metric depth) from ``--views`` cameras on an orbit; every 4th view is
held out with its true camera. The training cameras except the first (the gauge) are perturbed by a
rotation of 1-2 degrees about a random axis and a translation of 2% of the scene extent. Three fits, same
settings, depth-initialised from the nominal (perturbed) cameras:

- ``true``: the unperturbed cameras, no refinement (the reference);
- ``perturbed``: perturbed cameras, no refinement;
- ``refined``: perturbed cameras with joint camera refinement.

Prints held-out PSNR of each at the true test cameras, and after aligning each test camera to the frozen
splats (``align``: the protocol of pose-free methods; the scene frame is defined by the training cameras
only up to their gauge), and for ``refined`` the remaining rotation / translation error of the training
cameras against the true ones: raw (view 0 is the gauge) and after the best global rotation (``aligned``).

    .venv/bin/python benchmarks/pose_refine.py [--size 96 72] [--iters 1500] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from see3d.io.cameras import Cameras
from see3d.splat.config import ReconstructConfig
from see3d.splat.optimize import SplatTrainer, initial_gaussians
from see3d.splat.poses import align_cameras, perturb_c2w, rotation_angle_deg
from see3d.splat.reconstruct import evaluate
from see3d.synth import camera_path, make_scene, scene_views


def make_data(seed: int, n: int, width: int, height: int, rot_deg=(1.0, 2.0), trans_frac: float = 0.02):
    """(train views with true cameras, train views with perturbed cameras, held-out views)."""
    rng = np.random.default_rng(seed)
    scene = make_scene(seed)
    c2w = camera_path("orbit", scene, n, rng)
    views = scene_views(scene, Cameras.from_fov(c2w, 60.0, width, height))
    test = list(range(0, n, 4))
    train = views[[i for i in range(n) if i not in test]]
    from see3d.splat.init import scene_extent

    ext = scene_extent(train)
    pert = perturb_c2w(train.cameras.c2w, rot_deg, trans_frac * ext, rng)
    moved = train[:]
    moved.cameras = Cameras(train.cameras.K, pert, width, height)
    return train, moved, views[test]


def camera_errors(c2w: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per view: rotation error (degrees) and centre distance between ``c2w`` and ``true`` (N, 4, 4)."""
    rel = np.swapaxes(true[:, :3, :3], 1, 2) @ c2w[:, :3, :3]
    return rotation_angle_deg(rel), np.linalg.norm(c2w[:, :3, 3] - true[:, :3, 3], axis=1)


def globally_aligned_rotation_errors(c2w: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Rotation errors (degrees) after the one rotation that best maps the estimated camera rotations onto the true ones."""
    u, _, vt = np.linalg.svd(np.einsum("nij,nkj->ik", true[:, :3, :3], c2w[:, :3, :3]))
    d = u @ np.diag([1, 1, np.linalg.det(u @ vt)]) @ vt  # true ~= d @ estimated
    return rotation_angle_deg(np.swapaxes(true[:, :3, :3], 1, 2) @ (d @ c2w[:, :3, :3]))


def fit(views, test, cfg: ReconstructConfig, align_steps: int = 60) -> tuple[float, float, SplatTrainer]:
    """(held-out PSNR at the given test cameras, held-out PSNR after aligning them, trainer)."""
    init = initial_gaussians(views, cfg, np.random.default_rng(cfg.seed))
    tr = SplatTrainer(views, cfg, init)
    g = tr.train(show_progress=False)
    aligned = test[:]
    aligned.cameras = Cameras(test.cameras.K, align_cameras(g, test, align_steps, extent=tr.extent), test.cameras.width, test.cameras.height)
    return evaluate(g, test, cfg)["psnr"], evaluate(g, aligned, cfg)["psnr"], tr


def run(seed: int, n: int, width: int, height: int, iters: int, init_points: int) -> dict:
    train, moved, test = make_data(seed, n, width, height)
    base = dict(iters=iters, sh_degree=1, init="depth", init_points=init_points, seed=seed, checkpoint_every=0)
    r0, e0 = camera_errors(moved.cameras.c2w, train.cameras.c2w)
    out: dict = {"views": n, "size": [width, height], "iters": iters, "perturbation_rot_deg_max": float(r0.max()), "perturbation_trans_max": float(e0.max())}
    for name, views, refine in (("true", train, False), ("perturbed", moved, False), ("refined", moved, True)):
        t0 = time.time()
        psnr, psnr_al, tr = fit(views, test, ReconstructConfig(**base, refine_cameras=refine))
        out[name] = {"test_psnr": round(psnr, 2), "test_psnr_aligned": round(psnr_al, 2), "seconds": round(time.time() - t0, 1)}
        if refine:
            rot, dist = camera_errors(tr.refined_c2w(), train.cameras.c2w)
            al = globally_aligned_rotation_errors(tr.refined_c2w(), train.cameras.c2w)
            out[name].update(
                rot_err_deg_max=float(rot.max()), rot_err_deg_mean=float(rot.mean()), rot_err_aligned_deg_max=float(al.max()),
                rot_err_aligned_deg_mean=float(al.mean()), trans_err_max=float(dist.max()), extent=tr.extent,
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, nargs=2, default=[96, 72])
    ap.add_argument("--views", type=int, default=16)
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--init-points", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(json.dumps(run(a.seed, a.views, a.size[0], a.size[1], a.iters, a.init_points), indent=2))


if __name__ == "__main__":
    main()
