"""Splat rasterization speed on the CPU: the numba fast path against the pure-torch reference.

For several splat counts and resolutions, prints the render time per frame (forward only) and the
training steps per second (render + L1 loss + backward + Adam step) of the fast CPU path; of the same
path with the previous pure-torch projection (``old``: today's numba compositing behind the torch projection of
before issue 23, so the ratio isolates the projection pass; the whole pre-issue-23 code against today's is
``benchmarks/fern_3dgs.py --compare-rev``) and
of the dense torch reference, measured in the same run (ratios = other / fast; new and old are timed
alternately and their ratio is the median of the per-pair ratios, so load changes on a shared machine
affect both alike). The reference is
O(pixels x splats) in time and memory, so by default it runs only where that product is small enough;
``--ref-all`` runs it everywhere. Target: 20k splats at 256x256 in about 0.5 s per training step on 2 cores.

    .venv/bin/python benchmarks/gs_speed.py [--configs 1000x64 5000x128 20000x256] [--repeats 5]

Timings are wall-clock medians; on a shared machine they are pessimistic.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch

from see3d.io.cameras import Cameras, look_at
from see3d.splat.gaussians import Gaussians
from see3d.splat.rasterize import render

REF_MAX_PAIRS = 2e8  # pixels x splats above which the reference is skipped unless --ref-all


def scene(n: int, res: int, seed: int = 0) -> tuple[Gaussians, torch.Tensor, torch.Tensor]:
    """``n`` random splats filling the view of a camera at distance 3 (each a few pixels wide)."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-1, 1, (n, 3))
    g = Gaussians.from_points(pts, rng.uniform(0, 1, (n, 3)), scales=1.5 / np.cbrt(n), opacity=0.5, sh_degree=3)
    g.sh[:, 1:] = torch.as_tensor(rng.normal(0, 0.1, g.sh[:, 1:].shape), dtype=torch.float32)
    K = torch.tensor(Cameras.intrinsics_from_fov(50, res, res), dtype=torch.float32)
    c2w = torch.tensor(look_at(np.array([0.3, -0.4, -3.0]), np.zeros(3)), dtype=torch.float32)
    return g, K, c2w


@contextlib.contextmanager
def torch_projection():
    """Inside: the cpu backend projects with the pure-torch :func:`see3d.splat.project.project` (autograd),
    the CPU path as it was before the numba projection (for side-by-side timings)."""
    import see3d.splat.project_cpu as pc
    from see3d.splat.project import project

    old = pc.project_cpu
    pc.project_cpu = project
    try:
        yield
    finally:
        pc.project_cpu = old


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up (numba compile / caches)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def _functions(backend: str, g: Gaussians, K, c2w, res: int):
    """(render one frame, one training step) closures; each step trains its own copy of ``g``."""
    target = torch.rand(res, res, 3, generator=torch.Generator().manual_seed(0))

    def fwd():
        with torch.no_grad():
            render(g, K, res, res, c2w=c2w, backend=backend)

    params = g.map(lambda t: t.clone().requires_grad_(True))
    opt = torch.optim.Adam(list(params.tensors().values()), lr=1e-3)

    def step():
        out = render(params, K, res, res, c2w=c2w, backend=backend)
        loss = (out["rgb"] - target).abs().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return fwd, step


def measure(backend: str, g: Gaussians, K, c2w, res: int, repeats: int) -> tuple[float, float]:
    """(render seconds per frame, training seconds per step)."""
    fwd, step = _functions(backend, g, K, c2w, res)
    return _median_time(fwd, repeats), _median_time(step, repeats)


def measure_against_old(g: Gaussians, K, c2w, res: int, repeats: int) -> tuple[float, float, float, float, float]:
    """The cpu path and the old one (torch projection) timed alternately, so a changing machine load hits
    both alike: (render s, step s, old render s, old step s, median of the per-pair step ratios old/new)."""
    new_f, new_s = _functions("cpu", g, K, c2w, res)
    old_f, old_s = _functions("cpu", g, K, c2w, res)

    def timed(fn, old: bool) -> float:
        with torch_projection() if old else contextlib.nullcontext():
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0

    for fn, old in ((new_f, False), (new_s, False), (old_f, True), (old_s, True)):
        timed(fn, old)  # warm-up (numba compile / caches)
    t = {k: [] for k in ("nf", "ns", "of", "os")}
    for _ in range(repeats):
        t["nf"].append(timed(new_f, False))
        t["of"].append(timed(old_f, True))
        t["ns"].append(timed(new_s, False))
        t["os"].append(timed(old_s, True))
    ratio = float(np.median(np.array(t["os"]) / np.array(t["ns"])))
    return (*(float(np.median(t[k])) for k in ("nf", "ns", "of", "os")), ratio)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=["1000x64", "5000x128", "20000x256"], help="SPLATSxRESOLUTION")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ref-all", action="store_true", help="run the torch reference on every config")
    ap.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads (numba uses all cores)")
    args = ap.parse_args()
    torch.set_num_threads(args.torch_threads)
    import numba

    print(f"numba threads: {numba.get_num_threads()}, torch threads: {torch.get_num_threads()}")
    print(f"{'splats':>7} {'res':>5} | {'cpu render ms':>13} {'cpu steps/s':>11} | {'old render ms':>13} {'old steps/s':>11} | {'old/cpu step':>12} | {'ref render ms':>13} {'ref steps/s':>11} | {'render x':>8} {'step x':>7}")
    for c in args.configs:
        n, res = (int(x) for x in c.lower().split("x"))
        g, K, c2w = scene(n, res)
        fr, st, ofr, ost, ratio = measure_against_old(g, K, c2w, res, args.repeats)
        line = f"{n:>7} {res:>5} | {fr * 1e3:>13.1f} {1 / st:>11.2f} | {ofr * 1e3:>13.1f} {1 / ost:>11.2f} | {ratio:>11.2f}x | "
        if args.ref_all or n * res * res <= REF_MAX_PAIRS:
            rfr, rst = measure("torch", g, K, c2w, res, max(1, args.repeats // 2))
            line += f"{rfr * 1e3:>13.1f} {1 / rst:>11.3f} | {rfr / fr:>7.1f}x {rst / st:>6.1f}x"
        else:
            line += f"{'(skipped: O(pixels x splats))':>27} |"
        print(line + f"   [cpu step {st:.3f} s]", flush=True)


if __name__ == "__main__":
    main()
