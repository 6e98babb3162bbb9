"""MediaPipe's BlazePose and BlazePalm detection models and their landmark models, run with LiteRT
(the default person / hand detector of the semantic stage, :class:`see3d.curation.detect.MediaPipeDetector`:
a detector proposes, the landmark model's presence score confirms).

The ``.tflite`` files (:data:`MODEL_FILES`) are Google's (Apache-2.0, the wheel's LICENSE) and ship
inside the ``mediapipe`` 0.10.x wheels.
mediapipe itself is not installed (its pins, numpy<2 and opencv-contrib, conflict with ours): the
models are read straight out of a downloaded wheel or a folder (:func:`find_models`), never
downloaded at run time; ``make setup`` puts the wheel in ``<venv>/share/see3d``. They run on
``ai-edge-litert`` (LiteRT, the TensorFlow Lite runtime, Apache-2.0).

Both detectors are single-shot detectors on a letterboxed square input with fixed-size anchors: a raw
box is ``(dx, dy, w, h, keypoints...)`` in input pixels relative to its anchor's centre; the score is
a sigmoid. BlazePose's first two keypoints are the hip centre and a point on the circle enclosing
the whole body, which give the person's extent even when only the face and shoulders are seen; a
hand's extent is its palm box scaled 2.6x (as MediaPipe's hand tracking crops it).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from see3d.errors import WeightsError

MEDIAPIPE_WHEEL = "mediapipe==0.10.21"
"""The wheel the models are read from (any 0.10.x carries the same files)."""
POSE_MODEL = "mediapipe/modules/pose_detection/pose_detection.tflite"
PALM_MODEL = "mediapipe/modules/palm_detection/palm_detection_full.tflite"
POSE_LANDMARK_MODEL = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
HAND_LANDMARK_MODEL = "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"
MODEL_FILES = (POSE_MODEL, PALM_MODEL, POSE_LANDMARK_MODEL, HAND_LANDMARK_MODEL)
MODELS_ENV = "SEE3D_MEDIAPIPE_MODELS"
FETCH_HINT = (
    f"get them once with `pip download --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 {MEDIAPIPE_WHEEL} "
    f"-d {sys.prefix}/share/see3d` (or pass --detector-models WHEEL_OR_FOLDER, or use --detector hog)"
)


def _default_places() -> list[Path]:
    return [Path(sys.prefix) / "share" / "see3d", Path.home() / ".cache" / "see3d"]


def find_models(path: str | Path | None = None) -> dict[str, bytes]:
    """The model files' bytes, keyed by their paths in the wheel (:data:`MODEL_FILES`).

    Looked up in ``path`` (a mediapipe 0.10.x wheel, or a folder holding the ``mediapipe/modules/...``
    tree, the ``.tflite`` files themselves, or such a wheel), else ``$SEE3D_MEDIAPIPE_MODELS``, an
    installed ``mediapipe`` package (found, not imported), and the wheels in ``<sys.prefix>/share/see3d``
    and ``~/.cache/see3d``. Raises :class:`WeightsError` with the way to get them when none has them.
    """
    given = path if path is not None else os.environ.get(MODELS_ENV) or None
    places = [Path(given)] if given is not None else _default_places()
    if given is None:
        spec = importlib.util.find_spec("mediapipe")
        if spec is not None and spec.submodule_search_locations:
            places.insert(0, Path(next(iter(spec.submodule_search_locations))).parent)
    for place in places:
        found = _read_models(place)
        if found is not None:
            return found
    where = str(given) if given is not None else ", ".join(str(p) for p in places)
    raise WeightsError(given, f"MediaPipe pose / hand models not found (looked in {where}); {FETCH_HINT}")


def _read_models(place: Path) -> dict[str, bytes] | None:
    names = MODEL_FILES
    try:
        if place.is_file() and place.suffix == ".whl":
            with zipfile.ZipFile(place) as z:
                have = set(z.namelist())
                return {n: z.read(n) for n in names} if all(n in have for n in names) else None
        if place.is_dir():
            for n in names:  # a folder with the tree, or the bare files
                if not ((place / n).is_file() or (place / Path(n).name).is_file()):
                    break
            else:
                return {n: ((place / n) if (place / n).is_file() else (place / Path(n).name)).read_bytes() for n in names}
            for wheel in sorted(place.glob("mediapipe-0.10.*.whl"), reverse=True):
                found = _read_models(wheel)
                if found is not None:
                    return found
    except (OSError, zipfile.BadZipFile, KeyError):
        return None
    return None


def ssd_anchors(size: int, strides: list[int]) -> np.ndarray:
    """Anchor centres ``(N, 2)`` in [0, 1] of MediaPipe's SSD anchor generator with fixed-size anchors
    and one interpolated scale: consecutive layers of one stride share a grid, two anchors per layer
    and cell."""
    out, i = [], 0
    while i < len(strides):
        s, n = strides[i], 0
        while i < len(strides) and strides[i] == s:
            n, i = n + 2, i + 1
        f = int(np.ceil(size / s))
        yy, xx = np.mgrid[0:f, 0:f]
        c = np.stack([(xx + 0.5) / f, (yy + 0.5) / f], -1).reshape(-1, 1, 2)
        out.append(np.repeat(c, n, 1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


@dataclass
class Candidate:
    score: float
    box: np.ndarray  # (4,) x0, y0, x1, y1 image pixels
    keypoints: np.ndarray  # (K, 2) image pixels


def _interpreter(model: bytes):
    """A one-thread LiteRT interpreter with its tensors allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise WeightsError(None, "the mediapipe detector needs the LiteRT runtime (pip install ai-edge-litert)") from e
    it = Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    return it


