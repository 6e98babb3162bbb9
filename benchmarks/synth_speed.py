"""Speed of the synthetic-world renderer on ONE core.

Target: a 64-frame 256x256 clip renders in about 10 s or less on one core. Prints seconds per clip
and per frame for clips of each scene kind, and, as baselines measured in the same run, the time of
the geometry pass alone (ray casting without shading) and of writing the clip to disk (PNG + depth
.npy + H.264 mp4), so the ratios say where the time goes.

    .venv/bin/python benchmarks/synth_speed.py [--size 256] [--frames 64] [--kinds orbit dynamic]
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, set before numpy loads

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from see3d.synth import make_clip, make_scene, render_full, write_clip  # noqa: E402

TARGET_S = 10.0


def _seed_of_kind(scene_kind: str) -> int:
    return next(s for s in range(100) if make_scene(s).kind == scene_kind)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--kinds", nargs="+", default=["orbit", "dynamic"])
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    make_clip(0, "orbit", n_frames=2, size=32)  # warm-up (imports, caches)
    rows = []
    for scene_kind in ("room", "outdoor"):
        seed = _seed_of_kind(scene_kind)
        for kind in args.kinds:
            t0, c0 = time.perf_counter(), time.process_time()
            clip = make_clip(seed, kind, n_frames=args.frames, size=args.size)
            t_clip, cpu_clip = time.perf_counter() - t0, time.process_time() - c0
            t0 = time.perf_counter()
            render_full(clip.scene, clip.cameras, clip.times, shade=False)
            t_geom = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                write_clip(clip, tmp, "bench")
                t_write = time.perf_counter() - t0
            rows.append((scene_kind, kind, len(clip.frames), t_clip, cpu_clip, t_geom, t_write))
    print(f"synthetic clips at {args.size}x{args.size}, {args.frames} frames, one core")
    print(
        f"{'scene':8s} {'kind':10s} {'frames':>6s} {'s/clip':>7s} {'cpu s':>6s} {'ms/frame':>8s} {'vs target':>9s} {'geometry':>8s} {'write':>6s}"
    )
    for scene_kind, kind, n, t_clip, cpu_clip, t_geom, t_write in rows:
        print(
            f"{scene_kind:8s} {kind:10s} {n:6d} {t_clip:7.2f} {cpu_clip:6.2f} {1000 * cpu_clip / n:8.1f} {cpu_clip / TARGET_S:8.2f}x "
            f"{t_clip / t_geom:7.1f}x {t_clip / t_write:5.1f}x"
        )
    worst, worst_cpu = max(r[3] for r in rows), max(r[4] for r in rows)
    mean, mean_cpu = float(np.mean([r[3] for r in rows])), float(np.mean([r[4] for r in rows]))
    print(f"wall clock: mean {mean:.2f} s/clip, worst {worst:.2f} s/clip")
    print(
        f"CPU time (one core): mean {mean_cpu:.2f} s/clip, worst {worst_cpu:.2f} s/clip = {worst_cpu / TARGET_S:.2f}x the {TARGET_S:.0f} s target"
    )
    print("columns: 's/clip' wall clock; 'cpu s', 'ms/frame' and 'vs target' in process CPU time (wall clock is higher when")
    print("other jobs share the cores); 'geometry' = clip / ray-casting-only time; 'write' = clip / PNG+npy+mp4 writing time")
    print("(both baselines measured in this run)")


if __name__ == "__main__":
    main()
