"""The per-video function: decode and sample one video, run the stages on each clip, decide, and
write the video's result files. Every engine (local pool, ray) calls :func:`process_video`.

Stage order per clip (= priority of the reported reason): length (``too_short`` / ``scene_cut``),
semantic (``person``), dynamic (``dynamic``), viewpoint (``static_camera`` / ``small_motion`` /
``rotation_only``). A clip is dropped at its first failing stage; later stages are skipped unless
``run_all_stages`` (their statistics are then NaN in the manifest).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from see3d import labels
from see3d.curation.config import CurateConfig
from see3d.curation.detect import Detector, make_detector
from see3d.curation.dynamic import analyse_dynamic
from see3d.curation.flow import FlowBackend, make_flow_backend
from see3d.curation.records import KIND_CLIP, KIND_VIDEO, ClipRecord, record_from_dict, record_to_dict
from see3d.curation.sampling import Clip, ClipSampler, SampleStats
from see3d.curation.semantic import analyse_semantic
from see3d.curation.viewpoint import analyse_viewpoint
from see3d.curation.writer import ClipSample, encode_frame, write_samples_tar
from see3d.errors import InputError
from see3d.io.atomic import write_json_atomic
from see3d.io.fingerprint import file_identity
from see3d.io.video import TruncatedVideoError

STAGES = ("sample", "semantic", "dynamic", "viewpoint", "encode")


def video_key(video: str) -> str:
    """Stable id of an input: its file stem (letters, digits, ``_``, ``-``) plus a hash of the path
    as given, so equal stems in different folders do not collide. Contains no dots (WebDataset keys)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(video).stem)[:48] or "video"
    return f"{stem}-{hashlib.sha1(video.encode('utf-8')).hexdigest()[:10]}"


@dataclass
class Backends:
    """Models shared by the clips of a worker process."""

    flow: FlowBackend
    detector: Detector | None


_BACKENDS: dict[tuple, Backends] = {}


def get_backends(cfg: CurateConfig) -> Backends:
    """Backends for ``cfg``, built once per process (RAFT / Mask R-CNN load their weights once)."""
    key = (cfg.flow, str(cfg.raft_weights), cfg.raft_iters, cfg.dis_preset, cfg.dis_patch_stride, cfg.detector, str(cfg.maskrcnn_weights), str(cfg.detector_models), cfg.hog_threshold, cfg.device)
    if key not in _BACKENDS:
        from see3d.device import resolve_device

        device = str(resolve_device(cfg.device))  # the package's one device policy ("auto", a missing GPU is an error)
        flow = make_flow_backend(cfg.flow, cfg.raft_weights, cfg.raft_iters, cfg.dis_preset, device, cfg.dis_patch_stride)
        detector = make_detector(cfg.detector, cfg.maskrcnn_weights, device, cfg.hog_threshold, cfg.detector_models)
        _BACKENDS[key] = Backends(flow, detector)
    return _BACKENDS[key]


@dataclass
class VideoResult:
    """What one video produced: manifest rows (video row first), its samples tar and timings."""

    video: str
    video_key: str
    config_digest: str
    records: list[ClipRecord]
    tar: str | None = None  # file name beside the result JSON
    tar_digest: str | None = None
    cpu_s: dict[str, float] = field(default_factory=dict)  # per stage, process CPU seconds
    wall_s: dict[str, float] = field(default_factory=dict)
    source_id: str | None = None  # content identity of the input when it was processed (see3d.io.fingerprint)

    def to_json(self) -> dict:
        return {
            "video": self.video,
            "video_key": self.video_key,
            "config_digest": self.config_digest,
            "records": [record_to_dict(r) for r in self.records],
            "tar": self.tar,
            "tar_digest": self.tar_digest,
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
            "source_id": self.source_id,
        }

    @classmethod
    def from_json(cls, d: dict) -> VideoResult:
        return cls(d["video"], d["video_key"], d["config_digest"], [record_from_dict(r) for r in d["records"]], d.get("tar"), d.get("tar_digest"), d.get("cpu_s", {}), d.get("wall_s", {}), d.get("source_id"))


class StageTimer:
    """Accumulates CPU and wall seconds per stage."""

    def __init__(self):
        self.cpu = dict.fromkeys(STAGES, 0.0)
        self.wall = dict.fromkeys(STAGES, 0.0)
        self._stage: str | None = None

    def __call__(self, stage: str) -> StageTimer:
        self._stage = stage
        return self

    def __enter__(self):
        self._c, self._w = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu[self._stage] += time.process_time() - self._c
        self.wall[self._stage] += time.perf_counter() - self._w
        return False


