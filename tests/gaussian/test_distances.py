"""Per-row observed-part Mahalanobis distances and weighted sums (the kernel
pieces of the multivariate t E-step) against independent references.

Reference: d_o' inv(S_oo) d_o computed row by row with ``numpy.linalg.solve``
on the observed block of the covariance, and sum w x x' with NumPy.  These
are identities on fixed inputs, so the tolerances are near machine precision
(relative 1e-9 allows for cond(S) ~ 1e2 and sums of ~1e3 rows).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from emimpute.gaussian import _compiled
from emimpute.gaussian._conditional import (
    chunk_moments,
    plan_chunks,
    precision_and_logdet,
)


def incomplete_rows(n, p, seed):
    """Correlated rows with every number of missing cells from 1 to p - 1."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p, p))
    cov = A @ A.T + 0.5 * np.eye(p)
    mean = rng.normal(size=p)
    X = rng.multivariate_normal(mean, cov, size=n)
    rates = rng.uniform(0.02, 0.95, size=(n, 1))
    X[rng.random(X.shape) < rates] = np.nan
    mask = np.isnan(X)
    X = X[mask.any(axis=1) & ~mask.all(axis=1)]
    return X, mean, cov


def reference_distances(X, mean, cov):
    """d_o' inv(S_oo) d_o and log det K_mm, row by row."""
    precision = np.linalg.inv(cov)
    d2, logdet_mm = [], []
    for row in X:
        o = ~np.isnan(row)
        d = row[o] - mean[o]
        d2.append(d @ np.linalg.solve(cov[np.ix_(o, o)], d))
        logdet_mm.append(np.linalg.slogdet(precision[np.ix_(~o, ~o)])[1])
    return np.array(d2), np.array(logdet_mm)


@pytest.mark.parametrize("p", [15, 16])  # odd p: the remainder row of K
@pytest.mark.parametrize("n_threads", [1, 3])
def test_compiled_distances_match_the_reference(
    p, n_threads, monkeypatch, compiled_path
):
    monkeypatch.setattr(_compiled, "MIN_ROWS_PER_THREAD", 1)
    X, mean, cov = incomplete_rows(600, p, seed=p)
    mask = np.isnan(X)
    chunks = plan_chunks(mask, np.arange(len(X)), chunk_size=37)
    assert {chunk.missing.shape[0] for chunk in chunks} == set(range(1, p))
    blocks = [(X[chunk.rows].copy(), chunk.missing) for chunk in chunks]
    distances = [np.full(len(chunk.rows), np.nan) for chunk in chunks]
    precision, _ = precision_and_logdet(cov)
    with_d2 = _compiled.complete_blocks(
        blocks,
        mean,
        precision,
        want_cross=True,
        n_threads=n_threads,
        distances=distances,
    )
    reference, _ = reference_distances(X, mean, cov)
    for chunk, d2 in zip(chunks, distances, strict=True):
        assert_allclose(d2, reference[chunk.rows], rtol=1e-9, atol=1e-9)
    # Asking for the distances changes nothing else, bit for bit.
    blocks = [(X[chunk.rows].copy(), chunk.missing) for chunk in chunks]
    without = _compiled.complete_blocks(
        blocks, mean, precision, want_cross=True, n_threads=n_threads
    )
    for a, b in zip(with_d2, without, strict=True):
        assert_array_equal(a, b)


def test_numpy_kernel_distances_match_the_reference():
    p = 9
    X, mean, cov = incomplete_rows(300, p, seed=1)
    precision, logdet_cov = precision_and_logdet(cov)
    reference, reference_logdet = reference_distances(X, mean, cov)
    mask = np.isnan(X)
    for chunk in plan_chunks(mask, np.arange(len(X))):
        moments = chunk_moments(
            X[chunk.rows].copy(), chunk, mean, precision, logdet_cov
        )
        assert_allclose(moments.distance, reference[chunk.rows], rtol=1e-9, atol=1e-9)
        assert_allclose(
            moments.logdet_mm, reference_logdet[chunk.rows], rtol=1e-9, atol=1e-9
        )


@pytest.mark.parametrize("n", [5, 8, 1003])  # a short group, one group, many
def test_weighted_sums_match_numpy(n, monkeypatch, compiled_path):
    monkeypatch.setattr(_compiled, "MIN_ROWS_PER_THREAD", 1)
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 7))
    w = rng.uniform(0.1, 3.0, size=n)
    for n_threads in (1, 2):
        row_sum, cross = _compiled.weighted_sums(X, w, n_threads=n_threads)
        assert_allclose(row_sum, w @ X, rtol=1e-12, atol=1e-12)
        assert_allclose(cross, (X * w[:, None]).T @ X, rtol=1e-12, atol=1e-12)
