"""The CI rule of tests/conftest.py: a skipped ``parity`` test fails when CI=true, and only then."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")


@pytest.fixture
def suite(pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    parity: compares with the official code\n")
    pytester.makepyfile(
        test_x="""
import pytest

@pytest.mark.parity
def test_parity_skipped():
    pytest.skip("fixture missing")

def test_other_skipped():
    pytest.skip("optional")

@pytest.mark.parity
def test_parity_runs():
    assert True
"""
    )
    return pytester


def test_a_skipped_parity_test_fails_in_ci(suite, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1, failed=1)
    result.stdout.fnmatch_lines(["*parity test skipped in CI*fixture missing*"])


def test_outside_ci_it_is_a_plain_skip(suite, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    suite.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, skipped=2)
