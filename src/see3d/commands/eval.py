"""``see3d eval``: score novel-view synthesis under a benchmark protocol; writes results.json/.md and image strips."""

from __future__ import annotations

import argparse

from see3d.config import add_dataclass_args, dataclass_from_args

NAME = "eval"
HELP = "evaluate a protocol (sparse3/6/9, single, dense) on LLFF/DTU/COLMAP/transforms scenes"
DESCRIPTION = (
    "Run an evaluation protocol and write results.json, results.md (per scene and mean, with the published "
    "numbers beside ours), strips/<scene>.png (inputs, truth, ours) and renders/. Without --mvd-weights (and "
    "with --fill mvd) the sparse protocols run the reconstruction-only baseline (3DGS from the input views alone); "
    "--fill telea or --fill small run the whole framework (depth -> align -> warp -> fill -> 3DGS) without the big "
    "weights, with depth from --depth-model or per-image maps (--depth DIR --depth-kind ...)."
)


# 3DGS settings the protocol decides itself (iters has its own option; device and seed are shared).
_SPLAT_SKIP = ("iters", "device", "seed", "sparse", "checkpoint_every")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from see3d.commands._common import add_align_args
    from see3d.eval.runner import EvalConfig
    from see3d.splat.config import ReconstructConfig

    add_dataclass_args(parser, EvalConfig, skip=("splat", "align"))
    group = parser.add_argument_group("3DGS reconstruction (--splat-*)")
    add_dataclass_args(group, ReconstructConfig, prefix="splat_", skip=_SPLAT_SKIP)
    add_align_args(parser)


def run(args: argparse.Namespace) -> int:
    from see3d.commands._common import align_from_args
    from see3d.eval.runner import EvalConfig, evaluate
    from see3d.splat.config import ReconstructConfig

    splat = dataclass_from_args(ReconstructConfig, args, prefix="splat_")
    cfg = dataclass_from_args(EvalConfig, args, splat=splat, align=align_from_args(args))
    data = evaluate(cfg)
    m = data["mean"]
    lp = "skipped" if m["lpips"] is None else f"{m['lpips']:.3f}"
    print(f"{data['protocol']} ({data['method']}): {data['num_scenes']} scene(s), PSNR {m['psnr']:.2f}  SSIM {m['ssim']:.3f}  LPIPS {lp}")
    print(f"report: {cfg.out / 'results.md'}")
    return 0 if not data["failures"] else 1
