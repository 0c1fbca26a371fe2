"""The copula's SAEM kernel against independent references: moments of a
truncated bivariate normal by numerical integration (the Gibbs sampler's
stationary law), the exact maximum likelihood estimate of a polychoric
correlation (exact box probabilities, direct maximisation), and the sample
correlation when every cell is exact."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, optimize, special, stats

from emimpute.gaussian._orthant import bivariate_upper
from emimpute.models._copula import (
    correlation_m_step,
    correlation_of,
    free_cells,
    gibbs_sweep,
    saem_correlation,
)
from emimpute.models._copula_margins import fit_margin, latent_interval


def test_gibbs_draws_have_the_truncated_bivariate_normal_moments():
    """Many chains (one per row) from one box of a correlated bivariate
    normal: after 30 sweeps, the draws' means and second moments match
    dblquad's within 5 standard errors."""
    R = np.array([[1.0, 0.7], [0.7, 1.0]])
    lo, hi = np.array([-0.5, 0.3]), np.array([1.0, np.inf])
    n = 100_000
    rng = np.random.default_rng(0)
    lower, upper = np.tile(lo, (n, 1)), np.tile(hi, (n, 1))
    Z = np.zeros((n, 2)) + [0.0, 1.0]
    for _ in range(30):
        gibbs_sweep(Z, free_cells(lower, upper), np.linalg.inv(R), rng)
    assert np.all((Z >= lo) & (Z <= hi))
    density = stats.multivariate_normal([0, 0], R).pdf

    def expectation(g):
        value, _ = integrate.dblquad(
            lambda z2, z1: g(z1, z2) * density([z1, z2]), lo[0], hi[0], lo[1], 9.0,
            epsabs=1e-12, epsrel=1e-10,
        )  # fmt: skip
        return value

    mass = expectation(lambda z1, z2: 1.0)
    for g, draws in (
        (lambda z1, z2: z1, Z[:, 0]),
        (lambda z1, z2: z2, Z[:, 1]),
        (lambda z1, z2: z1 * z2, Z[:, 0] * Z[:, 1]),
        (lambda z1, z2: z2 * z2, Z[:, 1] ** 2),
    ):
        assert abs(draws.mean() - expectation(g) / mass) < 5 * draws.std() / np.sqrt(n)


def box_probability(lo, hi, R, seen):
    """P(lo < z_seen <= hi) under N(0, R), rows of boxes, one to three
    dimensions: Genz's bivariate orthant probabilities by inclusion-exclusion,
    three dimensions by Gauss-Legendre over the first."""
    idx = np.flatnonzero(seen)
    if len(idx) == 1:
        return special.ndtr(hi[:, 0]) - special.ndtr(lo[:, 0])
    if len(idx) == 2:
        rho = np.full(len(lo), R[idx[0], idx[1]])
        up = lambda h, k: bivariate_upper(h, k, rho)  # noqa: E731
        return (up(lo[:, 0], lo[:, 1]) - up(hi[:, 0], lo[:, 1])
                - up(lo[:, 0], hi[:, 1]) + up(hi[:, 0], hi[:, 1]))  # fmt: skip
    a, b = np.maximum(lo[:, 0], -9.0), np.minimum(hi[:, 0], 9.0)
    x, w = special.roots_legendre(80)
    half = 0.5 * (b - a)
    z1 = 0.5 * (a + b)[:, None] + half[:, None] * x
    beta = R[1:, 0]
    C = R[1:, 1:] - np.outer(beta, beta)
    sd = np.sqrt(np.diag(C))
    shift = z1[..., None] * beta
    lo2 = ((lo[:, None, 1:] - shift) / sd).reshape(-1, 2)
    hi2 = ((hi[:, None, 1:] - shift) / sd).reshape(-1, 2)
    inner = box_probability(lo2, hi2, C / np.outer(sd, sd), np.array([1, 1], bool))
    return (half[:, None] * w * stats.norm.pdf(z1) * inner.reshape(z1.shape)).sum(1)


def polychoric_mle(lower, upper):
    """The exact MLE of R for three ordinal columns with holes: Nelder-Mead
    on the exact log-likelihood over a C-vine of partial correlations."""
    seen = np.isfinite(lower) | np.isfinite(upper)
    keys, counts = np.unique(np.column_stack([seen, lower, upper]), axis=0,
                             return_counts=True)  # fmt: skip
    patterns = keys[:, :3].astype(bool)

    def correlation(theta):
        r12, r13, p23 = np.tanh(theta)
        r23 = r12 * r13 + p23 * np.sqrt((1 - r12**2) * (1 - r13**2))
        return np.array([[1, r12, r13], [r12, 1, r23], [r13, r23, 1.0]])

    def negloglik(theta):
        R, total = correlation(theta), 0.0
        for pattern in np.unique(patterns, axis=0):
            rows = np.flatnonzero((patterns == pattern).all(axis=1))
            lo, hi = keys[rows, 3:6][:, pattern], keys[rows, 6:9][:, pattern]
            total -= counts[rows] @ np.log(box_probability(lo, hi, R, pattern))
        return total

    fit = optimize.minimize(negloglik, np.zeros(3), method="Nelder-Mead",
                            options={"xatol": 1e-7, "fatol": 1e-9})  # fmt: skip
    return correlation(fit.x)


