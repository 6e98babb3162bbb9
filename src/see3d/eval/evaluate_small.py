"""Held-out evaluation of the small-scale reproduction: fill warped views of unseen synthetic scenes.

Protocol (posed ground truth is used only here, never in training):

1. held-out scenes: a ``see3d synth`` set rendered with another seed, good camera paths only;
2. per scene, frame 0 is the reference; targets are the frames at ``target_offsets``; the reference is
   forward-warped into each target camera with its *true* depth (:func:`see3d.geometry.warp.warp_to_cameras`),
   which leaves holes (disocclusions, out-of-view regions) -- or, with ``depth_error`` / ``depth_edge_blur``,
   with a simulated depth *estimate* (:func:`estimated_depth`), whose warps also carry misplaced and stretched
   pixels, as warps from a monocular depth model do;
3. fillers: classical OpenCV Telea inpainting (:class:`see3d.pipelines.generation.TeleaFiller`); trained
   models through :class:`see3d.pipelines.see3d_pipeline.See3DPipeline` (the inference visual condition:
   warp latents noised to t // 5 and mixed with the current latents by w(t')), all targets of a scene in
   one multi-view group with the reference;
4. metrics against the true target frames: PSNR and SSIM of the whole view and PSNR inside the holes; with
   ``--compare A=B``, also the per-view paired difference A minus B (mean, standard error, views won), since
   two fillers of the same views differ far less than the views do.

Training zeroes the condition latent inside the holes; the pipeline gives the small (pixel-unshuffle) models
the same masks at inference: per pixel for models trained with ``mask_reduce="pixel"`` (the small preset), whole
blocks otherwise (:meth:`See3DPipeline.latent_masks`).

A model trained with masks only (``condition_noise=False``) saw clean masked latents as its condition; it
is evaluated both with that matched condition (``clean`` rows: the warp latents as condition at every
step, the pipeline's super-resolution mode) and with the See3D inference condition.

With ``keep_known`` (``:keep``) a model keeps the warped pixels and fills only the holes (blended sampling plus
pasting the valid pixels), the way Telea treats them; without it the model regenerates whole views, as the
official method does. ``--fill-smoothing S`` low-passes those kept-pixel fills (and adds Telea's fill smoothed
the same way, so the filter alone can be compared).

Python: ``evaluate_small({"see3d": ModelSpec(Path("RUN/pipeline"), keep_known=True)}, "eval_small")``.
CLI: ``python -m see3d.eval.evaluate_small --model see3d=RUN/pipeline --model mask_only=RUN2/pipeline:clean
--out eval_small`` (``:clean`` evaluates with the clean condition, ``:keep`` keeps the warped pixels; give a
model several times for several modes; :meth:`ModelSpec.parse` reads these suffixes, at the CLI only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from see3d.errors import InputError
from see3d.io.atomic import write_json_atomic, write_text_atomic
from see3d.log import get_logger, progress
from see3d.pipelines.sampler_options import SamplerOptions

log = get_logger(__name__)


@dataclass
class EvalSmallConfig:
    """Settings of the held-out evaluation."""

    heldout: Path | None = field(default=None, metadata={"help": "an existing synth set to evaluate on (default: render one into <out>/heldout)"})
    n_scenes: int = field(default=10, metadata={"help": "held-out scenes to render"})
    seed: int = field(default=1000, metadata={"help": "seed of the held-out set (training sets use other seeds)"})
    size: int = field(default=64, metadata={"help": "image size, pixels (the model's training resolution)"})
    frames: int = field(default=24, metadata={"help": "frames per held-out clip"})
    target_offsets: list[int] = field(default_factory=lambda: [6, 12, 18], metadata={"help": "target frames (frame 0 is the reference)"})
    steps: int = field(default=25, metadata={"help": "DDIM steps"})
    guidance: float = field(default=2.0, metadata={"help": "guidance scale s (official 2.0)"})
    sample_seed: int = field(default=0, metadata={"help": "seed of the diffusion sampling"})
    depth_error: float = field(
        default=0.0,
        metadata={"help": "simulated depth-estimate error: std of a smooth random log-depth field (0: warp with the true depth)"},
    )
    depth_edge_blur: float = field(default=0.0, metadata={"help": "simulated depth-estimate error: Gaussian blur of the depth map, sigma in pixels"})
    fill_smoothing: float = field(
        default=0.0,
        metadata={"help": "models keeping the warped pixels: Gaussian sigma (px) of the low-pass on their fill (the shipped small "
                          "model: 1); when > 0, Telea's fill is also reported smoothed the same way ('telea-smoothed')"},
    )


@dataclass(frozen=True)
class ModelSpec:
    """One trained model and the mode it is evaluated in."""

    folder: Path  # a ``pipeline`` folder written by ``see3d train --export-pipeline``
    clean_condition: bool = False  # the clean warp latent as condition at every step (not the See3D inference condition)
    keep_known: bool = False  # keep the warped pixels, fill only the holes (not the paper's regeneration of whole views)

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """``DIR[:clean][:keep]`` (the CLI's form; the flags in any order) -> spec."""
        flags = set()
        while text.endswith((":clean", ":keep")):
            text, _, flag = text.rpartition(":")
            flags.add(flag)
        return cls(Path(text), clean_condition="clean" in flags, keep_known="keep" in flags)

    def options(self, fill_smoothing: float = 0.0) -> SamplerOptions:
        """The pipeline's sampler options for this mode; ``fill_smoothing`` applies only when keeping pixels."""
        return SamplerOptions(keep_known=self.keep_known, fill_smoothing=fill_smoothing if self.keep_known else 0.0, clean_condition=self.clean_condition)


@dataclass
class Scene:
    name: str
    reference: np.ndarray  # (H, W, 3) float [0, 1]
    targets: np.ndarray  # (T, H, W, 3) true target views
    warps: np.ndarray  # (T, H, W, 3) reference warped with true depth (0 in holes)
    masks: np.ndarray  # (T, H, W) bool, True = warped pixel


def heldout_scenes(cfg: EvalSmallConfig, out: Path) -> list[Scene]:
    """Render (or read) the held-out clips and warp their reference into every target camera."""
    from see3d.geometry.warp import warp_to_cameras
    from see3d.io.views import Views
    from see3d.synth.dataset import write_labeled_set
    from see3d.synth.variants import GOOD_KINDS

    folder = cfg.heldout
    if folder is None:
        folder = out / "heldout"
        write_labeled_set(folder, n=cfg.n_scenes, seed=cfg.seed, size=cfg.size, n_frames=cfg.frames, kinds=list(GOOD_KINDS))
    records = json.loads((Path(folder) / "labels.json").read_text())
    scenes = []
    for rec in records:
        if rec.get("label") != "keep":
            continue
        views = Views.load(Path(folder) / rec["clip_id"])
        if views.depth is None:
            raise InputError(Path(folder) / rec["clip_id"], "held-out clip has no depth maps")
        idx = [o for o in cfg.target_offsets if o < len(views)]
        if not idx:
            continue
        depth = estimated_depth(views.depth[0], cfg.depth_error, cfg.depth_edge_blur, seed=cfg.seed + len(scenes))
        warps, masks, _ = warp_to_cameras(views.images[0], depth, views.cameras[[0]], views.cameras[idx])
        scenes.append(Scene(rec["clip_id"], views.images[0], views.images[idx], np.clip(warps, 0, 1), masks))
    if not scenes:
        raise InputError(folder, "no usable held-out clips (need 'keep' clips with depth)")
    return scenes


def estimated_depth(depth: np.ndarray, error: float, edge_blur: float, seed: int) -> np.ndarray:
    """A stand-in for a monocular depth estimate aligned to the truth: ``depth`` (H, W) metres times
    ``exp(f)`` with ``f`` a smooth random field of std ``error`` (wrong relative depths), then blurred with
    sigma ``edge_blur`` px (estimators smooth depth edges, which makes stretched "flying" pixels in the warp).
    Both 0 returns the depth unchanged."""
    import cv2

    d = depth.astype(np.float32)
    h, w = d.shape
    if error > 0:
        rng = np.random.default_rng([int(seed), 7])
        coarse = rng.standard_normal((4, 4)).astype(np.float32)
        field_ = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        d = d * np.exp(error * field_ / max(float(field_.std()), 1e-6))
    if edge_blur > 0:
        d = cv2.GaussianBlur(d, (0, 0), edge_blur)
    return d


def scene_metrics(pred: np.ndarray, truth: np.ndarray, masks: np.ndarray) -> dict[str, list[float]]:
    """Per-view PSNR / SSIM of the whole view and PSNR inside the holes; arrays (T, H, W, 3) / (T, H, W)."""
    from see3d.metrics import psnr, ssim, to_tensor_batch

    p, t = to_tensor_batch(np.clip(pred, 0, 1)), to_tensor_batch(truth)
    holes = torch.from_numpy(~masks)
    hole_psnr = [float(v) if holes[i].any() else float("nan") for i, v in enumerate(psnr(p, t, holes))]
    return {"psnr": psnr(p, t).tolist(), "ssim": ssim(p, t).tolist(), "hole_psnr": hole_psnr, "hole_frac": holes.float().flatten(1).mean(1).tolist()}


def load_model(folder: Path):
    """A See3DPipeline from a ``pipeline`` folder written by ``see3d train --export-pipeline`` (CPU, float32)."""
    from see3d.pipelines.see3d_pipeline import See3DPipeline

    if not (Path(folder) / "model_index.json").is_file():
        raise InputError(folder, "not a pipeline folder (model_index.json missing; train with --export-pipeline)")
    pipe = See3DPipeline.load(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def fill_with_model(pipe, scene: Scene, cfg: EvalSmallConfig, spec: ModelSpec) -> np.ndarray:
    """Targets (T, H, W, 3) generated by the pipeline from the reference and the warps (one group), in ``spec``'s mode."""
    refs = torch.from_numpy(scene.reference).permute(2, 0, 1)[None].float()
    tgts = torch.from_numpy(np.ascontiguousarray(scene.warps)).permute(0, 3, 1, 2).float()
    masks = torch.from_numpy(scene.masks).float()[:, None]
    with torch.no_grad():
        out = pipe(refs, tgts, masks, num_inference_steps=cfg.steps, guidance_scale=cfg.guidance, generator=torch.Generator().manual_seed(cfg.sample_seed),
                   height=cfg.size, width=cfg.size, output_type="np", super_resolution=False, options=spec.options(cfg.fill_smoothing))  # fmt: skip
    return np.asarray(out.images, np.float32)


TELEA = "OpenCV Telea inpainting"
TELEA_SMOOTHED = "OpenCV Telea inpainting, fill smoothed"
WARP_ONLY = "warp only (holes black)"


def _smoothed(pred: np.ndarray, scene: Scene, sigma: float) -> np.ndarray:
    """(T, H, W, 3) views with their fill low-passed (:func:`see3d.pipelines.fill_smoothing.smooth_fill`)."""
    from see3d.pipelines.fill_smoothing import smooth_fill

    def chw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(0, 3, 1, 2)

    masks = torch.from_numpy(scene.masks).float()[:, None]
    return smooth_fill(chw(pred), chw(scene.warps), masks, sigma).permute(0, 2, 3, 1).numpy()


def evaluate_small(
    models: dict[str, ModelSpec], out: str | Path, cfg: EvalSmallConfig | None = None, pairs: list[tuple[str, str]] = ()
) -> dict:
    """Evaluate Telea and every model ``name -> ModelSpec``; writes
    ``out/results.json``, ``out/results.md`` (the table, then the paired differences of ``pairs``, each
    ``(a, b)`` read as "a minus b" over the same views) and ``out/examples.png``; returns the results."""
    from see3d.io.images import save_image
    from see3d.pipelines.generation import TeleaFiller

    cfg = cfg or EvalSmallConfig()
    from see3d.pipelines.fill_smoothing import check_fill_smoothing

    check_fill_smoothing(cfg.fill_smoothing, cfg.size, cfg.size)  # before anything is written
    known = {WARP_ONLY, TELEA, *models} | ({TELEA_SMOOTHED} if cfg.fill_smoothing else set())
    for pair in pairs:
        if not set(pair) <= known:
            raise InputError(None, f"cannot compare {pair[0]!r} with {pair[1]!r}: the methods are {sorted(known)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scenes = heldout_scenes(cfg, out)
    rows: dict[str, dict[str, list[float]]] = {}
    examples: dict[str, list[np.ndarray]] = {"truth": [s.targets[-1] for s in scenes]}

    def add(name: str, preds: list[np.ndarray], secs: float) -> None:
        acc: dict[str, list[float]] = {}
        for s, p in zip(scenes, preds):
            for k, v in scene_metrics(p, s.targets, s.masks).items():
                acc.setdefault(k, []).extend(v)
        acc["seconds"] = [secs]
        rows[name] = acc
        examples[name] = [p[-1] for p in preds]

    add(WARP_ONLY, [s.warps * s.masks[..., None] for s in scenes], 0.0)
    t0 = time.time()
    telea = [TeleaFiller()(s.reference[None], s.warps, s.masks) for s in scenes]
    add(TELEA, telea, time.time() - t0)
    if cfg.fill_smoothing:  # the same low-pass on the classical fill, so the comparison isolates the model
        add(TELEA_SMOOTHED, [_smoothed(p, s, cfg.fill_smoothing) for p, s in zip(telea, scenes)], time.time() - t0)
    for name, spec in models.items():
        pipe = load_model(spec.folder)
        t0 = time.time()
        preds = [fill_with_model(pipe, s, cfg, spec) for s in progress(scenes, desc=name, total=len(scenes))]
        add(name, preds, time.time() - t0)

    summary = {
        name: {k: float(np.nanmean(v)) for k, v in r.items() if k != "seconds"} | {"seconds": r["seconds"][0], "views": len(r["psnr"])}
        for name, r in rows.items()
    }
    result = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()}, "models": {k: [str(v.folder), v.clean_condition, v.keep_known] for k, v in models.items()},
              "scenes": [s.name for s in scenes], "summary": summary, "per_view": rows}  # fmt: skip
    result["paired"] = {f"{a} - {b}": paired_difference(rows[a], rows[b]) for a, b in pairs}
    write_json_atomic(out / "results.json", result)
    write_text_atomic(out / "results.md", results_table(summary, result["paired"]))
    grid = np.concatenate([np.concatenate(v, axis=1) for v in examples.values()], axis=0)
    save_image(out / "examples.png", np.clip(grid, 0, 1))
    log.info("evaluation written to %s", out)
    return result


def results_table(summary: dict, paired: dict | None = None) -> str:
    """Markdown table of the summary, followed by the table of the ``paired`` differences when there are any."""
    lines = ["| method | PSNR (dB) | SSIM | PSNR in holes (dB) | hole fraction | views |", "|---|---|---|---|---|---|"]
    for name, m in summary.items():
        lines.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['hole_psnr']:.2f} | {m['hole_frac']:.2f} | {m['views']} |")
    return "\n".join(lines) + "\n" + (paired_table(paired) if paired else "")


