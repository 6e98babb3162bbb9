"""`evaluate(cfg)`: run one protocol over one scene or a folder of scenes and write the report.

This is the Python API behind ``see3d eval``. Components (reconstruction, generation) are built from
the config by :mod:`see3d.eval.components` unless the caller injects its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from see3d.config import check_fields, config_to_dict, save_config
from see3d.datasets import find_scenes, load_scene
from see3d.errors import InputError, See3DError
from see3d.eval.protocols import SPARSE_VIEWS, GenerateFn, ReconstructFn, SceneResult, run_dense, run_single, run_sparse
from see3d.eval.report import command_line, write_report, write_scene_images
from see3d.eval.scoring import Scorer
from see3d.log import get_logger, progress

log = get_logger(__name__)


@dataclass
class EvalConfig:
    """Settings of one evaluation run (every field is a ``see3d eval`` option)."""

    data: Path = field(metadata={"help": "a scene folder, or a folder of scene folders"})
    protocol: Literal["sparse3", "sparse6", "sparse9", "single", "dense"] = field(
        default="sparse3", metadata={"help": "sparseK: K input views -> (generate) -> 3DGS; single: one view in, generated frames scored; dense: every 8th view held out"}
    )
    format: Literal["auto", "llff", "dtu", "colmap", "transforms"] = field(default="auto", metadata={"help": "dataset format of the scenes"})
    out: Path = field(default=Path("eval_out"), metadata={"out_dir": True, "help": "output folder (results.json, results.md, strips/, renders/)"})
    mvd_weights: Path | None = field(
        default=None, metadata={"help": "See3D multi-view diffusion folder; without it the sparse protocols run the reconstruction-only baseline"}
    )
    depth_model: Path | None = field(
        default=None, metadata={"help": "with --mvd-weights: local transformers depth model folder for scenes without depth maps"}
    )
    fill: Literal["mvd", "telea", "small"] = field(
        default="mvd",
        metadata={"help": "sparse/single protocols: hole filler of the warping framework: the model at --mvd-weights (mvd; without weights the "
                          "sparse protocols run the reconstruction-only baseline), OpenCV Telea inpainting (telea), or the shipped small model (small)"},
    )
    depth: Path | None = field(
        default=None, metadata={"help": "depth maps per input image (<stem>.npy/.png; a sub-folder per scene when evaluating several) instead of --depth-model"}
    )
    depth_kind: Literal["auto", "metric_depth", "relative_depth", "relative_disparity"] = field(
        default="auto", metadata={"help": "what --depth maps / --depth-model output (auto: the model's config; given maps: metric depth)"}
    )
    mvd_steps: int = field(default=50, metadata={"min": 1, "help": "with --mvd-weights: diffusion steps per generated chunk"})
    mvd_size: int = field(default=512, metadata={"min": 64, "multiple_of": 64, "help": "with --mvd-weights: generation resolution (long side, multiple of 64)"})
    iters: int | None = field(default=None, metadata={"min": 1, "help": "3DGS optimisation steps per scene (default: the reconstruction's own default)"})
    lpips_weights: list[str] | None = field(
        default=None, metadata={"help": "LPIPS weight files/folders: the lpips package's alex.pth (or vgg.pth) and torchvision's backbone .pth; LPIPS is skipped without them"}
    )
    factor: int | None = field(default=None, metadata={"min": 1, "help": "image downscale factor (default: the benchmark's: LLFF 8, DTU 4, COLMAP 4, transforms 1)"})
    scenes: list[str] | None = field(default=None, metadata={"help": "only these scene names (sub-folders of --data)"})
    generated_per_gap: int = field(default=4, metadata={"min": 1, "help": "sparse protocols with MVD: views generated between neighbouring inputs"})
    single_targets: int = field(default=24, metadata={"min": 1, "help": "single protocol: number of later frames scored"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    device: str = field(
        default="auto", metadata={"help": "torch device: auto, cpu, cuda, cuda:1, ... (auto: diffusion on CUDA when present; splats on CUDA when gsplat runs there, else CPU)"}
    )
    splat: Any = field(default=None, metadata={"help": "3DGS settings (a see3d.splat.config.ReconstructConfig; the CLI's --splat-* options)"})
    align: Any = field(default=None, metadata={"help": "depth alignment (a see3d.geometry.anchor_align.AlignConfig; the CLI's --align* options)"})

    def __post_init__(self) -> None:
        check_fields(self)


def _filler(cfg: EvalConfig) -> tuple[str, Path | None, dict]:
    """(description, weights folder, extra generate kwargs) of the filler ``cfg.fill`` asks for."""
    if cfg.fill == "telea":
        return "OpenCV Telea inpainting", None, {}
    if cfg.fill == "small":
        from see3d.pipelines.loader import default_demo_weights

        w = default_demo_weights()
        if not (w / "model_index.json").is_file():
            raise See3DError(f"--fill small: the shipped small model is missing from this installation ({w})")
        # the settings chosen for the shipped model on validation scenes (see its README)
        return f"shipped small model ({w.name})", w, {"steps": 1, "guidance": 0.0, "keep_known": True, "fill_smoothing": 1.0}
    return f"See3D MVD ({cfg.mvd_weights})", cfg.mvd_weights, {"steps": cfg.mvd_steps}


def _depth_source(cfg: EvalConfig) -> str:
    kind = cfg.depth_kind if cfg.depth_kind != "auto" else ("metric_depth" if cfg.depth is not None else "from the model config")
    align = cfg.align.method if cfg.align is not None else "lwlr"
    if cfg.depth is not None:
        src = f"given maps {cfg.depth} ({kind})"
    elif cfg.depth_model is not None:
        src = f"depth model {cfg.depth_model} ({kind})"
    else:
        src = "the dataset's depth maps (when it has them)"
    return f"{src}; aligned ({align}) to keypoint anchors triangulated with the dataset cameras"


def evaluate(
    cfg: EvalConfig,
    reconstruct: ReconstructFn | None = None,
    generate: GenerateFn | None = None,
    scorer: Scorer | None = None,
    command: str | None = None,
) -> dict:
    """Run ``cfg.protocol`` on every scene under ``cfg.data`` and write the report into ``cfg.out``.

    ``reconstruct`` / ``generate`` / ``scorer`` override the components built from ``cfg`` (tests pass
    tiny ones). A scene that fails with a :class:`See3DError` (e.g. a malformed file) is recorded in the
    report and skipped.

    Returns:
        the ``results.json`` content.

    Raises:
        See3DError: bad config, or no scene could be evaluated.
    """
    t_start = time.perf_counter()
    from see3d.device import resolve_device

    device = str(resolve_device(cfg.device))  # the diffusion model's and LPIPS's device
    notes: list[str] = []
    sparse = cfg.protocol in SPARSE_VIEWS
    filler, depth_source = None, None
    framework = cfg.protocol != "dense" and (cfg.mvd_weights is not None or cfg.fill != "mvd")
    if generate is None and framework:
        from see3d.eval.components import mvd_generate

        variant = "single" if cfg.protocol == "single" else "sparse"
        filler, weights, gen_kw = _filler(cfg)
        depth_source = _depth_source(cfg)
        generate = mvd_generate(weights, variant, device, cfg.seed, cfg.depth_model, size=cfg.mvd_size, fill=cfg.fill, depth_dir=cfg.depth,
                                depth_kind=cfg.depth_kind, align=cfg.align, **gen_kw)  # fmt: skip
    if cfg.protocol == "single" and generate is None:
        raise See3DError("the single-view protocol scores generated frames and needs --mvd-weights")
    if cfg.protocol == "dense" and cfg.mvd_weights is not None:
        notes.append("dense protocol: --mvd-weights ignored (no views are generated)")
    if sparse and generate is None:
        notes.append("no MVD weights given: reconstruction-only baseline (3DGS from the input views alone)")
    if reconstruct is None and cfg.protocol != "single":
        from see3d.eval.components import splat_reconstruct
        from see3d.splat.rasterize import resolve_splat_placement

        # splats follow the same --device, with the rasterizer that fits it (device auto: gsplat on CUDA when it runs, else CPU);
        # checked now, so a device without a rasterizer fails before any scene is loaded
        resolve_splat_placement(cfg.device, cfg.splat.backend if cfg.splat is not None else "auto")
        reconstruct = splat_reconstruct(cfg.splat, device=cfg.device)
    if scorer is None:
        scorer = Scorer.from_weights(cfg.lpips_weights, device=device)
    folders = find_scenes(cfg.data, cfg.format)
    if cfg.scenes:
        wanted = set(cfg.scenes)
        folders = [f for f in folders if f.name in wanted]
        missing = wanted - {f.name for f in folders}
        if missing:
            raise InputError(cfg.data, f"no scene folder named {', '.join(sorted(missing))}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.json")
    if sparse:
        if generate is None:
            method = "reconstruction-only baseline: 3DGS from the inputs alone"
        elif cfg.fill == "mvd":
            method = "see3d: MVD-generated views + 3DGS"
        else:
            method = f"see3d framework: views generated with {filler} + 3DGS"
    else:
        method = {"dense": "3DGS on all train views", "single": "see3d generation, frames scored directly"}[cfg.protocol]
    header = {
        "protocol": cfg.protocol,
        "method": method,
        "notes": notes,
        "lpips": scorer.lpips_status,
        "mvd_weights": None if cfg.mvd_weights is None else str(cfg.mvd_weights),
        "filler": filler,
        "depth_source": depth_source,
        "device": device,
        "command": command or command_line(),
        "config": config_to_dict(cfg),
    }
    results: list[SceneResult] = []
    failures: list[dict] = []

    def report(finished: bool) -> dict:
        """results.json / results.md as they stand: rewritten after every scene, so a crash loses no finished scene."""
        state = {"complete": True} if finished else {"complete": False, "scenes_pending": len(folders) - len(results) - len(failures)}
        return write_report(out, results, {**header, **state, "seconds_total": time.perf_counter() - t_start}, failures, images=False)

    data = report(finished=False)
    for folder in progress(folders, desc=f"eval {cfg.protocol}", unit="scene"):
        try:
            scene = load_scene(folder, cfg.format, cfg.factor)
            if hasattr(generate, "scene"):
                generate.scene = scene.name
            if sparse:
                res = run_sparse(scene, SPARSE_VIEWS[cfg.protocol], reconstruct, scorer, generate, cfg.generated_per_gap, cfg.iters, cfg.seed)
            elif cfg.protocol == "dense":
                res = run_dense(scene, reconstruct, scorer, cfg.iters, cfg.seed)
            else:
                res = run_single(scene, generate, scorer, cfg.single_targets)
        except See3DError as e:  # bad files, failed SfM, ...: recorded, and the other scenes go on
            log.error("scene %s skipped: %s", folder.name, e)
            failures.append({"scene": folder.name, "error": str(e)})
        except Exception as e:  # noqa: BLE001 - an unexpected failure of one scene is its row, not the end of the run
            log.error("scene %s failed: %s: %s", folder.name, type(e).__name__, e, exc_info=log.isEnabledFor(10))
            failures.append({"scene": folder.name, "error": f"{type(e).__name__}: {e}"})
        else:
            for st in getattr(generate, "alignment", None) or []:
                res.notes.append("alignment " + ", ".join(f"{k}={v}" for k, v in st.items() if v not in ("", None)))
            log.info("%s: PSNR %.2f SSIM %.3f", res.scene, res.mean["psnr"], res.mean["ssim"])
            results.append(res)
            write_scene_images(out, res)
        data = report(finished=False)
    data = report(finished=True)
    if not results:
        raise See3DError(f"no scene could be evaluated ({len(failures)} failed; see {out / 'results.md'})")
    return data
