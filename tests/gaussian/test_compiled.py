"""The compiled E-step against independent references.

References: the conditional normal computed row by row from the covariance
(c = mu_m + S_mo inv(S_oo) (x_o - mu_o), C = S_mm - S_mo inv(S_oo) S_om,
Little & Rubin 2002, sec. 11.2) with ``numpy.linalg``, and the observed-data
log-likelihood from ``scipy.stats``.  The NumPy kernel is compared too, since
the fit falls back to it when the extension is not built.  Both compiled
copies of the kernel (generic, and AVX2/FMA where the CPU runs it) are tested,
and the EMIMPUTE_KERNEL switch that forces one of them or the NumPy kernel.

Tolerances: the kernel against the row-by-row reference at the same
parameters is an identity on fixed inputs, so near machine precision (relative
1e-9 allows for cond(S) ~ 1e2 and sums of ~1e3 rows); how the two compiled
copies may differ is derived in ``reordering_bound``.
"""

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from emimpute.gaussian import _compiled
from emimpute.gaussian._conditional import (
    conditional_moments,
    plan_chunks,
    precision_and_logdet,
)
from emimpute.models._normal import e_step, prepare_problem


def test_the_extension_is_built():
    assert _compiled._fast_estep is not None, (
        "emimpute.gaussian._fast_estep was not compiled: install a C compiler and "
        "reinstall, or the fit runs on the (slower) NumPy kernel"
    )


# Tests of the compiled code itself are skipped when EMIMPUTE_KERNEL=numpy
# switches it off (the rest of the suite then runs on the NumPy kernel).
requires_compiled = pytest.mark.skipif(
    not _compiled.available(), reason="the compiled E-step is switched off or absent"
)
BUILT_PATHS = (
    dict(_compiled._fast_estep.kernel_paths()) if _compiled._fast_estep else {}
)


def correlated(n, p, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p, p))
    cov = A @ A.T + 0.5 * np.eye(p)
    mean = rng.normal(size=p)
    return rng.multivariate_normal(mean, cov, size=n), mean, cov, rng


def reference_rows(X, mean, cov):
    """Conditional means, conditional covariances and log det K_mm, row by row."""
    completed = X.copy()
    cov_sum = np.zeros_like(cov)
    logdet_sum = 0.0
    precision = np.linalg.inv(cov)
    for row in completed:
        m = np.isnan(row)
        o = ~m
        S_mo_inv = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)]).T
        row[m] = mean[m] + S_mo_inv @ (row[o] - mean[o])
        cov_sum[np.ix_(m, m)] += cov[np.ix_(m, m)] - S_mo_inv @ cov[np.ix_(o, m)]
        logdet_sum += np.linalg.slogdet(precision[np.ix_(m, m)])[1]
    return completed, cov_sum, logdet_sum


def blocks_of(X):
    """Chunks of rows by k, as the fit lays them out."""
    mask = np.isnan(X)
    rows = np.flatnonzero(mask.any(axis=1) & ~mask.all(axis=1))
    chunks = plan_chunks(mask, rows, chunk_size=37)
    return chunks, [(X[chunk.rows].copy(), chunk.missing) for chunk in chunks]


@pytest.mark.parametrize("n_threads", [1, 3])
def test_rows_match_the_conditional_normal(n_threads, monkeypatch, compiled_path):
    """Every k from 1 to p - 1 (k <= 12 specialised, k > 12 generic), short
    last groups of rows, several threads over the same blocks."""
    monkeypatch.setattr(_compiled, "MIN_ROWS_PER_THREAD", 1)
    p = 16
    X, mean, cov, rng = correlated(700, p, seed=0)
    rates = rng.uniform(0.02, 0.95, size=(len(X), 1))
    X[rng.random(X.shape) < rates] = np.nan
    X = X[~np.isnan(X).all(axis=1) & np.isnan(X).any(axis=1)]
    chunks, blocks = blocks_of(X)
    assert {chunk.missing.shape[0] for chunk in chunks} == set(range(1, p))
    precision, _ = precision_and_logdet(cov)
    row_sum, cov_sum, logdet, cross = _compiled.complete_blocks(
        blocks, mean, precision, want_cross=True, n_threads=n_threads
    )
    completed, ref_cov_sum, ref_logdet = reference_rows(X, mean, cov)
    for chunk, (rows, _) in zip(chunks, blocks, strict=True):
        assert_allclose(rows, completed[chunk.rows], rtol=1e-9, atol=1e-9)
    assert_allclose(row_sum, completed.sum(axis=0), rtol=1e-9)
    assert_allclose(cross, completed.T @ completed, rtol=1e-9)
    assert_allclose(cov_sum, ref_cov_sum, rtol=1e-9, atol=1e-9)
    assert logdet == pytest.approx(ref_logdet, rel=1e-10)


