"""The depth-backend protocol and the :class:`DepthPrediction` it returns.

A backend turns one image into a depth-like map and says what kind of map it is, which decides how the
map is aligned to known geometry (:mod:`see3d.geometry.align`):

==========================  ===========================  =====================================
``kind``                    meaning                      ``alignment_space``
==========================  ===========================  =====================================
``"metric_depth"``          z-depth in metres            ``"depth"`` (scale fit mostly ~1)
``"relative_depth"``        z-depth up to scale & shift  ``"depth"``
``"relative_disparity"``    1/z up to scale & shift      ``"disparity"``
==========================  ===========================  =====================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

KINDS = ("metric_depth", "relative_depth", "relative_disparity")


@dataclass
class DepthPrediction:
    """One view's predicted depth-like map.

    Attributes:
        values: (H, W) float32 at the image's resolution, in the meaning given by ``kind``.
        kind: one of ``"metric_depth"``, ``"relative_depth"``, ``"relative_disparity"``.
        valid: optional (H, W) bool, False where the backend has no value (e.g. holes in a given map).
        focal_px: the focal length (pixels) the backend estimated, if it does (Depth Pro); else None.
    """

    values: np.ndarray
    kind: str
    valid: np.ndarray | None = None
    focal_px: float | None = None

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        if self.values.ndim != 2:
            raise ValueError(f"DepthPrediction: values must be (H, W), got {self.values.shape}")
        if self.kind not in KINDS:
            raise ValueError(f"DepthPrediction: kind must be one of {KINDS}, got {self.kind!r}")
        if self.valid is not None:
            self.valid = np.asarray(self.valid, dtype=bool)
            if self.valid.shape != self.values.shape:
                raise ValueError(f"DepthPrediction: valid {self.valid.shape} vs values {self.values.shape}")

    @property
    def is_metric(self) -> bool:
        return self.kind == "metric_depth"

    @property
    def alignment_space(self) -> str:
        """``"disparity"`` for relative disparity outputs, else ``"depth"`` (see the module table)."""
        return "disparity" if self.kind == "relative_disparity" else "depth"

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: finite, positive and ``valid`` values."""
        m = np.isfinite(self.values) & (self.values > 0)
        return m if self.valid is None else m & self.valid

    def depth(self) -> np.ndarray:
        """(H, W) float32 z-depth for metric or relative depth (relative depth: up to scale/shift); 0 where invalid.

        Relative disparity has no depth without alignment: use :func:`see3d.geometry.align.align_depth`.
        """
        if self.kind == "relative_disparity":
            raise ValueError("DepthPrediction.depth: relative disparity must be aligned first (see see3d.geometry.align)")
        return np.where(self.mask, self.values, 0.0).astype(np.float32)


@runtime_checkable
class DepthBackend(Protocol):
    """Anything that predicts depth for one image.

    ``predict(image, key=None, focal_px=None)``: ``image (H, W, 3)`` float32 RGB in [0, 1]; ``key``
    identifies the image for backends that look maps up (file stem or index); ``focal_px`` is the known
    focal length in pixels when the caller has one (metric models may use it). Returns a
    :class:`DepthPrediction` at the image's resolution.
    """

    name: str

    def predict(self, image: np.ndarray, key: str | int | None = None, focal_px: float | None = None) -> DepthPrediction: ...
