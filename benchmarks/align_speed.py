"""Cost of depth alignment (LWLR and global) at 512^2 and 1024^2 against one forward-warp step.

    python benchmarks/align_speed.py [--threads 1]

Prints median wall time over a few repeats of: ``align_to_anchors`` with LWLR (default settings: bandwidth
0.1 x long side, grid stride b / 4, two outlier rounds) and with the global fit, for 1000 and 4000 anchors,
and ``warp_to_cameras`` of one view into one camera at the same size (CPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _median_time(fn, *args, repeats: int = 5, **kw) -> float:
    fn(*args, **kw)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args, **kw)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch / OpenCV threads")
    args = ap.parse_args()
    import cv2
    import torch

    from see3d.geometry.anchor_align import AlignConfig, align_to_anchors
    from see3d.geometry.warp import warp_to_cameras
    from see3d.io.cameras import Cameras

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    rng = np.random.default_rng(0)
    print(f"threads {args.threads}")
    print("| size | anchors | LWLR (ms) | global (ms) | warp step (ms) |")
    print("|---|---|---|---|---|")
    for n in (512, 1024):
        v, u = np.mgrid[0:n, 0:n] / n
        depth = (2.0 + np.sin(3 * u) + 0.5 * v).astype(np.float32)
        pred = (0.3 * depth + 0.1).astype(np.float32)
        img = rng.random((n, n, 3), dtype=np.float32)
        cam = Cameras.from_fov(np.eye(4)[None], 60.0, n, n)
        c2 = np.eye(4)
        c2[0, 3] = 0.1
        dst = Cameras.from_fov(c2[None], 60.0, n, n)
        t_warp = _median_time(warp_to_cameras, img, depth, cam, dst, repeats=3)
        for k in (1000, 4000):
            uv = rng.uniform(0, n, (k, 2))
            z = depth[uv[:, 1].astype(int), uv[:, 0].astype(int)]
            t_l = _median_time(align_to_anchors, pred, pred > 0, "depth", uv, z, AlignConfig(method="lwlr"))
            t_g = _median_time(align_to_anchors, pred, pred > 0, "depth", uv, z, AlignConfig(method="global"))
            print(f"| {n}x{n} | {k} | {1e3 * t_l:.0f} | {1e3 * t_g:.0f} | {1e3 * t_warp:.0f} |")


if __name__ == "__main__":
    main()
