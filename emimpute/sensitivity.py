"""Sensitivity and tipping-point analysis: how conclusions move off MAR.

Under MNAR the observed data cannot say how far the missing values differ
from what a MAR model predicts.  The defensible answer is a curve: the
pooled result of an analysis over a grid of departures from MAR, either
pattern-mixture deltas (:class:`emimpute.DeltaAdjustedImputer`) or fixed
MNAR coefficients of the selection model
(:class:`emimpute.MNARSelectionImputer`), and the *tipping point*, the
smallest departure at which the conclusion changes.

Under deltas, the MAR multiple imputation (:class:`emimpute.MultipleImputer`)
is run once and every grid point adjusts copies of the same draws, so the
curve is smooth and only the analysis is repeated; under fixed psi values
the model itself changes, and each grid point is a multiple imputation with
the same ``random_state``, whose m fits start from those of the nearest
grid point already fitted (warm starts: ``MultipleImputer(warm_start=True)``),
which saves the MAR start of each fit.  With psi held, EM's rate more than
the start sets the iterations, so a warm point costs about as many
iterations as a cold one.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from emimpute.imputers._delta_imputer import KINDS as DELTA_KINDS
from emimpute.imputers._delta_imputer import adjust, neutral_delta
from emimpute.imputers._em_imputer import EMImputer
from emimpute.imputers._mnar_imputer import MNARSelectionImputer
from emimpute.imputers._multiple_imputer import MultipleImputer
from emimpute.models._normal import observed_column_moments
from emimpute.pooling import pool
from emimpute.utils._columns import column_position, feature_names
from emimpute.utils._validation import finite_number

__all__ = ["TippingPoint", "sensitivity_analysis", "tipping_point"]

# DeltaAdjustedImputer's kinds, and "psi": fixed MNAR coefficients of the
# selection model.
KINDS = (*DELTA_KINDS, "psi")


def sensitivity_analysis(
    analysis,
    X,
    y=None,
    *,
    column,
    deltas,
    kind="shift",
    column2=None,
    deltas2=None,
    imputer=None,
    n_imputations=20,
    random_state=0,
    n_jobs=None,
    names=None,
    warm_start=True,
):
    """Pooled results of an analysis over a grid of departures from MAR.

    Parameters
    ----------
    analysis : estimator or callable
        An estimator with built-in pooled inference in
        :class:`MultipleImputer` (``LinearRegression``, unpenalised
        ``LogisticRegression``), fitted on each completed (X, y); or a
        callable ``analysis(X_completed, y) -> (estimates, variances[,
        dfcom])``, for example a mean with its squared standard error.
    X : DataFrame or array-like
    y : array-like, optional
        The outcome of an estimator ``analysis`` (may have missing values,
        imputed with X as in MultipleImputer).
    column, column2 : str or int
        The column(s) whose missing values depart from MAR.
    deltas, deltas2 : sequence of float
        The grid: deltas of :class:`DeltaAdjustedImputer` (``kind``
        "shift", "scale", "sd", or "latent" with a
        :class:`GaussianCopulaImputer`), or fixed psi of
        :class:`MNARSelectionImputer` (``kind="psi"``); not empty, every
        value finite.  Include the MAR value (0, or 1 for "scale").
    kind : {"shift", "scale", "sd", "latent", "psi"}, default="shift"
    imputer : estimator, optional
        The MAR imputer under the deltas (``EMImputer()`` by default), or,
        for ``kind="psi"``, a template MNARSelectionImputer (its
        ``mnar_features`` and ``psi`` are set for each grid point).
    n_imputations : int, default=20
    random_state : int, default=0
        The same for every grid point (common random numbers).
    n_jobs : int, optional
    names : list of str, optional
        Names of a callable analysis's parameters (``x0``, ``x1``, ... by
        default); an estimator's are its intercept and feature names.
    warm_start : bool, default=True
        For ``kind="psi"``: fit the grid points in order of distance from
        the first, each multiple imputation starting its m selection-model
        fits from those of the nearest point already fitted (the same
        bootstrap resamples, as ``random_state`` is the same), instead of
        from scratch.  The results are the same to within the fits'
        tolerance (``tol`` of the template imputer); False fits every point
        from scratch.  No effect on the delta kinds, which impute once.

    Returns
    -------
    pandas.DataFrame
        One row per grid point and term: ``delta`` (and ``delta2``),
        ``term``, ``estimate``, ``std_error``, ``df``, ``statistic``,
        ``p_value``, ``ci_low``, ``ci_high``, ``fmi``.  ``table.attrs``
        records the setup (for :func:`emimpute.report.report`).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    # Checked before any imputation runs (an empty grid used to fail in
    # pandas only after the whole multiple imputation).
    deltas = _grid_values(deltas, "deltas", kind)
    grid = [(d, None) for d in deltas]
    if column2 is not None:
        if deltas2 is None:
            raise ValueError("column2 needs deltas2")
        deltas2 = _grid_values(deltas2, "deltas2", kind)
        grid = [(d, d2) for d in deltas for d2 in deltas2]
    if kind == "psi":
        # The model itself changes with psi: one multiple imputation per point.
        results = _psi_grid(
            analysis, X, y, imputer, column, column2, grid, n_imputations,
            random_state, n_jobs, names, warm_start,
        )  # fmt: skip
    else:
        # Under a delta, the MAR draws are the same at every grid point: impute
        # once, then adjust copies of the draws and rerun only the analysis.
        results = _delta_grid(
            analysis, X, y, imputer, kind, column, column2, grid, n_imputations,
            random_state, n_jobs, names,
        )  # fmt: skip
    out = _results_table(grid, results, column2 is not None)
    out.attrs.update(
        {
            "column": str(column),
            "column2": None if column2 is None else str(column2),
            "kind": kind,
            "n_imputations": n_imputations,
            "random_state": random_state,
            "imputer": repr(imputer if imputer is not None else EMImputer()),
            "analysis": getattr(analysis, "__name__", repr(analysis)),
            "warm_start": bool(warm_start) and kind == "psi",
        }
    )
    return out


