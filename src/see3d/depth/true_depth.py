"""True depth of a synthetic scene, behind the depth-backend protocol (for tests and controlled runs)."""

from __future__ import annotations

import numpy as np

from see3d.depth.base import KINDS, DepthPrediction


class TrueDepth:
    """Wraps known z-depth maps.

    Args:
        depth: (N, H, W) z-depth, one map per view (<= 0 or non-finite = no surface).
        names: optional N names, so views can be looked up by name as well as by index.
        kind: reported kind (``metric_depth`` by default; tests may pose a map as relative).
    """

    def __init__(self, depth: np.ndarray, names: list[str] | None = None, kind: str = "metric_depth"):
        self.depth = np.asarray(depth, dtype=np.float32)
        if self.depth.ndim == 2:
            self.depth = self.depth[None]
        if self.depth.ndim != 3:
            raise ValueError(f"TrueDepth: depth must be (N, H, W), got {self.depth.shape}")
        if kind not in KINDS:
            raise ValueError(f"TrueDepth: kind must be one of {KINDS}, got {kind!r}")
        self.names = list(names) if names is not None else [str(i) for i in range(len(self.depth))]
        if len(self.names) != len(self.depth):
            raise ValueError(f"TrueDepth: {len(self.names)} names for {len(self.depth)} maps")
        self.kind = kind
        self.name = "true"

    def predict(self, image: np.ndarray, key: str | int | None = None, focal_px: float | None = None) -> DepthPrediction:
        """The map of view ``key`` (index or name; the only view when there is one)."""
        if key is None:
            if len(self.depth) != 1:
                raise ValueError("TrueDepth.predict: a key (index or name) is required with several views")
            i = 0
        elif isinstance(key, int | np.integer):
            i = int(key)
        else:
            i = self.names.index(str(key))
        d = self.depth[i]
        if np.asarray(image).shape[:2] != d.shape:
            raise ValueError(f"TrueDepth.predict: image {np.asarray(image).shape[:2]} vs depth {d.shape}")
        valid = np.isfinite(d) & (d > 0)
        return DepthPrediction(np.where(valid, d, 0.0), self.kind, valid=valid)
