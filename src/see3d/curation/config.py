"""Configuration of a curation run: backends, output and engine options plus one config per stage."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from see3d.config import check_fields, config_to_dict
from see3d.curation.dynamic import DynamicConfig
from see3d.curation.sampling import SampleConfig
from see3d.curation.semantic import SemanticConfig
from see3d.curation.track import TrackConfig
from see3d.curation.viewpoint import ViewpointConfig

STAGE_CONFIGS = {"sample": SampleConfig, "semantic": SemanticConfig, "dynamic": DynamicConfig, "viewpoint": ViewpointConfig, "track": TrackConfig}
"""Nested stage configs; on the command line their options carry the prefix (``--sample-fps``)."""

SYNTH_TUNING_SEEDS = (0, 1, 2, 3, 4, 5)
"""Seeds of the labelled synthetic sets (:func:`see3d.synth.write_labeled_set`) the default thresholds were tuned
on, all examined clip by clip (docs/curation.md); a set of any other seed is held-out data."""

# fields that change how a run executes, not what it produces (excluded from the resume digest)
_RUNTIME_FIELDS = ("workers", "engine", "device", "ray_address", "shard_mb", "progress", "retry_errors")


@dataclass
class CurateConfig:
    """Options of ``see3d curate`` / :func:`see3d.curation.curate`."""

    workers: int = field(default=1, metadata={"min": 0, "help": "worker processes (local engine; 0 = in this process) or concurrent tasks (ray)"})
    engine: Literal["local", "ray"] = field(default="local", metadata={"help": "local process pool, or ray.data (pip install 'see3d[ray]')"})
    ray_address: str | None = field(default=None, metadata={"help": "ray cluster address (default: start a local ray)"})
    seed: int = field(default=0, metadata={"help": "seed of every random choice (RANSAC samples); results are deterministic in it"})
    flow: Literal["dis", "raft"] = field(default="dis", metadata={"help": "optical flow: OpenCV DIS (embedded) or RAFT-small (needs --raft-weights)"})
    raft_weights: Path | None = field(default=None, metadata={"help": "path to the original raft-small.pth"})
    raft_iters: int = field(default=12, metadata={"min": 1, "help": "RAFT GRU iterations (official WebVi3D scripts: 20)"})
    dis_preset: Literal["ultrafast", "fast", "medium"] = field(default="medium", metadata={"help": "OpenCV DIS preset"})
    dis_patch_stride: int = field(default=4, metadata={"help": "DIS patch stride (0 = the preset's)"})
    detector: Literal["mediapipe", "hog", "maskrcnn", "none"] = field(
        default="mediapipe", metadata={"help": "semantic stage detector: MediaPipe person + hand detectors (LiteRT), OpenCV HOG people, Mask R-CNN (COCO), none"}
    )
    detector_models: Path | None = field(default=None, metadata={"help": "mediapipe 0.10.x wheel, or a folder with its pose/hand .tflite files (default: looked up, see docs/curation.md)"})
    maskrcnn_weights: Path | None = field(default=None, metadata={"help": "torchvision maskrcnn_resnet50_fpn COCO state dict (.pth); default: torchvision's cache, downloaded when online"})
    hog_threshold: float = field(default=1.0, metadata={"help": "HOG SVM score threshold"})
    device: str = field(default="cpu", metadata={"help": "torch device of RAFT / Mask R-CNN: cpu, auto (CUDA when present), cuda, cuda:1, ..."})
    frame_format: Literal["jpg", "webp"] = field(default="jpg", metadata={"help": "stored frame format"})
    quality: int = field(default=90, metadata={"min": 1, "max": 100, "help": "JPEG / WebP quality"})
    shard_mb: float = field(default=512.0, metadata={"gt": 0, "help": "target shard size, MiB"})
    run_all_stages: bool = field(default=False, metadata={"help": "compute every stage's statistics even after a clip is dropped (slower)"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar (videos/s, ETA)"})
    retry_errors: bool = field(default=True, metadata={"help": "process videos whose earlier result was an error again (e.g. a file that was missing)"})
    sample: SampleConfig = field(default_factory=SampleConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)
    dynamic: DynamicConfig = field(default_factory=DynamicConfig)
    viewpoint: ViewpointConfig = field(default_factory=ViewpointConfig)
    track: TrackConfig = field(default_factory=TrackConfig)

    def __post_init__(self) -> None:
        check_fields(self)

    def digest(self) -> str:
        """Hash of everything that affects results (not workers/engine/device): a finished video is
        reused by a later run only when this matches."""
        d = {k: v for k, v in config_to_dict(self).items() if k not in _RUNTIME_FIELDS}
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