def roi_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Rotation (radians, image y down) that turns the direction ``a -> b`` upright, as MediaPipe's
    ROI calculators: ``pi/2 - atan2(-(b_y - a_y), b_x - a_x)``."""
    return float(np.pi / 2 - np.arctan2(-(b[1] - a[1]), b[0] - a[0]))


def crop_rotated(img: np.ndarray, center: np.ndarray, size: float, angle: float, out: int) -> np.ndarray:
    """The square of side ``size`` pixels centred at ``center`` and rotated by ``angle`` (radians),
    resampled to ``out`` x ``out`` (zero outside the image), float32 in [0, 1]."""
    c, s = np.cos(angle), np.sin(angle)
    m = np.array([[c, -s, 0.0], [s, c, 0.0]]) * (size / out)  # output pixel -> image pixel
    m[:, 2] = np.asarray(center, np.float64) - m[:, :2] @ np.array([out / 2.0, out / 2.0])
    crop = cv2.warpAffine(img, m, (out, out), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop.astype(np.float32) * (1.0 / 255.0)


class PresenceModel:
    """A MediaPipe landmark model used for its presence score (the probability, in [0, 1], that its
    input crop shows a body / a hand): ``size`` x ``size`` RGB input in [0, 1]."""

    def __init__(self, model: bytes, size: int, output: str = "Identity_1"):
        self._it = _interpreter(model)
        self._inp = self._it.get_input_details()[0]["index"]
        self._out = next(d["index"] for d in self._it.get_output_details() if d["name"] == output)
        self.size = size

    def __call__(self, crop: np.ndarray) -> float:
        self._it.set_tensor(self._inp, crop[None])
        self._it.invoke()
        return float(self._it.get_tensor(self._out).ravel()[0])


class BlazeDetector:
    """One MediaPipe SSD detection model on LiteRT. ``value_range``: the input's (low, high)."""

    def __init__(self, model: bytes, size: int, strides: list[int], value_range: tuple[float, float], threshold: float):
        self._it = _interpreter(model)
        self._inp = self._it.get_input_details()[0]["index"]
        outs = sorted(self._it.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        self._reg, self._cls = outs[0]["index"], outs[1]["index"]
        self.size, self.anchors, self.range, self.threshold = size, ssd_anchors(size, strides), value_range, threshold

    def __call__(self, img: np.ndarray) -> list[Candidate]:
        """Detections above ``threshold`` in an RGB uint8 image ``(H, W, 3)``, after non-maximum suppression."""
        h, w = img.shape[:2]
        S = self.size
        s = S / max(h, w)
        nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        oy, ox = (S - nh) // 2, (S - nw) // 2
        lo, hi = self.range
        x = np.full((S, S, 3), lo, np.float32)  # letterbox: a zero image in the model's range
        x[oy : oy + nh, ox : ox + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA).astype(np.float32) * ((hi - lo) / 255.0) + lo
        self._it.set_tensor(self._inp, x[None])
        self._it.invoke()
        reg = self._it.get_tensor(self._reg)[0]
        logit = np.clip(self._it.get_tensor(self._cls)[0, :, 0], -80.0, 80.0)
        score = 1.0 / (1.0 + np.exp(-logit))
        keep = np.flatnonzero(score >= self.threshold)
        if not len(keep):
            return []
        a, r = self.anchors[keep], reg[keep]
        cx, cy = r[:, 0] / S + a[:, 0], r[:, 1] / S + a[:, 1]
        bw, bh = r[:, 2] / S, r[:, 3] / S
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        kps = r[:, 4:].reshape(len(keep), -1, 2) / S + a[:, None, :]
        to_img = np.array([S / s, S / s]), np.array([ox / s, oy / s])  # input [0, 1] -> image pixels
        boxes = boxes * np.tile(to_img[0], 2) - np.tile(to_img[1], 2)
        kps = kps * to_img[0] - to_img[1]
        xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
        picked = np.ravel(cv2.dnn.NMSBoxes(xywh, score[keep].astype(float).tolist(), self.threshold, 0.3)).astype(int)
        return [Candidate(float(score[keep][i]), boxes[i], kps[i]) for i in picked]
