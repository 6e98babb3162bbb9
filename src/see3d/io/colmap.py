"""COLMAP sparse models (``cameras``, ``images``, ``points3D``; ``.txt`` and ``.bin``) <-> records and :class:`Cameras`.

Reading and writing the raw records is lossless in both formats (binary: the same bytes' values; text:
floats written with ``repr``, which round-trips exactly). The on-disk layouts are COLMAP's documented
formats (little-endian binary, space-separated text with ``#`` comments).

They are hand-written here rather than read through ``pycolmap.Reconstruction`` (pycolmap does the structure
from motion, :mod:`see3d.geometry.sfm`) because pycolmap's readers (version 4.2.1, checked with the files of
``tests/test_camera_formats.py`` when this was decided) turn some malformed or unusual files into silent
garbage, which this project may not pass on: a truncated ``cameras.bin`` or ``points3D.bin`` reads without an
error, and image names with spaces come back from ``images.txt`` cut at the first space. It also refuses whole
models that are fine to read (no ``points3D`` file; a point whose track disagrees with the images' keypoints)
and raises ``std::bad_alloc`` on a tiny ``points3D.bin``. Here a malformed file gives an :class:`InputError`
naming the file and the line or record, records are kept as stored, and the tests check that pycolmap reads
what we write and that we read what pycolmap writes.

Conventions: COLMAP stores world-to-camera ``qvec`` (w, x, y, z) and ``tvec`` with OpenCV camera axes, and
pixel coordinates with the image's top-left corner at (0, 0) -- the same as :class:`Cameras`, so the
intrinsics carry over unchanged. Conversion to c2w lives in :mod:`see3d.io.conventions`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from see3d.errors import InputError
from see3d.io.atomic import atomic_path
from see3d.io.cameras import Cameras
from see3d.io.conventions import c2w_to_colmap, colmap_to_c2w
from see3d.io.images import natural_key
from see3d.log import get_logger

log = get_logger(__name__)

# model name -> (COLMAP model id, number of parameters)
CAMERA_MODELS: dict[str, tuple[int, int]] = {
    "SIMPLE_PINHOLE": (0, 3),
    "PINHOLE": (1, 4),
    "SIMPLE_RADIAL": (2, 4),
    "RADIAL": (3, 5),
    "OPENCV": (4, 8),
    "OPENCV_FISHEYE": (5, 8),
    "FULL_OPENCV": (6, 12),
    "FOV": (7, 5),
    "SIMPLE_RADIAL_FISHEYE": (8, 4),
    "RADIAL_FISHEYE": (9, 5),
    "THIN_PRISM_FISHEYE": (10, 12),
    "RAD_TAN_THIN_PRISM_FISHEYE": (11, 16),
}
_MODEL_BY_ID = {mid: name for name, (mid, _) in CAMERA_MODELS.items()}
#: models :func:`model_to_cameras` converts to a pinhole (the radial/tangential terms checked, see there)
PINHOLE_LIKE = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")


@dataclass
class ColmapCamera:
    """One COLMAP camera: ``params`` in the model's order (e.g. PINHOLE: fx, fy, cx, cy; pixels)."""

    id: int
    model: str
    width: int
    height: int
    params: np.ndarray


@dataclass
class ColmapImage:
    """One registered image: world-to-camera ``qvec (4,)`` wxyz, ``tvec (3,)``; keypoints ``xys (K, 2)`` px
    with ``point3D_ids (K,)`` (-1 where the keypoint has no 3D point)."""

    id: int
    qvec: np.ndarray
    tvec: np.ndarray
    camera_id: int
    name: str
    xys: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point3D_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))

    @property
    def c2w(self) -> np.ndarray:
        """(4, 4) OpenCV camera-to-world."""
        return colmap_to_c2w(self.qvec, self.tvec)