def ordinal_copula_data(n, seed):
    rng = np.random.default_rng(seed)
    R = np.array([[1.0, 0.6, 0.4], [0.6, 1.0, 0.5], [0.4, 0.5, 1.0]])
    z = rng.multivariate_normal(np.zeros(3), R, size=n)
    level_probs = ([0.1, 0.2, 0.4, 0.2, 0.1], [0.3, 0.4, 0.3], [0.6, 0.4])
    X = np.column_stack([
        np.searchsorted(stats.norm.ppf(np.cumsum(probs)[:-1]), z[:, j])
        for j, probs in enumerate(level_probs)
    ]).astype(float)  # fmt: skip
    X[rng.random(X.shape) < 0.2] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    lower, upper = np.empty_like(X), np.empty_like(X)
    for j in range(3):
        margin = fit_margin(X[~np.isnan(X[:, j]), j], "ordinal")
        lower[:, j], upper[:, j] = latent_interval(margin, X[:, j])
    return lower, upper


@pytest.mark.parametrize("seed", [0, 1])
def test_saem_reaches_the_exact_polychoric_mle(seed):
    """Ordinal data with holes: SAEM's correlation within 0.015 of the exact
    MLE.  Its Monte Carlo error after 1,500 iterations was at most 0.005
    over 12 chains (4 data sets x 3 seeds); the MLE is 0.03-0.04 from the
    truth at this n, and gcimpute's approximate E-step 0.08 from the MLE
    (benchmarks/copula_estep_study.py), so an approximate E-step fails."""
    lower, upper = ordinal_copula_data(1500, seed)
    mle = polychoric_mle(lower, upper)
    result = saem_correlation(
        lower, upper, n_iter=1500, rng=np.random.default_rng(seed)
    )
    assert_allclose(result.correlation, mle, atol=0.015)


def test_exact_cells_give_the_m_step_of_the_scores():
    """Every cell exact: nothing to draw, and after one iteration R is the
    M-step of S = Z'Z / n."""
    Z = np.random.default_rng(2).normal(size=(300, 3)) @ np.array(
        [[1.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]
    )
    result = saem_correlation(Z, Z, n_iter=1, rng=np.random.default_rng(0))
    assert_allclose(result.correlation, correlation_m_step(Z.T @ Z / 300), atol=1e-8)
    assert_allclose(result.latent, Z, rtol=0, atol=0)


def random_cross_product(p, seed):
    """An average cross-product whose diagonal is not 1 (as an E-step's)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(p, p))
    return A @ A.T / p + np.diag(rng.uniform(0.2, 1.0, p))


@pytest.mark.parametrize("seed", range(3))
def test_m_step_matches_an_independent_maximisation(seed):
    """p = 3: Nelder-Mead over a C-vine of partial correlations (another
    parametrisation, no gradient) reaches the same R."""
    S = random_cross_product(3, seed)

    def objective(theta):
        r12, r13, p23 = np.tanh(theta)
        r23 = r12 * r13 + p23 * np.sqrt((1 - r12**2) * (1 - r13**2))
        R = np.array([[1, r12, r13], [r12, 1, r23], [r13, r23, 1.0]])
        return np.linalg.slogdet(R)[1] + np.trace(np.linalg.solve(R, S))

    options = {"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000}
    fit = optimize.minimize(
        objective, np.zeros(3), options=options, method="Nelder-Mead"
    )
    r12, r13, p23 = np.tanh(fit.x)
    r23 = r12 * r13 + p23 * np.sqrt((1 - r12**2) * (1 - r13**2))
    R = correlation_m_step(S)
    assert_allclose([R[0, 1], R[0, 2], R[1, 2]], [r12, r13, r23], atol=1e-6)
    # Not the rescaled S: the two differ by more than the tolerance.
    assert np.max(np.abs(R - correlation_of(S))) > 1e-3


@pytest.mark.parametrize("p", [2, 5, 12])
def test_m_step_is_a_stationary_point(p):
    """The first-order condition of the maximum over correlation matrices:
    the off-diagonal of R^-1 - R^-1 S R^-1 vanishes (the diagonal is the
    constraint's multiplier)."""
    S = random_cross_product(p, seed=p)
    R = correlation_m_step(S)
    assert_allclose(np.diag(R), 1.0, rtol=0, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(R) > 0)
    R_inv = np.linalg.inv(R)
    G = R_inv - R_inv @ S @ R_inv
    assert np.max(np.abs(G - np.diag(np.diag(G)))) < 1e-6


def test_m_step_of_a_correlation_matrix_is_itself():
    R = correlation_of(random_cross_product(6, seed=9))
    assert_allclose(correlation_m_step(R), R, atol=1e-8)


def test_posterior_latent_means_match_numerical_integration():
    """Rows with two interval cells and a missing one, under a known R:
    E[z1], E[z2] given the box by dblquad, and E[z3] = beta' E[(z1, z2)]
    (z3 given z1, z2 is normal).  Many identical rows, each its own chain:
    their average within 5 standard errors (the spread across rows over
    sqrt(n)), and every row within 0.05 (one chain of 200 sweeps)."""
    from emimpute.models._copula import posterior_latent_means

    R = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.6], [0.3, 0.6, 1.0]])
    lo, hi = np.array([0.2, -1.0, -np.inf]), np.array([1.5, 0.0, np.inf])
    n = 4000
    means, _ = posterior_latent_means(
        np.tile(lo, (n, 1)), np.tile(hi, (n, 1)), R, rng=np.random.default_rng(3)
    )
    density = stats.multivariate_normal([0, 0], R[:2, :2]).pdf

    def expectation(g):
        value, _ = integrate.dblquad(
            lambda z2, z1: g(z1, z2) * density([z1, z2]), lo[0], hi[0], lo[1], hi[1],
            epsabs=1e-13, epsrel=1e-11,
        )  # fmt: skip
        return value

    mass = expectation(lambda z1, z2: 1.0)
    box_mean = np.array(
        [expectation(lambda z1, z2: z1), expectation(lambda z1, z2: z2)]
    )
    box_mean /= mass
    beta = np.linalg.solve(R[:2, :2], R[:2, 2])
    reference = np.array([*box_mean, beta @ box_mean])
    spread = means.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(means.mean(axis=0) - reference) < 5 * spread + 1e-12)
    assert np.all(np.abs(means - reference) < 0.05)


