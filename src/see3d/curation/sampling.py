"""Stage 1: temporal-spatial downsampling, scene-cut detection and splitting into clips.

One sequential decode per video (PyAV). Frames are picked on a time grid (``fps`` per second, from
each frame's timestamp, so variable frame rates and long videos are handled: no 150 s cap, frames in
presentation order, not in file-name order as in the official scripts). Only the picked frames are
converted to RGB, resized by libswscale to the analysis size (short side ``short_side``), with the
display rotation applied; frames for storage (short side ``output_short_side``) are converted only
when their clip is kept. When the video has at least 4x the sampled rate, the decoder skips
non-reference frames (B-frames; about half the decoding work), which moves a picked frame by at
most a frame period.

Scene cuts: every decoded frame at ``cut_fps`` (and every picked frame) is reduced to a 64x64
thumbnail; a cut lies between two checked frames whose HSV colour histograms (16x4x4 bins) differ by
a Bhattacharyya distance above ``cut_threshold``, or above ``cut_min`` and ``cut_ratio`` times the
median distance of the previous 8 checks (a spike: camera motion raises the distances gradually, a
cut between two scenes of similar colours still stands out), and the next checked frame also
differs that much from the frame before the jump (flashes and blurred frames come back). Gradual
transitions (dissolves, fades) are not detected.

Clips never span a cut. A shot longer than ``clip_seconds`` is split into clips of at most that
length and at least ``min_frames`` frames (the tail is balanced with the previous clip). A clip with
fewer than ``min_frames`` sampled frames is marked ``scene_cut`` when a cut bounds it, else
``too_short``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from see3d import labels
from see3d.config import check_fields
from see3d.errors import InputError
from see3d.io.video import DecodedFrame, check_complete, iter_decoded, probe_video


@dataclass
class SampleConfig:
    """Stage 1 settings."""

    fps: float = field(default=2.0, metadata={"gt": 0, "help": "sampled frames per second of video"})
    short_side: int = field(default=256, metadata={"min": 16, "help": "analysis resolution: short side in pixels (never upscaled)"})
    output_short_side: int = field(default=512, metadata={"min": 0, "help": "stored frames: short side in pixels (never upscaled; 0 = analysis size)"})
    clip_seconds: float = field(default=10.0, metadata={"gt": 0, "help": "longest clip, seconds; longer shots are split"})
    min_frames: int = field(default=8, metadata={"min": 1, "help": "fewest sampled frames in a clip (fewer: too_short / scene_cut)"})
    cut_fps: float = field(default=10.0, metadata={"min": 0, "help": "rate at which frames are compared for scene cuts (0: only the sampled frames)"})
    cut_threshold: float = field(default=0.5, metadata={"help": "HSV-histogram Bhattacharyya distance that always marks a scene cut"})
    cut_min: float = field(default=0.25, metadata={"help": "smallest distance that marks a cut when it is also cut_ratio x the recent median"})
    cut_ratio: float = field(default=3.0, metadata={"help": "a distance this many times the median of the last 8 marks a cut"})
    max_seconds: float = field(default=0.0, metadata={"min": 0, "help": "read at most this many seconds of each video (0 = all)"})
    max_input_pixels: int = field(default=7680 * 4320, metadata={"min": 0, "help": "larger inputs are rejected as errors (0 = no limit)"})
    decode_threads: int = field(default=1, metadata={"min": 1, "help": "decoder threads per video (1 is most efficient per core)"})
    lazy_max_pixels: int = field(default=1920 * 1088, metadata={"help": "inputs up to this size keep decoded frames until a clip is kept"})
    skip_nonref: bool = field(default=True, metadata={"help": "skip decoding non-reference frames (B-frames) when the video has >= 4x the sampled rate"})

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class Clip:
    """Sampled frames of one clip. Times are presentation times in seconds."""

    index: int
    segment: int
    times: np.ndarray  # (T,) float64 seconds
    frames: np.ndarray  # (T, h, w, 3) uint8 RGB, analysis size
    out_source: list | None = None  # decoded frames (or arrays) to store; None = store ``frames``
    out_size: tuple[int, int] | None = None  # (width, height) of stored frames
    short_reason: str | None = None  # labels.TOO_SHORT / labels.SCENE_CUT when fewer than min_frames

    @property
    def num_frames(self) -> int:
        return int(len(self.times))

    def stored_frames(self) -> np.ndarray:
        """Frames to store, uint8 ``(T, H, W, 3)``: converted from the decoded frames only now (most
        clips are dropped, so their full-size conversion is never paid)."""
        if self.out_source is None:
            return self.frames
        w, h = self.out_size
        return np.stack([f if isinstance(f, np.ndarray) else f.rgb(w, h) for f in self.out_source])


@dataclass
class SampleStats:
    """What stage 1 saw of one video."""

    width: int = 0  # displayed (rotated) source size
    height: int = 0
    fps: float = float("nan")
    duration_s: float = float("nan")
    rotation_deg: int = 0
    decoded_frames: int = 0
    sampled_frames: int = 0
    cut_times: list[float] = field(default_factory=list)
    clips: int = 0
    warnings: list[str] = field(default_factory=list)


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(w, h)`` with the short side ``short_side`` (never upscaled), both even."""
    s = min(1.0, short_side / min(width, height)) if short_side > 0 else 1.0
    return max(2, int(round(width * s / 2)) * 2), max(2, int(round(height * s / 2)) * 2)


