"""GUI pieces shared by ``see3d view`` and ``see3d app``: camera frustums with a toggle, render-quality
settings for the splats, and the reset-view / screenshot buttons."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import viser
from PIL import Image

from see3d.io.cameras import Cameras
from see3d.viewer.camera_path import c2w_to_viser, fov_y_from_intrinsics
from see3d.viewer.splats import ViserSplats, subset_splats

INPUT_COLOR = (30, 110, 230)  # input / scene cameras
GENERATED_COLOR = (20, 170, 70)  # generated views
PATH_COLOR = (255, 120, 0)  # camera path to generate / play


def add_frustums(
    server: viser.ViserServer,
    name: str,
    cameras: Cameras,
    color: tuple[int, int, int],
    scale: float,
    images: np.ndarray | None = None,
    visible: bool = True,
    start: int = 0,
) -> list:
    """Draw ``cameras`` as frustums under scene node ``name`` (``name/00000``, ...), with ``images (N, H, W, 3)``
    in [0, 1] on their far planes if given. ``start`` offsets the node numbers. Returns the handles."""
    wxyz, pos = c2w_to_viser(cameras.c2w)
    fov = fov_y_from_intrinsics(cameras.K, cameras.height)
    out = []
    for i in range(len(cameras)):
        img = None if images is None else (np.clip(images[i], 0, 1) * 255).astype(np.uint8)
        out.append(
            server.scene.add_camera_frustum(
                f"{name}/{start + i:05d}", fov=float(fov[i]), aspect=cameras.width / cameras.height, scale=scale,
                thickness=2.0, thickness_units="screen", color=color, wxyz=wxyz[i], position=pos[i], image=img, visible=visible,
            )  # fmt: skip
        )
    return out


class FrustumToggle:
    """A checkbox that shows or hides a growing set of frustum handles."""

    def __init__(self, server: viser.ViserServer, label: str, initial: bool = True):
        self.handles: list = []
        self.checkbox = server.gui.add_checkbox(label, initial_value=initial)
        self.checkbox.on_update(lambda _: self._apply())

    @property
    def visible(self) -> bool:
        return bool(self.checkbox.value)

    def extend(self, handles: list) -> None:
        for h in handles:
            h.visible = self.visible
        self.handles += handles

    def clear(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def _apply(self) -> None:
        for h in self.handles:
            h.visible = self.visible


class SplatLayer:
    """The splats of a scene node, with render-quality settings (max splats, min opacity) in a GUI folder.

    :meth:`set` replaces the splats (e.g. live while optimising); the settings re-send the current ones.
    """

    def __init__(self, server: viser.ViserServer, name: str = "/splats", max_default: int = 2_000_000):
        self.server, self.name = server, name
        self._splats: ViserSplats | None = None
        self._handle = None
        self._shown = 0
        with server.gui.add_folder("Render quality", expand_by_default=False):
            self.max_splats = server.gui.add_number("Max splats", initial_value=max_default, min=1000, max=10_000_000, step=1000,
                                                    hint="fewer splats render faster on weak GPUs (the largest, most opaque are kept)")  # fmt: skip
            self.min_opacity = server.gui.add_slider("Min opacity", min=0.0, max=0.5, step=0.01, initial_value=0.0,
                                                     hint="hide faint splats (floaters)")  # fmt: skip
        self.max_splats.on_update(lambda _: self._send())
        self.min_opacity.on_update(lambda _: self._send())

    @property
    def num_shown(self) -> int:
        """Splats sent to the browser after the quality settings."""
        return self._shown

    def set(self, splats: ViserSplats) -> None:
        self._splats = splats
        self._send()

    def clear(self) -> None:
        """Remove the splats from the scene."""
        if self._handle is not None:
            self._handle.remove()
        self._splats, self._handle, self._shown = None, None, 0

    def _send(self) -> None:
        if self._splats is None:
            return
        s = subset_splats(self._splats, int(self.max_splats.value), float(self.min_opacity.value))
        self._shown = len(s.centers)
        self._handle = self.server.scene.add_gaussian_splats(  # same name: replaces the previous node
            self.name, centers=s.centers, covariances=s.covariances, rgbs=s.rgbs, opacities=s.opacities
        )


def screenshot(client: viser.ClientHandle, timeout: float = 30.0) -> np.ndarray:
    """(H, W, 3) uint8: what ``client``'s browser renders now, at its window size (viser's ``get_render``)."""
    w, h = int(client.camera.image_width), int(client.camera.image_height)
    img = client.get_render(height=h, width=w, transport_format="png", timeout=timeout)
    rgb = img[..., :3].astype(np.float64)
    if img.shape[-1] == 4:  # transparent background: composite over the page's white
        a = img[..., 3:4].astype(np.float64) / 255.0
        rgb = rgb * a + 255.0 * (1 - a)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def add_view_buttons(server: viser.ViserServer, reset: Callable[[viser.ClientHandle], None], name: str = "see3d") -> None:
    """"Reset view" (calls ``reset(client)``) and "Screenshot" (sends the browser a PNG of its view) buttons."""
    with server.gui.add_folder("View"):
        reset_btn = server.gui.add_button("Reset view", icon=viser.Icon.HOME, hint="back to the first camera")
        shot_btn = server.gui.add_button("Screenshot", icon=viser.Icon.CAMERA, hint="download a PNG of this view")

    @reset_btn.on_click
    def _(event: viser.GuiEvent) -> None:
        if event.client is not None:
            reset(event.client)

    @shot_btn.on_click
    def _(event: viser.GuiEvent) -> None:
        if event.client is not None:
            event.client.send_file_download(f"{name}_screenshot.png", png_bytes(screenshot(event.client)), save_immediately=True)
