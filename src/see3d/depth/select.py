"""Choose a depth backend from what the user gave: a local model folder or depth maps (files)."""

from __future__ import annotations

from pathlib import Path

from see3d.depth.base import DepthBackend
from see3d.errors import InputError


def make_backend(model: str | Path | None = None, given: str | Path | None = None, kind: str = "auto", device: str | None = "auto",
                 dtype: str = "float32") -> DepthBackend:  # fmt: skip
    """A transformers depth model folder (``model``, on ``device`` in ``dtype``), else given depth maps (``given``:
    a folder matched by file stem, or one file); ``kind`` as in :data:`see3d.depth.base.KINDS` or "auto" (model:
    from its config; given maps: metric depth). Raises :class:`InputError` when neither is given."""
    if model is not None:
        from see3d.depth.transformers_backend import TransformersDepth

        return TransformersDepth(Path(model), kind=kind, device=device, dtype=dtype)
    if given is not None:
        from see3d.depth.given import GivenDepth

        given = Path(given)
        return GivenDepth(given if given.is_dir() else [given], kind="metric_depth" if kind == "auto" else kind)
    raise InputError(None, "a depth source is needed: --depth-model DIR (a transformers depth model folder) or --depth PATH (depth maps)")
