"""A DataFrame's column dtypes, kept from ``fit`` so that ``transform`` can
give them back: pandas in, pandas out with the same dtypes (bool, nullable
integers and booleans, categories, floats).

The models see floats: booleans as 0 and 1, integers as their values,
categories as their codes (0, 1, ...), NaN at missing cells.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emimpute.utils._columns import describe


@dataclass(frozen=True)
class ColumnTypes:
    """The dtypes of a frame's columns (``None`` for an array) and the
    categories of its categorical columns, by position."""

    dtypes: tuple | None
    categories: dict

    @property
    def is_frame(self):
        return self.dtypes is not None


def column_types(X):
    """The :class:`ColumnTypes` of X (a DataFrame, or anything else)."""
    if not isinstance(X, pd.DataFrame):
        return ColumnTypes(None, {})
    dtypes = tuple(X.dtypes)
    categories = {
        j: dtype.categories
        for j, dtype in enumerate(dtypes)
        if isinstance(dtype, pd.CategoricalDtype)
    }
    return ColumnTypes(dtypes, categories)


def encode_frame(X, types):
    """X as a frame of floats (NaN at missing cells) when it is a
    DataFrame, X itself otherwise.

    Raises
    ------
    ValueError
        For a category not among those seen in ``fit``, naming the column.
    """
    if not types.is_frame or not isinstance(X, pd.DataFrame):
        return X
    columns = {}
    for j, name in enumerate(X.columns):
        values = X.iloc[:, j]
        if isinstance(values.dtype, pd.CategoricalDtype):
            columns[name] = _category_codes(values, types.categories.get(j), X, j)
        elif pd.api.types.is_bool_dtype(values.dtype):
            columns[name] = values.astype("Float64").to_numpy(
                np.float64, na_value=np.nan
            )
        else:
            columns[name] = values
    return pd.DataFrame(columns, index=X.index)


def _category_codes(values, categories, X, j):
    """Codes of a categorical column in the categories of ``fit``."""
    if categories is None:
        raise TypeError(
            f"{describe(_names(X), [j])} is categorical here but was not in fit"
        )
    unseen = ~values.isna() & ~values.isin(categories)
    if unseen.any():
        raise ValueError(
            f"categories not seen in fit in {describe(_names(X), [j])}: "
            f"{sorted(map(str, values[unseen].unique()))[:5]}"
        )
    codes = pd.Categorical(values, categories=categories).codes.astype(np.float64)
    codes[codes < 0] = np.nan
    return codes


def restore_frame(values, types, input_names, output_names, index):
    """A DataFrame of the imputed ``values`` (n, k), columns
    ``output_names``: those among ``input_names`` (the columns of ``fit``)
    in their dtypes of ``fit``, the others (the missing indicator) as
    floats."""
    frame = pd.DataFrame(values, columns=output_names, index=index)
    dtypes = dict(zip(input_names, types.dtypes, strict=False))
    for j, name in enumerate(output_names):
        if name not in dtypes:
            continue
        dtype, column = dtypes[name], values[:, j]
        if isinstance(dtype, pd.CategoricalDtype):
            codes = np.where(np.isnan(column), -1, column).astype(int)
            frame[name] = pd.Categorical.from_codes(codes, dtype=dtype)
        elif isinstance(dtype, np.dtype):
            frame[name] = column.astype(dtype)
        else:  # pandas' nullable dtypes (Int64, boolean, Float64)
            frame[name] = pd.array(column, dtype="Float64").astype(dtype)
    return frame


def types_state(types):
    """:class:`ColumnTypes` as JSON-able values (model files): None for an
    array, else each column's dtype name, or its ordered categories."""
    if not types.is_frame:
        return None
    return [
        {"categories": types.categories[j].tolist(), "ordered": bool(dtype.ordered)}
        if j in types.categories
        else str(dtype)
        for j, dtype in enumerate(types.dtypes)
    ]  # fmt: skip


def types_from_state(state, p):
    """The :class:`ColumnTypes` of :func:`types_state`'s values (``p``
    columns)."""
    if state is None:
        return ColumnTypes(None, {})
    if not isinstance(state, list) or len(state) != p:
        raise ValueError(f"must be null or a list of {p} dtypes")
    dtypes, categories = [], {}
    for j, item in enumerate(state):
        if isinstance(item, dict):
            dtype = pd.CategoricalDtype(item["categories"], ordered=item["ordered"])
            categories[j] = dtype.categories
        else:
            dtype = pd.api.types.pandas_dtype(item)
        dtypes.append(dtype)
    return ColumnTypes(tuple(dtypes), categories)


def _names(X):
    return [str(c) for c in X.columns]


def typed_positions(types):
    """The positions of a frame's columns that the models see as codes or
    integers (categories, booleans, integers): those not of a float dtype."""
    if not types.is_frame:
        return []
    return [
        j
        for j, dtype in enumerate(types.dtypes)
        if not (isinstance(dtype, np.dtype) and dtype.kind == "f")
    ]


def has_typed_columns(types):
    """Whether a frame has a column of :func:`typed_positions`."""
    return bool(typed_positions(types))


def typed_frame(values, types, columns):
    """The float matrix ``values`` (n, k) as a DataFrame with ``columns``,
    its first columns (those of ``types``) in their own dtypes, NaN as
    missing (a meta-estimator handing a wrapped imputer or analysis the
    frame its caller gave)."""
    names = list(columns[: len(types.dtypes)])
    index = pd.RangeIndex(len(values))
    return restore_frame(np.asarray(values, float), types, names, list(columns), index)


def as_floats(X, types):
    """A transform's output (a DataFrame in the dtypes of ``types``, or an
    array) as a float array: categories as their codes."""
    if isinstance(X, pd.DataFrame):
        return encode_frame(X, types).to_numpy(np.float64, na_value=np.nan)
    return np.asarray(X, dtype=np.float64)
