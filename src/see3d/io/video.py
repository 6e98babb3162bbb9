"""Video files: sequential decoding and mp4 (H.264) encoding with PyAV.

Decoding is sequential (no per-sample seeking: seeking was ~8x slower in our measurements).

Truncated files (an interrupted download or copy) raise :class:`TruncatedVideoError` rather than
passing their readable start off as the whole video: before decoding, an MP4/MOV whose top-level
boxes run past the end of the file or that has no ``moov`` box (:func:`mp4_truncation`, in
:func:`probe_video`); after decoding, any container whose frames end well before the duration it
declares (:func:`check_complete`, called by the reader that decoded to the end).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from see3d.errors import InputError
from see3d.io.atomic import atomic_path


@dataclass
class VideoInfo:
    """Container metadata. ``duration_s`` and ``fps`` may be estimates for variable-frame-rate files."""

    path: Path
    width: int
    height: int
    fps: float
    duration_s: float
    num_frames: int  # as declared by the container; 0 when unknown
    rotation_deg: int  # display rotation from metadata (0, 90, 180, 270)


class TruncatedVideoError(InputError):
    """The container declares a longer video than its frames decode to (e.g. an incomplete download)."""


def check_complete(path: str | Path, info: VideoInfo, last_time_s: float, errors: list[str] | None = None) -> None:
    """Raise :class:`TruncatedVideoError` when the frames decoded up to ``last_time_s`` (seconds) stop short of the
    duration ``info`` declares: by more than 1 s and 5% of it (skipped non-reference frames, estimated durations
    of variable-rate files and rounding stay within that). ``errors``: decoder messages to quote."""
    declared = float(info.duration_s or 0.0)
    period = 1.0 / info.fps if info.fps and info.fps > 0 else 0.0
    if declared > 0 and last_time_s + period < declared - max(1.0, 0.05 * declared):
        why = f" ({'; '.join(errors)})" if errors else ""
        raise TruncatedVideoError(path, f"truncated: the container says {declared:.1f} s but frames decode only to {last_time_s + period:.1f} s{why}")


def _open(path: Path):
    import av

    if not path.exists():
        raise InputError(path, "video file not found")
    if not path.is_file():
        raise InputError(path, "is not a file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        cut = mp4_truncation(path)
        if cut is not None:
            raise TruncatedVideoError(path, f"truncated: {cut} ({e})") from e
        raise InputError(path, f"not a readable video ({e})") from e
    if not container.streams.video:
        container.close()
        raise InputError(path, "has no video stream (audio only or not a video)")
    return container


_MP4_BRANDS = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin", b"styp")


def mp4_truncation(path: str | Path) -> str | None:
    """Why an ISO-BMFF file (MP4, MOV, M4V, 3GP) is cut short, or None (complete, or not such a file).

    Walks the top-level boxes (a few header reads, no decoding): a box whose declared size runs past
    the end of the file, or a file without a ``moov`` box (the index; written last by most muxers, so
    an interrupted download of such a file has none), is truncated.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            pos, seen = 0, []
            while pos + 8 <= size:
                f.seek(pos)
                head = f.read(16)
                n, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if not seen and kind not in _MP4_BRANDS:
                    return None  # not an ISO-BMFF file
                if n == 1:  # 64-bit size follows
                    if len(head) < 16:
                        return f"the {kind.decode('latin-1')} box header is cut off at byte {pos}"
                    n = int.from_bytes(head[8:16], "big")
                elif n == 0:  # the box extends to the end of the file
                    n = size - pos
                if n < 8:
                    return None  # not a box structure we understand: leave it to the decoder
                seen.append(kind)
                if pos + n > size:
                    return f"its {kind.decode('latin-1')} box needs {pos + n} bytes, the file has {size}"
                pos += n
    except OSError:
        return None
    if seen and b"moov" not in seen and b"moof" not in seen:
        return "it has no moov box (the index an mp4 writes last)"
    return None


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's metadata without decoding frames. Raises :class:`TruncatedVideoError` for an
    MP4/MOV file cut short (:func:`mp4_truncation`)."""
    path = Path(path)
    container = _open(path)
    try:
        st = container.streams.video[0]
        fps = float(st.average_rate or st.guessed_rate or 0.0) or 0.0
        if st.duration is not None and st.time_base is not None:
            duration = float(st.duration * st.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        else:
            duration = 0.0
        cut = mp4_truncation(path)
        if cut is not None:
            raise TruncatedVideoError(path, f"truncated: {cut} (the container says {duration:.1f} s)")
        rot = _rotation(st)
        return VideoInfo(path, st.codec_context.width, st.codec_context.height, fps, duration, int(st.frames or 0), rot)
    finally:
        container.close()


def _rotation(stream) -> int:
    """Display rotation in degrees from the stream's legacy 'rotate' metadata tag (0 when absent)."""
    tag = (stream.metadata or {}).get("rotate")
    if tag is not None:
        try:
            return int(float(tag)) % 360
        except ValueError:
            return 0
    return 0


