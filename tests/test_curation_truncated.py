"""Truncated files (interrupted downloads): detected at decode, recorded as ``truncated`` error rows,
never a kept clip of the readable start, never a crash. The real cut-off clips in ../shared are
checked when present."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from see3d import labels
from see3d.curation import CurateConfig, analyse_video
from see3d.curation.sampling import ClipSampler
from see3d.io.video import TruncatedVideoError, iter_decoded, mp4_truncation, probe_video
from test_curation_common import layered_frames


def _encode(path: Path, frames: list[np.ndarray], fps: int = 8, fmt: str = "mp4", options: dict | None = None) -> Path:
    import av

    with av.open(str(path), "w", format=fmt, options=options or {}) as c:
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "18"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("trunc")
    frames = layered_frames(96, 1.0, 3.0)  # 12 s at 8 fps, a clip curation keeps when whole
    fast = _encode(d / "faststart.mp4", frames, options={"movflags": "faststart"})  # index first, as web videos
    plain = _encode(d / "plain.mp4", frames)  # index written last
    mkv = _encode(d / "whole.mkv", frames, fmt="matroska")
    return {
        "faststart": fast,
        "plain": plain,
        "mkv": mkv,
        "faststart_cut": _cut(fast, d / "faststart_cut.mp4", 0.6),
        "plain_cut": _cut(plain, d / "plain_cut.mp4", 0.6),
        "mkv_cut": _cut(mkv, d / "mkv_cut.mkv", 0.6),
    }


def test_whole_files_are_not_truncated(clips):
    for name in ("faststart", "plain", "mkv"):
        assert mp4_truncation(clips[name]) is None
        probe_video(clips[name])
        for skip in (False, True):
            assert sum(1 for _ in iter_decoded(clips[name], skip_nonref=skip)) > 0


def test_cut_mp4_is_found_before_decoding(clips):
    assert "mdat box needs" in mp4_truncation(clips["faststart_cut"])
    assert mp4_truncation(clips["plain_cut"]) is not None
    with pytest.raises(TruncatedVideoError, match="faststart_cut.mp4: truncated: its mdat box"):
        probe_video(clips["faststart_cut"])
    with pytest.raises(TruncatedVideoError, match="plain_cut.mp4: truncated"):
        probe_video(clips["plain_cut"])


def test_a_cut_file_of_another_container_is_found_after_decoding(clips):
    """The decode-time check (no container parsing): the frames end before the declared duration."""
    assert mp4_truncation(clips["mkv_cut"]) is None  # not an ISO-BMFF file: nothing to see before decoding
    with pytest.raises(TruncatedVideoError, match="mkv_cut.mkv: truncated"):
        for _ in ClipSampler(clips["mkv_cut"]):
            pass
    assert sum(1 for _ in iter_decoded(clips["mkv_cut"])) > 0  # its readable start decodes


def test_cut_files_become_truncated_error_rows_without_clips(clips):
    cfg = CurateConfig(progress=False)
    cfg.sample.output_short_side = 96
    records, samples, _ = analyse_video(str(clips["faststart"]), cfg)
    assert records[0].decision == labels.KEEP  # the whole file is a keep ...
    for name in ("faststart_cut", "plain_cut", "mkv_cut"):  # ... its cut copies never are
        records, samples, _ = analyse_video(str(clips[name]), cfg)
        assert len(records) == 1 and not samples
        r = records[0]
        assert (r.decision, r.reason) == (labels.ERROR, labels.TRUNCATED), r.message
        assert name in r.message and "truncated" in r.message


def test_real_cut_downloads_are_never_kept(shared):
    """The cut-off real clips of ../shared/data/videos (README: DROP or ERROR, never KEEP)."""
    videos = sorted(shared("data", "videos").glob("trunc_*.mp4"))
    assert len(videos) >= 6
    cfg = CurateConfig(progress=False)
    for v in videos:
        records, samples, _ = analyse_video(str(v), cfg)
        assert (records[0].decision, records[0].reason) == (labels.ERROR, labels.TRUNCATED), records[0].message
        assert not samples
