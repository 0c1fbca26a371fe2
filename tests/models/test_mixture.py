"""The mixture-of-normals EM kernel with incomplete rows
(emimpute.models._mixture) against independent references: scipy's normal
densities on the observed cells, the normal model's EM, scikit-learn's
GaussianMixture on complete data, and a direct numerical maximisation."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import optimize, stats
from sklearn.mixture import GaussianMixture

from emimpute import EMImputer
from emimpute.models._mixture import (
    MixtureParams,
    fit_mixture_em,
    mixture_conditional,
)


def clustered(n, seed, rate=0.2):
    """Three clusters in 3 columns (weights 0.5, 0.3, 0.2), MCAR holes; at
    least one observed cell per row."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -2.0], [-3.0, 4.0, 2.0]])
    A = rng.normal(size=(3, 3, 3)) * 0.6
    covariances = np.einsum("kij,klj->kil", A, A) + 0.5 * np.eye(3)
    labels = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    factors = np.linalg.cholesky(covariances)[labels]
    X = means[labels] + np.einsum("nij,nj->ni", factors, rng.normal(size=(n, 3)))
    hide = rng.random(X.shape) < rate
    hide[hide.all(axis=1), 0] = False
    X_missing = np.where(hide, np.nan, X)
    truth = MixtureParams(np.array([0.5, 0.3, 0.2]), means, covariances)
    return X_missing, X, labels, truth


def direct_loglik(X, params):
    """sum_i log sum_k pi_k N(x_o; mu_k,o, S_k,oo) with scipy, row by row."""
    total = 0.0
    for x in X:
        o = ~np.isnan(x)
        parts = zip(params.weights, params.means, params.covariances, strict=True)
        dens = [
            w * stats.multivariate_normal(m[o], S[np.ix_(o, o)]).pdf(x[o])
            for w, m, S in parts
        ]
        total += np.log(np.sum(dens))
    return total


def test_the_loglik_is_the_observed_data_mixture_density_and_never_decreases():
    X, _, _, _ = clustered(300, 0)
    fit = fit_mixture_em(X, 3, tol=1e-10, max_iter=300, rng=np.random.default_rng(0))
    np.testing.assert_allclose(fit.loglik, direct_loglik(X, fit.params), rtol=1e-10)
    # Plain EM: every step raises the observed-data log-likelihood (up to
    # rounding of sums of order |loglik|).
    assert np.all(np.diff(fit.loglik_path) > -1e-9 * abs(fit.loglik))


def test_one_component_is_the_normal_models_em(fit_tolerance):
    X, _, _, _ = clustered(500, 1)
    fit = fit_mixture_em(X, 1, tol=1e-8, max_iter=2000, rng=np.random.default_rng(0))
    em = EMImputer(tol=1e-8, max_iter=2000).fit(X)
    scale = np.sqrt(np.diag(em.covariance_))
    tol = 10 * fit_tolerance(1e-8)
    np.testing.assert_allclose((fit.params.means[0] - em.mean_) / scale, 0.0, atol=tol)
    np.testing.assert_allclose(
        fit.params.covariances[0] / np.outer(scale, scale),
        em.covariance_ / np.outer(scale, scale),
        atol=tol,
    )
    np.testing.assert_allclose(fit.loglik, em.loglik_, rtol=1e-8)


def test_complete_data_give_scikit_learns_gaussian_mixture_from_the_same_start():
    _, X, _, _ = clustered(600, 2)
    reference = GaussianMixture(3, reg_covar=0.0, tol=1e-12, max_iter=5000,
                                random_state=0).fit(X)  # fmt: skip
    # Both started from scikit-learn's optimum, both stay (a fixed point of
    # the same EM map); and from a perturbed start both climb to it.
    start = MixtureParams(
        reference.weights_, reference.means_ + 0.05, reference.covariances_
    )
    fit = _fit_from(X, start)
    order = np.argsort(fit.params.means[:, 0])
    ref_order = np.argsort(reference.means_[:, 0])
    np.testing.assert_allclose(
        fit.params.means[order], reference.means_[ref_order], atol=1e-5
    )
    np.testing.assert_allclose(
        fit.params.weights[order], reference.weights_[ref_order], atol=1e-6
    )
    np.testing.assert_allclose(
        fit.params.covariances[order], reference.covariances_[ref_order], atol=1e-5
    )
    np.testing.assert_allclose(fit.loglik / len(X), reference.score(X), rtol=1e-9)


def _fit_from(X, start, covariance_type="full"):
    """EM from given parameters (data units), through the kernel's model."""
    from emimpute.engine._driver import run_em
    from emimpute.models._mixture import (
        MixtureModel,
        standardise,
        to_data_units,
        to_standard_units,
    )

    Z, center, unit = standardise(X)
    model = MixtureModel(
        Z, to_standard_units(start, center, unit), 0.0, covariance_type, unit
    )
    run = run_em(model, max_iter=5000, tol=1e-12, accelerate=False)
    params = to_data_units(run.params, center, unit)
    shift = float(np.sum(np.log(unit) * np.sum(~np.isnan(X), axis=0)))

    return SimpleNamespace(params=params, loglik=run.loglik - shift)


