"""Camera-path playback in the viewer: a GUI folder (play/pause, frame slider, fps, loop, show path)
and a background thread that steps through the path, moving every connected browser's camera."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import viser

from see3d.log import get_logger
from see3d.viewer.camera_path import CameraPath
from see3d.viewer.controls import GENERATED_COLOR, INPUT_COLOR, PATH_COLOR

log = get_logger(__name__)

MAX_FRUSTUMS = 100  # path cameras drawn in the scene, evenly subsampled
ROLE_COLORS = {"input": INPUT_COLOR, "generated": GENERATED_COLOR}


class CameraPathPlayer:
    """Plays a :class:`CameraPath` on a viser server.

    Args:
        server: the viser server whose GUI gets the playback controls.
        path: the cameras to play.
        apply: ``apply(frame_index)`` moves the clients' cameras to that frame.
        frustum_scale: size of the drawn path frustums, in world units.
        roles: optional role of each camera ("input" / "generated", as ``see3d app`` writes them beside its
            ``.ply``): each role gets its colour and a "Show <role> cameras" checkbox.
    """

    def __init__(self, server: viser.ViserServer, path: CameraPath, apply: Callable[[int], None], frustum_scale: float = 0.1,
                 roles: list[str] | None = None):  # fmt: skip
        self.path = path
        self._apply = apply
        self._playing = threading.Event()
        self._stop = threading.Event()
        n = len(path)
        with server.gui.add_folder("Camera path"):
            self.frame = server.gui.add_slider("Frame", min=0, max=max(n - 1, 1), step=1, initial_value=0, disabled=n < 2)
            self.play_button = server.gui.add_button("Play", icon=viser.Icon.PLAYER_PLAY)
            self.fps = server.gui.add_number("FPS", initial_value=float(path.fps), min=0.1, max=240.0, step=0.1)
            self.loop = server.gui.add_checkbox("Loop", initial_value=True)
            self.show_path = server.gui.add_checkbox("Show path", initial_value=True)
            self.roles = list(roles) if roles is not None and len(roles) == n else None
            self.show_role = {r: server.gui.add_checkbox(f"Show {r} cameras", initial_value=True) for r in dict.fromkeys(self.roles or [])}
        self._current = 0  # frame whose frustum is hidden: new browsers start by looking through frame 0
        self.frame.on_update(lambda _: self._go_to(self.index))
        self.play_button.on_click(lambda _: self.pause() if self.playing else self.play())
        self.show_path.on_update(lambda _: self._refresh_frustums())
        for box in self.show_role.values():
            box.on_update(lambda _: self._refresh_frustums())

        wxyz, pos = path.viser_poses()
        fov = path.fov_y
        aspect = path.cameras.width / path.cameras.height
        # Draw at most MAX_FRUSTUMS of the path's cameras (long nerfstudio paths have thousands).
        step = max(1, -(-n // MAX_FRUSTUMS))
        self._frustums = {
            i: server.scene.add_camera_frustum(
                f"/camera_path/{i:05d}",
                fov=float(fov[i]),
                aspect=aspect,
                scale=frustum_scale,
                thickness=0.01 * frustum_scale,
                color=ROLE_COLORS.get(self.roles[i], PATH_COLOR) if self.roles else PATH_COLOR,
                wxyz=wxyz[i],
                position=pos[i],
                visible=i != 0,
            )
            for i in range(0, n, step)
        }
        self._thread = threading.Thread(target=self._run, name="see3d-camera-path", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ control
    @property
    def index(self) -> int:
        """Current frame index."""
        return int(round(self.frame.value))

    @property
    def playing(self) -> bool:
        return self._playing.is_set()

    def play(self) -> None:
        """Start (or resume) stepping through the path at the GUI's fps."""
        if len(self.path) < 2:
            return
        if self.index >= len(self.path) - 1 and not self.loop.value:
            self.frame.value = 0
        self._playing.set()
        self.play_button.label = "Pause"
        self.play_button.icon = viser.Icon.PLAYER_PAUSE

    def pause(self) -> None:
        self._playing.clear()
        self.play_button.label = "Play"
        self.play_button.icon = viser.Icon.PLAYER_PLAY

    def show_frame(self, index: int) -> None:
        """Jump to frame ``index`` (moves every client's camera there)."""
        index = int(np.clip(index, 0, len(self.path) - 1))
        if index == self.index:
            self._go_to(index)  # the slider does not fire when unchanged; re-apply (a client may have moved)
        else:
            self.frame.value = index

    def stop(self) -> None:
        """Stop the playback thread (the GUI stays until the server stops)."""
        self._stop.set()
        self._playing.set()  # wake the thread
        self._thread.join(timeout=2.0)

    # ------------------------------------------------------------------ internals
    def _go_to(self, index: int) -> None:
        """Move the cameras to frame ``index`` and hide that frame's frustum (it would frame the view)."""
        index = int(np.clip(index, 0, len(self.path) - 1))
        prev, self._current = self._current, index
        if prev != index and prev in self._frustums:
            self._frustums[prev].visible = self._visible(prev)
        if index in self._frustums:
            self._frustums[index].visible = False
        self._apply(index)

    def _visible(self, i: int) -> bool:
        """Whether frame ``i``'s frustum is drawn: path shown, its role shown, and not the frame being looked through."""
        role_on = self.roles is None or bool(self.show_role[self.roles[i]].value)
        return bool(self.show_path.value) and role_on and i != self._current

    def _refresh_frustums(self) -> None:
        for i, f in self._frustums.items():
            f.visible = self._visible(i)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            if not self._playing.wait(timeout=0.25):
                next_t = time.monotonic()
                continue
            if self._stop.is_set():
                break
            next_t += 1.0 / max(float(self.fps.value), 0.1)
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_t = time.monotonic()  # fell behind: don't try to catch up by skipping
            if self._stop.is_set() or not self.playing:
                continue
            i = self.index + 1
            if i >= len(self.path):
                if not self.loop.value:
                    self.pause()
                    continue
                i = 0
            try:
                self.frame.value = i
            except Exception:  # a client vanishing mid-update must not kill playback
                log.debug("camera path frame update failed", exc_info=True)
