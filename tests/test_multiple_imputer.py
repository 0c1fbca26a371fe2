"""MultipleImputer: coverage of pooled intervals (simulation truth), agreement
with pool() applied by hand, reproducibility across n_jobs, the transformer
and predictor contracts, and bad input."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, special
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import cross_val_score

from emimpute import MultipleImputer
from emimpute.pooling import pool

SLOPE = 1.0


def regression_data(n, seed, rate=0.3):
    """y = 1 + x0 + 0.5 x1 + noise; cells of x0 and y missing at random
    (more often when the always-observed x1 is high)."""
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=n)
    y = 1.0 + SLOPE * X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=n)
    chance = special.expit(np.log(rate / (1 - rate)) + X[:, 1])
    X_missing = X.copy()
    X_missing[rng.random(n) < chance, 0] = np.nan
    y_missing = y.copy()
    y_missing[rng.random(n) < chance] = np.nan
    return X, y, X_missing, y_missing


def coverage(n_reps, seed0, method="bootstrap", burn_in=50):
    hits = single_hits = 0
    for rep in range(n_reps):
        _, _, X, y = regression_data(150, seed0 + rep)
        mi = MultipleImputer(
            n_imputations=10, method=method, burn_in=burn_in,
            estimator=LinearRegression(), random_state=rep,
        ).fit(X, y)  # fmt: skip
        row = mi.summary().loc["x0"]
        hits += row["ci_low"] <= SLOPE <= row["ci_high"]
        # One imputation analysed as if complete: its own OLS interval.
        estimates, covariances, dfcom = _ols_twice(mi, X, y)
        one = pool(estimates, covariances, dfcom=dfcom)
        single_hits += one.ci_low[1] <= SLOPE <= one.ci_high[1]
    return hits / n_reps, single_hits / n_reps


def _ols_twice(mi, X, y):
    """The first imputation's OLS fit, entered twice (b = 0): its own interval."""
    data = np.column_stack([X, y])
    draws = mi.imputers_[0].transform(data)
    fit = LinearRegression().fit(draws[:, :2], draws[:, 2])
    design = np.column_stack([np.ones(len(X)), draws[:, :2]])
    coef = np.r_[fit.intercept_, fit.coef_]
    residual = draws[:, 2] - design @ coef
    cov = residual @ residual / (len(X) - 3) * np.linalg.inv(design.T @ design)
    return np.array([coef, coef]), np.array([cov, cov]), len(X) - 3


def test_pooled_intervals_cover_and_single_imputation_does_not():
    covered, single = coverage(120, seed0=0)
    # Binomial(120, 0.95): sd 0.02; a single imputation is clearly below.
    assert 0.89 <= covered <= 0.995, covered
    assert single < covered - 0.05, (single, covered)


def test_data_augmentation_intervals_cover_too():
    covered, _ = coverage(80, seed0=500, method="data-augmentation", burn_in=20)
    assert 0.88 <= covered <= 1.0, covered


@pytest.mark.slow
@pytest.mark.parametrize("method", ["bootstrap", "data-augmentation"])
def test_pooled_coverage_is_nominal_in_a_long_simulation(method):
    covered, single = coverage(1000, seed0=10_000, method=method)
    assert 0.93 <= covered <= 0.97, covered
    assert single < 0.9, single


def test_pooled_results_equal_pool_applied_by_hand():
    _, _, X, y = regression_data(300, seed=1)
    mi = MultipleImputer(n_imputations=6, estimator=LinearRegression(), random_state=2)
    mi.fit(X, y)
    data = np.column_stack([X, y])
    estimates, covariances = [], []
    for imputer in mi.imputers_:
        draws = imputer.transform(data)  # the draws the fit analysed
        design = np.column_stack([np.ones(len(X)), draws[:, :2]])
        coef, *_ = np.linalg.lstsq(design, draws[:, 2], rcond=None)
        residual = draws[:, 2] - design @ coef
        sigma2 = residual @ residual / (len(X) - 3)
        estimates.append(coef)
        covariances.append(sigma2 * np.linalg.inv(design.T @ design))
    by_hand = pool(np.array(estimates), np.array(covariances), dfcom=len(X) - 3)
    assert_allclose(mi.pooled_.estimate, by_hand.estimate, rtol=1e-10)
    assert_allclose(mi.pooled_.t, by_hand.t, rtol=1e-10)
    assert_allclose(mi.pooled_.df, by_hand.df, rtol=1e-10)
    assert list(mi.summary().index) == ["intercept", "x0", "x1"]


def test_same_results_whatever_n_jobs_and_across_runs():
    _, _, X, y = regression_data(200, seed=3)

    def fitted(n_jobs, seed=4):
        return MultipleImputer(
            n_imputations=4, estimator=LinearRegression(), random_state=seed,
            n_jobs=n_jobs,
        ).fit(X, y)  # fmt: skip

    serial, parallel, again = fitted(1), fitted(2), fitted(1)
    assert_allclose(serial.pooled_.estimate, parallel.pooled_.estimate, rtol=0, atol=0)
    assert_allclose(serial.transform(X), parallel.transform(X), rtol=0, atol=0)
    assert_allclose(serial.pooled_.estimate, again.pooled_.estimate, rtol=0, atol=0)
    assert not np.allclose(serial.pooled_.estimate, fitted(1, seed=5).pooled_.estimate)


def test_transform_is_the_average_of_the_imputations():
    _, _, X, _ = regression_data(150, seed=6)
    mi = MultipleImputer(n_imputations=5, random_state=0).fit(X)
    each = mi.multiple_transform(X)
    assert len(each) == 5
    assert_allclose(mi.transform(X), np.mean(each, axis=0))
    observed = ~np.isnan(X)
    for completed in each:
        assert np.array_equal(completed[observed], X[observed])
    # Proper draws differ between imputations at the missing cells only.
    assert np.std([c[~observed] for c in each], axis=0).min() > 0


