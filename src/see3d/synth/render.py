"""CPU renderer of synthetic scenes: analytic ray casting, vectorised numpy, one camera at a time.

Outputs RGB (float [0, 1]), metric z-depth (metres along each camera's optical axis) and the index of
the shape seen at each pixel. Shading is Lambertian with one directional light plus ambient (no
shadows); emissive shapes (the sky) show their albedo. Shading does not depend on the viewpoint, so a
surface point has the same colour in every view (up to anti-aliasing of texture detail).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from see3d.io.cameras import Cameras
from see3d.io.views import Views
from see3d.synth.scene import Scene


@dataclass
class RenderOutput:
    """rgb (N, H, W, 3) float32 [0, 1]; depth (N, H, W) float32 metres (0 where nothing was hit);
    ids (N, H, W) int16 index into ``scene.shapes`` (-1 where nothing was hit)."""

    rgb: np.ndarray
    depth: np.ndarray
    ids: np.ndarray


def _times(t, n: int) -> np.ndarray:
    if t is None:
        return np.zeros(n)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim == 0:
        return np.full(n, float(t))
    if t.shape != (n,):
        raise ValueError(f"render: t must be a scalar or ({n},) seconds, got shape {t.shape}")
    return t


def camera_rays(K: np.ndarray, c2w: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """World rays through the pixel centres of one camera.

    Returns ``o (3,)`` (the camera centre) and ``d (H, W, 3)`` scaled so that each direction's component
    along the optical axis is 1 (so a hit at ray parameter s has z-depth s). Pixel (row i, col j) has
    its centre at (j + 0.5, i + 0.5).
    """
    u = np.arange(width) + 0.5
    v = np.arange(height) + 0.5
    pix = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((1, 1))), axis=-1)  # (H, W, 3)
    d_cam = pix @ np.linalg.inv(K).T
    d_cam = d_cam / d_cam[..., 2:3]
    return c2w[:3, 3].copy(), d_cam @ c2w[:3, :3].T


def _screen_rect(shape, t: float, K: np.ndarray, w2c: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """Conservative pixel rectangle (r0, r1, c0, c1) that can contain ``shape`` (whole image if unsure)."""
    full = (0, height, 0, width)
    if not shape.is_object:
        return full
    c, _ = shape.pose(t)
    r = shape.bounding_radius()
    corners = c + r * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
    pc = corners @ w2c[:3, :3].T + w2c[:3, 3]
    if (pc[:, 2] <= 1e-3).any():
        return full
    uv = pc @ K.T
    uv = uv[:, :2] / uv[:, 2:3]
    c0 = int(max(0, np.floor(uv[:, 0].min()) - 1))
    c1 = int(min(width, np.ceil(uv[:, 0].max()) + 1))
    r0 = int(max(0, np.floor(uv[:, 1].min()) - 1))
    r1 = int(min(height, np.ceil(uv[:, 1].max()) + 1))
    return r0, max(r0, r1), c0, max(c0, c1)


def _cast(scene: Scene, o: np.ndarray, d: np.ndarray, K: np.ndarray, w2c: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit per pixel: (s (H, W) ray parameter = z-depth, inf where missed; ids (H, W) int16)."""
    h, w = d.shape[:2]
    best = np.full((h, w), np.inf)
    ids = np.full((h, w), -1, dtype=np.int16)
    for k, shape in enumerate(scene.shapes):
        r0, r1, c0, c1 = _screen_rect(shape, t, K, w2c, w, h)
        if r1 <= r0 or c1 <= c0:
            continue
        s = shape.hit(o, d[r0:r1, c0:c1], t)
        sub = best[r0:r1, c0:c1]
        closer = s < sub
        sub[closer] = s[closer]
        ids[r0:r1, c0:c1][closer] = k
    return best, ids


def _shade(scene: Scene, o: np.ndarray, d: np.ndarray, s: np.ndarray, ids: np.ndarray, focal: float, t: float) -> np.ndarray:
    """(H, W, 3) colours of the hits found by :func:`_cast`."""
    h, w = ids.shape
    rgb = np.zeros((h * w, 3))
    d_flat = d.reshape(-1, 3)
    s_flat = s.reshape(-1)
    ids_flat = ids.reshape(-1)
    light = -np.asarray(scene.light_dir, dtype=np.float64)
    for k in np.unique(ids_flat):
        if k < 0:
            continue
        shape = scene.shapes[k]
        idx = np.nonzero(ids_flat == k)[0]
        dd = d_flat[idx]
        ss = s_flat[idx]
        p = o + ss[:, None] * dd
        n_world, p_local, n_local = shape.surface(p, t)
        cos_view = np.abs(np.einsum("ij,ij->i", n_world, dd)) / np.linalg.norm(dd, axis=1)
        footprint = ss / focal / np.maximum(cos_view, 0.3)  # metres covered by one pixel on the surface
        albedo = shape.albedo(p_local, n_local, footprint)
        if shape.emissive:
            rgb[idx] = albedo
        else:
            lambert = np.clip(n_world @ light, 0.0, None)
            rgb[idx] = albedo * (scene.ambient + (1.0 - scene.ambient) * lambert)[:, None]
    return np.clip(rgb, 0.0, 1.0).reshape(h, w, 3)


def render_full(scene: Scene, cameras: Cameras, t: float | np.ndarray | None = None, shade: bool = True) -> RenderOutput:
    """Render every camera. ``t``: time in seconds for animated shapes, a scalar or (N,) per camera
    (None = 0). ``shade=False`` skips colours (rgb is zeros), which is much faster."""
    n, w, h = len(cameras), cameras.width, cameras.height
    times = _times(t, n)
    rgb = np.zeros((n, h, w, 3), dtype=np.float32)
    depth = np.zeros((n, h, w), dtype=np.float32)
    ids = np.zeros((n, h, w), dtype=np.int16)
    w2c = cameras.w2c
    for i in range(n):
        K = cameras.K[i]
        o, d = camera_rays(K, cameras.c2w[i], w, h)
        s, ids[i] = _cast(scene, o, d, K, w2c[i], float(times[i]))
        depth[i] = np.where(np.isfinite(s), s, 0.0)
        if shade:
            rgb[i] = _shade(scene, o, d, s, ids[i], float(np.sqrt(K[0, 0] * K[1, 1])), float(times[i]))
    return RenderOutput(rgb, depth, ids)


def render(scene: Scene, cameras: Cameras, t: float | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Render ``scene`` from ``cameras`` (OpenCV c2w, metres) at time ``t`` seconds (scalar or (N,); None = 0).

    Returns:
        rgb: (N, H, W, 3) float32 in [0, 1].
        depth: (N, H, W) float32 metric z-depth (metres along each optical axis).
    """
    out = render_full(scene, cameras, t)
    return out.rgb, out.depth


def scene_views(scene: Scene, cameras: Cameras, t: float | np.ndarray | None = None) -> Views:
    """Render ``scene`` as :class:`~see3d.io.views.Views` with true metric depth (for generation/eval tests)."""
    rgb, depth = render(scene, cameras, t)
    return Views(rgb, cameras, depth=depth, depth_is_metric=True)
