"""A growing coloured point cloud: the scene seen so far during chunked (long-path) generation.

Every generated view is added with its (aligned) depth; only the pixels the cache does not already explain
become new points, so the first view of a region stays authoritative. A new point that an earlier view
*should* have seen in front of what it did see (a sub-pixel silhouette refinement, or a duplicate surface
from depth misalignment) contradicts that view and is dropped. Rendering the cache into a new camera is a
forward warp of *all* views seen so far (see :func:`see3d.geometry.warp.splat_points`), so a path that
returns to an earlier viewpoint renders the same scene it showed there.

Each point stores its world position, colour and two world-space tangents (the step to the next source
pixel along x and y), which set its splat footprint in any camera. Points are torch tensors on ``device``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from see3d.geometry.projection import unproject_depth
from see3d.geometry.warp import WarpResult, grid_tangents, splat_points
from see3d.io.atomic import atomic_path
from see3d.io.cameras import Cameras


class PointCache:
    """Points ``(P, 3)`` world, ``colors (P, C)``, ``tangents (P, 2, 3)`` world, ``view_ids (P,)``.

    Args:
        device: torch device of the stored points.
        depth_tol, max_footprint: rendering parameters (see :func:`splat_points`).
        edge_tol: depth-continuity tolerance for tangents (see :func:`grid_tangents`).
    """

    def __init__(
        self, device: str | torch.device | None = None, depth_tol: float = 0.03, max_footprint: float = 2.0, edge_tol: float = 0.05
    ):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.depth_tol = depth_tol
        self.max_footprint = max_footprint
        self.edge_tol = edge_tol
        self.points = torch.zeros(0, 3, device=self.device)
        self.colors: torch.Tensor | None = None
        self.tangents = torch.zeros(0, 2, 3, device=self.device)
        self.view_ids = torch.zeros(0, dtype=torch.long, device=self.device)
        self.n_views = 0
        self._seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (K, w2c, depth (H, W)) per added view

    def __len__(self) -> int:
        return len(self.points)

    def add_view(
        self,
        image: np.ndarray | torch.Tensor,
        depth: np.ndarray | torch.Tensor,
        camera: Cameras,
        mask: np.ndarray | torch.Tensor | None = None,
        skip_covered: bool = True,
        cover_tol: float = 0.03,
    ) -> int:
        """Add one view's pixels as points.

        Args:
            image: (H, W, C) colours (float); depth: (H, W) z-depth in the cache's units (<= 0 = invalid).
            camera: the view's camera (1 camera, OpenCV c2w, size W x H).
            mask: optional (H, W) bool, True = pixel may be added.
            skip_covered: skip pixels where the cache already renders a surface within ``cover_tol``
                (relative) of this depth, so earlier views stay authoritative and points are not duplicated;
                and drop new points that would appear in front of (by more than ``cover_tol``) what an
                earlier view saw at the pixel they project to in that view.

        Returns:
            number of points added.
        """
        if len(camera) != 1:
            raise ValueError(f"PointCache.add_view: expected one camera, got {len(camera)}")
        img = torch.as_tensor(np.asarray(image) if not torch.is_tensor(image) else image, device=self.device).float()
        if img.dim() == 2:
            img = img[..., None]
        dep = torch.as_tensor(np.asarray(depth) if not torch.is_tensor(depth) else depth, device=self.device).float()
        H, W = dep.shape
        if img.shape[:2] != (H, W) or (camera.width, camera.height) != (W, H):
            raise ValueError(
                f"PointCache.add_view: image {tuple(img.shape)}, depth {tuple(dep.shape)} and camera {camera.width}x{camera.height} disagree"
            )
        if self.colors is not None and img.shape[-1] != self.colors.shape[-1]:
            raise ValueError(f"PointCache.add_view: {img.shape[-1]} channels, cache holds {self.colors.shape[-1]}")
        valid = torch.isfinite(dep) & (dep > 0)
        if mask is not None:
            valid = valid & torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask, device=self.device).bool()
        d = torch.where(valid, dep, torch.ones_like(dep))
        K, c2w = camera.torch(self.device)
        pts = unproject_depth(d[None], K, c2w)
        tan = grid_tangents(pts, d[None], valid[None], K, c2w, self.edge_tol)[0]
        add = valid
        if skip_covered and len(self):
            r = self.render(camera)
            covered = r.mask[0] & ((r.depth[0] - dep).abs() <= cover_tol * dep)
            add = add & ~covered
        sel = add.reshape(-1)
        if skip_covered:
            for Kv, w2cv, depv in self._seen:
                sel = sel & ~self._contradicts(pts.reshape(-1, 3), Kv, w2cv, depv, cover_tol)
        n = int(sel.sum())
        self._seen.append((K[0], torch.linalg.inv(c2w[0]), torch.where(valid, dep, torch.full_like(dep, float("inf")))))
        self.points = torch.cat([self.points, pts.reshape(-1, 3)[sel]])
        new_cols = img.reshape(H * W, -1)[sel]
        self.colors = new_cols if self.colors is None else torch.cat([self.colors, new_cols])
        self.tangents = torch.cat([self.tangents, tan.reshape(-1, 2, 3)[sel]])
        self.view_ids = torch.cat([self.view_ids, torch.full((n,), self.n_views, dtype=torch.long, device=self.device)])
        self.n_views += 1
        return n

    @staticmethod
    def _contradicts(points: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor, depth: torch.Tensor, tol: float) -> torch.Tensor:
        """(P,) bool: the point projects inside an earlier view and lies in front of the depth that view saw
        at that pixel (nearest pixel; ``depth`` is inf where the view saw nothing)."""
        H, W = depth.shape
        pc = points @ w2c[:3, :3].T + w2c[:3, 3]
        z = pc[:, 2]
        front = z > 1e-6
        uv = (pc @ K[:2].T) / torch.where(front, z, torch.ones_like(z))[:, None]
        j = torch.floor(uv[:, 0]).long()
        i = torch.floor(uv[:, 1]).long()
        inside = front & (j >= 0) & (j < W) & (i >= 0) & (i < H)
        seen = depth[i.clamp(0, H - 1), j.clamp(0, W - 1)]
        return inside & (z < seen * (1 - tol))

    def render(self, cameras: Cameras, batch: int = 8) -> WarpResult:
        """Render the cache into ``cameras`` (N cameras), ``batch`` cameras at a time -> (N, H, W, ...) results."""
        if self.colors is None:
            raise ValueError("PointCache.render: the cache is empty (add a view first)")
        outs = []
        for s in range(0, len(cameras), batch):
            K, c2w = cameras[s : s + batch].torch(self.device)
            outs.append(
                splat_points(
                    self.points,
                    self.colors,
                    K,
                    c2w,
                    cameras.height,
                    cameras.width,
                    tangents=self.tangents,
                    depth_tol=self.depth_tol,
                    max_footprint=self.max_footprint,
                )
            )
        return WarpResult(torch.cat([o.image for o in outs]), torch.cat([o.mask for o in outs]), torch.cat([o.depth for o in outs]))

    def save_ply(self, path: str | Path) -> None:
        """Write the points (and RGB colours from the first 3 channels, [0, 1] -> uint8) as a binary PLY (atomically)."""
        from plyfile import PlyData, PlyElement

        pts = self.points.detach().cpu().numpy().astype(np.float32)
        cols = np.zeros((len(pts), 3), np.uint8)
        if self.colors is not None:
            c = self.colors.detach().cpu().numpy()[:, :3]
            cols[:, : c.shape[1]] = np.clip(np.round(c * 255), 0, 255).astype(np.uint8)
        vert = np.empty(len(pts), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
        vert["x"], vert["y"], vert["z"] = pts.T
        vert["red"], vert["green"], vert["blue"] = cols.T
        with atomic_path(path) as tmp:
            PlyData([PlyElement.describe(vert, "vertex")]).write(str(tmp))
