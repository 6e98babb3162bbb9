"""Multi-view diffusion on the official example input layout: folders in, ``predict_*.png`` out.

Inputs (as the official ``inference.py``):

- ``refs/``: the reference images (any common image format; natural sort order, the first one gives the output
  size and the CLIP embedding);
- ``warps/``: ``warp_*.<ext>`` target views and, for each, a mask named like it with ``warp`` replaced by
  ``mask`` (white = valid pixel; thresholded at > 0.9 after resizing).

Outputs in ``out/``: ``predict_<warp stem>.png`` (base model, resized to the first reference's size), with
``--sr`` also ``SR_predict_<warp stem>.png``, and ``mvd_config.json``. Every file is written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import PIL.Image
import torch

from see3d.config import check_fields, save_config
from see3d.device import DEVICE_HELP, DTYPE_HELP
from see3d.errors import InputError
from see3d.io.images import IMAGE_EXTENSIONS, list_images, natural_key, save_image
from see3d.log import get_logger
from see3d.pipelines.schedule import STEPS_HELP

log = get_logger(__name__)


@dataclass
class MVDConfig:
    """Settings of one ``see3d mvd`` run."""

    weights: Path = field(metadata={"help": "See3D weights folder: the released MVD_weights layout or a save_pretrained folder"})
    refs: Path = field(metadata={"help": "folder of reference images"})
    warps: Path = field(metadata={"help": "folder of warp_*.png target views and matching mask_*.png masks"})
    out: Path = field(metadata={"out_dir": True, "help": "output folder"})
    variant: Literal["auto", "single", "sparse"] = field(
        default="auto", metadata={"help": "UNet: single-view, sparse-view, or by reference count"}
    )
    sr: bool = field(default=False, metadata={"help": "also run the x2 super-resolution stage"})
    steps: int = field(default=50, metadata={"min": 1, "help": "base stage: " + STEPS_HELP})
    guidance: float = field(default=2.0, metadata={"help": "guidance s in (1+s) cond - s uncond (official 2.0)"})
    sr_steps: int = field(default=30, metadata={"min": 1, "help": "DDIM steps of the SR stage (N=30 makes 31 UNet calls, the official trailing schedule)"})
    sr_guidance: float = field(default=1.0, metadata={"help": "guidance of the SR stage (official 1.0)"})
    seed: int = field(default=0, metadata={"help": "random seed (all noise is drawn from it)"})
    size: int = field(default=512, metadata={"min": 64, "multiple_of": 64, "help": "model resolution of the base stage (SR doubles it)"})
    group_size: int | None = field(default=None, metadata={"min": 1, "help": "targets per multi-view group (default: all at once)"})
    device: str = field(default="auto", metadata={"help": DEVICE_HELP})
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = field(default="auto", metadata={"help": DTYPE_HELP})
    offload: bool = field(default=False, metadata={"help": "model CPU offload onto the CUDA --device: less GPU memory, slower"})
    vae_tiling: bool = field(default=True, metadata={"help": "tiled VAE for large images (official)"})

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class OfficialInputs:
    """Paths of one input set: references, warped views and their masks (same order as ``warps``)."""

    refs: list[Path]
    warps: list[Path]
    masks: list[Path]


def read_input_layout(refs_dir: str | Path, warps_dir: str | Path) -> OfficialInputs:
    """List the reference images and ``warp_*`` / ``mask_*`` pairs; raise :class:`InputError` on any gap."""
    refs = list_images(refs_dir)
    if not refs:
        raise InputError(refs_dir, "no reference images in the folder")
    warps_dir = Path(warps_dir)
    if not warps_dir.is_dir():
        raise InputError(warps_dir, "is not a folder")
    warps = sorted((p for p in warps_dir.iterdir() if p.name.startswith("warp") and p.suffix.lower() in IMAGE_EXTENSIONS), key=natural_key)
    if not warps:
        raise InputError(warps_dir, "no warp_* images in the folder")
    masks = [p.with_name(p.name.replace("warp", "mask")) for p in warps]
    for w, m in zip(warps, masks):
        if not m.is_file():
            raise InputError(m, f"mask for {w.name} not found (expected the warp name with 'warp' replaced by 'mask')")
    return OfficialInputs(refs, warps, masks)


def open_image(path: Path, mode: str) -> PIL.Image.Image:
    """Open an image fully into memory in ``mode`` ("RGB" or "L"), with an :class:`InputError` naming the file."""
    try:
        with PIL.Image.open(path) as im:
            return im.convert(mode)
    except (OSError, PIL.UnidentifiedImageError) as e:
        raise InputError(path, f"not a readable image ({e})") from e


def run_mvd(cfg: MVDConfig, pipe=None) -> list[Path]:
    """Generate every ``warp_*`` target of ``cfg.warps`` and write the outputs; returns the written image paths.

    ``pipe``: an already loaded :class:`See3DPipeline` to reuse (otherwise loaded from ``cfg.weights``).
    """
    from see3d.pipelines.loader import load_see3d

    inputs = read_input_layout(cfg.refs, cfg.warps)
    refs = [open_image(p, "RGB") for p in inputs.refs]
    warps = [open_image(p, "RGB") for p in inputs.warps]
    masks = [open_image(p, "L") for p in inputs.masks]
    out_w, out_h = refs[0].size
    if pipe is None:
        variant = cfg.variant if cfg.variant != "auto" else ("single" if len(refs) == 1 else "sparse")
        pipe = load_see3d(cfg.weights, variant, cfg.device, cfg.dtype, cfg.offload, sr=cfg.sr, vae_tiling=cfg.vae_tiling, show_progress=True)
    log.info("generating %d views from %d references", len(warps), len(refs))
    generator = torch.Generator().manual_seed(cfg.seed)
    out = pipe(
        refs, warps, masks, num_inference_steps=cfg.steps, guidance_scale=cfg.guidance, generator=generator, height=cfg.size, width=cfg.size,
        output_type="pil", group_size=cfg.group_size, super_resolution=cfg.sr, sr_num_inference_steps=cfg.sr_steps,
        sr_guidance_scale=cfg.sr_guidance,
    )  # fmt: skip
    base = out.base_images if cfg.sr else out.images
    written = []
    cfg.out.mkdir(parents=True, exist_ok=True)
    stages = [("predict_", base)] + ([("SR_predict_", out.images)] if cfg.sr else [])
    for prefix, images in stages:
        for warp, img in zip(inputs.warps, images):
            path = cfg.out / f"{prefix}{warp.stem}.png"
            save_image(path, np.asarray(img.resize((out_w, out_h), PIL.Image.BICUBIC)))
            written.append(path)
    save_config(cfg, cfg.out / "mvd_config.json")
    return written
