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

``full_size=True`` writes the same layout at the released sizes, still with random weights, for dry runs of
memory and plumbing at real scale (:data:`FULL_UNET_CONFIG`: 865,925,124 UNet parameters with the official keys;
the SD-2.1 VAE and its 23-layer OpenCLIP-H text tower; the ViT-H/14 image tower with its 1024-d projection, as a
vision-only folder -- the released laion folder also holds the unused text tower; the real CLIP BPE tokenizer
(49,408 tokens) built from ``bpe_simple_vocab_16e6.txt.gz``, which the ``open_clip_torch`` wheel ships). All
weights are stored in fp16 (~5.5 GB for single + SR); writing takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from see3d.io.atomic import write_json_atomic, write_text_atomic
from see3d.models.mv_unet import SD21_UNET_CONFIG, MultiViewUNet

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
FULL_UNET_CONFIG = SD21_UNET_CONFIG  # the released UNet (865,925,124 parameters)
# SD-2.1's text_encoder/config.json (OpenCLIP ViT-H/14 text tower without its last layer)
FULL_TEXT_CONFIG = {
    "vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23, "num_attention_heads": 16,
    "max_position_embeddings": 77, "hidden_act": "gelu", "layer_norm_eps": 1e-5, "projection_dim": 512,
    "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
}  # fmt: skip
# laion/CLIP-ViT-H-14-laion2B-s32B-b79K's vision tower and projection
FULL_VISION_CONFIG = {
    "hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 16, "image_size": 224,
    "patch_size": 14, "hidden_act": "gelu", "layer_norm_eps": 1e-5, "projection_dim": 1024,
}  # fmt: skip
# SD-2.1's vae/config.json
FULL_VAE_CONFIG = {
    "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "latent_channels": 4, "norm_num_groups": 32,
    "sample_size": 768, "scaling_factor": 0.18215,
}  # fmt: skip
CLIP_BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
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


