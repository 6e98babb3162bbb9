"""Warping-based 3D generation: one image, a few images or a text prompt, plus a camera path, in ->
consistent posed views out (the part of See3D the official release never shipped).

The loop (paper §3.3, our design where the paper is silent)::

    input view(s) -> depth (backend) -> keypoint anchors -> alignment (LWLR / global) -> point cache
    for each chunk of path cameras:
        render the cache into the chunk's cameras      -> warped views + hole masks   (forward warp)
        fill the holes with the multi-view diffusion model (references = the input views)
        estimate each new view's depth, align it to its anchors: keypoints matched to earlier views
            (triangulated with the known cameras) and the cache's rendered depth
        add the new views to the cache (only pixels the cache does not explain yet)

Because every chunk is warped from everything generated so far, a path that returns to an earlier
viewpoint shows the same scene there. Sparse inputs get poses from SfM (or given cameras) and their depth
is aligned to anchors triangulated from keypoint matches with those cameras (plus the SfM points); a view
that cannot be aligned is an error naming it (:class:`see3d.geometry.anchor_align.AlignmentError`), and
every view's alignment statistics are in :attr:`GenerationResult.alignment`. Text inputs get their first
image from a local text-to-image model.

Conventions: OpenCV camera-to-world, pixel centres at +0.5, depth = z along the optical axis in scene units.
Images are float32 (H, W, 3) in [0, 1]. Every view is resized to the working resolution (long side
``size``, both sides multiples of 64, intrinsics scaled per axis).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from see3d.config import check_fields
from see3d.depth.base import DepthBackend
from see3d.errors import InputError, See3DError
from see3d.geometry.anchor_align import AlignConfig
from see3d.geometry.anchors import AnchorStore
from see3d.geometry.paths import make_path, scene_depth_from
from see3d.geometry.point_cache import PointCache
from see3d.io.cameras import Cameras
from see3d.io.views import Views
from see3d.log import get_logger, progress
from see3d.pipelines.sampler_options import SamplerOptions
from see3d.pipelines.schedule import STEPS_HELP
from see3d.pipelines.view_depth import new_view_depth, predict, reference_depths

log = get_logger(__name__)


@dataclass
class GenerateConfig:
    """Settings of ``see3d generate`` (the CLI exposes every field)."""

    path: str = field(default="orbit_right", metadata={"help": "camera path preset (see `see3d.geometry.paths.list_paths()`)"})
    n_frames: int = field(default=16, metadata={"min": 1, "help": "number of new views along the path (single view / text)"})
    chunk_size: int = field(
        default=4, metadata={"min": 1, "help": "new views generated per diffusion call; each chunk is warped from all views so far"}
    )
    size: int = field(default=512, metadata={"min": 64, "help": "working resolution: long image side in pixels (rounded to multiples of 64)"})
    fov_deg: float = field(default=55.0, metadata={"gt": 0, "lt": 180, "help": "horizontal field of view (degrees) assumed for a single input image"})
    steps: int = field(default=50, metadata={"min": 1, "help": STEPS_HELP})
    guidance: float = field(default=2.0, metadata={"help": "guidance scale s in (1+s)*cond - s*uncond (official 2.0)"})
    seed: int = field(default=0, metadata={"help": "random seed (results are reproducible for a seed)"})
    fill: Literal["mvd", "telea"] = field(
        default="mvd", metadata={"help": "hole filler: the See3D model, or classical OpenCV Telea inpainting"}
    )
    keep_known: bool = field(
        default=False,
        metadata={"help": "keep warped pixels as they are and let the model fill only the holes (the official method regenerates whole views)"},
    )
    fill_smoothing: float = field(
        default=0.0,
        metadata={"help": "with --keep-known: Gaussian sigma (px) of a low-pass on the generated fill only (removes the block grid and "
                          "grain of a small pixel-space model's fill; 1 for the shipped small model, 0 = off)"},
    )
    path_scale: float = field(default=1.0, metadata={"help": "multiplies the path's default motion (angles and distances)"})
    sparse_path: str = field(
        default="interpolate",
        metadata={"help": "sparse views: 'interpolate' (a smooth path through the input cameras) or a path preset started at the first input camera"},
    )
    depth_tol: float = field(default=0.03, metadata={"gt": 0, "help": "relative depth tolerance of the warping z-buffer"})
    align: AlignConfig = field(default_factory=AlignConfig, metadata={"help": "depth alignment to keypoint anchors (the CLI's --align* options)"})

    def __post_init__(self) -> None:
        check_fields(self)


# ============================================================================================ fillers
class HoleFiller(Protocol):
    """Turns warped views with holes into complete views.

    ``__call__(references (R, H, W, 3), warps (T, H, W, 3), masks (T, H, W) bool True=valid) -> (T, H, W, 3)``,
    all float32 in [0, 1].
    """

    def __call__(self, references: np.ndarray, warps: np.ndarray, masks: np.ndarray) -> np.ndarray: ...


class MVDFiller:
    """The See3D multi-view diffusion pipeline as a hole filler (references stay clean)."""

    def __init__(
        self, pipe, steps: int = 50, guidance: float = 2.0, seed: int = 0, group_size: int | None = None, options: SamplerOptions | None = None
    ):  # fmt: skip
        import torch

        self.pipe, self.steps, self.guidance, self.group_size, self.options = pipe, steps, guidance, group_size, options
        self.generator = torch.Generator("cpu").manual_seed(seed)

    def __call__(self, references: np.ndarray, warps: np.ndarray, masks: np.ndarray) -> np.ndarray:
        import torch

        H, W = warps.shape[1:3]
        refs = torch.from_numpy(np.ascontiguousarray(references)).permute(0, 3, 1, 2).float()
        tgts = torch.from_numpy(np.ascontiguousarray(warps)).permute(0, 3, 1, 2).float()
        msk = torch.from_numpy(np.ascontiguousarray(masks)).float()[:, None]
        out = self.pipe(
            refs, tgts, msk, num_inference_steps=self.steps, guidance_scale=self.guidance, generator=self.generator,
            height=H, width=W, output_type="np", group_size=self.group_size, super_resolution=False, options=self.options,
        )  # fmt: skip
        return np.asarray(out.images, dtype=np.float32)


class TeleaFiller:
    """Classical baseline: fill each warped view's holes by OpenCV Telea inpainting (references unused)."""

    def __init__(self, radius: int = 5):
        self.radius = radius

    def __call__(self, references: np.ndarray, warps: np.ndarray, masks: np.ndarray) -> np.ndarray:
        out = []
        for img, m in zip(warps, masks, strict=True):
            u8 = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
            holes = (~m).astype(np.uint8) * 255
            out.append(cv2.inpaint(u8, holes, self.radius, cv2.INPAINT_TELEA).astype(np.float32) / 255.0)
        return np.stack(out)


