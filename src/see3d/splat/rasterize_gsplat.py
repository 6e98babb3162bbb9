"""gsplat backend (CUDA only; install the ``[cuda]`` extra). Imported lazily by :func:`see3d.splat.rasterize.render`.

Uses ``gsplat.rasterization`` in "classic" mode with the same conventions as our CPU paths: wxyz
quaternions (gsplat normalises them), scales = exp(log_scales), opacities = sigmoid(logits), SH
coefficients ``(G, K, 3)`` evaluated with +0.5 and clamped at 0, OpenCV world-to-camera view matrices,
pixel centres at +0.5, eps2d 0.3, and "RGB+ED" for the alpha-normalised expected depth.
"""

from __future__ import annotations

import functools

import torch

from see3d.errors import See3DError
from see3d.splat.gaussians import Gaussians
from see3d.splat.project import EPS2D


def _probe_inputs(device: torch.device) -> dict:
    """Arguments of a one-splat, 8x8 ``gsplat.rasterization`` call on ``device`` (the start-up probe)."""
    f = {"device": device, "dtype": torch.float32}
    return {
        "means": torch.tensor([[0.0, 0.0, 2.0]], **f),
        "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]], **f),
        "scales": torch.full((1, 3), 0.1, **f),
        "opacities": torch.full((1,), 0.5, **f),
        "colors": torch.full((1, 1, 3), 0.5, **f),
        "viewmats": torch.eye(4, **f)[None],
        "Ks": torch.tensor([[[8.0, 0.0, 4.0], [0.0, 8.0, 4.0], [0.0, 0.0, 1.0]]], **f),
        "width": 8,
        "height": 8,
        "sh_degree": 0,
    }


@functools.cache
def gsplat_problem(device: str = "cuda:0") -> str | None:
    """Why gsplat cannot render on ``device`` here, or None when it can.

    Checks that ``device`` is a present CUDA device, that gsplat imports, and that its CUDA kernels build or load
    and run: gsplat compiles them on first use when its wheel has none for this setup, so a missing compiler
    or a CUDA mismatch shows up only then. The probe renders one splat into 8x8 pixels; the answer is cached
    per device.
    """
    dev = torch.device(device)
    if dev.type != "cuda":
        return f"gsplat renders on CUDA devices only, not {dev}"
    if not torch.cuda.is_available():
        return "this machine has no CUDA device"
    try:
        import gsplat
    except Exception as e:  # ImportError, or an import-time failure of its extension
        return f"gsplat is not importable ({type(e).__name__}: {e}); install it with pip install 'see3d[cuda]'"
    try:
        colors, _, _ = gsplat.rasterization(**_probe_inputs(dev))
        if colors.shape[-3:-1] != (8, 8):
            return f"gsplat's probe render returned shape {tuple(colors.shape)}"
    except Exception as e:  # compile error (no nvcc/ninja), CUDA arch or ABI mismatch, ...
        return f"gsplat's CUDA kernels could not be built or loaded ({type(e).__name__}: {e})"
    return None


def gsplat_available(device: str = "cuda:0") -> bool:
    """True when gsplat can render on ``device`` (see :func:`gsplat_problem`)."""
    return gsplat_problem(str(torch.device(device))) is None


def render_gsplat(
    g: Gaussians, K: torch.Tensor, w2c: torch.Tensor, width: int, height: int, sh_degree: int, near_plane: float = 0.01, eps2d: float = EPS2D
) -> dict[str, torch.Tensor]:
    """Render one view with gsplat. Returns ``rgb (H, W, 3)`` (no background), ``depth (H, W)``
    (alpha-normalised), ``alpha (H, W)``, ``means2d (1, G, 2)`` (gsplat's own tensor: the gradient holder for densification),
    ``ids (G,)`` and ``visible (G,)``."""
    try:
        from gsplat import rasterization
    except ImportError as e:
        raise See3DError("the gsplat backend needs gsplat (pip install 'see3d[cuda]') and a CUDA GPU") from e
    dev = g.means.device
    if dev.type != "cuda":
        raise See3DError(f"the gsplat backend renders CUDA tensors only (these are on {dev}); use backend='cpu' or 'auto'")
    colors, out_alpha, meta = rasterization(
        means=g.means,
        quats=g.quats,
        scales=g.log_scales.exp(),
        opacities=torch.sigmoid(g.opacity_logits),
        colors=g.sh,
        viewmats=w2c.to(dev, g.means.dtype)[None],
        Ks=K.to(dev, g.means.dtype)[None],
        width=int(width),
        height=int(height),
        near_plane=near_plane,
        eps2d=eps2d,
        sh_degree=int(sh_degree),
        packed=False,
        render_mode="RGB+ED",
        rasterize_mode="classic",
    )
    radii = meta["radii"][0]
    visible = (radii > 0).all(-1) if radii.ndim == 2 else radii > 0
    return {
        "rgb": colors[0, ..., :3],
        "depth": colors[0, ..., 3],
        "alpha": out_alpha[0, ..., 0],
        "means2d": meta["means2d"],
        "ids": torch.arange(len(g), device=dev),
        "visible": visible,
    }
