"""The compiled E-step against independent references.

References: the conditional normal computed row by row from the covariance
(c = mu_m + S_mo inv(S_oo) (x_o - mu_o), C = S_mm - S_mo inv(S_oo) S_om,
Little & Rubin 2002, sec. 11.2) with ``numpy.linalg``, and the observed-data
log-likelihood from ``scipy.stats``.  The NumPy kernel is compared too, since
the fit falls back to it when the extension is not built.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from emimpute import _compiled
from emimpute._conditional import (
    conditional_moments,
    plan_chunks,
    precision_and_logdet,
)
from emimpute._normal_em import e_step, prepare_problem


def test_the_extension_is_built():
    assert _compiled.available(), (
        "emimpute._fast_estep was not compiled: install a C compiler and "
        "reinstall, or the fit runs on the (slower) NumPy kernel"
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
def test_rows_match_the_conditional_normal(n_threads, monkeypatch):
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


def test_e_step_log_likelihood_equals_the_observed_data_density(monkeypatch):
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
        assert results[kernel][2] == pytest.approx(reference, rel=1e-11)
    for a, b in zip(results["compiled"][:2], results["numpy"][:2], strict=True):
        assert_allclose(a, b, rtol=1e-10, atol=1e-10)


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
def test_columns_in_extreme_units(unit):
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
