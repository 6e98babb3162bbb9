"""The bottom layer: the shared data types and the files that carry them.

- :mod:`~see3d.io.cameras`: the :class:`Cameras` type (OpenCV camera-to-world) and ``look_at``;
  :mod:`~see3d.io.conventions`: the only place camera conventions (OpenGL, COLMAP, LLFF) are converted.
- :mod:`~see3d.io.views`: ``Views`` and its folder layout; camera file formats (:mod:`~see3d.io.colmap`,
  :mod:`~see3d.io.llff`, :mod:`~see3d.io.transforms_json`, :mod:`~see3d.io.camera_path`).
- images, videos, weights files, atomic writes.

Cameras live here rather than in :mod:`see3d.geometry` because the camera file formats and ``Views``
produce them, and ``io`` imports nothing of see3d above it (geometry builds on io, never the reverse).
"""
