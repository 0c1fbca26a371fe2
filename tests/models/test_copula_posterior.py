"""Quantiles of the copula's latent posterior against numerical
integration (the means are checked in tests/models/test_copula.py)."""

import numpy as np
from scipy import integrate, optimize, stats

from emimpute.models._copula_posterior import latent_quantiles


def test_quantiles_given_an_interval_cell_match_numerical_integration():
    # z1 observed only as an interval (0.2, 1.5], z2 missing, corr 0.6:
    # P(z2 <= t | z1 in (a, b)) = int_a^b phi(z1) Phi((t - r z1) / sqrt(1 - r^2))
    # dz1 / (Phi(b) - Phi(a)).
    r, a, b = 0.6, 0.2, 1.5
    mass = stats.norm.cdf(b) - stats.norm.cdf(a)

    def cdf(t, p=0.0):
        def inner(z):
            return stats.norm.pdf(z) * stats.norm.cdf((t - r * z) / np.sqrt(1 - r * r))

        return integrate.quad(inner, a, b, epsabs=1e-12)[0] / mass - p

    probabilities = [0.05, 0.5, 0.9]
    exact = [optimize.brentq(cdf, -6, 6, args=(p,), xtol=1e-12) for p in probabilities]
    n = 2000
    lower = np.tile([a, -np.inf], (n, 1))
    upper = np.tile([b, np.inf], (n, 1))
    R = np.array([[1.0, r], [r, 1.0]])
    found = latent_quantiles(
        lower, upper, R, probabilities, rng=np.random.default_rng(0),
        impute=np.tile([False, True], (n, 1)),
    )  # fmt: skip
    assert np.isnan(found[:, :, 0]).all()
    # Each row's quantile carries Monte Carlo error (50 sweeps; about 0.02
    # in simulation); their average over 2,000 rows about 0.02 / 45.
    estimates = found[:, :, 1]
    assert np.all(np.abs(estimates.mean(axis=1) - exact) < 0.005), (
        estimates.mean(axis=1), exact,
    )  # fmt: skip
    assert np.all(estimates.std(axis=1) < 0.06)


def test_the_loglik_of_an_observed_category_matches_simulation():
    from emimpute.models._copula_loglik import latent_loglik
    from emimpute.models._copula_nominal import (
        NominalBlock,
        centre_blocks,
        nominal_means,
        starting_values,
    )

    # z0 exact at 0.7; a nominal column (latent 1..3) with category 2 seen.
    R = np.eye(4)
    R[0, 1:] = R[1:, 0] = [0.5, -0.3, 0.1]
    block = NominalBlock(np.arange(1, 4), None, None)
    R = centre_blocks(R, [block])
    mu = nominal_means(np.array([0.5, 0.3, 0.2]))
    block = NominalBlock(np.arange(1, 4), mu, np.array([2]))
    lower = np.concatenate([[0.7], starting_values(block)[0]])[None, :]
    found = latent_loglik(
        lower, lower.copy(), R, rng=np.random.default_rng(0), blocks=[block]
    )[0]
    # Reference: phi(0.7) times P(argmax(z + mu) = 2 | z0 = 0.7) by plain
    # simulation of the block's conditional normal (10^6 draws: standard
    # error of the log about 0.002).
    b = R[0, 1:]
    z = np.random.default_rng(1).multivariate_normal(
        0.7 * b, np.eye(3) - np.outer(b, b), size=1_000_000
    )
    p = np.mean(np.argmax(z + mu, axis=1) == 2)
    expected = stats.norm.logpdf(0.7) + np.log(p)
    assert abs(found - expected) < 0.02, (found, expected)