def _clip_seed(seed: int, key: str, index: int) -> int:
    return int.from_bytes(hashlib.sha1(f"{seed}/{key}/{index}".encode()).digest()[:4], "little")


def _sampled_clips(sampler: ClipSampler, timer: StageTimer):
    it = iter(sampler)
    while True:
        with timer("sample"):
            clip = next(it, None)
        if clip is None:
            return
        yield clip


def _judge_clip(clip: Clip, rec: ClipRecord, cfg: CurateConfig, backends: Backends, timer: StageTimer, seed: int) -> None:
    """Run the stages on one clip and fill ``rec`` (statistics, decision, reason, message)."""
    if clip.short_reason is not None:
        rec.decision, rec.reason = labels.DROP, clip.short_reason
        why = "a scene cut bounds it" if clip.short_reason == labels.SCENE_CUT else "the video is too short"
        rec.message = f"{clip.num_frames} sampled frames < min_frames={cfg.sample.min_frames} ({why})"
        return
    failures: list[tuple[str, str]] = []
    if backends.detector is not None:
        with timer("semantic"):
            sem = analyse_semantic(clip.frames, backends.detector, cfg.semantic)
        rec.person_frames, rec.person_area = sem.occupied, sem.area
        if sem.drop:
            failures.append((labels.PERSON, sem.message))
    if not failures or cfg.run_all_stages:
        with timer("dynamic"):
            dyn = analyse_dynamic(clip.frames, backends.flow, cfg.dynamic, seed=seed, early_exit=not cfg.run_all_stages)
        if len(dyn.area):
            rec.dyn_area, rec.dyn_center = float(dyn.area.mean()), float(dyn.center.mean())
            rec.dyn_frames, rec.dyn_score = dyn.dynamic_pairs, float(dyn.score.mean())
            rec.fb_consistent = float(dyn.fb_consistent.mean())
            rec.flow_mag = float(dyn.flow_mag.mean()) / float(np.hypot(*clip.frames.shape[1:3]))
        if dyn.drop:
            failures.append((labels.DYNAMIC, dyn.message))
    if not failures or cfg.run_all_stages:
        with timer("viewpoint"):
            vp = analyse_viewpoint(clip.frames, cfg.viewpoint, cfg.track)
        rec.n_tracks, rec.motion, rec.parallax, rec.parallax_ratio = vp.n_tracks, vp.motion, vp.parallax, vp.parallax_ratio
        if vp.reason is not None:
            failures.append((vp.reason, vp.message))
    if failures:
        rec.decision, (rec.reason, rec.message) = labels.DROP, failures[0]
    else:
        rec.decision, rec.reason, rec.message = labels.KEEP, labels.OK, ""


def _video_record(video: str, key: str, st: SampleStats) -> ClipRecord:
    return ClipRecord(
        video=video,
        video_key=key,
        kind=KIND_VIDEO,
        src_width=st.width,
        src_height=st.height,
        src_fps=st.fps,
        src_duration_s=st.duration_s,
        rotation_deg=st.rotation_deg,
        decoded_frames=st.decoded_frames,
        scene_cuts=len(st.cut_times),
        num_frames=st.sampled_frames,
    )


