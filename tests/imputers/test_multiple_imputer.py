"""MultipleImputer: coverage of pooled intervals (simulation truth), agreement
with pool() applied by hand, reproducibility across n_jobs, the transformer
and predictor contracts, and bad input."""

import copy

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize, special
from sklearn.base import BaseEstimator, TransformerMixin, is_classifier
from sklearn.datasets import load_breast_cancer
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

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


def test_same_results_whatever_n_jobs_and_across_runs(fit_tolerance):
    _, _, X, y = regression_data(200, seed=3)

    def fitted(n_jobs, seed=4):
        return MultipleImputer(
            n_imputations=4, estimator=LinearRegression(), random_state=seed,
            n_jobs=n_jobs,
        ).fit(X, y)  # fmt: skip

    serial, parallel, again = fitted(1), fitted(2), fitted(1)
    # Same seeds, same draws; but a joblib worker may run BLAS on another
    # number of threads, so the EM fits (at tol=1e-6) agree only to the
    # stopping rule (tests/conftest.py), and so do their analyses.
    close = fit_tolerance(1e-6)
    assert_allclose(serial.pooled_.estimate, parallel.pooled_.estimate, rtol=close)
    assert_allclose(serial.transform(X), parallel.transform(X), rtol=close)
    # In one process the arithmetic is the same: exactly equal.
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


def test_data_augmentation_needs_a_model_that_draws_and_is_reproducible():
    _, _, X, y = regression_data(150, seed=13)
    with pytest.raises(
        ValueError,
        match=r"needs an imputer that can draw its parameters.*EMImputer.*"
        r"IterativeImputer cannot. Use method='bootstrap'",
    ):
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
        MNARSelectionImputer(psi=0.0), n_imputations=3,
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


# ------------------------------------------------- the estimator a classifier


