"""Tiny training fixtures shared by the tests/test_train*.py files (a few videos, a very small UNet config)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from see3d.io.video import write_video

TINY_UNET = {
    "image_size": 8,
    "in_channels": 97,  # overwritten by the trainer from the latent width
    "model_channels": 32,
    "out_channels": 48,
    "num_res_blocks": 1,
    "attention_resolutions": [1, 2],
    "channel_mult": [1, 2],
    "num_head_channels": 16,
    "transformer_depth": 1,
    "context_dim": 16,
}


def make_videos(folder: Path, n: int = 3, frames: int = 8, size: int = 32, seed: int = 0, smooth: bool = False) -> Path:
    """``n`` clips of a texture sliding sideways (a camera pan), ``size`` x ``size`` pixels; ``smooth``
    textures are low-frequency (easy to denoise, so a few steps visibly lower the loss)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for c in range(n):
        if smooth:
            tex = cv2.resize((rng.random((4, 8, 3)) * 255).astype(np.uint8), (2 * size, size), interpolation=cv2.INTER_CUBIC)
        else:
            tex = (rng.random((size // 2, size, 3)) * 255).astype(np.uint8)
            tex = np.repeat(np.repeat(tex, 2, 0), 2, 1)  # (size, 2 size)
        write_video(folder / f"clip{c}.mp4", [np.roll(tex, -2 * i, axis=1)[:, :size] for i in range(frames)], fps=10)
    return folder


def tiny_unet_config(path: Path) -> Path:
    path.write_text(json.dumps(TINY_UNET))
    return path


def tiny_config(data: Path, out: Path, unet_config: Path, **kw):
    """The TrainConfig that ``see3d train --preset small`` + :func:`tiny_overrides` options gives."""
    from see3d.train.small_model import small_train_config

    o = tiny_overrides(data, out, unet_config, **kw)
    return small_train_config(o.pop("data"), o.pop("output_dir"), **o)


def tiny_overrides(data: Path, out: Path, unet_config: Path, **kw) -> dict:
    """Options of a seconds-long small-preset run (32x32, 4 frames, pixel-unshuffle r=4 -> 8x8x48 latents)."""
    cfg = dict(
        data=data,
        output_dir=out,
        preset="small",
        unet_config=unet_config,
        resolution=32,
        num_frames=4,
        num_refs=[1, 2],
        latent_space="pixel_unshuffle",
        pixel_unshuffle_factor=4,
        context="zero",
        context_tokens=2,
        export_pipeline=False,
        preload=True,
        batch_size=2,
        learning_rate=1e-3,
        lr_warmup_steps=2,
        lr_scheduler="constant_with_warmup",
        ema_decay=0.9,
        max_steps=4,
        checkpoint_every=2,
        log_every=1,
        seed=1,
    )
    cfg.update(kw)
    return cfg
