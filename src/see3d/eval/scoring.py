"""Scoring rendered views against the truth: PSNR, SSIM and (with local weights) LPIPS per view."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from see3d.log import get_logger
from see3d.metrics import psnr, ssim, to_tensor_batch

log = get_logger(__name__)

LPIPS_SKIPPED = "skipped (no weights given)"


@dataclass
class Scorer:
    """Computes the metrics of a protocol. ``lpips`` is an :class:`~see3d.perceptual.LPIPS` or None.

    ``lpips_status`` says in words what the LPIPS column holds (e.g. ``"alex (alex.pth, ...)"`` or
    :data:`LPIPS_SKIPPED`).
    """

    lpips: torch.nn.Module | None = None
    lpips_status: str = LPIPS_SKIPPED
    device: str = "cpu"
    batch: int = 4

    @classmethod
    def from_weights(cls, lpips_weights: list[str | Path] | str | Path | None, device: str = "cpu") -> Scorer:
        """A scorer with LPIPS loaded from local files, or without LPIPS (logged) when none are given."""
        if not lpips_weights:
            log.warning("lpips: %s; pass --lpips-weights to score LPIPS", LPIPS_SKIPPED)
            return cls(None, LPIPS_SKIPPED, device)
        from see3d.perceptual import load_lpips

        paths = [lpips_weights] if isinstance(lpips_weights, (str, Path)) else list(lpips_weights)
        model = load_lpips(paths, device=device)
        return cls(model, f"{model.net} ({', '.join(Path(p).name for p in paths)})", device)

    @torch.no_grad()
    def score(self, pred: np.ndarray, truth: np.ndarray, masks: np.ndarray | None = None) -> list[dict[str, float | None]]:
        """Per-view metrics for ``pred`` and ``truth`` ``(N, H, W, 3)`` in [0, 1] (``masks (N, H, W)``: score inside only).

        Returns N dicts ``{"psnr", "ssim", "lpips"}`` (``lpips`` None when skipped).
        """
        pred = np.clip(np.asarray(pred, dtype=np.float32), 0.0, 1.0)
        truth = np.asarray(truth, dtype=np.float32)
        if pred.shape != truth.shape:
            raise ValueError(f"score: rendered {pred.shape} and truth {truth.shape} differ in shape")
        out: list[dict[str, float | None]] = []
        for s in range(0, len(pred), self.batch):
            p = to_tensor_batch(pred[s : s + self.batch], self.device)
            t = to_tensor_batch(truth[s : s + self.batch], self.device)
            m = None if masks is None else torch.as_tensor(np.asarray(masks[s : s + self.batch], dtype=bool), device=self.device)
            ps, ss = psnr(p, t, m), ssim(p, t, m)
            lp = self.lpips(p, t, m) if self.lpips is not None else None
            for i in range(len(p)):
                out.append({"psnr": float(ps[i]), "ssim": float(ss[i]), "lpips": None if lp is None else float(lp[i])})
        return out


def mean_metrics(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Mean of each metric over rows (None when any row lacks it)."""
    keys = ("psnr", "ssim", "lpips")
    out: dict[str, float | None] = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        out[k] = None if not vals or any(v is None for v in vals) else float(math.fsum(vals) / len(vals))  # type: ignore[arg-type]
    return out