def find_clip_bpe() -> Path | None:
    """``bpe_simple_vocab_16e6.txt.gz`` (the CLIP BPE merges) from an installed ``open_clip_torch``, found without
    importing it; None when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / CLIP_BPE_FILE
        if path.is_file():
            return path
    return None


def write_clip_tokenizer(folder: Path, bpe_file: str | Path) -> None:
    """The CLIP BPE tokenizer (49,408 tokens, as SD-2.1's ``tokenizer/``: pad token ``!``) in transformers' format
    (``vocab.json`` + ``merges.txt``) from CLIP's ``bpe_simple_vocab_16e6.txt.gz``.

    Token ids: the 256 byte symbols in CLIP's order (printable bytes first), the same with ``</w>``, the 48,894
    merges in file order, then ``<|startoftext|>`` and ``<|endoftext|>``.
    """
    import gzip

    lines = gzip.open(bpe_file, "rt", encoding="utf-8").read().split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = _bytes_to_unicode()
    symbols = [chars[b] for b in printable] + [chars[b] for b in range(256) if b not in printable]
    tokens = symbols + [c + "</w>" for c in symbols] + ["".join(m.split()) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "vocab.json", {t: i for i, t in enumerate(tokens)})
    write_text_atomic(folder / "merges.txt", "#version: 0.2\n" + "\n".join(merges) + "\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "!"}
    write_json_atomic(folder / "special_tokens_map.json", special)
    write_json_atomic(
        folder / "tokenizer_config.json", {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **special}
    )


def perturb_zero_weights(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Give parameters that are exactly zero small random values (zero-init output layers would hide paths)."""
    with torch.no_grad():
        for p in model.parameters():
            if torch.count_nonzero(p) == 0:
                fan_in = p[0].numel() if p.ndim > 1 else 1
                std = 0.5 / fan_in**0.5 if p.ndim > 1 else 0.05
                p.copy_(torch.randn(p.shape, generator=generator) * std)


def write_tiny_unet(
    folder: Path, seed: int, camera_dim: int | None = None, weights_format: str = "safetensors", unet_config: dict | None = None
) -> None:
    """A random tiny :class:`MultiViewUNet` as an official ``ema-checkpoint`` folder (fp16 weights).

    ``camera_dim`` adds MVDream's unused ``camera_embed.*`` tensors and config key (as a released config may);
    ``weights_format`` is "safetensors" or "bin"; ``unet_config`` replaces :data:`TINY_UNET_CONFIG`.
    """
    unet_config = unet_config or TINY_UNET_CONFIG
    torch.manual_seed(seed)
    model = MultiViewUNet(**unet_config)
    perturb_zero_weights(model, torch.Generator().manual_seed(seed + 1))
    sd = {k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    del model
    config = {"_class_name": "MultiViewUNetModel", "_diffusers_version": "0.27.2", **unet_config, "camera_dim": camera_dim}
    if camera_dim:
        emb = 4 * unet_config["model_channels"]
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
    full_size: bool = False,
    bpe_file: str | Path | None = None,
) -> Path:
    """Write a random-weight tiny See3D pipeline in the official ``MVD_weights`` layout and return ``folder``.

    Args:
        folder: created if needed; existing files of the same names are replaced.
        seed: all weights derive from it (the same seed writes identical weights).
        variants: which ``unet/<variant>/ema-checkpoint`` folders to write ("single", "sparse", "SR").
        camera_dim: also store unused ``camera_embed.*`` UNet weights (tests the loader ignores them).
        weights_format: UNet weight files as "safetensors" or "bin".
        full_size: the released model sizes instead (see the module docstring); needs ``bpe_file`` or an installed
            ``open_clip_torch`` for the real tokenizer vocabulary.
        bpe_file: CLIP's ``bpe_simple_vocab_16e6.txt.gz`` for ``full_size`` (default: :func:`find_clip_bpe`).
    Layout written::

        tokenizer/  text_encoder/  vae/  scheduler/scheduler_config.json  model_index.json
        CLIP-ViT-H-14-laion2B-s32B-b79K/   unet/{single,sparse,SR}/ema-checkpoint/
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if full_size:
        _write_full_size_parts(folder, seed, bpe_file)
    else:
        _write_tiny_parts(folder, seed)
    (folder / "scheduler").mkdir(exist_ok=True)
    write_json_atomic(folder / "scheduler" / "scheduler_config.json", SCHEDULER_CONFIG)
    for i, variant in enumerate(variants):
        write_tiny_unet(folder / "unet" / variant / "ema-checkpoint", seed * 100 + 10 * i + 1, camera_dim, weights_format,
                        FULL_UNET_CONFIG if full_size else None)  # fmt: skip
    index = {
        "_class_name": "MVDreamPipeline",
        "_diffusers_version": "0.27.2",
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "vae": ["diffusers", "AutoencoderKL"],
        "_see3d_note": f"random-weight {'full-size' if full_size else 'tiny'} pipeline written by see3d.pipelines.tiny.write_tiny_see3d",
    }
    write_text_atomic(folder / "model_index.json", json.dumps(index, indent=2) + "\n")
    return folder


def _write_full_size_parts(folder: Path, seed: int, bpe_file: str | Path | None) -> None:
    """Tokenizer, text encoder, VAE and image encoder at the released sizes (random weights, stored in fp16)."""
    from diffusers import AutoencoderKL
    from transformers import CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    from see3d.errors import InputError

    bpe_file = bpe_file or find_clip_bpe()
    if bpe_file is None:
        raise InputError(None, f"full_size needs CLIP's {CLIP_BPE_FILE}: pip install open_clip_torch (it ships the file) or pass bpe_file=")
    write_clip_tokenizer(folder / "tokenizer", bpe_file)
    torch.manual_seed(seed)
    CLIPTextModel(CLIPTextConfig(**FULL_TEXT_CONFIG)).half().save_pretrained(folder / "text_encoder")
    clip_dir = folder / "CLIP-ViT-H-14-laion2B-s32B-b79K"
    CLIPVisionModelWithProjection(CLIPVisionConfig(**FULL_VISION_CONFIG)).half().save_pretrained(clip_dir)
    CLIPImageProcessor().save_pretrained(clip_dir)  # the defaults are ViT-H/14's: 224 px, bicubic, OpenAI mean/std
    AutoencoderKL(**FULL_VAE_CONFIG).half().save_pretrained(folder / "vae")


def _write_tiny_parts(folder: Path, seed: int) -> None:
    """Tokenizer, text encoder, VAE and image encoder at the tiny sizes."""
    from diffusers import AutoencoderKL
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig, CLIPTextModel

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
