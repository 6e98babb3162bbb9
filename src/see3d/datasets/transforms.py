"""nerfstudio / instant-ngp / Blender ``transforms*.json`` scenes with their train/test split.

Accepted layouts (OpenGL camera-to-world ``transform_matrix`` on disk, OpenCV in memory):

1. Blender style: ``transforms_train.json`` + ``transforms_test.json`` (``transforms_val.json`` is
   ignored). Intrinsics from ``camera_angle_x`` (and ``camera_angle_y``), or ``fl_x``/``fl_y``/``cx``/``cy``;
   image size from ``w``/``h`` or the first image. Views = train frames then test frames.
2. One ``transforms.json`` whose split is given by ``train_filenames`` / ``test_filenames`` keys
   (nerfstudio), or by a split file beside it (``split.json``, ``splits.json`` or ``train_test_split.json``:
   ``{"train": [...], "test": [...]}`` listing file paths, file names or stems). Without any split
   information the scene has no dataset split and the protocol chooses one.

Images with an alpha channel are composited on ``background`` (white by default, the Blender
benchmark's convention) and the alpha becomes the view's mask. Depth maps named by every frame's
``depth_file_path`` (as :meth:`see3d.io.views.Views.save` writes them) are read too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from see3d.datasets.scene import Scene, downscaled_size
from see3d.datasets.splits import Split
from see3d.errors import InputError
from see3d.io.cameras import Cameras
from see3d.io.transforms_json import cameras_from_transforms, frame_path
from see3d.io.views import Views

SPLIT_FILES = ("split.json", "splits.json", "train_test_split.json")


def is_transforms(folder: Path) -> bool:
    return (folder / "transforms_train.json").is_file() or (folder / "transforms.json").is_file()


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(path, f"not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise InputError(path, "must hold a JSON object")
    return data


def _resolve_image(folder: Path, rel: str, json_path: Path) -> Path:
    p = frame_path(folder, rel, json_path)
    if p.is_file():
        return p
    raise InputError(json_path, f"image {rel!r} not found next to it")


def _load_rgba(path: Path, background: float, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) float32 composited on ``background`` and (H, W) bool alpha mask (None without alpha)."""
    import cv2
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            has_alpha = im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info)
            arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(path, f"not a readable image ({e})") from e
    if size is not None and (arr.shape[1], arr.shape[0]) != tuple(size):
        arr = cv2.resize(arr, tuple(size), interpolation=cv2.INTER_AREA)
    if not has_alpha:
        return arr, None
    rgb, a = arr[..., :3], arr[..., 3:4]
    return rgb * a + background * (1 - a), a[..., 0] > 0.5


def _frames_to_views(json_path: Path, data: dict, frames: list[dict], factor: float, background: float) -> Views:
    folder = json_path.parent
    files = []
    for i, f in enumerate(frames):
        if not isinstance(f, dict) or "file_path" not in f:
            raise InputError(json_path, f"frame {i} has no file_path")
        files.append(_resolve_image(folder, str(f["file_path"]), json_path))
    from PIL import Image

    with Image.open(files[0]) as im:
        w_img, h_img = im.size
    cams = cameras_from_transforms(data, json_path, w_img, h_img)
    w, h = cams.width, cams.height
    size = downscaled_size(w, h, factor)
    imgs, masks = [], []
    for p in files:
        img, alpha = _load_rgba(p, background, size)
        if img.shape[:2] != (size[1], size[0]):
            raise InputError(p, f"image is {img.shape[1]}x{img.shape[0]} but the cameras are {size[0]}x{size[1]}")
        imgs.append(img)
        masks.append(alpha)
    mask = np.stack(masks) if all(m is not None for m in masks) else None
    depth = None
    if all("depth_file_path" in f for f in frames):  # e.g. synthetic scenes written by Views.save
        depth = np.stack([_load_depth(frame_path(folder, str(f["depth_file_path"]), json_path), size) for f in frames])
    names = [str(Path(f["file_path"]).with_suffix("")).replace("/", "_").lstrip("._") for f in frames]
    return Views(np.stack(imgs), cams.resized(*size), depth, bool(data.get("depth_is_metric", True)), mask, names)


