"""Camera paths, projection, forward warping, depth alignment, SfM.

Modules (all OpenCV camera-to-world, pixel centres at +0.5, depth = z along the optical axis). The shared
:class:`~see3d.io.cameras.Cameras` type and the convention converters live one layer down, in :mod:`see3d.io`.

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

from see3d.geometry.paths import PATHS, interpolate_cameras, list_paths, make_path, scene_depth_from

__all__ = ["PATHS", "interpolate_cameras", "list_paths", "make_path", "scene_depth_from"]
