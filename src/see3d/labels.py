"""Clip decision and reason codes shared by the synthetic world (ground-truth labels) and curation
(its decisions). Stable strings: they appear in manifests and labels on disk."""

from __future__ import annotations

KEEP = "keep"
DROP = "drop"
ERROR = "error"
DECISIONS = (KEEP, DROP, ERROR)

# reason codes; "ok" for kept clips
OK = "ok"
PERSON = "person"  # dominated by people / animals / vehicles (semantic dynamic recognition)
DYNAMIC = "dynamic"  # non-rigid or independently moving content (flow + epipolar filtering)
STATIC_CAMERA = "static_camera"  # the camera does not move at all
SMALL_MOTION = "small_motion"  # the camera moves, but too little for 3D
ROTATION_ONLY = "rotation_only"  # the camera only rotates about its centre: no parallax, no 3D
UNTRACKABLE = "untrackable"  # no two frames share enough tracked points: the camera motion cannot be measured
TOO_SHORT = "too_short"  # too few frames for a multi-view clip
SCENE_CUT = "scene_cut"  # a fragment between scene cuts that is too short to keep
DECODE_ERROR = "decode_error"  # the file could not be read or decoded
TRUNCATED = "truncated"  # the container promises more video than decodes (an incomplete download or copy)
PROCESSING_ERROR = "processing_error"  # a readable file failed during curation (a bug or a resource limit)

REASONS = (OK, PERSON, DYNAMIC, STATIC_CAMERA, SMALL_MOTION, ROTATION_ONLY, UNTRACKABLE, TOO_SHORT, SCENE_CUT, DECODE_ERROR, TRUNCATED, PROCESSING_ERROR)
