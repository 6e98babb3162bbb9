"""Forward warping: splat points (from a depth map or a point cloud) into cameras with a soft z-buffer.

Pure torch, batched, CPU or CUDA. :mod:`see3d.geometry.warp_reference` holds an obviously-correct
per-pixel loop implementation of the same rule that the tests compare against.

**Splatting rule** (why there are no cracks). Each point carries two world-space *tangent* vectors: the
3D step to its right and lower neighbour in the source image (one source pixel). Projected into the
destination camera (first-order, through the projection Jacobian) they give the point's pixel footprint
``a, b`` (2-vectors). The point covers the axis-aligned box of half-extent

    h = 0.5 * (|a| + |b|) + 0.5          (per axis, capped at ``max_footprint`` px)

around its projection ``(u, v)``: every destination pixel whose centre lies strictly inside the box gets
a candidate with tent weight ``(1 - |du| / h_u) * (1 - |dv| / h_v)``. For an identity warp ``h = 1``, which
is bilinear splatting onto the 2x2 nearest pixels; stretched surfaces get proportionally larger boxes,
so neighbouring splats always overlap. Tangents are taken only across depth-continuous neighbours, so
depth edges leave holes (disocclusions) rather than smeared "rubber sheets".

**Soft z-buffer.** The *core* of a footprint is the nominal box ``h - 0.5`` (closed). Per destination pixel the
reference depth ``z_ref`` is the nearest core candidate (or the nearest candidate at all when no core
covers the pixel); candidates with ``|z - z_ref| <= depth_tol * z_ref`` are blended by weight. So a
surface's own samples blend smoothly, occluded surfaces are rejected, and the half-pixel margins of a
foreground silhouette do not overwrite background samples that truly cover the pixel.

Conventions: OpenCV c2w, pixel centres at +0.5 (see :mod:`see3d.geometry.projection`), depth = z along
the optical axis. Colours may have any number of channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from see3d.geometry.projection import invert_rigid, transform_points, unproject_depth
from see3d.io.cameras import Cameras


@dataclass
class WarpResult:
    """Output of a warp into B cameras.

    Attributes:
        image: (B, H, W, C) blended colours, 0 where ``mask`` is False.
        mask: (B, H, W) bool, True where at least one point landed (valid pixel).
        depth: (B, H, W) blended z-depth in the destination cameras, 0 where invalid.
    """

    image: torch.Tensor
    mask: torch.Tensor
    depth: torch.Tensor

    def numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(image, mask, depth)`` as numpy arrays (float32, bool, float32)."""
        return (
            self.image.detach().float().cpu().numpy(),
            self.mask.detach().cpu().numpy(),
            self.depth.detach().float().cpu().numpy(),
        )


# ============================================================================================ tangents
def grid_tangents(
    points: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor, edge_tol: float = 0.05
) -> torch.Tensor:
    """World-space steps to the next source pixel along image x and y, for every pixel.

    Central differences where both neighbours are depth-continuous (``|dz| <= edge_tol * min(z)``), one-sided
    where only one is, and the fronto-parallel pixel size ``z / f`` along the camera axes where none is.

    Args:
        points: (B, H, W, 3) world points (from :func:`unproject_depth`).
        depth: (B, H, W) source z-depth; valid: (B, H, W) bool.
        K, c2w: (B, 3, 3), (B, 4, 4) source cameras.

    Returns:
        (B, H, W, 2, 3) tangents ``[d/dx, d/dy]``.
    """
    out = []
    for dim in (2, 1):  # x (columns), then y (rows)
        n = points.shape[dim]
        fwd = torch.zeros_like(points)
        bwd = torch.zeros_like(points)
        ok_f = torch.zeros_like(valid)
        ok_b = torch.zeros_like(valid)
        if n > 1:
            sl_a = [slice(None)] * 3
            sl_b = [slice(None)] * 3
            sl_a[dim], sl_b[dim] = slice(0, n - 1), slice(1, n)
            sa, sb = tuple(sl_a), tuple(sl_b)
            diff = points[sb] - points[sa]
            za, zb = depth[sa], depth[sb]
            cont = valid[sa] & valid[sb] & ((zb - za).abs() <= edge_tol * torch.minimum(za, zb))
            fwd[sa] = diff
            ok_f[sa] = cont
            bwd[sb] = diff
            ok_b[sb] = cont
        both = ok_f & ok_b
        t = torch.where(both[..., None], 0.5 * (fwd + bwd), torch.where(ok_f[..., None], fwd, bwd))
        col = 0 if dim == 2 else 1
        f = K[:, col, col].view(-1, 1, 1)
        axis = c2w[:, :3, col].view(-1, 1, 1, 3)
        fallback = (depth / f)[..., None] * axis
        t = torch.where((ok_f | ok_b)[..., None], t, fallback)
        out.append(t)
    return torch.stack(out, dim=-2)