MIN_COVERAGE = 0.01
"""A generated view whose warp covers less than this fraction of its pixels sees (almost) nothing of the known
scene: its content is invented, so it is warned about and listed in ``coverage.json``."""


# ============================================================================================ results
@dataclass
class GenerationResult:
    """Inputs plus generated views, with what each generated view was conditioned on.

    Attributes:
        views: all views (inputs first, then generated), with aligned depth and validity masks
            (inputs: all valid; generated: True where the warp provided the pixel).
        num_inputs: how many of ``views`` are inputs (references).
        warps: (T, H, W, 3) warped condition images of the generated views.
        warp_masks: (T, H, W) bool, True = pixel came from the warp.
        coverage: (T,) fraction of each generated view's pixels that the warp provided (what the camera sees of
            the scene known so far; below :data:`MIN_COVERAGE` the view is invented and a warning is logged).
        alignment: per view (inputs, then generated) how its depth was aligned (:class:`AlignStats` as dicts).
    """

    views: Views
    num_inputs: int
    warps: np.ndarray
    warp_masks: np.ndarray
    cache: PointCache | None = None
    coverage: np.ndarray | None = None
    alignment: list[dict] = field(default_factory=list)

    def save(self, out: str | Path) -> Path:
        """Write ``images/ depth/ masks/ transforms.json`` plus the official See3D input layout
        (``official/refs/ref_XXX.png``, ``official/warps/warp_XXX.png`` + ``mask_XXX.png``), the point cache and
        ``coverage.json`` (per generated view: the fraction of pixels the warp provided)."""
        from see3d.io.atomic import write_json_atomic
        from see3d.io.images import save_image

        out = Path(out)
        self.views.save(out)
        for i in range(self.num_inputs):
            save_image(out / "official" / "refs" / f"ref_{i:03d}.png", self.views.images[i])
        for i, (w, m) in enumerate(zip(self.warps, self.warp_masks, strict=True)):
            save_image(out / "official" / "warps" / f"warp_{i:03d}.png", w)
            save_image(out / "official" / "warps" / f"mask_{i:03d}.png", m)
        if self.cache is not None and len(self.cache):
            self.cache.save_ply(out / "points.ply")
        coverage = self.warp_masks.mean(axis=(1, 2)) if self.coverage is None else self.coverage
        names = self.views.names[self.num_inputs :]
        write_json_atomic(out / "coverage.json", {"min_coverage": MIN_COVERAGE, "views": {n: round(float(c), 6) for n, c in zip(names, coverage, strict=True)},
                                                  "seeing_nothing": [n for n, c in zip(names, coverage, strict=True) if c < MIN_COVERAGE]})  # fmt: skip
        return out


