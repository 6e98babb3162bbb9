"""Stage 2: semantic dynamic recognition. Drop clips showing people (hands included), animals or vehicles.

``frames`` frames evenly spread over the clip are passed to a detector
(:mod:`see3d.curation.detect`). A frame is *occupied* when its dynamic-class detections cover at
least ``min_area`` of the image (small, distant people do not make a clip dynamic). The clip is
dropped (``person``) when more than ``frames_drop`` of the checked frames are occupied (the paper:
more than half of the frames), or when any one checked frame shows a detection scoring at least
``sure_score`` over ``min_area`` (the paper drops every clip with people; a few checked frames can
miss a person seen in part of a clip, such as an athlete the camera follows, while a confident
detection in one frame is enough to know the clip shows one). The official code instead counted
person boxes over the first 21 raw frames only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from see3d.curation.detect import Detector


@dataclass
class SemanticConfig:
    """Stage 2 settings."""

    frames: int = field(default=3, metadata={"help": "frames checked per clip, evenly spread"})
    min_area: float = field(default=0.04, metadata={"help": "fraction of the image detections must cover for a frame to count"})
    frames_drop: float = field(default=0.5, metadata={"help": "drop when more than this fraction of checked frames count"})
    sure_score: float = field(default=0.85, metadata={"help": "... or when one checked frame has a detection over min_area scoring at least this (> 1 = off)"})


@dataclass
class SemanticStats:
    """Per-clip results of stage 2."""

    occupied: float  # fraction of checked frames with enough dynamic-class area
    area: float  # mean covered fraction over checked frames
    labels: list[str]  # classes seen
    top_score: float  # highest score of a detection over min_area (0: none)
    top_label: str  # its class ("" when none)
    drop: bool
    message: str


def analyse_semantic(frames: np.ndarray, detector: Detector, cfg: SemanticConfig) -> SemanticStats:
    """Stage 2 on one clip. ``frames``: (T, H, W, 3) uint8 RGB."""
    idx = np.unique(np.linspace(0, len(frames) - 1, min(cfg.frames, len(frames))).round().astype(int))
    dets = detector.detect([frames[i] for i in idx])
    areas = np.array([min(1.0, sum(d.area for d in ds)) for ds in dets]) if dets else np.zeros(0)
    seen = sorted({d.label for ds in dets for d in ds})
    occupied = float(np.mean(areas >= cfg.min_area)) if len(areas) else 0.0
    best = max((d for ds in dets for d in ds if d.area >= cfg.min_area), key=lambda d: d.score, default=None)
    top, top_label = (best.score, best.label) if best is not None else (0.0, "")
    drop = occupied > cfg.frames_drop or top >= cfg.sure_score
    msg = f"{occupied:.0%} of {len(areas)} checked frames show {', '.join(seen) or 'no dynamic class'} over {cfg.min_area:.0%} of the image"
    if top >= cfg.sure_score and occupied <= cfg.frames_drop:
        msg = f"a {top_label} detected with score {top:.2f} (drop at {cfg.sure_score}); {msg}"
    return SemanticStats(occupied, float(areas.mean()) if len(areas) else 0.0, seen, top, top_label, drop, msg)
