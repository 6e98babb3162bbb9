"""Inference-time visual condition and sampler schedule against the official parity fixture (tests/data/parity)."""

from __future__ import annotations

import csv

import pytest
import torch
from safetensors.torch import load_file

from conftest import parity_path
from see3d.conditioning.visual_condition import (
    build_unet_input,
    combine_guidance,
    condition_timestep,
    decay_weight,
    downsample_mask,
    mix_condition,
    noise_latents,
    restore_references,
)
from see3d.pipelines.grouping import anchor_indices, official_sr_group_size, plan_groups
from see3d.pipelines.schedule import make_scheduler, official_timesteps, set_timesteps

STEPS = ["step_t999", "step_t239", "step_t011"]


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parity
def test_decay_weight_matches_official():
    rows = _csv(parity_path("visual_condition", "decay_weight.csv"))
    t_prime = torch.tensor([int(r["t_prime"]) for r in rows])
    expected = torch.tensor([float(r["w_float32"]) for r in rows], dtype=torch.float32)
    assert (decay_weight(t_prime) - expected).abs().max() <= 1e-6
    # the table in the spec, in t units
    for t, w in [(999, 0.9986), (500, 0.857), (300, 0.800), (299, 0.742), (100, 0.040), (11, 0.010)]:
        assert abs(float(decay_weight(condition_timestep(t))) - w) < 1e-3


@pytest.mark.parity
def test_zero_snr_schedule_matches_official():
    ref = load_file(str(parity_path("visual_condition", "schedule.safetensors")))
    sched = make_scheduler({})
    assert (sched.alphas_cumprod - ref["alphas_cumprod"]).abs().max() <= 1e-6
    assert sched.alphas_cumprod[999] == 0
    assert abs(float(sched.final_alpha_cumprod) - float(ref["final_alpha_cumprod"])) <= 1e-7
    assert sched.config.prediction_type == "v_prediction"
    # without the rescale the table would be clearly different (guards against silently losing the flag)
    assert (ref["alphas_cumprod_no_rescale"][199] - sched.alphas_cumprod[199]).abs() > 1e-2


@pytest.mark.parity
def test_official_trailing_timesteps_match():
    rows = _csv(parity_path("visual_condition", "timestep_schedule.csv"))
    sched = make_scheduler({"timestep_scaling": "trailing"})
    for run, n, count in [("base", 50, 53), ("SR", 30, 31)]:
        expected = [int(r["t"]) for r in rows if r["run"] == run]
        got = set_timesteps(sched, n).tolist()
        assert got == expected and len(got) == count
        assert sched.num_inference_steps == n  # the DDIM jump stays 1000 // n
        prev = [int(r["ddim_prev_t"]) for r in rows if r["run"] == run]
        assert prev == [t - 1000 // n for t in got]
    assert official_timesteps(50)[:3].tolist() == [999, 980, 961] and official_timesteps(30)[-1] == 9


def test_other_timestep_scaling_uses_diffusers_spacing():
    sched = make_scheduler({"timestep_scaling": "none", "timestep_spacing": "leading"})
    ts = set_timesteps(sched, 50)
    assert len(ts) == 50 and ts[0] == 981 and ts[-1] == 1


@pytest.mark.parity
@pytest.mark.parametrize("name", STEPS)
def test_worked_step_matches_official(name):
    d = load_file(str(parity_path("visual_condition", f"{name}.safetensors")))
    sched = make_scheduler({})
    ac = sched.alphas_cumprod
    g, t, s = int(d["num_refs"]), int(d["t"]), float(d["guidance_scale"])
    h, w = d["img_latents"].shape[-2:]

    x = restore_references(d["latents_in"], d["img_latents"], g)
    assert torch.equal(x, d["latents"])
    mask = downsample_mask(d["mask_fullres"], (h, w))
    assert torch.equal(mask, d["mask_latents"]) and torch.equal(mask, d["mask_fullres"][:, :, ::8, ::8])
    t_prime = condition_timestep(t)
    assert int(t_prime) == int(d["t_prime"])
    assert abs(float(ac[t_prime]) - float(d["alpha_bar_t_prime"])) <= 1e-6
    noisy = noise_latents(d["img_latents"], d["noise_warp"], ac, t_prime)
    assert (noisy - d["noisy_latents_warp"]).abs().max() <= 2e-6
    v = mix_condition(x, d["img_latents"], d["noise_warp"], ac, t, g)
    assert (v - d["cond_latent"]).abs().max() <= 2e-6
    assert torch.equal(v[:g], d["img_latents"][:g])
    model_input = build_unet_input(x, v, mask, d["img_latents"], g, guidance=True)
    assert model_input.shape == d["model_input"].shape
    assert (model_input - d["model_input"]).abs().max() <= 2e-6
    assert torch.equal(model_input[3:], d["uncond_input"])  # exact: no arithmetic in the uncond branch
    pred = combine_guidance(d["model_output"], s)
    assert (pred - d["pred_cfg"]).abs().max() <= 1e-6
    set_timesteps(sched, 50)
    prev = sched.step(pred, t, x).prev_sample
    assert (prev - d["ddim_prev_sample_vpred"]).abs().max() <= 2e-6


def test_unconditional_branch_zeroes_only_targets():
    x = torch.randn(4, 4, 2, 3)
    v = torch.randn(4, 4, 2, 3)
    ref = torch.randn(4, 4, 2, 3)
    mask = torch.ones(4, 1, 2, 3)
    both = build_unet_input(x, v, mask, ref, num_refs=2, guidance=True)
    cond, uncond = both[:4], both[4:]
    assert torch.equal(cond, torch.cat([x, v, mask], 1))
    assert torch.equal(uncond[:, :4], x)
    assert torch.equal(uncond[:2, 4:8], ref[:2]) and torch.count_nonzero(uncond[2:, 4:]) == 0
    assert torch.equal(build_unet_input(x, v, mask, ref, 2, guidance=False), cond)


def test_guidance_convention():
    cond, uncond = torch.full((2, 1), 1.0), torch.full((2, 1), 0.5)
    out = combine_guidance(torch.cat([cond, uncond]), 2.0)
    assert torch.allclose(out, torch.full((2, 1), 2.0))  # 3 * 1 - 2 * 0.5


def test_group_planning_and_anchors():
    assert [list(r) for r in plan_groups(5, 2)] == [[0, 1], [2, 3], [4]]
    assert plan_groups(5, None) == [range(0, 5)] and plan_groups(0, 3) == []
    assert anchor_indices(0, 2) == [] and anchor_indices(1, 2) == [0]
    assert anchor_indices(10, 2) == [4, 9] and anchor_indices(6, 3) == [1, 3, 5]
    assert official_sr_group_size(1, 10) == 7
