"""One entry point for rendering splats: :func:`render`, over three backends.

- ``"cpu"``: numba kernels with hand-written backwards: projection + SH colour (:mod:`see3d.splat.project_cpu`)
  and tiled compositing (:mod:`see3d.splat.rasterize_cpu`),
- ``"torch"``: the pure-torch reference (:mod:`see3d.splat.project` + :mod:`see3d.splat.rasterize_ref`; slow, for checking),
- ``"gsplat"``: gsplat's CUDA kernels (:mod:`see3d.splat.rasterize_gsplat`),
- ``"auto"``: gsplat when the splats are on a CUDA device and gsplat is installed, else cpu.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from see3d.geometry.projection import invert_rigid
from see3d.splat.gaussians import Gaussians

Backend = Literal["auto", "cpu", "torch", "gsplat"]
BACKENDS = ("auto", "cpu", "torch", "gsplat")


def _as_tensor(x, dtype, device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=device)


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend ``"auto"`` stands for on ``device``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown splat backend {backend!r}; choose one of {BACKENDS}")
    if backend != "auto":
        return backend
    if device.type == "cuda":
        from see3d.splat.rasterize_gsplat import gsplat_available

        if gsplat_available():
            return "gsplat"
    return "cpu"


def render(
    gaussians: Gaussians,
    K,
    width: int,
    height: int,
    *,
    c2w=None,
    w2c=None,
    background=None,
    sh_degree: int | None = None,
    backend: Backend = "auto",
    near_plane: float = 0.01,
    eps2d: float = 0.3,
) -> dict[str, torch.Tensor]:
    """Render ``gaussians`` from one pinhole camera.

    Args:
        K: (3, 3) intrinsics in pixels (pixel centres at +0.5).
        width, height: image size in pixels.
        c2w / w2c: (4, 4) OpenCV camera-to-world or world-to-camera (give exactly one).
        background: (3,) colour in [0, 1] behind the splats (default black).
        sh_degree: SH bands to use (default: all stored).
        backend: see the module docstring.

    Returns:
        dict with ``rgb (H, W, 3)`` (over the background), ``depth (H, W)`` (alpha-normalised expected
        camera-space z; 0 where nothing was drawn), ``alpha (H, W)``, and for densification
        ``means2d`` (screen-space centres whose ``.grad`` is kept), ``ids`` (which splats those
        rows are) and ``visible`` (which of them touched a pixel).
    """
    if (c2w is None) == (w2c is None):
        raise ValueError("render: give exactly one of c2w= or w2c=")
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise ValueError(f"render: image size must be positive, got {width}x{height}")
    dtype, device = gaussians.means.dtype, gaussians.device
    K = _as_tensor(K, dtype, device)
    w2c = _as_tensor(w2c, dtype, device) if w2c is not None else invert_rigid(_as_tensor(c2w, dtype, device))
    if K.shape != (3, 3) or w2c.shape != (4, 4):
        raise ValueError(f"render: expected K (3,3) and a (4,4) pose, got {tuple(K.shape)} and {tuple(w2c.shape)}")
    bg = torch.zeros(3, dtype=dtype, device=device) if background is None else _as_tensor(background, dtype, device).reshape(3)
    degree = gaussians.sh_degree if sh_degree is None else min(int(sh_degree), gaussians.sh_degree)
    which = resolve_backend(backend, device)

    if which == "gsplat":
        from see3d.splat.rasterize_gsplat import render_gsplat

        out = render_gsplat(gaussians, K, w2c, width, height, degree, near_plane, eps2d)
        rgb, depth, alpha = out["rgb"], out["depth"], out["alpha"]
        extra = {k: out[k] for k in ("means2d", "ids", "visible")}
    elif which == "cpu":
        from see3d.splat.project_cpu import project_cpu
        from see3d.splat.rasterize_cpu import composite_cpu

        if device.type != "cpu":
            raise ValueError("render: the cpu backend needs CPU tensors (use backend='gsplat' or 'auto' on CUDA)")
        p = project_cpu(gaussians, K, w2c, width, height, degree, near_plane, eps2d)
        rgb, dsum, alpha = composite_cpu(p, width, height)
    else:
        from see3d.splat.project import project
        from see3d.splat.rasterize_ref import composite_ref

        p = project(gaussians, K, w2c, width, height, degree, near_plane, eps2d)
        rgb, dsum, alpha = composite_ref(p, width, height)
    if which != "gsplat":
        depth = torch.where(alpha > 0, dsum / alpha.clamp_min(1e-10), torch.zeros_like(dsum))
        extra = {"means2d": p.means2d, "ids": p.ids, "visible": p.visible}
    if extra["means2d"].requires_grad:
        extra["means2d"].retain_grad()
    rgb = rgb + (1.0 - alpha)[..., None] * bg
    return {"rgb": rgb, "depth": depth, "alpha": alpha, **extra}
