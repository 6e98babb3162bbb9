"""Camera registration with per-view metric depth: direct multi-view alignment before joint refinement.

Each view's pixels are lifted with its own depth, moved into an overlapping view by the two cameras, and
compared there with that view's colour and depth (photometric L1 + relative depth error, points that land
off-image or behind another surface left out); the per-view rigid corrections (:class:`PoseCorrections`,
pivots at each view's median depth, ``datum`` gauge: results in view 0's frame) minimise the sum over
overlapping pairs. Coarse to fine: images blurred by 2, 1, then 0 px and an occlusion tolerance of 20, 10,
then 5 % of the depth over three equal stages.

Why before the splats: joint refinement of cameras and splats from depth-initialised splats lets the
cameras drift along a nearly unobservable bending of the whole trajectory while the splats are still rough
(0.25-0.49 deg mean on ``benchmarks/pose_refine.py`` rooms, even from the true cameras), and nothing pulls
them back once the splats have followed. Warping with the views' depth sees no such freedom: the depth fixes
each view's structure, so the relative poses are determined pair by pair — when the depth is right: with
depth maps carrying independent errors of about 10% (``see3d.synth.depth_errors``, as monocular estimates do)
it turns cameras by 0.1-1.3 degrees to fit the errors (README), so it is off unless asked for
(``ReconstructConfig.register_cameras``), also for ``see3d generate`` output, whose depth is estimated.

Written here rather than taken from a library: the dense, depth-based (direct) alignment of a few posed
RGB-D views is the core of RGB-D odometry (Open3D's ``compute_rgbd_odometry`` does one pair, not a jointly
consistent set, and is not a dependency); this is a few grid samples per pair in torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from see3d.errors import InputError
from see3d.geometry.projection import project_points, transform_points, unproject_depth
from see3d.io.cameras import Cameras
from see3d.io.views import Views
from see3d.log import get_logger, progress
from see3d.metrics import gaussian_window
from see3d.splat.init import scene_extent
from see3d.splat.poses import PoseCorrections, correction_report

log = get_logger(__name__)

BLUR_PX = (2.0, 1.0, 0.0)  # image blur (Gaussian sigma, pixels) of the three stages
OCCLUSION_TOL = (0.2, 0.1, 0.05)  # a warped point counts where its depth is within this fraction of the target's
MIN_POINTS = 50  # fewest visible points for a pair to count in a step


@dataclass
class Registration:
    """Result of :func:`register_cameras`.

    Attributes:
        c2w: ``(N, 4, 4)`` registered OpenCV camera-to-world, float64, in view 0's frame.
        pairs: the ``(i, j)`` view pairs used (points of ``i`` compared in ``j``).
        loss_start, loss_end: mean per-pair loss at the given and the registered cameras (full resolution).
        registered: ``(N,)`` bool, False for a view in no pair (its camera is returned as given).
    """

    c2w: np.ndarray
    pairs: list[tuple[int, int]]
    loss_start: float
    loss_end: float
    registered: np.ndarray


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(N, C, H, W)`` blurred by a separable Gaussian of ``sigma`` pixels (replicated borders, unlike
    :mod:`see3d.metrics`' zero-padded SSIM filter, whose window it shares)."""
    if sigma <= 0:
        return x
    r = int(3 * sigma + 0.5)
    g = gaussian_window(2 * r + 1, sigma, dtype=x.dtype)
    C = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), g.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), g.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


