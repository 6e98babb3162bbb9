"""Running curation over many videos: input listing, the local process pool, resuming, and the
final packing of shards, index and manifest.

Resumability: each finished video leaves ``work/videos/<video_key>.json`` (plus a ``.tar`` of its
kept samples), written atomically, with the content identity of the input (size, mtime, hash of its head
and tail). A rerun with the same settings skips those videos unless the file changed since; videos whose
row is an error are tried again (unless ``--no-retry-errors``). Killing the run
at any moment loses only the videos in flight. Shards, ``index.json`` and ``manifest.parquet`` are
rebuilt from the per-video results at the end of every run (each file atomically; unchanged shards are
kept), also when the run is interrupted with Ctrl-C.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from see3d import labels
from see3d.config import save_config
from see3d.curation.config import CurateConfig
from see3d.curation.process import VideoResult, _error_record, get_backends, load_result, process_video, result_paths, video_key
from see3d.curation.records import ClipRecord
from see3d.curation.writer import ShardPart, commit_dataset, pack_shards
from see3d.errors import InputError
from see3d.io.atomic import write_json_atomic
from see3d.io.fingerprint import file_identity
from see3d.io.images import natural_key
from see3d.log import get_logger, progress

log = get_logger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp")


def list_inputs(inputs: Iterable[str | Path], empty: list[str] | None = None) -> list[str]:
    """Expand inputs to video paths, as strings, in a stable order without duplicates.

    Each input is a video file (kept even when its extension is unknown or it is missing: it then
    becomes an ``error`` row), a folder (its video files, recursively, in natural order), or a
    ``.txt`` list with one path per line (``#`` comments; relative paths are relative to the list).
    Folders and lists that yield no video are logged as warnings and appended to ``empty`` when given.
    """
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        n_before = len(out)
        if p.is_dir():
            found = [f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS and not f.name.startswith(".")]
            out += [str(f) for f in sorted(found, key=lambda f: natural_key(str(f.relative_to(p))))]
        elif p.suffix.lower() == ".txt" and p.is_file():
            for line in p.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line)
                    out.append(str(q if q.is_absolute() else p.parent / q))
        else:
            out.append(str(item))
        if len(out) == n_before:
            log.warning("%s: %s holds no video files (extensions %s)", item, "folder" if p.is_dir() else "list", ", ".join(VIDEO_EXTENSIONS))
            if empty is not None:
                empty.append(str(item))
    return list(dict.fromkeys(out))


@dataclass
class CurateSummary:
    """Counts of a finished run."""

    out: Path
    videos: int = 0
    processed: int = 0  # in this run (the rest were reused)
    clips: int = 0
    kept_clips: int = 0
    errors: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # clip reasons, plus errors by video
    empty_inputs: list[str] = field(default_factory=list)  # folders / lists that held no video

    def line(self) -> str:
        rs = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items()))
        empty = f"; {len(self.empty_inputs)} input(s) held no videos: {', '.join(self.empty_inputs)}" if self.empty_inputs else ""
        return (f"{self.videos} videos ({self.processed} processed now, {self.errors} errors), {self.kept_clips} of {self.clips} clips kept "
                f"({rs}) -> {self.out}{empty}")  # fmt: skip


def die_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """Make this (worker) process end when its parent (pid ``parent``) dies, even by ``kill -9``: on Linux the kernel
    sends SIGKILL (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon thread also exits the process once its parent
    pid changes."""
    import ctypes
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog below still works
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="see3d-parent-watchdog", daemon=True).start()


def _init_worker(parent: int) -> None:
    """Worker set-up: die with the parent (no orphan keeps working after a kill); one thread per worker process
    for OpenCV and torch (the pool provides the parallelism)."""
    die_with_parent(parent)
    import cv2

    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def _crash_result(video: str, cfg: CurateConfig, work_dir: Path, why: str) -> VideoResult:
    res = VideoResult(video, video_key(video), cfg.digest(), [_error_record(video, video_key(video), labels.PROCESSING_ERROR, why)],
                      source_id=file_identity(video))  # fmt: skip
    write_json_atomic(result_paths(work_dir, res.video_key)[0], res.to_json(), indent=None)
    return res


def run_local(videos: list[str], cfg: CurateConfig, work_dir: Path) -> Iterator[VideoResult]:
    """Process ``videos`` with a pool of ``cfg.workers`` processes (0: in this process).

    A worker that dies (e.g. a decoder crash) breaks the pool; the unfinished videos are then run
    one per process, so the culprit gets an ``error`` row and the others complete.
    """
    if cfg.workers <= 0:
        for v in videos:
            yield process_video(v, cfg, work_dir)
        return
    ctx = mp.get_context("spawn")
    done: set[str] = set()
    try:
        with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(process_video, v, cfg, work_dir): v for v in videos}
            try:
                for fut in as_completed(futures):
                    v = futures[fut]
                    try:
                        res = fut.result()
                    except BrokenProcessPool:
                        raise
                    except Exception as e:  # noqa: BLE001 - e.g. an unpicklable result; record and go on
                        res = _crash_result(v, cfg, work_dir, f"{type(e).__name__}: {e}")
                    done.add(v)
                    yield res
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    except BrokenProcessPool:
        rest = [v for v in videos if v not in done]
        log.warning("a worker process died; running the %d unfinished videos one per process", len(rest))
        for v in rest:
            try:
                with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)) as pool:
                    res = pool.submit(process_video, v, cfg, work_dir).result()
            except BrokenProcessPool:
                res = _crash_result(v, cfg, work_dir, "the worker process died while processing this video (decoder crash?)")
            yield res


def finalize(out: Path, videos: list[str], cfg: CurateConfig) -> CurateSummary:
    """Pack shards, write ``shards/index.json`` and ``manifest.parquet`` from the finished videos."""
    work_dir = out / "work" / "videos"
    digest = cfg.digest()
    records: list[ClipRecord] = []
    parts: list[ShardPart] = []
    summary = CurateSummary(out, videos=len(videos))
    shard_of: dict[str, str] = {}
    results = []
    for v in videos:
        res = load_result(work_dir, v, digest)
        if res is None:
            continue
        results.append(res)
        if res.tar is not None:
            parts.append(ShardPart(res.video_key, work_dir / res.tar, res.tar_digest or ""))
    index = pack_shards(out, parts, int(cfg.shard_mb * 2**20), cfg.frame_format)
    for clip_id, e in index["clips"].items():
        shard_of[clip_id] = f"shards/{e['shard']}"
    for res in results:
        for r in res.records:
            if r.kind == "clip":
                summary.clips += 1
                summary.reasons[r.reason] = summary.reasons.get(r.reason, 0) + 1
                if r.decision == labels.KEEP:
                    summary.kept_clips += 1
                    r.shard = shard_of.get(r.clip_id, "")
            elif r.decision == labels.ERROR:
                summary.errors += 1
                summary.reasons[r.reason] = summary.reasons.get(r.reason, 0) + 1
            records.append(r)
    commit_dataset(out, index, records)
    return summary


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files a killed run left behind (``atomic_path`` names them ``.<stem>.<random><suffix>``)."""
    for folder in (out, out / "shards", out / "work" / "videos"):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name.startswith(".") and p.is_file() and p.suffix in (".json", ".tar", ".parquet"):
                    p.unlink(missing_ok=True)


def curate(inputs: Iterable[str | Path], out: str | Path, cfg: CurateConfig | None = None, on_result: Callable[[VideoResult], None] | None = None) -> CurateSummary:
    """Curate videos into a training dataset at ``out`` (see :mod:`see3d.curation.writer` for the
    layout). Finished videos of an earlier run with the same settings are reused.

    Args:
        inputs: video files, folders and ``.txt`` lists (see :func:`list_inputs`).
        out: output folder.
        cfg: settings (default :class:`CurateConfig`).
        on_result: called with each video's result as it finishes.
    """
    cfg = cfg or CurateConfig()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "output must be a folder")
    empty: list[str] = []
    videos = list_inputs(inputs, empty)
    if not videos:
        raise InputError(None, "no input videos given" + (f" ({', '.join(empty)} held none)" if empty else ""))
    work_dir = out / "work" / "videos"
    digest = cfg.digest()
    todo = [v for v in videos if load_result(work_dir, v, digest, reuse_errors=not cfg.retry_errors) is None]
    if todo:  # missing detector / flow models stop the run here, before anything is written (and load once)
        get_backends(cfg)
    work_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    save_config(cfg, out / "curate_config.json")
    log.info("%d videos, %d to process, %d finished earlier", len(videos), len(todo), len(videos) - len(todo))
    bar = progress(total=len(todo), desc="curate", unit="video", disable=None if cfg.progress else True)
    processed = 0
    try:
        if cfg.engine == "ray":
            from see3d.curation.ray_runner import run_ray

            results = run_ray(todo, cfg, work_dir)
        else:
            results = run_local(todo, cfg, work_dir)
        for res in results:
            processed += 1
            bar.update(1)
            if on_result is not None:
                on_result(res)
    finally:
        bar.close()
        summary = finalize(out, videos, cfg)  # also after Ctrl-C: what finished is packed
    summary.processed = processed
    summary.empty_inputs = empty
    return summary