# ============================================================================================ splatting
def splat_points(
    points: torch.Tensor,
    colors: torch.Tensor,
    K: torch.Tensor,
    c2w: torch.Tensor,
    height: int,
    width: int,
    tangents: torch.Tensor | None = None,
    radius: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    depth_tol: float = 0.03,
    max_footprint: float = 2.0,
    near: float = 1e-6,
) -> WarpResult:
    """Render points into B cameras with footprint splats and a soft z-buffer (rule in the module docstring).

    Args:
        points: (B, P, 3) or (P, 3) world points (a (P, 3) cloud is shared by all cameras).
        colors: (B, P, C) or (P, C).
        K, c2w: (B, 3, 3), (B, 4, 4) destination cameras (OpenCV c2w).
        height, width: destination image size.
        tangents: optional (B, P, 2, 3) / (P, 2, 3) world-space one-pixel steps (see :func:`grid_tangents`).
        radius: optional (B, P) / (P,) world-space point spacing used when ``tangents`` is None (a
            fronto-parallel square of side ``radius``); with neither, every point splats to ``h = 1`` (2x2).
        valid: optional (B, P) / (P,) bool, False points are ignored.
        depth_tol: relative depth band of the soft z-buffer.
        max_footprint: cap on the footprint half-extent in pixels (stretching beyond it leaves holes).
        near: points with destination depth <= ``near`` are dropped.
    """
    B = K.shape[0]
    if points.dim() == 2:
        points = points.unsqueeze(0).expand(B, -1, -1)
    if colors.dim() == 2:
        colors = colors.unsqueeze(0).expand(B, -1, -1)
    P = points.shape[1]
    w2c = invert_rigid(c2w)
    pc = transform_points(points, w2c)
    z = pc[..., 2]
    ok = z > near
    if valid is not None:
        ok = ok & (valid if valid.dim() == 2 else valid.unsqueeze(0).expand(B, -1))
    zs = torch.where(ok, z, torch.ones_like(z))
    uv = (pc @ K[:, :2, :].transpose(-1, -2)) / zs[..., None]
    if tangents is not None:
        if tangents.dim() == 3:
            tangents = tangents.unsqueeze(0).expand(B, -1, -1, -1)
        tc = tangents @ w2c[:, None, :3, :3].transpose(-1, -2)  # (B, P, 2, 3) camera-space steps
        duv = (tc @ K[:, None, :2, :].transpose(-1, -2) - uv[:, :, None, :] * tc[..., 2:3]) / zs[:, :, None, None]
        half = 0.5 * duv.abs().sum(dim=2) + 0.5  # (B, P, 2): sum over the two tangents
    elif radius is not None:
        r = radius if radius.dim() == 2 else radius.unsqueeze(0).expand(B, -1)
        fx, fy = K[:, 0, 0].view(B, 1), K[:, 1, 1].view(B, 1)
        half = torch.stack([0.5 * fx * r / zs, 0.5 * fy * r / zs], dim=-1) + 0.5
    else:
        half = torch.ones(B, P, 2, dtype=points.dtype, device=points.device)
    half = half.clamp(max=max_footprint)
    ok = ok & torch.isfinite(uv).all(-1) & torch.isfinite(half).all(-1)
    return _splat(uv, z, colors, half, ok, height, width, depth_tol)


