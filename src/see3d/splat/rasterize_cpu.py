"""Fast CPU rasterizer: tiled front-to-back compositing in numba, with a hand-written backward.

Written by hand because no library splats Gaussians on the CPU: gsplat and the reference
diff-gaussian-rasterization are CUDA-only. The math and the compositing rules are those of
:mod:`see3d.splat.rasterize_ref` (tests compare values and gradients against it, and against gsplat's
independent pure-torch projection/compositing in ``tests/test_splat_gsplat_reference.py``):

1. binning: the splats that touch the image are gathered in depth order; each splat's exact
   alpha >= 1/255 box (:func:`see3d.splat.project.alpha_rects`) gives the 16x16 tiles it may overlap,
   and a splat spanning several tiles is kept only in those its alpha ellipse meets (a tile test
   that drops 3.5% of the (tile, splat) pairs on LLFF fern, whose splats are small); a counting sort keeps
   front-to-back order;
2. forward: tiles in parallel; within a tile splats outer (front to back), the pixels of the splat's
   box inner; each pixel keeps its transmittance and the count of splats it consumed;
3. backward: the same traversal back to front, recovering ``T_i = T_{i+1} / (1 - alpha_i)`` as the
   reference CUDA implementation does. Gradients are written per (tile, splat) pair and reduced in a
   fixed order afterwards, so results are deterministic (no races, no order-dependent sums).
"""

from __future__ import annotations

import contextlib
import math

import numba
import numpy as np
import torch
from numba import njit, prange

from see3d.splat.project import ALPHA_MAX, ALPHA_MIN, T_MIN
from see3d.splat.project_cpu import alpha_reach2

TILE = 16
MIN_TILES_PER_THREAD = 8  # below this, thread wake-ups cost more than they save


