"""Camera paths for the viewer: read them from files, and turn our cameras into viser camera poses.

Two file formats are read:

- nerfstudio ``camera_path.json`` (nerfstudio's viewer, ``see3d`` flythroughs), read with
  :func:`see3d.io.camera_path.read_camera_path` (OpenGL ``camera_to_world`` in the file, vertical ``fov``);
- nerfstudio / instant-ngp ``transforms.json`` (what ``see3d`` writes next to every view folder),
  read with :func:`see3d.io.transforms_json.read_transforms_json`.

Playback runs at the file's ``fps`` key (:data:`DEFAULT_FPS` when absent).

viser's camera frame is OpenCV's: ``CameraHandle.wxyz`` / ``position`` are ``R`` and ``t`` of
``P_world = R @ p_camera + t`` with the camera looking along its +z and its -y pointing up in the
image (see ``viser/_viser.py``, ``CameraHandle.wxyz``). So our OpenCV ``c2w`` maps to viser as
``wxyz = quat(c2w[:3, :3])``, ``position = c2w[:3, 3]`` with no axis flip; the browser test
(``tests/test_viewer_browser.py``) checks this end to end against our own renderer. viser's
camera has a centred principal point and square pixels and takes the *vertical* field of view;
the browser window sets the aspect ratio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from see3d.errors import InputError
from see3d.io.camera_path import read_camera_path
from see3d.io.cameras import Cameras
from see3d.io.conventions import quat_wxyz_to_rotmat, rotmat_to_quat_wxyz
from see3d.io.transforms_json import read_transforms_json

DEFAULT_FPS = 10.0


@dataclass
class CameraPath:
    """Cameras to play back in order.

    Attributes:
        cameras: the path's cameras (OpenCV c2w, intrinsics in pixels of ``width x height``).
        fps: playback rate in frames per second.
    """

    cameras: Cameras
    fps: float = DEFAULT_FPS

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def fov_y(self) -> np.ndarray:
        """(N,) vertical field of view in radians (``2 atan(H / (2 fy))``)."""
        return fov_y_from_intrinsics(self.cameras.K, self.cameras.height)

    def viser_poses(self) -> tuple[np.ndarray, np.ndarray]:
        """``(wxyz (N, 4), position (N, 3))``: the path as viser camera poses."""
        return c2w_to_viser(self.cameras.c2w)


def fov_y_from_intrinsics(K: np.ndarray, height: int) -> np.ndarray:
    """(..., 3, 3) intrinsics in pixels and the image height -> (...,) vertical FOV in radians."""
    K = np.asarray(K, dtype=np.float64)
    return 2.0 * np.arctan(0.5 * height / K[..., 1, 1])


def c2w_to_viser(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 4, 4) OpenCV c2w -> viser camera ``(wxyz (..., 4), position (..., 3))`` (same axes, no flip)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    return rotmat_to_quat_wxyz(c2w[..., :3, :3]), c2w[..., :3, 3].copy()


def viser_to_c2w(wxyz: np.ndarray, position: np.ndarray) -> np.ndarray:
    """viser camera ``wxyz (..., 4)``, ``position (..., 3)`` -> (..., 4, 4) OpenCV c2w."""
    R = quat_wxyz_to_rotmat(np.asarray(wxyz, dtype=np.float64))
    p = np.asarray(position, dtype=np.float64)
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3] = R
    out[..., :3, 3] = p
    out[..., 3, 3] = 1.0
    return out


def load_camera_path(path: str | Path) -> CameraPath:
    """Read a nerfstudio ``camera_path.json`` or a ``transforms.json`` as a :class:`CameraPath`.

    transforms.json frames are played in file order at the file's ``fps`` key if present, else
    :data:`DEFAULT_FPS`. Raises :class:`InputError` naming the file for anything malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "camera path file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise InputError(path, "expected a JSON object with 'camera_path' (nerfstudio) or 'frames' (transforms.json)")
    if "camera_path" in data:
        cams = read_camera_path(path)
    elif "frames" in data:
        cams, _ = read_transforms_json(path)
    else:
        raise InputError(path, "neither a nerfstudio camera path ('camera_path' list) nor a transforms.json ('frames' list)")
    # both readers validate the cameras (Cameras.check)
    try:
        fps = float(data.get("fps", DEFAULT_FPS))
    except (TypeError, ValueError):
        fps = float("nan")
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(path, f"fps must be a positive number, got {data.get('fps')!r}")
    return CameraPath(cams, fps)


def read_camera_roles(path: str | Path) -> list[str] | None:
    """The ``"see3d_role"`` of every frame of a transforms.json (``"input"`` / ``"generated"``, as ``see3d app``
    writes them beside its ``.ply``), or None when the file is not a transforms.json or a frame has none."""
    try:
        frames = json.loads(Path(path).read_text()).get("frames")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    if not isinstance(frames, list) or not frames:
        return None
    roles = [f.get("see3d_role") if isinstance(f, dict) else None for f in frames]
    return None if any(not isinstance(r, str) for r in roles) else roles
