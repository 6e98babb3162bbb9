"""The prepared GPU check (benchmarks/gpu_check.py) runs its code at tiny sizes on the CPU, and its minimal loop
written from the official algorithm agrees with the pipeline."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_official_decay_matches_the_spec_table():
    mod = _load()
    for t, w in [(999, 0.9986), (800, 0.943), (500, 0.857), (300, 0.800), (299, 0.742), (200, 0.178), (100, 0.040), (11, 0.010)]:
        assert mod.official_decay(t // 5) == pytest.approx(w, abs=6e-4)


def test_tiny_gpu_check_on_cpu(tmp_path):
    mod = _load()
    assert mod.main(["--tiny", "--device", "cpu", "--parts", "reference", "train", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    ref = report["parts"]["reference"]
    assert ref["ok"] and ref["psnr_db"] > 80  # fp32: the pipeline is the official loop up to rounding
    assert all(r["loss_finite"] for r in report["parts"]["train"]["rows"])
