"""The audit record and the Markdown report."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402

from emimpute import (  # noqa: E402
    DeltaAdjustedImputer,
    EMImputer,
    MNARSelectionImputer,
    MultipleImputer,
)
from emimpute.datasets import load_airquality  # noqa: E402
from emimpute.diagnostics import little_mcar_test  # noqa: E402
from emimpute.report import markdown_table, record, report  # noqa: E402
from emimpute.sensitivity import sensitivity_analysis, tipping_point  # noqa: E402


def mean_ozone(X, y):
    values = np.asarray(X)[:, 0]
    return [values.mean()], [values.var(ddof=1) / len(values)], len(values) - 1


def test_records_state_the_assumptions():
    air = load_airquality()
    em = EMImputer().fit(air)
    assert "missing at random" in record(em) and "converged" in record(em)
    mnar = MNARSelectionImputer(mnar_features=["Ozone"], psi=0.02).fit(air)
    text = record(mnar)
    assert "fixed (sensitivity analysis)" in text and "| Ozone |" in text
    delta = DeltaAdjustedImputer(delta={"Ozone": 1.1}, kind="scale").fit(air)
    assert "Ozone: 1.1" in record(delta) and "Observed cells unchanged" in record(delta)
    mi = MultipleImputer(
        n_imputations=3, estimator=LinearRegression(), random_state=0
    ).fit(air[["Ozone", "Wind"]], air["Temp"])
    text = record(mi)
    assert "3 imputations" in text and "Pooled over m = 3" in text
    assert "outcome included" in text
    assert "chi-square = 35.1062" in record(little_mcar_test(air))
    with pytest.raises(TypeError, match="no record"):
        record(42)


def test_report_writes_markdown_with_figures(tmp_path):
    air = load_airquality()
    table = sensitivity_analysis(
        mean_ozone, air, column="Ozone", deltas=[0.0, 10.0], n_imputations=2
    )
    figure, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = report(
        tmp_path / "analysis.md",
        "Ozone under MNAR",
        [
            ("Data", "153 days, 37 ozone values missing."),
            ("MCAR test", little_mcar_test(air)),
            ("Sensitivity", [table, tipping_point(table, "x0", null=50.0)]),
            ("A figure", figure),
        ],
    )
    text = path.read_text()
    assert text.startswith("# Ozone under MNAR")
    assert "## Sensitivity" in text and "| delta |" in text
    assert "![A figure](analysis_figures/figure_1.png)" in text
    assert (tmp_path / "analysis_figures" / "figure_1.png").stat().st_size > 1000
    plt.close(figure)


def test_markdown_table_formats_numbers():
    import pandas as pd

    text = markdown_table(pd.DataFrame({"a": [1.23456789]}, index=["x"]))
    assert text.splitlines()[2] == "| x | 1.235 |"


@pytest.mark.parametrize(
    "estimator",
    [
        EMImputer(),
        MNARSelectionImputer(),
        DeltaAdjustedImputer(),
        MultipleImputer(n_imputations=2),
    ],
    ids=lambda estimator: type(estimator).__name__,
)
def test_record_of_an_unfitted_estimator_says_so(estimator):
    # An unfitted EMImputer gave AttributeError: 'EMImputer' object has no
    # attribute 'converged_' (issue 12).
    from sklearn.exceptions import NotFittedError

    name = type(estimator).__name__
    with pytest.raises(NotFittedError, match=rf"record\(\) needs a fitted {name}"):
        record(estimator)


def test_record_of_something_else_names_what_it_accepts():
    with pytest.raises(TypeError, match="no record for list.*EMImputer"):
        record([1, 2])


def test_any_fitted_estimator_with_its_own_record_is_recorded():
    # A new model writes its paragraph in its own file: record() needs no edit.
    from sklearn.base import BaseEstimator

    class NewModel(BaseEstimator):
        def fit(self, X, y=None):
            self.n_features_in_ = 1
            return self

        def _record(self):
            return "**NewModel** (its own paragraph)"

    assert record(NewModel().fit(None)) == "**NewModel** (its own paragraph)"
    # A delta-adjusted new model: the wrapper's record embeds the model's.
    delta = DeltaAdjustedImputer(NewModel(), delta=0.0)
    delta.imputer_, delta.delta_, delta.n_features_in_ = NewModel().fit(None), [0.0], 1
    assert record(delta).endswith("**NewModel** (its own paragraph)")
