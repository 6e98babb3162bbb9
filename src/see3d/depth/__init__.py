"""Depth backends behind one small protocol: a transformers model folder, user-given maps, true depth."""

from see3d.depth.base import DepthBackend, DepthPrediction

__all__ = ["DepthBackend", "DepthPrediction"]