def classification_data(n, seed, classes=("no", "yes"), rate=0.25):
    """Labels from a multinomial logit in two covariates (baseline class
    first), cells of X missing completely at random."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    k = len(classes)
    beta = np.array([[0.3, 1.0, -0.5], [-0.2, -0.7, 1.2]])[: k - 1]
    eta = np.column_stack([np.zeros(n), np.column_stack([np.ones(n), X]) @ beta.T])
    proba = special.softmax(eta, axis=1)
    codes = (rng.random(n)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)
    X_missing = X.copy()
    X_missing[rng.random((n, 2)) < rate] = np.nan
    return X, np.asarray(classes)[codes], X_missing


def test_a_classifier_gives_classes_labels_and_averaged_probabilities():
    _, y, X = classification_data(300, seed=20)
    mi = MultipleImputer(
        n_imputations=4, estimator=LogisticRegression(), random_state=0
    ).fit(X, y)
    assert is_classifier(mi)
    assert list(mi.classes_) == ["no", "yes"]  # y was not cast to float
    completed = mi.multiple_transform(X)
    by_hand = np.mean(
        [
            fit.predict_proba(X_l)
            for fit, X_l in zip(mi.estimators_, completed, strict=True)
        ],
        axis=0,
    )
    assert_allclose(mi.predict_proba(X), by_hand, rtol=1e-12)
    assert_allclose(mi.predict_log_proba(X), np.log(by_hand), rtol=1e-12)
    decision = np.mean(
        [
            fit.decision_function(X_l)
            for fit, X_l in zip(mi.estimators_, completed, strict=True)
        ],
        axis=0,
    )
    assert_allclose(mi.decision_function(X), decision, rtol=1e-12)
    assert_array_equal(mi.predict(X), mi.classes_[by_hand.argmax(axis=1)])
    assert mi.score(X, y) > 0.6


def test_labels_are_names_only():
    """Strings, integers and floats naming the same classes give the same
    fit: the imputation model sees the same indicator, the analyses the same
    classes."""
    _, y, X = classification_data(250, seed=21)

    def fitted(labels):
        return MultipleImputer(
            n_imputations=3, estimator=LogisticRegression(), random_state=1
        ).fit(X, labels)

    as_strings, as_ints = fitted(y), fitted((y == "yes").astype(int) + 4)
    assert list(as_ints.classes_) == [4, 5]
    assert_array_equal(as_strings.predict_proba(X), as_ints.predict_proba(X))
    assert_array_equal(as_strings.predict(X) == "yes", as_ints.predict(X) == 5)


def test_missing_labels_are_imputed_as_classes():
    _, y, X = classification_data(300, seed=22, classes=("a", "b", "c"))
    y = y.astype(object)
    y[::7] = None
    mi = MultipleImputer(
        n_imputations=3, estimator=LogisticRegression(), random_state=0
    ).fit(X, y)
    assert list(mi.classes_) == ["a", "b", "c"]
    assert all(list(fit.classes_) == ["a", "b", "c"] for fit in mi.estimators_)
    with pytest.raises(ValueError, match="include_outcome=True"):
        MultipleImputer(estimator=LogisticRegression(), include_outcome=False).fit(X, y)


def test_multiclass_string_labels_and_probability_scorers():
    _, y, X = classification_data(300, seed=23, classes=("a", "b", "c"))
    mi = MultipleImputer(
        n_imputations=3, estimator=LogisticRegression(), random_state=0
    ).fit(X, y)
    proba = mi.predict_proba(X)
    assert proba.shape == (300, 3)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert set(mi.predict(X)) <= {"a", "b", "c"}
    pipe = make_pipeline(
        StandardScaler(),
        MultipleImputer(n_imputations=2, estimator=LogisticRegression(),
                        random_state=0),
    )  # fmt: skip
    scores = cross_val_score(pipe, X, y, cv=3, scoring="roc_auc_ovr",
                             error_score="raise")  # fmt: skip
    assert np.all(scores > 0.6)


def test_roc_auc_in_a_pipeline_on_a_real_data_set():
    """Breast cancer (scikit-learn's copy of the Wisconsin data), 20% of
    cells removed: default LogisticRegression under cross_val_score with
    probability scorers."""
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(24)
    X = X[:, :6].copy()
    X[rng.random(X.shape) < 0.2] = np.nan
    labels = np.where(y == 1, "benign", "malignant")
    pipe = make_pipeline(
        StandardScaler(),
        MultipleImputer(n_imputations=3, estimator=LogisticRegression(),
                        random_state=0),
    )  # fmt: skip
    for scoring in ("roc_auc", "neg_log_loss"):
        scores = cross_val_score(pipe, X, labels, cv=3, scoring=scoring,
                                 error_score="raise")  # fmt: skip
        assert np.all(np.isfinite(scores))
    # Complete-data logistic regression on these six columns has an AUC of
    # about 0.98; with a fifth of the cells imputed it stays high.
    auc = cross_val_score(pipe, X, labels, cv=3, scoring="roc_auc")
    assert auc.mean() > 0.9


def test_a_classifier_without_probabilities_averages_its_decision_function():
    _, y, X = classification_data(200, seed=25)
    mi = MultipleImputer(n_imputations=3, estimator=LinearSVC(), random_state=0).fit(
        X, y
    )
    assert not hasattr(mi, "predict_proba")
    completed = mi.multiple_transform(X)
    decision = np.mean(
        [
            fit.decision_function(X_l)
            for fit, X_l in zip(mi.estimators_, completed, strict=True)
        ],
        axis=0,
    )
    assert_array_equal(mi.predict(X), np.where(decision > 0, "yes", "no"))


def multinomial_loglik(beta, design, codes, k):
    """Baseline-category logit log-likelihood and its gradient (the
    reference, written from the model, not from the code under test)."""
    beta = beta.reshape(k - 1, design.shape[1])
    eta = np.column_stack([np.zeros(len(design)), design @ beta.T])
    logp = eta - special.logsumexp(eta, axis=1, keepdims=True)
    onehot = np.eye(k)[codes]
    gradient = (onehot - np.exp(logp))[:, 1:].T @ design
    return np.sum(logp[np.arange(len(codes)), codes]), gradient.ravel()


def test_multiclass_pooled_coefficients_are_the_baseline_category_mle():
    """Nothing missing (b = 0, t = ubar): the pooled estimates are the
    multinomial MLE, log-odds against classes_[0], found here by direct
    maximisation, and the standard errors the square roots of the inverse
    observed information, by differencing the analytic gradient."""
    X, y, _ = classification_data(600, seed=26, classes=("a", "b", "c"))
    mi = MultipleImputer(
        n_imputations=2,
        estimator=LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000),
        random_state=0,
    ).fit(X, y)
    design = np.column_stack([np.ones(600), X])
    codes = np.searchsorted(["a", "b", "c"], y)
    found = optimize.minimize(
        lambda b: [-v for v in multinomial_loglik(b, design, codes, 3)][0],
        np.zeros(6),
        jac=lambda b: -multinomial_loglik(b, design, codes, 3)[1],
        method="BFGS",
        options={"gtol": 1e-10},
    )
    # Both optimisers stop at a gradient of 1e-10 against an information of
    # order n = 600: the maximisers agree to far better than 1e-6.
    assert_allclose(mi.pooled_.estimate, found.x, rtol=1e-6, atol=1e-8)
    hessian = optimize.approx_fprime(
        found.x, lambda b: multinomial_loglik(b, design, codes, 3)[1], 1e-6
    )
    # Forward differences with step 1e-6: relative error about 1e-6 in the
    # Hessian; 1e-4 on the standard errors leaves a margin.
    reference = np.sqrt(np.diag(np.linalg.inv(-(hessian + hessian.T) / 2)))
    assert_allclose(mi.pooled_.std_error, reference, rtol=1e-4)
    assert list(mi.summary().index) == [
        "b:intercept", "b:x0", "b:x1", "c:intercept", "c:x0", "c:x1",
    ]  # fmt: skip
    assert mi.pooled_.df[0] == pytest.approx(
        (600 - 6) * (600 - 6 + 1) / (600 - 6 + 3)  # Barnard-Rubin df at b = 0
    )


def test_no_inference_says_which_estimators_have_it_and_what_to_pass():
    _, y, X = classification_data(150, seed=27)
    mi = MultipleImputer(
        n_imputations=2, estimator=LogisticRegression(), random_state=0
    ).fit(X, y)
    assert mi.pooled_ is None
    with pytest.raises(ValueError, match="no pooled inference") as error:
        mi.summary()
    message = str(error.value)
    assert "penalised" in message and "LogisticRegression(C=np.inf)" in message
    assert "inference=" in message and "LinearRegression" in message
    _, _, X_r, y_r = regression_data(120, seed=28)
    ridge = MultipleImputer(n_imputations=2, estimator=Ridge(), random_state=0)
    with pytest.raises(ValueError, match="Ridge has no built-in standard errors"):
        ridge.fit(X_r, np.nan_to_num(y_r)).summary()
    positive = MultipleImputer(
        n_imputations=2, estimator=LinearRegression(positive=True), random_state=0
    ).fit(X_r, np.nan_to_num(y_r))
    with pytest.raises(ValueError, match="constrained"):
        positive.summary()


def test_inference_returning_scalars_is_one_parameter():
    _, _, X, y = regression_data(200, seed=29)
    seen = []

    def slope(X_l, y_l):
        fit = LinearRegression().fit(X_l, y_l)
        seen.append((fit.coef_[0], 0.01 * (1 + len(seen))))
        return seen[-1]  # two Python floats, no dfcom

    mi = MultipleImputer(
        n_imputations=3, estimator=LinearRegression(), inference=slope, random_state=0
    ).fit(X, y)
    by_hand = pool(np.array(seen)[:, :1], np.array(seen)[:, 1:])
    assert_allclose(mi.pooled_.estimate, by_hand.estimate, rtol=1e-14)
    assert_allclose(mi.pooled_.std_error, by_hand.std_error, rtol=1e-14)


@pytest.mark.parametrize(
    "returned",
    [
        1.0,
        (1.0,),
        ([1.0, 2.0], [0.1, 0.2, 0.3]),
        ([1.0, 2.0], np.eye(3)),
        ([[1.0, 2.0]], [0.1, 0.2]),
        ("a", 0.1),
    ],
)
def test_inference_of_the_wrong_shape_says_what_is_expected(returned):
    _, _, X, y = regression_data(100, seed=30)
    mi = MultipleImputer(
        n_imputations=2, estimator=LinearRegression(), inference=lambda X, y: returned
    )
    with pytest.raises(ValueError, match="must return \\(estimates, variances\\)"):
        mi.fit(X, y)


def test_an_empty_column_is_named():
    _, _, X, y = regression_data(60, seed=31)
    X = np.column_stack([X, np.full(60, np.nan)])
    with pytest.raises(ValueError, match=r"column x2 \(position 2\) has no observed"):
        MultipleImputer(n_imputations=2).fit(X)
    frame = pd.DataFrame(X, columns=["age", "bmi", "chl"])
    with pytest.raises(ValueError, match="column 'chl' has no observed value"):
        MultipleImputer(n_imputations=2, estimator=LinearRegression()).fit(frame, y)
    with pytest.raises(ValueError, match="column 'chl' has no observed value"):
        MultipleImputer(n_imputations=2, method="data-augmentation").fit(frame)
    with pytest.raises(ValueError, match="the outcome y has no observed value"):
        MultipleImputer(n_imputations=2, estimator=LinearRegression()).fit(
            X[:, :2], np.full(60, np.nan)
        )


# tests/test_common.py checks MultipleImputer as a transformer; with an
# estimator it is a classifier or a regressor, and scikit-learn checks those
# conventions too (classes_, y validation, column-vector y, one sample).
@parametrize_with_checks(
    [
        MultipleImputer(
            n_imputations=2, estimator=LogisticRegression(), random_state=0
        ),
        MultipleImputer(
            n_imputations=2, estimator=LogisticRegression(), include_outcome=False,
            random_state=0,
        ),
        MultipleImputer(n_imputations=2, estimator=LinearRegression(), random_state=0),
    ]
)  # fmt: skip
def test_scikit_learn_checks_with_an_estimator(estimator, check):
    check(estimator)


class _DrawnMeanImputer(TransformerMixin, BaseEstimator):
    """Not an EMImputer: fills with a mean that _draw_parameters moves by a
    standard normal draw per step (so n_steps steps move it by N(0, n_steps))."""

    def __init__(self, sample_posterior=False, random_state=None):
        self.sample_posterior = sample_posterior
        self.random_state = random_state

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        self.mean_ = np.nanmean(X, axis=0)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        X = np.array(X, dtype=float)
        return np.where(np.isnan(X), self.mean_, X)

    def _draw_parameters(self, X, *, n_steps, rng):
        drawn = copy.deepcopy(self)
        drawn.mean_ = self.mean_ + rng.normal(size=(n_steps, X.shape[1])).sum(axis=0)
        return drawn, drawn.transform(X)


def test_data_augmentation_is_offered_to_every_imputer_that_draws_parameters():
    # The capability (_draw_parameters), not the class, decides: a new model
    # needs no edit in MultipleImputer.
    _, _, X, _ = regression_data(200, seed=3)
    mi = MultipleImputer(
        _DrawnMeanImputer(), n_imputations=40, method="data-augmentation",
        burn_in=4, random_state=0,
    ).fit(X)  # fmt: skip
    means = np.array([imputer.mean_ for imputer in mi.imputers_])
    # Each chain draws its own parameters from the fitted start, N(0, burn_in)
    # away from it: sd 2 per column (40 chains: within 35% of it).
    assert_allclose(means.std(axis=0, ddof=1), 2.0, rtol=0.35)
    assert len({tuple(m) for m in means}) == 40
    completed = mi.multiple_transform(X)
    missing = np.isnan(X)
    for imputer, values in zip(mi.imputers_, completed, strict=True):
        assert imputer.sample_posterior
        filled = np.broadcast_to(imputer.mean_, X.shape)
        assert_allclose(values[missing], filled[missing])


# ------------------------------------------------------------- warm_start


def selection_data(n=3000, seed=0):
    """x0 goes missing more often when high (an MNAR column), x1 complete."""
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=n)
    X[rng.random(n) < special.ndtr(-0.5 + X[:, 0]), 0] = np.nan
    return X


def test_warm_start_refits_each_imputation_from_its_own_resample(fit_tolerance):
    from emimpute import MNARSelectionImputer

    X = selection_data()
    X_before = X.copy()
    template = MNARSelectionImputer([0], psi=0.5)
    mi = MultipleImputer(template, n_imputations=3, random_state=0, warm_start=True)
    first = copy.deepcopy(mi.fit(X).imputers_)
    # The same psi again: imputation l restarts at its own fit to bootstrap
    # resample l (an int random_state redraws the same rows), already at the
    # optimum, so a step or two meets the stopping rule.
    mi.fit(X)
    assert all(imp.n_iter_ <= 2 for imp in mi.imputers_)
    assert all(imp.n_iter_ >= 4 for imp in first)
    # A neighbouring psi: the cold multiple imputation's fits, within tol.
    previous = mi.imputers_
    mi.set_params(imputer=template.set_params(psi=0.6)).fit(X)
    cold = MultipleImputer(template, n_imputations=3, random_state=0).fit(X)
    assert_array_equal(X, X_before)
    for warm_l, cold_l, old in zip(mi.imputers_, cold.imputers_, previous, strict=True):
        assert warm_l is not old and old.psi == 0.5  # the previous fit kept
        assert warm_l.psi == 0.6 and warm_l.warm_start
        scale = np.nanstd(X, axis=0)
        assert_allclose(warm_l.mean_ / scale, cold_l.mean_ / scale, 0,
                        fit_tolerance(cold_l.tol))  # fmt: skip
    draws = np.array(mi.multiple_transform(X))
    assert_allclose(draws, np.array(cold.multiple_transform(X)), 0,
                    10 * fit_tolerance(1e-6, np.nanstd(X)))  # fmt: skip


def test_warm_start_is_ignored_by_imputers_without_it():
    X = selection_data(500)
    mi = MultipleImputer(n_imputations=2, random_state=0, warm_start=True).fit(X)
    first = mi.imputers_
    mi.fit(X)
    cold = MultipleImputer(n_imputations=2, random_state=0).fit(X)
    for warm_l, cold_l, old in zip(mi.imputers_, cold.imputers_, first, strict=True):
        assert warm_l is not old
        assert warm_l.n_iter_ == cold_l.n_iter_
        assert_array_equal(warm_l.mean_, cold_l.mean_)


def test_kept_fit_draws_are_the_multiple_transform_of_the_training_data():
    X, _, X_missing, _ = regression_data(300, seed=4)
    mi = MultipleImputer(n_imputations=3, random_state=0)
    mi._keep_fit_draws = True
    mi.fit(X_missing)
    for kept, again in zip(
        mi._fit_draws, mi.multiple_transform(X_missing), strict=True
    ):
        assert_array_equal(kept, again)
    assert MultipleImputer(n_imputations=2).fit(X_missing)._fit_draws is None
