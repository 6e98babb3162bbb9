"""``see3d mvd``: fill warped target views with the See3D multi-view diffusion model (official input layout)."""

from __future__ import annotations

import argparse

NAME = "mvd"
HELP = "generate target views from reference images and warped views (See3D multi-view diffusion)"
DESCRIPTION = (
    "Reads reference images from --refs and warp_*.png + mask_*.png pairs from --warps (the official example "
    "layout; mask = warp name with 'warp' replaced by 'mask', white = valid) and writes predict_<warp name>.png "
    "(and SR_predict_<warp name>.png with --sr) to --out. --weights is the downloaded MVD_weights folder."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from see3d.config import add_dataclass_args
    from see3d.pipelines.folder_io import MVDConfig

    add_dataclass_args(parser, MVDConfig, skip=("variant",))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--single", dest="variant", action="store_const", const="single", help="use the single-view UNet")
    group.add_argument("--sparse", dest="variant", action="store_const", const="sparse", help="use the sparse-view UNet")
    parser.set_defaults(variant="auto")


def run(args: argparse.Namespace) -> int:
    from see3d.config import dataclass_from_args
    from see3d.pipelines.folder_io import MVDConfig, run_mvd

    written = run_mvd(dataclass_from_args(MVDConfig, args))
    print(f"wrote {len(written)} images to {args.out}")
    return 0
