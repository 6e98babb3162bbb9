"""The training loop: resume after a stop or a kill repeats an uninterrupted run exactly, the loss only sees
target frames, SD/MVDream initialisation widens the input conv, and the mask-only ablation switch."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from see3d.train.build import build_noise_scheduler, build_unet, condition_config
from see3d.train.config import TrainConfig
from see3d.train.trainer import compute_loss, train
from train_helpers import TINY_UNET, make_videos, tiny_config, tiny_overrides, tiny_unet_config

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    return make_videos(root / "vids"), tiny_unet_config(root / "unet.json"), root


def _losses(out: Path) -> list[tuple[int, float]]:
    return [(d["step"], d["loss"]) for d in map(json.loads, (out / "loss_log.jsonl").read_text().splitlines())]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return {**load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors")), **{"raw." + k: v for k, v in load_file(str(out / "unet_nonema" / "diffusion_pytorch_model.safetensors")).items()}}


def _assert_same_run(a: Path, b: Path):
    ca, cb = (json.loads((p / "train_config.json").read_text()) for p in (a, b))
    assert {k: v for k, v in ca.items() if k not in ("output_dir", "checkpoint_every")} == {k: v for k, v in cb.items() if k not in ("output_dir", "checkpoint_every")}
    assert _losses(a) == _losses(b)
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def reference_run(setup):
    data, unet_json, root = setup
    res = train(tiny_config(data, root / "ref", unet_json))
    assert res.finished and res.step == 4 and len(_losses(root / "ref")) == 4
    return root / "ref"


def test_stop_and_resume_equals_uninterrupted_run(setup, reference_run):
    data, unet_json, root = setup
    out = root / "stopped"
    first = train(tiny_config(data, out, unet_json, stop_after_steps=3))
    assert not first.finished and first.step == 3
    second = train(tiny_config(data, out, unet_json))
    assert second.finished and [s for s, _ in second.losses] == [4]
    _assert_same_run(reference_run, out)


def test_killed_process_resumes_from_last_checkpoint(setup, reference_run):
    data, unet_json, root = setup
    out = root / "killed"
    o = tiny_overrides(data, out, unet_json, checkpoint_every=1)
    args = [sys.executable, "-m", "see3d.cli", "train"]
    for k, v in o.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            args.append(flag if v else "--no-" + k.replace("_", "-"))
        elif isinstance(v, list):
            args += [flag, *map(str, v)]
        else:
            args += [flag, str(v)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    log = open(root / "killed.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ckpt = out / "checkpoints" / "step-00000001"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # kill at an arbitrary point after the first checkpoint
    proc.wait()
    log.close()
    assert ckpt.exists(), (root / "killed.log").read_text()[-2000:]
    assert not (out / "unet").exists()  # killed mid-run: the final export was not reached
    res = train(tiny_config(data, out, unet_json, checkpoint_every=1))
    assert res.finished and res.losses and res.losses[0][0] >= 2
    _assert_same_run(reference_run, out)


def test_loss_is_taken_on_target_frames_only(setup):
    data, unet_json, root = setup
    cfg = tiny_config(data, root / "unused", unet_json)
    from see3d.train.clips import find_clips
    from see3d.train.data import ClipDataset, ClipSampling, collate
    from see3d.train.encoders import ContextEncoder, load_vae

    vae = load_vae("pixel_unshuffle", pixel_unshuffle_factor=4)
    unet = build_unet(cfg, 48)
    ds = ClipDataset(find_clips(data), ClipSampling(4, [2], resolution=32, seed=0))
    batch = collate([ds[0], ds[1]])
    sched, cond = build_noise_scheduler(cfg), condition_config(cfg, vae)
    ctx = ContextEncoder("zero", tokens=2, dim=16)

    class RefPoisoned(torch.nn.Module):
        """The same UNet, but its outputs on reference rows are replaced by garbage."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, t, c, num_frames):
            y = self.inner(x, t, c, num_frames=num_frames)
            ref = torch.zeros(len(y), dtype=torch.bool)
            ref[0::num_frames] = ref[1::num_frames] = True  # num_refs = 2: the first two frames of each clip
            return torch.where(ref[:, None, None, None], y + 1e3, y)

    loss, inputs, _ = compute_loss(batch, unet, vae, ctx, sched, cond, torch.Generator().manual_seed(0), "cpu", return_inputs=True)
    poisoned = compute_loss(batch, RefPoisoned(unet), vae, ctx, sched, cond, torch.Generator().manual_seed(0), "cpu")
    assert inputs.target_mask.tolist() == [False, False, True, True] * 2
    assert torch.equal(loss, poisoned)
    # and the loss does react to the targets
    unet.out[2].bias.data += 1.0
    assert compute_loss(batch, unet, vae, ctx, sched, cond, torch.Generator().manual_seed(0), "cpu") > loss + 0.5


