"""Real scenes with their real cameras (../shared/data): network-like relative depth aligned to keypoint
anchors of the 3 sparse inputs lines up with the held-out real photos, and ``see3d eval`` runs the whole
framework on LLFF fern without MVD weights. Slow (a minute or more each on 2 CPU cores)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_path

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fern_depth(tmp_path_factory):
    data = shared_path("data")
    shared_path("data", "llff_fern")
    out = tmp_path_factory.mktemp("real")
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "real_scenes.py"), "--data", str(data), "--out", str(out), "--scenes", "llff_fern"],
                       capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = {}
    for line in p.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and re.fullmatch(r"[\d.]+", cells[5]):
            rows[cells[4]] = (float(cells[5]), float(cells[6]))
    return out, rows


def test_fern_warps_from_aligned_relative_depth_line_up_with_the_held_out_photos(fern_depth):
    _, rows = fern_depth
    psnr_l, cov_l = rows["lwlr"]
    psnr_g, _ = rows["global"]
    assert cov_l > 0.9 and psnr_l > 16.0  # raw relative depth gives 0 warped pixels (issue 17)
    assert psnr_l >= psnr_g


def test_eval_sparse3_on_fern_with_telea_and_given_depth(fern_depth, tmp_path):
    out, _ = fern_depth
    p = subprocess.run([sys.executable, "-m", "see3d.cli", "eval", "--data", str(shared_path("data", "llff_fern")), "--protocol", "sparse3",
                        "--fill", "telea", "--depth", str(out / "depth" / "llff_fern"), "--depth-kind", "relative_depth", "--iters", "150",
                        "--generated-per-gap", "2", "--device", "cpu", "--out", str(tmp_path / "e")], capture_output=True, text=True, timeout=1800)  # fmt: skip
    assert p.returncode == 0, p.stderr
    js = json.loads((tmp_path / "e" / "results.json").read_text())
    assert js["scenes"][0]["num_generated"] == 4 and "Telea" in js["filler"] and "given maps" in js["depth_source"]
    assert 10.0 < js["scenes"][0]["mean"]["psnr"] < 40.0
