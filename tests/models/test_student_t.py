"""EM for the multivariate t against independent references.

References: the observed-data t log-likelihood from ``scipy.stats.multivariate_t``
on each row's observed coordinates (marginals of a t are t with the same df)
and its direct maximisation with ``scipy.optimize`` over the mean, the
log-Cholesky factor of the scale matrix (and log df); the monotonicity of EM
and ECME (Liu & Rubin 1995); the normal model as df grows; sums over row
blocks; simulation of the conditional t.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, stats

from emimpute.engine._model import sum_statistics
from emimpute.engine._squarem import from_log_cholesky, log_cholesky
from emimpute.gaussian._conditional import precision_and_logdet
from emimpute.models._normal import fit_normal_em
from emimpute.models._student_t import (
    DF_BOUNDS,
    StudentTModel,
    StudentTParams,
    StudentTStatistics,
    block_distances,
    block_statistics,
    conditional_t,
    fit_student_t_em,
    prepare_t_problem,
    profile_df,
    row_weights,
)


def contaminated(n=40, p=3, seed=0, rate=0.2, shift=8.0, fraction=0.1):
    """Correlated normal rows, some shifted by ``shift`` SD in one column,
    then cells hidden MCAR (no row entirely missing)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(p, p))
    cov = A @ A.T + np.eye(p)
    X = rng.multivariate_normal(rng.normal(size=p), cov, size=n)
    bad = rng.random(n) < fraction
    X[bad, 0] += shift * np.sqrt(cov[0, 0])
    hide = rng.random(X.shape) < rate
    hide[hide.all(axis=1), 0] = False
    X[hide] = np.nan
    return X


def reference_loglik(X, mean, scale, df):
    """Sum over rows of log t(x_o; mu_o, S_oo, df) with scipy, pattern by pattern."""
    mask = np.isnan(X)
    total = 0.0
    for pattern in np.unique(mask, axis=0):
        o = ~pattern
        if not o.any():
            continue
        rows = X[(mask == pattern).all(axis=1)][:, o]
        dist = stats.multivariate_t(mean[o], scale[np.ix_(o, o)], df=df)
        total += np.sum(np.atleast_1d(dist.logpdf(rows)))
    return float(total)


def direct_maximum(X, df=None):
    """Maximise the observed-data t likelihood with BFGS over (mean,
    log-Cholesky of the scale[, log df]), from the observed moments."""
    p = X.shape[1]
    n_chol = p * (p + 1) // 2
    start = np.concatenate(
        [np.nanmean(X, axis=0), log_cholesky(np.diag(np.nanvar(X, axis=0)))]
    )
    if df is None:
        start = np.append(start, np.log(5.0))

    def unpack(theta):
        mean, scale = theta[:p], from_log_cholesky(theta[p : p + n_chol], p)
        return mean, scale, (np.exp(theta[-1]) if df is None else df)

    def negative(theta):
        return -reference_loglik(X, *unpack(theta))

    result = optimize.minimize(negative, start, method="BFGS", options={"gtol": 1e-9})
    result = optimize.minimize(
        negative, result.x, method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 40000, "maxfev": 40000},
    )  # fmt: skip
    return (*unpack(result.x), -result.fun)


@pytest.mark.parametrize("df", [4.0, "estimate"])
def test_fit_equals_direct_maximisation(df, kernel, fit_tolerance, loglik_tolerance):
    X = contaminated()
    tol = 1e-8
    fit = fit_student_t_em(X, df=df, tol=tol)
    assert fit.converged
    mean, scale, ref_df, ref_loglik = direct_maximum(
        X, None if df == "estimate" else df
    )
    # The reported log-likelihood is the t density at the reported estimates.
    assert_allclose(
        fit.loglik, reference_loglik(X, fit.mean, fit.scale, fit.df), rtol=1e-10
    )
    assert fit.loglik >= ref_loglik - abs(ref_loglik) * loglik_tolerance(tol)
    sd = np.sqrt(np.diag(scale))
    # Both are maxima of the same function to their own accuracy: EM's from
    # the tolerance rule, BFGS then Nelder-Mead's (xatol 1e-10) far below it.
    atol = fit_tolerance(tol)
    assert_allclose(fit.mean / sd, mean / sd, atol=atol, rtol=0)
    assert_allclose(
        fit.scale / np.outer(sd, sd), scale / np.outer(sd, sd), atol=atol, rtol=0
    )
    # df is profiled at EM's (mu, S): its error is theirs, amplified by the
    # flatness of the likelihood in df (a factor of 10 allowed).
    assert_allclose(np.log(fit.df), np.log(ref_df), atol=10 * atol)


@pytest.mark.parametrize("accelerate", [False, True])
@pytest.mark.parametrize("df", [3.0, "estimate"])
def test_loglik_never_decreases(accelerate, df, kernel):
    X = contaminated(n=200, p=4, seed=1, rate=0.3)
    fit = fit_student_t_em(X, df=df, accelerate=accelerate, tol=1e-10)
    path = fit.loglik_path
    assert np.all(np.diff(path) >= -1e-10 * np.abs(path[1:]))


