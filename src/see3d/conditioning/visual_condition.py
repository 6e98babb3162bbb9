"""The See3D visual condition at inference: noised warped latents mixed with the current latents.

One denoising step of the multi-view diffusion (F frames, the first ``g`` of them clean references):

1. ``x[:g] = z_ref[:g]`` (references stay clean, :func:`restore_references`);
2. ``t' = t // 5``; ``noisy = sqrt(a[t']) z_cond + sqrt(1 - a[t']) eps'`` with fresh ``eps'``
   (:func:`noise_latents`);
3. ``V = w(t') noisy + (1 - w(t')) x``, ``V[:g] = z_ref[:g]`` (:func:`decay_weight`, :func:`mix_condition`);
4. conditional input ``[x, V, M]``, unconditional input ``[x, V_u, M_u]`` with the targets' condition and mask
   zeroed (:func:`build_unet_input`);
5. ``y = (1 + s) y_cond - s y_uncond`` (:func:`combine_guidance`), then a scheduler step.

The super-resolution model skips 2-3: its condition is the clean latent (``V = z_cond``).
``a`` is the (zero-SNR rescaled) ``alphas_cumprod`` table of the scheduler. Latents are ``(F, 4, h, w)``,
masks ``(F, 1, h, w)`` with 1 = known pixel (reference or warped), 0 = hole.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

TIME_RATIO = 5  # the condition is noised to t' = t // 5 (paper: t' = 0.2 t)


@dataclass(frozen=True)
class DecayParams:
    """Constants of the condition weight ``w(t')`` (in ``t' = t // 5`` units): a linear ramp from 1 at
    ``t_peak`` down to ``value`` at ``t_end``, then an exponential fall-off with ``rate`` per unit below it."""

    t_peak: float = 200.0
    t_end: float = 60.0
    value: float = 0.8
    rate: float = 0.075


def condition_timestep(t: torch.Tensor | int, time_ratio: int = TIME_RATIO) -> torch.Tensor:
    """``t' = t // time_ratio`` (integer floor division), the noise level of the visual condition."""
    return torch.div(torch.as_tensor(t), time_ratio, rounding_mode="floor").long()


def decay_weight(t_prime: torch.Tensor | int, params: DecayParams = DecayParams()) -> torch.Tensor:
    """Weight ``w(t')`` of the noised condition in the mixture, evaluated in float32 and clamped to [0, 1].

    ``w = 1 - (1 - value) (t_peak - t') / (t_peak - t_end)`` for ``t' >= t_end``, else
    ``value * exp(-rate (t_end - t'))``. ``w(199) = 0.9986``, ``w(60) = 0.8``, ``w(2) = 0.0103``.
    """
    tt = torch.as_tensor(t_prime).float()
    linear = 1 - (1 - params.value) * (params.t_peak - tt) / (params.t_peak - params.t_end)
    fast = params.value * torch.exp(-params.rate * (params.t_end - tt))
    return torch.where(tt >= params.t_end, linear, fast).clamp(0.0, 1.0)


def noise_latents(latents: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
    """DDPM forward noising ``sqrt(a[t]) latents + sqrt(1 - a[t]) noise``.

    Args:
        latents, noise: (B, ...) tensors of the same shape.
        alphas_cumprod: (T,) float table.
        t: scalar or (B,) integer timesteps.
    """
    a = alphas_cumprod.to(latents.device)[torch.as_tensor(t, device=latents.device).long()].to(latents.dtype)
    a = a.reshape(-1, *([1] * (latents.ndim - 1))) if a.ndim else a
    return a.sqrt() * latents + (1 - a).sqrt() * noise


def restore_references(latents: torch.Tensor, ref_latents: torch.Tensor, num_refs: int) -> torch.Tensor:
    """A copy of ``latents (F, 4, h, w)`` whose first ``num_refs`` rows are ``ref_latents[:num_refs]``."""
    out = latents.clone()
    out[:num_refs] = ref_latents[:num_refs].to(out.dtype)
    return out


def mix_condition(
    latents: torch.Tensor,
    cond_latents: torch.Tensor,
    noise: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    t: torch.Tensor | int,
    num_refs: int,
    time_ratio: int = TIME_RATIO,
    params: DecayParams = DecayParams(),
) -> torch.Tensor:
    """The visual-condition latent ``V`` of one step (inference, base model).

    Args:
        latents: (F, 4, h, w) current latents ``x`` with the references already restored.
        cond_latents: (F, 4, h, w) clean VAE latents of the references and the warped target views.
        noise: (F, 4, h, w) fresh N(0, 1) noise for this step.
        alphas_cumprod: (T,) the scheduler's table.
        t: the diffusion timestep (int).
        num_refs: ``g``; rows ``< g`` get their clean latent as condition.
    Returns:
        (F, 4, h, w) ``w(t') noisy + (1 - w(t')) x`` with ``t' = t // time_ratio``.
    """
    t_prime = condition_timestep(t, time_ratio)
    noisy = noise_latents(cond_latents, noise, alphas_cumprod, t_prime)
    w = decay_weight(t_prime, params).to(device=latents.device, dtype=latents.dtype)
    v = w * noisy + (1 - w) * latents
    return restore_references(v, cond_latents, num_refs)


def downsample_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of ``mask (F, 1, H, W)`` to ``size = (h, w)``.

    For an exact factor this picks pixel ``(8i, 8j)`` of every 8x8 block (``mask[..., ::8, ::8]``), the
    official behaviour (not a max-pool or an average)."""
    return F.interpolate(mask, size=size, mode="nearest")


def known_blocks(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(F, 1, H, W) pixel validity (1 = known) -> (F, 1, h, w) bool, True where *every* pixel of the latent's
    block is known (a min-pool; used to keep warped content, unlike :func:`downsample_mask`)."""
    return -F.adaptive_max_pool2d(-(mask > 0.5).float(), size) > 0.5


def pixel_masks(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """(F, 1, H, W) pixel validity -> (F, factor**2, H / factor, W / factor) float, every pixel of a latent's block as
    its own channel (``F.pixel_unshuffle``; channel ``i * factor + j`` is pixel ``(i, j)`` of the block).

    The mask of pixel-unshuffle latents trained with ``mask_reduce="pixel"``: such a latent holds each pixel of
    its block in its own channels, so a block can be partly known and the model is told exactly which pixels."""
    if mask.shape[-1] % factor or mask.shape[-2] % factor:
        raise ValueError(f"mask size {tuple(mask.shape[-2:])} is not a multiple of the block size {factor}")
    return F.pixel_unshuffle((mask > 0.5).to(torch.float32), factor)


def latent_validity(mask: torch.Tensor, channels: int) -> torch.Tensor:
    """Latent mask ``(F, m, h, w)`` -> validity of every latent channel ``(F, channels, h, w)`` (float, 1 = known).

    ``m = 1`` (one mask per latent) is broadcast; ``m = r**2`` (:func:`pixel_masks`) is repeated over the colour
    planes of a pixel-unshuffle latent, whose channel ``c * r**2 + k`` is pixel ``k`` of colour ``c``."""
    m = mask.shape[1]
    if m == 1:
        return mask.expand(-1, channels, -1, -1)
    if channels % m:
        raise ValueError(f"{m} mask channels do not divide {channels} latent channels")
    return mask.repeat(1, channels // m, 1, 1)


def build_unet_input(
    latents: torch.Tensor,
    cond: torch.Tensor,
    mask: torch.Tensor,
    ref_latents: torch.Tensor,
    num_refs: int,
    guidance: bool = True,
) -> torch.Tensor:
    """The 9-channel UNet batch ``[x, V, M]`` (and the unconditional half).

    Args:
        latents: (F, 4, h, w) ``x`` (references restored).
        cond: (F, 4, h, w) condition ``V``.
        mask: (F, m, h, w) latent-resolution validity mask (references all ones); m = 1, or r**2 pixel masks.
        ref_latents: (F, 4, h, w) clean latents (only rows ``< num_refs`` are read).
        guidance: also build the unconditional group ``[x, V_u, M_u]`` where the targets' condition and mask are
            zero and the references keep theirs.
    Returns:
        (F, 2C + m, h, w), or (2F, 2C + m, h, w) = [conditional group; unconditional group] with ``guidance``
        (9 channels for the official 4-channel latents).
    """
    cond_in = torch.cat([latents, cond, mask.to(latents.dtype)], dim=1)
    if not guidance:
        return cond_in
    v_u = torch.zeros_like(cond)
    m_u = torch.zeros_like(mask, dtype=latents.dtype)
    v_u[:num_refs] = ref_latents[:num_refs].to(v_u.dtype)
    m_u[:num_refs] = mask[:num_refs].to(m_u.dtype)
    uncond_in = torch.cat([latents, v_u, m_u], dim=1)
    return torch.cat([cond_in, uncond_in], dim=0)


def combine_guidance(model_output: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """``(1 + s) cond - s uncond`` from ``model_output = [cond; uncond]`` (2F rows) -> (F, ...).

    Note the official convention: ``s = 2`` is a classifier-free guidance weight of 3 in the usual notation.
    """
    cond, uncond = model_output.chunk(2, dim=0)
    return (1 + guidance_scale) * cond - guidance_scale * uncond


def uses_guidance(guidance_scale: float) -> bool:
    """The unconditional branch runs whenever ``s != 0`` (official)."""
    return guidance_scale != 0
