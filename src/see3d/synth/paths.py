"""Camera paths for synthetic clips: OpenCV camera-to-world poses ``(N, 4, 4)`` in a :class:`Scene`.

Good (multi-view) paths: ``orbit``, ``dolly`` (forward), ``pan`` (lateral truck with a fixed viewing
direction), ``spiral`` (LLFF-like), ``handheld`` (smooth random drift plus shake of position, look-at
and roll). Degenerate paths for reject variants: ``static`` (one pose repeated), ``rotation`` (pan and
tilt about a fixed centre), ``small`` (a translation of about 1% of the viewing distance).

Paths are sampled from a numpy ``Generator`` and re-sampled until every camera centre keeps
:data:`see3d.synth.scene.CAMERA_CLEARANCE` from walls, ceiling, ground and objects (moving objects
checked at each frame's time). World y points down (see :mod:`see3d.synth`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from see3d.io.cameras import look_at
from see3d.synth.scene import Scene

GOOD_PATHS = ("orbit", "dolly", "pan", "spiral", "handheld")
DEGENERATE_PATHS = ("static", "rotation", "small")


def _param(n: int) -> np.ndarray:
    """Clip parameter s in [0, 1] for each of ``n`` frames."""
    return np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)


def smooth_noise(
    rng: np.random.Generator, s: np.ndarray, dims: int, cycles: tuple[float, float] = (0.4, 1.8), terms: int = 3
) -> np.ndarray:
    """(len(s), dims) smooth random signal with roughly unit amplitude: a few random low-frequency
    sinusoids per dimension (``cycles`` per clip)."""
    out = np.zeros((len(s), dims))
    for _ in range(terms):
        f = rng.uniform(*cycles, size=dims)
        ph = rng.uniform(0, 2 * np.pi, size=dims)
        a = rng.normal(size=dims)
        out += a * np.sin(2 * np.pi * f * s[:, None] + ph)
    return out / np.sqrt(terms)


def _roll(c2w: np.ndarray, angle: float) -> np.ndarray:
    """Rotate a camera about its own optical axis by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    out = c2w.copy()
    out[:3, :3] = c2w[:3, :3] @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return out


def _eye_y(scene: Scene, rng: np.random.Generator) -> float:
    """A camera height (world y, negative = above the floor) inside the scene bounds."""
    lo, hi = scene.bounds[0, 1], scene.bounds[1, 1]
    return float(np.clip(-rng.uniform(1.0, 1.8), lo + 0.05, hi - 0.05))


def _target(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    return scene.focus + np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.15, 0.15), rng.uniform(-0.3, 0.3)])


def _eye_around(scene: Scene, rng: np.random.Generator, dist: float) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    eye = scene.focus + dist * np.array([np.cos(a), 0.0, np.sin(a)])
    eye[1] = _eye_y(scene, rng)
    return eye