def test_large_df_gives_the_normal_fit(kernel, assert_same_fit):
    """With df = 1e8 every weight is within (p + max d^2) / df < 1e-6 of 1,
    so the t fit is the normal one to well within the fits' tolerance."""
    X = contaminated(n=300, p=4, seed=2, fraction=0.0)
    tol = 1e-8
    t_fit = fit_student_t_em(X, df=1e8, tol=tol)
    normal = fit_normal_em(X, tol=tol)
    sd = np.sqrt(np.diag(normal.covariance))
    assert_same_fit(
        t_fit.mean, t_fit.covariance, normal.mean, normal.covariance, tol=tol, scale=sd
    )
    assert_allclose(t_fit.loglik, normal.loglik, rtol=1e-6)


def test_block_statistics_add(kernel):
    X = contaminated(n=300, p=5, seed=3)
    rng = np.random.default_rng(0)
    center = np.nanmean(X, axis=0)
    mean = center + rng.normal(scale=0.1, size=5)
    A = rng.normal(size=(5, 5))
    precision, logdet = precision_and_logdet(A @ A.T + 5 * np.eye(5))
    whole = block_statistics(X, center, mean, precision, logdet, 4.0)
    parts = [
        block_statistics(B, center, mean, precision, logdet, 4.0)
        for B in np.array_split(X, 3)
    ]
    total = parts[0] + parts[1] + parts[2]
    assert isinstance(total, StudentTStatistics)
    for name in ("loglik", "weight_sum", "row_sum", "cross"):
        assert_allclose(
            getattr(total, name), getattr(whole, name), rtol=1e-12, atol=1e-10
        )
    # Estimated df, two passes: gathered distances give the df of the whole.
    pieces = [
        block_distances(B, center, mean, precision, logdet)
        for B in np.array_split(X, 3)
    ]
    gathered = profile_df(
        np.concatenate([d for d, _, _ in pieces]),
        np.concatenate([o for _, o, _ in pieces]),
    )
    d, o, _ = block_distances(X, center, mean, precision, logdet)
    assert gathered == pytest.approx(profile_df(d, o), rel=1e-12)
    with pytest.raises(ValueError, match="different df"):
        whole + block_statistics(X, center, mean, precision, logdet, 5.0)


def test_model_statistics_of_row_blocks_add_up_to_the_e_step(kernel):
    """StudentTModel.statistics_of (data units) over row blocks equals its
    E-step on the prepared, standardised problem, at a fixed df; with an
    estimated df it is refused (the statistics do not add)."""
    X = contaminated(n=250, p=4, seed=6) * np.array([1.0, 100.0, 0.01, 5.0])
    X[0] = np.nan  # a row with nothing observed carries nothing
    problem = prepare_t_problem(X)
    model = StudentTModel.in_memory(problem, 3.0)
    rng = np.random.default_rng(2)
    A = rng.normal(size=(4, 4))
    params = StudentTParams(rng.normal(scale=0.1, size=4), A @ A.T / 4 + np.eye(4), 3.0)
    whole = model.e_step(params)
    blocks = np.array_split(rng.permutation(len(X)), 4)
    total = sum_statistics(model.statistics_of(X[rows], params) for rows in blocks)
    assert total.loglik == pytest.approx(whole.loglik, rel=1e-12)
    assert total.weight_sum == pytest.approx(whole.weight_sum, rel=1e-12)
    for name in ("row_sum", "cross"):
        value = getattr(whole, name)
        assert_allclose(
            getattr(total, name), value, rtol=0, atol=1e-11 * np.abs(value).max()
        )
    with pytest.raises(NotImplementedError, match="two passes"):
        StudentTModel.in_memory(problem, "estimate").statistics_of(X, params)


def test_profile_df_maximises_the_loglik():
    """The df search against a bounded scalar maximisation of the t
    log-likelihood from scipy: a row with distance d^2 and p_o observed
    cells has the density of the point (sqrt(d^2), 0, ...) under
    t_{p_o}(0, I, df)."""
    rng = np.random.default_rng(4)
    d2 = rng.chisquare(3, size=300) * 2.0
    n_obs = rng.integers(1, 4, size=300)
    points = {p: np.zeros((np.sum(n_obs == p), p)) for p in (1, 2, 3)}
    for p, x in points.items():
        x[:, 0] = np.sqrt(d2[n_obs == p])

    def negative(log_df):
        return -sum(
            stats.multivariate_t(np.zeros(p), np.eye(p), df=np.exp(log_df))
            .logpdf(x)
            .sum()
            for p, x in points.items()
        )

    ref = optimize.minimize_scalar(
        negative, bounds=np.log(DF_BOUNDS), method="bounded", options={"xatol": 1e-9}
    )
    assert np.log(profile_df(d2, n_obs)) == pytest.approx(ref.x, abs=1e-6)
    # At the bounds: normal data put the maximum at the upper bound.
    normal = rng.chisquare(3, size=2000)
    assert profile_df(normal, np.full(2000, 3)) in (
        DF_BOUNDS[1],
        pytest.approx(DF_BOUNDS[1]),
    )