def analyse_video(video: str, cfg: CurateConfig, backends: Backends | None = None) -> tuple[list[ClipRecord], list[ClipSample], StageTimer]:
    """Curate one video in memory: manifest rows (video row first) and the kept clips' samples.

    Bad inputs do not raise: they give a single ``error`` row (``decode_error`` for unreadable or
    undecodable files, ``truncated`` for files cut short (an MP4 box running past the end of the
    file, no index, or fewer seconds decoding than the container declares), ``processing_error`` for
    unexpected failures) with the message; a truncated file keeps no clip, even of its readable start.
    """
    key = video_key(video)
    timer = StageTimer()
    t0c, t0w = time.process_time(), time.perf_counter()
    backends = backends or get_backends(cfg)  # a missing model is the run's problem, not this video's: it raises
    try:
        sampler = ClipSampler(video, cfg.sample)
        clip_recs: list[ClipRecord] = []
        samples: list[ClipSample] = []
        for clip in _sampled_clips(sampler, timer):
            clip_id = f"{key}-c{clip.index:04d}"
            rec = ClipRecord(video=video, video_key=key, kind=KIND_CLIP, clip_id=clip_id, clip_index=clip.index, segment=clip.segment)
            rec.start_s, rec.end_s, rec.num_frames = float(clip.times[0]), float(clip.times[-1]), clip.num_frames
            _judge_clip(clip, rec, cfg, backends, timer, _clip_seed(cfg.seed, key, clip.index))
            if rec.decision == labels.KEEP:
                with timer("encode"):
                    stored = clip.stored_frames()
                    rec.height, rec.width = stored.shape[1:3]
                    frames = [encode_frame(f, cfg.frame_format, cfg.quality) for f in stored]
                meta = {**record_to_dict(rec), "times": [float(t) for t in clip.times], "frame_format": cfg.frame_format}
                samples.append(ClipSample(clip_id, meta, frames, cfg.frame_format))
            clip_recs.append(rec)
        vrec = _video_record(video, key, sampler.stats)
        if clip_recs:
            vrec.start_s, vrec.end_s = clip_recs[0].start_s, clip_recs[-1].end_s
        kept = [r for r in clip_recs if r.decision == labels.KEEP]
        if kept:
            vrec.decision, vrec.reason = labels.KEEP, labels.OK
            vrec.message = f"kept {len(kept)} of {len(clip_recs)} clips"
        else:
            main = max(clip_recs, key=lambda r: r.num_frames)  # the longest clip speaks for the video
            vrec.decision, vrec.reason = labels.DROP, main.reason
            vrec.message = f"all {len(clip_recs)} clips dropped; longest: {main.message}"
        if sampler.stats.warnings:
            vrec.message += "; " + "; ".join(sampler.stats.warnings)
        records = [vrec, *clip_recs]
    except TruncatedVideoError as e:
        records, samples = [_error_record(video, key, labels.TRUNCATED, str(e))], []
    except (InputError, OSError, EOFError) as e:
        records, samples = [_error_record(video, key, labels.DECODE_ERROR, str(e))], []
    except Exception as e:  # noqa: BLE001 - a batch job records the failure and goes on
        import av

        reason = labels.DECODE_ERROR if isinstance(e, av.error.FFmpegError) else labels.PROCESSING_ERROR
        tb = traceback.extract_tb(e.__traceback__)[-1]
        records, samples = [_error_record(video, key, reason, f"{type(e).__name__}: {e} (at {Path(tb.filename).name}:{tb.lineno})")], []
    timer.cpu["total"] = time.process_time() - t0c
    timer.wall["total"] = time.perf_counter() - t0w
    return records, samples, timer


def _error_record(video: str, key: str, reason: str, message: str) -> ClipRecord:
    return ClipRecord(video=video, video_key=key, kind=KIND_VIDEO, decision=labels.ERROR, reason=reason, message=message)


def result_paths(work_dir: Path, key: str) -> tuple[Path, Path]:
    """(result JSON, samples tar) of a video in the work folder."""
    return work_dir / f"{key}.json", work_dir / f"{key}.tar"


def process_video(video: str, cfg: CurateConfig, work_dir: str | Path) -> VideoResult:
    """Curate one video and write its result files atomically (tar first, then the JSON that marks
    the video as done). Never raises for a bad input."""
    work_dir = Path(work_dir)
    source_id = file_identity(video)  # before reading: a file changed meanwhile is processed again next run
    records, samples, timer = analyse_video(video, cfg)
    key = records[0].video_key
    res = VideoResult(video, key, cfg.digest(), records, cpu_s=timer.cpu, wall_s=timer.wall, source_id=source_id)
    json_path, tar_path = result_paths(work_dir, key)
    if samples:
        res.tar, res.tar_digest = tar_path.name, write_samples_tar(tar_path, samples)
    write_json_atomic(json_path, res.to_json(), indent=None)
    return res


def load_result(work_dir: str | Path, video: str, digest: str, reuse_errors: bool = True) -> VideoResult | None:
    """A finished result for ``video`` made with config ``digest`` from the file as it is now, or None (absent,
    stale or damaged). Stale: another config, or the file's content identity changed (replaced, edited,
    appeared or vanished since). ``reuse_errors=False`` also returns None for a video whose row is an error,
    so that it is tried again."""
    json_path, tar_path = result_paths(Path(work_dir), video_key(video))
    if not json_path.is_file():
        return None
    try:
        res = VideoResult.from_json(json.loads(json_path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, OSError):
        return None
    if res.config_digest != digest or res.video != video or res.source_id != file_identity(video):
        return None
    if not reuse_errors and res.records and res.records[0].decision == labels.ERROR:
        return None
    if res.tar is not None and not tar_path.is_file():
        return None
    return res