def test_the_fit_is_a_local_maximum_of_the_observed_likelihood():
    X, _, _, _ = clustered(120, 3, rate=0.3)
    X = X[:, :2]
    X = X[~np.isnan(X).all(axis=1)]
    fit = fit_mixture_em(X, 2, tol=1e-12, max_iter=5000, rng=np.random.default_rng(1))

    def unpack(theta):
        w1 = 1.0 / (1.0 + np.exp(-theta[0]))
        means = theta[1:5].reshape(2, 2)
        L = np.zeros((2, 2, 2))
        L[:, [0, 1, 1], [0, 0, 1]] = theta[5:].reshape(2, 3)
        L[:, [0, 1], [0, 1]] = np.exp(L[:, [0, 1], [0, 1]])
        return MixtureParams(
            np.array([w1, 1 - w1]), means, np.einsum("kij,klj->kil", L, L)
        )

    def pack(params):
        L = np.linalg.cholesky(params.covariances)
        diag = np.log(L[:, [0, 1], [0, 1]])
        lower = np.stack([diag[:, 0], L[:, 1, 0], diag[:, 1]], axis=1)
        logit = np.log(params.weights[0] / params.weights[1])
        return np.concatenate([[logit], params.means.ravel(), lower.ravel()])

    theta = pack(fit.params)
    best = optimize.minimize(
        lambda t: -direct_loglik(X, unpack(t)), theta, method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000},
    )  # fmt: skip
    # Started at the EM solution, a direct search gains nothing beyond the
    # EM tolerance's worth.
    assert -best.fun - fit.loglik < 1e-6
    np.testing.assert_allclose(best.x, theta, atol=1e-3)


def test_conditional_means_variances_and_responsibilities_match_scipy():
    X, _, _, truth = clustered(50, 4, rate=0.4)
    out = mixture_conditional(X, truth, want_variance=True)
    for i in range(len(X)):
        x = X[i]
        o, m = ~np.isnan(x), np.isnan(x)
        dens, cond_mean, cond_var = [], [], []
        for w, mu, S in zip(truth.weights, truth.means, truth.covariances, strict=True):
            dens.append(w * stats.multivariate_normal(mu[o], S[np.ix_(o, o)]).pdf(x[o]))
            gain = S[np.ix_(m, o)] @ np.linalg.inv(S[np.ix_(o, o)])
            cond_mean.append(mu[m] + gain @ (x[o] - mu[o]))
            cond_var.append(np.diag(S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]))
        tau = np.array(dens) / np.sum(dens)
        np.testing.assert_allclose(out.responsibilities[i], tau, rtol=1e-9, atol=1e-12)
        mean = tau @ np.array(cond_mean)
        np.testing.assert_allclose(out.completed[i, m], mean, rtol=1e-9, atol=1e-10)
        second = tau @ (np.array(cond_var) + np.array(cond_mean) ** 2)
        np.testing.assert_allclose(
            out.variance[i, m], second - mean**2, rtol=1e-8, atol=1e-10
        )
        np.testing.assert_allclose(out.loglik[i], np.log(np.sum(dens)), rtol=1e-10)


@pytest.mark.parametrize("seed", [0])
def test_draws_pick_components_by_their_responsibilities(seed):
    X, _, _, truth = clustered(3000, 5, rate=0.5)
    rng = np.random.RandomState(seed)
    drawn = mixture_conditional(X, truth, rng=rng).completed
    exact = mixture_conditional(X, truth, want_variance=True)
    missing = np.isnan(X)
    assert np.array_equal(drawn[~missing], X[~missing])
    # The draws' mean and variance over the missing cells of a column match
    # the conditional means and (total) variances summed over the rows.
    for j in range(3):
        rows = missing[:, j]
        mean, var = exact.completed[rows, j], exact.variance[rows, j]
        se = np.sqrt(var.sum()) / rows.sum()
        assert abs(drawn[rows, j].mean() - mean.mean()) < 4 * se
        second = np.mean(drawn[rows, j] ** 2)
        assert abs(second - np.mean(var + mean**2)) < 0.1 * np.mean(var + mean**2)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "tied"])
