"""Metrics: PSNR, SSIM (against scikit-image and closed forms), LPIPS (against the lpips package)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from see3d.errors import WeightsError
from see3d.eval.scoring import LPIPS_SKIPPED, Scorer, mean_metrics
from see3d.metrics import MAX_PSNR_DB, psnr, ssim, ssim_map, to_tensor_batch


def _smooth_images(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, h // 4 + 1, w // 4 + 1, generator=g, dtype=torch.float64)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def test_psnr_known_values():
    a = torch.full((2, 3, 8, 8), 0.5)
    b = a + 0.1  # MSE 0.01 -> 20 dB
    assert torch.allclose(psnr(b, a), torch.tensor([20.0, 20.0]), atol=1e-4)
    assert torch.allclose(psnr(a, a), torch.tensor([MAX_PSNR_DB] * 2))
    # error only outside the mask: the masked PSNR ignores it
    c = a.clone()
    c[:, :, :, 4:] += 0.3
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[:, :, :4] = True
    assert torch.allclose(psnr(c, a, mask), torch.tensor([MAX_PSNR_DB] * 2))
    assert torch.allclose(psnr(c, a, ~mask), torch.tensor([-10 * np.log10(0.09)] * 2, dtype=torch.float32), atol=1e-4)
    # data_range scales: images in [0, 255] with the same relative error give the same PSNR
    assert torch.allclose(psnr(b * 255, a * 255, data_range=255.0), torch.tensor([20.0, 20.0]), atol=1e-3)


def test_ssim_constant_images_closed_form():
    # zero variance: SSIM = (2ab + C1) / (a^2 + b^2 + C1) exactly
    a, b = 0.5, 0.3
    x = torch.full((1, 3, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 3, 16, 16), b, dtype=torch.float64)
    c1 = 0.01**2
    expect = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(x, y).item() == pytest.approx(expect, rel=1e-10)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_scikit_image():
    import skimage.metrics as skm

    x = _smooth_images(3, 37, 45, seed=1)
    y = (x + 0.08 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)).clamp(0, 1)
    ours = ssim(x, y)
    for i in range(3):
        a = x[i].permute(1, 2, 0).numpy()
        b = y[i].permute(1, 2, 0).numpy()
        ref = skm.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1)
        assert ours[i].item() == pytest.approx(ref, abs=1e-9)
    # float32 (what the evaluation uses) agrees to ~1e-6
    assert torch.allclose(ssim(x.float(), y.float()), ours.float(), atol=1e-5)


def test_ssim_masked_and_padding():
    x = _smooth_images(2, 32, 32, seed=3)
    y = x.clone()
    y[:, :, :, 16:] = 1 - y[:, :, :, 16:]  # ruin the right half
    full = torch.ones(2, 32, 32, dtype=torch.bool)
    assert torch.allclose(ssim(x, y, full), ssim(x, y))
    left = torch.zeros(2, 32, 32, dtype=torch.bool)
    left[:, :, :8] = True  # windows centred here never reach column 16
    assert torch.allclose(ssim(x, y, left), torch.ones(2, dtype=torch.float64))
    assert ssim(x, y).max() < 0.8
    assert ssim_map(x, y).shape == (2, 3, 22, 22)
    assert ssim_map(x, y, padding="same").shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="smaller than"):
        ssim(x[..., :8, :8], y[..., :8, :8])
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(x, y[:1])


def test_ssim_is_differentiable():
    x = _smooth_images(1, 13, 14, seed=4)[:, :1].requires_grad_(True)
    y = _smooth_images(1, 13, 14, seed=5)[:, :1]
    assert torch.autograd.gradcheck(lambda a: ssim(a, y), (x,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda a: ssim(a, y, padding="same"), (x,), fast_mode=True)
    # a few gradient steps on D-SSIM move the image towards the target
    z = torch.rand(1, 3, 24, 24, requires_grad=True)
    t = _smooth_images(1, 24, 24, seed=6).float()
    opt = torch.optim.Adam([z], lr=0.05)
    start = ssim(z, t).item()
    for _ in range(20):
        opt.zero_grad()
        (1 - ssim(z, t)).mean().backward()
        opt.step()
    assert ssim(z, t).item() > start + 0.2


def test_to_tensor_batch_layout():
    img = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    t = to_tensor_batch(img)
    assert t.shape == (1, 3, 5, 7)
    assert t[0, 2, 4, 6].item() == pytest.approx(img[4, 6, 2])


# ---------------------------------------------------------------------------------------------- LPIPS
@pytest.fixture(scope="module")
def lpips_ref():
    """The lpips package's network with its shipped linear layers and a random (seeded) backbone."""
    import lpips

    torch.manual_seed(0)
    return lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()


