"""Training clips: where they come from and how their frames are decoded and resized.

Sources (:func:`find_clips`):
- ``curation``: the output of ``see3d curate`` (WebDataset tar shards + ``shards/index.json`` +
  ``manifest.parquet``), read through :mod:`see3d.curation.reader` (random access by byte offset);
  only the kept clips.
- ``synth``: a ``see3d synth`` set: ``<id>.mp4`` with a sidecar ``<id>/label.json``; by default only
  clips labelled ``keep`` (static scene, moving camera). The sidecar's cameras and depth are *not* used (training is pose-free).
- ``videos``: every video file in a folder (natural order), each one clip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from see3d.errors import InputError
from see3d.io.images import natural_key
from see3d.labels import KEEP

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


@dataclass(frozen=True)
class ClipRef:
    """One training clip. ``kind`` says how to decode it; picklable (DataLoader workers)."""

    key: str
    kind: Literal["video", "curation"]
    path: Path
    extra: dict = field(default_factory=dict, hash=False, compare=False)


def detect_kind(data: Path) -> Literal["curation", "videos", "synth"]:
    """Guess the source kind of ``data`` (see module docstring)."""
    if not data.exists():
        raise InputError(data, "training data folder not found")
    if not data.is_dir():
        raise InputError(data, "training data must be a folder (curation output, synth set or videos)")
    if (data / "manifest.parquet").is_file() or (data / "shards" / "index.json").is_file():
        return "curation"
    if any((p.with_suffix("") / "label.json").is_file() for p in data.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS):
        return "synth"
    return "videos"


def find_clips(data: str | Path, kind: str = "auto", synth_keep_only: bool = True) -> list[ClipRef]:
    """List the clips of a training source; raises :class:`InputError` when there are none."""
    data = Path(data)
    kind = detect_kind(data) if kind == "auto" else kind
    if not data.is_dir():
        raise InputError(data, "training data folder not found")
    if kind == "curation":
        clips = _curation_clips(data)
    else:
        videos = sorted((p for p in data.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")), key=natural_key)
        clips = []
        for v in videos:
            if kind == "synth" and synth_keep_only:
                label = v.with_suffix("") / "label.json"
                if label.is_file():
                    try:
                        rec = json.loads(label.read_text())
                        decision = rec.get("label", rec.get("decision"))
                    except (json.JSONDecodeError, AttributeError) as e:
                        raise InputError(label, f"not a valid label.json ({e})") from e
                    if decision != KEEP:
                        continue
            clips.append(ClipRef(key=v.stem, kind="video", path=v))
    if not clips:
        raise InputError(data, f"no usable training clips found (read as '{kind}')")
    return clips


def _curation_clips(folder: Path) -> list[ClipRef]:
    from see3d.curation import reader  # imported lazily: the curation package is heavy

    return [ClipRef(key=e.key, kind="curation", path=e.shard, extra={"entry": e}) for e in reader.list_accepted(folder)]


def load_clip_frames(clip: ClipRef, max_frames: int | None = None) -> np.ndarray:
    """Decode a clip to uint8 ``(T, H, W, 3)`` RGB; :class:`InputError` names the file on failure."""
    if clip.kind == "video":
        from see3d.io.video import read_frames

        return read_frames(clip.path, max_frames=max_frames)
    if clip.kind == "curation":
        from see3d.curation import reader

        try:
            frames = reader.read_entry(clip.extra["entry"])[0]
        except OSError as e:
            raise InputError(clip.path, f"cannot read clip {clip.key} ({e})") from e
        return frames if max_frames is None else frames[:max_frames]
    raise InputError(clip.path, f"unknown clip kind {clip.kind!r}")


def resize_frames(frames: np.ndarray, resolution: int, mode: str = "crop") -> np.ndarray:
    """uint8 (T, H, W, 3) -> uint8 (T, R, R, 3): short side to R then centre crop, or a plain stretch."""
    import cv2

    t, h, w = frames.shape[:3]
    if mode == "crop":
        scale = resolution / min(h, w)
        nh, nw = max(resolution, round(h * scale)), max(resolution, round(w * scale))
        y0, x0 = (nh - resolution) // 2, (nw - resolution) // 2
    else:
        nh = nw = resolution
        y0 = x0 = 0
    interp = cv2.INTER_AREA if nh < h else cv2.INTER_CUBIC
    out = np.empty((t, resolution, resolution, 3), np.uint8)
    for i in range(t):
        img = frames[i] if (nh, nw) == (h, w) else cv2.resize(frames[i], (nw, nh), interpolation=interp)
        out[i] = img[y0 : y0 + resolution, x0 : x0 + resolution]
    return out


def to_model_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
