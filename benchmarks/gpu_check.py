"""Prepared GPU check (issue #19): the CUDA paths at real scale, in one run of under 8 minutes on one large GPU.

Parts (``--parts``; each prints its figures, all go to ``<out>/gpu_check.json``; a part that cannot run says why
and the others go on; the exit status is 1 when a part failed or a check did not hold):

- ``mvd``: the full-size See3D pipeline (released sizes, random weights: 865.9 M-parameter UNet, SD-2.1 VAE and
  text tower, ViT-H/14 image tower) at 512 px, 1 reference + 4 targets, 50 steps (53 UNet calls), guidance 2:
  seconds per generated view and peak VRAM in fp16 and bf16, each with and without model CPU offload; PSNR
  between the fp16 and bf16 outputs.
- ``reference``: the pipeline against a minimal loop written step by step from the official algorithm (spec
  §2.4: references restored every step, t' = t // 5 noisy-warp mix with the official decay, [x, V, M] and the
  unconditional [x, z_ref|0, M|0] rows, (1 + s) cond - s uncond, DDIM v-prediction update), same inputs, same
  seed, fp16, 10 steps. Check: PSNR of the decoded targets >= 40 dB.
- ``fern``: ``reconstruct`` on LLFF fern (``images_8``, every 8th view held out, ``--fern-iters`` steps) with
  gsplat on the GPU and with our numba rasterizer on the CPU. Check: held-out PSNR within 0.3 dB; speed ratio.
- ``train``: one training step of the full-size UNet at 512 px (1 reference + 4 targets, fp32 weights, bf16
  autocast, AdamW) without and with gradient checkpointing: step time and peak VRAM.

Needs only PyTorch on the GPU machine plus the wheels listed in docs/gpu.md (no downloads at run time).
``--tiny --device cpu`` runs the same code at tiny sizes on a CPU (what a machine without a GPU can check;
CUDA memory figures are then absent and the fern part needs ``--fern``).

    python benchmarks/gpu_check.py --out gpu_check_out --fern gpu_carry/llff_fern
    python benchmarks/gpu_check.py --tiny --device cpu --parts mvd reference train
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import traceback
from pathlib import Path

PARTS = ("mvd", "reference", "fern", "train")


# ---------------------------------------------------------------------------------------------- helpers
def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device) -> float | None:
    import torch

    if torch.device(device).type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


def psnr_db(a, b) -> float:
    """PSNR (dB) between two image tensors/arrays in [0, 1]."""
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def build_pipeline(tiny: bool, device: str, dtype, seed: int = 0):
    """A random-weight See3DPipeline on ``device``: the released sizes, or the tiny test sizes. The same ``seed``
    gives the same weights in any dtype (weights are drawn in fp32, then cast)."""
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
    from see3d.pipelines import tiny as T
    from see3d.pipelines.schedule import make_scheduler
    from see3d.pipelines.see3d_pipeline import See3DPipeline

    with tempfile.TemporaryDirectory() as tmp:
        bpe = T.find_clip_bpe()
        if bpe is not None and not tiny:
            T.write_clip_tokenizer(Path(tmp) / "tok", bpe)
        else:  # the text is always "", so any CLIP tokenizer gives the same ids up to the vocabulary
            T.write_tiny_tokenizer(Path(tmp) / "tok")
        tokenizer = CLIPTokenizer.from_pretrained(Path(tmp) / "tok")
    torch.manual_seed(seed)
    with torch.device(device):
        if tiny:
            w = T.TINY_WIDTH
            text = CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=w, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                                max_position_embeddings=77, bos_token_id=512, eos_token_id=513, pad_token_id=513))  # fmt: skip
            vision = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=w, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                                                    image_size=32, patch_size=8, projection_dim=w))  # fmt: skip
            processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
            vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16),
                                layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=256, scaling_factor=0.18215)  # fmt: skip
            unet = MultiViewUNet(**T.TINY_UNET_CONFIG)
        else:
            text = CLIPTextModel(CLIPTextConfig(**T.FULL_TEXT_CONFIG))
            vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**T.FULL_VISION_CONFIG))
            processor = CLIPImageProcessor()
            vae = AutoencoderKL(**T.FULL_VAE_CONFIG)
            unet = MultiViewUNet(**T.FULL_UNET_CONFIG)
        T.perturb_zero_weights(unet, torch.Generator().manual_seed(seed + 1))  # zero-init output layers would hide the UNet
    pipe = See3DPipeline(vae=vae.to(dtype), text_encoder=text.to(dtype), tokenizer=tokenizer, unet=unet.to(dtype),
                         scheduler=make_scheduler(T.SCHEDULER_CONFIG), feature_extractor=processor, image_encoder=vision)  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_inputs(refs: int, targets: int, size: int, seed: int = 0):
    """Random references, warps and masks (about 30 % holes), (N, 3|1, size, size) in [0, 1] on the CPU."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(refs, 3, size, size, generator=g),
        torch.rand(targets, 3, size, size, generator=g),
        (torch.rand(targets, 1, size, size, generator=g) > 0.3).float(),
    )


