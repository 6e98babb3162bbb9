"""The optional LPIPS loss term of splat optimisation (random-weight network saved to a local file; no download)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from see3d.errors import WeightsError
from see3d.perceptual import LPIPS, cached_lpips_weights
from see3d.splat.config import ReconstructConfig
from see3d.splat.optimize import SplatTrainer, initial_gaussians
from splat_scenes import synthetic_views


@pytest.fixture(scope="module")
def lpips_file(tmp_path_factory):
    torch.manual_seed(0)
    net = LPIPS("alex")
    for lin in net.lins:
        lin.weight.data.uniform_(0.0, 1.0)  # real LPIPS linear weights are >= 0
    path = tmp_path_factory.mktemp("lpips") / "lpips_alex_random.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return str(path)


def _trainer(views, lpips_file, **kw):
    cfg = ReconstructConfig(iters=10, sh_degree=0, init="random", init_points=300, checkpoint_every=0, lpips_weights=[lpips_file], **kw)
    init = initial_gaussians(views, cfg, np.random.default_rng(0), bounds=(1.5, 5.0))
    return SplatTrainer(views, cfg, init)


def test_lpips_term_adds_to_the_loss_from_its_start_step(lpips_file):
    views, _ = synthetic_views(n_views=3, width=40, height=32)
    plain = _trainer(views, lpips_file)
    with_lp = _trainer(views, lpips_file, lambda_lpips=0.5, lpips_from=2)
    assert plain.lpips is None and with_lp.lpips is not None
    a = [plain.train_step()["loss"] for _ in range(4)]
    b = [with_lp.train_step()["loss"] for _ in range(4)]
    assert a[:2] == b[:2]  # before lpips_from: identical runs
    assert b[2] > a[2] + 1e-4  # from then on the (positive) LPIPS term is in the loss


def test_lpips_gradient_flows_and_respects_the_mask(lpips_file):
    views, _ = synthetic_views(n_views=2, width=40, height=32)
    tr = _trainer(views, lpips_file, lambda_lpips=1.0)
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(1, 3, 32, 40, generator=gen, requires_grad=True)
    target = torch.rand(1, 3, 32, 40, generator=gen)
    tr._lpips(pred, target, None).backward()
    assert pred.grad.abs().sum() > 0
    mask = torch.zeros(32, 40, dtype=torch.bool)
    mask[8:24, 10:30] = True
    pred.grad = None
    d = tr._lpips(pred, target, mask)
    d.backward()
    assert pred.grad[..., mask].abs().sum() > 0
    assert pred.grad[..., ~mask].abs().max() == 0  # no gradient outside the mask
    changed = pred.detach().clone()
    changed[..., ~mask] = 1.0 - changed[..., ~mask]
    assert tr._lpips(changed, target, mask) == d.detach()  # what the render does outside the mask does not count


def test_missing_lpips_weights_fail_with_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsError, match="torch hub cache|linear layers"):
        cached_lpips_weights("alex")
    views, _ = synthetic_views(n_views=2, width=16, height=16)
    cfg = ReconstructConfig(iters=5, init="random", init_points=50, lambda_lpips=0.1)
    with pytest.raises(WeightsError):
        SplatTrainer(views, cfg, initial_gaussians(views, cfg, np.random.default_rng(0), bounds=(1.5, 5.0)))
