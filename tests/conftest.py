"""Shared test fixtures. Tests that read ``../shared/`` skip with a reason when it is absent; the parity
fixtures ship in ``tests/data/parity`` (see its README) and are never skipped for want of data.

In CI (``CI=true``) a test marked ``parity`` that is skipped counts as a failure: the proof of compatibility
with the official code must run, not quietly disappear."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEE3D_SHARED", ROOT.parent / "shared"))
PARITY = ROOT / "tests" / "data" / "parity"


def parity_path(*parts: str) -> Path:
    """Path inside the repository's parity fixtures (``tests/data/parity``); they ship with the code, so a
    missing file is an error, not a skip."""
    p = PARITY.joinpath(*parts)
    if not p.exists():
        raise FileNotFoundError(f"{p}: parity fixture missing from the checkout (tests/data/parity is part of the repository)")
    return p


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped ``parity`` test fails in CI (see the module docstring)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.get_closest_marker("parity") is not None and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"parity test skipped in CI, which counts as a failure: {reason}"


def shared_path(*parts: str) -> Path:
    """Path inside ../shared/, or skip the test when it is not there."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs {p} (the ../shared/ reference folder beside the checkout); not present here")
    return p


@pytest.fixture
def shared():
    """Callable fixture: ``shared("reference", "parity")`` -> Path, skipping when absent."""
    return shared_path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module of tiny-model tests: on a 2-core machine two contending
    threads only slow them down. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


pytest_plugins = ["pytester"]  # tests/test_parity_ci.py runs the CI rule above on a throwaway test file
