"""A random-weight, tiny See3D pipeline written in the official folder layout, for tests and demos.

Usage::

    from see3d.pipelines.tiny import write_tiny_see3d
    from see3d.pipelines.see3d_pipeline import See3DPipeline

    folder = write_tiny_see3d(tmp_path / "weights", seed=0)           # ~2 MB, < 1 s, no downloads
    pipe = See3DPipeline.from_official(folder, variant="single", sr=True)
    out = pipe(refs, warps, masks, height=64, width=64, num_inference_steps=3, output_type="pt")

The folder has exactly the layout of the released ``checkpoint/MVD_weights`` (see
:meth:`See3DPipeline.from_official`) so every loader, the CLI (``see3d mvd --weights folder ...``) and the
trainer can be exercised on CPU in seconds. The models are random: outputs are noise-like images, only
shapes, determinism and plumbing are meaningful.

Tiny sizes: tokenizer of the 256 byte-level symbols (no merges, 77 tokens), CLIP text / vision towers of width
32 with 2 layers (projection 32, image size 32; the image-encoder folder holds a whole CLIP model, as the released
laion folder does), an AutoencoderKL with 4 levels (8x downsampling, like SD) and
width 8-16, and UNets ``model_channels=32, channel_mult=[1,2,2], attention at ds 1 and 2, context_dim=32``.
Image sizes must be multiples of 32 (8 for the VAE x 4 for the UNet); 64x64 is a good test size.
Weights that the standard init leaves at zero (UNet output convs, ``proj_out``) get small random values so
every path contributes. UNet weights are stored in fp16 like the released ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from see3d.io.atomic import write_json_atomic, write_text_atomic
from see3d.models.mv_unet import MultiViewUNet

TINY_UNET_CONFIG = {
    "image_size": 8,
    "in_channels": 9,
    "model_channels": 32,
    "out_channels": 4,
    "num_res_blocks": 1,
    "attention_resolutions": [1, 2],
    "channel_mult": [1, 2, 2],
    "num_head_channels": 16,
    "transformer_depth": 1,
    "context_dim": 32,
}
TINY_WIDTH = 32  # text hidden size = image projection size = UNet context_dim
TINY_SIZE_MULTIPLE = 32
SCHEDULER_CONFIG = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.27.2",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "timestep_scaling": "trailing",
    "timestep_spacing": "trailing",
    "trained_betas": None,
}


def _bytes_to_unicode() -> list[str]:
    """The 256 printable stand-ins for bytes used by byte-level BPE (GPT-2 / CLIP), in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def write_tiny_tokenizer(folder: Path) -> None:
    """CLIP tokenizer files (``vocab.json``, ``merges.txt``, configs) with a byte-level vocabulary and no merges."""
    chars = _bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = 512
    vocab["<|endoftext|>"] = 513
    write_json_atomic(folder / "vocab.json", vocab)
    write_text_atomic(folder / "merges.txt", "#version: 0.2\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    write_json_atomic(folder / "special_tokens_map.json", special)
    write_json_atomic(
        folder / "tokenizer_config.json", {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **special}
    )


def _perturb_zeros(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Give parameters that are exactly zero small random values (zero-init output layers would hide paths)."""
    with torch.no_grad():
        for p in model.parameters():
            if torch.count_nonzero(p) == 0:
                fan_in = p[0].numel() if p.ndim > 1 else 1
                std = 0.5 / fan_in**0.5 if p.ndim > 1 else 0.05
                p.copy_(torch.randn(p.shape, generator=generator) * std)


def write_tiny_unet(folder: Path, seed: int, camera_dim: int | None = None, weights_format: str = "safetensors") -> None:
    """A random tiny :class:`MultiViewUNet` as an official ``ema-checkpoint`` folder (fp16 weights).

    ``camera_dim`` adds MVDream's unused ``camera_embed.*`` tensors and config key (as a released config may);
    ``weights_format`` is "safetensors" or "bin".
    """
    torch.manual_seed(seed)
    model = MultiViewUNet(**TINY_UNET_CONFIG)
    _perturb_zeros(model, torch.Generator().manual_seed(seed + 1))
    sd = {k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    config = {"_class_name": "MultiViewUNetModel", "_diffusers_version": "0.27.2", **TINY_UNET_CONFIG, "camera_dim": camera_dim}
    if camera_dim:
        emb = 4 * TINY_UNET_CONFIG["model_channels"]
        g = torch.Generator().manual_seed(seed + 2)
        sd["camera_embed.0.weight"] = torch.randn(emb, camera_dim, generator=g).half()
        sd["camera_embed.0.bias"] = torch.zeros(emb).half()
        sd["camera_embed.2.weight"] = torch.randn(emb, emb, generator=g).half()
        sd["camera_embed.2.bias"] = torch.zeros(emb).half()
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "config.json", config)
    if weights_format == "safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(folder / "diffusion_pytorch_model.safetensors"))
    elif weights_format == "bin":
        torch.save(sd, folder / "diffusion_pytorch_model.bin")
    else:
        raise ValueError(f"weights_format must be 'safetensors' or 'bin', got {weights_format!r}")


def write_tiny_see3d(
    folder: str | Path,
    seed: int = 0,
    variants: tuple[str, ...] = ("single", "sparse", "SR"),
    camera_dim: int | None = None,
    weights_format: str = "safetensors",
) -> Path:
    """Write a random-weight tiny See3D pipeline in the official ``MVD_weights`` layout and return ``folder``.

    Args:
        folder: created if needed; existing files of the same names are replaced.
        seed: all weights derive from it (the same seed writes identical weights).
        variants: which ``unet/<variant>/ema-checkpoint`` folders to write ("single", "sparse", "SR").
        camera_dim: also store unused ``camera_embed.*`` UNet weights (tests the loader ignores them).
        weights_format: UNet weight files as "safetensors" or "bin".
    Layout written::

        tokenizer/  text_encoder/  vae/  scheduler/scheduler_config.json  model_index.json
        CLIP-ViT-H-14-laion2B-s32B-b79K/   unet/{single,sparse,SR}/ema-checkpoint/
    """
    from diffusers import AutoencoderKL
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig, CLIPTextModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_tiny_tokenizer(folder / "tokenizer")

    torch.manual_seed(seed)
    text_cfg = CLIPTextConfig(
        vocab_size=514, hidden_size=TINY_WIDTH, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=77, projection_dim=TINY_WIDTH, bos_token_id=512, eos_token_id=513, pad_token_id=513,
    )  # fmt: skip
    CLIPTextModel(text_cfg).save_pretrained(folder / "text_encoder")

    # like the released laion folder, the image-encoder folder holds a whole CLIP model (its text tower is unused)
    vision = {
        "hidden_size": TINY_WIDTH,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    clip_dir = folder / "CLIP-ViT-H-14-laion2B-s32B-b79K"
    CLIPModel(CLIPConfig(text_config=text_cfg.to_dict(), vision_config=vision, projection_dim=TINY_WIDTH)).save_pretrained(clip_dir)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(clip_dir)

    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16),
        layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=256, scaling_factor=0.18215,
    )  # fmt: skip
    vae.save_pretrained(folder / "vae")

    (folder / "scheduler").mkdir(exist_ok=True)
    write_json_atomic(folder / "scheduler" / "scheduler_config.json", SCHEDULER_CONFIG)
    for i, variant in enumerate(variants):
        write_tiny_unet(folder / "unet" / variant / "ema-checkpoint", seed * 100 + 10 * i + 1, camera_dim, weights_format)
    index = {
        "_class_name": "MVDreamPipeline",
        "_diffusers_version": "0.27.2",
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "vae": ["diffusers", "AutoencoderKL"],
        "_see3d_note": "random-weight tiny pipeline written by see3d.pipelines.tiny.write_tiny_see3d",
    }
    write_text_atomic(folder / "model_index.json", json.dumps(index, indent=2) + "\n")
    return folder
