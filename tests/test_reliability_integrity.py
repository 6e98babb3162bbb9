"""Reliability, group "integrity" (issue 22): nothing stale is reused, an output describes exactly one run, a resume
continues only the same run, and the curated dataset switches as one set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from see3d import labels
from see3d.cli import main
from see3d.curation import curate
from see3d.curation.config import CurateConfig
from see3d.errors import InputError
from see3d.io.cameras import Cameras, look_at
from see3d.io.images import save_image
from see3d.io.views import Views
from test_curation_common import good_video, static_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(**kw) -> CurateConfig:
    cfg = CurateConfig(workers=0, progress=False, **kw)
    cfg.sample.output_short_side = 96
    return cfg


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out / "manifest.parquet").to_pylist()


# ------------------------------------------------------------------------------------------ curate: content identity
def test_curate_notices_a_video_replaced_at_the_same_path(tmp_path):
    from see3d.curation.reader import list_accepted

    video = good_video(tmp_path / "v.mp4", seconds=6)
    first = curate([str(video)], tmp_path / "out", _cfg())
    assert first.kept_clips >= 1 and len(list_accepted(tmp_path / "out")) == first.kept_clips
    static_video(video, seconds=6)  # another film under the same name
    second = curate([str(video)], tmp_path / "out", _cfg())
    assert second.processed == 1 and second.kept_clips == 0
    assert {r["reason"] for r in _rows(tmp_path / "out") if r["kind"] == "clip"} == {labels.STATIC_CAMERA}
    assert list_accepted(tmp_path / "out") == []  # the old frames are gone from the shards
    third = curate([str(video)], tmp_path / "out", _cfg())
    assert third.processed == 0  # unchanged now: reused


def test_curate_retries_error_rows_by_default(tmp_path):
    late = tmp_path / "late.mp4"
    first = curate([str(late)], tmp_path / "out", _cfg())
    assert first.errors == 1
    assert curate([str(late)], tmp_path / "out", _cfg(retry_errors=False)).processed == 0  # kept as it was on request
    good_video(late, seconds=6)  # the file appears
    second = curate([str(late)], tmp_path / "out", _cfg())
    assert second.processed == 1 and second.errors == 0 and second.kept_clips >= 1
    assert all(r["decision"] != labels.ERROR for r in _rows(tmp_path / "out"))


# ------------------------------------------------------------------------------------------ curate: the set switches at once
def test_curated_set_mismatch_is_detected_and_a_rerun_repairs_it(tmp_path):
    from see3d.curation.reader import list_accepted, read_clip, read_manifest
    from see3d.curation.records import record_from_dict
    from see3d.curation.writer import write_manifest

    video = good_video(tmp_path / "v.mp4", seconds=6)
    out = tmp_path / "out"
    curate([str(video)], out, _cfg())
    keys = [e.key for e in list_accepted(out)]
    assert keys and read_manifest(out).num_rows == len(_rows(out))
    # a run killed after writing its manifest, before switching the index
    write_manifest(out / "manifest.parquet", [record_from_dict(r) for r in _rows(out)], "another-generation")
    for read in (list_accepted, lambda o: read_clip(o, keys[0]), read_manifest):
        with pytest.raises(InputError, match="different runs"):
            read(out)
    curate([str(video)], out, _cfg())  # the same command again finishes the set
    assert [e.key for e in list_accepted(out)] == keys and read_clip(out, keys[0])[0].ndim == 4


def test_new_shards_never_overwrite_the_ones_the_index_points_at(tmp_path):
    from see3d.curation.reader import list_accepted, read_entry
    from see3d.curation.writer import ClipSample, ShardPart, commit_dataset, encode_frame, pack_shards, write_samples_tar

    rng = np.random.default_rng(0)

    def part(v: int, c: int) -> ShardPart:
        frames = [encode_frame((rng.random((16, 16, 3)) * 255).astype(np.uint8)) for _ in range(3)]
        tar = tmp_path / "work" / f"vid{v}-{c}.tar"
        return ShardPart(f"vid{v}", tar, write_samples_tar(tar, [ClipSample(f"vid{v}-c{c}", {"video": f"vid{v}"}, frames)]))

    commit_dataset(tmp_path / "cur", pack_shards(tmp_path / "cur", [part(0, 0)], 1 << 20), [])
    (old,) = list_accepted(tmp_path / "cur")
    pack_shards(tmp_path / "cur", [part(0, 1), part(1, 0)], 1 << 20)  # a new run's shards, the index not yet switched
    assert list_accepted(tmp_path / "cur") == [old] and read_entry(old)[1]["video"] == "vid0"


# ------------------------------------------------------------------------------------------ outputs hold one run
def _generate(tmp_path: Path, out: Path, *extra: str) -> int:
    rng = np.random.default_rng(0)
    save_image(tmp_path / "in.png", rng.random((64, 64, 3)).astype(np.float32))
    np.save(tmp_path / "in.npy", np.full((64, 64), 2.0, np.float32))
    return main(["generate", "--image", str(tmp_path / "in.png"), "--depth", str(tmp_path / "in.npy"), "--fill", "telea",
                 "--size", "64", "--chunk-size", "2", "--out", str(out), *extra])  # fmt: skip


def test_generate_into_a_used_folder_is_refused_or_replaced_whole(tmp_path, capsys):
    out = tmp_path / "gen"
    assert _generate(tmp_path, out, "--n-frames", "4") == 0
    assert len(list((out / "official" / "warps").glob("warp_*.png"))) == 4
    capsys.readouterr()
    assert _generate(tmp_path, out, "--n-frames", "2") == 1
    assert "not empty" in capsys.readouterr().err and len(list((out / "images").iterdir())) == 5  # untouched
    assert _generate(tmp_path, out, "--n-frames", "2", "--overwrite") == 0
    assert len(list((out / "official" / "warps").glob("warp_*.png"))) == 2 and len(list((out / "images").iterdir())) == 3
    assert json.loads((out / "generate_config.json").read_text())["config"]["n_frames"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging folders left


def test_a_failed_run_leaves_the_previous_output_untouched(tmp_path):
    from see3d.io.outdir import staged_dir

    out = tmp_path / "res"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    with pytest.raises(RuntimeError), staged_dir(out) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"] and [p.name for p in tmp_path.iterdir()] == ["res"]


def test_edit_never_writes_into_its_scene(tmp_path, capsys):
    scene = tmp_path / "scene"
    cams = Cameras.from_fov(np.stack([look_at(np.array([x, 0.0, -3.0]), np.zeros(3)) for x in (-0.3, 0.3)]), 50.0, 64, 64)
    rng = np.random.default_rng(0)
    Views(rng.random((2, 64, 64, 3)).astype(np.float32), cams, np.full((2, 64, 64), 3.0, np.float32), names=["a", "b"]).save(scene)
    save_image(tmp_path / "edited.png", rng.random((64, 64, 3)).astype(np.float32))
    before = {p: p.read_bytes() for p in scene.rglob("*") if p.is_file()}
    for out in (scene, scene / "edited_views"):
        for extra in ([], ["--overwrite"]):
            assert main(["edit", "--scene", str(scene), "--view", "a", "--edited", str(tmp_path / "edited.png"), "--out", str(out), *extra]) == 1
            assert "overlaps the input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in scene.rglob("*") if p.is_file()} == before


# ------------------------------------------------------------------------------------------ reconstruct
def _views(seed: int) -> Views:
    cams = Cameras.from_fov(np.stack([look_at(np.array([x, 0.0, -3.0]), np.zeros(3)) for x in (-0.3, 0.0, 0.3)]), 50.0, 24, 16)
    return Views(np.random.default_rng(seed).random((3, 16, 24, 3)).astype(np.float32), cams, names=["a", "b", "c"])


def test_reconstruct_resume_checks_data_and_checkpoint_step(tmp_path):
    from see3d.splat.config import ReconstructConfig
    from see3d.splat.reconstruct import reconstruct

    cfg = ReconstructConfig(iters=4, init="random", init_points=50, backend="cpu", checkpoint_every=2, sh_degree=0)
    out = tmp_path / "rec"
    reconstruct(_views(0), out, cfg, show_progress=False)
    with pytest.raises(InputError, match="not empty"):
        reconstruct(_views(0), out, cfg, show_progress=False)
    with pytest.raises(InputError, match="other data"):
        reconstruct(_views(1), out, cfg, resume=True, show_progress=False)
    reconstruct(_views(0), out, cfg, resume=True, show_progress=False)  # the same data resumes
    state = json.loads((out / "checkpoint.json").read_text())
    (out / "checkpoint.json").write_text(json.dumps({**state, "step": state["step"] - 2}))  # json of another save
    with pytest.raises(InputError, match="different saves"):
        reconstruct(_views(0), out, cfg, resume=True, show_progress=False)
    (out / "stray.txt").write_text("x")
    reconstruct(_views(0), out, cfg, overwrite=True, show_progress=False)
    assert not (out / "stray.txt").exists() and (out / "splats.ply").is_file()