class _PairWarp:
    """Sampled pixels of every view lifted with their depth, and the warp of view ``i``'s into view ``j``."""

    def __init__(self, depth: torch.Tensor, K: torch.Tensor, stride: int):
        N, H, W = depth.shape
        self.depth, self.K, self.H, self.W = depth[:, None], K, H, W
        cam = unproject_depth(depth, K)  # (N, H, W, 3) camera-frame points of every pixel centre
        ys, xs = torch.meshgrid(torch.arange(0, H, stride), torch.arange(0, W, stride), indexing="ij")
        self.pix: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.pts: list[torch.Tensor] = []  # (P_i, 3) camera-frame points of view i
        for i in range(N):
            z = depth[i, ys, xs]
            ok = torch.isfinite(z) & (z > 0)
            y, x = ys[ok], xs[ok]
            self.pix.append((y, x))
            self.pts.append(cam[i, y, x])

    def __call__(self, i: int, j: int, c2w_i: torch.Tensor, c2w_j: torch.Tensor, tol: float, images: torch.Tensor | None = None):
        """Warp view ``i``'s points into view ``j``: ``(visible (P,) bool, relative depth error (P,), colour
        error (P,) or None)``; colour errors compare ``images (N, 3, H, W)`` at both ends (L1 over channels)."""
        world = transform_points(self.pts[i][None], c2w_i[None])
        uv, z = project_points(world, self.K[j][None], c2w_j[None])
        uv, z = uv[0], z[0]
        gx = uv[:, 0] / self.W * 2 - 1
        gy = uv[:, 1] / self.H * 2 - 1
        grid = torch.stack([gx, gy], -1)[None, None]
        d_j = F.grid_sample(self.depth[j : j + 1], grid, align_corners=False, padding_mode="border")[0, 0, 0]
        inside = (gx.abs() < 1 - 2 / self.W) & (gy.abs() < 1 - 2 / self.H) & (z > 0) & (d_j > 0)
        zq = z.clamp_min(1e-6)
        rel = (d_j - zq).abs() / zq
        vis = inside & (rel < tol)
        col = None
        if images is not None:
            y, x = self.pix[i]
            c_j = F.grid_sample(images[j : j + 1], grid, align_corners=False, padding_mode="border")[0, :, 0].T
            col = (c_j - images[i, :, y, x].T).abs().sum(-1)
        return vis, rel, col


