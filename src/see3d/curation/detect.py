"""Object detectors for the semantic stage: people / hands / animals / vehicles in RGB frames.

- ``mediapipe`` (default): MediaPipe's BlazePose person detector and BlazePalm hand detector on
  LiteRT (:mod:`see3d.curation.blaze`; the models are read from the mediapipe wheel, nothing is
  downloaded at run time). Finds people in any pose (sitting, partly seen, small) and hands; not
  animals or vehicles (the dynamic stage catches those that move). Recall and false positives on
  labelled frames: docs/curation.md.
- ``hog`` (no model files): OpenCV's HOG + linear SVM people detector (Dalal-Triggs).
  It only finds **upright, mostly whole people** at least 128 px tall in the analysed frame (its
  64x128 window). It misses animals, vehicles and sports equipment entirely, people seen partly
  (hands, torsos, close-ups), sitting or lying people and small people; textured vertical objects
  give false positives with low scores. Use Mask R-CNN for real curation.
- ``maskrcnn`` (the paper's detector): torchvision ``maskrcnn_resnet50_fpn`` (COCO) from a local
  weights file, else torchvision's weight cache (``$TORCH_HOME/hub/checkpoints``), else downloaded
  into that cache when the machine is online and ``SEE3D_OFFLINE`` is not set
  (:func:`resolve_maskrcnn_weights`). Every COCO class of :data:`DYNAMIC_CLASSES` counts; areas
  come from the instance masks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from see3d.curation import blaze
from see3d.errors import WeightsError
from see3d.io.weights import read_state_dict

# COCO classes treated as dynamic: people, animals, vehicles and sports equipment (the paper lists
# humans, animals and sports equipment; vehicles move in most clips that show them large).
DYNAMIC_CLASSES = (
    "person",
    "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
    "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket",
)  # fmt: skip
OFFLINE_ENV = "SEE3D_OFFLINE"
"""Set to 1 to forbid any download (the Mask R-CNN weights are otherwise fetched into torchvision's cache).
Hugging Face's ``HF_HUB_OFFLINE=1``, the switch users of this ecosystem already set, forbids it too."""
OFFLINE_ENVS = (OFFLINE_ENV, "HF_HUB_OFFLINE")


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


def _clip_box(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> tuple[tuple[float, float, float, float], float]:
    bx = (max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1))
    return bx, max(0.0, bx[2] - bx[0]) * max(0.0, bx[3] - bx[1]) / (w * h)


class MediaPipeDetector:
    """People and hands in RGB frames with MediaPipe's models (:mod:`see3d.curation.blaze`), as its
    own pipelines do: a detector proposes, the landmark model of the proposed crop confirms.

    People: BlazePose detections (``person_score``; any pose, whole or partly seen) whose body crop
    (the circle through the hip centre and the body-scale keypoint, 1.25x) the pose landmark model
    scores at least ``person_presence``. Hands: BlazePalm detections (``hand_score``) whose hand crop
    (palm box 2.6x, shifted towards the fingers) the hand landmark model scores at least
    ``hand_presence``. The confirmation removes the detectors' false positives on textures (the
    detectors alone fire on procedural scenes at scores up to 0.9). Areas: the body square / the
    hand crop, clipped to the image. At most ``max_candidates`` proposals per model and frame are
    checked. Thresholds: chosen on the tuning clips (docs/curation.md).
    """

    def __init__(
        self,
        models: str | Path | None = None,
        person_score: float = 0.75,
        person_presence: float = 0.8,
        hand_score: float = 0.5,
        hand_presence: float = 0.5,
        max_candidates: int = 4,
    ):
        files = blaze.find_models(models)
        self.pose = blaze.BlazeDetector(files[blaze.POSE_MODEL], 224, [8, 16, 32, 32, 32], (-1.0, 1.0), person_score)
        self.palm = blaze.BlazeDetector(files[blaze.PALM_MODEL], 192, [8, 16, 16, 16], (0.0, 1.0), hand_score)
        self.body = blaze.PresenceModel(files[blaze.POSE_LANDMARK_MODEL], 256)
        self.hand = blaze.PresenceModel(files[blaze.HAND_LANDMARK_MODEL], 224)
        self.person_presence, self.hand_presence, self.max_candidates = person_presence, hand_presence, max_candidates
        self.name = "mediapipe"

    def _people(self, f: np.ndarray) -> list[Detection]:
        h, w = f.shape[:2]
        out = []
        for d in sorted(self.pose(f), key=lambda d: -d.score)[: self.max_candidates]:
            c, edge = d.keypoints[0], d.keypoints[1]  # hip centre, a point on the body circle
            r = float(np.hypot(*(edge - c)))
            p = self.body(blaze.crop_rotated(f, c, 2.5 * r, blaze.roi_angle(c, edge), self.body.size))
            if p >= self.person_presence:
                box, area = _clip_box(c[0] - r, c[1] - r, c[0] + r, c[1] + r, w, h)
                out.append(Detection("person", min(d.score, p), box, area))
        return out

    def _hands(self, f: np.ndarray) -> list[Detection]:
        h, w = f.shape[:2]
        out = []
        for d in sorted(self.palm(f), key=lambda d: -d.score)[: self.max_candidates]:
            wrist, middle = d.keypoints[0], d.keypoints[2]
            angle = blaze.roi_angle(wrist, middle)
            bw, bh = d.box[2] - d.box[0], d.box[3] - d.box[1]
            c = np.array([(d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2]) + 0.5 * bh * np.array([np.sin(angle), -np.cos(angle)])
            side = 2.6 * max(bw, bh)
            p = self.hand(blaze.crop_rotated(f, c, side, angle, self.hand.size))
            if p >= self.hand_presence:
                box, area = _clip_box(c[0] - side / 2, c[1] - side / 2, c[0] + side / 2, c[1] + side / 2, w, h)
                out.append(Detection("hand", min(d.score, p), box, area))
        return out

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        return [self._people(f) + self._hands(f) for f in frames]


def coco_categories() -> list[str]:
    """The 91 COCO category names in torchvision's detection label order (index = label id)."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    return list(MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])


def resolve_maskrcnn_weights(weights: str | Path | None = None) -> Path:
    """The Mask R-CNN COCO state dict to load: ``weights`` when given (it must exist); else the file
    torchvision's ``MaskRCNN_ResNet50_FPN_Weights.COCO_V1`` keeps in its cache (``torch.hub.get_dir()``:
    ``$TORCH_HOME/hub/checkpoints``); else that file downloaded into the cache (hash-checked), unless
    ``$SEE3D_OFFLINE`` is set. Raises :class:`WeightsError` saying where to put the file otherwise."""
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise WeightsError(weights, "Mask R-CNN weights not found")
        return weights
    import torch.hub
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    url = MaskRCNN_ResNet50_FPN_Weights.COCO_V1.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if cached.is_file():
        return cached
    how = f"put torchvision's {cached.name} there or pass --maskrcnn-weights FILE"
    offline = [e for e in OFFLINE_ENVS if os.environ.get(e, "") not in ("", "0")]
    if offline:
        raise WeightsError(cached, f"Mask R-CNN weights not in torchvision's cache and {offline[0]} forbids downloading; {how}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(cached), hash_prefix=cached.stem.rsplit("-", 1)[-1], progress=False)
    except (OSError, RuntimeError, ValueError) as e:  # no network (URLError is an OSError), or a bad hash
        raise WeightsError(cached, f"Mask R-CNN weights not in torchvision's cache and the download failed ({e}); {how}") from e
    return cached


class MaskRCNNDetector:
    """torchvision Mask R-CNN (ResNet-50 FPN, COCO) from a state-dict file (:func:`resolve_maskrcnn_weights`).

    ``classes``: category names that count; ``score``: minimum detection score (official: 0.5);
    ``min_size``: the detector's internal resize of the short side (torchvision default 800; smaller
    is faster).
    """

    def __init__(self, weights: str | Path | None = None, classes: tuple[str, ...] = DYNAMIC_CLASSES, score: float = 0.5, device: str = "cpu", min_size: int = 512):
        from torchvision.models.detection import maskrcnn_resnet50_fpn

        weights = resolve_maskrcnn_weights(weights)
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


def make_detector(
    name: str = "mediapipe", weights: str | Path | None = None, device: str = "cpu", hog_threshold: float = 1.0, models: str | Path | None = None
) -> Detector | None:
    """``mediapipe`` (default; ``models``: where the model files are, see :func:`blaze.find_models`),
    ``hog``, ``maskrcnn`` (``weights``: see :func:`resolve_maskrcnn_weights`) or ``none`` (skip the
    semantic stage)."""
    if name == "none":
        return None
    if name == "mediapipe":
        return MediaPipeDetector(models)
    if name == "hog":
        return HogPeopleDetector(hit_threshold=hog_threshold)
    if name == "maskrcnn":
        return MaskRCNNDetector(weights, device=device)
    raise ValueError(f"unknown detector {name!r} (mediapipe | hog | maskrcnn | none)")
