"""`ReconstructConfig`: every setting of Gaussian-splat optimisation (``see3d reconstruct`` exposes them).

Schedules default to ``None`` = scaled from ``iters`` with the proportions of the reference 3DGS
schedule (30k iterations: densify every 100 from 500 to 15k, opacity reset every 3k, one more SH band
every 1k), so short CPU runs keep the same shape of training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from see3d.config import check_fields
from see3d.splat.project import EPS2D

COARSE_MIN_SIDE = 128  # coarse-to-fine needs images at least this large (64 px on the short side when halved)
REGISTERED_POSE_PRIOR = 100.0  # pose_prior default after depth registration (benchmarks/pose_refine.py; chosen on seed 0, see README)


@dataclass
class ReconstructConfig:
    iters: int = field(default=3000, metadata={"min": 1, "help": "optimisation steps (one training view per step)"})
    sh_degree: int = field(default=3, metadata={"help": "spherical-harmonics degree of the result (0..3)"})
    backend: Literal["auto", "cpu", "torch", "gsplat"] = field(
        default="auto", metadata={"help": "rasterizer: auto (gsplat on CUDA, numba on CPU), cpu, gsplat, torch (slow reference); must fit --device"}
    )
    device: str = field(default="auto", metadata={"help": "torch device: auto (CUDA when gsplat runs there, else CPU), cpu, cuda, cuda:1, ..."})
    seed: int = field(default=0, metadata={"help": "random seed (view order, random init, splits)"})
    # initialisation
    init: Literal["auto", "points", "depth", "random"] = field(
        default="auto", metadata={"help": "initial splats: given SfM points, unprojected metric depth, or random in the view frusta (auto: first available)"}
    )
    init_points: int = field(default=100_000, metadata={"min": 1, "help": "number of initial splats for depth/random init"})
    init_opacity: float = field(default=0.1, metadata={"help": "initial opacity of every splat"})
    # loss
    lambda_dssim: float = field(default=0.2, metadata={"min": 0, "max": 1, "help": "weight of D-SSIM against L1"})
    lambda_lpips: float = field(default=0.0, metadata={"min": 0, "help": "weight of an LPIPS term added to the loss (0 = off); tolerates small inconsistencies between generated views"})
    lpips_from: int | None = field(default=None, metadata={"help": "first step with the LPIPS term (default iters/2)"})
    lpips_net: Literal["alex", "vgg"] = field(default="alex", metadata={"help": "LPIPS backbone"})
    lpips_weights: list[str] | None = field(
        default=None, metadata={"help": "LPIPS weight files/folders (lpips' alex.pth + torchvision's backbone); default: the lpips package and the torch hub cache"}
    )
    background: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0], metadata={"help": "background colour behind the splats (RGB in [0,1])"})
    random_background: bool | None = field(default=None, metadata={"help": "random background colour every step (default: on with --sparse)"})
    scale_reg: float | None = field(default=None, metadata={"help": "weight of a penalty on splat size / scene extent (default: 0.01 with --sparse, else 0)"})
    # learning rates (per parameter, Adam)
    lr_means: float = field(default=1.6e-4, metadata={"help": "initial position learning rate, times the scene extent"})
    lr_means_final: float = field(default=1.6e-6, metadata={"help": "final position learning rate (exponential decay), times the scene extent"})
    lr_sh_dc: float = field(default=2.5e-3, metadata={"help": "learning rate of the SH DC colour"})
    lr_sh_rest: float = field(default=1.25e-4, metadata={"help": "learning rate of the higher SH bands"})
    lr_opacity: float = field(default=0.05, metadata={"help": "learning rate of the opacity logits"})
    lr_scales: float = field(default=5e-3, metadata={"help": "learning rate of the log-scales"})
    lr_quats: float = field(default=1e-3, metadata={"help": "learning rate of the rotations"})
    sh_interval: int | None = field(default=None, metadata={"help": "steps between SH-degree increases (default iters/30)"})
    # coarse-to-fine (CPU speed): early steps on 2x-downsampled images
    coarse_until: int | None = field(
        default=None,
        metadata={"help": "steps rendered at half resolution before full resolution (default: 2 iters/3 on the CPU rasterizer, 0 on gsplat or with "
                "--refine-cameras; 0 = off; never for images under 128 px)"},
    )
    eps2d: float = field(
        default=EPS2D,
        metadata={"min": 0, "help": "screen-space dilation added to every splat's 2D covariance, pixels^2 (3DGS and gsplat: 0.3); used for training and for "
                "this run's evaluation and renders. Lower values (0.05) fit sharper and bias joint camera refinement less (benchmarks/pose_refine.py)"},
    )
    # adaptive density control
    sparse: bool = field(default=False, metadata={"help": "few input views: no densification, random background, scale regularisation"})
    densify: bool | None = field(default=None, metadata={"help": "clone/split/prune splats (default: on unless --sparse)"})
    densify_from: int | None = field(default=None, metadata={"help": "first densification step (default iters/60)"})
    densify_until: int | None = field(default=None, metadata={"help": "last densification step (default iters/2)"})
    densify_every: int | None = field(default=None, metadata={"help": "steps between densifications (default max(25, iters/300))"})
    densify_grad: float = field(default=2e-4, metadata={"help": "view-space positional gradient (NDC) above which splats are cloned/split"})
    percent_dense: float = field(default=0.01, metadata={"help": "splats larger than this fraction of the scene extent are split, smaller ones cloned"})
    prune_opacity: float = field(default=0.005, metadata={"help": "prune splats whose opacity falls below this"})
    opacity_reset_every: int | None = field(default=None, metadata={"help": "steps between opacity resets while densifying (default max(100, iters/10); 0 = never)"})
    max_gaussians: int = field(default=1_000_000, metadata={"min": 1, "help": "densification stops adding splats past this count"})
    # joint camera refinement (see3d.splat.poses)
    refine_cameras: bool | None = field(
        default=None, metadata={"help": "optimise a rigid correction per training view with the splats (default: on for `see3d generate` output, off for calibrated datasets)"}
    )
    lr_pose_rot: float = field(default=2e-3, metadata={"help": "peak learning rate of the camera rotation corrections (radians, about a pivot at the median scene depth ahead of each camera)"})
    lr_pose_trans: float = field(default=2e-3, metadata={"help": "peak learning rate of the camera translation corrections, times the pivot depth (the scene extent for a camera that sees no splats)"})
    pose_start: int | None = field(default=None, metadata={"help": "first step that moves the cameras (default 0: before the splats settle around the nominal ones)"})
    pose_warmup: int | None = field(default=None, metadata={"help": "steps of linear learning-rate warm-up for the cameras (default iters/20)"})
    pose_gauge: Literal["datum", "fixed"] = field(
        default="datum",
        metadata={"help": "datum: correct every camera, then express splats and cameras in view 0's given frame; fixed: never correct view 0 (slower to settle)"},
    )
    pose_prior: float | None = field(
        default=None,
        metadata={"min": 0, "help": "weight of a penalty on the squared camera corrections (radians^2, pivot depths^2) added to each view's loss "
                  f"(default: {REGISTERED_POSE_PRIOR:g} after depth registration, which leaves the corrections little to do, else 0)"},
    )
    register_cameras: bool = field(
        default=False,
        metadata={"help": "with camera refinement, first register the cameras to each other by warping every view with its metric depth "
                  "(see3d.splat.register): for depth that is measured or exact (RGB-D, synthetic); estimated depth with errors of "
                  "about 10% misleads it (README), so it is off by default, also for see3d generate output"},
    )
    register_steps: int = field(default=300, metadata={"min": 1, "help": "steps of camera registration"})
    # bookkeeping
    checkpoint_every: int = field(default=1000, metadata={"min": 0, "help": "steps between checkpoints (0 = only at the end)"})

    def __post_init__(self) -> None:
        check_fields(self)
        if not 0 <= self.sh_degree <= 3:
            raise ValueError(f"sh_degree must be 0..3, got {self.sh_degree}")
        if len(self.background) != 3:
            raise ValueError(f"background must have 3 values, got {self.background}")
        if not 0 < self.init_opacity < 1:
            raise ValueError(f"init_opacity must be in (0, 1), got {self.init_opacity}")

    # ------------------------------------------------------------------ resolved schedule
    @property
    def use_densify(self) -> bool:
        return (not self.sparse) if self.densify is None else bool(self.densify)

    @property
    def use_random_background(self) -> bool:
        return self.sparse if self.random_background is None else bool(self.random_background)

    @property
    def scale_reg_weight(self) -> float:
        return (0.01 if self.sparse else 0.0) if self.scale_reg is None else float(self.scale_reg)

    def resolved_for(self, generated: bool) -> ReconstructConfig:
        """This config with ``refine_cameras=None`` made concrete: on when the views include generated ones."""
        if self.refine_cameras is not None:
            return self
        import dataclasses

        return dataclasses.replace(self, refine_cameras=bool(generated))

    def coarse_steps(self, backend: str, width: int, height: int) -> int:
        """Steps rendered at half resolution: ``coarse_until``, by default the first two thirds of the run on
        the CPU rasterizer (each coarse step composites 4x fewer pixels; chosen on LLFF fern, where 2/3 and 1/2
        gave 23.45 and 23.49 dB held out, against 23.16 for the code before, which had no coarse phase) and none on gsplat (GPU steps are cheap).
        None by default when cameras are refined: the splats densified at half resolution are coarser, and the
        camera corrections bend to what they cannot represent (``benchmarks/pose_refine.py`` seed 2: 0.37 deg
        mean rotation error with the coarse phase, 0.15 without; keeping the pose learning rate up through the
        fine phase or scaling the dilation to fine pixels did not undo it), at 1.4-1.9x the CPU time; on the
        held-out seeds 1, 3, 4 the mean error is about the same (0.20 against 0.21 deg), the worst case is gone.
        Never for images under ``COARSE_MIN_SIDE`` pixels on their short side (too little left to fit)."""
        if min(width, height) < COARSE_MIN_SIDE:
            return 0
        if self.coarse_until is not None:
            return max(0, self.coarse_until)
        return 2 * self.iters // 3 if backend == "cpu" and not self.refine_cameras else 0

    @property
    def lpips_start(self) -> int:
        return self.iters // 2 if self.lpips_from is None else self.lpips_from

    def pose_prior_weight(self, registered: bool) -> float:
        """``pose_prior`` made concrete: :data:`REGISTERED_POSE_PRIOR` when the cameras were registered, else 0."""
        if self.pose_prior is not None:
            return float(self.pose_prior)
        return REGISTERED_POSE_PRIOR if registered else 0.0

    @property
    def registers(self) -> bool:
        """Whether cameras are registered with depth before training (``register_cameras`` with camera refinement;
        :func:`see3d.splat.register.register_views` refuses views without metric depth)."""
        return bool(self.refine_cameras) and self.register_cameras

    @property
    def pose_schedule(self) -> tuple[int, int]:
        """(start, warm-up steps) of the camera corrections."""
        start = 0 if self.pose_start is None else self.pose_start
        warm = max(1, self.iters // 20) if self.pose_warmup is None else max(1, self.pose_warmup)
        return start, warm

    @property
    def sh_every(self) -> int:
        return max(1, self.iters // 30) if self.sh_interval is None else max(1, self.sh_interval)

    @property
    def densify_schedule(self) -> tuple[int, int, int]:
        """(from, until, every) steps; until = 0 when densification is off."""
        every = max(25, self.iters // 300) if self.densify_every is None else max(1, self.densify_every)
        start = max(every, self.iters // 60) if self.densify_from is None else self.densify_from
        until = self.iters // 2 if self.densify_until is None else self.densify_until
        return start, (until if self.use_densify else 0), every

    @property
    def opacity_reset_interval(self) -> int:
        # opacities need ~100 steps to recover from a reset, so short runs reset less often than 3DGS's 1/10
        return max(100, self.iters // 10) if self.opacity_reset_every is None else self.opacity_reset_every
