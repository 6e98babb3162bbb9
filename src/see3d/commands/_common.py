"""Helpers shared by several verbs: device/dtype options and depth backends."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_device_args(parser: argparse.ArgumentParser) -> None:
    from see3d.device import DEVICE_HELP, DTYPE_CHOICES, DTYPE_HELP

    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help=DTYPE_HELP + " (the diffusion, depth and text-to-image models)")


def add_depth_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("depth")
    g.add_argument("--depth-model", type=Path, help="local transformers depth-estimation model folder (Depth Anything V2, DPT, Depth Pro, ...)")
    g.add_argument("--depth", type=Path, help="given depth maps of the inputs instead of a model: a folder (matched by file stem) or one "
                   "file; generated views then keep the depth warped from the inputs")
    g.add_argument("--depth-kind", default="auto", choices=["auto", "metric_depth", "relative_depth", "relative_disparity"],
                   help="what the model/maps output (auto: from the model config; given maps default to metric depth)")  # fmt: skip


def make_depth_backend(args):
    from see3d.depth.select import make_backend

    return make_backend(args.depth_model, args.depth, args.depth_kind, args.device, args.dtype)


def add_align_args(parser: argparse.ArgumentParser) -> None:
    """``--align lwlr|global`` and the other depth-alignment options (``--align-*``, see AlignConfig)."""
    from see3d.config import add_dataclass_args
    from see3d.geometry.anchor_align import AlignConfig

    g = parser.add_argument_group("depth alignment to keypoint anchors (--align*)")
    default = AlignConfig().method
    g.add_argument("--align", dest="align_method", choices=["lwlr", "global"], default=default,
                   help=f"lwlr: dense local scale/shift map (paper Eqs. 5-6); global: one robust scale/shift per view (default: {default})")  # fmt: skip
    add_dataclass_args(g, AlignConfig, prefix="align_", skip=("method",))


def align_from_args(args):
    from see3d.config import dataclass_from_args
    from see3d.geometry.anchor_align import AlignConfig

    return dataclass_from_args(AlignConfig, args, prefix="align_")
