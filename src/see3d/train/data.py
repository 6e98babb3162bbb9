"""Training samples from pose-free clips: N frames per clip, S of them clean references, shuffled.

Every random choice is a pure function of ``(seed, global sample index)``: which clip, which frames,
which references, which order. The global sample index of a batch slot is fixed by the optimizer step,
micro-step, process rank and slot (:func:`sample_index`), so a run resumed at step k reads exactly the
batches an uninterrupted run would have read, with any number of DataLoader workers.

The clips themselves (sources, decoding, resizing) are :mod:`see3d.train.clips`; cached latents are read
through :mod:`see3d.train.latent_cache`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from see3d.errors import InputError
from see3d.log import get_logger
from see3d.train.clips import ClipRef, load_clip_frames, resize_frames, to_model_pixels
from see3d.train.latent_cache import cached_length, read_cached

log = get_logger(__name__)


# ---------------------------------------------------------------------------------------------- choices
def sample_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """Independent generator for global sample ``index`` (``stream`` separates purposes)."""
    return np.random.default_rng([int(seed), int(stream), int(index)])


def choose_frames(rng: np.random.Generator, num_available: int, n: int, mode: str = "strided", min_stride: int = 1, max_stride: int = 4) -> np.ndarray:
    """Indices (n,) into a clip of ``num_available`` frames, in temporal order.

    strided: a constant stride s ~ U{min_stride..max_stride} (reduced so the frames fit), random start.
    random: a sorted subset of distinct frames. Raises ValueError when the clip has fewer than n frames.
    """
    if num_available < n:
        raise ValueError(f"clip has {num_available} frames, fewer than the {n} needed")
    if mode == "random":
        return np.sort(rng.choice(num_available, size=n, replace=False))
    if mode != "strided":
        raise ValueError(f"unknown frame sampling mode {mode!r}")
    hi = min(max_stride, (num_available - 1) // max(n - 1, 1))
    lo = min(min_stride, hi)
    stride = int(rng.integers(lo, hi + 1))
    start = int(rng.integers(0, num_available - (n - 1) * stride))
    return start + stride * np.arange(n)


def choose_refs(rng: np.random.Generator, n: int, num_refs_choices: Sequence[int], shuffle: bool = True) -> tuple[np.ndarray, int]:
    """Pick S references among n frames and an order.

    Returns ``(order (n,), S)``: output position i shows chosen frame ``order[i]``; positions ``< S`` are
    the references (the layout the conditioning and pipelines use). With ``shuffle`` the references and
    the targets each come in random order, so the model sees an unordered set (it has no frame-order
    embedding and its attention is permutation-equivariant, so this equals a full shuffle); without it
    both keep temporal order.
    """
    s = int(rng.choice(np.asarray(num_refs_choices)))
    refs = np.sort(rng.choice(n, size=s, replace=False))
    tgts = np.setdiff1d(np.arange(n), refs)
    if shuffle:
        refs, tgts = rng.permutation(refs), rng.permutation(tgts)
    return np.concatenate([refs, tgts]).astype(np.int64), s


# ---------------------------------------------------------------------------------------------- dataset
@dataclass(frozen=True)
class ClipSampling:
    """How :class:`ClipDataset` turns a clip into a sample (the fields of :class:`~see3d.train.config.TrainConfig`
    of the same names document them)."""

    num_frames: int  # N frames per sample
    num_refs: Sequence[int] = (1,)  # choices of S, the clean references among the N
    resolution: int = 512  # samples are R x R pixels
    seed: int = 0
    frame_sampling: str = "strided"  # see choose_frames
    min_stride: int = 1
    max_stride: int = 4
    shuffle_frames: bool = True  # see choose_refs
    resize_mode: str = "crop"  # see resize_frames
    max_clip_frames: int | None = 200  # decode at most this many frames of a clip
    preload: bool = False  # keep decoded clips in memory (small sets)

    @classmethod
    def from_train_config(cls, cfg) -> ClipSampling:
        """The sampling a :class:`~see3d.train.config.TrainConfig` asks for."""
        return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})


class ClipDataset(torch.utils.data.Dataset):
    """Map-style dataset over *global sample indices* (any int >= 0).

    Item ``g``: clip ``perm_e[g mod C]`` where ``perm_e`` is the seeded permutation of epoch e = g // C,
    then frames, references and order from :func:`sample_rng` (seed, g). Returns a dict:
    ``pixels`` float32 (N, 3, R, R) in [-1, 1], ``num_refs`` int S (frames ``< S`` are the clean
    references), ``frame_index`` int64 (N,) (indices into the clip, in output order), ``clip`` str, ``index`` int. With ``latent_cache_dir``
    ``pixels`` is replaced by the cached ``latent_mean`` / ``latent_std`` (N, C, h, w) (and
    ``image_embeds`` (N, D) when cached).

    A clip that fails to decode or is too short is logged once and replaced, deterministically, by the
    next usable clip of the same epoch's permutation.
    """

    def __init__(self, clips: Sequence[ClipRef], sampling: ClipSampling, latent_cache_dir: Path | None = None):
        if not clips:
            raise ValueError("ClipDataset needs at least one clip")
        self.clips = list(clips)
        self.sampling = sampling
        self.latent_cache_dir = latent_cache_dir
        self._cache: dict[int, np.ndarray] = {}
        self._bad: set[int] = set()
        if sampling.preload and latent_cache_dir is None:
            from see3d.log import progress

            for i in progress(range(len(self.clips)), desc="decode clips", total=len(self.clips)):
                self._frames(i)

    def __len__(self) -> int:  # one epoch; indices beyond it are valid too
        return len(self.clips)

    def _perm(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([int(self.sampling.seed), 7, int(epoch)]).permutation(len(self.clips))

    def clip_for_index(self, g: int) -> int:
        """Clip index of global sample ``g`` (a fresh seeded permutation every epoch)."""
        c = len(self.clips)
        return int(self._perm(int(g) // c)[int(g) % c])

    def _frames(self, i: int) -> np.ndarray:
        if i in self._cache:
            return self._cache[i]
        sp = self.sampling
        frames = resize_frames(load_clip_frames(self.clips[i], sp.max_clip_frames), sp.resolution, sp.resize_mode)
        if self.sampling.preload:  # keep decoded clips (small sets); large sets decode per sample
            self._cache[i] = frames
        return frames

    def __getitem__(self, g: int) -> dict:
        sp, c = self.sampling, len(self.clips)
        perm = self._perm(int(g) // c)
        gi = int(g)
        for k in range(c):
            i = int(perm[(gi + k) % c])
            if i in self._bad:
                continue
            try:
                if self.latent_cache_dir is not None:
                    length = cached_length(self.latent_cache_dir, self.clips[i].key)
                else:
                    frames = self._frames(i)
                    length = len(frames)
                idx = choose_frames(sample_rng(sp.seed, gi, 1), length, sp.num_frames, sp.frame_sampling, sp.min_stride, sp.max_stride)
            except (InputError, ValueError) as e:
                log.warning("skipping training clip %s: %s", self.clips[i].path, e)
                self._bad.add(i)
                continue
            order, num_refs = choose_refs(sample_rng(sp.seed, gi, 2), sp.num_frames, sp.num_refs, sp.shuffle_frames)
            chosen = idx[order]
            item = {
                "num_refs": num_refs,
                "frame_index": torch.from_numpy(chosen.astype(np.int64)),
                "clip": self.clips[i].key,
                "index": int(g),
            }
            if self.latent_cache_dir is not None:
                item.update({("latent_" + name if name in ("mean", "std") else name): v for name, v in read_cached(self.latent_cache_dir, self.clips[i].key, chosen).items()})
            else:
                item["pixels"] = to_model_pixels(frames[chosen])
            return item
        raise InputError(self.clips[0].path.parent, f"no clip is usable: every clip failed to decode or has fewer than {sp.num_frames} frames")


def sample_index(step: int, micro: int, rank: int, slot: int, accum: int, world: int, batch: int) -> int:
    """Global sample index of batch ``slot`` on process ``rank`` at optimizer ``step``, micro-step ``micro``."""
    return ((step * accum + micro) * world + rank) * batch + slot


class StepBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields the index lists of micro-batches from optimizer step ``start_step`` to ``max_steps``, for one rank."""

    def __init__(self, start_step: int, max_steps: int, batch_size: int, accum: int = 1, rank: int = 0, world: int = 1):
        self.start_step, self.max_steps, self.batch_size = start_step, max_steps, batch_size
        self.accum, self.rank, self.world = accum, rank, world

    def __len__(self) -> int:
        return max(self.max_steps - self.start_step, 0) * self.accum

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.max_steps):
            for m in range(self.accum):
                yield [sample_index(step, m, self.rank, b, self.accum, self.world, self.batch_size) for b in range(self.batch_size)]


def collate(items: list[dict]) -> dict:
    """Stack samples: pixels (B, N, 3, R, R) (or latent_mean / latent_std (B, N, C, h, w) and image_embeds
    (B, N, D) from a latent cache), frame_index (B, N); num_refs, clip keys and indices as lists."""
    keys = [k for k in ("pixels", "latent_mean", "latent_std", "image_embeds", "frame_index") if k in items[0]]
    out = {k: torch.stack([it[k] for it in items]) for k in keys}
    out["num_refs"] = [it["num_refs"] for it in items]
    out["clip"] = [it["clip"] for it in items]
    out["index"] = [it["index"] for it in items]
    return out
