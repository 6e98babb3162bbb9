"""Cameras, conventions, paths, projection, forward warping, depth alignment, SfM."""

from see3d.geometry.cameras import Cameras, look_at

__all__ = ["Cameras", "look_at"]