# ============================================================================================ helpers
def working_size(width: int, height: int, long_side: int, multiple: int = 64) -> tuple[int, int]:
    """(width, height) with the long side ``long_side`` and both sides rounded to multiples of ``multiple``."""
    s = long_side / max(width, height)
    return max(multiple, int(round(width * s / multiple)) * multiple), max(multiple, int(round(height * s / multiple)) * multiple)


def resize_view(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) float image resized to ``width x height`` (area filter when shrinking, cubic otherwise)."""
    if image.shape[:2] == (height, width):
        return np.asarray(image, dtype=np.float32)
    interp = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_CUBIC
    return np.clip(cv2.resize(np.asarray(image, dtype=np.float32), (width, height), interpolation=interp), 0, 1)


# ============================================================================================ the loop
@dataclass
class ChunkDone:
    """What :func:`generate_along_path` reports after each chunk.

    Attributes:
        index, total: this chunk's number (0-based) and the number of chunks.
        first: index (among the targets) of the chunk's first view.
        images: (T, H, W, 3) the chunk's finished views in [0, 1].
        cameras: their T cameras.
    """

    index: int
    total: int
    first: int
    images: np.ndarray
    cameras: Cameras


def generate_along_path(
    inputs: Views,
    targets: Cameras,
    filler: HoleFiller,
    depth_backend: DepthBackend | None,
    chunk_size: int = 4,
    depth_tol: float = 0.03,
    target_names: list[str] | None = None,
    on_chunk: Callable[[ChunkDone], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    align: AlignConfig | None = None,
    anchors: AnchorStore | None = None,
) -> GenerationResult:
    """The chunked warp -> fill -> depth -> align -> cache loop.

    Args:
        inputs: the reference views with depth already in scene units (``inputs.depth`` required).
        targets: cameras to generate (size = the inputs' size).
        filler: the hole filler (e.g. :class:`MVDFiller`).
        depth_backend: predicts depth of generated views; it is called with ``key = target name``.
            None: generated views keep only the depth warped from the cache (their filled holes add
            no new geometry) -- used when depth comes from files that exist for the inputs only.
        chunk_size: views per filler call.
        on_chunk: called with a :class:`ChunkDone` as each chunk finishes (e.g. to show its views).
        should_stop: polled after each chunk; when it returns True the loop stops there and the result
            holds the targets finished so far (``len(result.warps)`` of them, in path order).
        align: how generated views' depth is aligned (:mod:`see3d.pipelines.view_depth`).
        anchors: the inputs' keypoint anchors (:func:`see3d.pipelines.view_depth.reference_depths`);
            built from ``inputs`` when None.

    Returns:
        the result; ``alignment`` holds the generated views' statistics (callers prepend the inputs').

    Raises:
        AlignmentError: a generated view's depth could not be aligned (unless ``align.fallback`` is "warped").
    """
    if inputs.depth is None:
        raise ValueError("generate_along_path: the input views need depth")
    if (targets.width, targets.height) != (inputs.cameras.width, inputs.cameras.height):
        raise ValueError("generate_along_path: target cameras and inputs differ in image size")
    align = align or AlignConfig()
    names = target_names or [f"gen_{i:04d}" for i in range(len(targets))]
    cache = PointCache(depth_tol=depth_tol)
    for i in range(len(inputs)):
        cache.add_view(inputs.images[i], inputs.depth[i], inputs.cameras[i], None if inputs.masks is None else inputs.masks[i])
    if depth_backend is not None and anchors is None and align.new_view_anchors != "cache":
        anchors = AnchorStore()
        anchors.add_views(inputs.images, inputs.cameras, inputs.masks)
    images, depths, warps, masks, coverage, stats = [], [], [], [], [], []
    starts = list(range(0, len(targets), max(1, chunk_size)))
    for ci, s in enumerate(progress(starts, desc="generate", unit="chunk")):
        cams = targets[s : s + chunk_size]
        r = cache.render(cams)
        w_img, w_mask, w_depth = r.numpy()
        for j, c in enumerate(w_mask.mean(axis=(1, 2))):
            coverage.append(float(c))
            if c < MIN_COVERAGE:
                log.warning("target view %s sees almost nothing of the scene (%.2f%% of its pixels warped); its content is invented "
                            "(check the camera's position and field of view)", names[s + j], 100 * c)  # fmt: skip
        filled = np.asarray(filler(inputs.images, w_img, w_mask), dtype=np.float32)
        if filled.shape != w_img.shape:
            raise See3DError(f"hole filler returned {filled.shape}, expected {w_img.shape}")
        for j in range(len(cams)):
            cam, name = cams[j], names[s + j]
            if depth_backend is None:
                d = np.where(w_mask[j], w_depth[j], 0.0).astype(np.float32)
                stats.append({"view": name, "method": "warped", "note": "no depth model for generated views: warped depth only"})
            else:
                pred = predict(depth_backend, filled[j], name, cam)
                d, st = new_view_depth(pred, filled[j], cam, w_depth[j], w_mask[j], anchors, align, name)
                stats.append(st)
            cache.add_view(filled[j], d, cam)
            images.append(filled[j])
            depths.append(d)
        warps.append(w_img)
        masks.append(w_mask)
        if on_chunk:
            on_chunk(ChunkDone(ci, len(starts), s, filled, cams))
        if should_stop is not None and should_stop():
            break
    n_in, done = len(inputs), len(images)
    if done < len(targets):
        log.info("generation stopped after %d of %d views", done, len(targets))
    names = names[:done]
    all_views = Views(
        np.concatenate([inputs.images, np.stack(images)]),
        Cameras.cat([inputs.cameras, targets[:done]]),
        np.concatenate([inputs.depth, np.stack(depths)]),
        True,
        np.concatenate([np.ones(inputs.images.shape[:3], bool) if inputs.masks is None else inputs.masks, np.concatenate(masks)]),
        list(inputs.names) + names,
    )
    return GenerationResult(all_views, n_in, np.concatenate(warps), np.concatenate(masks), cache, np.asarray(coverage), stats)


# ============================================================================================ entry points
def prepare_single_view(
    image: np.ndarray, depth_backend: DepthBackend, cfg: GenerateConfig, camera: Cameras | None = None, name: str = "input"
) -> tuple[Views, list[dict]]:
    """One input image -> a reference :class:`Views` at the working resolution with depth, and its
    alignment statistics (none: a single view's depth sets the scene scale).

    ``camera``: the image's camera if known (its intrinsics are kept); default: identity pose and
    ``cfg.fov_deg``.
    """
    h0, w0 = image.shape[:2]
    W, H = working_size(w0, h0, cfg.size)
    img = resize_view(image, W, H)
    cam = (camera if camera is not None else Cameras.from_fov(np.eye(4), cfg.fov_deg, w0, h0)).resized(W, H)
    pred = predict(depth_backend, img, name, cam)
    depth, stats, _ = reference_depths(img[None], cam, [pred], [name], cfg.align)
    return Views(img[None], cam, depth, pred.is_metric, None, [name]), stats


def path_cameras(start: Cameras, depth: np.ndarray, cfg: GenerateConfig, preset: str | None = None, **params) -> Cameras:
    """The new cameras of path ``preset`` (default ``cfg.path``) from ``start`` (the start camera itself excluded)."""
    from see3d.geometry.paths import PATHS

    preset = preset or cfg.path
    if preset not in PATHS:
        make_path(preset, start, 2, 1.0)  # raises the clear unknown-preset error
    defaults = dict(PATHS[preset].defaults)
    scaled = {k: v * cfg.path_scale for k, v in defaults.items() if isinstance(v, int | float) and k not in ("pivot", "focus", "rotations")}
    scaled.update(params)
    cams = make_path(preset, start, cfg.n_frames + 1, scene_depth_from(depth), **scaled)
    return cams[1:]


def make_filler(cfg: GenerateConfig, pipe=None) -> HoleFiller:
    """The filler ``cfg.fill`` asks for (``pipe``: a loaded :class:`See3DPipeline` for "mvd")."""
    if cfg.fill_smoothing and (cfg.fill != "mvd" or not cfg.keep_known):
        raise InputError(None, "--fill-smoothing smooths the model's fill between kept warped pixels: it needs --fill mvd and --keep-known")
    if cfg.fill == "telea":
        return TeleaFiller()
    if pipe is None:
        raise InputError(None, "fill='mvd' needs the See3D weights (--weights DIR); use --fill telea for the classical baseline")
    return MVDFiller(pipe, cfg.steps, cfg.guidance, cfg.seed, options=SamplerOptions(keep_known=cfg.keep_known, fill_smoothing=cfg.fill_smoothing))


def _run(refs: Views, ref_stats: list[dict], targets: Cameras, cfg: GenerateConfig, pipe, new_depth, anchors=None) -> GenerationResult:
    res = generate_along_path(refs, targets, make_filler(cfg, pipe), new_depth, cfg.chunk_size, cfg.depth_tol, align=cfg.align, anchors=anchors)
    res.alignment = ref_stats + res.alignment
    return res


def generate_from_image(
    image: np.ndarray,
    depth_backend: DepthBackend,
    cfg: GenerateConfig,
    pipe=None,
    camera: Cameras | None = None,
    targets: Cameras | None = None,
    name: str = "input",
    new_view_depth: DepthBackend | None | str = "same",
    **path_params,
) -> GenerationResult:
    """Single image -> views along ``cfg.path`` (or along ``targets``, any image size: intrinsics are rescaled).

    Args:
        depth_backend: depth of the input image (queried with ``key=name``).
        new_view_depth: depth backend for generated views ("same": ``depth_backend``; None: warped depth only).
    """
    if camera is not None:
        camera.check("the input camera")
    if targets is not None:
        targets.check("the target cameras")
    refs, stats = prepare_single_view(image, depth_backend, cfg, camera, name)
    if targets is None:
        targets = path_cameras(refs.cameras, refs.depth[0], cfg, **path_params)
    else:
        targets = targets.resized(refs.cameras.width, refs.cameras.height)
    new_depth = depth_backend if new_view_depth == "same" else new_view_depth
    return _run(refs, stats, targets, cfg, pipe, new_depth)


def prepare_sparse_views(images: list[np.ndarray], names: list[str], depth_backend: DepthBackend, cfg: GenerateConfig,
                         cameras: Cameras | None = None, image_paths: list[Path] | None = None) -> tuple[Views, np.ndarray, list[dict], AnchorStore]:  # fmt: skip
    """2-6 input images -> reference :class:`Views` with poses (SfM unless ``cameras`` given) and depth aligned
    to keypoint anchors triangulated with those poses (plus the SfM points' observations).

    Returns ``(views, points (P, 3) world anchor/SfM points, per-view alignment statistics, anchor store)``.

    Raises:
        AlignmentError: a view's depth could not be aligned (the message names it).
    """
    if not 2 <= len(images) <= 6:
        raise InputError(None, f"sparse-view generation takes 2 to 6 images, got {len(images)}")
    h0, w0 = images[0].shape[:2]
    if any(im.shape[:2] != (h0, w0) for im in images):
        raise InputError(None, "all sparse input images must have the same size")
    sfm = None
    if cameras is None:
        from see3d.geometry.sfm import run_sfm

        if image_paths is None:
            raise InputError(None, "sparse views need either given cameras or image files for SfM")
        sfm = run_sfm(image_paths)
        cameras = sfm.cameras
    if len(cameras) != len(images):
        raise InputError(None, f"{len(images)} images but {len(cameras)} cameras")
    cameras.check("the input cameras")
    W, H = working_size(w0, h0, cfg.size)
    cams = cameras.resized(W, H)
    imgs = np.stack([resize_view(im, W, H) for im in images])
    preds = [predict(depth_backend, imgs[i], names[i], cams[i]) for i in range(len(imgs))]
    extra = None
    if sfm is not None:
        extra = []
        for i in range(len(imgs)):
            _, uv, z = sfm.observed_points(i)
            extra.append((uv * np.array([W / cameras.width, H / cameras.height]), z))
    depth, stats, store = reference_depths(imgs, cams, preds, list(names), cfg.align, extra)
    points = store.points if sfm is None else np.concatenate([store.points, sfm.points])
    return Views(imgs, cams, depth, True, None, list(names)), points, stats, store


def sparse_targets(refs: Views, cfg: GenerateConfig) -> Cameras:
    """Cameras to generate from sparse references: ``cfg.n_frames`` views on a smooth path through the
    input cameras (``cfg.sparse_path == "interpolate"``), or along the preset ``cfg.sparse_path`` from the first input."""
    from see3d.geometry.paths import interpolate_cameras

    if cfg.sparse_path != "interpolate":
        return path_cameras(refs.cameras[0], refs.depth[0], cfg, preset=cfg.sparse_path)
    per_gap = max(1, cfg.n_frames // (len(refs) - 1))
    dense = interpolate_cameras(refs.cameras, (len(refs) - 1) * (per_gap + 1) + 1)
    keep = [i for i in range(len(dense)) if i % (per_gap + 1)]  # drop the input cameras themselves
    return dense[keep]


def generate_from_sparse(images: list[np.ndarray], names: list[str], depth_backend: DepthBackend, cfg: GenerateConfig, pipe=None,
                         cameras: Cameras | None = None, image_paths: list[Path] | None = None,
                         new_view_depth: DepthBackend | None | str = "same", targets: Cameras | None = None) -> GenerationResult:  # fmt: skip
    """Sparse inputs -> new views at ``targets`` (any image size: intrinsics are rescaled; in the input
    cameras' frame), or along :func:`sparse_targets` (``new_view_depth`` as in :func:`generate_from_image`)."""
    if targets is not None:
        targets.check("the target cameras")
    refs, _, stats, store = prepare_sparse_views(images, names, depth_backend, cfg, cameras, image_paths)
    targets = sparse_targets(refs, cfg) if targets is None else targets.resized(refs.cameras.width, refs.cameras.height)
    new_depth = depth_backend if new_view_depth == "same" else new_view_depth
    return _run(refs, stats, targets, cfg, pipe, new_depth, store)


def text_to_image(
    prompt: str, t2i_dir: str | Path, seed: int = 0, steps: int = 30, height: int | None = None, width: int | None = None,
    device: str = "auto", dtype: str = "auto", offload: bool = False,
) -> np.ndarray:  # fmt: skip
    """First image for text-to-3D from a local diffusers text-to-image pipeline folder -> (H, W, 3) float.

    ``device`` / ``dtype`` / ``offload`` as for the See3D model (:func:`see3d.pipelines.loader.load_see3d`); the
    noise comes from a CPU generator, so a seed gives the same start whatever the device.
    """
    import torch
    from diffusers import DiffusionPipeline

    from see3d.device import resolve_device_dtype
    from see3d.errors import WeightsError
    from see3d.models.loading import quiet_loading
    from see3d.pipelines.loader import place_pipeline

    t2i_dir = Path(t2i_dir)
    if not (t2i_dir / "model_index.json").is_file():
        raise WeightsError(t2i_dir, "not a diffusers pipeline folder (no model_index.json)")
    dev, dt = resolve_device_dtype(device, dtype)
    try:
        with quiet_loading():
            pipe = DiffusionPipeline.from_pretrained(t2i_dir, local_files_only=True, torch_dtype=dt)
    except (OSError, ValueError) as e:
        raise WeightsError(t2i_dir, f"could not load the text-to-image pipeline ({e})") from e
    place_pipeline(pipe, dev, offload)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    kw = {} if height is None else {"height": height, "width": width}
    out = pipe(prompt, num_inference_steps=steps, generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **kw)
    return np.asarray(out.images[0], dtype=np.float32)


def generate_from_text(prompt: str, t2i_dir: str | Path, depth_backend: DepthBackend, cfg: GenerateConfig, pipe=None,
                       t2i_steps: int = 30, t2i_size: int | None = None, device: str = "auto", dtype: str = "auto",
                       offload: bool = False, targets: Cameras | None = None) -> tuple[np.ndarray, GenerationResult]:  # fmt: skip
    """Text -> first image (local text-to-image model on ``device`` in ``dtype``) -> the single-image path (along
    ``targets`` when given: the first image's camera is the identity pose with ``cfg.fov_deg``). Returns (image, result)."""
    image = text_to_image(prompt, t2i_dir, cfg.seed, t2i_steps, t2i_size, t2i_size, device, dtype, offload)
    return image, generate_from_image(image, depth_backend, cfg, pipe, targets=targets)
