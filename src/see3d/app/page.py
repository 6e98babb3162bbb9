"""The page of ``see3d app``: viser's GUI panel and 3D scene over an :class:`AppSession`.

viser serves its client from inside the Python wheel (no CDN, no network) and speaks a websocket to this
process, so the 3D view (point cloud, frustums with their images, splats rendered by WebGL) and the panel
are one page that works offline. Every button submits a job to the :class:`JobRunner` (one at a time, in
order; the status line shows what runs and what waits), so a long step never freezes the page.

Scene nodes: ``/input/points`` (the inputs' warped point cloud), ``/input/cameras`` (blue), ``/path``
(orange: the views to generate), ``/generated`` (green, with their images), ``/splats``.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import viser

from see3d.app.jobs import Job, JobRunner
from see3d.app.session import MAX_INPUTS, SPARSE_PATH, AppSession, TrainStats
from see3d.errors import InputError, See3DError
from see3d.geometry.paths import list_paths
from see3d.log import get_logger
from see3d.pipelines.generation import ChunkDone
from see3d.splat.gaussians import Gaussians
from see3d.viewer.address import check_listen_address, page_url
from see3d.viewer.camera_path import fov_y_from_intrinsics, viser_to_c2w
from see3d.viewer.controls import (
    GENERATED_COLOR,
    INPUT_COLOR,
    PATH_COLOR,
    FrustumToggle,
    SplatLayer,
    add_frustums,
    add_view_buttons,
)
from see3d.viewer.server import has_camera, move_clients, reset_on_connect, set_initial_camera
from see3d.viewer.splats import viser_splats

log = get_logger(__name__)

THUMBNAILS = 24  # generated views shown as images in the panel (all are drawn as frustums)


class AppPage:
    """The GUI and scene of one app server. Handles are attributes so tests can drive them."""

    def __init__(self, server: viser.ViserServer, session: AppSession, depth_model: Path | None = None):
        self.server, self.session = server, session
        self.runner = JobRunner(on_change=self._job_changed)
        self.uploads: list[Path] = []
        self.up = np.array([0.0, -1.0, 0.0])
        self._start: tuple[np.ndarray, float] | None = None
        self._thumbs: list = []
        self.frustum_scale = 0.1
        gui = server.gui
        gui.configure_theme(show_share_button=False, control_width="large")
        model = "the shipped small model" if session.shipped else f"`{session.weights}`"
        gui.add_markdown(f"**see3d app** · {model} · files in `{session.out}`")
        self.status = gui.add_markdown("idle")

        with gui.add_folder("1 · Input"):
            self.demo_button = gui.add_button("Load demo scene", icon=viser.Icon.PHOTO, hint="the bundled sample photo with its exact depth")
            self.upload = gui.add_upload_button("Upload image", icon=viser.Icon.UPLOAD, mime_type="image/*",
                                                hint=f"one image, or 2-{MAX_INPUTS} of one scene (upload them one after another)")  # fmt: skip
            self.uploaded = gui.add_markdown("no uploads")
            self.depth_kind = gui.add_dropdown("Depth", ("model folder", "depth file(s)"), initial_value="model folder",
                                               hint="a local transformers depth model folder, or depth maps (.npy/.png/.exr) of the inputs")  # fmt: skip
            self.depth_path = gui.add_text("Depth path", initial_value=str(depth_model) if depth_model else "")
            self.cameras_path = gui.add_text("Cameras file", initial_value="", hint="transforms.json of the inputs (empty: SfM for 2-6 images)")
            self.use_uploads = gui.add_button("Use uploaded images", icon=viser.Icon.CHECK)
            self.clear_uploads = gui.add_button("Clear uploads")
            self.prompt = self.prompt_button = None
            if session.t2i_weights is not None:
                self.prompt = gui.add_text("Prompt", initial_value="")
                self.prompt_button = gui.add_button("Image from prompt", icon=viser.Icon.WAND)

        with gui.add_folder("2 · Camera path"):
            self.preset = gui.add_dropdown("Preset", (*list_paths(), SPARSE_PATH), initial_value=session.gen_cfg.path)
            self.n_views = gui.add_slider("Views", min=1, max=64, step=1, initial_value=session.gen_cfg.n_frames)
            self.path_scale = gui.add_number("Path scale", initial_value=1.0, min=0.05, max=10.0, step=0.05, hint="multiplies the preset's motion")
            self.preset_button = gui.add_button("Apply preset", icon=viser.Icon.ROUTE)
            self.key_button = gui.add_button("Add keyframe", icon=viser.Icon.CAMERA_PLUS, hint="the current view becomes the next keyframe")
            self.keys_info = gui.add_markdown("0 keyframes")
            self.keys_path_button = gui.add_button("Path through keyframes")
            self.keys_clear = gui.add_button("Clear keyframes")
            self.export_path_button = gui.add_button("Export camera_path.json", icon=viser.Icon.DOWNLOAD)
            self.import_path = gui.add_upload_button("Import camera_path.json", icon=viser.Icon.UPLOAD, mime_type="application/json")
            self.show_points = FrustumToggle(server, "Show point cloud")
            self.show_inputs = FrustumToggle(server, "Show input cameras")
            self.show_path = FrustumToggle(server, "Show path")

        with gui.add_folder("3 · Generate"):
            self.steps = gui.add_number("Diffusion steps", initial_value=session.gen_cfg.steps, min=1, max=200, step=1)
            self.guidance = gui.add_number("Guidance", initial_value=session.gen_cfg.guidance, min=0.0, max=20.0, step=0.1)
            self.generate_button = gui.add_button("Generate", icon=viser.Icon.PLAYER_PLAY)
            self.generate_cancel = gui.add_button("Cancel generation", icon=viser.Icon.PLAYER_STOP)
            self.generate_bar = gui.add_progress_bar(0.0)
            self.show_generated = FrustumToggle(server, "Show generated views")
            self.thumbs_folder = gui.add_folder("Generated views", expand_by_default=False)

        with gui.add_folder("4 · Reconstruct"):
            self.iters = gui.add_number("Iterations", initial_value=session.rec_cfg.iters, min=1, max=100_000, step=100)
            self.live_every = gui.add_number("Live update (s)", initial_value=2.0, min=0.2, max=60.0, step=0.2)
            self.reconstruct_button = gui.add_button("Reconstruct", icon=viser.Icon.CUBE, hint="continues (resumes) when splats exist")
            self.reconstruct_cancel = gui.add_button("Cancel reconstruction", icon=viser.Icon.PLAYER_STOP)
            self.reconstruct_bar = gui.add_progress_bar(0.0)
            self.train_info = gui.add_markdown("no splats yet")

        with gui.add_folder("5 · Export"):
            self.video_frames = gui.add_number("Video frames", initial_value=48, min=2, max=2000, step=1)
            self.mesh_resolution = gui.add_number("Mesh resolution", initial_value=96, min=16, max=512, step=8)
            self.export_buttons = {
                "ply": gui.add_button("Download .ply", icon=viser.Icon.DOWNLOAD),
                "mp4": gui.add_button("Download flythrough .mp4", icon=viser.Icon.MOVIE),
                "glb": gui.add_button("Download mesh .glb", icon=viser.Icon.BOX),
                "zip": gui.add_button("Download folder .zip", icon=viser.Icon.FILE_ZIP),
            }

        self.splats = SplatLayer(server)
        add_view_buttons(server, self.reset_view, name="see3d_app")
        self._wire()
        reset_on_connect(server, self.reset_view)

    # ================================================================== wiring
    def _wire(self) -> None:
        s = self.session
        self.demo_button.on_click(lambda e: self.submit("load demo", lambda job: self._loaded(s.load_demo()), e))
        self.upload.on_upload(self._on_upload)
        self.clear_uploads.on_click(lambda _: self._set_uploads([]))
        self.use_uploads.on_click(lambda e: self.submit("load images", self._load_uploads, e))
        if self.prompt_button is not None:
            self.prompt_button.on_click(lambda e: self.submit("image from prompt", lambda job: self._loaded(s.load_prompt(self.prompt.value, self._depth())), e))
        self.preset_button.on_click(lambda e: self.submit("camera path", lambda job: self._path(
            s.apply_preset(self.preset.value, int(self.n_views.value), float(self.path_scale.value))), e))  # fmt: skip
        self.key_button.on_click(self._add_keyframe)
        self.keys_path_button.on_click(lambda e: self.submit("camera path", lambda job: self._path(s.keyframe_path(int(self.n_views.value))), e))
        self.keys_clear.on_click(lambda _: (s.keyframes.clear(), self._keys_changed()))
        self.export_path_button.on_click(lambda e: self.submit("export camera_path.json", lambda job: self._send(e.client, s.export_camera_path()), e))
        self.import_path.on_upload(self._on_import_path)
        self.generate_button.on_click(lambda e: self.submit("generate", self._generate, e))
        self.generate_cancel.on_click(lambda _: self.cancel("generate"))
        self.reconstruct_button.on_click(lambda e: self.submit("reconstruct", self._reconstruct, e))
        self.reconstruct_cancel.on_click(lambda _: self.cancel("reconstruct"))
        exports = {
            "ply": lambda job: s.export_ply(),
            "mp4": lambda job: s.export_video(job, int(self.video_frames.value)),
            "glb": lambda job: s.export_mesh(job, int(self.mesh_resolution.value)),
            "zip": lambda job: s.export_zip(job),
        }
        for kind, button in self.export_buttons.items():
            button.on_click(lambda e, f=exports[kind], k=kind: self.submit(f"export .{k}", lambda job: self._send(e.client, f(job)), e))

    def submit(self, name: str, fn, event: viser.GuiEvent | None = None) -> Job:
        """Queue ``fn(job)``; a failure shows as a notification to the clicking browser and in the status line."""
        job = self.runner.submit(name, fn)
        client = None if event is None else event.client

        def notify() -> None:
            job.wait()
            if job.state == "failed" and client is not None:
                with contextlib.suppress(Exception):
                    client.add_notification(f"{name} failed", job.message, color="red", auto_close_seconds=15.0)

        threading.Thread(target=notify, daemon=True).start()
        return job

    def cancel(self, name: str) -> None:
        """Cancel the running and queued jobs called ``name`` (what they finished is kept)."""
        for job in [self.runner.current, *self.runner.queued]:
            if job is not None and job.name == name:
                job.cancel()

    def _job_changed(self, job: Job) -> None:
        self.status.content = self.runner.describe()
        bar = {"generate": self.generate_bar, "reconstruct": self.reconstruct_bar}.get(job.name)
        if bar is not None:
            bar.value = 100.0 * job.progress
            bar.animated = job.state == "running"
        if job.name == "reconstruct" and job.message:
            self.train_info.content = job.message

    # ================================================================== inputs
    def _depth(self):
        from see3d.depth.select import make_backend

        path = self.depth_path.value.strip()
        if not path:
            raise InputError(None, "set 'Depth path': a local depth model folder, or the depth map file/folder of the inputs")
        if self.depth_kind.value == "model folder":
            return make_backend(model=path)
        return make_backend(given=path)

    def _on_upload(self, event: viser.GuiEvent) -> None:
        f = self.upload.value
        try:
            path = self.session.save_upload(f.name, f.content)
        except See3DError as e:
            if event.client is not None:
                event.client.add_notification("upload failed", str(e), color="red", auto_close_seconds=10.0)
            return
        self._set_uploads([*[p for p in self.uploads if p != path], path][-MAX_INPUTS:])

    def _set_uploads(self, paths: list[Path]) -> None:
        self.uploads = paths
        self.uploaded.content = "uploaded: " + ", ".join(p.name for p in paths) if paths else "no uploads"

    def _load_uploads(self, job: Job) -> None:
        if not self.uploads:
            raise InputError(None, "upload an image first (or load the demo scene)")
        cams = None
        if self.cameras_path.value.strip():
            from see3d.viewer.camera_path import load_camera_path

            cams = load_camera_path(self.cameras_path.value.strip()).cameras
        self._loaded(self.session.load_images(list(self.uploads), self._depth(), cams, depth_from_model=self.depth_kind.value == "model folder"))

    def _loaded(self, refs) -> None:
        """New inputs: redraw the scene (point cloud, input cameras, path) and move the browsers to the first input camera."""
        s = self.session
        scale = s.scene_scale()
        self.frustum_scale = 0.08 * scale
        for toggle in (self.show_points, self.show_inputs, self.show_path, self.show_generated):
            toggle.clear()
        for t in self._thumbs:
            t.remove()
        self._thumbs = []
        self.splats.clear()
        pts, cols = s.input_points()
        self.show_points.extend([self.server.scene.add_point_cloud("/input/points", pts, cols, point_size=0.004 * scale)])
        self.show_inputs.extend(add_frustums(self.server, "/input/cameras", refs.cameras, INPUT_COLOR, self.frustum_scale, refs.images))
        self.up = -refs.cameras.c2w[:, :3, 1].mean(0)
        self.up /= np.linalg.norm(self.up)
        self.server.scene.set_up_direction(self.up)
        fov = float(fov_y_from_intrinsics(refs.cameras.K[0], refs.cameras.height))
        self._start = (refs.cameras.c2w[0], fov)
        set_initial_camera(self.server, refs.cameras.c2w[0], fov, scale)
        self.reset_view()
        self.preset.value = SPARSE_PATH if s.sparse else s.gen_cfg.path
        self._draw_path()
        self.train_info.content = "no splats yet"
        self.generate_bar.value = self.reconstruct_bar.value = 0.0

    # ================================================================== camera path
    def _draw_path(self) -> None:
        self.show_path.clear()
        t = self.session.targets
        if t is not None:
            self.show_path.extend(add_frustums(self.server, "/path", t, PATH_COLOR, 0.6 * self.frustum_scale))

    def _path(self, cams) -> None:
        self.n_views.value = len(cams)
        self._draw_path()

    def _add_keyframe(self, event: viser.GuiEvent) -> None:
        c = event.client
        if c is None or not has_camera(c):
            return
        self.session.add_keyframe(viser_to_c2w(c.camera.wxyz, c.camera.position))
        self._keys_changed()

    def _keys_changed(self) -> None:
        self.keys_info.content = f"{len(self.session.keyframes)} keyframes"

    def _on_import_path(self, event: viser.GuiEvent) -> None:
        f = self.import_path.value

        def load(job: Job) -> None:
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / "camera_path.json"
                p.write_bytes(f.content)
                self._path(self.session.import_camera_path(p))

        self.submit("import camera path", load, event)

    # ================================================================== generate / reconstruct
    def _generate(self, job: Job) -> None:
        from dataclasses import replace

        s = self.session
        s.gen_cfg = replace(s.gen_cfg, steps=int(self.steps.value), guidance=float(self.guidance.value))
        self.show_generated.clear()
        for t in self._thumbs:
            t.remove()
        self._thumbs = []
        self.splats.clear()  # new views: the next reconstruction starts over
        s.generate(job, on_chunk=self._chunk_done)
        self.train_info.content = "no splats yet"

    def _chunk_done(self, c: ChunkDone) -> None:
        self.show_generated.extend(add_frustums(self.server, "/generated", c.cameras, GENERATED_COLOR, self.frustum_scale, c.images, start=c.first))
        with self.thumbs_folder:
            for j, img in enumerate(c.images):
                if len(self._thumbs) < THUMBNAILS:
                    self._thumbs.append(self.server.gui.add_image((np.clip(img, 0, 1) * 255).astype(np.uint8), label=f"view {c.first + j}"))

    def _reconstruct(self, job: Job) -> None:
        self.session.reconstruct(job, int(self.iters.value), self._show_splats, float(self.live_every.value))

    def _show_splats(self, g: Gaussians, stats: TrainStats) -> None:
        self.splats.set(viser_splats(g))

    # ================================================================== files and view
    def _send(self, client: viser.ClientHandle | None, path: Path) -> Path:
        """Offer ``path`` to the browser that asked for it as a download (and keep it in the folder)."""
        if client is not None:
            client.send_file_download(path.name, path.read_bytes(), save_immediately=True)
        return path

    def reset_view(self, client: viser.ClientHandle | None = None) -> None:
        """Move ``client`` (default: all) to the first input camera."""
        if self._start is not None:
            clients = list(self.server.get_clients().values()) if client is None else [client]
            move_clients(clients, self._start[0], self._start[1], self.up)


class App:
    """A running ``see3d app``: the server, the page and the session. Stop with :meth:`stop`."""

    def __init__(self, server: viser.ViserServer, page: AppPage):
        self.server, self.page, self.session, self.runner = server, page, page.session, page.runner

    @property
    def url(self) -> str:
        return page_url(self.server.get_host(), self.server.get_port())

    def stop(self) -> None:
        self.runner.stop()
        with contextlib.redirect_stdout(io.StringIO()):
            self.server.stop()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def default_out_dir() -> Path:
    """``see3d_app/<date-time>``: a fresh folder per start, so nothing earlier is overwritten."""
    return Path("see3d_app") / datetime.now().strftime("%Y%m%d-%H%M%S")


def serve_app(
    host: str = "127.0.0.1",
    port: int = 8080,
    out: str | Path | None = None,
    weights: str | Path | None = None,
    t2i_weights: str | Path | None = None,
    depth_model: str | Path | None = None,
    demo: bool = True,
    overwrite: bool = False,
) -> App:
    """Start ``see3d app`` and return at once (the page is at :attr:`App.url`).

    Args:
        host, port: where to listen (127.0.0.1 by default; others are warned about; port 0 = any free one).
        out: working folder (default :func:`default_out_dir`).
        weights: See3D weights folder (default: the shipped small model).
        t2i_weights: local text-to-image pipeline folder (enables prompts).
        depth_model: local depth model folder, pre-filled as the depth source of uploaded images.
        demo: load the demo scene at once, so the page is useful immediately.
        overwrite: allow a non-empty ``out`` (its old content is removed first).
    """
    check_listen_address(host, port)
    session = AppSession(out if out is not None else default_out_dir(), weights, t2i_weights, overwrite)
    with contextlib.redirect_stdout(io.StringIO()):  # viser prints a banner
        server = viser.ViserServer(host=host, port=port, label="see3d app", verbose=False)
    try:
        page = AppPage(server, session, None if depth_model is None else Path(depth_model))
    except BaseException:
        server.stop()
        raise
    app = App(server, page)
    if demo:
        page.submit("load demo", lambda job: page._loaded(session.load_demo()))
    log.info("see3d app at %s (files in %s)", app.url, session.out)
    return app
