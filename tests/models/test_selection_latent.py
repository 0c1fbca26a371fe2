"""The probit selection model as a latent normal, against independent
references: numerical integration of the posterior of a missing MNAR cell,
Newton's probit MLE, and the per-row E-step for the pattern-grouped one."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, special, stats

from emimpute.models import _selection as selection
from emimpute.models import _selection_impute as selection_impute
from emimpute.models import _selection_nodes as selection_nodes
from emimpute.models._binary_glm import fit_binary_glm
from emimpute.models._selection_latent import (
    LatentSums,
    add_missing_sums,
    add_observed_sums,
    fit_latent_probit,
    latent_posterior,
    mills_ratio,
)


def posterior_by_quadrature(c, C, index, psi, j=0):
    """Moments of x_m ~ N(c, C) and u = index + psi x_j + e given u > 0, by
    integrating over x_j (scipy.integrate.quad): f(y | missing) is
    N(y; c_j, C_jj) Phi(index + psi y) / P, and u given y is N(eta, 1)
    truncated to u > 0, E[u | y] = eta + phi/Phi(eta), E[u^2 | y] =
    1 + eta E[u | y], eta = index + psi y."""
    sd = np.sqrt(C[j, j])

    def moment(g):
        def integrand(y):
            eta = index + psi * y
            return stats.norm.pdf(y, c[j], sd) * special.ndtr(eta) * g(y, eta)

        lo, hi = c[j] - 14 * sd, c[j] + 14 * sd
        return integrate.quad(integrand, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0]

    prob = moment(lambda y, eta: 1.0)
    mean_y = moment(lambda y, eta: y) / prob
    var_y = moment(lambda y, eta: (y - mean_y) ** 2) / prob
    latent = moment(lambda y, eta: eta + mills_ratio(eta)) / prob
    cross = moment(lambda y, eta: y * (eta + mills_ratio(eta))) / prob
    square = moment(lambda y, eta: 1 + eta * (eta + mills_ratio(eta))) / prob
    # The other cells are normal given y: regression on y.
    slope = C[:, j] / C[j, j]
    mean = c + slope * (mean_y - c[j])
    cov = C - np.outer(slope, C[j]) + np.outer(slope, slope) * var_y
    return np.log(prob), mean, cov, (mean_y, var_y, latent, cross, square)


@pytest.mark.parametrize(
    "index, psi",
    [(0.3, 1.2), (-2.5, 0.4), (1.5, -3.0), (-6.0, 2.0), (0.0, 0.0)],
)
def test_closed_form_posterior_equals_numerical_integration(index, psi):
    rng = np.random.default_rng(int(10 * abs(index) + abs(psi)))
    A = rng.normal(size=(3, 3))
    C = A @ A.T + 0.3 * np.eye(3)
    c = rng.normal(size=3)
    post = latent_posterior(c[None], C[None], np.array([[index]]), np.array([[psi]]))
    log_prob, mean, cov, cell = posterior_by_quadrature(c, C, index, psi)
    assert post.log_prob[0] == pytest.approx(log_prob, abs=1e-10)
    assert_allclose(post.mean[0], mean, atol=1e-9)
    assert_allclose(post.cov[0], cov, atol=1e-9)
    got = post.cells
    for value, reference in zip(
        (got.mean, got.variance, got.latent, got.cross, got.square), cell, strict=True
    ):
        assert value[0, 0] == pytest.approx(reference, abs=1e-8)


def test_least_squares_m_step_with_psi_held_is_the_regression():
    """Held psi: the regression of u - psi x on (1, x_c), from the sums."""
    rng = np.random.default_rng(1)
    design = np.column_stack([np.ones(50), rng.normal(size=(50, 2))])
    u = rng.normal(size=50)
    sums = LatentSums(design.T @ design, design.T @ u, np.array(u @ u))
    intercept, psi, gamma = fit_latent_probit(sums, 0.7, held=True)
    reference = np.linalg.lstsq(design[:, [0, 2]], u - 0.7 * design[:, 1], rcond=None)
    assert psi == 0.7
    assert_allclose(np.r_[intercept, gamma], reference[0], atol=1e-12)


def test_parameter_expanded_em_converges_to_newtons_probit_mle():
    """With nothing missing but the latent u, EM on the latent normal (E-step
    add_observed_sums / add_missing_sums, PX M-step) is EM for a probit
    regression: its fixed point is the probit MLE, found independently by
    Newton's method (fit_binary_glm)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=400)
    covariate = rng.normal(size=400)
    missing = rng.random(400) < special.ndtr(-0.3 + 0.9 * x + 0.4 * covariate)
    design = np.column_stack([np.ones(400), x, covariate])
    newton = fit_binary_glm(design, missing, link="probit", tol=1e-12)
    coef = np.zeros(3)
    seen, gone = design[~missing], design[missing]
    for _ in range(3000):
        sums = LatentSums.zeros(1)
        add_observed_sums(sums, seen, seen.T @ seen, seen @ coef)
        # Missing rows with x known: u ~ N(index, 1) truncated to u > 0.
        index = gone @ coef
        nu = index + mills_ratio(index)
        cells = selection.CellMoments(
            mean=gone[:, 1:2], variance=np.zeros((len(gone), 1)),
            latent=nu[:, None], cross=(gone[:, 1] * nu)[:, None],
            square=(1 + index * nu)[:, None],
        )  # fmt: skip
        add_missing_sums(sums, gone[:, 2:], cells, 0, np.arange(len(gone)))
        new = np.r_[fit_latent_probit(sums, 0.0, held=False)].ravel()
        if np.max(np.abs(new - coef)) < 1e-13:
            break
        coef = new
    assert_allclose(coef, newton.coef, atol=1e-9)


