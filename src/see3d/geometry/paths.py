"""Camera path presets for novel-view generation.

Every preset is defined in the *start camera's frame* (OpenCV: x right, y down, z forward) and returns
N cameras whose first one is the start camera itself. Angles are in degrees; distances are fractions of
``scene_depth`` (a representative depth of the scene in the start view, e.g. its median depth -- see
:func:`scene_depth_from`), so one preset suits scenes of any scale. "Left/right/up/down" are as seen in
the start image.

Usage::

    cams = make_path("orbit_left", start, n_frames=25, scene_depth=scene_depth_from(depth), angle_deg=40)

Presets (``list_paths()``; parameters and defaults in ``PATHS[name].defaults``):

=============================  ======================================================================
``orbit_left/right/up/down``   circle around a pivot ``pivot * scene_depth`` ahead, by ``angle_deg``
``orbit_360``                  full circle to the right around the pivot (closed loop)
``orbit``                      general orbit: signed ``yaw_deg`` (+ = right) and ``pitch_deg`` (+ = up)
``dolly_in/out``               move along the optical axis by ``distance * scene_depth``
``truck_left/right``           slide sideways by ``distance * scene_depth``
``pedestal_up/down``           slide vertically by ``distance * scene_depth``
``pan_left/right``             rotate in place about the vertical axis by ``angle_deg``
``tilt_up/down``               rotate in place about the horizontal axis by ``angle_deg``
``zoom_in/out``                fixed pose, focal length scaled by ``factor`` (geometric steps)
``spiral``                     spiral out and back in the image plane (``radius``, ``rotations``,
                               ``forward`` depth swing), looking at ``focus * scene_depth`` (closed loop)
``look_around``                rotate in place along a figure eight (``yaw_deg``, ``pitch_deg``; closed)
=============================  ======================================================================

Closed loops sample ``t = k / N`` (the last frame is one step before returning to the start); open
paths sample ``t = k / (N - 1)`` and end exactly at the full motion.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from see3d.errors import InputError
from see3d.io.cameras import Cameras, look_at

# A preset maps times t (N,) in [0, 1] and the scene depth D to relative c2w (N, 4, 4) in the start
# camera's frame and focal-length factors (N,).
PresetFn = Callable[..., tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class PathPreset:
    """A registered path: its function, one-line help, default parameters and whether it is a closed loop."""

    name: str
    fn: PresetFn
    help: str
    closed: bool = False
    defaults: dict = field(default_factory=dict)


PATHS: dict[str, PathPreset] = {}


def register_path(name: str, help: str, closed: bool = False, **fixed) -> Callable[[PresetFn], PresetFn]:
    """Decorator registering ``fn(t, D, **params)`` as preset ``name``; ``fixed`` pins some parameters."""

    def deco(fn: PresetFn) -> PresetFn:
        sig = inspect.signature(fn)
        defaults = {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty and k not in fixed}

        def bound(t, D, **params):
            return fn(t, D, **{**params, **fixed})

        PATHS[name] = PathPreset(name, bound, help, closed, defaults)
        return fn

    return deco


def list_paths() -> list[str]:
    """Names of the registered presets."""
    return sorted(PATHS)


# ============================================================================================ helpers
def rot_x(deg: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations about the camera x axis; positive angles turn the view *up* (forward gets -y)."""
    a = np.deg2rad(np.asarray(deg, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(deg: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations about the camera y axis; positive angles turn the view *right* (forward gets +x)."""
    a = np.deg2rad(np.asarray(deg, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rigid(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3] = R
    out[..., :3, 3] = t
    out[..., 3, 3] = 1.0
    return out


def _still(t: np.ndarray) -> np.ndarray:
    return np.ones_like(t)


# ============================================================================================ presets
def orbit(t: np.ndarray, D: float, yaw_deg: float = 30.0, pitch_deg: float = 0.0, pivot: float = 1.0):
    """Orbit around the point ``pivot * D`` ahead: ``yaw_deg`` > 0 moves right, ``pitch_deg`` > 0 moves up,
    the camera always facing the pivot."""
    p = np.array([0.0, 0.0, pivot * D])
    R = rot_y(-yaw_deg * t) @ rot_x(-pitch_deg * t)
    centre = p + R @ (-p)
    return _rigid(R, centre), _still(t)


register_path("orbit", "orbit around a pivot ahead (signed yaw_deg: + right, pitch_deg: + up)")(orbit)


def _orbit_dir(sign_yaw: float, sign_pitch: float):
    def fn(t, D, angle_deg: float = 30.0, pivot: float = 1.0):
        return orbit(t, D, sign_yaw * angle_deg, sign_pitch * angle_deg, pivot)

    return fn


register_path("orbit_left", "orbit left around a pivot ahead by angle_deg")(_orbit_dir(-1, 0))
register_path("orbit_right", "orbit right around a pivot ahead by angle_deg")(_orbit_dir(1, 0))
register_path("orbit_up", "orbit up (over the top) around a pivot ahead by angle_deg")(_orbit_dir(0, 1))
register_path("orbit_down", "orbit down around a pivot ahead by angle_deg")(_orbit_dir(0, -1))


@register_path("orbit_360", "full circle to the right around a pivot ahead (closed loop)", closed=True)
def orbit_360(t, D, pivot: float = 1.0):
    return orbit(t, D, 360.0, 0.0, pivot)


def _translate(direction: tuple[float, float, float]):
    def fn(t, D, distance: float = 0.3):
        c = np.outer(t * distance * D, np.asarray(direction, dtype=np.float64))
        return _rigid(np.broadcast_to(np.eye(3), (len(t), 3, 3)), c), _still(t)

    return fn


register_path("dolly_in", "move forward along the optical axis by distance * scene_depth")(_translate((0, 0, 1)))
register_path("dolly_out", "move backward along the optical axis by distance * scene_depth")(_translate((0, 0, -1)))
register_path("truck_left", "slide left by distance * scene_depth")(_translate((-1, 0, 0)))
register_path("truck_right", "slide right by distance * scene_depth")(_translate((1, 0, 0)))
register_path("pedestal_up", "slide up by distance * scene_depth")(_translate((0, -1, 0)))
register_path("pedestal_down", "slide down by distance * scene_depth")(_translate((0, 1, 0)))


def _rotate(yaw_sign: float, pitch_sign: float):
    def fn(t, D, angle_deg: float = 30.0):
        R = rot_y(yaw_sign * angle_deg * t) @ rot_x(pitch_sign * angle_deg * t)
        return _rigid(R, np.zeros((len(t), 3))), _still(t)

    return fn


register_path("pan_left", "rotate in place to the left by angle_deg")(_rotate(-1, 0))
register_path("pan_right", "rotate in place to the right by angle_deg")(_rotate(1, 0))
register_path("tilt_up", "rotate in place upwards by angle_deg")(_rotate(0, 1))
register_path("tilt_down", "rotate in place downwards by angle_deg")(_rotate(0, -1))


def _zoom(sign: float):
    def fn(t, D, factor: float = 1.5):
        if factor <= 0:
            raise InputError(None, f"zoom factor must be positive, got {factor}")
        return _rigid(np.broadcast_to(np.eye(3), (len(t), 3, 3)), np.zeros((len(t), 3))), factor ** (sign * t)

    return fn


register_path("zoom_in", "keep the pose, multiply the focal length up to factor")(_zoom(1))
register_path("zoom_out", "keep the pose, divide the focal length down to 1/factor")(_zoom(-1))


@register_path("spiral", "spiral out and back in around the start, looking at a focus point (closed loop)", closed=True)
def spiral(t, D, radius: float = 0.1, rotations: float = 2.0, forward: float = 0.05, focus: float = 1.0):
    """Camera offset ``radius * D * sin(pi t)`` turning ``rotations`` times (starting to the right), with a
    forward swing ``forward * D * sin(2 pi t)``; always looking at ``(0, 0, focus * D)``."""
    r = radius * D * np.sin(np.pi * t)
    ang = 2 * np.pi * rotations * t
    eyes = np.stack([r * np.cos(ang), r * np.sin(ang), forward * D * np.sin(2 * np.pi * t)], -1)
    target = np.array([0.0, 0.0, focus * D])
    return np.stack([look_at(e, target) for e in eyes]), _still(t)


@register_path("look_around", "rotate in place along a figure eight (yaw_deg wide, pitch_deg high; closed loop)", closed=True)
def look_around(t, D, yaw_deg: float = 20.0, pitch_deg: float = 10.0):
    R = rot_y(yaw_deg * np.sin(2 * np.pi * t)) @ rot_x(pitch_deg * np.sin(4 * np.pi * t))
    return _rigid(R, np.zeros((len(t), 3))), _still(t)


# ============================================================================================ API
def make_path(name: str, start: Cameras, n_frames: int, scene_depth: float, **params) -> Cameras:
    """Cameras along preset ``name``, starting at ``start`` (1 camera; frame 0 is ``start`` itself).

    Args:
        n_frames: number of cameras, including the start.
        scene_depth: representative scene depth in the start view (world units); distances scale with it.
        **params: the preset's parameters (see ``PATHS[name].defaults``).

    Raises:
        InputError: unknown preset or parameter, or a non-positive ``scene_depth`` / ``n_frames``.
    """
    if name not in PATHS:
        raise InputError(None, f"unknown camera path {name!r}; choose from {', '.join(list_paths())}")
    preset = PATHS[name]
    unknown = set(params) - set(preset.defaults)
    if unknown:
        raise InputError(None, f"path {name!r} has no parameter(s) {sorted(unknown)}; it takes {sorted(preset.defaults)}")
    if len(start) != 1:
        raise ValueError(f"make_path: start must be one camera, got {len(start)}")
    if not (np.isfinite(scene_depth) and scene_depth > 0):
        raise InputError(None, f"scene_depth must be a positive number, got {scene_depth}")
    if int(n_frames) < 1:
        raise InputError(None, f"n_frames must be at least 1, got {n_frames}")
    n = int(n_frames)
    if preset.closed:
        t = np.arange(n) / n
    else:
        t = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    rel, focal = preset.fn(t, float(scene_depth), **params)
    c2w = start.c2w[0] @ rel
    K = np.repeat(start.K, n, axis=0)
    K[:, 0, 0] *= focal
    K[:, 1, 1] *= focal
    K[:, 0, 1] *= focal
    return Cameras(K, c2w, start.width, start.height)


def scene_depth_from(depth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Median of the valid (finite, positive, masked-in) values of a depth map ``(H, W)``."""
    d = np.asarray(depth, dtype=np.float64)
    ok = np.isfinite(d) & (d > 0)
    if mask is not None:
        ok &= np.asarray(mask, dtype=bool)
    if not ok.any():
        raise InputError(None, "depth map has no valid (positive, finite) values")
    return float(np.median(d[ok]))


def interpolate_cameras(keyframes: Cameras, n_frames: int) -> Cameras:
    """``n_frames`` cameras through ``keyframes`` (K >= 2) at uniform parameter spacing: rotations by
    spherical interpolation, centres and intrinsics linearly, first and last keyframes included."""
    from scipy.spatial.transform import Rotation, Slerp

    k = len(keyframes)
    if k < 2:
        raise ValueError("interpolate_cameras: need at least two keyframes")
    tk = np.arange(k, dtype=np.float64)
    t = np.linspace(0.0, k - 1.0, int(n_frames))
    rots = Slerp(tk, Rotation.from_matrix(keyframes.c2w[:, :3, :3]))(t).as_matrix()
    centres = np.stack([np.interp(t, tk, keyframes.c2w[:, i, 3]) for i in range(3)], -1)
    K = np.stack([np.interp(t, tk, keyframes.K[:, i, j]) for i in range(3) for j in range(3)], -1).reshape(-1, 3, 3)
    return Cameras(K, _rigid(rots, centres), keyframes.width, keyframes.height)
