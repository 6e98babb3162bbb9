"""`see3d reconstruct --data DIR --out DIR`: fit 3D Gaussian splats to posed images (thin wrapper over
:func:`see3d.splat.reconstruct.reconstruct`)."""

from __future__ import annotations

import argparse
import json

NAME = "reconstruct"
HELP = "fit 3D Gaussian splats to posed images (Views/transforms.json, COLMAP or LLFF folder); export .ply, mesh, video"
DESCRIPTION = (
    "Optimise 3D Gaussian splats (3DGS) on posed images and write splats.ply (standard 3DGS layout, opens in common "
    "splat viewers and `see3d view`), config.json, a resumable checkpoint and, on request, held-out metrics, a TSDF mesh "
    "and a flythrough video. Runs on CPU (numba) or, with gsplat installed, on CUDA (untested on GPU)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from see3d.config import add_dataclass_args
    from see3d.splat.config import ReconstructConfig

    parser.add_argument("--data", required=True, help="scene folder: Views folder (transforms.json + images/), LLFF (poses_bounds.npy) or COLMAP (sparse/0)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--factor", type=int, default=None, help="image downscale factor for LLFF/COLMAP scenes (default: LLFF 8, COLMAP 4)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out (same --data only)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (its old content is removed first)")
    parser.add_argument("--mesh", choices=["ply", "glb"], default=None, help="also extract a TSDF mesh (mesh.ply or mesh.glb)")
    parser.add_argument("--mesh-resolution", type=int, default=192, help="TSDF voxels along the longest side (default 192)")
    parser.add_argument("--video", action="store_true", help="also render flythrough.mp4 through the training cameras")
    parser.add_argument("--video-frames", type=int, default=120, help="frames of the flythrough (24 fps; default 120)")
    parser.add_argument("--holdout-every", type=int, default=0, help="hold out views 0, k, 2k, ... and score them into metrics.json (0 = off)")
    parser.add_argument("--train-views", type=int, nargs="+", default=None, help="train only on these view indices (e.g. 3 views for --sparse)")
    add_dataclass_args(parser, ReconstructConfig)


def run(args: argparse.Namespace) -> int:
    from see3d.config import dataclass_from_args
    from see3d.io.outdir import check_out_dir
    from see3d.splat.config import ReconstructConfig
    from see3d.splat.reconstruct import load_training_data, reconstruct

    try:
        cfg = dataclass_from_args(ReconstructConfig, args)
    except ValueError as e:
        from see3d.errors import InputError

        raise InputError(None, str(e)) from e
    from see3d.splat.rasterize import resolve_splat_placement

    resolve_splat_placement(cfg.device, cfg.backend)  # a device/backend that cannot run fails here, before any work
    check_out_dir(args.out, args.overwrite or args.resume, inputs=(args.data,))  # before any work; never the data folder
    data = load_training_data(args.data, factor=args.factor)
    summary = reconstruct(
        data,
        args.out,
        cfg,
        resume=args.resume,
        overwrite=args.overwrite,
        holdout_every=args.holdout_every,
        train_views=args.train_views,
        mesh=args.mesh,
        video=args.video,
        mesh_resolution=args.mesh_resolution,
        video_frames=args.video_frames,
    )
    print(json.dumps(summary, indent=2))
    return 0
