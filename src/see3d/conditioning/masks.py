"""Random irregular "brush-stroke" hole masks for training the visual condition.

See3D masks its training targets with free-form strokes so that the model learns to fill the kind of holes a
forward warp leaves. The paper does not give the generator; this one draws thick poly-line strokes (random
walks with round joints, as in free-form inpainting work) until a coverage drawn uniformly from
``[min_coverage, max_coverage]`` is reached. Everything is drawn from a ``torch.Generator``, so masks are
reproducible. OpenCV rasterises the strokes (no torch primitive draws thick lines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
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

    def __post_init__(self):
        if not 0.0 <= self.min_coverage <= self.max_coverage <= 1.0:
            raise ValueError(f"need 0 <= min_coverage <= max_coverage <= 1, got {self.min_coverage}, {self.max_coverage}")


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Integer in [lo, hi] (inclusive)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def random_hole_mask(height: int, width: int, generator: torch.Generator, config: MaskConfig = MaskConfig()) -> torch.Tensor:
    """One irregular hole mask, ``(height, width)`` bool, **True = hole** (masked), False = visible.

    The hole fraction lands at or slightly above a coverage drawn from ``[min_coverage, max_coverage]`` (the
    last stroke may overshoot), unless ``max_strokes`` is reached first.
    """
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