@requires_compiled
def test_observed_cells_are_left_alone():
    X, mean, cov, rng = correlated(50, 5, seed=1)
    X[rng.random(X.shape) < 0.3] = np.nan
    X = X[np.isnan(X).any(axis=1) & ~np.isnan(X).all(axis=1)]
    chunks, blocks = blocks_of(X)
    _compiled.complete_blocks(blocks, mean, np.linalg.inv(cov), want_cov_sum=False)
    for chunk, (rows, _) in zip(chunks, blocks, strict=True):
        observed = ~np.isnan(X[chunk.rows])
        assert_allclose(rows[observed], X[chunk.rows][observed], rtol=0, atol=0)
        assert np.isfinite(rows).all()


def test_e_step_log_likelihood_equals_the_observed_data_density(
    monkeypatch, compiled_path
):
    """The compiled E-step gets the log-likelihood from the statistics (an
    identity), the NumPy one row by row: both equal scipy's density."""
    X, mean, cov, rng = correlated(300, 6, seed=2)
    X[rng.random(X.shape) < 0.35] = np.nan
    X[0] = np.nan  # an all-missing row counts for nothing
    mask = np.isnan(X)
    reference = sum(
        stats.multivariate_normal.logpdf(row[~m], mean[~m], cov[np.ix_(~m, ~m)])
        for row, m in zip(X, mask, strict=True)
        if not m.all()
    )
    results = {}
    for kernel in ("compiled", "numpy"):
        if kernel == "numpy":
            monkeypatch.setattr(_compiled, "complete_rows", None)
        results[kernel] = e_step(prepare_problem(X), mean, cov)
        assert results[kernel].loglik == pytest.approx(reference, rel=1e-11)
    for field in ("row_sum", "cross"):
        compiled, numpy_ = (getattr(results[k], field) for k in ("compiled", "numpy"))
        assert_allclose(compiled, numpy_, rtol=1e-10, atol=1e-10)


@requires_compiled
def test_a_singular_block_is_reported():
    """K_mm of a non-positive-definite 'precision' fails the Cholesky."""
    X = np.array([[np.nan, np.nan, 1.0]] * 3)
    chunks, blocks = blocks_of(X)
    bad = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(np.linalg.LinAlgError):
        _compiled.complete_blocks(blocks, np.zeros(3), bad)


@pytest.mark.parametrize(
    "change",
    [
        {"data": lambda a: a.astype(np.float32)},
        {"data": lambda a: np.asfortranarray(np.tile(a, (1, 1)))[:, ::-1]},
        {"missing": lambda a: a.astype(np.int32)},
        {"missing": lambda a: a.ravel()},
        {"precision": lambda a: a[:2, :2].copy()},
        {"first_row": lambda a: 5},
        {"missing": lambda a: a + 3},
    ],
    ids=[
        "float32 data",
        "strided data",
        "int32 missing",
        "1-d missing",
        "small precision",
        "rows beyond missing",
        "column out of range",
    ],
)
@requires_compiled
def test_bad_buffers_raise_instead_of_crashing(change):
    args = {
        "data": np.ones((4, 3)),
        "missing": np.zeros((1, 4), dtype=np.int64),
        "first_row": 0,
        "mean": np.zeros(3),
        "precision": np.eye(3),
    }
    ((name, modify),) = change.items()
    args[name] = modify(args[name])
    with pytest.raises(ValueError):
        _compiled.complete_rows(
            args["data"],
            args["missing"],
            args["first_row"],
            args["mean"],
            args["precision"],
            None,
            None,
        )


def test_conditional_means_for_transform_match_the_reference():
    """``conditional_moments`` without variances, log-likelihoods or draws
    (what ``transform`` asks for) runs on the compiled kernel; complete and
    all-missing rows included."""
    X, mean, cov, rng = correlated(400, 7, seed=3)
    X[rng.random(X.shape) < 0.3] = np.nan
    X[:3] = np.nan
    result = conditional_moments(X, mean, cov)
    partial = np.isnan(X).any(axis=1) & ~np.isnan(X).all(axis=1)
    completed, _, _ = reference_rows(X[partial], mean, cov)
    assert_allclose(result.completed[partial], completed, rtol=1e-9, atol=1e-9)
    assert_allclose(result.completed[:3], np.tile(mean, (3, 1)))
    complete = ~np.isnan(X).any(axis=1)
    assert_allclose(result.completed[complete], X[complete], rtol=0, atol=0)


