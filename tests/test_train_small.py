"""Small-config pieces: the pixel-unshuffle VAE, presets and CLI parsing, the VAE latent cache, held-out evaluation."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from see3d.cli import build_parser, main
from see3d.commands.train import config_from_args
from see3d.train.small_model import PixelUnshuffleVAE, small_train_config, small_unet_config
from train_helpers import make_videos

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_pixel_unshuffle_vae_is_exactly_invertible_and_reloads(tmp_path):
    vae = PixelUnshuffleVAE(factor=4)
    x = torch.rand(2, 3, 64, 32) * 2 - 1
    post = vae.encode(x).latent_dist
    assert post.mean.shape == (2, 48, 16, 8) and torch.count_nonzero(post.std) == 0
    assert torch.equal(post.sample(), post.mean)
    assert torch.equal(vae.decode(post.mean).sample, x)
    # a 4x4 block of one pixel colour maps to the channels of one latent position
    assert torch.equal(post.mean[0, :16, 0, 0], x[0, 0, :4, :4].flatten())
    assert vae.config.block_out_channels == [3, 12, 48]  # 2 ** (len - 1) = 4, as AutoencoderKL's factor
    vae.save_pretrained(str(tmp_path / "vae"))
    again = PixelUnshuffleVAE.from_pretrained(str(tmp_path / "vae"))
    assert again.config.factor == 4 and again.latent_channels == 48
    with pytest.raises(ValueError, match="divisible"):
        vae.encode(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ValueError, match="power of two"):
        PixelUnshuffleVAE(factor=3)


def test_small_preset_and_cli_overrides(tmp_path):
    cfg = small_train_config(tmp_path, tmp_path / "out")
    assert (cfg.resolution, cfg.num_frames, cfg.latent_space, cfg.context, cfg.random_encoders) == (64, 5, "pixel_unshuffle", "encoders", True)
    assert cfg.prediction_type == "sample"  # x0: learns usable samples far sooner than v on CPU budgets
    assert (cfg.warp_like_masks, cfg.mask_reduce) == (0.5, "pixel")  # one mask channel per pixel of the 4x4 block
    assert cfg.late_timesteps == 0.5  # half the clips train the high-noise steps that 1-2 step sampling uses
    assert cfg.ssim_loss_weight == 0.5 and cfg.hole_loss_weight == 0.0
    assert small_unet_config(48)["in_channels"] == 2 * 48 + 16 and small_unet_config(48, mask_channels=1)["in_channels"] == 97
    kl = small_train_config(tmp_path, tmp_path / "o", latent_space="vae", vae=tmp_path / "v")
    assert kl.mask_reduce == "nearest" and kl.ssim_loss_weight == 0.0  # KL: official masks, no per-step decode
    kl.validate()
    parser = build_parser()
    args = parser.parse_args(["train", "--data", str(tmp_path), "--preset", "small", "--max-steps", "7", "--no-condition-noise"])
    cfg = config_from_args(args)
    assert cfg.max_steps == 7 and cfg.condition_noise is False and cfg.resolution == 64  # given options override the preset
    args = parser.parse_args(["train", "--data", str(tmp_path), "--init-from", str(tmp_path / "u"), "--vae", str(tmp_path / "v"), "--context", "zero"])
    full = config_from_args(args)
    assert full.resolution == 512 and full.num_frames == 5 and full.learning_rate == 1e-5 and full.prediction_type == "v_prediction"
    assert (full.warp_like_masks, full.mask_reduce, full.late_timesteps, full.ssim_loss_weight) == (0.0, "nearest", 0.0, 0.0)  # official: uniform t, MSE


def test_cli_reports_bad_input_and_exits_1(tmp_path, capsys):
    assert main(["train", "--preset", "small", "--data", str(tmp_path / "nope"), "--output-dir", str(tmp_path / "o")]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--num-frames", "4", "--num-refs", "4", "--context", "zero", "--unet-config", "x", "--vae", "v"]) == 1
    assert "num_refs" in capsys.readouterr().err
    assert main(["train", "--preset", "small", "--data", str(tmp_path), "--output-dir", str(tmp_path / "o2"), "--warp-like-masks", "2"]) == 1
    assert "warp_like_masks" in capsys.readouterr().err and not (tmp_path / "o2").exists()  # refused before anything is written
    assert main(["train", "--preset", "small", "--data", str(tmp_path), "--output-dir", str(tmp_path / "o3"), "--late-timesteps", "1.5"]) == 1
    assert "late_timesteps" in capsys.readouterr().err and not (tmp_path / "o3").exists()
    assert main(["train", "--preset", "small", "--data", str(tmp_path), "--output-dir", str(tmp_path / "o4"), "--hole-loss-weight", "-1"]) == 1
    assert "hole_loss_weight" in capsys.readouterr().err and not (tmp_path / "o4").exists()
    assert main(["train", "--preset", "small", "--data", str(tmp_path), "--output-dir", str(tmp_path / "o5"), "--prediction-type", "epsilon", "--ssim-loss-weight", "0.5"]) == 1
    assert "ssim_loss_weight" in capsys.readouterr().err and not (tmp_path / "o5").exists()
    assert main(["train", "--preset", "small", "--data", str(tmp_path), "--output-dir", str(tmp_path / "o6"), "--hole-ssim-loss-weight", "-0.5"]) == 1
    assert "hole_ssim_loss_weight" in capsys.readouterr().err and not (tmp_path / "o6").exists()


def test_base_model_fills_component_paths(tmp_path):
    from see3d.train.config import TrainConfig

    for sub in ("vae", "tokenizer", "text_encoder", "scheduler", "CLIP-ViT-H-14-laion2B-s32B-b79K"):
        (tmp_path / "base" / sub).mkdir(parents=True)
    cfg = TrainConfig(data=tmp_path, base_model=tmp_path / "base", tokenizer=tmp_path / "mine").resolved()
    assert cfg.vae == tmp_path / "base" / "vae" and cfg.tokenizer == tmp_path / "mine"
    assert cfg.image_encoder == tmp_path / "base" / "CLIP-ViT-H-14-laion2B-s32B-b79K" and cfg.scheduler == tmp_path / "base" / "scheduler"


def test_vae_latent_cache_trains_and_matches_the_encoder(tmp_path):
    from diffusers import AutoencoderKL

    from see3d.train.clips import find_clips, resize_frames, to_model_pixels
    from see3d.train.data import ClipDataset, ClipSampling
    from see3d.train.encoders import encode_posterior
    from see3d.train.latent_cache import build_latent_cache, read_cached
    from see3d.train.trainer import train

    data = make_videos(tmp_path / "vids", n=2, frames=6)
    torch.manual_seed(0)
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 8, 16),
                        layers_per_block=1, latent_channels=4, norm_num_groups=8)  # fmt: skip
    vae.save_pretrained(str(tmp_path / "vae"))
    clips = find_clips(data)
    assert build_latent_cache(clips, tmp_path / "cache", vae, 32, vae_tag="v") == 2
    assert build_latent_cache(clips, tmp_path / "cache", vae, 32, vae_tag="v") == 0  # complete files are reused
    from see3d.train.clips import load_clip_frames

    frames = resize_frames(load_clip_frames(clips[1]), 32)
    mean, std = encode_posterior(vae, to_model_pixels(frames))
    cached = read_cached(tmp_path / "cache", clips[1].key, [4, 1])
    assert torch.allclose(cached["mean"], mean[[4, 1]], atol=2e-3) and torch.allclose(cached["std"], std[[4, 1]], atol=2e-3)
    item = ClipDataset(clips, ClipSampling(3, [1], resolution=32), latent_cache_dir=tmp_path / "cache")[0]
    assert item["latent_mean"].shape == (3, 4, 8, 8) and "pixels" not in item

    unet = tmp_path / "unet.json"
    unet.write_text(json.dumps({"image_size": 8, "in_channels": 9, "model_channels": 32, "out_channels": 4, "num_res_blocks": 1,
                                "attention_resolutions": [1], "channel_mult": [1, 1], "num_head_channels": 16, "context_dim": 8}))  # fmt: skip
    res = train(small_train_config(data, tmp_path / "out", latent_space="vae", vae=tmp_path / "vae", cache_latents=True, unet_config=unet,
                                   resolution=32, num_frames=3, context="zero", context_tokens=2, export_pipeline=False, max_steps=2))  # fmt: skip
    assert res.finished and all(np.isfinite(v) for _, v in res.losses)
    assert len(list((tmp_path / "out" / "latent_cache").glob("*.safetensors"))) == 2


def test_heldout_evaluation_with_telea(tmp_path):
    from see3d.errors import InputError
    from see3d.eval.evaluate_small import TELEA, WARP_ONLY, EvalSmallConfig, evaluate_small

    with pytest.raises(InputError, match="nope"):  # a bad pair is refused before any scene is made
        evaluate_small({}, tmp_path / "bad", EvalSmallConfig(n_scenes=2), pairs=[(TELEA, "nope")])
    assert not (tmp_path / "bad").exists()
    res = evaluate_small({}, tmp_path / "ev", EvalSmallConfig(n_scenes=2, size=32, frames=8, target_offsets=[3, 7]), pairs=[(TELEA, WARP_ONLY)])
    paired = res["paired"][f"{TELEA} - {WARP_ONLY}"]
    gain = np.subtract(res["per_view"][TELEA]["psnr"], res["per_view"][WARP_ONLY]["psnr"])
    assert paired["psnr"]["mean"] == pytest.approx(gain.mean()) and paired["psnr"]["n"] == 4 and paired["psnr"]["wins"] == 4
    assert "| OpenCV Telea inpainting - warp only (holes black) | +" in (tmp_path / "ev" / "results.md").read_text()
    s = res["summary"]
    assert set(s) == {"warp only (holes black)", "OpenCV Telea inpainting"} and s["OpenCV Telea inpainting"]["views"] == 4
    # inpainting fills holes better than leaving them black; visible pixels are the same warp in both
    assert s["OpenCV Telea inpainting"]["hole_psnr"] > s["warp only (holes black)"]["hole_psnr"]
    assert 0 < s["OpenCV Telea inpainting"]["hole_frac"] < 1
    assert (tmp_path / "ev" / "results.md").read_text().count("|") > 10 and (tmp_path / "ev" / "examples.png").is_file()


def test_evaluate_small_model_spec_reads_the_cli_suffixes():
    from see3d.eval.evaluate_small import ModelSpec
    from see3d.pipelines.sampler_options import SamplerOptions

    assert ModelSpec.parse("runs/a:b/pipeline") == ModelSpec(Path("runs/a:b/pipeline"))
    assert ModelSpec.parse("p:clean:keep") == ModelSpec.parse("p:keep:clean") == ModelSpec(Path("p"), clean_condition=True, keep_known=True)
    assert ModelSpec.parse("p:keep").options(1.0) == SamplerOptions(keep_known=True, fill_smoothing=1.0)
    assert ModelSpec.parse("p:clean").options(1.0) == SamplerOptions(clean_condition=True)  # smoothing needs kept pixels


def test_evaluate_small_cli_compare_takes_telea_by_short_name(tmp_path, capsys):
    from see3d.eval.evaluate_small import main as evaluate_main

    small = ["--n-scenes", "2", "--size", "32", "--frames", "8", "--target-offsets", "3", "7"]
    assert evaluate_main(["--out", str(tmp_path / "ev"), *small, "--compare", "telea=warp only (holes black)"]) == 0
    assert "| OpenCV Telea inpainting - warp only (holes black) | +" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # not A=B: a usage error, nothing evaluated
        evaluate_main(["--out", str(tmp_path / "ev2"), *small, "--compare", "telea"])
    assert not (tmp_path / "ev2").exists()


def test_paired_difference_mean_standard_error_and_wins():
    from see3d.eval.evaluate_small import paired_difference

    a = {"psnr": [21.0, 20.0, 23.0, 24.0], "ssim": [0.5, 0.6, 0.7, 0.8], "hole_psnr": [15.0, float("nan"), 16.0, 17.0]}
    b = {"psnr": [20.0, 21.0, 21.0, 21.0], "ssim": [0.5, 0.6, 0.7, 0.8], "hole_psnr": [14.0, 13.0, 16.0, 19.0]}
    r = paired_difference(a, b)
    assert r["psnr"] == {"mean": pytest.approx(1.25), "se": pytest.approx(np.std([1, -1, 2, 3], ddof=1) / 2), "wins": 3, "n": 4}
    assert r["ssim"]["mean"] == 0 and r["ssim"]["wins"] == 0
    assert r["hole_psnr"]["n"] == 3 and r["hole_psnr"]["mean"] == pytest.approx(-1 / 3)  # the NaN view is left out


def test_pixel_stats_give_unit_variance_latents(tmp_path):
    from see3d.train.clips import find_clips, load_clip_frames, resize_frames
    from see3d.train.encoders import encode_posterior, load_vae
    from see3d.train.small_model import pixel_stats

    clips = find_clips(make_videos(tmp_path / "v", n=3, frames=5))
    mean, std = pixel_stats(clips, 32)
    px = np.concatenate([resize_frames(load_clip_frames(c), 32) for c in clips]).astype(np.float64) / 127.5 - 1
    assert mean == pytest.approx(px.mean(), abs=1e-9) and std == pytest.approx(px.std(), abs=1e-9)
    vae = load_vae("pixel_unshuffle", None, 4, 1 / std, mean)
    z, _ = encode_posterior(vae, torch.from_numpy(px).permute(0, 3, 1, 2).float())
    assert abs(float(z.mean())) < 1e-3 and float(z.std()) == pytest.approx(1.0, abs=1e-3)


def test_training_context_equals_the_pipeline_context(tmp_path):
    """E_text("") + 0.2 E_image(first reference), computed in training as the pipeline computes it at inference."""
    from see3d.pipelines.see3d_pipeline import See3DPipeline
    from see3d.pipelines.tiny import write_tiny_see3d
    from see3d.train.encoders import ContextEncoder

    folder = write_tiny_see3d(tmp_path / "tiny", variants=("single",))
    pipe = See3DPipeline.from_official(folder)
    ctx = ContextEncoder("encoders", folder / "text_encoder", folder / "tokenizer", folder / "CLIP-ViT-H-14-laion2B-s32B-b79K")
    refs = torch.rand(2, 3, 48, 64)
    ours = ctx(refs * 2 - 1, 2, "cpu")
    for i in range(2):
        assert torch.allclose(ours[i : i + 1], pipe.encode_context(refs[i]), atol=1e-5)
    assert ours.shape == (2, 77, 32) and not torch.allclose(ours[0], ours[1])


def test_simulated_depth_estimate_is_smooth_seeded_and_off_by_default():
    from see3d.eval.evaluate_small import estimated_depth

    depth = np.full((64, 64), 2.0, np.float32)
    depth[:, 32:] = 5.0  # a depth edge
    assert np.array_equal(estimated_depth(depth, 0.0, 0.0, seed=0), depth)
    noisy = estimated_depth(depth, 0.1, 0.0, seed=0)
    log_ratio = np.log(noisy / depth)
    assert log_ratio.std() == pytest.approx(0.1, rel=0.05)  # wrong relative depths of the requested size...
    assert np.abs(np.diff(log_ratio, axis=1)).max() < 0.05  # ...that vary smoothly, not per pixel
    assert np.array_equal(noisy, estimated_depth(depth, 0.1, 0.0, seed=0)) and not np.array_equal(noisy, estimated_depth(depth, 0.1, 0.0, seed=1))
    blurred = estimated_depth(depth, 0.0, 2.0, seed=0)
    assert 2.0 < blurred[10, 32] < 5.0 and blurred[10, 0] == pytest.approx(2.0)  # flying pixels at the edge only


def test_whole_block_holes_follow_the_config_and_warn_for_kl_vaes(tmp_path, caplog):
    """--mask-reduce and --warp-like-masks reach the training condition; 'any' with a KL VAE is allowed but
    warned about, since the pipeline gives KL-VAE models nearest-pixel masks at inference."""
    import logging
    from types import SimpleNamespace

    from see3d.train.build import condition_config
    from see3d.train.config import TrainConfig

    kl_vae = SimpleNamespace(config=SimpleNamespace(block_out_channels=[1, 2, 3, 4]))
    cfg = TrainConfig(data=tmp_path, latent_space="vae", vae=tmp_path / "v", mask_reduce="any", warp_like_masks=0.3)
    with caplog.at_level(logging.WARNING, logger="see3d"):
        cc = condition_config(cfg, kl_vae)
    assert (cc.mask_reduce, cc.masks.warp_like_prob, cc.mask_upscale, cc.late_timestep_prob) == ("any", 0.3, 8, 0.0)
    assert "nearest-pixel masks" in caplog.text
    caplog.clear()
    small = small_train_config(tmp_path, tmp_path / "out", mask_reduce="any")
    with caplog.at_level(logging.WARNING, logger="see3d"):
        cc = condition_config(small, PixelUnshuffleVAE(factor=4))
    assert (cc.mask_reduce, cc.mask_upscale) == ("any", 4) and "nearest-pixel" not in caplog.text


def test_pixel_masks_widen_the_unet_input_and_need_pixel_unshuffle(tmp_path):
    """--mask-reduce pixel: the UNet takes 2 x 48 + 16 channels (a mask per pixel of the 4x4 block); with a KL VAE
    it is refused before anything is written."""
    from see3d.errors import InputError
    from see3d.train.build import build_unet, condition_config
    from see3d.train.config import TrainConfig

    cfg = small_train_config(tmp_path, tmp_path / "out")  # the preset's masks
    cfg.validate()
    assert build_unet(cfg, 48).config.in_channels == 112
    assert condition_config(cfg, PixelUnshuffleVAE(factor=4)).mask_reduce == "pixel"
    bad = TrainConfig(data=tmp_path, latent_space="vae", vae=tmp_path / "v", mask_reduce="pixel", init_from=tmp_path / "u")
    with pytest.raises(InputError, match="pixel_unshuffle"):
        bad.validate()
    assert not (tmp_path / "out").exists()


def test_heldout_evaluation_reports_telea_smoothed_when_models_are_smoothed(tmp_path, capsys):
    """--fill-smoothing S smooths the kept-pixel models' fills and adds Telea's fill smoothed the same way, so a
    comparison can show the smoothing alone does not make the difference."""
    from see3d.errors import InputError
    from see3d.eval.evaluate_small import TELEA, TELEA_SMOOTHED, EvalSmallConfig, evaluate_small
    from see3d.eval.evaluate_small import main as evaluate_main

    small = dict(n_scenes=2, size=32, frames=8, target_offsets=[3, 7])
    with pytest.raises(InputError, match="fill_smoothing"):  # a bad sigma is refused before anything is written
        evaluate_small({}, tmp_path / "neg", EvalSmallConfig(fill_smoothing=-1.0, **small))
    assert not (tmp_path / "neg").exists()
    with pytest.raises(InputError, match="fill smoothed"):  # no such row without smoothing
        evaluate_small({}, tmp_path / "bad", EvalSmallConfig(**small), pairs=[(TELEA_SMOOTHED, TELEA)])
    res = evaluate_small({}, tmp_path / "ev", EvalSmallConfig(fill_smoothing=1.0, **small), pairs=[(TELEA_SMOOTHED, TELEA)])
    a, b = res["per_view"][TELEA_SMOOTHED], res["per_view"][TELEA]
    assert a["hole_frac"] == b["hole_frac"] and a["psnr"] != b["psnr"]  # same views, only the fill changed
    args = ["--out", str(tmp_path / "cli"), "--n-scenes", "2", "--size", "32", "--frames", "8", "--target-offsets", "3", "7"]
    assert evaluate_main([*args, "--fill-smoothing", "1", "--compare", "telea-smoothed=telea"]) == 0
    assert f"| {TELEA_SMOOTHED} - {TELEA} |" in capsys.readouterr().out


def test_generation_refuses_fill_smoothing_without_kept_pixels():
    from see3d.errors import InputError
    from see3d.pipelines.generation import GenerateConfig, make_filler

    for cfg in (GenerateConfig(fill="telea", keep_known=True, fill_smoothing=1.0), GenerateConfig(fill="mvd", fill_smoothing=1.0)):
        with pytest.raises(InputError, match="fill-smoothing"):
            make_filler(cfg, pipe=object())
