"""Fit Gaussian splats to posed images (3DGS optimisation) with checkpoints that resume exactly.

Loss: ``(1 - lambda) L1 + lambda (1 - SSIM)`` (lambda = 0.2, SSIM with the 3DGS 11x11 Gaussian window
and zero padding), plus optionally ``lambda_lpips * LPIPS`` from ``lpips_from`` on (See3D's loss for
generated views; masked pixels are replaced by the target's so they neither count nor get gradient) and a
scale penalty for sparse inputs. With ``refine_cameras`` a rigid correction per view is optimised jointly
(:mod:`see3d.splat.poses`), with ``register_cameras`` after the cameras were registered with the views'
metric depth (:meth:`SplatTrainer.create`, :mod:`see3d.splat.register`); a prior on the corrections
(``pose_prior``) then keeps them near the registered cameras. Adam with one learning rate per
parameter; the position learning rate decays exponentially and is scaled by the scene extent. One
training view per step, in reshuffled epochs. Adaptive density control: :mod:`see3d.splat.densify`.
Coarse-to-fine: on the CPU rasterizer the first ``cfg.coarse_steps`` steps fit 2x-downsampled views
(:func:`half_resolution`), which composites 4x fewer pixels per step.

Checkpoints are ``checkpoint.safetensors`` (parameters, Adam moments, densification statistics,
torch RNG state) plus ``checkpoint.json`` (step, config, numpy RNG state); both written atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from see3d.errors import InputError
from see3d.io.atomic import atomic_path, write_json_atomic
from see3d.io.cameras import Cameras
from see3d.io.views import Views
from see3d.log import get_logger, progress
from see3d.metrics import ssim
from see3d.splat.config import ReconstructConfig
from see3d.splat.densify import FIELDS, SplatParams, densify_and_prune
from see3d.splat.gaussians import Gaussians
from see3d.splat.init import points_from_depth, points_in_frusta, scene_extent
from see3d.splat.poses import PoseCorrections, correction_report, pivot_depths
from see3d.splat.rasterize import render, resolve_splat_placement

log = get_logger(__name__)
CKPT_VERSION = 2


def views_digest(views: Views) -> str:
    """A fingerprint of training data (names, cameras, and every image at a 1/4 pixel stride), stored in a
    checkpoint so a resume on other data is refused."""
    h = hashlib.sha1()
    h.update("\0".join(views.names).encode())
    for a in (views.cameras.K, views.cameras.c2w, np.asarray([views.cameras.width, views.cameras.height])):
        h.update(np.ascontiguousarray(a, dtype=np.float64).round(9).tobytes())
    h.update(np.ascontiguousarray(views.images[:, ::4, ::4], dtype=np.float32).tobytes())
    return h.hexdigest()[:20]


def initial_gaussians(
    views: Views,
    cfg: ReconstructConfig,
    rng: np.random.Generator,
    points: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    bounds: tuple[float, float] | None = None,
) -> Gaussians:
    """Initial splats by ``cfg.init`` ("auto": given points, else metric depth, else random in the frusta)."""
    mode = cfg.init
    if mode == "auto":
        mode = "points" if points is not None and len(points) else "depth" if views.depth is not None and views.depth_is_metric else "random"
    if mode == "points":
        if points is None or not len(points):
            raise InputError(None, "init='points' but no initial points were given (no SfM points in the data)")
        pts, cols, scales = np.asarray(points, np.float64), None if colors is None else np.asarray(colors, np.float64), None
    elif mode == "depth":
        if views.depth is None:
            raise InputError(None, "init='depth' but the views have no depth maps")
        pts, cols, scales = points_from_depth(views, cfg.init_points, rng)
    else:
        near, far = bounds if bounds is not None else (None, None)
        pts, cols, scales = points_in_frusta(views, cfg.init_points, rng, near, far)
    log.info("init: %d splats from %s", len(pts), mode)
    return Gaussians.from_points(pts, cols, scales=scales, opacity=cfg.init_opacity, sh_degree=cfg.sh_degree)


def half_resolution(images: torch.Tensor, masks: torch.Tensor | None, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Views at half resolution for coarse-to-fine training: ``images (N, H, W, 3)`` averaged over 2x2
    pixels (an odd last row/column is dropped), ``masks (N, H, W)`` kept where all four pixels are, and
    intrinsics ``K (N, 3, 3)`` scaled by 1/2 (pixel ``j`` covers fine pixels ``2j, 2j + 1``, so the
    +0.5 pixel-centre convention maps exactly)."""
    small = torch.nn.functional.avg_pool2d(images.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1).contiguous()
    small_masks = None
    if masks is not None:
        small_masks = (-torch.nn.functional.max_pool2d(-(masks.to(torch.float32)[:, None]), 2))[:, 0] > 0.5
    scale = torch.tensor([0.5, 0.5, 1.0], dtype=K.dtype, device=K.device)
    return small, small_masks, K * scale[None, :, None]