def iter_frames(path: str | Path, every: int = 1, max_frames: int | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time_s, frame)`` for every ``every``-th decoded frame; ``frame`` is uint8 RGB (H, W, 3).

    Frames come in presentation order, decoded sequentially. Raises :class:`InputError` naming the
    file when the stream is corrupt before any frame could be decoded.
    """
    import av

    path = Path(path)
    container = _open(path)
    n_out = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i % every:
                continue
            t = float(frame.time) if frame.time is not None else i / float(stream.average_rate or 30)
            yield t, frame.to_ndarray(format="rgb24")
            n_out += 1
            if max_frames is not None and n_out >= max_frames:
                break
    except av.error.FFmpegError as e:
        if n_out == 0:
            raise InputError(path, f"video stream could not be decoded ({e})") from e
        # a truncated tail: keep the frames decoded so far
    finally:
        container.close()


class DecodedFrame:
    """One decoded frame, converted to RGB only on request (most frames of a sampled video are never
    converted: :meth:`rgb` is the expensive part after decoding).

    ``time_s`` is the presentation time in seconds (from the frame's timestamp, so variable frame
    rates are handled), ``index`` the decode-order index, ``rotation_deg`` the display rotation
    (counter-clockwise, from the display-matrix side data or the legacy ``rotate`` tag).
    """

    __slots__ = ("_frame", "index", "time_s", "rotation_deg")

    def __init__(self, frame, index: int, time_s: float, rotation_deg: int):
        self._frame = frame
        self.index = index
        self.time_s = time_s
        self.rotation_deg = rotation_deg

    @property
    def size(self) -> tuple[int, int]:
        """Displayed ``(width, height)`` (after rotation)."""
        w, h = self._frame.width, self._frame.height
        return (h, w) if self.rotation_deg in (90, 270) else (w, h)

    def thumbnail(self, size: int = 64) -> np.ndarray:
        """A cheap RGB uint8 thumbnail of ``size`` x ``size`` pixels (stored orientation, aspect not
        kept): for 8-bit 4:2:0 YUV frames, point samples of the planes converted with BT.601 (no
        pass over the full frame); other formats go through libswscale."""
        f = self._frame
        if f.format.name in ("yuv420p", "yuvj420p") and f.width >= 2 and f.height >= 2:
            h, w = f.height, f.width
            rows = np.linspace(0, h - 1, min(size, h)).astype(np.intp)
            cols = np.linspace(0, w - 1, min(size, w)).astype(np.intp)
            planes = []
            for k, (r, c) in enumerate([(rows, cols), (rows // 2, cols // 2), (rows // 2, cols // 2)]):
                p = f.planes[k]
                arr = np.frombuffer(p, np.uint8).reshape(-1, p.line_size)
                planes.append(arr[np.ix_(r, c)])
            y, u, v = (p.astype(np.float32) for p in planes)
            if f.format.name == "yuv420p":  # limited range (16-235)
                y = (y - 16.0) * (255.0 / 219.0)
                u, v = (u - 128.0) * (255.0 / 224.0), (v - 128.0) * (255.0 / 224.0)
            else:
                u, v = u - 128.0, v - 128.0
            rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1)
            return np.clip(rgb, 0, 255).astype(np.uint8)
        return f.reformat(width=size, height=size, format="rgb24", interpolation="FAST_BILINEAR").to_ndarray()

    def rgb(self, width: int | None = None, height: int | None = None, interpolation: str = "AREA") -> np.ndarray:
        """uint8 RGB ``(height, width, 3)`` in display orientation; ``width``/``height`` are the
        displayed (rotated) size, resized by libswscale (``interpolation``: AREA, BILINEAR, FAST_BILINEAR...)."""
        w, h = (width, height) if self.rotation_deg not in (90, 270) else (height, width)
        if w is None and h is None:
            img = self._frame.to_ndarray(format="rgb24")
        else:
            img = self._frame.reformat(width=w, height=h, format="rgb24", interpolation=interpolation).to_ndarray()
        k = (self.rotation_deg // 90) % 4
        return np.ascontiguousarray(np.rot90(img, k)) if k else img


def iter_decoded(path: str | Path, threads: int = 1, errors: list[str] | None = None, skip_nonref: bool = False) -> Iterator[DecodedFrame]:
    """Decode every frame sequentially and yield :class:`DecodedFrame` (no RGB conversion).

    ``threads``: decoder threads (1 is the most efficient per core; use more for a single video).
    ``skip_nonref``: let the decoder skip frames no other frame references (typically B-frames;
    about half the decoding work of common H.264 files). Timestamps stay exact; only the set of
    frames changes, so use it when a sparse subset of frames is wanted.
    Raises :class:`InputError` naming the file when the stream is corrupt before any frame could be
    decoded; a corrupt tail ends the iteration (the frames decoded so far stay valid) and, when
    ``errors`` is given, appends the decoder's message to it.
    """
    import av

    path = Path(path)
    container = _open(path)
    n_out = 0
    try:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = max(1, int(threads))
        if skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        if threads > 1:
            stream.thread_type = "AUTO"
        legacy_rot = _rotation(stream)
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        for i, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else i / rate
            try:
                rot = int(round(frame.rotation)) % 360 if frame.rotation else legacy_rot
            except (AttributeError, ValueError):
                rot = legacy_rot
            yield DecodedFrame(frame, i, t, rot - rot % 90)
            n_out += 1
    except av.error.FFmpegError as e:
        if n_out == 0:
            raise InputError(path, f"video stream could not be decoded ({e})") from e
        if errors is not None:
            errors.append(f"decoding stopped after {n_out} frames: {e}")
    finally:
        container.close()


def read_frames(path: str | Path, every: int = 1, max_frames: int | None = None) -> np.ndarray:
    """All frames (subsampled by ``every``) as uint8 ``(T, H, W, 3)``; error if there are none."""
    frames = [f for _, f in iter_frames(path, every, max_frames)]
    if not frames:
        raise InputError(path, "video has no decodable frames")
    return np.stack(frames)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 24.0, crf: int = 18) -> int:
    """Encode frames to an H.264 mp4 atomically; returns the frame count.

    ``frames``: (H, W, 3) uint8 or float [0, 1] arrays of one size. Odd sizes are padded by one
    pixel (H.264 with yuv420p needs even sizes).
    """
    import av

    from see3d.io.images import to_uint8

    path = Path(path)
    n = 0
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), mode="w", format="mp4")
        stream = None
        try:
            for frame in frames:
                img = to_uint8(np.asarray(frame))
                if img.ndim == 2:
                    img = np.repeat(img[..., None], 3, axis=2)
                h, w = img.shape[:2]
                if h % 2 or w % 2:
                    img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                if stream is None:
                    from fractions import Fraction

                    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                    stream.width, stream.height = img.shape[1], img.shape[0]
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": str(crf), "preset": "veryfast"}
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    container.mux(packet)
                n += 1
            if stream is None:
                raise ValueError(f"{path}: no frames to write")
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return n
