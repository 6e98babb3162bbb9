"""Training-time visual condition (masks on targets, noise at t // 5, mixture, CFG dropout) and stroke masks."""

from __future__ import annotations

import pytest
import torch

from see3d.conditioning import (
    MaskConfig,
    TrainingConditionConfig,
    build_training_inputs,
    masked_mse,
    predicted_sample,
    random_hole_mask,
    random_hole_masks,
    sample_timesteps,
    warp_like_hole_mask,
)
from see3d.conditioning.visual_condition import DecayParams
from see3d.pipelines.schedule import make_scheduler

SCHED = make_scheduler({})
AC = SCHED.alphas_cumprod
CONST_W1 = DecayParams(t_peak=1.0, t_end=0.0, value=1.0, rate=0.0)  # w(t') = 1: V = C_t
CONST_W0 = DecayParams(t_peak=2.0e9, t_end=1.0e9, value=0.0, rate=0.0)  # w(t') = 0: V = x_t


def _inputs(z0, seed=0, **cfg):
    cfg.setdefault("mask_upscale", 1)
    t = cfg.pop("timesteps", None)
    holes = cfg.pop("holes", None)
    return build_training_inputs(
        z0, 1, SCHED, torch.Generator().manual_seed(seed), timesteps=t, config=TrainingConditionConfig(**cfg), holes=holes
    )


def test_layout_references_clean_and_masks_only_on_targets():
    z0 = torch.randn(2, 4, 4, 16, 16)
    inp = _inputs(z0, cond_drop_prob=0.0, timesteps=torch.tensor([700, 20]))
    x = inp.model_input.reshape(2, 4, 9, 16, 16)
    assert inp.model_input.shape == (8, 9, 16, 16) and inp.num_frames == 4
    assert inp.timesteps.tolist() == [700] * 4 + [20] * 4
    assert inp.target_mask.tolist() == [False, True, True, True] * 2
    # references: clean latent as x and as condition, all-ones mask, no holes
    assert torch.equal(x[:, 0, :4], z0[:, 0]) and torch.equal(x[:, 0, 4:8], z0[:, 0])
    assert torch.all(x[:, 0, 8] == 1) and not inp.holes[:, 0].any()
    # targets: noisy x_t, holes present, mask channel = 1 - holes
    assert inp.holes[:, 1:].any() and not inp.holes[:, 1:].all()
    assert torch.equal(x[:, 1:, 8], (~inp.holes[:, 1:]).float())
    a = AC[700]
    assert torch.allclose(x[0, 1:, :4], a.sqrt() * z0[0, 1:] + (1 - a).sqrt() * inp.noise.reshape(2, 4, 4, 16, 16)[0, 1:], atol=1e-6)


