"""Depth alignment on real scenes with their real cameras: LLFF fern and DTU scan65 (``../shared/data``).

No depth network runs here (nothing downloads), so each view gets a *network-like* relative depth made
from the real data: keypoints matched over all views of the scene (each view with its nearest cameras)
and triangulated with the dataset cameras, interpolated linearly over the image (nearest outside the
points' hull), blurred (sigma 2 px: edge bleeding), warped smoothly in log-depth
(:func:`see3d.synth.depth_errors.distort_depth`, "smooth", strength 0.15) and hidden behind an unknown
affine map (``relative_depth``). These maps are written to ``OUT/depth/<scene>/<image stem>.npy``.

Then the sparse-view protocol's 3 input views (:func:`see3d.eval.protocols.split_for`) are aligned to
anchors from *their own* matches only (the other views' points are not used), warped into every held-out
test camera (the generation loop's point cache), and scored against the real held-out photos: PSNR over
the warped pixels and the fraction of the photo covered, LWLR vs global.

    python benchmarks/real_scenes.py --data ../shared/data --out /tmp/real
    # then the whole framework on CPU (Telea fill + 3DGS), per scene:
    see3d eval --data ../shared/data/llff_fern --protocol sparse3 --fill telea --depth /tmp/real/depth/llff_fern \\
        --depth-kind relative_depth --iters 300 --out /tmp/real/eval_fern
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np

from see3d.geometry.anchor_align import AlignConfig, AlignmentError
from see3d.geometry.anchors import AnchorStore
from see3d.synth.depth_errors import as_relative, distort_depth

SCENES = {"llff_fern": ("llff", 8), "dtu_scan65": ("dtu", 1)}


def neighbour_pairs(centers: np.ndarray, k: int) -> list[tuple[int, int]]:
    """Each camera with its ``k`` nearest cameras (by centre), as unique index pairs."""
    d = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
    pairs = set()
    for i in range(len(centers)):
        for j in np.argsort(d[i])[1 : k + 1]:
            pairs.add((min(i, int(j)), max(i, int(j))))
    return sorted(pairs)


def densify(uv: np.ndarray, z: np.ndarray, width: int, height: int) -> np.ndarray:
    """Sparse depths at ``uv (K, 2)`` -> (H, W) map: linear interpolation inside the hull, nearest outside."""
    from scipy.interpolate import griddata

    v, u = np.mgrid[0:height, 0:width] + 0.5
    lin = griddata(uv, z, (u, v), method="linear")
    near = griddata(uv, z, (u, v), method="nearest")
    return np.where(np.isfinite(lin), lin, near).astype(np.float32)


def network_like_depths(scene, k: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) relative depth per view (see the module docstring) and the dense depth it was made from
    (before the log-depth warp and the affine map; scene units)."""
    views = scene.views
    store = AnchorStore()
    store.add_views(views.images, views.cameras, pairs=neighbour_pairs(views.cameras.centers, k))
    out, dense = [], []
    for i in range(len(views)):
        a = store.view_anchors(i)
        d = cv2.GaussianBlur(densify(a.uv, a.z, views.cameras.width, views.cameras.height), (0, 0), 2.0)
        dense.append(d)
        out.append(as_relative(distort_depth(d, "smooth", seed=seed + i, strength=0.15), "relative_depth", seed=seed + i))
    return np.stack(out), np.stack(dense)


def warp_scores(scene, rel: np.ndarray, align: AlignConfig | None, kind: str = "relative_depth") -> dict:
    """Align the sparse3 inputs to their own anchors, warp into the test cameras, score vs the real photos.
    ``align=None``: use ``rel`` as metric depth without alignment (the undistorted dense depth: a reference)."""
    from see3d.depth.base import DepthPrediction
    from see3d.eval.protocols import split_for
    from see3d.geometry.point_cache import PointCache
    from see3d.pipelines.view_depth import reference_depths

    split = split_for(scene, "sparse3")
    idx, test = list(split.train), list(split.test)
    v = scene.views
    if align is None:
        depth, stats = rel[idx], [{"anchors": "-"} for _ in idx]
    else:
        preds = [DepthPrediction(rel[i], kind) for i in idx]
        depth, stats, _ = reference_depths(v.images[idx], v.cameras[idx], preds, [v.names[i] for i in idx], align)
    cache = PointCache()
    for j, i in enumerate(idx):
        cache.add_view(v.images[i], depth[j], v.cameras[i])
    img, mask, _ = cache.render(v.cameras[test]).numpy()
    ps, cov = [], []
    for t in range(len(test)):
        m = mask[t]
        mse = float(((img[t] - v.images[test[t]]) ** 2)[m].mean()) if m.any() else float("nan")
        ps.append(10 * np.log10(1 / max(mse, 1e-10)))
        cov.append(float(m.mean()))
    return {"psnr": float(np.nanmean(ps)), "coverage": float(np.mean(cov)), "stats": stats, "inputs": idx, "tests": len(test)}


def main() -> None:
    from see3d.datasets import load_scene

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder holding llff_fern/ and dtu_scan65/")
    ap.add_argument("--out", type=Path, required=True, help="output folder (depth/<scene>/*.npy)")
    ap.add_argument("--scenes", nargs="+", default=list(SCENES))
    args = ap.parse_args()
    base = AlignConfig()
    print("| scene | inputs | test views | anchors per input | method | warp PSNR (dB) | coverage |")
    print("|---|---|---|---|---|---|---|")
    for name in args.scenes:
        fmt, factor = SCENES[name]
        t0 = time.time()
        scene = load_scene(args.data / name, fmt, factor)
        rel, dense = network_like_depths(scene)
        d = args.out / "depth" / name
        d.mkdir(parents=True, exist_ok=True)
        for i, n in enumerate(scene.views.names):
            np.save(d / f"{n}.npy", rel[i])
        rows = {"dense depth before distortion (reference)": None, "global": dataclasses.replace(base, method="global"),
                "lwlr": dataclasses.replace(base, method="lwlr"), "lwlr, --align-fallback global": dataclasses.replace(base, method="lwlr", fallback="global"),
                "lwlr, --align-fallback global --align-min-local-scale 0": dataclasses.replace(base, method="lwlr", fallback="global", min_local_scale=0.0)}  # fmt: skip
        for method, cfg in rows.items():
            try:
                r = warp_scores(scene, dense if cfg is None else rel, cfg)
            except AlignmentError as e:
                print(f"| {name} | | | | {method} | fails: {e} | |", flush=True)
                continue
            anchors = "/".join(f"{s['anchors']}" + (" (global)" if s.get("note") else "") for s in r["stats"])
            print(f"| {name} | {r['inputs']} | {r['tests']} | {anchors} | {method} | {r['psnr']:.2f} | {r['coverage']:.2f} |", flush=True)
        print(f"<!-- {name}: {time.time() - t0:.0f} s -->")


if __name__ == "__main__":
    main()
