"""nerfstudio / instant-ngp ``transforms.json`` <-> :class:`Cameras` (+ image paths).

The file stores OpenGL camera-to-world matrices (``transform_matrix``); we convert to OpenCV on
read and back on write. Per-frame intrinsics (``fl_x``, ``fl_y``, ``cx``, ``cy``) override the
top-level ones; Blender's ``camera_angle_x`` is read too. Distortion parameters are not supported and are rejected when non-zero.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from see3d.errors import InputError
from see3d.io.atomic import write_json_atomic
from see3d.io.cameras import Cameras
from see3d.io.conventions import opencv_to_opengl, opengl_to_opencv

_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


def write_transforms_json(path: str | Path, cameras: Cameras, frames: list[dict] | None = None, extra: dict | None = None) -> None:
    """Write ``cameras`` to a transforms.json.

    Args:
        frames: per-camera dicts merged into each frame entry (e.g. ``file_path``, ``depth_file_path``,
            ``mask_path``, all relative to the json's folder).
        extra: top-level keys to add (e.g. ``{"depth_unit_scale_factor": 1.0}``).
    """
    if frames is not None and len(frames) != len(cameras):
        raise ValueError(f"write_transforms_json: {len(frames)} frame entries for {len(cameras)} cameras")
    gl = opencv_to_opengl(cameras.c2w)
    out: dict = {"camera_model": "OPENCV", "w": cameras.width, "h": cameras.height}
    shared = np.allclose(cameras.K, cameras.K[0])
    if shared:
        K = cameras.K[0]
        out.update(fl_x=float(K[0, 0]), fl_y=float(K[1, 1]), cx=float(K[0, 2]), cy=float(K[1, 2]))
    entries = []
    for i in range(len(cameras)):
        e: dict = {}
        if frames is not None:
            e.update(frames[i])
        if not shared:
            K = cameras.K[i]
            e.update(fl_x=float(K[0, 0]), fl_y=float(K[1, 1]), cx=float(K[0, 2]), cy=float(K[1, 2]))
        e["transform_matrix"] = gl[i].tolist()
        entries.append(e)
    out["frames"] = entries
    if extra:
        out.update(extra)
    write_json_atomic(path, out)


def cameras_from_transforms(data: dict, path: str | Path, width: int | None = None, height: int | None = None) -> Cameras:
    """:class:`Cameras` of a parsed transforms.json (nerfstudio, instant-ngp or Blender style).

    Focal length from ``fl_x``/``fl_y`` (per frame or top level) or Blender's ``camera_angle_x``/``_y``
    (radians); image size from ``w``/``h``, else ``width``/``height`` (e.g. read from the first image).
    ``path`` names the file in errors.
    """
    frames = data.get("frames") if isinstance(data, dict) else None
    if not frames:
        raise InputError(path, "has no 'frames' list")
    if any(abs(float(data.get(k, 0.0) or 0.0)) > 1e-12 for k in _DISTORTION_KEYS):
        raise InputError(path, "lens distortion parameters are not supported; undistort the images first")
    Ks, c2ws = [], []
    try:
        w = int(data.get("w") or frames[0].get("w") or width)
        h = int(data.get("h") or frames[0].get("h") or height)
        for i, f in enumerate(frames):
            if "fl_x" in f or "fl_x" in data:
                fx = float(f.get("fl_x", data.get("fl_x")))
                fy = float(f.get("fl_y", data.get("fl_y", fx)))
            elif "camera_angle_x" in data:
                fx = 0.5 * w / np.tan(0.5 * float(data["camera_angle_x"]))
                fy = 0.5 * h / np.tan(0.5 * float(data["camera_angle_y"])) if "camera_angle_y" in data else fx
            else:
                raise ValueError(f"frame {i}: no focal length (fl_x or camera_angle_x)")
            cx = float(f.get("cx", data.get("cx", w / 2)))
            cy = float(f.get("cy", data.get("cy", h / 2)))
            m = np.asarray(f["transform_matrix"], dtype=np.float64)
            if m.shape == (3, 4):
                m = np.vstack([m, [0, 0, 0, 1]])
            if m.shape != (4, 4):
                raise ValueError(f"frame {i}: transform_matrix has shape {m.shape}, expected 4x4")
            Ks.append([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
            c2ws.append(m)
        cams = Cameras(np.array(Ks), opengl_to_opencv(np.array(c2ws)), w, h)
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(path, f"malformed camera entry ({e})") from e
    return cams.check(path)


def read_transforms_json(path: str | Path) -> tuple[Cameras, list[dict]]:
    """Read a transforms.json; returns ``(cameras, frame_entries)`` (entries as stored, in file order)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "transforms.json not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid JSON ({e})") from e
    return cameras_from_transforms(data, path), data["frames"]


def frame_path(folder: str | Path, rel: str, json_path: str | Path) -> Path:
    """The file a frame entry of ``json_path`` names (``file_path``, ``depth_file_path``, ``mask_path``), relative to
    ``folder``. A missing extension is tried as .png/.jpg/.jpeg (instant-ngp writes paths without one); the path
    may not leave ``folder`` (an absolute path or ``..`` is refused: a scene reads only its own files).

    Returns the path (which may not exist; the reader says so). Raises :class:`InputError` naming ``json_path``.
    """
    folder = Path(folder)
    rel = str(rel)
    inside = os.path.normpath(os.path.join(os.path.abspath(folder), rel))
    root = os.path.abspath(folder)
    if os.path.isabs(rel) or os.path.commonpath([root, inside]) != root:
        raise InputError(json_path, f"frame path {rel!r} leaves the scene folder; paths must stay inside {folder}")
    p = folder / rel
    if p.exists():
        return p
    for ext in (".png", ".jpg", ".jpeg", ".PNG", ".JPG"):
        for q in (p.with_name(p.name + ext), p.with_suffix(ext)):
            if q.is_file():
                return q
    return p