class _CutDetector:
    """Compares each checked frame with the previous one (see module docstring). A jump is only a
    cut when the next checked frame still differs from the frame before the jump (a flash, a
    motion-blurred frame or a brief occlusion is a jump that goes away)."""

    def __init__(self, cfg: SampleConfig):
        self.cfg = cfg
        self.prev: np.ndarray | None = None
        self.before: np.ndarray | None = None  # histogram before a pending jump
        self.history: list[float] = []

    @staticmethod
    def features(frame: DecodedFrame) -> np.ndarray:
        """Normalised 16x4x4-bin HSV histogram of a 64x64 thumbnail."""
        hsv = cv2.cvtColor(frame.thumbnail(64), cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256])
        cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)
        return hist

    def _jump(self, d: float) -> bool:
        recent = float(np.median(self.history)) if self.history else None
        return d > self.cfg.cut_threshold or (recent is not None and d > self.cfg.cut_min and d > self.cfg.cut_ratio * recent)

    def check(self, frame: DecodedFrame) -> tuple[bool, bool]:
        """``(confirmed, candidate)``: whether the pending jump is a cut, whether a jump starts here."""
        hist = self.features(frame)
        confirmed = candidate = False
        if self.before is not None:
            confirmed = self._jump(float(cv2.compareHist(self.before, hist, cv2.HISTCMP_BHATTACHARYYA)))
            self.before = None
            if confirmed:
                self.history = []
        elif self.prev is not None:
            d = float(cv2.compareHist(self.prev, hist, cv2.HISTCMP_BHATTACHARYYA))
            candidate = self._jump(d)
            if candidate:
                self.before = self.prev
            else:
                self.history = [*self.history[-7:], d]
        self.prev = hist
        return confirmed, candidate


