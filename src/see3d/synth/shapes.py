"""Analytic ray-casting primitives of the synthetic world (vectorised numpy).

World convention (see :mod:`see3d.synth`): OpenCV-like, **y points down**; the floor / ground is the
plane y = 0 and "height above the floor" is -y. Every shape has a pose: a centre (metres) and a yaw
(rotation about the vertical y axis), optionally animated by a :class:`Motion` (time ``t`` in seconds).
Textures are evaluated in the shape's local frame, so they move with it.

Rays are ``o + s * d`` with ``d`` scaled so that its component along the camera's optical axis is 1:
the ray parameter ``s`` of a hit *is* its z-depth in that camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from see3d.synth.textures import Texture

UP = np.array([0.0, -1.0, 0.0])  # world up (y points down)
_EPS = 1e-6


def _max3(a: np.ndarray) -> np.ndarray:
    """max over a last axis of length 3 (much faster than ``a.max(-1)`` for numpy's small-axis reductions)."""
    return np.maximum(np.maximum(a[..., 0], a[..., 1]), a[..., 2])


def _min3(a: np.ndarray) -> np.ndarray:
    return np.minimum(np.minimum(a[..., 0], a[..., 1]), a[..., 2])


def yaw_matrix(yaw: float) -> np.ndarray:
    """(3, 3) rotation by ``yaw`` radians about the world y axis (local -> world)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclass
class Motion:
    """Independent motion of an object (time ``t`` in seconds).

    offset(t) = direction * amplitude * sin(2 pi t / period + phase) + UP * bounce * |sin(pi t / bounce_period)|,
    yaw(t) = yaw0 + spin * t.
    """

    direction: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))
    amplitude: float = 0.0  # metres
    period: float = 1.0  # seconds
    phase: float = 0.0  # radians
    bounce: float = 0.0  # hop height, metres
    bounce_period: float = 1.0  # seconds per hop
    spin: float = 0.0  # radians per second

    def offset(self, t: float) -> np.ndarray:
        d = np.asarray(self.direction, dtype=np.float64)
        slide = self.amplitude * np.sin(2 * np.pi * t / self.period + self.phase)
        hop = self.bounce * abs(np.sin(np.pi * t / self.bounce_period))
        return d * slide + UP * hop

    @property
    def reach(self) -> float:
        """Upper bound of |offset(t)| in metres."""
        return abs(self.amplitude) + abs(self.bounce)


@dataclass(eq=False)
class Shape:
    """Base class: a textured surface with a (possibly animated) pose.

    Subclasses implement ``_hit_local(o (3,), d (..., 3)) -> s (...,)`` (inf where missed) and
    ``_normal_local(p (M, 3)) -> (M, 3)`` in the local frame (normals face the viewer side).
    """

    texture: Texture
    centre: np.ndarray = field(default_factory=lambda: np.zeros(3))
    yaw: float = 0.0
    motion: Motion | None = None
    emissive: bool = False
    name: str = ""

    is_object: ClassVar[bool] = True  # a solid the camera must keep out of

    def __post_init__(self) -> None:
        self.centre = np.asarray(self.centre, dtype=np.float64)

    def pose(self, t: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(centre (3,), R (3, 3) local -> world) at time ``t`` seconds."""
        c, yaw = self.centre, self.yaw
        if self.motion is not None:
            c = c + self.motion.offset(t)
            yaw = yaw + self.motion.spin * t
        return c, yaw_matrix(yaw)

    def hit(self, o: np.ndarray, d: np.ndarray, t: float = 0.0) -> np.ndarray:
        """Ray parameters ``s (...,)`` of the first visible hit of rays ``o (3,) + s * d (..., 3)``; inf where missed."""
        c, R = self.pose(t)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self._hit_local(R.T @ (o - c), d @ R)

    def surface(self, p: np.ndarray, t: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For hit points ``p (M, 3)`` (world): (world normals (M, 3), local points (M, 3), local normals (M, 3))."""
        c, R = self.pose(t)
        pl = (p - c) @ R
        nl = self._normal_local(pl)
        return nl @ R.T, pl, nl

    def albedo(self, p_local: np.ndarray, n_local: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        """(M, 3) surface colours; see :meth:`Texture.albedo`."""
        return self.texture.albedo(p_local, n_local, footprint)

    def bounding_radius(self) -> float:
        """Radius (metres) of a sphere about the centre that contains the shape."""
        raise NotImplementedError

    def _hit_local(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _normal_local(self, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(eq=False)
class Sphere(Shape):
    radius: float = 0.5

    def bounding_radius(self) -> float:
        return float(self.radius)

    def _hit_local(self, o, d):
        a = np.einsum("...i,...i->...", d, d)
        b = d @ o
        c = float(o @ o) - self.radius**2
        disc = b * b - a * c
        s = (-b - np.sqrt(disc)) / a
        return np.where((disc >= 0) & (s > _EPS), s, np.inf)

    def _normal_local(self, p):
        return p / np.linalg.norm(p, axis=-1, keepdims=True)


@dataclass(eq=False)
class Box(Shape):
    half: np.ndarray = field(default_factory=lambda: np.full(3, 0.5))  # half extents along local x, y, z (metres)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.half = np.asarray(self.half, dtype=np.float64)

    def bounding_radius(self) -> float:
        return float(np.linalg.norm(self.half))

    def _hit_local(self, o, d):
        inv = 1.0 / d
        t1 = (-self.half - o) * inv
        t2 = (self.half - o) * inv
        tn = _max3(np.minimum(t1, t2))
        tf = _min3(np.maximum(t1, t2))
        return np.where((tf >= tn) & (tn > _EPS), tn, np.inf)

    def _normal_local(self, p):
        r = np.abs(p) / self.half
        ax = r.argmax(axis=-1)
        n = np.zeros_like(p)
        rows = np.arange(len(p))
        n[rows, ax] = np.sign(p[rows, ax])
        return n


@dataclass(eq=False)
class Cylinder(Shape):
    """Upright cylinder (axis = local y) with flat caps."""

    radius: float = 0.3
    half_height: float = 0.5

    def bounding_radius(self) -> float:
        return float(np.hypot(self.radius, self.half_height))

    def _hit_local(self, o, d):
        dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
        a = dx * dx + dz * dz
        b = o[0] * dx + o[2] * dz
        c = o[0] ** 2 + o[2] ** 2 - self.radius**2
        disc = b * b - a * c
        s_side = (-b - np.sqrt(disc)) / a
        y = o[1] + s_side * dy
        best = np.where((disc >= 0) & (s_side > _EPS) & (np.abs(y) <= self.half_height), s_side, np.inf)
        r2 = self.radius**2
        for cap in (-self.half_height, self.half_height):
            s_cap = (cap - o[1]) / dy
            x = o[0] + s_cap * dx
            z = o[2] + s_cap * dz
            ok = (s_cap > _EPS) & (x * x + z * z <= r2)
            best = np.where(ok & (s_cap < best), s_cap, best)
        return best

    def _normal_local(self, p):
        rho = np.hypot(p[:, 0], p[:, 2])
        cap = np.abs(p[:, 1]) / self.half_height > rho / self.radius
        n = np.zeros_like(p)
        safe = np.maximum(rho, 1e-12)
        n[:, 0] = np.where(cap, 0.0, p[:, 0] / safe)
        n[:, 2] = np.where(cap, 0.0, p[:, 2] / safe)
        n[:, 1] = np.where(cap, np.sign(p[:, 1]), 0.0)
        return n


@dataclass(eq=False)
class RoomShell(Shape):
    """The inside of an axis-aligned box: floor, four walls and (unless ``open_top``) a ceiling.

    ``textures``: six textures for the faces -x, +x, -y (ceiling), +y (floor), -z, +z; the base
    ``texture`` is used where that list is empty. Normals point into the room.
    """

    half: np.ndarray = field(default_factory=lambda: np.array([4.0, 1.5, 4.0]))
    open_top: bool = False
    textures: list[Texture] = field(default_factory=list)

    is_object: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.half = np.asarray(self.half, dtype=np.float64)
        if self.textures and len(self.textures) != 6:
            raise ValueError(f"RoomShell: need 6 face textures, got {len(self.textures)}")

    def bounding_radius(self) -> float:
        return float(np.linalg.norm(self.half))

    def _hit_local(self, o, d):
        inv = 1.0 / d
        t1 = (-self.half - o) * inv
        t2 = (self.half - o) * inv
        tmax = np.maximum(t1, t2)
        tf = _min3(tmax)
        ok = tf > _EPS
        if self.open_top:  # rays leaving through the top face (y = -half, i.e. going up) escape
            ok &= ~((tmax[..., 1] == tf) & (d[..., 1] < 0))
        return np.where(ok, tf, np.inf)

    def _normal_local(self, p):
        r = np.abs(p) / self.half
        ax = r.argmax(axis=-1)
        n = np.zeros_like(p)
        rows = np.arange(len(p))
        n[rows, ax] = -np.sign(p[rows, ax])
        return n

    def albedo(self, p_local, n_local, footprint):
        if not self.textures:
            return self.texture.albedo(p_local, n_local, footprint)
        ax = np.abs(n_local).argmax(axis=-1)
        face = 2 * ax + (n_local[np.arange(len(ax)), ax] < 0)  # inward normal -e_i on the + face
        out = np.empty((len(p_local), 3))
        for f in np.unique(face):
            sel = face == f
            out[sel] = self.textures[f].albedo(p_local[sel], n_local[sel], footprint[sel])
        return out


@dataclass(eq=False)
class GroundPlane(Shape):
    """The infinite ground y = centre[1], seen from above (y smaller than the plane)."""

    is_object: ClassVar[bool] = False

    def bounding_radius(self) -> float:
        return float("inf")

    def _hit_local(self, o, d):
        s = -o[1] / d[..., 1]
        return np.where((d[..., 1] > 0) & (s > _EPS), s, np.inf)

    def _normal_local(self, p):
        n = np.zeros_like(p)
        n[:, 1] = -1.0
        return n


@dataclass(eq=False)
class SkyDome(Shape):
    """The inside of a large sphere: the backdrop behind everything (usually emissive)."""

    radius: float = 60.0

    is_object: ClassVar[bool] = False

    def bounding_radius(self) -> float:
        return float(self.radius)

    def _hit_local(self, o, d):
        a = np.einsum("...i,...i->...", d, d)
        b = d @ o
        c = float(o @ o) - self.radius**2
        disc = b * b - a * c
        s = (-b + np.sqrt(disc)) / a
        return np.where((disc >= 0) & (s > _EPS), s, np.inf)

    def _normal_local(self, p):
        return -p / np.linalg.norm(p, axis=-1, keepdims=True)