def test_omp_num_threads_caps_the_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _compiled.default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert _compiled.default_threads() >= 1


@pytest.mark.parametrize("unit", [1e-100, 1e100])
def test_columns_in_extreme_units(unit, compiled_path):
    """log det K_mm of a row with many missing cells leaves the range of a
    double as a product of its Cholesky diagonal (here about 1e+-1000)."""
    X, mean, cov, rng = correlated(60, 12, seed=4)
    X[:, :11][rng.random((60, 11)) < 0.9] = np.nan
    X = X[np.isnan(X).any(axis=1)]
    X, mean, cov = X * unit, mean * unit, cov * unit**2
    chunks, blocks = blocks_of(X)
    _, _, logdet, _ = _compiled.complete_blocks(blocks, mean, np.linalg.inv(cov))
    completed, _, ref_logdet = reference_rows(X, mean, cov)
    assert logdet == pytest.approx(ref_logdet, rel=1e-10)
    for chunk, (rows, _) in zip(chunks, blocks, strict=True):
        assert_allclose(rows / unit, completed[chunk.rows] / unit, rtol=1e-8)


# ---------------------------------------------------------------------------
# The kernel paths: the EMIMPUTE_KERNEL switch, and agreement of the copies


def kernel_paths_in_new_processes(values):
    """For each value, import emimpute.gaussian._compiled with EMIMPUTE_KERNEL=value
    (None: unset) in a new interpreter, since the variable is read at import;
    the interpreters run at once.  Returns their (returncode, stdout, stderr).
    The package's ``__init__`` (scikit-learn, pandas: seconds) is skipped by
    an empty package object on the same folder."""
    code = (
        "import sys, types\n"
        "package = types.ModuleType('emimpute')\n"
        f"package.__path__ = [{str(Path(_compiled.__file__).parents[1])!r}]\n"
        "sys.modules['emimpute'] = package\n"
        "from emimpute.gaussian import _compiled\n"
        "print(_compiled.kernel_path())\n"
    )
    processes = []
    for value in values:
        env = dict(os.environ)
        env.pop(_compiled.KERNEL_ENV, None)
        if value is not None:
            env[_compiled.KERNEL_ENV] = value
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", code],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        results.append((process.returncode, stdout.strip(), stderr))
    return results


@requires_compiled
def test_the_switch_selects_the_kernel():
    """Unset: the preferred copy the CPU runs (AVX2 when it has it, which is
    what keeps the default fast); otherwise the one named, or an error."""
    preferred = next(name for name, runnable in BUILT_PATHS.items() if runnable)
    if "avx2" in BUILT_PATHS:
        assert preferred == ("avx2" if BUILT_PATHS["avx2"] else "generic")
    expected = {None: preferred, "generic": "generic", "numpy": "numpy"}
    if BUILT_PATHS.get("avx2"):
        expected["avx2"] = "avx2"
    values = [*expected, "sse9"]
    results = dict(zip(values, kernel_paths_in_new_processes(values), strict=True))
    for value, path in expected.items():
        returncode, stdout, stderr = results[value]
        assert returncode == 0, stderr
        assert stdout == path, value
    returncode, _, stderr = results["sse9"]
    assert returncode != 0
    assert "EMIMPUTE_KERNEL='sse9': expected one of" in stderr


@requires_compiled
def test_the_switch_reads_the_variable_loosely(monkeypatch):
    """Empty or "auto" keep the default; case and spaces do not matter."""
    monkeypatch.setattr(_compiled._fast_estep, "set_kernel_path", lambda name: None)
    for value in ("", " auto", "AVX2", " Generic\n"):
        assert _compiled._choose_kernel(value) is _compiled._fast_estep.complete_rows
    assert _compiled._choose_kernel("NumPy") is None
    with pytest.raises(ValueError, match="expected one of auto, generic, avx2"):
        _compiled._choose_kernel("fast")