def _dist(scene: Scene, rng: np.random.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    d0, d1 = scene.view_distance
    return float(d0 + (d1 - d0) * rng.uniform(lo, hi))


def orbit(scene: Scene, rng: np.random.Generator, n: int) -> np.ndarray:
    """Arc of 35-80 degrees around the focus at constant distance, slight height change, looking at it."""
    s = _param(n)
    r = _dist(scene, rng)
    a0 = rng.uniform(0, 2 * np.pi)
    arc = np.deg2rad(rng.uniform(35, 80)) * rng.choice([-1, 1])
    y0 = _eye_y(scene, rng)
    dy = rng.uniform(-0.25, 0.25)
    target = _target(scene, rng)
    out = []
    for si in s:
        a = a0 + arc * si
        eye = np.array([scene.focus[0] + r * np.cos(a), y0 + dy * si, scene.focus[2] + r * np.sin(a)])
        out.append(look_at(eye, target))
    return np.stack(out)


def dolly(scene: Scene, rng: np.random.Generator, n: int) -> np.ndarray:
    """Forward dolly towards the focus by 25-45% of the starting distance, looking at it."""
    s = _param(n)
    d0 = _dist(scene, rng, 0.6, 1.0)
    d1 = max(scene.view_distance[0] * 0.9, d0 * (1 - rng.uniform(0.25, 0.45)))
    start = _eye_around(scene, rng, d0)
    target = _target(scene, rng)
    direction = target - start
    direction[1] = 0.0
    direction /= np.linalg.norm(direction)
    ease = s * s * (3 - 2 * s) * 0.5 + s * 0.5  # gentle start and stop
    out = [look_at(start + direction * (d0 - d1) * e, target) for e in ease]
    return np.stack(out)


def pan(scene: Scene, rng: np.random.Generator, n: int) -> np.ndarray:
    """Lateral truck of 1.0-2.0 m (scaled with distance) with a fixed viewing direction."""
    s = _param(n)
    d = _dist(scene, rng)
    mid = _eye_around(scene, rng, d)
    target = _target(scene, rng)
    fwd = target - mid
    side = np.cross(fwd, np.array([0.0, -1.0, 0.0]))
    side[1] = 0.0
    side /= np.linalg.norm(side)
    length = rng.uniform(1.0, 2.0) * d / 3.5 * rng.choice([-1, 1])
    out = []
    for si in s:
        eye = mid + side * length * (si - 0.5)
        out.append(look_at(eye, eye + fwd))
    return np.stack(out)


def spiral(scene: Scene, rng: np.random.Generator, n: int) -> np.ndarray:
    """LLFF-style spiral: the centre circles (1-2 turns, radii 0.4-0.7 m) in the camera plane while moving
    back and forth along the view axis, always looking at the focus."""
    s = _param(n)
    d = _dist(scene, rng)
    c0 = _eye_around(scene, rng, d)
    target = _target(scene, rng)
    base = look_at(c0, target)
    R = base[:3, :3]
    turns = rng.uniform(1.0, 2.0)
    rx, ry, rz = rng.uniform(0.4, 0.7), rng.uniform(0.2, 0.35), rng.uniform(0.2, 0.5)
    ph = rng.uniform(0, 2 * np.pi)
    out = []
    for si in s:
        a = 2 * np.pi * turns * si + ph
        off = np.array([rx * np.cos(a), ry * np.sin(a), rz * np.sin(0.5 * a)])
        out.append(look_at(c0 + R @ off, target))
    return np.stack(out)


def handheld(scene: Scene, rng: np.random.Generator, n: int) -> np.ndarray:
    """Smooth random handheld motion: a 0.9-1.6 m drift plus smooth shake of the position (~6 cm), the
    look-at point (~20 cm) and the roll (~2 degrees)."""
    s = _param(n)
    d = _dist(scene, rng)
    eye0 = _eye_around(scene, rng, d)
    target = _target(scene, rng)
    drift = rng.normal(size=3) * np.array([1.0, 0.25, 1.0])
    drift *= rng.uniform(0.9, 1.6) / np.linalg.norm(drift)
    shake = 0.06 * smooth_noise(rng, s, 3, cycles=(0.5, 2.5))
    look = 0.2 * smooth_noise(rng, s, 3)
    roll = np.deg2rad(2.0) * smooth_noise(rng, s, 1)[:, 0]
    out = []
    for i, si in enumerate(s):
        eye = eye0 + drift * (si - 0.5) + shake[i]
        out.append(_roll(look_at(eye, target + look[i]), roll[i]))
    return np.stack(out)


def static(scene: Scene, rng: np.random.Generator, n: int) -> np.ndarray:
    """One pose, repeated: a tripod shot."""
    eye = _eye_around(scene, rng, _dist(scene, rng))
    return np.repeat(look_at(eye, _target(scene, rng))[None], n, axis=0)


def rotation(scene: Scene, rng: np.random.Generator, n: int) -> np.ndarray:
    """Pan (25-45 degrees of yaw) and gentle tilt about a fixed camera centre: no parallax."""
    s = _param(n)
    eye = _eye_around(scene, rng, _dist(scene, rng))
    fwd = _target(scene, rng) - eye
    yaw0 = np.arctan2(fwd[2], fwd[0])
    pitch0 = np.arctan2(fwd[1], np.hypot(fwd[0], fwd[2]))
    sweep = np.deg2rad(rng.uniform(25, 45)) * rng.choice([-1, 1])
    tilt = np.deg2rad(rng.uniform(2, 8))
    tilt_f = rng.uniform(0.5, 1.5)
    out = []
    for si in s:
        yaw = yaw0 + sweep * (si - 0.5)
        pitch = pitch0 + tilt * np.sin(np.pi * tilt_f * si)
        dvec = np.array([np.cos(pitch) * np.cos(yaw), np.sin(pitch), np.cos(pitch) * np.sin(yaw)])
        out.append(look_at(eye, eye + dvec))
    return np.stack(out)


def small(scene: Scene, rng: np.random.Generator, n: int) -> np.ndarray:
    """A straight translation of 0.5-1.5% of the viewing distance over the whole clip, fixed orientation."""
    s = _param(n)
    d = _dist(scene, rng)
    eye0 = _eye_around(scene, rng, d)
    fwd = _target(scene, rng) - eye0
    step = rng.normal(size=3)
    step *= rng.uniform(0.005, 0.015) * d / np.linalg.norm(step)
    out = []
    for si in s:
        eye = eye0 + step * (si - 0.5)
        out.append(look_at(eye, eye + fwd))
    return np.stack(out)


PATHS: dict[str, Callable[[Scene, np.random.Generator, int], np.ndarray]] = {
    "orbit": orbit,
    "dolly": dolly,
    "pan": pan,
    "spiral": spiral,
    "handheld": handheld,
    "static": static,
    "rotation": rotation,
    "small": small,
}


def camera_path(kind: str, scene: Scene, n: int, rng: np.random.Generator, times: np.ndarray | None = None, tries: int = 200) -> np.ndarray:
    """Sample an ``(n, 4, 4)`` OpenCV c2w path of ``kind`` (one of :data:`PATHS`) whose camera centres keep
    clear of walls, ground and objects (at ``times (n,)`` seconds for moving ones).

    Raises:
        RuntimeError: when no valid path was found in ``tries`` samples (a very cluttered scene).
    """
    if kind not in PATHS:
        raise ValueError(f"camera_path: unknown path {kind!r}; expected one of {tuple(PATHS)}")
    for _ in range(tries):
        c2w = PATHS[kind](scene, rng, n)
        if scene.clearance(c2w[:, :3, 3], times).min() > 0:
            return c2w
    raise RuntimeError(f"camera_path: no collision-free {kind!r} path in {tries} tries (scene seed {scene.seed})")
