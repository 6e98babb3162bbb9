"""Joint camera refinement: per-view se(3) corrections optimised with the splats (InstantSplat-style).

Generated views are rendered from nominal cameras but their content is only approximately consistent
with them; a small rigid correction per view absorbs that misalignment instead of blurring the splats.

The refined camera of view ``i`` is ``c2w_i @ T(p_i) exp([u_i rho_i, omega_i]) T(-p_i)``: a rotation
``omega`` (axis-angle, radians) about the pivot ``p_i = (0, 0, d_i)`` of the camera's frame (``d_i`` the
median depth of the initial splats it sees; the centre when none) and a translation ``rho`` along its own
axes in units ``u_i = d_i`` (the scene extent without a pivot), both zero at the start. View 0 fixes the
gauge: results are expressed in the frame and scale of the first input camera (see ``PoseCorrections``'
``gauge``). Corrections get their own Adam optimiser, learning rates, a start step and a linear warm-up.

The exponential map is written here (a few lines, closed form with Taylor terms near zero, exact autograd)
rather than taken from lietorch or pypose: both are large dependencies (lietorch builds CUDA extensions)
for one 6-vector -> 4x4 function.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from see3d.geometry.sfm import rotation_angle_deg
from see3d.splat.project import EPS2D

_SMALL = 1e-4  # theta^2 below which the Taylor series is used (error < 1e-13 with the terms below)


def _hat(w: torch.Tensor) -> torch.Tensor:
    """(N, 3) -> (N, 3, 3) skew-symmetric matrices, ``hat(w) v = w x v``."""
    x, y, z = w.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(w.shape[:-1] + (3, 3))


def se3_exp(xi: torch.Tensor) -> torch.Tensor:
    """(N, 6) twists ``[rho (translation), omega (rotation, axis-angle rad)]`` -> (N, 4, 4) rigid transforms.

    ``R = I + A W + B W^2`` and ``t = (I + B W + C W^2) rho`` with ``W = hat(omega)``, ``theta = |omega|``,
    ``A = sin(theta)/theta``, ``B = (1 - cos(theta))/theta^2``, ``C = (theta - sin(theta))/theta^3``
    (series in ``theta^2`` near 0, so value and gradient are finite at the identity).
    """
    rho, omega = xi[..., :3], xi[..., 3:]
    th2 = (omega * omega).sum(-1)
    small = th2 < _SMALL
    th2_safe = torch.where(small, torch.ones_like(th2), th2)
    th = th2_safe.sqrt()
    s, c = torch.sin(th), torch.cos(th)
    A = torch.where(small, 1 - th2 / 6 + th2 * th2 / 120, s / th)
    B = torch.where(small, 0.5 - th2 / 24 + th2 * th2 / 720, (1 - c) / th2_safe)
    C = torch.where(small, 1.0 / 6 - th2 / 120 + th2 * th2 / 5040, (th - s) / (th2_safe * th))
    W = _hat(omega)
    W2 = W @ W
    eye = torch.eye(3, dtype=xi.dtype, device=xi.device).expand_as(W)
    R = eye + A[..., None, None] * W + B[..., None, None] * W2
    V = eye + B[..., None, None] * W + C[..., None, None] * W2
    t = (V @ rho[..., None])[..., 0]
    top = torch.cat([R, t[..., None]], -1)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=xi.dtype, device=xi.device).expand(top.shape[:-2] + (1, 4))
    return torch.cat([top, bottom], -2)


class PoseCorrections:
    """Per-view corrections ``(N, 6)`` with their optimiser and schedule (see the module docstring).

    Args:
        n: number of training views.
        extent: scene extent (the translation unit of cameras without a pivot).
        lr_rot, lr_trans: peak Adam learning rates (rad; pivot depths, or extents without a pivot).
        start, warmup: first step that moves the cameras, steps of the linear ramp to the peak rate;
            the rate then decays exponentially to 1% of the peak at ``iters``.
        gauge: how view 0 fixes the frame. ``"fixed"``: view 0 is never corrected (its image alone has to
            pull the whole scene into its frame, a slow, weakly constrained motion). ``"datum"``: every view
            is corrected while training (the photometric loss does not see a common rigid motion of scene
            and cameras, so nothing holds the optimisation back along it), and results are expressed in
            view 0's frame: :meth:`datum` is the rigid world motion that brings view 0's refined camera back
            to its given one, applied to every refined camera and to the splats on the way out (free network
            adjustment followed by a datum transformation, as in bundle adjustment). ``"none"``: every view
            corrected, no datum (aligning held-out views to frozen splats).
        pivots: ``(N,)`` depth along each camera's optical axis of the point its correction rotates about
            (default 0: the camera centre). At the scene's depth, the rotation coordinates move the camera
            around what it sees (parallax only, weakly constrained) and the translation coordinates shift
            the image: Adam's per-coordinate step sizes then act on the weak and strong directions
            separately instead of on mixtures of both (about the centre, a rotation and the translation
            that nearly cancels its image shift must move together, which Adam does slowly).
    """

    def __init__(
        self, n: int, extent: float, lr_rot: float, lr_trans: float, start: int, warmup: int, iters: int, device=None, gauge: str = "datum", pivots=None
    ):
        if gauge not in ("fixed", "datum", "none"):
            raise ValueError(f"gauge must be 'fixed', 'datum' or 'none', got {gauge!r}")
        self.gauge = gauge
        self.pivots = torch.zeros(n, device=device) if pivots is None else torch.as_tensor(pivots, dtype=torch.float32, device=device).reshape(n)
        # translation unit per view: its pivot depth (then both coordinates are angles seen from the pivot) or the extent
        self.unit = torch.where(self.pivots > 0, self.pivots, torch.full_like(self.pivots, float(extent)))
        self.rot = torch.zeros(n, 3, device=device, requires_grad=True)
        self.trans = torch.zeros(n, 3, device=device, requires_grad=True)
        self.peak = {"rot": float(lr_rot), "trans": float(lr_trans)}
        self.start, self.warmup, self.iters = int(start), max(1, int(warmup)), int(iters)
        self.optimizer = torch.optim.Adam(
            [{"params": [self.rot], "lr": 0.0, "name": "rot"}, {"params": [self.trans], "lr": 0.0, "name": "trans"}], eps=1e-15
        )

    def __len__(self) -> int:
        return len(self.rot)

    def factor(self, step: int) -> float:
        """Learning-rate multiplier at ``step``: 0 before ``start``, linear ramp, then decay to 0.01 at ``iters``."""
        if step < self.start:
            return 0.0
        ramp = min(1.0, (step - self.start + 1) / self.warmup)
        t = min(1.0, max(0.0, (step - self.start - self.warmup) / max(1, self.iters - self.start - self.warmup)))
        return ramp * math.exp(t * math.log(0.01))

    def magnitude(self, i: int) -> torch.Tensor:
        """Squared size of view ``i``'s correction, ``|omega|^2 + |rho|^2`` (radians^2 and pivot depths^2): the
        prior that holds a camera at its nominal pose where the images do not ask for a move."""
        return self.rot[i].square().sum() + self.trans[i].square().sum()

    def apply(self, i: int, c2w: torch.Tensor) -> torch.Tensor:
        """The (4, 4) camera-to-world view ``i`` is rendered from while training (differentiable in the
        correction; view 0 as given with ``gauge="fixed"``)."""
        if i == 0 and self.gauge == "fixed":
            return c2w
        xi = torch.cat([self.trans[i] * self.unit[i], self.rot[i]])[None].to(c2w.dtype)
        return c2w @ self._about_pivot(se3_exp(xi), self.pivots[i : i + 1].to(c2w.dtype))[0]

    @staticmethod
    def _about_pivot(E: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """``(N, 4, 4)`` corrections ``E`` taken about the points ``(0, 0, depth)`` of each camera's frame:
        ``T(p) E T(-p)`` (the same rigid motion family, another origin for its rotation)."""
        out = E.clone()
        p = torch.zeros(E.shape[0], 3, dtype=E.dtype, device=E.device)
        p[:, 2] = depth
        out[:, :3, 3] = E[:, :3, 3] + p - (E[:, :3, :3] @ p[..., None])[..., 0]
        return out

    def step(self, step: int) -> None:
        """One Adam step of the corrections at the scheduled rate (no-op before ``start``), then zero the grads."""
        f = self.factor(step)
        if f > 0:
            for grp in self.optimizer.param_groups:
                grp["lr"] = self.peak[grp["name"]] * f
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def _corrections(self, dtype=torch.float64) -> torch.Tensor:
        """(N, 4, 4) correction transforms (identity for view 0 with ``gauge="fixed"``)."""
        xi = torch.cat([self.trans * self.unit[:, None], self.rot], -1).detach().to(dtype)
        if self.gauge == "fixed":
            xi[0] = 0
        return self._about_pivot(se3_exp(xi), self.pivots.detach().to(dtype))

    @torch.no_grad()
    def datum(self, c2w: torch.Tensor) -> torch.Tensor:
        """(4, 4) similarity ``A`` (top-left block ``s R``) taking the training frame to the output frame, given
        the nominal camera-to-world ``c2w (N, 4, 4)``; identity unless ``gauge="datum"``.

        ``A`` is the rigid motion that returns view 0's refined camera to its nominal one, then the scaling
        about view 0's centre that gives the refined centres the nominal ones' RMS distance to it (the
        photometric loss fixes neither; the nominal cameras' baseline is the scale they were given in)."""
        c2w = c2w.detach().to(torch.float64)
        eye = torch.eye(4, dtype=torch.float64, device=c2w.device)
        if self.gauge != "datum":
            return eye
        raw = c2w @ self._corrections().to(c2w.device)
        rigid = c2w[0] @ torch.linalg.inv(raw[0])
        c0 = c2w[0, :3, 3]
        d_nom = (c2w[1:, :3, 3] - c0).norm(dim=-1)
        d_ref = ((rigid @ raw)[1:, :3, 3] - c0).norm(dim=-1)
        s = float(d_nom.square().mean().sqrt() / d_ref.square().mean().sqrt()) if len(c2w) > 1 and float(d_ref.max()) > 1e-12 else 1.0
        scale = eye.clone()
        scale[:3, :3] *= s
        scale[:3, 3] = (1 - s) * c0
        return scale @ rigid

    @torch.no_grad()
    def refined(self, c2w: torch.Tensor) -> torch.Tensor:
        """(N, 4, 4) nominal camera-to-world -> refined ones in the output frame (view 0 unchanged unless
        ``gauge="none"``), float64."""
        c2w = c2w.detach().to(torch.float64)
        out = apply_similarity(self.datum(c2w), c2w @ self._corrections().to(c2w.device))
        if self.gauge != "none":
            out[0] = c2w[0]  # equal up to rounding with "datum"; exactly, by definition
        return out

    # ------------------------------------------------------------------ checkpoints
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {"pose/rot": self.rot.detach().cpu(), "pose/trans": self.trans.detach().cpu(), "pose/pivots": self.pivots.cpu()}
        for grp in self.optimizer.param_groups:
            st = self.optimizer.state.get(grp["params"][0])
            if st:
                out[f"pose_adam/{grp['name']}/exp_avg"] = st["exp_avg"].cpu()
                out[f"pose_adam/{grp['name']}/exp_avg_sq"] = st["exp_avg_sq"].cpu()
                out[f"pose_adam/{grp['name']}/step"] = torch.as_tensor(float(st["step"])).reshape(1)
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.rot.copy_(tensors["pose/rot"])
            self.trans.copy_(tensors["pose/trans"])
            if "pose/pivots" in tensors:
                self.pivots.copy_(tensors["pose/pivots"])
                self.unit = torch.where(self.pivots > 0, self.pivots, self.unit)
        for grp in self.optimizer.param_groups:
            key = f"pose_adam/{grp['name']}"
            if f"{key}/exp_avg" in tensors:
                p = grp["params"][0]
                self.optimizer.state[p] = {
                    "step": tensors[f"{key}/step"].reshape(()).clone(),
                    "exp_avg": tensors[f"{key}/exp_avg"].to(p.device),
                    "exp_avg_sq": tensors[f"{key}/exp_avg_sq"].to(p.device),
                }


def correction_report(names: list[str], c2w_from: np.ndarray, c2w_to: np.ndarray, extent: float) -> list[dict]:
    """Per view: the correction from camera ``c2w_from`` to ``c2w_to`` (both ``(N, 4, 4)`` OpenCV c2w): rotation in
    degrees about the camera centre, centre displacement in world units and in % of ``extent``."""
    a, b = torch.as_tensor(c2w_from, dtype=torch.float64), torch.as_tensor(c2w_to, dtype=torch.float64)
    rot = rotation_angle_deg(a[:, :3, :3].transpose(1, 2) @ b[:, :3, :3])
    t = (b[:, :3, 3] - a[:, :3, 3]).norm(dim=-1).numpy()
    return [
        {"view": n, "rotation_deg": float(r), "translation": float(d), "translation_pct_extent": float(100 * d / extent)}
        for n, r, d in zip(names, rot, t)
    ]


def pivot_depths(points: torch.Tensor, c2w: torch.Tensor, K: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """``(N,)`` median depth of ``points (P, 3)`` seen by each camera (``c2w (N, 4, 4)``, ``K (N, 3, 3)``,
    OpenCV): the pivot of its correction (:class:`PoseCorrections`). 0 for a camera that sees none."""
    from see3d.geometry.projection import project_points

    pts = points.detach().to(torch.float64)[None]
    out = torch.zeros(len(c2w), dtype=torch.float64)
    for i in range(len(c2w)):  # one camera at a time: (P, 3) points per view, not (N, P, 3)
        uv, z = project_points(pts, K[i : i + 1].detach().to(torch.float64), c2w[i : i + 1].detach().to(torch.float64))
        uv, z = uv[0], z[0]
        seen = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
        if seen.any():
            out[i] = z[seen].median()
    return out


def apply_similarity(A: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """Cameras ``c2w (..., 4, 4)`` moved by the similarity ``A (4, 4)`` (top-left block ``s R``): centres
    mapped by ``A``, rotations composed with ``R`` (still orthonormal)."""
    out = A @ c2w
    s = torch.linalg.det(A[:3, :3]).abs() ** (1 / 3)
    out[..., :3, :3] = out[..., :3, :3] / s
    return out


def perturb_c2w(c2w: np.ndarray, rot_deg: tuple[float, float], trans: float, rng: np.random.Generator, keep_first: bool = True) -> np.ndarray:
    """(N, 4, 4) cameras, each rotated about its centre by a random angle in ``rot_deg`` (degrees, random
    axis) and moved by ``trans`` (world units, random direction); view 0 kept when ``keep_first``.
    For experiments on refinement (simulates generated views whose content misses the nominal camera)."""
    out = np.array(c2w, dtype=np.float64, copy=True)
    for i in range(1 if keep_first else 0, len(out)):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        ang = np.radians(rng.uniform(*rot_deg))
        d = rng.normal(size=3)
        rot = se3_exp(torch.as_tensor(np.concatenate([np.zeros(3), ang * axis]))[None])[0].numpy()
        out[i] = out[i] @ rot
        out[i, :3, 3] += trans * d / np.linalg.norm(d)
    return out


def align_cameras(
    gaussians, views, steps: int = 100, lr: float = 2e-3, extent: float = 1.0, background=(0.0, 0.0, 0.0), backend: str = "cpu", eps2d: float = EPS2D
) -> np.ndarray:
    """Fit a rigid correction to every camera of ``views`` with ``gaussians`` frozen (L1 photometric loss;
    the held-out-view protocol of pose-free methods such as InstantSplat, whose scene frame is only defined
    up to the training cameras' gauge). Returns the aligned ``(N, 4, 4)`` camera-to-world."""
    from see3d.splat.rasterize import render

    g = gaussians.detach()
    K, c2w = views.cameras.torch(dtype=g.means.dtype)
    pc = PoseCorrections(len(views), extent, lr, lr, start=0, warmup=max(1, steps // 10), iters=steps, gauge="none")
    images = torch.as_tensor(views.images, dtype=g.means.dtype)
    bg = torch.as_tensor(background, dtype=g.means.dtype)
    for step in range(steps):
        for i in range(len(views)):
            out = render(g, K[i], views.cameras.width, views.cameras.height, c2w=pc.apply(i, c2w[i]), background=bg, backend=backend, eps2d=eps2d)
            (out["rgb"] - images[i]).abs().mean().backward()
        pc.step(step)
    return pc.refined(c2w.double()).numpy()
