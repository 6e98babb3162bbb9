"""Latent cache: encode every frame of every clip once, keep the scaled VAE posterior on disk.

One safetensors file per clip, ``<cache_dir>/<clip key>.safetensors``:
``mean``, ``std`` float16 (T, C, h, w) (scaled posterior, see :mod:`see3d.train.encoders`) and, when an
image encoder is used, ``image_embeds`` float16 (T, D). Files are written atomically, so a killed build
resumes where it stopped; a file whose metadata (resolution, resize mode, VAE) differs is rebuilt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from see3d.errors import InputError
from see3d.io.atomic import atomic_path
from see3d.log import get_logger, progress
from see3d.train.clips import ClipRef, load_clip_frames, resize_frames, to_model_pixels
from see3d.train.encoders import encode_posterior

log = get_logger(__name__)


def cache_file(cache_dir: Path, key: str) -> Path:
    """File of clip ``key`` (characters outside [A-Za-z0-9._-] become '_')."""
    return Path(cache_dir) / (re.sub(r"[^A-Za-z0-9._-]", "_", key) + ".safetensors")


def _meta(resolution: int, resize_mode: str, vae_tag: str, with_image: bool) -> dict[str, str]:
    return {"resolution": str(resolution), "resize_mode": resize_mode, "vae": vae_tag, "image_embeds": str(with_image)}


def _valid(path: Path, meta: dict[str, str]) -> bool:
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() == meta
    except Exception:  # unreadable / half-written by a foreign tool: rebuild
        return False


@torch.no_grad()
def build_latent_cache(
    clips: Sequence[ClipRef],
    cache_dir: Path,
    vae,
    resolution: int,
    resize_mode: str = "crop",
    max_clip_frames: int | None = 200,
    context=None,
    rank: int = 0,
    world: int = 1,
    chunk: int = 8,
    device: torch.device | str = "cpu",
    vae_tag: str = "",
) -> int:
    """Encode the clips ``i % world == rank`` that are not cached yet; returns how many were written.

    ``context``: a :class:`see3d.train.encoders.ContextEncoder` with an image model, to cache
    per-frame CLIP image embeddings too. Clips that fail to decode are logged and skipped.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with_image = context is not None and context.image_model is not None
    meta = _meta(resolution, resize_mode, vae_tag, with_image)
    todo = [c for i, c in enumerate(clips) if i % world == rank and not _valid(cache_file(cache_dir, c.key), meta)]
    written = 0
    for clip in progress(todo, desc="cache latents", total=len(todo)):
        try:
            frames = resize_frames(load_clip_frames(clip, max_clip_frames), resolution, resize_mode)
        except InputError as e:
            log.warning("latent cache: skipping %s: %s", clip.path, e)
            continue
        means, stds, embeds = [], [], []
        for s in range(0, len(frames), chunk):
            px = to_model_pixels(frames[s : s + chunk]).to(device)
            m, sd = encode_posterior(vae, px)
            means.append(m.half().cpu())
            stds.append(sd.half().cpu())
            if with_image:
                embeds.append(context.image_embeds(px).half().cpu())
        tensors = {"mean": torch.cat(means).contiguous(), "std": torch.cat(stds).contiguous()}
        if with_image:
            tensors["image_embeds"] = torch.cat(embeds).contiguous()
        with atomic_path(cache_file(cache_dir, clip.key)) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        written += 1
    return written


def read_cached(cache_dir: Path, key: str, frame_index=None) -> dict[str, torch.Tensor]:
    """Cached tensors of clip ``key``, optionally only frames ``frame_index`` (float32)."""
    path = cache_file(cache_dir, key)
    if not path.is_file():
        raise InputError(path, "clip is missing from the latent cache")
    out = {}
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name)
            out[name] = (t if frame_index is None else t[torch.as_tensor(frame_index)]).float()
    return out


def cached_length(cache_dir: Path, key: str) -> int:
    """Number of frames T cached for clip ``key``."""
    path = cache_file(cache_dir, key)
    if not path.is_file():
        raise InputError(path, "clip is missing from the latent cache")
    with safe_open(str(path), framework="pt") as f:
        return int(f.get_slice("mean").get_shape()[0])
