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
        from see3d.splat.optimize import SplatTrainer, initial_gaussians
        from see3d.splat.rasterize import render

        sparse = len(req.views) <= sparse_max_views and len(req.views) == req.num_inputs
        cfg = dataclasses.replace(base or ReconstructConfig(), device=device, seed=req.seed, sparse=sparse)
        if req.iters is not None:
            cfg = dataclasses.replace(cfg, iters=req.iters)
        cfg = cfg.resolved_for(generated=len(req.views) > req.num_inputs)  # camera refinement for generated views
        rng = np.random.default_rng(cfg.seed)
        bounds = None
        if req.bounds is not None:
            b = np.asarray(req.bounds, dtype=np.float64)
            bounds = (float(b[:, 0].min()), float(b[:, 1].max()))
        init = initial_gaussians(req.views, cfg, rng, req.points, req.point_colors, bounds)
        trainer = SplatTrainer(req.views, cfg, init)
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
    weights: str | Path,
    variant: str = "sparse",
    device: str = "cpu",
    seed: int = 0,
    depth_model: str | Path | None = None,
    steps: int = 50,
    guidance: float = 2.0,
    size: int = 512,
    chunk_size: int = 4,
    dtype: str = "auto",
) -> GenerateFn:
    """A generate component: See3D's warp-and-fill loop (:func:`see3d.pipelines.generation.generate_along_path`).

    Args:
        weights: a See3D model folder in the official layout (or ``write_tiny_see3d``'s); loaded on first use.
        variant: which UNet, ``"sparse"`` (several references) or ``"single"``.
        depth_model: a local transformers depth model folder, used when the scene has no depth maps.
        size: working resolution (long side); generated images are resized back to the inputs' size.
        device, dtype: of the diffusion and depth models (:func:`see3d.device.resolve_device_dtype`).

    Depth of the input views, in the scene's units (warping needs it):

    - the dataset's own depth maps when the views have them (synthetic scenes);
    - else ``depth_model``'s predictions, aligned per view to sparse points triangulated by SfM on the
      input images alone (:func:`see3d.geometry.sfm.run_sfm`), whose poses are brought onto the dataset's
      cameras by a similarity (so the depth scale matches the poses). A single input view cannot be
      scaled this way: metric-depth models are then used as they are (the scene must be in metres).
    """
    state: dict = {}

    def pipe():
        if "pipe" not in state:
            from see3d.pipelines.loader import load_see3d

            state["pipe"] = load_see3d(weights, variant, device=device, dtype=dtype)
        return state["pipe"]

    def backend():
        if "depth" not in state:
            if depth_model is None:
                raise See3DError("generation needs depth of the input views: this scene has no depth maps, so give --depth-model DIR")
            from see3d.depth.transformers_backend import TransformersDepth

            state["depth"] = TransformersDepth(depth_model, device=device, dtype=dtype)
        return state["depth"]

    def generate(inputs: Views, targets: Cameras) -> Views:
        from see3d.pipelines.generation import MVDFiller, generate_along_path, resize_view, working_size

        W0, H0 = inputs.cameras.width, inputs.cameras.height
        W, H = working_size(W0, H0, size)
        refs = _reference_views(inputs, W, H, backend)
        new_depth = None if inputs.depth is not None else backend()
        filler = MVDFiller(pipe(), steps, guidance, seed)
        res = generate_along_path(refs, targets.resized(W, H), filler, new_depth, chunk_size)
        gen = res.views.images[res.num_inputs :]
        imgs = np.stack([resize_view(im, W0, H0) for im in gen])
        return Views(imgs, targets, names=[f"gen_{i:03d}" for i in range(len(targets))])

    return generate


def _reference_views(inputs: Views, W: int, H: int, backend) -> Views:
    """The input views at ``W x H`` with z-depth in scene units (see :func:`mvd_generate`)."""
    import cv2

    from see3d.pipelines.generation import first_view_depth, resize_view

    cams = inputs.cameras.resized(W, H)
    imgs = np.stack([resize_view(im, W, H) for im in inputs.images])
    if inputs.depth is not None:
        depth = np.stack([cv2.resize(d.astype(np.float32), (W, H), interpolation=cv2.INTER_NEAREST) for d in inputs.depth])
        return Views(imgs, cams, depth, True, None, list(inputs.names))
    be = backend()
    preds = [be.predict(imgs[i], key=inputs.names[i], focal_px=float(cams.K[i, 0, 0])) for i in range(len(imgs))]
    if len(imgs) == 1:
        if not preds[0].is_metric:
            raise See3DError("single input view without depth maps: the scene scale cannot be recovered from a relative depth model")
        return Views(imgs, cams, first_view_depth(preds[0])[None], True, None, list(inputs.names))
    return Views(imgs, cams, _depth_from_sfm(imgs, cams, preds), True, None, list(inputs.names))


def _depth_from_sfm(imgs: np.ndarray, cams: Cameras, preds: list) -> np.ndarray:
    """Per-view depth aligned to SfM points of the input images, expressed in the frame of ``cams``."""
    import tempfile

    from see3d.geometry.align import align_depth_to_points
    from see3d.geometry.sfm import align_poses_sim3, run_sfm
    from see3d.io.images import save_image

    with tempfile.TemporaryDirectory(prefix="see3d_eval_sfm_") as tmp:
        paths = [Path(tmp) / f"view_{i:03d}.png" for i in range(len(imgs))]
        for p, im in zip(paths, imgs):
            save_image(p, im)
        try:
            sfm = run_sfm(paths, workspace=Path(tmp) / "sfm", camera_model="PINHOLE", known_K=cams.K[0])
        except See3DError as e:
            raise See3DError(f"could not triangulate the input views to scale their depth ({e})") from e
    s, R, t = align_poses_sim3(sfm.cameras, cams)
    out = []
    for i, pred in enumerate(preds):
        pts, _, _ = sfm.observed_points(i)
        pts_w = s * pts @ R.T + t
        al = align_depth_to_points(pred.values, cams[i], pts_w, space=pred.alignment_space)
        d = al.apply(pred.values)
        out.append(np.where(pred.mask & np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32))
    return np.stack(out)
