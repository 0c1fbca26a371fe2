"""Rubin's rules against the formulas written out by hand, the limits that R
mice's own tests check (tests/testthat/test-barnard.rubin.R), and the
coverage of pooled intervals under proper multiple imputation."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from emimpute.pooling import (
    barnard_rubin_df,
    pool,
    pooled_chi2_test,
    pooled_wald_test,
)

Q = np.array([[1.0, -0.5, 3.0], [1.2, -0.4, 2.5], [0.9, -0.7, 2.8], [1.1, -0.5, 3.4]])
U = np.array([[0.04, 0.010, 0.30], [0.05, 0.012, 0.28], [0.045, 0.011, 0.33],
              [0.05, 0.009, 0.31]])  # fmt: skip


def by_hand(q, u, dfcom):
    """Rubin (1987) sec. 3.1 and Barnard & Rubin (1999), eq. 3, written out."""
    m = len(q)
    qbar, ubar = np.mean(q), np.mean(u)
    b = np.sum((q - qbar) ** 2) / (m - 1)
    t = ubar + (1 + 1 / m) * b
    riv = (1 + 1 / m) * b / ubar
    lam = (1 + 1 / m) * b / t
    df_old = (m - 1) / lam**2
    df_obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    df = 1 / (1 / df_old + 1 / df_obs)
    fmi = (riv + 2 / (df + 3)) / (riv + 1)
    half = stats.t.ppf(0.975, df) * np.sqrt(t)
    return dict(estimate=qbar, ubar=ubar, b=b, t=t, riv=riv, lambda_=lam, df=df,
                fmi=fmi, ci_low=qbar - half, ci_high=qbar + half)  # fmt: skip


def test_pooled_quantities_equal_the_formulas():
    result = pool(Q, U, dfcom=40, names=["intercept", "age", "income"])
    for j in range(3):
        expected = by_hand(Q[:, j], U[:, j], 40)
        for name, value in expected.items():
            assert getattr(result, name)[j] == pytest.approx(value, rel=1e-12), name
    table = result.summary()
    assert list(table.index) == ["intercept", "age", "income"]
    assert list(table.columns) == [
        "estimate", "std_error", "statistic", "df", "p_value", "ci_low", "ci_high",
        "riv", "lambda", "fmi", "ubar", "b", "t",
    ]  # fmt: skip
    z = table["estimate"] / table["std_error"]
    assert_allclose(table["p_value"], 2 * stats.t.sf(np.abs(z), table["df"]))


def test_covariance_matrices_give_the_same_marginal_results():
    covariances = np.array([np.diag(u) + 0.001 for u in U])
    marginal = pool(Q, np.array([np.diag(c) for c in covariances]), dfcom=40)
    full = pool(Q, covariances, dfcom=40)
    assert_allclose(full.estimate, marginal.estimate)
    assert_allclose(full.df, marginal.df)
    assert full.covariance_within.shape == (3, 3)


def test_barnard_rubin_limits_as_in_mice():
    m, nu = 10, 100.0
    lam = np.linspace(1e-4, 0.99, 50)
    unstable = 1 / (1 / ((m - 1) / lam**2) + 1 / ((nu + 1) / (nu + 3) * nu * (1 - lam)))
    assert_allclose(barnard_rubin_df(m, lam, nu), unstable, rtol=1e-10)
    assert barnard_rubin_df(m, 0.0, nu) == pytest.approx(nu * (nu + 1) / (nu + 3))
    assert_allclose(barnard_rubin_df(m, lam, np.inf), (m - 1) / lam**2)


def test_no_between_imputation_variance():
    q = np.array([[2.0], [2.0], [2.0]])
    u = np.array([[0.25], [0.25], [0.25]])
    large = pool(q, u)
    assert large.b[0] == 0 and large.riv[0] == 0 and large.lambda_[0] == 0
    assert np.isinf(large.df[0]) and large.fmi[0] == 0
    assert large.p_value[0] == pytest.approx(2 * stats.norm.sf(4.0))
    small = pool(q, u, dfcom=20)
    assert small.df[0] == pytest.approx(20 * 21 / 23)
    assert small.fmi[0] == pytest.approx(2 / (small.df[0] + 3))


def test_two_imputations_and_rubin_df_option():
    q, u = np.array([-1.5457, -1.428]), np.array([0.9723**2, 1.041**2])
    result = pool(q, u, dfcom=23)  # mice's pool.scalar example, n = 25, k = 2
    expected = by_hand(q, u, 23)
    assert result.df[0] == pytest.approx(expected["df"], rel=1e-12)
    assert result.m == 2
    rubin = pool(q, u, dfcom=23, df_method="rubin1987")
    assert rubin.df[0] == pytest.approx((2 - 1) / expected["lambda_"] ** 2)


def test_reiter_rule_for_synthetic_data():
    result = pool(Q, U, rule="reiter2003")
    m = len(Q)
    b = Q.var(axis=0, ddof=1)
    ubar = U.mean(axis=0)
    assert_allclose(result.t, ubar + b / m)
    assert_allclose(result.df, (m - 1) * (1 + ubar / (b / m)) ** 2)
    assert np.isnan(result.fmi).all()


def test_wald_test_d1():
    covariances = np.array([np.diag(u) for u in U])
    test = pooled_wald_test(Q, covariances)
    m, k = Q.shape
    ubar = covariances.mean(axis=0)
    B = np.cov(Q, rowvar=False)
    r = (1 + 1 / m) * np.trace(B @ np.linalg.inv(ubar)) / k
    qbar = Q.mean(axis=0)
    assert test.statistic == pytest.approx(
        qbar @ np.linalg.inv((1 + r) * ubar) @ qbar / k, rel=1e-12
    )
    t = k * (m - 1)
    assert test.df2 == pytest.approx(4 + (t - 4) * (1 + (1 - 2 / t) / r) ** 2)
    assert test.p_value == pytest.approx(stats.f.sf(test.statistic, k, test.df2))
    # One parameter: D1 is the square of the pooled t statistic.
    one = pooled_wald_test(Q[:, :1], covariances[:, :1, :1])
    assert one.statistic == pytest.approx(pool(Q[:, 0], U[:, 0]).statistic[0] ** 2)
    # Reiter's small-sample df are smaller than the large-sample ones.
    assert pooled_wald_test(Q, covariances, dfcom=30).df2 < test.df2


def test_chi2_test_d2():
    d = np.array([8.1, 10.4, 7.2, 9.6, 11.0])
    test = pooled_chi2_test(d, k=3)
    m = len(d)
    r = (1 + 1 / m) * np.var(np.sqrt(d), ddof=1)
    assert test.statistic == pytest.approx(
        (d.mean() / 3 - (m + 1) / (m - 1) * r) / (1 + r)
    )
    assert test.df2 == pytest.approx(3 ** (-3 / m) * (m - 1) * (1 + 1 / r) ** 2)
    same = pooled_chi2_test(np.full(4, 9.0), k=3)
    assert same.statistic == pytest.approx(3.0) and np.isinf(same.df2)
    assert same.p_value == pytest.approx(stats.chi2.sf(9.0, 3))


def test_coverage_under_proper_multiple_imputation():
    """Simulation truth: y ~ N(mu, 1), n = 25, 40% missing completely at
    random, imputed m = 5 times from the posterior (Bayesian bootstrap-free
    normal draws of mu and sigma given the observed values), the mean pooled
    with dfcom = n - 1.  The 95% intervals should cover mu about 95% of the
    time; treating one imputed data set as complete undercovers."""
    rng = np.random.default_rng(0)
    n, m, reps, mu = 25, 5, 2000, 3.0
    covered = single_covered = 0
    for _ in range(reps):
        y = rng.normal(mu, 1.0, n)
        observed = y[rng.random(n) >= 0.4]
        n_obs, n_mis = len(observed), n - len(observed)
        if n_obs < 3:
            continue
        # Posterior of (mu, sigma^2) under the reference prior.
        sigma2 = (n_obs - 1) * observed.var(ddof=1) / rng.chisquare(n_obs - 1, m)
        means = rng.normal(observed.mean(), np.sqrt(sigma2 / n_obs))
        completed = np.column_stack(
            [np.tile(observed, (m, 1)),
             rng.normal(means[:, None], np.sqrt(sigma2)[:, None], (m, n_mis))]
        )  # fmt: skip
        estimates = completed.mean(axis=1)
        variances = completed.var(axis=1, ddof=1) / n
        result = pool(estimates, variances, dfcom=n - 1)
        covered += result.ci_low[0] <= mu <= result.ci_high[0]
        half = stats.t.ppf(0.975, n - 1) * np.sqrt(variances[0])
        single_covered += abs(estimates[0] - mu) <= half
    assert 0.93 <= covered / reps <= 0.97
    assert single_covered / reps < 0.91


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"estimates": [1.0], "variances": [0.1]}, "at least 2 imputations"),
        ({"estimates": [1.0, 2.0], "variances": [0.1]}, "shape"),
        ({"estimates": [1.0, 2.0], "variances": [0.1, -0.1]}, "non-negative"),
        ({"estimates": [1.0, np.nan], "variances": [0.1, 0.1]}, "finite"),
        ({"rule": "rubin2000"}, "rule must be"),
        ({"df_method": "satterthwaite"}, "df_method must be"),
        ({"df_method": "barnard-rubin"}, "finite dfcom"),
        ({"dfcom": 0}, "dfcom must be a positive number"),
    ],
)
def test_bad_input(arguments, message):
    arguments = {"estimates": [1.0, 2.0], "variances": [0.1, 0.2], **arguments}
    with pytest.raises(ValueError, match=message):
        pool(arguments.pop("estimates"), arguments.pop("variances"), **arguments)


@pytest.mark.parametrize("dfcom", [np.nan, -3.0, 0, -np.inf])
def test_pool_rejects_a_dfcom_that_is_not_a_positive_number(dfcom):
    """dfcom = nan used to give NaN df and NaN intervals without a word."""
    with pytest.raises(ValueError, match="dfcom must be a positive number"):
        pool(Q, U, dfcom=dfcom)


def test_pool_rejects_a_dfcom_that_is_not_a_number():
    with pytest.raises(TypeError, match="dfcom must be a number"):
        pool(Q, U, dfcom="40")


@pytest.mark.parametrize("alpha", [1.5, 1.0, 0.0, -0.05, np.nan])
def test_pool_rejects_alpha_outside_zero_one(alpha):
    """alpha = 1.5 used to give intervals with ci_low > ci_high."""
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        pool(Q, U, alpha=alpha)


def test_pool_rejects_names_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 names for 3 parameters"):
        pool(Q, U, names=["a", "b"])


def test_pool_rejects_estimates_of_three_dimensions():
    with pytest.raises(ValueError, match=r"estimates must be \(m, k\) or \(m,\)"):
        pool(Q[:, :, None], U)


def _covariances():
    return np.array([np.diag(u) + 0.001 for u in U])


def test_wald_test_names_a_singular_within_imputation_covariance():
    """A parameter with zero variance in every imputation (here the third)
    used to give a raw numpy LinAlgError."""
    covariances = _covariances()
    covariances[:, 2, :] = 0.0
    covariances[:, :, 2] = 0.0
    with pytest.raises(ValueError, match=r"Ubar.*singular.*'income'"):
        pooled_wald_test(Q, covariances, names=["intercept", "age", "income"])


def test_wald_test_names_the_parameters_in_an_exact_linear_dependence():
    """Ubar of rank 2: x0 - x1 has zero variance (an aliased pair)."""
    covariances = np.tile(
        np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]]), (4, 1, 1)
    )
    with pytest.raises(ValueError, match=r"singular.*'x0', 'x1'") as raised:
        pooled_wald_test(Q, covariances)
    assert "'x2'" not in str(raised.value)


@pytest.mark.parametrize("dfcom", [np.nan, 0, -5.0])
def test_wald_test_rejects_a_dfcom_that_is_not_a_positive_number(dfcom):
    """dfcom = nan used to fall back silently to the large-sample df."""
    with pytest.raises(ValueError, match="dfcom must be a positive number"):
        pooled_wald_test(Q, _covariances(), dfcom=dfcom)


def test_wald_test_infinite_dfcom_is_the_large_sample_test():
    covariances = _covariances()
    assert pooled_wald_test(Q, covariances, dfcom=np.inf) == pooled_wald_test(
        Q, covariances
    )


@pytest.mark.parametrize(
    ("null", "message"),
    [([0.0, 0.0], r"null must have shape \(3,\)"), ([0.0, np.nan, 0.0], "finite")],
)
def test_wald_test_rejects_a_bad_null(null, message):
    with pytest.raises(ValueError, match=message):
        pooled_wald_test(Q, _covariances(), null=null)


def test_wald_test_rejects_non_finite_input():
    covariances = _covariances()
    covariances[1, 0, 0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        pooled_wald_test(Q, covariances)


def test_wald_test_of_one_parameter_accepts_a_vector_of_estimates():
    """A 1-D vector of m estimates used to be read as one imputation of m
    parameters ("covariances must have shape (1, 4, 4)")."""
    u = U[:, :1, None]
    one = pooled_wald_test(Q[:, 0], u)
    assert one.df1 == 1
    assert one.statistic == pytest.approx(pool(Q[:, 0], U[:, 0]).statistic[0] ** 2)


def test_wald_test_rejects_names_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 names for 3 parameters"):
        pooled_wald_test(Q, _covariances(), names=["a", "b"])


@pytest.mark.parametrize("k", [0, -1, 2.5, np.nan, True])
def test_chi2_test_rejects_a_k_that_is_not_a_positive_integer(k):
    """k = 0 used to give a raw ZeroDivisionError."""
    with pytest.raises((ValueError, TypeError), match="k must be a positive integer"):
        pooled_chi2_test([8.1, 10.4, 7.2], k=k)


def test_chi2_test_accepts_integral_k_of_any_type():
    d = [8.1, 10.4, 7.2]
    expected = pooled_chi2_test(d, k=3)
    assert pooled_chi2_test(d, k=np.int64(3)) == expected
    assert pooled_chi2_test(d, k=3.0) == expected


@pytest.mark.parametrize(
    ("statistics", "message"),
    [
        ([[8.1, 10.4], [7.2, 9.0]], "1-D"),
        ([8.1, np.inf, 7.2], "finite"),
        ([8.1, np.nan], "finite"),
    ],
)
def test_chi2_test_rejects_bad_statistics(statistics, message):
    with pytest.raises(ValueError, match=message):
        pooled_chi2_test(statistics, k=2)


def test_pool_accepts_dfcom_as_any_real_number_type():
    expected = pool(Q, U, dfcom=40).df
    for dfcom in [np.int64(40), np.float32(40.0), np.array(40.0), 40.0]:
        assert_allclose(pool(Q, U, dfcom=dfcom).df, expected, rtol=0)
