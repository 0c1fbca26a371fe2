"""Input checks shared by the estimators: clear errors that name the column."""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils.validation import validate_data


def is_nan_marker(value):
    """True if ``value`` marks missing cells as NaN (np.nan, float('nan'))."""
    return bool(isinstance(value, numbers.Real) and np.isnan(value))


def feature_names(estimator):
    """The fitted estimator's column names, or ``x0``, ``x1``, ... for arrays."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return [f"x{j}" for j in range(estimator.n_features_in_)]
    return [str(c) for c in names]


def describe_columns(estimator, indices):
    """ "column 'age'" or "columns 'age', 'income'" (positions if unnamed)."""
    return _describe(getattr(estimator, "feature_names_in_", None), indices)


def _describe(names, indices):
    kind = "columns" if len(indices) > 1 else "column"
    labels = (f"'{names[i]}'" if names is not None else str(i) for i in indices)
    return f"{kind} {', '.join(labels)}"


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


def check_fittable(estimator, n_samples, n_observed, spread):
    """Errors for data with no finite maximum likelihood estimate of a
    normal model (``estimator.ridge`` > 0 makes most of them fittable)."""
    name = type(estimator).__name__
    if n_samples < 2:
        raise ValueError(
            f"{name} needs at least 2 samples to estimate a covariance; "
            f"got n_samples = {n_samples}."
        )
    if not n_observed.any():
        raise ValueError(f"{name} cannot fit: every value of X is missing.")
    if estimator.ridge > 0:
        return
    single = np.flatnonzero(n_observed == 1)
    if len(single):
        raise ValueError(
            f"a single observed value in {describe_columns(estimator, single)}: "
            "its variance has no maximum likelihood estimate; set ridge > 0 "
            "(a prior) or drop the column."
        )
    constant = np.flatnonzero((n_observed > 1) & (spread == 0))
    if len(constant):
        raise ValueError(
            f"zero variance in {describe_columns(estimator, constant)}: the "
            "covariance is singular; set ridge > 0 (a prior) or drop the column."
        )
