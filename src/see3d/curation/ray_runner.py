"""Optional ``ray.data`` engine: the same per-video function (:func:`process_video`) as ray tasks.

``pip install 'see3d[ray]'``. Each task writes its result files into the output's ``work/`` folder,
so on a multi-node cluster that folder must be on a filesystem every node sees; the driver then packs
the shards exactly as the local engine does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from see3d.curation.config import CurateConfig
from see3d.curation.process import VideoResult
from see3d.errors import See3DError


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the data extra must be present too
    except ImportError as e:
        raise See3DError(f"--engine ray needs ray with its data extra, which is not installed ({e}); install it with: pip install 'see3d[ray]'") from e
    return ray


def _task(row: dict, cfg: CurateConfig, work_dir: str) -> dict:
    import cv2

    from see3d.curation.process import process_video

    cv2.setNumThreads(1)
    res = process_video(row["video"], cfg, Path(work_dir))
    return {"video": row["video"], "result": json.dumps(res.to_json())}


def run_ray(videos: list[str], cfg: CurateConfig, work_dir: Path) -> Iterator[VideoResult]:
    """Process ``videos`` with ``ray.data`` (``cfg.workers`` concurrent tasks, one CPU each)."""
    ray = _import_ray()
    if not videos:
        return
    if not ray.is_initialized():
        kw = {"address": cfg.ray_address} if cfg.ray_address else {"num_cpus": max(1, cfg.workers)}
        ray.init(include_dashboard=False, ignore_reinit_error=True, log_to_driver=False, **kw)
    ds = ray.data.from_items([{"video": v} for v in videos], override_num_blocks=len(videos))
    ds = ds.map(_task, fn_kwargs={"cfg": cfg, "work_dir": str(work_dir)}, num_cpus=1, concurrency=max(1, cfg.workers))
    for row in ds.iter_rows():
        yield VideoResult.from_json(json.loads(row["result"]))
