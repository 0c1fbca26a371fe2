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
