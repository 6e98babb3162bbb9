"""Reading model weight files safely: safetensors, or ``torch.load(weights_only=True)`` only.

One reader for every model in the package (UNet, RAFT-small, Mask R-CNN, LPIPS), so every weights file
gets the same clear :class:`~see3d.errors.WeightsError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from see3d.errors import WeightsError


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file: ``.safetensors``, a sharded ``.safetensors.index.json``, or a torch pickle
    (``.bin``/``.pt``/``.pth``/``.ckpt``) through ``torch.load(weights_only=True)``. Tensors keep their dtype."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(path, "weights file not found")
    name = path.name
    try:
        if name.endswith(".safetensors.index.json"):
            index = json.loads(path.read_text())
            shards = sorted(set(index["weight_map"].values()))
            sd: dict[str, torch.Tensor] = {}
            for shard in shards:
                sd.update(read_state_dict(path.parent / shard))
            return sd
        if name.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except Exception as e:  # corrupt file, pickle with non-tensor objects, bad index json ...
        raise WeightsError(path, f"cannot read weights ({type(e).__name__}: {e}); convert it to .safetensors if it is a full pickle") from e
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(path, "does not hold a flat state dict of tensors")
    return dict(obj)
