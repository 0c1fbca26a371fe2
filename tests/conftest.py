"""Shared fixtures, and the rule for how close two fitted estimates must be.

How tolerances are chosen
-------------------------
Two fits of the same model to the same data (different chunking, threads,
factorisation paths, compiled or NumPy kernel, another CPU's SIMD code or
BLAS) differ in the order of their floating-point sums, so their iterates
differ by rounding, and the stopping rule turns that into a difference of the
size of the tolerance, not of the rounding.  The fits stop at the first
iteration whose largest parameter change on the standardised scale (means
over column SDs, covariances over products of SDs; ``_relative_change`` in
``emimpute/models/_normal.py``) and relative change of the objective are both
below ``tol`` (``emimpute/engine/_driver.py``).  EM converges linearly, at the rate
r of the largest fraction of missing information (Dempster, Laird & Rubin
1977, sec. 3; Little & Rubin 2002, sec. 8.4.3), so from a last step of size
below ``tol`` the distance to the fixed point is below ``tol * r / (1 - r)``;
two fits each that close to it differ by less than ``2 tol / (1 - r)``.  The
fixed point itself is defined only to rounding, about ``cond * eps / (1 - r)``
on the standardised scale (``1e3 eps`` taken for cond: the tests' covariances
are well conditioned once standardised).  The objective converges at rate
r**2 (its gradient vanishes at the optimum), so two fits' log-likelihoods
differ, relative to their size, by less than ``2 tol / (1 - r**2)``.
:func:`fit_tolerance` and :func:`loglik_tolerance` write this once; r = 0.9
by default (90% missing information: a margin for every data set here).

Only exact algebraic identities on fixed inputs (a kernel against a closed
form evaluated at the same parameters, a permutation, a copy) keep
tolerances near machine precision; an estimate against an independent
reference (a direct maximisation, R, the truth of a simulation) uses that
reference's own accuracy.
"""

import os

import numpy as np
import pytest
from numpy.testing import assert_allclose

import emimpute.gaussian._batched_cholesky
import emimpute.gaussian._compiled
import emimpute.gaussian._conditional

#: Default rate of convergence assumed of a fit (largest fraction of missing
#: information); pass ``rate`` for data with more.
FIT_RATE = 0.9
#: Rounding of the fixed point on the standardised scale, in units of
#: ``1 / (1 - r)``: a condition number of 1e3 times the machine epsilon.
FIXED_POINT_ROUNDING = 1e3 * np.finfo(np.float64).eps


def _fit_tolerance(tol, scale=1.0, *, rate=FIT_RATE):
    """Absolute tolerance for two estimates from fits stopped at ``tol``.

    Parameters
    ----------
    tol : float
        The fits' stopping tolerance (the larger, if they differ).
    scale : float or ndarray, default=1.0
        The quantity's standardised scale: the column SDs for means, their
        outer product for covariances; 1 for quantities already standardised.
    rate : float, default=FIT_RATE
        The rate of convergence of the fits (fraction of missing information).

    Returns
    -------
    float or ndarray
        ``(2 tol + 1e3 eps) / (1 - rate) * scale``; see the module docstring.
    """
    return (2.0 * tol + FIXED_POINT_ROUNDING) / (1.0 - rate) * np.asarray(scale)


def _loglik_tolerance(tol, *, rate=FIT_RATE):
    """Relative tolerance for two fits' objectives (log-likelihoods) at ``tol``:
    ``(2 tol + 1e3 eps) / (1 - rate**2)``; see the module docstring."""
    return (2.0 * tol + FIXED_POINT_ROUNDING) / (1.0 - rate**2)


def _assert_same_fit(mean_a, cov_a, mean_b, cov_b, *, tol, scale, rate=FIT_RATE):
    """Assert two (mean, covariance) fits at ``tol`` agree, compared on the
    standardised scale (``scale`` the column SDs) where the rule is stated."""
    scale = np.asarray(scale, dtype=np.float64)
    atol = _fit_tolerance(tol, rate=rate)
    assert_allclose(np.asarray(mean_a) / scale, np.asarray(mean_b) / scale, 0, atol)
    outer = np.outer(scale, scale)
    assert_allclose(np.asarray(cov_a) / outer, np.asarray(cov_b) / outer, 0, atol)


