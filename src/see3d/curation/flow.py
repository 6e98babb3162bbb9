"""Optical-flow backends for the dynamic filter: OpenCV DIS (embedded default) and RAFT-small.

A backend maps two RGB frames to dense flow in pixels: ``flow[y, x] = (u, v)`` moves pixel centre
``(x + 0.5, y + 0.5)`` of frame a to ``(x + 0.5 + u, y + 0.5 + v)`` in frame b (u right, v down).

RAFT-small runs through torchvision's ``raft_small`` loaded with the original Princeton
``raft-small.pth`` (the file the official WebVi3D scripts use) after renaming its keys
(:func:`raft_small_state_dict`). As the official network does internally, images are mapped to
[-1, 1] (``2 x / 255 - 1``, RGB) and padded to a multiple of 8 with replicate padding split evenly
(RAFT's ``InputPadder`` "sintel" mode); the padding is removed from the flow.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from see3d.errors import WeightsError
from see3d.io.weights import read_state_dict


class FlowBackend(Protocol):
    """Dense optical flow between RGB uint8 frames of one size."""

    name: str

    def pair(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward (a->b) and backward (b->a) flow, each float32 ``(H, W, 2)`` pixels."""
        ...


class DISFlow:
    """OpenCV DIS optical flow on grey frames (no weights; fast on CPU).

    ``preset``: ``ultrafast``, ``fast`` or ``medium`` (OpenCV's presets: more patches and
    refinement iterations, slower and more accurate); ``patch_stride`` overrides the preset's
    (medium uses 3; 4 is ~15% faster at about the same accuracy for curation).
    """

    _PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST, "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}

    def __init__(self, preset: str = "medium", patch_stride: int = 0):
        if preset not in self._PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose one of {sorted(self._PRESETS)}")
        self.name = f"dis-{preset}"
        self._dis = cv2.DISOpticalFlow_create(self._PRESETS[preset])
        if patch_stride > 0:
            self._dis.setPatchStride(int(patch_stride))
            self.name += f"-s{patch_stride}"

    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow a->b, float32 ``(H, W, 2)`` pixels."""
        return self._dis.calc(_grey(a), _grey(b), None)

    def pair(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ga, gb = _grey(a), _grey(b)
        return self._dis.calc(ga, gb, None), self._dis.calc(gb, ga, None)


def _grey(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


# ----------------------------------------------------------------------------------------- RAFT-small
def _rename_raft_key(key: str) -> str:
    """One original RAFT-small key (``module.`` already stripped) -> torchvision ``raft_small`` name."""
    k = re.sub(r"^fnet\.", "feature_encoder.", key)
    k = re.sub(r"^cnet\.", "context_encoder.", k)
    k = re.sub(r"^(feature_encoder|context_encoder)\.conv1\.", r"\1.convnormrelu.0.", k)
    k = re.sub(r"^(feature_encoder|context_encoder)\.conv2\.", r"\1.conv.", k)
    k = re.sub(r"\.(layer\d+\.\d+)\.conv(\d)\.", r".\1.convnormrelu\2.0.", k)
    motion = {"convc1": "convcorr1.0", "convf1": "convflow1.0", "convf2": "convflow2.0", "conv": "conv.0"}
    m = re.match(r"^update_block\.encoder\.(convc1|convf1|convf2|conv)\.(.*)$", k)
    if m:
        k = f"update_block.motion_encoder.{motion[m.group(1)]}.{m.group(2)}"
    k = re.sub(r"^update_block\.gru\.", "update_block.recurrent_block.convgru1.", k)
    return k


def raft_small_state_dict(original: dict) -> dict:
    """Rename an original ``raft-small.pth`` state dict (keys ``module.fnet...``) to torchvision's
    ``raft_small`` names. Rules: strip ``module.``; ``fnet``/``cnet`` -> ``feature_encoder``/
    ``context_encoder``; encoder ``conv1``/``conv2`` -> ``convnormrelu.0``/``conv``; residual
    ``layerL.B.convK`` -> ``layerL.B.convnormreluK.0``; ``update_block.encoder.{convc1,convf1,convf2,conv}``
    -> ``update_block.motion_encoder.{convcorr1.0,convflow1.0,convflow2.0,conv.0}``;
    ``update_block.gru`` -> ``update_block.recurrent_block.convgru1``; ``flow_head`` unchanged."""
    return {_rename_raft_key(k.removeprefix("module.")): v for k, v in original.items()}


def load_raft_small(weights: str | Path, device: str = "cpu"):
    """torchvision ``raft_small`` in eval mode with the original RAFT-small weights (strict load).

    Raises :class:`WeightsError` naming the file when it is missing or does not fit.
    """
    from torchvision.models.optical_flow import raft_small

    weights = Path(weights)
    if not weights.is_file():
        raise WeightsError(weights, "RAFT-small weights not found (download raft-small.pth from the RAFT release)")
    sd = read_state_dict(weights)
    model = raft_small(weights=None, progress=False)
    try:
        model.load_state_dict(raft_small_state_dict(sd), strict=True)
    except RuntimeError as e:
        raise WeightsError(weights, f"is not a RAFT-small checkpoint ({str(e).splitlines()[0]})") from e
    return model.to(device).eval()


def pad_to_multiple(x, multiple: int = 8):
    """Replicate-pad ``(B, C, H, W)`` to multiples of ``multiple``, split evenly (extra pixel at the
    bottom/right, as RAFT's InputPadder). Returns ``(padded, (top, bottom, left, right))``."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    pads = (ph // 2, ph - ph // 2, pw // 2, pw - pw // 2)
    if ph or pw:
        x = F.pad(x, (pads[2], pads[3], pads[0], pads[1]), mode="replicate")
    return x, pads


class RaftSmallFlow:
    """RAFT-small (torchvision) with the original weights; ``iters`` GRU updates (12 = RAFT's default,
    the official WebVi3D scripts use 20). Forward and backward flow are computed in one batch."""

    def __init__(self, weights: str | Path, iters: int = 12, device: str = "cpu"):
        self.model = load_raft_small(weights, device)
        self.iters = int(iters)
        self.device = device
        self.name = f"raft-small-{self.iters}"

    def _run(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a``, ``b``: (B, H, W, 3) uint8 -> flow (B, H, W, 2) float32."""
        import torch

        ta = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float().to(self.device)
        tb = torch.from_numpy(np.ascontiguousarray(b)).permute(0, 3, 1, 2).float().to(self.device)
        ta, pads = pad_to_multiple(2.0 * (ta / 255.0) - 1.0)
        tb, _ = pad_to_multiple(2.0 * (tb / 255.0) - 1.0)
        with torch.inference_mode():
            flow = self.model(ta, tb, num_flow_updates=self.iters)[-1]
        h, w = flow.shape[-2:]
        flow = flow[:, :, pads[0] : h - pads[1], pads[2] : w - pads[3]]
        return flow.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)

    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow a->b, float32 ``(H, W, 2)`` pixels; ``a``, ``b``: RGB uint8 ``(H, W, 3)``."""
        return self._run(a[None], b[None])[0]

    def pair(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._run(np.stack([a, b]), np.stack([b, a]))
        return out[0], out[1]


def make_flow_backend(
    name: str = "dis", raft_weights: str | Path | None = None, raft_iters: int = 12, dis_preset: str = "medium", device: str = "cpu", dis_patch_stride: int = 4
) -> FlowBackend:
    """``dis`` (default, no weights) or ``raft`` (needs ``raft_weights``: path to ``raft-small.pth``)."""
    if name == "dis":
        return DISFlow(dis_preset, dis_patch_stride)
    if name == "raft":
        if raft_weights is None:
            raise WeightsError(None, "the raft flow backend needs --raft-weights path/to/raft-small.pth")
        return RaftSmallFlow(raft_weights, raft_iters, device)
    raise ValueError(f"unknown flow backend {name!r} (dis | raft)")