class SplatTrainer:
    """Optimise splats on ``views``; :meth:`train` runs to ``cfg.iters``, :meth:`save` / :meth:`load` checkpoint."""

    def __init__(
        self, views: Views, cfg: ReconstructConfig, init: Gaussians, extent: float | None = None, given: Views | None = None, registration: dict | None = None
    ):
        """``views`` are trained on; ``given`` (default ``views``) are the views as the user gave them when
        ``views`` carry registered cameras (:meth:`create`), ``registration`` that step's summary."""
        self.views, self.cfg = views, cfg
        self.given, self.registration = (views if given is None else given), registration
        self.device, self.backend = resolve_splat_placement(cfg.device, cfg.backend)
        self.extent = float(extent) if extent is not None else scene_extent(views, init.means.numpy() if init.device.type == "cpu" else None)
        self.images = torch.as_tensor(views.images, device=self.device)
        self.masks = None if views.masks is None else torch.as_tensor(views.masks, device=self.device)
        self.K, self.c2w = views.cameras.torch(device=self.device)
        self.coarse_steps = cfg.coarse_steps(self.backend, views.cameras.width, views.cameras.height)
        self._coarse: tuple | None = None  # half-resolution images, masks, K (made on first use)
        lrs = {
            "means": cfg.lr_means * self.extent,
            "quats": cfg.lr_quats,
            "log_scales": cfg.lr_scales,
            "opacity_logits": cfg.lr_opacity,
            "sh_dc": cfg.lr_sh_dc,
            "sh_rest": cfg.lr_sh_rest,
        }
        self.sp = SplatParams(init.with_sh_degree(cfg.sh_degree).to(self.device, torch.float32), lrs)
        self.lpips = None
        if cfg.lambda_lpips > 0:
            from see3d.perceptual import cached_lpips_weights, load_lpips

            self.lpips = load_lpips(cfg.lpips_weights or cached_lpips_weights(cfg.lpips_net), cfg.lpips_net, self.device)
        self.poses: PoseCorrections | None = None
        if cfg.refine_cameras:
            start, warm = cfg.pose_schedule
            piv = pivot_depths(init.means, self.c2w.cpu(), self.K.cpu(), views.cameras.width, views.cameras.height)
            self.poses = PoseCorrections(len(views), self.extent, cfg.lr_pose_rot, cfg.lr_pose_trans, start, warm, cfg.iters, self.device, cfg.pose_gauge, piv)
        self.step = 0
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self.order: list[int] = []
        self.grad_accum = torch.zeros(len(self.sp), device=self.device)
        self.grad_count = torch.zeros(len(self.sp), device=self.device)
        self.resets = 0
        self.history: list[dict] = []

    # ------------------------------------------------------------------ training
    def _next_view(self) -> int:
        if not self.order:
            self.order = [int(i) for i in self.rng.permutation(len(self.views))]
        return self.order.pop()

    def _means_lr(self) -> float:
        t = min(1.0, self.step / max(1, self.cfg.iters))
        lr0, lr1 = self.cfg.lr_means * self.extent, self.cfg.lr_means_final * self.extent
        return math.exp((1 - t) * math.log(lr0) + t * math.log(lr1))

    def train_step(self) -> dict[str, float]:
        """One optimisation step on one view; returns {"loss", "psnr", "num"}.

        On CPU, torch runs single-threaded during the step (its ops here are small; the numba
        kernels use every core): intra-op threads that wait on each other cost up to 6x wall time on
        a busy machine.
        """
        if self.device.type != "cpu":
            return self._train_step()
        old = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._train_step()
        finally:
            torch.set_num_threads(old)

    def _train_step(self) -> dict[str, float]:
        cfg = self.cfg
        i = self._next_view()
        self.sp.set_lr("means", self._means_lr())
        if cfg.use_random_background:
            bg = torch.rand(3, generator=self.gen).to(self.device)
        else:
            bg = torch.tensor(cfg.background, dtype=torch.float32, device=self.device)
        degree = min(cfg.sh_degree, self.step // cfg.sh_every)
        g = self.sp.gaussians()
        c2w = self.c2w[i] if self.poses is None else self.poses.apply(i, self.c2w[i])
        K, target, mask = self._view(i)
        width, height = target.shape[1], target.shape[0]
        out = render(g, K, width, height, c2w=c2w, background=bg, sh_degree=degree, backend=self.backend, eps2d=cfg.eps2d)
        pred = out["rgb"]
        p4, t4 = pred.permute(2, 0, 1)[None], target.permute(2, 0, 1)[None]
        if mask is None:
            l1 = (pred - target).abs().mean()
            mse = ((pred - target) ** 2).mean()
        else:
            m = mask[..., None].to(pred.dtype)
            denom = m.sum().clamp_min(1) * 3
            l1 = ((pred - target).abs() * m).sum() / denom
            mse = (((pred - target) ** 2) * m).sum() / denom
        d_ssim = 1 - ssim(p4, t4, mask=None if mask is None else mask[None], padding="same")[0]
        loss = (1 - cfg.lambda_dssim) * l1 + cfg.lambda_dssim * d_ssim
        if self.lpips is not None and self.step >= cfg.lpips_start:
            loss = loss + cfg.lambda_lpips * self._lpips(p4, t4, mask)
        if cfg.scale_reg_weight > 0:
            loss = loss + cfg.scale_reg_weight * g.log_scales.exp().max(1).values.mean() / self.extent
        prior = 0.0 if self.poses is None else cfg.pose_prior_weight(self.registration is not None)
        if prior > 0:
            loss = loss + prior * self.poses.magnitude(i)
        loss.backward()

        start, until, every = cfg.densify_schedule
        with torch.no_grad():
            if self.step < until:
                gr = out["means2d"].grad.reshape(-1, 2)
                scale = torch.tensor([width / 2.0, height / 2.0], device=gr.device)
                norms = (gr * scale).norm(dim=-1)
                ids, vis = out["ids"], out["visible"]
                self.grad_accum.index_add_(0, ids[vis], norms[vis])
                self.grad_count.index_add_(0, ids[vis], torch.ones_like(norms[vis]))
        self.sp.optimizer.step()
        self.sp.optimizer.zero_grad(set_to_none=True)
        if self.poses is not None:
            self.poses.step(self.step)
        self.step += 1

        if self.step < until and self.step > start and self.step % every == 0:
            grads = self.grad_accum / self.grad_count.clamp_min(1)
            stats = densify_and_prune(
                self.sp, grads, self.extent, cfg.densify_grad, cfg.percent_dense, cfg.prune_opacity, cfg.max_gaussians, self.resets > 0, self.gen
            )
            log.debug("step %d densify %s -> %d splats", self.step, stats, len(self.sp))
            self.grad_accum = torch.zeros(len(self.sp), device=self.device)
            self.grad_count = torch.zeros(len(self.sp), device=self.device)
        reset = cfg.opacity_reset_interval
        if reset > 0 and self.step < until and self.step % reset == 0:
            self.sp.reset_opacity()
            self.resets += 1
        with torch.no_grad():
            psnr = float(-10 * torch.log10(mse.clamp_min(1e-10)))
        return {"loss": float(loss.detach()), "psnr": psnr, "num": len(self.sp)}

    def _view(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(K (3, 3), image (H, W, 3), mask (H, W) or None)`` of training view ``i`` at this step's
        resolution: half resolution for the first ``coarse_steps`` steps (coarse-to-fine), then full."""
        if self.step >= self.coarse_steps:
            return self.K[i], self.images[i], None if self.masks is None else self.masks[i]
        if self._coarse is None:
            self._coarse = half_resolution(self.images, self.masks, self.K)
        images, masks, K = self._coarse
        return K[i], images[i], None if masks is None else masks[i]

    def _lpips(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """LPIPS of ``(1, 3, H, W)`` images; with ``mask (H, W)`` the prediction is replaced by the target
        outside the mask (no distance, no gradient there) and the distance maps are averaged inside it."""
        if mask is None:
            return self.lpips(pred, target)[0]
        return self.lpips(torch.where(mask[None, None], pred, target), target, mask=mask[None])[0]

    def train(self, out_dir: str | Path | None = None, show_progress: bool = True) -> Gaussians:
        """Run until ``cfg.iters`` steps; checkpoint into ``out_dir`` every ``cfg.checkpoint_every`` steps and at the end."""
        cfg = self.cfg
        bar = progress(total=cfg.iters, initial=self.step, desc="splat", unit="step", disable=None if show_progress else True)
        while self.step < cfg.iters:
            s = self.train_step()
            self.history.append({"step": self.step, **s})
            bar.update(1)
            bar.set_postfix(loss=f"{s['loss']:.4f}", psnr=f"{s['psnr']:.2f}", n=s["num"])
            if self.step % max(1, cfg.iters // 20) == 0:
                log.info("step %d/%d loss %.4f psnr %.2f splats %d", self.step, cfg.iters, s["loss"], s["psnr"], s["num"])
            if out_dir is not None and cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0 and self.step < cfg.iters:
                self.save(out_dir)
        bar.close()
        if out_dir is not None:
            self.save(out_dir)
        return self.gaussians()

    def gaussians(self, device: str | torch.device = "cpu") -> Gaussians:
        """The current splats (detached copies on ``device``; the trainer's own device is ``self.device``), in
        the frame of :meth:`refined_c2w` (view 0's, with camera refinement)."""
        g = self.sp.gaussians().detach().to(device).clone()
        if self.poses is None or self.poses.gauge != "datum":
            return g
        from see3d.splat.transform import transform_gaussians

        return transform_gaussians(g, self.poses.datum(self.c2w))

    def refined_c2w(self) -> np.ndarray:
        """(N, 4, 4) training cameras (OpenCV c2w) with the learned corrections (the nominal ones without refinement)."""
        c2w = torch.as_tensor(self.views.cameras.c2w, dtype=torch.float64)  # the float64 cameras, not the float32 copy trained with
        return (c2w if self.poses is None else self.poses.refined(c2w)).cpu().numpy()

    def pose_report(self) -> list[dict]:
        """Per training view: the correction from the given camera to the refined one (registration and joint
        refinement together; rotation in degrees, translation); empty without refinement."""
        if self.poses is None:
            return []
        return correction_report(self.views.names, self.given.cameras.c2w, self.refined_c2w(), self.extent)

    # ------------------------------------------------------------------ checkpoints
    def save(self, out_dir: str | Path) -> Path:
        """Write ``checkpoint.safetensors`` + ``checkpoint.json`` in ``out_dir`` (atomically). Returns the json path."""
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        tensors: dict[str, torch.Tensor] = {}
        adam_steps = {}
        for grp in self.sp.optimizer.param_groups:
            name, p = grp["name"], grp["params"][0]
            tensors[f"param/{name}"] = p.detach().cpu()
            st = self.sp.optimizer.state.get(p)
            if st:
                tensors[f"adam/{name}/exp_avg"] = st["exp_avg"].cpu()
                tensors[f"adam/{name}/exp_avg_sq"] = st["exp_avg_sq"].cpu()
                adam_steps[name] = float(st["step"])
        tensors["stats/grad_accum"] = self.grad_accum.cpu()
        tensors["stats/grad_count"] = self.grad_count.cpu()
        tensors["rng/torch"] = self.gen.get_state()
        if self.poses is not None:
            tensors.update(self.poses.state_tensors())
        if self.given is not self.views:
            tensors["cameras/registered"] = torch.as_tensor(self.views.cameras.c2w, dtype=torch.float64)
        tensors = {k: v.contiguous() for k, v in tensors.items()}
        data = views_digest(self.given)
        with atomic_path(out_dir / "checkpoint.safetensors") as tmp:
            save_file(tensors, str(tmp), metadata={"step": str(self.step), "data": data})
        state = {
            "version": CKPT_VERSION,
            "step": self.step,
            "data": data,
            "num_views": len(self.views),
            "num_gaussians": len(self.sp),
            "extent": self.extent,
            "resets": self.resets,
            "order": self.order,
            "adam_steps": adam_steps,
            "numpy_rng": self.rng.bit_generator.state,
            "config": asdict(self.cfg),
            "registration": self.registration,
        }
        write_json_atomic(out_dir / "checkpoint.json", state)
        return out_dir / "checkpoint.json"

    @classmethod
    def create(
        cls,
        views: Views,
        cfg: ReconstructConfig,
        points: np.ndarray | None = None,
        colors: np.ndarray | None = None,
        bounds: tuple[float, float] | None = None,
        show_progress: bool = False,
    ) -> SplatTrainer:
        """A trainer for ``views`` with its initial splats (:func:`initial_gaussians`, seeded by ``cfg.seed``).
        When ``cfg.registers``, the cameras are first registered with the views' depth
        (:func:`see3d.splat.register.register_views`) and the splats initialised and trained at the registered
        cameras; :meth:`pose_report` still reports corrections from the given ones."""
        registration, train = None, views
        if cfg.registers:
            from see3d.splat.register import register_views

            train, registration = register_views(views, show_progress, cfg.register_steps)
        init = initial_gaussians(train, cfg, np.random.default_rng(cfg.seed), points, colors, bounds)
        return cls(train, cfg, init, given=views, registration=registration)

    @classmethod
    def load(cls, out_dir: str | Path, views: Views, cfg: ReconstructConfig | None = None) -> SplatTrainer:
        """Resume from a checkpoint in ``out_dir``. ``cfg`` (default: the saved one) may change ``iters``."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        out_dir = Path(out_dir)
        js, st_path = out_dir / "checkpoint.json", out_dir / "checkpoint.safetensors"
        if not js.is_file() or not st_path.is_file():
            raise InputError(out_dir, "no checkpoint to resume (checkpoint.json + checkpoint.safetensors)")
        try:
            state = json.loads(js.read_text())
            tensors = load_file(str(st_path))
            with safe_open(str(st_path), "pt") as f:
                meta = f.metadata() or {}
        except (json.JSONDecodeError, SafetensorError, OSError) as e:
            raise InputError(out_dir, f"checkpoint is unreadable ({e})") from e
        if state.get("version") != CKPT_VERSION:
            raise InputError(js, f"checkpoint version {state.get('version')} is not {CKPT_VERSION}")
        if meta.get("step") != str(state.get("step")):
            raise InputError(out_dir, f"checkpoint.json (step {state.get('step')}) and checkpoint.safetensors (step {meta.get('step')}) "
                                      "come from different saves; start again without --resume")  # fmt: skip
        if state.get("num_views") != len(views):
            raise InputError(js, f"checkpoint was trained on {state.get('num_views')} views, not the {len(views)} given")
        if state.get("data") != views_digest(views) or meta.get("data") != state.get("data"):
            raise InputError(js, "checkpoint was trained on other data (images or cameras differ from the ones given); "
                                 "resume with the same --data, or start again without --resume")  # fmt: skip
        if cfg is None:
            cfg = ReconstructConfig(**state["config"])
        p = {k: tensors[f"param/{k}"] for k in FIELDS}
        if len(p["means"]) != state["num_gaussians"]:
            raise InputError(st_path, "checkpoint.safetensors does not match checkpoint.json (written by different runs?)")
        init = Gaussians(p["means"], p["quats"], p["log_scales"], p["opacity_logits"], torch.cat([p["sh_dc"], p["sh_rest"]], 1))
        if init.sh_degree != cfg.sh_degree:
            raise InputError(js, f"checkpoint has SH degree {init.sh_degree} but the config asks for {cfg.sh_degree}")
        train = views
        if "cameras/registered" in tensors:  # trained at registered cameras (create)
            train = views[:]
            train.cameras = Cameras(views.cameras.K, tensors["cameras/registered"].numpy(), views.cameras.width, views.cameras.height)
        tr = cls(train, cfg, init, extent=state["extent"], given=views, registration=state.get("registration"))
        tr.sp.set_lr("means", 0.0)
        for grp in tr.sp.optimizer.param_groups:
            name, prm = grp["name"], grp["params"][0]
            if f"adam/{name}/exp_avg" in tensors:
                tr.sp.optimizer.state[prm] = {
                    "step": torch.tensor(state["adam_steps"][name], dtype=torch.float32),
                    "exp_avg": tensors[f"adam/{name}/exp_avg"].to(tr.device),
                    "exp_avg_sq": tensors[f"adam/{name}/exp_avg_sq"].to(tr.device),
                }
        tr.grad_accum = tensors["stats/grad_accum"].to(tr.device)
        tr.grad_count = tensors["stats/grad_count"].to(tr.device)
        tr.gen.set_state(tensors["rng/torch"])
        if tr.poses is not None:
            if "pose/rot" not in tensors:
                raise InputError(st_path, "checkpoint has no camera corrections but the config refines cameras")
            tr.poses.load_state_tensors(tensors)
        tr.rng.bit_generator.state = state["numpy_rng"]
        tr.step, tr.resets, tr.order = int(state["step"]), int(state["resets"]), [int(i) for i in state["order"]]
        return tr