def overlap_pairs(warp: _PairWarp, c2w: torch.Tensor, min_overlap: float, max_neighbours: int) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` where at least ``min_overlap`` of view ``i``'s points land in view ``j`` at a consistent
    depth (loose tolerance, given cameras), the ``max_neighbours`` best ``j`` per ``i``."""
    N = len(c2w)
    pairs = []
    with torch.no_grad():
        for i in range(N):
            if not len(warp.pts[i]):
                continue
            frac = []
            for j in range(N):
                if j != i:
                    vis, _, _ = warp(i, j, c2w[i], c2w[j], OCCLUSION_TOL[0])
                    frac.append((float(vis.float().mean()), j))
            frac.sort(reverse=True)
            pairs += [(i, j) for f, j in frac[:max_neighbours] if f >= min_overlap]
    return pairs


def register_cameras(
    images: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    c2w: np.ndarray,
    steps: int = 300,
    max_points: int = 8000,
    lr: float = 2e-3,
    depth_weight: float = 1.0,
    min_overlap: float = 0.1,
    max_neighbours: int = 8,
    show_progress: bool = False,
) -> Registration:
    """Register cameras ``c2w (N, 4, 4)`` (OpenCV, intrinsics ``K (N, 3, 3)``) to each other with their
    views' ``images (N, H, W, 3)`` in [0, 1] and metric z-``depth (N, H, W)`` (<= 0 or non-finite: none).

    ``steps`` Adam steps (one over all pairs each) at peak rate ``lr`` (radians, and pivot depths for the
    translations); a regular grid of about ``max_points`` pixels per view (every pixel of small images, every
    2nd at 192x144); ``depth_weight`` on the relative depth error
    against the photometric L1; pairs by :func:`overlap_pairs`. View 0 keeps its camera (the gauge)."""
    N, H, W = depth.shape
    dev = torch.device("cpu")
    img0 = torch.as_tensor(images, dtype=torch.float32, device=dev).permute(0, 3, 1, 2).contiguous()
    dep = torch.as_tensor(depth, dtype=torch.float32, device=dev)
    Kt = torch.as_tensor(K, dtype=torch.float32, device=dev)
    c2w_t = torch.as_tensor(c2w, dtype=torch.float32, device=dev)
    stride = max(1, round(float(np.sqrt(H * W / max_points))))
    warp = _PairWarp(dep, Kt, stride)
    pairs = overlap_pairs(warp, c2w_t, min_overlap, max_neighbours)
    registered = np.zeros(N, dtype=bool)
    for i, j in pairs:
        registered[i] = registered[j] = True
    if not pairs:
        return Registration(np.asarray(c2w, dtype=np.float64).copy(), pairs, 0.0, 0.0, registered)
    pivots = torch.stack([d[d > 0].median() if (d > 0).any() else torch.zeros(()) for d in dep])
    pc = PoseCorrections(N, float(pivots[pivots > 0].mean()) if (pivots > 0).any() else 1.0, lr, lr, 0, max(1, steps // 20), steps, dev, "datum", pivots)

    def pair_loss(cams: list[torch.Tensor], images: torch.Tensor, tol: float) -> torch.Tensor:
        total = torch.zeros(())
        for i, j in pairs:
            vis, rel, col = warp(i, j, cams[i], cams[j], tol, images)
            if int(vis.sum()) >= MIN_POINTS:
                total = total + col[vis].mean() + depth_weight * rel[vis].mean()
        return total / max(1, len(pairs))

    with torch.no_grad():
        loss_start = float(pair_loss(list(c2w_t), img0, OCCLUSION_TOL[-1]))
    stage = -(-steps // len(BLUR_PX))
    images = None
    for step in progress(range(steps), desc="register", unit="step", disable=None if show_progress else True):
        s = min(step // stage, len(BLUR_PX) - 1)
        if step % stage == 0 or images is None:
            images = _blur(img0, BLUR_PX[s])
        loss = pair_loss([pc.apply(i, c2w_t[i]) for i in range(N)], images, OCCLUSION_TOL[s])
        if loss.requires_grad:  # no pair with enough visible points: nothing to move this step
            loss.backward()
        pc.step(step)
    out = pc.refined(torch.as_tensor(c2w, dtype=torch.float64)).numpy()  # view 0 exactly as given
    out[~registered] = np.asarray(c2w, dtype=np.float64)[~registered]
    with torch.no_grad():
        loss_end = float(pair_loss(list(torch.as_tensor(out, dtype=torch.float32)), img0, OCCLUSION_TOL[-1]))
    return Registration(out, pairs, loss_start, loss_end, registered)


def register_views(views: Views, show_progress: bool = False, steps: int = 300) -> tuple[Views, dict]:
    """``views`` with cameras registered by :func:`register_cameras` (they need metric depth), and a summary:
    pair count, loss before / after, per-view correction. Raises :class:`InputError` when registration made
    the alignment worse (the cameras or depth maps do not describe one scene)."""
    if views.depth is None or not views.depth_is_metric:
        raise InputError(None, "camera registration needs metric depth for every view (these views have none)")
    reg = register_cameras(views.images, views.depth, views.cameras.K, views.cameras.c2w, steps=steps, show_progress=show_progress)
    if not reg.pairs:
        raise InputError(None, "camera registration: no two views overlap at their depths (the cameras or the depth maps are wrong; "
                         "--no-register-cameras skips this step)")
    if not reg.loss_end <= reg.loss_start:
        raise InputError(None, f"camera registration made the views agree less (pair loss {reg.loss_start:.4f} -> {reg.loss_end:.4f}): "
                         "the depth maps and cameras do not describe one scene (--no-register-cameras skips this step)")
    cams = Cameras(views.cameras.K, reg.c2w, views.cameras.width, views.cameras.height)
    out = views[:]
    out.cameras = cams
    extent = scene_extent(views)
    summary = {
        "pairs": len(reg.pairs),
        "loss_start": round(reg.loss_start, 5),
        "loss_end": round(reg.loss_end, 5),
        "unregistered_views": [views.names[i] for i in np.flatnonzero(~reg.registered)],
        "corrections": correction_report(views.names, views.cameras.c2w, reg.c2w, extent),
    }
    unreg = summary["unregistered_views"]
    log.info("registered %d views over %d pairs (pair loss %.4f -> %.4f)%s", len(views), len(reg.pairs), reg.loss_start, reg.loss_end,
             f"; no overlap, kept as given: {unreg}" if unreg else "")
    return out, summary
