"""Where each verb puts its models and splats: the one loader (device, dtype, offload, VAE slicing/tiling),
downstream renders on the trainer's device, eval on a GPU without gsplat, depth and text-to-image dtypes."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from see3d.errors import InputError
from see3d.pipelines.loader import load_see3d, place_pipeline
from see3d.pipelines.tiny import write_tiny_see3d
from splat_scenes import synthetic_views

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEMO_MVD = Path(__file__).resolve().parents[1] / "src" / "see3d" / "assets" / "demo_mvd"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return write_tiny_see3d(tmp_path_factory.mktemp("tiny") / "MVD_weights", seed=0, variants=("single", "SR"))


def test_loader_turns_on_vae_slicing_and_tiling_for_every_verb(tiny_weights):
    pipe = load_see3d(tiny_weights, "single", "cpu", "float32")
    assert pipe.vae.use_slicing and pipe.vae.use_tiling
    assert pipe.unet.dtype == torch.float32 and pipe.device == torch.device("cpu")
    assert not load_see3d(tiny_weights, "single", "cpu", "float32", vae_tiling=False).vae.use_tiling
    # a save_pretrained folder with the lossless pixel-unshuffle VAE (nothing to slice or tile) loads the same way
    demo = load_see3d(DEMO_MVD, "single", "cpu", "bfloat16")
    assert demo.unet.dtype == torch.bfloat16


class _Recorder:
    def __init__(self):
        self.calls = []

    def enable_model_cpu_offload(self, device=None):
        self.calls.append(("offload", device))

    def to(self, device):
        self.calls.append(("to", device))


def test_offload_goes_to_the_chosen_cuda_device():
    rec = _Recorder()
    place_pipeline(rec, torch.device("cuda", 1), offload=True)
    assert rec.calls == [("offload", torch.device("cuda", 1))]
    with pytest.raises(InputError, match="offload"):
        place_pipeline(_Recorder(), torch.device("cpu"), offload=True)


def test_generate_uses_the_one_loader(tiny_weights, tmp_path, monkeypatch):
    """``see3d generate`` places the model through load_see3d (slicing/tiling, dtype, device), as ``see3d mvd`` does."""
    from see3d.cli import main
    from see3d.io.images import save_depth, save_image
    from see3d.pipelines import loader

    seen = []
    real = loader.load_see3d

    def spy(*a, **kw):
        pipe = real(*a, **kw)
        seen.append((pipe.vae.use_slicing, pipe.vae.use_tiling, pipe.unet.dtype))
        return pipe

    monkeypatch.setattr(loader, "load_see3d", spy)
    rng = np.random.default_rng(0)
    save_image(tmp_path / "in.png", rng.random((64, 64, 3)).astype(np.float32))
    save_depth(tmp_path / "in.npy", np.full((64, 64), 2.0, np.float32))
    args = ["generate", "--image", str(tmp_path / "in.png"), "--depth", str(tmp_path / "in.npy"), "--weights", str(tiny_weights),
            "--out", str(tmp_path / "out"), "--size", "64", "--n-frames", "2", "--chunk-size", "2", "--steps", "1",
            "--device", "cpu", "--dtype", "bfloat16"]  # fmt: skip
    assert main(args) == 0
    assert seen == [(True, True, torch.bfloat16)]


def test_mvd_takes_a_save_pretrained_folder(tmp_path):
    """``see3d mvd --weights <save_pretrained folder>`` (the shipped demo model) works like the released layout."""
    from PIL import Image

    from see3d.cli import main

    rng = np.random.default_rng(0)
    (tmp_path / "refs").mkdir()
    (tmp_path / "warps").mkdir()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "refs" / "0.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "warps" / "warp_0.png")
    Image.fromarray(((rng.random((64, 64)) > 0.4) * 255).astype(np.uint8)).save(tmp_path / "warps" / "mask_0.png")
    args = ["mvd", "--weights", str(DEMO_MVD), "--refs", str(tmp_path / "refs"), "--warps", str(tmp_path / "warps"),
            "--out", str(tmp_path / "out"), "--size", "64", "--steps", "1", "--guidance", "0", "--device", "cpu", "--dtype", "float32"]  # fmt: skip
    assert main(args) == 0
    with Image.open(tmp_path / "out" / "predict_warp_0.png") as im:
        assert im.size == (64, 64)


def test_steps_help_says_how_many_unet_calls(capsys):
    from see3d.cli import main
    from see3d.pipelines.schedule import official_timesteps

    assert len(official_timesteps(50)) == 53 and len(official_timesteps(30)) == 31
    for verb in ("mvd", "generate"):
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        assert "N=50: 53 calls" in " ".join(capsys.readouterr().out.split())


def test_reconstruct_renders_metrics_mesh_and_video_where_it_trained(tmp_path, monkeypatch):
    """Held-out metrics and the flythrough (and the mesh, same path) render on the trainer's device with the trainer's rasterizer (with
    ``--backend gsplat`` they used to get CPU splats and the gsplat backend)."""
    from see3d.splat import export, optimize
    from see3d.splat.config import ReconstructConfig
    from see3d.splat.reconstruct import reconstruct

    views, _ = synthetic_views(n_views=4, width=24, height=16)
    monkeypatch.setattr(optimize, "resolve_splat_placement", lambda device, backend: (torch.device("cpu"), "torch"))
    seen = []
    real = export.render

    def spy(g, *a, backend="auto", **kw):
        seen.append((g.device.type, backend))
        return real(g, *a, backend=backend, **kw)

    monkeypatch.setattr(export, "render", spy)
    cfg = ReconstructConfig(iters=2, sh_degree=0, init="random", init_points=200, backend="auto", checkpoint_every=0)
    reconstruct(views, tmp_path, cfg, holdout_every=2, video=True, video_frames=2, show_progress=False)
    assert seen and set(seen) == {("cpu", "torch")}


def test_eval_on_a_gpu_without_gsplat_keeps_the_splats_on_the_cpu(tmp_path, monkeypatch):
    """A CUDA machine without working gsplat: diffusion may use the GPU, splats train and render on the CPU."""
    from see3d.eval.runner import EvalConfig, evaluate
    from see3d.eval.scoring import Scorer
    from see3d.splat import optimize, rasterize_gsplat
    from see3d.splat.config import ReconstructConfig

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(rasterize_gsplat, "gsplat_problem", lambda device="cuda:0": "gsplat is not importable")
    placed = []
    real = optimize.resolve_splat_placement

    def spy(device, backend):
        placed.append(real(device, backend))
        return placed[-1]

    monkeypatch.setattr(optimize, "resolve_splat_placement", spy)
    views, _ = synthetic_views(n_views=9, width=24, height=16)
    views.save(tmp_path / "scene")
    cfg = EvalConfig(data=tmp_path / "scene", protocol="dense", format="transforms", out=tmp_path / "out", iters=2,
                     splat=ReconstructConfig(sh_degree=0, init_points=200, checkpoint_every=0))  # fmt: skip
    data = evaluate(cfg, scorer=Scorer())
    assert data["device"] == "cuda:0"  # the diffusion model's device
    assert placed and all(p == (torch.device("cpu"), "cpu") for p in placed)
    # an explicit CUDA device with no rasterizer for it stops before any scene
    with pytest.raises(InputError, match="gsplat is not importable"):
        evaluate(EvalConfig(data=tmp_path / "scene", protocol="dense", out=tmp_path / "out2", device="cuda"), scorer=Scorer())


def test_depth_model_honours_dtype_and_device(tmp_path):
    from see3d.commands._common import make_depth_backend
    from test_depth import _save_depth_anything

    torch.manual_seed(0)
    folder = _save_depth_anything(tmp_path / "da")
    args = argparse.Namespace(depth_model=folder, depth=None, depth_kind="auto", device="cpu", dtype="bfloat16")
    be = make_depth_backend(args)
    assert be.model.dtype == torch.bfloat16 and be.device == torch.device("cpu")
    pred = be.predict(np.random.default_rng(0).random((30, 40, 3)).astype(np.float32))
    assert pred.values.dtype == np.float32 and pred.values.shape == (30, 40) and np.isfinite(pred.values).all()


def _tiny_text_to_image(folder: Path) -> Path:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from see3d.pipelines.tiny import write_tiny_tokenizer

    torch.manual_seed(0)
    write_tiny_tokenizer(folder / "tok")
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=16, attention_head_dim=2, norm_num_groups=8)  # fmt: skip
    vae = AutoencoderKL(block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        latent_channels=4, norm_num_groups=8)  # fmt: skip
    text = CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                        max_position_embeddings=77, bos_token_id=512, eos_token_id=513, pad_token_id=513))  # fmt: skip
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=CLIPTokenizer.from_pretrained(folder / "tok"), unet=unet,
                                   scheduler=DDIMScheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False)  # fmt: skip
    pipe.save_pretrained(folder / "t2i")
    return folder / "t2i"


def test_text_to_image_runs_on_the_chosen_device_and_dtype(tmp_path, monkeypatch):
    from see3d.pipelines import generation, loader

    t2i = _tiny_text_to_image(tmp_path)
    seen = []
    real = loader.place_pipeline

    def spy(pipe, device, offload=False):
        seen.append((pipe.unet.dtype, device, offload))
        return real(pipe, device, offload)

    monkeypatch.setattr(loader, "place_pipeline", spy)
    img = generation.text_to_image("a red cube", t2i, seed=0, steps=2, height=32, width=32, device="cpu", dtype="bfloat16")
    assert seen == [(torch.bfloat16, torch.device("cpu"), False)]
    assert img.shape == (32, 32, 3) and img.dtype == np.float32 and np.isfinite(img).all()
