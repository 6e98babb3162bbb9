"""Procedural solid textures for the synthetic world (vectorised numpy).

A texture is a function of a surface point's 3D coordinates in its shape's *local* frame (metres),
so it is glued to the surface: every view of the surface sees the same colours (view-consistent),
and a moving object carries its texture along. Patterns are band-limited by the pixel footprint
(analytically box-filtered checkers and stripes, noise octaves faded above the Nyquist rate), so
distant surfaces do not alias or flicker, which keeps optical flow and feature tracking honest.

Hand-written on purpose: no library offers seeded, anti-aliased 3D solid textures on numpy arrays.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

PATTERNS = ("checker", "stripes", "tiles", "noise", "gradient")

_OCTAVE_SHIFT = np.array([[0.0, 0.0, 0.0], [5.2, 1.3, 7.7], [2.9, 8.1, 3.6], [9.4, 4.4, 1.7], [6.1, 7.3, 8.8], [1.1, 3.9, 5.5]])


def _tri(x: np.ndarray) -> np.ndarray:
    """|fract(x / 2) - 1/2|: the integral (up to sign and scale) of the period-2 square wave."""
    h = 0.5 * x
    return np.abs(h - np.floor(h) - 0.5)


def filtered_square(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Square wave (+1 on [0, 1), -1 on [1, 2), period 2) box-filtered over width ``w`` (same units).

    Exact integral of the wave over ``[x - w/2, x + w/2]`` divided by ``w``; tends to the sharp wave as
    ``w -> 0`` and to 0 (the mean) for ``w`` beyond a period.
    """
    w = np.maximum(w, 1e-4)
    return 2.0 * (_tri(x - 0.5 * w) - _tri(x + 0.5 * w)) / w


def _fade(fw: np.ndarray) -> np.ndarray:
    """Weight of a detail of frequency f seen through a footprint w (fw = f * w, cycles per footprint):
    1 below a quarter cycle per footprint, 0 at the Nyquist rate (half a cycle) and above."""
    return np.clip((0.5 - fw) * 4.0, 0.0, 1.0)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class ValueNoise:
    """Seeded 3D value noise on the integer lattice (permutation-table hash, smooth trilinear blend).

    ``noise(q (M, 3)) -> (M,)`` in [0, 1]; ``cell(ix, iy, iz) -> (M,)`` in [0, 1] is the lattice hash.
    """

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        perm = rng.permutation(256)
        self.perm = np.concatenate([perm, perm]).astype(np.int64)
        self.vals = rng.random(256)
        self._pv = self.vals[self.perm]  # vals[perm[i]] for i < 512: one gather instead of two

    def cell(self, ix: np.ndarray, iy: np.ndarray, iz: np.ndarray) -> np.ndarray:
        p = self.perm
        return self.vals[p[p[p[ix & 255] + (iy & 255)] + (iz & 255)]]

    def __call__(self, q: np.ndarray) -> np.ndarray:
        fl = np.floor(q)
        f = q - fl
        i = fl.astype(np.int64) & 255
        u = f * f * (3.0 - 2.0 * f)
        ix, iy, iz = i[:, 0], i[:, 1], i[:, 2]
        ix1, iy1, iz1 = (ix + 1) & 255, (iy + 1) & 255, (iz + 1) & 255
        p, pv = self.perm, self._pv
        a, b = p[ix], p[ix1]
        aa, ab, ba, bb = p[a + iy], p[a + iy1], p[b + iy], p[b + iy1]
        ux, uy, uz = u[:, 0], u[:, 1], u[:, 2]

        def lerp(x0, x1, t):
            return x0 + (x1 - x0) * t

        x00 = lerp(pv[aa + iz], pv[ba + iz], ux)
        x10 = lerp(pv[ab + iz], pv[bb + iz], ux)
        x01 = lerp(pv[aa + iz1], pv[ba + iz1], ux)
        x11 = lerp(pv[ab + iz1], pv[bb + iz1], ux)
        return lerp(lerp(x00, x10, uy), lerp(x01, x11, uy), uz)

    def fbm(self, q: np.ndarray, w: np.ndarray, octaves: int) -> np.ndarray:
        """Fractal sum of ``octaves`` octaves (frequencies 1, 2, 4, ... per unit of ``q``), each faded to its
        mean where the footprint ``w (M,)`` (units of ``q``) cannot resolve it. Returns (M,) around 0.5."""
        total = np.zeros(len(q))
        norm = 0.0
        amp = 1.0
        for k in range(octaves):
            f = 2.0**k
            fade = _fade(f * w)
            norm += amp
            if fade.any():
                total += amp * fade * (self(q * f + _OCTAVE_SHIFT[k % len(_OCTAVE_SHIFT)]) - 0.5)
            amp *= 0.5
        return 0.5 + total / norm


