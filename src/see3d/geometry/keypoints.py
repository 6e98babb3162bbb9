"""Keypoints and verified matches between posed views (the matching half of the paper's §3.3 anchors).

Default matcher: OpenCV SIFT (no downloaded weights), Lowe's ratio test plus a mutual-nearest-neighbour
check, then geometric verification against the *known* cameras: a match survives when its Sampson
distance to the epipolar geometry the two cameras imply is below ``max_epipolar_px``. Known cameras
(given, or from SfM) make this stricter than a RANSAC fundamental matrix, and it works on planar scenes.

Conventions: keypoint positions ``uv`` are pixel coordinates with the image's top-left corner at (0, 0)
and pixel centres at +0.5 (as :class:`see3d.io.cameras.Cameras`); OpenCV's keypoints (centres at
integers) are shifted by +0.5 on detection.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from see3d.io.cameras import Cameras


@dataclass
class Features:
    """Keypoints of one view: ``uv (K, 2)`` pixels (centres at +0.5), ``desc (K, D)`` float32 descriptors."""

    uv: np.ndarray
    desc: np.ndarray

    def __len__(self) -> int:
        return len(self.uv)


@dataclass
class MatchConfig:
    """Keypoint detection and matching settings."""

    max_features: int = 4096
    contrast_threshold: float = 0.01  # OpenCV's default 0.04 finds few keypoints on low-contrast textures
    ratio: float = 0.8
    max_epipolar_px: float = 1.5


def detect_sift(image: np.ndarray, max_features: int = 4096, mask: np.ndarray | None = None, contrast_threshold: float = 0.01) -> Features:
    """SIFT keypoints of ``image (H, W, 3)`` float in [0, 1] (or (H, W) grey); ``mask (H, W)`` bool limits where;
    the strongest ``max_features`` are kept."""
    img = np.asarray(image, dtype=np.float32)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    grey8 = np.clip(grey * 255.0 + 0.5, 0, 255).astype(np.uint8)
    sift = cv2.SIFT_create(nfeatures=int(max_features), contrastThreshold=float(contrast_threshold))
    m = None if mask is None else np.asarray(mask, dtype=np.uint8) * 255
    kps, desc = sift.detectAndCompute(grey8, m)
    if desc is None or not kps:
        return Features(np.zeros((0, 2)), np.zeros((0, 128), np.float32))
    uv = np.array([k.pt for k in kps], dtype=np.float64) + 0.5
    return Features(uv, desc.astype(np.float32))


def match_descriptors(d1: np.ndarray, d2: np.ndarray, ratio: float = 0.8) -> np.ndarray:
    """Mutual nearest neighbours passing Lowe's ratio test (both directions) -> (M, 2) index pairs."""
    if len(d1) < 2 or len(d2) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    bf = cv2.BFMatcher(cv2.NORM_L2)
    fwd = bf.knnMatch(d1, d2, k=2)
    bwd = bf.knnMatch(d2, d1, k=2)
    best_b = {m[0].queryIdx: m[0].trainIdx for m in bwd if len(m) == 2 and m[0].distance < ratio * m[1].distance}
    out = [(m[0].queryIdx, m[0].trainIdx) for m in fwd if len(m) == 2 and m[0].distance < ratio * m[1].distance]
    out = [(a, b) for a, b in out if best_b.get(b) == a]
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def fundamental_from_cameras(cam_a: Cameras, cam_b: Cameras) -> np.ndarray | None:
    """(3, 3) F with ``x_b^T F x_a = 0`` for pixel coordinates of two single cameras; None when the
    baseline is (numerically) zero, where no epipolar geometry exists."""
    T = cam_b.w2c[0] @ cam_a.c2w[0]  # a -> b
    R, t = T[:3, :3], T[:3, 3]
    scale = max(np.linalg.norm(cam_a.centers[0]), np.linalg.norm(cam_b.centers[0]), 1e-12)
    if np.linalg.norm(t) < 1e-9 * scale:
        return None
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    F = np.linalg.inv(cam_b.K[0]).T @ tx @ R @ np.linalg.inv(cam_a.K[0])
    return F / np.linalg.norm(F)


def sampson_distance(F: np.ndarray, uv_a: np.ndarray, uv_b: np.ndarray) -> np.ndarray:
    """(M,) first-order geometric distance in pixels of matches ``uv_a (M, 2)`` <-> ``uv_b (M, 2)`` to F."""
    xa = np.concatenate([uv_a, np.ones((len(uv_a), 1))], 1)
    xb = np.concatenate([uv_b, np.ones((len(uv_b), 1))], 1)
    Fxa = xa @ F.T
    Ftxb = xb @ F
    num = np.einsum("ij,ij->i", xb, Fxa) ** 2
    den = Fxa[:, 0] ** 2 + Fxa[:, 1] ** 2 + Ftxb[:, 0] ** 2 + Ftxb[:, 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-30))


def verified_matches(fa: Features, fb: Features, cam_a: Cameras, cam_b: Cameras, cfg: MatchConfig | None = None) -> np.ndarray:
    """Ratio-tested mutual matches of two views that agree with their known cameras' epipolar geometry.

    Returns (M, 2) index pairs into ``fa`` and ``fb`` (empty when the cameras share a centre).
    """
    cfg = cfg or MatchConfig()
    m = match_descriptors(fa.desc, fb.desc, cfg.ratio)
    F = fundamental_from_cameras(cam_a, cam_b)
    if len(m) == 0 or F is None:
        return np.zeros((0, 2), dtype=np.int64)
    d = sampson_distance(F, fa.uv[m[:, 0]], fb.uv[m[:, 1]])
    return m[d <= cfg.max_epipolar_px]
