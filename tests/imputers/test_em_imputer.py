"""EMImputer as a scikit-learn transformer: what users rely on."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from emimpute import EMImputer
from emimpute.datasets import load_blood_sugar


def normal_data(n=300, p=4, rate=0.25, seed=0):
    """Correlated normal data with cells missing completely at random."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p, p))
    cov = A @ A.T / p + np.eye(p)
    mean = rng.normal(scale=3, size=p)
    X = rng.multivariate_normal(mean, cov, size=n)
    X_missing = X.copy()
    X_missing[rng.random((n, p)) < rate] = np.nan
    return X, X_missing, mean, cov


def reference_conditional(x, mean, cov):
    """Conditional mean and variance of one row's missing cells (textbook form)."""
    m = np.isnan(x)
    o = ~m
    filled, var = x.copy(), np.zeros_like(x)
    if not m.any():
        return filled, var
    if not o.any():
        return mean.copy(), np.diag(cov).copy()
    coef = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)])
    filled[m] = mean[m] + coef.T @ (x[o] - mean[o])
    var[m] = np.diag(cov[np.ix_(m, m)] - cov[np.ix_(m, o)] @ coef)
    return filled, var


def test_transform_fills_conditional_means_and_keeps_observed_cells():
    _, X, _, _ = normal_data()
    X[0] = np.nan  # a row with nothing observed
    imputer = EMImputer().fit(X)
    imputed = imputer.transform(X)
    mean, variance = imputer.conditional_moments(X)
    observed = ~np.isnan(X)
    assert_allclose(imputed[observed], X[observed])
    for i in range(len(X)):
        ref_mean, ref_var = reference_conditional(
            X[i], imputer.mean_, imputer.covariance_
        )
        assert_allclose(imputed[i], ref_mean, rtol=1e-10, atol=1e-10)
        assert_allclose(mean[i], ref_mean, rtol=1e-10, atol=1e-10)
        assert_allclose(variance[i], ref_var, rtol=1e-10, atol=1e-12)


def test_new_data_is_imputed_with_the_fitted_parameters_not_refitted():
    _, X, _, _ = normal_data(seed=1)
    imputer = EMImputer().fit(X)
    mean, cov = imputer.mean_.copy(), imputer.covariance_.copy()
    _, X_new, _, _ = normal_data(n=50, seed=2)
    imputed = imputer.transform(X_new)
    assert_allclose(imputer.mean_, mean)
    assert_allclose(imputer.covariance_, cov)
    ref = np.array([reference_conditional(x, mean, cov)[0] for x in X_new])
    assert_allclose(imputed, ref, rtol=1e-10, atol=1e-10)


def test_score_samples_is_the_observed_data_normal_log_density():
    _, X, _, _ = normal_data(n=80, seed=3)
    imputer = EMImputer().fit(X)
    expected = []
    for x in X:
        o = ~np.isnan(x)
        expected.append(
            stats.multivariate_normal.logpdf(
                x[o], imputer.mean_[o], imputer.covariance_[np.ix_(o, o)]
            )
            if o.any()
            else 0.0
        )
    assert imputer.loglik_ == pytest.approx(np.sum(expected), rel=1e-10)
    X[0] = np.nan  # a row with nothing observed scores exactly 0
    expected[0] = 0.0
    scores = imputer.score_samples(X)
    assert scores[0] == 0.0
    assert_allclose(scores, expected, rtol=1e-10)
    assert imputer.score(X) == pytest.approx(np.mean(expected))
    assert imputer.loglik_path_[-1] == pytest.approx(imputer.loglik_)
    assert len(imputer.loglik_path_) == imputer.n_iter_


def test_dataframe_in_original_units_matches_array_fit():
    data = load_blood_sugar()
    from_frame = EMImputer().fit(data)
    from_array = EMImputer().fit(data.to_numpy())
    assert_allclose(from_frame.mean_, from_array.mean_)
    assert list(from_frame.feature_names_in_) == ["F", "PP"]
    # The MLE on this data, found independently by direct maximisation
    # (tests/models/test_normal.py); here only the units and the divisor n.
    assert from_frame.mean_[0] == pytest.approx(85.311, abs=1e-3)
    assert from_frame.covariance_[0, 0] == pytest.approx(49.80, abs=1e-2)


def test_sample_posterior_draws_reproducibly_around_the_conditional_mean():
    _, X, _, _ = normal_data(n=60, seed=4)
    fitted = EMImputer().fit(X)
    draws_a = EMImputer(sample_posterior=True, random_state=7).fit(X).transform(X)
    draws_b = EMImputer(sample_posterior=True, random_state=7).fit(X).transform(X)
    draws_c = EMImputer(sample_posterior=True, random_state=8).fit(X).transform(X)
    assert_allclose(draws_a, draws_b)
    missing = np.isnan(X)
    assert not np.allclose(draws_a[missing], draws_c[missing])
    assert_allclose(draws_a[~missing], X[~missing])
    # Many draws of one row: sample moments approach the conditional moments.
    row = X[[np.argmax(missing.sum(axis=1))]]
    sampler = EMImputer(sample_posterior=True, random_state=0).fit(X)
    many = sampler.transform(np.repeat(row, 20000, axis=0))
    cond_mean, cond_var = fitted.conditional_moments(row)
    m = missing[np.argmax(missing.sum(axis=1))]
    se = np.sqrt(cond_var[0, m] / 20000)
    assert np.all(np.abs(many[:, m].mean(axis=0) - cond_mean[0, m]) < 5 * se)
    assert_allclose(many[:, m].var(axis=0), cond_var[0, m], rtol=0.05)


