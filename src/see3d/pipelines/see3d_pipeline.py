"""``See3DPipeline``: multi-view diffusion that fills warped target views, plus the optional x2 super-resolution.

Given reference images and target views forward-warped from them (with validity masks, 1 = known pixel), the
pipeline generates the complete target views. All frames of a group are denoised jointly (multi-view
self-attention); references stay clean; each target is conditioned on its warped image through the visual
condition of :mod:`see3d.conditioning.visual_condition`. Cross-attention context = text embedding of ``""`` +
0.2 x CLIP image embedding of reference 0, on all 77 tokens.

Loading: :meth:`See3DPipeline.from_official` reads the released folder layout (HF ``bruiiii/See3D``,
``checkpoint/MVD_weights``); ``save_pretrained`` / ``from_pretrained`` use the diffusers layout;
:meth:`See3DPipeline.load` takes either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from see3d.conditioning.visual_condition import (
    build_unet_input,
    combine_guidance,
    downsample_mask,
    known_blocks,
    latent_validity,
    mix_condition,
    noise_latents,
    pixel_masks,
    restore_references,
    uses_guidance,
)
from see3d.errors import InputError, WeightsError
from see3d.log import get_logger, progress
from see3d.models.loading import quiet_loading
from see3d.models.mv_unet import MultiViewUNet
from see3d.models.pixel_unshuffle_vae import PixelUnshuffleVAE
from see3d.pipelines.fill_smoothing import smooth_fill
from see3d.pipelines.grouping import anchor_indices, official_sr_group_size, plan_groups
from see3d.pipelines.inputs import ImageInput, clip_pixel_values, to_image_batch, to_mask_batch, to_output
from see3d.pipelines.sampler_options import SamplerOptions
from see3d.pipelines.schedule import make_scheduler, set_timesteps

log = get_logger(__name__)

IMAGE_ENCODER_DIR = "CLIP-ViT-H-14-laion2B-s32B-b79K"
UNET_DIRS = {"single": "unet/single/ema-checkpoint", "sparse": "unet/sparse/ema-checkpoint", "SR": "unet/SR/ema-checkpoint"}
IMAGE_EMBED_SCALE = 0.2


def load_clip_image_encoder(folder: Path, dtype: torch.dtype) -> CLIPVisionModelWithProjection:
    """CLIPVisionModelWithProjection from a vision-only folder or from a full CLIP model folder (the released
    ``CLIP-ViT-H-14-laion2B-s32B-b79K`` holds the whole CLIP; its text tower is skipped). For a full CLIP config the
    top-level ``projection_dim`` is the width of ``visual_projection``, so it overrides the vision sub-config's."""
    from transformers import CLIPVisionConfig
    from transformers.utils import logging as hf_logging

    raw = json.loads((folder / "config.json").read_text())
    config = CLIPVisionConfig.from_pretrained(folder)
    if raw.get("model_type") == "clip" and raw.get("projection_dim"):
        config.projection_dim = raw["projection_dim"]
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the unused text-tower keys of a full CLIP checkpoint are expected
    try:
        return CLIPVisionModelWithProjection.from_pretrained(folder, config=config, dtype=dtype)
    finally:
        hf_logging.set_verbosity(level)


@dataclass
class See3DPipelineOutput(BaseOutput):
    """``images``: the generated target views (after super-resolution when it ran), in ``output_type``;
    ``base_images``: the base-resolution views when super-resolution ran, else None."""

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    base_images: list[PIL.Image.Image] | np.ndarray | torch.Tensor | None = None


