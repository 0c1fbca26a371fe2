"""Input checks shared by the estimators: clear errors that name the column."""

import numbers
import warnings

import numpy as np
import pandas as pd

from emimpute.utils._columns import describe as _describe

# feature_names and describe_columns are imported from here by modules that
# predate _columns (report, sensitivity, the multiple imputer): kept importable.
from emimpute.utils._columns import (  # noqa: F401
    describe_columns,
    feature_names,
)
from emimpute.utils._sklearn_compat import validate_data


def is_nan_marker(value):
    """True if ``value`` marks missing cells as NaN (np.nan, float('nan'),
    or pandas' ``pd.NA``, which validation turns into NaN)."""
    if value is pd.NA:
        return True
    return bool(isinstance(value, numbers.Real) and np.isnan(value))


def convert_object_columns(X):
    """X with its object-dtype DataFrame columns made float where every value
    converts (numbers stored as Python objects, with None or pd.NA for
    missing); a new frame if anything was converted, X itself otherwise.
    Columns that do not convert are left for :func:`_raise_for_non_numeric`."""
    if not isinstance(X, pd.DataFrame):
        return X
    converted = {}
    for column in X.columns[X.dtypes.map(pd.api.types.is_object_dtype)]:
        values = X[column]
        try:
            numbers_ = pd.to_numeric(values, errors="raise").astype(np.float64)
        except (TypeError, ValueError):
            continue
        if values.map(lambda v: isinstance(v, (bool, np.bool_))).any():
            continue  # True/False are not measurements: leave them refused
        converted[column] = numbers_
    return X.assign(**converted) if converted else X


def _raise_for_non_numeric(X, purpose="this imputer models numeric columns only"):
    """TypeError naming the non-numeric columns of a DataFrame or object array."""
    reason = ""
    if isinstance(X, pd.DataFrame):
        bad = [
            i
            for i, dtype in enumerate(X.dtypes)
            if not pd.api.types.is_numeric_dtype(dtype)
        ]
        names = [str(c) for c in X.columns]
    elif isinstance(X, np.ndarray) and X.dtype.kind in "OUS" and X.ndim == 2:
        bad = []
        for j in range(X.shape[1]):
            try:
                X[:, j].astype(np.float64)
            except (TypeError, ValueError) as error:
                bad.append(j)
                reason = reason or f" ({error})"
        names = None
    else:
        return
    if bad:
        raise TypeError(
            f"non-numeric data in {_describe(names, bad)}{reason}: {purpose}. "
            "Encode categorical columns first (for example with OneHotEncoder "
            "inside a ColumnTransformer) or drop them."
        )


def validate_numeric(estimator, X, *, reset, copy):
    """Validate X and return a float array with NaN at every missing cell.

    The caller's data is never modified unless ``copy`` is False and no
    conversion was needed.  Errors name the offending column.

    Parameters
    ----------
    estimator : BaseEstimator
        Has ``missing_values``; ``n_features_in_`` and ``feature_names_in_``
        are set when ``reset`` is True and checked otherwise.
    X : array-like of shape (n_samples, n_features)
    reset : bool
        True in ``fit``, False in ``transform`` and ``score``.
    copy : bool
        Whether the result must not share memory with X.

    Returns
    -------
    ndarray of dtype float64 or float32
    """
    X = convert_object_columns(X)
    _raise_for_non_numeric(X)
    marker = estimator.missing_values
    sentinel = not is_nan_marker(marker)
    X = validate_data(
        estimator,
        X,
        reset=reset,
        accept_sparse=False,
        dtype=[np.float64, np.float32],
        ensure_all_finite=False,
        copy=copy or sentinel,
    )
    return mark_missing(X, marker, getattr(estimator, "feature_names_in_", None))


