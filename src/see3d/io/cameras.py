"""`Cameras`: the one camera type shared by every station of the system.

Convention: intrinsics ``K (N, 3, 3)`` in pixels, and ``c2w (N, 4, 4)`` camera-to-world in the
**OpenCV convention** (x right, y down, z forward; a point ``X_cam`` maps to the world as
``c2w @ [X_cam, 1]``). Arrays are float64 numpy; use :meth:`Cameras.torch` for tensors.
Conversions to other conventions live in :mod:`see3d.io.conventions` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from see3d.errors import InputError

MIN_FOV_DEG = 2.0  # narrower than a 1000 mm lens on full frame
MAX_FOV_DEG = 170.0  # wider than a pinhole model holds
MAX_FOCAL_ASPECT = 3.0  # fx / fy of square-ish pixels


@dataclass
class Cameras:
    """N pinhole cameras sharing one image size.

    Attributes:
        K: (N, 3, 3) intrinsics in pixels. Pixel coordinates follow COLMAP / nerfstudio: the image's
           top-left *corner* is (0, 0), so the centre of pixel (row i, column j) is (j + 0.5, i + 0.5).
        c2w: (N, 4, 4) camera-to-world, OpenCV axes.
        width, height: image size in pixels.
    """

    K: np.ndarray
    c2w: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64)
        self.c2w = np.asarray(self.c2w, dtype=np.float64)
        if self.K.ndim == 2:
            self.K = self.K[None]
        if self.c2w.ndim == 2:
            self.c2w = self.c2w[None]
        if self.K.shape[1:] != (3, 3) or self.c2w.shape[1:] != (4, 4):
            raise ValueError(f"Cameras: expected K (N,3,3) and c2w (N,4,4), got {self.K.shape} and {self.c2w.shape}")
        if len(self.K) == 1 and len(self.c2w) > 1:
            self.K = np.repeat(self.K, len(self.c2w), axis=0)
        if len(self.K) != len(self.c2w):
            raise ValueError(f"Cameras: {len(self.K)} intrinsics but {len(self.c2w)} poses")
        self.width, self.height = int(self.width), int(self.height)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Cameras: image size must be positive, got {self.width}x{self.height}")
        if not (np.isfinite(self.K).all() and np.isfinite(self.c2w).all()):
            raise ValueError("Cameras: intrinsics or poses contain NaN or inf")

    def check(self, source: str | Path | None = None, tol: float = 1e-3) -> Cameras:
        """Validate cameras that enter the system (from a file or the Python API); returns ``self``.

        Each camera must have finite values, a rigid ``c2w`` (last row ``0 0 0 1``; a proper rotation: orthonormal
        within ``tol``, determinant +1, so not singular, scaled, sheared or mirrored), positive focal lengths, an
        intrinsics last row ``0 0 1``, its principal point inside the image (``0 <= cx <= width``,
        ``0 <= cy <= height``), a field of view (long side) within ``[MIN_FOV_DEG, MAX_FOV_DEG]`` and fx / fy
        within ``1 : MAX_FOCAL_ASPECT`` (intrinsics written for another image size or crop fail these).

        Raises:
            InputError: naming ``source`` and the first bad camera (index and what is wrong).
        """
        K, c2w, W, H = self.K, self.c2w, self.width, self.height
        for i in range(len(self)):
            what = f"camera {i}"
            if not (np.isfinite(K[i]).all() and np.isfinite(c2w[i]).all()):
                raise InputError(source, f"{what}: intrinsics or pose contain NaN or inf")
            if np.abs(c2w[i, 3] - np.array([0.0, 0.0, 0.0, 1.0])).max() > 1e-6:
                raise InputError(source, f"{what}: camera-to-world last row is {c2w[i, 3].tolist()}, not [0, 0, 0, 1]")
            R = c2w[i, :3, :3]
            if np.abs(R @ R.T - np.eye(3)).max() > tol or np.linalg.det(R) <= 0:
                raise InputError(source, f"{what}: camera-to-world rotation is not a proper rotation "
                                         f"(singular, scaled, sheared or mirrored; det {np.linalg.det(R):.3g})")  # fmt: skip
            fx, fy, cx, cy = K[i, 0, 0], K[i, 1, 1], K[i, 0, 2], K[i, 1, 2]
            if not (fx > 0 and fy > 0):
                raise InputError(source, f"{what}: focal length must be positive (fx {fx:g}, fy {fy:g} pixels)")
            if np.abs(K[i, 2] - np.array([0.0, 0.0, 1.0])).max() > 1e-9 or K[i, 1, 0] != 0:
                raise InputError(source, f"{what}: intrinsics are not a pinhole matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]]")
            if not (0 <= cx <= W and 0 <= cy <= H):
                raise InputError(source, f"{what}: principal point ({cx:g}, {cy:g}) lies outside the {W}x{H} image "
                                         "(intrinsics of another image size or crop?)")  # fmt: skip
            fov = np.rad2deg(2 * np.arctan(0.5 * max(W, H) / max(fx, fy)))
            if not MIN_FOV_DEG <= fov <= MAX_FOV_DEG:
                raise InputError(source, f"{what}: focal length {max(fx, fy):.1f} px gives an implausible {fov:.1f} degree field of view "
                                         f"for a {W}x{H} image")  # fmt: skip
            if max(fx, fy) / min(fx, fy) > MAX_FOCAL_ASPECT:
                raise InputError(source, f"{what}: fx {fx:.1f} and fy {fy:.1f} differ by more than {MAX_FOCAL_ASPECT:g}x")
        return self

    # ------------------------------------------------------------------ construction
    @staticmethod
    def intrinsics_from_fov(fov_x_deg: float, width: int, height: int) -> np.ndarray:
        """(3, 3) intrinsics for a horizontal field of view in degrees, square pixels, centred."""
        fx = 0.5 * width / np.tan(0.5 * np.deg2rad(fov_x_deg))
        return np.array([[fx, 0, width / 2.0], [0, fx, height / 2.0], [0, 0, 1]], dtype=np.float64)

    @classmethod
    def from_fov(cls, c2w: np.ndarray, fov_x_deg: float, width: int, height: int) -> Cameras:
        """Cameras with one shared horizontal FOV (degrees) for every pose in ``c2w (N,4,4)``."""
        c2w = np.asarray(c2w, dtype=np.float64).reshape(-1, 4, 4)
        K = cls.intrinsics_from_fov(fov_x_deg, width, height)
        return cls(np.repeat(K[None], len(c2w), axis=0), c2w, width, height)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.c2w)

    def __getitem__(self, idx) -> Cameras:
        idx = np.arange(len(self))[idx]
        idx = np.atleast_1d(idx)
        return Cameras(self.K[idx], self.c2w[idx], self.width, self.height)

    @staticmethod
    def cat(cams: list[Cameras]) -> Cameras:
        """Concatenate cameras of equal image size."""
        if not cams:
            raise ValueError("Cameras.cat: empty list")
        w, h = cams[0].width, cams[0].height
        if any((c.width, c.height) != (w, h) for c in cams):
            raise ValueError("Cameras.cat: image sizes differ")
        return Cameras(np.concatenate([c.K for c in cams]), np.concatenate([c.c2w for c in cams]), w, h)

    @property
    def w2c(self) -> np.ndarray:
        """(N, 4, 4) world-to-camera (inverse of ``c2w``, computed in closed form for rigid poses)."""
        R = self.c2w[:, :3, :3]
        t = self.c2w[:, :3, 3]
        out = np.zeros_like(self.c2w)
        Rt = np.transpose(R, (0, 2, 1))
        out[:, :3, :3] = Rt
        out[:, :3, 3] = -np.einsum("nij,nj->ni", Rt, t)
        out[:, 3, 3] = 1.0
        return out

    @property
    def centers(self) -> np.ndarray:
        """(N, 3) camera centres in world units."""
        return self.c2w[:, :3, 3].copy()

    @property
    def fov_x_deg(self) -> np.ndarray:
        """(N,) horizontal field of view in degrees."""
        return np.rad2deg(2 * np.arctan(0.5 * self.width / self.K[:, 0, 0]))

    def resized(self, width: int, height: int) -> Cameras:
        """Same cameras for images resized to ``width x height`` (intrinsics scaled per axis)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[:, 0, :] *= sx
        K[:, 1, :] *= sy
        return Cameras(K, self.c2w.copy(), width, height)

    def torch(self, device=None, dtype=None):
        """(K, c2w) as torch tensors, float32 by default."""
        import torch

        dtype = dtype or torch.float32
        return (torch.as_tensor(self.K, dtype=dtype, device=device), torch.as_tensor(self.c2w, dtype=dtype, device=device))

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points ``(P, 3)`` into every camera.

        Returns:
            uv: (N, P, 2) pixel coordinates (top-left corner at (0, 0); pixel centres at +0.5).
            z: (N, P) depth along the optical axis (same units as the poses).
        """
        pw = np.asarray(points_world, dtype=np.float64)
        w2c = self.w2c
        pc = np.einsum("nij,pj->npi", w2c[:, :3, :3], pw) + w2c[:, None, :3, 3]
        z = pc[..., 2]
        uvw = np.einsum("nij,npj->npi", self.K, pc)
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[..., :2] / uvw[..., 2:3]
        return uv, z


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, -1.0, 0.0)) -> np.ndarray:
    """(4, 4) OpenCV camera-to-world looking from ``eye`` at ``target``.

    ``up`` is the world direction that should appear *up* in the image (the camera's -y axis);
    the default suits worlds whose y axis points down, as OpenCV's does.
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    up = np.asarray(up, dtype=np.float64)
    x = np.cross(z, up)  # right = down x forward, with down = -up
    n = np.linalg.norm(x)
    if n < 1e-9:  # looking along up: pick any right vector
        x = np.cross(z, np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 0.0, 1.0]))
        n = np.linalg.norm(x)
    x /= n
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w
