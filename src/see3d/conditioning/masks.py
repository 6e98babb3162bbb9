"""Random irregular hole masks for training the visual condition.

See3D masks its training targets with free-form strokes so that the model learns to fill the kind of holes a
forward warp leaves. The paper does not give the generator; :func:`random_hole_mask` draws thick poly-line
strokes (random walks with round joints, as in free-form inpainting work) until a coverage drawn uniformly from
``[min_coverage, max_coverage]`` is reached. With ``MaskConfig.warp_like_prob`` a mask is instead shaped like
the holes of a forward warp (:func:`warp_like_hole_mask`): out-of-view bands along the image sides (trapezoids:
the frame of the source camera seen in perspective) and disocclusion crescents (the part of a region that a
shifted copy of it uncovers). Both need no camera or depth, so training stays pose-free. Everything is drawn
from a ``torch.Generator``, so masks are reproducible. OpenCV rasterises the shapes (no torch primitive draws
thick lines or filled polygons).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class MaskConfig:
    """Stroke mask settings; lengths are fractions of the shorter image side."""

    min_coverage: float = field(default=0.1, metadata={"help": "smallest hole fraction of a target mask"})
    max_coverage: float = field(default=0.6, metadata={"help": "largest hole fraction of a target mask"})
    min_width: float = field(default=0.03, metadata={"help": "smallest stroke width (fraction of the short side)"})
    max_width: float = field(default=0.12, metadata={"help": "largest stroke width (fraction of the short side)"})
    max_segment: float = field(default=0.3, metadata={"help": "longest stroke segment (fraction of the short side)"})
    max_vertices: int = field(default=10, metadata={"help": "most segments per stroke"})
    max_strokes: int = field(default=60, metadata={"help": "stop after this many strokes even below the coverage"})
    warp_like_prob: float = field(default=0.0, metadata={"help": "probability that a mask is warp-shaped (side bands + crescents) instead of strokes"})
    max_band: float = field(default=0.4, metadata={"help": "warp-shaped: deepest side band (fraction of the image side)"})
    max_crescents: int = field(default=4, metadata={"help": "warp-shaped: most disocclusion crescents"})

    def __post_init__(self):
        if not 0.0 <= self.min_coverage <= self.max_coverage <= 1.0:
            raise ValueError(f"need 0 <= min_coverage <= max_coverage <= 1, got {self.min_coverage}, {self.max_coverage}")
        if not 0.0 <= self.warp_like_prob <= 1.0:
            raise ValueError(f"warp_like_prob must be in [0, 1], got {self.warp_like_prob}")


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Integer in [lo, hi] (inclusive)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def warp_like_hole_mask(height: int, width: int, generator: torch.Generator, config: MaskConfig = MaskConfig()) -> torch.Tensor:
    """One hole mask shaped like a forward warp's, ``(height, width)`` bool, True = hole.

    0-2 out-of-view bands, each a trapezoid along one image side whose inner edge runs from depth ``d0`` to
    ``d1`` (fractions up to ``max_band`` of the side it grows into), and 0-``max_crescents`` disocclusion
    crescents: an ellipse (axes 5-25 % of the short side) shifted by 2-10 % of the short side, minus the
    unshifted ellipse. At least one shape is drawn; coverage is not controlled (it follows the shapes).
    """
    import cv2  # training masks only: inference (see3d.conditioning's other modules) runs without OpenCV

    canvas = np.zeros((height, width), np.uint8)
    short = min(height, width)
    n_bands, n_cres = _randint(generator, 0, 2), _randint(generator, 0, config.max_crescents)
    if n_bands + n_cres == 0:
        n_bands = 1
    for _ in range(n_bands):
        side = _randint(generator, 0, 3)  # 0 left, 1 right, 2 top, 3 bottom
        across = width if side < 2 else height
        d0, d1 = (_uniform(generator, 0, config.max_band) * across for _ in range(2))
        if side == 0:
            poly = [(0, 0), (d0, 0), (d1, height - 1), (0, height - 1)]
        elif side == 1:
            poly = [(width - 1, 0), (width - 1 - d0, 0), (width - 1 - d1, height - 1), (width - 1, height - 1)]
        elif side == 2:
            poly = [(0, 0), (0, d0), (width - 1, d1), (width - 1, 0)]
        else:
            poly = [(0, height - 1), (0, height - 1 - d0), (width - 1, height - 1 - d1), (width - 1, height - 1)]
        cv2.fillPoly(canvas, [np.round(np.array(poly)).astype(np.int32)], 1)
    for _ in range(n_cres):
        cx, cy = _uniform(generator, 0, width - 1), _uniform(generator, 0, height - 1)
        axes = (max(1, round(_uniform(generator, 0.05, 0.25) * short)), max(1, round(_uniform(generator, 0.05, 0.25) * short)))
        angle = _uniform(generator, 0, 180)
        shift, direction = _uniform(generator, 0.02, 0.1) * short, _uniform(generator, 0, 2 * math.pi)
        obj, moved = np.zeros_like(canvas), np.zeros_like(canvas)
        cv2.ellipse(obj, (round(cx), round(cy)), axes, angle, 0, 360, 1, -1)
        sx, sy = round(cx + shift * math.cos(direction)), round(cy + shift * math.sin(direction))
        cv2.ellipse(moved, (sx, sy), axes, angle, 0, 360, 1, -1)
        canvas |= moved & (1 - obj)
    return torch.from_numpy(canvas.astype(bool))


def random_hole_mask(height: int, width: int, generator: torch.Generator, config: MaskConfig = MaskConfig()) -> torch.Tensor:
    """One irregular hole mask, ``(height, width)`` bool, **True = hole** (masked), False = visible.

    With probability ``warp_like_prob`` a :func:`warp_like_hole_mask`; otherwise strokes, whose hole fraction
    lands at or slightly above a coverage drawn from ``[min_coverage, max_coverage]`` (the last stroke may
    overshoot), unless ``max_strokes`` is reached first.
    """
    import cv2  # training masks only: inference (see3d.conditioning's other modules) runs without OpenCV

    if config.warp_like_prob > 0 and float(torch.rand((), generator=generator)) < config.warp_like_prob:
        return warp_like_hole_mask(height, width, generator, config)
    target = _uniform(generator, config.min_coverage, config.max_coverage)
    canvas = np.zeros((height, width), np.uint8)
    if target <= 0:
        return torch.from_numpy(canvas.astype(bool))
    short = min(height, width)
    for _ in range(config.max_strokes):
        if canvas.mean() >= target:
            break
        thickness = max(1, round(_uniform(generator, config.min_width, config.max_width) * short))
        x, y = _uniform(generator, 0, width - 1), _uniform(generator, 0, height - 1)
        for _ in range(_randint(generator, 1, config.max_vertices)):
            angle = _uniform(generator, 0, 2 * math.pi)
            length = _uniform(generator, 0.02, config.max_segment) * short
            nx = min(max(x + length * math.cos(angle), 0), width - 1)
            ny = min(max(y + length * math.sin(angle), 0), height - 1)
            cv2.line(canvas, (round(x), round(y)), (round(nx), round(ny)), 1, thickness)
            cv2.circle(canvas, (round(nx), round(ny)), thickness // 2, 1, -1)
            x, y = nx, ny
    return torch.from_numpy(canvas.astype(bool))


def random_hole_masks(n: int, height: int, width: int, generator: torch.Generator, config: MaskConfig = MaskConfig()) -> torch.Tensor:
    """``n`` independent hole masks, ``(n, height, width)`` bool, True = hole."""
    if n == 0:
        return torch.zeros(0, height, width, dtype=torch.bool)
    return torch.stack([random_hole_mask(height, width, generator, config) for _ in range(n)])
