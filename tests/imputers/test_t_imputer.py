"""StudentTImputer (emimpute/imputers/_t_imputer.py): the shell of the
multivariate t.  The kernel's agreement with a direct maximisation of the t
likelihood is in tests/models/test_student_t.py; here the estimator's
attributes against closed forms and scipy, robustness on contaminated data
against simulation truth, and its place in multiple imputation, model
files, reports and the command line."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from emimpute import EMImputer, MultipleImputer, StudentTImputer
from emimpute._model_io import load_model, save_model
from emimpute.cli import main
from emimpute.report import record

CORRELATION = np.array([[1.0, 0.7, 0.4], [0.7, 1.0, 0.5], [0.4, 0.5, 1.0]])


def contaminated(n=600, share=0.05, shift=8.0, missing=0.2, seed=0):
    """Correlated normal rows, a share of them shifted by ``shift`` SD in
    the first two columns, then cells hidden completely at random.
    Returns (incomplete, complete, outlier rows)."""
    rng = np.random.default_rng(seed)
    complete = rng.multivariate_normal(np.zeros(3), CORRELATION, size=n)
    outliers = np.arange(int(share * n))
    complete[outliers, :2] += shift
    X = complete.copy()
    X[rng.random(X.shape) < missing] = np.nan
    return X, complete, outliers


def test_attributes_follow_the_t_parameterisation():
    X, _, _ = contaminated()
    imputer = StudentTImputer().fit(X)
    assert 0.5 <= imputer.df_ <= 1000
    assert_allclose(
        imputer.covariance_, imputer.scale_ * imputer.df_ / (imputer.df_ - 2)
    )
    assert imputer.converged_
    assert np.all(np.diff(imputer.loglik_path_) >= -1e-9 * abs(imputer.loglik_))
    fixed = StudentTImputer(df=2.0).fit(X)
    assert fixed.df_ == 2.0
    assert np.isnan(fixed.covariance_).all()  # no finite variance at df <= 2


def test_transform_fills_conditional_means_and_keeps_observed_cells():
    X, _, _ = contaminated()
    imputer = StudentTImputer(df=4.0).fit(X)
    completed = imputer.transform(X)
    observed = ~np.isnan(X)
    assert (completed[observed] == X[observed]).all()
    # Row by row, the normal regression formula under (mean_, scale_).
    mu, S = imputer.mean_, imputer.scale_
    for i in np.flatnonzero(np.isnan(X).any(axis=1) & ~np.isnan(X).all(axis=1))[:25]:
        m, o = np.isnan(X[i]), ~np.isnan(X[i])
        expected = mu[m] + S[np.ix_(m, o)] @ np.linalg.solve(
            S[np.ix_(o, o)], X[i, o] - mu[o]
        )
        assert_allclose(completed[i, m], expected, rtol=1e-10, atol=1e-12)


def test_score_samples_is_the_observed_t_density():
    X, _, _ = contaminated(n=200)
    imputer = StudentTImputer().fit(X)
    scores = imputer.score_samples(X)
    for i in range(40):
        o = ~np.isnan(X[i])
        if not o.any():
            assert scores[i] == 0.0
            continue
        expected = stats.multivariate_t(
            imputer.mean_[o], imputer.scale_[np.ix_(o, o)], df=imputer.df_
        ).logpdf(X[i, o])
        assert scores[i] == pytest.approx(expected, rel=1e-10)
    assert imputer.score(X) == pytest.approx(scores.mean())
    assert imputer.score(X) * len(X) == pytest.approx(imputer.loglik_, rel=1e-8)


def test_conditional_variances_are_those_of_the_conditional_t():
    X = np.array([[1.0, np.nan, 0.5], [np.nan, np.nan, -1.0]])
    imputer = StudentTImputer(df=5.0).fit(contaminated(n=300)[0])
    _, variance = imputer.conditional_moments(X)
    mu, S, df = imputer.mean_, imputer.scale_, imputer.df_
    for i in range(2):
        m, o = np.isnan(X[i]), ~np.isnan(X[i])
        K = np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)])
        C = S[np.ix_(m, m)] - S[np.ix_(m, o)] @ K
        d = X[i, o] - mu[o]
        d2 = d @ np.linalg.solve(S[np.ix_(o, o)], d)
        dof = df + o.sum()
        expected = np.diag(C) * (df + d2) / dof * dof / (dof - 2)
        assert_allclose(variance[i, m], expected, rtol=1e-10)
        assert (variance[i, o] == 0).all()


def test_large_df_gives_the_normal_fit(fit_tolerance):
    X, _, _ = contaminated(n=300, share=0.0)
    normal = EMImputer(tol=1e-10).fit(X)
    t = StudentTImputer(df=1e8, tol=1e-10).fit(X)
    scale = np.sqrt(np.diag(normal.covariance_))
    tolerance = fit_tolerance(1e-10)
    # df = 1e8 moves the weights from 1 by about p / df: far below tolerance.
    assert_allclose(t.mean_ / scale, normal.mean_ / scale, atol=tolerance)
    assert_allclose(
        t.covariance_ / np.outer(scale, scale),
        normal.covariance_ / np.outer(scale, scale),
        atol=tolerance,
    )


def test_outliers_pull_the_normal_fit_but_not_the_t():
    """Simulation truth: 5% of rows shifted by 8 SD.  On the clean rows'
    hidden cells the t imputes better, and its correlation matrix is closer
    to the truth, than the normal model's."""
    errors = {"t": [], "normal": []}
    correlation = {"t": [], "normal": []}
    for seed in range(3):
        X, complete, outliers = contaminated(n=800, seed=seed)
        clean = np.setdiff1d(np.arange(len(X)), outliers)
        hidden = np.isnan(X[clean])
        for name, imputer in (("t", StudentTImputer()), ("normal", EMImputer())):
            completed = imputer.fit(X).transform(X)
            error = completed[clean][hidden] - complete[clean][hidden]
            errors[name].append(np.sqrt(np.mean(error**2)))
            sd = np.sqrt(np.diag(imputer.covariance_))
            fitted = imputer.covariance_ / np.outer(sd, sd)
            correlation[name].append(np.max(np.abs(fitted - CORRELATION)))
    assert np.mean(errors["t"]) < 0.95 * np.mean(errors["normal"])
    assert np.mean(correlation["t"]) < 0.5 * np.mean(correlation["normal"])


