"""Column names and positions, written once.

Estimators accept a column by name (DataFrame input) or by position; every
lookup, and every message that names columns, goes through here.
"""

import numbers

import numpy as np


def feature_names(estimator):
    """The fitted estimator's column names, or ``x0``, ``x1``, ... for arrays.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> feature_names(SimpleNamespace(n_features_in_=2))
    ['x0', 'x1']
    """
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return [f"x{j}" for j in range(estimator.n_features_in_)]
    return [str(c) for c in names]


def describe(names, indices):
    """ "column 'age'" or "columns 'age', 'income'"; positions when
    ``names`` is None.

    Examples
    --------
    >>> describe(["age", "income"], [1])
    "column 'income'"
    >>> describe(None, [0, 2])
    'columns 0, 2'
    """
    kind = "columns" if len(indices) > 1 else "column"
    labels = (f"'{names[i]}'" if names is not None else str(i) for i in indices)
    return f"{kind} {', '.join(labels)}"


def describe_columns(estimator, indices):
    """:func:`describe` with a fitted estimator's ``feature_names_in_``."""
    return describe(getattr(estimator, "feature_names_in_", None), indices)


def column_position(names, column, what):
    """The position of ``column`` (a name in ``names`` or a position).

    Parameters
    ----------
    names : sequence of str
        Every column's name (:func:`feature_names`).
    column : str or int
    what : str
        The parameter that names the column, for the error message.

    Raises
    ------
    ValueError
        ``"<what> names <column>, which is not a column of X."``

    Examples
    --------
    >>> column_position(["age", "income"], "income", "delta")
    1
    >>> column_position(["age", "income"], 0, "delta")
    0
    """
    names = list(names)
    if isinstance(column, str):
        if column in names:
            return names.index(column)
    elif isinstance(column, numbers.Integral) and not isinstance(column, bool):
        if 0 <= column < len(names):
            return int(column)
    raise ValueError(f"{what} names {column!r}, which is not a column of X.")


def column_positions(names, columns, what):
    """Positions of several columns (:func:`column_position`), sorted and
    without repeats, as an int array."""
    positions = {column_position(names, column, what) for column in columns}
    return np.array(sorted(positions), dtype=int)
