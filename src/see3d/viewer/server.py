"""`serve`: an interactive web viewer for a Gaussian-splat ``.ply``, built on viser.

The browser page (viser's client, shipped inside the viser wheel: no network needed) renders the
splats with WebGL and offers orbit (left drag), pan (right drag), zoom (wheel) and keyboard moves
(W/A/S/D/Q/E move, arrow keys turn). A camera path, if given, adds playback controls
(:mod:`see3d.viewer.playback`). Cameras use our OpenCV convention throughout
(:mod:`see3d.viewer.camera_path` explains why viser needs no axis flip).
"""

from __future__ import annotations

import contextlib
import io
import socket
import time
from pathlib import Path

import numpy as np
import viser

from see3d.errors import InputError
from see3d.log import get_logger
from see3d.splat.gaussians import read_ply
from see3d.viewer.camera_path import CameraPath, c2w_to_viser, load_camera_path, viser_to_c2w
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


def _has_camera(client: viser.ClientHandle) -> bool:
    """Whether the browser has reported its camera yet (viser's camera properties assert on it otherwise)."""
    return client.camera._state.update_timestamp != 0.0


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
    ):
        self.server = server
        self.up = np.asarray(up, dtype=np.float64)
        self.verbose = verbose
        self.num_splats = num_splats
        self.camera_path = camera_path
        self.player = None
        if camera_path is not None:
            self.player = CameraPathPlayer(server, camera_path, self._apply_path_frame, frustum_scale=frustum_scale)

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
        host = self.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

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
                if _has_camera(c):
                    return c
            time.sleep(0.02)
        raise TimeoutError(f"no browser connected to {self.url} within {timeout:.0f} s")

    def set_camera(self, c2w: np.ndarray, fov_y: float | None = None, clients: list[viser.ClientHandle] | None = None) -> None:
        """Move browser cameras to ``c2w (4, 4)`` (OpenCV camera-to-world), optionally with vertical FOV ``fov_y`` (radians).

        Applies to ``clients`` (default: every connected client).
        """
        wxyz, pos = c2w_to_viser(np.asarray(c2w, dtype=np.float64))
        for client in clients if clients is not None else self.clients():
            if not _has_camera(client):
                continue  # still connecting: it starts at the initial camera instead
            with client.atomic():
                if fov_y is not None:
                    client.camera.fov = float(fov_y)
                # Start from the world up: viser keeps the orbit "up" as close as it can to the previous
                # one, which otherwise drifts with every rolled pose (and W/S/Q/E move relative to it).
                client.camera.up_direction = self.up
                client.camera.position = pos
                client.camera.wxyz = wxyz
            client.flush()

    @staticmethod
    def get_camera(client: viser.ClientHandle) -> tuple[np.ndarray, float]:
        """A client's current camera: ``(c2w (4, 4) OpenCV, fov_y radians)`` as last reported by the browser."""
        return viser_to_c2w(client.camera.wxyz, client.camera.position), float(client.camera.fov)

    def _apply_path_frame(self, i: int) -> None:
        assert self.camera_path is not None
        self.set_camera(self.camera_path.cameras.c2w[i], float(self.camera_path.fov_y[i]))


def check_listen_address(host: str, port: int) -> None:
    """Raise :class:`InputError` unless ``port`` is a valid TCP port and ``host`` is an address of this machine
    (binding elsewhere fails, and viser would retry forever)."""
    if not 0 <= int(port) <= 65535:
        raise InputError(None, f"--port must be in 0..65535 (got {port})")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise InputError(None, f"--host {host!r} is not a known address ({e})") from e
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((addr[0], 0))
        except OSError as e:
            raise InputError(None, f"--host {host}: cannot listen there, it is not an address of this machine ({e.strerror})") from e


def serve(
    ply_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    camera_path: str | Path | CameraPath | None = None,
    up: str | tuple[float, float, float] = "auto",
    verbose: bool = False,
) -> Viewer:
    """Serve an interactive viewer of the splats in ``ply_path`` (standard 3DGS ``.ply``) and return at once.

    Args:
        ply_path: Gaussian splat ``.ply`` (see :mod:`see3d.splat.gaussians`).
        host: interface to bind; 127.0.0.1 (this machine only) by default.
        port: port to bind; 0 picks a free one; if taken, viser moves to the next free port
            (read :attr:`Viewer.port` / :attr:`Viewer.url`).
        camera_path: nerfstudio ``camera_path.json`` or ``transforms.json`` (or a loaded
            :class:`CameraPath`) to play back; new browsers start at its first camera.
        up: world up direction for the orbit controls (see :func:`parse_up`).
        verbose: let viser print its banner and connection messages.

    Returns:
        the running :class:`Viewer`; call ``.stop()`` when done.
    """
    check_listen_address(host, port)
    gaussians = read_ply(ply_path)
    if len(gaussians) == 0:
        raise InputError(ply_path, "has no Gaussians to show")
    path = load_camera_path(camera_path) if isinstance(camera_path, (str, Path)) else camera_path
    up_vec = parse_up(up, path)
    splats = viser_splats(gaussians)
    center, radius = scene_bounds(splats.centers)

    with _quiet(not verbose):  # viser prints a banner regardless of its `verbose` flag
        server = viser.ViserServer(host=host, port=port, label="see3d", verbose=verbose)
    try:
        server.gui.configure_theme(show_share_button=False)
        server.gui.add_markdown(f"**{Path(ply_path).name}**: {len(gaussians):,} splats  \n{_CONTROLS_HELP}")
        server.scene.set_up_direction(up_vec)
        server.scene.add_gaussian_splats(
            "/splats", centers=splats.centers, covariances=splats.covariances, rgbs=splats.rgbs, opacities=splats.opacities
        )
        if path is not None:
            wxyz, pos = path.viser_poses()
            look = pos[0] + path.cameras.c2w[0, :3, 2] * radius
            server.initial_camera.position = pos[0]
            server.initial_camera.look_at = look
            server.initial_camera.up = -path.cameras.c2w[0, :3, 1]
            server.initial_camera.fov = float(path.fov_y[0])
        else:
            pos, look = default_view(center, radius, up_vec)
            server.initial_camera.position = pos
            server.initial_camera.look_at = look
            server.initial_camera.up = up_vec
        # Clip planes scaled to the scene, so tiny (or huge) scene units are not clipped away.
        server.initial_camera.near = 1e-3 * radius
        server.initial_camera.far = 1e3 * (radius + float(np.linalg.norm(center)))
        viewer = Viewer(server, len(gaussians), path, up_vec, frustum_scale=0.05 * radius, verbose=verbose)
    except BaseException:
        server.stop()
        raise
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("the viewer listens on %s: other machines can reach it (no authentication)", host)
    log.info("serving %d splats from %s at %s", len(gaussians), ply_path, viewer.url)
    return viewer
