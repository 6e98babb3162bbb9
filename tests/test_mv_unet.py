"""MultiViewUNet: official key layout, numerical parity with the official model, loading, multi-view grouping."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import parity_path
from see3d.errors import WeightsError
from see3d.models import MultiViewUNet, init_from_ldm_unet, load_mv_unet, read_state_dict
from see3d.models.mv_unet_blocks import timestep_embedding
from see3d.pipelines.tiny import TINY_UNET_CONFIG, write_tiny_unet

CASES = ["case", "case_f3", "case_eps"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def parity_model(tmp_path_factory):
    src = parity_path("mv_unet_tiny")
    folder = tmp_path_factory.mktemp("parity_unet")
    shutil.copy(src / "config.json", folder / "config.json")
    shutil.copy(src / "model.safetensors", folder / "diffusion_pytorch_model.safetensors")
    return MultiViewUNet.from_pretrained(folder), src


def test_sd21_config_has_the_official_keys_and_shapes(shared):
    ref_cfg = json.loads(shared("reference", "mv_unet_sd21_config.json").read_text())
    rows = [line.split("\t") for line in shared("reference", "mv_unet_sd21_state_dict.tsv").read_text().splitlines() if line.strip()]
    with torch.device("meta"):
        model = MultiViewUNet(**ref_cfg["config"])
    sd = model.state_dict()
    assert list(sd) == [k for k, _ in rows]
    for key, shape in rows:
        assert list(sd[key].shape) == json.loads(shape), key
    assert sum(v.numel() for v in sd.values()) == ref_cfg["num_parameters"] == 865_925_124


def test_camera_dim_in_config_is_accepted_and_builds_no_camera_path(shared):
    ref_cfg = json.loads(shared("reference", "mv_unet_sd21_config.json").read_text())
    with torch.device("meta"):
        model = MultiViewUNet(**ref_cfg["config"], camera_dim=16)
    assert model.config.camera_dim == 16
    assert not any(k.startswith("camera_embed") for k in model.state_dict())


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_parity_with_the_official_model(parity_model, case):
    model, src = parity_model
    data = load_file(str(src / f"{case}.safetensors"))
    captured = {}
    hook = model.middle_block.register_forward_hook(lambda m, i, o: captured.setdefault("h_mid", o))
    try:
        with torch.no_grad():
            out = model(data["x"], data["timesteps"], data["context"], num_frames=int(data["num_frames"]))
            t_emb = timestep_embedding(data["timesteps"], model.config.model_channels)
            emb = model.time_embed(t_emb)
    finally:
        hook.remove()
    assert out.dtype == torch.float32 and out.shape == data["out"].shape
    assert (t_emb - data["t_emb"]).abs().max() < 1e-6
    assert (emb - data["emb"]).abs().max() < 1e-5
    assert (captured["h_mid"] - data["h_mid"]).abs().max() < 1e-5
    assert (out - data["out"]).abs().max() < 1e-5


@pytest.mark.parity
def test_wrong_grouping_breaks_parity(parity_model):
    """The fixture is sensitive to the multi-view grouping: per-frame attention must not match."""
    model, src = parity_model
    data = load_file(str(src / "case.safetensors"))
    with torch.no_grad():
        out = model(data["x"], data["timesteps"], data["context"], num_frames=1)
    assert (out - data["out"]).abs().max() > 1e-2


def _tiny(seed=0, **overrides):
    torch.manual_seed(seed)
    model = MultiViewUNet(**{**TINY_UNET_CONFIG, **overrides})
    with torch.no_grad():
        for p in model.parameters():
            if torch.count_nonzero(p) == 0:
                p.normal_(0, 0.05)
    return model.eval()


def test_self_attention_mixes_frames_only_within_a_group():
    model = _tiny()
    x = torch.randn(6, 9, 8, 8)
    ctx = torch.randn(6, 5, 32)
    t = torch.full((6,), 500.0)
    with torch.no_grad():
        base = model(x, t, ctx, num_frames=3)
        x2 = x.clone()
        x2[2] += 1.0  # frame 2 of group 0
        out = model(x2, t, ctx, num_frames=3)
    assert (out[:2] - base[:2]).abs().max() > 1e-4  # other views of the same group react
    assert torch.equal(out[3:], base[3:])  # the other group (e.g. the CFG half) is untouched


def test_bad_batch_layout_is_rejected():
    model = _tiny()
    with pytest.raises(ValueError, match="num_frames"):
        model(torch.randn(5, 9, 8, 8), torch.zeros(5), torch.randn(5, 5, 32), num_frames=2)


def test_unsupported_options_raise():
    with pytest.raises(ValueError, match="ip_dim"):
        MultiViewUNet(**{**TINY_UNET_CONFIG, "ip_dim": 4})
    with pytest.raises(ValueError, match="exactly one"):
        MultiViewUNet(**{**TINY_UNET_CONFIG, "num_heads": 2})


def test_gradient_checkpointing_gives_the_same_gradients():
    model = _tiny().train()
    x = torch.randn(4, 9, 8, 8)
    ctx = torch.randn(4, 5, 32)
    t = torch.tensor([10.0, 500.0, 999.0, 3.0])

    def grads():
        model.zero_grad()
        model(x, t, ctx, num_frames=2).square().mean().backward()
        return {k: p.grad.clone() for k, p in model.named_parameters()}

    plain = grads()
    model.enable_gradient_checkpointing()
    assert model.gradient_checkpointing
    ckpt = grads()
    for k in plain:
        assert torch.allclose(plain[k], ckpt[k], atol=1e-6), k


def test_official_folder_loads_fp16_safetensors_and_bin_and_ignores_camera_embed(tmp_path):
    write_tiny_unet(tmp_path / "st", seed=3, camera_dim=16)
    write_tiny_unet(tmp_path / "bin", seed=3, weights_format="bin")
    cfg = json.loads((tmp_path / "st" / "config.json").read_text())
    assert cfg["_class_name"] == "MultiViewUNetModel" and cfg["camera_dim"] == 16
    assert "camera_embed.0.weight" in read_state_dict(tmp_path / "st" / "diffusion_pytorch_model.safetensors")
    a = MultiViewUNet.from_pretrained(tmp_path / "st")
    b = load_mv_unet(tmp_path / "bin", dtype=torch.float16)
    assert a.dtype == torch.float32 and b.dtype == torch.float16
    for k, v in a.state_dict().items():
        assert torch.equal(v.half(), b.state_dict()[k]), k
    assert not a.training


def test_unknown_config_keys_are_ignored(tmp_path):
    write_tiny_unet(tmp_path, seed=1)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg.update(use_checkpoint=True, legacy=False, some_future_key=[1, 2])
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    model = load_mv_unet(tmp_path)
    assert model.config.model_channels == TINY_UNET_CONFIG["model_channels"]


def test_missing_and_mismatched_weights_name_the_file(tmp_path):
    write_tiny_unet(tmp_path, seed=1)
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    sd = load_file(str(path))
    del sd["out.2.bias"]
    save_file(sd, str(path))
    with pytest.raises(WeightsError, match="missing keys.*out.2.bias") as e:
        load_mv_unet(tmp_path)
    assert str(path) in str(e.value)
    sd["out.2.bias"] = torch.zeros(4).half()
    sd["input_blocks.0.0.weight"] = sd["input_blocks.0.0.weight"][:, :4].contiguous()
    save_file(sd, str(path))
    with pytest.raises(WeightsError, match="shape mismatches.*input_blocks.0.0.weight"):
        load_mv_unet(tmp_path)
    path.unlink()
    with pytest.raises(WeightsError, match="no weights file"):
        load_mv_unet(tmp_path)


def test_pickles_with_code_are_refused(tmp_path):
    path = tmp_path / "diffusion_pytorch_model.bin"
    torch.save({"w": torch.zeros(1), "obj": _Unpicklable()}, path)
    with pytest.raises(WeightsError, match=r"diffusion_pytorch_model\.bin.*cannot read weights"):
        read_state_dict(path)


class _Unpicklable:
    pass


def test_init_from_ldm_widens_the_input_conv_with_zero_channels(tmp_path):
    """An SD/MVDream 4-channel UNet in LDM naming initialises the 9-channel model; the new channels are zero, so
    the widened model ignores the condition and reproduces the 4-channel model exactly."""
    src = _tiny(seed=5, in_channels=4)
    ldm = {"model.diffusion_model." + k: v.clone() for k, v in src.state_dict().items()}
    ldm["first_stage_model.decoder.conv_in.weight"] = torch.zeros(3)  # other LDM parts are skipped
    ldm["model.diffusion_model.camera_embed.0.weight"] = torch.zeros(128, 16)  # MVDream's camera MLP is dropped
    save_file(ldm, str(tmp_path / "sd.safetensors"))
    model = init_from_ldm_unet(_tiny(seed=9), tmp_path / "sd.safetensors").eval()
    w = model.state_dict()["input_blocks.0.0.weight"]
    assert torch.equal(w[:, :4], src.state_dict()["input_blocks.0.0.weight"]) and torch.count_nonzero(w[:, 4:]) == 0
    x = torch.randn(4, 4, 8, 8)
    ctx = torch.randn(4, 5, 32)
    with torch.no_grad():
        expected = src(x, torch.full((4,), 321.0), ctx, num_frames=2)
        got = model(torch.cat([x, torch.randn(4, 5, 8, 8)], dim=1), torch.full((4,), 321.0), ctx, num_frames=2)
    assert torch.allclose(expected, got, atol=1e-5)
    bad = {k: v for k, v in ldm.items() if "out.2" not in k}
    with pytest.raises(WeightsError, match="missing keys"):
        init_from_ldm_unet(_tiny(), bad)


def test_save_pretrained_round_trip(tmp_path):
    model = _tiny(seed=2)
    model.save_pretrained(tmp_path)
    loaded = MultiViewUNet.from_pretrained(tmp_path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