@contextlib.contextmanager
def _numba_threads_for(num_tiles: int):
    """Use fewer numba threads for tiny images (thread-local setting, restored afterwards)."""
    old = numba.get_num_threads()
    want = max(1, min(old, num_tiles // MIN_TILES_PER_THREAD))
    numba.set_num_threads(want)
    try:
        yield
    finally:
        numba.set_num_threads(old)


@njit(cache=True, inline="always")
def _edge_min(a, b, c, d_fixed, lo, hi):
    """min over ``u in [lo, hi]`` of ``a u^2 + 2 b u v + c v^2`` at ``v = d_fixed`` (a > 0)."""
    u = min(max(-b * d_fixed / a, lo), hi)
    return a * u * u + 2.0 * b * u * d_fixed + c * d_fixed * d_fixed


@njit(cache=True, inline="always")
def _touches_tile(mx, my, ca, cb, cc, r2, X0, X1, Y0, Y1) -> bool:
    """Whether the ellipse ``d^T conic d <= r2`` around (mx, my) meets the rectangle of pixel centres
    ``[X0, X1] x [Y0, Y1]``: the convex quadratic's minimum over the rectangle lies inside it (centre
    inside) or on one of its four edges."""
    if X0 <= mx <= X1 and Y0 <= my <= Y1:
        return True
    if ca <= 0.0 or cc <= 0.0:
        return True
    dxl, dxh = mx - X1, mx - X0
    dyl, dyh = my - Y1, my - Y0
    q = min(_edge_min(ca, cb, cc, dyl, dxl, dxh), _edge_min(ca, cb, cc, dyh, dxl, dxh))
    q = min(q, _edge_min(cc, cb, ca, dxl, dyl, dyh))
    q = min(q, _edge_min(cc, cb, ca, dxh, dyl, dyh))
    return q <= r2


@njit(cache=True)
def _bin_tiles(rects: np.ndarray, order: np.ndarray, means2d, conics, opac, width: int, height: int, tile: int):
    """Per tile, the splats overlapping it in front-to-back order (CSR: offsets (T+1,), ids (pairs,)).

    A splat whose box spans several tiles is assigned only to the tiles its alpha ellipse meets."""
    ntx = (width + tile - 1) // tile
    nty = (height + tile - 1) // tile
    counts = np.zeros(ntx * nty + 1, np.int64)
    for pass_ in range(2):
        if pass_ == 1:
            offsets = np.cumsum(counts)
            cursor = offsets[:-1].copy()
            ids = np.empty(offsets[-1], np.int64)
        for g in order:
            x0, x1, y0, y1 = rects[g, 0], rects[g, 1], rects[g, 2], rects[g, 3]
            if x0 > x1 or y0 > y1:
                continue
            tx0, tx1, ty0, ty1 = x0 // tile, x1 // tile, y0 // tile, y1 // tile
            single = tx0 == tx1 and ty0 == ty1
            r2 = alpha_reach2(opac[g]) * 1.001 + 1e-3  # inflated: rounding never drops a contributing pixel
            mx, my = means2d[g, 0], means2d[g, 1]
            ca, cb, cc = conics[g, 0], conics[g, 1], conics[g, 2]
            for ty in range(ty0, ty1 + 1):
                Y0 = max(ty * tile, y0) + 0.5
                Y1 = min(ty * tile + tile - 1, y1) + 0.5
                for tx in range(tx0, tx1 + 1):
                    if not single:
                        X0 = max(tx * tile, x0) + 0.5
                        X1 = min(tx * tile + tile - 1, x1) + 0.5
                        if not _touches_tile(mx, my, ca, cb, cc, r2, X0, X1, Y0, Y1):
                            continue
                    t = ty * ntx + tx
                    if pass_ == 0:
                        counts[t + 1] += 1
                    else:
                        ids[cursor[t]] = g
                        cursor[t] += 1
    return offsets, ids


@njit(parallel=True, cache=True)
def _forward(means2d, conics, colors, opac, depths, rects, offsets, ids, width, height, tile, out_rgb, out_depth, out_T, out_last, cst, centre):
    ntx = (width + tile - 1) // tile
    nty = (height + tile - 1) // tile
    half, amax, amin, tmin, one = cst[0], cst[1], cst[2], cst[3], cst[4]
    for t in prange(ntx * nty):
        px0 = (t % ntx) * tile
        py0 = (t // ntx) * tile
        px1 = min(px0 + tile, width)
        py1 = min(py0 + tile, height)
        tw = px1 - px0
        th = py1 - py0
        T = np.ones((th, tw), out_T.dtype)
        rgb = np.zeros((th, tw, 3), out_rgb.dtype)
        dep = np.zeros((th, tw), out_depth.dtype)
        last = np.zeros((th, tw), np.int64)
        done = np.zeros((th, tw), np.bool_)
        alive = th * tw
        start = offsets[t]
        for k in range(start, offsets[t + 1]):
            if alive == 0:
                break
            g = ids[k]
            jx0 = max(rects[g, 0], px0)
            jx1 = min(rects[g, 1], px1 - 1)
            jy0 = max(rects[g, 2], py0)
            jy1 = min(rects[g, 3], py1 - 1)
            mx = means2d[g, 0]
            my = means2d[g, 1]
            ca = conics[g, 0]
            cb = conics[g, 1]
            cc = conics[g, 2]
            o = opac[g]
            for py in range(jy0, jy1 + 1):
                ly = py - py0
                dy = my - centre[py]
                for px in range(jx0, jx1 + 1):
                    lx = px - px0
                    if done[ly, lx]:
                        continue
                    dx = mx - centre[px]
                    power = -(half * (ca * dx * dx + cc * dy * dy) + cb * dx * dy)
                    if power > 0:
                        continue
                    alpha = min(amax, o * math.exp(power))
                    if alpha < amin:
                        continue
                    Tp = T[ly, lx]
                    test_T = Tp * (one - alpha)
                    if test_T < tmin:
                        done[ly, lx] = True
                        alive -= 1
                        continue
                    w = alpha * Tp
                    rgb[ly, lx, 0] += w * colors[g, 0]
                    rgb[ly, lx, 1] += w * colors[g, 1]
                    rgb[ly, lx, 2] += w * colors[g, 2]
                    dep[ly, lx] += w * depths[g]
                    T[ly, lx] = test_T
                    last[ly, lx] = k - start + 1
        out_rgb[py0:py1, px0:px1] = rgb
        out_depth[py0:py1, px0:px1] = dep
        out_T[py0:py1, px0:px1] = T
        out_last[py0:py1, px0:px1] = last


@njit(parallel=True, cache=True)
def _backward(means2d, conics, colors, opac, depths, rects, offsets, ids, width, height, tile, final_T, last_in, g_rgb, g_depth, g_alpha, pair_grads, cst, centre):
    """pair_grads (pairs, 10): d mean2d (2), d conic (3), d colour (3), d opacity, d depth."""
    ntx = (width + tile - 1) // tile
    nty = (height + tile - 1) // tile
    half, amax, amin, one = cst[0], cst[1], cst[2], cst[4]
    for t in prange(ntx * nty):
        px0 = (t % ntx) * tile
        py0 = (t // ntx) * tile
        px1 = min(px0 + tile, width)
        py1 = min(py0 + tile, height)
        th = py1 - py0
        tw = px1 - px0
        T = final_T[py0:py1, px0:px1].copy()
        last = last_in[py0:py1, px0:px1]
        behind = np.zeros((th, tw, 4), final_T.dtype)  # colour (3) and depth composited behind splat i
        nmax = 0
        for ly in range(th):
            for lx in range(tw):
                nmax = max(nmax, last[ly, lx])
        start = offsets[t]
        for kk in range(nmax - 1, -1, -1):
            k = start + kk
            g = ids[k]
            jx0 = max(rects[g, 0], px0)
            jx1 = min(rects[g, 1], px1 - 1)
            jy0 = max(rects[g, 2], py0)
            jy1 = min(rects[g, 3], py1 - 1)
            mx = means2d[g, 0]
            my = means2d[g, 1]
            ca = conics[g, 0]
            cb = conics[g, 1]
            cc = conics[g, 2]
            o = opac[g]
            c0 = colors[g, 0]
            c1 = colors[g, 1]
            c2 = colors[g, 2]
            zg = depths[g]
            d_mx = 0.0
            d_my = 0.0
            d_ca = 0.0
            d_cb = 0.0
            d_cc = 0.0
            d_c0 = 0.0
            d_c1 = 0.0
            d_c2 = 0.0
            d_o = 0.0
            d_z = 0.0
            for py in range(jy0, jy1 + 1):
                ly = py - py0
                dy = my - centre[py]
                for px in range(jx0, jx1 + 1):
                    lx = px - px0
                    if kk >= last[ly, lx]:
                        continue
                    dx = mx - centre[px]
                    power = -(half * (ca * dx * dx + cc * dy * dy) + cb * dx * dy)
                    if power > 0:
                        continue
                    G = math.exp(power)
                    raw = o * G
                    alpha = min(amax, raw)
                    if alpha < amin:
                        continue
                    one_m = one - alpha
                    Ti = T[ly, lx] / one_m
                    T[ly, lx] = Ti
                    gr0 = g_rgb[py, px, 0]
                    gr1 = g_rgb[py, px, 1]
                    gr2 = g_rgb[py, px, 2]
                    gd = g_depth[py, px]
                    b0 = behind[ly, lx, 0]
                    b1 = behind[ly, lx, 1]
                    b2 = behind[ly, lx, 2]
                    bd = behind[ly, lx, 3]
                    w = alpha * Ti
                    d_c0 += w * gr0
                    d_c1 += w * gr1
                    d_c2 += w * gr2
                    d_z += w * gd
                    d_alpha = Ti * ((c0 - b0) * gr0 + (c1 - b1) * gr1 + (c2 - b2) * gr2 + (zg - bd) * gd)
                    d_alpha += g_alpha[py, px] * final_T[py, px] / one_m
                    behind[ly, lx, 0] = alpha * c0 + one_m * b0
                    behind[ly, lx, 1] = alpha * c1 + one_m * b1
                    behind[ly, lx, 2] = alpha * c2 + one_m * b2
                    behind[ly, lx, 3] = alpha * zg + one_m * bd
                    if raw > amax:  # clamped: no gradient to opacity or shape
                        continue
                    d_o += G * d_alpha
                    d_power = o * G * d_alpha
                    d_mx -= (ca * dx + cb * dy) * d_power
                    d_my -= (cb * dx + cc * dy) * d_power
                    d_ca -= half * dx * dx * d_power
                    d_cb -= dx * dy * d_power
                    d_cc -= half * dy * dy * d_power
            pair_grads[k, 0] = d_mx
            pair_grads[k, 1] = d_my
            pair_grads[k, 2] = d_ca
            pair_grads[k, 3] = d_cb
            pair_grads[k, 4] = d_cc
            pair_grads[k, 5] = d_c0
            pair_grads[k, 6] = d_c1
            pair_grads[k, 7] = d_c2
            pair_grads[k, 8] = d_o
            pair_grads[k, 9] = d_z


@njit(cache=True)
def _reduce_pairs(ids, pair_grads, out):
    """out[g] += pair_grads[k] for every pair k of splat g, in pair order (deterministic)."""
    for k in range(len(ids)):
        g = ids[k]
        for j in range(pair_grads.shape[1]):
            out[g, j] += pair_grads[k, j]


def _typed_constants(dtype, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernels' constants (0.5, ALPHA_MAX, ALPHA_MIN, T_MIN, 1) and pixel centres ``j + 0.5`` as arrays
    of the splats' dtype: numba types a Python float literal as float64, which would turn every float32
    pixel evaluation into float64 math with conversions (about 15% of the compositing time)."""
    return np.array([0.5, ALPHA_MAX, ALPHA_MIN, T_MIN, 1.0], dtype), np.arange(max(width, height), dtype=dtype) + dtype.type(0.5)


class _RasterizeCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, depths, rects, width, height, tile):
        arrs = [x.detach().contiguous().numpy() for x in (means2d, conics, colors, opacities, depths)]
        dtype = arrs[0].dtype
        rects_np = rects.contiguous().numpy()
        # the splats that touch the image, front to back, gathered into depth order: the kernels then read
        # each tile's splats from increasing addresses instead of from all over the arrays (cache misses
        # on those reads were most of the compositing time)
        seen = np.flatnonzero((rects_np[:, 0] <= rects_np[:, 1]) & (rects_np[:, 2] <= rects_np[:, 3]))
        order = seen[np.argsort(arrs[4][seen], kind="stable")]
        arrs = [np.ascontiguousarray(a[order]) for a in arrs]
        rects_np = np.ascontiguousarray(rects_np[order])
        offsets, ids = _bin_tiles(rects_np, np.arange(len(order)), arrs[0], arrs[1], arrs[3], width, height, tile)
        rgb = np.empty((height, width, 3), dtype)
        depth = np.empty((height, width), dtype)
        T = np.empty((height, width), dtype)
        last = np.empty((height, width), np.int64)
        with _numba_threads_for(len(offsets) - 1):
            _forward(*arrs, rects_np, offsets, ids, width, height, tile, rgb, depth, T, last, *_typed_constants(dtype, width, height))
        ctx.saved = (arrs, rects_np, offsets, ids, T, last, width, height, tile, order, len(means2d))
        return torch.from_numpy(rgb), torch.from_numpy(depth), torch.from_numpy(1.0 - T)

    @staticmethod
    def backward(ctx, g_rgb, g_depth, g_alpha):
        arrs, rects_np, offsets, ids, T, last, width, height, tile, order, num = ctx.saved
        dtype = arrs[0].dtype

        def np_grad(gt, shape):
            return np.zeros(shape, dtype) if gt is None else gt.detach().to(torch.float64 if dtype == np.float64 else torch.float32).contiguous().numpy()

        gr = np_grad(g_rgb, (height, width, 3))
        gd = np_grad(g_depth, (height, width))
        ga = np_grad(g_alpha, (height, width))
        pair = np.zeros((len(ids), 10), dtype)
        with _numba_threads_for(len(offsets) - 1):
            _backward(*arrs, rects_np, offsets, ids, width, height, tile, T, last, gr, gd, ga, pair, *_typed_constants(dtype, width, height))
        sorted_out = np.zeros((len(arrs[0]), 10), dtype)
        _reduce_pairs(ids, pair, sorted_out)
        out = np.zeros((num, 10), dtype)
        out[order] = sorted_out
        o = torch.from_numpy(out)
        return o[:, 0:2], o[:, 2:5], o[:, 5:8], o[:, 8], o[:, 9], None, None, None, None


def composite_cpu(p, width: int, height: int, tile: int = TILE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Composite projected splats ``p`` (:class:`see3d.splat.project.Projected`, CPU tensors).

    Returns ``rgb (H, W, 3)`` and ``depth (H, W)`` accumulated without background, and ``alpha (H, W)``;
    the same quantities as :func:`see3d.splat.rasterize_ref.composite_ref`.
    """
    if p.means2d.device.type != "cpu":
        raise ValueError("composite_cpu needs CPU tensors; use the gsplat backend on CUDA")
    dtype = p.means2d.dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"composite_cpu supports float32/float64, got {dtype}")
    opac = p.opacities.to(dtype)
    return _RasterizeCPU.apply(p.means2d, p.conics.to(dtype), p.colors.to(dtype), opac, p.depths.to(dtype), p.rects, int(width), int(height), int(tile))
