"""Labelled synthetic clips: good multi-view clips and the variants a curation filter must reject.

Kinds (label ``keep``, reason ``ok``): ``orbit``, ``dolly``, ``pan``, ``spiral``, ``handheld``.
Reject kinds (label ``drop``, reason = the kind's :mod:`see3d.labels` code):

- ``dynamic``: a good camera path (orbit / handheld / spiral) plus a large object (0.45-0.7 m) that
  slides 0.6-1.0 m and bounces or spins at the focus, covering a clear part of the image;
- ``static_camera``: one pose for every frame;
- ``rotation_only``: pan 25-45 degrees (plus gentle tilt) about a fixed camera centre;
- ``small_motion``: a translation of 0.5-1.5% of the viewing distance over the whole clip
  (typically well under a pixel of flow per frame);
- ``too_short``: 4-6 consecutive frames of a good path sampled for ``n_frames`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from see3d import labels
from see3d.io.cameras import Cameras
from see3d.io.views import Views
from see3d.synth.paths import GOOD_PATHS, camera_path
from see3d.synth.render import render_full
from see3d.synth.scene import Scene, make_scene
from see3d.synth.shapes import Box, Cylinder, Motion, Shape, Sphere
from see3d.synth.textures import random_texture

GOOD_KINDS = GOOD_PATHS
REJECT_KINDS = {
    "dynamic": labels.DYNAMIC,
    "static_camera": labels.STATIC_CAMERA,
    "rotation_only": labels.ROTATION_ONLY,
    "small_motion": labels.SMALL_MOTION,
    "too_short": labels.TOO_SHORT,
}
KINDS = GOOD_KINDS + tuple(REJECT_KINDS)
_DEGENERATE_PATH = {"static_camera": "static", "rotation_only": "rotation", "small_motion": "small"}
_DYNAMIC_BASE = ("orbit", "handheld", "spiral")


def label_of(kind: str) -> tuple[str, str]:
    """(label, reason) of a clip kind: ("keep", "ok") for good kinds, ("drop", code) for reject kinds."""
    if kind in GOOD_KINDS:
        return labels.KEEP, labels.OK
    if kind in REJECT_KINDS:
        return labels.DROP, REJECT_KINDS[kind]
    raise ValueError(f"unknown clip kind {kind!r}; expected one of {KINDS}")


@dataclass
class SynthClip:
    """A rendered synthetic clip with its ground truth.

    Attributes:
        frames: (N, H, W, 3) float32 RGB in [0, 1].
        depth: (N, H, W) float32 metric z-depth, metres.
        cameras: N OpenCV cameras (c2w in scene metres, world y down).
        times: (N,) seconds of each frame (frame index / fps, offset for ``too_short`` windows).
        label, reason: :mod:`see3d.labels` codes ("keep"/"ok" or "drop"/<reason>).
        kind: the clip kind (:data:`KINDS`).
        seed: the seed it was made from (with ``kind`` it determines the clip bit for bit).
        fps: frame rate for the video.
        scene: the (static part of the) scene plus any moving object.
        moving_mask: (N, H, W) bool pixels showing an independently moving object, or None.
        meta: path kind, scene kind, FOV, camera motion and depth statistics (JSON-friendly).
    """

    frames: np.ndarray
    depth: np.ndarray
    cameras: Cameras
    times: np.ndarray
    label: str
    reason: str
    kind: str
    seed: int
    fps: float
    scene: Scene
    moving_mask: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def views(self) -> Views:
        """The clip as :class:`~see3d.io.views.Views` with metric depth."""
        return Views(self.frames, self.cameras, depth=self.depth, depth_is_metric=True)


def image_size(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """(width, height) from an int (square) or a (width, height) pair."""
    if isinstance(size, (int, np.integer)):
        w = h = int(size)
    else:
        vals = [int(v) for v in size]
        if len(vals) == 1:
            vals = vals * 2
        if len(vals) != 2:
            raise ValueError(f"size must be an int or (width, height), got {size!r}")
        w, h = vals
    if w < 8 or h < 8:
        raise ValueError(f"image size must be at least 8x8, got {w}x{h}")
    return w, h


def camera_motion(cameras: Cameras) -> dict:
    """Camera motion over a clip: max distance of a centre from the first (m) and max rotation
    from the first orientation (degrees)."""
    c = cameras.centers
    R = cameras.c2w[:, :3, :3]
    rel = np.einsum("ji,njk->nik", R[0], R)  # R0^T R_n
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)
    return {
        "translation_m": float(np.linalg.norm(c - c[0], axis=1).max()),
        "rotation_deg": float(np.rad2deg(np.arccos(cos)).max()),
    }


def make_mover(scene: Scene, rng: np.random.Generator, duration: float) -> Shape:
    """A large textured object (0.45-0.7 m) at the scene's focus, moving independently: a sphere that
    slides and bounces, a box that slides and spins, or a cylinder that slides and hops. Its slide
    direction is set by the caller (``motion.direction``)."""
    hue = float(rng.random())
    tex = random_texture(rng, hue, scale=(0.08, 0.2), patterns=("checker", "stripes", "tiles"))
    size = float(rng.uniform(0.45, 0.7))
    motion = Motion(
        amplitude=float(rng.uniform(0.6, 1.0)),
        period=float(duration * rng.uniform(0.8, 1.4)),
        phase=float(rng.uniform(0, 2 * np.pi)),
    )
    kind = rng.choice(["sphere", "box", "cylinder"])
    x, z = scene.focus[0], scene.focus[2]
    if kind == "sphere":
        motion.bounce, motion.bounce_period = float(rng.uniform(0.3, 0.6)), float(duration * rng.uniform(0.3, 0.5))
        return Sphere(tex, np.array([x, -size, z]), radius=size, motion=motion, name="mover")
    if kind == "box":
        motion.spin = float(rng.uniform(0.8, 1.6) * rng.choice([-1, 1]))
        half = np.array([size, size * rng.uniform(0.7, 1.0), size * rng.uniform(0.6, 1.0)])
        return Box(tex, np.array([x, -half[1], z]), float(rng.uniform(0, 2 * np.pi)), motion=motion, half=half, name="mover")
    motion.bounce, motion.bounce_period = float(rng.uniform(0.2, 0.4)), float(duration * rng.uniform(0.4, 0.6))
    hh = size * rng.uniform(1.0, 1.4)
    return Cylinder(tex, np.array([x, -hh, z]), motion=motion, radius=size * 0.8, half_height=hh, name="mover")


def _insert_mover(scene: Scene, mover: Shape) -> Scene:
    """The scene with ``mover`` added and the static objects in its swept volume removed."""
    reach = mover.bounding_radius() + (mover.motion.reach if mover.motion is not None else 0.0)
    removed = set()
    keep = []
    for s in scene.shapes:
        if s.is_object:
            dist = np.hypot(*(s.centre[[0, 2]] - mover.centre[[0, 2]]))
            if dist < reach + s.bounding_radius() + 0.1 or any(s.name.startswith(r + "_") for r in removed):
                removed.add(s.name)
                continue
        keep.append(s)
    return scene.with_shapes([*keep[:-1], mover, keep[-1]])  # the sky dome stays last


def _moving_fraction(scene: Scene, cams: Cameras, times: np.ndarray, index: int) -> np.ndarray:
    """Per-frame fraction of pixels showing shape ``index`` (cheap low-resolution id render)."""
    small = cams.resized(48, max(8, round(48 * cams.height / cams.width)))
    ids = render_full(scene, small, times, shade=False).ids
    return (ids == index).mean(axis=(1, 2))


def make_clip(seed: int, kind: str = "orbit", n_frames: int = 48, size: int | tuple[int, int] = 256, fps: float = 24.0) -> SynthClip:
    """Render one labelled synthetic clip (deterministic in ``(seed, kind, n_frames, size, fps)``).

    Args:
        seed: scene and path seed (the scene depends on ``seed`` only).
        kind: one of :data:`KINDS`.
        n_frames: frames in the clip (``too_short`` clips keep 4-6 of them).
        size: image size, an int (square) or (width, height).
        fps: frames per second (object motion is defined in seconds).
    """
    label, reason = label_of(kind)
    if n_frames < 1:
        raise ValueError(f"make_clip: n_frames must be >= 1, got {n_frames}")
    w, h = image_size(size)
    rng = np.random.default_rng([int(seed), 0xC11B, KINDS.index(kind)])
    scene = make_scene(seed)
    fov = float(rng.uniform(50.0, 70.0))
    times = np.arange(n_frames) / float(fps)
    mover_index = None
    meta: dict = {}

    if kind in GOOD_KINDS:
        path = kind
        c2w = camera_path(kind, scene, n_frames, rng)
    elif kind in _DEGENERATE_PATH:
        path = _DEGENERATE_PATH[kind]
        c2w = camera_path(path, scene, n_frames, rng)
    elif kind == "too_short":
        path = str(rng.choice(GOOD_KINDS))
        n_short = int(rng.integers(4, 7))
        total = max(n_frames, n_short + 8)
        full = camera_path(path, scene, total, rng)
        start = int(rng.integers(0, total - n_short + 1))
        c2w = full[start : start + n_short]
        times = (start + np.arange(n_short)) / float(fps)
    else:  # dynamic
        path = str(rng.choice(_DYNAMIC_BASE))
        duration = max(n_frames / float(fps), 0.5)
        for _ in range(20):
            mover = make_mover(scene, rng, duration)
            # sample the path around a static stand-in covering every position the mover can reach
            stand_in = Sphere(mover.texture, mover.centre.copy(), radius=mover.bounding_radius() + mover.motion.reach, name="stand_in")
            c2w = camera_path(path, _insert_mover(scene, stand_in), n_frames, rng)
            view = scene.focus - c2w[:, :3, 3].mean(axis=0)
            across = np.cross(view, [0.0, -1.0, 0.0])  # slide across the image
            across[1] = 0.0
            mover.motion.direction = across / np.linalg.norm(across)
            dyn_scene = _insert_mover(scene, mover)
            mover_index = dyn_scene.shapes.index(mover)
            cams = Cameras.from_fov(c2w, fov, w, h)
            frac = _moving_fraction(dyn_scene, cams, times, mover_index)
            if np.median(frac) >= 0.06 and frac.min() >= 0.02:
                break
        scene = dyn_scene

    cams = Cameras.from_fov(c2w, fov, w, h)
    out = render_full(scene, cams, times)
    moving = None
    if mover_index is not None:
        moving = out.ids == mover_index
        meta["moving_fraction"] = float(moving.mean())
    valid = out.depth > 0
    meta.update(
        path=path,
        scene_kind=scene.kind,
        fov_deg=fov,
        median_depth_m=float(np.median(out.depth[valid])) if valid.any() else 0.0,
        **camera_motion(cams),
    )
    return SynthClip(out.rgb, out.depth, cams, times, label, reason, kind, int(seed), float(fps), scene, moving, meta)
