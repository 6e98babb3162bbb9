"""One device / dtype / rasterizer policy (:mod:`see3d.device`, :func:`see3d.splat.rasterize.resolve_splat_placement`)
and the CUDA-path rules that can be checked without a GPU."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from see3d.device import cpu_has_fast_bf16, randn, resolve_device, resolve_dtype
from see3d.errors import InputError
from see3d.splat.densify import split_offsets
from see3d.splat.rasterize import resolve_splat_placement


@pytest.fixture
def strict_generator_device(monkeypatch):
    """``torch.randn`` that refuses a generator on another device than the tensor, as PyTorch does for CUDA
    tensors (on CPU builds nothing else enforces it: a CPU generator with ``device='meta'`` passes silently)."""
    real = torch.randn

    def randn_checked(*size, generator=None, device=None, **kw):
        if generator is not None and device is not None and torch.device(device).type != generator.device.type:
            raise RuntimeError(f"Expected a '{torch.device(device).type}' device type for generator but found '{generator.device.type}'")
        return real(*size, generator=generator, device=device, **kw)

    monkeypatch.setattr(torch, "randn", randn_checked)
    return real


def test_resolve_device_policy():
    assert resolve_device("auto", cuda_count=0) == torch.device("cpu")
    assert resolve_device("auto", cuda_count=2) == torch.device("cuda", 0)
    assert resolve_device("cuda", cuda_count=2) == torch.device("cuda", 0)
    assert resolve_device("cuda:1", cuda_count=2) == torch.device("cuda", 1)
    assert resolve_device("cpu", cuda_count=2) == torch.device("cpu")
    with pytest.raises(InputError, match="no CUDA device"):
        resolve_device("cuda", cuda_count=0)
    with pytest.raises(InputError, match=r"cuda:3.*2 CUDA device"):
        resolve_device("cuda:3", cuda_count=2)
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("gpu0", cuda_count=0)


def test_resolve_dtype_policy():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert resolve_dtype("auto", cuda, fast_bf16=False) == torch.float16  # official
    assert resolve_dtype("auto", cpu, fast_bf16=True) == torch.bfloat16
    assert resolve_dtype("auto", cpu, fast_bf16=False) == torch.float32
    assert resolve_dtype("float32", cpu, fast_bf16=True) == torch.float32  # explicit wins
    assert resolve_dtype(torch.float16, cpu) == torch.float16
    with pytest.raises(InputError, match="unknown dtype"):
        resolve_dtype("fp8", cpu)


def test_fast_bf16_is_read_from_the_cpu_flags(tmp_path):
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile\n")
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n")
    assert cpu_has_fast_bf16(amx) and not cpu_has_fast_bf16(avx2)
    assert not cpu_has_fast_bf16(tmp_path / "missing")


def test_randn_draws_on_the_generator_device(strict_generator_device):
    with pytest.raises(RuntimeError, match="device type for generator"):  # the bug pattern, caught by the strict rule
        torch.randn(4, 3, generator=torch.Generator().manual_seed(0), device="meta")
    out = randn((4, 3), torch.Generator().manual_seed(0), "meta")
    assert out.device.type == "meta" and out.shape == (4, 3)
    # the values do not depend on where the tensor goes: the same seed gives the CPU draw
    ref = strict_generator_device(4, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(randn((4, 3), torch.Generator().manual_seed(0), "cpu"), ref)


def test_densify_split_noise_with_a_cpu_generator_for_other_devices(strict_generator_device):
    """Densification on CUDA splats draws split offsets from the trainer's CPU generator (was a crash on GPUs)."""
    scales = torch.full((5, 3), 0.1, device="meta")
    assert split_offsets(scales, torch.Generator().manual_seed(0)).device.type == "meta"
    cpu = split_offsets(torch.full((5, 3), 0.1), torch.Generator().manual_seed(0))
    assert torch.allclose(cpu, 0.1 * strict_generator_device(5, 3, generator=torch.Generator().manual_seed(0)))


def _no_gsplat(device):
    return "gsplat is not importable"


def _gsplat_ok(device):
    return None


