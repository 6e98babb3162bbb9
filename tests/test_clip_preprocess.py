"""The CLIP image embedding's preprocessing follows the official path (uint8 + PIL bicubic), not torchvision's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import CLIPImageProcessor
from transformers.image_transforms import center_crop, get_resize_output_image_size, normalize, resize
from transformers.image_utils import ChannelDimension, PILImageResampling

from see3d.pipelines.inputs import clip_pixel_values

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def _official(u8: np.ndarray, short: int, crop: int) -> np.ndarray:
    """What the official pipeline computes (spec §2.2): the uint8 view mapped to [-1, 1] and back, then transformers
    4.x ``CLIPImageProcessor`` with ``do_rescale=False``, step by step with transformers' own PIL-based transforms."""
    x = ((torch.from_numpy(u8).permute(2, 0, 1).float() / 127.5 - 1) + 1) / 2
    img = x.numpy()
    fmt = ChannelDimension.FIRST
    size = get_resize_output_image_size(img, size=short, default_to_square=False, input_data_format=fmt)
    img = resize(img, size, resample=PILImageResampling.BICUBIC, input_data_format=fmt)
    img = center_crop(img, (crop, crop), input_data_format=fmt)
    return normalize(img, MEAN, STD, input_data_format=fmt)


@pytest.mark.parametrize("hw", [(512, 512), (320, 448), (96, 64)])
def test_clip_preprocessing_matches_the_official_pil_path(hw):
    rng = np.random.default_rng(sum(hw))
    u8 = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    u8[: hw[0] // 2] = np.linspace(0, 255, hw[1], dtype=np.uint8)[None, :, None]  # smooth ramps next to noise
    processor = CLIPImageProcessor()  # ViT-H/14: short side 224, centre crop 224, OpenAI mean/std, bicubic
    ours = clip_pixel_values(torch.from_numpy(u8).permute(2, 0, 1).float() / 255, processor)
    ref = _official(u8, 224, 224)
    assert ours.shape == (1, 3, 224, 224) and ours.dtype == torch.float32
    np.testing.assert_allclose(ours[0].numpy(), ref, rtol=0, atol=2e-6)


def test_clip_preprocessing_reads_the_processor_settings():
    u8 = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    ours = clip_pixel_values(torch.from_numpy(u8).permute(2, 0, 1).float() / 255, processor)
    np.testing.assert_allclose(ours[0].numpy(), _official(u8, 32, 32), rtol=0, atol=2e-6)
