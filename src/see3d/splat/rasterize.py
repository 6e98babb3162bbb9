"""One entry point for rendering splats: :func:`render`, over three backends.

- ``"cpu"``: numba kernels with hand-written backwards: projection + SH colour (:mod:`see3d.splat.project_cpu`)
  and tiled compositing (:mod:`see3d.splat.rasterize_cpu`),
- ``"torch"``: the pure-torch reference (:mod:`see3d.splat.project` + :mod:`see3d.splat.rasterize_ref`; slow, for checking),
- ``"gsplat"``: gsplat's CUDA kernels (:mod:`see3d.splat.rasterize_gsplat`),
- ``"auto"``: gsplat for splats on a CUDA device, cpu for splats on the CPU.

Which device and backend fit each other is decided once, by :func:`resolve_splat_placement`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from see3d.errors import InputError
from see3d.geometry.projection import invert_rigid
from see3d.splat.gaussians import Gaussians
from see3d.splat.project import EPS2D

Backend = Literal["auto", "cpu", "torch", "gsplat"]
BACKENDS = ("auto", "cpu", "torch", "gsplat")


def _as_tensor(x, dtype, device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=device)


def _gsplat_problem(device: torch.device) -> str | None:
    from see3d.splat.rasterize_gsplat import gsplat_problem

    return gsplat_problem(str(device))


def resolve_splat_placement(
    device: str | torch.device = "auto",
    backend: str = "auto",
    cuda_count: int | None = None,
    gsplat_problem: Callable[[torch.device], str | None] = _gsplat_problem,
) -> tuple[torch.device, str]:
    """Where splats live and which rasterizer draws them: ``(torch device, backend)``.

    =================  ==========================================  ============================================
    backend            device "auto"                               explicit device
    =================  ==========================================  ============================================
    ``auto``           CUDA + gsplat when gsplat runs, else CPU    cpu -> ``cpu``; CUDA -> ``gsplat`` (error
                       + ``cpu``                                   when gsplat cannot run there)
    ``gsplat``         the first CUDA device                       must be a CUDA device where gsplat runs
    ``cpu``            CPU                                         must be ``cpu``
    ``torch``          CPU                                         any device
    =================  ==========================================  ============================================

    An explicit choice that does not fit is an :class:`InputError` naming the problem, never a silent switch.
    ``cuda_count`` and ``gsplat_problem(device) -> reason or None`` default to this machine's (tests pass their own).
    """
    from see3d.device import resolve_device

    if backend not in BACKENDS:
        raise InputError(None, f"unknown splat backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    n = torch.cuda.device_count() if cuda_count is None else cuda_count
    if isinstance(device, str) and device == "auto":
        if backend == "gsplat":
            dev = resolve_device("cuda", n)
        elif backend == "auto" and n > 0 and gsplat_problem(torch.device("cuda", 0)) is None:
            return torch.device("cuda", 0), "gsplat"
        else:
            return torch.device("cpu"), "cpu" if backend == "auto" else backend
    else:
        dev = resolve_device(device, n)
    if backend == "torch":
        return dev, "torch"
    if dev.type == "cpu":
        if backend == "gsplat":
            raise InputError(None, "the gsplat rasterizer needs a CUDA device, not cpu (use --backend cpu or auto)")
        return dev, "cpu"
    if backend == "cpu":
        raise InputError(None, f"the cpu rasterizer needs --device cpu, not {dev} (use --backend gsplat or torch on {dev.type})")
    if dev.type != "cuda":
        raise InputError(None, f"no fast splat rasterizer on {dev}: use --device cpu, or --backend torch (slow reference)")
    problem = gsplat_problem(dev)
    if problem is not None:
        raise InputError(None, f"splats on {dev} are drawn by gsplat, which cannot run here: {problem} "
                               "(use --device cpu, or --backend torch for the slow reference)")  # fmt: skip
    return dev, "gsplat"


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend for splats already on ``device`` (:func:`resolve_splat_placement`'s rule)."""
    return resolve_splat_placement(device, backend)[1]


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
    eps2d: float = EPS2D,
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