def test_grid_search_chooses_a_ridge_when_columns_outnumber_the_information():
    # 15 correlated columns, 40 rows, 30% missing: the MLE overfits, and the
    # held-out likelihood (score) prefers shrinkage.
    _, X, _, _ = normal_data(n=40, p=15, rate=0.3, seed=5)
    search = GridSearchCV(EMImputer(), {"ridge": [0.0, 2.0, 8.0]}, cv=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X)
    assert search.best_params_["ridge"] > 0


def test_pipeline_and_cross_validation():
    X_full, X, _, _ = normal_data(n=200, seed=6)
    y = X_full @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1
    pipe = make_pipeline(EMImputer(), LinearRegression())
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,)
    assert np.all(scores > 0.5)


def test_column_transformer_with_a_categorical_column():
    _, X, _, _ = normal_data(n=50, seed=7)
    frame = pd.DataFrame(X, columns=list("abcd"))
    frame["city"] = np.where(np.arange(50) % 2, "Oslo", "Lima")
    transformer = ColumnTransformer(
        [
            ("num", EMImputer(), list("abcd")),
            ("cat", OneHotEncoder(sparse_output=False), ["city"]),
        ]
    ).set_output(transform="pandas")
    out = transformer.fit_transform(frame)
    assert list(out.columns[:4]) == [f"num__{c}" for c in "abcd"]
    assert not out.isna().any().any()


def test_set_output_pandas_keeps_names_and_index():
    data = load_blood_sugar()
    data.index = data.index + 100
    out = EMImputer().set_output(transform="pandas").fit_transform(data)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["F", "PP"]
    assert list(out.index) == list(data.index)


def test_sentinel_missing_values_on_an_integer_array():
    _, X, _, _ = normal_data(n=100, seed=8)
    as_int = np.where(np.isnan(X), -1, np.round(np.abs(X) * 10)).astype(np.int64)
    as_nan = np.where(as_int == -1, np.nan, as_int.astype(float))
    sentinel = EMImputer(missing_values=-1).fit(as_int)
    reference = EMImputer().fit(as_nan)
    assert_allclose(sentinel.mean_, reference.mean_)
    assert_allclose(sentinel.transform(as_int), reference.transform(as_nan))
    assert (as_int == -1).any()  # the caller's array is untouched


def test_add_indicator_appends_the_mask_of_columns_missing_in_fit():
    _, X, _, _ = normal_data(n=50, seed=9)
    X[:, 2] = np.where(np.isnan(X[:, 2]), 0.5, X[:, 2])  # column 2 complete
    imputer = EMImputer(add_indicator=True).fit(X)
    out = imputer.transform(X)
    missing = np.isnan(X)
    assert out.shape == (50, 4 + 3)
    assert_allclose(out[:, 4:], missing[:, [0, 1, 3]])
    assert list(imputer.get_feature_names_out()) == [
        "x0",
        "x1",
        "x2",
        "x3",
        "missingindicator_x0",
        "missingindicator_x1",
        "missingindicator_x3",
    ]


@pytest.mark.parametrize("keep", [False, True])
def test_empty_features_are_dropped_or_zero_filled(keep):
    _, X, _, _ = normal_data(n=60, seed=10)
    X[:, 1] = np.nan
    imputer = EMImputer(keep_empty_features=keep).fit(X)
    out = imputer.transform(X)
    assert np.isnan(imputer.mean_[1])
    reference = EMImputer().fit(X[:, [0, 2, 3]])
    assert_allclose(imputer.mean_[[0, 2, 3]], reference.mean_)
    if keep:
        assert out.shape == (60, 4)
        assert_allclose(out[:, 1], 0.0)
        assert_allclose(out[:, [0, 2, 3]], reference.transform(X[:, [0, 2, 3]]))
        assert list(imputer.get_feature_names_out()) == ["x0", "x1", "x2", "x3"]
    else:
        assert_allclose(out, reference.transform(X[:, [0, 2, 3]]))
        assert list(imputer.get_feature_names_out()) == ["x0", "x2", "x3"]


def test_copy_false_imputes_in_place_and_copy_true_never_does():
    _, X, _, _ = normal_data(n=40, seed=11)
    original = X.copy()
    out = EMImputer().fit(X).transform(X)
    assert_allclose(X, original)  # NaN positions compare equal
    inplace = X.copy()
    out_inplace = EMImputer(copy=False).fit(inplace).transform(inplace)
    assert np.shares_memory(out_inplace, inplace)
    assert_allclose(out_inplace, out)