@dataclass
class ColmapPoints3D:
    """P points as arrays: ``ids (P,)``, ``xyz (P, 3)``, ``rgb (P, 3) uint8``, ``error (P,)`` px,
    ``tracks``: P arrays ``(L, 2) int`` of (image_id, point2D_idx)."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))
    xyz: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    rgb: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.uint8))
    error: np.ndarray = field(default_factory=lambda: np.zeros((0,)))
    tracks: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class ColmapModel:
    """A COLMAP sparse model: cameras and images keyed by id, and the 3D points."""

    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    points3D: ColmapPoints3D = field(default_factory=ColmapPoints3D)


# ============================================================================================ reading
def read_model(folder: str | Path) -> ColmapModel:
    """Read ``cameras/images/points3D`` from ``folder`` (binary ``.bin`` preferred, else ``.txt``).

    ``points3D`` may be missing (an empty point set is returned). Raises :class:`InputError` when the
    folder holds no model or a file is malformed.
    """
    folder = Path(folder)
    for ext, reader in ((".bin", _read_bin), (".txt", _read_txt)):
        if (folder / f"cameras{ext}").is_file() and (folder / f"images{ext}").is_file():
            return reader(folder)
    raise InputError(folder, "no COLMAP model here (expected cameras.bin + images.bin or cameras.txt + images.txt)")


def _read_txt(folder: Path) -> ColmapModel:
    return ColmapModel(
        read_cameras_text(folder / "cameras.txt"),
        read_images_text(folder / "images.txt"),
        read_points3D_text(folder / "points3D.txt") if (folder / "points3D.txt").is_file() else ColmapPoints3D(),
    )


def _read_bin(folder: Path) -> ColmapModel:
    return ColmapModel(
        read_cameras_binary(folder / "cameras.bin"),
        read_images_binary(folder / "images.bin"),
        read_points3D_binary(folder / "points3D.bin") if (folder / "points3D.bin").is_file() else ColmapPoints3D(),
    )


def _text_lines(path: Path, keep_empty: bool = False) -> list[tuple[int, str]]:
    """(line number, stripped text) of non-comment lines; empty lines kept only when asked."""
    if not path.is_file():
        raise InputError(path, "file not found")
    out = []
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise InputError(path, f"not a text file ({e})") from e
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("#") or (not s and not keep_empty):
            continue
        out.append((n, s))
    return out


def _check_model(path: Path, where: str, model: str, n_params: int) -> None:
    if model not in CAMERA_MODELS:
        raise InputError(path, f"{where}: unknown camera model {model!r}")
    if CAMERA_MODELS[model][1] != n_params:
        raise InputError(path, f"{where}: camera model {model} takes {CAMERA_MODELS[model][1]} parameters, got {n_params}")


def read_cameras_text(path: str | Path) -> dict[int, ColmapCamera]:
    """``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]`` per line."""
    path = Path(path)
    cams = {}
    for n, s in _text_lines(path):
        tok = s.split()
        try:
            cid, model, w, h = int(tok[0]), tok[1], int(tok[2]), int(tok[3])
            params = np.array([float(x) for x in tok[4:]])
        except (IndexError, ValueError) as e:
            raise InputError(path, f"line {n}: malformed camera ({e})") from e
        _check_model(path, f"line {n}", model, len(params))
        cams[cid] = ColmapCamera(cid, model, w, h, params)
    return cams


def read_images_text(path: str | Path) -> dict[int, ColmapImage]:
    """``images.txt``: two lines per image (pose + name, then ``X Y POINT3D_ID`` triples, possibly empty)."""
    path = Path(path)
    lines = _text_lines(path, keep_empty=True)
    # Drop trailing blank lines, then leading blank lines; the remainder alternates header / points.
    while lines and not lines[-1][1]:
        lines.pop()
    while lines and not lines[0][1]:
        lines.pop(0)
    images = {}
    i = 0
    while i < len(lines):
        n, head = lines[i]
        pts = lines[i + 1][1] if i + 1 < len(lines) else ""
        i += 2
        tok = head.split()
        try:
            iid = int(tok[0])
            q = np.array([float(x) for x in tok[1:5]])
            t = np.array([float(x) for x in tok[5:8]])
            cid = int(tok[8])
            name = " ".join(tok[9:])
            if not name or len(q) != 4 or len(t) != 3:
                raise ValueError("expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME")
            ptok = pts.split()
            if len(ptok) % 3:
                raise ValueError(f"points line has {len(ptok)} values, not a multiple of 3")
            arr = np.array(ptok, dtype=np.float64).reshape(-1, 3)
        except (IndexError, ValueError) as e:
            raise InputError(path, f"line {n}: malformed image record ({e})") from e
        images[iid] = ColmapImage(iid, q, t, cid, name, arr[:, :2].copy(), arr[:, 2].astype(np.int64))
    return images


def read_points3D_text(path: str | Path) -> ColmapPoints3D:
    """``points3D.txt``: ``POINT3D_ID X Y Z R G B ERROR TRACK[] (IMAGE_ID POINT2D_IDX)``."""
    path = Path(path)
    ids, xyz, rgb, err, tracks = [], [], [], [], []
    for n, s in _text_lines(path):
        tok = s.split()
        try:
            ids.append(int(tok[0]))
            xyz.append([float(x) for x in tok[1:4]])
            rgb.append([int(x) for x in tok[4:7]])
            err.append(float(tok[7]))
            tr = np.array(tok[8:], dtype=np.int64)
            if len(tr) % 2:
                raise ValueError("odd number of track values")
            tracks.append(tr.reshape(-1, 2))
        except (IndexError, ValueError) as e:
            raise InputError(path, f"line {n}: malformed point ({e})") from e
    return ColmapPoints3D(
        np.array(ids, dtype=np.int64),
        np.array(xyz, dtype=np.float64).reshape(-1, 3),
        np.array(rgb, dtype=np.uint8).reshape(-1, 3),
        np.array(err, dtype=np.float64),
        tracks,
    )


class _Reader:
    """Little-endian binary reader over a file's bytes with bounds checks."""

    def __init__(self, path: Path):
        if not path.is_file():
            raise InputError(path, "file not found")
        self.path = path
        self.buf = path.read_bytes()
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise InputError(self.path, f"truncated binary file (needed {size} bytes at offset {self.pos})")
        vals = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return vals

    def array(self, dtype: str, count: int) -> np.ndarray:
        dt = np.dtype(dtype).newbyteorder("<")
        size = dt.itemsize * count
        if self.pos + size > len(self.buf):
            raise InputError(self.path, f"truncated binary file (needed {size} bytes at offset {self.pos})")
        out = np.frombuffer(self.buf, dtype=dt, count=count, offset=self.pos).copy()
        self.pos += size
        return out

    def cstring(self) -> str:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            raise InputError(self.path, f"truncated binary file (unterminated name at offset {self.pos})")
        s = self.buf[self.pos : end].decode("utf-8", errors="replace")
        self.pos = end + 1
        return s

    def done(self) -> None:
        if self.pos != len(self.buf):
            raise InputError(self.path, f"{len(self.buf) - self.pos} unexpected trailing bytes")


