"""Parts of a training run built from its :class:`TrainConfig`: the UNet (fresh, See3D, or SD-2.1 / MVDream
initialised), the training and sampling schedulers, the conditioning settings and the context encoders."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from see3d.errors import InputError, WeightsError
from see3d.io.outdir import replace_dir
from see3d.log import get_logger
from see3d.models.mv_unet import SD21_UNET_CONFIG
from see3d.train.config import TrainConfig

log = get_logger(__name__)


def build_noise_scheduler(cfg: TrainConfig):
    """DDPMScheduler for training: from ``cfg.scheduler`` (folder or json) or the official settings
    (scaled_linear 0.00085-0.012, 1000 steps, zero-SNR rescale); prediction type from the config."""
    from diffusers import DDPMScheduler

    if cfg.scheduler is not None:
        path = cfg.scheduler / "scheduler_config.json" if cfg.scheduler.is_dir() else cfg.scheduler
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(path, f"not a readable scheduler config ({e})") from e
        keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas")
        base = {k: raw[k] for k in keys if k in raw}
        if "prediction_type" in raw and raw["prediction_type"] != cfg.prediction_type:
            log.warning("%s says prediction_type=%s; training with %s as configured", path, raw["prediction_type"], cfg.prediction_type)
    else:
        base = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
    return DDPMScheduler(**base, prediction_type=cfg.prediction_type, rescale_betas_zero_snr=cfg.rescale_zero_snr, clip_sample=False)


def mask_channels(cfg: TrainConfig) -> int:
    """Mask channels of the UNet input: 1 (the official layout), or ``r * r`` with ``mask_reduce="pixel"``."""
    return cfg.pixel_unshuffle_factor**2 if cfg.mask_reduce == "pixel" else 1


def build_unet(cfg: TrainConfig, latent_ch: int, context_dim: int | None = None):
    """The UNet to train (float32), from ``cfg.init_from`` / ``cfg.unet_config`` / the small preset.

    ``init_from`` may be a See3D UNet folder with the right input width (loaded as is), a UNet folder or
    LDM checkpoint file with a 4-channel input (SD-2.1 / MVDream: widened, new channels zero).
    """
    from see3d.models.loading import find_weights_file, init_from_ldm_unet
    from see3d.models.mv_unet import MultiViewUNet, load_mv_unet, read_unet_config

    in_ch = 2 * latent_ch + mask_channels(cfg)
    if cfg.unet_config is not None:
        try:
            base = json.loads(Path(cfg.unet_config).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(cfg.unet_config, f"not a readable UNet config ({e})") from e
    elif cfg.preset == "small":
        from see3d.train.small_model import small_unet_config

        base = small_unet_config(latent_ch, context_dim=context_dim or 32)  # in_channels set below
    else:
        base = dict(SD21_UNET_CONFIG)
    if cfg.init_from is not None:
        src = Path(cfg.init_from)
        if not src.exists():
            raise WeightsError(src, "--init-from not found")
        if src.is_dir():
            folder_cfg = read_unet_config(src)
            if folder_cfg["in_channels"] == in_ch and folder_cfg["out_channels"] == latent_ch:
                model = load_mv_unet(src)  # an official See3D UNet (or a checkpoint of ours)
                return model.train()
            base, src = {**folder_cfg}, find_weights_file(src)
        base = {**base, "in_channels": in_ch, "out_channels": latent_ch}
        model = MultiViewUNet.from_config({k: v for k, v in base.items() if not k.startswith("_")})
        init_from_ldm_unet(model, src)
        return model.train()
    base = {**base, "in_channels": in_ch, "out_channels": latent_ch}
    return MultiViewUNet.from_config({k: v for k, v in base.items() if not k.startswith("_")}).train()


def condition_config(cfg: TrainConfig, vae):
    """The :class:`see3d.conditioning.TrainingConditionConfig` of a run.

    ``condition_noise=False`` is the paper's mask-only ablation (MV-UnPoseM): the condition is the masked
    clean latent with no time-dependent noise and no mixture. It is expressed with the same function by
    setting t' = t // 10^9 = 0 (the lowest noise level, std sqrt(1 - a_0) = 0.03) and a constant weight
    w(t') = 1.
    """
    from see3d.conditioning import MaskConfig, TrainingConditionConfig
    from see3d.conditioning.visual_condition import DecayParams

    factor = int(getattr(vae.config, "factor", 0) or 2 ** (len(getattr(vae.config, "block_out_channels", [0] * 4)) - 1))
    kw = {
        "cond_drop_prob": cfg.cond_dropout,
        "prediction_type": cfg.prediction_type,
        "mask_upscale": factor,
        "mask_reduce": cfg.mask_reduce,
        "late_timestep_prob": cfg.late_timesteps,
        "hole_loss_weight": cfg.hole_loss_weight,
        "masks": MaskConfig(warp_like_prob=cfg.warp_like_masks),
    }
    if cfg.mask_reduce == "any" and cfg.latent_space != "pixel_unshuffle":
        log.warning("mask_reduce 'any' with a KL VAE: See3DPipeline gives KL-VAE models nearest-pixel masks at inference, not whole blocks")
    if not cfg.condition_noise:
        kw.update(time_ratio=10**9, decay=DecayParams(t_peak=1.0, t_end=0.0, value=1.0, rate=0.0))
    return TrainingConditionConfig(**kw)


def inference_scheduler(noise_scheduler, cfg: TrainConfig):
    """The DDIM sampler matching the training schedule (the See3D pipeline's trailing timesteps)."""
    from see3d.pipelines.schedule import make_scheduler

    c = dict(noise_scheduler.config)
    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type")
    conf = {k: c[k] for k in keys if k in c}
    conf.update(steps_offset=1, clip_sample=False, set_alpha_to_one=False, rescale_betas_zero_snr=cfg.rescale_zero_snr, timestep_scaling="trailing")
    return make_scheduler(conf, official=False)


def with_random_encoders(cfg: TrainConfig, accelerator) -> TrainConfig:
    """Write (once, main process) tiny random CLIP encoders into <output>/encoders and point the config at them."""
    from see3d.pipelines.tiny import write_tiny_see3d

    folder = cfg.output_dir / "encoders"
    if accelerator.is_main_process and not (folder / "text_encoder" / "config.json").is_file():
        tmp = folder.with_name(".tmp-encoders")
        shutil.rmtree(tmp, ignore_errors=True)
        write_tiny_see3d(tmp, seed=cfg.seed, variants=())
        replace_dir(tmp, folder)
    accelerator.wait_for_everyone()
    return dataclasses.replace(
        cfg, tokenizer=folder / "tokenizer", text_encoder=folder / "text_encoder", image_encoder=folder / "CLIP-ViT-H-14-laion2B-s32B-b79K"
    )
