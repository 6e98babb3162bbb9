"""The labelled-set writer and the ``see3d synth`` verb: documented layout, labels, decodable videos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from see3d import labels
from see3d.cli import main
from see3d.io.images import load_mask
from see3d.io.video import read_frames
from see3d.io.views import Views
from see3d.synth import CYCLE, KINDS, make_clip, plan_clips, write_labeled_set


def test_plan_covers_every_reason_evenly_and_is_deterministic():
    plans = plan_clips(50, seed=0)
    assert plans == plan_clips(50, seed=0)
    assert [p.seed for p in plans] != [p.seed for p in plan_clips(50, seed=1)]
    kinds = [p.kind for p in plans]
    assert set(kinds) == set(KINDS) and all(kinds.count(k) == 5 for k in KINDS)
    assert len({p.clip_id for p in plans}) == 50 and len({p.seed for p in plans}) == 50
    assert [p.kind for p in plan_clips(4, 0, ["pan", "dynamic"])] == ["pan", "dynamic", "pan", "dynamic"]
    with pytest.raises(ValueError, match="unknown clip kinds"):
        plan_clips(3, 0, ["orbit", "nope"])


def test_labeled_set_layout(tmp_path):
    n, frames, (w, h) = 10, 6, (32, 24)
    records = write_labeled_set(tmp_path, n=n, seed=0, size=(w, h), n_frames=frames, fps=12.0)
    assert [r["clip_id"] for r in records] == [f"clip_{i:05d}" for i in range(n)]
    assert [r["kind"] for r in records] == list(CYCLE)
    on_disk = json.loads((tmp_path / "labels.json").read_text())
    assert on_disk == records
    reasons = {r["reason"] for r in records}
    assert reasons == {labels.OK, labels.DYNAMIC, labels.STATIC_CAMERA, labels.ROTATION_ONLY, labels.SMALL_MOTION, labels.TOO_SHORT}
    assert sum(r["label"] == labels.KEEP for r in records) == n // 2
    assert json.loads((tmp_path / "synth_config.json").read_text())["n"] == n
    for r in records:
        folder = tmp_path / r["clip_id"]
        assert json.loads((folder / "label.json").read_text()) == r
        video = read_frames(tmp_path / r["video"])
        assert video.shape == (r["n_frames"], h, w, 3)
        views = Views.load(folder)
        assert len(views) == r["n_frames"] and views.depth is not None and views.depth_is_metric
        assert (folder / "images" / "00000.png").is_file() and (folder / "depth" / "00000.npy").is_file()
        assert (views.depth > 0).all()
        if r["kind"] == "too_short":
            assert 4 <= r["n_frames"] <= 6
        else:
            assert r["n_frames"] == frames
        # the mp4 shows the same frames (up to H.264 loss)
        assert np.abs(video.astype(np.float32) / 255 - views.images).mean() < 0.08
        masks = folder / "moving_masks"
        assert masks.is_dir() == (r["kind"] == "dynamic") == r["has_moving_masks"]
    # the sidecar is exactly the clip make_clip renders (cameras and depth round-trip through disk)
    r = records[1]
    clip = make_clip(r["seed"], r["kind"], n_frames=frames, size=(w, h), fps=12.0)
    views = Views.load(tmp_path / r["clip_id"])
    np.testing.assert_allclose(views.cameras.c2w, clip.cameras.c2w, atol=1e-9)
    np.testing.assert_array_equal(views.depth, clip.depth)
    np.testing.assert_array_equal(load_mask(tmp_path / r["clip_id"] / "moving_masks" / "00003.png"), clip.moving_mask[3])


def test_rerun_reuses_complete_clips_and_redoes_missing_ones(tmp_path):
    write_labeled_set(tmp_path, n=3, seed=5, size=16, n_frames=4)
    stamp = (tmp_path / "clip_00000.mp4").stat().st_mtime_ns
    (tmp_path / "clip_00002" / "label.json").unlink()  # as if the run died before clip 2 was complete
    records = write_labeled_set(tmp_path, n=3, seed=5, size=16, n_frames=4)
    assert len(records) == 3 and (tmp_path / "clip_00002" / "label.json").is_file()
    assert (tmp_path / "clip_00000.mp4").stat().st_mtime_ns == stamp
    # other settings re-render
    again = write_labeled_set(tmp_path, n=3, seed=5, size=16, n_frames=5)
    assert all(r["n_frames"] == 5 for r in again if r["kind"] != "too_short")


def test_cli_writes_a_set(tmp_path, capsys):
    rc = main(
        [
            "synth",
            "--out",
            str(tmp_path / "set"),
            "--n",
            "2",
            "--seed",
            "3",
            "--size",
            "24",
            "--frames",
            "4",
            "--kinds",
            "pan",
            "rotation_only",
        ]
    )
    assert rc == 0
    recs = json.loads((tmp_path / "set" / "labels.json").read_text())
    assert [(r["kind"], r["label"], r["reason"]) for r in recs] == [("pan", "keep", "ok"), ("rotation_only", "drop", "rotation_only")]
    assert "wrote 2 clips" in capsys.readouterr().out


def test_cli_rejects_unknown_kind(tmp_path, capsys):
    rc = main(["synth", "--out", str(tmp_path), "--n", "1", "--kinds", "bogus"])
    assert rc == 1
    assert "unknown clip kinds" in capsys.readouterr().err


def test_parallel_workers_write_the_same_set(tmp_path):
    a = write_labeled_set(tmp_path / "a", n=3, seed=2, size=16, n_frames=4, workers=1)
    b = write_labeled_set(tmp_path / "b", n=3, seed=2, size=16, n_frames=4, workers=2)
    assert a == b
    for r in a:
        va, vb = Views.load(tmp_path / "a" / r["clip_id"]), Views.load(tmp_path / "b" / r["clip_id"])
        assert np.array_equal(va.images, vb.images) and np.array_equal(va.depth, vb.depth)