def read_cameras_binary(path: str | Path) -> dict[int, ColmapCamera]:
    """``cameras.bin``: u64 count; per camera i32 id, i32 model id, u64 width, u64 height, f64 params[]."""
    r = _Reader(Path(path))
    (n,) = r.take("Q")
    cams = {}
    for _ in range(n):
        cid, mid, w, h = r.take("iiQQ")
        if mid not in _MODEL_BY_ID:
            raise InputError(r.path, f"camera {cid}: unknown camera model id {mid}")
        model = _MODEL_BY_ID[mid]
        cams[cid] = ColmapCamera(cid, model, w, h, r.array("f8", CAMERA_MODELS[model][1]))
    r.done()
    return cams


def read_images_binary(path: str | Path) -> dict[int, ColmapImage]:
    """``images.bin``: u64 count; per image i32 id, f64 qvec[4], f64 tvec[3], i32 camera id, name\\0,
    u64 K, then K x (f64 x, f64 y, i64 point3D id)."""
    r = _Reader(Path(path))
    (n,) = r.take("Q")
    images = {}
    rec = np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")])
    for _ in range(n):
        iid, qw, qx, qy, qz, tx, ty, tz, cid = r.take("i7di")
        name = r.cstring()
        (k,) = r.take("Q")
        size = rec.itemsize * k
        if r.pos + size > len(r.buf):
            raise InputError(r.path, f"image {iid}: truncated keypoint list")
        pts = np.frombuffer(r.buf, dtype=rec, count=k, offset=r.pos)
        r.pos += size
        xys = np.stack([pts["x"], pts["y"]], -1).astype(np.float64).reshape(-1, 2)
        images[iid] = ColmapImage(iid, np.array([qw, qx, qy, qz]), np.array([tx, ty, tz]), cid, name, xys, pts["id"].astype(np.int64))
    r.done()
    return images