@pytest.mark.parametrize(
    "device,backend,cuda,gsplat,expected",
    [
        ("auto", "auto", 0, _gsplat_ok, ("cpu", "cpu")),
        ("auto", "auto", 1, _gsplat_ok, ("cuda:0", "gsplat")),
        ("auto", "auto", 1, _no_gsplat, ("cpu", "cpu")),  # a GPU without gsplat: splats stay on the CPU
        ("auto", "gsplat", 2, _gsplat_ok, ("cuda:0", "gsplat")),
        ("cuda:1", "auto", 2, _gsplat_ok, ("cuda:1", "gsplat")),
        ("cuda", "torch", 1, _no_gsplat, ("cuda:0", "torch")),
        ("auto", "torch", 1, _gsplat_ok, ("cpu", "torch")),
        ("cpu", "auto", 1, _gsplat_ok, ("cpu", "cpu")),
        ("auto", "cpu", 1, _gsplat_ok, ("cpu", "cpu")),
    ],
)
def test_splat_placement_table(device, backend, cuda, gsplat, expected):
    dev, be = resolve_splat_placement(device, backend, cuda_count=cuda, gsplat_problem=gsplat)
    assert (str(dev), be) == expected


@pytest.mark.parametrize(
    "device,backend,cuda,gsplat,message",
    [
        ("cpu", "gsplat", 1, _gsplat_ok, "needs a CUDA device"),
        ("cuda", "cpu", 1, _gsplat_ok, "needs --device cpu"),
        ("auto", "gsplat", 0, _gsplat_ok, "no CUDA device"),
        ("auto", "gsplat", 1, _no_gsplat, "gsplat is not importable"),
        ("cuda", "auto", 1, _no_gsplat, "cannot run here: gsplat is not importable"),
        ("cuda:2", "auto", 1, _gsplat_ok, "1 CUDA device"),
        ("auto", "opengl", 0, _gsplat_ok, "unknown splat backend"),
    ],
)
def test_splat_placement_refuses_what_does_not_fit(device, backend, cuda, gsplat, message):
    with pytest.raises(InputError, match=message):
        resolve_splat_placement(device, backend, cuda_count=cuda, gsplat_problem=gsplat)


@pytest.fixture
def fake_cuda_gsplat(monkeypatch):
    """A machine that reports one CUDA device and a ``gsplat`` module whose behaviour each test sets."""
    from see3d.splat import rasterize_gsplat

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    # the probe's tensors are made on the CPU here (no CUDA in this build); the fake gsplat decides the outcome
    real_inputs = rasterize_gsplat._probe_inputs
    monkeypatch.setattr(rasterize_gsplat, "_probe_inputs", lambda device: real_inputs(torch.device("cpu")))
    rasterize_gsplat.gsplat_problem.cache_clear()
    yield rasterize_gsplat
    rasterize_gsplat.gsplat_problem.cache_clear()


def test_gsplat_missing_is_reported(fake_cuda_gsplat, monkeypatch):
    monkeypatch.setitem(sys.modules, "gsplat", None)  # import gsplat -> ImportError
    assert "not importable" in fake_cuda_gsplat.gsplat_problem("cuda:0")
    assert not fake_cuda_gsplat.gsplat_available("cuda:0")


def test_gsplat_that_cannot_build_its_kernels_is_an_error_at_start_up(fake_cuda_gsplat, monkeypatch, tmp_path):
    """gsplat imports fine but compiles its kernels on first use: a missing compiler must fail before training."""
    fake = types.ModuleType("gsplat")

    def rasterization(**kw):
        raise RuntimeError("Error building extension 'gsplat_cuda': nvcc: not found")

    fake.rasterization = rasterization
    monkeypatch.setitem(sys.modules, "gsplat", fake)
    problem = fake_cuda_gsplat.gsplat_problem("cuda:0")
    assert "could not be built or loaded" in problem and "nvcc: not found" in problem
    with pytest.raises(InputError, match="nvcc: not found"):
        resolve_splat_placement("auto", "gsplat")
    assert resolve_splat_placement("auto", "auto") == (torch.device("cpu"), "cpu")  # auto goes on without it
    # the CLI stops with that one line before reading any data
    from see3d.cli import main

    assert main(["reconstruct", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"), "--backend", "gsplat"]) != 0
    assert not (tmp_path / "out").exists()


def test_gsplat_that_runs_is_chosen(fake_cuda_gsplat, monkeypatch):
    fake = types.ModuleType("gsplat")
    fake.rasterization = lambda **kw: (torch.zeros(1, kw["height"], kw["width"], 3), None, {})
    monkeypatch.setitem(sys.modules, "gsplat", fake)
    assert fake_cuda_gsplat.gsplat_problem("cuda:0") is None
    assert resolve_splat_placement("auto", "auto") == (torch.device("cuda", 0), "gsplat")


def test_cli_reports_a_device_this_machine_lacks(tmp_path, capsys):
    from see3d.cli import main

    rc = main(["reconstruct", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "cuda:9"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "cuda:9" in err and "Traceback" not in err
