"""Object detectors for the semantic stage: people / animals / vehicles in RGB frames.

- ``hog`` (embedded default, no weights): OpenCV's HOG + linear SVM people detector (Dalal-Triggs).
  It only finds **upright, mostly whole people** at least 128 px tall in the analysed frame (its
  64x128 window). It misses animals, vehicles and sports equipment entirely, people seen partly
  (hands, torsos, close-ups), sitting or lying people and small people; textured vertical objects
  give false positives with low scores. Use Mask R-CNN for real curation.
- ``maskrcnn``: torchvision ``maskrcnn_resnet50_fpn`` (COCO) from a local weights file (the
  ``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth`` state dict torchvision publishes; nothing is
  downloaded). Areas come from the instance masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from see3d.errors import WeightsError
from see3d.io.weights import read_state_dict

# COCO classes treated as dynamic: people, animals, vehicles and sports equipment (the paper lists
# humans, animals and sports equipment; vehicles move in most clips that show them large).
DYNAMIC_CLASSES = (
    "person",
    "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
    "frisbee", "skis", "snowboard", "sports ball", "kite", "skateboard", "surfboard",
)  # fmt: skip


@dataclass
class Detection:
    """One detected object. ``box`` = (x0, y0, x1, y1) pixels; ``area`` = fraction of the image it covers."""

    label: str
    score: float
    box: tuple[float, float, float, float]
    area: float


class Detector(Protocol):
    """Finds dynamic-class objects in RGB uint8 frames ``(H, W, 3)``."""

    name: str

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        """One list of detections per frame."""
        ...


class HogPeopleDetector:
    """OpenCV's default HOG people detector (see module docstring for what it misses).

    ``hit_threshold``: SVM score a window must exceed (OpenCV's default 0 gives many false positives
    on textured scenes; 1.0 keeps confident detections). Non-maximum suppression is OpenCV's grouping.
    """

    def __init__(self, hit_threshold: float = 1.0, scale: float = 1.1, win_stride: int = 8):
        self.name = "hog"
        self.hit_threshold = hit_threshold
        self.scale = scale
        self.win_stride = win_stride
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        out = []
        for f in frames:
            h, w = f.shape[:2]
            dets = []
            if h >= 128 and w >= 64:
                s = self.win_stride
                boxes, weights = self._hog.detectMultiScale(f, hitThreshold=self.hit_threshold, winStride=(s, s), padding=(8, 8), scale=self.scale)
                for (x, y, bw, bh), sc in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(weights)):
                    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
                    dets.append(Detection("person", float(sc), (float(x0), float(y0), float(x1), float(y1)), float((x1 - x0) * (y1 - y0)) / (w * h)))
            out.append(dets)
        return out


def coco_categories() -> list[str]:
    """The 91 COCO category names in torchvision's detection label order (index = label id)."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    return list(MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])


class MaskRCNNDetector:
    """torchvision Mask R-CNN (ResNet-50 FPN, COCO) from a local state-dict file.

    ``classes``: category names that count; ``score``: minimum detection score (official: 0.5);
    ``min_size``: the detector's internal resize of the short side (torchvision default 800; smaller
    is faster).
    """

    def __init__(self, weights: str | Path, classes: tuple[str, ...] = DYNAMIC_CLASSES, score: float = 0.5, device: str = "cpu", min_size: int = 512):
        from torchvision.models.detection import maskrcnn_resnet50_fpn

        weights = Path(weights)
        if not weights.is_file():
            raise WeightsError(weights, "Mask R-CNN weights not found")
        sd = read_state_dict(weights)
        model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, min_size=min_size, box_score_thresh=score)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise WeightsError(weights, f"is not a COCO maskrcnn_resnet50_fpn state dict ({str(e).splitlines()[0]})") from e
        self.model = model.to(device).eval()
        self.device = device
        self.names = coco_categories()
        self.keep = {i for i, n in enumerate(self.names) if n in set(classes)}
        self.score = score
        self.name = "maskrcnn"

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        import torch

        if not frames:
            return []
        batch = [torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float().div(255.0).to(self.device) for f in frames]
        with torch.inference_mode():
            preds = self.model(batch)
        out = []
        for f, p in zip(frames, preds):
            h, w = f.shape[:2]
            dets = []
            for box, label, sc, mask in zip(p["boxes"].cpu().numpy(), p["labels"].cpu().numpy(), p["scores"].cpu().numpy(), p["masks"].cpu().numpy()):
                if int(label) in self.keep and float(sc) >= self.score:
                    area = float((mask[0] > 0.5).sum()) / (h * w)
                    dets.append(Detection(self.names[int(label)], float(sc), tuple(float(v) for v in box), area))
            out.append(dets)
        return out


def make_detector(name: str = "hog", weights: str | Path | None = None, device: str = "cpu", hog_threshold: float = 1.0) -> Detector | None:
    """``hog`` (default), ``maskrcnn`` (needs ``weights``) or ``none`` (skip the semantic stage)."""
    if name == "none":
        return None
    if name == "hog":
        return HogPeopleDetector(hit_threshold=hog_threshold)
    if name == "maskrcnn":
        if weights is None:
            raise WeightsError(None, "the maskrcnn detector needs --maskrcnn-weights path/to/maskrcnn_resnet50_fpn_coco.pth")
        return MaskRCNNDetector(weights, device=device)
    raise ValueError(f"unknown detector {name!r} (hog | maskrcnn | none)")
