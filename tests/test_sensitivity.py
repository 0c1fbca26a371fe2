"""Sensitivity and tipping-point analysis: exact behaviour of the grid under
delta shifts (common random numbers), the tipping point on hand-made
tables, two-column grids, the plots, and bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.linear_model import LinearRegression, Ridge  # noqa: E402

from emimpute.datasets import load_airquality  # noqa: E402
from emimpute.plotting import plot_sensitivity, plot_tipping_contour  # noqa: E402
from emimpute.sensitivity import sensitivity_analysis, tipping_point  # noqa: E402


def mean_of_first_column(X, y):
    values = np.asarray(X)[:, 0]
    return [values.mean()], [values.var(ddof=1) / len(values)], len(values) - 1


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_a_shift_moves_the_pooled_mean_by_delta_times_the_missing_share():
    air = load_airquality()
    deltas = [0.0, 5.0, 10.0, 20.0]
    table = sensitivity_analysis(
        mean_of_first_column, air, column="Ozone", deltas=deltas, n_imputations=5
    )
    share = air["Ozone"].isna().mean()
    base = table.loc[table["delta"] == 0.0, "estimate"].item()
    for delta in deltas:
        estimate = table.loc[table["delta"] == delta, "estimate"].item()
        assert estimate == pytest.approx(base + delta * share, rel=1e-10)
    assert table.attrs["column"] == "Ozone" and table.attrs["kind"] == "shift"
    assert list(table.columns[:2]) == ["delta", "term"]


def test_regression_coefficients_over_a_scale_grid():
    air = load_airquality()
    table = sensitivity_analysis(
        LinearRegression(), air[["Ozone", "Solar.R", "Wind"]], air["Temp"],
        column="Ozone", deltas=[1.0, 1.2, 1.4], kind="scale", n_imputations=5,
    )  # fmt: skip
    assert set(table["term"]) == {"intercept", "Ozone", "Solar.R", "Wind"}
    assert len(table) == 12
    assert (table["ci_low"] < table["estimate"]).all()


def test_selection_model_grid_moves_the_mean_up_with_psi():
    air = load_airquality()[["Ozone", "Temp", "Wind"]]
    table = sensitivity_analysis(
        mean_of_first_column, air, column="Ozone", deltas=[0.0, 0.02, 0.04],
        kind="psi", n_imputations=3,
    )  # fmt: skip
    assert np.all(np.diff(table["estimate"]) > 0)


def hand_table(estimates, half=1.0, deltas=(0.0, 1.0, 2.0, 3.0)):
    estimates = np.asarray(estimates, dtype=float)
    return pd.DataFrame(
        {
            "delta": deltas,
            "term": "b",
            "estimate": estimates,
            "ci_low": estimates - half,
            "ci_high": estimates + half,
            "p_value": [0.001, 0.01, 0.2, 0.5],
        }
    )


def test_tipping_point_interpolates_where_the_interval_reaches_the_null():
    # Lower bounds 2.0, 1.5, 0.5, -0.5 at delta 0, 1, 2, 3: the bound is 0.5 at
    # delta 2 and -0.5 at delta 3, so it reaches 0 at 2.5.
    table = hand_table([3.0, 2.5, 1.5, 0.5])
    point = tipping_point(table, "b")
    assert point.delta == pytest.approx(2.5)
    assert point.bracket == (2.0, 3.0)
    assert point.mar_conclusion == "the 95% interval of b excludes 0"
    assert "beyond the tipping point the 95% interval of b includes 0" in repr(point)
    # By p-value: 0.01 at 1, 0.2 at 2, so 0.05 at 1 + 0.04 / 0.19.
    by_p = tipping_point(table, "b", criterion="p")
    assert by_p.delta == pytest.approx(1 + 0.04 / 0.19)


def test_no_tipping_point_and_both_directions():
    assert tipping_point(hand_table([5, 5, 5, 5]), "b").delta is None
    deltas = (-2.0, -1.0, 0.0, 1.0)
    # Lower bound -1, 0.5, 1, 2: tips between -2 and -1 (nearer than nothing).
    table = hand_table([0.0, 1.5, 2.0, 3.0], deltas=deltas)
    assert tipping_point(table, "b").delta == pytest.approx(-1.0 - 0.5 / 1.5)


def test_two_column_grid_and_contour():
    air = load_airquality()[["Ozone", "Solar.R", "Temp"]]
    table = sensitivity_analysis(
        mean_of_first_column, air, column="Ozone", deltas=[0.0, 10.0, 20.0],
        column2="Solar.R", deltas2=[0.0, 50.0], n_imputations=3,
    )  # fmt: skip
    assert len(table) == 6 and set(table["delta2"]) == {0.0, 50.0}
    ax = plot_tipping_contour(table, "x0")
    assert ax.get_xlabel() == "delta for Ozone"


def test_sensitivity_plot_draws_band_estimate_and_tipping_line():
    table = hand_table([3.0, 2.5, 1.5, 0.5])
    point = tipping_point(table, "b")
    ax = plot_sensitivity(table, "b", tipping=point)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["pooled estimate"].get_ydata()) == [3.0, 2.5, 1.5, 0.5]
    assert lines["tipping point (2.5)"].get_xdata()[0] == pytest.approx(2.5)
    assert len(ax.collections) == 1  # the confidence band


def test_bad_input():
    air = load_airquality()
    with pytest.raises(ValueError, match="kind must be"):
        sensitivity_analysis(mean_of_first_column, air, column="Ozone",
                             deltas=[0.0], kind="tilt")  # fmt: skip
    with pytest.raises(ValueError, match="column2 needs deltas2"):
        sensitivity_analysis(mean_of_first_column, air, column="Ozone",
                             deltas=[0.0], column2="Wind")  # fmt: skip
    with pytest.raises(ValueError, match="no built-in pooled inference"):
        sensitivity_analysis(Ridge(), air[["Ozone", "Wind"]], air["Temp"],
                             column="Ozone", deltas=[0.0], n_imputations=2)  # fmt: skip
    with pytest.raises(ValueError, match="MAR value"):
        tipping_point(hand_table([1, 2, 3, 4], deltas=(1.0, 2.0, 3.0, 4.0)), "b")


@pytest.mark.parametrize("kind", ["shift", "scale", "sd", "psi"])
def test_empty_or_non_finite_grids_are_refused_before_any_imputation(kind):
    # deltas=[] ended in pandas' "No objects to concatenate" after the whole
    # multiple imputation had run (issue 12).
    air = load_airquality()[["Ozone", "Temp"]]
    run = dict(column="Ozone", kind=kind, n_imputations=2)
    with pytest.raises(ValueError, match=r"deltas is empty: give at least one"):
        sensitivity_analysis(mean_of_first_column, air, deltas=[], **run)
    with pytest.raises(ValueError, match=r"deltas2 is empty"):
        sensitivity_analysis(mean_of_first_column, air, deltas=[0.0],
                             column2="Temp", deltas2=np.array([]), **run)  # fmt: skip
    with pytest.raises(
        ValueError, match=r"deltas\[1\] must be a finite number, got nan"
    ):
        sensitivity_analysis(mean_of_first_column, air, deltas=[0.0, np.nan], **run)
    with pytest.raises(TypeError, match=r"deltas must be a sequence of numbers"):
        sensitivity_analysis(mean_of_first_column, air, deltas=0.5, **run)


def test_string_class_labels_give_the_table_of_their_integer_codes():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    codes = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    X[rng.random(X.shape) < 0.2] = np.nan
    tables = [
        sensitivity_analysis(
            LogisticRegression(C=np.inf),
            X,
            labels,
            column=1,
            deltas=[0.0, 0.5],
            n_imputations=3,
            random_state=0,
        )  # fmt: skip
        for labels in (codes, np.array(["no", "yes"])[codes])
    ]
    pd.testing.assert_frame_equal(tables[0], tables[1])
