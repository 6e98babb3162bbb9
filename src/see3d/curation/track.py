"""Point tracking through a clip: Shi-Tomasi corners + pyramidal Lucas-Kanade (OpenCV), with a
forward-backward check and replenishment of lost points. The embedded replacement for the official
SuperPoint + CoTracker2 pair (both downloaded at run time there)."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class TrackConfig:
    """KLT tracker settings (pixels at the analysis resolution)."""

    max_points: int = field(default=300, metadata={"help": "most tracked points at any time"})
    quality: float = field(default=0.01, metadata={"help": "Shi-Tomasi corner quality level"})
    min_distance: int = field(default=7, metadata={"help": "minimum distance between corners, pixels"})
    window: int = field(default=15, metadata={"help": "Lucas-Kanade window, pixels"})
    levels: int = field(default=3, metadata={"help": "pyramid levels above the base image"})
    fb_px: float = field(default=1.0, metadata={"help": "largest forward-backward tracking error kept, pixels"})
    replenish: float = field(default=0.6, metadata={"help": "detect new corners when fewer than this fraction of max_points survive"})


@dataclass
class Tracks:
    """``xy``: (N, T, 2) float32 pixel positions (x right, y down), NaN where point n is not tracked
    in frame t. Each track is one contiguous run of frames."""

    xy: np.ndarray

    @property
    def visible(self) -> np.ndarray:
        """(N, T) bool."""
        return ~np.isnan(self.xy[..., 0])

    def __len__(self) -> int:
        return int(self.xy.shape[0])


def _detect(grey: np.ndarray, cfg: TrackConfig, n: int, existing: np.ndarray | None) -> np.ndarray:
    if n <= 0:
        return np.zeros((0, 2), np.float32)
    mask = np.full(grey.shape, 255, np.uint8)
    if existing is not None:
        for x, y in existing.astype(int):
            cv2.circle(mask, (int(x), int(y)), cfg.min_distance, 0, -1)
    pts = cv2.goodFeaturesToTrack(grey, maxCorners=n, qualityLevel=cfg.quality, minDistance=cfg.min_distance, mask=mask, blockSize=7)
    return np.zeros((0, 2), np.float32) if pts is None else pts.reshape(-1, 2).astype(np.float32)


def klt_tracks(frames: np.ndarray, cfg: TrackConfig | None = None) -> Tracks:
    """Track corners through ``frames``: (T, H, W, 3) RGB or (T, H, W) grey uint8."""
    cfg = cfg or TrackConfig()
    greys = [f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    T = len(greys)
    lk = dict(winSize=(cfg.window, cfg.window), maxLevel=cfg.levels, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    rows: list[np.ndarray] = []  # one (T, 2) array per track
    pts = _detect(greys[0], cfg, cfg.max_points, None) if T else np.zeros((0, 2), np.float32)
    ids = []
    for p in pts:
        row = np.full((T, 2), np.nan, np.float32)
        row[0] = p
        rows.append(row)
        ids.append(len(rows) - 1)
    ids = np.asarray(ids, int)
    for t in range(1, T):
        if len(pts):
            nxt, st, _ = cv2.calcOpticalFlowPyrLK(greys[t - 1], greys[t], pts.reshape(-1, 1, 2), None, **lk)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(greys[t], greys[t - 1], nxt, None, **lk)
            nxt, back = nxt.reshape(-1, 2), back.reshape(-1, 2)
            h, w = greys[t].shape
            ok = (st.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm(back - pts, axis=1) < cfg.fb_px)
            ok &= (nxt[:, 0] >= 0) & (nxt[:, 0] < w) & (nxt[:, 1] >= 0) & (nxt[:, 1] < h)
            pts, ids = nxt[ok], ids[ok]
            for i, p in zip(ids, pts):
                rows[i][t] = p
        if len(pts) < cfg.replenish * cfg.max_points:
            new = _detect(greys[t], cfg, cfg.max_points - len(pts), pts)
            new_ids = []
            for p in new:
                row = np.full((T, 2), np.nan, np.float32)
                row[t] = p
                rows.append(row)
                new_ids.append(len(rows) - 1)
            pts = np.concatenate([pts, new]) if len(new) else pts
            ids = np.concatenate([ids, np.asarray(new_ids, int)])
    xy = np.stack(rows) if rows else np.zeros((0, T, 2), np.float32)
    return Tracks(xy)