@pytest.mark.parametrize("bad", ["auto", 0.0, -1.0, np.inf, True, None])
def test_bad_df_is_refused(bad):
    with pytest.raises(ValueError, match="df must be"):
        fit_student_t_em(contaminated(), df=bad)


# ---------------------------------------------------------------------------
# The conditional distribution


def reference_conditional(row, mean, scale, df):
    """Conditional t of one row from the partitioned scale matrix: mean c,
    scale matrix, dof (Liu & Rubin 1995, sec. 2), d^2 and p_o."""
    m = np.isnan(row)
    o = ~m
    S_oo, S_mo = scale[np.ix_(o, o)], scale[np.ix_(m, o)]
    d = row[o] - mean[o]
    d2 = d @ np.linalg.solve(S_oo, d)
    c = mean[m] + S_mo @ np.linalg.solve(S_oo, d)
    C = scale[np.ix_(m, m)] - S_mo @ np.linalg.solve(S_oo, S_mo.T)
    dof = df + o.sum()
    return c, C * (df + d2) / dof, dof, d2, o.sum()


def test_conditional_t_moments_loglik_and_weights():
    X = contaminated(n=60, p=4, seed=5, rate=0.35)
    X[3] = np.nan  # a row with nothing observed
    rng = np.random.default_rng(1)
    A = rng.normal(size=(4, 4))
    mean, scale, df = rng.normal(size=4), A @ A.T + np.eye(4), 3.5
    result = conditional_t(X, mean, scale, df, want_variance=True, want_loglik=True)
    reference = reference_loglik_rows(X, mean, scale, df)
    assert_allclose(result.loglik, reference, rtol=1e-10, atol=1e-10)
    for i, row in enumerate(X):
        m = np.isnan(row)
        assert_allclose(result.completed[i, ~m], row[~m], rtol=0, atol=0)
        if m.all():
            c, shape, dof, d2, n_obs = mean, scale, df, 0.0, 0
        else:
            c, shape, dof, d2, n_obs = reference_conditional(row, mean, scale, df)
        assert_allclose(result.weights[i], (df + n_obs) / (df + d2), rtol=1e-10)
        if m.any():
            assert_allclose(result.completed[i, m], c, rtol=1e-10, atol=1e-10)
            assert_allclose(
                result.variance[i, m], np.diag(shape) * dof / (dof - 2), rtol=1e-10
            )
        assert np.all(result.variance[i, ~m] == 0)
    assert_allclose(row_weights(X, mean, scale, df), result.weights, rtol=0, atol=0)


def reference_loglik_rows(X, mean, scale, df):
    out = np.zeros(len(X))
    for i, row in enumerate(X):
        o = ~np.isnan(row)
        if o.any():
            dist = stats.multivariate_t(mean[o], scale[np.ix_(o, o)], df=df)
            out[i] = dist.logpdf(row[o])
    return out


def test_conditional_draws_follow_the_conditional_t():
    """N copies of one row with two of four cells observed: each drawn cell
    must follow the univariate t (dof = df + 2, location c_a, scale
    sqrt(shape_aa)) -- Kolmogorov-Smirnov at level 1e-3 -- and the pair's
    sample covariance must match shape * dof / (dof - 2) within 5 Monte
    Carlo standard errors (var of a sample (co)variance: (m4 - s^4) / N,
    m4 = 3 s^4 (dof - 2) / (dof - 4) for a t margin; for the off-diagonal
    term of an elliptical law, (1 + k)(s_a^2 s_b^2 + s_ab^2) + k s_ab^2 with
    k = m4 / (3 s^4) - 1, which the same expression bounds)."""
    rng = np.random.default_rng(7)
    A = rng.normal(size=(4, 4))
    mean, scale, df = rng.normal(size=4), A @ A.T + np.eye(4), 6.0
    row = np.array([0.5, np.nan, 2.0, np.nan])
    N = 40000
    X = np.tile(row, (N, 1))
    draws = conditional_t(X, mean, scale, df, rng=np.random.default_rng(8)).completed
    c, shape, dof, _, _ = reference_conditional(row, mean, scale, df)
    missing = np.flatnonzero(np.isnan(row))
    for a, column in enumerate(missing):
        standardised = (draws[:, column] - c[a]) / np.sqrt(shape[a, a])
        assert stats.kstest(standardised, stats.t(dof).cdf).pvalue > 1e-3
    covariance = shape * dof / (dof - 2)
    sample = np.cov(draws[:, missing].T)
    kurtosis = 3.0 * (dof - 2) / (dof - 4)
    se = np.sqrt(
        (kurtosis - 1) * np.outer(np.diag(covariance), np.diag(covariance)) / N
    )
    assert np.all(np.abs(sample - covariance) < 5 * se)
    mean_se = np.sqrt(np.diag(covariance) / N)
    assert np.all(np.abs(draws[:, missing].mean(axis=0) - c) < 5 * mean_se)