def test_posterior_latent_means_keep_exact_cells():
    from emimpute.models._copula import posterior_latent_means

    Z = np.random.default_rng(4).normal(size=(50, 2))
    lower, upper = Z.copy(), Z.copy()
    lower[::2, 1], upper[::2, 1] = -np.inf, np.inf  # every other row missing x2
    R = np.array([[1.0, 0.8], [0.8, 1.0]])
    means, _ = posterior_latent_means(
        lower, upper, R, n_sweeps=5, rng=np.random.default_rng(0)
    )
    assert_allclose(means[:, 0], Z[:, 0], rtol=0, atol=0)
    assert_allclose(means[1::2, 1], Z[1::2, 1], rtol=0, atol=0)
    # A missing cell given one exact neighbour: r z1, exactly (no other
    # free cell in its row, so every full-conditional mean is the same).
    assert_allclose(means[::2, 1], 0.8 * Z[::2, 0], rtol=1e-12)


def test_the_m_step_with_zero_groups_meets_the_constrained_optimality_conditions():
    from emimpute.models._copula import _m_step_objective

    rng = np.random.default_rng(4)
    A = rng.normal(size=(7, 30))
    S = A @ A.T / 30
    groups = [np.array([1, 3, 4]), np.array([5, 6])]
    # The analytic gradient of the parametrisation against central
    # differences, at a random point.
    below = np.tril_indices(7, -1)
    free = rng.normal(scale=0.4, size=len(below[0]))
    value, gradient = _m_step_objective(free, S, below, groups)
    steps = np.eye(len(free)) * 1e-6
    numeric = [
        (_m_step_objective(free + e, S, below, groups)[0]
         - _m_step_objective(free - e, S, below, groups)[0]) / 2e-6
        for e in steps
    ]  # fmt: skip
    assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-7)
    # The maximum: groups held at 0 exactly, and F = log|R| + tr(R^-1 S)
    # stationary in every correlation left free (its derivative
    # R^-1 - R^-1 S R^-1 vanishes there; the held pairs and the diagonal
    # carry Lagrange multipliers instead).
    R = correlation_m_step(S, groups=groups, start=np.eye(7))
    held = np.zeros((7, 7), dtype=bool)
    for group in groups:
        held[np.ix_(group, group)] = True
    np.fill_diagonal(held, True)
    assert_allclose(R[held & ~np.eye(7, dtype=bool)], 0.0, atol=0)
    R_inv = np.linalg.inv(R)
    G = R_inv - R_inv @ S @ R_inv
    assert np.abs(G[~held]).max() < 1e-6
    assert np.abs(G[held & ~np.eye(7, dtype=bool)]).max() > 1e-3  # not vacuous