# ---------------------------------------------------------------------------------------------- reference loop
def official_decay(t_prime: int) -> float:
    """The official condition weight w(t') (spec §2.4): linear 0.8 -> 1 for t' in [60, 200], 0.8 exp(-0.075 (60 - t')) below."""
    w = 1 - 0.2 * (200 - t_prime) / 140 if t_prime >= 60 else 0.8 * math.exp(-0.075 * (60 - t_prime))
    return min(1.0, max(0.0, w))


def reference_generate(pipe, refs, targets, masks, steps: int, guidance: float, seed: int):
    """The official base-model loop (spec §2.4), written out; the models and their inputs are ``pipe``'s.

    Random draws in the pipeline's order from one CPU generator: VAE posterior samples of the references, then of
    the targets, the initial noise, then one noise tensor per step for the noisy warp. Returns (T, 3, H, W) in [0, 1].
    """
    import torch

    from see3d.device import randn

    dev = pipe._execution_device
    g = torch.Generator().manual_seed(seed)
    vae, unet = pipe.vae, pipe.unet
    sf = vae.config.scaling_factor

    def encode(x):
        return (vae.encode((x * 2 - 1).to(dev, vae.dtype)).latent_dist.sample(g) * sf).float()

    with torch.no_grad():
        context = pipe.encode_context(refs[0])  # E_text("") + 0.2 E_img(ref 0), (1, 77, D)
        z = torch.cat([encode(refs), encode(targets)])  # z_ref of every frame
        n_ref, F = len(refs), len(refs) + len(targets)
        h, w = z.shape[-2:]
        M = torch.cat([torch.ones(n_ref, 1, h, w), masks[:, :, :: refs.shape[-2] // h, :: refs.shape[-1] // w]]).to(dev)  # nearest
        a = pipe.scheduler.alphas_cumprod.to(dev, torch.float32)
        T = int(pipe.scheduler.config.num_train_timesteps)
        ts = list(range(T - 1, 0, -((T - 1) // steps)))  # the official trailing override
        jump = T // steps
        x = randn(z.shape, g, dev)
        x[:n_ref] = z[:n_ref]
        ctx = context.to(dev, unet.dtype).expand(2 * F, -1, -1)
        for t in ts:
            x[:n_ref] = z[:n_ref]
            tp = t // 5
            eps = randn(z.shape, g, dev)
            noisy = a[tp].sqrt() * z + (1 - a[tp]).sqrt() * eps
            wt = official_decay(tp)
            V = wt * noisy + (1 - wt) * x
            V[:n_ref] = z[:n_ref]
            V_u = torch.cat([z[:n_ref], torch.zeros_like(z[n_ref:])])
            M_u = torch.cat([M[:n_ref], torch.zeros_like(M[n_ref:])])
            batch = torch.cat([torch.cat([x, V, M], 1), torch.cat([x, V_u, M_u], 1)])
            out = unet(batch.to(unet.dtype), torch.full((2 * F,), float(t), device=dev), ctx, num_frames=F).float()
            cond, uncond = out[:F], out[F:]
            v = (1 + guidance) * cond - guidance * uncond
            at = a[t]
            ap = a[t - jump] if t - jump >= 0 else a[0]  # set_alpha_to_one=False
            x0 = at.sqrt() * x - (1 - at).sqrt() * v
            e = at.sqrt() * v + (1 - at).sqrt() * x
            x = ap.sqrt() * x0 + (1 - ap).sqrt() * e
        x[:n_ref] = z[:n_ref]
        imgs = [(vae.decode((x[i : i + 1] / sf).to(vae.dtype)).sample.float() / 2 + 0.5).clamp(0, 1).cpu() for i in range(n_ref, F)]
    return torch.cat(imgs)


# ---------------------------------------------------------------------------------------------- parts
def part_mvd(args) -> dict:
    import torch

    size, steps = (64, 3) if args.tiny else (512, 50)
    refs, targets, masks = make_inputs(1, 4, size)
    settings = [("fp16", torch.float16, False), ("bf16", torch.bfloat16, False), ("fp16 + offload", torch.float16, True), ("bf16 + offload", torch.bfloat16, True)]
    if torch.device(args.device).type != "cuda":
        settings = [s for s in settings if not s[2]]  # model CPU offload is a CUDA setting
    rows, outs = [], {}
    for name, dtype, offload in settings:
        pipe = build_pipeline(args.tiny, "cpu" if offload else args.device, dtype)
        if offload:
            pipe.enable_model_cpu_offload(device=args.device)
        kw = dict(height=size, width=size, output_type="pt", super_resolution=False, guidance_scale=2.0)
        pipe(refs[:1], targets[:1], masks[:1], num_inference_steps=1, generator=torch.Generator().manual_seed(0), **kw)  # warm-up
        _reset_peak(args.device)
        t0 = time.perf_counter()
        out = pipe(refs, targets, masks, num_inference_steps=steps, generator=torch.Generator().manual_seed(0), **kw).images
        _sync(args.device)
        sec = time.perf_counter() - t0
        outs[name] = out.float().cpu()
        row = {"setting": name, "s_per_view": sec / len(targets), "peak_vram_gib": _peak_gib(args.device), "finite": bool(torch.isfinite(out).all())}
        rows.append(row)
        print(f"  mvd {name:16s} {row['s_per_view']:8.2f} s/view  peak VRAM {row['peak_vram_gib'] or float('nan'):6.2f} GiB  finite {row['finite']}")
        del pipe
        if torch.device(args.device).type == "cuda":
            torch.cuda.empty_cache()
    fp16_vs_bf16 = psnr_db(outs["fp16"], outs["bf16"])
    print(f"  mvd PSNR fp16 vs bf16 outputs: {fp16_vs_bf16:.1f} dB")
    ok = all(r["finite"] for r in rows)
    return {"size": size, "steps": steps, "refs": 1, "targets": 4, "rows": rows, "psnr_fp16_vs_bf16_db": fp16_vs_bf16, "ok": ok}


def part_reference(args) -> dict:
    import torch

    size, steps = (64, 4) if args.tiny else (512, 10)
    dtype = torch.float32 if torch.device(args.device).type == "cpu" else torch.float16
    refs, targets, masks = make_inputs(1, 2, size, seed=1)
    pipe = build_pipeline(args.tiny, args.device, dtype)
    ours = pipe(refs, targets, masks, num_inference_steps=steps, guidance_scale=2.0, generator=torch.Generator().manual_seed(3), height=size, width=size,
                output_type="pt", super_resolution=False).images.float().cpu()  # fmt: skip
    ref = reference_generate(pipe, refs, targets, masks, steps, 2.0, seed=3)
    p = psnr_db(ours, ref)
    ok = p >= 40.0
    print(f"  reference loop vs pipeline ({str(dtype).removeprefix('torch.')}, {steps} steps, {size} px): PSNR {p:.1f} dB, max |diff| {float((ours - ref).abs().max()):.2e} -> {'ok' if ok else 'DIFFERENT'}")
    return {"size": size, "steps": steps, "dtype": str(dtype), "psnr_db": p, "max_abs_diff": float((ours - ref).abs().max()), "ok": ok}


def part_fern(args) -> dict:
    import dataclasses

    import torch

    from see3d.splat.config import ReconstructConfig
    from see3d.splat.reconstruct import load_training_data, reconstruct

    if args.fern is None or not Path(args.fern).is_dir():
        raise RuntimeError(f"no fern scene at {args.fern} (pass --fern DIR with images_8/ and poses_bounds.npy)")
    data = load_training_data(args.fern, factor=8)
    base = ReconstructConfig(iters=args.fern_iters, sh_degree=1, init_points=60_000, checkpoint_every=0)
    runs = {}
    backends = [("gsplat", args.device), ("cpu", "cpu")] if torch.device(args.device).type == "cuda" else [("cpu", "cpu")]
    for backend, device in backends:
        cfg = dataclasses.replace(base, backend=backend, device=device)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            s = reconstruct(data, tmp, cfg, holdout_every=8, show_progress=False)
        runs[backend] = {"psnr": s["test_psnr"], "ssim": s["test_ssim"], "train_s": s["train_seconds"], "total_s": time.perf_counter() - t0}
        print(f"  fern {backend:6s} ({device}): held-out PSNR {s['test_psnr']:.2f} dB, SSIM {s['test_ssim']:.3f}, train {s['train_seconds']:.0f} s")
    out = {"iters": args.fern_iters, "runs": runs, "ok": True}
    if "gsplat" in runs:
        out["psnr_diff_db"] = runs["gsplat"]["psnr"] - runs["cpu"]["psnr"]
        out["speed_ratio_cpu_over_gsplat"] = runs["cpu"]["train_s"] / runs["gsplat"]["train_s"]
        out["ok"] = abs(out["psnr_diff_db"]) <= 0.3
        print(f"  fern gsplat - cpu: {out['psnr_diff_db']:+.2f} dB ({'ok' if out['ok'] else 'MORE THAN 0.3 dB'}), gsplat {out['speed_ratio_cpu_over_gsplat']:.1f}x faster")
    return out


def _train_step(unet, opt, batch, amp) -> float:
    """One optimisation step: the v/eps target MSE on the target frames (frame 0 is the reference), as the trainer."""
    import torch

    x, t, ctx, target = batch
    with torch.autocast(x.device.type, dtype=amp):
        out = unet(x, t, ctx, num_frames=len(x))
    loss = torch.nn.functional.mse_loss(out.float()[1:], target[1:])
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def part_train(args) -> dict:
    import torch

    from see3d.models.mv_unet import MultiViewUNet
    from see3d.pipelines import tiny as T

    size = 64 if args.tiny else 512
    cfg = T.TINY_UNET_CONFIG if args.tiny else T.FULL_UNET_CONFIG
    dev = torch.device(args.device)
    amp = torch.bfloat16
    rows = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        with torch.device(dev):
            unet = MultiViewUNet(**cfg)
        if checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        opt = torch.optim.AdamW(unet.parameters(), lr=1e-5)
        F, h = 5, size // 8
        g = torch.Generator().manual_seed(0)
        x = torch.randn(F, cfg["in_channels"], h, h, generator=g).to(dev)
        target = torch.randn(F, cfg["out_channels"], h, h, generator=g).to(dev)
        ctx = torch.randn(F, 77, cfg["context_dim"], generator=g).to(dev)
        t = torch.full((F,), 500.0, device=dev)

        batch = (x, t, ctx, target)
        _train_step(unet, opt, batch, amp)  # warm-up (allocates the Adam moments)
        _reset_peak(dev)
        t0 = time.perf_counter()
        loss = _train_step(unet, opt, batch, amp)
        _sync(dev)
        row = {"gradient_checkpointing": checkpointing, "step_s": time.perf_counter() - t0, "peak_vram_gib": _peak_gib(dev), "loss_finite": math.isfinite(loss)}
        rows.append(row)
        print(f"  train step, checkpointing {checkpointing!s:5s}: {row['step_s']:.2f} s, peak VRAM {row['peak_vram_gib'] or float('nan'):.2f} GiB")
        del unet, opt
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return {"size": size, "frames": 5, "rows": rows, "ok": all(r["loss_finite"] for r in rows)}


# what each part imports beyond PyTorch (the GPU machine has only PyTorch); --list-wheels prints their closure
ROOTS = {"mvd": ["diffusers", "transformers", "accelerate", "safetensors"], "fern": ["gsplat", "numba", "plyfile"]}


def wheel_closure(roots: list[str], exclude_from: str = "torch") -> list[str]:
    """``name==version`` of ``roots`` and their installed requirements (markers evaluated here), minus what
    ``exclude_from`` itself requires: the wheels to carry to a machine that has only ``exclude_from``."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def closure(names: list[str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        todo = list(names)
        while todo:
            name = canonicalize_name(todo.pop())
            if name in seen:
                continue
            try:
                dist = distribution(name)
            except PackageNotFoundError:
                continue
            seen[name] = dist.version
            for r in dist.requires or []:
                req = Requirement(r)
                if req.marker is None or req.marker.evaluate({"extra": ""}):
                    todo.append(req.name)
        return seen

    have = closure([exclude_from])
    need = closure(roots)
    return sorted(f"{n}=={v}" for n, v in need.items() if n not in have)


def environment(device: str) -> dict:
    import platform

    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "device": device}
    if torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    for mod in ("diffusers", "transformers", "accelerate", "gsplat", "numba"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception as e:  # absent or broken: recorded, the parts that need it report it
            env[mod] = f"unavailable ({type(e).__name__})"
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("gpu_check_out"), help="folder for gpu_check.json")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--device", default="cuda", help="torch device (cuda, cuda:1, ...; cpu with --tiny)")
    ap.add_argument("--tiny", action="store_true", help="tiny model sizes (checks the script itself, e.g. on a CPU)")
    ap.add_argument("--fern", type=Path, default=None, help="LLFF fern folder (images_8/ + poses_bounds.npy) for the fern part")
    ap.add_argument("--fern-iters", type=int, default=500, help="3DGS steps per backend in the fern part")
    ap.add_argument("--list-wheels", action="store_true", help="print the wheels each part needs beyond PyTorch (from this environment) and exit")
    args = ap.parse_args(argv)
    if args.list_wheels:
        mvd = wheel_closure(ROOTS["mvd"])
        print("# mvd, reference, train:\n" + "\n".join(mvd))
        print("# fern (in addition):\n" + "\n".join(w for w in wheel_closure(ROOTS["mvd"] + ROOTS["fern"]) if w not in mvd))
        return 0

    import torch

    from see3d.device import resolve_device

    args.device = str(resolve_device(args.device))
    torch.backends.cuda.matmul.allow_tf32 = False  # fp16/bf16 runs are compared with each other, not with TF32
    report = {"environment": environment(args.device), "tiny": args.tiny, "parts": {}}
    print(json.dumps(report["environment"]))
    failed = False
    for name in args.parts:
        print(f"== {name}")
        t0 = time.perf_counter()
        try:
            res = globals()[f"part_{name}"](args)
        except Exception as e:  # one part's failure (missing wheel, no data, CUDA error) must not hide the others
            traceback.print_exc()
            res = {"error": f"{type(e).__name__}: {e}", "ok": False}
        res["seconds"] = time.perf_counter() - t0
        report["parts"][name] = res
        failed |= not res.get("ok", False)
        print(f"   ({res['seconds']:.0f} s)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out / 'gpu_check.json'}; {'a part failed or a check did not hold' if failed else 'all parts ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
