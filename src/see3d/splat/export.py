"""Exports of a splat scene: ``.ply`` (standard 3DGS layout), flythrough ``.mp4``, and a mesh by TSDF fusion.

Mesh extraction: render depth and colour from the given cameras, fuse them into a truncated signed
distance volume (Curless & Levoy 1996; a few vectorised torch lines, so no Open3D dependency), then
extract the zero level set with scikit-image's marching cubes and write it with trimesh
(``.ply``, ``.glb``, ``.obj`` by extension).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from see3d.errors import See3DError
from see3d.io.atomic import atomic_path
from see3d.io.cameras import Cameras
from see3d.io.video import write_video
from see3d.log import get_logger, progress
from see3d.splat.gaussians import Gaussians, write_ply
from see3d.splat.project import EPS2D
from see3d.splat.rasterize import render

log = get_logger(__name__)

export_ply = write_ply


def scene_cameras_path(ply_path: str | Path) -> Path:
    """Where the cameras of a splat ``.ply`` live: ``<name>.cameras.json`` beside it (``splats.ply`` ->
    ``splats.cameras.json``), a transforms.json (OpenGL c2w, no images) that ``see3d view`` opens at."""
    ply_path = Path(ply_path)
    return ply_path.with_name(ply_path.stem + ".cameras.json")


def write_scene_cameras(ply_path: str | Path, cameras: Cameras, names: list[str] | None = None, roles: list[str] | None = None) -> Path:
    """Write ``cameras`` (e.g. the training cameras, first camera first) beside ``ply_path`` (atomic); returns the file.

    ``names`` and ``roles`` (e.g. "input" / "generated") go into each frame as ``name`` / ``see3d_role``.
    """
    from see3d.io.transforms_json import write_transforms_json

    path = scene_cameras_path(ply_path)
    frames = [{} for _ in range(len(cameras))]
    for key, values in (("name", names), ("see3d_role", roles)):
        if values is not None:
            for f, v in zip(frames, values, strict=True):
                f[key] = v
    write_transforms_json(path, cameras, frames)
    return path


def render_views(gaussians: Gaussians, cameras: Cameras, background=(0.0, 0.0, 0.0), backend: str = "auto", desc: str = "render", eps2d: float = EPS2D):
    """Yield ``(rgb (H, W, 3), depth (H, W), alpha (H, W))`` numpy float32 for every camera (``eps2d``: the
    screen-space dilation the splats were fitted with, pixels^2)."""
    with torch.no_grad():
        for i in progress(range(len(cameras)), desc=desc, unit="view"):
            out = render(gaussians, cameras.K[i], cameras.width, cameras.height, c2w=cameras.c2w[i], background=background, backend=backend, eps2d=eps2d)
            yield out["rgb"].clamp(0, 1).cpu().numpy(), out["depth"].cpu().numpy(), out["alpha"].cpu().numpy()


def flythrough_path(cameras: Cameras, n_frames: int = 120) -> Cameras:
    """A smooth path through ``cameras`` (in their order; rotations slerped, centres interpolated)."""
    from see3d.geometry.paths import interpolate_cameras

    if len(cameras) == 1:
        return cameras[[0] * n_frames]
    return interpolate_cameras(cameras, n_frames)


def write_flythrough(
    path: str | Path, gaussians: Gaussians, cameras: Cameras, fps: float = 24.0, background=(0.0, 0.0, 0.0), backend: str = "auto", eps2d: float = EPS2D
) -> Path:
    """Render every camera of ``cameras`` (e.g. :func:`flythrough_path`) into an H.264 ``.mp4`` (atomic)."""
    path = Path(path)
    frames = (rgb for rgb, _, _ in render_views(gaussians, cameras, background, backend, desc="flythrough", eps2d=eps2d))
    write_video(path, frames, fps=fps)
    return path


def tsdf_fuse(
    depths: np.ndarray,
    colors: np.ndarray,
    cameras: Cameras,
    bounds: tuple[np.ndarray, np.ndarray],
    resolution: int = 192,
    trunc_voxels: float = 4.0,
    chunk: int = 1 << 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
    """Fuse depth maps into a TSDF volume.

    Args:
        depths: (N, H, W) z-depth per view (0 or non-finite = no surface seen).
        colors: (N, H, W, 3) in [0, 1].
        cameras: the N cameras (OpenCV c2w).
        bounds: (lo (3,), hi (3,)) world box to reconstruct.
        resolution: voxels along the longest side of the box.
        trunc_voxels: truncation distance in voxels.

    Returns:
        tsdf (X, Y, Z) in [-1, 1] (positive in front of surfaces), weight (X, Y, Z), colour (X, Y, Z, 3),
        voxel size, origin (3,) (the centre of voxel (0, 0, 0)).
    """
    lo, hi = np.asarray(bounds[0], np.float64), np.asarray(bounds[1], np.float64)
    voxel = float((hi - lo).max()) / resolution
    dims = np.maximum(np.ceil((hi - lo) / voxel).astype(int), 2)
    origin = lo + 0.5 * voxel
    trunc = trunc_voxels * voxel
    n_vox = int(np.prod(dims))
    tsdf = torch.ones(n_vox)
    weight = torch.zeros(n_vox)
    color = torch.zeros(n_vox, 3)
    grid = [torch.arange(d, dtype=torch.float64) for d in dims]
    K = torch.as_tensor(cameras.K)
    w2c = torch.as_tensor(cameras.w2c)
    dep = torch.as_tensor(np.nan_to_num(depths, nan=0.0, posinf=0.0), dtype=torch.float64)
    col = torch.as_tensor(colors, dtype=torch.float32)
    H, W = depths.shape[1:]
    for s in progress(range(0, n_vox, chunk), desc="tsdf", unit="chunk"):
        idx = torch.arange(s, min(s + chunk, n_vox))
        ix, iy, iz = idx // (dims[1] * dims[2]), (idx // dims[2]) % dims[1], idx % dims[2]
        pts = torch.stack([grid[0][ix], grid[1][iy], grid[2][iz]], -1) * voxel + torch.as_tensor(origin)
        t_acc, w_acc, c_acc = tsdf[idx] * weight[idx], weight[idx].clone(), color[idx] * weight[idx, None]
        for v in range(len(cameras)):
            pc = pts @ w2c[v, :3, :3].T + w2c[v, :3, 3]
            z = pc[:, 2]
            u = torch.floor(K[v, 0, 0] * pc[:, 0] / z + K[v, 0, 2]).long()
            r = torch.floor(K[v, 1, 1] * pc[:, 1] / z + K[v, 1, 2]).long()
            ok = (z > 0) & (u >= 0) & (u < W) & (r >= 0) & (r < H)
            d = torch.zeros_like(z)
            d[ok] = dep[v, r[ok], u[ok]]
            sdf = d - z
            ok &= (d > 0) & (sdf > -trunc)
            val = torch.clamp(sdf / trunc, max=1.0).float()
            t_acc[ok] += val[ok]
            w_acc[ok] += 1
            c_acc[ok] += col[v, r[ok], u[ok]]
        seen = w_acc > 0
        tsdf[idx[seen]] = t_acc[seen] / w_acc[seen]
        color[idx[seen]] = c_acc[seen] / w_acc[seen, None]
        weight[idx] = w_acc
    shape = tuple(int(x) for x in dims)
    return tsdf.reshape(shape).numpy(), weight.reshape(shape).numpy(), color.reshape(shape + (3,)).numpy(), voxel, origin


def extract_mesh(
    gaussians: Gaussians,
    cameras: Cameras,
    path: str | Path,
    resolution: int = 192,
    alpha_min: float = 0.5,
    backend: str = "auto",
    eps2d: float = EPS2D,
):
    """Mesh of the splat scene by TSDF fusion of its rendered depth from ``cameras``; written to ``path``
    (``.ply``/``.glb``/``.obj``, atomically). Returns the ``trimesh.Trimesh``."""
    import trimesh
    from skimage.measure import marching_cubes

    path = Path(path)
    rgbs, depths = [], []
    for rgb, depth, alpha in render_views(gaussians, cameras, backend=backend, desc="mesh views", eps2d=eps2d):
        depths.append(np.where(alpha >= alpha_min, depth, 0.0))
        rgbs.append(rgb)
    depths_np, rgbs_np = np.stack(depths), np.stack(rgbs)
    # reconstruction box: the 1st..99th percentile of the unprojected depth points, padded by 5 %
    pts = []
    for v in range(len(cameras)):
        r, u = np.nonzero(depths_np[v] > 0)
        if len(r) == 0:
            continue
        z = depths_np[v, r, u]
        K = cameras.K[v]
        pc = np.stack([(u + 0.5 - K[0, 2]) / K[0, 0] * z, (r + 0.5 - K[1, 2]) / K[1, 1] * z, z], 1)
        pts.append(pc @ cameras.c2w[v, :3, :3].T + cameras.c2w[v, :3, 3])
    if not pts:
        raise See3DError("extract_mesh: the splats cover no pixel of the given cameras; nothing to mesh")
    allp = np.concatenate(pts)
    lo, hi = np.percentile(allp, 1, axis=0), np.percentile(allp, 99, axis=0)
    pad = 0.05 * (hi - lo).max()
    tsdf, weight, color, voxel, origin = tsdf_fuse(depths_np, rgbs_np, cameras, (lo - pad, hi + pad), resolution)
    if not ((tsdf < 0) & (weight > 0)).any() or not ((tsdf > 0) & (weight > 0)).any():
        raise See3DError("extract_mesh: the fused volume has no zero crossing; nothing to mesh")
    verts, faces, _, _ = marching_cubes(tsdf, level=0.0, mask=weight > 0)
    # drop faces in cubes that touch never-observed voxels (their default value makes spurious walls)
    seen = weight > 0
    base = np.clip(np.floor(verts).astype(int), 0, np.array(tsdf.shape) - 2)
    ok_v = np.logical_and.reduce([seen[base[:, 0] + i, base[:, 1] + j, base[:, 2] + k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    faces = faces[ok_v[faces].all(1)]
    if len(faces) == 0:
        raise See3DError("extract_mesh: no surface inside the observed volume; nothing to mesh")
    vidx = np.clip(np.round(verts).astype(int), 0, np.array(tsdf.shape) - 1)
    vcol = np.clip(color[vidx[:, 0], vidx[:, 1], vidx[:, 2]] * 255, 0, 255).astype(np.uint8)
    # skimage's default winding puts the normals towards increasing values: free space, i.e. the cameras
    mesh = trimesh.Trimesh(verts * voxel + origin, faces, vertex_colors=vcol, process=False)
    mesh.remove_unreferenced_vertices()
    with atomic_path(path) as tmp:
        mesh.export(str(tmp), file_type=path.suffix.lstrip(".").lower())
    log.info("mesh: %d vertices, %d faces -> %s", len(mesh.vertices), len(mesh.faces), path)
    return mesh
