"""Stage 4: tracking-based small-viewpoint filtering (static camera, small motion, pure rotation).

Points are tracked through the clip (:func:`see3d.curation.track.klt_tracks`). For every frame t the
reference r(t) is the earliest frame still sharing ``min_common`` tracks with t (the widest baseline
the tracks allow). For each pair (r(t), t):

- motion = median displacement of the homography's inlier tracks (the camera-induced motion;
  tracks on independently moving objects are outliers);
- parallax = the ``parallax_percentile`` of the tracks' residuals after the best homography
  (RANSAC, ``ransac_px``). A homography explains all image motion of a camera that only rotates about
  its centre (and of a planar scene); parallax, the residual, is what 3D reconstruction needs.

Clip values are the largest over pairs, divided by the image diagonal. Decision:

- motion < ``static_motion``                        -> ``static_camera`` (essentially no motion);
- at least ``still_tracks`` of the tracks followed over half the clip or more never leave a circle
  of ``still_radius`` (of the diagonal) around their start -> ``small_motion`` (the official
  criterion, 40 of ~100 tracks within 20 px, normalised: a nearly still camera filming moving
  content such as rushing water, whose non-rigid tracks would otherwise read as parallax);
- parallax low (< ``min_parallax``, or < ``min_parallax_ratio`` x motion: what remains after the
  homography is only tracking drift) and motion >= ``small_motion`` -> ``rotation_only`` (the image
  moves a lot, yet one homography explains it: a pan/tilt about the optical centre);
- parallax low and motion < ``small_motion``     -> ``small_motion``;
- fewer than ``min_tracks`` tracks                  -> ``small_motion`` (viewpoint change not measurable);
- no frame pair shares ``min_common`` tracks       -> ``untrackable`` (tracks break between every two sampled
  frames, e.g. a fast pan at a low sampling rate: the motion is unknown, never ``static_camera``).

A camera translating over a planar scene (e.g. a drone over flat ground) is also explained by a
homography and is reported as ``rotation_only``: such clips carry no depth variation either.

This replaces the official SuperPoint + CoTracker2 circle-radius test (weights downloaded at run
time). ``static_motion`` is tiny (5e-5 of the diagonal): a still camera gives identical decoded
frames, while a slowly drifting one moves tracks by a few tenths of a pixel; real tripod footage
with sensor noise and compression jitter may therefore be reported as ``small_motion``. Thresholds
were tuned on labelled ``see3d synth`` sets (see :mod:`see3d.curation.dynamic`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from see3d import labels
from see3d.curation.track import TrackConfig, Tracks, klt_tracks


@dataclass
class ViewpointConfig:
    """Stage 4 settings; motion thresholds are fractions of the image diagonal."""

    static_motion: float = field(default=5e-5, metadata={"help": "largest motion (/diagonal) still counted as a static camera"})
    small_motion: float = field(default=0.02, metadata={"help": "motion (/diagonal) below which low parallax means small_motion rather than rotation_only"})
    min_parallax: float = field(default=0.016, metadata={"help": "parallax (/diagonal) needed for 3D; below it: rotation_only or small_motion"})
    min_parallax_ratio: float = field(default=0.1, metadata={"help": "parallax / motion needed for 3D (a pure rotation leaves only tracking drift)"})
    parallax_percentile: float = field(default=90.0, metadata={"help": "percentile of homography residuals taken as the pair's parallax"})
    ransac_px: float = field(default=1.0, metadata={"help": "homography RANSAC threshold, pixels"})
    ransac_iters: int = field(default=300, metadata={"help": "homography RANSAC iterations (pure rotations converge in a few)"})
    still_radius: float = field(default=0.02, metadata={"help": "a track that stays within this (/diagonal) of its start is still"})
    still_tracks: float = field(default=0.5, metadata={"help": "this fraction of still tracks (of those seen over half the clip) means small_motion"})
    min_common: int = field(default=20, metadata={"help": "fewest shared tracks for a frame pair"})
    min_tracks: int = field(default=20, metadata={"help": "fewer tracks: the viewpoint change cannot be measured"})


@dataclass
class ViewpointStats:
    """Per-clip results of stage 4."""

    n_tracks: int
    motion: float  # / diagonal
    parallax: float  # / diagonal
    parallax_ratio: float
    still: float  # fraction of the long tracks that stay within still_radius of their start
    reason: str | None  # None = pass
    message: str


def pair_motion(a: np.ndarray, b: np.ndarray, cfg: ViewpointConfig) -> tuple[float, float]:
    """``(motion, parallax)`` in pixels for matched points ``a -> b``, each (N, 2).

    motion: median displacement of the homography's RANSAC inliers (the dominant, camera-induced
    motion; points on independently moving objects are outliers). parallax: the
    ``parallax_percentile`` of all points' residuals after the homography.
    """
    H, inl = cv2.findHomography(a, b, cv2.RANSAC, cfg.ransac_px, maxIters=cfg.ransac_iters, confidence=0.995)
    disp = np.linalg.norm(b - a, axis=1)
    if H is None:
        return float(np.median(disp)), float(np.median(disp))
    inl = inl.ravel().astype(bool)
    motion = float(np.median(disp[inl])) if inl.sum() >= 4 else float(np.median(disp))
    proj = cv2.perspectiveTransform(a.reshape(-1, 1, 2).astype(np.float64), H).reshape(-1, 2)
    res = np.linalg.norm(proj - b, axis=1)
    return motion, float(np.percentile(res, cfg.parallax_percentile))


def viewpoint_from_tracks(tracks: Tracks, width: int, height: int, cfg: ViewpointConfig) -> ViewpointStats:
    """Stage 4 decision from tracks of a clip at ``width`` x ``height`` pixels."""
    diag = float(np.hypot(width, height))
    vis = tracks.visible
    n, T = vis.shape
    best_m, best_p, ratio = 0.0, 0.0, float("nan")
    measured = 0
    for t in range(1, T):
        common = (vis[:, :t] & vis[:, t : t + 1]).sum(0)
        ok = np.flatnonzero(common >= cfg.min_common)
        if not len(ok):
            continue
        measured += 1
        r = int(ok[0])
        sel = vis[:, r] & vis[:, t]
        m, p = pair_motion(tracks.xy[sel, r], tracks.xy[sel, t], cfg)
        best_m = max(best_m, m)
        if p > best_p:
            best_p, ratio = p, p / max(m, 1e-9)
    motion, parallax = best_m / diag, best_p / diag
    still = still_fraction(tracks, diag, cfg.still_radius)
    if n < cfg.min_tracks:
        reason, msg = labels.SMALL_MOTION, f"only {n} trackable points: viewpoint change not measurable"
    elif measured == 0:  # motion 0 here means "not measured", not "no motion"
        reason, msg = labels.UNTRACKABLE, (f"no two frames share {cfg.min_common} tracked points ({n} short tracks): the camera motion "
                                           "cannot be measured (too fast or too little texture for the sampling rate)")  # fmt: skip
    elif motion < cfg.static_motion:
        reason, msg = labels.STATIC_CAMERA, f"motion {motion:.5f} < {cfg.static_motion} of the diagonal"
    elif still >= cfg.still_tracks:
        reason, msg = labels.SMALL_MOTION, f"{still:.0%} of the tracks stay within {cfg.still_radius} of the diagonal (>= {cfg.still_tracks:.0%})"
    elif parallax < cfg.min_parallax or parallax < cfg.min_parallax_ratio * motion:
        if motion >= cfg.small_motion:
            reason, msg = labels.ROTATION_ONLY, f"motion {motion:.3f} but parallax {parallax:.4f} < {cfg.min_parallax}: a homography explains it"
        else:
            reason, msg = labels.SMALL_MOTION, f"motion {motion:.4f} (< {cfg.small_motion}), parallax {parallax:.4f} (< {cfg.min_parallax})"
    else:
        reason, msg = None, f"motion {motion:.3f}, parallax {parallax:.4f}"
    return ViewpointStats(n, motion, parallax, ratio, still, reason, msg)


def still_fraction(tracks: Tracks, diag: float, radius: float) -> float:
    """Fraction of the tracks seen in at least half of the frames (and two) whose largest distance
    from their first position stays below ``radius`` x ``diag`` pixels (0 when there are none)."""
    vis = tracks.visible
    long = vis.sum(1) >= max(2, vis.shape[1] // 2)
    if not long.any():
        return 0.0
    xy = tracks.xy[long]
    first = xy[np.arange(len(xy)), np.argmax(vis[long], axis=1)]
    far = np.nanmax(np.linalg.norm(xy - first[:, None], axis=2), axis=1)
    return float(np.mean(far < radius * diag))


def analyse_viewpoint(frames: np.ndarray, cfg: ViewpointConfig, track_cfg: TrackConfig | None = None) -> ViewpointStats:
    """Stage 4 on one clip. ``frames``: (T, H, W, 3) uint8 RGB at analysis resolution."""
    tracks = klt_tracks(frames, track_cfg)
    return viewpoint_from_tracks(tracks, frames.shape[2], frames.shape[1], cfg)
