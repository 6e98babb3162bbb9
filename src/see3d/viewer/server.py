"""`serve`: an interactive web viewer for a Gaussian-splat ``.ply``, built on viser.

The browser page (viser's client, shipped inside the viser wheel: no network needed) renders the
splats with WebGL and offers orbit (left drag), pan (right drag), zoom (wheel) and keyboard moves
(W/A/S/D/Q/E move, arrow keys turn). It opens at the scene's first camera (found beside the ``.ply``,
:func:`find_scene_cameras`), with the world up from the cameras; the cameras (or a given camera path) get
playback controls (:mod:`see3d.viewer.playback`), plus reset-view, screenshot and render-quality controls
(:mod:`see3d.viewer.controls`). Cameras use our OpenCV convention throughout
(:mod:`see3d.viewer.camera_path` explains why viser needs no axis flip).
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import viser

from see3d.errors import InputError
from see3d.log import get_logger
from see3d.splat.gaussians import read_ply
from see3d.viewer.address import check_listen_address, page_url
from see3d.viewer.camera_path import CameraPath, load_camera_path, read_camera_roles, viser_to_c2w
from see3d.viewer.controls import INPUT_COLOR, FrustumToggle, SplatLayer, add_frustums, add_view_buttons
from see3d.viewer.playback import CameraPathPlayer
from see3d.viewer.splats import scene_bounds, viser_splats

log = get_logger(__name__)

_UP_AXES = {"+x": (1, 0, 0), "-x": (-1, 0, 0), "+y": (0, 1, 0), "-y": (0, -1, 0), "+z": (0, 0, 1), "-z": (0, 0, -1)}


@contextlib.contextmanager
def _quiet(enabled: bool):
    """Swallow what viser prints to stdout (banner, "Server stopped") when ``enabled``."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def parse_up(up: str | tuple[float, float, float] | np.ndarray, camera_path: CameraPath | None = None) -> np.ndarray:
    """World up direction (3,), unit length.

    ``up`` is ``"auto"`` (the mean image-up direction, -y, of the path's cameras; else -y, the up of
    an OpenCV world such as the first camera of ``see3d generate``), an axis name like ``"-y"`` or
    ``"+z"``, ``"x,y,z"``, or a 3-vector.
    """
    if isinstance(up, str):
        s = up.strip().lower()
        if s == "auto":
            if camera_path is not None:
                v = -camera_path.cameras.c2w[:, :3, 1].mean(0)
                if np.linalg.norm(v) > 1e-6:
                    return v / np.linalg.norm(v)
            return np.array([0.0, -1.0, 0.0])
        if s in _UP_AXES:
            return np.array(_UP_AXES[s], dtype=np.float64)
        try:
            v = np.array([float(x) for x in s.split(",")])
        except ValueError:
            v = np.zeros(0)
    else:
        v = np.asarray(up, dtype=np.float64).reshape(-1)
    if v.shape != (3,) or not np.isfinite(v).all() or np.linalg.norm(v) < 1e-9:
        raise InputError(None, f"up direction {up!r} is not 'auto', an axis (+x, -y, ...) or a non-zero 'x,y,z' vector")
    return v / np.linalg.norm(v)


def default_view(center: np.ndarray, radius: float, up: np.ndarray, fov_y: float = np.deg2rad(60.0)) -> tuple[np.ndarray, np.ndarray]:
    """``(position (3,), look_at (3,))`` that frames a sphere (``center``, ``radius``) seen level with ``up``.

    The view direction is the world axis least aligned with ``up`` (+z first: an OpenCV camera's forward).
    """
    for axis in (np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])):
        fwd = axis - up * float(axis @ up)
        if np.linalg.norm(fwd) > 0.3:
            break
    fwd = fwd / np.linalg.norm(fwd)
    dist = 1.1 * radius / np.tan(0.5 * fov_y) + radius
    return center - fwd * dist, center.copy()


def has_camera(client: viser.ClientHandle) -> bool:
    """Whether the browser has reported its camera yet (viser's camera properties assert on it otherwise)."""
    return client.camera._state.update_timestamp != 0.0