@pytest.fixture
def fit_tolerance():
    """:func:`_fit_tolerance`: ``fit_tolerance(tol, scale=1.0, *, rate=0.9)``."""
    return _fit_tolerance


@pytest.fixture
def loglik_tolerance():
    """:func:`_loglik_tolerance`: ``loglik_tolerance(tol, *, rate=0.9)``."""
    return _loglik_tolerance


@pytest.fixture
def assert_same_fit():
    """:func:`_assert_same_fit`: ``assert_same_fit(mean_a, cov_a, mean_b,
    cov_b, *, tol, scale, rate=0.9)``."""
    return _assert_same_fit


# ---------------------------------------------------------------------------
# Kernel paths.  EMIMPUTE_KERNEL (read by emimpute.gaussian._compiled at import) picks
# the compiled copy ("generic", "avx2") or switches the extension off
# ("numpy"), so the whole suite can be run on each; see README, "Tests".


def compiled_switched_off():
    """True when EMIMPUTE_KERNEL=numpy asks for no compiled code."""
    value = os.environ.get(emimpute.gaussian._compiled.KERNEL_ENV, "")
    return value.strip().lower() == "numpy"


@pytest.fixture(params=["compiled", "numpy"])
def kernel(request, monkeypatch):
    """Run a test through the compiled E-step and through the NumPy one (the
    fallback when the package was built without a C compiler).  Under
    EMIMPUTE_KERNEL=numpy the compiled case is skipped."""
    if request.param == "numpy":
        monkeypatch.setattr(emimpute.gaussian._compiled, "complete_rows", None)
    elif compiled_switched_off():
        pytest.skip("EMIMPUTE_KERNEL=numpy: the compiled E-step is switched off")
    return request.param


_FAST_ESTEP = emimpute.gaussian._compiled._fast_estep
BUILT_PATHS = dict(_FAST_ESTEP.kernel_paths()) if _FAST_ESTEP else {}


@pytest.fixture(params=sorted(BUILT_PATHS) or ["none built"])
def compiled_path(request):
    """Run a test on each compiled copy of the kernel this CPU can run
    ("generic", "avx2"), and put back the one in use afterwards."""
    if not emimpute.gaussian._compiled.available():
        pytest.skip("the compiled E-step is switched off or absent")
    if not BUILT_PATHS[request.param]:
        pytest.skip(f"this CPU cannot run the {request.param!r} kernel")
    before = _FAST_ESTEP.get_kernel_path()
    _FAST_ESTEP.set_kernel_path(request.param)
    assert emimpute.gaussian._compiled.kernel_path() == request.param
    yield request.param
    _FAST_ESTEP.set_kernel_path(before)


@pytest.fixture
def numpy_kernel(monkeypatch):
    """Use the NumPy E-step (for tests of its internal paths)."""
    monkeypatch.setattr(emimpute.gaussian._compiled, "complete_rows", None)


@pytest.fixture(params=["vectorised", "lapack"])
def batch_path(request, monkeypatch):
    """Run a test through both ways of factorising the small K_mm blocks:
    the vectorised batch-last loops (used for large groups of rows) and
    NumPy's stacked LAPACK calls (used below ``SMALL_BATCH`` rows)."""
    threshold = 0 if request.param == "vectorised" else 10**9
    for module in (emimpute.gaussian._batched_cholesky, emimpute.gaussian._conditional):
        monkeypatch.setattr(module, "SMALL_BATCH", threshold)
    return request.param


@pytest.fixture(params=["per-row", "shared"])
def pattern_sharing(request, monkeypatch):
    """Run a test with K_mm factorised once per row, and once per distinct
    missingness pattern shared by the rows of a chunk."""
    ratio = 0.0 if request.param == "per-row" else 1.0
    monkeypatch.setattr(emimpute.gaussian._conditional, "SHARED_PATTERN_RATIO", ratio)
    return request.param


@pytest.fixture(scope="session")
def dask_cluster_client():
    """A LocalCluster of two worker processes, one thread each, shared by the
    Dask test modules: tasks really travel between processes (pickled
    functions, arrays, the models' parameters and exceptions)."""
    distributed = pytest.importorskip("distributed", reason="the dask extra")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit="2GiB",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client
