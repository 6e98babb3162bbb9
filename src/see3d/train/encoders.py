"""Frozen encoders of the trainer: pixels -> latents (VAE or pixel-unshuffle) and the cross-attention context.

Latents: ``z = (posterior sample - shift_factor) * scaling_factor`` (diffusers' AutoencoderKL
convention; SD-2.x: shift 0, scale 0.18215). The posterior is kept as (mean, std) so a latent cache can
store it once and every step still draws a fresh sample, as the official pipeline does.

Context (official inference, spec §2.2): ``E_text("") + w · E_img(first reference)`` with w = 0.2, the
image embedding (D,) broadcast over the 77 text tokens; ``zero`` gives an all-zero context instead.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from see3d.errors import WeightsError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_vae(latent_space: str, vae_path: Path | None = None, pixel_unshuffle_factor: int = 4):
    """The frozen autoencoder: diffusers AutoencoderKL from a local folder, or the pixel-unshuffle stand-in."""
    if latent_space == "pixel_unshuffle":
        from see3d.train.small_model import PixelUnshuffleVAE

        return PixelUnshuffleVAE(factor=pixel_unshuffle_factor)
    from diffusers import AutoencoderKL

    if vae_path is None or not Path(vae_path).exists():
        raise WeightsError(vae_path, "VAE folder not found (a local diffusers AutoencoderKL folder, e.g. <sd-2.1>/vae)")
    try:
        return AutoencoderKL.from_pretrained(str(vae_path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise WeightsError(vae_path, f"not a loadable AutoencoderKL folder ({e})") from e


def latent_channels(vae) -> int:
    return int(getattr(vae, "latent_channels", None) or vae.config.latent_channels)


@torch.no_grad()
def encode_posterior(vae, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """pixels (B, 3, H, W) in [-1, 1] -> scaled posterior ``(mean, std)``, each (B, C, h, w), float32."""
    dist = vae.encode(pixels.to(vae.dtype)).latent_dist
    scale = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    return ((dist.mean.float() - shift) * scale), (dist.std.float() * scale)


def sample_posterior(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Draw a latent from the scaled posterior with the global torch RNG (seeded per step by the trainer)."""
    if not torch.any(std > 0):
        return mean
    return mean + std * torch.randn_like(mean)


@torch.no_grad()
def decode_latents(vae, z: torch.Tensor) -> torch.Tensor:
    """Scaled latents (B, C, h, w) -> pixels (B, 3, H, W) in [-1, 1] (not clamped)."""
    scale = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    return vae.decode((z / scale + shift).to(vae.dtype)).sample.float()


class ContextEncoder:
    """Builds the per-sample cross-attention context (B, L, D).

    Args:
        mode: "encoders" (text, plus image when ``image_encoder`` is given) or "zero".
        text_encoder / tokenizer: local folders of a CLIPTextModel / CLIPTokenizer (SD-2.1 OpenCLIP-H).
        image_encoder: local CLIPVisionModelWithProjection folder (optional).
        image_weight: weight of the image embedding (official 0.2).
        tokens, dim: size of the zero context.
    """

    def __init__(
        self,
        mode: str = "zero",
        text_encoder: Path | None = None,
        tokenizer: Path | None = None,
        image_encoder: Path | None = None,
        image_weight: float = 0.2,
        tokens: int = 77,
        dim: int = 1024,
        device: torch.device | str = "cpu",
    ):
        self.mode, self.image_weight, self.device = mode, image_weight, torch.device(device)
        self.image_model = None
        if mode == "zero":
            self.text = torch.zeros(1, tokens, dim)
            return
        if mode != "encoders":
            raise ValueError(f"unknown context mode {mode!r}")
        from transformers import CLIPTextModel, CLIPTokenizer

        for p, what in ((text_encoder, "text encoder"), (tokenizer, "tokenizer")):
            if p is None or not Path(p).exists():
                raise WeightsError(p, f"{what} folder not found")
        try:
            tok = CLIPTokenizer.from_pretrained(str(tokenizer), local_files_only=True)
            te = CLIPTextModel.from_pretrained(str(text_encoder), local_files_only=True).to(self.device).eval()
        except (OSError, ValueError) as e:
            raise WeightsError(text_encoder, f"could not load the CLIP text encoder / tokenizer ({e})") from e
        with torch.no_grad():
            ids = tok([""], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
            self.text = te(ids.to(self.device))[0].float().cpu()  # (1, 77, D), final LayerNorm applied
        del te
        if image_encoder is not None:
            from transformers import CLIPVisionModelWithProjection

            if not Path(image_encoder).exists():
                raise WeightsError(image_encoder, "image encoder folder not found")
            try:
                self.image_model = CLIPVisionModelWithProjection.from_pretrained(str(image_encoder), local_files_only=True).to(self.device).eval()
            except (OSError, ValueError) as e:
                raise WeightsError(image_encoder, f"could not load CLIPVisionModelWithProjection ({e})") from e
            self.image_model.requires_grad_(False)

    @property
    def dim(self) -> int:
        return int(self.text.shape[-1])

    @torch.no_grad()
    def image_embeds(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, H, W) in [-1, 1] -> CLIP image embeddings (B, D) (unnormalised, as official).

        Preprocessing as CLIPImageProcessor: short side to 224 (bicubic), centre crop 224, CLIP mean/std.
        """
        x = (pixels.float() + 1) / 2
        h, w = x.shape[-2:]
        s = 224 / min(h, w)
        x = F.interpolate(x, size=(max(224, round(h * s)), max(224, round(w * s))), mode="bicubic", align_corners=False, antialias=True)
        y0, x0 = (x.shape[-2] - 224) // 2, (x.shape[-1] - 224) // 2
        x = x[..., y0 : y0 + 224, x0 : x0 + 224].clamp(0, 1)
        mean = torch.tensor(CLIP_MEAN, device=x.device)[:, None, None]
        std = torch.tensor(CLIP_STD, device=x.device)[:, None, None]
        x = ((x - mean) / std).to(self.device, self.image_model.dtype)
        return self.image_model(pixel_values=x).image_embeds.float()

    def __call__(self, first_ref_pixels: torch.Tensor | None, batch: int, device) -> torch.Tensor:
        """Context (batch, L, D); ``first_ref_pixels`` (batch, 3, H, W) is used when an image encoder is set."""
        ctx = self.text.to(device).expand(batch, -1, -1)
        if self.image_model is not None and first_ref_pixels is not None:
            img = self.image_embeds(first_ref_pixels).to(device)
            ctx = ctx + self.image_weight * img[:, None, :]
        return ctx.contiguous()
