"""Joint camera refinement on a synthetic scene (``see3d.synth``): perturbed cameras, with and without refinement.

A procedural scene is rendered (true metric depth) from ``--views`` cameras on an orbit; every 4th view is
held out with its true camera. The training cameras except the first (the gauge) are perturbed by a
rotation of 1-2 degrees about a random axis and a translation of 2% of the scene extent. Fits, same
settings, depth-initialised from the nominal (perturbed) cameras:

- ``true``: the unperturbed cameras, no refinement (the reference);
- ``perturbed``: perturbed cameras, no refinement;
- ``refined_<gauge>``: perturbed cameras refined, for each ``--gauges`` entry (``datum``: the default;
  ``fixed``: view 0 never corrected, the earlier scheme): registered with the views' depth first
  (``see3d.splat.register``; its errors under ``registered``), then refined jointly with the splats under the
  default prior; ``--no-register``: joint refinement alone (the fifth session's scheme);
- ``registration``: the depth registration of the perturbed cameras alone, no splats. With ``--depth-error``
  every training view's depth carries its own monocular-like error (``see3d.synth.depth_errors``).

Prints held-out PSNR of each at the true test cameras, and after aligning each test camera to the frozen
splats (``_aligned``: the protocol of pose-free methods), and for the refined fits the remaining error of
the training cameras against the true ones: ``raw`` as the fit returns them (in view 0's frame, no
alignment), and after the Umeyama similarity (Sim(3)) that best maps them onto the true ones (``sim3``:
how InstantSplat / CF-3DGS align trajectories), and the rotational relative pose error between consecutive
training cameras (``rpe_rot``: frame-free, the RPE_r those papers report). Rotation errors in degrees, centre
errors in % of the scene extent.

    .venv/bin/python benchmarks/pose_refine.py [--size 192 144] [--iters 1500] [--seed 0] [--gauges datum fixed] [--eps2d 0.3]
        [--fits true perturbed refined registration] [--no-register] [--depth-error smooth|mixed|... [--depth-error-strength 0.1]]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from see3d.geometry.sfm import align_poses_sim3, apply_sim3, relative_rotation_errors_deg, rotation_errors_deg
from see3d.io.cameras import Cameras
from see3d.splat.config import ReconstructConfig
from see3d.splat.optimize import SplatTrainer
from see3d.splat.poses import align_cameras, perturb_c2w
from see3d.splat.project import EPS2D
from see3d.splat.reconstruct import evaluate
from see3d.synth import camera_path, make_scene, scene_views
from see3d.synth.depth_errors import ERRORS, distort_depth


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


def camera_errors(est: Cameras, true: Cameras, extent: float) -> dict:
    """Rotation (degrees) and centre (% of ``extent``) errors of ``est`` against ``true``: mean and max,
    raw and after the best similarity (``sim3_*``), and the rotational relative pose error of consecutive
    training cameras (``rpe_rot_*``, frame-free)."""
    rpe = relative_rotation_errors_deg(est, true)
    out = {"rpe_rot_deg_mean": round(float(rpe.mean()), 3), "rpe_rot_deg_max": round(float(rpe.max()), 3)}
    for tag, cams in (("raw", est), ("sim3", apply_sim3(est, *align_poses_sim3(est, true)))):
        rot = rotation_errors_deg(cams, true)
        pos = 100 * np.linalg.norm(cams.centers - true.centers, axis=1) / extent
        out.update({f"{tag}_rot_deg_mean": round(float(rot.mean()), 3), f"{tag}_rot_deg_max": round(float(rot.max()), 3)})
        out.update({f"{tag}_centre_pct_mean": round(float(pos.mean()), 2), f"{tag}_centre_pct_max": round(float(pos.max()), 2)})
    return out


def fit(views, test, cfg: ReconstructConfig, align_steps: int = 60) -> tuple[float, float, SplatTrainer]:
    """(held-out PSNR at the given test cameras, held-out PSNR after aligning them, trainer)."""
    tr = SplatTrainer.create(views, cfg)  # registers the cameras with the views' depth first when cfg.registers
    g = tr.train(show_progress=False)
    aligned = test[:]
    aligned.cameras = Cameras(test.cameras.K, align_cameras(g, test, align_steps, extent=tr.extent, eps2d=cfg.eps2d), test.cameras.width, test.cameras.height)
    return evaluate(g, test, cfg.background, eps2d=cfg.eps2d)["psnr"], evaluate(g, aligned, cfg.background, eps2d=cfg.eps2d)["psnr"], tr


def run(
    seed: int,
    n: int,
    width: int,
    height: int,
    iters: int,
    init_points: int,
    gauges: list[str],
    eps2d: float = EPS2D,
    fits: tuple[str, ...] | list[str] = ("true", "perturbed", "refined"),
    register: bool = True,
    depth_error: str | None = None,
    depth_error_strength: float = 0.1,
) -> dict:
    train, moved, test = make_data(seed, n, width, height)
    if depth_error is not None:  # every training view's depth with its own monocular-like error (true cameras' fit keeps the true depth)
        moved.depth = np.stack([distort_depth(d, depth_error, seed=100 * seed + i, strength=depth_error_strength) for i, d in enumerate(moved.depth)])
    # every fit at full resolution throughout: refined fits have no coarse phase by default (it biases the
    # cameras, see ReconstructConfig.coarse_steps), and the reference fits are run the same way to compare like with like
    base = dict(iters=iters, sh_degree=1, init="depth", init_points=init_points, seed=seed, checkpoint_every=0, eps2d=eps2d, coarse_until=0)
    from see3d.splat.init import scene_extent

    ext = scene_extent(train)
    out: dict = {"seed": seed, "views": n, "size": [width, height], "iters": iters, "eps2d": eps2d, "perturbation": camera_errors(moved.cameras, train.cameras, ext)}
    if depth_error is not None:
        out["depth_error"] = {"kind": depth_error, "strength": depth_error_strength}
    if "registration" in fits:  # the depth registration alone, no splats
        from see3d.splat.register import register_views

        t0 = time.time()
        reg, _ = register_views(moved)
        out["registration"] = {"seconds": round(time.time() - t0, 1), **camera_errors(reg.cameras, train.cameras, ext)}
    runs = [(name, v, {"refine_cameras": False}) for name, v in (("true", train), ("perturbed", moved)) if name in fits]
    runs += [(f"refined_{g}", moved, {"refine_cameras": True, "pose_gauge": g, "register_cameras": register}) for g in gauges if "refined" in fits]
    for name, views, extra in runs:
        t0 = time.time()
        psnr, psnr_al, tr = fit(views, test, ReconstructConfig(**base, **extra))
        out[name] = {"test_psnr": round(psnr, 2), "test_psnr_aligned": round(psnr_al, 2), "seconds": round(time.time() - t0, 1)}
        if extra["refine_cameras"]:
            refined = Cameras(train.cameras.K, tr.refined_c2w(), width, height)
            out[name].update(camera_errors(refined, train.cameras, ext))
            if tr.registration is not None:  # the cameras the splats started from
                out[name]["registered"] = camera_errors(tr.views.cameras, train.cameras, ext)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, nargs=2, default=[192, 144], help="image size (a 1-pixel error is 0.31 degrees at 192 px over 60 degrees)")
    ap.add_argument("--views", type=int, default=16)
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--init-points", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gauges", nargs="+", choices=["datum", "fixed"], default=["datum"], help="refined fits to run, one per gauge")
    ap.add_argument(
        "--fits", nargs="+", choices=["true", "perturbed", "refined", "registration"], default=["true", "perturbed", "refined"],
        help="which fits to run (registration: the depth registration of the perturbed cameras alone)",
    )
    ap.add_argument("--depth-error", choices=ERRORS, help="distort each training view's depth (see3d.synth.depth_errors)")
    ap.add_argument("--depth-error-strength", type=float, default=0.1)
    ap.add_argument("--eps2d", type=float, default=EPS2D, help="screen-space dilation of the splats, every fit (ReconstructConfig.eps2d)")
    ap.add_argument("--no-register", action="store_true", help="refined fits without the depth registration of the cameras first (joint refinement alone)")
    a = ap.parse_args()
    out = run(a.seed, a.views, a.size[0], a.size[1], a.iters, a.init_points, a.gauges, a.eps2d, a.fits, not a.no_register, a.depth_error, a.depth_error_strength)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