def _results_table(grid, results, two_columns):
    """One row per grid point and term, the grid's values first."""
    tables = []
    for (delta, delta2), result in zip(grid, results, strict=True):
        table = result.summary().reset_index()
        table.insert(0, "delta", delta)
        if two_columns:
            table.insert(1, "delta2", delta2)
        tables.append(table)
    out = pd.concat(tables, ignore_index=True)
    keep = ["delta", "delta2"] if two_columns else ["delta"]
    keep += ["term", "estimate", "std_error", "df", "statistic", "p_value",
             "ci_low", "ci_high", "fmi"]  # fmt: skip
    return out[keep]


def _grid_values(values, name, kind):
    """The grid as a list of finite floats, or a clear error."""
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise TypeError(
            f"{name} must be a sequence of numbers (the grid of "
            f"{'psi values' if kind == 'psi' else 'deltas'}), got {values!r}."
        )
    if len(values) == 0:
        mar = f"{neutral_delta(kind):g}"
        raise ValueError(
            f"{name} is empty: give at least one value, and include the MAR "
            f"value {mar} for a tipping-point analysis."
        )
    return [finite_number(v, f"{name}[{i}]") for i, v in enumerate(values)]


def _selection_at(imputer, column, delta, column2, delta2):
    """The selection model with psi held at the grid point."""
    template = imputer if imputer is not None else MNARSelectionImputer()
    features = [column] if column2 is None else [column, column2]
    coef = {column: delta} if column2 is None else {column: delta, column2: delta2}
    return clone(template).set_params(mnar_features=features, psi=coef)


def _psi_grid(
    analysis, X, y, imputer, column, column2, grid, n_imputations, random_state,
    n_jobs, names, warm_start,
):  # fmt: skip
    """Pooled results at every fixed psi of the grid, each point's multiple
    imputation warm-started from the nearest point already fitted."""
    # Why a warm start finds the cold fit's optimum here.  Every MNAR column
    # has its psi held (_selection_at), so the cold fit is one EM run from
    # the MAR start: fit_selection_em runs its multi-start only for a free
    # psi, because the modes of selection models lie along psi (psi traded
    # against gamma and the covariance, Heckman's case).  With psi held, the
    # model left is a normal model times probit/logit regressions of each
    # missingness indicator on a known offset psi * x_j and the covariates,
    # each concave in its coefficients given the data (the M-step's
    # complete-data log-likelihoods).  Its optimum moves smoothly with the
    # held psi (implicit function theorem at a non-singular information), so
    # the neighbour's optimum lies in the basin of the optimum the cold fit
    # reaches from psi's MAR start.  An argument, not a proof; checked on 15
    # random designs (2-5 columns, 300-4000 rows, both links, one or two MNAR
    # columns, some with a MAR column) over psi = -2..2 standard deviations
    # in 9 steps: warm and cold agree to 1e-5 (standardised) at tol = 1e-6,
    # within tests/conftest.py's fit_tolerance, the log-likelihoods to 1e-10.
    order, scaled = _grid_order(grid)
    results, fitted = [None] * len(grid), {}
    for i in order:
        delta, delta2 = grid[i]
        start = None
        if warm_start and fitted:
            nearest = min(fitted, key=lambda k: np.abs(scaled[k] - scaled[i]).sum())
            start = fitted[nearest]
        results[i], fitted[i] = _pooled(
            analysis, X, y, _selection_at(imputer, column, delta, column2, delta2),
            n_imputations, random_state, n_jobs, names, start,
        )  # fmt: skip
    return results


