"""Missingness diagnostics against published values, closed forms and simulation.

References: R ``naniar::mcar_test`` on ``airquality`` (the values in naniar's
own test suite, tests/testthat/test-mcar-test.R), R ``mice::md.pattern``'s
ordering, Little's formula evaluated pattern by pattern with numpy.linalg,
scipy's Welch t-test, pandas group means, and the behaviour of the test under
simulated MCAR and MAR.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from emimpute.datasets import load_airquality
from emimpute.diagnostics import (
    little_mcar_test,
    missing_patterns,
    missing_rate_by,
    missingness_associations,
)

# naniar's test suite: mcar_test(airquality), and with one all-missing row added.
NANIAR_AIRQUALITY = {"statistic": 35.1061288689702, "df": 14, "p": 0.00141778113856683}
NANIAR_WITH_EMPTY_ROW = 35.1061229683641


# ---------------------------------------------------------------------------
# Little's test


def test_little_matches_naniar_on_airquality():
    data = load_airquality()
    before = data.copy()
    result = little_mcar_test(data)
    # naniar's EM (norm) stops at a looser tolerance: 3 decimals are asked for,
    # and agreement is at about 5e-5.
    assert result.statistic == pytest.approx(NANIAR_AIRQUALITY["statistic"], abs=5e-4)
    assert result.df == NANIAR_AIRQUALITY["df"]
    assert result.p_value == pytest.approx(NANIAR_AIRQUALITY["p"], abs=1e-6)
    assert result.n_patterns == 4
    assert result.n_samples == 153
    pd.testing.assert_frame_equal(data, before)
    assert "chi-square = 35.1062, df = 14" in repr(result)


def test_an_all_missing_row_is_a_pattern_that_adds_nothing():
    data = load_airquality()
    data.loc[len(data)] = np.nan
    result = little_mcar_test(data)
    assert result.n_patterns == 5
    assert result.df == 14
    assert result.statistic == pytest.approx(NANIAR_WITH_EMPTY_ROW, abs=5e-4)


def little_by_hand(X, mean, cov):
    """Little (1988), eq. 5, one pattern at a time."""
    mask = np.isnan(X)
    patterns, index = np.unique(mask, axis=0, return_inverse=True)
    d2, df = 0.0, -X.shape[1]
    for j, pattern in enumerate(patterns):
        o = ~pattern
        rows = X[index.ravel() == j][:, o]
        if not o.any():
            continue
        diff = rows.mean(axis=0) - mean[o]
        d2 += len(rows) * diff @ np.linalg.solve(cov[np.ix_(o, o)], diff)
        df += o.sum()
    return d2, df


def correlated(n, p, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p, p))
    return rng.multivariate_normal(np.zeros(p), A @ A.T + np.eye(p), size=n), rng


@pytest.mark.parametrize("seed", [0, 1])
def test_statistic_equals_the_formula_pattern_by_pattern(seed):
    X, rng = correlated(300, 5, seed)
    X[rng.random(X.shape) < 0.25] = np.nan
    X[:2] = np.nan
    result = little_mcar_test(X)
    d2, df = little_by_hand(X, result.mean, result.covariance)
    assert result.statistic == pytest.approx(d2, rel=1e-9)
    assert result.df == df
    assert result.p_value == pytest.approx(stats.chi2.sf(d2, df), rel=1e-9)


def test_size_under_mcar_and_power_under_mar():
    """Simulation truth: about 5% rejections at the 5% level under MCAR, and
    nearly all when the missingness of one column follows another."""
    rejections = {"MCAR": 0, "MAR": 0}
    n_rep = 150
    for rep in range(n_rep):
        X, rng = correlated(200, 3, 1000 + rep)
        mcar = X.copy()
        mcar[rng.random(X.shape) < 0.2] = np.nan
        mar = X.copy()
        mar[X[:, 0] > np.quantile(X[:, 0], 0.7), 1] = np.nan
        for name, data in (("MCAR", mcar), ("MAR", mar)):
            rejections[name] += little_mcar_test(data).p_value < 0.05
    # Binomial(150, 0.05): mean 7.5, sd 2.7; MAR here is strong.
    assert 1 <= rejections["MCAR"] <= 17, rejections
    assert rejections["MAR"] >= 0.95 * n_rep, rejections


def test_nullable_dtypes_and_bad_input():
    data = load_airquality().astype({"Month": "Int64", "Day": "Int64"})
    data["Ozone"] = data["Ozone"].astype("Float64")
    assert little_mcar_test(data).statistic == pytest.approx(
        little_mcar_test(load_airquality()).statistic, rel=1e-12
    )
    with_text = load_airquality().assign(station=["a"] * 153)
    with pytest.raises(TypeError, match="column 'station'"):
        little_mcar_test(with_text)
    empty_column = load_airquality().assign(Extra=np.nan)
    with pytest.raises(ValueError, match="column 'Extra'"):
        little_mcar_test(empty_column)
    infinite = load_airquality()
    infinite.loc[3, "Wind"] = np.inf
    with pytest.raises(ValueError, match="infinite values in column 'Wind'"):
        little_mcar_test(infinite)


# ---------------------------------------------------------------------------
# Patterns


def test_missing_patterns_counts_and_md_pattern_order():
    X = pd.DataFrame(
        {
            "a": [1, 2, np.nan, 4, np.nan, 6],
            "b": [1, np.nan, np.nan, 4, 5, np.nan],
            "c": [1, 2, 3, 4, 5, 6],
        }
    )
    table = missing_patterns(X)
    # Columns from least to most missing; patterns complete first, then by
    # number missing, ties by the 0/1 flags read left to right, largest first.
    assert list(table.columns) == ["c", "a", "b", "count", "share", "n_missing"]
    patterns = table.iloc[:-2]
    assert patterns[["c", "a", "b"]].to_numpy().tolist() == [
        [1, 1, 1],
        [1, 1, 0],
        [1, 0, 1],
        [1, 0, 0],
    ]
    assert patterns["count"].tolist() == [2, 2, 1, 1]
    assert_allclose(patterns["share"], np.array([2, 2, 1, 1]) / 6)
    assert patterns["n_missing"].tolist() == [0, 1, 1, 2]
    assert table.loc["n_missing", ["c", "a", "b", "count"]].tolist() == [0, 2, 3, 5]
    assert_allclose(
        table.loc["missing_rate", ["a", "b", "count"]], [2 / 6, 3 / 6, 5 / 18]
    )


def test_missing_patterns_of_airquality_match_md_pattern():
    """R: md.pattern(airquality) has rows 111, 35, 5, 2 and totals 7, 37."""
    table = missing_patterns(load_airquality())
    assert table["count"].iloc[:4].tolist() == [111, 35, 5, 2]
    assert table.loc["n_missing", ["Solar.R", "Ozone"]].tolist() == [7, 37]
    assert list(table.columns[-3:]) == ["count", "share", "n_missing"]
    assert table.columns[4:6].tolist() == ["Solar.R", "Ozone"]


def test_missing_patterns_of_an_array_name_columns():
    X = np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 4.0]])
    table = missing_patterns(X)
    assert list(table.columns[:2]) == ["x0", "x1"]
    assert np.isnan(X).sum() == 2  # unchanged


# ---------------------------------------------------------------------------
# Missingness against other variables


def test_missing_rate_by_equals_group_means():
    data = load_airquality()
    table = missing_rate_by(data, "Month")
    expected = data.isna().groupby(data["Month"]).mean()[["Ozone", "Solar.R"]]
    assert_allclose(table[["Ozone", "Solar.R"]].to_numpy(), expected.to_numpy())
    assert table["n"].tolist() == [31, 30, 31, 31, 30]


def test_missing_rate_by_bins_a_continuous_variable_and_takes_a_separate_segment():
    data = load_airquality()
    table = missing_rate_by(data, "Temp", bins=3)
    assert len(table) == 3
    assert table["n"].sum() == 153
    assert isinstance(table.index[0], pd.Interval)
    assert table.index[0].right <= table.index[1].left + 1e-9  # in order
    segment = np.where(data["Wind"] > 10, "windy", "calm")
    segment = segment.astype(object)
    segment[:5] = None
    table = missing_rate_by(data, segment)
    assert list(table.index) == ["calm", "windy", "(missing)"]
    assert table.loc["(missing)", "n"] == 5
    with pytest.raises(ValueError, match="not a column"):
        missing_rate_by(data, "Humidity")
    with pytest.raises(ValueError, match="rows"):
        missing_rate_by(data, segment[:10])


def test_associations_equal_welch_t_tests():
    data = load_airquality()
    table = missingness_associations(data).set_index(["missing_column", "other_column"])
    missing = data["Ozone"].isna()
    month = data["Month"]
    reference = stats.ttest_ind(month[missing], month[~missing], equal_var=False)
    row = table.loc[("Ozone", "Month")]
    assert row["t_statistic"] == pytest.approx(reference.statistic, rel=1e-10)
    assert row["p_value"] == pytest.approx(reference.pvalue, rel=1e-8)
    pooled = np.sqrt((month[missing].var() + month[~missing].var()) / 2)
    assert row["std_difference"] == pytest.approx(
        (month[missing].mean() - month[~missing].mean()) / pooled, rel=1e-10
    )
    # Solar.R vs Ozone uses only rows where Ozone is observed.
    both = data["Ozone"].notna()
    assert (
        table.loc[("Solar.R", "Ozone"), "n_missing"]
        == (data["Solar.R"].isna() & both).sum()
    )


def test_associations_point_at_the_variable_that_drives_missingness():
    X, rng = correlated(2000, 4, seed=7)
    X[X[:, 2] > 0.5, 0] = np.nan  # column 0 missing when column 2 is high
    table = missingness_associations(X)
    top = table.iloc[0]
    assert (top["missing_column"], top["other_column"]) == ("x0", "x2")
    assert top["std_difference"] > 1.0 and top["p_value"] < 1e-10


def test_associations_with_nothing_missing_is_empty():
    assert missingness_associations(np.ones((5, 3))).empty
