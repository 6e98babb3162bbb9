"""The See3D training loop (accelerate): pose-free clips -> multi-view UNet with the visual condition.

One micro-step, per clip of N shuffled frames (S clean references, N - S targets):

1. latents ``z0 (N, C, h, w)`` from the frozen VAE (or the latent cache / pixel-unshuffle space);
2. :func:`see3d.conditioning.build_training_inputs` (the model engineer's single implementation of the
   paper's condition): ``t ~ U{0..T-1}`` per clip, ``x_t``, random irregular masks on targets, condition
   noised at t // 5, decay-weight mixture, references clean, condition dropout for guidance, and the
   eps / v target;
3. ``loss = mean over target frames of || unet([x_t; V_t; M], t, context) - target ||²``
   (:func:`see3d.conditioning.masked_mse`).

Determinism: data choices are keyed on the global sample index (:mod:`see3d.train.data`); the torch RNG
and the conditioning generator are re-seeded from (seed, step, micro-step, rank) before every
micro-step, so a resumed run repeats an uninterrupted one exactly (same hardware and settings).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from see3d.config import config_to_dict, save_config
from see3d.errors import InputError, WeightsError
from see3d.io.atomic import write_text_atomic
from see3d.log import get_logger, progress
from see3d.train.checkpoint import ema_weights, latest_checkpoint, load_checkpoint, replace_dir, save_checkpoint, save_model_folder
from see3d.train.config import TrainConfig
from see3d.train.data import ClipDataset, StepBatchSampler, collate, find_clips
from see3d.train.encoders import ContextEncoder, encode_posterior, latent_channels, load_vae, sample_posterior

log = get_logger(__name__)

# SD-2.1-base / MVDream UNet hyper-parameters with the See3D 9-channel input (spec: official_release §1.1).
SD21_UNET_CONFIG = {
    "image_size": 32,
    "in_channels": 9,
    "model_channels": 320,
    "out_channels": 4,
    "num_res_blocks": 2,
    "attention_resolutions": [4, 2, 1],
    "channel_mult": [1, 2, 4, 4],
    "num_head_channels": 64,
    "transformer_depth": 1,
    "context_dim": 1024,
}
LOSS_LOG = "loss_log.jsonl"


@dataclass
class TrainResult:
    """What :func:`train` did: the exported UNet folder (main process; None elsewhere), the last step, this
    run's (step, loss) pairs (loss averaged over processes) and this process's trained (non-EMA) UNet."""

    output_dir: Path
    unet_dir: Path | None
    step: int
    finished: bool
    losses: list[tuple[int, float]] = field(default_factory=list)
    unet: torch.nn.Module | None = None


# --------------------------------------------------------------------------------------------- parts
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


def build_unet(cfg: TrainConfig, latent_ch: int, context_dim: int | None = None):
    """The UNet to train (float32), from ``cfg.init_from`` / ``cfg.unet_config`` / the small preset.

    ``init_from`` may be a See3D UNet folder with the right input width (loaded as is), a UNet folder or
    LDM checkpoint file with a 4-channel input (SD-2.1 / MVDream: widened, new channels zero).
    """
    from see3d.models import MultiViewUNet, init_from_ldm_unet, load_mv_unet
    from see3d.models.loading import find_weights_file, read_unet_config

    in_ch = 2 * latent_ch + 1
    if cfg.unet_config is not None:
        try:
            base = json.loads(Path(cfg.unet_config).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(cfg.unet_config, f"not a readable UNet config ({e})") from e
    elif cfg.preset == "small":
        from see3d.train.small_model import small_unet_config

        base = small_unet_config(latent_ch, context_dim=context_dim or 32)
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


def step_seed(seed: int, step: int, micro: int, rank: int) -> int:
    """Seed of the torch RNG for one micro-step (distinct per step, micro-step and process)."""
    return (((int(seed) * 1_000_003 + int(step)) * 1_009 + int(micro)) * 65_537 + int(rank)) % (2**63 - 1)


# --------------------------------------------------------------------------------------------- loop
def _make_accelerator(cfg: TrainConfig):
    import os

    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),  # on CPU accelerate only sets up gloo multi-process training with cpu=True
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        log_with="tensorboard",
        project_config=ProjectConfiguration(project_dir=str(cfg.output_dir), logging_dir=str(cfg.output_dir / "logs")),
    )
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes != launched:
        raise RuntimeError(f"launched with WORLD_SIZE={launched} but accelerate set up {accelerator.num_processes} process(es)")
    return accelerator


def _truncate_loss_log(path: Path, step: int) -> None:
    """Drop loss-log lines after ``step`` (they belong to a run that was killed before its next checkpoint)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    write_text_atomic(path, "".join(ln + "\n" for ln in keep))


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) as ``cfg`` says; returns a :class:`TrainResult`.

    Run under ``accelerate launch`` or ``torchrun`` for several processes/GPUs; a plain call trains in
    one process. Stops at ``max_steps`` (exports ``unet/``), or earlier at ``stop_after_steps`` /
    ``stop_after_minutes`` (checkpoint + export of the current weights).
    """
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    cfg = cfg.resolved()
    cfg.validate()
    t_start = time.monotonic()
    accelerator = _make_accelerator(cfg)
    device = accelerator.device
    rank, world = accelerator.process_index, accelerator.num_processes
    out = cfg.output_dir
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    if cfg.context == "encoders" and cfg.random_encoders:
        cfg = _with_random_encoders(cfg, accelerator)
    if accelerator.is_main_process:
        save_config(cfg, out / "train_config.json")

    # ---- frozen encoders
    vae = load_vae(cfg.latent_space, cfg.vae, cfg.pixel_unshuffle_factor).to(device).eval().requires_grad_(False)
    lat_ch = latent_channels(vae)
    if cfg.context == "encoders":
        context = ContextEncoder("encoders", cfg.text_encoder, cfg.tokenizer, cfg.image_encoder, cfg.image_embed_weight, device=device)
    else:
        context = None
    torch.manual_seed(cfg.seed)  # the fresh UNet's initial weights (before any resume overwrites them)
    unet = build_unet(cfg, lat_ch, None if context is None else context.dim)
    ctx_dim = int(unet.config.context_dim)
    if context is None:
        context = ContextEncoder("zero", tokens=cfg.context_tokens, dim=ctx_dim)
    elif context.dim != ctx_dim:
        raise InputError(cfg.text_encoder, f"text encoder width {context.dim} != UNet context_dim {ctx_dim}")
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()

    # ---- data
    clips = find_clips(cfg.data, cfg.data_kind, cfg.synth_keep_only)
    cache_dir = None
    if cfg.cache_latents:
        from see3d.train.latent_cache import build_latent_cache

        cache_dir = cfg.cache_dir or out / "latent_cache"
        build_latent_cache(clips, cache_dir, vae, cfg.resolution, cfg.resize_mode, cfg.max_clip_frames, context, rank, world, device=device, vae_tag=str(cfg.vae))
        accelerator.wait_for_everyone()
    dataset = ClipDataset(
        clips, cfg.num_frames, cfg.num_refs, cfg.resolution, cfg.seed, cfg.frame_sampling, cfg.min_stride, cfg.max_stride,
        cfg.shuffle_frames, cfg.resize_mode, cfg.max_clip_frames, cfg.preload, cache_dir,
    )  # fmt: skip
    noise_scheduler = build_noise_scheduler(cfg)
    cond_cfg = condition_config(cfg, vae)

    # ---- optimisation
    optimizer = torch.optim.AdamW(
        unet.parameters(), lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.weight_decay, eps=cfg.adam_epsilon
    )
    lr_sched = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.lr_warmup_steps * world, num_training_steps=cfg.max_steps * world)
    unet, optimizer, lr_sched = accelerator.prepare(unet, optimizer, lr_sched)
    raw_unet = accelerator.unwrap_model(unet)
    ema = EMAModel(raw_unet.parameters(), decay=cfg.ema_decay) if cfg.use_ema else None
    if ema is not None:
        ema.to(device)

    start_step = 0
    found = latest_checkpoint(out) if cfg.resume else None
    if found is not None:
        state = load_checkpoint(accelerator, found[1], ema)
        start_step = int(state["step"])
        log.info("resumed from %s (step %d)", found[1], start_step)
        if accelerator.is_main_process:
            _truncate_loss_log(out / LOSS_LOG, start_step)
    elif accelerator.is_main_process and (out / LOSS_LOG).exists():
        (out / LOSS_LOG).unlink()
    accelerator.wait_for_everyone()

    if accelerator.is_main_process:
        hp = {k: v for k, v in config_to_dict(cfg).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers("see3d_train", config=hp)

    sampler = StepBatchSampler(start_step, cfg.max_steps, cfg.batch_size, cfg.gradient_accumulation_steps, rank, world)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers, persistent_workers=False)

    losses: list[tuple[int, float]] = []
    step, micro, acc_loss = start_step, 0, 0.0
    stop_reason = None
    bar = progress(total=cfg.max_steps - start_step, desc="train", unit="step", disable=None if accelerator.is_main_process else True)
    loss_log = open(out / LOSS_LOG, "a") if accelerator.is_main_process else None  # noqa: SIM115 (closed below)
    try:
        for batch in loader:
            if step >= cfg.max_steps:
                break
            seed = step_seed(cfg.seed, step, micro, rank)
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            with accelerator.accumulate(unet):
                loss = compute_loss(batch, unet, vae, context, noise_scheduler, cond_cfg, generator, device)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(unet.parameters(), cfg.max_grad_norm)
                optimizer.step()
                lr_sched.step()
                optimizer.zero_grad(set_to_none=True)
            acc_loss += float(loss.detach()) / cfg.gradient_accumulation_steps
            micro += 1
            if not accelerator.sync_gradients:
                continue
            # ---- one optimizer step done
            if ema is not None:
                ema.step(raw_unet.parameters())
            step += 1
            micro = 0
            mean_loss = float(accelerator.reduce(torch.tensor([acc_loss], device=device), reduction="mean").item())
            acc_loss = 0.0
            losses.append((step, mean_loss))
            if loss_log is not None:
                loss_log.write(json.dumps({"step": step, "loss": mean_loss}) + "\n")
                loss_log.flush()
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                accelerator.log({"train/loss": mean_loss, "train/lr": lr_sched.get_last_lr()[0]}, step=step)
            bar.update(1)
            bar.set_postfix(loss=f"{mean_loss:.4f}")
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"training loss became {mean_loss} at step {step}; lower the learning rate or use bf16/fp32")
            stop_reason = _stop_reason(cfg, step, t_start, accelerator)
            if step % cfg.checkpoint_every == 0 or stop_reason is not None:
                save_checkpoint(accelerator, out, step, ema, {"loss": mean_loss, "finished": step >= cfg.max_steps}, cfg.checkpoints_keep)
            if stop_reason is not None:
                break
    finally:
        bar.close()
        if loss_log is not None:
            loss_log.close()

    finished = step >= cfg.max_steps
    unet_dir = None
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unet_dir = export_model(raw_unet, ema, out, vae, noise_scheduler, cfg, context)
        log.info("%s at step %d; model in %s", "finished" if finished else f"stopped ({stop_reason})", step, unet_dir)
    accelerator.end_training()
    return TrainResult(out, unet_dir, step, finished, losses, raw_unet)


def _stop_reason(cfg: TrainConfig, step: int, t_start: float, accelerator) -> str | None:
    if step >= cfg.max_steps:
        return "max_steps"
    if cfg.stop_after_steps is not None and step >= cfg.stop_after_steps:
        return "stop_after_steps"
    if cfg.stop_after_minutes is not None:
        # every process must agree, so the main process's clock decides
        flag = torch.tensor([1.0 if (time.monotonic() - t_start) / 60 >= cfg.stop_after_minutes else 0.0], device=accelerator.device)
        from accelerate.utils import broadcast

        if float(broadcast(flag, from_process=0).item()) > 0:
            return "stop_after_minutes"
    return None


def condition_config(cfg: TrainConfig, vae):
    """The :class:`see3d.conditioning.TrainingConditionConfig` of a run.

    ``condition_noise=False`` is the paper's mask-only ablation (MV-UnPoseM): the condition is the masked
    clean latent with no time-dependent noise and no mixture. It is expressed with the same function by
    setting t' = t // 10^9 = 0 (the lowest noise level, std sqrt(1 - a_0) = 0.03) and a constant weight
    w(t') = 1.
    """
    from see3d.conditioning import TrainingConditionConfig
    from see3d.conditioning.visual_condition import DecayParams

    factor = int(getattr(vae.config, "factor", 0) or 2 ** (len(getattr(vae.config, "block_out_channels", [0] * 4)) - 1))
    kw = {"cond_drop_prob": cfg.cond_dropout, "prediction_type": cfg.prediction_type, "mask_upscale": factor}
    if not cfg.condition_noise:
        kw.update(time_ratio=10**9, decay=DecayParams(t_peak=1.0, t_end=0.0, value=1.0, rate=0.0))
    return TrainingConditionConfig(**kw)


def compute_loss(batch: dict, unet, vae, context, noise_scheduler, cond_cfg, generator: torch.Generator, device, return_inputs: bool = False):
    """Loss of one micro-batch (see the module docstring); ``return_inputs`` also returns the per-clip
    :class:`see3d.conditioning.TrainingInputs` and the model prediction (for tests and debugging)."""
    from see3d.conditioning import build_training_inputs, masked_mse

    if "pixels" in batch:
        pixels = batch["pixels"].to(device)  # (B, N, 3, R, R)
        b, n = pixels.shape[:2]
        mean, std = encode_posterior(vae, pixels.flatten(0, 1))
    else:
        pixels = None
        b, n = batch["latent_mean"].shape[:2]
        mean, std = batch["latent_mean"].to(device).flatten(0, 1), batch["latent_std"].to(device).flatten(0, 1)
    z0 = sample_posterior(mean, std).unflatten(0, (b, n))  # (B, N, C, h, w)
    # one call per clip: clips may have different numbers of references (refs are each clip's first frames)
    parts = [build_training_inputs(z0[i : i + 1], int(batch["num_refs"][i]), noise_scheduler, generator, config=cond_cfg) for i in range(b)]
    model_input = torch.cat([p.model_input for p in parts])
    timesteps = torch.cat([p.timesteps for p in parts])
    # context from the first reference of every clip (frame 0)
    cached = batch["image_embeds"][:, 0] if "image_embeds" in batch else None
    ctx = context(None if pixels is None else pixels[:, 0], b, device, image_embeds=cached)
    ctx = ctx.repeat_interleave(n, dim=0)
    pred = unet(model_input, timesteps, ctx, num_frames=n)
    merged = _merge_inputs(parts)
    loss = masked_mse(pred, merged)
    return (loss, merged, pred) if return_inputs else loss


def _merge_inputs(parts):
    """Concatenate per-clip TrainingInputs into one (rows stay clip-major)."""
    import dataclasses

    first = parts[0]
    merged = {}
    for f in dataclasses.fields(first):
        v = getattr(first, f.name)
        merged[f.name] = torch.cat([getattr(p, f.name) for p in parts]) if isinstance(v, torch.Tensor) else v
    return type(first)(**merged)


def _with_random_encoders(cfg: TrainConfig, accelerator) -> TrainConfig:
    """Write (once, main process) tiny random CLIP encoders into <output>/encoders and point the config at them."""
    import dataclasses

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


def inference_scheduler(noise_scheduler, cfg: TrainConfig):
    """The DDIM sampler matching the training schedule (the See3D pipeline's trailing timesteps)."""
    from see3d.pipelines.schedule import make_scheduler

    c = dict(noise_scheduler.config)
    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type")
    conf = {k: c[k] for k in keys if k in c}
    conf.update(steps_offset=1, clip_sample=False, set_alpha_to_one=False, rescale_betas_zero_snr=cfg.rescale_zero_snr, timestep_scaling="trailing")
    return make_scheduler(conf, official=False)


def export_model(raw_unet, ema, out: Path, vae=None, noise_scheduler=None, cfg: TrainConfig | None = None, context=None) -> Path:
    """Write ``out/unet`` (EMA weights when EMA is on; ``out/unet_nonema`` then holds the raw ones), and
    for the pixel-unshuffle space ``out/vae``; also ``out/scheduler``. With ``cfg.export_pipeline`` and text +
    image encoders, also ``out/pipeline``: a complete :class:`See3DPipeline` folder (``from_pretrained``).
    Returns ``out/unet``."""
    out = Path(out)
    if ema is not None:
        save_model_folder(raw_unet, out / "unet_nonema")
    with ema_weights(raw_unet, ema):
        unet_dir = save_model_folder(raw_unet, out / "unet")
        if cfg is not None and cfg.export_pipeline:
            if context is None or context.image_model is None or noise_scheduler is None or vae is None:
                log.warning("export_pipeline needs the text and image encoders (context 'encoders' with an image encoder); skipped")
            else:
                from see3d.pipelines.see3d_pipeline import See3DPipeline

                pipe = See3DPipeline(
                    vae=vae, text_encoder=context.text_encoder, tokenizer=context.tokenizer, unet=raw_unet,
                    scheduler=inference_scheduler(noise_scheduler, cfg), feature_extractor=context.processor, image_encoder=context.image_model,
                )  # fmt: skip
                tmp = out / ".tmp-pipeline"
                shutil.rmtree(tmp, ignore_errors=True)
                pipe.save_pretrained(str(tmp), safe_serialization=True)
                replace_dir(tmp, out / "pipeline")
    if vae is not None and cfg is not None and cfg.latent_space == "pixel_unshuffle":
        save_model_folder(vae, out / "vae")
    if noise_scheduler is not None:
        write_text_atomic(out / "scheduler" / "scheduler_config.json", noise_scheduler.to_json_string())
    return unet_dir
