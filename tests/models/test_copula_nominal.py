"""The Gaussian-max model of nominal columns: its category probabilities
(closed form for two categories, simulation otherwise), the means that
give target probabilities, the Gibbs update of an observed category
against rejection sampling, and the centring that identifies the
correlations."""

import numpy as np
from numpy.testing import assert_allclose
from scipy import special

from emimpute.models._copula import free_cells, gibbs_sweep
from emimpute.models._copula_nominal import (
    NominalBlock,
    centre_blocks,
    gaussian_max_probabilities,
    nominal_means,
    nominal_sweep,
    starting_values,
)


def test_two_categories_have_the_probit_closed_form():
    # argmax(z1, z2 + mu) = 2 iff z2 - z1 > -mu, and z2 - z1 ~ N(0, 2).
    for mu in (-3.0, -0.4, 0.0, 1.7):
        p = gaussian_max_probabilities(np.array([0.0, mu]))
        assert_allclose(p[1], special.ndtr(mu / np.sqrt(2)), rtol=1e-12)


def test_probabilities_match_simulation_and_means_invert_them():
    rng = np.random.default_rng(0)
    mu = np.array([0.0, -0.5, 0.7, -2.0])
    z = rng.standard_normal((400_000, 4))
    frequencies = np.bincount(np.argmax(z + mu, axis=1)) / len(z)
    p = gaussian_max_probabilities(mu)
    se = np.sqrt(p * (1 - p) / len(z))
    assert np.all(np.abs(frequencies - p) < 4 * se)
    for target in ([0.7, 0.2, 0.09, 0.01], [0.001, 0.999], [0.98] + [0.002] * 10):
        found = gaussian_max_probabilities(nominal_means(np.array(target)))
        assert_allclose(found, target, atol=1e-10)


def test_the_sweep_of_an_observed_category_samples_its_conditional_law():
    # One continuous column x (exact, 0.8) and a nominal column with three
    # categories, category 2 observed: the chain's average latent values
    # against rejection sampling of z ~ N(0, R) given x and the argmax.
    R = np.eye(4)
    R[0, 1:] = R[1:, 0] = [0.5, -0.3, 0.1]
    R = centre_blocks(R, [NominalBlock(np.arange(1, 4), None, None)])
    mu = nominal_means(np.array([0.5, 0.3, 0.2]))
    n = 4000
    block = NominalBlock(np.arange(1, 4), mu, np.full(n, 2))
    lower = np.column_stack([np.full(n, 0.8), starting_values(block)])
    rng = np.random.default_rng(1)
    Z = np.array(lower, order="F")
    precision = np.linalg.inv(R)
    cells = free_cells(lower, lower)  # nothing free besides the block
    draws = []
    for sweep in range(60):
        gibbs_sweep(Z, cells, precision, rng)
        nominal_sweep(Z, [block], precision, rng)
        if sweep >= 10:
            draws.append(Z[:, 1:].copy())
    chain = np.concatenate(draws)
    assert np.all(np.argmax(chain + mu, axis=1) == 2)
    # Rejection sampling: z_block | x = 0.8 is normal; keep category 2.
    b = R[0, 1:]
    mean, cov = 0.8 * b, np.eye(3) - np.outer(b, b)
    z = rng.multivariate_normal(mean, cov, size=400_000)
    kept = z[np.argmax(z + mu, axis=1) == 2]
    # The chain's draws are autocorrelated: its standard error is taken as
    # that of 1/10 as many independent draws.
    se = kept.std(axis=0) * np.sqrt(10 / len(chain) + 1 / len(kept))
    assert np.all(np.abs(chain.mean(axis=0) - kept.mean(axis=0)) < 4 * se)


def test_centring_keeps_the_matrix_positive_definite_and_the_differences():
    rng = np.random.default_rng(2)
    for _ in range(50):
        A = rng.normal(size=(6, 6))
        S = A @ A.T + np.eye(6)
        d = np.sqrt(np.diag(S))
        R = S / np.outer(d, d)
        # Force an identity block on latent columns 2..4 by conditioning
        # it out, then rescale: a valid correlation with that block.
        block = np.arange(2, 5)
        others = np.setdiff1d(np.arange(6), block)
        R[np.ix_(block, block)] = np.eye(3)
        scale = 0.5 / max(1.0, np.abs(R[np.ix_(others, block)]).sum(axis=1).max())
        R[np.ix_(others, block)] *= scale
        R[np.ix_(block, others)] *= scale
        if np.linalg.eigvalsh(R)[0] <= 0:
            continue
        centred = centre_blocks(R, [NominalBlock(block, None, None)])
        assert np.linalg.eigvalsh(centred)[0] > 0
        assert_allclose(centred[np.ix_(others, block)].sum(axis=1), 0, atol=1e-15)
        # The correlations of the differences z_k - z_1 with the others
        # (what the likelihood sees) are unchanged.
        first, rest = np.ix_(others, block[:1]), np.ix_(others, block[1:])
        assert_allclose(centred[rest] - centred[first], R[rest] - R[first], atol=1e-15)


def test_one_category_has_mean_zero():
    assert_allclose(nominal_means(np.ones(1)), [0.0])