def read_points3D_binary(path: str | Path) -> ColmapPoints3D:
    """``points3D.bin``: u64 count; per point u64 id, f64 xyz[3], u8 rgb[3], f64 error, u64 L,
    then L x (i32 image id, i32 point2D idx)."""
    r = _Reader(Path(path))
    (n,) = r.take("Q")
    ids = np.empty(n, dtype=np.int64)
    xyz = np.empty((n, 3))
    rgb = np.empty((n, 3), dtype=np.uint8)
    err = np.empty(n)
    tracks = []
    for i in range(n):
        pid, x, y, z, cr, cg, cb, e, L = r.take("Q3d3BdQ")
        ids[i], xyz[i], rgb[i], err[i] = pid, (x, y, z), (cr, cg, cb), e
        tracks.append(r.array("i4", 2 * L).astype(np.int64).reshape(-1, 2))
    r.done()
    return ColmapPoints3D(ids, xyz, rgb, err, tracks)


# ============================================================================================ writing
def write_model(model: ColmapModel, folder: str | Path, binary: bool = True) -> Path:
    """Write ``cameras``, ``images`` and ``points3D`` (``.bin`` or ``.txt``) into ``folder``, each atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if binary:
        write_cameras_binary(model.cameras, folder / "cameras.bin")
        write_images_binary(model.images, folder / "images.bin")
        write_points3D_binary(model.points3D, folder / "points3D.bin")
    else:
        write_cameras_text(model.cameras, folder / "cameras.txt")
        write_images_text(model.images, folder / "images.txt")
        write_points3D_text(model.points3D, folder / "points3D.txt")
    return folder


def _f(x: float) -> str:
    return repr(float(x))


def write_cameras_text(cams: dict[int, ColmapCamera], path: str | Path) -> None:
    lines = [
        "# Camera list with one line of data per camera:",
        "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
        f"# Number of cameras: {len(cams)}",
    ]
    for cid in sorted(cams):
        c = cams[cid]
        lines.append(" ".join([str(cid), c.model, str(int(c.width)), str(int(c.height))] + [_f(p) for p in c.params]))
    _write_text(path, lines)


def write_images_text(images: dict[int, ColmapImage], path: str | Path) -> None:
    n_obs = sum(len(im.point3D_ids) for im in images.values())
    mean = n_obs / max(len(images), 1)
    lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
        f"# Number of images: {len(images)}, mean observations per image: {mean}",
    ]
    for iid in sorted(images):
        im = images[iid]
        lines.append(" ".join([str(iid)] + [_f(v) for v in im.qvec] + [_f(v) for v in im.tvec] + [str(im.camera_id), im.name]))
        lines.append(" ".join(f"{_f(x)} {_f(y)} {int(p)}" for (x, y), p in zip(im.xys, im.point3D_ids)))
    _write_text(path, lines)


def write_points3D_text(points: ColmapPoints3D, path: str | Path) -> None:
    lines = [
        "# 3D point list with one line of data per point:",
        "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
        f"# Number of points: {len(points)}",
    ]
    for i in range(len(points)):
        track = " ".join(str(int(v)) for v in np.asarray(points.tracks[i]).reshape(-1))
        row = [str(int(points.ids[i]))] + [_f(v) for v in points.xyz[i]] + [str(int(v)) for v in points.rgb[i]] + [_f(points.error[i])]
        lines.append(" ".join(row + ([track] if track else [])))
    _write_text(path, lines)


def _write_text(path: str | Path, lines: list[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def write_cameras_binary(cams: dict[int, ColmapCamera], path: str | Path) -> None:
    parts = [struct.pack("<Q", len(cams))]
    for cid in sorted(cams):
        c = cams[cid]
        _check_model(Path(path), f"camera {cid}", c.model, len(c.params))
        parts.append(struct.pack("<iiQQ", cid, CAMERA_MODELS[c.model][0], int(c.width), int(c.height)))
        parts.append(np.asarray(c.params, dtype="<f8").tobytes())
    _write_bytes(path, parts)


def write_images_binary(images: dict[int, ColmapImage], path: str | Path) -> None:
    parts = [struct.pack("<Q", len(images))]
    rec = np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")])
    for iid in sorted(images):
        im = images[iid]
        parts.append(struct.pack("<i7di", iid, *np.asarray(im.qvec, float), *np.asarray(im.tvec, float), im.camera_id))
        parts.append(im.name.encode("utf-8") + b"\x00")
        pts = np.empty(len(im.point3D_ids), dtype=rec)
        pts["x"], pts["y"], pts["id"] = im.xys[:, 0], im.xys[:, 1], im.point3D_ids
        parts.append(struct.pack("<Q", len(pts)) + pts.tobytes())
    _write_bytes(path, parts)


def write_points3D_binary(points: ColmapPoints3D, path: str | Path) -> None:
    parts = [struct.pack("<Q", len(points))]
    for i in range(len(points)):
        tr = np.asarray(points.tracks[i], dtype="<i4").reshape(-1, 2)
        parts.append(
            struct.pack("<Q3d3BdQ", int(points.ids[i]), *points.xyz[i], *(int(v) for v in points.rgb[i]), float(points.error[i]), len(tr))
        )
        parts.append(tr.tobytes())
    _write_bytes(path, parts)


def _write_bytes(path: str | Path, parts: list[bytes]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(parts))


# ============================================================================================ <-> Cameras
def distortion_px(cam: ColmapCamera) -> float:
    """Largest pixel displacement the lens distortion causes at the image corners and edge midpoints (0 for pinholes)."""
    p = np.asarray(cam.params, dtype=np.float64)
    if cam.model in ("SIMPLE_PINHOLE", "PINHOLE"):
        return 0.0
    if cam.model == "SIMPLE_RADIAL":
        f, cx, cy, k1 = p
        fx = fy = f
        k2 = p1 = p2 = 0.0
    elif cam.model == "RADIAL":
        f, cx, cy, k1, k2 = p
        fx = fy = f
        p1 = p2 = 0.0
    elif cam.model == "OPENCV":
        fx, fy, cx, cy, k1, k2, p1, p2 = p
    else:
        raise ValueError(f"distortion_px: model {cam.model} is not pinhole-like")
    w, h = cam.width, cam.height
    u = np.array([0, w, 0, w, w / 2, w / 2, 0, w])
    v = np.array([0, 0, h, h, 0, h, h / 2, h / 2])
    x, y = (u - cx) / fx, (v - cy) / fy
    r2 = x * x + y * y
    radial = k1 * r2 + k2 * r2 * r2
    dx = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    dy = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return float(np.max(np.hypot(dx * fx, dy * fy)))


def _pinhole_K(cam: ColmapCamera) -> np.ndarray:
    p = cam.params
    if cam.model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
        fx = fy = p[0]
        cx, cy = p[1], p[2]
    else:  # PINHOLE, OPENCV
        fx, fy, cx, cy = p[:4]
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)


def model_to_cameras(
    model: ColmapModel, distortion_tol_px: float = 1.0, path: str | Path | None = None
) -> tuple[Cameras, list[str], list[int]]:
    """Registered images of ``model`` as :class:`Cameras` (OpenCV c2w), sorted by image name (natural order).

    Pinhole models convert exactly. SIMPLE_RADIAL / RADIAL / OPENCV are accepted with a warning (the
    distortion terms dropped) when their largest displacement at the image border is below
    ``distortion_tol_px`` pixels; larger distortion raises :class:`InputError` (undistort first, e.g. with
    ``colmap image_undistorter``). All cameras must share one image size.

    Returns:
        cameras, image names, COLMAP image ids (same order).
    """
    where = path if path is not None else "COLMAP model"
    if not model.images:
        raise InputError(where, "the model has no registered images")
    order = sorted(model.images.values(), key=lambda im: natural_key(im.name))
    Ks, c2ws = [], []
    sizes = set()
    warned = set()
    for im in order:
        if im.camera_id not in model.cameras:
            raise InputError(where, f"image {im.name!r} refers to missing camera {im.camera_id}")
        cam = model.cameras[im.camera_id]
        if cam.model not in PINHOLE_LIKE:
            raise InputError(
                where,
                f"camera {cam.id} uses the {cam.model} model; only {', '.join(PINHOLE_LIKE)} are supported (undistort the images first)",
            )
        d = distortion_px(cam)
        if d > distortion_tol_px:
            raise InputError(
                where,
                f"camera {cam.id} ({cam.model}) has lens distortion of up to {d:.2f} px at the image border (tolerance "
                f"{distortion_tol_px} px); undistort the images first (e.g. `colmap image_undistorter`)",
            )
        if d > 0 and cam.id not in warned:
            warned.add(cam.id)
            log.warning("%s: camera %d (%s) distortion (max %.3f px) is ignored", where, cam.id, cam.model, d)
        sizes.add((int(cam.width), int(cam.height)))
        Ks.append(_pinhole_K(cam))
        c2ws.append(im.c2w)
    if len(sizes) != 1:
        raise InputError(where, f"images have different sizes {sorted(sizes)}; Cameras needs one size")
    (w, h) = sizes.pop()
    return Cameras(np.array(Ks), np.array(c2ws), w, h).check(where), [im.name for im in order], [im.id for im in order]


def cameras_to_model(
    cameras: Cameras,
    names: list[str],
    points: np.ndarray | None = None,
    colors: np.ndarray | None = None,
) -> ColmapModel:
    """Build a COLMAP model from cameras (PINHOLE; one shared camera when all intrinsics are equal).

    Args:
        names: N image file names.
        points: optional (P, 3) world points; ``colors`` (P, 3) uint8 or float in [0, 1]. Points are written
            without tracks (COLMAP accepts empty tracks).
    """
    if len(names) != len(cameras):
        raise ValueError(f"cameras_to_model: {len(names)} names for {len(cameras)} cameras")
    shared = bool(np.allclose(cameras.K, cameras.K[0], rtol=0, atol=0))
    cams: dict[int, ColmapCamera] = {}
    images: dict[int, ColmapImage] = {}
    q, t = c2w_to_colmap(cameras.c2w)
    for i in range(len(cameras)):
        cid = 1 if shared else i + 1
        if cid not in cams:
            K = cameras.K[i]
            cams[cid] = ColmapCamera(cid, "PINHOLE", cameras.width, cameras.height, np.array([K[0, 0], K[1, 1], K[0, 2], K[1, 2]]))
        images[i + 1] = ColmapImage(i + 1, q[i], t[i], cid, names[i])
    pts = ColmapPoints3D()
    if points is not None:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if colors is None:
            rgb = np.full((len(points), 3), 128, dtype=np.uint8)
        else:
            c = np.asarray(colors)
            rgb = c.astype(np.uint8) if c.dtype == np.uint8 else np.clip(np.round(c * 255), 0, 255).astype(np.uint8)
        pts = ColmapPoints3D(
            np.arange(1, len(points) + 1, dtype=np.int64),
            points,
            rgb.reshape(-1, 3),
            np.zeros(len(points)),
            [np.zeros((0, 2), np.int64)] * len(points),
        )
    return ColmapModel(cams, images, pts)


def read_colmap(folder: str | Path, distortion_tol_px: float = 1.0) -> tuple[Cameras, list[str], np.ndarray, np.ndarray]:
    """Read a COLMAP sparse folder (``.bin`` or ``.txt``) as ``(cameras, names, points (P,3), colors (P,3) float [0,1])``."""
    model = read_model(folder)
    cams, names, _ = model_to_cameras(model, distortion_tol_px, path=folder)
    return cams, names, model.points3D.xyz.copy(), model.points3D.rgb.astype(np.float32) / 255.0


def write_colmap(
    folder: str | Path,
    cameras: Cameras,
    names: list[str],
    points: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    binary: bool = True,
) -> Path:
    """Write cameras (and optional points) as a COLMAP sparse model in ``folder``; see :func:`cameras_to_model`."""
    return write_model(cameras_to_model(cameras, names, points, colors), folder, binary=binary)
