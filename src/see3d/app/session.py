"""The app's state and steps, without any page: inputs -> camera path -> generated views -> splats -> files.

Every step is a plain method over the Python APIs (:mod:`see3d.pipelines.generation`, :mod:`see3d.splat`),
so it is tested without a browser; the long ones (:meth:`AppSession.generate`, :meth:`AppSession.reconstruct`,
the exports) take a :class:`see3d.app.jobs.Job` to report progress to and to poll for cancel.

Files go under ``out``: ``inputs/`` (uploaded images), ``views/`` (generated views, as ``see3d generate``
writes them), ``splats/`` (``splats.ply`` with ``splats.cameras.json``, checkpoint, exports),
``camera_path.json``; the zip of the folder is written beside it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from see3d.app.jobs import Job
from see3d.demo import DemoConfig, demo_generate_config, demo_reconstruct_config, resolve_fill, sample_photo
from see3d.depth.base import DepthBackend
from see3d.errors import InputError
from see3d.io.cameras import Cameras
from see3d.io.outdir import check_out_dir, staged_dir
from see3d.io.views import Views
from see3d.log import get_logger
from see3d.pipelines.generation import ChunkDone, GenerateConfig, GenerationResult
from see3d.pipelines.loader import default_demo_weights
from see3d.splat.config import ReconstructConfig
from see3d.splat.gaussians import Gaussians

log = get_logger(__name__)

SPARSE_PATH = "through_inputs"  # the path preset of 2-6 inputs: a smooth path through their cameras
MAX_INPUTS = 6


@dataclass
class TrainStats:
    """What the page shows while optimising."""

    step: int
    iters: int
    loss: float
    psnr: float
    num_splats: int


class AppSession:
    """One user's work in the app.

    Args:
        out: working folder (created).
        weights: See3D weights folder; None: the small model shipped with the package (and its settings:
            the demo's resolution, steps and hole filling), falling back to Telea inpainting without it.
        t2i_weights: local diffusers text-to-image folder, enabling prompts.
        overwrite: allow a non-empty ``out`` (its old content is removed); otherwise it must be new or empty.
    """

    def __init__(self, out: str | Path, weights: str | Path | None = None, t2i_weights: str | Path | None = None, overwrite: bool = False):
        self.out = check_out_dir(out, overwrite)
        if overwrite and self.out.is_dir():
            shutil.rmtree(self.out)  # the folder describes this session only
        self.out.mkdir(parents=True, exist_ok=True)
        self.shipped = weights is None
        self.weights = Path(weights) if weights is not None else default_demo_weights()
        self.t2i_weights = None if t2i_weights is None else Path(t2i_weights)
        demo = DemoConfig()
        if self.shipped:
            self.gen_cfg: GenerateConfig = demo_generate_config(demo, resolve_fill("auto", self.weights))
        else:
            self.gen_cfg = GenerateConfig(fill="mvd")
        self.rec_cfg: ReconstructConfig = demo_reconstruct_config(demo)
        self.refs: Views | None = None  # the input views at the working resolution, with depth
        self.new_view_depth: DepthBackend | None = None  # depth of generated views (None: warped depth only)
        self.targets: Cameras | None = None  # the camera path to generate
        self.keyframes: list[np.ndarray] = []  # (4, 4) c2w added from the page's view
        self.result: GenerationResult | None = None
        self.trainer = None  # see3d.splat.optimize.SplatTrainer once reconstruction started
        self._pipes: dict[str, object] = {}

    # ================================================================== inputs
    @property
    def sparse(self) -> bool:
        return self.refs is not None and len(self.refs) > 1

    def _set_inputs(self, refs: Views, new_view_depth: DepthBackend | None) -> Views:
        self.refs, self.new_view_depth = refs, new_view_depth
        self.result, self.trainer, self.keyframes = None, None, []
        self.apply_preset(SPARSE_PATH if self.sparse else self.gen_cfg.path, self.gen_cfg.n_frames, self.gen_cfg.path_scale)
        return refs

    def load_demo(self, seed: int = 0) -> Views:
        """The bundled sample photo (a synthetic room with its exact depth); generated views keep warped depth."""
        from see3d.depth.true_depth import TrueDepth
        from see3d.io.images import save_image
        from see3d.pipelines.generation import prepare_single_view

        image, depth, cam = sample_photo(seed, self.gen_cfg.size, self.gen_cfg.size)
        save_image(self.out / "inputs" / "input.png", image)
        refs, _ = prepare_single_view(image, TrueDepth(depth[None], ["input"]), self.gen_cfg, cam, "input")
        return self._set_inputs(refs, None)

    def save_upload(self, name: str, content: bytes) -> Path:
        """Store an uploaded image under ``out/inputs`` (checked readable); returns its path."""
        from see3d.io.images import load_image

        safe = Path(name).name or "upload.png"
        path = self.out / "inputs" / safe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        try:
            load_image(path)
        except InputError:
            path.unlink(missing_ok=True)
            raise
        except Exception as e:
            path.unlink(missing_ok=True)
            raise InputError(name, f"not a readable image ({e})") from e
        return path

    def load_images(self, paths: list[Path], depth: DepthBackend, cameras: Cameras | None = None, depth_from_model: bool = True) -> Views:
        """1 image (single-view generation) or 2-6 (sparse: poses by SfM unless ``cameras``).

        ``depth_from_model``: the backend can estimate depth of generated views too (a model, not given maps).
        """
        from see3d.io.images import load_image
        from see3d.pipelines.generation import prepare_single_view, prepare_sparse_views

        if not 1 <= len(paths) <= MAX_INPUTS:
            raise InputError(None, f"give 1 image, or 2 to {MAX_INPUTS} images of one scene (got {len(paths)})")
        images = [load_image(p) for p in paths]
        if len(paths) == 1:
            refs, _ = prepare_single_view(images[0], depth, self.gen_cfg, None if cameras is None else cameras[:1], Path(paths[0]).stem)
        else:
            refs = prepare_sparse_views(images, [Path(p).stem for p in paths], depth, self.gen_cfg, cameras, list(paths))[0]
        return self._set_inputs(refs, depth if depth_from_model else None)

    def load_prompt(self, prompt: str, depth: DepthBackend, steps: int = 30) -> Views:
        """Text -> first image (the local text-to-image model) -> single-view input."""
        from see3d.io.images import save_image
        from see3d.pipelines.generation import prepare_single_view, text_to_image

        if self.t2i_weights is None:
            raise InputError(None, "prompts need a text-to-image model folder (start the app with --t2i-weights DIR)")
        if not prompt.strip():
            raise InputError(None, "the prompt is empty")
        image = text_to_image(prompt, self.t2i_weights, self.gen_cfg.seed, steps)
        save_image(self.out / "inputs" / "prompt_image.png", image)
        return self._set_inputs(prepare_single_view(image, depth, self.gen_cfg, None, "prompt_image")[0], depth)

    def _require_inputs(self) -> Views:
        if self.refs is None:
            raise InputError(None, "no input yet: load the demo scene, upload image(s) or type a prompt")
        return self.refs

    def input_points(self, max_points: int = 60_000) -> tuple[np.ndarray, np.ndarray]:
        """The inputs' warped point cloud (what generation starts from): ``(points (P, 3), colours (P, 3) in [0, 1])``."""
        from see3d.geometry.point_cache import PointCache

        refs = self._require_inputs()
        cache = PointCache(depth_tol=self.gen_cfg.depth_tol)
        for i in range(len(refs)):
            cache.add_view(refs.images[i], refs.depth[i], refs.cameras[i])
        pts = cache.points.numpy()
        cols = np.zeros_like(pts) if cache.colors is None else cache.colors.numpy()[:, :3]
        if len(pts) > max_points:
            keep = np.random.default_rng(0).choice(len(pts), max_points, replace=False)
            pts, cols = pts[keep], cols[keep]
        return pts.astype(np.float32), np.clip(cols, 0, 1).astype(np.float32)

    def scene_scale(self) -> float:
        """Median depth of the first input view (world units): sizes frustums and distances."""
        from see3d.geometry.paths import scene_depth_from

        return scene_depth_from(self._require_inputs().depth[0])

    # ================================================================== camera path
    def apply_preset(self, name: str, n_frames: int, path_scale: float = 1.0) -> Cameras:
        """The path ``name`` (a preset of :mod:`see3d.geometry.paths` from the first input camera, or
        ``"through_inputs"`` for 2-6 inputs) with ``n_frames`` new views; it becomes the path to generate."""
        from see3d.pipelines.generation import path_cameras, sparse_targets

        refs = self._require_inputs()
        n_frames = int(n_frames)
        if n_frames < 1:
            raise InputError(None, f"the path needs at least 1 view (got {n_frames})")
        if name == SPARSE_PATH:
            if len(refs) < 2:
                raise InputError(None, f"the {SPARSE_PATH!r} path needs 2-6 input images")
            self.targets = sparse_targets(refs, replace(self.gen_cfg, n_frames=n_frames, sparse_path="interpolate"))
        else:
            cfg = replace(self.gen_cfg, path=name, n_frames=n_frames, path_scale=float(path_scale))
            self.targets = path_cameras(refs.cameras[:1], refs.depth[0], cfg)
            self.gen_cfg = replace(self.gen_cfg, path=name, path_scale=float(path_scale))
        self.gen_cfg = replace(self.gen_cfg, n_frames=n_frames)
        return self.targets

    def add_keyframe(self, c2w: np.ndarray) -> int:
        """Add a keyframe (OpenCV c2w (4, 4), e.g. the page's current view); returns how many there are."""
        c2w = np.asarray(c2w, dtype=np.float64)
        if c2w.shape != (4, 4) or not np.isfinite(c2w).all():
            raise InputError(None, "a keyframe must be a finite 4x4 camera-to-world matrix")
        self.keyframes.append(c2w)
        return len(self.keyframes)

    def keyframe_path(self, n_frames: int) -> Cameras:
        """``n_frames`` new views on a smooth path from the first input camera through the keyframes (in the
        order added; intrinsics of the first input); it becomes the path to generate."""
        from see3d.geometry.paths import interpolate_cameras

        refs = self._require_inputs()
        if not self.keyframes:
            raise InputError(None, "no keyframes yet: move the view and click 'Add keyframe'")
        start = refs.cameras[:1]
        keys = Cameras(start.K[[0] * (len(self.keyframes) + 1)], np.stack([start.c2w[0], *self.keyframes]), start.width, start.height)
        self.targets = interpolate_cameras(keys, int(n_frames) + 1)[1:]
        self.gen_cfg = replace(self.gen_cfg, n_frames=int(n_frames))
        return self.targets

    def export_camera_path(self, path: str | Path | None = None, fps: float = 24.0) -> Path:
        """Write the path to generate as a nerfstudio ``camera_path.json`` (default ``out/camera_path.json``)."""
        from see3d.io.camera_path import write_camera_path

        if self.targets is None:
            raise InputError(None, "no camera path yet")
        path = Path(path) if path is not None else self.out / "camera_path.json"
        write_camera_path(path, self.targets, fps=fps)
        return path

    def import_camera_path(self, path: str | Path) -> Cameras:
        """Read a nerfstudio ``camera_path.json`` (or a transforms.json) as the path to generate (resized to the inputs)."""
        from see3d.viewer.camera_path import load_camera_path

        refs = self._require_inputs()
        cams = load_camera_path(path).cameras
        self.targets = cams.resized(refs.cameras.width, refs.cameras.height)
        self.gen_cfg = replace(self.gen_cfg, n_frames=len(cams))
        return self.targets

    # ================================================================== generate
    def _pipe(self, variant: str):
        """The See3D pipeline for ``variant`` ("single" / "sparse"), loaded once: the shipped small model on the CPU
        in float32 (as ``see3d demo`` runs it), other weights on CUDA in float16 when available (as ``see3d generate``;
        untested on GPU here)."""
        if variant not in self._pipes:
            from see3d.errors import WeightsError
            from see3d.pipelines.loader import load_see3d

            if not self.weights.is_dir():
                raise WeightsError(self.weights, "See3D weights folder not found")
            device, dtype = ("cpu", "float32") if self.shipped else ("auto", "auto")
            self._pipes[variant] = load_see3d(self.weights, variant, device, dtype)
        return self._pipes[variant]

    def generate(self, job: Job, on_chunk: Callable[[ChunkDone], None] | None = None) -> GenerationResult:
        """Generate the views of the camera path chunk by chunk into ``out/views``; cancel keeps the finished chunks."""
        from see3d.pipelines.generation import generate_along_path, make_filler

        refs = self._require_inputs()
        if self.targets is None or len(self.targets) == 0:
            raise InputError(None, "no camera path: pick a preset or add keyframes")
        cfg = self.gen_cfg
        pipe = self._pipe("sparse" if self.sparse else "single") if cfg.fill == "mvd" else None
        filler = make_filler(cfg, pipe)
        job.report(0.0, f"0/{len(self.targets)} views")

        def chunk_done(c: ChunkDone) -> None:
            job.report((c.index + 1) / c.total, f"chunk {c.index + 1}/{c.total} ({c.first + len(c.images)}/{len(self.targets)} views)")
            if on_chunk is not None:
                on_chunk(c)

        result = generate_along_path(refs, self.targets, filler, self.new_view_depth, cfg.chunk_size, cfg.depth_tol,
                                     on_chunk=chunk_done, should_stop=lambda: job.cancelled)  # fmt: skip
        with staged_dir(self.out / "views") as tmp:  # replaces the previous views only once all are written
            result.save(tmp)
        self.result, self.trainer = result, None
        shutil.rmtree(self.splats_dir, ignore_errors=True)  # splats of the previous views no longer match
        n_gen = len(result.warps)
        job.report(None, f"{n_gen}/{len(self.targets)} views" + (" (cancelled: the finished ones are kept)" if n_gen < len(self.targets) else ""))
        return result

    # ================================================================== reconstruct
    @property
    def splats_dir(self) -> Path:
        return self.out / "splats"

    def reconstruct(self, job: Job, iters: int | None = None, on_update: Callable[[Gaussians, TrainStats], None] | None = None,
                    update_every_s: float = 2.0) -> Gaussians:  # fmt: skip
        """Optimise splats on the inputs + generated views up to ``iters`` steps, calling ``on_update`` every
        ``update_every_s`` seconds and at the end. Cancel stops at the current step; calling again resumes
        there (a new ``iters`` extends the run). Writes ``splats/splats.ply`` (+ cameras, checkpoint) at the end."""
        from see3d.splat.export import write_scene_cameras
        from see3d.splat.gaussians import write_ply
        from see3d.splat.optimize import SplatTrainer

        if self.result is None:
            raise InputError(None, "nothing to reconstruct yet: generate views first")
        iters = int(iters if iters is not None else self.rec_cfg.iters)
        if iters < 1:
            raise InputError(None, f"iterations must be at least 1 (got {iters})")
        self.rec_cfg = replace(self.rec_cfg, iters=iters)
        views = self.result.views
        if self.trainer is None:
            self.trainer = SplatTrainer.create(views, self.rec_cfg)
        tr = self.trainer
        tr.cfg = self.rec_cfg
        last_update = last_report = time.monotonic()
        s = {"loss": float("nan"), "psnr": float("nan"), "num": len(tr.sp)}

        def stats() -> TrainStats:
            return TrainStats(tr.step, iters, s["loss"], s["psnr"], s["num"])

        while tr.step < iters and not job.cancelled:
            s = tr.train_step()
            tr.history.append({"step": tr.step, **s})
            now = time.monotonic()
            if now - last_report >= 0.25:
                job.report(tr.step / iters, f"step {tr.step}/{iters} · loss {s['loss']:.4f} · PSNR {s['psnr']:.2f} dB · {s['num']:,} splats")
                last_report = now
            if on_update is not None and now - last_update >= update_every_s:
                on_update(tr.gaussians(), stats())
                last_update = time.monotonic()
        g = tr.gaussians()
        if on_update is not None:
            on_update(g, stats())
        self.splats_dir.mkdir(parents=True, exist_ok=True)
        write_ply(self.splats_dir / "splats.ply", g)
        k = self.result.num_inputs
        cams = Cameras(views.cameras.K, tr.refined_c2w(), views.cameras.width, views.cameras.height)  # refined when refinement is on
        write_scene_cameras(self.splats_dir / "splats.ply", cams, list(views.names), ["input"] * k + ["generated"] * (len(views) - k))
        tr.save(self.splats_dir)
        state = "cancelled: resume continues" if tr.step < iters else "done"
        job.report(tr.step / iters, f"step {tr.step}/{iters} ({state}) · loss {s['loss']:.4f} · PSNR {s['psnr']:.2f} dB · {len(g):,} splats")
        return g

    # ================================================================== exports
    def _splats(self) -> Gaussians:
        if self.trainer is None:
            raise InputError(None, "no splats yet: reconstruct first")
        return self.trainer.gaussians()

    def export_ply(self) -> Path:
        """``splats/splats.ply`` (written at the end of every reconstruction run)."""
        path = self.splats_dir / "splats.ply"
        if self.trainer is None or not path.is_file():
            raise InputError(None, "no splats yet: reconstruct first")
        return path

    def export_video(self, job: Job | None = None, frames: int = 48) -> Path:
        """``splats/flythrough.mp4``: the splats along a smooth path through the training cameras."""
        from see3d.splat.export import flythrough_path, write_flythrough

        g = self._splats()
        cams = flythrough_path(self.result.views.cameras, int(frames))
        return write_flythrough(self.splats_dir / "flythrough.mp4", g, cams, background=self.rec_cfg.background, backend=self.rec_cfg.backend)

    def export_mesh(self, job: Job | None = None, resolution: int = 96) -> Path:
        """``splats/mesh.glb``: TSDF mesh of the splats rendered from the training cameras."""
        from see3d.splat.export import extract_mesh

        path = self.splats_dir / "mesh.glb"
        extract_mesh(self._splats(), self.result.views.cameras, path, resolution=int(resolution), backend=self.rec_cfg.backend)
        return path

    def export_zip(self, job: Job | None = None) -> Path:
        """The whole working folder as ``<out>.zip`` beside it (written to a temporary name, then renamed)."""
        tmp = self.out.with_name(f".{self.out.name}.partial")
        archive = Path(shutil.make_archive(str(tmp), "zip", root_dir=self.out))
        final = self.out.with_name(self.out.name + ".zip")
        archive.replace(final)
        return final
