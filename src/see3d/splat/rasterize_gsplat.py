"""gsplat backend (CUDA only; install the ``[cuda]`` extra). Imported lazily by :func:`see3d.splat.rasterize.render`.

Uses ``gsplat.rasterization`` in "classic" mode with the same conventions as our CPU paths: wxyz
quaternions (gsplat normalises them), scales = exp(log_scales), opacities = sigmoid(logits), SH
coefficients ``(G, K, 3)`` evaluated with +0.5 and clamped at 0, OpenCV world-to-camera view matrices,
pixel centres at +0.5, eps2d 0.3, and "RGB+ED" for the alpha-normalised expected depth.
"""

from __future__ import annotations

import torch

from see3d.errors import See3DError
from see3d.splat.gaussians import Gaussians


def gsplat_available() -> bool:
    """True when gsplat is importable and a CUDA device is present."""
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return False
    return True


def render_gsplat(
    g: Gaussians, K: torch.Tensor, w2c: torch.Tensor, width: int, height: int, sh_degree: int, near_plane: float = 0.01, eps2d: float = 0.3
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
