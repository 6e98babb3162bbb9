"""``see3d mvd`` on the official example input layout, with the tiny random pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from see3d.cli import main
from see3d.pipelines.folder_io import read_input_layout
from see3d.pipelines.tiny import write_tiny_see3d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_tiny_see3d(tmp_path_factory.mktemp("tiny") / "MVD_weights", seed=0, variants=("single", "sparse", "SR"))


def _example(root, n_refs=1, n_warps=2, size=(72, 56)):
    """refs/ with reference images, warps/ with warp_XXX.png + mask_XXX.png (white = valid), like the official examples."""
    rng = np.random.default_rng(0)
    (root / "refs").mkdir(parents=True)
    (root / "warps").mkdir()
    for i in range(n_refs):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / "refs" / f"{i:03d}.jpg")
    for i in range(n_warps):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / "warps" / f"warp_{i:03d}.png")
        Image.fromarray(((rng.random((size[1], size[0])) > 0.4) * 255).astype(np.uint8)).save(root / "warps" / f"mask_{i:03d}.png")
    return root / "refs", root / "warps"


def _args(weights, refs, warps, out, *extra):
    return ["mvd", "--weights", str(weights), "--refs", str(refs), "--warps", str(warps), "--out", str(out), "--size", "64", "--steps", "3",
            "--device", "cpu", *extra]  # fmt: skip


def test_cli_writes_predictions_at_the_reference_size(weights, tmp_path):
    refs, warps = _example(tmp_path)
    out = tmp_path / "out"
    assert main(_args(weights, refs, warps, out, "--sr", "--sr-steps", "2", "--seed", "7")) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "SR_predict_warp_000.png",
        "SR_predict_warp_001.png",
        "mvd_config.json",
        "predict_warp_000.png",
        "predict_warp_001.png",
    ]
    for name in names[:2] + names[3:]:
        with Image.open(out / name) as im:
            assert im.size == (72, 56) and im.mode == "RGB"
    cfg = json.loads((out / "mvd_config.json").read_text())
    assert cfg["seed"] == 7 and cfg["sr"] is True and cfg["variant"] == "auto"
    # same seed -> same files
    out2 = tmp_path / "out2"
    assert main(_args(weights, refs, warps, out2, "--sr", "--sr-steps", "2", "--seed", "7")) == 0
    for name in ["predict_warp_000.png", "SR_predict_warp_001.png"]:
        assert np.array_equal(np.asarray(Image.open(out / name)), np.asarray(Image.open(out2 / name)))


def test_sparse_references_and_variant_flags(weights, tmp_path):
    refs, warps = _example(tmp_path, n_refs=3, n_warps=1)
    out = tmp_path / "out"
    assert main(_args(weights, refs, warps, out, "--sparse")) == 0
    assert (out / "predict_warp_000.png").is_file()
    assert json.loads((out / "mvd_config.json").read_text())["variant"] == "sparse"
    with pytest.raises(SystemExit):
        main(_args(weights, refs, warps, out, "--single", "--sparse"))


def test_layout_pairs_warps_with_masks_in_name_order(tmp_path):
    refs, warps = _example(tmp_path, n_warps=3)
    (warps / "notes.txt").write_text("not an image")
    layout = read_input_layout(refs, warps)
    assert [p.name for p in layout.warps] == ["warp_000.png", "warp_001.png", "warp_002.png"]
    assert [p.name for p in layout.masks] == ["mask_000.png", "mask_001.png", "mask_002.png"]


def test_missing_mask_is_reported_with_its_path(weights, tmp_path, capsys):
    refs, warps = _example(tmp_path)
    (warps / "mask_001.png").unlink()
    assert main(_args(weights, refs, warps, tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert "see3d mvd: error:" in err and "mask_001.png" in err and "warp_001.png" in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_incomplete_weights_and_bad_images_are_reported(weights, tmp_path, capsys):
    refs, warps = _example(tmp_path)
    assert main(_args(tmp_path / "no_weights", refs, warps, tmp_path / "out")) == 1
    assert "weights folder not found" in capsys.readouterr().err
    (warps / "warp_000.png").write_bytes(b"not a png")
    assert main(_args(weights, refs, warps, tmp_path / "out")) == 1
    assert "warp_000.png: not a readable image" in capsys.readouterr().err
