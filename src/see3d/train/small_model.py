"""The small CPU configuration: a tiny multi-view UNet at 64x64 in a lossless pixel-unshuffle latent space.

The latent space is :class:`see3d.models.pixel_unshuffle_vae.PixelUnshuffleVAE` (re-exported here, so that
pipeline folders exported before it moved still load).
"""

from __future__ import annotations

from pathlib import Path

from see3d.models.pixel_unshuffle_vae import PixelUnshuffleVAE
from see3d.train.config import TrainConfig

__all__ = ["PixelUnshuffleVAE", "pixel_stats", "small_train_config", "small_unet_config"]


def pixel_stats(clips, resolution: int, resize_mode: str = "crop", max_clip_frames: int | None = 200, n_clips: int = 16, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of the pixels (in [-1, 1]) of up to ``n_clips`` clips (a seeded choice)."""
    import numpy as np

    from see3d.errors import InputError
    from see3d.train.clips import load_clip_frames, resize_frames

    rng = np.random.default_rng([int(seed), 11])
    picks = rng.permutation(len(clips))[:n_clips]
    s1 = s2 = n = 0.0
    for i in picks:
        try:
            x = resize_frames(load_clip_frames(clips[int(i)], max_clip_frames), resolution, resize_mode).astype(np.float64) / 127.5 - 1.0
        except InputError:
            continue
        s1, s2, n = s1 + x.sum(), s2 + (x * x).sum(), n + x.size
    if n == 0:
        raise InputError(None, "no readable clip to measure the pixel statistics")
    mean = s1 / n
    return float(mean), float(max(np.sqrt(max(s2 / n - mean * mean, 0.0)), 1e-3))


def small_unet_config(latent_channels: int = 48, model_channels: int = 64, context_dim: int = 32, mask_channels: int = 16) -> dict:
    """Constructor kwargs of a tiny :class:`see3d.models.mv_unet.MultiViewUNet` for 16x16 latents.

    Three levels (16, 8, 4) with multi-view attention at 16 and 8 (the SD-2.1 pattern at small scale).
    Input channels: latent + condition latent + mask (16: one per pixel of the 4x4 block, ``mask_reduce="pixel"``).
    """
    return {
        "image_size": 16,
        "in_channels": 2 * latent_channels + mask_channels,
        "model_channels": model_channels,
        "out_channels": latent_channels,
        "num_res_blocks": 1,
        "attention_resolutions": [1, 2],
        "channel_mult": [1, 2, 2],
        "num_head_channels": 32,
        "transformer_depth": 1,
        "context_dim": context_dim,
    }


def small_train_config(data: str | Path, output_dir: str | Path, **overrides) -> TrainConfig:
    """The CPU reproduction: 64x64, 5 frames (1 reference), pixel-unshuffle r=4, tiny UNet, context from tiny
    random CLIP encoders (written by :func:`see3d.pipelines.tiny.write_tiny_see3d`), exported as a pipeline.

    LR and EMA are raised for a short run (the paper's 1e-5 / 0.9999 are for 100K+ steps). The model predicts
    the clean latent (``prediction_type="sample"``) rather than the official v: measured here, after 8 CPU
    minutes v-prediction samples are still covered in noise (12.8 dB on validation scenes) while x0-prediction
    gives 17.8 dB, because an undertrained v-model cannot tell the last steps' small noise from image detail.
    Half of the training holes are warp-shaped (side bands, disocclusion crescents). Masks are per pixel
    (``mask_reduce="pixel"``: the UNet gets one mask channel per pixel of the 4x4 block and only hole pixels are
    zeroed in the condition), so a block that a warp's hole cuts through still shows its valid pixels; with whole-
    block holes the model lost 0.2-0.9 dB to Telea on the hole pixels next to valid ones (while winning by 1.2-1.7 dB
    farther inside the holes). Half of the clips train at late timesteps (``late_timesteps=0.5``: t in
    [900, 1000)), where the 1-2 step samplers of the evaluation and demo work; it removed most of the grain that
    cost SSIM against Telea. The loss adds ``0.5 * (1 - SSIM)`` of the decoded target frames
    (``ssim_loss_weight=0.5``; +0.003 SSIM keeping the warped pixels and +0.02-0.03 regenerating, at the same
    PSNR or better). Measured on validation scenes in ``docs/training.md``.
    """
    cfg = dict(
        data=Path(data),
        output_dir=Path(output_dir),
        preset="small",
        num_frames=5,
        num_refs=[1],
        resolution=64,
        max_stride=3,
        latent_space="pixel_unshuffle",
        pixel_unshuffle_factor=4,
        context="encoders",
        random_encoders=True,
        export_pipeline=True,
        preload=True,
        batch_size=2,
        learning_rate=4e-4,
        lr_scheduler="constant_with_warmup",
        lr_warmup_steps=100,
        weight_decay=0.0,
        ema_decay=0.995,
        prediction_type="sample",
        warp_like_masks=0.5,
        mask_reduce="pixel",
        late_timesteps=0.5,
        ssim_loss_weight=0.5,
        max_steps=3000,
        checkpoint_every=250,
        log_every=10,
    )
    cfg.update(overrides)
    if cfg["latent_space"] != "pixel_unshuffle" and "mask_reduce" not in overrides:
        cfg["mask_reduce"] = "nearest"  # per-pixel masks need pixel-unshuffle latents; a KL VAE takes the official masks
    if (cfg["latent_space"] != "pixel_unshuffle" or cfg["prediction_type"] == "epsilon") and "ssim_loss_weight" not in overrides:
        cfg["ssim_loss_weight"] = 0.0  # the SSIM term decodes every step: pixel-unshuffle only, and needs a z0 estimate
    return TrainConfig(**cfg)
