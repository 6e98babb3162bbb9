"""LWLR vs global depth alignment on synthetic scenes with spatially varying monocular-depth errors.

Per scene (``see3d.synth``, true depth known): three input views and one target view; the inputs' true
depth gets a seeded error (:mod:`see3d.synth.depth_errors`) and an unknown affine map (relative depth or
relative disparity); each view is aligned to keypoint anchors triangulated from SIFT matches between the
three input renders with their cameras. Scores: median AbsRel of the aligned depth over the view's pixels
(mean over the three views) and warp PSNR of the middle view warped into the target camera against the
target's true render (over the warped pixels; coverage reported).

    python benchmarks/align_synth.py --tune        # grid of (bandwidth, lam) on the tuning seeds
    python benchmarks/align_synth.py               # LWLR (defaults) vs global on the held-out seeds

Tuning seeds 0-15; held-out seeds 100-115 and 200-215 (disjoint scenes). Selection rule on the tuning
seeds: the highest mean warp PSNR over all errors and prediction kinds among the settings that lose at
most 0.1 dB against the global fit on every error and kind.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from see3d.geometry.anchor_align import AlignConfig, AlignmentError, align_to_anchors
from see3d.geometry.anchors import AnchorStore
from see3d.geometry.warp import warp_to_cameras
from see3d.io.cameras import Cameras, look_at
from see3d.synth import make_scene, render_full
from see3d.synth.depth_errors import ERRORS, as_relative, distort_depth

TUNE_SEEDS = list(range(16))
HELDOUT_SEEDS = list(range(100, 116)) + list(range(200, 216))
KINDS = ("relative_depth", "relative_disparity")
W, H = 256, 192


def make_world(seed: int):
    """Three input views and one target view of ``make_scene(seed)`` -> (render of all 4, cameras)."""
    scene = make_scene(seed)
    rng = np.random.default_rng([seed, 77])
    yaw = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(2.0, 2.8)
    fwd = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    right = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
    eye0 = scene.focus - dist * fwd + np.array([0.0, -0.3, 0.0])
    offs = [-0.3, 0.0, 0.3, 0.15]  # three inputs, then the target between two of them, lifted
    eyes = [eye0 + o * right + (np.array([0, -0.15, 0]) if k == 3 else 0) for k, o in enumerate(offs)]
    cams = Cameras.from_fov(np.stack([look_at(e, scene.focus) for e in eyes]), 60.0, W, H)
    return render_full(scene, cams), cams


def psnr(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    if not m.any():
        return float("nan")
    mse = float(((a - b) ** 2)[m].mean())
    return 10 * np.log10(1.0 / max(mse, 1e-10))


def score_world(r, cams, store: AnchorStore, error: str, kind: str, cfg: AlignConfig, seed: int, strength: float = 0.2) -> dict:
    space = "disparity" if kind == "relative_disparity" else "depth"
    absrel, depths = [], []
    for i in range(3):
        d = distort_depth(r.depth[i], error, seed=seed * 10 + i, strength=strength, ids=r.ids[i])
        p = as_relative(d, kind, seed=seed * 10 + i)
        a = store.view_anchors(i)
        try:
            dd, _ = align_to_anchors(p, p > 0, space, a.uv, a.z, cfg, f"seed{seed}/view{i}")
        except AlignmentError:
            return {"absrel": float("nan"), "psnr": float("nan"), "coverage": float("nan")}
        v = r.depth[i] > 0
        absrel.append(float(np.median(np.abs(dd[v] - r.depth[i][v]) / r.depth[i][v])))
        depths.append(dd)
    img, m, _ = warp_to_cameras(r.rgb[1], depths[1], cams[1], cams[3:4])
    return {"absrel": float(np.mean(absrel)), "psnr": psnr(img[0], r.rgb[3], m[0]), "coverage": float(m[0].mean())}


def run(seeds: list[int], configs: dict[str, AlignConfig], errors=ERRORS) -> dict:
    """{(config, error, kind): list of per-scene scores}."""
    out: dict = {}
    for seed in seeds:
        r, cams = make_world(seed)
        store = AnchorStore()
        store.add_views(r.rgb[:3], cams[:3])
        for error in errors:
            for kind in KINDS:
                for name, cfg in configs.items():
                    out.setdefault((name, error, kind), []).append(score_world(r, cams, store, error, kind, cfg, seed))
    return out


def summary(res: dict, key: str) -> dict:
    return {k: float(np.nanmedian([s[key] for s in v])) for k, v in res.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tune", action="store_true", help="grid over bandwidth and lam on the tuning seeds")
    ap.add_argument("--seeds", type=int, nargs="+", help="override the seed list")
    ap.add_argument("--min-local-scale", type=float, help="override AlignConfig.min_local_scale (0 = the unbounded LWLR slope)")
    args = ap.parse_args()
    t0 = time.time()
    base = AlignConfig() if args.min_local_scale is None else AlignConfig(min_local_scale=args.min_local_scale)
    if args.tune:
        seeds = args.seeds or TUNE_SEEDS
        configs = {"global": dataclasses.replace(base, method="global", edge_ratio=0.0)}
        for edge in (0.0, 0.1, 0.2):
            configs[f"global edge={edge}"] = dataclasses.replace(base, method="global", edge_ratio=edge)
            for bw in (0.05, 0.1):
                for lam in (0.03,):
                    for lam_s in (0.03, 1.0, 30.0):
                        configs[f"lwlr b={bw} lam={lam} lam_slope={lam_s} edge={edge}"] = dataclasses.replace(
                            base, method="lwlr", bandwidth=bw, lam=lam, lam_slope=lam_s, edge_ratio=edge
                        )
    else:
        seeds = args.seeds or HELDOUT_SEEDS
        configs = {"global": dataclasses.replace(base, method="global"), "lwlr": dataclasses.replace(base, method="lwlr")}
    res = run(seeds, configs)
    ab, ps, cov = summary(res, "absrel"), summary(res, "psnr"), summary(res, "coverage")
    print(f"seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} scenes), {W}x{H}; defaults b={base.bandwidth} lam={base.lam} lam_slope={base.lam_slope}")
    print("| error | prediction | method | median AbsRel | median warp PSNR (dB) | coverage |")
    print("|---|---|---|---|---|---|")
    for error in ERRORS:
        for kind in KINDS:
            for name in configs:
                k = (name, error, kind)
                print(f"| {error} | {kind} | {name} | {ab[k]:.4f} | {ps[k]:.2f} | {cov[k]:.2f} |")
    if args.tune:
        print("\nmean over errors and kinds (AbsRel, PSNR); spatially varying errors only in brackets:")
        for name in configs:
            a = np.mean([ab[(name, e, k)] for e in ERRORS for k in KINDS])
            p = np.mean([ps[(name, e, k)] for e in ERRORS for k in KINDS])
            av = np.mean([ab[(name, e, k)] for e in ERRORS if e != "affine" for k in KINDS])
            worst = min(ps[(name, e, k)] - ps[("global", e, k)] for e in ERRORS for k in KINDS)
            print(f"{name}: {a:.4f} {p:.2f} ({av:.4f}); worst PSNR change vs global {worst:+.2f} dB")
    print(f"took {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
