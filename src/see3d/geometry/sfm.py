"""Sparse-view camera poses with pycolmap: SIFT extraction, exhaustive matching, incremental mapping.

Meant for the sparse-view setting (2-6 photos of one static scene, e.g. the 3 LLFF training views):
poses come out in OpenCV c2w (COLMAP's camera axes are OpenCV's) in COLMAP's arbitrary world frame and
scale, together with the sparse points, their colours and, per image, which points it observes where.
The scale is arbitrary, so depth predictions must be aligned to these points
(:func:`see3d.geometry.align.align_depth_to_points`).

Everything runs on CPU by default (SIFT on CPU); a temporary workspace holds the database and the
model unless ``workspace`` is given, in which case ``database.db`` and ``sparse/`` are kept there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from see3d.errors import InputError, See3DError
from see3d.io.cameras import Cameras
from see3d.log import get_logger

log = get_logger(__name__)


@dataclass
class SfMResult:
    """Poses and sparse structure of the registered images.

    Attributes:
        cameras: (N registered) pinhole cameras, OpenCV c2w, in input order.
        names: their image names (as in the input list).
        points: (P, 3) world points; colors: (P, 3) float in [0, 1]; errors: (P,) mean reprojection error px.
        observations: per registered image, ``(point_idx (K,) int, uv (K, 2) px)`` -- the points it observes
            and where (pixel centres at +0.5, like :class:`Cameras`).
        unregistered: input names COLMAP could not register.
    """

    cameras: Cameras
    names: list[str]
    points: np.ndarray
    colors: np.ndarray
    errors: np.ndarray
    observations: list[tuple[np.ndarray, np.ndarray]]
    unregistered: list[str]

    def observed_points(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For registered image ``i``: ``(points (K, 3), uv (K, 2), z (K,))`` -- observed points, their
        observed pixel positions and their depths in that camera (for depth alignment)."""
        idx, uv = self.observations[i]
        pts = self.points[idx]
        w2c = self.cameras.w2c[i]
        z = pts @ w2c[2, :3] + w2c[2, 3]
        return pts, uv, z


def run_sfm(
    images: list[str | Path] | str | Path,
    workspace: str | Path | None = None,
    camera_model: str = "SIMPLE_PINHOLE",
    known_K: np.ndarray | None = None,
    max_image_size: int = 1600,
    max_num_features: int = 8192,
    min_tri_angle_deg: float = 4.0,
    require_all: bool = True,
    seed: int = 0,
    num_threads: int = -1,
    quiet: bool = True,
) -> SfMResult:
    """Estimate poses of 2+ images of one static scene.

    Args:
        images: image files, or a folder (all its images, natural order). All must share one size.
        workspace: folder for ``database.db`` and ``sparse/`` (kept); a temporary folder when None.
        camera_model: COLMAP model shared by all images: SIMPLE_PINHOLE (default, most stable for few
            views) or PINHOLE; radial models are refused because :class:`Cameras` is pinhole.
        known_K: optional (3, 3) intrinsics of the images (pixels); kept fixed during bundle adjustment.
        max_image_size: longer image side for SIFT (larger images are downscaled for extraction only).
        min_tri_angle_deg: minimum triangulation angle of the initial pair (COLMAP's default of 16 deg
            fails on forward-facing sparse captures).
        require_all: raise when any image is not registered; otherwise return the registered ones.
        seed: COLMAP's random seed (for repeatable results).
        quiet: silence COLMAP's own INFO/WARNING log lines while it runs.

    Raises:
        InputError: missing / unreadable images, differing sizes, or fewer than 2 images.
        See3DError: reconstruction failed (fewer than 2 images registered, or some not registered with
            ``require_all``).
    """
    import pycolmap

    paths, width, height = _check_images(images)
    if camera_model not in ("SIMPLE_PINHOLE", "PINHOLE"):
        raise ValueError(f"run_sfm: camera_model must be SIMPLE_PINHOLE or PINHOLE, got {camera_model!r}")
    old_level = pycolmap.logging.minloglevel
    if quiet:
        pycolmap.logging.minloglevel = 2  # errors only
    try:
        with _workspace(workspace) as ws:
            img_dir, link_names = _link_images(ws, paths)
            db, sparse = _fresh_outputs(ws)
            _extract_and_match(db, img_dir, link_names, camera_model, known_K, max_image_size, max_num_features, num_threads)
            recs = _incremental_mapping(db, img_dir, sparse, min_tri_angle_deg, seed, num_threads, fixed_intrinsics=known_K is not None)
            if not recs:
                raise See3DError(f"structure from motion failed: no two of the {len(paths)} images could be matched and registered")
            rec = max(recs.values(), key=lambda r: r.num_reg_images())
            return _to_result(rec, paths, link_names, width, height, require_all)
    finally:
        pycolmap.logging.minloglevel = old_level


