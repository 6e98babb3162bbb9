"""Reading a curated dataset (what the trainer uses): the kept clips as uint8 frames + metadata.

Random access goes through ``shards/index.json`` (byte offsets of every member), sequential
iteration reads the shards in order. See :mod:`see3d.curation.writer` for the layout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from see3d.errors import InputError


@dataclass(frozen=True)
class ClipEntry:
    """A kept clip: ``key`` is its clip_id; ``shard`` the tar holding it."""

    key: str
    shard: Path
    num_frames: int
    members: tuple[tuple[str, int, int], ...]  # (name, byte offset of the data, size)


def _load_index(root: Path) -> dict:
    path = root / "shards" / "index.json"
    if not path.is_file():
        raise InputError(root, "not a curated dataset (shards/index.json missing; run `see3d curate`)")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"unreadable shard index ({e})") from e
    if not isinstance(index, dict) or "clips" not in index or "shards" not in index:
        raise InputError(path, "not a see3d shard index")
    manifest = root / "manifest.parquet"
    if "generation" in index and manifest.is_file() and manifest_generation(manifest) != index["generation"]:
        raise InputError(root, "manifest.parquet and shards/index.json come from different runs (a run was stopped while "
                               "finishing); rerun the same `see3d curate` command to complete it")  # fmt: skip
    return index


def manifest_generation(path: str | Path) -> str | None:
    """The dataset generation a ``manifest.parquet`` was written for (None for older manifests)."""
    import pyarrow.parquet as pq

    from see3d.curation.writer import MANIFEST_GENERATION_KEY

    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, ValueError) as e:
        raise InputError(path, f"unreadable manifest ({e})") from e
    g = meta.get(MANIFEST_GENERATION_KEY)
    return None if g is None else g.decode()


def read_manifest(root: str | Path):
    """The manifest of a curated dataset as a ``pyarrow.Table``, after checking it belongs to the current index."""
    import pyarrow.parquet as pq

    root = Path(root)
    _load_index(root)
    return pq.read_table(root / "manifest.parquet")


def _shard(root: Path, index: dict, name: str) -> Path:
    """The shard file ``name`` of ``index``, checked against the size the index recorded."""
    sizes = {s["name"]: s["bytes"] for s in index["shards"]}
    shard = root / "shards" / name
    if name not in sizes or not shard.is_file() or shard.stat().st_size != sizes[name]:
        raise InputError(shard, "shard missing or changed since the index was written (rerun `see3d curate`)")
    return shard


def list_accepted(root: str | Path) -> list[ClipEntry]:
    """The kept clips of a curated dataset, in shard order (input-video order, clip order)."""
    root = Path(root)
    index = _load_index(root)
    out = []
    for s in index["shards"]:
        shard = _shard(root, index, s["name"])
        for clip_id in s["clips"]:
            e = index["clips"][clip_id]
            out.append(ClipEntry(clip_id, shard, int(e["num_frames"]), tuple((m[0], int(m[1]), int(m[2])) for m in e["members"])))
    return out


def _decode(data: bytes, name: str, shard: Path) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(shard, f"member {name} is not a decodable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _assemble(entry_key: str, files: dict[str, bytes], shard: Path) -> tuple[np.ndarray, dict]:
    meta_name = f"{entry_key}.json"
    if meta_name not in files:
        raise InputError(shard, f"clip {entry_key} has no metadata member")
    try:
        meta = json.loads(files.pop(meta_name))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(shard, f"clip {entry_key}: metadata member is not JSON; the index does not match the shard (rerun `see3d curate`)") from e
    names = sorted(files)  # <clip_id>.<frame:04d>.<ext>: zero-padded, so name order = frame order
    frames = np.stack([_decode(files[n], n, shard) for n in names])
    return frames, meta


def read_entry(entry: ClipEntry) -> tuple[np.ndarray, dict]:
    """Frames uint8 ``(T, H, W, 3)`` RGB and metadata of one clip (random access by byte offset)."""
    files = {}
    with open(entry.shard, "rb") as f:
        for name, offset, size in entry.members:
            f.seek(offset)
            files[name] = f.read(size)
    return _assemble(entry.key, files, entry.shard)


def read_clip(root: str | Path, key: str) -> tuple[np.ndarray, dict]:
    """Frames uint8 ``(T, H, W, 3)`` RGB and metadata of clip ``key`` of the dataset at ``root``."""
    root = Path(root)
    index = _load_index(root)
    e = index["clips"].get(key)
    if e is None:
        raise InputError(root, f"no kept clip {key!r} in this dataset")
    entry = ClipEntry(key, _shard(root, index, e["shard"]), int(e["num_frames"]), tuple((m[0], int(m[1]), int(m[2])) for m in e["members"]))
    return read_entry(entry)


def iter_clips(root: str | Path) -> Iterator[tuple[str, np.ndarray, dict]]:
    """Stream every kept clip as ``(clip_id, frames (T, H, W, 3) uint8, metadata)``, shard by shard."""
    import tarfile

    for shard in dict.fromkeys(e.shard for e in list_accepted(root)):
        key, files = None, {}
        with tarfile.open(shard, "r:") as tar:
            for m in tar:
                f = tar.extractfile(m)
                if f is None:
                    continue
                k = Path(m.name).name.split(".", 1)[0]
                if key is not None and k != key:
                    yield (key, *_assemble(key, files, shard))
                    files = {}
                key = k
                files[m.name] = f.read()
        if key is not None and files:
            yield (key, *_assemble(key, files, shard))


class CurationDataset:
    """Map-style view of the kept clips: ``ds[i]`` or ``ds["clip_id"]`` -> (frames, metadata)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.entries = list_accepted(self.root)
        self._by_key = {e.key: e for e in self.entries}

    def __len__(self) -> int:
        return len(self.entries)

    def keys(self) -> list[str]:
        return [e.key for e in self.entries]

    def __getitem__(self, item: int | str) -> tuple[np.ndarray, dict]:
        entry = self._by_key[item] if isinstance(item, str) else self.entries[item]
        return read_entry(entry)

    def __iter__(self) -> Iterator[tuple[np.ndarray, dict]]:
        for _, frames, meta in iter_clips(self.root):
            yield frames, meta
