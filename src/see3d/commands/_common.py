"""Helpers shared by several verbs: device/dtype options, loading the See3D pipeline and depth backends."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="torch device: auto (CUDA when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"], help="model dtype (auto: fp16 on CUDA, fp32 on CPU)")


def resolve_device(device: str, dtype: str):
    import torch

    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    if dtype == "auto":
        dt = torch.float16 if dev.type == "cuda" else torch.float32
    else:
        dt = getattr(torch, dtype)
    return dev, dt


def load_see3d(weights: str | Path, variant: str, device: str = "auto", dtype: str = "auto", offload: bool = False):
    """Load :class:`See3DPipeline` (official layout or a ``save_pretrained`` folder) onto a device."""
    from see3d.pipelines.see3d_pipeline import See3DPipeline

    dev, dt = resolve_device(device, dtype)
    pipe = See3DPipeline.load(weights, variant=variant, torch_dtype=dt)
    if offload and dev.type == "cuda":
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(dev)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def add_depth_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("depth")
    g.add_argument("--depth-model", type=Path, help="local transformers depth-estimation model folder (Depth Anything V2, DPT, Depth Pro, ...)")
    g.add_argument("--depth", type=Path, help="given depth maps of the inputs instead of a model: a folder (matched by file stem) or one "
                   "file; generated views then keep the depth warped from the inputs")
    g.add_argument("--depth-kind", default="auto", choices=["auto", "metric_depth", "relative_depth", "relative_disparity"],
                   help="what the model/maps output (auto: from the model config; given maps default to metric depth)")  # fmt: skip


def make_depth_backend(args):
    from see3d.errors import InputError

    if args.depth_model is not None:
        from see3d.depth.transformers_backend import TransformersDepth

        return TransformersDepth(args.depth_model, kind=args.depth_kind, device=None if args.device == "auto" else args.device)
    if args.depth is not None:
        from see3d.depth.given import GivenDepth

        kind = "metric_depth" if args.depth_kind == "auto" else args.depth_kind
        src = args.depth if args.depth.is_dir() else [args.depth]
        return GivenDepth(src, kind=kind)
    raise InputError(None, "a depth source is needed: --depth-model DIR (a transformers depth model folder) or --depth PATH (depth maps)")
