"""One policy for torch devices, dtypes and random draws, used by every verb and API of the package.

- :func:`resolve_device`: ``"auto"`` -> the first CUDA device when one is present, else CPU; an explicit
  device that this machine does not have is an :class:`~see3d.errors.InputError` (never a silent switch).
- :func:`resolve_dtype`: ``"auto"`` -> float16 on CUDA (the official setting), bfloat16 on a CPU with native
  bf16 matrix units (AVX512-BF16 / AMX; measured ~4x faster than fp32 there, see ``benchmarks/mvd_speed.py``),
  float32 on other CPUs (where bf16 and fp16 are emulated and slower than fp32).
- :func:`randn`: normal noise drawn on the generator's own device, then moved: a CPU generator stays valid
  for CUDA tensors (PyTorch rejects ``torch.randn(..., generator=<cpu>, device="cuda")``).

Which splat rasterizer fits a device is decided in :func:`see3d.splat.rasterize.resolve_splat_placement`,
on top of :func:`resolve_device`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import torch

from see3d.errors import InputError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DTYPE_CHOICES = ("auto", *DTYPES)
DEVICE_HELP = "torch device: auto (CUDA when available, else CPU), cpu, cuda, cuda:1, ..."
DTYPE_HELP = "model dtype: auto = float16 on CUDA, bfloat16 on CPUs with native bf16 (AVX512-BF16/AMX), else float32"

_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_device(device: str | torch.device = "auto", cuda_count: int | None = None) -> torch.device:
    """The torch device ``device`` names on this machine.

    Args:
        device: "auto", "cpu", "cuda", "cuda:N", "mps", ... or a ``torch.device``.
        cuda_count: number of CUDA devices (default: ``torch.cuda.device_count()``; tests pass their own).
    Raises:
        InputError: an unknown device string, or a CUDA device this machine does not have.
    """
    n = torch.cuda.device_count() if cuda_count is None else cuda_count
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda", 0) if n > 0 else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InputError(None, f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from e
    if dev.type == "cuda":
        if n == 0:
            raise InputError(None, f"device {device} requested but this machine has no CUDA device (use --device cpu or auto)")
        if (dev.index or 0) >= n:
            raise InputError(None, f"device {device} requested but this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
        if dev.index is None:
            dev = torch.device("cuda", 0)
    return dev


@functools.cache
def cpu_has_fast_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU computes bf16 matrix products natively (AVX512-BF16 or AMX-BF16 flags).

    Reads ``/proc/cpuinfo`` (Linux); elsewhere False, so the CPU default stays float32.
    """
    try:
        flags = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in flags.splitlines():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return any(f in have for f in _BF16_CPU_FLAGS)
    return False


def resolve_dtype(dtype: str | torch.dtype, device: torch.device, fast_bf16: bool | None = None) -> torch.dtype:
    """The model dtype for ``dtype`` ("auto", "float32", "float16", "bfloat16" or a torch dtype) on ``device``.

    ``fast_bf16``: whether this CPU has native bf16 (default: :func:`cpu_has_fast_bf16`; tests pass their own).
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype != "auto":
        if dtype not in DTYPES:
            raise InputError(None, f"unknown dtype {dtype!r} (use one of {', '.join(DTYPE_CHOICES)})")
        return DTYPES[dtype]
    if device.type in ("cuda", "mps"):
        return torch.float16
    fast = cpu_has_fast_bf16() if fast_bf16 is None else fast_bf16
    return torch.bfloat16 if fast else torch.float32


def resolve_device_dtype(device: str | torch.device = "auto", dtype: str | torch.dtype = "auto") -> tuple[torch.device, torch.dtype]:
    """:func:`resolve_device` and :func:`resolve_dtype` together (what a verb with --device/--dtype needs)."""
    dev = resolve_device(device)
    return dev, resolve_dtype(dtype, dev)


def randn(
    shape: Sequence[int], generator: torch.Generator | None, device: torch.device | str, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Standard normal noise of ``shape`` on ``device``, drawn from ``generator`` on the generator's own device.

    The same generator state gives the same values whatever ``device`` is (CPU generator -> CUDA tensors).
    """
    if generator is None:
        return torch.randn(tuple(shape), device=device, dtype=dtype)
    return torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=dtype).to(device)
