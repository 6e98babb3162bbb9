"""``see3d generate``: one image, a few images or a text prompt + a camera path -> consistent posed views."""

from __future__ import annotations

import json
import sys
from pathlib import Path

NAME = "generate"
HELP = "warping-based 3D generation from one image, 2-6 images or a text prompt"
DESCRIPTION = """Generate novel views along a camera path with See3D (depth -> warp -> multi-view diffusion, chunk by chunk).
Inputs: --image FILE (single view), --images DIR (2-6 views; poses by SfM or --cameras), or --prompt TEXT with
--t2i-weights DIR (a local diffusers text-to-image pipeline). Depth (--depth-model, or maps with --depth) is
aligned to keypoint anchors triangulated with the cameras (--align lwlr|global); a view that cannot be aligned
stops the run with its name unless --align-fallback allows otherwise. Output folder: images/ depth/ masks/
transforms.json, the official See3D input layout under official/, points.ply and generate_config.json (with
every view's alignment statistics)."""


def add_arguments(parser) -> None:
    from see3d.commands._common import add_align_args, add_depth_args, add_device_args
    from see3d.config import add_dataclass_args
    from see3d.pipelines.generation import GenerateConfig

    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", type=Path, help="one input image")
    src.add_argument("--images", type=Path, help="folder of 2-6 input images of one scene (sparse views)")
    src.add_argument("--prompt", help="text prompt (needs --t2i-weights)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (the new run swaps in when it finishes)")
    parser.add_argument("--weights", type=Path, help="See3D weights folder (released MVD_weights layout or a save_pretrained folder); needed for --fill mvd")
    parser.add_argument("--variant", choices=["auto", "single", "sparse"], default="auto", help="UNet variant (auto: single for one image, sparse for several)")
    parser.add_argument("--cameras", type=Path, help="transforms.json with the input cameras (sparse: skips SfM; single: the input camera)")
    parser.add_argument("--targets", type=Path, help="transforms.json or camera_path.json with the cameras to generate, in the input cameras' "
                        "frame (instead of --path / --sparse-path; every mode)")  # fmt: skip
    parser.add_argument("--t2i-weights", type=Path, help="local diffusers text-to-image pipeline folder (for --prompt)")
    parser.add_argument("--t2i-steps", type=int, default=30, help="text-to-image steps")
    parser.add_argument("--offload", action="store_true", help="model CPU offload onto the CUDA --device (saves GPU memory, slower)")
    add_depth_args(parser)
    add_align_args(parser)
    add_device_args(parser)
    add_dataclass_args(parser, GenerateConfig, skip=("align",))


def _read_cameras(path: Path):
    from see3d.io.transforms_json import read_transforms_json

    if path.name.endswith("camera_path.json"):
        from see3d.io.camera_path import read_camera_path

        return read_camera_path(path)
    return read_transforms_json(path)[0]


def run(args) -> int:
    from see3d.commands._common import align_from_args, make_depth_backend
    from see3d.config import config_to_dict, dataclass_from_args
    from see3d.io.atomic import write_json_atomic
    from see3d.io.images import list_images, load_image, save_image
    from see3d.io.outdir import check_out_dir, staged_dir
    from see3d.pipelines import generation as gen
    from see3d.pipelines.loader import load_see3d

    cfg = dataclass_from_args(gen.GenerateConfig, args, align=align_from_args(args))
    inputs = tuple(p for p in (args.images, args.image) if p is not None)
    check_out_dir(args.out, args.overwrite, inputs=inputs)
    if cfg.fill == "mvd" and args.weights is None:
        from see3d.errors import InputError

        raise InputError(None, "--fill mvd needs the See3D weights: --weights DIR (or --fill telea for the classical inpainting baseline)")
    depth = make_depth_backend(args)
    # depth maps from files exist for the inputs only: generated views then keep their warped depth
    new_depth = None if args.depth_model is None else "same"
    variant = args.variant if args.variant != "auto" else ("sparse" if args.images else "single")
    pipe = load_see3d(args.weights, variant, args.device, args.dtype, args.offload) if cfg.fill == "mvd" and args.weights else None
    targets = _read_cameras(args.targets) if args.targets else None
    if args.image:
        cam = _read_cameras(args.cameras)[:1] if args.cameras else None
        result = gen.generate_from_image(load_image(args.image), depth, cfg, pipe, camera=cam, targets=targets, name=args.image.stem,
                                         new_view_depth=new_depth)  # fmt: skip
    elif args.images:
        paths = list_images(args.images)
        cams = _read_cameras(args.cameras) if args.cameras else None
        result = gen.generate_from_sparse([load_image(p) for p in paths], [p.stem for p in paths], depth, cfg, pipe, cams, paths, new_depth,
                                          targets=targets)  # fmt: skip
    else:
        if args.t2i_weights is None:
            from see3d.errors import InputError

            raise InputError(None, "--prompt needs --t2i-weights DIR (a local diffusers text-to-image pipeline folder)")
        image, result = gen.generate_from_text(args.prompt, args.t2i_weights, depth, cfg, pipe, args.t2i_steps, device=args.device, dtype=args.dtype,
                                               offload=args.offload, targets=targets)  # fmt: skip
    with staged_dir(args.out) as out:  # the folder holds this run only, and appears only when complete
        if args.prompt is not None:
            save_image(out / "prompt_image.png", image)
        result.save(out)
        write_json_atomic(out / "generate_config.json", {"config": config_to_dict(cfg), "argv": sys.argv, "variant": variant,
                                                         "weights": str(args.weights) if args.weights else None,
                                                         "alignment": result.alignment})  # fmt: skip
    print(json.dumps({"out": str(args.out), "views": len(result.views), "generated": len(result.warps)}))
    return 0