def test_each_covariance_type_gives_scikit_learns_fit_on_complete_data(
    covariance_type,
):
    _, X, _, truth = clustered(600, 6)
    # One start for both: the true means and weights, the true covariances
    # reduced to the type's structure.
    S = truth.covariances
    structured = {
        "diag": np.einsum("kii,ij->kij", S, np.eye(3)),
        "spherical": np.einsum("k,ij->kij", np.einsum("kii->k", S) / 3, np.eye(3)),
        "tied": np.broadcast_to(S.mean(axis=0), S.shape).copy(),
    }[covariance_type]
    precisions = {
        "diag": 1.0 / np.einsum("kii->ki", structured),
        "spherical": 1.0 / structured[:, 0, 0],
        "tied": np.linalg.inv(structured[0]),
    }[covariance_type]
    reference = GaussianMixture(
        3, covariance_type=covariance_type, reg_covar=0.0, tol=1e-12,
        max_iter=5000, weights_init=truth.weights, means_init=truth.means,
        precisions_init=precisions,
    ).fit(X)  # fmt: skip
    fit = _fit_from(
        X, MixtureParams(truth.weights, truth.means, structured), covariance_type
    )
    np.testing.assert_allclose(fit.params.means, reference.means_, atol=1e-5)
    np.testing.assert_allclose(fit.params.weights, reference.weights_, atol=1e-6)
    expected = {
        "diag": lambda c: np.einsum("ki,ij->kij", c, np.eye(3)),
        "spherical": lambda c: np.einsum("k,ij->kij", c, np.eye(3)),
        "tied": lambda c: np.broadcast_to(c, (3, 3, 3)),
    }[covariance_type](reference.covariances_)
    # (The two stopping rules, scikit-learn's on the change of the mean
    # log-likelihood and ours on the parameters, leave about 1e-5 between
    # two fits of a slowly converging entry.)
    np.testing.assert_allclose(fit.params.covariances, expected, atol=1e-4)
    np.testing.assert_allclose(fit.loglik / len(X), reference.score(X), rtol=1e-9)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_each_type_is_a_maximum_over_its_own_parameters(covariance_type):
    # BFGS on the model's unconstrained vector (the type's free parameters),
    # started at EM's fixed point on incomplete rows, finds nothing higher;
    # and plain EM never decreased the objective on the way there.
    from emimpute.engine._driver import run_em
    from emimpute.models._mixture import MixtureModel, initial_params, standardise

    X, _, _, _ = clustered(200, 7, rate=0.3)
    Z, _, unit = standardise(X)
    start = initial_params(
        Z, 2, "kmeans", np.random.default_rng(0), 0.0, covariance_type, unit
    )
    model = MixtureModel(Z, start, 0.5, covariance_type, unit)
    params, values = start, []
    for _ in range(40):  # the objective (with the prior) along plain EM
        found = model.e_step(params)
        values.append(model.objective(params, found))
        params = model.m_step(params, found)
    assert np.all(np.diff(values) >= -1e-12 * np.abs(values[1:]))
    run = run_em(model, start, max_iter=5000, tol=1e-12, accelerate=False)

    def minus_objective(vector):
        params = model.from_vector(vector, run.params)
        found = model.e_step(params)
        return np.inf if found is None else -model.objective(params, found)

    direct = optimize.minimize(
        minus_objective, model.to_vector(run.params), method="BFGS",
        options={"gtol": 1e-7},
    )  # fmt: skip
    assert -direct.fun - run.value <= 1e-8 * abs(run.value)


def test_the_starts_fill_holes_by_the_normal_models_regression():
    """k-means starts from rows completed by one normal's conditional means:
    closer to the hidden values than the column means, observed cells kept."""
    from emimpute.models._mixture import standardise, start_fill

    X_missing, X, _, _ = clustered(2000, 8, rate=0.3)
    Z, center, unit = standardise(X_missing)
    standard_fill = start_fill(Z)
    hidden = np.isnan(X_missing)
    assert np.array_equal(standard_fill[~hidden], Z[~hidden])
    filled = standard_fill * unit + center
    regression = np.sqrt(np.mean((filled - X)[hidden] ** 2))
    column_means = np.sqrt(np.mean((center - X)[hidden] ** 2))
    assert regression < 0.9 * column_means  # 0.84 here


def test_the_starts_fall_back_to_column_means_when_the_normal_fit_fails(
    monkeypatch,
):
    from emimpute.engine._model import SingularCovarianceError
    from emimpute.models import _mixture

    def fail(*args, **kwargs):
        raise SingularCovarianceError("singular")

    monkeypatch.setattr(_mixture, "fit_normal_em", fail)
    Z = np.array([[0.5, np.nan], [-0.5, 1.0], [np.nan, -1.0]])
    assert np.array_equal(_mixture.start_fill(Z), np.nan_to_num(Z))


def test_a_column_with_nothing_observed_in_a_block_starts_at_the_centre():
    """The Dask fit starts from its first block, where a column may have no
    observed value: that column keeps 0 (the centre of the standardised
    scale) and the others get their regression fill."""
    from emimpute.models._mixture import start_fill

    rng = np.random.default_rng(9)
    Z = rng.multivariate_normal([0, 0, 0], [[1, 0.8, 0], [0.8, 1, 0], [0, 0, 1]], 200)
    Z[rng.random(200) < 0.3, 1] = np.nan
    Z[:, 2] = np.nan
    filled = start_fill(Z)
    assert np.isfinite(filled).all()
    assert np.array_equal(filled[:, 2], np.zeros(200))
    hidden = np.isnan(Z[:, 1])
    # The fill follows the first column (correlation 0.8), not a constant.
    assert np.corrcoef(filled[hidden, 1], Z[hidden, 0])[0, 1] > 0.99