def test_ssim_loss_term_is_zero_for_a_perfect_prediction_and_adds_otherwise(setup):
    """--ssim-loss-weight w adds w * (1 - SSIM) of the decoded predicted and true target frames: nothing when the
    model predicts the target exactly, and a term that grows as the prediction degrades."""
    data, unet_json, root = setup
    cfg = tiny_config(data, root / "unused", unet_json)
    from see3d.train.clips import find_clips
    from see3d.train.data import ClipDataset, ClipSampling, collate
    from see3d.train.encoders import ContextEncoder, load_vae
    from see3d.train.trainer import ssim_loss

    vae = load_vae("pixel_unshuffle", pixel_unshuffle_factor=4)
    ds = ClipDataset(find_clips(data), ClipSampling(4, [1], resolution=32, seed=0))
    batch = collate([ds[0]])
    sched, cond = build_noise_scheduler(cfg), condition_config(cfg, vae)
    ctx = ContextEncoder("zero", tokens=2, dim=16)
    unet = build_unet(cfg, 48)
    loss, inputs, pred = compute_loss(batch, unet, vae, ctx, sched, cond, torch.Generator().manual_seed(0), "cpu", return_inputs=True)
    kind = cond.prediction_type
    assert float(ssim_loss(inputs.target, inputs, vae, sched, kind)) < 1e-5
    small = float(ssim_loss(inputs.target + 0.1 * torch.randn_like(inputs.target), inputs, vae, sched, kind))
    large = float(ssim_loss(inputs.target + 1.0 * torch.randn_like(inputs.target), inputs, vae, sched, kind))
    assert 0 < small < large
    with_ssim = compute_loss(batch, unet, vae, ctx, sched, cond, torch.Generator().manual_seed(0), "cpu", ssim_weight=0.5)
    assert torch.isclose(with_ssim, loss + 0.5 * ssim_loss(pred, inputs, vae, sched, kind), atol=1e-5)


