"""Real scale: the official layout at the released sizes (random weights) through ``see3d mvd``, ``mvd --sr`` and
``see3d generate``. The dry run is ``slow`` (``make test-all``): ~6 GB written to a temp folder, ~10-15 GB RAM,
minutes on 2 CPU cores. The tokenizer check is quick."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from see3d.pipelines.tiny import FULL_UNET_CONFIG, find_clip_bpe, write_clip_tokenizer, write_tiny_see3d

GIB = 2**30
CLI = "import sys; from see3d.cli import main; sys.exit(main(sys.argv[1:]))"


def test_clip_tokenizer_from_the_bpe_file_matches_open_clip(tmp_path):
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    bpe = find_clip_bpe()
    assert bpe is not None, "open_clip_torch (a dev dependency) ships bpe_simple_vocab_16e6.txt.gz"
    write_clip_tokenizer(tmp_path / "tok", bpe)
    tok = CLIPTokenizer.from_pretrained(tmp_path / "tok")
    ref = SimpleTokenizer(str(bpe))
    assert len(tok) == 49408
    # (no "!": SD-2.1's pad token is "!", which transformers then splits off as a special token, as with the real files)
    for text in ["a photo of a cat", "Multi-view diffusion, 512x512.", "see3d: warping-based 3D generation"]:
        assert tok(text).input_ids == [ref.encoder["<start_of_text>"], *ref.encode(text), ref.encoder["<end_of_text>"]]
    ids = tok([""], padding="max_length", max_length=77).input_ids[0]
    assert ids[:2] == [49406, 49407] and set(ids[2:]) == {0}  # SD-2.1 pads with "!" (id 0) after the end token


def _run_cli(args: list[str], log: Path) -> int:
    """Run ``see3d <args>`` in a fresh process; returns that process's own peak RSS in bytes (``wait4``'s rusage)."""
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "2"})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, log.read_text()[-3000:]
    print(f"{args[0]} {' '.join(a for a in args if a in ('--sr',))}: peak RSS {usage.ru_maxrss / 2**20:.1f} GiB", flush=True)
    return usage.ru_maxrss * 1024  # Linux: KiB


def _images(folder: Path, names: list[str]) -> list[np.ndarray]:
    out = []
    for n in names:
        with Image.open(folder / n) as im:
            out.append(np.asarray(im))
    return out


@pytest.mark.slow
@pytest.mark.timeout(3600)  # ~15 min for mvd --sr alone on 2 shared cores (the suite's 900 s cut the first run)
def test_full_size_dry_run(tmp_path):
    """mvd (1 step), mvd --sr (1 + 1 steps, 1024 px) and generate (1 step) at 512 px with the released sizes."""
    import torch

    from see3d.models.mv_unet import MultiViewUNet

    weights = write_tiny_see3d(tmp_path / "MVD_weights", seed=0, variants=("single", "SR"), full_size=True)
    unet = MultiViewUNet.from_pretrained(weights / "unet" / "single" / "ema-checkpoint", torch_dtype=torch.float16)
    assert unet.config["channel_mult"] == FULL_UNET_CONFIG["channel_mult"]
    assert sum(p.numel() for p in unet.parameters()) == 865_925_124
    del unet
    rng = np.random.default_rng(0)
    (tmp_path / "refs").mkdir()
    (tmp_path / "warps").mkdir()
    Image.fromarray(rng.integers(0, 255, (384, 512, 3), dtype=np.uint8)).save(tmp_path / "refs" / "000.png")
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (384, 512, 3), dtype=np.uint8)).save(tmp_path / "warps" / f"warp_{i:03d}.png")
        Image.fromarray(((rng.random((384, 512)) > 0.4) * 255).astype(np.uint8)).save(tmp_path / "warps" / f"mask_{i:03d}.png")
    common = ["--weights", str(weights), "--refs", str(tmp_path / "refs"), "--warps", str(tmp_path / "warps"), "--device", "cpu"]

    peak_mvd = _run_cli(["mvd", *common, "--out", str(tmp_path / "mvd"), "--steps", "1"], tmp_path / "mvd.log")
    for img in _images(tmp_path / "mvd", ["predict_warp_000.png", "predict_warp_001.png"]):
        assert img.shape == (384, 512, 3) and img.std() > 0  # written at the reference's size, not blank
    assert peak_mvd < 12 * GIB, peak_mvd / GIB

    peak_sr = _run_cli(["mvd", *common, "--out", str(tmp_path / "sr"), "--steps", "1", "--sr", "--sr-steps", "1"], tmp_path / "sr.log")
    for img in _images(tmp_path / "sr", ["predict_warp_000.png", "SR_predict_warp_001.png"]):
        assert img.shape == (384, 512, 3) and img.std() > 0
    assert peak_sr < 16 * GIB, peak_sr / GIB

    Image.fromarray(rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    np.save(tmp_path / "in.npy", np.full((512, 512), 2.0, np.float32))
    peak_gen = _run_cli(["generate", "--image", str(tmp_path / "in.png"), "--depth", str(tmp_path / "in.npy"), "--weights", str(weights),
                         "--out", str(tmp_path / "gen"), "--n-frames", "2", "--chunk-size", "2", "--steps", "1", "--device", "cpu"],
                        tmp_path / "generate.log")  # fmt: skip
    summary = json.loads((tmp_path / "gen" / "transforms.json").read_text())
    assert len(summary["frames"]) == 3
    views = [np.asarray(Image.open(tmp_path / "gen" / f["file_path"])) for f in summary["frames"]]
    assert all(v.shape == (512, 512, 3) and np.isfinite(v).all() for v in views) and views[-1].std() > 0
    assert peak_gen < 12 * GIB, peak_gen / GIB
    print(f"peak RSS: mvd {peak_mvd / GIB:.1f} GiB, mvd --sr {peak_sr / GIB:.1f} GiB, generate {peak_gen / GIB:.1f} GiB")