def _load_depth(path: Path, size: tuple[int, int]) -> np.ndarray:
    import cv2

    from see3d.io.images import load_depth

    d = load_depth(path)
    if (d.shape[1], d.shape[0]) != tuple(size):
        d = cv2.resize(d, tuple(size), interpolation=cv2.INTER_NEAREST)
    return d


def _match(names_in_split: list, frames: list[dict], where: Path) -> list[int]:
    """Frame indices for a split list of file paths, file names or stems."""
    keys: dict[str, int] = {}
    for i, f in enumerate(frames):
        fp = Path(str(f["file_path"]))
        for k in {str(fp), fp.as_posix().lstrip("./"), fp.name, fp.stem}:
            keys.setdefault(k, i)
    out = []
    for n in names_in_split:
        n = str(n)
        cand = [n, n.lstrip("./"), Path(n).name, Path(n).stem]
        idx = next((keys[c] for c in cand if c in keys), None)
        if idx is None:
            raise InputError(where, f"split lists {n!r}, which is not a frame of transforms.json")
        out.append(idx)
    return out


def _split_from_lists(train, test, frames: list[dict], where: Path, rule: str) -> Split:
    if not isinstance(train, list) or not isinstance(test, list):
        raise InputError(where, "must hold 'train' and 'test' lists of file names")
    try:
        return Split(tuple(_match(train, frames, where)), tuple(_match(test, frames, where)), rule)
    except InputError:
        raise
    except ValueError as e:
        raise InputError(where, str(e)) from e


def read_transforms(folder: str | Path, factor: float = 1.0, background: float = 1.0) -> Scene:
    """Read a transforms-json scene folder (see the module docstring)."""
    folder = Path(folder)
    if (folder / "transforms_train.json").is_file():
        train_p, test_p = folder / "transforms_train.json", folder / "transforms_test.json"
        if not test_p.is_file():
            raise InputError(folder, "has transforms_train.json but no transforms_test.json")
        d_train, d_test = _load_json(train_p), _load_json(test_p)
        f_train, f_test = d_train.get("frames"), d_test.get("frames")
        if not isinstance(f_train, list) or not f_train:
            raise InputError(train_p, "has no 'frames' list")
        if not isinstance(f_test, list) or not f_test:
            raise InputError(test_p, "has no 'frames' list")
        v_train = _frames_to_views(train_p, d_train, f_train, factor, background)
        v_test = _frames_to_views(test_p, d_test, f_test, factor, background)
        if (v_train.cameras.width, v_train.cameras.height) != (v_test.cameras.width, v_test.cameras.height):
            raise InputError(test_p, "test images differ in size from the train images")
        masks = np.concatenate([v_train.masks, v_test.masks]) if v_train.masks is not None and v_test.masks is not None else None
        depth = np.concatenate([v_train.depth, v_test.depth]) if v_train.depth is not None and v_test.depth is not None else None
        views = Views(
            np.concatenate([v_train.images, v_test.images]),
            Cameras.cat([v_train.cameras, v_test.cameras]),
            depth=depth,
            masks=masks,
            names=[f"train_{n}" for n in v_train.names] + [f"test_{n}" for n in v_test.names],
        )
        n = len(v_train)
        split = Split(tuple(range(n)), tuple(range(n, len(views))), "dataset split (transforms_train.json / transforms_test.json)")
        return Scene(folder.name, "transforms", folder, views, split=split)
    path = folder / "transforms.json"
    if not path.is_file():
        raise InputError(folder, "no transforms.json or transforms_train.json")
    data = _load_json(path)
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InputError(path, "has no 'frames' list")
    views = _frames_to_views(path, data, frames, factor, background)
    split = None
    if "train_filenames" in data and "test_filenames" in data:
        split = _split_from_lists(data["train_filenames"], data["test_filenames"], frames, path, "dataset split (train_filenames / test_filenames)")
    else:
        sp = next((folder / n for n in SPLIT_FILES if (folder / n).is_file()), None)
        if sp is not None:
            sd = _load_json(sp)
            split = _split_from_lists(sd.get("train"), sd.get("test"), frames, sp, f"dataset split ({sp.name})")
    return Scene(folder.name, "transforms", folder, views, split=split)