@dataclass(eq=False)
class Texture:
    """A procedural albedo texture.

    Attributes:
        pattern: one of :data:`PATTERNS`.
        colors: (3, 3) RGB in [0, 1]: the two pattern colours and an accent colour for noise blotches.
        scale: metres per pattern cell (checker square, stripe width, tile, noise feature, half gradient period).
        detail: strength in [0, 1] of the fine multiplicative noise laid over every pattern.
        detail_scale: metres per cell of that fine noise's coarsest octave.
        rotation: (3, 3) rotation from the shape's local frame to the texture's axes.
        offset: (3,) shift in texture cells (keeps planes off cell boundaries).
        seed: seeds the noise tables.
    """

    pattern: str
    colors: np.ndarray
    scale: float
    detail: float = 0.3
    detail_scale: float = 0.08
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"Texture: unknown pattern {self.pattern!r}; expected one of {PATTERNS}")
        self.colors = np.asarray(self.colors, dtype=np.float64).reshape(3, 3)
        self.rotation = np.asarray(self.rotation, dtype=np.float64)
        self.offset = np.asarray(self.offset, dtype=np.float64)
        self._noise = ValueNoise(self.seed)

    def albedo(self, p: np.ndarray, n: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        """Colours of surface points.

        Args:
            p: (M, 3) points in the shape's local frame, metres.
            n: (M, 3) unit surface normals in the same frame.
            footprint: (M,) size of one pixel on the surface, metres (for anti-aliasing).
        Returns:
            (M, 3) float64 RGB in [0, 1].
        """
        q = p @ self.rotation.T / self.scale + self.offset
        nt = n @ self.rotation.T
        wc = footprint / self.scale  # footprint in cells
        # the footprint lies in the tangent plane: its extent along texture axis i shrinks with |n_i|
        wa = wc[:, None] * np.sqrt(np.clip(1.0 - nt * nt, 0.0, 1.0))
        c0, c1, c2 = self.colors
        if self.pattern == "checker":
            sq = filtered_square(q, wa)
            v = 0.5 - 0.5 * sq[:, 0] * sq[:, 1] * sq[:, 2]
        elif self.pattern == "stripes":
            # wide bands plus a thinner secondary band set: a rich 1-D pattern
            v = 0.5 + 0.35 * filtered_square(q[:, 0], wa[:, 0]) + 0.15 * filtered_square(3.0 * q[:, 0] + 0.37, 3.0 * wa[:, 0])
        elif self.pattern == "tiles":
            fl = np.floor(q).astype(np.int64)
            h = self._noise.cell(fl[:, 0], fl[:, 1], fl[:, 2])
            v = 0.5 + _fade(np.maximum(np.maximum(wa[:, 0], wa[:, 1]), wa[:, 2])) * (h - 0.5)
        elif self.pattern == "noise":
            v = np.clip(0.5 + 2.2 * (self._noise.fbm(q, wc, 4) - 0.5), 0.0, 1.0)
        else:  # gradient: a smooth triangle wave, period two cells
            v = _smoothstep(0.0, 1.0, 2.0 * _tri(q[:, 0]))
        col = c0 + (c1 - c0) * v[:, None]
        if self.detail > 0:
            k = self.scale / self.detail_scale
            f = self._noise.fbm(q * k + 31.7, wc * k, 3)
            dv = np.clip((f - 0.5) * 2.5, -1.0, 1.0)
            col = col * (1.0 + self.detail * dv)[:, None]
            blot = 0.6 * _smoothstep(0.3, 0.8, dv)
            col = col + (c2 - col) * blot[:, None]
        return np.clip(col, 0.0, 1.0)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random (3, 3) rotation matrix."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def random_color(rng: np.random.Generator, hue: float, hue_spread: float = 0.12, sat=(0.25, 0.8), val=(0.3, 0.95)) -> np.ndarray:
    """An RGB colour near ``hue`` (in [0, 1)) with random saturation and value."""
    h = (hue + rng.uniform(-hue_spread, hue_spread)) % 1.0
    return np.array(colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val)))


def random_texture(
    rng: np.random.Generator,
    hue: float,
    scale: tuple[float, float],
    patterns: tuple[str, ...] = PATTERNS,
    axis_aligned: bool = False,
) -> Texture:
    """A random texture: pattern from ``patterns``, two contrasting colours near ``hue`` (one sometimes
    complementary), an accent colour, cell size in ``scale`` (metres). ``axis_aligned`` keeps the texture
    axes on the local axes (up to a yaw), as tiles on a floor are."""
    pattern = str(rng.choice(patterns))
    c0 = random_color(rng, hue, val=(0.2, 0.55))
    h1 = hue + (0.5 if rng.random() < 0.3 else 0.0)
    c1 = random_color(rng, h1, val=(0.6, 0.95))
    if rng.random() < 0.5:
        c0, c1 = c1, c0
    c2 = random_color(rng, rng.random(), sat=(0.3, 0.9), val=(0.3, 0.95))
    if axis_aligned:
        a = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    else:
        rot = random_rotation(rng)
    s = float(rng.uniform(*scale))
    return Texture(
        pattern=pattern,
        colors=np.stack([c0, c1, c2]),
        scale=s,
        detail=float(rng.uniform(0.2, 0.45)),
        detail_scale=float(min(s, rng.uniform(0.03, 0.12))),
        rotation=rot,
        offset=rng.uniform(0.1, 0.9, size=3) + rng.integers(0, 64, size=3),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def sky_texture(rng: np.random.Generator) -> Texture:
    """Blue sky with soft white clouds (for the emissive dome)."""
    blue = np.array(colorsys.hsv_to_rgb(rng.uniform(0.55, 0.62), rng.uniform(0.35, 0.6), rng.uniform(0.75, 0.95)))
    white = np.array([0.96, 0.96, 0.97])
    accent = np.array(colorsys.hsv_to_rgb(rng.uniform(0.05, 0.12), 0.15, 0.95))
    return Texture(
        "noise",
        np.stack([blue, white, accent]),
        scale=float(rng.uniform(6.0, 12.0)),
        detail=0.15,
        detail_scale=2.0,
        rotation=random_rotation(rng),
        offset=rng.uniform(0, 50, size=3),
        seed=int(rng.integers(0, 2**31 - 1)),
    )