def test_float32_input_gives_float32_output_close_to_float64():
    _, X, _, _ = normal_data(n=100, seed=12)
    out32 = EMImputer().fit_transform(X.astype(np.float32))
    out64 = EMImputer().fit_transform(X)
    assert out32.dtype == np.float32
    assert_allclose(out32, out64, rtol=1e-4, atol=1e-4)


def test_not_converging_warns_once_with_advice():
    _, X, _, _ = normal_data(n=200, rate=0.5, seed=13)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imputer = EMImputer(max_iter=1, accelerate=False).fit(X)
    convergence = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(convergence) == 1
    assert "max_iter" in str(convergence[0].message)
    assert not imputer.converged_
    assert imputer.n_iter_ == 1


def test_verbose_prints_progress(capsys):
    _, X, _, _ = normal_data(n=100, seed=14)
    EMImputer(verbose=2).fit(X)
    printed = capsys.readouterr().out
    assert "[EMImputer] iteration    1" in printed
    assert "converged after" in printed
    EMImputer(verbose=0).fit(X)
    assert capsys.readouterr().out == ""


def test_squarem_reaches_the_plain_em_estimate_with_fewer_steps():
    _, X, _, _ = normal_data(n=500, p=5, rate=0.5, seed=15)
    plain = EMImputer(accelerate=False, tol=1e-10, max_iter=5000).fit(X)
    fast = EMImputer(accelerate=True, tol=1e-10, max_iter=5000).fit(X)
    assert_allclose(fast.mean_, plain.mean_, rtol=1e-6, atol=1e-6)
    assert_allclose(fast.covariance_, plain.covariance_, rtol=1e-6, atol=1e-6)
    assert fast.loglik_ >= plain.loglik_ - 1e-8
    assert fast.n_em_steps_ < plain.n_em_steps_
    assert np.all(np.diff(fast.loglik_path_) >= -1e-8 * abs(fast.loglik_))


def test_em_beats_naive_regression_fill_on_variances():
    """The full E-step recovers the variance that the regression fill loses."""
    X_full, X, _, cov = normal_data(n=4000, p=3, rate=0.4, seed=16)
    imputer = EMImputer().fit(X)
    filled = imputer.transform(X)  # conditional means, as the shortcut uses
    naive_cov = np.cov(filled.T, bias=True)
    truth = np.cov(X_full.T, bias=True)
    em_error = np.abs(np.diag(imputer.covariance_) - np.diag(truth))
    assert np.all(np.diag(naive_cov) < np.diag(truth) * 0.85)
    assert np.all(em_error < 0.05 * np.diag(truth))


def test_mar_missingness_biases_complete_cases_but_not_em():
    """Under MAR (missingness of y driven by the observed x) the complete-case
    mean of y is biased; the EM maximum likelihood estimate is not."""
    rng = np.random.default_rng(17)
    n = 20000
    x = rng.standard_normal(n)
    y = 1.0 + 0.8 * x + 0.6 * rng.standard_normal(n)
    missing = rng.random(n) < 1 / (1 + np.exp(-2 * x))  # high x: y more often missing
    X = np.column_stack([x, np.where(missing, np.nan, y)])
    em = EMImputer().fit(X)
    se = 1.0 / np.sqrt(n * (1 - missing.mean()))
    assert abs(em.mean_[1] - 1.0) < 4 * se
    assert abs(np.nanmean(X[:, 1]) - 1.0) > 30 * se
    assert em.covariance_[1, 1] == pytest.approx(0.8**2 + 0.6**2, rel=0.05)


def test_parameter_draws_follow_the_complete_data_posterior():
    # With nothing missing, one data-augmentation P-step draws (mu, S) from
    # their posterior given the data (Schafer 1997, sec. 5.2.2): S from the
    # inverse Wishart with n - 1 df and scale A (the scatter about the mean),
    # so E[S] = A / (n - p - 2), and mu | S ~ N(ybar, S / n).
    rng = np.random.default_rng(0)
    X = rng.multivariate_normal([1.0, -1.0], [[1.0, 0.6], [0.6, 2.0]], size=40)
    n, p = X.shape
    fitted = EMImputer().fit(X)
    draws = [
        fitted._draw_parameters(X, n_steps=2, rng=np.random.RandomState(seed))[0]
        for seed in range(2000)
    ]
    means = np.array([d.mean_ for d in draws])
    covariances = np.array([d.covariance_ for d in draws])
    centred = X - X.mean(axis=0)
    expected_cov = centred.T @ centred / (n - p - 2)
    # Monte Carlo error of 2000 draws: a few percent of each quantity.
    np.testing.assert_allclose(covariances.mean(axis=0), expected_cov, rtol=0.06)
    np.testing.assert_allclose(means.mean(axis=0), X.mean(axis=0), atol=0.02)
    np.testing.assert_allclose(means.var(axis=0), np.diag(expected_cov) / n, rtol=0.1)
    assert fitted.mean_ is not draws[0].mean_  # the fitted imputer is untouched
    np.testing.assert_array_equal(fitted.mean_, EMImputer().fit(X).mean_)
