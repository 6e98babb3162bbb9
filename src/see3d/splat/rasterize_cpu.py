"""Fast CPU rasterizer: tiled front-to-back compositing in numba, with a hand-written backward.

Written by hand because no library splats Gaussians on the CPU: gsplat and the reference
diff-gaussian-rasterization are CUDA-only. The math and the compositing rules are those of
:mod:`see3d.splat.rasterize_ref` (tests compare values and gradients against it, and against gsplat's
independent pure-torch projection/compositing in ``tests/test_splat_gsplat_reference.py``):

1. binning: each splat's exact alpha >= 1/255 box (:func:`see3d.splat.project.alpha_rects`) is
   assigned to the 16x16 tiles it overlaps, with a counting sort that keeps front-to-back order;
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


@njit(cache=True)
def _bin_tiles(rects: np.ndarray, order: np.ndarray, width: int, height: int, tile: int):
    """Per tile, the splats overlapping it in front-to-back order (CSR: offsets (T+1,), ids (pairs,))."""
    ntx = (width + tile - 1) // tile
    nty = (height + tile - 1) // tile
    counts = np.zeros(ntx * nty + 1, np.int64)
    for g in order:
        x0, x1, y0, y1 = rects[g, 0], rects[g, 1], rects[g, 2], rects[g, 3]
        if x0 > x1 or y0 > y1:
            continue
        for ty in range(y0 // tile, y1 // tile + 1):
            for tx in range(x0 // tile, x1 // tile + 1):
                counts[ty * ntx + tx + 1] += 1
    offsets = np.cumsum(counts)
    cursor = offsets[:-1].copy()
    ids = np.empty(offsets[-1], np.int64)
    for g in order:
        x0, x1, y0, y1 = rects[g, 0], rects[g, 1], rects[g, 2], rects[g, 3]
        if x0 > x1 or y0 > y1:
            continue
        for ty in range(y0 // tile, y1 // tile + 1):
            for tx in range(x0 // tile, x1 // tile + 1):
                t = ty * ntx + tx
                ids[cursor[t]] = g
                cursor[t] += 1
    return offsets, ids


@njit(parallel=True, cache=True)
def _forward(means2d, conics, colors, opac, depths, rects, offsets, ids, width, height, tile, out_rgb, out_depth, out_T, out_last):
    ntx = (width + tile - 1) // tile
    nty = (height + tile - 1) // tile
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
                dy = my - (py + 0.5)
                for px in range(jx0, jx1 + 1):
                    lx = px - px0
                    if done[ly, lx]:
                        continue
                    dx = mx - (px + 0.5)
                    power = -0.5 * (ca * dx * dx + cc * dy * dy) - cb * dx * dy
                    if power > 0.0:
                        continue
                    alpha = min(ALPHA_MAX, o * math.exp(power))
                    if alpha < ALPHA_MIN:
                        continue
                    Tp = T[ly, lx]
                    test_T = Tp * (1.0 - alpha)
                    if test_T < T_MIN:
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
def _backward(means2d, conics, colors, opac, depths, rects, offsets, ids, width, height, tile, final_T, last_in, g_rgb, g_depth, g_alpha, pair_grads):
    """pair_grads (pairs, 10): d mean2d (2), d conic (3), d colour (3), d opacity, d depth."""
    ntx = (width + tile - 1) // tile
    nty = (height + tile - 1) // tile
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
                dy = my - (py + 0.5)
                for px in range(jx0, jx1 + 1):
                    lx = px - px0
                    if kk >= last[ly, lx]:
                        continue
                    dx = mx - (px + 0.5)
                    power = -0.5 * (ca * dx * dx + cc * dy * dy) - cb * dx * dy
                    if power > 0.0:
                        continue
                    G = math.exp(power)
                    raw = o * G
                    alpha = min(ALPHA_MAX, raw)
                    if alpha < ALPHA_MIN:
                        continue
                    one_m = 1.0 - alpha
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
                    if raw > ALPHA_MAX:  # clamped: no gradient to opacity or shape
                        continue
                    d_o += G * d_alpha
                    d_power = o * G * d_alpha
                    d_mx += -(ca * dx + cb * dy) * d_power
                    d_my += -(cb * dx + cc * dy) * d_power
                    d_ca += -0.5 * dx * dx * d_power
                    d_cb += -dx * dy * d_power
                    d_cc += -0.5 * dy * dy * d_power
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


class _RasterizeCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, depths, rects, width, height, tile):
        arrs = [x.detach().contiguous().numpy() for x in (means2d, conics, colors, opacities, depths)]
        dtype = arrs[0].dtype
        rects_np = rects.contiguous().numpy()
        order = np.argsort(arrs[4], kind="stable").astype(np.int64)
        offsets, ids = _bin_tiles(rects_np, order, width, height, tile)
        rgb = np.empty((height, width, 3), dtype)
        depth = np.empty((height, width), dtype)
        T = np.empty((height, width), dtype)
        last = np.empty((height, width), np.int64)
        with _numba_threads_for(len(offsets) - 1):
            _forward(*arrs, rects_np, offsets, ids, width, height, tile, rgb, depth, T, last)
        ctx.saved = (arrs, rects_np, offsets, ids, T, last, width, height, tile)
        return torch.from_numpy(rgb), torch.from_numpy(depth), torch.from_numpy(1.0 - T)

    @staticmethod
    def backward(ctx, g_rgb, g_depth, g_alpha):
        arrs, rects_np, offsets, ids, T, last, width, height, tile = ctx.saved
        dtype = arrs[0].dtype

        def np_grad(gt, shape):
            return np.zeros(shape, dtype) if gt is None else gt.detach().to(torch.float64 if dtype == np.float64 else torch.float32).contiguous().numpy()

        gr = np_grad(g_rgb, (height, width, 3))
        gd = np_grad(g_depth, (height, width))
        ga = np_grad(g_alpha, (height, width))
        pair = np.zeros((len(ids), 10), dtype)
        with _numba_threads_for(len(offsets) - 1):
            _backward(*arrs, rects_np, offsets, ids, width, height, tile, T, last, gr, gd, ga, pair)
        out = np.zeros((len(arrs[0]), 10), dtype)
        _reduce_pairs(ids, pair, out)
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
