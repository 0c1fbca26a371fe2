"""DeltaAdjustedImputer: pattern-mixture delta adjustment (estimator shell)."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from emimpute.imputers._em_imputer import EMImputer
from emimpute.models._normal import observed_column_moments
from emimpute.utils._columns import column_position, describe_columns, feature_names
from emimpute.utils._sklearn_compat import HasMethods, StrOptions, validate_data
from emimpute.utils._validation import finite_number

# The kinds of delta, one vocabulary for this imputer, sensitivity_analysis
# (which adds "psi", the selection model's) and the records and plots.
KINDS = ("shift", "scale", "sd", "latent")


def neutral_delta(kind):
    """The delta that moves nothing, the MAR value: 1 for "scale", else 0."""
    return 1.0 if kind == "scale" else 0.0


# How each kind moves an imputed cell, in the words of the record.
_KIND_WORDS = {
    "shift": "added to",
    "scale": "multiplying",
    "sd": "standard deviations added to",
    "latent": "latent standard deviations added to the latent values of",
}


class DeltaAdjustedImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Impute under MAR, then move the imputed cells by a chosen delta.

    The pattern-mixture way to depart from MAR (van Buuren 2018, sec. 3.8
    and 9.2; R ``rbmi``): the missing values of a column are assumed to
    differ from what a MAR model predicts by ``delta``, added (``"shift"``),
    multiplied (``"scale"``: "missing incomes are 10% higher than predicted"
    is 1.1) or added in units of the column's observed standard deviation
    (``"sd"``).  Only imputed cells change; observed cells never do.

    The shift is applied once, after imputation, to the imputer's output.
    It is *not* fed back into the imputation of other columns (as R mice's
    ``post`` argument does inside its iterations, where columns imputed
    from the shifted one move too and the realised shift of a column can
    exceed delta).  Here the imputed cells of a column move by exactly
    delta on average, and other columns move not at all, which is what
    tipping-point analyses (``rbmi``, regulatory guidance) assume.

    Parameters
    ----------
    imputer : estimator, default=None
        Any imputer that keeps the columns.  By default
        ``EMImputer(keep_empty_features=True)``: a column with no observed
        value in ``fit`` is kept and filled with 0 (then moved by its delta),
        as :class:`~sklearn.impute.SimpleImputer` does with
        ``keep_empty_features=True``, so that the output has X's columns.
    delta : float or dict, default=0.0
        One number for every column, or a dict from column (name or
        position) to number; columns not named are left as imputed.
        Every value must be finite.
    kind : {"shift", "scale", "sd", "latent"}, default="shift"
        ``"latent"`` (with :class:`GaussianCopulaImputer`): delta is added
        to each imputed cell's latent value, in latent standard
        deviations, before it is mapped back through the column's margin,
        so the imputation stays a valid value: an ordinal or binary
        column's missing cells move towards higher levels (delta > 0) or
        lower ones, a skewed column's by its own shape.  "Missing ratings
        are half a latent standard deviation lower" is ``-0.5``.  The
        imputed values then move by delta on the latent scale, not on the
        column's scale.

    Attributes
    ----------
    imputer_ : the fitted imputer
    delta_ : ndarray of shape (n_features_in_,)
        The delta of each column (0, or 1 for "scale", where none was given).
    column_std_ : ndarray of shape (n_features_in_,)
        Observed standard deviations (the unit of ``kind="sd"``).

    Examples
    --------
    >>> import numpy as np
    >>> from emimpute import DeltaAdjustedImputer
    >>> X = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 5.0], [np.nan, 3.0], [4.0, 4.0]])
    >>> mar = DeltaAdjustedImputer(delta=0.0).fit_transform(X)
    >>> shifted = DeltaAdjustedImputer(delta={1: 0.5}).fit_transform(X)
    >>> (shifted - mar).round(3)
    array([[0. , 0. ],
           [0. , 0.5],
           [0. , 0. ],
           [0. , 0. ],
           [0. , 0. ]])
    """

    _parameter_constraints = {
        "imputer": [HasMethods(["fit", "transform"]), None],
        "delta": [numbers.Real, dict],
        "kind": [StrOptions(set(KINDS))],
    }

    def __init__(self, imputer=None, delta=0.0, *, kind="shift"):
        self.imputer = imputer
        self.delta = delta
        self.kind = kind

    def fit(self, X, y=None):
        """Fit the wrapped imputer and resolve delta per column.

        Returns
        -------
        self
        """
        self._validate_params()
        if not isinstance(self.delta, dict):  # before any work on X
            finite_number(self.delta, "delta")
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        default = EMImputer(keep_empty_features=True)
        self.imputer_ = clone(default if self.imputer is None else self.imputer)
        self.imputer_.fit(X, y)
        _, _, self.column_std_, _, _ = observed_column_moments(X)
        self.delta_ = self._deltas(X.shape[1])
        if self.kind == "latent" and not hasattr(
            self.imputer_, "_transform_with_latent_shift"
        ):
            raise ValueError(
                "kind='latent' shifts imputed cells on a latent scale: the "
                f"imputer must have one (GaussianCopulaImputer), not "
                f"{type(self.imputer_).__name__}."
            )
        if self.kind == "sd":
            # A column without observed values has no standard deviation,
            # and would move by NaN.
            unknown = np.flatnonzero(
                (self.delta_ != 0) & ~np.isfinite(self.column_std_)
            )
            if len(unknown):
                raise ValueError(
                    "kind='sd' moves cells in units of the observed standard "
                    f"deviation; {describe_columns(self, unknown)}: no observed "
                    "value.  Give it delta 0, or use kind='shift'."
                )
        return self

    def _deltas(self, n_features):
        """delta per column, every value checked to be a finite number."""
        neutral = neutral_delta(self.kind)
        deltas = np.full(n_features, neutral)
        if isinstance(self.delta, dict):
            for column, value in self.delta.items():
                value = finite_number(value, f"delta[{column!r}]")
                deltas[column_position(feature_names(self), column, "delta")] = value
        else:
            deltas[:] = finite_number(self.delta, "delta")
        return deltas

    def transform(self, X):
        """Impute with the wrapped imputer, then adjust the imputed cells.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64
        )
        missing = np.isnan(X)
        if self.kind == "latent":
            imputed = self.imputer_._transform_with_latent_shift(X, self.delta_)
        else:
            imputed = np.array(self.imputer_.transform(X), dtype=np.float64)
        if imputed.shape != X.shape:
            raise ValueError(
                f"the wrapped imputer returned shape {imputed.shape} for input "
                f"{X.shape}: it must keep every column (no add_indicator, no "
                "dropped empty columns)"
            )
        if self.kind == "latent":
            return imputed
        return adjust(imputed, missing, self.delta_, self.kind, self.column_std_)

    def _record(self):
        """This imputer's paragraph in :func:`emimpute.report.record`."""
        from emimpute.report import record

        names = feature_names(self)
        how = _KIND_WORDS[self.kind]
        neutral = neutral_delta(self.kind)
        moved = [f"{names[j]}: {self.delta_[j]:g}" for j in range(len(names))
                 if self.delta_[j] != neutral]  # fmt: skip
        return "\n".join(
            [
                "**DeltaAdjustedImputer** (pattern-mixture departure from MAR): "
                f"delta {how} the imputed cells, once, after imputation "
                f"({'; '.join(moved) if moved else 'no column moved: MAR'}). "
                "Observed cells unchanged.",
                "",
                "Wrapped imputer:",
                "",
                record(self.imputer_),
            ]
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def adjust(imputed, missing, delta, kind, column_std):
    """Move the cells where ``missing`` by ``delta`` per column (in place)."""
    for j in np.flatnonzero(missing.any(axis=0)):
        cells = missing[:, j]
        if kind == "shift":
            imputed[cells, j] += delta[j]
        elif kind == "scale":
            imputed[cells, j] *= delta[j]
        elif kind == "sd":
            imputed[cells, j] += delta[j] * column_std[j]
        else:  # "latent" moves cells inside the imputer, not here
            raise ValueError(f"adjust does not move cells of kind {kind!r}")
    return imputed
