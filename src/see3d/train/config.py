"""`TrainConfig`: every setting of ``see3d train`` (one documented dataclass field each).

Defaults follow the paper's stage-1 recipe where it is known (N = 5 frames, 1 reference, LR 1e-5,
condition dropout 0.1, zero-SNR v-prediction scheduler); the small CPU reproduction overrides them
through :func:`see3d.train.small_model.small_train_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from see3d.config import check_fields
from see3d.errors import InputError


@dataclass
class TrainConfig:
    # ------------------------------------------------------------------ data
    data: Path | None = field(
        default=None,
        metadata={"help": "training clips: a curation output folder (shards + manifest.parquet), a folder of videos, or a `see3d synth` set"},
    )
    output_dir: Path = field(default=Path("train_out"), metadata={"out_dir": True, "help": "checkpoints, logs and the final model go here"})
    data_kind: Literal["auto", "curation", "videos", "synth"] = field(
        default="auto", metadata={"help": "how to read --data; auto: manifest.parquet -> curation, label.json sidecars -> synth, else videos"}
    )
    synth_keep_only: bool = field(default=True, metadata={"help": "synth sets: train only on clips labelled 'keep' (static scene, moving camera)"})
    num_frames: int = field(default=5, metadata={"min": 2, "help": "frames N per training sample (paper: 5 in stage 1, 16 in stage 2)"})
    num_refs: list[int] = field(
        default_factory=lambda: [1],
        metadata={"help": "number S of clean reference frames; one value is drawn uniformly per sample (paper stage 2: 1 3)"},
    )
    frame_sampling: Literal["strided", "random"] = field(
        default="strided",
        metadata={"help": "strided: N frames at a random constant stride from a random start; random: a sorted random subset of the clip"},
    )
    min_stride: int = field(default=1, metadata={"help": "strided sampling: smallest gap between chosen frames (in clip frames)"})
    max_stride: int = field(default=4, metadata={"help": "strided sampling: largest gap (clipped so the N frames fit in the clip)"})
    shuffle_frames: bool = field(default=True, metadata={"help": "shuffle the N frames so the model sees an unordered set (paper)"})
    resolution: int = field(default=512, metadata={"help": "training images are resolution x resolution pixels"})
    resize_mode: Literal["crop", "stretch"] = field(
        default="crop", metadata={"help": "crop: resize the short side then centre-crop; stretch: resize to a square (as official inference)"}
    )
    max_clip_frames: int = field(default=200, metadata={"help": "decode at most this many frames of each clip"})
    preload: bool = field(default=False, metadata={"help": "decode every clip once into memory (small data sets)"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes per training process"})

    # ------------------------------------------------------------------ model
    preset: Literal["full", "small"] = field(
        default="full", metadata={"help": "full: SD-2.1-size multi-view UNet on VAE latents; small: the CPU reproduction config"}
    )
    init_from: Path | None = field(
        default=None,
        metadata={"help": "UNet to start from: an official See3D UNet folder (config.json + safetensors) or SD-2.1 / MVDream weights "
                  "(LDM or diffusers-converted checkpoint; the input conv is widened to 9 channels, new channels zero)"},
    )
    unet_config: Path | None = field(default=None, metadata={"help": "config.json of a freshly initialised UNet (when --init-from is not given)"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "recompute activations in the backward pass (less memory, ~30% slower)"})

    # ------------------------------------------------------------------ latent space and context
    base_model: Path | None = field(
        default=None,
        metadata={"help": "a See3D / MVDream / SD-2.1 model folder (official MVD_weights layout: vae/, tokenizer/, text_encoder/, scheduler/, "
                  "CLIP-ViT-H-14-laion2B-s32B-b79K/); --vae, --tokenizer, --text-encoder, --image-encoder and --scheduler default to its subfolders"},
    )
    random_encoders: bool = field(
        default=False,
        metadata={"help": "write tiny random CLIP text/image encoders into <output-dir>/encoders and build the context with them "
                  "(the small CPU config: no downloads; the model learns to read it as a fixed input)"},
    )
    export_pipeline: bool = field(
        default=False, metadata={"help": "also write <output-dir>/pipeline, a See3DPipeline.save_pretrained folder (needs the context encoders)"}
    )
    latent_space: Literal["vae", "pixel_unshuffle"] = field(
        default="vae", metadata={"help": "vae: AutoencoderKL latents (--vae); pixel_unshuffle: lossless space-to-depth of the pixels (small config)"}
    )
    vae: Path | None = field(default=None, metadata={"help": "local diffusers AutoencoderKL folder (e.g. <sd21>/vae)"})
    pixel_unshuffle_factor: int = field(default=4, metadata={"help": "pixel_unshuffle space: block size r (latent has 3*r*r channels)"})
    pixel_scale: float | None = field(
        default=None, metadata={"help": "pixel_unshuffle space: latent scaling factor (default: 1 / std of the training pixels, for unit variance)"}
    )
    pixel_shift: float | None = field(default=None, metadata={"help": "pixel_unshuffle space: latent shift (default: mean of the training pixels)"})
    cache_latents: bool = field(default=False, metadata={"help": "encode each clip's frames once with the VAE and reuse the posterior (mean, std)"})
    cache_dir: Path | None = field(default=None, metadata={"help": "latent cache folder (default <output-dir>/latent_cache)"})
    text_encoder: Path | None = field(default=None, metadata={"help": "local CLIPTextModel folder; with --tokenizer the context is the empty-prompt embedding"})
    tokenizer: Path | None = field(default=None, metadata={"help": "local CLIPTokenizer folder"})
    image_encoder: Path | None = field(
        default=None, metadata={"help": "local CLIPVisionModelWithProjection folder; adds image_embed_weight x the first reference's embedding"}
    )
    image_embed_weight: float = field(default=0.2, metadata={"help": "weight of the CLIP image embedding added to the text context (official: 0.2)"})
    context_tokens: int = field(default=77, metadata={"help": "zero context: number of context tokens"})
    context: Literal["encoders", "zero"] = field(
        default="encoders", metadata={"help": "encoders: text (+ image) encoders, as the pipeline does; zero: an all-zero context (tests)"}
    )

    # ------------------------------------------------------------------ diffusion
    scheduler: Path | None = field(default=None, metadata={"help": "local scheduler folder / scheduler_config.json; default: the official settings"})
    prediction_type: Literal["v_prediction", "epsilon", "sample"] = field(default="v_prediction", metadata={"help": "training target: v (official), epsilon, or sample (the clean latent, x0)"})
    rescale_zero_snr: bool = field(default=True, metadata={"help": "rescale betas to zero terminal SNR (official)"})
    cond_dropout: float = field(default=0.1, metadata={"help": "probability of dropping the target frames' visual condition (for guidance)"})
    condition_noise: bool = field(
        default=True, metadata={"help": "time-dependent noise + mixture on the condition (paper); off = masks only (the MV-UnPoseM ablation)"}
    )
    warp_like_masks: float = field(
        default=0.0, metadata={"help": "fraction of training masks shaped like warp holes (side bands + disocclusion crescents) instead of strokes"}
    )
    late_timesteps: float = field(
        default=0.0, metadata={"help": "probability that a clip's diffusion timestep is drawn from the last 10% of the schedule (0 = uniform, the paper)"}
    )
    hole_loss_weight: float = field(
        default=0.0, metadata={"help": "extra loss weight on the hidden (hole) latents of the targets: weight 1 + this there (0 = plain MSE, the paper)"}
    )
    ssim_loss_weight: float = field(
        default=0.0,
        metadata={"help": "add this times (1 - SSIM) of the decoded predicted and true target frames to the loss (0 = the paper's MSE; "
                          "pixel_unshuffle latent space and v or sample prediction only)"},
    )
    hole_ssim_loss_weight: float = field(
        default=0.0,
        metadata={"help": "add this times (1 - SSIM) of the target frames with the model's output in the hidden pixels only and "
                          "the truth elsewhere (what a fill that keeps the warped pixels is judged on; windows across a hole "
                          "edge reward a fill that continues it); same limits as --ssim-loss-weight"},
    )
    mask_reduce: Literal["nearest", "any", "pixel"] = field(
        default="nearest",
        metadata={"help": "pixel mask -> latent holes: nearest (official, KL VAE), any (a block with any hole pixel is a hole) or "
                          "pixel (pixel-unshuffle only: the UNet gets one mask channel per pixel of the block, r*r in all, and "
                          "only hole pixels are zeroed in the condition)"},
    )

    # ------------------------------------------------------------------ optimisation
    max_steps: int = field(default=120_000, metadata={"min": 1, "help": "optimizer steps in total"})
    batch_size: int = field(default=1, metadata={"min": 1, "help": "clips per process per micro-step (each clip gives num_frames frames)"})
    gradient_accumulation_steps: int = field(default=1, metadata={"min": 1, "help": "micro-steps per optimizer step"})
    learning_rate: float = field(default=1e-5, metadata={"gt": 0, "help": "AdamW learning rate (paper: 1e-5)"})
    lr_scheduler: Literal["constant", "constant_with_warmup", "cosine", "linear"] = field(
        default="constant_with_warmup", metadata={"help": "learning-rate schedule (diffusers.optimization)"}
    )
    lr_warmup_steps: int = field(default=500, metadata={"help": "warm-up steps"})
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    adam_beta2: float = field(default=0.999, metadata={"help": "AdamW beta2"})
    weight_decay: float = field(default=1e-2, metadata={"help": "AdamW weight decay"})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "AdamW epsilon"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm (0 = off)"})
    mixed_precision: Literal["no", "fp16", "bf16"] = field(default="no", metadata={"help": "autocast precision (the paper used bf16)"})
    use_ema: bool = field(default=True, metadata={"help": "keep an exponential moving average of the UNet (exported as the final model)"})
    ema_decay: float = field(default=0.9999, metadata={"help": "EMA decay (upper bound; warms up as (1+n)/(10+n))"})
    seed: int = field(default=0, metadata={"help": "seed of data order, frame choice, noise, masks and dropout (all keyed on the step)"})

    # ------------------------------------------------------------------ checkpoints and logs
    checkpoint_every: int = field(default=500, metadata={"min": 1, "help": "save a resumable checkpoint every this many optimizer steps"})
    checkpoints_keep: int = field(default=3, metadata={"help": "keep the newest this many checkpoints"})
    resume: bool = field(default=True, metadata={"help": "continue from the newest checkpoint in <output-dir>/checkpoints when there is one"})
    log_every: int = field(default=10, metadata={"help": "write TensorBoard scalars every this many steps"})
    stop_after_minutes: float | None = field(
        default=None, metadata={"help": "save a checkpoint and stop after this much wall time (resume later with the same command)"}
    )
    stop_after_steps: int | None = field(
        default=None, metadata={"help": "save a checkpoint and stop once this step is reached, without changing the LR schedule"}
    )

    def __post_init__(self) -> None:
        if self.data is not None:
            self.data = Path(self.data)
        self.output_dir = Path(self.output_dir)
        for name in ("init_from", "unet_config", "vae", "cache_dir", "text_encoder", "tokenizer", "image_encoder", "scheduler"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, Path(v))
        check_fields(self)
        self.num_refs = [int(s) for s in (self.num_refs if isinstance(self.num_refs, (list, tuple)) else [self.num_refs])]

    def resolved(self) -> TrainConfig:
        """A copy whose unset component paths are filled from ``base_model`` (when those subfolders exist)."""
        import dataclasses

        if self.base_model is None:
            return dataclasses.replace(self)
        base = Path(self.base_model)
        if not base.is_dir():
            raise InputError(base, "--base-model folder not found")

        def pick(current, rel):
            return current if current is not None or not (base / rel).exists() else base / rel

        return dataclasses.replace(
            self,
            vae=pick(self.vae, "vae") if self.latent_space == "vae" else self.vae,
            tokenizer=pick(self.tokenizer, "tokenizer"),
            text_encoder=pick(self.text_encoder, "text_encoder"),
            image_encoder=pick(self.image_encoder, "CLIP-ViT-H-14-laion2B-s32B-b79K"),
            scheduler=pick(self.scheduler, "scheduler"),
        )

    def validate(self) -> None:
        """Raise :class:`InputError` for settings that cannot work together (call on :meth:`resolved`)."""
        if self.data is None:
            raise InputError(None, "no training data given (--data)")
        if self.num_frames < 2:
            raise InputError(None, f"num_frames must be >= 2 (got {self.num_frames})")
        if not self.num_refs or min(self.num_refs) < 1 or max(self.num_refs) >= self.num_frames:
            raise InputError(None, f"num_refs {self.num_refs} must lie in [1, num_frames-1] = [1, {self.num_frames - 1}]")
        if self.min_stride < 1 or self.max_stride < self.min_stride:
            raise InputError(None, f"need 1 <= min_stride <= max_stride (got {self.min_stride}, {self.max_stride})")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise InputError(None, f"cond_dropout must be in [0, 1) (got {self.cond_dropout})")
        if not 0.0 <= self.warp_like_masks <= 1.0:
            raise InputError(None, f"warp_like_masks is a fraction of the training masks, in [0, 1] (got {self.warp_like_masks})")
        if not 0.0 <= self.late_timesteps <= 1.0:
            raise InputError(None, f"late_timesteps is a probability, in [0, 1] (got {self.late_timesteps})")
        if not 0.0 <= self.hole_loss_weight <= 100.0:
            raise InputError(None, f"hole_loss_weight must be in [0, 100] (got {self.hole_loss_weight})")
        for name in ("ssim_loss_weight", "hole_ssim_loss_weight"):
            value = getattr(self, name)
            if value < 0:
                raise InputError(None, f"{name} must be >= 0 (got {value})")
            if value and (self.latent_space != "pixel_unshuffle" or self.prediction_type == "epsilon"):
                raise InputError(None, f"{name} needs latent_space 'pixel_unshuffle' and v or sample prediction")
        if self.latent_space == "vae" and self.vae is None:
            raise InputError(None, "latent_space 'vae' needs --vae (a local AutoencoderKL folder)")
        if self.latent_space == "pixel_unshuffle" and self.resolution % self.pixel_unshuffle_factor:
            raise InputError(None, f"resolution {self.resolution} is not divisible by pixel_unshuffle_factor {self.pixel_unshuffle_factor}")
        if self.mask_reduce == "pixel" and self.latent_space != "pixel_unshuffle":
            raise InputError(None, "mask_reduce 'pixel' needs latent_space 'pixel_unshuffle' (a KL-VAE latent does not hold single pixels)")
        if self.cache_latents and self.latent_space != "vae":
            raise InputError(None, "cache_latents only applies to latent_space 'vae' (pixel_unshuffle is already free)")
        if self.context == "encoders" and not self.random_encoders and (self.text_encoder is None or self.tokenizer is None):
            raise InputError(None, "context 'encoders' needs --text-encoder and --tokenizer (or --base-model, --random-encoders, --context zero)")
        if self.init_from is None and self.unet_config is None and self.preset == "full":
            raise InputError(None, "give --init-from (See3D / SD-2.1 / MVDream UNet weights) or --unet-config for a fresh UNet")
        if self.batch_size < 1 or self.gradient_accumulation_steps < 1 or self.max_steps < 1:
            raise InputError(None, "batch_size, gradient_accumulation_steps and max_steps must be >= 1")
        if self.checkpoint_every < 1:
            raise InputError(None, f"checkpoint_every must be >= 1 (got {self.checkpoint_every})")
