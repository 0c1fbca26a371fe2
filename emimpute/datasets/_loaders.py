"""Loaders of the data files in ``emimpute/datasets/data``."""

from importlib import resources

import pandas as pd


def _read_csv(name):
    with resources.files("emimpute.datasets").joinpath("data", name).open("rb") as f:
        return pd.read_csv(f, na_values=["NA"], dtype="float64")


def load_blood_sugar():
    """Fasting and post-meal blood sugar of 20 people, some values missing.

    Blood sugar in mg/dL: ``F`` fasting, ``PP`` post-prandial (after a meal).
    Eleven people have both, five only F, four only PP.  A small bivariate
    data set with a non-monotone pattern, on which maximum likelihood by EM,
    complete-case analysis and naive regression imputation give visibly
    different answers (see ``examples/blood_sugar.py``).

    Returns
    -------
    pandas.DataFrame of shape (20, 2)
        Columns ``F`` and ``PP`` (float64, NaN where missing).

    Examples
    --------
    >>> from emimpute.datasets import load_blood_sugar
    >>> data = load_blood_sugar()
    >>> data.shape
    (20, 2)
    >>> data.isna().sum().to_dict()
    {'F': 4, 'PP': 5}
    """
    return _read_csv("blood_sugar.csv")


def load_airquality():
    """Daily air quality in New York, May to September 1973 (R's ``airquality``).

    The data set that R users meet first when they learn about missing
    values, and the one on which ``naniar::mcar_test`` documents Little's
    test.  Source: New York State Department of Conservation (ozone) and the
    National Weather Service (weather), as distributed with R's ``datasets``
    package (Chambers, Cleveland, Kleiner & Tukey 1983, *Graphical Methods
    for Data Analysis*).

    Returns
    -------
    pandas.DataFrame of shape (153, 6)
        ``Ozone`` (ppb, mean 13:00-15:00 at Roosevelt Island), ``Solar.R``
        (solar radiation, Langleys, 8:00-12:00 in Central Park), ``Wind``
        (mph, LaGuardia), ``Temp`` (daily maximum, degrees F, LaGuardia),
        ``Month`` (5-9) and ``Day`` (1-31), all float64 with NaN where
        missing (37 ozone and 7 solar radiation values).

    Examples
    --------
    >>> from emimpute.datasets import load_airquality
    >>> data = load_airquality()
    >>> data.shape
    (153, 6)
    >>> data.isna().sum().to_dict()
    {'Ozone': 37, 'Solar.R': 7, 'Wind': 0, 'Temp': 0, 'Month': 0, 'Day': 0}
    """
    return _read_csv("airquality.csv")
