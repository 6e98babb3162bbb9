"""Speed and memory of the See3D multi-view diffusion pipeline: seconds per generated view, peak memory.

Builds a random-weight pipeline of a given size (no downloads, no weights needed), runs the full ``__call__``
(CLIP context, VAE encode, denoising with CFG, VAE decode) for R references + T targets, and prints, for each
setting, seconds per generated view and peak memory, with ratios against the first setting (the baseline,
fp32 eager) measured in the same run, and the PSNR of each setting's output images against the baseline's (same
weights, same inputs, same seed: how far a dtype moves the result). Every setting runs in a fresh process so
peak memory is its own. The line ``--dtype auto`` says which dtype the package picks on this machine.

Configs: ``tiny`` (the test pipeline, 64 px), ``mid`` (UNet width 128 with the SD-2.1 layout, 256 px),
``sd21`` (the released sizes: SD-2.1 UNet with 9 input channels, SD VAE, OpenCLIP-H-sized text and image towers,
512 px; ~10 GB of RAM on CPU). Settings on CPU: fp32 (baseline), bf16, fp32 in groups of half the targets.
On CUDA: fp32 (baseline, TF32 off), fp16, bf16, fp16 + model CPU offload (the official setting).

    .venv/bin/python benchmarks/mvd_speed.py --config tiny mid --device cpu
    .venv/bin/python benchmarks/mvd_speed.py --config mid --device cpu --views 2 --steps 3 --threads 2
    .venv/bin/python benchmarks/mvd_speed.py --config sd21 --device cuda --views 8 --steps 50
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "tiny": {"unet": None, "vae": None, "text": None, "size": 64, "steps": 10},
    "mid": {
        "unet": {
            "model_channels": 128,
            "channel_mult": [1, 2, 4, 4],
            "num_res_blocks": 2,
            "attention_resolutions": [4, 2, 1],
            "num_head_channels": 64,
        },
        "vae": {"block_out_channels": (32, 64, 128, 128), "layers_per_block": 1, "norm_num_groups": 32},
        "text": None,
        "size": 256,
        "steps": 5,
    },
    "sd21": {
        "unet": {
            "model_channels": 320,
            "channel_mult": [1, 2, 4, 4],
            "num_res_blocks": 2,
            "attention_resolutions": [4, 2, 1],
            "num_head_channels": 64,
        },
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
        "text": {"hidden": 1024, "layers": 23, "heads": 16, "vision_hidden": 1280, "vision_layers": 32, "patch": 14, "image": 224},
        "size": 512,
        "steps": 50,
    },
}


def settings_for(device: str, num_targets: int) -> list[dict]:
    if device.startswith("cuda"):
        return [
            {"name": "fp32 eager (baseline)", "dtype": "float32"},
            {"name": "fp16", "dtype": "float16"},
            {"name": "bf16", "dtype": "bfloat16"},
            {"name": "fp16 + cpu offload (official)", "dtype": "float16", "offload": True},
        ]
    return [
        {"name": "fp32 eager (baseline)", "dtype": "float32"},
        {"name": "bf16", "dtype": "bfloat16"},
        {"name": "fp32, groups of T/2 + anchors", "dtype": "float32", "group_size": max(1, (num_targets + 1) // 2)},
    ]


def build_pipeline(config: str, dtype, device: str, tmp: Path):
    """A random-weight See3DPipeline of the named size (the tiny one loaded through the official layout)."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    from see3d.models.mv_unet import MultiViewUNet
    from see3d.pipelines.schedule import make_scheduler
    from see3d.pipelines.see3d_pipeline import IMAGE_ENCODER_DIR, See3DPipeline, load_clip_image_encoder
    from see3d.pipelines.tiny import SCHEDULER_CONFIG, write_tiny_see3d

    folder = write_tiny_see3d(tmp / "tiny", variants=("single",))
    spec = CONFIGS[config]
    if spec["unet"] is None:
        return See3DPipeline.from_official(folder, torch_dtype=dtype)
    text = spec["text"]
    width = text["hidden"] if text else 32
    with torch.device(device if device.startswith("cuda") else "cpu"):
        if text:
            text_encoder = CLIPTextModel(
                CLIPTextConfig(vocab_size=514, hidden_size=width, intermediate_size=4 * width, num_hidden_layers=text["layers"],
                               num_attention_heads=text["heads"], max_position_embeddings=77, bos_token_id=512, eos_token_id=513, pad_token_id=513)
            )  # fmt: skip
            vh = text["vision_hidden"]
            image_encoder = CLIPVisionModelWithProjection(
                CLIPVisionConfig(hidden_size=vh, intermediate_size=4 * vh, num_hidden_layers=text["vision_layers"], num_attention_heads=16,
                                 image_size=text["image"], patch_size=text["patch"], projection_dim=width)
            )  # fmt: skip
            processor = CLIPImageProcessor()
        else:
            text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder")
            image_encoder = load_clip_image_encoder(folder / IMAGE_ENCODER_DIR, torch.float32)  # a whole-CLIP folder, as released
            processor = CLIPImageProcessor.from_pretrained(folder / IMAGE_ENCODER_DIR)
        unet = MultiViewUNet(image_size=32, in_channels=9, out_channels=4, context_dim=width, **spec["unet"])
        vae = AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            sample_size=768,
            **spec["vae"],
        )
    pipe = See3DPipeline(
        vae=vae.to(dtype), text_encoder=text_encoder.to(dtype), tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"), unet=unet.to(dtype),
        scheduler=make_scheduler(SCHEDULER_CONFIG), feature_extractor=processor, image_encoder=image_encoder,
    )  # fmt: skip
    return pipe