def test_works_with_iterative_imputer_and_in_cross_validation():
    X_full, y_full, X, _ = regression_data(200, seed=7)
    mi = MultipleImputer(
        IterativeImputer(max_iter=5), n_imputations=3, estimator=LinearRegression(),
        random_state=0,
    )  # fmt: skip
    scores = cross_val_score(mi, X, y_full, cv=3)
    assert scores.mean() > 0.2  # the truth's R^2 is 0.64 on complete data
    assert mi.fit(X, y_full).predict(X).shape == (200,)


def test_leaving_the_outcome_out_attenuates_the_slope():
    """mice's advice, checked: impute X without y and the slope of x0
    shrinks towards 0; with y in the imputation model it does not."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(4000, 2))
    y = 2.0 * X[:, 0] + rng.normal(size=4000)
    X[rng.random(4000) < 0.4, 0] = np.nan
    slopes = {}
    for include in (True, False):
        mi = MultipleImputer(
            n_imputations=5, estimator=LinearRegression(), include_outcome=include,
            random_state=0,
        ).fit(X, y)  # fmt: skip
        slopes[include] = mi.summary().loc["x0", "estimate"]
    assert slopes[True] == pytest.approx(2.0, abs=0.08)
    assert slopes[False] < 1.6


def test_logistic_regression_standard_errors_are_the_inverse_information():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(400, 2))
    y = (rng.random(400) < special.expit(0.3 + X @ [1.0, -0.5])).astype(float)
    mi = MultipleImputer(
        n_imputations=3, estimator=LogisticRegression(C=np.inf), random_state=0
    ).fit(X, y)  # nothing missing: b = 0, t = ubar
    design = np.column_stack([np.ones(400), X])

    def loglik(beta):
        eta = design @ beta
        return np.sum(y * eta - np.logaddexp(0, eta))

    beta = mi.pooled_.estimate
    hessian = optimize.approx_fprime(
        beta, lambda b: optimize.approx_fprime(b, loglik, 1e-6), 1e-4
    )
    assert_allclose(mi.pooled_.std_error, np.sqrt(np.diag(np.linalg.inv(-hessian))),
                    rtol=1e-3)  # fmt: skip
    assert mi.predict_proba(X).shape == (400, 2)
    assert set(mi.predict(X)) <= {0.0, 1.0}


def test_user_supplied_inference():
    _, _, X, y = regression_data(200, seed=10)

    def slope_only(X_l, y_l):
        fit = LinearRegression().fit(X_l, y_l)
        return fit.coef_[:1], [0.01], 197

    mi = MultipleImputer(n_imputations=3, estimator=Ridge(), inference=slope_only,
                         random_state=0).fit(X, y)  # fmt: skip
    assert mi.pooled_.estimate.shape == (1,)
    no_inference = MultipleImputer(n_imputations=2, estimator=Ridge()).fit(X, y)
    with pytest.raises(ValueError, match="no pooled inference"):
        no_inference.summary()


def test_data_augmentation_needs_emimputer_and_is_reproducible():
    _, _, X, y = regression_data(150, seed=13)
    with pytest.raises(ValueError, match="needs an EMImputer"):
        MultipleImputer(IterativeImputer(), method="data-augmentation").fit(X)
    runs = [
        MultipleImputer(
            n_imputations=3, method="data-augmentation", burn_in=5,
            estimator=LinearRegression(), random_state=1, n_jobs=n_jobs,
        ).fit(X, y).pooled_.estimate
        for n_jobs in (1, 2)
    ]  # fmt: skip
    assert_allclose(runs[0], runs[1], rtol=0, atol=0)


def test_bad_input():
    _, _, X, y = regression_data(100, seed=11)
    with pytest.raises(ValueError, match="cannot draw"):
        MultipleImputer(SimpleImputer()).fit(X)
    with pytest.raises(ValueError, match="needs y"):
        MultipleImputer(estimator=LinearRegression()).fit(X)
    with pytest.raises(ValueError, match="include_outcome=True"):
        MultipleImputer(estimator=LinearRegression(), include_outcome=False).fit(X, y)
    with pytest.raises(ValueError, match="y has 10 values"):
        MultipleImputer(estimator=LinearRegression()).fit(X, y[:10])


def test_works_with_the_selection_model_imputer():
    from emimpute import MNARSelectionImputer

    _, _, X, y = regression_data(300, seed=12)
    mi = MultipleImputer(
        MNARSelectionImputer(mnar_coef=0.0), n_imputations=3,
        estimator=LinearRegression(), random_state=0,
    ).fit(X, y)  # fmt: skip
    # psi held at 0 is MAR: the pooled slope agrees with EMImputer's MI.
    em = MultipleImputer(
        n_imputations=3, estimator=LinearRegression(), random_state=0
    ).fit(X, y)
    slope, em_slope = mi.summary().loc["x0"], em.summary().loc["x0"]
    assert abs(slope["estimate"] - em_slope["estimate"]) < 2 * em_slope["std_error"]


def test_verbose_draws_a_progress_bar(capsys):
    _, _, X, _ = regression_data(80, seed=14)
    MultipleImputer(n_imputations=4, verbose=1, random_state=0).fit(X)
    err = capsys.readouterr().err
    assert "[MultipleImputer] [" in err and err.rstrip().endswith("4/4")
    MultipleImputer(n_imputations=2, random_state=0).fit(X)
    assert capsys.readouterr().err == ""
