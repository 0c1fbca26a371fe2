"""Shared fixtures."""

import pytest

import emimpute._batched_cholesky
import emimpute._compiled
import emimpute._conditional


@pytest.fixture(params=["compiled", "numpy"])
def kernel(request, monkeypatch):
    """Run a test through the compiled E-step and through the NumPy one (the
    fallback when the package was built without a C compiler)."""
    if request.param == "numpy":
        monkeypatch.setattr(emimpute._compiled, "complete_rows", None)
    return request.param


@pytest.fixture
def numpy_kernel(monkeypatch):
    """Use the NumPy E-step (for tests of its internal paths)."""
    monkeypatch.setattr(emimpute._compiled, "complete_rows", None)


@pytest.fixture(params=["vectorised", "lapack"])
def batch_path(request, monkeypatch):
    """Run a test through both ways of factorising the small K_mm blocks:
    the vectorised batch-last loops (used for large groups of rows) and
    NumPy's stacked LAPACK calls (used below ``SMALL_BATCH`` rows)."""
    threshold = 0 if request.param == "vectorised" else 10**9
    for module in (emimpute._batched_cholesky, emimpute._conditional):
        monkeypatch.setattr(module, "SMALL_BATCH", threshold)
    return request.param


@pytest.fixture(params=["per-row", "shared"])
def pattern_sharing(request, monkeypatch):
    """Run a test with K_mm factorised once per row, and once per distinct
    missingness pattern shared by the rows of a chunk."""
    ratio = 0.0 if request.param == "per-row" else 1.0
    monkeypatch.setattr(emimpute._conditional, "SHARED_PATTERN_RATIO", ratio)
    return request.param
