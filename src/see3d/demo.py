"""``see3d demo``: the whole system on a bundled sample, on CPU, in a few minutes.

The sample is a procedural room from :mod:`see3d.synth` (made in code, nothing downloaded): one rendered
"photo" with its depth goes through warping-based generation along an orbit (the small See3D model
shipped in ``see3d/assets/demo_mvd`` fills the holes; without it, OpenCV Telea inpainting does, and
``demo.json`` says which), then 3D Gaussian splatting reconstructs the scene,
which is exported as ``splats.ply`` (open it with ``see3d view``) and a flythrough ``flythrough.mp4``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from see3d.config import check_fields
from see3d.errors import WeightsError
from see3d.log import get_logger
from see3d.pipelines.loader import default_demo_weights

log = get_logger(__name__)


@dataclass
class DemoConfig:
    """Settings of ``see3d demo``."""

    seed: int = field(default=0, metadata={"help": "sample scene seed"})
    size: int = field(default=64, metadata={"min": 64, "multiple_of": 64, "help": "working resolution (long side, multiple of 64); the shipped model is trained at 64"})
    n_frames: int = field(default=8, metadata={"min": 1, "help": "new views generated along the orbit"})
    path: str = field(default="orbit_right", metadata={"help": "camera path preset"})
    steps: int = field(default=1, metadata={"min": 1, "help": "diffusion steps (the shipped small model, keeping the warped pixels: 1 step and no guidance were best on validation scenes)"})
    guidance: float = field(default=0.0, metadata={"help": "guidance scale (official model: 2.0; the shipped small model: 0)"})
    iters: int = field(default=1000, metadata={"min": 1, "help": "Gaussian-splatting optimisation steps"})
    video_frames: int = field(default=48, metadata={"min": 1, "help": "frames of the flythrough video"})
    keep_known: bool = field(
        default=True,
        metadata={"help": "keep the warped pixels, fill only the holes (the sample's warps come from its exact depth); --no-keep-known regenerates whole views"},
    )
    fill_smoothing: float = field(
        default=1.0,
        metadata={"help": "with --keep-known: Gaussian sigma (px) of the low-pass on the model's fill (1 was best for the shipped model on validation scenes; 0 = off)"},
    )
    fill: Literal["auto", "mvd", "telea"] = field(
        default="auto",
        metadata={"help": "hole filler: the See3D model (mvd), OpenCV Telea inpainting, or auto (the shipped model when the package has one, else Telea)"},
    )

    def __post_init__(self) -> None:
        check_fields(self)


def sample_photo(seed: int, width: int, height: int):
    """The bundled sample: a synthetic room seen by one camera -> (image (H,W,3), depth (H,W) metres, Cameras)."""
    from see3d.io.cameras import Cameras, look_at
    from see3d.synth import make_scene, render

    scene = make_scene(seed, kind="room")
    eye = scene.focus + np.array([0.0, -0.5, -0.9 * (scene.view_distance[0] + scene.view_distance[1])])
    cam = Cameras.from_fov(look_at(eye, scene.focus), 60.0, width, height)
    rgb, depth = render(scene, cam)
    return rgb[0], depth[0], cam


def resolve_fill(fill: str, weights: Path) -> str:
    """``"auto"`` -> the See3D model ("mvd") when ``weights`` is a folder, else OpenCV Telea (with a warning)."""
    if fill != "auto":
        return fill
    if weights.is_dir():
        return "mvd"
    log.warning("no See3D model at %s: filling holes with OpenCV Telea inpainting", weights)
    return "telea"


def demo_generate_config(cfg: DemoConfig, fill: str):
    """The :class:`GenerateConfig` of the demo's settings (``fill``: "mvd" or "telea"; smoothing only with the model)."""
    from see3d.pipelines.generation import GenerateConfig

    return GenerateConfig(path=cfg.path, n_frames=cfg.n_frames, chunk_size=4, size=cfg.size, steps=cfg.steps, guidance=cfg.guidance,
                          seed=cfg.seed, fill=fill, keep_known=cfg.keep_known,
                          fill_smoothing=cfg.fill_smoothing if fill == "mvd" and cfg.keep_known else 0.0)  # fmt: skip


def demo_reconstruct_config(cfg: DemoConfig):
    """The :class:`ReconstructConfig` of the demo (CPU-sized)."""
    from see3d.splat.config import ReconstructConfig

    return ReconstructConfig(iters=cfg.iters, sh_degree=1, init_points=20_000, checkpoint_every=0)


def run_demo(out: str | Path, cfg: DemoConfig | None = None, weights: str | Path | None = None, overwrite: bool = False) -> dict:
    """Sample photo -> generate along a path -> reconstruct -> ``splats.ply`` + ``flythrough.mp4`` in ``out``.

    ``out`` must be new or empty unless ``overwrite``; the run writes into a temporary folder beside it that
    replaces ``out`` only when everything is done (see :mod:`see3d.io.outdir`)."""
    from see3d.io.outdir import check_out_dir, staged_dir
    from see3d.pipelines.fill_smoothing import check_fill_smoothing

    cfg = cfg or DemoConfig()
    check_fill_smoothing(cfg.fill_smoothing, cfg.size, cfg.size)  # before anything is written
    final = check_out_dir(out, overwrite)
    with staged_dir(final) as tmp:
        report = _run_demo_into(tmp, final, cfg, weights)
    log.info("demo finished: %s", json.dumps(report))
    return report


def _run_demo_into(out: Path, final: Path, cfg: DemoConfig, weights: str | Path | None) -> dict:
    """The demo written into ``out`` (a staging folder); paths in the report name ``final``."""
    from see3d.config import config_to_dict
    from see3d.depth.true_depth import TrueDepth
    from see3d.io.atomic import write_json_atomic
    from see3d.io.images import save_image
    from see3d.pipelines.generation import generate_from_image
    from see3d.splat.reconstruct import reconstruct

    t0 = time.time()
    image, depth, cam = sample_photo(cfg.seed, cfg.size, cfg.size)
    save_image(out / "input.png", image)
    pipe = None
    weights = Path(weights) if weights else default_demo_weights()
    fill = resolve_fill(cfg.fill, weights)
    if fill == "mvd":
        from see3d.pipelines.loader import load_see3d

        if not weights.is_dir():
            raise WeightsError(weights, "See3D weights folder not found (pass --weights DIR, or --fill telea)")
        pipe = load_see3d(weights, "single", "cpu", "float32")
    gcfg = demo_generate_config(cfg, fill)
    # the sample photo comes with its depth map; new views keep the depth warped from it
    result = generate_from_image(image, TrueDepth(depth[None], ["input"]), gcfg, pipe, camera=cam, name="input", new_view_depth=None)
    result.save(out / "views")
    t_gen = time.time() - t0
    roles = ["input"] * result.num_inputs + ["generated"] * len(result.warps)
    summary = reconstruct(result.views, out / "splats", demo_reconstruct_config(cfg), video=True, video_frames=cfg.video_frames,
                          show_progress=True, view_roles=roles)  # fmt: skip
    report = {
        "input": str(final / "input.png"),
        "views": str(final / "views"),
        "splats": str(final / Path(summary["splats"]).relative_to(out)),
        "flythrough": str(final / Path(summary["video"]).relative_to(out)) if summary.get("video") else None,
        "filler": "telea (OpenCV inpainting)" if fill == "telea" else f"mvd ({weights})",
        "seconds_generate": round(t_gen, 1),
        "seconds_total": round(time.time() - t0, 1),
        "config": config_to_dict(cfg),
    }
    write_json_atomic(out / "demo.json", report)
    return report
