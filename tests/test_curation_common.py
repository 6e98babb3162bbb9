"""Small procedural test videos for the curation tests (generated in code, a few KB each).

Camera motion is simulated with layers of random texture: a translating camera sees a far layer
move slowly and a near layer move fast (parallax); a pure rotation moves everything alike.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from see3d.io.video import iter_decoded, write_video

W, H = 192, 144


def texture(h: int, w: int, seed: int, cell: int = 6) -> np.ndarray:
    """Random colour texture with detail at several scales, uint8 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3), np.float32)
    for s, amp in ((cell * 4, 0.5), (cell, 0.35), (max(2, cell // 2), 0.15)):
        small = rng.random((h // s + 2, w // s + 2, 3)).astype(np.float32)
        out += amp * cv2.resize(small, (w + 2 * s, h + 2 * s), interpolation=cv2.INTER_CUBIC)[s : s + h, s : s + w]
    return np.clip(out * 255, 0, 255).astype(np.uint8)


def layered_frames(n: int, far_step: float, near_step: float, seed: int = 0, w: int = W, h: int = H) -> list[np.ndarray]:
    """A camera translating sideways: the far layer (top 55%) shifts by ``far_step`` px per frame,
    the near layer (bottom) by ``near_step``; equal steps = one plane = no parallax."""
    far = texture(h, w + int(abs(far_step) * n) + 8, seed)
    near = texture(h, w + int(abs(near_step) * n) + 8, seed + 1, cell=8)
    split = int(h * 0.55)
    frames = []
    for i in range(n):
        img = np.empty((h, w, 3), np.uint8)
        for layer, step, rows in ((far, far_step, slice(0, split)), (near, near_step, slice(split, h))):
            m = np.float32([[1, 0, -(i * step if step > 0 else (n - i) * -step)], [0, 1, 0]])
            img[rows] = cv2.warpAffine(layer, m, (w, h), flags=cv2.INTER_LINEAR)[rows]
        frames.append(img)
    return frames


def moving_square_frames(n: int, seed: int = 0, w: int = W, h: int = H, speed: float = 6.0) -> list[np.ndarray]:
    """A still camera looking at a textured wall with a textured square moving across it."""
    bg = texture(h, w, seed)
    sq = texture(48, 48, seed + 7, cell=4)
    frames = []
    for i in range(n):
        img = bg.copy()
        x = int(10 + (i * speed) % (w - 60))
        y = int(h / 2 - 24 + 10 * np.sin(i / 2))
        img[y : y + 48, x : x + 48] = sq
        frames.append(img)
    return frames


def write(path: Path, frames: list[np.ndarray], fps: float = 4.0) -> Path:
    write_video(path, frames, fps=fps)
    return path


def good_video(path: Path, seconds: float = 12.0, fps: float = 4.0, seed: int = 0) -> Path:
    """A translating camera with parallax: a clip to keep."""
    return write(path, layered_frames(int(seconds * fps), 1.0, 3.0, seed), fps)


def static_video(path: Path, seconds: float = 12.0, fps: float = 4.0, seed: int = 0) -> Path:
    """The same view in every frame."""
    f = texture(H, W, seed)
    return write(path, [f] * int(seconds * fps), fps)


def pan_video(path: Path, seconds: float = 12.0, fps: float = 4.0, seed: int = 0) -> Path:
    """Everything shifts alike (one homography): a pan about the optical centre."""
    return write(path, layered_frames(int(seconds * fps), 3.0, 3.0, seed), fps)


def dynamic_video(path: Path, seconds: float = 12.0, fps: float = 4.0, seed: int = 0) -> Path:
    return write(path, moving_square_frames(int(seconds * fps), seed), fps)


def write_with_pts(path: Path, frames: list[np.ndarray], times_s: list[float], rotation: int = 0) -> Path:
    """H.264 mp4 with explicit presentation times (variable frame rate) and display rotation."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height = frames[0].shape[1], frames[0].shape[0]
        s.pix_fmt = "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            s.set_display_rotation(rotation)
        for f, t in zip(frames, times_s):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = int(round(t * 1000))
            vf.time_base = Fraction(1, 1000)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_generators_make_decodable_videos(tmp_path):
    v = good_video(tmp_path / "g.mp4", seconds=2)
    frames = [f.rgb() for f in iter_decoded(v)]
    assert len(frames) == 8 and frames[0].shape == (H, W, 3)
    # the near layer moves three times as far as the far layer
    a, b = frames[0].astype(np.float32), frames[1].astype(np.float32)
    far_shift = cv2.phaseCorrelate(cv2.cvtColor(a[:60], cv2.COLOR_RGB2GRAY), cv2.cvtColor(b[:60], cv2.COLOR_RGB2GRAY))[0][0]
    near_shift = cv2.phaseCorrelate(cv2.cvtColor(a[90:], cv2.COLOR_RGB2GRAY), cv2.cvtColor(b[90:], cv2.COLOR_RGB2GRAY))[0][0]
    assert abs(abs(far_shift) - 1) < 0.6 and abs(abs(near_shift) - 3) < 0.6