def test_lpips_matches_lpips_package(lpips_ref, tmp_path):
    import lpips as lpips_pkg

    from see3d.perceptual import load_lpips

    # the two files a user has: the lpips package's linear layers and torchvision's backbone
    lin = tmp_path / "alex.pth"
    torch.save({k: v for k, v in lpips_pkg.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).state_dict().items() if k.startswith("lin")}, lin)
    backbone = tmp_path / "alexnet-owt-7be5be79.pth"
    # lpips names the backbone net.slice<k>.<index>.<param>; torchvision names it features.<index>.<param>
    torch.save({"features." + k.split(".", 2)[2]: v for k, v in lpips_ref.state_dict().items() if k.startswith("net.")}, backbone)
    # the shipped lin weights are the same in both, so a merged state dict and the two files agree
    merged = tmp_path / "merged.pth"
    torch.save(lpips_ref.state_dict(), merged)
    x = _smooth_images(2, 64, 64, seed=7).float()
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(8))).clamp(0, 1)
    ref = lpips_ref(x, y, normalize=True).flatten()
    for paths in ([merged], [lin, backbone], [tmp_path / "alex.pth", tmp_path / "alexnet-owt-7be5be79.pth"]):
        model = load_lpips(paths)
        assert model.net == "alex"
        assert torch.allclose(model(x, y), ref, atol=1e-6)
    model = load_lpips([lin, backbone])
    assert torch.allclose(model(x, x), torch.zeros(2), atol=1e-7)
    full = torch.ones(2, 64, 64, dtype=torch.bool)
    assert torch.allclose(model(x, y, full), ref, atol=1e-6)


def test_lpips_clear_errors(tmp_path):
    from see3d.perceptual import LPIPS, load_lpips

    lins_only = tmp_path / "alex.pth"
    torch.save({f"lin{i}.model.1.weight": w.weight.data for i, w in enumerate(LPIPS("alex").lins)}, lins_only)
    with pytest.raises(WeightsError, match="backbone"):
        load_lpips(lins_only)
    with pytest.raises(WeightsError, match="not found"):
        load_lpips(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_lpips(bad)
    only_backbone = tmp_path / "bb.pth"
    torch.save({f"features.{k}": v for k, v in LPIPS("alex").features.state_dict().items()}, only_backbone)
    with pytest.raises(WeightsError, match="linear layers"):
        load_lpips(only_backbone)
    with pytest.raises(WeightsError, match="backbone weights are alex"):
        load_lpips([lins_only, only_backbone], net="vgg")


def test_scorer_without_lpips_weights_says_skipped():
    s = Scorer.from_weights(None)
    assert s.lpips_status == LPIPS_SKIPPED == "skipped (no weights given)"
    rng = np.random.default_rng(0)
    a = rng.random((3, 16, 20, 3)).astype(np.float32)
    rows = s.score(np.clip(a + 0.1, 0, 1), a)
    assert len(rows) == 3 and all(r["lpips"] is None for r in rows)
    expect = [-10 * np.log10(np.mean((np.clip(a[i] + 0.1, 0, 1) - a[i]) ** 2)) for i in range(3)]
    assert [r["psnr"] for r in rows] == pytest.approx(expect, abs=1e-3)
    m = mean_metrics(rows)
    assert m["psnr"] == pytest.approx(np.mean(expect), abs=1e-3) and m["lpips"] is None
