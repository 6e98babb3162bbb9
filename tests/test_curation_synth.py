"""Curation accuracy on labelled ``see3d synth`` clips: the decision and the reason must match.

The sets are rendered at 256x256, 24 frames at 2 fps (12 s per clip), so the default 2 fps sampling
sees every frame; one clip per video (``clip_seconds`` 15) as each synthetic video is one labelled
clip. The thresholds were tuned on seeds 0-5 (see :mod:`see3d.curation.dynamic` and docs/curation.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from see3d import labels
from see3d.curation import CurateConfig, curate
from see3d.curation.config import SYNTH_TUNING_SEEDS

HELD_OUT_SEEDS = (6, 7)  # measured once each, after the last change of the flow stage


def _accuracy(tmp: Path, n: int, seed: int, workers: int = 0) -> tuple[float, list[str], set[str]]:
    from see3d.synth import write_labeled_set

    data = tmp / "synth"
    records = write_labeled_set(data, n=n, seed=seed, size=256, n_frames=24, fps=2.0, workers=workers)
    cfg = CurateConfig(workers=workers, progress=False)
    cfg.sample.clip_seconds = 15.0
    cfg.sample.output_short_side = 64
    curate([str(data / r["video"]) for r in records], tmp / "out", cfg)
    rows = {Path(r["video"]).name: r for r in pq.read_table(tmp / "out" / "manifest.parquet").to_pylist() if r["kind"] == "video"}
    wrong = []
    for r in records:
        got = rows[r["video"]]
        if (got["decision"], got["reason"]) != (r["label"], r["reason"]):
            wrong.append(f"{r['clip_id']} {r['kind']}: expected {r['label']}/{r['reason']}, got {got['decision']}/{got['reason']} ({got['message']})")
    return 1 - len(wrong) / len(records), wrong, {r["reason"] for r in records}


def test_synth_accuracy_small_set(tmp_path):
    assert 3 in SYNTH_TUNING_SEEDS  # a regression check on tuning data, not an accuracy figure
    acc, wrong, reasons = _accuracy(tmp_path, n=10, seed=3)  # every reason
    assert reasons == {labels.OK, labels.DYNAMIC, labels.STATIC_CAMERA, labels.ROTATION_ONLY, labels.SMALL_MOTION, labels.TOO_SHORT}
    assert acc == 1.0, "\n".join(wrong)


@pytest.mark.slow
def test_synth_accuracy_on_a_held_out_50_clip_set(tmp_path):
    assert not set(HELD_OUT_SEEDS) & set(SYNTH_TUNING_SEEDS)
    acc, wrong, reasons = _accuracy(tmp_path, n=50, seed=HELD_OUT_SEEDS[0], workers=2)
    assert len(reasons) == 6
    # measured 49/50 on this held-out seed (benchmarks/curate_accuracy.py --seed 6, docs/curation.md); the
    # RANSAC draws derive from the file paths, so one clip of slack
    assert acc >= 0.94, "\n".join(wrong)
    (tmp_path / "wrong.json").write_text(json.dumps(wrong))
