"""Speed of forward warping: the batched torch warp vs the per-pixel loop reference, ms per view.

A random smooth depth map with an occluding block is warped into a camera moved sideways and rotated.
For each resolution the script prints ms per view of

* ``reference``: :func:`see3d.geometry.warp_reference.forward_warp_reference` (numpy loops; only up to
  ``--ref-max`` pixels per side, it is slow),
* ``torch-cpu 1``: :func:`see3d.geometry.warp.forward_warp`, one view per call,
* ``torch-cpu B``: a batch of ``--batch`` destination views from one source in one call,
* ``torch-cuda 1`` / ``torch-cuda B`` when a CUDA device is present,

and the speed-ups against the reference (same run) and against one-view CPU calls.

    .venv/bin/python benchmarks/warp_speed.py [--sizes 32 64 128 256 512] [--batch 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch

from see3d.geometry.warp import forward_warp
from see3d.geometry.warp_reference import forward_warp_reference
from see3d.io.cameras import Cameras, look_at


def _scene(size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    h, w = (3 * size) // 4, size
    v, u = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    depth = 3.0 + 1.5 * v + 0.3 * np.sin(5 * u)
    depth[h // 3 : h // 2, w // 3 : w // 2] = 1.8  # an occluder: depth edges and disocclusions
    img = rng.random((h, w, 3))
    K = Cameras.intrinsics_from_fov(60, w, h)
    src = np.eye(4)
    dsts = [look_at([0.05 * (k + 1), -0.02 * k, 0.03 * k], [0.0, 0.0, 3.5]) for k in range(64)]
    return img, depth, K, src, dsts


def _time(fn, repeats: int, sync=None) -> float:
    fn()  # warm-up
    if sync:
        sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if sync:
        sync()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared machine)")
    ap.add_argument("--ref-max", type=int, default=128, help="largest width run through the slow loop reference")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"torch {torch.__version__}, CPU threads {args.threads}, devices {devices}"
        + (f" ({torch.cuda.get_device_name(0)})" if "cuda" in devices else "")
    )
    header = (
        f"{'size':>9} | {'reference':>10} | "
        + " | ".join(f"{d + ' 1':>12} | {d + ' ' + str(args.batch):>12}" for d in devices)
        + " | speed-ups"
    )
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        img, depth, K, src, dsts = _scene(size)
        h, w = depth.shape
        row = {}
        if w <= args.ref_max:
            row["ref"] = _time(partial(forward_warp_reference, img, depth, K, src, K, dsts[0]), 1)
        for dev in devices:
            sync = torch.cuda.synchronize if dev == "cuda" else None

            def t(x, dev=dev):
                return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=dev)

            im1, d1, K1, s1 = t(img)[None], t(depth)[None], t(K)[None], t(src)[None]
            Kb = K1.expand(args.batch, 3, 3)
            Tb = t(np.stack(dsts[: args.batch]))
            T1 = Tb[:1]
            reps = 20 if size <= 128 else 5
            row[f"{dev}1"] = _time(partial(forward_warp, im1, d1, K1, s1, K1, T1), reps, sync)
            row[f"{dev}B"] = _time(partial(forward_warp, im1, d1, K1, s1, Kb, Tb), reps, sync) / args.batch
        cells = [f"{f'{w}x{h}':>9}", f"{row['ref'] * 1e3:>8.1f}ms" if "ref" in row else f"{'-':>10}"]
        for dev in devices:
            cells += [f"{row[dev + '1'] * 1e3:>10.2f}ms", f"{row[dev + 'B'] * 1e3:>10.2f}ms"]
        sp = []
        if "ref" in row:
            sp.append(f"cpu1 vs ref x{row['ref'] / row['cpu1']:.0f}")
        sp.append(f"cpuB vs cpu1 x{row['cpu1'] / row['cpuB']:.2f}")
        if "cuda" in devices:
            sp.append(f"cudaB vs cpuB x{row['cpuB'] / row['cudaB']:.1f}")
        print(" | ".join(cells) + " | " + ", ".join(sp))
    print("(ms per destination view; B columns: one call warping one source into a batch of views)")


if __name__ == "__main__":
    main()
