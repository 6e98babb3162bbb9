"""The optional ray.data engine runs the same per-video function as the local pool."""

from __future__ import annotations

import sys

import pyarrow.parquet as pq
import pytest

from see3d.curation import CurateConfig, curate
from see3d.errors import See3DError
from test_curation_common import good_video, static_video


def _cfg(**kw) -> CurateConfig:
    cfg = CurateConfig(progress=False, **kw)
    cfg.sample.output_short_side = 64
    return cfg


def test_missing_ray_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    v = static_video(tmp_path / "s.mp4", seconds=3)
    with pytest.raises(See3DError, match=r"pip install 'see3d\[ray\]'"):
        curate([str(v)], tmp_path / "out", _cfg(engine="ray"))


def test_ray_engine_matches_the_local_engine(tmp_path):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    vids = [str(good_video(tmp_path / "g.mp4", seconds=6)), str(static_video(tmp_path / "s.mp4", seconds=6))]
    try:
        curate(vids, tmp_path / "ray", _cfg(engine="ray", workers=2))
    finally:
        ray.shutdown()
    curate(vids, tmp_path / "local", _cfg(workers=0))
    a = pq.read_table(tmp_path / "ray" / "manifest.parquet").to_pylist()
    b = pq.read_table(tmp_path / "local" / "manifest.parquet").to_pylist()
    assert [(r["video"], r["clip_id"], r["decision"], r["reason"]) for r in a] == [(r["video"], r["clip_id"], r["decision"], r["reason"]) for r in b]
    ray_shard, local_shard = (next((tmp_path / d / "shards").glob("shard-000000-*.tar")) for d in ("ray", "local"))
    assert ray_shard.name == local_shard.name and ray_shard.read_bytes() == local_shard.read_bytes()
