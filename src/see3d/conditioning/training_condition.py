"""Training-time visual condition (paper Eq. 2-3): masked, time-noised targets mixed with the noisy latents.

For a clip of F frames whose first ``S = num_refs`` are clean references and the rest targets::

    x_t = sqrt(a[t]) z0 + sqrt(1 - a[t]) eps             (targets; references keep z0)
    M   = random brush-stroke holes on targets (1 = hole), none on references
    t'  = t // 5
    C_t = sqrt(a[t']) (1 - M) z0 + sqrt(1 - a[t']) eps'  (eps' independent of eps)
    V_t = w(t') C_t + (1 - w(t')) x_t ;  V_t = z0 on references
    input = [x_t ; V_t ; 1 - M]                          (mask channel: 1 = visible, the checkpoint convention)
    with probability p (0.1), per clip: V_t and the mask channel of the targets are zeroed (CFG dropout,
    exactly the unconditional branch used at inference)

The loss is taken on target frames only (``TrainingInputs.target_mask``). Frame order carries no meaning for
the model, so shuffle the frames of a clip *before* calling (references are the first ``num_refs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor

from see3d.conditioning.masks import MaskConfig, random_hole_masks
from see3d.conditioning.visual_condition import (
    TIME_RATIO,
    DecayParams,
    condition_timestep,
    decay_weight,
    downsample_mask,
    known_blocks,
    latent_validity,
    noise_latents,
    pixel_masks,
)


@dataclass(frozen=True)
class TrainingConditionConfig:
    """How training inputs are corrupted."""

    cond_drop_prob: float = field(default=0.1, metadata={"help": "probability of dropping a clip's target condition (CFG)"})
    time_ratio: int = field(default=TIME_RATIO, metadata={"help": "condition noise level t' = t // time_ratio"})
    mask_upscale: int = field(default=8, metadata={"help": "draw masks at latent size x this (pixel size), then reduce them to latent size"})
    mask_reduce: Literal["nearest", "any", "pixel"] = field(
        default="nearest",
        metadata={"help": "nearest: a latent is a hole when its block's first pixel is (the official inference mask); "
                          "any: when any pixel of its block is (the pipeline's block-exact mask for pixel-unshuffle models); "
                          "pixel: pixel-unshuffle latents only, the mask keeps every pixel (mask_upscale**2 channels) and "
                          "only the hole pixels' channels of the condition are zeroed"},
    )
    prediction_type: Literal["v_prediction", "epsilon", "sample"] = field(default="v_prediction", metadata={"help": "regression target"})
    late_timestep_prob: float = field(
        default=0.0, metadata={"help": "probability that a clip's t is drawn from the last late_timestep_portion of the schedule instead of all of it"}
    )
    late_timestep_portion: float = field(default=0.1, metadata={"help": "the late range: t in [(1 - portion) T, T)"})
    hole_loss_weight: float = field(
        default=0.0, metadata={"help": "extra loss weight on the latents the condition hides: weight 1 + this there, 1 elsewhere (0: plain MSE)"}
    )
    masks: MaskConfig = field(default_factory=MaskConfig)
    decay: DecayParams = field(default_factory=DecayParams)


@dataclass
class TrainingInputs:
    """Everything one training step needs, rows ordered clip-major (``b * F + f``)."""

    model_input: torch.Tensor  # (B*F, 2C + m, h, w) UNet input [x_t, V_t, mask]; m = 1, or r**2 with "pixel" masks
    timesteps: torch.Tensor  # (B*F,) int64, the clip's t on every frame (references included)
    target: torch.Tensor  # (B*F, 4, h, w) regression target (v, epsilon or z0)
    target_mask: torch.Tensor  # (B*F,) bool, True on target frames: take the loss there only
    noisy_latents: torch.Tensor  # (B*F, 4, h, w) x_t (references clean)
    noise: torch.Tensor  # (B*F, 4, h, w) eps used for x_t
    holes: torch.Tensor  # (B, F, h, w) bool latent-resolution holes (False on references)
    dropped: torch.Tensor  # (B,) bool, condition dropped for CFG
    num_frames: int  # F, pass to the UNet
    loss_weight: torch.Tensor | None = None  # (B*F, C, h, w) per-latent loss weight, None: uniform


def _alpha_at(alphas_cumprod: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``a[t]`` (N,) shaped (N, 1, ..., 1) to broadcast against ``like`` (N, ...), on its device and dtype."""
    return alphas_cumprod.to(like.device)[t.to(like.device)].to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def diffusion_target(
    latents: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor, t: torch.Tensor, prediction_type: str
) -> torch.Tensor:
    """Regression target for ``x_t = sqrt(a) z0 + sqrt(1 - a) eps``: v = sqrt(a) eps - sqrt(1 - a) z0, eps, or z0."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return latents
    if prediction_type != "v_prediction":
        raise ValueError(f"unknown prediction_type {prediction_type!r}")
    a = _alpha_at(alphas_cumprod, t, latents)
    return a.sqrt() * noise - (1 - a).sqrt() * latents


def predicted_sample(
    pred: torch.Tensor, noisy: torch.Tensor, alphas_cumprod: torch.Tensor, t: torch.Tensor, prediction_type: str
) -> torch.Tensor:
    """The clean latent z0 a model output implies, given ``x_t`` (the inverse of :func:`diffusion_target`).

    ``pred``, ``noisy`` (N, C, h, w), ``t`` (N,). Only for v and sample prediction: with a zero-terminal-SNR
    schedule, epsilon prediction carries no z0 at the last timestep (a = 0)."""
    if prediction_type == "sample":
        return pred
    if prediction_type != "v_prediction":
        raise ValueError(f"predicted_sample needs v_prediction or sample, got {prediction_type!r}")
    a = _alpha_at(alphas_cumprod, t, pred)
    return a.sqrt() * noisy - (1 - a).sqrt() * pred


def sample_timesteps(n: int, num_train_timesteps: int, generator: torch.Generator, late_prob: float = 0.0, late_portion: float = 0.1) -> torch.Tensor:
    """(n,) int64 training timesteps: uniform on [0, T), except that with probability ``late_prob`` each is drawn
    uniformly from the last ``late_portion`` of the schedule, [(1 - late_portion) T, T).

    A late bias spends more of the training on the high-noise steps, where a sampler with few steps does most of its
    work (one trailing DDIM step is t = T - 1 alone); ``late_prob = 0`` is the paper's uniform sampling.
    """
    if not (0.0 <= late_prob <= 1.0 and 0.0 < late_portion <= 1.0):
        raise ValueError(f"need late_prob in [0, 1] and late_portion in (0, 1], got {late_prob} and {late_portion}")
    t = torch.randint(0, num_train_timesteps, (n,), generator=generator)
    if late_prob == 0:
        return t
    start = min(int(round((1.0 - late_portion) * num_train_timesteps)), num_train_timesteps - 1)
    late = torch.randint(start, num_train_timesteps, (n,), generator=generator)
    pick = torch.rand(n, generator=generator) < late_prob
    return torch.where(pick, late, t)


def build_training_inputs(
    latents: torch.Tensor,
    num_refs: int,
    noise_scheduler,
    generator: torch.Generator,
    timesteps: torch.Tensor | None = None,
    config: TrainingConditionConfig = TrainingConditionConfig(),
    holes: torch.Tensor | None = None,
) -> TrainingInputs:
    """Corrupt a batch of clips into UNet inputs and targets (see the module docstring).

    Args:
        latents: (B, F, 4, h, w) clean VAE latents (already multiplied by the VAE scaling factor); the first
            ``num_refs`` frames of each clip are the references.
        num_refs: S, 1 <= S < F.
        noise_scheduler: anything with an ``alphas_cumprod`` (T,) table (a diffusers scheduler), or the table.
        generator: a CPU ``torch.Generator``; all randomness (t, eps, eps', masks, dropout) comes from it.
        timesteps: (B,) int64 diffusion timesteps, or None to draw them (:func:`sample_timesteps`).
        holes: optional (B, F, h, w) bool hole masks (True = hole) to use instead of random strokes; reference
            rows are cleared.
    Returns:
        :class:`TrainingInputs`.
    """
    if latents.ndim != 5:
        raise ValueError(f"latents must be (B, F, C, h, w), got {tuple(latents.shape)}")
    b, f, c, h, w = latents.shape
    if not 1 <= num_refs < f:
        raise ValueError(f"num_refs must be in [1, {f - 1}] for {f} frames, got {num_refs}")
    dev, dt = latents.device, latents.dtype
    ac = getattr(noise_scheduler, "alphas_cumprod", noise_scheduler)
    ac = torch.as_tensor(ac, dtype=torch.float32)
    if timesteps is None:
        timesteps = sample_timesteps(b, ac.shape[0], generator, config.late_timestep_prob, config.late_timestep_portion)
    timesteps = torch.as_tensor(timesteps, dtype=torch.long).reshape(b).cpu()
    is_ref = torch.zeros(b, f, dtype=torch.bool)
    is_ref[:, :num_refs] = True

    z0 = latents.reshape(b * f, c, h, w)
    t_rows = timesteps.repeat_interleave(f)
    noise = randn_tensor(z0.shape, generator=generator, device=dev, dtype=dt)
    x_t = noise_latents(z0, noise, ac, t_rows)
    ref_rows = is_ref.reshape(-1).to(dev)
    x_t[ref_rows] = z0[ref_rows]

    up, pixel = config.mask_upscale, config.mask_reduce == "pixel"
    if pixel and c % up**2:
        raise ValueError(f"mask_reduce='pixel' needs pixel-unshuffle latents with a multiple of {up**2} channels, got {c}")
    if holes is None:
        drawn_visible = (~random_hole_masks(b * f, h * up, w * up, generator, config.masks))[:, None].float()
        # the pipeline's own reductions of pixel masks, so training holes have the form inference gives
        if config.mask_reduce == "nearest":
            holes = downsample_mask(drawn_visible, (h, w))[:, 0] < 0.5
        else:
            holes = ~known_blocks(drawn_visible, (h, w))[:, 0]
        holes = holes.reshape(b, f, h, w)
        pixel_visible = pixel_masks(drawn_visible, up) if pixel else None
    else:  # given latent-resolution holes: a hole latent has every pixel missing
        pixel_visible = (~holes.to(torch.bool)).reshape(b * f, 1, h, w).float().expand(-1, up * up, -1, -1) if pixel else None
    holes = holes.to(torch.bool).cpu().clone()
    holes[is_ref] = False
    if pixel:
        visible = pixel_visible.to(device=dev, dtype=dt).clone()
        visible[ref_rows] = 1.0
    else:
        visible = (~holes).reshape(b * f, 1, h, w).to(device=dev, dtype=dt)

    t_prime = condition_timestep(t_rows, config.time_ratio)
    noise_c = randn_tensor(z0.shape, generator=generator, device=dev, dtype=dt)
    corrupted = noise_latents(latent_validity(visible, c) * z0, noise_c, ac, t_prime)
    wgt = decay_weight(t_prime, config.decay).to(device=dev, dtype=dt).reshape(-1, 1, 1, 1)
    cond = wgt * corrupted + (1 - wgt) * x_t
    cond[ref_rows] = z0[ref_rows]

    dropped = torch.rand(b, generator=generator) < config.cond_drop_prob
    drop_rows = (dropped[:, None] & ~is_ref).reshape(-1).to(dev)
    cond = torch.where(drop_rows[:, None, None, None], torch.zeros_like(cond), cond)
    visible = torch.where(drop_rows[:, None, None, None], torch.zeros_like(visible), visible)

    loss_weight = None
    if config.hole_loss_weight:
        # after dropout: a dropped clip hides everything, so its weight is uniform again
        loss_weight = 1.0 + config.hole_loss_weight * (1.0 - latent_validity(visible, c))
    return TrainingInputs(
        model_input=torch.cat([x_t, cond, visible], dim=1),
        timesteps=t_rows.to(dev),
        target=diffusion_target(z0, noise, ac, t_rows, config.prediction_type),
        target_mask=~ref_rows,
        noisy_latents=x_t,
        noise=noise,
        holes=holes.to(dev),
        dropped=dropped.to(dev),
        num_frames=f,
        loss_weight=loss_weight,
    )


def masked_mse(pred: torch.Tensor, inputs: TrainingInputs) -> torch.Tensor:
    """Mean squared error over the target frames only (the paper's loss), float32; with
    ``inputs.loss_weight`` each frame's error is the weighted mean over its latents."""
    err = F.mse_loss(pred.float(), inputs.target.float(), reduction="none")
    if inputs.loss_weight is None:
        diff = err.mean(dim=(1, 2, 3))
    else:
        w = inputs.loss_weight.float()
        diff = (err * w).sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3))
    return diff[inputs.target_mask].mean()
