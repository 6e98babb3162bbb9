"""Depth from any transformers ``AutoModelForDepthEstimation`` checkpoint folder (never downloads).

Works with Depth Anything (V1/V2, relative or metric), DPT / MiDaS, Depth Pro, ZoeDepth, GLPN, ... saved
with ``save_pretrained`` (``config.json``, weights, ``preprocessor_config.json``). Loading uses
``local_files_only=True`` and safetensors weights when the folder has them.

What the output means (:attr:`DepthPrediction.kind`) is decided from the config unless ``kind`` is given:

=========================  ===============================================================
model_type                 kind
=========================  ===============================================================
``depth_anything``         ``relative_disparity``, or ``metric_depth`` when the config's
                           ``depth_estimation_type`` is ``"metric"``
``dpt``                    ``relative_disparity`` (MiDaS-style inverse depth)
``depth_pro``              ``metric_depth`` (uses the caller's focal length when given,
                           else the model's own field-of-view estimate)
``zoedepth``, ``glpn``     ``metric_depth``
``prompt_depth_anything``  ``metric_depth``
other                      must be given with ``kind=``
=========================  ===============================================================
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from see3d.depth.base import KINDS, DepthPrediction
from see3d.errors import InputError, WeightsError

_KIND_BY_MODEL_TYPE = {
    "dpt": "relative_disparity",
    "depth_pro": "metric_depth",
    "zoedepth": "metric_depth",
    "glpn": "metric_depth",
    "prompt_depth_anything": "metric_depth",
}


def kind_from_config(config) -> str | None:
    """The :class:`DepthPrediction` kind a transformers depth config implies, or None when unknown."""
    mt = getattr(config, "model_type", None)
    if mt == "depth_anything":
        return "metric_depth" if str(getattr(config, "depth_estimation_type", "relative")).lower() == "metric" else "relative_disparity"
    return _KIND_BY_MODEL_TYPE.get(mt)


class TransformersDepth:
    """A transformers depth-estimation model loaded from a local folder.

    Args:
        model_dir: folder written by ``save_pretrained`` (config, weights, image-processor config).
        kind: ``"auto"`` (decide from the config, table above) or one of ``DepthPrediction`` kinds.
        device: torch device ("auto", "cpu", "cuda", "cuda:1", ...; :func:`see3d.device.resolve_device`).
        dtype: model dtype: a torch dtype, "float32", "float16", "bfloat16" or "auto" (the package's policy,
            :func:`see3d.device.resolve_dtype`); default float32. Outputs are float32 whatever the model dtype.
    """

    def __init__(self, model_dir: str | Path, kind: str = "auto", device: str | None = "auto", dtype="float32"):
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForDepthEstimation

        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise WeightsError(self.model_dir, "not a transformers model folder (no config.json); download the model and pass its folder")
        try:
            config = AutoConfig.from_pretrained(self.model_dir, local_files_only=True)
        except (OSError, ValueError, KeyError) as e:
            raise WeightsError(self.model_dir / "config.json", f"unreadable model config ({e})") from e
        if kind == "auto":
            k = kind_from_config(config)
            if k is None:
                raise InputError(
                    self.model_dir,
                    f"cannot tell whether model type {config.model_type!r} predicts depth or disparity; pass kind= one of {KINDS}",
                )
            kind = k
        if kind not in KINDS:
            raise ValueError(f"TransformersDepth: kind must be 'auto' or one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.model_type = config.model_type
        self.name = f"transformers:{self.model_dir.name}"
        from see3d.device import resolve_device_dtype

        self.device, self.dtype = resolve_device_dtype(device or "auto", dtype or "float32")
        try:
            self.processor = AutoImageProcessor.from_pretrained(self.model_dir, local_files_only=True)
        except (OSError, ValueError) as e:
            raise WeightsError(self.model_dir, f"missing or unreadable preprocessor_config.json ({e})") from e
        try:
            self.model = AutoModelForDepthEstimation.from_pretrained(self.model_dir, local_files_only=True, dtype=self.dtype)
        except (OSError, ValueError, RuntimeError) as e:
            raise WeightsError(self.model_dir, f"could not load the depth model ({e})") from e
        self.model.to(self.device).eval()

    def predict(self, image: np.ndarray, key: str | int | None = None, focal_px: float | None = None) -> DepthPrediction:
        """Predict for ``image (H, W, 3)`` float in [0, 1] -> :class:`DepthPrediction` at (H, W).

        ``focal_px``: the image's true focal length in pixels; Depth Pro uses it to set the metric scale.
        """
        import torch

        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"TransformersDepth.predict: expected (H, W, 3) RGB, got {img.shape}")
        H, W = img.shape[:2]
        u8 = np.clip(np.round(img.astype(np.float32) * 255.0), 0, 255).astype(np.uint8) if img.dtype != np.uint8 else img
        inputs = self.processor(images=u8, return_tensors="pt")
        inputs = {k: (v.to(self.device, self.dtype) if torch.is_floating_point(v) else v.to(self.device)) for k, v in inputs.items()}
        with torch.no_grad():
            out = self.model(**inputs)
        focal_out = None
        if self.model_type == "depth_pro" and focal_px is not None:
            # Depth Pro predicts canonical inverse depth; metric depth = f / (W * inv) (as its post-processing does with its own fov)
            inv = torch.nn.functional.interpolate(out.predicted_depth.float()[:, None], size=(H, W), mode="bilinear", align_corners=False)[
                0, 0
            ]
            depth = 1.0 / torch.clamp(inv * W / float(focal_px), min=1e-4, max=1e4)
            values = depth
            focal_out = float(focal_px)
        elif hasattr(self.processor, "post_process_depth_estimation"):
            kw = {"target_sizes": [(H, W)]}
            if "source_sizes" in inspect.signature(self.processor.post_process_depth_estimation).parameters:
                kw["source_sizes"] = [(H, W)]
            res = self.processor.post_process_depth_estimation(out, **kw)[0]
            values = res["predicted_depth"]
            fl = res.get("focal_length")
            if fl is not None:
                focal_out = float(fl)
        else:
            values = torch.nn.functional.interpolate(
                out.predicted_depth.float()[:, None], size=(H, W), mode="bilinear", align_corners=False
            )[0, 0]
        values = values.float().reshape(H, W).cpu().numpy()
        return DepthPrediction(values, self.kind, focal_px=focal_out)
