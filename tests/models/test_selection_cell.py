"""The E-step's quadrature rule for one missing normal value under probit
and logistic selection (Gauss-Hermite nodes for a gentle selection curve,
a composite Gauss-Legendre rule around the step of a steep one), against
adaptive quadrature (scipy.integrate.quad), Heckman's closed form for the
probit, a simulation and limiting cases.

``node_moments`` applies the rule as the E-step does (the per-row nodes of
:func:`emimpute.models._selection_cell.one_cell_rule`, the link's log F of
:mod:`emimpute.models._binary_glm`); ``heckman_moments`` is the closed form
and ``by_quadrature`` adaptive quadrature, the independent references.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, special

from emimpute.models._binary_glm import log_probabilities
from emimpute.models._selection_cell import (
    GENTLE_SIZES,
    STEEP_NODES,
    gauss_hermite,
    gentle_size,
    one_cell_rule,
    steep_slope,
)
from emimpute.models._selection_nodes import grid_per_row, grid_sizes

LINKS = {"probit": special.ndtr, "logit": special.expit}
GRID = [
    (nu, s, eta, psi)
    for nu in (-2.0, 0.0, 3.0)
    for s in (0.3, 1.0, 2.5)
    for eta in (-3.0, 0.0, 2.0)
    for psi in (-2.0, -0.5, 0.0, 0.7, 2.0)
]


def node_moments(nu, s, eta, psi, link):
    """log P(missing), E[y | missing] and Var[y | missing] by the E-step's
    rule: each point's own nodes on z = (y - nu) / s from
    ``one_cell_rule(eta + psi nu, psi s)``, the weights times F(eta + psi y)
    normalised (sums in log space)."""
    nu, s, eta, psi = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(v, float)) for v in (nu, s, eta, psi))
    )
    z, log_w = one_cell_rule(eta + psi * nu, psi * s, link)
    y = nu[:, None] + s[:, None] * z
    log_terms = log_w + log_probabilities(eta[:, None] + psi[:, None] * y, link)[0]
    log_prob = special.logsumexp(log_terms, axis=-1)
    posterior = np.exp(log_terms - log_prob[:, None])
    mean = np.sum(posterior * y, axis=-1)
    variance = np.sum(posterior * (y - mean[:, None]) ** 2, axis=-1)
    return log_prob, mean, variance


def heckman_moments(nu, s, eta, psi):
    """The probit's closed form (Heckman 1979; truncated-normal moments,
    Johnson, Kotz & Balakrishnan 1994, sec. 10.1): with u ~ N(0, 1)
    independent of z = (y - nu) / s, "missing" is w < a for w = (u - psi s z)
    / sqrt(1 + psi^2 s^2) ~ N(0, 1), a = (eta + psi nu) / sqrt(1 + psi^2
    s^2) and corr(z, w) = -rho, rho = psi s / sqrt(1 + psi^2 s^2); with
    lam = phi(a) / Phi(a), P(missing) = Phi(a), E[y | missing] = nu + s rho
    lam and Var[y | missing] = s^2 (1 - rho^2 lam (lam + a))."""
    nu, s, eta, psi = (np.asarray(v, float) for v in (nu, s, eta, psi))
    root = np.sqrt(1.0 + (psi * s) ** 2)
    a, rho = (eta + psi * nu) / root, psi * s / root
    lam = np.exp(-0.5 * a * a - 0.5 * np.log(2.0 * np.pi) - special.log_ndtr(a))
    mean = nu + s * rho * lam
    return special.log_ndtr(a), mean, s * s * (1.0 - rho * rho * lam * (lam + a))


def by_quadrature(nu, s, eta, psi, F):
    """log P(missing), E and Var of y given missing, by adaptive quadrature
    on z = (y - nu) / s over 12 SD around the integrand's mode (found on a
    fine grid), split at the selection curve's step and at points around
    it, the integrand scaled by its largest value so that rare missingness
    (P far below 1e-300) stays representable."""
    log_F = {special.ndtr: special.log_ndtr, special.expit: special.log_expit}[F]
    a, b = eta + psi * nu, psi * s
    grid = np.linspace(-400.0, 400.0, 800_001)
    log_f = -0.5 * grid**2 + log_F(a + b * grid)
    mode, top = grid[np.argmax(log_f)], log_f.max()
    lo, hi = mode - 12.0, mode + 12.0
    points = [mode]
    if b:
        steps = -a / b + np.array([-30, -14, -6, -2, 0, 2, 6, 14, 30]) / b
        points += list(steps[(steps > lo) & (steps < hi)])
    options = {"epsabs": 0, "epsrel": 1e-13, "limit": 500, "points": points}

    def moment(g):
        return integrate.quad(
            lambda x: g(x) * np.exp(-0.5 * x * x + log_F(a + b * x) - top),
            lo, hi, **options,
        )[0]  # fmt: skip

    mass = moment(lambda x: 1.0)
    mean = moment(lambda x: x - mode) / mass + mode
    variance = moment(lambda x: (x - mean) ** 2) / mass
    log_prob = np.log(mass) + top - 0.5 * np.log(2.0 * np.pi)
    return log_prob, nu + s * mean, s * s * variance


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("link", LINKS)
def test_moments_match_numerical_integration(link):
    # Each point with its own node count, as a row of the E-step would get.
    for point in GRID:
        log_prob, mean, variance = node_moments(*point, link)
        ref_log_prob, ref_mean, ref_variance = by_quadrature(*point, LINKS[link])
        scale = point[1]
        assert log_prob == pytest.approx(ref_log_prob, abs=1e-8), point
        assert mean == pytest.approx(ref_mean, abs=1e-8 * scale), point
        assert variance == pytest.approx(ref_variance, abs=1e-8 * scale**2), point


def test_probit_rule_equals_heckmans_closed_form():
    for point in GRID:
        rule, closed = node_moments(*point, "probit"), heckman_moments(*point)
        scale = point[1]
        assert rule[0] == pytest.approx(closed[0], abs=1e-9), point
        assert rule[1] == pytest.approx(closed[1], abs=1e-9 * scale), point
        assert rule[2] == pytest.approx(closed[2], abs=1e-9 * scale**2), point


@pytest.mark.parametrize("link", LINKS)
def test_missing_at_random_leaves_the_normal_unchanged(link):
    log_prob, mean, variance = node_moments(
        [1.0, -2.0], [2.0, 0.5], [0.3, -1.0], 0.0, link
    )
    F = LINKS[link]
    np.testing.assert_allclose(np.exp(log_prob), F(np.array([0.3, -1.0])), rtol=1e-12)
    np.testing.assert_allclose(mean, [1.0, -2.0], atol=1e-12)
    np.testing.assert_allclose(variance, [4.0, 0.25], rtol=1e-10)


@pytest.mark.parametrize("link", LINKS)
def test_direction_of_the_shift_and_smaller_variance(link):
    _, up, var_up = node_moments(0.0, 1.0, 0.0, 1.5, link)
    _, down, var_down = node_moments(0.0, 1.0, 0.0, -1.5, link)
    assert up > 0 > down  # psi > 0: the missing values are the larger ones
    assert up == pytest.approx(-down)
    assert 0 < var_up < 1 and var_up == pytest.approx(var_down)


def test_log_scale_keeps_rare_missingness():
    """P(missing) ~ 1e-19: the log-space sums keep it (Heckman's closed form
    is the reference).  The rule's limit: beyond about 9 SD of the index
    (P ~ 1e-50 at eta = -15) the posterior lies past the last nodes and
    log P is off by 3e-6 (0.07 at eta = -20)."""
    rule, closed = (
        node_moments(0.0, 1.0, -10.0, 0.5, "probit"),
        heckman_moments(0.0, 1.0, -10.0, 0.5),
    )
    assert rule[0] == pytest.approx(closed[0], abs=1e-9)
    assert rule[1] == pytest.approx(closed[1], abs=1e-9)
    assert rule[2] == pytest.approx(closed[2], abs=1e-9)


@pytest.mark.parametrize("link", LINKS)
def test_rule_matches_a_simulation(link):
    """Simulation truth: draw y, then whether it goes missing."""
    rng = np.random.default_rng(0)
    y = rng.normal(1.0, 2.0, size=2_000_000)
    missing = rng.random(y.size) < LINKS[link](-0.5 + 0.8 * y)
    log_prob, mean, variance = node_moments(1.0, 2.0, -0.5, 0.8, link)
    assert np.exp(log_prob) == pytest.approx(missing.mean(), abs=1e-3)
    assert mean == pytest.approx(y[missing].mean(), abs=5e-3)
    assert variance == pytest.approx(y[missing].var(), rel=5e-3)


# Steep selection curves: slopes b = psi s from just past the switch to the
# composite rule up to the fit's limit (100 per SD), the step anywhere from
# far left of the normal's mass to far right of it (missingness from almost
# certain to about 1e-2000).
STEEP = [
    (0.0, 1.0, eta, psi)
    for psi in (-100.0, -9.0, 3.2, 7.3, 40.0, 100.0)
    for eta in (-300.0, -20.0, -1.0, 0.0, 3.0, 50.0)
]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("link", LINKS)
def test_steep_curves_match_numerical_integration(link):
    """The composite rule keeps the E-step exact where Gauss-Hermite needed
    thousands of nodes: log P to 1e-9 absolute (P itself can be e^-2600),
    the moments to 1e-9 of the sd."""
    for point in STEEP:
        log_prob, mean, variance = node_moments(*point, link)
        ref_log_prob, ref_mean, ref_variance = by_quadrature(*point, LINKS[link])
        assert log_prob == pytest.approx(ref_log_prob, abs=1e-9, rel=1e-12), point
        assert mean == pytest.approx(ref_mean, abs=1e-9), point
        assert variance == pytest.approx(ref_variance, abs=1e-9), point


def test_steep_probit_equals_heckmans_closed_form():
    for point in STEEP:
        rule, closed = node_moments(*point, "probit"), heckman_moments(*point)
        assert rule[0] == pytest.approx(closed[0], abs=1e-9, rel=1e-12), point
        assert rule[1] == pytest.approx(closed[1], abs=1e-9), point
        assert rule[2] == pytest.approx(closed[2], abs=1e-9), point


def test_rule_size_grows_with_the_slope_then_stays_fixed():
    assert gentle_size(0.0, "logit") == 12 and gentle_size(0.0, "probit") == 24
    assert gentle_size(1.1, "logit") == 48  # 28 * 1.1^2 = 33.9
    assert gentle_size(steep_slope("logit"), "logit") == GENTLE_SIZES[-1]
    sizes = [
        np.isfinite(one_cell_rule(np.zeros(1), np.array([b]), "logit")[1]).sum()
        for b in (0.5, 1.5, 3.5, 30.0, 1e4)
    ]
    assert sizes[:2] == [12, 64]
    assert max(sizes[2:]) <= STEEP_NODES  # (panels outside the window are empty)


def test_each_row_gets_the_rule_of_its_own_curve():
    """Exact identity: a row's nodes and weights do not depend on the other
    rows (so the E-step statistics of row blocks add up), only padded."""
    a = np.array([-3.0, 0.5, 12.0, -40.0])
    b = np.array([0.2, -2.5, 8.0, 60.0])
    z, log_w = one_cell_rule(a, b, "logit")
    for i in range(len(a)):
        z_i, log_w_i = one_cell_rule(a[i : i + 1], b[i : i + 1], "logit")
        used = np.isfinite(log_w_i[0])
        np.testing.assert_array_equal(z[i, : len(used)][used], z_i[0][used])
        np.testing.assert_array_equal(log_w[i, : len(used)][used], log_w_i[0][used])
        assert np.all(np.isneginf(log_w[i, len(used) :]) | (len(used) == z.shape[1]))


def test_large_rules_stay_finite():
    """NumPy's hermgauss overflows above about 350 points; the rule used here
    does not, and still integrates 1 and t^2 exactly."""
    for n in (400, 1000):
        t, log_w = gauss_hermite(n)
        w = np.exp(log_w)
        assert np.all(np.isfinite(t)) and np.all(np.isfinite(log_w))
        assert w.sum() == pytest.approx(np.sqrt(np.pi), rel=1e-12)
        assert (w * t**2).sum() == pytest.approx(np.sqrt(np.pi) / 2, rel=1e-10)


# Rows with two MNAR cells under the logit link: (c, C, indices at 0, psi).
TWO_CELL_ROWS = [
    ([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]], [0.3, -0.5], [0.4, 0.3]),
    ([1.0, -0.5], [[0.5, -0.2], [-0.2, 0.8]], [-2.0, 1.0], [1.0, 0.7]),
    ([0.5, 0.5], [[2.0, 1.2], [1.2, 1.0]], [4.0, -6.0], [0.2, 1.1]),
    ([-1.0, 2.0], [[1.0, 0.0], [0.0, 1.0]], [-12.0, 0.0], [0.6, 0.05]),
]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("row", TWO_CELL_ROWS)
def test_two_cell_grid_matches_numerical_integration(row):
    """Each row's product grid, sized by the slopes along its axes
    (12-24 nodes each), against adaptive 2-D quadrature (dblquad) of
    N(y; c, C) sigma(a1 + psi1 y1) sigma(a2 + psi2 y2): log P, the means and
    the covariance to 1e-8."""
    c, C, a, psi = (np.asarray(v, float) for v in row)
    L = np.linalg.cholesky(C)
    sizes = grid_sizes(L[None], np.abs(psi)[None], "logit")
    y, log_w = grid_per_row(c[None], L[None], sizes)
    y = y[0]
    log_terms = log_w[0] + special.log_expit(a + psi * y).sum(axis=1)
    log_prob = special.logsumexp(log_terms)
    weight = np.exp(log_terms - log_prob)
    mean = weight @ y
    cov = (y - mean).T @ ((y - mean) * weight[:, None])

    precision = np.linalg.inv(C)
    norm_const = 1.0 / (2.0 * np.pi * np.sqrt(np.linalg.det(C)))
    sd = np.sqrt(np.diag(C))

    def integrand(y1, y2):
        d1, d2 = y1 - c[0], y2 - c[1]
        quad = precision[0, 0] * d1 * d1 + 2 * precision[0, 1] * d1 * d2
        quad += precision[1, 1] * d2 * d2
        return (
            norm_const
            * np.exp(-0.5 * quad)
            * special.expit(a[0] + psi[0] * y1)
            * special.expit(a[1] + psi[1] * y2)
        )

    def integral(g):
        return integrate.dblquad(
            lambda y2, y1: g(y1, y2) * integrand(y1, y2),
            c[0] - 10 * sd[0], c[0] + 10 * sd[0],
            c[1] - 10 * sd[1], c[1] + 10 * sd[1],
            epsabs=0, epsrel=1e-10,
        )[0]  # fmt: skip

    mass = integral(lambda y1, y2: 1.0)
    ref_mean = (
        np.array([integral(lambda y1, y2: y1), integral(lambda y1, y2: y2)]) / mass
    )
    d1, d2 = ref_mean
    ref_cov = (
        np.array(
            [
                [
                    integral(lambda y1, y2: (y1 - d1) ** 2),
                    integral(lambda y1, y2: (y1 - d1) * (y2 - d2)),
                ],
                [0.0, integral(lambda y1, y2: (y2 - d2) ** 2)],
            ]
        )
        / mass
    )
    ref_cov[1, 0] = ref_cov[0, 1]
    assert log_prob == pytest.approx(np.log(mass), abs=1e-8)
    assert_allclose(mean, ref_mean, atol=1e-8)
    assert_allclose(cov, ref_cov, atol=1e-8)