class _ClipBuffer:
    """The sampled frames of the current shot and how they become clips (see the module docstring): at most
    ``max_len`` frames per clip, a long shot's tail balanced with the clip before it, never across a cut."""

    def __init__(self, cfg: SampleConfig, analysis_size: tuple[int, int], out_size: tuple[int, int] | None):
        self.cfg = cfg
        self.analysis_size, self.out_size = analysis_size, out_size  # (w, h); out_size None: store the analysis frames
        self.max_len = max(cfg.min_frames, int(round(cfg.clip_seconds * cfg.fps)))
        self.times: list[float] = []
        self.analysis: list[np.ndarray] = []
        self.stored: list = []  # decoded frames (or arrays) to store, when out_size is set
        self.segment = 0
        self.clips = 0  # clips emitted so far
        self.after_cut = False  # the current segment began at a scene cut

    def __len__(self) -> int:
        return len(self.times)

    def add(self, t: float, frame: DecodedFrame, keep_decoded: bool) -> None:
        """Buffer a sampled frame at time ``t``; ``keep_decoded`` keeps the decoded frame for storage (converted
        only when its clip is kept) instead of converting it now (large inputs)."""
        self.times.append(t)
        self.analysis.append(frame.rgb(*self.analysis_size))
        if self.out_size is not None:
            self.stored.append(frame if keep_decoded else frame.rgb(*self.out_size))

    def full(self) -> bool:
        """Whether a ``max_len`` clip can go and leave at least ``min_frames`` frames of the shot."""
        return len(self) >= self.max_len + self.cfg.min_frames

    def emit(self, n: int, bounded_by_cut: bool) -> Clip:
        """The first ``n`` buffered frames as the next clip (marked short when under ``min_frames``)."""
        times = np.asarray(self.times[:n], np.float64)
        frames = np.stack(self.analysis[:n])
        out = self.stored[:n] if self.out_size is not None else None
        del self.times[:n], self.analysis[:n], self.stored[:n]
        short = None
        if n < self.cfg.min_frames:
            short = labels.SCENE_CUT if bounded_by_cut else labels.TOO_SHORT
        clip = Clip(self.clips, self.segment, times, frames, out, self.out_size, short)
        self.clips += 1
        return clip

    def flush(self, cut_after: bool) -> Iterator[Clip]:
        """Every buffered frame as one clip, or two balanced halves when one would be too long."""
        k = len(self)
        if k == 0:
            return
        if k <= self.max_len:
            yield self.emit(k, self.after_cut or cut_after)
        else:  # max_len < k < max_len + min_frames: two balanced halves, each >= min_frames
            yield self.emit(k // 2, False)
            yield self.emit(len(self), False)

    def cut(self, k: int) -> Iterator[Clip]:
        """A confirmed scene cut before buffered frame ``k``: the frames before it end their segment (flushed),
        the frames from ``k`` on start the next one."""
        tail = (self.times[k:], self.analysis[k:], self.stored[k:])
        del self.times[k:], self.analysis[k:], self.stored[k:]
        yield from self.flush(cut_after=True)
        self.segment += 1
        self.after_cut = True
        self.times.extend(tail[0]), self.analysis.extend(tail[1]), self.stored.extend(tail[2])


class ClipSampler:
    """Iterate the clips of one video; ``stats`` is complete once iteration ends.

    Raises :class:`InputError` (naming the file) for unreadable inputs, inputs above
    ``max_input_pixels`` and videos without any decodable frame.
    """

    def __init__(self, path: str | Path, cfg: SampleConfig | None = None):
        self.path = Path(path)
        self.cfg = cfg or SampleConfig()
        self.stats = SampleStats()

    def __iter__(self) -> Iterator[Clip]:
        cfg, st = self.cfg, self.stats
        info = self._probe()
        period = 1.0 / cfg.fps
        cut_period = 1.0 / cfg.cut_fps if cfg.cut_fps > 0 else math.inf
        detector = _CutDetector(cfg)
        buffer: _ClipBuffer | None = None
        next_t = next_cut_t = first_t = 0.0
        pending: tuple[float, int] | None = None  # (time, buffer index) of a jump awaiting confirmation
        errors: list[str] = []
        for frame in self._decoded_frames(info, errors):
            st.decoded_frames += 1
            t = frame.time_s
            if buffer is None:
                buffer = self._start(frame)
                next_t = next_cut_t = first_t = t
            if cfg.max_seconds > 0 and t - first_t > cfg.max_seconds + 1e-6:
                break
            take = t >= next_t - 1e-4
            if take or t >= next_cut_t - 1e-4:
                while next_cut_t <= t + 1e-4:
                    next_cut_t += cut_period
                confirmed, candidate = detector.check(frame)
                if confirmed:  # the cut lies before the pending frame: split the buffer there
                    st.cut_times.append(pending[0])
                    yield from buffer.cut(pending[1])
                pending = (t, len(buffer)) if candidate else None
            if not take:
                continue
            while next_t <= t + 1e-4:
                next_t += period
            buffer.add(t, frame, keep_decoded=st.width * st.height <= cfg.lazy_max_pixels)
            st.sampled_frames += 1
            if buffer.full() and pending is None:
                yield buffer.emit(buffer.max_len, False)  # the rest of the shot keeps >= min_frames frames
        if st.decoded_frames == 0:
            raise InputError(self.path, "video has no decodable frames")
        if not (cfg.max_seconds > 0 and t - first_t > cfg.max_seconds):  # read to the end: all of it must be there
            check_complete(self.path, info, t, errors)
        st.warnings.extend(errors)
        yield from buffer.flush(cut_after=False)
        st.clips = buffer.clips

    def _probe(self):
        """The video's stream info (into ``stats``); refuses inputs above ``max_input_pixels``."""
        cfg, st = self.cfg, self.stats
        if cfg.fps <= 0:
            raise ValueError("fps must be positive")
        info = probe_video(self.path)
        st.fps, st.duration_s = info.fps, info.duration_s
        if cfg.max_input_pixels and info.width * info.height > cfg.max_input_pixels:
            raise InputError(self.path, f"resolution {info.width}x{info.height} exceeds max_input_pixels={cfg.max_input_pixels}")
        return info

    def _decoded_frames(self, info, errors: list[str]) -> Iterator[DecodedFrame]:
        """The decoded frames, skipping non-reference frames when the video has >= 4x the sampled rate."""
        cfg = self.cfg
        skip = cfg.skip_nonref and info.fps >= 4 * cfg.fps
        frames_iter = iter_decoded(self.path, threads=cfg.decode_threads, errors=errors, skip_nonref=skip)
        if skip:  # a stream where every frame is non-reference would yield nothing: decode it whole
            first = next(frames_iter, None)
            if first is None:
                frames_iter = iter_decoded(self.path, threads=cfg.decode_threads, errors=errors)
            else:
                frames_iter = itertools.chain([first], frames_iter)
        return frames_iter

    def _start(self, frame: DecodedFrame) -> _ClipBuffer:
        """At the first frame: the source size and rotation (into ``stats``) and the clip buffer at the analysis
        and storage sizes."""
        cfg, st = self.cfg, self.stats
        st.width, st.height = frame.size
        st.rotation_deg = frame.rotation_deg
        a = scaled_size(st.width, st.height, cfg.short_side)
        o = scaled_size(st.width, st.height, cfg.output_short_side) if cfg.output_short_side > 0 else None
        return _ClipBuffer(cfg, a, None if o == a else o)
