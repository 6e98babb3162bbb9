"""Cameras, conventions, paths, projection, forward warping, depth alignment, SfM.

Modules (all OpenCV camera-to-world, pixel centres at +0.5, depth = z along the optical axis):

* :mod:`~see3d.geometry.cameras` -- the shared :class:`Cameras` type; :mod:`~see3d.geometry.conventions`
  -- the only place conventions (OpenGL, COLMAP, LLFF) are converted.
* :mod:`~see3d.geometry.paths` -- camera path presets (``make_path``), ``scene_depth_from``, ``interpolate_cameras``.
* :mod:`~see3d.geometry.projection` -- batched torch unproject / project.
* :mod:`~see3d.geometry.warp` -- forward warping with footprint splats and a soft z-buffer
  (``forward_warp``, ``splat_points``, ``warp_to_cameras``); :mod:`~see3d.geometry.warp_reference` -- its
  per-pixel loop reference.
* :mod:`~see3d.geometry.point_cache` -- ``PointCache``: the growing point cloud of chunked generation.
* :mod:`~see3d.geometry.align` -- robust scale/shift alignment of predicted depth (depth or disparity space).
* :mod:`~see3d.geometry.sfm` -- sparse-view poses with pycolmap (``run_sfm``), Sim3 pose alignment.

Only the numpy-level names are imported here; the torch modules load on first use.
"""

from see3d.geometry.cameras import Cameras, look_at
from see3d.geometry.paths import PATHS, interpolate_cameras, list_paths, make_path, scene_depth_from

__all__ = ["PATHS", "Cameras", "interpolate_cameras", "list_paths", "look_at", "make_path", "scene_depth_from"]
