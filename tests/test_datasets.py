"""Shipped data sets match their published source."""

import numpy as np
import pytest

from emimpute.datasets import load_airquality, load_blood_sugar

# As listed in the seed study: F then PP, NA = missing.
BLOOD_SUGAR = (
    "78 128, 89 118, 93 134, 76 117, 85 130, 84 122, 86 131, 73 137, 97 119, "
    "88 123, 79 135, 91 NA, 77 NA, 95 NA, 92 NA, 81 NA, NA 127, NA 129, NA 125, "
    "NA 121"
)


def test_blood_sugar_matches_the_study_listing():
    rows = [pair.split() for pair in BLOOD_SUGAR.split(", ")]
    expected = np.array([[np.nan if v == "NA" else float(v) for v in r] for r in rows])
    data = load_blood_sugar()
    assert list(data.columns) == ["F", "PP"]
    assert data.dtypes.tolist() == [np.float64, np.float64]
    np.testing.assert_array_equal(data.to_numpy(), expected)


def test_airquality_matches_r_summary():
    """R: summary(airquality) and colSums(is.na(airquality))."""
    data = load_airquality()
    assert list(data.columns) == ["Ozone", "Solar.R", "Wind", "Temp", "Month", "Day"]
    assert data.shape == (153, 6)
    assert data.isna().sum().tolist() == [37, 7, 0, 0, 0, 0]
    summary = {"Ozone": 42.13, "Solar.R": 185.93, "Wind": 9.958, "Temp": 77.88}
    for column, mean in summary.items():
        assert data[column].mean() == pytest.approx(mean, abs=0.006)
    assert data["Ozone"].median() == 31.5
    assert data["Ozone"].max() == 168
    assert data["Solar.R"].min() == 7
    assert data.groupby("Month").size().tolist() == [31, 30, 31, 31, 30]
