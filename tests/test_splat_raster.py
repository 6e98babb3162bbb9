"""Rasterizers: the numba CPU path against the pure-torch reference (values and gradients), the EWA
projection against sampled points, SH constants, and the render() entry point."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from see3d.errors import See3DError
from see3d.io.cameras import Cameras, look_at
from see3d.splat.gaussians import SH_C0, Gaussians
from see3d.splat.project import project
from see3d.splat.rasterize import render
from see3d.splat.sh import sh_basis
from splat_scenes import orbit_cameras, random_gaussians

W, H = 32, 24


def _grads(g: Gaussians, cams: Cameras, i: int, backend: str, bg, seed: int = 1):
    g = g.map(lambda t: t.detach().clone().requires_grad_(True))
    out = render(g, cams.K[i], W, H, c2w=cams.c2w[i], background=bg, backend=backend)
    gen = torch.Generator().manual_seed(seed)
    wr = torch.randn(out["rgb"].shape, generator=gen, dtype=out["rgb"].dtype)
    wd = torch.randn(out["depth"].shape, generator=gen, dtype=out["rgb"].dtype)
    wa = torch.randn(out["alpha"].shape, generator=gen, dtype=out["rgb"].dtype)
    loss = (out["rgb"] * wr).sum() + (out["depth"] * wd).sum() + (out["alpha"] * wa).sum()
    loss.backward()
    return {k: v.detach() for k, v in out.items() if k in ("rgb", "depth", "alpha")}, {k: v.grad for k, v in g.tensors().items()}


@pytest.mark.parametrize("n, seed, view", [(50, 0, 0), (120, 1, 2), (200, 2, 4)])
def test_cpu_matches_reference_values_and_gradients(n, seed, view):
    g = random_gaussians(n, seed=seed)
    cams = orbit_cameras(5, W, H)
    ref_out, ref_g = _grads(g, cams, view, "torch", [0.2, 0.5, 0.9])
    cpu_out, cpu_g = _grads(g, cams, view, "cpu", [0.2, 0.5, 0.9])
    assert ref_out["alpha"].max() > 0.5  # the scene is actually in view
    for k in ref_out:
        torch.testing.assert_close(cpu_out[k], ref_out[k], rtol=1e-9, atol=1e-10)
    for k in ("means", "quats", "log_scales", "opacity_logits", "sh"):
        assert ref_g[k].abs().max() > 0, k
        torch.testing.assert_close(cpu_g[k], ref_g[k], rtol=1e-7, atol=1e-9, msg=k)


def test_cpu_float32_close_to_reference():
    g = random_gaussians(150, seed=3, dtype=torch.float32)
    cams = orbit_cameras(3, W, H)
    ref_out, ref_g = _grads(g, cams, 1, "torch", None)
    cpu_out, cpu_g = _grads(g, cams, 1, "cpu", None)
    for k in ref_out:
        torch.testing.assert_close(cpu_out[k], ref_out[k], rtol=1e-4, atol=1e-4)
    for k in ref_g:
        scale = float(ref_g[k].abs().max())
        torch.testing.assert_close(cpu_g[k], ref_g[k], rtol=1e-3, atol=1e-3 * scale)


def test_cpu_tiles_do_not_change_the_image():
    """An image whose size is not a multiple of the 16 px tile matches the reference at the borders too."""
    g = random_gaussians(80, seed=5, spread=1.0)
    K = torch.tensor(Cameras.intrinsics_from_fov(60, 37, 21))
    c2w = torch.tensor(look_at(np.array([0.0, 0.0, -3.0]), np.zeros(3)))
    a = render(g, K, 37, 21, c2w=c2w, backend="cpu")
    b = render(g, K, 37, 21, c2w=c2w, backend="torch")
    torch.testing.assert_close(a["rgb"], b["rgb"], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("tile", [2, 5, 16])
def test_needle_splats_across_many_tiles_match_the_reference(tile):
    """Long thin diagonal splats crossing many tiles: the tile assignment (alpha ellipse against each tile)
    and the per-row pixel spans skip only pixels the reference also skips (values and gradients)."""
    from see3d.splat.rasterize_cpu import composite_cpu
    from see3d.splat.rasterize_ref import composite_ref

    gen = torch.Generator().manual_seed(7)
    n = 60
    log_scales = torch.tensor([-0.7, -4.0, -4.5], dtype=torch.float64).repeat(n, 1) + 0.3 * torch.randn(n, 3, generator=gen, dtype=torch.float64)
    g = Gaussians(torch.randn(n, 3, generator=gen, dtype=torch.float64) * 0.5, torch.randn(n, 4, generator=gen, dtype=torch.float64),
                  log_scales, torch.randn(n, generator=gen, dtype=torch.float64) * 2.0, torch.randn(n, 1, 3, generator=gen, dtype=torch.float64))  # fmt: skip
    K = torch.tensor(Cameras.intrinsics_from_fov(60, 45, 38))
    w2c = torch.linalg.inv(torch.tensor(look_at(np.array([0.2, -0.3, -3.0]), np.zeros(3))))
    outs, grads = [], []
    for fn in (lambda p: composite_cpu(p, 45, 38, tile=tile), lambda p: composite_ref(p, 45, 38)):
        gg = g.map(lambda t: t.clone().requires_grad_(True))
        p = project(gg, K, w2c, 45, 38)
        rgb, dep, alpha = fn(p)
        wts = torch.randn(45 * 38 * 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        (torch.cat([rgb.reshape(-1), dep.reshape(-1), alpha.reshape(-1)]) * wts).sum().backward()
        outs.append((rgb.detach(), dep.detach(), alpha.detach()))
        grads.append({k: v.grad for k, v in gg.tensors().items()})
    assert float(outs[1][2].max()) > 0.5 and int((outs[1][2] > 1e-3).sum()) > 200  # many pixels covered
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    for k in grads[1]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-7, atol=1e-9, msg=k)


def test_splats_behind_the_camera_are_culled_without_nans():
    g = random_gaussians(60, seed=4)
    cams = orbit_cameras(1, W, H)
    behind = g.map(lambda t: t.clone())
    behind.means[:] = torch.as_tensor(cams.c2w[0, :3, 3]) - 2.0 * torch.as_tensor(cams.c2w[0, :3, 2])  # 2 units behind
    both = Gaussians.cat([g, behind])
    for backend in ("cpu", "torch"):
        out_g, grads_g = _grads(g, cams, 0, backend, None)
        out_b, grads_b = _grads(both, cams, 0, backend, None)
        torch.testing.assert_close(out_b["rgb"], out_g["rgb"])
        for k, v in grads_b.items():
            assert torch.isfinite(v).all(), k
            assert v[len(g) :].abs().max() == 0, k


def test_projection_matches_sampled_points():
    """The EWA 2D covariance equals the covariance of projected samples of a small 3D Gaussian."""
    cams = orbit_cameras(1, 640, 480)
    g = Gaussians(
        torch.tensor([[0.2, -0.1, 0.3]], dtype=torch.float64),
        torch.tensor([[0.9, 0.2, -0.3, 0.1]], dtype=torch.float64),
        torch.log(torch.tensor([[0.01, 0.004, 0.002]], dtype=torch.float64)),
        torch.zeros(1, dtype=torch.float64),
        torch.zeros(1, 1, 3, dtype=torch.float64),
    )
    K, c2w = cams.torch(dtype=torch.float64)
    p = project(g, K[0], torch.linalg.inv(c2w[0]), 640, 480, eps2d=0.0)
    uv, z = cams.project(g.means.numpy())
    np.testing.assert_allclose(p.means2d.numpy(), uv[0], rtol=1e-10)
    np.testing.assert_allclose(p.depths.numpy(), z[0], rtol=1e-10)
    from see3d.splat.project import quat_to_rotmat

    R = quat_to_rotmat(g.quats)[0].numpy()
    rng = np.random.default_rng(0)
    samples = g.means.numpy()[0] + (rng.standard_normal((200_000, 3)) * g.scales.numpy()[0]) @ R.T
    suv, _ = cams.project(samples)
    emp = np.cov(suv[0].T)
    a, b, c = p.conics[0].numpy()
    cov = np.linalg.inv(np.array([[a, b], [b, c]]))
    np.testing.assert_allclose(cov, emp, rtol=0.03, atol=0.03 * np.abs(emp).max())


def test_sh_basis_is_orthonormal():
    n = 40_000
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    d = torch.tensor(np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1))
    Y = sh_basis(d, 3)  # (n, 16)
    gram = (Y.T @ Y) * (4 * math.pi / n)
    torch.testing.assert_close(gram, torch.eye(16, dtype=gram.dtype), atol=2e-3, rtol=0)
    assert Y[0, 0] == pytest.approx(SH_C0)


def test_render_background_alpha_and_depth():
    cams = orbit_cameras(1, W, H)
    g = Gaussians.from_points(np.zeros((1, 3)), np.array([[1.0, 0.0, 0.0]]), scales=0.3, opacity=0.95, sh_degree=0).to(dtype=torch.float64)
    out = render(g, cams.K[0], W, H, c2w=cams.c2w[0], background=[0.0, 1.0, 0.0], backend="cpu")
    a = out["alpha"]
    assert 0.9 < float(a.max()) <= 0.99 and float(a[0, 0]) < 1e-3  # centre opaque, corner empty
    torch.testing.assert_close(out["rgb"][0, 0], torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), atol=1e-3, rtol=0)
    dist = float(np.linalg.norm(cams.c2w[0, :3, 3]))
    centre = out["depth"][H // 2, W // 2]
    assert abs(float(centre) - dist) < 0.05
    assert float(out["depth"][0, 0]) == 0.0 or float(a[0, 0]) > 0


def test_render_rejects_bad_arguments():
    g = random_gaussians(5)
    cams = orbit_cameras(1, W, H)
    with pytest.raises(ValueError, match="exactly one"):
        render(g, cams.K[0], W, H, c2w=cams.c2w[0], w2c=cams.w2c[0])
    with pytest.raises(ValueError, match="exactly one"):
        render(g, cams.K[0], W, H)
    with pytest.raises(ValueError, match="unknown splat backend"):
        render(g, cams.K[0], W, H, c2w=cams.c2w[0], backend="opengl")
    with pytest.raises(ValueError, match="positive"):
        render(g, cams.K[0], 0, H, c2w=cams.c2w[0])
    with pytest.raises(ValueError, match=r"\(3,3\)"):
        render(g, np.eye(4), W, H, c2w=cams.c2w[0])


def test_gsplat_backend_refuses_cpu_tensors_or_missing_install():
    """One clear See3DError naming gsplat (not installed, or asked to render CPU tensors)."""
    g = random_gaussians(5, dtype=torch.float32)
    cams = orbit_cameras(1, W, H)
    with pytest.raises(See3DError, match="gsplat"):
        render(g, cams.K[0], W, H, c2w=cams.c2w[0], backend="gsplat")


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-9), (torch.float32, 2e-4)])
def test_numba_projection_matches_torch_projection_values_and_gradients(dtype, tol):
    """project_cpu (numba, hand-written backward) against project (torch autograd), pose gradient included;
    some splats behind the camera, some beyond the FOV clamp, colours clamped at 0."""
    from see3d.splat.project_cpu import project_cpu

    g0 = random_gaussians(300, seed=5, dtype=dtype, spread=1.5)
    cams = orbit_cameras(3, W, H, radius=2.0)
    K = torch.as_tensor(cams.K[1], dtype=dtype)
    w2c0 = torch.linalg.inv(torch.as_tensor(cams.c2w[1], dtype=dtype))
    res = []
    for fn in (project, project_cpu):
        g = g0.map(lambda t: t.clone().requires_grad_(True))
        w2c = w2c0.clone().requires_grad_(True)
        p = fn(g, K, w2c, W, H, 3)
        gen = torch.Generator().manual_seed(0)
        outs = (p.means2d, p.conics, p.depths, p.opacities, p.colors)
        sum((x * torch.randn(x.shape, generator=gen, dtype=dtype)).sum() for x in outs).backward()
        res.append((p, {k: v.grad for k, v in g.tensors().items()}, w2c.grad))
    (a, ga, wa), (b, gb, wb) = res
    assert (a.opacities == 0).any() and (a.colors == 0).any()  # culled splats and clamped colours are exercised
    for k in ("means2d", "conics", "depths", "opacities", "colors"):
        torch.testing.assert_close(getattr(b, k), getattr(a, k), rtol=tol, atol=tol, msg=k)
    if dtype == torch.float64:
        assert torch.equal(a.rects, b.rects)
    for k in ga:
        scale = float(ga[k].abs().max())
        torch.testing.assert_close(gb[k], ga[k], rtol=tol * 10, atol=tol * 10 * scale, msg=k)
    torch.testing.assert_close(wb, wa, rtol=tol * 10, atol=tol * 10 * float(wa.abs().max()))
