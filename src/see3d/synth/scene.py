"""Procedural static scenes, varied by seed: a textured room or an outdoor ground plane with objects.

Conventions (shared by the whole :mod:`see3d.synth` package): metres; world y points **down**, the
floor / ground is y = 0 and objects stand on it at negative y; cameras are OpenCV (see
:func:`see3d.io.cameras.look_at`, whose default up vector is world -y).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from see3d.synth.shapes import Box, Cylinder, GroundPlane, RoomShell, Shape, SkyDome, Sphere
from see3d.synth.textures import PATTERNS, random_texture, sky_texture

SCENE_KINDS = ("room", "outdoor")
CAMERA_CLEARANCE = 0.4  # metres a camera keeps from walls, ground and object bounding spheres


@dataclass(eq=False)
class Scene:
    """A synthetic world.

    Attributes:
        seed: the seed it was made from.
        kind: "room" or "outdoor".
        shapes: every surface; a :class:`~see3d.synth.shapes.SkyDome` last, so every ray hits something.
        light_dir: (3,) unit direction the directional light travels (world).
        ambient: ambient light fraction in [0, 1].
        focus: (3,) point of interest (centre of the main object group) that camera paths look at.
        bounds: (2, 3) min / max corner of the box camera centres must stay in (already shrunk by
            :data:`CAMERA_CLEARANCE` from walls, ceiling and ground).
        view_distance: (min, max) metres between the camera and ``focus`` that paths aim for.
    """

    seed: int
    kind: str
    shapes: list[Shape]
    light_dir: np.ndarray
    ambient: float
    focus: np.ndarray
    bounds: np.ndarray
    view_distance: tuple[float, float]
    meta: dict = field(default_factory=dict)

    @property
    def objects(self) -> list[Shape]:
        """Solid shapes (boxes, spheres, cylinders) cameras must not enter."""
        return [s for s in self.shapes if s.is_object]

    def with_shapes(self, shapes: list[Shape]) -> Scene:
        """A copy with another shape list (the dome is kept last)."""
        return replace(self, shapes=list(shapes))

    def clearance(self, points: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """Free distance (metres) around each point ``(P, 3)``: to the camera bounds and to every object's
        bounding sphere at the matching time ``times (P,)`` seconds. Negative = not allowed."""
        pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
        times = np.zeros(len(pts)) if times is None else np.broadcast_to(np.asarray(times, dtype=np.float64), (len(pts),))
        lo, hi = self.bounds
        free = np.minimum((pts - lo).min(axis=1), (hi - pts).min(axis=1))
        for obj in self.objects:
            centres = np.stack([obj.pose(float(t))[0] for t in times]) if obj.motion is not None else obj.centre[None]
            dist = np.linalg.norm(pts - centres, axis=1) - obj.bounding_radius() - CAMERA_CLEARANCE
            free = np.minimum(free, dist)
        return free


def _place(rng: np.random.Generator, taken: list[tuple[float, float, float]], radius: float, sampler, tries: int = 60):
    """Sample an (x, z) from ``sampler()`` whose disc of ``radius`` does not overlap the ``taken`` discs."""
    for _ in range(tries):
        x, z = sampler()
        if all(np.hypot(x - tx, z - tz) > radius + tr + 0.1 for tx, tz, tr in taken):
            return float(x), float(z)
    return None


def random_object(rng: np.random.Generator, hue: float, size: tuple[float, float], name: str) -> Shape:
    """A random box, sphere or cylinder of characteristic half-size in ``size`` (metres), resting on
    the floor at the origin (move it with ``centre[[0, 2]]``)."""
    kind = rng.choice(["box", "sphere", "cylinder"], p=[0.45, 0.3, 0.25])
    tex = random_texture(rng, hue, scale=(0.06, 0.25))
    yaw = float(rng.uniform(0, 2 * np.pi))
    if kind == "box":
        half = rng.uniform(*size, size=3)
        return Box(tex, np.array([0.0, -half[1], 0.0]), yaw, half=half, name=name)
    if kind == "sphere":
        r = float(rng.uniform(*size))
        return Sphere(tex, np.array([0.0, -r, 0.0]), yaw, radius=r, name=name)
    r = float(rng.uniform(size[0] * 0.7, size[1] * 0.8))
    hh = float(rng.uniform(size[0], size[1] * 1.3))
    return Cylinder(tex, np.array([0.0, -hh, 0.0]), yaw, radius=r, half_height=hh, name=name)


def footprint_radius(shape: Shape) -> float:
    """Radius (metres) of the shape's footprint on the floor (for non-overlapping placement)."""
    if isinstance(shape, Box):
        return float(np.hypot(shape.half[0], shape.half[2]))
    if isinstance(shape, (Sphere, Cylinder)):
        return float(shape.radius)
    return shape.bounding_radius()