def paired_difference(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per-view differences ``a - b`` of two methods scored on the same views: for PSNR, SSIM and PSNR in the
    holes, the mean, its standard error (sample std / sqrt(n)), the views where ``a`` is better and n (views with
    a NaN, e.g. no hole pixels, are left out of that metric)."""
    res = {}
    for k in ("psnr", "ssim", "hole_psnr"):
        d = np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)
        d = d[np.isfinite(d)]
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        res[k] = {"mean": float(d.mean()) if len(d) else float("nan"), "se": se, "wins": int((d > 0).sum()), "n": int(len(d))}
    return res


def paired_table(paired: dict[str, dict]) -> str:
    """Markdown table of :func:`paired_difference` results (mean +- standard error, views won)."""
    lines = ["", "| paired difference | PSNR (dB) | SSIM | PSNR in holes (dB) | views better (PSNR) |", "|---|---|---|---|---|"]
    for name, r in paired.items():
        p, s, h = r["psnr"], r["ssim"], r["hole_psnr"]
        lines.append(f"| {name} | {p['mean']:+.2f} +- {p['se']:.2f} | {s['mean']:+.4f} +- {s['se']:.4f} | "
                     f"{h['mean']:+.2f} +- {h['se']:.2f} | {p['wins']} / {p['n']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from see3d.config import add_dataclass_args, dataclass_from_args
    from see3d.log import setup_logging

    parser = argparse.ArgumentParser(prog="python -m see3d.eval.evaluate_small", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], help="NAME=PIPELINE_DIR[:clean][:keep] (repeatable; clean: the clean "
                        "warp latent as condition at every step; keep: keep the warped pixels, fill only the holes)")  # fmt: skip
    parser.add_argument("--compare", action="append", default=[], metavar="A=B", help="also report the per-view paired difference "
                        "A minus B (mean +- standard error, views won; repeatable); A and B are --model names, 'telea' or 'telea-smoothed'")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("-v", "--verbose", action="count", default=1)
    add_dataclass_args(parser, EvalSmallConfig)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    models = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        if not path:
            parser.error(f"--model {spec!r}: expected NAME=DIR[:clean][:keep]")
        models[name] = ModelSpec.parse(path)
    pairs = []
    for spec in args.compare:
        a, sep, b = spec.partition("=")
        if not sep:
            parser.error(f"--compare {spec!r}: expected A=B (two method names)")
        aliases = {"telea": TELEA, "telea-smoothed": TELEA_SMOOTHED}
        pairs.append(tuple(aliases.get(x.strip().lower(), x) for x in (a, b)))
    try:
        result = evaluate_small(models, args.out, dataclass_from_args(EvalSmallConfig, args), pairs)
    except InputError as e:
        print(f"evaluate_small: error: {e}", file=sys.stderr)
        return 1
    print(results_table(result["summary"], result["paired"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
