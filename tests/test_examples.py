"""The examples run and say what they claim."""

import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_blood_sugar_example_runs_and_shows_the_three_estimates(capsys):
    runpy.run_path(str(EXAMPLES / "blood_sugar.py"), run_name="__main__")
    out = capsys.readouterr().out
    for label in ["complete cases", "regression fill", "EM maximum likelihood"]:
        assert label in out


def test_regression_fill_shrinks_the_variance_the_example_explains():
    """The claim of the example, checked on simulated data with known truth."""
    example = runpy.run_path(str(EXAMPLES / "blood_sugar.py"))
    rng = np.random.default_rng(0)
    truth = np.array([[49.0, -12.0], [-12.0, 38.0]])
    X = rng.multivariate_normal([85.0, 126.0], truth, size=20000)
    hide = rng.random(X.shape) < 0.3
    hide[hide.all(axis=1)] = False
    X[hide] = np.nan
    naive_mean, naive_cov = example["regression_fill"](X, n_iter=100)
    from emimpute import EMImputer

    em = EMImputer().fit(X)
    se = np.sqrt(2 * np.diag(truth) ** 2 / 20000)
    assert np.all(np.abs(np.diag(em.covariance_) - np.diag(truth)) < 4 * se)
    assert np.all(np.diag(naive_cov) < np.diag(truth) - 10 * se)
    naive_corr = naive_cov[0, 1] / np.sqrt(naive_cov[0, 0] * naive_cov[1, 1])
    true_corr = truth[0, 1] / np.sqrt(truth[0, 0] * truth[1, 1])
    assert abs(naive_corr) > abs(true_corr) + 0.02
    assert em.loglik_ > -np.inf


def test_pipeline_example_runs_and_em_beats_mean_imputation(capsys):
    runpy.run_path(
        str(EXAMPLES / "pipeline_and_model_selection.py"), run_name="__main__"
    )
    out = capsys.readouterr().out
    r2 = {
        line.split()[0]: float(line.split("=")[-1])
        for line in out.splitlines()
        if "imputation: R^2" in line
    }
    assert r2["EM"] > r2["mean"]
    assert "chosen: ridge" in out


def test_airquality_diagnostics_example_runs_and_saves_its_figures(capsys, tmp_path):
    example = runpy.run_path(str(EXAMPLES / "airquality_diagnostics.py"))
    example["main"](tmp_path)
    out = capsys.readouterr().out
    assert "chi-square = 35.1062, df = 14" in out
    assert "6.0    30  0.700" in out  # June: 70% of ozone values missing
    for name in ("patterns", "imputed", "loglik"):
        assert (tmp_path / f"airquality_{name}.png").stat().st_size > 1000


def test_mnar_income_example_recovers_the_mean_and_draws_the_sensitivity(
    capsys, tmp_path, fit_tolerance
):
    example = runpy.run_path(str(EXAMPLES / "mnar_income.py"))
    table = example["main"](tmp_path)
    out = capsys.readouterr().out
    assert "1. MAR (EMImputer)" in out and "psi estimated" in out
    # The estimate moves up with psi, and the MAR answer is psi = 0.
    assert np.all(np.diff(table["mean log income"]) > 0)
    full, survey = example["simulate"]()
    from emimpute import EMImputer

    at_zero = table.loc[np.isclose(table["psi"], 0.0), "mean log income"].item()
    # Two fits (the selection model at psi = 0 and the MAR one) at the
    # default tol: the stopping rule's tolerance (tests/conftest.py).
    mar = EMImputer().fit(survey)
    sd = np.sqrt(mar.covariance_[0, 0])
    assert at_zero == pytest.approx(mar.mean_[0], abs=fit_tolerance(mar.tol, sd))
    assert (tmp_path / "mnar_income_sensitivity.png").stat().st_size > 1000


def test_multiple_imputation_example_pools_twenty_fits(capsys):
    example = runpy.run_path(str(EXAMPLES / "multiple_imputation.py"))
    table = example["main"]()
    out = capsys.readouterr().out
    for label in (
        "1. Complete cases",
        "2. One EM imputation",
        "3. Multiple imputation",
    ):
        assert label in out
    assert list(table.index) == ["intercept", "x0", "x1"]
    assert (table["fmi"] > 0.1).all() and (table["fmi"] < 0.9).all()
    assert table.loc["x0", "ci_low"] < 1.0 < table.loc["x0", "ci_high"]


def test_mnar_workflow_example_finds_the_tipping_point_and_writes_the_report(
    capsys, tmp_path
):
    example = runpy.run_path(str(EXAMPLES / "mnar_workflow.py"))
    table, point = example["main"](tmp_path)
    out = capsys.readouterr().out
    # Little's statistic (35.106175) comes from a fit at tol = 1e-10, which
    # moves it by ~1e-7, far less than its distance to a rounding boundary.
    assert "chi-square = 35.1062" in out and "Tipping point" in out
    # The MAR interval includes 40 ppb; +60% excludes it; the tipping point
    # lies in between.
    assert table["ci_low"].iloc[0] < 40 < table["ci_low"].iloc[-1]
    assert 1.0 < point.delta < 1.6
    report = (tmp_path / "airquality_mnar_report.md").read_text()
    for heading in (
        "## MCAR test",
        "## Selection model (MNAR)",
        "## Sensitivity to MNAR",
    ):
        assert heading in report
    figures = tmp_path / "airquality_mnar_report_figures"
    assert len(list(figures.glob("*.png"))) == 3  # patterns, ozone, sensitivity


