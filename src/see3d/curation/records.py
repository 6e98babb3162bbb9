"""The manifest record: one dataclass per row (one row per input video, one per clip).

This is the only place the manifest schema is declared: :data:`MANIFEST_SCHEMA` is derived from the
fields of :class:`ClipRecord`, so adding a statistic means adding one field here. Float statistics
are NaN when their stage did not run for that clip (e.g. a clip dropped earlier).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import pyarrow as pa

from see3d import labels

KIND_VIDEO = "video"
KIND_CLIP = "clip"
NAN = float("nan")


def _stat(help_text: str) -> Any:
    return field(default=NAN, metadata={"help": help_text})


@dataclass
class ClipRecord:
    """One manifest row. ``kind`` is ``video`` (the input as a whole) or ``clip`` (one clip of it)."""

    video: str = field(metadata={"help": "input path exactly as given"})
    video_key: str = field(metadata={"help": "stable id of the input video (file stem + hash of the path)"})
    kind: str = field(default=KIND_CLIP, metadata={"help": "video | clip"})
    clip_id: str = field(default="", metadata={"help": "<video_key>-c<index>; empty on video rows"})
    clip_index: int = field(default=-1, metadata={"help": "index of the clip within its video; -1 on video rows"})
    segment: int = field(default=-1, metadata={"help": "index of the shot (between scene cuts) holding the clip"})
    start_s: float = field(default=NAN, metadata={"help": "time of the first sampled frame, seconds"})
    end_s: float = field(default=NAN, metadata={"help": "time of the last sampled frame, seconds"})
    num_frames: int = field(default=0, metadata={"help": "sampled frames in the clip (video row: in the whole video)"})
    decision: str = field(default=labels.KEEP, metadata={"help": "keep | drop | error"})
    reason: str = field(default=labels.OK, metadata={"help": "stable reason code from see3d.labels"})
    message: str = field(default="", metadata={"help": "human-readable detail (error message, failed rule)"})
    shard: str = field(default="", metadata={"help": "shard file holding a kept clip, relative to the output folder"})
    width: int = field(default=0, metadata={"help": "stored frame width, pixels"})
    height: int = field(default=0, metadata={"help": "stored frame height, pixels"})
    # input metadata (video rows and clip rows)
    src_width: int = field(default=0, metadata={"help": "decoded width after display rotation"})
    src_height: int = field(default=0, metadata={"help": "decoded height after display rotation"})
    src_fps: float = _stat("average frame rate declared by the container")
    src_duration_s: float = _stat("container duration, seconds")
    rotation_deg: int = field(default=0, metadata={"help": "display rotation applied while decoding (counter-clockwise)"})
    decoded_frames: int = field(default=0, metadata={"help": "frames decoded (video rows)"})
    scene_cuts: int = field(default=0, metadata={"help": "scene cuts detected (video rows)"})
    # stage 4: viewpoint (KLT tracks)
    n_tracks: int = field(default=0, metadata={"help": "KLT tracks in the clip"})
    motion: float = _stat("largest median track displacement between two frames of the clip / image diagonal")
    parallax: float = _stat("largest residual after the best homography (75th pct of tracks) / image diagonal")
    parallax_ratio: float = _stat("parallax / motion at the pair of largest parallax")
    # stage 2: semantic
    person_frames: float = _stat("fraction of checked frames with a person / animal / vehicle detection")
    person_area: float = _stat("mean fraction of the image covered by such detections")
    # stage 3: dynamic (flow + epipolar)
    dyn_area: float = _stat("mean fraction of pixels off the epipolar geometry (dynamic mask)")
    dyn_center: float = _stat("mean dynamic fraction inside the central box [H/4:3H/4, W/4:3W/4]")
    dyn_frames: float = _stat("fraction of frame pairs with a dynamic area above the per-frame threshold")
    dyn_score: float = _stat("paper's Eq. 8 score: sum of per-pair scores / number of pairs")
    fb_consistent: float = _stat("mean fraction of forward-backward consistent flow pixels")
    flow_mag: float = _stat("mean optical-flow magnitude / image diagonal")


MANIFEST_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ClipRecord))

_ARROW_TYPES = {str: pa.string(), int: pa.int64(), float: pa.float64()}


def _schema() -> pa.Schema:
    hints = get_type_hints(ClipRecord)
    return pa.schema([pa.field(f.name, _ARROW_TYPES[hints[f.name]], metadata={"help": f.metadata.get("help", "")}) for f in dataclasses.fields(ClipRecord)])


MANIFEST_SCHEMA: pa.Schema = _schema()
"""Arrow schema of ``manifest.parquet``, one column per :class:`ClipRecord` field."""


def record_to_dict(rec: ClipRecord) -> dict:
    """JSON-friendly dict (NaN becomes None)."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in dataclasses.asdict(rec).items()}


def record_from_dict(d: dict) -> ClipRecord:
    """Inverse of :func:`record_to_dict`; unknown keys are ignored, missing ones take defaults."""
    hints = get_type_hints(ClipRecord)
    kw = {}
    for f in dataclasses.fields(ClipRecord):
        if f.name in d:
            v = d[f.name]
            kw[f.name] = NAN if v is None and hints[f.name] is float else v
    return ClipRecord(**kw)


def records_to_table(records: list[ClipRecord]) -> pa.Table:
    """Arrow table with :data:`MANIFEST_SCHEMA`."""
    cols = {name: [getattr(r, name) for r in records] for name in MANIFEST_COLUMNS}
    return pa.Table.from_pydict(cols, schema=MANIFEST_SCHEMA)
