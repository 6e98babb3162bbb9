"""The See3D training loop (accelerate): pose-free clips -> multi-view UNet with the visual condition.

One micro-step, per clip of N shuffled frames (S clean references, N - S targets):

1. latents ``z0 (N, C, h, w)`` from the frozen VAE (or the latent cache / pixel-unshuffle space);
2. :func:`see3d.conditioning.build_training_inputs` (the model engineer's single implementation of the
   paper's condition): ``t ~ U{0..T-1}`` per clip, ``x_t``, random irregular masks on targets, condition
   noised at t // 5, decay-weight mixture, references clean, condition dropout for guidance, and the
   eps / v target;
3. ``loss = mean over target frames of || unet([x_t; V_t; M], t, context) - target ||²``
   (:func:`see3d.conditioning.masked_mse`; hidden latents weighted ``1 + hole_loss_weight``), plus
   ``ssim_loss_weight * (1 - SSIM)`` of the decoded target frames when set (:func:`ssim_loss`).

Determinism: data choices are keyed on the global sample index (:mod:`see3d.train.data`); the torch RNG
and the conditioning generator are re-seeded from (seed, step, micro-step, rank) before every
micro-step, so a resumed run repeats an uninterrupted one exactly (same hardware and settings).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from see3d.config import config_to_dict, save_config
from see3d.errors import InputError
from see3d.io.atomic import write_text_atomic
from see3d.log import get_logger, progress
from see3d.train.build import build_noise_scheduler, build_unet, condition_config, with_random_encoders
from see3d.train.checkpoint import resume_latest, save_checkpoint
from see3d.train.clips import find_clips
from see3d.train.config import TrainConfig
from see3d.train.data import ClipDataset, ClipSampling, StepBatchSampler, collate
from see3d.train.encoders import ContextEncoder, decode_latents, encode_posterior, latent_channels, load_vae, sample_posterior
from see3d.train.export import export_model

log = get_logger(__name__)

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
    cfg = cfg.resolved()
    cfg.validate()
    t_start = time.monotonic()
    accelerator = _make_accelerator(cfg)
    cfg, clips = _prepare_run(cfg, accelerator)
    parts = _build_components(cfg, accelerator.device)
    dataset = ClipDataset(clips, ClipSampling.from_train_config(cfg), _cache_latents(cfg, clips, parts, accelerator))
    opt = _prepare_optimization(cfg, parts.unet, accelerator)
    start_step = _resume(cfg, accelerator, opt.ema)
    if accelerator.is_main_process:
        hp = {k: v for k, v in config_to_dict(cfg).items() if isinstance(v, (int, float, str, bool))}
        accelerator.init_trackers("see3d_train", config=hp)
    sampler = StepBatchSampler(start_step, cfg.max_steps, cfg.batch_size, cfg.gradient_accumulation_steps, accelerator.process_index, accelerator.num_processes)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers, persistent_workers=False)
    step, losses, stop_reason = _train_loop(cfg, accelerator, parts, opt, loader, start_step, t_start)
    unet_dir = _export(cfg, accelerator, parts, opt, step, stop_reason)
    accelerator.end_training()
    return TrainResult(cfg.output_dir, unet_dir, step, step >= cfg.max_steps, losses, opt.raw_unet)


@dataclass
class _Components:
    """What the loop trains with: the frozen encoders, the UNet (not yet prepared), noise and condition settings."""

    vae: torch.nn.Module
    context: ContextEncoder
    unet: torch.nn.Module
    noise_scheduler: object
    cond_cfg: object


@dataclass
class _Optimization:
    """The prepared (possibly wrapped) UNet, its unwrapped module, optimizer, LR schedule and EMA."""

    unet: torch.nn.Module
    raw_unet: torch.nn.Module
    optimizer: torch.optim.Optimizer
    lr_sched: object
    ema: object | None
    sharded: bool


def _prepare_run(cfg: TrainConfig, accelerator) -> tuple[TrainConfig, list]:
    """The output folder, the clips, and the config completed by what the data says (random encoders, the pixel
    latents' shift and scale), saved as ``train_config.json``."""
    out = cfg.output_dir
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    if cfg.context == "encoders" and cfg.random_encoders:
        cfg = with_random_encoders(cfg, accelerator)
    clips = find_clips(cfg.data, cfg.data_kind, cfg.synth_keep_only)
    if cfg.latent_space == "pixel_unshuffle" and (cfg.pixel_scale is None or cfg.pixel_shift is None):
        from see3d.train.small_model import pixel_stats

        mean, std = pixel_stats(clips, cfg.resolution, cfg.resize_mode, cfg.max_clip_frames, seed=cfg.seed)
        cfg = dataclasses.replace(cfg, pixel_scale=cfg.pixel_scale or 1.0 / std, pixel_shift=mean if cfg.pixel_shift is None else cfg.pixel_shift)
        log.info("pixel latents: shift %.4f, scale %.4f", cfg.pixel_shift, cfg.pixel_scale)
    if accelerator.is_main_process:
        save_config(cfg, out / "train_config.json")
    return cfg, clips


def _build_components(cfg: TrainConfig, device: torch.device) -> _Components:
    """The frozen VAE and context encoder, the fresh UNet (seeded by ``cfg.seed``), noise schedule and condition settings."""
    vae = load_vae(cfg.latent_space, cfg.vae, cfg.pixel_unshuffle_factor, cfg.pixel_scale or 1.0, cfg.pixel_shift or 0.0)
    vae = vae.to(device).eval().requires_grad_(False)
    if cfg.context == "encoders":
        context = ContextEncoder("encoders", cfg.text_encoder, cfg.tokenizer, cfg.image_encoder, cfg.image_embed_weight, device=device)
    else:
        context = None
    torch.manual_seed(cfg.seed)  # the fresh UNet's initial weights (before any resume overwrites them)
    unet = build_unet(cfg, latent_channels(vae), None if context is None else context.dim)
    ctx_dim = int(unet.config.context_dim)
    if context is None:
        context = ContextEncoder("zero", tokens=cfg.context_tokens, dim=ctx_dim)
    elif context.dim != ctx_dim:
        raise InputError(cfg.text_encoder, f"text encoder width {context.dim} != UNet context_dim {ctx_dim}")
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    return _Components(vae, context, unet, build_noise_scheduler(cfg), condition_config(cfg, vae))


def _cache_latents(cfg: TrainConfig, clips: list, parts: _Components, accelerator) -> Path | None:
    """With ``cache_latents``, encode the clips not cached yet (each process its share); returns the cache folder."""
    if not cfg.cache_latents:
        return None
    from see3d.train.latent_cache import build_latent_cache

    cache_dir = cfg.cache_dir or cfg.output_dir / "latent_cache"
    build_latent_cache(
        clips, cache_dir, parts.vae, cfg.resolution, cfg.resize_mode, cfg.max_clip_frames, parts.context, accelerator.process_index,
        accelerator.num_processes, device=accelerator.device, vae_tag=str(cfg.vae),
    )  # fmt: skip
    accelerator.wait_for_everyone()
    return cache_dir


def _prepare_optimization(cfg: TrainConfig, unet: torch.nn.Module, accelerator) -> _Optimization:
    """AdamW, the LR schedule and EMA, with the UNet prepared by accelerate (DDP / FSDP / DeepSpeed)."""
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    world = accelerator.num_processes
    optimizer = torch.optim.AdamW(
        unet.parameters(), lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.weight_decay, eps=cfg.adam_epsilon
    )
    lr_sched = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.lr_warmup_steps * world, num_training_steps=cfg.max_steps * world)
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is not None:  # the data loader is not prepared by accelerate, so DeepSpeed needs the micro-batch size here
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = cfg.batch_size
    unet, optimizer, lr_sched = accelerator.prepare(unet, optimizer, lr_sched)
    raw_unet = accelerator.unwrap_model(unet)
    sharded = _params_sharded(accelerator)
    if sharded and cfg.use_ema:
        raise InputError(None, "EMA needs whole parameters on every process: use DDP or DeepSpeed ZeRO-2 (not FSDP / ZeRO-3), or --no-use-ema")
    ema = EMAModel(raw_unet.parameters(), decay=cfg.ema_decay) if cfg.use_ema else None
    if ema is not None:
        ema.to(accelerator.device)
    return _Optimization(unet, raw_unet, optimizer, lr_sched, ema, sharded)