class See3DPipeline(DiffusionPipeline):
    """See3D multi-view diffusion (MVDream-style UNet with a 9-channel visual-condition input).

    Components: ``vae`` (AutoencoderKL), ``text_encoder`` + ``tokenizer`` (CLIP text), ``unet``
    (:class:`MultiViewUNet`, single- or sparse-view weights), ``scheduler`` (DDIM, zero-SNR, v-prediction),
    ``feature_extractor`` + ``image_encoder`` (CLIP ViT-H/14 with projection), optional ``sr_unet`` (x2 SR).
    """

    model_cpu_offload_seq = "text_encoder->image_encoder->vae->unet->sr_unet"
    _optional_components = ["sr_unet"]

    def __init__(
        self,
        vae: AutoencoderKL | PixelUnshuffleVAE,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        unet: MultiViewUNet,
        scheduler: DDIMScheduler,
        feature_extractor: CLIPImageProcessor,
        image_encoder: CLIPVisionModelWithProjection,
        sr_unet: MultiViewUNet | None = None,
    ):
        super().__init__()
        self.register_modules(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            feature_extractor=feature_extractor,
            image_encoder=image_encoder,
            sr_unet=sr_unet,
        )

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, folder: str | Path, variant: str = "single", torch_dtype: torch.dtype | None = None, sr: bool = False) -> See3DPipeline:
        """Load either layout from a local folder: a diffusers ``save_pretrained`` folder (``unet/config.json``,
        e.g. the small model ``see3d train --export-pipeline`` writes and ``see3d demo`` ships) or the released
        official layout (:meth:`from_official`). Nothing is downloaded.

        Raises:
            WeightsError naming the folder and what is missing or failed to load.
        """
        folder = Path(folder)
        # both layouts have a model_index.json; a save_pretrained folder keeps its UNet directly in unet/
        if not (folder / "unet" / "config.json").is_file() or (folder / "unet" / "single").is_dir():
            with quiet_loading():
                return cls.from_official(folder, variant=variant, torch_dtype=torch_dtype, sr=sr)
        try:
            with quiet_loading():
                pipe = cls.from_pretrained(str(folder), torch_dtype=torch_dtype or torch.float32, local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError, ImportError, AttributeError) as e:
            raise WeightsError(folder, f"cannot load the pipeline folder: {e}") from e
        if sr and pipe.sr_unet is None:
            raise WeightsError(folder, "this pipeline folder has no super-resolution UNet (sr_unet)")
        return pipe

    @classmethod
    def from_official(
        cls,
        folder: str | Path,
        variant: str = "single",
        torch_dtype: torch.dtype | None = None,
        sr: bool = False,
        image_encoder_dtype: torch.dtype | None = torch.float32,
    ) -> See3DPipeline:
        """Load the released folder layout (``checkpoint/MVD_weights``) from a local path; nothing is downloaded.

        Args:
            folder: holds ``tokenizer/``, ``text_encoder/``, ``vae/``, ``scheduler/``,
                ``CLIP-ViT-H-14-laion2B-s32B-b79K/`` and ``unet/{single,sparse,SR}/ema-checkpoint/``.
            variant: "single" (one reference view) or "sparse" (several).
            torch_dtype: dtype of the text encoder, VAE and UNets (None: float32). Official: float16 on GPU.
            sr: also load the x2 super-resolution UNet (``unet/SR``).
            image_encoder_dtype: dtype of the CLIP image encoder (the official code keeps it in float32);
                None follows ``torch_dtype``.
        Raises:
            WeightsError naming every missing part, or the part that failed to load.
        """
        folder = Path(folder)
        if variant not in ("single", "sparse"):
            raise InputError(None, f"variant must be 'single' or 'sparse', got {variant!r}")
        if not folder.is_dir():
            raise WeightsError(folder, "See3D weights folder not found (download HF bruiiii/See3D checkpoint/MVD_weights)")
        parts = {
            "tokenizer": "tokenizer",
            "text_encoder": "text_encoder",
            "vae": "vae",
            "scheduler": "scheduler/scheduler_config.json",
            "image_encoder": IMAGE_ENCODER_DIR,
            "unet": UNET_DIRS[variant],
        }
        if sr:
            parts["sr_unet"] = UNET_DIRS["SR"]
        missing = [rel for rel in parts.values() if not (folder / rel).exists()]
        if missing:
            raise WeightsError(folder, f"incomplete See3D weights folder, missing: {', '.join(missing)}")
        dtype = torch_dtype or torch.float32

        def load(rel: str, fn):
            try:
                return fn(folder / rel)
            except WeightsError:
                raise
            except Exception as e:  # library errors: corrupt config, wrong files ...
                raise WeightsError(folder / rel, f"cannot load ({type(e).__name__}: {e})") from e

        clip_dir = folder / IMAGE_ENCODER_DIR
        if (clip_dir / "preprocessor_config.json").is_file():
            feature_extractor = load(IMAGE_ENCODER_DIR, CLIPImageProcessor.from_pretrained)
        else:  # the CLIP defaults are the ViT-H/14 preprocessing (224 px, OpenAI mean/std)
            log.warning("%s has no preprocessor_config.json; using CLIP's default preprocessing", clip_dir)
            feature_extractor = CLIPImageProcessor()
        sched_cfg = load(parts["scheduler"], lambda p: json.loads(p.read_text()))
        return cls(
            vae=load("vae", lambda p: AutoencoderKL.from_pretrained(p, torch_dtype=dtype)),
            text_encoder=load("text_encoder", lambda p: CLIPTextModel.from_pretrained(p, dtype=dtype)),
            tokenizer=load("tokenizer", CLIPTokenizer.from_pretrained),
            unet=load(parts["unet"], lambda p: MultiViewUNet.from_pretrained(p, torch_dtype=dtype)),
            scheduler=make_scheduler(sched_cfg),
            feature_extractor=feature_extractor,
            image_encoder=load(IMAGE_ENCODER_DIR, lambda p: load_clip_image_encoder(p, image_encoder_dtype or dtype)),
            sr_unet=load(parts["sr_unet"], lambda p: MultiViewUNet.from_pretrained(p, torch_dtype=dtype)) if sr else None,
        )

    # ------------------------------------------------------------------ VAE helpers (diffusers pass-through)
    def enable_vae_slicing(self) -> None:
        """Encode/decode one frame at a time (less memory, same result)."""
        self.vae.enable_slicing()

    def disable_vae_slicing(self) -> None:
        self.vae.disable_slicing()

    def enable_vae_tiling(self) -> None:
        """Encode/decode large images in overlapping tiles (as the official code does at 1024 px)."""
        self.vae.enable_tiling()

    def disable_vae_tiling(self) -> None:
        self.vae.disable_tiling()

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def encode_images(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(N, 3, H, W) [0, 1] -> (N, 4, H/8, W/8) float32 latents: a posterior *sample* x scaling factor (official)."""
        device = self._execution_device
        x = (images * 2 - 1).to(device=device, dtype=self.vae.dtype)
        latents = self.vae.encode(x).latent_dist.sample(generator)
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        return ((latents - shift) * self.vae.config.scaling_factor).float()

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(N, 4, h, w) latents -> (N, 3, 8h, 8w) float32 images in [0, 1]."""
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        z = (latents / self.vae.config.scaling_factor + shift).to(device=self._execution_device, dtype=self.vae.dtype)
        return (self.vae.decode(z).sample.float() / 2 + 0.5).clamp(0, 1)

    # ------------------------------------------------------------------ conditioning
    def encode_context(self, reference: torch.Tensor, image_embed_scale: float = IMAGE_EMBED_SCALE) -> torch.Tensor:
        """Cross-attention context (1, 77, D) float32: ``E_text("") + scale * E_clip_image(reference)`` on every token.

        Args:
            reference: (3, H, W) float in [0, 1], the first reference view.
        """
        device = self._execution_device
        ids = self.tokenizer(
            [""], padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        text = self.text_encoder(ids.to(device))[0].float()
        pixels = clip_pixel_values(reference, self.feature_extractor)  # the official uint8 + PIL bicubic path
        image = self.image_encoder(pixels.to(device=device, dtype=self.image_encoder.dtype)).image_embeds.float()
        if image.shape[-1] != text.shape[-1]:
            raise WeightsError(None, f"image embedding width {image.shape[-1]} differs from the text embedding width {text.shape[-1]}")
        return text + image_embed_scale * image[:, None, :]

    @property
    def block_exact_masks(self) -> bool:
        """Whether latent holes are whole blocks: a latent counts as known only when every pixel of its block is.

        True for the lossless pixel-unshuffle VAE of small models: their training zeroes the condition latent of
        every block that holds a hole pixel (``mask_reduce="any"``; a block is never half known), so the pipeline
        does the same -- the block's mask is 0 and its condition latent is zeroed, whatever the warp's valid
        pixels in it. (A model trained with ``mask_reduce="pixel"`` has one mask channel per pixel of the block;
        then only the hole pixels' channels are zeroed, see :meth:`latent_masks`.) False for a KL VAE (the
        official model): the mask is the block's first pixel (nearest) and the warp is encoded as given, as the
        official inference does."""
        return isinstance(self.vae, PixelUnshuffleVAE)

    def latent_masks(self, unet: MultiViewUNet, masks: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The UNet's mask input and the known latents for ``masks (F, 1, H, W)`` (1 = valid pixel).

        Returns ``(mask_in, known)``: ``mask_in (F, m, h, w)`` float with ``m = in_channels - 2 * latent channels``
        -- 1 (nearest pixel, or whole blocks when :attr:`block_exact_masks`), or ``r * r`` for a pixel-unshuffle
        model trained with pixel masks (:func:`see3d.conditioning.pixel_masks`, one channel per pixel of the block);
        ``known`` bool, (F, 1, h, w) latents whose block is wholly valid, or (F, C, h, w) valid latent channels
        with pixel masks. Raises :class:`WeightsError` when the UNet's input width fits neither."""
        m = int(unet.config.in_channels) - 2 * int(unet.config.out_channels)
        if m == 1:
            known = known_blocks(masks, size)
            return (known.float() if self.block_exact_masks else downsample_mask(masks, size)), known
        factor = int(getattr(self.vae.config, "factor", 0)) if isinstance(self.vae, PixelUnshuffleVAE) else 0
        if factor * factor != m:
            raise WeightsError(
                None, f"the UNet takes {unet.config.in_channels} input channels = 2 x {unet.config.out_channels} latent + {m} mask channels; "
                f"more than one mask channel needs a pixel-unshuffle VAE with {m} pixels per block"
            )  # fmt: skip
        mask_in = pixel_masks(masks, factor)
        return mask_in, latent_validity(mask_in, int(unet.config.out_channels)) > 0.5

    # ------------------------------------------------------------------ denoising
    def denoise_group(
        self,
        unet: MultiViewUNet,
        cond_latents: torch.Tensor,
        masks: torch.Tensor,
        *,
        num_refs: int,
        context: torch.Tensor,
        num_inference_steps: int,
        guidance_scale: float,
        generator: torch.Generator | None,
        clean_condition: bool = False,
        keep_known: bool = False,
        desc: str = "denoise",
    ) -> torch.Tensor:
        """Denoise one multi-view group; returns its (F, 4, h, w) float32 latents (references restored).

        Args:
            cond_latents: (F, 4, h, w) clean latents: ``num_refs`` references first, then the warped targets.
            masks: (F, 1, H, W) pixel-resolution validity masks (references all ones); reduced to the UNet's mask
                input by :meth:`latent_masks`.
            context: (1, L, D) cross-attention context.
            clean_condition: use the clean latents as condition at every step (super-resolution model) instead of
                the noised, time-mixed warp (base models).
            keep_known: after every step, replace the known latents (fully known blocks; single pixels with pixel
                masks) by the warp latent noised to the next timestep (clean after the last one), as "blended"
                inpainting samplers do. Not in the official sampler, which lets the model revise warped pixels
                (warps from estimated depth carry errors).
        """
        device = self._execution_device
        n, _, h, w = cond_latents.shape
        cond_latents = cond_latents.to(device)
        mask_lat, known = self.latent_masks(unet, masks.to(device), (h, w))
        if self.block_exact_masks:
            cond_latents = cond_latents * known  # references and anchors are all known
        guidance = uses_guidance(guidance_scale)
        rows = 2 * n if guidance else n
        ctx = context.to(device=device, dtype=unet.dtype).expand(rows, -1, -1)
        alphas_cumprod = self.scheduler.alphas_cumprod.to(device)
        timesteps = set_timesteps(self.scheduler, num_inference_steps, device)
        x = restore_references(
            randn_tensor(cond_latents.shape, generator=generator, device=device, dtype=torch.float32), cond_latents, num_refs
        )
        for t in progress(timesteps.tolist(), desc=desc, disable=getattr(self, "_progress_bar_config", {}).get("disable")):
            x = restore_references(x, cond_latents, num_refs)
            if clean_condition:
                cond = cond_latents
            else:
                noise = randn_tensor(cond_latents.shape, generator=generator, device=device, dtype=torch.float32)
                cond = mix_condition(x, cond_latents, noise, alphas_cumprod, t, num_refs)
            unet_in = build_unet_input(x, cond, mask_lat, cond_latents, num_refs, guidance)
            t_rows = torch.full((rows,), float(t), device=device, dtype=torch.float32)
            out = unet(unet_in.to(unet.dtype), t_rows, ctx, num_frames=n).float()
            pred = combine_guidance(out, guidance_scale) if guidance else out
            x = self.scheduler.step(pred, int(t), x).prev_sample
            if keep_known:
                x = self._blend_known(x, cond_latents, known, int(t), alphas_cumprod, generator)
        return restore_references(x, cond_latents, num_refs)

    def _blend_known(
        self, x: torch.Tensor, cond_latents: torch.Tensor, known: torch.Tensor, t: int, alphas_cumprod: torch.Tensor, generator
    ) -> torch.Tensor:
        """``x`` with its known latents replaced by the warp latent noised to the step after ``t`` (clean after the last)."""
        prev = t - self.scheduler.config.num_train_timesteps // self.scheduler.num_inference_steps
        noise = randn_tensor(cond_latents.shape, generator=generator, device=x.device, dtype=torch.float32)
        return torch.where(known, noise_latents(cond_latents, noise, alphas_cumprod, prev) if prev >= 0 else cond_latents, x)

    def generate_views(
        self,
        unet: MultiViewUNet,
        references: torch.Tensor,
        targets: torch.Tensor,
        masks: torch.Tensor,
        *,
        context: torch.Tensor,
        num_inference_steps: int,
        guidance_scale: float,
        generator: torch.Generator | None,
        group_size: int | None = None,
        num_anchors: int = 2,
        clean_condition: bool = False,
        keep_known: bool = False,
        desc: str = "views",
    ) -> torch.Tensor:
        """Generate all targets, group by group; returns their (T, 4, h, w) float32 latents.

        Each group is ``[references, anchors, targets[i:i+group_size]]``; anchors are ``num_anchors`` latents
        generated by earlier groups (see :mod:`see3d.pipelines.grouping`) and act as extra clean references.

        Args:
            references: (R, 3, H, W) in [0, 1]; targets: (T, 3, H, W) warped views in [0, 1];
            masks: (T, 1, H, W) in {0, 1}, 1 = valid.
        """
        ref_lat = self.encode_images(references, generator)
        tgt_lat = self.encode_images(targets, generator)
        done: list[torch.Tensor] = []
        groups = plan_groups(len(targets), group_size)
        for gi, idx in enumerate(groups):
            anchors = [done[i] for i in anchor_indices(len(done), num_anchors)]
            refs = torch.cat([ref_lat, *[a[None] for a in anchors]]) if anchors else ref_lat
            cond = torch.cat([refs, tgt_lat[idx.start : idx.stop]])
            group_masks = torch.cat([torch.ones(len(refs), *masks.shape[1:]), masks[idx.start : idx.stop].cpu()])
            out = self.denoise_group(
                unet, cond, group_masks, num_refs=len(refs), context=context, num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale, generator=generator, clean_condition=clean_condition, keep_known=keep_known,
                desc=f"{desc} {gi + 1}/{len(groups)}" if len(groups) > 1 else desc,
            )  # fmt: skip
            done.extend(out[len(refs) :])
        return torch.stack(done)

    def decode_all(self, latents: torch.Tensor) -> torch.Tensor:
        """(T, 4, h, w) latents -> (T, 3, 8h, 8w) float32 images in [0, 1] on the CPU, decoded one at a time."""
        return torch.cat([self.decode_latents(latents[i : i + 1]).cpu() for i in range(len(latents))])

    def super_resolve(
        self,
        reference_images: ImageInput,
        images: torch.Tensor,
        masks: torch.Tensor,
        *,
        num_inference_steps: int,
        guidance_scale: float,
        generator: torch.Generator | None,
        group_size: int | None,
        num_anchors: int,
        image_embed_scale: float,
    ) -> torch.Tensor:
        """The official x2 stage: the SR UNet regenerates ``images (T, 3, H, W)`` (bicubic-upsampled) at 2H x 2W,
        conditioned on them with the clean condition at every step; returns (T, 3, 2H, 2W) in [0, 1]."""
        h2, w2 = 2 * images.shape[-2], 2 * images.shape[-1]
        refs_hr = to_image_batch(reference_images, h2, w2, "reference_images")
        preds_hr = F.interpolate(images, size=(h2, w2), mode="bicubic", align_corners=False).clamp(0, 1)
        masks_hr = F.interpolate(masks, size=(h2, w2), mode="nearest")
        latents = self.generate_views(
            self.sr_unet, refs_hr, preds_hr, masks_hr, context=self.encode_context(refs_hr[0], image_embed_scale),
            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, generator=generator,
            group_size=group_size or official_sr_group_size(len(refs_hr), len(images)), num_anchors=num_anchors,
            clean_condition=True, desc="super-resolution",
        )  # fmt: skip
        return self.decode_all(latents)

    # ------------------------------------------------------------------ the call
    @torch.no_grad()
    def __call__(
        self,
        reference_images: ImageInput,
        target_images: ImageInput,
        target_masks: ImageInput,
        num_inference_steps: int = 50,
        guidance_scale: float = 2.0,
        generator: torch.Generator | None = None,
        height: int = 512,
        width: int = 512,
        output_type: str = "pil",
        group_size: int | None = None,
        num_anchors: int = 2,
        super_resolution: bool | None = None,
        sr_num_inference_steps: int = 30,
        sr_guidance_scale: float = 1.0,
        sr_group_size: int | None = None,
        image_embed_scale: float = IMAGE_EMBED_SCALE,
        options: SamplerOptions | None = None,
        return_dict: bool = True,
    ) -> See3DPipelineOutput | tuple:
        """Generate the target views.

        Args:
            reference_images: R clean views: (R, 3, H, W) tensor in [0, 1], or PIL images / arrays.
            target_images: T warped views, same forms; hole pixels may hold anything.
            target_masks: T validity masks (1 / white = valid pixel): (T, 1, H, W) tensor or PIL images.
            num_inference_steps: DDIM steps (50 official; with the official trailing schedule 53 UNet calls).
            guidance_scale: ``s`` in ``(1 + s) cond - s uncond`` (official 2.0; 0 disables the unconditional pass).
            generator: makes the run reproducible (VAE posterior samples, initial and per-step noise).
            height, width: model resolution, multiples of 64 (512 official).
            output_type: "pil", "np" ((T, H, W, 3) float) or "pt" ((T, 3, H, W) float), values in [0, 1].
            group_size: at most this many targets per multi-view group (None: all at once, official).
            num_anchors: generated views re-used as references in every later group.
            super_resolution: also run the x2 SR stage (default: when an ``sr_unet`` is loaded).
            sr_num_inference_steps, sr_guidance_scale: SR stage settings (official 30, 1.0).
            sr_group_size: targets per SR group (None: the official ``(R + T + 3) // 2``).
            image_embed_scale: weight of the CLIP image embedding in the context (official 0.2).
            options: :class:`~see3d.pipelines.sampler_options.SamplerOptions`, the experiments beyond the
                paper's sampler (keeping the warped pixels, smoothing their fill, the clean condition); None = off.
        Returns:
            :class:`See3DPipelineOutput` (or ``(images, base_images)`` with ``return_dict=False``).
        """
        options = options or SamplerOptions()
        multiple = self.vae_scale_factor * 2 ** (len(self.unet.config.channel_mult) - 1)
        if height % multiple or width % multiple:
            raise InputError(None, f"height and width must be multiples of {multiple}, got {height}x{width}")
        options.check(height, width)
        if super_resolution is None:
            super_resolution = self.sr_unet is not None
        if super_resolution and self.sr_unet is None:
            raise InputError(None, "super_resolution needs the SR UNet: load with from_official(..., sr=True)")
        refs = to_image_batch(reference_images, height, width, "reference_images")
        targets = to_image_batch(target_images, height, width, "target_images")
        masks = to_mask_batch(target_masks, height, width, "target_masks")
        if len(masks) != len(targets):
            raise InputError(None, f"{len(targets)} target images but {len(masks)} target masks")

        latents = self.generate_views(
            self.unet, refs, targets, masks, context=self.encode_context(refs[0], image_embed_scale),
            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, generator=generator, group_size=group_size,
            num_anchors=num_anchors, clean_condition=options.clean_condition, keep_known=options.keep_known, desc="views",
        )  # fmt: skip
        images = self.decode_all(latents)
        if options.keep_known:
            images = smooth_fill(images, targets.cpu(), masks.cpu(), options.fill_smoothing)
        base_images = None
        if super_resolution:
            base_images, images = images, self.super_resolve(
                reference_images, images, masks, num_inference_steps=sr_num_inference_steps, guidance_scale=sr_guidance_scale,
                generator=generator, group_size=sr_group_size, num_anchors=num_anchors, image_embed_scale=image_embed_scale,
            )  # fmt: skip
        self.maybe_free_model_hooks()
        out_images = to_output(images, output_type)
        out_base = to_output(base_images, output_type) if base_images is not None else None
        if not return_dict:
            return out_images, out_base
        return See3DPipelineOutput(images=out_images, base_images=out_base)