def _splat(
    uv: torch.Tensor, z: torch.Tensor, colors: torch.Tensor, half: torch.Tensor, ok: torch.Tensor, H: int, W: int, depth_tol: float
) -> WarpResult:
    """Core of :func:`splat_points`: projected ``uv (B,P,2)``, depth ``z (B,P)``, ``half (B,P,2)`` px, ``ok (B,P)``."""
    B, P = z.shape
    C = colors.shape[-1]
    dev, dt = z.device, z.dtype
    n_pix = B * H * W
    dummy = n_pix  # scatter target for rejected candidates
    # keep only points whose box can reach the image (one compaction; the loops below touch only these)
    u, v = uv[..., 0], uv[..., 1]
    ok = ok & (u + half[..., 0] > 0) & (u - half[..., 0] < W) & (v + half[..., 1] > 0) & (v - half[..., 1] < H)
    sel = ok.reshape(-1).nonzero().squeeze(1)
    b_idx = torch.div(sel, P, rounding_mode="floor")
    u, v = u.reshape(-1)[sel], v.reshape(-1)[sel]
    hu, hv = half[..., 0].reshape(-1)[sel], half[..., 1].reshape(-1)[sel]
    z = z.reshape(-1)[sel]
    col = colors.reshape(-1, C)[sel]
    base = b_idx * (H * W)
    # first pixel whose centre is strictly right of / below the box's left / top edge (an open interval of
    # length 2h holds at most ceil(2h) pixel centres, so points need offsets 0 .. ceil(2h) - 1 per axis)
    j0 = torch.floor(u - hu - 0.5).to(torch.long) + 1
    i0 = torch.floor(v - hv - 0.5).to(torch.long) + 1
    payload = torch.cat([col.to(dt), z[:, None], torch.ones_like(z)[:, None]], dim=1)  # colour, depth, weight
    per_point = {
        "du": (j0.to(dt) + 0.5) - u,  # offset of the first candidate column's centre from the point
        "dv": (i0.to(dt) + 0.5) - v,
        "j": j0,
        "i": i0,
        "idx": base + i0 * W + j0,
        "hu": hu,
        "hv": hv,
        "cu": hu - 0.5,  # core half-extent
        "cv": hv - 0.5,
        "z": z,
        "payload": payload,
    }
    # number of candidate columns / rows each point really has (the last centre strictly inside the box)
    nu = torch.ceil(u + hu - 0.5).to(torch.long) - j0
    nv = torch.ceil(v + hv - 0.5).to(torch.long) - i0
    max_u = int(nu.max()) if len(sel) else 0
    max_v = int(nv.max()) if len(sel) else 0
    # per offset, the points that need it: all points for the 2x2 inner offsets, a (gathered once) subset beyond
    offsets = []
    for b in range(max_v):
        for a in range(max_u):
            if a < 2 and b < 2:
                offsets.append((a, b, per_point))
            else:
                pts = ((nu > a) & (nv > b)).nonzero().squeeze(1)
                offsets.append((a, b, {k: x[pts] for k, x in per_point.items()}))

    def candidate(a: int, b: int, q: dict):
        du, dv = q["du"] + a, q["dv"] + b
        jj, ii = q["j"] + a, q["i"] + b
        inside = (du.abs() < q["hu"]) & (dv.abs() < q["hv"]) & (jj >= 0) & (jj < W) & (ii >= 0) & (ii < H)
        idx = torch.where(inside, q["idx"] + (b * W + a), dummy)
        return du, dv, inside, idx

    zc = torch.full((n_pix + 1,), float("inf"), device=dev, dtype=dt)
    za = torch.full((n_pix + 1,), float("inf"), device=dev, dtype=dt)
    for a, b, q in offsets:  # pass 1: nearest candidate (all, and core only) per pixel
        du, dv, inside, idx = candidate(a, b, q)
        za.scatter_reduce_(0, idx, q["z"], "amin")
        core = inside & (du.abs() <= q["cu"]) & (dv.abs() <= q["cv"])
        zc.scatter_reduce_(0, torch.where(core, idx, dummy), q["z"], "amin")
    zref = torch.where(torch.isfinite(zc), zc, za)
    acc = torch.zeros(n_pix + 1, C + 2, device=dev, dtype=dt)  # weighted colour, depth, and the weight
    for a, b, q in offsets:  # pass 2: blend the candidates within the depth band of z_ref
        du, dv, inside, idx = candidate(a, b, q)
        zr = zref[idx]
        accept = inside & ((q["z"] - zr).abs() <= depth_tol * zr)
        w = torch.where(accept, (1 - du.abs() / q["hu"]) * (1 - dv.abs() / q["hv"]), 0.0)
        acc.index_add_(0, torch.where(accept, idx, dummy), q["payload"] * w[:, None])
    acc = acc[:n_pix]
    wsum, dsum, acc = acc[:, C + 1], acc[:, C], acc[:, :C].to(colors.dtype)
    mask = wsum > 0
    safe = torch.where(mask, wsum, torch.ones_like(wsum))
    image = torch.where(mask[:, None], acc / safe[:, None].to(acc.dtype), torch.zeros_like(acc))
    depth = torch.where(mask, dsum / safe, torch.zeros_like(dsum))
    return WarpResult(image.view(B, H, W, C), mask.view(B, H, W), depth.view(B, H, W))