def _resume(cfg: TrainConfig, accelerator, ema) -> int:
    """Load the latest checkpoint when ``cfg.resume`` finds one (the loss log is cut back to it); returns the start step."""
    out = cfg.output_dir
    start_step = 0
    found = resume_latest(accelerator, out, ema) if cfg.resume else None  # a damaged newest one falls back to the previous
    if found is not None:
        state = found[0]
        start_step = int(state["step"])
        log.info("resumed from %s (step %d)", found[1], start_step)
        if accelerator.is_main_process:
            _truncate_loss_log(out / LOSS_LOG, start_step)
    elif accelerator.is_main_process and (out / LOSS_LOG).exists():
        (out / LOSS_LOG).unlink()
    accelerator.wait_for_everyone()
    return start_step


def _train_loop(
    cfg: TrainConfig, accelerator, parts: _Components, opt: _Optimization, loader, start_step: int, t_start: float
) -> tuple[int, list[tuple[int, float]], str | None]:
    """Optimizer steps from ``start_step`` until a stop condition; returns (last step, (step, loss) pairs, stop reason)."""
    losses: list[tuple[int, float]] = []
    step, micro, acc_loss = start_step, 0, 0.0
    stop_reason = None
    bar = progress(total=cfg.max_steps - start_step, desc="train", unit="step", disable=None if accelerator.is_main_process else True)
    loss_log = open(cfg.output_dir / LOSS_LOG, "a") if accelerator.is_main_process else None  # noqa: SIM115 (closed below)
    try:
        for batch in loader:
            if step >= cfg.max_steps:
                break
            loss = _micro_step(cfg, accelerator, parts, opt, batch, step, micro)
            acc_loss += float(loss.detach()) / cfg.gradient_accumulation_steps
            micro += 1
            if not accelerator.sync_gradients:
                continue
            # ---- one optimizer step done
            if opt.ema is not None:
                opt.ema.step(opt.raw_unet.parameters())
            step += 1
            micro = 0
            mean_loss = _record_step(cfg, accelerator, opt, step, acc_loss, loss_log, bar)
            losses.append((step, mean_loss))
            acc_loss = 0.0
            stop_reason = _stop_reason(cfg, step, t_start, accelerator)
            if step % cfg.checkpoint_every == 0 or stop_reason is not None:
                save_checkpoint(accelerator, cfg.output_dir, step, opt.ema, {"loss": mean_loss, "finished": step >= cfg.max_steps}, cfg.checkpoints_keep)
            if stop_reason is not None:
                break
    finally:
        bar.close()
        if loss_log is not None:
            loss_log.close()
    return step, losses, stop_reason


