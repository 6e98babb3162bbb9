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

from see3d.errors import WeightsError


def load_vae(latent_space: str, vae_path: Path | None = None, pixel_unshuffle_factor: int = 4, scale: float = 1.0, shift: float = 0.0):
    """The frozen autoencoder: diffusers AutoencoderKL from a local folder, or the pixel-unshuffle stand-in
    (with latent ``scale`` and ``shift``)."""
    if latent_space == "pixel_unshuffle":
        from see3d.models.pixel_unshuffle_vae import PixelUnshuffleVAE

        return PixelUnshuffleVAE(factor=pixel_unshuffle_factor, scaling_factor=scale, shift_factor=shift)
    from diffusers import AutoencoderKL

    if vae_path is None or not Path(vae_path).exists():
        raise WeightsError(vae_path, "VAE folder not found (a local diffusers AutoencoderKL folder, e.g. <sd-2.1>/vae)")
    try:
        return AutoencoderKL.from_pretrained(str(vae_path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise WeightsError(vae_path, f"not a loadable AutoencoderKL folder ({e})") from e


def latent_channels(vae) -> int:
    """Channels of the (scaled) latent: AutoencoderKL's ``config.latent_channels`` or the stand-in's property."""
    return int(vae.config.get("latent_channels") or vae.latent_channels)


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


def decode_latents(vae, z: torch.Tensor) -> torch.Tensor:
    """Scaled latents (B, C, h, w) -> pixels (B, 3, H, W) in [-1, 1] (not clamped). Differentiable: the SSIM
    loss backpropagates through it; wrap it in ``torch.no_grad()`` where no gradient is wanted."""
    scale = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    return vae.decode((z / scale + shift).to(vae.dtype)).sample.float()


class ContextEncoder:
    """Builds the per-clip cross-attention context (B, L, D), exactly as :class:`See3DPipeline` does.

    Args:
        mode: "encoders" (text, plus image when ``image_encoder`` is given) or "zero".
        text_encoder / tokenizer: local folders of a CLIPTextModel / CLIPTokenizer (SD-2.1 OpenCLIP-H).
        image_encoder: local CLIP image-encoder folder (vision-only or a whole CLIP model, as released); its
            ``preprocessor_config.json`` sets the preprocessing (CLIP's defaults otherwise).
        image_weight: weight of the image embedding (official 0.2).
        tokens, dim: size of the zero context.
    The loaded modules stay available (``tokenizer``, ``text_encoder``, ``image_model``, ``processor``) so a
    trained model can be exported as a complete pipeline.
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
        self.tokenizer = self.text_encoder = self.image_model = self.processor = None
        if mode == "zero":
            self.text = torch.zeros(1, tokens, dim)
            return
        if mode != "encoders":
            raise ValueError(f"unknown context mode {mode!r}")
        from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer

        for p, what in ((text_encoder, "text encoder"), (tokenizer, "tokenizer")):
            if p is None or not Path(p).exists():
                raise WeightsError(p, f"{what} folder not found")
        try:
            self.tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer), local_files_only=True)
            self.text_encoder = CLIPTextModel.from_pretrained(str(text_encoder), local_files_only=True).to(self.device).eval()
        except (OSError, ValueError) as e:
            raise WeightsError(text_encoder, f"could not load the CLIP text encoder / tokenizer ({e})") from e
        self.text_encoder.requires_grad_(False)
        with torch.no_grad():
            ids = self.tokenizer([""], padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
            self.text = self.text_encoder(ids.to(self.device))[0].float().cpu()  # (1, 77, D), final LayerNorm applied
        if image_encoder is not None:
            from see3d.pipelines.see3d_pipeline import load_clip_image_encoder

            folder = Path(image_encoder)
            if not (folder / "config.json").is_file():
                raise WeightsError(folder, "image encoder folder not found (needs config.json + weights)")
            try:
                self.image_model = load_clip_image_encoder(folder, torch.float32).to(self.device).eval()
                has_proc = (folder / "preprocessor_config.json").is_file()
                self.processor = CLIPImageProcessor.from_pretrained(str(folder)) if has_proc else CLIPImageProcessor()
            except (OSError, ValueError) as e:
                raise WeightsError(folder, f"could not load the CLIP image encoder ({e})") from e
            self.image_model.requires_grad_(False)
            width = int(self.image_model.config.projection_dim)
            if width != self.dim:
                raise WeightsError(folder, f"image embedding width {width} differs from the text embedding width {self.dim}")

    @property
    def dim(self) -> int:
        return int(self.text.shape[-1])

    @torch.no_grad()
    def image_embeds(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, H, W) in [-1, 1] -> CLIP image embeddings (B, D), float32 (unnormalised, as official);
        preprocessed as at inference (:func:`see3d.pipelines.inputs.clip_pixel_values`)."""
        from see3d.pipelines.inputs import clip_pixel_values

        x = ((pixels.float() + 1) / 2).clamp(0, 1).cpu()
        values = torch.cat([clip_pixel_values(im, self.processor) for im in x])
        return self.image_model(pixel_values=values.to(self.device, self.image_model.dtype)).image_embeds.float()

    def __call__(self, first_ref_pixels: torch.Tensor | None, batch: int, device, image_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Context (batch, L, D) from the first reference of each clip: ``first_ref_pixels`` (batch, 3, H, W)
        in [-1, 1], or its precomputed ``image_embeds`` (batch, D)."""
        ctx = self.text.to(device).expand(batch, -1, -1)
        if self.image_model is not None:
            img = image_embeds if image_embeds is not None else self.image_embeds(first_ref_pixels)
            ctx = ctx + self.image_weight * img.to(device)[:, None, :]
        return ctx.contiguous()
