"""LPIPS (Zhang et al. 2018, v0.1) from locally given weights.

Written here rather than taken from the ``lpips`` package (which does build offline, with
``pnet_rand=True``) for two things it does not do: the *masked* distance the evaluation needs (each layer's
map averaged over the valid pixels only, e.g. DTU's object masks; the package averages over the whole image
or returns an upsampled map), and loading the files users have in either layout below without building
torchvision's classifier heads. ``tests/test_eval_metrics.py`` checks it against the package (to 1e-6).
The network is the same: torchvision's
``alexnet().features`` or ``vgg16().features`` (ImageNet weights), a fixed input scaling, unit-normalised
activations at five ReLU taps, squared differences, per-layer 1x1 linear weights (no bias), spatial
mean, sum over layers. Loading accepts the files users already have:

- the ``lpips`` package's linear layers (``lpips/weights/v0.1/alex.pth`` or ``vgg.pth``: keys
  ``lin0.model.1.weight`` .. ``lin4.model.1.weight``), plus
- torchvision's backbone (``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``: keys ``features.N.*``),

or one merged file (an ``lpips.LPIPS`` state dict, keys ``net.sliceK.N.*`` + ``lin*``), as ``.pth``
(read with ``torch.load(weights_only=True)``) or ``.safetensors``. :func:`cached_lpips_weights` finds those
files where the ``lpips`` package and torchvision keep them (never downloads).

Used by evaluation (scores) and by splat optimisation (an optional perceptual loss term), so it sits
below both, next to :mod:`see3d.metrics`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from see3d.errors import WeightsError
from see3d.io.weights import read_state_dict

# ReLU outputs tapped in torchvision's ``features`` Sequential, and their channel counts.
_TAPS = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}
_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
_BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


def _backbone(net: str) -> nn.Sequential:
    """torchvision's ``alexnet().features`` / ``vgg16().features`` layer for layer (same indices, so the same
    state-dict keys). Built here because constructing the torchvision models also initialises their
    classifier heads (~60M / 120M parameters), which costs seconds and is never used."""
    if net == "alex":
        return nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )  # fmt: skip
    layers: list[nn.Module] = []
    c_in = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            c_in = int(v)
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    """LPIPS distance between images in [0, 1]. ``forward(pred, target, mask=None) -> (B,)``.

    Args:
        net: backbone, ``"alex"`` (the usual choice for NVS benchmarks) or ``"vgg"``.
    """

    def __init__(self, net: Literal["alex", "vgg"] = "alex"):
        super().__init__()
        if net not in _TAPS:
            raise ValueError(f"LPIPS: net must be 'alex' or 'vgg', got {net!r}")
        self.net = net
        self.taps = _TAPS[net]
        self.features = _backbone(net)[: self.taps[-1] + 1]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS[net])
        # Input scaling of LPIPS v0.1 (inputs in [-1, 1]).
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x * 2 - 1) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """LPIPS per image ``(B,)`` for ``(B, 3, H, W)`` images in [0, 1].

        With ``mask (B, H, W)`` each layer's distance map is averaged over the valid region only (the
        mask area-resampled to that layer's resolution), instead of over the whole image.
        """
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(f"LPIPS: expected two (B, 3, H, W) images, got {tuple(pred.shape)} and {tuple(target.shape)}")
        total = torch.zeros(pred.shape[0], dtype=pred.dtype, device=pred.device)
        m = None if mask is None else (mask[:, None] if mask.ndim == 3 else mask).to(pred.dtype)
        for lin, f0, f1 in zip(self.lins, self._feats(pred), self._feats(target), strict=True):
            d = lin((f0 - f1) ** 2)  # (B, 1, h, w)
            if m is None:
                total = total + d.mean((1, 2, 3))
            else:
                mr = F.interpolate(m, size=d.shape[-2:], mode="area")
                total = total + (d * mr).sum((1, 2, 3)) / mr.sum((1, 2, 3)).clamp_min(1e-8)
        return total


def _map_key(key: str) -> str | None:
    """Our name for a key of the lpips package / torchvision checkpoints, or None to ignore it."""
    if m := re.fullmatch(r"(?:lin|lins\.)(\d)\.model\.1\.weight", key):
        return f"lins.{m.group(1)}.weight"
    if m := re.fullmatch(r"lins\.(\d)\.weight", key):
        return key
    if m := re.fullmatch(r"net\.slice\d\.(\d+)\.(weight|bias)", key):
        return f"features.{m.group(1)}.{m.group(2)}"
    if re.fullmatch(r"features\.\d+\.(weight|bias)", key):
        return key
    return None  # classifier.*, scaling_layer.*, lin5/lin6 (squeeze), ...


def cached_lpips_weights(net: Literal["alex", "vgg"] = "alex") -> list[Path]:
    """The LPIPS files already on this machine: the ``lpips`` package's linear layers (shipped inside the
    package) and torchvision's backbone in the torch hub cache (``$TORCH_HOME/hub/checkpoints``, filled
    when torchvision or lpips once downloaded it). Nothing is downloaded.

    Raises:
        WeightsError: one of the two is not there (the message says which file to get or pass).
    """
    import importlib.util

    spec = importlib.util.find_spec("lpips")
    lin = None if spec is None or spec.origin is None else Path(spec.origin).parent / "weights" / "v0.1" / f"{net}.pth"
    if lin is None or not lin.is_file():
        raise WeightsError(lin or Path(f"lpips/weights/v0.1/{net}.pth"), "LPIPS linear layers not found (pip install lpips, or pass the weight files)")
    backbone = Path(torch.hub.get_dir()) / "checkpoints" / _BACKBONE_FILES[net]
    if not backbone.is_file():
        raise WeightsError(backbone, f"torchvision's {net} backbone is not in the torch hub cache (pass the file, or let torchvision download it once while online)")
    return [lin, backbone]


def load_lpips(paths: str | Path | list[str | Path], net: Literal["alex", "vgg"] | None = None, device: str | torch.device = "cpu") -> LPIPS:
    """Build :class:`LPIPS` from local weight files or folders (see the module docstring).

    ``net`` is inferred from the backbone's first convolution when not given.

    Raises:
        WeightsError: a file is missing or unreadable, or the linear layers / backbone are incomplete.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in (".pth", ".pt", ".safetensors"))
            if not found:
                raise WeightsError(p, "folder holds no .pth/.pt/.safetensors LPIPS weights")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise WeightsError(p, "LPIPS weights not found")
    merged: dict[str, torch.Tensor] = {}
    for f in files:
        for k, v in read_state_dict(f).items():
            name = _map_key(k)
            if name is not None and isinstance(v, torch.Tensor):
                merged[name] = v
    first = merged.get("features.0.weight")
    inferred = None if first is None else ("alex" if first.shape[-1] == 11 else "vgg")
    net = net or inferred or "alex"
    if inferred is not None and inferred != net:
        raise WeightsError(files[0], f"backbone weights are {inferred} but net={net!r} was asked for")
    model = LPIPS(net)
    expected = set(model.state_dict())
    missing = sorted(expected - set(merged))
    where = ", ".join(str(f) for f in files)
    if any(k.startswith("lins.") for k in missing):
        raise WeightsError(files[0], f"no LPIPS linear layers in {where} (expected the lpips package's {net}.pth: keys lin0.model.1.weight ..)")
    if missing:
        raise WeightsError(files[0], f"no {net} backbone weights in {where} (also give torchvision's {_BACKBONE_FILES[net]}); missing e.g. {missing[0]}")
    try:
        model.load_state_dict({k: merged[k] for k in expected}, strict=True)
    except RuntimeError as e:
        raise WeightsError(files[0], f"LPIPS weights do not fit the {net} network ({e})") from e
    return model.to(device)