def test_row_weights_mark_the_outliers():
    X, _, outliers = contaminated()
    weights = StudentTImputer().fit(X).row_weights(X)
    clean = np.setdiff1d(np.arange(len(X)), outliers)
    assert weights[outliers].mean() < 0.25 * weights[clean].mean()
    assert weights[np.isnan(X).all(axis=1)].tolist() == [1.0] * int(
        np.isnan(X).all(axis=1).sum()
    )


@pytest.mark.parametrize("method", ["bootstrap", "data-augmentation"])
def test_multiple_imputation_with_the_t(method):
    X, complete, _ = contaminated(n=300, share=0.0)
    mi = MultipleImputer(
        StudentTImputer(df=10.0), n_imputations=4, method=method, random_state=0
    ).fit(X)
    draws = mi.multiple_transform(X)
    assert len(draws) == 4
    hidden = np.isnan(X)
    for draw in draws:
        assert (draw[~hidden] == X[~hidden]).all()
        assert not np.isnan(draw).any()
    # Proper imputations differ between data sets where cells were hidden.
    assert np.std([draw[hidden] for draw in draws], axis=0).min() > 0


def test_model_file_round_trip(tmp_path):
    X, _, _ = contaminated(n=200)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    imputer = StudentTImputer().fit(frame)
    save_model(imputer, tmp_path / "t.json")
    loaded = load_model(tmp_path / "t.json")
    assert type(loaded) is StudentTImputer
    assert loaded.df_ == imputer.df_
    assert_allclose(loaded.transform(frame), imputer.transform(frame), rtol=1e-15)
    assert_allclose(loaded.covariance_, imputer.covariance_, rtol=1e-15)


def test_report_records_the_t():
    X, _, _ = contaminated(n=200)
    text = record(StudentTImputer(df=4.0).fit(X))
    assert "StudentTImputer" in text
    assert "df = 4 (fixed)" in text


def test_command_line_method_t(tmp_path):
    X, _, _ = contaminated(n=200)
    path = tmp_path / "data.csv"
    pd.DataFrame(X, columns=["a", "b", "c"]).to_csv(path, index=False)
    out = tmp_path / "out.csv"
    main(["impute", str(path), "--output", str(out), "--method", "t", "--df", "4"])
    imputed = pd.read_csv(out)
    expected = StudentTImputer(df=4.0).fit(X).transform(X)
    assert_allclose(imputed.to_numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize("df", ["many", 0, -1.0, float("nan")])
def test_bad_df_is_refused_with_its_name(df):
    with pytest.raises(ValueError, match="df"):
        StudentTImputer(df=df).fit(np.eye(3))


def test_collinear_binary_columns_fit_with_the_automatic_ridge():
    """Found by the defaults property test: x2 = 2 x1 on 0/1 columns.  Under
    the automatic ridge the scale is nearly singular, rounding made some
    d^2 slightly negative and the df search took log of a negative number."""
    X = np.array(
        [
            [0.0, 0.0, 0.0],
            [0.0, 1.0, 2.0],
            [1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 2.0],
        ]
    )
    with pytest.warns(Warning) as caught:
        imputer = StudentTImputer().fit(X)
    assert all(
        type(w.message).__name__ in ("RegularisationWarning", "ConvergenceWarning")
        for w in caught
    )
    assert np.all(np.isfinite(imputer.transform(X)))
    assert np.all(imputer.row_weights(X) > 0)
