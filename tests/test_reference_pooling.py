"""Rubin's rules, D1 and D2 against R: ``mice::pool`` (mice 3.15.0) and
``mitml::testModels`` (mitml 0.4.4, which ``mice::D1`` calls).

The fixtures in tests/reference/ hold R's inputs (per-imputation estimates,
variances, covariance matrices, chi-square statistics) and R's outputs; the
scripts next to them (``Rscript tests/reference/mice_pool.R``,
``Rscript tests/reference/mitml_tests.R``) regenerate them.  These tests
never need R.  Numbers are stored with 17 significant digits, so the inputs
are R's doubles exactly.

Tolerances: means, variances and the statistics are the same few floating
point operations on identical inputs, equal to a few ulps (rtol 1e-12);
degrees of freedom and p-values go through R's ``pt``/``pf`` and SciPy's
``stdtr``/``fdtr``, different implementations of the same functions, so
they are compared at rtol 1e-10 (the brief's requirement is 1e-8).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from emimpute.pooling import barnard_rubin_df, pool, pooled_chi2_test, pooled_wald_test

REFERENCE = Path(__file__).parent / "reference"
MICE = json.loads((REFERENCE / "mice_pool.json").read_text())
MITML = json.loads((REFERENCE / "mitml_tests.json").read_text())

ARITHMETIC = 1e-12  # identical operations on identical doubles
DISTRIBUTION = 1e-10  # R's and SciPy's t and F distribution functions

# Cases where mice 3.15 does not floor lambda at 1e-4 (every lambda above it).
UNFLOORED = ["lm_nhanes", "glm_nhanes2"]
# Cases with lambda < 1e-4, where mice 3.15's df uses lambda = 1e-4.
FLOORED = ["lm_complete_column", "scalar_tiny_b"]
MICE_LAMBDA_FLOOR = 1e-4


def _pool_case(case):
    return pool(
        np.array(case["estimates"]),
        np.array(case["variances"]),
        dfcom=case["dfcom"],
        names=case["terms"],
    )


def test_fixtures_record_their_versions():
    assert MICE["meta"]["mice"] == "3.15.0"
    assert MITML["meta"]["mitml"] == "0.4.4"
    assert MITML["meta"]["command"] == "Rscript tests/reference/mitml_tests.R"


@pytest.mark.parametrize("name", UNFLOORED)
def test_pool_equals_mice_pool(name):
    case = MICE["cases"][name]
    result = _pool_case(case)
    table = result.summary()
    assert list(table.index) == case["terms"]
    pooled, summary = case["pooled"], case["summary"]
    for column in ["estimate", "ubar", "b", "t", "riv", "lambda"]:
        assert_allclose(table[column], pooled[column], rtol=ARITHMETIC, err_msg=column)
    for column in ["std_error", "statistic"]:
        assert_allclose(table[column], summary[column], rtol=ARITHMETIC, err_msg=column)
    assert_allclose(table["df"], pooled["df"], rtol=ARITHMETIC)
    assert_allclose(table["fmi"], pooled["fmi"], rtol=ARITHMETIC)
    for column in ["p_value", "ci_low", "ci_high"]:
        assert_allclose(
            table[column], summary[column], rtol=DISTRIBUTION, err_msg=column
        )
    assert result.dfcom == case["dfcom"]


@pytest.mark.parametrize("name", FLOORED)
def test_pool_differs_from_mice_315_only_by_its_lambda_floor(name):
    """mice 3.15's barnard.rubin() sets lambda = max(lambda, 1e-4) before the
    Barnard-Rubin df; we do not (as mice's development version).  With
    lambda below 1e-4 the df differ by a relative amount of about
    1e-4 - lambda; everything not downstream of df is identical."""
    case = MICE["cases"][name]
    result = _pool_case(case)
    pooled = case["pooled"]
    m, dfcom = case["m"], case["dfcom"]
    for field in ["estimate", "ubar", "b", "t"]:
        assert_allclose(getattr(result, field), pooled[field], rtol=ARITHMETIC)
    lam = result.lambda_[0]
    assert lam < MICE_LAMBDA_FLOOR
    # Ours is the unfloored formula, independently: nu_obs * df_old / (...).
    nu_obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    expected = nu_obs if lam == 0 else 1 / (1 / nu_obs + lam**2 / (m - 1))
    assert result.df[0] == pytest.approx(expected, rel=ARITHMETIC)
    # R's is the same formula at lambda = 1e-4.
    floored = barnard_rubin_df(m, MICE_LAMBDA_FLOOR, dfcom)
    assert pooled["df"][0] == pytest.approx(floored, rel=ARITHMETIC)
    # The size of the difference: (1e-4 - lambda) / (1 - lambda) relative,
    # plus nu_obs * 1e-8 / (m - 1) from df_old = (m - 1) / 1e-8.
    relative = (result.df[0] - pooled["df"][0]) / result.df[0]
    predicted = (MICE_LAMBDA_FLOOR - lam) / (
        1 - lam
    ) + nu_obs * MICE_LAMBDA_FLOOR**2 / (m - 1)
    assert relative == pytest.approx(predicted, rel=1e-3)
    assert 0.99e-4 < relative < 1.01e-4
    # fmi = (riv + 2 / (df + 3)) / (riv + 1) moves with df: with riv ~ 0,
    # fmi ~ 2 / (df + 3), so by a relative 1e-4 df / (df + 3) (about 7e-6 here).
    r_fmi = (result.riv[0] + 2 / (pooled["df"][0] + 3)) / (result.riv[0] + 1)
    assert pooled["fmi"][0] == pytest.approx(r_fmi, rel=ARITHMETIC)
    fmi_relative = (pooled["fmi"][0] - result.fmi[0]) / result.fmi[0]
    df = result.df[0]
    assert fmi_relative == pytest.approx(relative * df / (df + 3), rel=1e-3)
    if "summary" in case:
        # R's p-value and interval are ours recomputed at R's (floored) df;
        # here (t = 10.6, far in the tail) p moves by 0.1% (of 3.7e-10) and
        # the interval's ends by 2e-6, under 1e-5 of its half-width.
        summary = case["summary"]
        df_r = pooled["df"][0]
        p_r = 2 * stats.t.sf(abs(result.statistic[0]), df_r)
        assert summary["p_value"][0] == pytest.approx(p_r, rel=DISTRIBUTION)
        half_r = stats.t.ppf(0.975, df_r) * result.std_error[0]
        assert summary["ci_low"][0] == pytest.approx(
            result.estimate[0] - half_r, rel=ARITHMETIC
        )
        assert (
            0 < (summary["p_value"][0] - result.p_value[0]) / result.p_value[0] < 2e-3
        )
        half = result.estimate[0] - result.ci_low[0]
        assert 0 < result.ci_low[0] - summary["ci_low"][0] < 1e-5 * half


MITML_CASES = sorted(MITML["cases"])


def _wald_inputs(case):
    return np.array(case["estimates"]), np.array(case["covariances"])


@pytest.mark.parametrize("name", MITML_CASES)
def test_d1_equals_mitml_without_dfcom(name):
    case = MITML["cases"][name]
    test = pooled_wald_test(*_wald_inputs(case))
    expected = case["D1"]
    assert test.df1 == expected["df1"] == case["k"]
    assert test.statistic == pytest.approx(expected["F"], rel=ARITHMETIC)
    assert test.riv == pytest.approx(expected["riv"], rel=ARITHMETIC)
    assert test.df2 == pytest.approx(expected["df2"], rel=ARITHMETIC)
    assert test.p_value == pytest.approx(expected["p"], rel=DISTRIBUTION)


@pytest.mark.parametrize("name", MITML_CASES)
def test_d1_equals_mitml_with_dfcom(name):
    """Reiter (2007)'s full second-order df, as mitml 0.4-4's .D1 and so
    mice::D1 compute them (the fixture script checks mice::D1 == testModels)."""
    case = MITML["cases"][name]
    test = pooled_wald_test(*_wald_inputs(case), dfcom=case["dfcom"])
    expected = case["D1_dfcom"]
    assert test.statistic == pytest.approx(expected["F"], rel=ARITHMETIC)
    assert test.riv == pytest.approx(expected["riv"], rel=ARITHMETIC)
    assert test.df2 == pytest.approx(expected["df2"], rel=ARITHMETIC)
    assert test.p_value == pytest.approx(expected["p"], rel=DISTRIBUTION)


@pytest.mark.parametrize("statistics", ["wald", "lr"])
@pytest.mark.parametrize("name", MITML_CASES)
def test_d2_equals_mitml(name, statistics):
    case = MITML["cases"][name]
    expected = case["D2_wald" if statistics == "wald" else "D2_likelihood"]
    test = pooled_chi2_test(case[f"{statistics}_statistics"], k=case["k"])
    assert test.statistic == pytest.approx(expected["F"], rel=ARITHMETIC)
    assert test.riv == pytest.approx(expected["riv"], rel=ARITHMETIC)
    assert test.df2 == pytest.approx(expected["df2"], rel=ARITHMETIC)
    assert test.p_value == pytest.approx(expected["p"], rel=DISTRIBUTION)


def test_wald_statistics_in_the_fixture_are_the_per_imputation_wald_tests():
    """The D2 inputs are q' inv(U) q of the same estimates D1 pools."""
    case = MITML["cases"]["nhanes_m5_k3"]
    q, u = _wald_inputs(case)
    wald = np.einsum("li,li->l", q, np.linalg.solve(u, q[..., None])[..., 0])
    assert_allclose(wald, case["wald_statistics"], rtol=ARITHMETIC)


@pytest.mark.parametrize("name", ["no_between_variance", "in_domain"])
def test_d1_equals_mitml_on_constructed_inputs(name):
    case = MITML["direct_D1"][name]
    test = pooled_wald_test(
        np.array(case["estimates"]), np.array(case["covariances"]), dfcom=case["dfcom"]
    )
    assert test.statistic == pytest.approx(case["F"], rel=ARITHMETIC)
    assert test.riv == pytest.approx(case["r"], abs=ARITHMETIC)
    assert test.df2 == pytest.approx(case["df2"], rel=ARITHMETIC)
    assert test.p_value == pytest.approx(stats.f.sf(case["F"], case["k"], case["df2"]))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("t_equals_4", r"k \(m - 1\) > 4"),
        ("c2_negative", "outside the range"),
        ("dfcom_3", "outside the range"),
    ],
)
def test_d1_refuses_inputs_where_mitml_gives_no_valid_df(name, message):
    """Where Reiter's expression leaves its domain mitml returns df2 = 4,
    NaN or a df2 below 4 (negative for dfcom = 3); we raise instead."""
    case = MITML["direct_D1"][name]
    assert case.get("df2") is None or case["df2"] <= 4
    with pytest.raises(ValueError, match=message):
        pooled_wald_test(
            np.array(case["estimates"]),
            np.array(case["covariances"]),
            dfcom=case["dfcom"],
        )
    # Without dfcom the large-sample df of Li et al. (1991) apply and match mitml.
    estimates, covariances = np.array(case["estimates"]), np.array(case["covariances"])
    assert pooled_wald_test(estimates, covariances).statistic == pytest.approx(
        case["F"], rel=ARITHMETIC
    )
