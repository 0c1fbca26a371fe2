"""EM for the multivariate normal against independent references.

References used here: direct numerical maximisation of the observed-data
log-likelihood (computed pattern by pattern with scipy.stats), closed forms
(complete data, affine equivariance), the monotonicity of EM (Dempster, Laird
& Rubin 1977), and simulation truth.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, stats

import emimpute.gaussian._batched_cholesky
import emimpute.gaussian._conditional
from emimpute.datasets import load_blood_sugar
from emimpute.engine._model import SingularCovarianceError
from emimpute.models._normal import fit_normal_em

# ---------------------------------------------------------------------------
# Independent reference: observed-data likelihood and its direct maximisation


def observed_loglik(X, mean, cov):
    """Sum over rows of log N(x_o; mu_o, S_oo); all-missing rows add 0."""
    mask = np.isnan(X)
    patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    total = 0.0
    for j, pattern in enumerate(patterns):
        o = ~pattern
        if not o.any():
            continue
        rows = X[inverse == j][:, o]
        logpdf = stats.multivariate_normal.logpdf(rows, mean[o], cov[np.ix_(o, o)])
        total += np.sum(logpdf)
    return float(total)


def ridge_log_prior(X, cov, ridge):
    """Inverse-Wishart term -ridge/2 (log det S + tr(D S^-1)), D = diag(nanvar)."""
    D = np.diag(np.nanvar(X, axis=0))
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * ridge * (logdet + np.trace(np.linalg.solve(cov, D)))


def maximise_directly(X, ridge=0.0):
    """Maximise the (penalised) observed log-likelihood with BFGS.

    Parameters: the mean and the log-Cholesky factor of the covariance, both
    on the scale of the observed columns (for conditioning only).  The start
    (observed means, inflated observed variances, no correlation) is not an
    EM iterate.
    """
    p = X.shape[1]
    center = np.nanmean(X, axis=0)
    scale = np.nanstd(X, axis=0)
    rows, cols = np.tril_indices(p)
    diag = rows == cols

    def unpack(theta):
        values = theta[p:].copy()
        values[diag] = np.exp(values[diag])
        factor = np.zeros((p, p))
        factor[rows, cols] = values
        return center + scale * theta[:p], factor @ factor.T * np.outer(scale, scale)

    def negative_objective(theta):
        mean, cov = unpack(theta)
        value = observed_loglik(X, mean, cov)
        if ridge:
            value += ridge_log_prior(X, cov, ridge)
        return -value

    theta0 = np.zeros(p + len(rows))
    theta0[p:][diag] = np.log(1.5)
    result = optimize.minimize(
        negative_objective,
        theta0,
        method="BFGS",
        options={"gtol": 1e-9, "maxiter": 20_000},
    )
    mean, cov = unpack(result.x)
    return mean, cov, -result.fun


def random_cov(p, rng):
    A = rng.standard_normal((p, p))
    scales = np.exp(rng.uniform(-1.0, 1.0, size=p))
    return (A @ A.T + 0.5 * np.eye(p)) * np.outer(scales, scales)


def mcar_data(n, p, rate, seed, all_missing_row=False):
    """Correlated normal data with cells missing completely at random."""
    rng = np.random.default_rng(seed)
    cov = random_cov(p, rng)
    mean = rng.normal(scale=3.0, size=p)
    X = rng.multivariate_normal(mean, cov, size=n)
    X[rng.random((n, p)) < rate] = np.nan
    if all_missing_row:
        X[0] = np.nan
    assert not np.isnan(X).all(axis=0).any()
    return X


def assert_same_estimates(X, mean_a, cov_a, mean_b, cov_b, rtol):
    """Compare with an independent reference (direct maximisation) to its own
    accuracy ``rtol``, on the scale of the observed columns (covariances can
    be ~0).  Two fits of this library are compared with ``assert_same_fit``
    (tests/conftest.py), whose tolerance follows from the stopping rule."""
    scale = np.nanstd(X, axis=0)
    assert_allclose(mean_a / scale, mean_b / scale, rtol=rtol, atol=rtol)
    outer = np.outer(scale, scale)
    assert_allclose(cov_a / outer, cov_b / outer, rtol=rtol, atol=rtol)


def blood_sugar():
    return load_blood_sugar().to_numpy(dtype=np.float64)


SMALL_DATA = {
    "n15-p2": lambda: mcar_data(15, 2, 0.25, seed=0),
    "n25-p3": lambda: mcar_data(25, 3, 0.25, seed=1, all_missing_row=True),
    "n40-p4": lambda: mcar_data(40, 4, 0.25, seed=2),
    "n30-p4": lambda: mcar_data(30, 4, 0.2, seed=3),
    "n20-p3-monotone": lambda: monotone_data(),
    "blood-sugar": blood_sugar,
}


def monotone_data():
    X = mcar_data(20, 3, 0.0, seed=4)
    X[12:, 2] = np.nan
    X[16:, 1] = np.nan
    return X


# ---------------------------------------------------------------------------
# (1) The EM estimate is the maximum likelihood estimate


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("accelerate", [True, False])
@pytest.mark.parametrize("name", SMALL_DATA)
def test_em_finds_the_maximum_likelihood_estimate(name, accelerate):
    X = SMALL_DATA[name]()
    result = fit_normal_em(X, tol=1e-10, max_iter=5000, accelerate=accelerate)
    assert result.converged
    mean, cov, best = maximise_directly(X)
    assert result.loglik >= best - 1e-8
    assert_same_estimates(X, result.mean, result.covariance, mean, cov, rtol=1e-4)
    # EMResult.loglik is the observed-data log-likelihood at the estimate: an
    # identity at fixed parameters, so near machine precision.
    expected = observed_loglik(X, result.mean, result.covariance)
    assert result.loglik == pytest.approx(expected, rel=1e-10, abs=1e-10)
    assert result.loglik_path[-1] == pytest.approx(result.loglik, rel=1e-12)
    assert_allclose(result.covariance, result.covariance.T)


@pytest.mark.usefixtures("kernel")
def test_blood_sugar_uses_the_incomplete_rows():
    # The MLE is neither the complete-case nor the available-case estimate:
    # the 9 incomplete rows inform both means through the correlation.
    X = blood_sugar()
    result = fit_normal_em(X, tol=1e-10, max_iter=5000)
    complete = X[~np.isnan(X).any(axis=1)]
    assert not np.allclose(result.mean, complete.mean(axis=0), rtol=1e-4)
    assert not np.allclose(result.mean, np.nanmean(X, axis=0), rtol=1e-4)


# ---------------------------------------------------------------------------
# (2), (3) Monotone likelihood path; SQUAREM reaches the same optimum faster


def assert_non_decreasing(path, slack=1e-10):
    """Each step may lose at most ``slack`` relative: the rounding of a sum of
    n * p log-density terms is about n * p * eps (< 1e-12 here) relative."""
    path = np.asarray(path)
    drops = path[:-1] - path[1:]
    assert np.all(drops <= slack * np.abs(path[:-1])), drops.max()


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.45, 0.6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plain_em_loglik_never_decreases(rate, seed):
    X = mcar_data(150, 4, rate, seed=10 + seed)
    result = fit_normal_em(X, tol=1e-12, max_iter=300, accelerate=False)
    assert len(result.loglik_path) == result.n_iter
    assert result.n_em_steps == result.n_iter
    assert_non_decreasing(result.loglik_path)


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("rate", [0.3, 0.5, 0.6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accelerated_em_never_decreases_and_reaches_the_same_optimum(
    rate, seed, assert_same_fit, loglik_tolerance
):
    X = mcar_data(200, 4, rate, seed=20 + seed)
    plain = fit_normal_em(X, tol=1e-10, max_iter=5000, accelerate=False)
    fast = fit_normal_em(X, tol=1e-10, max_iter=5000, accelerate=True)
    assert plain.converged and fast.converged
    assert_non_decreasing(fast.loglik_path)
    # With 60% of the cells missing, plain EM's steps shrink by up to 0.96 per
    # iteration here (the ratio of its last steps): the rate for the rule.
    rate = 0.99
    assert fast.loglik == pytest.approx(
        plain.loglik, rel=loglik_tolerance(1e-10, rate=rate)
    )
    assert_same_fit(
        fast.mean,
        fast.covariance,
        plain.mean,
        plain.covariance,
        tol=1e-10,
        scale=np.nanstd(X, axis=0),
        rate=rate,
    )
    if rate == 0.5:
        assert fast.n_em_steps < plain.n_em_steps


# ---------------------------------------------------------------------------
# (4) Complete data; (5) affine equivariance


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("accelerate", [True, False])
def test_complete_data_gives_sample_moments(accelerate):
    X = mcar_data(50, 4, 0.0, seed=5)
    result = fit_normal_em(X, accelerate=accelerate)
    assert result.converged
    assert result.n_iter <= 2
    # One M-step on complete data gives the sample moments: an identity on
    # fixed inputs, up to summation order, compared on the standardised scale.
    sd = X.std(axis=0)
    assert_allclose(result.mean / sd, X.mean(axis=0) / sd, rtol=0, atol=1e-12)
    outer = np.outer(sd, sd)
    sample_cov = np.cov(X.T, bias=True)
    assert_allclose(result.covariance / outer, sample_cov / outer, rtol=0, atol=1e-12)
    expected = stats.multivariate_normal.logpdf(
        X, X.mean(axis=0), np.cov(X.T, bias=True)
    ).sum()
    assert result.loglik == pytest.approx(expected, rel=1e-12)


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("accelerate", [True, False])
def test_affine_equivariance(accelerate, assert_same_fit, loglik_tolerance):
    X = mcar_data(60, 3, 0.3, seed=6)
    a = np.array([1000.0, -0.01, 3.0])
    b = np.array([-5e3, 2.0, 7.0])
    base = fit_normal_em(X, tol=1e-10, max_iter=5000, accelerate=accelerate)
    moved = fit_normal_em(X * a + b, tol=1e-10, max_iter=5000, accelerate=accelerate)
    # Both fits run on the standardised scale, where the problems are the
    # same up to rounding: two fits, compared there.
    assert_same_fit(
        (moved.mean - b) / a,
        moved.covariance / np.outer(a, a),
        base.mean,
        base.covariance,
        tol=1e-10,
        scale=np.nanstd(X, axis=0),
    )
    # The Jacobian of the map: log-likelihoods differ by -n_obs(j) log|a_j|.
    n_observed = (~np.isnan(X)).sum(axis=0)
    shift = -np.sum(n_observed * np.log(np.abs(a)))
    assert moved.loglik == pytest.approx(
        base.loglik + shift, rel=loglik_tolerance(1e-10)
    )


# ---------------------------------------------------------------------------
# (6) Ridge prior


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize(
    ("name", "ridge"),
    [("n15-p2", 2.0), ("n25-p3", 1.0), ("n40-p4", 0.5), ("blood-sugar", 3.0)],
)
def test_ridge_estimate_maximises_the_penalised_likelihood(name, ridge):
    X = SMALL_DATA[name]()
    result = fit_normal_em(X, ridge=ridge, tol=1e-10, max_iter=5000)
    assert result.converged
    mean, cov, best = maximise_directly(X, ridge=ridge)
    em_value = observed_loglik(X, result.mean, result.covariance)
    em_value += ridge_log_prior(X, result.covariance, ridge)
    assert em_value >= best - 1e-8
    assert_same_estimates(X, result.mean, result.covariance, mean, cov, rtol=1e-4)
    # loglik stays the likelihood alone, without the prior.
    expected = observed_loglik(X, result.mean, result.covariance)
    assert result.loglik == pytest.approx(expected, rel=1e-10)


@pytest.mark.usefixtures("kernel")
def test_ridge_with_more_columns_than_rows():
    rng = np.random.default_rng(7)
    n, p = 8, 12
    X = rng.standard_normal((n, 3)) @ rng.standard_normal((3, p))
    X += 0.1 * rng.standard_normal((n, p))
    X[rng.random((n, p)) < 0.2] = np.nan
    assert not np.isnan(X).all(axis=0).any()
    result = fit_normal_em(X, ridge=1.0, max_iter=2000)
    assert np.all(np.isfinite(result.mean))
    assert np.all(np.isfinite(result.covariance))
    assert np.linalg.eigvalsh(result.covariance).min() > 0
    assert np.isfinite(result.loglik)


def collinear_data():
    rng = np.random.default_rng(8)
    Z = rng.standard_normal((40, 3))
    X = np.column_stack([Z, Z[:, 0] + 2.0 * Z[:, 1]])
    X[rng.random(X.shape) < 0.2] = np.nan
    return X


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("accelerate", [True, False])
def test_ridge_handles_a_collinear_column(accelerate):
    X = collinear_data()
    result = fit_normal_em(X, ridge=1.0, max_iter=2000, accelerate=accelerate)
    assert np.all(np.isfinite(result.covariance))
    assert np.linalg.eigvalsh(result.covariance).min() > 0
    with pytest.raises(SingularCovarianceError):
        fit_normal_em(X, ridge=0.0, max_iter=2000, accelerate=accelerate)


# ---------------------------------------------------------------------------
# (7) Simulation truth


@pytest.mark.usefixtures("kernel")
def test_estimates_are_close_to_the_truth_in_a_large_sample():
    rng = np.random.default_rng(9)
    n, p, rate = 20_000, 5, 0.3
    cov = random_cov(p, rng)
    mean = rng.normal(scale=3.0, size=p)
    X = rng.multivariate_normal(mean, cov, size=n)
    X[rng.random((n, p)) < rate] = np.nan
    result = fit_normal_em(X)
    assert result.converged
    # Standard errors with complete data, inflated as if only the 49% of rows
    # observing both cells of a pair counted (conservative under MCAR).
    n_eff = (1 - rate) ** 2 * n
    se_mean = np.sqrt(np.diag(cov) / n_eff)
    assert np.all(np.abs(result.mean - mean) < 4 * se_mean)
    var = np.diag(cov)
    se_cov = np.sqrt((np.outer(var, var) + cov**2) / n_eff)
    assert np.all(np.abs(result.covariance - cov) < 4 * se_cov)


# ---------------------------------------------------------------------------
# (8) callback; chunking does not change the answer


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("accelerate", [True, False])
def test_callback_is_called_once_per_iteration(accelerate):
    X = mcar_data(80, 3, 0.3, seed=11)
    calls = []
    result = fit_normal_em(
        X,
        accelerate=accelerate,
        callback=lambda iteration, loglik, change: calls.append(
            (iteration, loglik, change)
        ),
    )
    iterations = [call[0] for call in calls]
    assert iterations == list(range(1, result.n_iter + 1))
    assert_allclose([call[1] for call in calls], result.loglik_path)
    changes = np.array([call[2] for call in calls])
    assert np.all(np.isfinite(changes)) and np.all(changes >= 0)


@pytest.mark.usefixtures("kernel")
def test_max_iter_stops_without_convergence():
    X = mcar_data(80, 3, 0.5, seed=12)
    result = fit_normal_em(X, max_iter=2, tol=1e-14, accelerate=False)
    assert result.n_iter == 2
    assert not result.converged
    assert len(result.loglik_path) == 2


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("chunk_size", [1, 3, 7])
def test_chunk_size_does_not_change_the_estimate(
    chunk_size, assert_same_fit, loglik_tolerance
):
    X = mcar_data(60, 4, 0.4, seed=13, all_missing_row=True)
    default = fit_normal_em(X, tol=1e-10, max_iter=5000)
    chunked = fit_normal_em(X, tol=1e-10, max_iter=5000, chunk_size=chunk_size)
    assert_same_fit(
        chunked.mean,
        chunked.covariance,
        default.mean,
        default.covariance,
        tol=1e-10,
        scale=np.nanstd(X, axis=0),
    )
    assert chunked.loglik == pytest.approx(default.loglik, rel=loglik_tolerance(1e-10))


@pytest.mark.usefixtures("kernel")
def test_float32_input_gives_the_float64_answer(assert_same_fit):
    X = mcar_data(60, 3, 0.3, seed=14).astype(np.float32)
    single = fit_normal_em(X, tol=1e-10, max_iter=5000)
    double = fit_normal_em(X.astype(np.float64), tol=1e-10, max_iter=5000)
    assert single.mean.dtype == np.float64
    assert_same_fit(
        single.mean,
        single.covariance,
        double.mean,
        double.covariance,
        tol=1e-10,
        scale=np.nanstd(X.astype(np.float64), axis=0),
    )


@pytest.mark.usefixtures("kernel")
@pytest.mark.parametrize("offset", [1e4, 1e6, 1e8])
def test_large_column_means_cause_no_cancellation(offset, fit_tolerance):
    """Sufficient statistics are taken about the observed means: shifting the
    data by 1e8 (timestamps, amounts in cents) changes only the mean."""
    rng = np.random.default_rng(21)
    cov = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), cov, size=500)
    X[rng.random(X.shape) < 0.3] = np.nan
    base = fit_normal_em(X, tol=1e-10)
    shifted = fit_normal_em(X + offset, tol=1e-10)
    assert shifted.converged
    # Two fits, of data that differ by the rounding of X + offset (half an
    # ulp of the offset per cell; a few of them in the moments, columns of SD
    # about 1): without cancellation that is all that separates them, where a
    # raw-moment computation would lose (offset / sd)**2 * eps.
    atol = fit_tolerance(1e-10) + 4 * offset * np.finfo(np.float64).eps
    assert_allclose(shifted.mean - offset, base.mean, rtol=0, atol=atol)
    assert_allclose(shifted.covariance, base.covariance, rtol=0, atol=atol)


def test_both_factorisation_paths_give_the_same_fit(
    monkeypatch, numpy_kernel, assert_same_fit, loglik_tolerance
):
    """Large groups of rows use vectorised loops, small ones stacked LAPACK."""
    rng = np.random.default_rng(22)
    X = rng.multivariate_normal(np.zeros(5), np.eye(5) + 0.5, size=400)
    X[rng.random(X.shape) < 0.4] = np.nan
    fits = []
    for threshold in (0, 10**9):
        for module in (
            emimpute.gaussian._batched_cholesky,
            emimpute.gaussian._conditional,
        ):
            monkeypatch.setattr(module, "SMALL_BATCH", threshold)
        fits.append(fit_normal_em(X, tol=1e-10))
    # Two fits that differ in summation order (which also differs between
    # CPUs, BLAS kernels and thread counts): the stopping rule's tolerance.
    (mean_a, cov_a), (mean_b, cov_b) = ((f.mean, f.covariance) for f in fits)
    sd = np.nanstd(X, axis=0)
    assert_same_fit(mean_a, cov_a, mean_b, cov_b, tol=1e-10, scale=sd)
    assert fits[0].loglik == pytest.approx(fits[1].loglik, rel=loglik_tolerance(1e-10))


def test_sharing_factorisations_between_rows_gives_the_same_fit(
    monkeypatch, numpy_kernel, assert_same_fit, loglik_tolerance
):
    """Rows with the same pattern may share one factorisation of K_mm."""
    rng = np.random.default_rng(23)
    X = rng.multivariate_normal(np.zeros(6), np.eye(6) + 0.5, size=600)
    patterns = rng.random((5, 6)) < 0.4
    X[patterns[rng.integers(0, 5, size=600)]] = np.nan
    fits = []
    for ratio in (0.0, 1.0):
        monkeypatch.setattr(
            emimpute.gaussian._conditional, "SHARED_PATTERN_RATIO", ratio
        )
        fits.append(fit_normal_em(X, tol=1e-10))
    # Two fits that differ in summation order (which also differs between
    # CPUs, BLAS kernels and thread counts): the stopping rule's tolerance.
    (mean_a, cov_a), (mean_b, cov_b) = ((f.mean, f.covariance) for f in fits)
    sd = np.nanstd(X, axis=0)
    assert_same_fit(mean_a, cov_a, mean_b, cov_b, tol=1e-10, scale=sd)
    assert fits[0].loglik == pytest.approx(fits[1].loglik, rel=loglik_tolerance(1e-10))
