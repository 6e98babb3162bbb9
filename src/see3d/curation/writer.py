"""Writing the curated dataset: per-video sample tars, WebDataset shards, the index and the manifest.

Layout of the output folder::

    manifest.parquet            one row per input video and per clip (schema: records.MANIFEST_SCHEMA)
    shards/shard-000000.tar     WebDataset shards of the kept clips
    shards/index.json           clip_id -> shard, frame count, member names, byte offsets and sizes
    curate_config.json          the configuration of the last run
    work/videos/<video_key>.json    per-video result (records, timings): the resume marker
    work/videos/<video_key>.tar     per-video kept samples, packed into the shards

A sample (one kept clip) in a shard is the WebDataset group with key ``<clip_id>``:
``<clip_id>.json`` (metadata: video, times, sizes, statistics) and ``<clip_id>.<frame:04d>.jpg``
(or ``.webp``), frames in temporal order. ``webdataset.WebDataset("shards/shard-{000000..N}.tar")``
reads them as dicts with keys ``json``, ``0000.jpg``, ``0001.jpg``, ...

Every file is written to a temporary name and renamed, so a run killed at any moment leaves only
complete files. Tar members have fixed metadata (mtime 0, uid/gid 0), so outputs are byte-identical
for identical inputs and settings.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from see3d.curation.records import ClipRecord, records_to_table
from see3d.io.atomic import atomic_path, write_json_atomic

INDEX_FORMAT = "see3d-curation-shards"
INDEX_VERSION = 1


def encode_frame(img: np.ndarray, fmt: str = "jpg", quality: int = 90) -> bytes:
    """Encode an RGB uint8 ``(H, W, 3)`` frame as JPEG or WebP bytes."""
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if fmt == "jpg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == "webp":
        ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, int(quality)])
    else:
        raise ValueError(f"unknown frame format {fmt!r} (jpg | webp)")
    if not ok:
        raise RuntimeError(f"could not encode a {img.shape} frame as {fmt}")
    return buf.tobytes()


@dataclass
class ClipSample:
    """One kept clip ready to store: metadata and encoded frames (extension ``ext``)."""

    clip_id: str
    meta: dict
    frames: list[bytes]
    ext: str = "jpg"

    def members(self) -> list[tuple[str, bytes]]:
        """(name, bytes) tar members in order: the JSON first, then the frames."""
        out = [(f"{self.clip_id}.json", json.dumps(self.meta, sort_keys=True).encode("utf-8"))]
        out += [(f"{self.clip_id}.{i:04d}.{self.ext}", b) for i, b in enumerate(self.frames)]
        return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_samples_tar(path: str | Path, samples: list[ClipSample]) -> str:
    """Write ``samples`` to a tar atomically; returns the SHA-1 of its bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for s in samples:
            for name, data in s.members():
                _add(tar, name, data)
    data = buf.getvalue()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha1(data).hexdigest()


@dataclass
class ShardPart:
    """A per-video tar to pack, identified by its video key and content digest."""

    video_key: str
    tar: Path
    digest: str


def plan_shards(parts: list[ShardPart], max_bytes: int) -> list[list[ShardPart]]:
    """Greedy packing in the given (input) order: whole per-video tars, a new shard when the next
    part would pass ``max_bytes`` (a single larger part gets its own shard)."""
    shards: list[list[ShardPart]] = []
    size = 0
    for p in parts:
        n = p.tar.stat().st_size
        if not shards or (size + n > max_bytes and shards[-1]):
            shards.append([])
            size = 0
        shards[-1].append(p)
        size += n
    return shards


def _shard_members(path: Path) -> dict[str, dict]:
    """clip_id -> {"members": [[name, offset, size], ...]} from a shard's headers."""
    clips: dict[str, dict] = {}
    with tarfile.open(path, "r:") as tar:
        for m in tar:
            if not m.isfile():
                continue
            key = Path(m.name).name.split(".", 1)[0]
            clips.setdefault(key, {"members": []})["members"].append([m.name, m.offset_data, m.size])
    return clips


def _write_shard(path: Path, parts: list[ShardPart]) -> None:
    """Concatenate per-video tars into one shard, atomically."""
    with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as out:
        for p in parts:
            with tarfile.open(p.tar, "r:") as src:
                for m in src:
                    f = src.extractfile(m)
                    if f is not None:
                        _add(out, m.name, f.read())


def pack_shards(out_dir: str | Path, parts: list[ShardPart], max_bytes: int, frame_format: str = "jpg") -> dict:
    """(Re)build ``out_dir/shards`` from per-video tars and write ``shards/index.json`` atomically.

    Shards whose planned content (the same per-video tars, by digest) matches the existing index are
    kept as they are, so appending videos to a finished run only writes the new shards. Shards no
    longer in the plan are removed after the new index is in place. Returns the index.
    """
    shard_dir = Path(out_dir) / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    index_path = shard_dir / "index.json"
    old = {}
    if index_path.is_file():
        try:
            old = {s["name"]: s for s in json.loads(index_path.read_text()).get("shards", [])}
        except (json.JSONDecodeError, OSError, AttributeError, KeyError, TypeError):
            old = {}
    shards, clips = [], {}
    for i, group in enumerate(plan_shards(parts, max_bytes)):
        name = f"shard-{i:06d}.tar"
        path = shard_dir / name
        signature = [[p.video_key, p.digest] for p in group]
        prev = old.get(name)
        if not (prev and prev.get("parts") == signature and path.is_file() and path.stat().st_size == prev.get("bytes")):
            _write_shard(path, group)
        members = _shard_members(path)
        for clip_id, entry in members.items():
            clips[clip_id] = {"shard": name, "num_frames": len(entry["members"]) - 1, "members": entry["members"]}
        shards.append({"name": name, "bytes": path.stat().st_size, "parts": signature, "clips": list(members)})
    index = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "frame_format": frame_format, "shards": shards, "clips": clips}
    write_json_atomic(index_path, index, indent=None)
    keep = {s["name"] for s in shards}
    for stale in shard_dir.glob("shard-*.tar"):
        if stale.name not in keep:
            stale.unlink()
    return index


def write_manifest(path: str | Path, records: list[ClipRecord]) -> None:
    """Write ``manifest.parquet`` atomically (schema :data:`see3d.curation.records.MANIFEST_SCHEMA`)."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(records_to_table(records), tmp)
