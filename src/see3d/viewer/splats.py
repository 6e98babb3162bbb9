"""`Gaussians` -> the arrays viser's splat renderer takes (``SceneApi.add_gaussian_splats``).

viser renders each splat with one colour (no view-dependent spherical harmonics), so only the DC
term is sent: ``rgb = clip(SH_C0 * sh[:, 0] + 0.5, 0, 1)``, the colour the splat has when seen
head-on and the exact colour for SH degree 0. Covariances are ``R diag(s^2) R^T`` in world units.
viser sends covariances as float16 and colours/opacities as 8-bit, so tiny splats (standard
deviation below ~1e-3 scene units) lose precision in the browser.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from see3d.io.conventions import quat_wxyz_to_rotmat
from see3d.splat.gaussians import Gaussians, sh_dc_to_rgb


@dataclass
class ViserSplats:
    """Splat arrays in viser's layout, float32.

    Attributes:
        centers: (G, 3) world positions.
        covariances: (G, 3, 3) world-space covariances.
        rgbs: (G, 3) colours in [0, 1].
        opacities: (G, 1) opacities in [0, 1].
    """

    centers: np.ndarray
    covariances: np.ndarray
    rgbs: np.ndarray
    opacities: np.ndarray


def viser_splats(gaussians: Gaussians) -> ViserSplats:
    """Activate ``gaussians`` into :class:`ViserSplats` (covariances, DC colours, opacities)."""
    g = gaussians.detach().to("cpu", torch.float64)
    q = g.quats.numpy()
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    # A zero quaternion has no rotation; treat it as the identity rather than dividing by zero.
    q = np.where(norm > 0, q, np.array([1.0, 0.0, 0.0, 0.0]))
    R = quat_wxyz_to_rotmat(q)
    var = np.exp(2.0 * g.log_scales.numpy())
    cov = np.einsum("gij,gj,gkj->gik", R, var, R)
    rgb = sh_dc_to_rgb(g.sh[:, 0]).clamp(0, 1).numpy()
    opac = g.opacities.numpy()[:, None]
    return ViserSplats(
        centers=np.ascontiguousarray(g.means.numpy(), dtype=np.float32),
        covariances=np.ascontiguousarray(cov, dtype=np.float32),
        rgbs=np.ascontiguousarray(rgb, dtype=np.float32),
        opacities=np.ascontiguousarray(opac, dtype=np.float32),
    )


def scene_bounds(centers: np.ndarray) -> tuple[np.ndarray, float]:
    """Robust ``(centre (3,), radius)`` of splat centres ``(G, 3)``: the median and the 90th-percentile distance."""
    c = np.median(centers, axis=0) if len(centers) else np.zeros(3)
    if len(centers) == 0:
        return c, 1.0
    r = float(np.percentile(np.linalg.norm(centers - c, axis=1), 90))
    return c, r if r > 1e-9 else 1.0


def subset_splats(splats: ViserSplats, max_splats: int | None = None, min_opacity: float = 0.0) -> ViserSplats:
    """Render-quality trade-off: drop splats below ``min_opacity``, then keep the ``max_splats`` that cover
    the most (opacity x projected area ~ opacity * sqrt(det cov)^(2/3)), in their original order."""
    keep = np.flatnonzero(splats.opacities[:, 0] >= min_opacity)
    if max_splats is not None and len(keep) > max_splats:
        det = np.clip(np.linalg.det(splats.covariances[keep].astype(np.float64)), 0, None)
        weight = splats.opacities[keep, 0] * det ** (1.0 / 3.0)
        keep = np.sort(keep[np.argsort(-weight, kind="stable")[: max(int(max_splats), 0)]])
    return ViserSplats(splats.centers[keep], splats.covariances[keep], splats.rgbs[keep], splats.opacities[keep])
