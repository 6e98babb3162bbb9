"""Write a labelled set of synthetic clips, laid out as a user's videos plus ground-truth sidecars.

Layout of ``out_dir``::

    <clip_id>.mp4                 the clip as a user would have it (pose-free H.264)
    <clip_id>/images/00000.png    frames
    <clip_id>/depth/00000.npy     float32 metric z-depth, metres
    <clip_id>/transforms.json     cameras (nerfstudio layout; read with see3d.io.views.Views.load)
    <clip_id>/moving_masks/00000.png   white = independently moving object (dynamic clips only)
    <clip_id>/label.json          {"clip_id", "label", "reason", "kind", "seed", ...}; written last
    labels.json                   list of every clip's label record, in clip order
    synth_config.json             the configuration that made the set

Clip kinds cycle through :data:`CYCLE` (half good kinds, half reject kinds, interleaved), so any ``n``
covers the reasons about evenly and ``n = 10`` covers every kind once. Everything is deterministic in
``seed``; a clip whose ``label.json`` already matches is not rendered again (resume after a crash).
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from see3d.config import check_fields, save_config
from see3d.io.atomic import write_json_atomic
from see3d.io.images import save_image
from see3d.io.video import write_video
from see3d.log import get_logger, progress
from see3d.synth.variants import KINDS, SynthClip, image_size, make_clip

log = get_logger(__name__)

CYCLE = ("orbit", "dynamic", "dolly", "static_camera", "pan", "rotation_only", "spiral", "small_motion", "handheld", "too_short")


@dataclass
class SynthSetConfig:
    """Options of ``see3d synth`` / :func:`write_labeled_set`."""

    out: Path = field(metadata={"out_dir": True, "help": "output folder"})
    n: int = field(default=50, metadata={"min": 1, "help": "number of clips"})
    seed: int = field(default=0, metadata={"help": "seed of the whole set (clip seeds derive from it)"})
    size: list[int] = field(default_factory=lambda: [256], metadata={"min": 8, "help": "frame size: S (square) or W H, pixels"})
    frames: int = field(default=48, metadata={"min": 1, "help": "frames per clip (too_short clips keep 4-6)"})
    fps: float = field(default=24.0, metadata={"gt": 0, "help": "frame rate of the videos; object motion is in seconds"})
    kinds: list[str] | None = field(
        default=None, metadata={"help": f"restrict to these clip kinds, cycled in order (any of {', '.join(KINDS)})"}
    )
    workers: int = field(default=1, metadata={"min": 0, "help": "parallel worker processes (0 or 1: in this process)"})

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class ClipPlan:
    """One planned clip: its id, kind and seed."""

    clip_id: str
    kind: str
    seed: int


def plan_clips(n: int, seed: int = 0, kinds: list[str] | tuple[str, ...] | None = None) -> list[ClipPlan]:
    """The ``n`` clips of a set: kinds cycled from ``kinds`` (default :data:`CYCLE`), clip seeds derived from
    ``(seed, index)``. Clip ids (``clip_00000``, ...) do not reveal the label."""
    order = tuple(kinds) if kinds else CYCLE
    bad = [k for k in order if k not in KINDS]
    if bad:
        raise ValueError(f"unknown clip kinds {bad}; expected any of {KINDS}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    plans = []
    for i in range(n):
        clip_seed = int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0] & 0x7FFFFFFF)
        plans.append(ClipPlan(f"clip_{i:05d}", order[i % len(order)], clip_seed))
    return plans


def clip_record(clip: SynthClip, clip_id: str) -> dict:
    """The JSON label record of a clip."""
    return {
        "clip_id": clip_id,
        "label": clip.label,
        "reason": clip.reason,
        "kind": clip.kind,
        "seed": clip.seed,
        "n_frames": len(clip.frames),
        "fps": clip.fps,
        "width": clip.cameras.width,
        "height": clip.cameras.height,
        "video": f"{clip_id}.mp4",
        "views": clip_id,
        "has_moving_masks": clip.moving_mask is not None,
        **clip.meta,
    }


def write_clip(clip: SynthClip, out_dir: str | Path, clip_id: str) -> dict:
    """Write one clip in the layout above (every file atomic, ``label.json`` last); returns its record."""
    out_dir = Path(out_dir)
    folder = out_dir / clip_id
    clip.views().save(folder)
    if clip.moving_mask is not None:
        for i, m in enumerate(clip.moving_mask):
            save_image(folder / "moving_masks" / f"{i:05d}.png", m)
    write_video(out_dir / f"{clip_id}.mp4", clip.frames, fps=clip.fps)
    record = clip_record(clip, clip_id)
    write_json_atomic(folder / "label.json", record)
    return record


def _existing(out_dir: Path, plan: ClipPlan, size: tuple[int, int], n_frames: int, fps: float) -> dict | None:
    """The record of an already complete clip matching ``plan`` (None if absent or different)."""
    label = out_dir / plan.clip_id / "label.json"
    if not label.is_file() or not (out_dir / f"{plan.clip_id}.mp4").is_file():
        return None
    try:
        rec = json.loads(label.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    same = (rec.get("kind"), rec.get("seed"), rec.get("width"), rec.get("height"), rec.get("fps")) == (plan.kind, plan.seed, *size, fps)
    same &= rec.get("requested_frames", None) == n_frames
    return rec if same else None


def _make_and_write(out_dir: Path, plan: ClipPlan, size: tuple[int, int], n_frames: int, fps: float) -> dict:
    clip = make_clip(plan.seed, plan.kind, n_frames=n_frames, size=size, fps=fps)
    clip.meta["requested_frames"] = n_frames
    return write_clip(clip, out_dir, plan.clip_id)


def write_labeled_set(
    out_dir: str | Path,
    n: int = 50,
    seed: int = 0,
    size: int | tuple[int, int] | list[int] = 256,
    n_frames: int = 48,
    fps: float = 24.0,
    kinds: list[str] | tuple[str, ...] | None = None,
    workers: int = 1,
) -> list[dict]:
    """Render and write ``n`` labelled clips to ``out_dir`` (layout in the module docstring).

    Returns the label records in clip order (also written to ``out_dir/labels.json``). A clip that fails
    is logged and left out; the others are still written. Complete clips from an earlier run with the
    same settings are reused, not rendered again.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wh = image_size(size)
    plans = plan_clips(n, seed, kinds)
    save_config(
        SynthSetConfig(out_dir, n, seed, list(wh), n_frames, fps, list(kinds) if kinds else None, workers), out_dir / "synth_config.json"
    )
    records: dict[str, dict] = {}
    todo = []
    for p in plans:
        rec = _existing(out_dir, p, wh, n_frames, fps)
        if rec is not None:
            records[p.clip_id] = rec
        else:
            todo.append(p)
    if len(todo) < len(plans):
        log.info("reusing %d complete clips in %s", len(plans) - len(todo), out_dir)
    failed = []
    bar = progress(total=len(todo), desc="synth clips", unit="clip")
    if workers <= 1:
        for p in todo:
            try:
                records[p.clip_id] = _make_and_write(out_dir, p, wh, n_frames, fps)
            except (RuntimeError, ValueError, OSError) as e:
                log.error("clip %s (%s, seed %d) failed: %s", p.clip_id, p.kind, p.seed, e)
                failed.append(p.clip_id)
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_make_and_write, out_dir, p, wh, n_frames, fps): p for p in todo}
            for fut in as_completed(futures):
                p = futures[fut]
                try:
                    records[p.clip_id] = fut.result()
                except (RuntimeError, ValueError, OSError) as e:
                    log.error("clip %s (%s, seed %d) failed: %s", p.clip_id, p.kind, p.seed, e)
                    failed.append(p.clip_id)
                bar.update(1)
    bar.close()
    ordered = [records[p.clip_id] for p in plans if p.clip_id in records]
    write_json_atomic(out_dir / "labels.json", ordered)
    if failed:
        log.warning("%d of %d clips failed: %s", len(failed), len(plans), ", ".join(sorted(failed)))
    return ordered
