"""Depth backends: a transformers model folder (tiny random weights, built here), user-given maps, true depth."""

from __future__ import annotations

import numpy as np
import pytest

from see3d.depth.base import DepthBackend, DepthPrediction
from see3d.depth.given import GivenDepth
from see3d.depth.true_depth import TrueDepth
from see3d.errors import InputError, WeightsError
from see3d.io.images import save_depth


def _save_depth_anything(folder, metric: bool = False):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    bb = Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37, image_size=56, patch_size=14,
        out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False,
    )  # fmt: skip
    cfg = DepthAnythingConfig(
        backbone_config=bb, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16,
        head_hidden_size=8, patch_size=14, depth_estimation_type="metric" if metric else "relative", max_depth=20,
    )  # fmt: skip
    DepthAnythingForDepthEstimation(cfg).save_pretrained(folder)
    DPTImageProcessor(
        size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14, resample=3,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)  # fmt: skip
    return folder


def _save_dpt(folder):
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    cfg = DPTConfig(
        hidden_size=32, num_hidden_layers=4, backbone_out_indices=[0, 1, 2, 3], num_attention_heads=2, intermediate_size=37,
        image_size=32, patch_size=8, neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_in_index=-1,
    )  # fmt: skip
    DPTForDepthEstimation(cfg).save_pretrained(folder)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "builder,kind",
    [
        (lambda d: _save_depth_anything(d), "relative_disparity"),
        (lambda d: _save_depth_anything(d, metric=True), "metric_depth"),
        (_save_dpt, "relative_disparity"),
    ],
    ids=["depth_anything_relative", "depth_anything_metric", "dpt"],
)
def test_transformers_backend_loads_local_folder(tmp_path, builder, kind):
    import torch

    from see3d.depth.transformers_backend import TransformersDepth

    torch.manual_seed(0)
    folder = builder(tmp_path / "model")
    backend = TransformersDepth(folder, device="cpu")
    assert isinstance(backend, DepthBackend)
    assert backend.kind == kind
    rng = np.random.default_rng(0)
    img = rng.random((37, 50, 3)).astype(np.float32)
    pred = backend.predict(img)
    assert pred.values.shape == (37, 50)  # back at the image's resolution, whatever the model's input size
    assert pred.kind == kind and np.isfinite(pred.values).all()
    assert pred.alignment_space == ("disparity" if kind == "relative_disparity" else "depth")
    np.testing.assert_array_equal(backend.predict(img).values, pred.values)  # deterministic (eval mode)
    other = backend.predict(rng.random((37, 50, 3)).astype(np.float32))
    assert not np.array_equal(other.values, pred.values)  # the output depends on the image
    if kind == "metric_depth":
        assert (pred.values >= 0).all() and (pred.values <= 20).all()  # Depth Anything metric head: sigmoid * max_depth
    # the user may override the interpretation
    assert TransformersDepth(folder, kind="relative_depth", device="cpu").predict(img).kind == "relative_depth"


def test_transformers_backend_bad_folders(tmp_path):
    from see3d.depth.transformers_backend import TransformersDepth

    with pytest.raises(WeightsError, match="config.json"):
        TransformersDepth(tmp_path)
    folder = _save_dpt(tmp_path / "m")
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(WeightsError, match="preprocessor"):
        TransformersDepth(folder, device="cpu")


def test_given_depth_by_name_and_index(tmp_path):
    d = np.linspace(1, 5, 12 * 16, dtype=np.float32).reshape(12, 16)
    save_depth(tmp_path / "0001.npy", d)
    save_depth(tmp_path / "0002.png", d * 2)  # 16-bit millimetres
    backend = GivenDepth(tmp_path)
    img = np.zeros((12, 16, 3), np.float32)
    p = backend.predict(img, key="images/0001.jpg")
    assert p.is_metric and p.alignment_space == "depth"
    np.testing.assert_array_equal(p.values, d)
    np.testing.assert_allclose(backend.predict(img, key=1).values, 2 * d, atol=1e-3)
    big = backend.predict(np.zeros((24, 32, 3), np.float32), key="0001")  # resized, nearest
    np.testing.assert_array_equal(big.values[::2, ::2], d)
    with pytest.raises(InputError, match="0003"):
        backend.predict(img, key="0003.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no depth maps"):
        GivenDepth(tmp_path / "empty")
    with pytest.raises(InputError, match="not found"):
        GivenDepth(tmp_path / "missing")


def test_true_depth_and_prediction_contract():
    depth = np.stack([np.full((4, 5), 2.0), np.full((4, 5), 3.0)]).astype(np.float32)
    depth[1, 0, 0] = 0.0
    td = TrueDepth(depth, names=["a", "b"])
    img = np.zeros((4, 5, 3), np.float32)
    p = td.predict(img, "b")
    assert p.is_metric and not p.mask[0, 0] and p.mask.sum() == 19
    np.testing.assert_array_equal(td.predict(img, 0).depth(), depth[0])
    rel = DepthPrediction(np.ones((4, 5)), "relative_disparity")
    with pytest.raises(ValueError, match="aligned"):
        rel.depth()
    with pytest.raises(ValueError, match="kind"):
        DepthPrediction(np.ones((4, 5)), "inverse")