# ============================================================================================ image warps
def forward_warp(
    image: torch.Tensor,
    depth: torch.Tensor,
    K_src: torch.Tensor,
    c2w_src: torch.Tensor,
    K_dst: torch.Tensor,
    c2w_dst: torch.Tensor,
    out_size: tuple[int, int] | None = None,
    mask_src: torch.Tensor | None = None,
    depth_tol: float = 0.03,
    edge_tol: float = 0.05,
    max_footprint: float = 2.0,
) -> WarpResult:
    """Warp source images with their depth into destination cameras.

    Args:
        image: (B, H, W, C) source colours (any channels); depth: (B, H, W) source z-depth (<= 0 or
            non-finite = invalid).
        K_src, c2w_src: (B, 3, 3), (B, 4, 4) source cameras. A batch of one source is broadcast to
            all destination cameras.
        K_dst, c2w_dst: (B, 3, 3), (B, 4, 4) destination cameras.
        out_size: destination ``(height, width)``; defaults to the source size.
        mask_src: optional (B, H, W) bool, False source pixels are not warped.
        depth_tol, max_footprint: see :func:`splat_points`; edge_tol: see :func:`grid_tangents`.

    Returns:
        :class:`WarpResult` with (B, H_out, W_out) outputs.
    """
    B = max(K_dst.shape[0], K_src.shape[0])
    H, W = depth.shape[1:]
    Ho, Wo = out_size or (H, W)
    valid = torch.isfinite(depth) & (depth > 0)
    if mask_src is not None:
        valid = valid & mask_src.bool()
    d = torch.where(valid, depth, torch.ones_like(depth))
    pts = unproject_depth(d, K_src, c2w_src)
    tan = grid_tangents(pts, d, valid, K_src, c2w_src, edge_tol)
    C = image.shape[-1]

    def bc(x: torch.Tensor) -> torch.Tensor:
        return x.expand(B, *x.shape[1:]) if x.shape[0] == 1 else x

    return splat_points(
        bc(pts.reshape(-1, H * W, 3)),
        bc(image.reshape(-1, H * W, C)),
        bc(K_dst),
        bc(c2w_dst),
        Ho,
        Wo,
        tangents=bc(tan.reshape(-1, H * W, 2, 3)),
        valid=bc(valid.reshape(-1, H * W)),
        depth_tol=depth_tol,
        max_footprint=max_footprint,
    )


def warp_to_cameras(
    image: np.ndarray,
    depth: np.ndarray,
    src: Cameras,
    dst: Cameras,
    mask: np.ndarray | None = None,
    device: str | torch.device | None = None,
    **kw,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numpy convenience: warp one view ``image (H, W, C)``, ``depth (H, W)`` seen by ``src`` (1 camera) into
    every camera of ``dst`` (N cameras, size ``dst.width x dst.height``).

    Returns:
        images (N, H', W', C) float32, masks (N, H', W') bool, depth (N, H', W') float32.
    """
    if len(src) != 1:
        raise ValueError(f"warp_to_cameras: src must hold one camera, got {len(src)}")
    if (src.width, src.height) != (image.shape[1], image.shape[0]) or depth.shape != image.shape[:2]:
        raise ValueError(f"warp_to_cameras: image {image.shape}, depth {depth.shape} and camera {src.width}x{src.height} disagree")
    dt = torch.float32
    img = torch.as_tensor(np.asarray(image, dtype=np.float32), device=device)[None]
    if img.dim() == 3:
        img = img[..., None]
    dep = torch.as_tensor(np.asarray(depth, dtype=np.float32), device=device)[None]
    m = None if mask is None else torch.as_tensor(np.asarray(mask, dtype=bool), device=device)[None]
    Ks, Ts = src.torch(device, dt)
    Kd, Td = dst.torch(device, dt)
    return forward_warp(img, dep, Ks, Ts, Kd, Td, out_size=(dst.height, dst.width), mask_src=m, **kw).numpy()
