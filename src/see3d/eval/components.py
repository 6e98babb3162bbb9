"""The real components the protocols run with: 3DGS reconstruction and See3D generation.

- :func:`splat_reconstruct` fits Gaussian splats with :class:`see3d.splat.optimize.SplatTrainer` and
  renders them with :func:`see3d.splat.rasterize.render`.
- :func:`mvd_generate` loads a See3D multi-view diffusion folder and generates views at target cameras
  through the warping-based generation pipeline (:mod:`see3d.pipelines.generation`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from see3d.errors import See3DError
from see3d.eval.protocols import GenerateFn, ReconstructFn, ReconstructRequest, RenderFn
from see3d.io.cameras import Cameras
from see3d.io.views import Views
from see3d.log import get_logger

log = get_logger(__name__)


def splat_reconstruct(base=None, device: str = "auto", sparse_max_views: int = 9, show_progress: bool = True) -> ReconstructFn:
    """A reconstruct component: 3DGS optimisation with ``base`` (a ``ReconstructConfig``; default settings when None).

    ``device`` and ``base.backend`` decide where the splats train and render
    (:func:`see3d.splat.rasterize.resolve_splat_placement`; "auto": CUDA with gsplat when it runs there, else CPU).

    The request decides ``iters`` (when given), ``seed`` and ``sparse``: fits of at most
    ``sparse_max_views`` views, all real (none generated), use the optimiser's sparse-input settings (no
    densification, random background, scale regularisation). Initial splats: the request's points when
    given (dense protocol on COLMAP scenes), else random in the view frusta, between the LLFF near/far
    bounds when known. Camera refinement follows the config, by default on when generated views are present
    (the first view, an input, fixes the gauge).
    """

    def reconstruct(req: ReconstructRequest) -> RenderFn:
        import torch

        from see3d.splat.config import ReconstructConfig
        from see3d.splat.optimize import SplatTrainer
        from see3d.splat.rasterize import render

        sparse = len(req.views) <= sparse_max_views and len(req.views) == req.num_inputs
        cfg = dataclasses.replace(base or ReconstructConfig(), device=device, seed=req.seed, sparse=sparse)
        if req.iters is not None:
            cfg = dataclasses.replace(cfg, iters=req.iters)
        cfg = cfg.resolved_for(generated=len(req.views) > req.num_inputs)  # camera refinement for generated views
        bounds = None
        if req.bounds is not None:
            b = np.asarray(req.bounds, dtype=np.float64)
            bounds = (float(b[:, 0].min()), float(b[:, 1].max()))
        trainer = SplatTrainer.create(req.views, cfg, req.points, req.point_colors, bounds, show_progress=show_progress)
        log.info("3DGS: %d views (%d real), %d steps, sparse=%s, backend %s", len(req.views), req.num_inputs, cfg.iters, sparse, trainer.backend)
        trainer.train(show_progress=show_progress)
        g = trainer.sp.gaussians().detach()
        bg = torch.tensor(cfg.background, dtype=torch.float32, device=g.device)

        @torch.no_grad()
        def render_fn(cameras: Cameras) -> np.ndarray:
            K, c2w = cameras.torch(device=g.device)
            out = [render(g, K[i], cameras.width, cameras.height, c2w=c2w[i], background=bg, backend=trainer.backend)["rgb"] for i in range(len(cameras))]
            return torch.stack(out).clamp(0, 1).cpu().numpy()

        return render_fn

    return reconstruct


def mvd_generate(
    weights: str | Path | None,
    variant: str = "sparse",
    device: str = "cpu",
    seed: int = 0,
    depth_model: str | Path | None = None,
    steps: int = 50,
    guidance: float = 2.0,
    size: int = 512,
    chunk_size: int = 4,
    dtype: str = "auto",
    fill: str = "mvd",
    depth_dir: str | Path | None = None,
    depth_kind: str = "auto",
    align=None,
    keep_known: bool = False,
    fill_smoothing: float = 0.0,
) -> GenerateFn:
    """A generate component: See3D's warp-and-fill loop (:func:`see3d.pipelines.generation.generate_along_path`).

    Args:
        weights: a See3D model folder in the official layout (or ``write_tiny_see3d``'s, or the shipped
            small model); loaded on first use. Unused with ``fill="telea"``.
        variant: which UNet, ``"sparse"`` (several references) or ``"single"``.
        depth_model: a local transformers depth model folder.
        depth_dir: depth maps per image instead (``<stem>.npy`` / ``.png`` matched to the view names; a
            sub-folder named after the scene is used when it exists); ``depth_kind`` says what they hold.
        size: working resolution (long side); generated images are resized back to the inputs' size.
        device, dtype: of the diffusion and depth models (:func:`see3d.device.resolve_device_dtype`).
        fill: ``"mvd"`` (the model at ``weights``) or ``"telea"`` (OpenCV inpainting, no weights).
        align: a :class:`see3d.geometry.anchor_align.AlignConfig` (default settings when None).

    Depth of the input views, in the scene's units (warping needs it): the dataset's own depth maps when
    the views have them (synthetic scenes); else the given maps or ``depth_model``'s predictions, aligned
    per view to keypoint anchors triangulated with the dataset's cameras
    (:func:`see3d.pipelines.view_depth.reference_depths`; an :class:`AlignmentError` names a view that
    cannot be aligned). A single input view has no anchors: its depth must be metric.
    Generated views get ``depth_model``'s aligned prediction; with given maps (inputs only) they keep their
    warped depth. The per-view alignment statistics of the last call are in ``generate.alignment``.
    """
    from see3d.geometry.anchor_align import AlignConfig

    align = align or AlignConfig()
    state: dict = {}

    def pipe():
        if "pipe" not in state:
            from see3d.pipelines.loader import load_see3d

            state["pipe"] = load_see3d(weights, variant, device=device, dtype=dtype)
        return state["pipe"]

    def backend(scene_key: str = ""):
        from see3d.depth.select import make_backend

        if depth_dir is not None:
            sub = Path(depth_dir) / scene_key
            return make_backend(given=sub if scene_key and sub.is_dir() else Path(depth_dir), kind=depth_kind)
        if "depth" not in state:
            if depth_model is None:
                raise See3DError("generation needs depth of the input views: this scene has no depth maps, so give --depth-model DIR or --depth DIR")
            state["depth"] = make_backend(model=depth_model, kind=depth_kind, device=device, dtype=dtype)
        return state["depth"]

    def filler():
        from see3d.pipelines.generation import MVDFiller, TeleaFiller

        if fill == "telea":
            return TeleaFiller()
        if weights is None:
            raise See3DError("fill 'mvd' needs --mvd-weights DIR (or --fill telea / --fill small)")
        from see3d.pipelines.sampler_options import SamplerOptions

        return MVDFiller(pipe(), steps, guidance, seed, options=SamplerOptions(keep_known=keep_known, fill_smoothing=fill_smoothing))

    def generate(inputs: Views, targets: Cameras) -> Views:
        from see3d.pipelines.generation import generate_along_path, resize_view, working_size

        W0, H0 = inputs.cameras.width, inputs.cameras.height
        W, H = working_size(W0, H0, size)
        key = getattr(generate, "scene", "")
        refs, stats, store = _reference_views(inputs, W, H, lambda: backend(key), align)
        new_depth = None if inputs.depth is not None or depth_dir is not None else backend()
        res = generate_along_path(refs, targets.resized(W, H), filler(), new_depth, chunk_size, align=align, anchors=store)
        generate.alignment = stats + res.alignment
        gen = res.views.images[res.num_inputs :]
        imgs = np.stack([resize_view(im, W0, H0) for im in gen])
        return Views(imgs, targets, names=[f"gen_{i:03d}" for i in range(len(targets))])

    generate.alignment = []
    generate.scene = ""
    return generate


def _reference_views(inputs: Views, W: int, H: int, backend, align) -> tuple[Views, list[dict], object]:
    """The input views at ``W x H`` with z-depth in scene units (see :func:`mvd_generate`), their
    alignment statistics and anchor store (None when the dataset's depth is used)."""
    from see3d.pipelines.generation import resize_view
    from see3d.pipelines.view_depth import predict, reference_depths, resize_depth

    cams = inputs.cameras.resized(W, H)
    imgs = np.stack([resize_view(im, W, H) for im in inputs.images])
    names = list(inputs.names)
    if inputs.depth is not None:
        depth = np.stack([resize_depth(d, W, H) for d in inputs.depth])
        return Views(imgs, cams, depth, True, None, names), [{"view": n, "method": "dataset depth"} for n in names], None
    be = backend()
    preds = [predict(be, imgs[i], names[i], cams[i]) for i in range(len(imgs))]
    if len(imgs) == 1 and not preds[0].is_metric:
        raise See3DError("single input view without depth maps: the scene scale cannot be recovered from a relative depth")
    bigger = inputs.cameras.width > W  # find keypoints at the dataset's resolution when it is the larger one
    depth, stats, store = reference_depths(imgs, cams, preds, names, align, None, inputs.images if bigger else None, inputs.cameras if bigger else None)
    return Views(imgs, cams, depth, True, None, names), stats, store
