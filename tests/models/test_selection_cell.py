"""One missing normal value under probit and logistic selection, against
numerical integration (scipy.integrate.quad) and limiting cases."""

import numpy as np
import pytest
from scipy import integrate, special, stats

from emimpute.models._selection_cell import (
    gauss_hermite_size,
    logit_missing_moments,
    probit_missing_moments,
)

LINKS = {
    "probit": (probit_missing_moments, special.ndtr),
    "logit": (logit_missing_moments, special.expit),
}
GRID = [
    (nu, s, eta, psi)
    for nu in (-2.0, 0.0, 3.0)
    for s in (0.3, 1.0, 2.5)
    for eta in (-3.0, 0.0, 2.0)
    for psi in (-2.0, -0.5, 0.0, 0.7, 2.0)
]


def by_quadrature(nu, s, eta, psi, F):
    """log P(missing), E and Var of y given missing, by adaptive quadrature."""
    lo, hi = nu - 12 * s, nu + 12 * s
    kink = [-eta / psi] if psi and lo < -eta / psi < hi else None
    options = {"epsabs": 0, "epsrel": 1e-13, "limit": 400, "points": kink}

    def moment(g):
        return integrate.quad(
            lambda y: g(y) * stats.norm.pdf(y, nu, s) * F(eta + psi * y),
            lo, hi, **options,
        )[0]  # fmt: skip

    mass = moment(lambda y: 1.0)
    mean = moment(lambda y: y) / mass
    variance = moment(lambda y: (y - mean) ** 2) / mass
    return np.log(mass), mean, variance


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("link", LINKS)
def test_moments_match_numerical_integration(link):
    function, F = LINKS[link]
    nu, s, eta, psi = (np.array(column) for column in zip(*GRID, strict=True))
    log_prob, mean, variance = function(nu, s, eta, psi)  # all rows at once
    for i, point in enumerate(GRID):
        ref_log_prob, ref_mean, ref_variance = by_quadrature(*point, F)
        scale = point[1]
        assert log_prob[i] == pytest.approx(ref_log_prob, abs=1e-8), point
        assert mean[i] == pytest.approx(ref_mean, abs=1e-8 * scale), point
        assert variance[i] == pytest.approx(ref_variance, abs=1e-8 * scale**2), point


@pytest.mark.parametrize("link", LINKS)
def test_missing_at_random_leaves_the_normal_unchanged(link):
    function, F = LINKS[link]
    log_prob, mean, variance = function([1.0, -2.0], [2.0, 0.5], [0.3, -1.0], 0.0)
    np.testing.assert_allclose(np.exp(log_prob), F(np.array([0.3, -1.0])), rtol=1e-12)
    np.testing.assert_allclose(mean, [1.0, -2.0], atol=1e-12)
    np.testing.assert_allclose(variance, [4.0, 0.25], rtol=1e-10)


@pytest.mark.parametrize("link", LINKS)
def test_direction_of_the_shift_and_smaller_variance(link):
    function, _ = LINKS[link]
    _, up, var_up = function(0.0, 1.0, 0.0, 1.5)
    _, down, var_down = function(0.0, 1.0, 0.0, -1.5)
    assert up > 0 > down  # psi > 0: the missing values are the larger ones
    assert up == pytest.approx(-down)
    assert 0 < var_up < 1 and var_up == pytest.approx(var_down)


def test_probit_is_stable_when_missingness_is_very_rare():
    """P(missing) ~ 1e-300: log scale keeps it; the mean stays finite."""
    log_prob, mean, variance = probit_missing_moments(0.0, 1.0, -40.0, 0.5)
    a = -40.0 / np.sqrt(1.25)
    assert log_prob == pytest.approx(special.log_ndtr(a), rel=1e-12)
    assert np.isfinite(mean) and np.isfinite(variance) and variance > 0


def test_probit_matches_a_simulation():
    """Simulation truth: draw y, then whether it goes missing."""
    rng = np.random.default_rng(0)
    y = rng.normal(1.0, 2.0, size=2_000_000)
    missing = rng.random(y.size) < special.ndtr(-0.5 + 0.8 * y)
    log_prob, mean, variance = probit_missing_moments(1.0, 2.0, -0.5, 0.8)
    assert np.exp(log_prob) == pytest.approx(missing.mean(), abs=1e-3)
    assert mean == pytest.approx(y[missing].mean(), abs=5e-3)
    assert variance == pytest.approx(y[missing].var(), rel=5e-3)


def test_quadrature_grows_with_the_steepness_of_the_logistic_curve():
    assert gauss_hermite_size(0.0) == 24
    assert gauss_hermite_size(2.0) == 80
    assert gauss_hermite_size(5.0) == 500
    assert gauss_hermite_size(1e6) == 1000


def test_large_rules_stay_finite():
    """NumPy's hermgauss overflows above about 350 points; the rule used here
    does not, and still integrates 1 and t^2 exactly."""
    from emimpute.models._selection_cell import gauss_hermite

    for n in (400, 1000):
        t, log_w = gauss_hermite(n)
        w = np.exp(log_w)
        assert np.all(np.isfinite(t)) and np.all(np.isfinite(log_w))
        assert w.sum() == pytest.approx(np.sqrt(np.pi), rel=1e-12)
        assert (w * t**2).sum() == pytest.approx(np.sqrt(np.pi) / 2, rel=1e-10)