def test_dask_example_matches_the_in_memory_fit(capsys, assert_same_fit):
    example = runpy.run_path(str(EXAMPLES / "dask_larger_than_memory.py"))
    imputer, reference, imputed = example["main"]()
    # Two fits at the default tol (sums over blocks in another order).
    assert_same_fit(
        imputer.mean_,
        imputer.covariance_,
        reference.mean_,
        reference.covariance_,
        tol=reference.tol,
        scale=np.sqrt(np.diag(reference.covariance_)),
    )
    assert len(imputed) == 200_000 and not imputed.isna().any().any()
    # Income is missing more often for older people, who earn more (MAR
    # given age); the fit recovers its true mean, 20 + 0.8 E[age].
    truth_income = 20 + 0.8 * 45
    assert abs(imputer.mean_[1] - truth_income) < 0.2
    out = capsys.readouterr().out
    assert "Largest difference from the in-memory fit" in out


def test_outliers_example_shows_the_t_ahead_on_errors_and_even_on_clean_data(capsys):
    """The issue's bar: on contaminated data the t is clearly better than the
    normal model (imputation of the clean rows and correlations); on clean
    data it is no worse than 2%."""
    example = runpy.run_path(str(EXAMPLES / "outliers_student_t.py"))
    contaminated, clean = example["main"]()
    assert "StudentTImputer" in capsys.readouterr().out
    rmse, corr = "RMSE clean rows", "max |correlation error|"
    t, normal = contaminated.loc["StudentTImputer"], contaminated.loc["EMImputer"]
    assert t[rmse] < 0.97 * normal[rmse]
    assert t[corr] < 0.5 * normal[corr]
    for method in ("IterativeImputer", "KNNImputer"):
        assert t[rmse] < contaminated.loc[method, rmse]
    assert clean.loc["StudentTImputer", rmse] <= 1.02 * clean.loc["EMImputer", rmse]


def test_survey_copula_example_keeps_dtypes_valid_levels_and_beats_the_mode(
    capsys, tmp_path
):
    """The example's claims on the ANES survey and the fair occupations:
    dtypes kept, every imputed answer a level seen in the data, better than
    the median on every kind, and categories better than the mode and than
    IterativeImputer's rounded codes."""
    pytest.importorskip("statsmodels")  # the data (the dev extra has it)
    example = runpy.run_path(str(EXAMPLES / "survey_copula.py"))
    results = example["main"](tmp_path)
    assert "Kinds inferred" in capsys.readouterr().out
    assert results["valid"] and results["dtypes"]
    copula, median = results["GaussianCopulaImputer"], results["median"]
    for kind in ("ordinal", "continuous", "binary"):
        assert copula[kind] < median[kind]
    occupations = results["occupations"]
    for k in range(2):
        assert occupations["GaussianCopulaImputer"][k] > occupations["mode"][k]
        assert (
            occupations["GaussianCopulaImputer"][k]
            > occupations["IterativeImputer (rounded codes)"][k]
        )


def test_censored_values_example_recovers_the_truth_where_substitutes_do_not(capsys):
    example = runpy.run_path(str(EXAMPLES / "censored_values.py"))
    table = example["main"]()
    out = capsys.readouterr().out
    assert "all below it" in out and "all above it" in out
    truth = table.loc["truth"]
    # Multiple imputation with the limits: every moment within 0.03 (the
    # study in tests/imputers/test_copula_imputer.py: 0.016-0.026 for one
    # draw on 4,000 rows; ten imputations average out part of it).
    copula = table.loc["copula with the limits (MI, 10)"]
    assert np.all(np.abs(copula - truth) < 0.03), copula - truth
    # Treating the censored lead values as missing imputes them from the
    # detected ones, all above the limit: mean of logs far too high, SD too
    # small; keeping the top code shrinks the SD of log income.
    missing = table.loc["censored as missing"]
    assert missing["mean log lead"] - truth["mean log lead"] > 0.3
    assert missing["SD log lead"] < truth["SD log lead"] - 0.2
    substituted = table.loc["limit / 2, top code kept"]
    assert substituted["SD log income"] < truth["SD log income"] - 0.03


def test_customer_segments_example_chooses_three_and_beats_one_normal(tmp_path):
    example = runpy.run_path(str(EXAMPLES / "customer_segments.py"))
    found = example["main"](tmp_path)
    # Three segments: BIC and the held-out log-likelihood both find them.
    assert found["chosen"] == 3
    assert found["search"].best_params_["n_components"] == 3
    # The mixture imputes from the customer's own segment: 0.516 against
    # the single normal's 0.578 (a tenth less error) ...
    rmse = found["rmse"].to_numpy()
    assert rmse[1] < 0.93 * rmse[0], rmse
    # ... and clusters the incomplete rows at least as well as filling first.
    ari = found["ari"].to_numpy()
    assert ari[0] >= ari[1] and ari[0] > 0.85, ari
    assert (tmp_path / "customer_segments.png").stat().st_size > 1000
