"""Pipelines: the See3D multi-view diffusion (:mod:`see3d.pipelines.see3d_pipeline`) and the flows built on it.

Kept light on purpose: import submodules directly (``from see3d.pipelines.see3d_pipeline import See3DPipeline``);
the names below are resolved lazily so ``import see3d.pipelines`` loads no model code.
"""

from __future__ import annotations

_LAZY = {
    "See3DPipeline": "see3d.pipelines.see3d_pipeline",
    "See3DPipelineOutput": "see3d.pipelines.see3d_pipeline",
    "write_tiny_see3d": "see3d.pipelines.tiny",
    "MVDConfig": "see3d.pipelines.folder_io",
    "run_mvd": "see3d.pipelines.folder_io",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'see3d.pipelines' has no attribute {name!r}")


__all__ = list(_LAZY)
