"""Conditional normal moments against a textbook per-row reference.

The reference works on the covariance (Little & Rubin 2002, sec. 11.2):
c = mu_m + S_mo S_oo^-1 (x_o - mu_o), C = S_mm - S_mo S_oo^-1 S_om, and the
row's log-likelihood is scipy's log N(x_o; mu_o, S_oo); the code under test
works on the precision matrix instead.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

import emimpute.gaussian._conditional as conditional
from emimpute.gaussian._conditional import conditional_moments, plan_chunks

# ---------------------------------------------------------------------------
# Reference and data


def reference_row(x, mean, cov):
    """Completed row, conditional covariance of the missing cells, loglik."""
    m = np.isnan(x)
    o = ~m
    filled = x.copy()
    if not o.any():
        return mean.copy(), cov.copy(), 0.0
    S_oo = cov[np.ix_(o, o)]
    S_mo = cov[np.ix_(m, o)]
    filled[m] = mean[m] + S_mo @ np.linalg.solve(S_oo, x[o] - mean[o])
    C = cov[np.ix_(m, m)] - S_mo @ np.linalg.solve(S_oo, S_mo.T)
    loglik = stats.multivariate_normal.logpdf(x[o], mean[o], S_oo)
    return filled, C, float(loglik)


def reference(X, mean, cov):
    completed = X.copy()
    variance = np.zeros_like(X)
    loglik = np.zeros(len(X))
    for i, x in enumerate(X):
        filled, C, ll = reference_row(x, mean, cov)
        completed[i] = filled
        variance[i, np.isnan(x)] = np.diag(C)
        loglik[i] = ll
    return completed, variance, loglik


def random_cov(p, rng):
    A = rng.standard_normal((p, p))
    scales = np.exp(rng.uniform(-1.5, 1.5, size=p))
    cov = A @ A.T + 0.2 * np.eye(p)
    return cov * np.outer(scales, scales)


def random_problem(n, p, seed):
    """Data with rows missing 0, 1, ..., p cells in arbitrary columns."""
    rng = np.random.default_rng(seed)
    cov = random_cov(p, rng)
    mean = rng.normal(scale=5.0, size=p)
    X = rng.multivariate_normal(mean, cov, size=n)
    # Parameters deliberately off the data's own (as during EM iterations).
    mean = mean + rng.normal(size=p)
    n_missing = rng.integers(0, p + 1, size=n)
    n_missing[:2] = [0, p]  # at least one complete and one empty row
    for i, k in enumerate(n_missing):
        X[i, rng.choice(p, size=k, replace=False)] = np.nan
    return X, mean, cov


def assert_matches_reference(X, mean, cov, result, rtol=1e-9):
    """The kernel against the row-by-row reference at the same parameters: an
    identity on fixed inputs, so near machine precision (``rtol`` allows for
    the conditioning of the covariances), on the standardised scale."""
    completed, variance, loglik = reference(X, mean, cov)
    scale = np.sqrt(np.diag(cov))
    assert_allclose(result.completed / scale, completed / scale, rtol=rtol, atol=rtol)
    assert_allclose(result.variance / scale**2, variance / scale**2, atol=rtol)
    assert_allclose(result.loglik, loglik, rtol=rtol, atol=rtol)


# ---------------------------------------------------------------------------
# Conditional means, variances and log-likelihoods


@pytest.mark.parametrize("p", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("seed", [0, 1])
def test_conditional_moments_match_reference(p, seed, batch_path, pattern_sharing):
    X, mean, cov = random_problem(60, p, seed)
    result = conditional_moments(X, mean, cov, want_variance=True, want_loglik=True)
    assert_matches_reference(X, mean, cov, result)
    observed = ~np.isnan(X)
    assert_array_equal(result.completed[observed], X[observed])
    assert not np.isnan(result.completed).any()


def test_all_missing_and_complete_rows():
    rng = np.random.default_rng(3)
    cov = random_cov(4, rng)
    mean = rng.normal(size=4)
    X = np.full((3, 4), np.nan)
    X[1] = rng.normal(size=4)
    result = conditional_moments(X, mean, cov, want_variance=True, want_loglik=True)
    # Nothing observed: the marginal moments, and log-likelihood 0.
    assert_allclose(result.completed[[0, 2]], np.vstack([mean, mean]))
    assert_allclose(result.variance[[0, 2]], np.vstack([np.diag(cov)] * 2))
    assert_allclose(result.loglik[[0, 2]], 0.0, atol=1e-10)
    # Everything observed: unchanged, variance 0, the full density.
    assert_array_equal(result.completed[1], X[1])
    assert_array_equal(result.variance[1], 0.0)
    expected = stats.multivariate_normal.logpdf(X[1], mean, cov)
    assert result.loglik[1] == pytest.approx(expected, rel=1e-10)


def test_optional_outputs_are_none_unless_asked():
    X, mean, cov = random_problem(10, 3, seed=4)
    result = conditional_moments(X, mean, cov)
    assert result.variance is None
    assert result.loglik is None
    completed, _, _ = reference(X, mean, cov)
    scale = np.sqrt(np.diag(cov))
    assert_allclose(result.completed / scale, completed / scale, rtol=0, atol=1e-9)


def test_input_is_not_modified_by_default():
    X, mean, cov = random_problem(20, 3, seed=5)
    before = X.copy()
    result = conditional_moments(X, mean, cov)
    assert_array_equal(X, before)
    assert result.completed is not X


def test_many_small_chunks(monkeypatch):
    # The default chunks hold thousands of rows; force chunks of 3 rows so
    # that the chunk loop (incomplete and complete rows) is exercised.
    monkeypatch.setattr(conditional, "chunk_rows_for", lambda *args: 3)
    X, mean, cov = random_problem(50, 4, seed=6)
    result = conditional_moments(X, mean, cov, want_variance=True, want_loglik=True)
    assert_matches_reference(X, mean, cov, result)


def test_not_positive_definite_covariance_raises():
    X, mean, _ = random_problem(10, 3, seed=7)
    cov = np.diag([1.0, -1.0, 1.0])
    with pytest.raises(np.linalg.LinAlgError):
        conditional_moments(X, mean, cov)


@st.composite
def small_problems(draw):
    p = draw(st.integers(1, 5))
    n = draw(st.integers(1, 8))
    finite = {"allow_nan": False, "allow_infinity": False}
    A = draw(hnp.arrays(np.float64, (p, p), elements=st.floats(-3, 3, **finite)))
    cov = A @ A.T + 0.5 * np.eye(p)
    mean = draw(hnp.arrays(np.float64, p, elements=st.floats(-10, 10, **finite)))
    X = draw(hnp.arrays(np.float64, (n, p), elements=st.floats(-10, 10, **finite)))
    mask = draw(hnp.arrays(np.bool_, (n, p)))
    X[mask] = np.nan
    return X, mean, cov


@settings(max_examples=50, deadline=None)
@given(small_problems())
def test_conditional_moments_property(problem):
    X, mean, cov = problem
    result = conditional_moments(X, mean, cov, want_variance=True, want_loglik=True)
    assert_matches_reference(X, mean, cov, result, rtol=1e-7)


# ---------------------------------------------------------------------------
# Random draws


@pytest.mark.parametrize("pattern", [[1, 3], [0, 1, 2, 3]])
def test_draws_follow_conditional_distribution(pattern):
    rng = np.random.default_rng(8)
    p = 4
    cov = random_cov(p, rng)
    mean = rng.normal(size=p)
    x = rng.multivariate_normal(mean, cov)
    x[pattern] = np.nan
    n_draws = 20_000
    X = np.tile(x, (n_draws, 1))
    result = conditional_moments(X, mean, cov, rng=np.random.RandomState(0))
    filled, C, _ = reference_row(x, mean, cov)
    m = np.isnan(x)
    observed = result.completed[:, ~m]
    assert_array_equal(observed, X[:, ~m])
    draws = result.completed[:, m]
    # Sample mean: standard error sqrt(C_jj / N); allow 5 of them.
    se_mean = np.sqrt(np.diag(C) / n_draws)
    assert np.all(np.abs(draws.mean(axis=0) - filled[m]) < 5 * se_mean)
    # Sample covariance of normal draws: Var(s_ij) = (C_ii C_jj + C_ij^2) / N.
    se_cov = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / n_draws)
    sample_cov = np.cov(draws.T, bias=True).reshape(C.shape)
    assert np.all(np.abs(sample_cov - C) < 5 * se_cov)


def test_draws_are_reproducible_and_differ_between_rows():
    X, mean, cov = random_problem(30, 3, seed=9)
    a = conditional_moments(X, mean, cov, rng=np.random.RandomState(1)).completed
    b = conditional_moments(X, mean, cov, rng=np.random.RandomState(1)).completed
    assert_array_equal(a, b)
    expected, _, _ = reference(X, mean, cov)
    missing = np.isnan(X)
    assert np.all(a[missing] != expected[missing])
    assert_array_equal(a[~missing], X[~missing])


# ---------------------------------------------------------------------------
# out=


def test_out_is_written_in_place_of_a_new_array():
    X, mean, cov = random_problem(40, 4, seed=10)
    expected, _, _ = reference(X, mean, cov)
    out = np.zeros_like(X)
    result = conditional_moments(X, mean, cov, out=out)
    assert result.completed is out
    # Every row, complete rows included, holds the completed data.
    scale = np.sqrt(np.diag(cov))
    assert_allclose(out / scale, expected / scale, rtol=0, atol=1e-9)


def test_out_may_be_the_input():
    X, mean, cov = random_problem(40, 4, seed=11)
    expected, _, _ = reference(X, mean, cov)
    result = conditional_moments(X, mean, cov, out=X)
    assert result.completed is X
    scale = np.sqrt(np.diag(cov))
    assert_allclose(X / scale, expected / scale, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------
# plan_chunks


@pytest.mark.parametrize("chunk_size", [None, 1, 2, 3, 7])
@pytest.mark.parametrize("subset", [False, True])
def test_plan_chunks_covers_incomplete_rows_once(chunk_size, subset):
    rng = np.random.default_rng(12)
    n, p = 60, 5
    mask = rng.random((n, p)) < rng.uniform(0, 1, size=(n, 1))
    mask[:3] = False
    mask[3] = True
    rows = np.arange(n)
    if subset:
        rows = np.sort(rng.choice(n, size=35, replace=False))
    chunks = plan_chunks(mask, rows, chunk_size)
    planned = np.concatenate([chunk.rows for chunk in chunks])
    expected = rows[mask[rows].any(axis=1)]
    assert len(planned) == len(expected)
    assert_array_equal(np.sort(planned), expected)
    for chunk in chunks:
        k = chunk.missing.shape[0]
        assert k > 0
        assert chunk.missing.shape == (k, len(chunk.rows))
        if chunk_size is not None:
            assert 1 <= len(chunk.rows) <= chunk_size
        for j, row in enumerate(chunk.rows):
            assert_array_equal(chunk.missing[:, j], np.flatnonzero(mask[row]))


def test_plan_chunks_without_incomplete_rows():
    mask = np.zeros((5, 3), dtype=bool)
    assert plan_chunks(mask, np.arange(5)) == []
    assert plan_chunks(mask, np.arange(0)) == []


@pytest.mark.parametrize("p", [5, 64, 70])
def test_plan_chunks_finds_shared_patterns_exactly(p):
    """Rows drawn from a few patterns share them; each row's pattern is its own."""
    rng = np.random.default_rng(13)
    distinct = rng.random((6, p)) < 0.3
    distinct[:, 0] = True  # same k is not needed, but at least one missing cell
    mask = distinct[rng.integers(0, 6, size=400)]
    chunks = plan_chunks(mask, np.arange(400))
    for chunk in chunks:
        assert chunk.patterns is not None
        assert chunk.patterns.shape[1] <= 6
        assert_array_equal(chunk.patterns[:, chunk.pattern_index], chunk.missing)
        unique = {tuple(column) for column in chunk.patterns.T}
        assert len(unique) == chunk.patterns.shape[1]


def test_plan_chunks_does_not_share_distinct_patterns():
    rng = np.random.default_rng(14)
    mask = rng.random((400, 30)) < 0.2
    assert all(chunk.patterns is None for chunk in plan_chunks(mask, np.arange(400)))