def test_a_kernel_the_cpu_cannot_run_is_an_error(monkeypatch):
    """The check behind the error at import, on a stand-in for the extension
    as it reports itself on a CPU without AVX2 (this one may have it)."""
    stand_in = types.SimpleNamespace(
        kernel_paths=lambda: (("avx2", False), ("generic", True)),
        set_kernel_path=lambda name: None,
        complete_rows=object(),
    )
    monkeypatch.setattr(_compiled, "_fast_estep", stand_in)
    with pytest.raises(RuntimeError, match="cannot run the 'avx2' kernel"):
        _compiled._choose_kernel("avx2")
    assert _compiled._choose_kernel("generic") is stand_in.complete_rows
    assert _compiled._choose_kernel("numpy") is None
    monkeypatch.setattr(_compiled, "_fast_estep", None)  # built without C
    with pytest.raises(RuntimeError, match="was not built"):
        _compiled._choose_kernel("generic")
    assert _compiled._choose_kernel("auto") is None


@requires_compiled
def test_the_extension_refuses_a_path_it_does_not_have():
    with pytest.raises(ValueError, match="no compiled kernel path 'avx512'"):
        _compiled._fast_estep.set_kernel_path("avx512")
    assert _compiled._fast_estep.get_kernel_path() in BUILT_PATHS


def reordering_bound(p, k, cov):
    """How far two correct evaluations of the E-step may be apart, relative
    to the size of the quantities, when they only round differently.

    The AVX2 copy contracts a * b + c into one FMA (one rounding where the
    generic copy has two) and vectorises sums in another order.  Each output
    comes from a dot product of length <= p (g = K_m. d) and a Cholesky
    factorisation, inversion and products of order k; by the standard error
    bounds (Higham 2002, eq. 3.5 for dot products, thm. 10.3 and sec. 8.2
    for the Cholesky factor and triangular inverse) each copy's relative
    error is below a small multiple of (p + k**2) * u * cond(K_mm), u the unit
    roundoff, and cond(K_mm) <= cond(S).  Two copies: twice that.
    """
    u = np.finfo(np.float64).eps / 2
    return 2 * (p + k**2) * u * np.linalg.cond(cov)


@pytest.mark.skipif(
    not all(BUILT_PATHS.get(name) for name in ("avx2", "generic")),
    reason="needs both compiled copies and a CPU with AVX2",
)
@requires_compiled
def test_the_generic_and_avx2_kernels_agree_to_rounding():
    """One E-step (conditional means, sums, cross-products, log det K_mm) on
    rows with every k from 1 to p - 1, on each copy; differences bounded by
    ``reordering_bound`` times the size of what is summed (the absolute
    values, so that cancellation in a sum does not make the bound small)."""
    p = 16
    X, mean, cov, rng = correlated(2000, p, seed=5)
    X[rng.random(X.shape) < rng.uniform(0.02, 0.95, size=(len(X), 1))] = np.nan
    X = X[~np.isnan(X).all(axis=1) & np.isnan(X).any(axis=1)]
    precision, _ = precision_and_logdet(cov)
    before = _compiled._fast_estep.get_kernel_path()
    results = {}
    try:
        for path in ("generic", "avx2"):
            _compiled._fast_estep.set_kernel_path(path)
            _, blocks = blocks_of(X)
            sums = _compiled.complete_blocks(
                blocks, mean, precision, want_cross=True, n_threads=1
            )
            results[path] = (np.concatenate([rows for rows, _ in blocks]), *sums)
    finally:
        _compiled._fast_estep.set_kernel_path(before)
    (rows_g, sum_g, cov_g, logdet_g, cross_g) = results["generic"]
    (rows_a, sum_a, cov_a, logdet_a, cross_a) = results["avx2"]
    bound = reordering_bound(p, p - 1, cov)
    # The copies do differ (FMA): a test that cannot tell them apart would
    # not show that both were run.
    assert not np.array_equal(rows_g, rows_a)

    def assert_within(a, b, size):
        """|a - b| <= bound * size, elementwise."""
        assert_allclose(a / size, b / size, rtol=0, atol=bound)

    assert_within(rows_a, rows_g, np.abs(rows_g).max(axis=1, keepdims=True))
    n = len(rows_g)
    assert_within(sum_a, sum_g, n * np.abs(rows_g).max(axis=0))
    assert_within(cross_a, cross_g, 2 * np.abs(rows_g).T @ np.abs(rows_g))
    # sum over rows |C_ab| <= sqrt(sum C_aa sum C_bb) (Cauchy-Schwarz).
    diag = np.diag(cov_g)
    assert_within(cov_a, cov_g, np.sqrt(np.outer(diag, diag)))
    # log det K_mm = 2 sum log L_aa: absolute error ~ the relative one of L_aa.
    assert abs(logdet_a - logdet_g) <= bound * n
