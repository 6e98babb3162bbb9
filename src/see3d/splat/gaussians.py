"""`Gaussians`: the 3D Gaussian splat scene type, and its one ``.ply`` reader/writer.

Parameters are stored *unactivated*, as the reference 3DGS implementation and every common splat
viewer expect them in ``.ply`` files:

- ``means (G, 3)`` world positions (OpenCV world, same units as the camera poses),
- ``quats (G, 4)`` rotations as quaternions (w, x, y, z), not necessarily normalised,
- ``log_scales (G, 3)`` natural log of the per-axis standard deviations,
- ``opacity_logits (G,)`` logit of the opacity,
- ``sh (G, K, 3)`` spherical-harmonics colour coefficients, ``K = (degree + 1) ** 2``; ``sh[:, 0]`` is
  the DC term (colour = ``SH_C0 * sh[:, 0] + 0.5`` seen from any direction when degree is 0).

``.ply`` layout (binary little-endian, element ``vertex``, all float32, in this order)::

    x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 f_rest_0 .. f_rest_{3(K-1)-1} opacity scale_0..2 rot_0..3

with ``f_rest`` channel-major (``f_rest[c * (K - 1) + k] = sh[:, 1 + k, c]``), the order the reference
implementation writes and viewers (SuperSplat, antimatter15/splat, viser, gsplat's exporters) read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from see3d.errors import InputError
from see3d.io.atomic import atomic_path

SH_C0 = 0.28209479177387814  # Y_0^0 = 1 / (2 sqrt(pi))


def num_sh_coeffs(degree: int) -> int:
    """K = (degree + 1)^2 coefficients per colour channel."""
    return (int(degree) + 1) ** 2


def sh_degree_from_coeffs(k: int) -> int:
    """Inverse of :func:`num_sh_coeffs`; raises ValueError for counts that are not a square."""
    d = int(round(np.sqrt(k))) - 1
    if d < 0 or (d + 1) ** 2 != k:
        raise ValueError(f"{k} SH coefficients is not (degree+1)^2 for any degree")
    return d


def rgb_to_sh_dc(rgb: torch.Tensor) -> torch.Tensor:
    """Colour in [0, 1] ``(..., 3)`` -> DC coefficient ``(..., 3)`` that renders that colour."""
    return (rgb - 0.5) / SH_C0


def sh_dc_to_rgb(dc: torch.Tensor) -> torch.Tensor:
    """DC coefficient ``(..., 3)`` -> view-independent colour ``(..., 3)`` (not clamped)."""
    return dc * SH_C0 + 0.5


@dataclass
class Gaussians:
    """G Gaussian splats (torch tensors on one device, one dtype; see the module docstring)."""

    means: torch.Tensor  # (G, 3)
    quats: torch.Tensor  # (G, 4) wxyz
    log_scales: torch.Tensor  # (G, 3)
    opacity_logits: torch.Tensor  # (G,)
    sh: torch.Tensor  # (G, K, 3)

    def __post_init__(self) -> None:
        g = self.means.shape[0] if self.means.ndim == 2 else -1
        expect = {"means": (g, 3), "quats": (g, 4), "log_scales": (g, 3), "opacity_logits": (g,)}
        for name, shape in expect.items():
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"Gaussians.{name} must be a torch.Tensor, got {type(t).__name__}")
            if tuple(t.shape) != shape:
                raise ValueError(f"Gaussians.{name}: expected shape {shape}, got {tuple(t.shape)}")
        if not isinstance(self.sh, torch.Tensor) or self.sh.ndim != 3 or self.sh.shape[0] != g or self.sh.shape[2] != 3:
            raise ValueError(f"Gaussians.sh: expected (G={g}, K, 3), got {tuple(getattr(self.sh, 'shape', ()))}")
        sh_degree_from_coeffs(self.sh.shape[1])

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        """Spherical-harmonics degree stored (0..3)."""
        return sh_degree_from_coeffs(self.sh.shape[1])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def scales(self) -> torch.Tensor:
        """(G, 3) standard deviations (``exp(log_scales)``)."""
        return self.log_scales.exp()

    @property
    def opacities(self) -> torch.Tensor:
        """(G,) opacities in (0, 1) (``sigmoid(opacity_logits)``)."""
        return torch.sigmoid(self.opacity_logits)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Field name -> tensor, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def map(self, fn) -> Gaussians:
        """New Gaussians with ``fn`` applied to every tensor (e.g. ``lambda t: t.detach()``)."""
        return Gaussians(**{k: fn(v) for k, v in self.tensors().items()})

    def detach(self) -> Gaussians:
        return self.map(lambda t: t.detach())

    def clone(self) -> Gaussians:
        return self.map(lambda t: t.detach().clone())

    def to(self, device=None, dtype=None) -> Gaussians:
        return self.map(lambda t: t.to(device=device, dtype=dtype))

    def __getitem__(self, idx) -> Gaussians:
        """Subset by boolean mask, index tensor or slice."""
        return self.map(lambda t: t[idx])

    @staticmethod
    def cat(parts: list[Gaussians]) -> Gaussians:
        """Concatenate splat sets of equal SH degree."""
        if not parts:
            raise ValueError("Gaussians.cat: empty list")
        return Gaussians(**{k: torch.cat([p.tensors()[k] for p in parts]) for k in parts[0].tensors()})

    def with_sh_degree(self, degree: int) -> Gaussians:
        """Copy with ``degree`` SH bands: higher bands are cut off or zero-padded."""
        k = num_sh_coeffs(degree)
        sh = self.sh[:, :k]
        if sh.shape[1] < k:
            sh = torch.cat([sh, sh.new_zeros(len(self), k - sh.shape[1], 3)], 1)
        return Gaussians(self.means, self.quats, self.log_scales, self.opacity_logits, sh)

    @classmethod
    def from_points(
        cls,
        points: torch.Tensor | np.ndarray,
        colors: torch.Tensor | np.ndarray | None = None,
        scales: torch.Tensor | np.ndarray | float | None = None,
        opacity: float = 0.1,
        sh_degree: int = 3,
    ) -> Gaussians:
        """Isotropic splats at ``points (P, 3)`` with colours ``(P, 3)`` in [0, 1] (grey when None).

        ``scales`` is the standard deviation per point ``(P,)`` or one value; by default the mean
        distance to the 3 nearest neighbours (as 3DGS initialises from SfM points).
        """
        pts = torch.as_tensor(np.asarray(points, dtype=np.float32))
        if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
            raise ValueError(f"Gaussians.from_points: points must be (P>0, 3), got {tuple(pts.shape)}")
        n = len(pts)
        col = torch.full((n, 3), 0.5) if colors is None else torch.as_tensor(np.asarray(colors, dtype=np.float32)).reshape(n, 3)
        if scales is None:
            s = torch.as_tensor(knn_mean_distance(pts.numpy(), k=3), dtype=torch.float32)
        else:
            s = torch.as_tensor(np.broadcast_to(np.asarray(scales, dtype=np.float32), (n,)).copy())
        s = s.clamp_min(1e-7)
        sh = torch.zeros(n, num_sh_coeffs(sh_degree), 3)
        sh[:, 0] = rgb_to_sh_dc(col.clamp(0, 1))
        quats = torch.zeros(n, 4)
        quats[:, 0] = 1.0
        logit = float(np.log(opacity / (1 - opacity)))
        return cls(pts.clone(), quats, s.log()[:, None].repeat(1, 3), torch.full((n,), logit), sh)


def knn_mean_distance(points: np.ndarray, k: int = 3) -> np.ndarray:
    """(P,) mean distance from each point to its ``k`` nearest other points (scipy KD-tree)."""
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        return np.full(len(pts), 0.01)
    kk = min(k, len(pts) - 1)
    d, _ = cKDTree(pts).query(pts, k=kk + 1)
    d = np.asarray(d).reshape(len(pts), -1)[:, 1:]
    out = d.mean(1)
    pos = out[out > 0]
    return np.where(out > 0, out, pos.min() if len(pos) else 0.01)


# ---------------------------------------------------------------------- .ply
def _ply_property_names(num_rest: int) -> list[str]:
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(num_rest)]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    return names


def write_ply(path: str | Path, gaussians: Gaussians) -> Path:
    """Write ``gaussians`` as a standard 3DGS ``.ply`` (binary, float32, atomic). Returns the path."""
    from plyfile import PlyData, PlyElement

    path = Path(path)
    g = gaussians.detach().to("cpu", torch.float32)
    n, k = len(g), g.sh.shape[1]
    rest = g.sh[:, 1:].transpose(1, 2).reshape(n, 3 * (k - 1))  # channel-major: c * (K-1) + k
    cols = [g.means, torch.zeros(n, 3), g.sh[:, 0], rest, g.opacity_logits[:, None], g.log_scales, g.quats]
    data = torch.cat(cols, 1).numpy()
    names = _ply_property_names(3 * (k - 1))
    rec = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        rec[name] = data[:, i]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(rec, "vertex")], text=False, byte_order="<").write(str(tmp))
    return path


def read_ply(path: str | Path, device=None) -> Gaussians:
    """Read a standard 3DGS ``.ply`` (any SH degree 0..3; normals ignored) as float32 Gaussians."""
    from plyfile import PlyData

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "splat .ply file not found")
    try:
        ply = PlyData.read(str(path))
    except Exception as e:  # plyfile raises several exception types for malformed headers/bodies
        raise InputError(path, f"not a readable .ply file ({e})") from e
    if "vertex" not in [el.name for el in ply.elements]:
        raise InputError(path, "has no 'vertex' element; not a Gaussian splat .ply")
    v = ply["vertex"].data
    names = set(v.dtype.names or ())
    required = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [r for r in required if r not in names]
    if missing:
        raise InputError(path, f"is not a 3D Gaussian splat .ply: missing properties {missing} (a plain point cloud?)")
    rest_names = sorted((p for p in names if p.startswith("f_rest_")), key=lambda p: int(p.split("_")[-1]))
    nrest = len(rest_names)
    if nrest % 3 or nrest // 3 + 1 not in (1, 4, 9, 16):
        raise InputError(path, f"has {nrest} f_rest properties; expected 0, 9, 24 or 45 (SH degree 0..3)")
    if rest_names != [f"f_rest_{i}" for i in range(nrest)]:
        raise InputError(path, "f_rest properties are not numbered 0..N-1")
    k = nrest // 3 + 1
    n = len(v)

    def col(names_):
        return np.stack([np.asarray(v[c], dtype=np.float32) for c in names_], 1) if names_ else np.zeros((n, 0), np.float32)

    means = col(["x", "y", "z"])
    dc = col(["f_dc_0", "f_dc_1", "f_dc_2"])
    rest = col(rest_names).reshape(n, 3, k - 1).transpose(0, 2, 1)
    sh = np.concatenate([dc[:, None], rest], 1)
    out = {
        "means": means,
        "quats": col(["rot_0", "rot_1", "rot_2", "rot_3"]),
        "log_scales": col(["scale_0", "scale_1", "scale_2"]),
        "opacity_logits": np.asarray(v["opacity"], dtype=np.float32),
        "sh": sh,
    }
    for name, arr in out.items():
        if not np.isfinite(arr).all():
            raise InputError(path, f"{name} contains NaN or inf values")
    return Gaussians(**{k_: torch.from_numpy(np.ascontiguousarray(a)).to(device) for k_, a in out.items()})
