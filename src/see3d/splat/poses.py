"""Joint camera refinement: per-view se(3) corrections optimised with the splats (InstantSplat-style).

Generated views are rendered from nominal cameras but their content is only approximately consistent
with them; a small rigid correction per view absorbs that misalignment instead of blurring the splats.

The refined camera of view ``i`` is ``c2w_i @ exp([rho_i, omega_i])``: a rotation ``omega`` (axis-angle,
radians) about the camera's own centre and a translation ``rho`` along its own axes (world units), both
zero at the start. View 0 is never corrected (it fixes the gauge: the splats stay in the frame of the first
input camera). Corrections get their own Adam optimiser, learning rates (rotation in radians, translation
times the scene extent), a start step and a linear warm-up, so the splats roughly fit the views before
the cameras move.

The exponential map is written here (a few lines, closed form with Taylor terms near zero, exact autograd)
rather than taken from lietorch or pypose: both are large dependencies (lietorch builds CUDA extensions)
for one 6-vector -> 4x4 function.
"""

from __future__ import annotations

import math

import numpy as np
import torch

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


def rotation_angle_deg(R: np.ndarray | torch.Tensor) -> np.ndarray:
    """(..., 3, 3) rotations -> their angles in degrees (numerically safe near 0 and 180)."""
    R = np.asarray(R.detach().cpu() if isinstance(R, torch.Tensor) else R, dtype=np.float64)
    tr = np.trace(R, axis1=-2, axis2=-1)
    return np.degrees(np.arccos(np.clip((tr - 1) / 2, -1.0, 1.0)))


class PoseCorrections:
    """Per-view corrections ``(N, 6)`` with their optimiser and schedule (see the module docstring).

    Args:
        n: number of training views.
        extent: scene extent (translation learning rate is ``lr_trans * extent``).
        lr_rot, lr_trans: peak Adam learning rates (rad, extent units).
        start, warmup: first step that moves the cameras, steps of the linear ramp to the peak rate;
            the rate then decays exponentially to 1% of the peak at ``iters``.
        fix_first: keep view 0 as given (the gauge while training; off when aligning held-out views).
    """

    def __init__(self, n: int, extent: float, lr_rot: float, lr_trans: float, start: int, warmup: int, iters: int, device=None, fix_first: bool = True):
        self.fix_first = fix_first
        self.rot = torch.zeros(n, 3, device=device, requires_grad=True)
        self.trans = torch.zeros(n, 3, device=device, requires_grad=True)
        self.peak = {"rot": float(lr_rot), "trans": float(lr_trans) * float(extent)}
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

    def apply(self, i: int, c2w: torch.Tensor) -> torch.Tensor:
        """The refined (4, 4) camera-to-world of view ``i`` (differentiable in the correction; view 0 as given)."""
        if i == 0 and self.fix_first:
            return c2w
        xi = torch.cat([self.trans[i], self.rot[i]])[None].to(c2w.dtype)
        return c2w @ se3_exp(xi)[0]

    def step(self, step: int) -> None:
        """One Adam step of the corrections at the scheduled rate (no-op before ``start``), then zero the grads."""
        f = self.factor(step)
        if f > 0:
            for grp in self.optimizer.param_groups:
                grp["lr"] = self.peak[grp["name"]] * f
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def refined(self, c2w: torch.Tensor) -> torch.Tensor:
        """(N, 4, 4) nominal camera-to-world -> refined ones (view 0 unchanged)."""
        xi = torch.cat([self.trans, self.rot], -1).to(c2w.dtype)
        if self.fix_first:
            xi[0] = 0
        return c2w @ se3_exp(xi)

    @torch.no_grad()
    def report(self, names: list[str], extent: float) -> list[dict]:
        """Per view: the correction's rotation (degrees) and translation (world units and % of the extent)."""
        rot = rotation_angle_deg(se3_exp(torch.cat([torch.zeros_like(self.rot), self.rot], -1).double())[:, :3, :3])
        xi = torch.cat([self.trans, self.rot], -1).double()
        t = se3_exp(xi)[:, :3, 3].norm(dim=-1).cpu().numpy()
        return [
            {"view": n, "rotation_deg": float(r), "translation": float(d), "translation_pct_extent": float(100 * d / extent)}
            for n, r, d in zip(names, rot, t)
        ]

    # ------------------------------------------------------------------ checkpoints
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {"pose/rot": self.rot.detach().cpu(), "pose/trans": self.trans.detach().cpu()}
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
        for grp in self.optimizer.param_groups:
            key = f"pose_adam/{grp['name']}"
            if f"{key}/exp_avg" in tensors:
                p = grp["params"][0]
                self.optimizer.state[p] = {
                    "step": tensors[f"{key}/step"].reshape(()).clone(),
                    "exp_avg": tensors[f"{key}/exp_avg"].to(p.device),
                    "exp_avg_sq": tensors[f"{key}/exp_avg_sq"].to(p.device),
                }


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


def align_cameras(gaussians, views, steps: int = 100, lr: float = 2e-3, extent: float = 1.0, background=(0.0, 0.0, 0.0), backend: str = "cpu") -> np.ndarray:
    """Fit a rigid correction to every camera of ``views`` with ``gaussians`` frozen (L1 photometric loss;
    the held-out-view protocol of pose-free methods such as InstantSplat, whose scene frame is only defined
    up to the training cameras' gauge). Returns the aligned ``(N, 4, 4)`` camera-to-world."""
    from see3d.splat.rasterize import render

    g = gaussians.detach()
    K, c2w = views.cameras.torch(dtype=g.means.dtype)
    pc = PoseCorrections(len(views), extent, lr, lr, start=0, warmup=max(1, steps // 10), iters=steps, fix_first=False)
    images = torch.as_tensor(views.images, dtype=g.means.dtype)
    bg = torch.as_tensor(background, dtype=g.means.dtype)
    for step in range(steps):
        for i in range(len(views)):
            out = render(g, K[i], views.cameras.width, views.cameras.height, c2w=pc.apply(i, c2w[i]), background=bg, backend=backend)
            (out["rgb"] - images[i]).abs().mean().backward()
        pc.step(step)
    return pc.refined(c2w.double()).numpy()