def two_mnar_columns(seed, n, p=5):
    """Data with x0 and x1 MNAR (probit), x2 MCAR; its model and parameters
    at the MAR start with psi set to (0.8, -0.5)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(p, p))
    X = rng.multivariate_normal(np.zeros(p), A @ A.T + np.eye(p), size=n)
    X[rng.random(n) < special.ndtr(X[:, 0]), 0] = np.nan
    X[rng.random(n) < special.ndtr(-0.5 + 0.7 * X[:, 1]), 1] = np.nan
    X[:, 2][rng.random(n) < 0.2] = np.nan
    model = selection.SelectionModel.from_data(X, [0, 1])
    params = model.start()
    coef = selection.replace(params.coef, psi=np.array([0.8, -0.5]))
    return X, model, selection.replace(params, coef=coef)


def test_pattern_grouped_e_step_equals_the_row_by_row_one():
    """An identity on fixed inputs: the E-step on rows grouped by pattern
    (the normal kernel plus per-pattern corrections) equals the per-row
    closed form (latent_posterior), summed."""
    X, model, params = two_mnar_columns(seed=3, n=2000)
    grouped = model.e_step(params)
    Z, mask = model.source.rows.Z, model.source.rows.mask
    selected = mask[:, model.mnar].any(axis=1)
    by_row = selection._Rows(
        Z, mask,
        selection.lay_out_patterns(
            Z, mask, np.flatnonzero(~selected), model.mnar, model.covariates
        ),
        selection._groups(mask, model.mnar, only=selected),
        model.source.rows.observed,
    )  # fmt: skip
    reference = selection._statistics(by_row, params, model.spec)
    assert grouped.loglik == pytest.approx(reference.loglik, rel=1e-13)
    assert_allclose(grouped.row_sum, reference.row_sum, rtol=0, atol=1e-10)
    assert_allclose(grouped.cross, reference.cross, rtol=1e-13, atol=1e-10)
    for a, b in zip(grouped.selection, reference.selection, strict=True):
        assert_allclose(a.dd, b.dd, rtol=1e-13, atol=1e-10)
        assert_allclose(a.du, b.du, rtol=1e-13, atol=1e-10)
        assert float(a.uu) == pytest.approx(float(b.uu), rel=1e-13)


def test_two_mnar_cells_in_closed_form_equal_the_product_grid(monkeypatch):
    """Rows with two missing MNAR cells: the bivariate truncated-normal
    moments (Genz's orthant probability, Tallis' moments) against the
    24 x 24 Gauss-Hermite product grid of the node path (exact to about
    1e-10 at these slopes), for the whole E-step."""
    X, model, params = two_mnar_columns(seed=4, n=3000)
    assert (np.isnan(X[:, :2]).sum(axis=1) == 2).sum() > 300
    closed = model.e_step(params)
    monkeypatch.setattr(selection, "ORTHANT_CELLS", 1)
    grid = selection.SelectionModel.from_data(X, [0, 1]).e_step(params)
    assert closed.loglik == pytest.approx(grid.loglik, abs=1e-8)
    assert_allclose(closed.row_sum, grid.row_sum, atol=1e-8)
    assert_allclose(closed.cross, grid.cross, atol=1e-8)
    for a, b in zip(closed.selection, grid.selection, strict=True):
        assert_allclose(a.dd, b.dd, atol=1e-8)
        assert_allclose(a.du, b.du, atol=1e-8)
        assert float(a.uu) == pytest.approx(float(b.uu), abs=1e-8)


def test_exact_probit_draws_have_the_closed_form_moments():
    """Draws of a missing MNAR cell (u from its truncated normal, then the
    cell given u) against Heckman's closed-form conditional mean and
    variance of the E-step: the standardised errors of 400 draws per row
    are N(0, 1) over the rows, and the variances agree."""
    rng = np.random.default_rng(0)
    X = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=1000)
    X[rng.random(1000) < special.ndtr(-0.3 + 1.5 * X[:, 0]), 0] = np.nan
    result = selection.fit_selection_em(X, [0])
    moments = selection_impute.selection_moments(X, result, want_variance=True)
    missing = np.isnan(X[:, 0])
    state = np.random.RandomState(1)
    draw = selection_impute.selection_moments
    draws = np.array(
        [draw(X, result, rng=state).completed[missing, 0] for _ in range(400)]
    )
    mean, variance = moments.completed[missing, 0], moments.variance[missing, 0]
    z = (draws.mean(axis=0) - mean) / np.sqrt(variance / 400)
    assert abs(z.mean()) < 4 / np.sqrt(len(z))  # rows independent
    assert z.std() == pytest.approx(1.0, abs=0.1)
    # The sampling SD of a variance from 400 normal draws is about 7%.
    assert np.median(draws.var(axis=0) / variance) == pytest.approx(1.0, abs=0.03)


def test_three_mnar_cells_in_closed_form_agree_with_many_sobol_points(monkeypatch):
    """Rows with three missing MNAR cells: the trivariate orthant moments
    against the node path with 32,768 scrambled Sobol points (an
    independent integration whose own error here is about 1e-3 on these
    sums; a wrong term in the closed form would be off by far more)."""
    rng = np.random.default_rng(5)
    n, p = 1500, 4
    A = rng.normal(size=(p, p))
    X = rng.multivariate_normal(np.zeros(p), A @ A.T + np.eye(p), size=n)
    for j in range(3):
        hidden = special.ndtr(-0.2 + 0.8 * X[:, j] / X[:, j].std())
        X[rng.random(n) < hidden, j] = np.nan
    assert (np.isnan(X[:, :3]).sum(axis=1) == 3).sum() > 100
    model = selection.SelectionModel.from_data(X, [0, 1, 2], random_state=0)
    params = model.start()
    coef = selection.replace(params.coef, psi=np.array([0.8, -0.5, 0.6]))
    params = selection.replace(params, coef=coef)
    closed = model.e_step(params)
    monkeypatch.setattr(selection, "ORTHANT_CELLS", 2)
    monkeypatch.setattr(selection_nodes, "SOBOL_POINTS", 2**15)
    sobol = selection.SelectionModel.from_data(X, [0, 1, 2], random_state=1)
    nodes = sobol.e_step(params)
    assert closed.loglik == pytest.approx(nodes.loglik, abs=5e-3)
    assert_allclose(closed.row_sum, nodes.row_sum, atol=0.05)
    assert_allclose(closed.cross, nodes.cross, atol=0.05)
    for a, b in zip(closed.selection, nodes.selection, strict=True):
        assert_allclose(a.du, b.du, atol=0.05)
        assert float(a.uu) == pytest.approx(float(b.uu), abs=0.05)
