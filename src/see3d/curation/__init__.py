"""WebVi3D-style curation: turn raw videos into 3D-aware training clips.

Stages (each a module with a config, typed input/output and its own statistics):
:mod:`~see3d.curation.sampling` (decode, sample, scene cuts, clips), :mod:`~see3d.curation.semantic`
(people/animals/vehicles), :mod:`~see3d.curation.dynamic` (flow + epipolar dynamic mask),
:mod:`~see3d.curation.viewpoint` (tracks: static camera, small motion, pure rotation).
Backends: :mod:`~see3d.curation.flow` (DIS, RAFT-small), :mod:`~see3d.curation.detect` (MediaPipe
person/hand models via :mod:`~see3d.curation.blaze`, HOG, Mask R-CNN), :mod:`~see3d.curation.track` (KLT). Output: :mod:`~see3d.curation.writer` (shards,
index, manifest), read back with :mod:`~see3d.curation.reader`.

Public API::

    curate(inputs, out, cfg=CurateConfig()) -> CurateSummary     # the whole run (resumable)
    process_video(video, cfg, work_dir) -> VideoResult           # the per-video function
    analyse_video(video, cfg) -> (records, samples, timer)       # in memory, no files
    list_accepted(root) / read_clip(root, clip_id) / iter_clips(root) / CurationDataset(root)
"""

from see3d.curation.config import CurateConfig
from see3d.curation.process import VideoResult, analyse_video, process_video, video_key
from see3d.curation.reader import ClipEntry, CurationDataset, iter_clips, list_accepted, read_clip
from see3d.curation.records import MANIFEST_COLUMNS, MANIFEST_SCHEMA, ClipRecord
from see3d.curation.runner import CurateSummary, curate, list_inputs

__all__ = [
    "MANIFEST_COLUMNS",
    "MANIFEST_SCHEMA",
    "ClipEntry",
    "ClipRecord",
    "CurateConfig",
    "CurateSummary",
    "CurationDataset",
    "VideoResult",
    "analyse_video",
    "curate",
    "iter_clips",
    "list_accepted",
    "list_inputs",
    "process_video",
    "read_clip",
    "video_key",
]