def _scatter(rng, hue, n, size, sampler, taken, prefix) -> list[Shape]:
    out = []
    for i in range(n):
        obj = random_object(rng, hue, size, f"{prefix}{i}")
        pos = _place(rng, taken, footprint_radius(obj), sampler)
        if pos is None:
            continue
        obj.centre[0], obj.centre[2] = pos
        taken.append((pos[0], pos[1], footprint_radius(obj)))
        out.append(obj)
        if isinstance(obj, Box) and rng.random() < 0.3:  # something small on top of a box
            r = float(rng.uniform(0.08, min(0.2, obj.half[0], obj.half[2])))
            top = obj.centre[1] - obj.half[1]
            out.append(
                Sphere(random_texture(rng, hue, scale=(0.04, 0.12)), np.array([pos[0], top - r, pos[1]]), radius=r, name=f"{prefix}{i}_top")
            )
    return out


def make_scene(seed: int, kind: str | None = None) -> Scene:
    """A random static scene for ``seed`` (deterministic). ``kind``: "room", "outdoor" or None (pick by seed)."""
    rng = np.random.default_rng([int(seed), 0x5CE4E])
    if kind is None:
        kind = str(rng.choice(SCENE_KINDS, p=[0.6, 0.4]))
    if kind not in SCENE_KINDS:
        raise ValueError(f"make_scene: unknown scene kind {kind!r}; expected one of {SCENE_KINDS}")
    hue = float(rng.random())
    tilt = rng.uniform(-0.7, 0.7, size=2)
    light = np.array([tilt[0], 1.0, tilt[1]])
    light /= np.linalg.norm(light)
    ambient = float(rng.uniform(0.35, 0.5))
    focus = np.array([0.0, -rng.uniform(0.35, 0.7), 0.0])
    taken: list[tuple[float, float, float]] = []
    dome = SkyDome(sky_texture(rng), np.zeros(3), radius=60.0, emissive=True, name="sky")
    if kind == "room":
        hx, hz = rng.uniform(3.5, 5.5, size=2)
        height = float(rng.uniform(2.6, 3.6))
        ceiling = bool(rng.random() < 0.7)
        wall = random_texture(rng, hue, scale=(0.2, 0.6))
        faces = []
        for f in range(6):
            if f == 3:  # floor: tiles, checkers or boards
                faces.append(
                    random_texture(rng, hue + 0.08, scale=(0.25, 0.6), patterns=("checker", "tiles", "stripes", "noise"), axis_aligned=True)
                )
            elif f == 2:
                faces.append(random_texture(rng, hue, scale=(0.3, 0.8), patterns=PATTERNS))
            else:  # walls: some share one texture, the others get their own
                faces.append(wall if rng.random() < 0.4 else random_texture(rng, hue, scale=(0.15, 0.6)))
        room = RoomShell(
            faces[0],
            np.array([0.0, -height / 2, 0.0]),
            half=np.array([hx, height / 2, hz]),
            open_top=not ceiling,
            textures=faces,
            name="room",
        )
        focus[[0, 2]] = rng.uniform(-0.4, 0.4, size=2)
        central = _scatter(rng, hue, int(rng.integers(2, 5)), (0.2, 0.5), lambda: focus[[0, 2]] + rng.uniform(-1.0, 1.0, 2), taken, "obj")
        margin = 0.15

        def near_wall():
            side = rng.integers(4)
            u = rng.uniform(-1, 1)
            d = rng.uniform(0.5, 1.1)
            if side == 0:
                return -hx + d, u * (hz - 1)
            if side == 1:
                return hx - d, u * (hz - 1)
            if side == 2:
                return u * (hx - 1), -hz + d
            return u * (hx - 1), hz - d

        peripheral = _scatter(rng, hue, int(rng.integers(2, 6)), (0.2, 0.45), near_wall, taken, "side")
        shapes: list[Shape] = [room, *central, *peripheral, dome]
        c = CAMERA_CLEARANCE
        bounds = np.array([[-hx + c, -height + c, -hz + c], [hx - c, -c, hz - c]])
        view = (2.0, float(min(hx, hz) - margin - 0.4))
        meta = {"room_half_extents_m": [float(hx), float(height / 2), float(hz)], "ceiling": ceiling}
    else:
        ground = GroundPlane(
            random_texture(rng, hue + 0.1, scale=(0.3, 0.9), patterns=("checker", "tiles", "noise", "stripes"), axis_aligned=True),
            np.zeros(3),
            name="ground",
        )
        central = _scatter(rng, hue, int(rng.integers(3, 7)), (0.2, 0.55), lambda: rng.uniform(-1.3, 1.3, 2), taken, "obj")

        def far():
            a, r = rng.uniform(0, 2 * np.pi), rng.uniform(9.0, 22.0)
            return r * np.cos(a), r * np.sin(a)

        background = _scatter(rng, hue, int(rng.integers(5, 10)), (0.8, 2.5), far, taken, "far")
        shapes = [ground, *central, *background, dome]
        bounds = np.array([[-25.0, -4.0, -25.0], [25.0, -CAMERA_CLEARANCE, 25.0]])
        view = (2.6, 5.5)
        meta = {}
    return Scene(int(seed), kind, shapes, light, ambient, focus, bounds, view, meta)