def test_condition_is_noised_to_t_over_5_with_independent_noise():
    z0 = torch.randn(1, 2, 4, 64, 64)
    t = 500
    inp = _inputs(z0, cond_drop_prob=0.0, timesteps=torch.tensor([t]), decay=CONST_W1, holes=torch.zeros(1, 2, 64, 64, dtype=torch.bool))
    v = inp.model_input[1, 4:8]
    z, eps = z0[0, 1], inp.noise[1]
    coef = float((v * z).sum() / (z * z).sum())
    assert abs(coef - float(AC[t // 5].sqrt())) < 0.02  # sqrt(a[100]) = 0.93, while sqrt(a[500]) would be 0.53
    resid = v - AC[t // 5].sqrt() * z
    assert abs(float(resid.std()) - float((1 - AC[t // 5]).sqrt())) < 0.02
    assert abs(float((resid * eps).mean() / (resid.std() * eps.std()))) < 0.05  # eps' is not the x_t noise


def test_holes_zero_the_clean_signal_of_the_condition():
    z0 = torch.randn(1, 2, 4, 32, 32) + 5.0  # a large mean makes the clean part visible
    holes = torch.zeros(1, 2, 32, 32, dtype=torch.bool)
    holes[0, 1, :16] = True
    inp = _inputs(z0, cond_drop_prob=0.0, timesteps=torch.tensor([50]), decay=CONST_W1, holes=holes)
    v = inp.model_input[1, 4:8]
    assert float(v[:, :16].mean().abs()) < 0.1 and float(v[:, 16:].mean()) > 4.0
    assert torch.equal(inp.model_input[1, 8], (~holes[0, 1]).float())


def test_mixture_uses_the_noisy_latent_when_the_weight_is_zero():
    z0 = torch.randn(1, 3, 4, 8, 8)
    inp = _inputs(z0, cond_drop_prob=0.0, timesteps=torch.tensor([900]), decay=CONST_W0)
    assert torch.equal(inp.model_input[1:, 4:8], inp.model_input[1:, :4])


def test_cfg_dropout_zeroes_target_condition_and_mask_only():
    z0 = torch.randn(3, 3, 4, 8, 8)
    inp = _inputs(z0, cond_drop_prob=1.0)
    x = inp.model_input.reshape(3, 3, 9, 8, 8)
    assert inp.dropped.all()
    assert torch.count_nonzero(x[:, 1:, 4:]) == 0
    assert torch.equal(x[:, 0, 4:8], z0[:, 0]) and torch.all(x[:, 0, 8] == 1)
    assert not _inputs(z0, cond_drop_prob=0.0).dropped.any()
    rate = _inputs(torch.zeros(400, 2, 4, 2, 2), cond_drop_prob=0.1).dropped.float().mean()
    assert 0.06 < float(rate) < 0.14


def test_deterministic_with_a_generator():
    z0 = torch.randn(2, 3, 4, 8, 8)
    a, b, c = _inputs(z0, seed=4), _inputs(z0, seed=4), _inputs(z0, seed=5)
    assert torch.equal(a.model_input, b.model_input) and torch.equal(a.target, b.target) and torch.equal(a.timesteps, b.timesteps)
    assert not torch.equal(a.model_input, c.model_input)


def test_late_timestep_bias_draws_that_share_from_the_last_portion():
    """late_prob = 0 is uniform on [0, T) (the paper); late_prob = p puts p of the draws in [0.9 T, T) on top of
    the uniform draws that land there, and the draw is seeded."""
    n = 20000
    uniform = sample_timesteps(n, 1000, torch.Generator().manual_seed(0))
    biased = sample_timesteps(n, 1000, torch.Generator().manual_seed(0), late_prob=0.5, late_portion=0.1)
    assert int(uniform.min()) >= 0 and int(uniform.max()) <= 999 and int(biased.min()) >= 0 and int(biased.max()) <= 999
    assert abs(float((uniform >= 900).float().mean()) - 0.1) < 0.01
    assert abs(float((biased >= 900).float().mean()) - (0.5 + 0.5 * 0.1)) < 0.015
    assert abs(float((biased < 500).float().mean()) - 0.25) < 0.015  # the rest stays uniform
    assert torch.equal(biased, sample_timesteps(n, 1000, torch.Generator().manual_seed(0), late_prob=0.5, late_portion=0.1))
    inputs = _inputs(torch.randn(64, 2, 4, 4, 4), late_timestep_prob=1.0)  # reaches build_training_inputs
    assert int(inputs.timesteps.min()) >= 900
    with pytest.raises(ValueError, match="late_portion"):
        sample_timesteps(4, 1000, torch.Generator(), late_prob=0.5, late_portion=1.5)


@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon", "sample"])
def test_regression_target_inverts_with_the_ddim_formula(prediction_type):
    z0 = torch.randn(1, 3, 4, 8, 8)
    inp = _inputs(z0, timesteps=torch.tensor([321]), prediction_type=prediction_type)
    a = AC[321]
    x_t = inp.noisy_latents[1:]
    if prediction_type == "v_prediction":
        z_hat = a.sqrt() * x_t - (1 - a).sqrt() * inp.target[1:]
    elif prediction_type == "sample":
        z_hat = inp.target[1:]
    else:
        z_hat = (x_t - (1 - a).sqrt() * inp.target[1:]) / a.sqrt()
    assert torch.allclose(z_hat, z0[0, 1:], atol=1e-5)
    if prediction_type == "epsilon":  # no z0 at the zero-SNR last step: refused
        with pytest.raises(ValueError, match="v_prediction or sample"):
            predicted_sample(inp.target, inp.noisy_latents, AC, inp.timesteps, prediction_type)
    else:  # the library inverse used by the SSIM loss gives the same z0
        assert torch.allclose(predicted_sample(inp.target, inp.noisy_latents, AC, inp.timesteps, prediction_type)[1:], z0[0, 1:], atol=1e-5)


def test_loss_ignores_reference_frames():
    z0 = torch.randn(2, 3, 4, 8, 8)
    inp = _inputs(z0)
    pred = inp.target.clone()
    pred[inp.target_mask] += 0.5
    loss = masked_mse(pred, inp)
    pred[~inp.target_mask] += 100.0
    assert torch.isclose(masked_mse(pred, inp), loss) and torch.isclose(loss, torch.tensor(0.25))


def test_hole_loss_weight_weights_the_hidden_latents_of_the_targets():
    """hole_loss_weight = w: each target frame's error is the mean over its latents weighted 1 + w where the
    condition hides the latent and 1 where it shows it; w = 0 is the plain MSE and sets no weights."""
    holes = torch.zeros(1, 3, 8, 8, dtype=torch.bool)
    holes[:, 1:, :2] = True  # 16 of 64 latents of each target hidden
    z0 = torch.randn(1, 3, 4, 8, 8)
    plain = _inputs(z0, cond_drop_prob=0.0, holes=holes)
    weighted = _inputs(z0, cond_drop_prob=0.0, holes=holes, hole_loss_weight=3.0)
    assert plain.loss_weight is None
    lw = weighted.loss_weight.reshape(3, 4, 8, 8)
    assert torch.all(lw[1:, :, :2] == 4.0) and torch.all(lw[1:, :, 2:] == 1.0) and torch.all(lw[0] == 1.0)
    pred = weighted.target.clone()
    err = torch.zeros_like(pred)
    err[1:, :, :2] = 1.0  # unit error in the holes only
    # plain: 16/64 of the latents are wrong; weighted: 16*4 / (16*4 + 48*1)
    assert torch.isclose(masked_mse(pred + err, plain), torch.tensor(0.25))
    assert torch.isclose(masked_mse(pred + err, weighted), torch.tensor(64 / 112))
    dropped = _inputs(z0, cond_drop_prob=1.0, holes=holes, hole_loss_weight=3.0)  # no condition: all hidden, uniform
    assert torch.isclose(masked_mse(pred + err, dropped), torch.tensor(0.25))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="num_refs"):
        build_training_inputs(torch.randn(1, 2, 4, 8, 8), 2, SCHED, torch.Generator())
    with pytest.raises(ValueError, match=r"\(B, F, C, h, w\)"):
        build_training_inputs(torch.randn(2, 4, 8, 8), 1, SCHED, torch.Generator())


def test_stroke_masks_are_seeded_and_reach_the_coverage():
    cfg = MaskConfig(min_coverage=0.2, max_coverage=0.4)
    a = random_hole_masks(12, 96, 128, torch.Generator().manual_seed(1), cfg)
    b = random_hole_masks(12, 96, 128, torch.Generator().manual_seed(1), cfg)
    c = random_hole_masks(12, 96, 128, torch.Generator().manual_seed(2), cfg)
    assert a.shape == (12, 96, 128) and a.dtype == torch.bool
    assert torch.equal(a, b) and not torch.equal(a, c)
    cover = a.float().mean(dim=(1, 2))
    assert cover.min() >= 0.2 and cover.max() <= 0.6  # the last stroke may overshoot the drawn target a little
    assert len({round(float(x), 3) for x in cover}) > 6  # coverages vary
    assert not random_hole_mask(32, 32, torch.Generator(), MaskConfig(0.0, 0.0)).any()
    with pytest.raises(ValueError, match="coverage"):
        MaskConfig(min_coverage=0.5, max_coverage=0.2)


def test_warp_shaped_masks_are_side_bands_and_crescents():
    """Warp-shaped holes: a side band touches the image border; a crescent (an ellipse uncovered by its shifted
    copy) never covers its ellipse's own centre region. Seeded, never empty, and mixed in at the given rate."""
    g = torch.Generator().manual_seed(0)
    masks = torch.stack([warp_like_hole_mask(64, 80, g) for _ in range(40)])
    assert masks.shape == (40, 64, 80) and masks.dtype == torch.bool
    assert masks.flatten(1).any(dim=1).all()  # at least one shape per mask
    border = masks[:, 0].any(1) | masks[:, -1].any(1) | masks[:, :, 0].any(1) | masks[:, :, -1].any(1)
    assert 0.3 < border.float().mean() < 1.0  # some masks have bands, some only crescents
    frac = masks.float().mean(dim=(1, 2))
    assert 0.05 < frac.mean() < 0.45 and frac.max() < 0.9
    a = torch.stack([warp_like_hole_mask(32, 32, torch.Generator().manual_seed(s)) for s in range(3)])
    b = torch.stack([warp_like_hole_mask(32, 32, torch.Generator().manual_seed(s)) for s in range(3)])
    assert torch.equal(a, b)
    # mixing: warp_like_prob 0 draws exactly the stroke masks of before (same generator stream)
    s0 = random_hole_masks(6, 32, 32, torch.Generator().manual_seed(5), MaskConfig())
    assert torch.equal(s0, random_hole_masks(6, 32, 32, torch.Generator().manual_seed(5), MaskConfig(warp_like_prob=0.0)))
    mixed = random_hole_masks(200, 32, 32, torch.Generator().manual_seed(5), MaskConfig(warp_like_prob=0.5))
    banded = (mixed[:, 0].all(1) | mixed[:, -1].all(1) | mixed[:, :, 0].all(1) | mixed[:, :, -1].all(1)).float().mean()
    assert 0.1 < banded < 0.6  # a full-length hole along a side: (almost) only bands draw that
    with pytest.raises(ValueError, match="warp_like_prob"):
        MaskConfig(warp_like_prob=1.5)


def test_any_reduction_makes_every_block_with_a_hole_pixel_a_hole(monkeypatch):
    """mask_reduce='any' (pixel-unshuffle models): a latent is a hole when any pixel of its block is, the rule the
    pipeline applies to warp masks; 'nearest' (official) looks at the block's first pixel only."""
    import see3d.conditioning.training_condition as tc

    drawn = torch.zeros(3, 32, 32, dtype=torch.bool)
    drawn[:, 0, 0] = True  # first pixel of block (0, 0)
    drawn[:, 9, 14] = True  # inside block (2, 3), not its first pixel
    monkeypatch.setattr(tc, "random_hole_masks", lambda n, h, w, g, cfg: drawn[:n])
    z0 = torch.randn(1, 3, 4, 8, 8)
    near = _inputs(z0, mask_upscale=4, cond_drop_prob=0.0, mask_reduce="nearest").holes[0, 1:]
    anyr = _inputs(z0, mask_upscale=4, cond_drop_prob=0.0, mask_reduce="any").holes[0, 1:]
    assert near[:, 0, 0].all() and not near[:, 2, 3].any() and near.sum() == 2
    assert anyr[:, 0, 0].all() and anyr[:, 2, 3].all() and anyr.sum() == 4


def test_pixel_masks_zero_only_the_hole_pixels_of_a_block(monkeypatch):
    """mask_reduce='pixel' (pixel-unshuffle latents): one mask channel per pixel of the 4x4 block, and the
    condition loses only the hole pixels' channels (channel c * 16 + k is pixel k of colour c), so a block that
    is partly known still shows its known pixels."""
    import torch.nn.functional as F

    import see3d.conditioning.training_condition as tc

    drawn = torch.zeros(3, 32, 32, dtype=torch.bool)
    drawn[:, 9, 14] = True  # block (2, 3), pixel (1, 2) of the block: k = 6
    monkeypatch.setattr(tc, "random_hole_masks", lambda n, h, w, g, cfg: drawn[:n])
    z0 = torch.full((1, 3, 48, 8, 8), 100.0)
    inp = _inputs(z0, mask_upscale=4, cond_drop_prob=0.0, mask_reduce="pixel", time_ratio=10**9, decay=CONST_W1)  # mask-only condition
    x = inp.model_input.reshape(3, 48 + 48 + 16, 8, 8)
    cond, mask = x[:, 48:96], x[:, 96:]
    assert mask.shape[1] == 16 and torch.equal(mask[0], torch.ones(16, 8, 8))  # the reference: all known
    expect = F.pixel_unshuffle((~drawn[1:3, None]).float(), 4)
    assert torch.equal(mask[1:], expect) and mask[1:, 6, 2, 3].eq(0).all() and mask[1:].sum() == 2 * (16 * 64 - 1)
    hole_ch = [6, 22, 38]
    assert cond[1:, hole_ch, 2, 3].abs().max() < 1.0  # only the 0.03-std noise of t' = 0 is left there
    others = torch.ones(48, dtype=torch.bool)
    others[hole_ch] = False
    assert cond[1:, others, 2, 3].min() > 90  # the block's known pixels pass
    assert inp.holes[0, 1:, 2, 3].all() and inp.holes[0, 1:].sum() == 2  # block-level holes: blocks with a hole pixel
    with pytest.raises(ValueError, match="multiple of 16"):
        _inputs(torch.randn(1, 3, 4, 8, 8), mask_upscale=4, mask_reduce="pixel")