def test_hole_ssim_loss_judges_only_the_hidden_pixels(setup):
    """--hole-ssim-loss-weight: errors in pixels the condition showed do not count (they are replaced by the truth,
    as a fill that keeps the warped pixels would), errors in the hidden pixels do, and a clip whose condition was
    dropped is judged whole."""
    import dataclasses

    from see3d.conditioning.visual_condition import latent_validity

    data, unet_json, root = setup
    cfg = dataclasses.replace(tiny_config(data, root / "unused", unet_json), mask_reduce="pixel")
    from see3d.train.clips import find_clips
    from see3d.train.data import ClipDataset, ClipSampling, collate
    from see3d.train.encoders import ContextEncoder, load_vae
    from see3d.train.trainer import ssim_loss

    vae = load_vae("pixel_unshuffle", pixel_unshuffle_factor=4)
    ds = ClipDataset(find_clips(data), ClipSampling(4, [1], resolution=32, seed=0))
    batch = collate([ds[0], ds[1]])
    sched, cond = build_noise_scheduler(cfg), condition_config(cfg, vae)
    assert cond.mask_reduce == "pixel"
    cond = dataclasses.replace(cond, cond_drop_prob=0.0)
    ctx = ContextEncoder("zero", tokens=2, dim=16)
    unet = build_unet(cfg, 48)
    loss, inputs, pred = compute_loss(batch, unet, vae, ctx, sched, cond, torch.Generator().manual_seed(0), "cpu", return_inputs=True)
    kind, c = cond.prediction_type, inputs.target.shape[1]
    visible = latent_validity(inputs.model_input[:, 2 * c :], c)
    rows = inputs.target_mask
    assert 0 < float(visible[rows].mean()) < 1  # the targets have holes and visible pixels
    noise = torch.randn_like(inputs.target)
    assert float(ssim_loss(inputs.target + noise * visible, inputs, vae, sched, kind, holes_only=True)) < 1e-5
    assert float(ssim_loss(inputs.target + noise * visible, inputs, vae, sched, kind)) > 0.05
    assert float(ssim_loss(inputs.target + noise * (1 - visible), inputs, vae, sched, kind, holes_only=True)) > 0.05
    with_term = compute_loss(batch, unet, vae, ctx, sched, cond, torch.Generator().manual_seed(0), "cpu", hole_ssim_weight=0.5)
    assert torch.isclose(with_term, loss + 0.5 * ssim_loss(pred, inputs, vae, sched, kind, holes_only=True), atol=1e-5)
    both = compute_loss(batch, unet, vae, ctx, sched, cond, torch.Generator().manual_seed(0), "cpu", ssim_weight=0.3, hole_ssim_weight=0.5)
    expected = loss + 0.3 * ssim_loss(pred, inputs, vae, sched, kind) + 0.5 * ssim_loss(pred, inputs, vae, sched, kind, holes_only=True)
    assert torch.isclose(both, expected, atol=1e-5)  # the two terms share one decode and still add up
    # a dropped condition hides everything: the hole-only term is the whole-frame term
    dropped = dataclasses.replace(inputs, model_input=torch.cat([inputs.model_input[:, : 2 * c], 0 * inputs.model_input[:, 2 * c :]], 1))
    noisy = inputs.target + 0.3 * noise
    assert torch.isclose(ssim_loss(noisy, dropped, vae, sched, kind, holes_only=True), ssim_loss(noisy, inputs, vae, sched, kind), atol=1e-6)


def test_init_from_ldm_checkpoint_widens_input_conv(tmp_path):
    from see3d.models import MultiViewUNet

    sd_cfg = {**TINY_UNET, "in_channels": 4, "out_channels": 4}
    torch.manual_seed(0)
    sd_model = MultiViewUNet.from_config(sd_cfg)
    for p in sd_model.parameters():
        p.data.normal_()
    ldm = {"model.diffusion_model." + k: v for k, v in sd_model.state_dict().items()}
    ldm["first_stage_model.encoder.conv_in.weight"] = torch.zeros(1)  # other parts of an LDM file are ignored
    save_file(ldm, str(tmp_path / "sd21.safetensors"))
    cfg_json = tmp_path / "unet.json"
    cfg_json.write_text(json.dumps(sd_cfg))
    cfg = TrainConfig(data=tmp_path, init_from=tmp_path / "sd21.safetensors", unet_config=cfg_json, latent_space="pixel_unshuffle", context="zero")
    model = build_unet(cfg, latent_ch=4)
    w = model.state_dict()["input_blocks.0.0.weight"]
    assert w.shape[1] == 9
    assert torch.equal(w[:, :4], sd_model.state_dict()["input_blocks.0.0.weight"])
    assert torch.count_nonzero(w[:, 4:]) == 0
    for k, v in sd_model.state_dict().items():
        if k != "input_blocks.0.0.weight":
            assert torch.equal(model.state_dict()[k], v), k
    # a diffusers-style folder with a 4-channel config (e.g. MVDream converted) is widened the same way
    sd_model.save_pretrained(str(tmp_path / "mvdream_unet"))
    cfg2 = TrainConfig(data=tmp_path, init_from=tmp_path / "mvdream_unet", latent_space="pixel_unshuffle", context="zero")
    w2 = build_unet(cfg2, latent_ch=4).state_dict()["input_blocks.0.0.weight"]
    assert torch.equal(w2, w)
    # a See3D folder with the right width loads unchanged
    model.save_pretrained(str(tmp_path / "see3d_unet"))
    cfg3 = TrainConfig(data=tmp_path, init_from=tmp_path / "see3d_unet", latent_space="pixel_unshuffle", context="zero")
    for k, v in build_unet(cfg3, latent_ch=4).state_dict().items():
        assert torch.equal(v, model.state_dict()[k])


