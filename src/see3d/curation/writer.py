"""Writing the curated dataset: per-video sample tars, WebDataset shards, the index and the manifest.

Layout of the output folder::

    manifest.parquet            one row per input video and per clip (schema: records.MANIFEST_SCHEMA)
    shards/shard-000000-<digest>.tar  WebDataset shards of the kept clips (named by content, never rewritten)
    shards/index.json           clip_id -> shard, frame count, member names, byte offsets and sizes; the
                                dataset's ``generation`` (also in the manifest's schema metadata)
    curate_config.json          the configuration of the last run
    work/videos/<video_key>.json    per-video result (records, timings): the resume marker
    work/videos/<video_key>.tar     per-video kept samples, packed into the shards

A sample (one kept clip) in a shard is the WebDataset group with key ``<clip_id>``:
``<clip_id>.json`` (metadata: video, times, sizes, statistics) and ``<clip_id>.<frame:04d>.jpg``
(or ``.webp``), frames in temporal order. ``webdataset.WebDataset("shards/shard-{000000..N}.tar")``
reads them as dicts with keys ``json``, ``0000.jpg``, ``0001.jpg``, ...

Every file is written to a temporary name and renamed, so a run killed at any moment leaves only
complete files; the set (shards, manifest, index) switches at once when the index is replaced
(:func:`commit_dataset`), and readers detect a manifest of another generation. Tar members have fixed metadata (mtime 0, uid/gid 0), so outputs are byte-identical
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

from see3d.curation.records import ClipRecord, record_to_dict, records_to_table
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
    """Build the shards of ``out_dir/shards`` from per-video tars; returns the index (not yet written: see
    :func:`commit_dataset`).

    A shard's name carries a digest of its planned content (``shard-000003-<digest>.tar``), so a shard file
    is never rewritten in place: an existing one with the right name is kept as it is (appending videos to a
    finished run only writes the new shards), a changed one gets a new name beside the old, which the
    current index keeps pointing at until :func:`commit_dataset` switches it.
    """
    shard_dir = Path(out_dir) / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    shards, clips = [], {}
    for i, group in enumerate(plan_shards(parts, max_bytes)):
        signature = [[p.video_key, p.digest] for p in group]
        name = f"shard-{i:06d}-{hashlib.sha1(json.dumps(signature).encode()).hexdigest()[:10]}.tar"
        path = shard_dir / name
        if not path.is_file():  # shards are written atomically: an existing one is complete
            _write_shard(path, group)
        members = _shard_members(path)
        for clip_id, entry in members.items():
            clips[clip_id] = {"shard": name, "num_frames": len(entry["members"]) - 1, "members": entry["members"]}
        shards.append({"name": name, "bytes": path.stat().st_size, "parts": signature, "clips": list(members)})
    return {"format": INDEX_FORMAT, "version": INDEX_VERSION, "frame_format": frame_format, "shards": shards, "clips": clips}


def commit_dataset(out_dir: str | Path, index: dict, records: list[ClipRecord]) -> str:
    """Make ``index`` (from :func:`pack_shards`) and the manifest ``records`` the dataset, as one set.

    Both get the same ``generation`` id; the manifest is written first, then ``shards/index.json``, the one
    pointer readers follow (each atomically), then shards no index points at are removed. A run killed in
    between leaves the previous index with its shards intact, and a manifest whose generation differs
    from the index's, which :mod:`see3d.curation.reader` reports. Returns the generation id.
    """
    out_dir = Path(out_dir)
    generation = hashlib.sha1(json.dumps([index["shards"], [record_to_dict(r) for r in records]], sort_keys=True, default=str).encode()).hexdigest()[:16]
    index = dict(index, generation=generation)
    write_manifest(out_dir / "manifest.parquet", records, generation)
    write_json_atomic(out_dir / "shards" / "index.json", index, indent=None)
    keep = {s["name"] for s in index["shards"]}
    for stale in (out_dir / "shards").glob("shard-*.tar"):
        if stale.name not in keep:
            stale.unlink()
    return generation


MANIFEST_GENERATION_KEY = b"see3d_generation"
"""Key of the parquet schema metadata holding the dataset generation (equal to ``generation`` in index.json)."""


def write_manifest(path: str | Path, records: list[ClipRecord], generation: str | None = None) -> None:
    """Write ``manifest.parquet`` atomically (schema :data:`see3d.curation.records.MANIFEST_SCHEMA`), tagged with
    the dataset ``generation`` (see :func:`commit_dataset`)."""
    import pyarrow.parquet as pq

    table = records_to_table(records)
    if generation is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), MANIFEST_GENERATION_KEY: generation.encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
