"""Data augmentation against the known posterior of complete normal data
(normal-inverse-Wishart under the Jeffreys prior; Schafer 1997, sec. 5.2)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from emimpute.models._normal_posterior import data_augmentation, parameter_draw


def test_parameter_draws_follow_the_posterior():
    rng = np.random.default_rng(0)
    n, p = 30, 2
    Y = rng.multivariate_normal([1.0, -1.0], [[1.0, 0.4], [0.4, 2.0]], size=n)
    ybar = Y.mean(axis=0)
    scatter = (Y - ybar).T @ (Y - ybar)
    state = np.random.RandomState(1)
    draws = [parameter_draw(Y, state) for _ in range(4000)]
    means = np.array([d[0] for d in draws])
    covariances = np.array([d[1] for d in draws])
    # Inverse-Wishart(n - 1, A) has mean A / (n - 1 - p - 1).
    expected_cov = scatter / (n - p - 2)
    assert_allclose(covariances.mean(axis=0), expected_cov, rtol=0.06, atol=0.03)
    assert_allclose(means.mean(axis=0), ybar, atol=0.02)
    # mu | S ~ N(ybar, S / n): marginally, var(mu) = E[S] / n.
    assert_allclose(np.cov(means, rowvar=False), expected_cov / n, rtol=0.1, atol=0.003)


def test_chain_keeps_observed_cells_and_fills_the_missing_ones():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3))
    X[rng.random(X.shape) < 0.3] = np.nan
    X[0] = np.nan
    completed, mean, cov = data_augmentation(
        X, np.zeros(3), np.eye(3), n_iter=5, rng=np.random.RandomState(3)
    )
    observed = ~np.isnan(X)
    assert np.array_equal(completed[observed], X[observed])
    assert np.isfinite(completed).all()
    assert cov.shape == (3, 3) and np.all(np.linalg.eigvalsh(cov) > 0)
    with pytest.raises(ValueError, match="n_iter"):
        data_augmentation(X, np.zeros(3), np.eye(3), 0, np.random.RandomState(0))
