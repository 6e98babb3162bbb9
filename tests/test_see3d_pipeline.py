"""See3DPipeline end to end on the tiny random pipeline (CPU, seconds)."""

from __future__ import annotations

import shutil

import numpy as np
import PIL.Image
import pytest
import torch

from see3d.errors import InputError, WeightsError
from see3d.pipelines.inputs import to_image_batch, to_mask_batch
from see3d.pipelines.sampler_options import SamplerOptions
from see3d.pipelines.schedule import official_timesteps
from see3d.pipelines.see3d_pipeline import See3DPipeline
from see3d.pipelines.tiny import write_tiny_see3d

H = W = 64
KW = dict(height=H, width=W, num_inference_steps=4, output_type="pt")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_tiny_see3d(tmp_path_factory.mktemp("tiny") / "MVD_weights", seed=0)


@pytest.fixture(scope="module")
def pipe(weights):
    p = See3DPipeline.from_official(weights, variant="single", sr=True)
    p.set_progress_bar_config(disable=True)
    return p


def _inputs(t=3, r=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    refs = torch.rand(r, 3, H, W, generator=g)
    warps = torch.rand(t, 3, H, W, generator=g)
    masks = (torch.rand(t, 1, H, W, generator=g) > 0.3).float()
    return refs, warps, masks


class UNetSpy:
    """Records the inputs of every UNet call."""

    def __init__(self, unet):
        self.calls = []
        self.handle = unet.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        x, t, ctx = args
        self.calls.append({"x": x.clone(), "t": t.clone(), "ctx": ctx.clone(), "num_frames": kwargs["num_frames"]})

    def remove(self):
        self.handle.remove()


def test_generates_targets_reproducibly(pipe):
    refs, warps, masks = _inputs()
    a = pipe(refs, warps, masks, generator=torch.Generator().manual_seed(0), super_resolution=False, **KW)
    b = pipe(refs, warps, masks, generator=torch.Generator().manual_seed(0), super_resolution=False, **KW)
    c = pipe(refs, warps, masks, generator=torch.Generator().manual_seed(1), super_resolution=False, **KW)
    assert a.images.shape == (3, 3, H, W) and a.base_images is None
    assert a.images.min() >= 0 and a.images.max() <= 1 and a.images.std() > 0.01
    assert torch.equal(a.images, b.images)
    assert (a.images - c.images).abs().mean() > 1e-3
    # the warps matter: another set of warped views gives other outputs
    d = pipe(refs, warps.flip(0), masks, generator=torch.Generator().manual_seed(0), super_resolution=False, **KW)
    assert (a.images - d.images).abs().mean() > 1e-3


def test_output_types(pipe):
    refs, warps, masks = _inputs(t=2)
    common = dict(generator=torch.Generator().manual_seed(0), super_resolution=False, height=H, width=W, num_inference_steps=2)
    arr = pipe(refs, warps, masks, output_type="np", **common).images
    assert isinstance(arr, np.ndarray) and arr.shape == (2, H, W, 3) and arr.dtype == np.float32
    pil = pipe(refs, warps, masks, output_type="pil", **{**common, "generator": torch.Generator().manual_seed(0)}).images
    assert len(pil) == 2 and pil[0].size == (W, H)
    assert np.abs(np.asarray(pil[0], dtype=np.float32) / 255 - arr[0]).max() <= 0.5 / 255 + 1e-6


def test_each_step_feeds_the_official_9_channel_batch(pipe):
    refs, warps, masks = _inputs(t=2)
    spy = UNetSpy(pipe.unet)
    try:
        pipe(refs, warps, masks, generator=torch.Generator().manual_seed(0), super_resolution=False, **{**KW, "num_inference_steps": 10})
    finally:
        spy.remove()
    expected_t = official_timesteps(10).tolist()  # 999, 900, ..., 9: the official trailing override, 11 calls
    assert [int(c["t"][0]) for c in spy.calls] == expected_t
    ref_latent = pipe.encode_images(refs, torch.Generator().manual_seed(0))
    mask_lat = masks[:, :, ::8, ::8]
    for c in spy.calls:
        x, t = c["x"], c["t"]
        assert c["num_frames"] == 3 and x.shape == (6, 9, H // 8, W // 8)
        assert t.dtype == torch.float32 and torch.all(t == t[0])
        cond, uncond = x[:3], x[3:]
        assert torch.equal(cond[:, :4], uncond[:, :4])  # same x_t in both halves
        assert torch.allclose(cond[0, :4], ref_latent[0], atol=1e-5) and torch.allclose(cond[0, 4:8], ref_latent[0], atol=1e-5)
        assert torch.all(cond[0, 8] == 1) and torch.equal(cond[1:, 8:], mask_lat)
        assert torch.equal(uncond[0, 4:], cond[0, 4:]) and torch.count_nonzero(uncond[1:, 4:]) == 0
        assert c["ctx"].shape == (6, 77, 32) and torch.equal(c["ctx"][0], c["ctx"][5])  # one context for all rows
    # the condition follows the schedule: early it is mostly the noised warp, late mostly x_t itself
    first, last = spy.calls[0]["x"], spy.calls[-1]["x"]
    assert (first[1:3, 4:8] - first[1:3, :4]).abs().mean() > 0.3
    assert (last[1:3, 4:8] - last[1:3, :4]).abs().mean() < (first[1:3, 4:8] - first[1:3, :4]).abs().mean() / 3


def test_clean_condition_feeds_the_warp_latents_at_every_step(pipe):
    """The mask-only ablation's inference mode: the condition channels hold the clean warp latents, every step."""
    refs, warps, masks = _inputs(t=2)
    spy = UNetSpy(pipe.unet)
    try:
        pipe(refs, warps, masks, generator=torch.Generator().manual_seed(0), super_resolution=False, guidance_scale=0.0, options=SamplerOptions(clean_condition=True), **KW)
    finally:
        spy.remove()
    g = torch.Generator().manual_seed(0)
    pipe.encode_images(refs, g)  # the pipeline draws the references' posterior samples first
    warp_latents = pipe.encode_images(warps, g)
    assert len(spy.calls) == len(official_timesteps(KW["num_inference_steps"]))
    for c in spy.calls:
        assert torch.allclose(c["x"][1:, 4:8], warp_latents, atol=1e-5)


def test_one_mask_channel_small_models_get_whole_block_holes(pipe):
    """Pixel-unshuffle models with one mask channel were trained with whole-block holes (--mask-reduce any): a
    latent block with any hole pixel gets mask 0 and a zero condition latent, whatever the warp holds there;
    fully valid blocks keep the warp's latent."""
    from see3d.demo import default_demo_weights
    from see3d.models.mv_unet import MultiViewUNet

    small = See3DPipeline.load(default_demo_weights())
    small.set_progress_bar_config(disable=True)
    conf = {k: v for k, v in small.unet.config.items() if not k.startswith("_")}
    torch.manual_seed(0)
    small.register_modules(unet=MultiViewUNet.from_config({**conf, "in_channels": 2 * 48 + 1}))
    refs, warps = torch.rand(1, 3, 64, 64), torch.rand(2, 3, 64, 64)
    masks = torch.ones(2, 1, 64, 64)
    masks[:, :, :32, :32] = 0  # a hole of whole 4x4 blocks
    masks[:, :, 40, 41] = 0  # one hole pixel in latent block (10, 10)
    spy = UNetSpy(small.unet)
    try:
        small(refs, warps, masks, num_inference_steps=2, guidance_scale=0.0, options=SamplerOptions(clean_condition=True), height=64, width=64, output_type="pt")
    finally:
        spy.remove()
    x = spy.calls[0]["x"][1:]
    cond, mask = x[:, 48:96], x[:, 96]
    expect = torch.ones(16, 16)
    expect[:8, :8] = 0
    expect[10, 10] = 0
    assert torch.equal(mask, expect.expand(2, 16, 16))
    assert torch.count_nonzero(cond[:, :, :8, :8]) == 0 and torch.count_nonzero(cond[:, :, 10, 10]) == 0
    warp_latents = small.encode_images(warps, None)
    known = expect.bool()
    assert torch.allclose(cond[:, :, known], warp_latents[:, :, known], atol=1e-5)
    assert not pipe.block_exact_masks  # a KL VAE (the official model): nearest masks, holes encoded as given


def test_guidance_zero_skips_the_unconditional_branch(pipe):
    refs, warps, masks = _inputs(t=2)
    spy = UNetSpy(pipe.unet)
    try:
        pipe(refs, warps, masks, guidance_scale=0.0, generator=torch.Generator().manual_seed(0), super_resolution=False, **KW)
    finally:
        spy.remove()
    assert all(c["x"].shape[0] == 3 for c in spy.calls)


def test_long_sequences_run_in_groups_with_anchor_views(pipe):
    refs, warps, masks = _inputs(t=3)
    spy = UNetSpy(pipe.unet)
    try:
        out = pipe(
            refs, warps, masks, group_size=1, num_anchors=2, generator=torch.Generator().manual_seed(0), super_resolution=False, **KW
        )
    finally:
        spy.remove()
    steps = len(official_timesteps(4))
    frames = [c["num_frames"] for c in spy.calls]
    assert frames == [2] * steps + [3] * steps + [4] * steps  # ref + 0, 1, 2 anchors + 1 target
    assert out.images.shape == (3, 3, H, W)
    last_group = [c["x"] for c in spy.calls[-steps:]]
    for x in last_group:  # anchors are clean references: fixed latent and condition, all-ones mask
        assert torch.equal(x[1:3, :4], last_group[0][1:3, :4]) and torch.equal(x[1:3, :4], x[1:3, 4:8])
        assert torch.all(x[1:3, 8] == 1)


def test_super_resolution_doubles_the_size_with_clean_condition(pipe):
    refs, warps, masks = _inputs(t=2)
    spy = UNetSpy(pipe.sr_unet)
    try:
        out = pipe(refs, warps, masks, generator=torch.Generator().manual_seed(0), sr_num_inference_steps=3, **KW)
    finally:
        spy.remove()
    assert out.images.shape == (2, 3, 2 * H, 2 * W) and out.base_images.shape == (2, 3, H, W)
    assert len(spy.calls) == len(official_timesteps(3))
    for c in spy.calls:
        x = c["x"]
        assert x.shape == (6, 9, H // 4, W // 4)
        assert torch.equal(x[1:3, 4:8], spy.calls[0]["x"][1:3, 4:8])  # the clean base output, no re-noising
        assert torch.equal(x[1:3, 8:], torch.nn.functional.interpolate(masks, size=(H // 4, W // 4), mode="nearest"))  # own masks
    uncond = spy.calls[0]["x"][3:]  # s = 1 still runs the unconditional half: reference kept, targets zeroed
    assert torch.all(uncond[0, 8] == 1) and torch.count_nonzero(uncond[0, 4:8]) > 0 and torch.count_nonzero(uncond[1:, 4:]) == 0


def test_save_pretrained_round_trip(pipe, tmp_path):
    refs, warps, masks = _inputs(t=2)
    pipe.save_pretrained(tmp_path / "saved")
    loaded = See3DPipeline.from_pretrained(tmp_path / "saved")
    assert loaded.scheduler.config.get("timestep_scaling") == "trailing" and loaded.scheduler.config.prediction_type == "v_prediction"
    kw = dict(sr_num_inference_steps=2, **KW)
    a = pipe(refs, warps, masks, generator=torch.Generator().manual_seed(3), **kw)
    b = loaded(refs, warps, masks, generator=torch.Generator().manual_seed(3), **kw)
    # identical weights (checked); kernels may round differently on differently aligned (mmap'd) tensors: ~1e-7
    for name in ("vae", "text_encoder", "image_encoder", "unet", "sr_unet"):
        sa, sb = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name
    assert (a.images - b.images).abs().max() < 1e-4 and (a.base_images - b.base_images).abs().max() < 1e-4


def test_load_takes_either_layout_and_names_a_broken_folder(weights, pipe, tmp_path):
    official = See3DPipeline.load(weights)  # the released layout
    assert official.sr_unet is None and torch.equal(official.unet.time_embed[0].weight, pipe.unet.time_embed[0].weight)
    pipe.save_pretrained(tmp_path / "saved")
    saved = See3DPipeline.load(tmp_path / "saved", sr=True)  # a save_pretrained folder (model_index.json)
    assert torch.equal(saved.unet.time_embed[0].weight, pipe.unet.time_embed[0].weight) and saved.sr_unet is not None
    shutil.rmtree(tmp_path / "saved" / "unet")
    with pytest.raises(WeightsError, match="saved"):
        See3DPipeline.load(tmp_path / "saved")


def test_keep_known_keeps_warped_pixels_and_fills_holes(pipe):
    refs, warps, masks = _inputs(t=2)
    masks[:, :, :, : W // 2] = 1.0  # the left half is all known: whole latent blocks are blended in
    kw = dict(generator=torch.Generator().manual_seed(0), super_resolution=False, **KW)
    free = pipe(refs, warps, masks, **kw).images
    kept = pipe(refs, warps, masks, options=SamplerOptions(keep_known=True), **{**kw, "generator": torch.Generator().manual_seed(0)}).images
    known = masks.expand_as(kept) > 0.5
    assert torch.equal(kept[known], warps[known])  # valid pixels are the warp's
    assert (free[known] - warps[known]).abs().mean() > 1e-3  # the official sampler regenerates them
    holes = ~known
    assert kept[holes].std() > 0.01 and (kept[holes] - free[holes]).abs().mean() > 1e-4  # holes are generated, in context


def test_fill_smoothing_low_passes_only_the_generated_pixels(pipe):
    from see3d.pipelines.fill_smoothing import smooth_fill

    refs, warps, masks = _inputs(t=2)
    kw = dict(super_resolution=False, **KW)
    kept = pipe(refs, warps, masks, generator=torch.Generator().manual_seed(0), options=SamplerOptions(keep_known=True), **kw).images
    smooth = pipe(refs, warps, masks, generator=torch.Generator().manual_seed(0), options=SamplerOptions(keep_known=True, fill_smoothing=1.0), **kw).images
    known = masks.expand_as(kept) > 0.5
    assert torch.equal(smooth[known], warps[known])
    assert torch.allclose(smooth, smooth_fill(kept, warps, masks, 1.0), atol=1e-6)  # the same fill, smoothed
    assert (smooth[~known] - kept[~known]).abs().mean() > 1e-3
    with pytest.raises(InputError, match="keep_known"):
        pipe(refs, warps, masks, options=SamplerOptions(fill_smoothing=1.0), super_resolution=False, **KW)
    with pytest.raises(InputError, match="fill_smoothing"):
        pipe(refs, warps, masks, options=SamplerOptions(keep_known=True, fill_smoothing=-1.0), super_resolution=False, **KW)


def test_vae_slicing_and_tiling_pass_through(pipe):
    refs, warps, masks = _inputs(t=2)
    kw = dict(generator=torch.Generator().manual_seed(0), super_resolution=False, **KW)
    plain = pipe(refs, warps, masks, **kw).images
    pipe.enable_vae_slicing()
    pipe.enable_vae_tiling()
    try:
        assert pipe.vae.use_slicing and pipe.vae.use_tiling
        sliced = pipe(refs, warps, masks, **{**kw, "generator": torch.Generator().manual_seed(0)}).images
    finally:
        pipe.disable_vae_slicing()
        pipe.disable_vae_tiling()
    assert (plain - sliced).abs().max() < 1e-4  # 64 px images stay below the tile size: same result


def test_pil_inputs_of_any_size(pipe):
    rng = np.random.default_rng(0)
    refs = [PIL.Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8))]
    warps = [PIL.Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(2)]
    masks = [PIL.Image.fromarray(((rng.random((40, 40)) > 0.5) * 255).astype(np.uint8)) for _ in range(2)]
    out = pipe(refs, warps, masks, generator=torch.Generator().manual_seed(0), super_resolution=False, **KW)
    assert out.images.shape == (2, 3, H, W)


def test_input_forms_are_equivalent():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    valid = rng.random((2, 32, 32)) > 0.5
    ref = torch.from_numpy(img).permute(0, 3, 1, 2).float() / 255
    for form in (img, list(img), [PIL.Image.fromarray(a) for a in img], ref, list(ref)):
        assert torch.allclose(to_image_batch(form, 32, 32), ref, atol=1e-6)
    expected = torch.from_numpy(valid).float()[:, None]
    for form in (
        valid,
        valid.astype(np.uint8) * 255,
        valid[..., None],
        torch.from_numpy(valid),
        expected,
        [PIL.Image.fromarray(v) for v in valid],
    ):
        assert torch.equal(to_mask_batch(form, 32, 32), expected)
    assert to_mask_batch(valid[0], 64, 64).shape == (1, 1, 64, 64) and to_image_batch(img[0], 64, 64).shape == (1, 3, 64, 64)


def test_bad_inputs_are_explained(pipe):
    refs, warps, masks = _inputs(t=2)
    with pytest.raises(InputError, match="2 target images but 1 target masks"):
        pipe(refs, warps, masks[:1], **KW)
    with pytest.raises(InputError, match="multiples of 32"):
        pipe(refs, warps, masks, height=48, width=64)
    with pytest.raises(InputError, match=r"values must be in \[0, 1\]"):
        pipe(refs * 2 - 1, warps, masks, **KW)


def test_bfloat16_path_keeps_exact_timesteps(weights):
    pipe = See3DPipeline.from_official(weights, variant="sparse", torch_dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.dtype == torch.bfloat16 and pipe.image_encoder.dtype == torch.float32  # official: CLIP image in fp32
    refs, warps, masks = _inputs(t=2, r=2)
    spy = UNetSpy(pipe.unet)
    try:
        out = pipe(refs, warps, masks, generator=torch.Generator().manual_seed(0), **KW)
    finally:
        spy.remove()
    assert spy.calls[0]["x"].dtype == torch.bfloat16 and spy.calls[0]["t"][0] == 999  # bf16 would round 999 to 1000
    assert spy.calls[0]["num_frames"] == 4 and torch.all(spy.calls[0]["x"][:2, 8] == 1)  # two clean references
    assert torch.isfinite(out.images).all() and out.images.shape == (2, 3, H, W)


def test_missing_parts_are_named(weights, tmp_path):
    with pytest.raises(WeightsError, match="weights folder not found"):
        See3DPipeline.from_official(tmp_path / "nope")
    with pytest.raises(InputError, match="variant"):
        See3DPipeline.from_official(weights, variant="SR")
    broken = tmp_path / "w"
    shutil.copytree(weights, broken, ignore=shutil.ignore_patterns("SR"))
    shutil.rmtree(broken / "vae")
    (broken / "scheduler" / "scheduler_config.json").unlink()
    with pytest.raises(WeightsError, match="missing: vae, scheduler/scheduler_config.json, unet/SR/ema-checkpoint"):
        See3DPipeline.from_official(broken, sr=True)
    shutil.copytree(weights / "vae", broken / "vae")
    shutil.copy(weights / "scheduler" / "scheduler_config.json", broken / "scheduler" / "scheduler_config.json")
    (broken / "unet" / "single" / "ema-checkpoint" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(WeightsError, match="single/ema-checkpoint.*no weights file"):
        See3DPipeline.from_official(broken)
    (broken / "text_encoder" / "config.json").write_text("{ not json")
    with pytest.raises(WeightsError, match="text_encoder.*cannot load"):
        See3DPipeline.from_official(broken, variant="sparse")


def test_official_bin_weights_with_camera_embed_load(tmp_path):
    folder = write_tiny_see3d(tmp_path / "w", seed=1, variants=("single",), camera_dim=16, weights_format="bin")
    assert (folder / "unet" / "single" / "ema-checkpoint" / "diffusion_pytorch_model.bin").is_file()
    pipe = See3DPipeline.from_official(folder)
    assert pipe.unet.config.camera_dim == 16 and pipe.sr_unet is None
    with pytest.raises(InputError, match="sr=True"):
        pipe(*_inputs(t=1), super_resolution=True, **KW)


def test_pixel_mask_models_get_one_mask_channel_per_pixel():
    """A pixel-unshuffle UNet with 2 x 48 + 16 input channels (trained with --mask-reduce pixel) gets the mask of
    every pixel of its 4x4 block; only hole pixels are zeroed in the condition and, keeping the warp, every valid
    pixel is the warp's. A UNet input width that fits no mask layout is refused."""
    import torch.nn.functional as F

    from see3d.demo import default_demo_weights
    from see3d.models.mv_unet import MultiViewUNet

    small = See3DPipeline.load(default_demo_weights())  # the shipped model is one
    small.set_progress_bar_config(disable=True)
    assert small.unet.config.in_channels == 2 * 48 + 16
    conf = {k: v for k, v in small.unet.config.items() if not k.startswith("_")}
    refs, warps = torch.rand(1, 3, 64, 64), torch.rand(2, 3, 64, 64)
    masks = torch.ones(2, 1, 64, 64)
    masks[:, :, :32, :32] = 0
    masks[:, :, 40, 41] = 0  # pixel (0, 1) of latent block (10, 10): channel 1
    kw = dict(num_inference_steps=2, guidance_scale=0.0, height=64, width=64, output_type="pt", generator=torch.Generator().manual_seed(0))
    spy = UNetSpy(small.unet)
    try:
        small(refs, warps, masks, options=SamplerOptions(clean_condition=True), **kw)
    finally:
        spy.remove()
    x = spy.calls[0]["x"][1:]
    cond, mask = x[:, 48:96], x[:, 96:]
    assert torch.equal(mask, F.pixel_unshuffle(masks, 4))
    valid = mask.repeat(1, 3, 1, 1) > 0.5
    assert torch.count_nonzero(cond[~valid]) == 0 and valid[:, :, 10, 10].sum() == 2 * 45
    assert torch.allclose(cond[valid], small.encode_images(warps, None)[valid], atol=1e-5)
    kept = small(refs, warps, masks, options=SamplerOptions(keep_known=True), **{**kw, "generator": torch.Generator().manual_seed(0)}).images
    known = masks.expand_as(kept) > 0.5
    assert torch.equal(kept[known], warps[known])
    small.register_modules(unet=MultiViewUNet.from_config({**conf, "in_channels": 2 * 48 + 5}))
    with pytest.raises(WeightsError, match="5 mask channels"):
        small(refs, warps, masks, **kw)
