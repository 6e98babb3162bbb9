"""The evaluation report: ``results.json``, ``results.md`` (per scene and mean) and an image strip per scene.

Every report records the command line, package versions and hardware, so a number can be traced to
how it was made. Published numbers (See3D Table 2, PSNR only, see ``shared/spec/paper_method.md`` §5.2)
are listed beside ours for the datasets they exist for.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from see3d.eval.protocols import SceneResult
from see3d.eval.scoring import mean_metrics
from see3d.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from see3d.io.images import to_uint8

# Published PSNR (dB), See3D paper Table 2 as passed on by a secondary summary (unverified against the PDF).
PUBLISHED_PSNR: dict[str, dict[str, dict[str, float | None]]] = {
    "sparse3": {
        "MuRF": {"LLFF": 21.34, "DTU": 21.31, "Mip-NeRF 360": None},
        "BGGS (?)": {"LLFF": 21.44, "DTU": 20.71, "Mip-NeRF 360": None},
        "ReconFusion": {"LLFF": 21.34, "DTU": 20.74, "Mip-NeRF 360": 15.50},
        "CAT3D": {"LLFF": 21.58, "DTU": 22.02, "Mip-NeRF 360": 16.62},
        "See3D (paper)": {"LLFF": 23.23, "DTU": 28.04, "Mip-NeRF 360": 17.35},
    },
    "single": {
        "LucidDreamer": {"T&T": 13.11, "RealEstate10K": 15.24, "CO3D": 13.90},
        "ZeroNVS": {"T&T": 13.38, "RealEstate10K": 15.37, "CO3D": 14.23},
        "MotionCtrl": {"T&T": 14.31, "RealEstate10K": 16.30, "CO3D": 16.16},
        "ViewCrafter*": {"T&T": 19.13, "RealEstate10K": 20.49, "CO3D": 19.07},
        "See3D (paper)": {"T&T": 23.76, "RealEstate10K": 25.36, "CO3D": 24.28},
    },
}
# Which published column a scene of each reader format is compared with (sparse protocols).
FORMAT_TO_BENCHMARK = {"llff": "LLFF", "dtu": "DTU", "colmap": "Mip-NeRF 360"}


def environment() -> dict:
    """Package versions and hardware of this run."""
    versions = {"python": platform.python_version()}
    for pkg in ("see3d", "torch", "torchvision", "numpy", "diffusers", "transformers", "opencv-python-headless", "gsplat"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    hw = {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor() or None, "cpu_count": os.cpu_count()}
    try:
        import torch

        hw["torch_threads"] = torch.get_num_threads()
        hw["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # torch missing or broken CUDA: the report still gets written
        hw["cuda"] = None
    return {"versions": versions, "hardware": hw}


def _fmt(v: float | None, digits: int) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _json_safe(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return _json_safe(x.item())
    return x


def make_strip(result: SceneResult, height: int = 128, max_cols: int = 4) -> np.ndarray:
    """(H, W, 3) uint8 image: row "inputs", row "truth", row "ours" (first ``max_cols`` test views), labelled."""
    from PIL import Image, ImageDraw

    def row(imgs: np.ndarray | None) -> list[Image.Image]:
        if imgs is None or len(imgs) == 0:
            return []
        if len(imgs) > max_cols:
            imgs = imgs[np.linspace(0, len(imgs) - 1, max_cols).round().astype(int)]
        out = []
        for im in imgs:
            pil = Image.fromarray(to_uint8(im))
            w = max(1, round(pil.width * height / pil.height))
            out.append(pil.resize((w, height), Image.BILINEAR))
        return out

    rows = [("inputs", row(result.inputs)), ("truth", row(result.truth)), ("ours", row(result.pred))]
    label_w, pad = 64, 4
    width = label_w + max((sum(im.width + pad for im in r) for _, r in rows), default=0)
    canvas = Image.new("RGB", (max(width, label_w + 1), len(rows) * (height + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for ri, (label, ims) in enumerate(rows):
        y = pad + ri * (height + pad)
        draw.text((4, y + height // 2 - 6), label, fill=(0, 0, 0))
        x = label_w
        for im in ims:
            canvas.paste(im, (x, y))
            x += im.width + pad
    return np.asarray(canvas)


def _published_table(protocol: str, ours_by_benchmark: dict[str, float]) -> list[str]:
    key = "sparse3" if protocol.startswith("sparse") else protocol
    table = PUBLISHED_PSNR.get(key)
    if not table:
        return []
    cols = list(next(iter(table.values())))
    lines = [
        f"### Published PSNR ({'3 input views' if key == 'sparse3' else 'single view, zero-shot'}; See3D Table 2, PSNR only, unverified against the PDF)",
        "",
        "| Method | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for method, vals in table.items():
        lines.append(f"| {method} | " + " | ".join(_fmt(vals[c], 2) for c in cols) + " |")
    label = "**ours (this run)**" + ("" if protocol == key else f" [{protocol}]")
    lines.append(f"| {label} | " + " | ".join(_fmt(ours_by_benchmark.get(c), 2) for c in cols) + " |")
    if protocol != key:
        lines += ["", f"(The paper's supplementary {protocol} numbers were not available; the 3-view table is shown for orientation.)"]
    return lines + [""]


def write_scene_images(out: str | Path, r: SceneResult) -> None:
    """Write ``strips/<scene>.png`` and ``renders/<scene>/<view>.png`` of one scene into ``out``."""
    out = Path(out)
    if r.inputs is not None or r.truth is not None:
        _save_png(out / "strips" / f"{r.scene}.png", make_strip(r))
    if r.pred is not None:
        for name, img in zip(r.test_names, r.pred):
            _save_png(out / "renders" / r.scene / f"{name}.png", to_uint8(img))


def write_report(out: str | Path, results: list[SceneResult], header: dict, failures: list[dict] | None = None, images: bool = True) -> dict:
    """Write ``results.json``, ``results.md`` and (``images``) every scene's images (:func:`write_scene_images`) into ``out``.

    ``header`` holds run-level facts (protocol, method, command, config, lpips/mvd status, seconds).
    ``failures`` lists scenes that could not be evaluated (``{"scene", "error"}``). Returns the JSON dict.
    """
    out = Path(out)
    failures = failures or []
    if images:
        for r in results:
            write_scene_images(out, r)
    overall = mean_metrics([r.mean for r in results]) if results else {"psnr": None, "ssim": None, "lpips": None}
    env = environment()
    data = _json_safe({**header, **env, "mean": overall, "num_scenes": len(results), "scenes": [r.to_json() for r in results], "failures": failures})
    data["published_psnr"] = PUBLISHED_PSNR.get("sparse3" if str(header.get("protocol", "")).startswith("sparse") else str(header.get("protocol")), {})
    write_json_atomic(out / "results.json", data)
    write_text_atomic(out / "results.md", _markdown(results, header, overall, env, failures))
    return data


def _save_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")


def _markdown(results: list[SceneResult], header: dict, overall: dict, env: dict, failures: list[dict]) -> str:
    protocol = header.get("protocol", "?")
    lines = [f"# see3d eval: {protocol}", ""]
    lines += [f"- method: {header.get('method', '?')}"]
    if header.get("complete") is False:
        lines += [f"- **incomplete: {header.get('scenes_pending', '?')} scene(s) not evaluated yet (run still going, or stopped)**"]
    for note in header.get("notes", []):
        lines += [f"- **{note}**"]
    for key, label in (("filler", "filler"), ("depth_source", "depth")):
        if header.get(key):
            lines += [f"- {label}: {header[key]}"]
    lines += [f"- lpips: {header.get('lpips', '?')}", f"- command: `{header.get('command', '')}`", ""]
    lines += [
        "| scene | format | train views | test views | generated | PSNR ↑ | SSIM ↑ | LPIPS ↓ | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        secs = sum(r.seconds.values())
        m = r.mean
        lines.append(
            f"| {r.scene} | {r.format} | {', '.join(map(str, r.split.train))} | {len(r.split.test)} | {r.num_generated} | "
            f"{_fmt(m['psnr'], 2)} | {_fmt(m['ssim'], 3)} | {_fmt(m['lpips'], 3)} | {secs:.1f} |"
        )
    if results:
        lines.append(f"| **mean** ({len(results)} scene{'s' if len(results) != 1 else ''}) | | | | | **{_fmt(overall['psnr'], 2)}** | **{_fmt(overall['ssim'], 3)}** | **{_fmt(overall['lpips'], 3)}** | |")
    lines.append("")
    if failures:
        lines += ["## Scenes that failed", ""] + [f"- {f['scene']}: {f['error']}" for f in failures] + [""]
    by_bench: dict[str, list[float]] = {}
    for r in results:
        b = FORMAT_TO_BENCHMARK.get(r.format)
        if b and r.mean["psnr"] is not None:
            by_bench.setdefault(b, []).append(r.mean["psnr"])
    lines += _published_table(str(protocol), {k: float(np.mean(v)) for k, v in by_bench.items()})
    lines += ["## Splits", ""] + [f"- {r.scene}: {r.split.rule}" for r in results] + [""]
    lines += ["## Environment", ""]
    lines += [f"- {k}: {v}" for k, v in env["versions"].items()]
    lines += [f"- {k}: {v}" for k, v in env["hardware"].items()]
    if "seconds_total" in header:
        lines += [f"- total time: {header['seconds_total']:.1f} s"]
    lines.append("")
    return "\n".join(lines)


def command_line() -> str:
    """The current process's command line, shell-quoted."""
    import shlex

    return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])