def _micro_step(cfg: TrainConfig, accelerator, parts: _Components, opt: _Optimization, batch: dict, step: int, micro: int) -> torch.Tensor:
    """Forward and backward of one micro-batch (the optimizer steps when accelerate's accumulation says so); returns its loss."""
    seed = step_seed(cfg.seed, step, micro, accelerator.process_index)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    with accelerator.accumulate(opt.unet):
        loss = compute_loss(
            batch, opt.unet, parts.vae, parts.context, parts.noise_scheduler, parts.cond_cfg, generator, accelerator.device,
            ssim_weight=cfg.ssim_loss_weight, hole_ssim_weight=cfg.hole_ssim_loss_weight,
        )  # fmt: skip
        accelerator.backward(loss)
        if accelerator.sync_gradients and cfg.max_grad_norm > 0:
            accelerator.clip_grad_norm_(opt.unet.parameters(), cfg.max_grad_norm)
        opt.optimizer.step()
        opt.lr_sched.step()
        opt.optimizer.zero_grad(set_to_none=True)
    return loss


def _record_step(cfg: TrainConfig, accelerator, opt: _Optimization, step: int, acc_loss: float, loss_log, bar) -> float:
    """The step's loss averaged over processes, written to the loss log, the tracker and the progress bar; a
    non-finite loss stops training with :class:`FloatingPointError`."""
    mean_loss = float(accelerator.reduce(torch.tensor([acc_loss], device=accelerator.device), reduction="mean").item())
    if loss_log is not None:
        loss_log.write(json.dumps({"step": step, "loss": mean_loss}) + "\n")
        loss_log.flush()
    if step % cfg.log_every == 0 or step == cfg.max_steps:
        accelerator.log({"train/loss": mean_loss, "train/lr": opt.lr_sched.get_last_lr()[0]}, step=step)
    bar.update(1)
    bar.set_postfix(loss=f"{mean_loss:.4f}")
    if not math.isfinite(mean_loss):
        raise FloatingPointError(f"training loss became {mean_loss} at step {step}; lower the learning rate or use bf16/fp32")
    return mean_loss


def _export(cfg: TrainConfig, accelerator, parts: _Components, opt: _Optimization, step: int, stop_reason: str | None) -> Path | None:
    """Export the trained (EMA) UNet and pipeline files on the main process; returns the UNet folder there, else None."""
    accelerator.wait_for_everyone()
    export_unet = opt.raw_unet
    if opt.sharded:  # gather the full weights (a collective call) into an unsharded copy on the main process
        full = accelerator.get_state_dict(opt.unet)
        if accelerator.is_main_process:
            from see3d.models import MultiViewUNet

            export_unet = MultiViewUNet.from_config(opt.raw_unet.config)
            export_unet.load_state_dict(full)
    if not accelerator.is_main_process:
        return None
    unet_dir = export_model(export_unet, opt.ema, cfg.output_dir, parts.vae, parts.noise_scheduler, cfg, parts.context)
    log.info("%s at step %d; model in %s", "finished" if step >= cfg.max_steps else f"stopped ({stop_reason})", step, unet_dir)
    return unet_dir