def _check_images(images: list[str | Path] | str | Path) -> tuple[list[Path], int, int]:
    """The image files (a folder's images in natural order) and their one shared size ``(paths, width, height)``."""
    from PIL import Image

    from see3d.io.images import list_images

    if isinstance(images, str | Path) and Path(images).is_dir():
        paths = list_images(images)
    elif isinstance(images, str | Path):
        raise InputError(images, "not a folder of images (pass a folder or a list of image files)")
    else:
        paths = [Path(p) for p in images]
    if len(paths) < 2:
        raise InputError(None, f"structure from motion needs at least 2 images, got {len(paths)}")
    sizes = {}
    for p in paths:
        if not p.is_file():
            raise InputError(p, "image not found")
        try:
            with Image.open(p) as im:
                sizes[p] = im.size
        except OSError as e:
            raise InputError(p, f"not a readable image ({e})") from e
    if len(set(sizes.values())) != 1:
        raise InputError(paths[0].parent, f"images have different sizes {sorted(set(sizes.values()))}; resize them to one size first")
    width, height = sizes[paths[0]]
    return paths, width, height


@contextmanager
def _workspace(workspace: str | Path | None) -> Iterator[Path]:
    """``workspace`` (created, kept), or a temporary folder removed afterwards."""
    if workspace is not None:
        ws = Path(workspace)
        ws.mkdir(parents=True, exist_ok=True)
        yield ws
        return
    tmp = tempfile.mkdtemp(prefix="see3d_sfm_")
    try:
        yield Path(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _link_images(ws: Path, paths: list[Path]) -> tuple[Path, list[str]]:
    """``ws/images`` holding links (copies where links fail) to ``paths`` under unique names; returns it and the names."""
    img_dir = ws / "images"
    if img_dir.exists():
        shutil.rmtree(img_dir)
    img_dir.mkdir(parents=True)
    link_names = []  # unique names: inputs may come from different folders
    for i, p in enumerate(paths):
        name = p.name if sum(q.name == p.name for q in paths) == 1 else f"{i:04d}_{p.name}"
        try:
            os.symlink(p.resolve(), img_dir / name)
        except OSError:
            shutil.copy2(p, img_dir / name)
        link_names.append(name)
    return img_dir, link_names


def _fresh_outputs(ws: Path) -> tuple[Path, Path]:
    """An empty ``ws/database.db`` path and ``ws/sparse/`` folder (an earlier run's are removed)."""
    db = ws / "database.db"
    if db.exists():
        db.unlink()
    sparse = ws / "sparse"
    if sparse.exists():
        shutil.rmtree(sparse)
    sparse.mkdir()
    return db, sparse


def _extract_and_match(
    db: Path, img_dir: Path, link_names: list[str], camera_model: str, known_K: np.ndarray | None, max_image_size: int,
    max_num_features: int, num_threads: int,
) -> None:  # fmt: skip
    """SIFT features of every image (one shared camera, ``known_K`` as its parameters when given) and exhaustive matching, on the CPU."""
    import pycolmap

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = camera_model
    if known_K is not None:
        K = np.asarray(known_K, dtype=np.float64)
        if camera_model == "SIMPLE_PINHOLE":
            reader.camera_params = f"{0.5 * (K[0, 0] + K[1, 1])},{K[0, 2]},{K[1, 2]}"
        else:
            reader.camera_params = f"{K[0, 0]},{K[1, 1]},{K[0, 2]},{K[1, 2]}"
    extract = pycolmap.FeatureExtractionOptions()
    extract.max_image_size = int(max_image_size)
    extract.num_threads = num_threads
    extract.sift.max_num_features = int(max_num_features)
    pycolmap.extract_features(
        db, img_dir, image_names=link_names, camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader, extraction_options=extract, device=pycolmap.Device.cpu,
    )  # fmt: skip
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = num_threads
    pycolmap.match_exhaustive(db, matching_options=matching, device=pycolmap.Device.cpu)


def _incremental_mapping(
    db: Path, img_dir: Path, sparse: Path, min_tri_angle_deg: float, seed: int, num_threads: int, fixed_intrinsics: bool
) -> dict:
    """COLMAP's incremental mapper over the matched database; returns its reconstructions (maybe none)."""
    import pycolmap

    opts = pycolmap.IncrementalPipelineOptions()
    opts.min_model_size = 2
    opts.min_num_matches = 15
    opts.num_threads = num_threads
    opts.random_seed = seed
    opts.mapper.init_min_tri_angle = float(min_tri_angle_deg)
    opts.mapper.random_seed = seed
    if fixed_intrinsics:
        opts.ba_refine_focal_length = False
        opts.ba_refine_principal_point = False
    opts.ba_refine_extra_params = False
    return pycolmap.incremental_mapping(db, img_dir, sparse, opts)


def _to_result(rec, paths: list[Path], link_names: list[str], width: int, height: int, require_all: bool) -> SfMResult:
    by_name = {im.name: im for im in rec.images.values() if im.has_pose}
    registered = [i for i, n in enumerate(link_names) if n in by_name]
    missing = [paths[i].name for i in range(len(paths)) if i not in registered]
    if len(registered) < 2:
        raise See3DError(f"structure from motion failed: only {len(registered)} of {len(paths)} images registered")
    if missing and require_all:
        raise See3DError(f"structure from motion could not register {len(missing)} of {len(paths)} images: {', '.join(missing)}")
    if missing:
        log.warning("structure from motion: %d images not registered: %s", len(missing), ", ".join(missing))
    pids = sorted(rec.points3D.keys())
    index = {pid: k for k, pid in enumerate(pids)}
    pts = np.array([rec.points3D[p].xyz for p in pids], dtype=np.float64).reshape(-1, 3)
    cols = np.array([rec.points3D[p].color for p in pids], dtype=np.float32).reshape(-1, 3) / 255.0
    errs = np.array([rec.points3D[p].error for p in pids], dtype=np.float64)
    Ks, c2ws, obs = [], [], []
    for i in registered:
        im = by_name[link_names[i]]
        cam = rec.cameras[im.camera_id]
        if (cam.width, cam.height) != (width, height):
            raise See3DError(f"structure from motion: camera size {cam.width}x{cam.height} differs from the images' {width}x{height}")
        Ks.append(np.asarray(cam.calibration_matrix(), dtype=np.float64))
        w2c = np.eye(4)
        w2c[:3, :4] = np.asarray(im.cam_from_world().matrix(), dtype=np.float64)
        c2w = np.eye(4)
        c2w[:3, :3] = w2c[:3, :3].T
        c2w[:3, 3] = -w2c[:3, :3].T @ w2c[:3, 3]
        c2ws.append(c2w)
        idx, uv = [], []
        for p2 in im.points2D:
            if p2.has_point3D() and p2.point3D_id in index:
                idx.append(index[p2.point3D_id])
                uv.append(np.asarray(p2.xy, dtype=np.float64))
        obs.append((np.array(idx, dtype=np.int64), np.array(uv, dtype=np.float64).reshape(-1, 2)))
    cams = Cameras(np.array(Ks), np.array(c2ws), width, height)
    return SfMResult(cams, [paths[i].name for i in registered], pts, cols, errs, obs, missing)


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity ``dst ≈ s * R @ src + t`` minimising squared error (Umeyama 1991).

    Args:
        src, dst: (N, 3) corresponding points, N >= 3 (not collinear).

    Returns:
        s, R (3, 3), t (3,).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1
    R = U @ D @ Vt
    var_s = (xs**2).sum() / len(src)
    s = float(np.trace(np.diag(S) @ D) / var_s) if with_scale else 1.0
    t = mu_d - s * R @ mu_s
    return s, R, t


def align_poses_sim3(src: Cameras, dst: Cameras) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity taking ``src`` poses onto ``dst`` poses (same images, any world frame and scale).

    Umeyama on the camera centres *and* on a point ahead of each camera (centre + optical axis times the
    rig's RMS spread, in each frame's own units): centres alone leave the rotation poorly determined for
    forward-facing captures, whose centres are nearly coplanar.

    Returns:
        s, R (3, 3), t (3,) with ``x_dst ≈ s * R @ x_src + t``; apply to poses with :func:`apply_sim3`.
    """
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError("align_poses_sim3: need the same number (>= 2) of source and destination cameras")
    cs, cd = src.centers, dst.centers
    ls = np.sqrt(((cs - cs.mean(0)) ** 2).sum(1).mean())
    ld = np.sqrt(((cd - cd.mean(0)) ** 2).sum(1).mean())
    ps = np.concatenate([cs, cs + ls * src.c2w[:, :3, 2], cs + ls * src.c2w[:, :3, 1]])
    pd = np.concatenate([cd, cd + ld * dst.c2w[:, :3, 2], cd + ld * dst.c2w[:, :3, 1]])
    return umeyama(ps, pd)


def apply_sim3(cameras: Cameras, s: float, R: np.ndarray, t: np.ndarray) -> Cameras:
    """Cameras moved by the similarity ``x -> s R x + t`` (rotations composed, centres mapped; intrinsics kept)."""
    c2w = cameras.c2w.copy()
    c2w[:, :3, :3] = R @ c2w[:, :3, :3]
    c2w[:, :3, 3] = s * cameras.centers @ R.T + t
    return Cameras(cameras.K.copy(), c2w, cameras.width, cameras.height)


def rotation_angle_deg(R) -> np.ndarray:
    """(..., 3, 3) rotations (numpy or torch) -> their angles in degrees, ``atan2(sin, cos)`` with the sine from
    the skew part and the cosine from the trace: exact near 0 (where ``arccos`` of the trace turns rounding of
    an identity into 1e-6 degrees) and near 180."""
    R = np.asarray(R.detach().cpu() if hasattr(R, "detach") else R, dtype=np.float64)
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1) / 2
    skew = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    return np.degrees(np.arctan2(np.linalg.norm(skew, axis=-1) / 2, cos))


def rotation_errors_deg(a: Cameras, b: Cameras) -> np.ndarray:
    """(N,) angle in degrees between the camera rotations of ``a`` and ``b`` (same world frame)."""
    return rotation_angle_deg(np.transpose(a.c2w[:, :3, :3], (0, 2, 1)) @ b.c2w[:, :3, :3])


def relative_rotation_errors_deg(a: Cameras, b: Cameras) -> np.ndarray:
    """(N-1,) rotational relative pose error (RPE, degrees) of consecutive cameras: the angle between the
    rotation from camera ``i`` to ``i + 1`` in ``a`` and the same in ``b``. Independent of either world frame
    (no alignment needed); the rotation part of the RPE that pose-free 3DGS/NeRF papers report for their
    trajectories (CF-3DGS, InstantSplat; after Sturm et al.'s TUM benchmark)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("relative_rotation_errors_deg: need the same number (>= 2) of cameras in both sets")
    Ra, Rb = a.c2w[:, :3, :3], b.c2w[:, :3, :3]
    rel_a = np.transpose(Ra[:-1], (0, 2, 1)) @ Ra[1:]
    rel_b = np.transpose(Rb[:-1], (0, 2, 1)) @ Rb[1:]
    return rotation_angle_deg(np.transpose(rel_a, (0, 2, 1)) @ rel_b)
