"""`see3d view`: an interactive web viewer for Gaussian splats (viser), with camera-path playback."""

from see3d.viewer.camera_path import CameraPath, c2w_to_viser, load_camera_path, viser_to_c2w
from see3d.viewer.server import Viewer, serve

__all__ = ["CameraPath", "Viewer", "c2w_to_viser", "load_camera_path", "serve", "viser_to_c2w"]
