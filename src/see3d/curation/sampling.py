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
from see3d.errors import InputError
from see3d.io.video import DecodedFrame, iter_decoded, probe_video


@dataclass
class SampleConfig:
    """Stage 1 settings."""

    fps: float = field(default=2.0, metadata={"help": "sampled frames per second of video"})
    short_side: int = field(default=256, metadata={"help": "analysis resolution: short side in pixels (never upscaled)"})
    output_short_side: int = field(default=512, metadata={"help": "stored frames: short side in pixels (never upscaled; 0 = analysis size)"})
    clip_seconds: float = field(default=10.0, metadata={"help": "longest clip, seconds; longer shots are split"})
    min_frames: int = field(default=8, metadata={"help": "fewest sampled frames in a clip (fewer: too_short / scene_cut)"})
    cut_fps: float = field(default=10.0, metadata={"help": "rate at which frames are compared for scene cuts"})
    cut_threshold: float = field(default=0.5, metadata={"help": "HSV-histogram Bhattacharyya distance that always marks a scene cut"})
    cut_min: float = field(default=0.25, metadata={"help": "smallest distance that marks a cut when it is also cut_ratio x the recent median"})
    cut_ratio: float = field(default=3.0, metadata={"help": "a distance this many times the median of the last 8 marks a cut"})
    max_seconds: float = field(default=0.0, metadata={"help": "read at most this many seconds of each video (0 = all)"})
    max_input_pixels: int = field(default=7680 * 4320, metadata={"help": "larger inputs are rejected as errors (0 = no limit)"})
    decode_threads: int = field(default=1, metadata={"help": "decoder threads per video (1 is most efficient per core)"})
    lazy_max_pixels: int = field(default=1920 * 1088, metadata={"help": "inputs up to this size keep decoded frames until a clip is kept"})
    skip_nonref: bool = field(default=True, metadata={"help": "skip decoding non-reference frames (B-frames) when the video has >= 4x the sampled rate"})


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
        cfg = self.cfg
        if cfg.fps <= 0:
            raise ValueError("fps must be positive")
        info = probe_video(self.path)
        st = self.stats
        st.fps, st.duration_s = info.fps, info.duration_s
        if cfg.max_input_pixels and info.width * info.height > cfg.max_input_pixels:
            raise InputError(self.path, f"resolution {info.width}x{info.height} exceeds max_input_pixels={cfg.max_input_pixels}")
        period = 1.0 / cfg.fps
        cut_period = 1.0 / cfg.cut_fps if cfg.cut_fps > 0 else math.inf
        max_len = max(cfg.min_frames, int(round(cfg.clip_seconds * cfg.fps)))
        detector = _CutDetector(cfg)
        sizes: tuple[tuple[int, int], tuple[int, int] | None] | None = None
        buf_t: list[float] = []
        buf_a: list[np.ndarray] = []
        buf_o: list[np.ndarray] = []
        segment = 0
        clip_index = 0
        seg_after_cut = False
        next_t = next_cut_t = first_t = 0.0
        pending: tuple[float, int] | None = None  # (time, buffer index) of a jump awaiting confirmation
        errors: list[str] = []

        def emit(n: int, bounded_by_cut: bool) -> Clip:
            nonlocal clip_index
            times = np.asarray(buf_t[:n], np.float64)
            frames = np.stack(buf_a[:n])
            out = buf_o[:n] if sizes[1] is not None else None
            del buf_t[:n], buf_a[:n], buf_o[:n]
            short = None
            if n < cfg.min_frames:
                short = labels.SCENE_CUT if bounded_by_cut else labels.TOO_SHORT
            clip = Clip(clip_index, segment, times, frames, out, sizes[1], short)
            clip_index += 1
            return clip

        def flush(cut_after: bool) -> Iterator[Clip]:
            k = len(buf_t)
            if k == 0:
                return
            if k <= max_len:
                yield emit(k, seg_after_cut or cut_after)
            else:  # max_len < k < max_len + min_frames: two balanced halves, each >= min_frames
                yield emit(k // 2, False)
                yield emit(len(buf_t), False)

        skip = cfg.skip_nonref and info.fps >= 4 * cfg.fps
        frames_iter = iter_decoded(self.path, threads=cfg.decode_threads, errors=errors, skip_nonref=skip)
        if skip:  # a stream where every frame is non-reference would yield nothing: decode it whole
            first = next(frames_iter, None)
            if first is None:
                frames_iter = iter_decoded(self.path, threads=cfg.decode_threads, errors=errors)
            else:
                frames_iter = itertools.chain([first], frames_iter)
        for frame in frames_iter:
            st.decoded_frames += 1
            t = frame.time_s
            if sizes is None:
                st.width, st.height = frame.size
                st.rotation_deg = frame.rotation_deg
                a = scaled_size(st.width, st.height, cfg.short_side)
                o = scaled_size(st.width, st.height, cfg.output_short_side) if cfg.output_short_side > 0 else None
                sizes = (a, None if o == a else o)
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
                    k = pending[1]
                    tail = (buf_t[k:], buf_a[k:], buf_o[k:])
                    del buf_t[k:], buf_a[k:], buf_o[k:]
                    yield from flush(cut_after=True)
                    segment += 1
                    seg_after_cut = True
                    buf_t.extend(tail[0]), buf_a.extend(tail[1]), buf_o.extend(tail[2])
                pending = (t, len(buf_t)) if candidate else None
            if not take:
                continue
            while next_t <= t + 1e-4:
                next_t += period
            (aw, ah), o = sizes
            buf_t.append(t)
            buf_a.append(frame.rgb(aw, ah))
            if o is not None:  # keep the decoded frame (converted when the clip is kept) unless it is large
                buf_o.append(frame if st.width * st.height <= cfg.lazy_max_pixels else frame.rgb(*o))
            st.sampled_frames += 1
            if len(buf_t) >= max_len + cfg.min_frames and pending is None:
                yield emit(max_len, False)  # the rest of the shot keeps >= min_frames frames
        if st.decoded_frames == 0:
            raise InputError(self.path, "video has no decodable frames")
        st.warnings.extend(errors)
        yield from flush(cut_after=False)
        st.clips = clip_index