def test_mask_only_ablation_uses_the_clean_masked_latent(setup):
    data, unet_json, root = setup
    from see3d.conditioning import build_training_inputs, latent_validity
    from see3d.train.encoders import load_vae

    vae = load_vae("pixel_unshuffle", pixel_unshuffle_factor=4)
    z0 = torch.randn(1, 4, 48, 8, 8)
    for noise_on in (True, False):
        cfg = tiny_config(data, root / "x", unet_json, condition_noise=noise_on, cond_dropout=0.0)
        sched = build_noise_scheduler(cfg)
        inp = build_training_inputs(z0, 1, sched, torch.Generator().manual_seed(0), timesteps=torch.tensor([900]), config=condition_config(cfg, vae))
        v = inp.model_input[1:, 48:96]
        visible = latent_validity(inp.model_input[1:, 96:], 48)  # the small preset's per-pixel masks, 16 channels
        err = (v - visible * z0[0, 1:]).abs().max()
        if noise_on:
            assert err > 1.0  # at t = 900 the condition is mostly noise
        else:
            assert err < 0.2 and visible.min() == 0  # masked clean latent (std 0.03 noise), holes present


def test_small_preset_exports_a_loadable_see3d_pipeline(setup):
    """Context from tiny random CLIP encoders (as the small preset), exported as a See3DPipeline folder that the
    pipeline loads and runs; the exported UNet equals the EMA weights in ``unet/``."""
    data, _, root = setup
    unet_json = root / "unet32.json"
    unet_json.write_text(json.dumps({**TINY_UNET, "context_dim": 32}))
    out = root / "pipe_run"
    res = train(tiny_config(data, out, unet_json, context="encoders", random_encoders=True, export_pipeline=True, max_steps=2))
    assert res.finished and (out / "encoders" / "text_encoder").is_dir()
    from see3d.pipelines.see3d_pipeline import See3DPipeline

    pipe = See3DPipeline.load(out / "pipeline")  # the entry `see3d mvd/generate/demo` use for any weights folder
    for k, v in load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors")).items():
        assert torch.equal(pipe.unet.state_dict()[k], v), k
    refs, warps = torch.rand(1, 3, 32, 32), torch.rand(2, 3, 32, 32)
    masks = torch.ones(2, 1, 32, 32)
    masks[:, :, 8:20, 8:20] = 0
    imgs = pipe(refs, warps, masks, num_inference_steps=2, height=32, width=32, output_type="pt", generator=torch.Generator().manual_seed(0)).images
    assert imgs.shape == (2, 3, 32, 32) and torch.isfinite(imgs).all()


def test_gradient_checkpointing_gives_the_same_training(setup, reference_run):
    data, unet_json, root = setup
    res = train(tiny_config(data, root / "gc", unet_json, gradient_checkpointing=True, max_steps=2))
    assert res.unet.gradient_checkpointing
    assert res.losses == _losses(reference_run)[:2]
