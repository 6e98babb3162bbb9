"""The one place where camera conventions are converted.

Our convention is OpenCV camera-to-world (x right, y down, z forward). Others:
- OpenGL / nerfstudio / instant-ngp / Blender: x right, y up, z backward (camera looks along -z).
- COLMAP: world-to-camera rotation as a quaternion (qw, qx, qy, qz) plus translation, OpenCV axes.
- LLFF ``poses_bounds.npy``: camera-to-world columns in the order (down, right, back) plus
  (height, width, focal) as a 3x5 matrix.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def opencv_to_opengl(c2w: np.ndarray) -> np.ndarray:
    """(..., 4, 4) OpenCV c2w -> OpenGL c2w (flip the camera's y and z axes)."""
    return np.asarray(c2w, dtype=np.float64) @ _FLIP_YZ


def opengl_to_opencv(c2w: np.ndarray) -> np.ndarray:
    """(..., 4, 4) OpenGL c2w -> OpenCV c2w (the flip is its own inverse)."""
    return np.asarray(c2w, dtype=np.float64) @ _FLIP_YZ


def quat_wxyz_to_rotmat(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z), normalised here -> (..., 3, 3) rotation matrices (scipy ``Rotation``)."""
    q = np.asarray(q, dtype=np.float64)
    return Rotation.from_quat(q.reshape(-1, 4), scalar_first=True).as_matrix().reshape(q.shape[:-1] + (3, 3))


def rotmat_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z) with w >= 0 (scipy ``Rotation``)."""
    R = np.asarray(R, dtype=np.float64)
    q = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat(canonical=True, scalar_first=True)
    return q.reshape(R.shape[:-2] + (4,))


# ---------------------------------------------------------------------------------------------- LLFF
def llff_to_opencv(poses: np.ndarray) -> np.ndarray:
    """(..., 3, 4|5) LLFF camera-to-world (columns down, right, back, centre[, hwf]) -> (..., 4, 4) OpenCV c2w.

    LLFF's rotation columns are the camera's (down, right, back) axes in world coordinates; OpenCV's are
    (right, down, forward). So x = col 1, y = col 0, z = -col 2. The world frame itself is unchanged.
    """
    p = np.asarray(poses, dtype=np.float64)
    out = np.zeros(p.shape[:-2] + (4, 4))
    out[..., :3, 0] = p[..., :3, 1]
    out[..., :3, 1] = p[..., :3, 0]
    out[..., :3, 2] = -p[..., :3, 2]
    out[..., :3, 3] = p[..., :3, 3]
    out[..., 3, 3] = 1.0
    return out


def opencv_to_llff(c2w: np.ndarray) -> np.ndarray:
    """(..., 4, 4) OpenCV c2w -> (..., 3, 4) LLFF pose (columns down, right, back, centre); inverse of :func:`llff_to_opencv`."""
    c = np.asarray(c2w, dtype=np.float64)
    out = np.empty(c.shape[:-2] + (3, 4))
    out[..., :, 0] = c[..., :3, 1]
    out[..., :, 1] = c[..., :3, 0]
    out[..., :, 2] = -c[..., :3, 2]
    out[..., :, 3] = c[..., :3, 3]
    return out


# ---------------------------------------------------------------------------------------------- COLMAP
def colmap_to_c2w(qvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """COLMAP world-to-camera ``qvec (..., 4)`` (w, x, y, z) and ``tvec (..., 3)`` -> (..., 4, 4) OpenCV c2w.

    COLMAP's camera axes are OpenCV's, so only the inversion is needed: ``X_cam = R @ X_world + t``.
    """
    R = quat_wxyz_to_rotmat(qvec)
    t = np.asarray(tvec, dtype=np.float64)
    Rt = np.swapaxes(R, -1, -2)
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, t)
    out[..., 3, 3] = 1.0
    return out


def c2w_to_colmap(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 4, 4) OpenCV c2w -> COLMAP world-to-camera ``(qvec (..., 4) wxyz with w >= 0, tvec (..., 3))``."""
    c = np.asarray(c2w, dtype=np.float64)
    R = np.swapaxes(c[..., :3, :3], -1, -2)
    t = -np.einsum("...ij,...j->...i", R, c[..., :3, 3])
    return rotmat_to_quat_wxyz(R), t