def mark_missing(X, missing_values, names=None):
    """Put NaN at the cells equal to a sentinel ``missing_values`` (in place)
    and refuse infinite values, or NaN alongside a sentinel, naming the
    columns (``names``, or positions when None).  Returns X, a float array,
    which must be writeable when the marker is not NaN."""
    if not is_nan_marker(missing_values):
        nan_columns = np.flatnonzero(np.isnan(X).any(axis=0))
        if len(nan_columns):
            raise ValueError(
                f"NaN in {_describe(names, nan_columns)} but "
                f"missing_values={missing_values!r}: either mark missing cells "
                "with the sentinel only, or use missing_values=np.nan."
            )
        X[X == missing_values] = np.nan
    infinite = np.flatnonzero(np.isinf(X).any(axis=0))
    if len(infinite):
        raise ValueError(
            f"infinite values in {_describe(names, infinite)}; replace them "
            "(for example by NaN, to impute them) before imputing."
        )
    return X


def numeric_matrix(X, purpose):
    """A float64 copy of X with NaN at missing cells, and its column names.

    For functions (not estimators): accepts a DataFrame (nullable dtypes and
    ``pd.NA`` included) or a 2-d array-like; never modifies X.  ``purpose``
    completes the error for non-numeric columns ("... : <purpose>").

    Returns
    -------
    values : ndarray of shape (n, p), float64
    names : list of str
        The DataFrame's column names, or ``x0``, ``x1``, ... for arrays.
    """
    if hasattr(X, "tocsr") or hasattr(X, "todense"):
        raise TypeError("sparse input is not supported: pass a dense array")
    X = convert_object_columns(X)
    _raise_for_non_numeric(X, purpose)
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        values = X.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    else:
        values = np.array(X, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(
                f"expected a 2-d array (rows by columns), got {values.ndim} "
                "dimension(s)"
            )
        names = [f"x{j}" for j in range(values.shape[1])]
    if values.size == 0:
        raise ValueError(f"empty data of shape {values.shape}")
    infinite = np.flatnonzero(np.isinf(values).any(axis=0))
    if len(infinite):
        raise ValueError(
            f"infinite values in {_describe(names, infinite)}; replace them "
            "(for example by NaN) first."
        )
    return values, names


def warn_empty_features(estimator, empty, stacklevel=3):
    """Warn, as :class:`~sklearn.impute.SimpleImputer` does, that columns with
    no observed value are dropped (or, with ``keep_empty_features``, filled
    with 0); ``stacklevel`` counts from the caller of this function's caller."""
    if not empty.any():
        return
    columns = np.flatnonzero(empty)
    them = "them" if len(columns) > 1 else "it"
    if estimator.keep_empty_features:
        what = f"transform fills {them} with 0. Drop {them} before imputing."
    else:
        what = (
            f"transform drops {them} (set keep_empty_features=True to keep "
            f"{them}, filled with 0)."
        )
    warnings.warn(
        f"Skipping {describe_columns(estimator, columns)}: no observed value, "
        f"so nothing to fit; {what}",
        UserWarning,
        stacklevel=stacklevel,
    )


# Columns whose values spread over a range outside these bounds have
# variances (squares) and precisions (inverse squares) that overflow or
# underflow float64 once correlations are away from 0: nothing a prior or a
# rescaling inside the fit could represent in ``covariance_``.
SPREAD_RANGE = (1e-120, 1e120)


def check_scale(names, spread):
    """ValueError naming the columns whose observed range (max - min) is
    outside :data:`SPREAD_RANGE`; constant (0) and empty (NaN) columns pass."""
    low, high = SPREAD_RANGE
    spread = np.asarray(spread, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero((spread > high) | ((spread > 0) & (spread < low)))
    if len(bad):
        values = ", ".join(f"{spread[j]:.3g}" for j in bad[:8])
        raise ValueError(
            f"values spread over {values} in {_describe(names, bad)}, outside "
            f"{low:g} to {high:g}: the variance of such a column is not "
            "representable in float64. Rescale it first (for example divide it "
            "by a power of ten, or use StandardScaler before the imputer)."
        )


def finite_number(value, where):
    """``value`` as a float, or a clear error naming ``where``.

    NaN or infinite deltas (and psi values) would silently make NaN or
    infinite imputations.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where} must be a finite number, got {value!r}.")
    if not np.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {float(value)!r}.")
    return float(value)
