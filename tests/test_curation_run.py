"""Whole curation runs: decisions, the dataset layout a trainer reads, bad inputs, resuming after
a kill, determinism, the process pool and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from see3d import labels
from see3d.cli import main as cli_main
from see3d.curation import CurateConfig, CurationDataset, curate, iter_clips, list_accepted, read_clip, video_key
from see3d.curation.records import MANIFEST_COLUMNS
from test_curation_common import dynamic_video, good_video, layered_frames, pan_video, static_video, write_with_pts

ROOT = Path(__file__).resolve().parents[1]


def _cfg(**kw) -> CurateConfig:
    cfg = CurateConfig(workers=0, progress=False, **kw)
    cfg.sample.output_short_side = 96  # small stored frames keep the test light
    return cfg


def _manifest(out: Path) -> list[dict]:
    return pq.read_table(out / "manifest.parquet").to_pylist()


def _same_manifest(a: Path, b: Path) -> bool:
    """Row-by-row equality of two manifests, NaN equal to NaN."""
    ra, rb = _manifest(a), _manifest(b)

    def same(x, y):
        return x == y or (isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y))

    return len(ra) == len(rb) and all(same(x[k], y[k]) for x, y in zip(ra, rb) for k in x)


def _video_rows(out: Path) -> dict[str, dict]:
    return {Path(r["video"]).name: r for r in _manifest(out) if r["kind"] == "video"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    v = {
        "good": good_video(d / "good.mp4"),
        "static": static_video(d / "static.mp4"),
        "pan": pan_video(d / "pan.mp4"),
        "dynamic": dynamic_video(d / "dynamic.mp4"),
    }
    return v


@pytest.fixture(scope="module")
def curated(videos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "ds"
    summary = curate([str(p) for p in videos.values()], out, _cfg())
    assert summary.videos == 4 and summary.processed == 4 and summary.errors == 0
    return out


def test_decisions_and_reasons(curated):
    rows = _video_rows(curated)
    got = {k: (r["decision"], r["reason"]) for k, r in rows.items()}
    assert got == {
        "good.mp4": (labels.KEEP, labels.OK),
        "static.mp4": (labels.DROP, labels.STATIC_CAMERA),
        "pan.mp4": (labels.DROP, labels.ROTATION_ONLY),
        "dynamic.mp4": (labels.DROP, labels.DYNAMIC),
    }
    clips = [r for r in _manifest(curated) if r["kind"] == "clip"]
    assert {r["decision"] for r in clips if Path(r["video"]).name == "good.mp4"} == {labels.KEEP}
    for r in clips:  # every clip row carries its times, reason and the statistics of the stages it ran
        assert r["clip_id"].startswith(r["video_key"]) and r["end_s"] > r["start_s"] >= 0
        assert r["reason"] in labels.REASONS and r["message"] or r["decision"] == labels.KEEP
        assert not np.isnan(r["dyn_area"])


def test_manifest_has_one_row_per_video_and_per_clip(curated, videos):
    rows = _manifest(curated)
    assert set(MANIFEST_COLUMNS) <= set(rows[0]) and {"video", "clip_id", "start_s", "end_s", "decision", "reason"} <= set(rows[0])
    assert [r["video"] for r in rows if r["kind"] == "video"] == [str(p) for p in videos.values()]  # input order, path as given
    for r in rows:
        if r["kind"] == "video":
            n = [c for c in rows if c["kind"] == "clip" and c["video"] == r["video"]]
            assert len(n) >= 1 and sum(c["num_frames"] for c in n) == r["num_frames"]


def test_shards_are_webdataset_and_the_reader_returns_kept_clips(curated):
    kept = [r for r in _manifest(curated) if r["kind"] == "clip" and r["decision"] == labels.KEEP]
    entries = list_accepted(curated)
    assert [e.key for e in entries] == [r["clip_id"] for r in kept]
    index = json.loads((curated / "shards" / "index.json").read_text())
    for r in kept:
        assert r["shard"] == "shards/" + index["clips"][r["clip_id"]]["shard"]
    with tarfile.open(next((curated / "shards").glob("shard-000000-*.tar"))) as tar:
        names = tar.getnames()
    first = kept[0]["clip_id"]
    assert names[0] == f"{first}.json" and names[1] == f"{first}.0000.jpg"
    assert all(n.split(".", 1)[0] in {r["clip_id"] for r in kept} for n in names)
    frames, meta = read_clip(curated, first)
    assert frames.dtype == np.uint8 and frames.shape == (kept[0]["num_frames"], 96, 128, 3)
    assert meta["clip_id"] == first and len(meta["times"]) == len(frames) and meta["video"].endswith("good.mp4")
    streamed = list(iter_clips(curated))
    assert [k for k, _, _ in streamed] == [e.key for e in entries]
    np.testing.assert_array_equal(streamed[0][1], frames)
    ds = CurationDataset(curated)
    assert len(ds) == len(kept) and ds[0][0].shape == frames.shape and ds[first][1]["clip_id"] == first


def test_rerun_skips_finished_videos_and_outputs_are_deterministic(curated, videos, tmp_path):
    before = {p.name: p.read_bytes() for p in (curated / "shards").iterdir()}
    summary = curate([str(p) for p in videos.values()], curated, _cfg())
    assert summary.processed == 0
    assert {p.name: p.read_bytes() for p in (curated / "shards").iterdir()} == before
    again = tmp_path / "again"
    curate([str(p) for p in videos.values()], again, _cfg())
    shard = next((again / "shards").glob("shard-000000-*.tar"))
    assert shard.read_bytes() == before[shard.name]
    assert _same_manifest(again, curated)
    # a different seed is a different configuration: everything is processed again
    assert curate([str(videos["good"])], tmp_path / "again", _cfg(seed=1)).processed == 1


def test_bad_inputs_become_error_rows_and_the_run_goes_on(videos, tmp_path):
    import av

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "junk.mp4").write_bytes(os.urandom(4000))
    data = videos["good"].read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 3])
    os.symlink(bad / "nowhere" / "gone.mp4", bad / "link.mp4")  # an unreadable path (dangling link)
    with av.open(str(bad / "audio.mp4"), "w") as c:  # audio only
        s = c.add_stream("aac", rate=16000)
        for i in range(5):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, i * 1024
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(str(bad / "empty.mp4"), "w") as c:  # a video stream without frames
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    inputs = [str(bad / n) for n in ("junk.mp4", "truncated.mp4", "link.mp4", "audio.mp4", "empty.mp4", "missing.mp4")] + [str(videos["good"])]
    out = tmp_path / "out"
    summary = curate(inputs, out, _cfg())
    rows = _video_rows(out)
    assert summary.errors == 6 and rows["good.mp4"]["decision"] == labels.KEEP
    for name in ("junk.mp4", "truncated.mp4", "link.mp4", "audio.mp4", "empty.mp4", "missing.mp4"):
        r = rows[name]
        reason = labels.TRUNCATED if name == "truncated.mp4" else labels.DECODE_ERROR
        assert (r["decision"], r["reason"]) == (labels.ERROR, reason) and name in r["message"], r
    assert "not found" in rows["missing.mp4"]["message"] and "no video stream" in rows["audio.mp4"]["message"]
    assert not [r for r in _manifest(out) if r["kind"] == "clip" and r["video"] != str(videos["good"])]


def test_rotation_vfr_and_8k_inputs_are_processed(tmp_path):
    import av

    frames = layered_frames(24, 1.0, 3.0)
    rot = write_with_pts(tmp_path / "rot.mp4", frames, [i / 4 for i in range(24)], rotation=270)
    vfr = write_with_pts(tmp_path / "vfr.mp4", frames, [0.1 * i + (0.3 if i > 12 else 0) for i in range(24)])
    big = tmp_path / "8k.mp4"
    with av.open(str(big), "w") as c:
        s = c.add_stream("libx264", rate=4)
        s.width, s.height, s.pix_fmt, s.options = 7680, 4320, "yuv420p", {"preset": "ultrafast"}
        img = np.zeros((4320, 7680, 3), np.uint8)
        img[::64] = 255
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    out = tmp_path / "out"
    curate([str(rot), str(vfr), str(big)], out, _cfg())
    rows = _video_rows(out)
    assert rows["rot.mp4"]["rotation_deg"] == 270 and (rows["rot.mp4"]["src_width"], rows["rot.mp4"]["src_height"]) == (144, 192)
    assert rows["rot.mp4"]["decision"] != labels.ERROR
    assert rows["vfr.mp4"]["decision"] != labels.ERROR and rows["vfr.mp4"]["num_frames"] == 6  # 0..2.6 s at 2 fps
    assert rows["8k.mp4"]["src_width"] == 7680 and rows["8k.mp4"]["reason"] == labels.TOO_SHORT
    cfg = _cfg()
    cfg.sample.max_input_pixels = 1920 * 1080
    small = curate([str(big)], tmp_path / "limit", cfg)
    assert small.errors == 1 and "max_input_pixels" in _video_rows(tmp_path / "limit")["8k.mp4"]["message"]


def test_process_pool_gives_the_same_result(videos, curated, tmp_path):
    out = tmp_path / "pool"
    cfg = _cfg()
    cfg.workers = 2
    curate([str(p) for p in videos.values()], out, cfg)
    assert _same_manifest(out, curated)


def test_killed_run_loses_nothing_finished(tmp_path):
    vids = [good_video(tmp_path / f"v{i}.mp4", seconds=10, seed=i) for i in range(6)]
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "see3d.cli", "curate", *map(str, vids), "--out", str(out), "--workers", "0", "--sample-output-short-side", "96"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    work = out / "work" / "videos"
    deadline = time.time() + 120
    while time.time() < deadline and not (work.is_dir() and list(work.glob("v*.json"))):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, at an arbitrary moment
    proc.wait()
    finished = {p.stem for p in work.glob("v*.json")}
    assert 1 <= len(finished) < 6
    assert not (out / "manifest.parquet").exists()  # written only at the end, never half
    mtimes = {p: p.stat().st_mtime_ns for p in work.glob("v*.json")}
    summary = curate([str(v) for v in vids], out, _cfg())
    assert summary.processed == 6 - len(finished)
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items())  # finished videos were not redone
    assert len(_video_rows(out)) == 6 and not [p for p in (out / "shards").iterdir() if p.name.startswith(".")]
    assert len(list_accepted(out)) == sum(r["decision"] == labels.KEEP for r in _manifest(out) if r["kind"] == "clip")


def test_cli_curate(videos, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli_main(["curate", str(videos["good"]), str(videos["static"]), "--out", str(out), "--workers", "0", "--no-progress", "--sample-output-short-side", "96"])
    assert rc == 0 and "2 videos" in capsys.readouterr().out
    assert json.loads((out / "curate_config.json").read_text())["sample"]["output_short_side"] == 96
    assert len(_video_rows(out)) == 2 and video_key(str(videos["good"])) in {r["video_key"] for r in _manifest(out)}


def test_inputs_from_folders_and_lists(videos, tmp_path):
    from see3d.curation import list_inputs

    folder = videos["good"].parent
    lst = tmp_path / "list.txt"
    lst.write_text(f"# my videos\n{videos['static']}\n{videos['good']}\n")
    got = list_inputs([folder, lst, str(videos["good"])])
    assert got == [str(folder / n) for n in ("dynamic.mp4", "good.mp4", "pan.mp4", "static.mp4")]  # natural order, no duplicates