def _params_sharded(accelerator) -> bool:
    """True when each process holds only a shard of the parameters (FSDP, DeepSpeed ZeRO-3)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        return True
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    return accelerator.distributed_type == DistributedType.DEEPSPEED and plugin is not None and plugin.zero_stage == 3


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


def compute_loss(
    batch: dict,
    unet,
    vae,
    context,
    noise_scheduler,
    cond_cfg,
    generator: torch.Generator,
    device,
    return_inputs: bool = False,
    ssim_weight: float = 0.0,
    hole_ssim_weight: float = 0.0,
):
    """Loss of one micro-batch (see the module docstring); ``return_inputs`` also returns the per-clip
    :class:`see3d.conditioning.TrainingInputs` and the model prediction (for tests and debugging).
    ``ssim_weight`` adds ``ssim_weight * (1 - SSIM)`` between the decoded predicted and true target frames;
    ``hole_ssim_weight`` the same with the prediction used in the hidden pixels only (:func:`ssim_loss`)."""
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
    if ssim_weight or hole_ssim_weight:  # both terms compare the same decoded frames: decode once
        decoded = decoded_target_frames(pred, merged, vae, noise_scheduler, cond_cfg.prediction_type)
        if ssim_weight:
            loss = loss + ssim_weight * ssim_loss(pred, merged, vae, noise_scheduler, cond_cfg.prediction_type, decoded=decoded)
        if hole_ssim_weight:
            loss = loss + hole_ssim_weight * ssim_loss(
                pred, merged, vae, noise_scheduler, cond_cfg.prediction_type, holes_only=True, decoded=decoded
            )
    return (loss, merged, pred) if return_inputs else loss


def decoded_target_frames(pred: torch.Tensor, inputs, vae, noise_scheduler, prediction_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted, true) target frames (N_targets, 3, H, W) in [0, 1]: the clean latents implied by ``pred`` and by
    the regression target, decoded (a differentiable decode: meant for the parameter-free pixel-unshuffle space)."""
    from see3d.conditioning import predicted_sample

    rows = inputs.target_mask
    ac = torch.as_tensor(noise_scheduler.alphas_cumprod, dtype=torch.float32)
    x_t, t = inputs.noisy_latents[rows].float(), inputs.timesteps[rows]
    fake = decode_latents(vae, predicted_sample(pred[rows].float(), x_t, ac, t, prediction_type)) / 2 + 0.5
    real = decode_latents(vae, predicted_sample(inputs.target[rows].float(), x_t, ac, t, prediction_type)) / 2 + 0.5
    return fake, real


def ssim_loss(
    pred: torch.Tensor, inputs, vae, noise_scheduler, prediction_type: str, holes_only: bool = False,
    decoded: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:  # fmt: skip
    """``1 - SSIM`` of the target frames of :func:`decoded_target_frames` (pass ``decoded`` to reuse them).

    ``holes_only``: the predicted frame takes the truth wherever the UNet's mask channels say a pixel was
    visible, so only the hidden pixels are judged, in windows that also see their visible neighbours (how a
    fill that keeps the warped pixels is scored). A clip whose condition was dropped is judged whole."""
    from see3d.metrics import ssim

    fake, real = decoded if decoded is not None else decoded_target_frames(pred, inputs, vae, noise_scheduler, prediction_type)
    if holes_only:
        rows, lat = inputs.target_mask, inputs.noisy_latents
        visible = _pixel_visibility(inputs.model_input[rows, 2 * lat.shape[1] :].float(), fake.shape[-1] // lat.shape[-1])
        fake = visible * real + (1.0 - visible) * fake
    return 1.0 - ssim(fake, real).mean()


def _pixel_visibility(mask_channels: torch.Tensor, factor: int) -> torch.Tensor:
    """The UNet's mask channels (N, m, h, w) -> pixel visibility (N, 1, h * factor, w * factor), 1 = visible:
    ``m = factor**2`` per-pixel masks are pixel-shuffled back, ``m = 1`` latent masks cover their whole block."""
    if mask_channels.shape[1] == factor * factor:
        return torch.nn.functional.pixel_shuffle(mask_channels, factor)
    if mask_channels.shape[1] == 1:
        return mask_channels.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    raise ValueError(f"{mask_channels.shape[1]} mask channels do not fit a {factor}x{factor} latent block")


def _merge_inputs(parts):
    """Concatenate per-clip TrainingInputs into one (rows stay clip-major)."""
    import dataclasses

    first = parts[0]
    merged = {}
    for f in dataclasses.fields(first):
        v = getattr(first, f.name)
        merged[f.name] = torch.cat([getattr(p, f.name) for p in parts]) if isinstance(v, torch.Tensor) else v
    return type(first)(**merged)
