"""Visual conditioning of the multi-view diffusion: inference mix, training corruption, irregular masks."""

from see3d.conditioning.masks import MaskConfig, random_hole_mask, random_hole_masks, warp_like_hole_mask
from see3d.conditioning.training_condition import (
    TrainingConditionConfig,
    TrainingInputs,
    build_training_inputs,
    masked_mse,
    predicted_sample,
    sample_timesteps,
)
from see3d.conditioning.visual_condition import (
    DecayParams,
    build_unet_input,
    combine_guidance,
    condition_timestep,
    decay_weight,
    downsample_mask,
    latent_validity,
    mix_condition,
    noise_latents,
    pixel_masks,
    restore_references,
)

__all__ = [
    "DecayParams",
    "MaskConfig",
    "TrainingConditionConfig",
    "TrainingInputs",
    "build_training_inputs",
    "sample_timesteps",
    "build_unet_input",
    "combine_guidance",
    "condition_timestep",
    "decay_weight",
    "downsample_mask",
    "latent_validity",
    "masked_mse",
    "predicted_sample",
    "mix_condition",
    "noise_latents",
    "pixel_masks",
    "random_hole_mask",
    "random_hole_masks",
    "warp_like_hole_mask",
    "restore_references",
]
