"""nerfstudio ``camera_path.json`` (what ``ns-render camera-path`` and the nerfstudio viewer use) <-> :class:`Cameras`.

Layout::

    {"camera_type": "perspective", "render_width": W, "render_height": H, "fps": 24, "seconds": T,
     "camera_path": [{"camera_to_world": [16 floats, row-major 4x4, OpenGL axes], "fov": deg, "aspect": W/H}, ...]}

``fov`` is the *vertical* field of view in degrees (nerfstudio: ``fy = (H / 2) / tan(fov / 2)``, ``fx = fy``,
principal point at the centre). So that any :class:`Cameras` round-trips exactly, every entry also carries
``"see3d_intrinsics": {"fx", "fy", "cx", "cy"}`` (pixels); nerfstudio ignores the extra key, and we prefer it
on read when present.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from see3d.errors import InputError
from see3d.io.atomic import write_json_atomic
from see3d.io.cameras import Cameras
from see3d.io.conventions import opencv_to_opengl, opengl_to_opencv


def write_camera_path(path: str | Path, cameras: Cameras, fps: float = 24.0, extra: dict | None = None) -> None:
    """Write ``cameras`` as a nerfstudio camera path (atomically); ``seconds = N / fps``."""
    gl = opencv_to_opengl(cameras.c2w)
    entries = []
    for i in range(len(cameras)):
        K = cameras.K[i]
        fov_y = float(np.rad2deg(2.0 * np.arctan(0.5 * cameras.height / K[1, 1])))
        entries.append(
            {
                "camera_to_world": gl[i].reshape(-1).tolist(),
                "fov": fov_y,
                "aspect": cameras.width / cameras.height,
                "see3d_intrinsics": {"fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2])},
            }
        )
    out = {
        "camera_type": "perspective",
        "render_width": cameras.width,
        "render_height": cameras.height,
        "fps": float(fps),
        "seconds": len(cameras) / float(fps),
        "smoothness_value": 0.0,
        "is_cycle": False,
        "camera_path": entries,
    }
    if extra:
        out.update(extra)
    write_json_atomic(path, out)


def read_camera_path(path: str | Path) -> Cameras:
    """Read a nerfstudio ``camera_path.json`` (perspective cameras only) into OpenCV :class:`Cameras`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "camera path file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid JSON ({e})") from e
    if not isinstance(data, dict) or not data.get("camera_path"):
        raise InputError(path, "has no 'camera_path' list")
    ctype = str(data.get("camera_type", "perspective")).lower()
    if ctype != "perspective":
        raise InputError(path, f"camera_type {ctype!r} is not supported (perspective only)")
    Ks, c2ws = [], []
    try:
        w, h = int(data["render_width"]), int(data["render_height"])
        for i, cam in enumerate(data["camera_path"]):
            m = np.asarray(cam["camera_to_world"], dtype=np.float64).reshape(-1)
            if m.size == 12:
                m = np.concatenate([m, [0, 0, 0, 1]])
            if m.size != 16:
                raise ValueError(f"entry {i}: camera_to_world has {m.size} values, expected 16")
            intr = cam.get("see3d_intrinsics")
            if intr is not None:
                fx, fy, cx, cy = (float(intr[k]) for k in ("fx", "fy", "cx", "cy"))
            else:
                fov = float(cam["fov"])
                if not 0 < fov < 180:
                    raise ValueError(f"entry {i}: fov {fov} is not in (0, 180) degrees")
                fx = fy = 0.5 * h / np.tan(0.5 * np.deg2rad(fov))
                cx, cy = w / 2.0, h / 2.0
            Ks.append([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
            c2ws.append(m.reshape(4, 4))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(path, f"malformed camera entry ({e!r})") from e
    try:
        cams = Cameras(np.array(Ks), opengl_to_opencv(np.array(c2ws)), w, h)
    except InputError:
        raise
    except ValueError as e:
        raise InputError(path, str(e)) from e
    return cams.check(path)