def _grid_order(grid):
    """The grid points' indices in order of distance from the first, and the
    points on a common scale (each coordinate over its range on the grid)."""
    points = np.array([[d, 0.0 if d2 is None else d2] for d, d2 in grid])
    spread = np.ptp(points, axis=0)
    scaled = points / np.where(spread > 0, spread, 1.0)
    distance = np.abs(scaled - scaled[0]).sum(axis=1)
    return np.argsort(distance, kind="stable"), scaled


def _is_callable_analysis(analysis):
    return callable(analysis) and not hasattr(analysis, "fit")


def _delta_grid(
    analysis, X, y, imputer, kind, column, column2, grid, n_imputations,
    random_state, n_jobs, names,
):  # fmt: skip
    """Pooled results at every delta from one set of MAR imputations."""
    estimator = None if _is_callable_analysis(analysis) else analysis
    mi = MultipleImputer(
        EMImputer() if imputer is None else imputer, n_imputations=n_imputations,
        estimator=estimator, random_state=random_state, n_jobs=n_jobs,
    ).fit(X, y if estimator is not None else None)  # fmt: skip
    draws = mi._training_draws(X, y)
    data = _with_outcome(mi, X, y)
    missing = np.isnan(data)
    _, _, column_std, _, _ = observed_column_moments(data)
    positions = [column_position(feature_names(mi), column, "column")]
    if column2 is not None:
        positions.append(column_position(feature_names(mi), column2, "column2"))
    neutral = neutral_delta(kind)
    p = mi.n_features_in_
    results = []
    if kind == "latent" and not hasattr(
        mi.imputers_[0], "_transform_with_latent_shift"
    ):
        raise ValueError(
            "kind='latent' shifts imputed cells on a latent scale: the imputer "
            "must have one (GaussianCopulaImputer), not "
            f"{type(mi.imputers_[0]).__name__}."
        )
    for delta, delta2 in grid:
        deltas = np.full(missing.shape[1], neutral)
        deltas[positions[0]] = delta
        if column2 is not None:
            deltas[positions[1]] = delta2
        if kind == "latent":
            # Each imputation's imputer draws again with its own seed: the
            # same latent draws at every delta (common random numbers),
            # shifted before the margins map them back.
            adjusted = [
                imputer._transform_with_latent_shift(data, deltas)
                for imputer in mi.imputers_
            ]
        else:
            adjusted = [
                adjust(d.copy(), missing, deltas, kind, column_std) for d in draws
            ]
        if estimator is None:
            results.append(
                _pool_callable(analysis, [a[:, :p] for a in adjusted], y, names)
            )
            continue
        mi._analyse(adjusted, None if mi._with_outcome else y)
        if mi.pooled_ is None:
            raise ValueError(_NO_INFERENCE.format(type(analysis).__name__))
        results.append(mi.pooled_)
    return results


def _with_outcome(mi, X, y):
    """The matrix the imputers saw: X, and y's columns if imputed (a class
    label as indicators, so string labels work too)."""
    return mi._imputation_data(np.asarray(X, dtype=np.float64), y)


def _pool_callable(analysis, completed, y, names):
    rows = [analysis(values, y) for values in completed]
    estimates = np.array([np.atleast_1d(row[0]) for row in rows], dtype=float)
    variances = np.array([np.atleast_1d(row[1]) for row in rows], dtype=float)
    dfcom = rows[0][2] if len(rows[0]) > 2 else None
    return pool(estimates, variances, dfcom=dfcom, names=names)


_NO_INFERENCE = (
    "{} has no built-in pooled inference: pass a callable "
    "analysis(X, y) -> (estimates, variances[, dfcom]) instead"
)