def run_setting(config: str, setting: dict, device: str, refs: int, views: int, steps: int, size: int, threads: int) -> dict:
    """One measurement, in its own process: warm-up call, then a timed call."""
    import resource

    import torch

    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = getattr(torch, setting["dtype"])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch.manual_seed(0)  # the same random weights in every setting's process
    with tempfile.TemporaryDirectory() as tmp:
        pipe = build_pipeline(config, dtype, device, Path(tmp))
    if setting.get("offload"):
        pipe.to("cpu")
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(refs, 3, size, size, generator=g)
    warps = torch.rand(views, 3, size, size, generator=g)
    masks = (torch.rand(views, 1, size, size, generator=g) > 0.3).float()
    kw = dict(height=size, width=size, output_type="pt", group_size=setting.get("group_size"), super_resolution=False)
    pipe(ref, warps, masks, num_inference_steps=1, generator=torch.Generator().manual_seed(0), **kw)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = pipe(ref, warps, masks, num_inference_steps=steps, generator=torch.Generator().manual_seed(0), **kw).images
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0
    seconds = time.perf_counter() - t0
    return {"s_per_view": seconds / views, "seconds": seconds, "peak_mib": peak, "images": out.float().cpu().numpy()}


def psnr_db(a, b) -> float:
    """PSNR in dB between two image sets in [0, 1] (inf when identical)."""
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", nargs="+", default=["tiny", "mid"], choices=list(CONFIGS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--refs", type=int, default=1)
    ap.add_argument("--views", type=int, default=4, help="target views generated per run")
    ap.add_argument("--steps", type=int, default=None, help="DDIM steps (default per config)")
    ap.add_argument("--size", type=int, default=None, help="resolution (default per config)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    import torch

    from see3d.device import cpu_has_fast_bf16, resolve_device, resolve_dtype

    dev = resolve_device(args.device)
    print(f"--dtype auto on {dev}: {resolve_dtype('auto', dev)} (CPU native bf16: {cpu_has_fast_bf16()}, capability {torch.backends.cpu.get_cpu_capability()})")
    for config in args.config:
        steps = args.steps or CONFIGS[config]["steps"]
        size = args.size or CONFIGS[config]["size"]
        print(
            f"\n== {config}: {args.refs} ref + {args.views} targets, {size}x{size}, {steps} steps, device {args.device}, {args.threads} thread(s)"
        )
        print(
            "   peak memory: "
            + ("CUDA max allocated" if args.device.startswith("cuda") else "growth of the process peak RSS during build + runs")
        )
        print(f"{'setting':34s} {'s/view':>9s} {'peak MiB':>10s} {'speed-up':>9s} {'mem ratio':>10s} {'PSNR vs base':>13s}")
        base = None
        for setting in settings_for(args.device, args.views):
            with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
                try:
                    r = ex.submit(run_setting, config, setting, args.device, args.refs, args.views, steps, size, args.threads).result()
                except Exception as e:  # e.g. bf16 unsupported on an old CPU/GPU: report and go on
                    print(f"{setting['name']:34s} failed: {type(e).__name__}: {e}")
                    continue
            base = base or r
            print(
                f"{setting['name']:34s} {r['s_per_view']:9.3f} {r['peak_mib']:10.0f} {base['s_per_view'] / r['s_per_view']:8.2f}x "
                f"{r['peak_mib'] / max(base['peak_mib'], 1e-9):9.2f}x {psnr_db(r['images'], base['images']):10.1f} dB"
            )


if __name__ == "__main__":
    main()
