"""Reliability, group "truths" (issue 22): what the code says is what it does -- alpha composited as documented,
weight files with the usual permissions, quiet model loading, and no ``static_camera`` for motion never measured."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from see3d import labels

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rgba_image_is_composited_on_black(tmp_path):
    from see3d.io.images import load_image

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :2, 3] = 255  # left half opaque
    rgba[:, 2:, 3] = 0  # right half transparent
    rgba[0, 0, 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.shape == (4, 4, 3)
    np.testing.assert_allclose(img[1:, :2], 200 / 255, atol=1e-6)
    np.testing.assert_allclose(img[:, 2:], 0.0)
    np.testing.assert_allclose(img[0, 0], 200 / 255 * 128 / 255, atol=1e-6)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_weight_files_get_the_usual_permissions(tmp_path):
    from safetensors.torch import save_file

    from see3d.io.atomic import atomic_path
    from see3d.io.outdir import staged_dir
    from see3d.models.mv_unet import MultiViewUNet
    from see3d.train.checkpoint import save_model_folder
    from train_helpers import TINY_UNET

    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "w.safetensors") as tmp:
            save_file({"a": torch.zeros(2)}, str(tmp))
        assert _mode(tmp_path / "w.safetensors") == 0o644
        unet = MultiViewUNet(**{**TINY_UNET, "in_channels": 8, "out_channels": 4})
        folder = save_model_folder(unet, tmp_path / "unet")
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert files and all(_mode(p) == 0o644 for p in files) and _mode(folder) == 0o755
        with staged_dir(tmp_path / "out") as out:
            save_file({"a": torch.zeros(2)}, str(out / "x.safetensors"))
        assert _mode(tmp_path / "out") == 0o755 and _mode(tmp_path / "out" / "x.safetensors") == 0o644
    finally:
        os.umask(umask)


def test_model_loading_is_quiet(capfd):
    from see3d.demo import default_demo_weights
    from see3d.pipelines.loader import load_see3d

    if not (default_demo_weights() / "unet" / "config.json").is_file():
        pytest.skip("the package has no shipped demo model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_see3d(default_demo_weights(), "single", "cpu", "float32")
    assert not [w for w in caught if "torch_dtype" in str(w.message)]
    err = capfd.readouterr().err
    assert "Loading" not in err and "%|" not in err and "FutureWarning" not in err


def test_motion_that_could_not_be_measured_is_not_a_static_camera():
    from see3d.curation.track import Tracks
    from see3d.curation.viewpoint import ViewpointConfig, viewpoint_from_tracks

    cfg = ViewpointConfig()
    rng = np.random.default_rng(0)
    T, per_frame = 12, 40
    # a fast pan at a low sampling rate: every track is lost after one frame, new corners each frame
    xy = np.full((T * per_frame, T, 2), np.nan, np.float32)
    for t in range(T):
        xy[t * per_frame : (t + 1) * per_frame, t] = rng.random((per_frame, 2)) * [320, 180]
    stats = viewpoint_from_tracks(Tracks(xy), 320, 180, cfg)
    assert stats.reason == labels.UNTRACKABLE and "cannot be measured" in stats.message
    # a still camera: the same points in every frame
    still = np.repeat(rng.random((per_frame, 1, 2)).astype(np.float32) * [320, 180], T, axis=1)
    assert viewpoint_from_tracks(Tracks(still), 320, 180, cfg).reason == labels.STATIC_CAMERA


def _faststart_copy(src, dst) -> None:
    """Remux with the index first (as streaming-friendly files are), so a cut-off copy still opens."""
    import av

    with av.open(str(src)) as i, av.open(str(dst), "w", format="mp4", options={"movflags": "faststart"}) as o:
        s = i.streams.video[0]
        t = o.add_stream_from_template(s)
        for p in i.demux(s):
            if p.dts is None:
                continue
            p.stream = t
            o.mux(p)


def test_truncated_video_is_an_error_row_with_reason_truncated(tmp_path):
    import pyarrow.parquet as pq

    from see3d.curation import curate
    from see3d.curation.config import CurateConfig
    from test_curation_common import good_video

    _faststart_copy(good_video(tmp_path / "src.mp4", seconds=10), tmp_path / "full.mp4")
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.7)])  # an interrupted download
    summary = curate([str(tmp_path / "full.mp4"), str(tmp_path / "cut.mp4")], tmp_path / "out", CurateConfig(workers=0, progress=False))
    rows = {Path(r["video"]).name: r for r in pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist() if r["kind"] == "video"}
    assert rows["full.mp4"]["decision"] == labels.KEEP
    cut = rows["cut.mp4"]
    assert cut["decision"] == labels.ERROR and cut["reason"] == labels.TRUNCATED and "container says 10.0 s" in cut["message"]
    assert summary.errors == 1 and labels.TRUNCATED in labels.REASONS