def _pooled(
    analysis, X, y, imputer, n_imputations, random_state, n_jobs, names,
    start=None,
):  # fmt: skip
    """One full multiple imputation and the pooled analysis: ``(pooled,
    imputers)``, its imputers warm-started from ``start`` (the fitted
    imputers of another grid point) when given."""
    estimator = None if _is_callable_analysis(analysis) else analysis
    mi = MultipleImputer(
        imputer, n_imputations=n_imputations, estimator=estimator,
        random_state=random_state, n_jobs=n_jobs, warm_start=start is not None,
    )  # fmt: skip
    if start is not None:
        # What a previous fit would have left: MultipleImputer copies these
        # before refitting them, so the other grid point keeps its own.
        mi.imputers_ = start
    if estimator is None:
        # The fit's own draws of X: what multiple_transform(X) would give
        # (each imputer draws with its fixed random_state), drawn once.
        mi._keep_fit_draws = True
        draws = mi.fit(X)._fit_draws
        return _pool_callable(analysis, draws, y, names), mi.imputers_
    mi.fit(X, y)
    if mi.pooled_ is None:
        raise ValueError(_NO_INFERENCE.format(type(analysis).__name__))
    return mi.pooled_, mi.imputers_


@dataclass(frozen=True)
class TippingPoint:
    """Where the conclusion of a sensitivity analysis changes."""

    delta: float  # interpolated departure at which it changes (None if never)
    bracket: tuple  # the two grid values it lies between
    criterion: str
    mar_conclusion: str
    description: str

    def __repr__(self):
        return self.description


def tipping_point(table, term, *, null=0.0, criterion="ci", alpha=0.05, mar=0.0):
    """The smallest departure from MAR at which the conclusion changes.

    Parameters
    ----------
    table : DataFrame from :func:`sensitivity_analysis` (one column)
    term : str
        The parameter to judge (a value of ``table["term"]``).
    null : float, default=0.0
        The value the interval is compared with.
    criterion : {"ci", "p"}, default="ci"
        "ci": the conclusion is whether the confidence interval excludes
        ``null``; "p": whether the p-value is below ``alpha``.
    alpha : float, default=0.05
    mar : float, default=0.0
        The MAR point of the grid (1 for ``kind="scale"``).

    Returns
    -------
    TippingPoint
        Searched on each side of ``mar``; the nearer change is reported,
        its position interpolated linearly between the two grid points that
        bracket it (where the interval bound reaches ``null``, or the
        p-value reaches ``alpha``).  ``delta`` is None if the conclusion
        never changes on the grid.
    """
    if criterion not in ("ci", "p"):
        raise ValueError(f"criterion must be 'ci' or 'p', got {criterion!r}")
    rows = table[table["term"] == term].sort_values("delta")
    if rows.empty:
        raise ValueError(f"no term {term!r} in the table")
    if "delta2" in rows.columns:
        raise ValueError("tipping_point takes a one-column analysis")
    deltas = rows["delta"].to_numpy()
    if not np.any(np.isclose(deltas, mar)):
        raise ValueError(f"the grid must include the MAR value {mar}")

    def signal(row):
        """Positive when the conclusion holds (interval excludes null, or p < alpha)."""
        if criterion == "p":
            return alpha - row["p_value"]
        return max(row["ci_low"] - null, null - row["ci_high"])

    signals = np.array([signal(row) for _, row in rows.iterrows()])
    start = int(np.argmin(np.abs(deltas - mar)))
    holds = signals[start] > 0

    def conclusion(holding):
        if criterion == "ci":
            verb = "excludes" if holding else "includes"
            return f"the {1 - alpha:.0%} interval of {term} {verb} {null:g}"
        relation = "below" if holding else "not below"
        return f"the p-value of {term} is {relation} {alpha:g}"

    mar_conclusion = conclusion(holds)
    best = None
    for step in (1, -1):
        i = start
        while 0 <= i + step < len(deltas):
            j = i + step
            if (signals[j] > 0) != holds:
                s0, s1 = signals[i], signals[j]
                where = deltas[i] + (deltas[j] - deltas[i]) * s0 / (s0 - s1)
                if best is None or abs(where - mar) < abs(best[0] - mar):
                    best = (where, (deltas[i], deltas[j]))
                break
            i = j
    if best is None:
        description = (
            f"No tipping point on the grid [{deltas.min():g}, {deltas.max():g}]: "
            f"at every value, {mar_conclusion}."
        )
        return TippingPoint(None, None, criterion, mar_conclusion, description)
    description = (
        f"Tipping point at delta = {best[0]:.4g} (between grid values "
        f"{best[1][0]:g} and {best[1][1]:g}): under MAR {mar_conclusion}; "
        f"beyond the tipping point {conclusion(not holds)}."
    )
    return TippingPoint(float(best[0]), best[1], criterion, mar_conclusion, description)
