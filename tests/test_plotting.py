"""Plots: rendered with the Agg backend, checked on what was drawn."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from emimpute import EMImputer  # noqa: E402
from emimpute.datasets import load_airquality  # noqa: E402
from emimpute.plotting import (  # noqa: E402
    plot_imputed_distributions,
    plot_loglik_trace,
    plot_missing_patterns,
    plot_tipping_contour,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_pattern_matrix_shows_patterns_counts_and_columns():
    ax = plot_missing_patterns(load_airquality())
    image = ax.get_images()[0].get_array()
    # md.pattern(airquality): 4 patterns over 6 columns, Ozone last.
    assert image.shape == (4, 6)
    assert image[:, -1].tolist() == [1, 0, 1, 0]  # Ozone: observed, missing, ...
    assert image[:, -2].tolist() == [1, 1, 0, 0]  # Solar.R
    assert [t.get_text() for t in ax.get_yticklabels()] == ["111", "35", "5", "2"]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[-2:] == ["Solar.R\n(7)", "Ozone\n(37)"]


def test_pattern_matrix_draws_on_a_given_axes():
    figure, ax = plt.subplots()
    assert plot_missing_patterns(np.array([[1.0, np.nan], [2.0, 3.0]]), ax=ax) is ax


def test_observed_and_imputed_distributions_one_panel_per_incomplete_column():
    data = load_airquality()
    imputed = EMImputer().fit_transform(data)
    figure = plot_imputed_distributions(data, imputed)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["Ozone", "Solar.R"]
    ozone = panels[0]
    labels = [text.get_text() for text in ozone.get_legend().get_texts()]
    assert labels == ["observed (116)", "imputed (37)"]
    # Two histograms, each a density (bar areas sum to one).
    bars = ozone.patches
    assert len(bars) == 60
    areas = [bar.get_width() * bar.get_height() for bar in bars]
    assert sum(areas[:30]) == pytest.approx(1.0)
    assert sum(areas[30:]) == pytest.approx(1.0)


def test_distributions_refuse_mismatched_shapes_and_complete_data():
    data = load_airquality()
    with pytest.raises(ValueError, match="shape"):
        plot_imputed_distributions(data, data.iloc[:10])
    with pytest.raises(ValueError, match="no column has a missing value"):
        plot_imputed_distributions(np.ones((5, 2)), np.ones((5, 2)))


def test_loglik_trace_draws_the_path():
    imputer = EMImputer(accelerate=False).fit(load_airquality())
    ax = plot_loglik_trace(imputer)
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == list(range(1, imputer.n_iter_ + 1))
    assert np.allclose(line.get_ydata(), imputer.loglik_path_)
    assert np.all(np.diff(line.get_ydata()) >= -1e-9)  # EM never goes down
    with pytest.raises(ValueError, match="loglik_path_"):
        plot_loglik_trace([])


def test_tipping_contour_needs_a_two_column_grid():
    # A one-column table gave pandas' KeyError: 'delta2' (issue 12).
    one = pd.DataFrame({"delta": [0.0, 1.0], "term": "b", "p_value": [0.01, 0.2]})
    with pytest.raises(ValueError, match="two-column .* 'delta2'.*plot_sensitivity"):
        plot_tipping_contour(one, "b")
    two = pd.DataFrame(
        {"delta": [0.0, 1.0], "delta2": [0.0, 0.0], "term": "b", "p_value": [0.01, 0.2]}
    )
    with pytest.raises(ValueError, match="at least two values of delta2, got 1"):
        plot_tipping_contour(two, "b")
    with pytest.raises(ValueError, match="no term 'c' in the table; terms: 'b'"):
        plot_tipping_contour(two, "c")
