"""Initialisation from depth against random initialisation, on a synthetic scene (``see3d.synth``).

The scene is rendered from ``--views`` cameras on an orbit with true metric depth (what ``see3d generate``
provides per view, aligned); every 4th view is held out. Each init is trained for each of ``--iters``
(short runs) with the same settings; prints held-out PSNR and wall time. ``--depth-noise`` multiplies each
view's depth by one random scale error and each pixel's by a small one (generated depth is not exact).

    .venv/bin/python benchmarks/init_compare.py [--size 96 72] [--iters 200 600] [--depth-noise 0.03]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from see3d.io.cameras import Cameras
from see3d.splat.config import ReconstructConfig
from see3d.splat.optimize import SplatTrainer, initial_gaussians
from see3d.splat.reconstruct import evaluate
from see3d.synth import camera_path, make_scene, scene_views


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, nargs=2, default=[96, 72])
    ap.add_argument("--views", type=int, default=16)
    ap.add_argument("--iters", type=int, nargs="+", default=[200, 600])
    ap.add_argument("--init-points", type=int, default=15000)
    ap.add_argument("--depth-noise", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    scene = make_scene(a.seed)
    views = scene_views(scene, Cameras.from_fov(camera_path("orbit", scene, a.views, rng), 60.0, *a.size))
    test = list(range(0, a.views, 4))
    train = views[[i for i in range(a.views) if i not in test]]
    if a.depth_noise > 0:
        n = len(train)
        train.depth = (train.depth * np.exp(rng.normal(0, a.depth_noise, (n, 1, 1)) + rng.normal(0, a.depth_noise / 3, train.depth.shape))).astype(np.float32)
    rows = []
    for iters in a.iters:
        for init in ("random", "depth"):
            cfg = ReconstructConfig(iters=iters, sh_degree=1, init=init, init_points=a.init_points, seed=a.seed, checkpoint_every=0)
            t0 = time.time()
            tr = SplatTrainer(train, cfg, initial_gaussians(train, cfg, np.random.default_rng(a.seed)))
            g = tr.train(show_progress=False)
            secs = time.time() - t0
            rows.append({"init": init, "iters": iters, "test_psnr": round(evaluate(g, views[test], cfg)["psnr"], 2), "seconds": round(secs, 1), "splats": len(g)})
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