def orbit_target(c2w: np.ndarray, up: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(position, look_at, orbit up)`` (each (3,)) that viser's orbit controls turn into the OpenCV camera
    ``c2w (4, 4)``: the look-at point ``distance`` ahead on its optical axis (+z) and, as the orbit up, the world
    ``up`` without its component along the camera's x axis (so the view keeps its roll), or the camera's own up
    (-y) when that is (nearly) perpendicular to or opposite the camera's up (the rule viser's ``wxyz`` setter uses)."""
    c2w, up = np.asarray(c2w, dtype=np.float64), np.asarray(up, dtype=np.float64)
    x, cam_up, z, pos = c2w[:3, 0], -c2w[:3, 1], c2w[:3, 2], c2w[:3, 3]
    orbit_up = up - float(up @ x) * x
    n = float(np.linalg.norm(orbit_up))
    if n < 1e-9 or float(orbit_up @ cam_up) / n < 0.05:
        orbit_up = cam_up
    return pos.copy(), pos + z * float(distance), orbit_up


def move_clients(clients: list[viser.ClientHandle], c2w: np.ndarray, fov_y: float | None, up: np.ndarray) -> None:
    """Move the browsers' cameras to ``c2w (4, 4)`` (OpenCV), optionally with vertical FOV ``fov_y`` (radians),
    orbiting about the world ``up``. Browsers still connecting are skipped (they start at the initial camera).

    The pose is sent as position, look-at point and orbit up computed here (:func:`orbit_target`), not through
    viser's ``wxyz`` setter: that one derives the look-at point from the server's copy of the camera position,
    which the browser's own camera reports overwrite concurrently, so a report arriving between the position and
    the orientation update left the browser at the new position looking the old way."""
    for client in clients:
        if not has_camera(client):
            continue
        cam = client.camera
        dist = float(np.linalg.norm(np.asarray(cam.look_at) - np.asarray(cam.position)))  # keep the orbit radius
        pos, look_at, orbit_up = orbit_target(c2w, up, dist if np.isfinite(dist) and dist > 1e-6 else 1.0)
        with client.atomic():
            if fov_y is not None:
                cam.fov = float(fov_y)
            # Start from the world up: viser keeps the orbit "up" as close as it can to the previous
            # one, which otherwise drifts with every rolled pose (and W/S/Q/E move relative to it).
            cam.up_direction = orbit_up
            cam.position = pos
            cam.look_at = look_at
        client.flush()


def reset_on_connect(server: viser.ViserServer, reset: Callable[[viser.ClientHandle], None], timeout: float = 10.0) -> None:
    """Call ``reset(client)`` for every new browser once it has reported its camera (in a thread: the camera
    arrives on the connection's own thread). New browsers start at ``initial_camera``, which rolls the orbit
    "up" with the start view; ``reset`` puts the same view on the world up so orbiting stays level."""

    def wait_then_reset(client: viser.ClientHandle) -> None:
        t_end = time.monotonic() + timeout
        while not has_camera(client) and time.monotonic() < t_end:
            time.sleep(0.05)
        if has_camera(client):
            reset(client)

    server.on_client_connect(lambda c: threading.Thread(target=wait_then_reset, args=(c,), daemon=True).start())


_CONTROLS_HELP = "Drag: orbit · right-drag: pan · wheel: zoom · W/A/S/D/Q/E: move · arrow keys: turn"


class Viewer:
    """A running viewer. Stop it with :meth:`stop` (or use it as a context manager).

    Attributes:
        server: the underlying ``viser.ViserServer``.
        player: camera-path playback, or ``None`` without a path.
        num_splats: number of Gaussians shown.
        up: (3,) world up direction of the orbit controls.
    """

    def __init__(
        self,
        server: viser.ViserServer,
        num_splats: int,
        camera_path: CameraPath | None,
        up: np.ndarray,
        frustum_scale: float,
        verbose: bool = False,
        start: tuple[np.ndarray, float] | None = None,
        roles: list[str] | None = None,
    ):
        self.server = server
        self.start = start
        self.splats: SplatLayer | None = None
        self.camera_toggle: FrustumToggle | None = None
        self.up = np.asarray(up, dtype=np.float64)
        self.verbose = verbose
        self.num_splats = num_splats
        self.camera_path = camera_path
        self.player = None
        if start is not None:
            add_view_buttons(server, self.reset_view)
            reset_on_connect(server, self.reset_view)
        if camera_path is not None:
            self.player = CameraPathPlayer(server, camera_path, self._apply_path_frame, frustum_scale=frustum_scale, roles=roles)

    # ------------------------------------------------------------------ lifecycle
    @property
    def host(self) -> str:
        return self.server.get_host()

    @property
    def port(self) -> int:
        """The port actually bound (viser takes the next free one when the requested port is busy)."""
        return self.server.get_port()

    @property
    def url(self) -> str:
        return page_url(self.host, self.port)

    def stop(self) -> None:
        """Stop playback and the web server."""
        if self.player is not None:
            self.player.stop()
        with _quiet(not self.verbose):  # viser prints "Server stopped" from its thread
            self.server.stop()

    def __enter__(self) -> Viewer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ clients and cameras
    def clients(self) -> list[viser.ClientHandle]:
        """Connected browser tabs, in connection order."""
        return [c for _, c in sorted(self.server.get_clients().items())]

    def wait_for_client(self, timeout: float = 30.0) -> viser.ClientHandle:
        """Block until a browser is connected and has reported its camera; returns its handle."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            for c in self.clients():
                if has_camera(c):
                    return c
            time.sleep(0.02)
        raise TimeoutError(f"no browser connected to {self.url} within {timeout:.0f} s")

    def set_camera(self, c2w: np.ndarray, fov_y: float | None = None, clients: list[viser.ClientHandle] | None = None) -> None:
        """Move browser cameras to ``c2w (4, 4)`` (OpenCV camera-to-world), optionally with vertical FOV ``fov_y`` (radians).

        Applies to ``clients`` (default: every connected client).
        """
        move_clients(self.clients() if clients is None else clients, c2w, fov_y, self.up)

    @staticmethod
    def get_camera(client: viser.ClientHandle) -> tuple[np.ndarray, float]:
        """A client's current camera: ``(c2w (4, 4) OpenCV, fov_y radians)`` as last reported by the browser."""
        return viser_to_c2w(client.camera.wxyz, client.camera.position), float(client.camera.fov)

    def reset_view(self, client: viser.ClientHandle | None = None) -> None:
        """Move ``client`` (default: every client) back to the start camera."""
        if self.start is not None:
            self.set_camera(self.start[0], self.start[1], None if client is None else [client])

    def _apply_path_frame(self, i: int) -> None:
        assert self.camera_path is not None
        self.set_camera(self.camera_path.cameras.c2w[i], float(self.camera_path.fov_y[i]))


def find_scene_cameras(ply_path: str | Path) -> Path | None:
    """The cameras of a splat ``.ply``: ``<name>.cameras.json`` beside it (what ``see3d reconstruct`` writes),
    else a ``transforms.json`` in its folder; None when there is neither."""
    from see3d.splat.export import scene_cameras_path

    for p in (scene_cameras_path(ply_path), Path(ply_path).with_name("transforms.json")):
        if p.is_file():
            return p
    return None


def serve(
    ply_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    camera_path: str | Path | CameraPath | None = None,
    up: str | tuple[float, float, float] = "auto",
    verbose: bool = False,
    cameras: str | Path | CameraPath | None = "auto",
) -> Viewer:
    """Serve an interactive viewer of the splats in ``ply_path`` (standard 3DGS ``.ply``) and return at once.

    Args:
        ply_path: Gaussian splat ``.ply`` (see :mod:`see3d.splat.gaussians`).
        host: interface to bind; 127.0.0.1 (this machine only) by default (others are warned about).
        port: port to bind; 0 picks a free one; if taken, viser moves to the next free port
            (read :attr:`Viewer.port` / :attr:`Viewer.url`).
        camera_path: nerfstudio ``camera_path.json`` or ``transforms.json`` (or a loaded
            :class:`CameraPath`) to play back; default: the scene cameras.
        up: world up direction for the orbit controls (see :func:`parse_up`; "auto": from the cameras).
        verbose: let viser print its banner and connection messages.
        cameras: the scene's cameras (drawn as frustums; the page opens at the first one): "auto" finds
            them beside the ``.ply`` (:func:`find_scene_cameras`), or a file / :class:`CameraPath`, or None.

    Returns:
        the running :class:`Viewer`; call ``.stop()`` when done.
    """
    check_listen_address(host, port)
    gaussians = read_ply(ply_path)
    if len(gaussians) == 0:
        raise InputError(ply_path, "has no Gaussians to show")
    path = load_camera_path(camera_path) if isinstance(camera_path, (str, Path)) else camera_path
    if isinstance(cameras, str) and cameras == "auto":
        cameras = find_scene_cameras(ply_path)
        try:
            scene_cams = None if cameras is None else load_camera_path(cameras)
        except InputError as e:  # a broken file beside the .ply: show the splats anyway, from the default view
            log.warning("ignoring the scene cameras: %s", e)
            cameras = scene_cams = None
    else:
        scene_cams = load_camera_path(cameras) if isinstance(cameras, (str, Path)) else cameras
    roles = read_camera_roles(cameras) if isinstance(cameras, (str, Path)) and path is None else None
    up_vec = parse_up(up, scene_cams if scene_cams is not None else path)
    splats = viser_splats(gaussians)
    center, radius = scene_bounds(splats.centers)

    with _quiet(not verbose):  # viser prints a banner regardless of its `verbose` flag
        server = viser.ViserServer(host=host, port=port, label="see3d", verbose=verbose)
    try:
        server.gui.configure_theme(show_share_button=False)
        server.gui.add_markdown(f"**{Path(ply_path).name}**: {len(gaussians):,} splats  \n{_CONTROLS_HELP}")
        server.scene.set_up_direction(up_vec)
        first = scene_cams if scene_cams is not None else path
        if first is not None:
            start_c2w, start_fov = first.cameras.c2w[0], float(first.fov_y[0])
        else:
            pos, look = default_view(center, radius, up_vec)
            start_c2w, start_fov = look_at_c2w(pos, look, up_vec), float(np.deg2rad(60.0))
        set_initial_camera(server, start_c2w, start_fov, radius, float(np.linalg.norm(center)))
        viewer = Viewer(server, len(gaussians), path if path is not None else scene_cams, up_vec, frustum_scale=0.05 * radius,
                        verbose=verbose, start=(start_c2w, start_fov), roles=roles)  # fmt: skip
        viewer.splats = SplatLayer(server, max_default=max(len(gaussians), 1000))
        viewer.splats.set(splats)
        if scene_cams is not None and path is not None:  # the path is played; the scene cameras are drawn too
            with server.gui.add_folder("Scene cameras"):
                viewer.camera_toggle = FrustumToggle(server, "Show cameras", initial=True)
            viewer.camera_toggle.extend(add_frustums(server, "/scene_cameras", scene_cams.cameras, INPUT_COLOR, 0.05 * radius))
    except BaseException:
        server.stop()
        raise
    log.info("serving %d splats from %s at %s", len(gaussians), ply_path, viewer.url)
    return viewer


def look_at_c2w(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(4, 4) OpenCV c2w at ``eye`` looking at ``target`` with image-up along ``up`` (world)."""
    from see3d.io.cameras import look_at

    return look_at(eye, target, up=-np.asarray(up, dtype=np.float64))


def set_initial_camera(server: viser.ViserServer, c2w: np.ndarray, fov_y: float, radius: float, center_dist: float = 0.0) -> None:
    """New browsers start looking through ``c2w`` (OpenCV) with vertical FOV ``fov_y``; clip planes scaled to the scene."""
    c2w = np.asarray(c2w, dtype=np.float64)
    server.initial_camera.position = c2w[:3, 3]
    server.initial_camera.look_at = c2w[:3, 3] + c2w[:3, 2] * radius
    server.initial_camera.up = -c2w[:3, 1]
    server.initial_camera.fov = float(fov_y)
    # Clip planes scaled to the scene, so tiny (or huge) scene units are not clipped away.
    server.initial_camera.near = 1e-3 * radius
    server.initial_camera.far = 1e3 * (radius + center_dist)
