"""Make complete data incomplete under a chosen mechanism (for simulations).

:func:`ampute` follows R's ``mice::ampute`` (Schouten, Lugtig & Vink 2018):
rows are shared out among missingness patterns; within each pattern, a
row's chance of becoming incomplete is a logistic function of a weighted
sum of its (standardised) values, shifted so that the chosen proportion of
rows goes missing.  The weights say which variables drive the missingness
and so the mechanism: none (MCAR), variables the pattern keeps (MAR), or
the variables the pattern removes, the values' own size (MNAR).

References
----------
Schouten, R. M., Lugtig, P. & Vink, G. (2018). Generating missing values
for simulation purposes: a multivariate amputation procedure. *J. Stat.
Comput. Simul.* 88, 2909-2930.
"""

import numbers

import numpy as np
import pandas as pd
from scipy import optimize, special
from sklearn.utils import check_random_state

from emimpute.utils._columns import column_position
from emimpute.utils._validation import _describe, numeric_matrix

__all__ = ["ampute"]

MECHANISMS = ("MCAR", "MAR", "MNAR")
# Shapes of the response function of the standardised weighted sum score s:
# the chance of going missing rises with s (right), falls with s (left), is
# highest near the middle (mid) or in both tails (tail); Schouten et al.
# (2018), sec. 2.3, and mice's ampute.continuous.
KINDS = {
    "right": lambda s: s,
    "left": lambda s: -s,
    "mid": lambda s: 0.75 - np.abs(s),
    "tail": lambda s: np.abs(s) - 0.75,
}


def ampute(
    X,
    prop=0.5,
    *,
    mechanism="MAR",
    patterns=None,
    freq=None,
    weights=None,
    kind="right",
    by_cases=True,
    random_state=None,
    return_mask=False,
):
    """Return a copy of complete data with missing values under a mechanism.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        Complete numeric data (never modified).
    prop : float, default=0.5
        Proportion of incomplete rows (``by_cases=True``) or of missing
        cells (``by_cases=False``), in (0, 1).
    mechanism : {"MCAR", "MAR", "MNAR"}, default="MAR"
        What drives the missingness: nothing (MCAR); by default, in each
        pattern, the variables it keeps (MAR); by default, the variables it
        removes, so a value's own size (MNAR).
    patterns : array-like of shape (n_patterns, n_features), or list of lists
        Either R's convention, a 0/1 matrix with 0 where the pattern is
        missing and 1 where it is observed, or, for each pattern, the list of
        columns (names or positions) it makes missing (a list as long as
        there are columns, of 0s and 1s, is read as a 0/1 row).  Default: one
        pattern per column, each removing that column alone (as in mice).
    freq : array-like of shape (n_patterns,), optional
        Relative frequency of the patterns; equal by default.
    weights : array-like of shape (n_patterns, n_features) or (n_features,)
        Weights of the weighted sum score of each pattern (one row for all
        patterns if 1-d).  Default: 1 on the pattern's observed variables
        (MAR) or missing variables (MNAR), 0 elsewhere.  Under MAR a weight
        on a variable the pattern removes is refused (that would be MNAR).
        Negative weights reverse a variable's direction.  Ignored for MCAR.
    kind : {"right", "left", "mid", "tail"} or list of them, default="right"
        Shape of the response function, per pattern if a list: rows with
        high scores (right), low scores (left), scores near the mean (mid)
        or in both tails (tail) are the more likely to go missing.
    by_cases : bool, default=True
        Whether ``prop`` counts rows or cells.
    random_state : int, RandomState instance or None
        Makes the result reproducible.
    return_mask : bool, default=False
        Also return the mask (True where a cell was made missing).

    Returns
    -------
    amputed : DataFrame or ndarray
        A copy of X (float) with NaN at the amputed cells; a DataFrame keeps
        its index and column names.
    mask : ndarray of bool of shape (n_samples, n_features)
        Only if ``return_mask``.

    Notes
    -----
    As in ``mice::ampute``: each row is first assigned to one pattern (with
    probabilities ``freq``); within the rows of a pattern, the weighted sum
    score of the standardised data is standardised again, s, and the row is
    made incomplete with probability expit(f(s) + b), f given by ``kind``,
    with b solved so that the mean probability is the target proportion
    (for MCAR, the probability is the proportion itself).  With
    ``by_cases=False`` the proportion of rows is prop * p / (mean number of
    cells the patterns remove), which must not exceed 1.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 3))
    >>> amputed, mask = ampute(X, 0.3, mechanism="MNAR", patterns=[[0]],
    ...                        random_state=0, return_mask=True)
    >>> round(float(mask.any(axis=1).mean()), 2)
    0.3
    >>> # MNAR, right-tailed: high values of column 0 went missing.
    >>> bool(X[mask[:, 0], 0].mean() > X[~mask[:, 0], 0].mean())
    True
    """
    values, names = numeric_matrix(X, "amputation needs numeric columns")
    _check_arguments(values, names, prop, mechanism)
    missing = _patterns(patterns, names)
    freq = _frequencies(freq, len(missing))
    kinds = _kinds(kind, len(missing))
    score_weights = _weights(weights, missing, mechanism, names)
    row_prop = prop if by_cases else _row_proportion(prop, freq, missing)
    rng = check_random_state(random_state)
    assignment = rng.choice(len(missing), size=values.shape[0], p=freq)
    standardised = (values - values.mean(axis=0)) / _safe_std(values)
    mask = np.zeros(values.shape, dtype=bool)
    for j in range(len(missing)):
        rows = np.flatnonzero(assignment == j)
        if len(rows) == 0:
            continue
        if mechanism == "MCAR":
            chance = np.full(len(rows), row_prop)
        else:
            score = standardised[rows] @ score_weights[j]
            shape = KINDS[kinds[j]](_standardise(score))
            chance = special.expit(shape + _shift(shape, row_prop))
        hit = rows[rng.random_sample(len(rows)) < chance]
        mask[np.ix_(hit, np.flatnonzero(missing[j]))] = True
    amputed = np.where(mask, np.nan, values)
    if isinstance(X, pd.DataFrame):
        amputed = pd.DataFrame(amputed, index=X.index, columns=X.columns)
    return (amputed, mask) if return_mask else amputed


def _check_arguments(values, names, prop, mechanism):
    """Complete data of at least 2 rows, a known mechanism, 0 < prop < 1."""
    incomplete = np.flatnonzero(np.isnan(values).any(axis=0))
    if len(incomplete):
        raise ValueError(
            f"missing values already in {_describe(names, incomplete)}: ampute "
            "starts from complete data (drop or impute those cells first)"
        )
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be one of {MECHANISMS}, got {mechanism!r}")
    if not (isinstance(prop, numbers.Real) and 0 < prop < 1):
        raise ValueError(
            f"prop must be a number strictly between 0 and 1, got {prop!r}"
        )
    if values.shape[0] < 2:
        raise ValueError("ampute needs at least 2 rows")


def _row_proportion(prop, freq, missing):
    """The proportion of incomplete rows that makes ``prop`` of the cells
    missing (``by_cases=False``): prop * p / (mean cells a pattern removes)."""
    row_prop = prop * missing.shape[1] / float(freq @ missing.sum(axis=1))
    if row_prop >= 1:
        raise ValueError(
            f"prop={prop} of cells needs more than every row to be "
            "incomplete with these patterns: lower prop, or use patterns "
            "that remove more cells"
        )
    return row_prop


def _patterns(patterns, names):
    """Patterns as a bool (n_patterns, p) array, True where missing."""
    p = len(names)
    if patterns is None:
        return np.eye(p, dtype=bool)
    if len(patterns) == 0:
        raise ValueError("patterns is empty")
    first = patterns[0]
    as_lists = isinstance(first, (list, tuple)) and (
        len(first) != p or any(isinstance(c, str) for c in first)
    )
    if as_lists:
        missing = np.zeros((len(patterns), p), dtype=bool)
        for j, columns in enumerate(patterns):
            for column in columns:
                missing[j, column_position(names, column, "patterns")] = True
    else:
        matrix = np.asarray(patterns)
        if matrix.ndim != 2 or matrix.shape[1] != p:
            raise ValueError(
                f"patterns must have one 0/1 entry per column ({p}), got shape "
                f"{matrix.shape}"
            )
        if not np.isin(matrix, (0, 1)).all():
            raise ValueError("patterns of 0/1 entries: 0 = missing, 1 = observed")
        missing = matrix == 0
    empty = np.flatnonzero(~missing.any(axis=1))
    if len(empty):
        raise ValueError(f"pattern(s) {empty.tolist()} make no cell missing")
    full = np.flatnonzero(missing.all(axis=1))
    if len(full):
        raise ValueError(
            f"pattern(s) {full.tolist()} make every cell missing: such rows carry "
            "no information (mice refuses them too)"
        )
    return missing


def _frequencies(freq, n_patterns):
    if freq is None:
        return np.full(n_patterns, 1.0 / n_patterns)
    freq = np.asarray(freq, dtype=np.float64)
    if freq.shape != (n_patterns,) or (freq < 0).any() or freq.sum() <= 0:
        raise ValueError(
            f"freq must hold {n_patterns} non-negative numbers, one per pattern"
        )
    return freq / freq.sum()


def _kinds(kind, n_patterns):
    kinds = [kind] * n_patterns if isinstance(kind, str) else list(kind)
    if len(kinds) != n_patterns or any(k not in KINDS for k in kinds):
        raise ValueError(
            f"kind must be one of {tuple(KINDS)}, or a list of them, one per "
            f"pattern ({n_patterns}); got {kind!r}"
        )
    return kinds


def _weights(weights, missing, mechanism, names):
    if weights is None:
        default = ~missing if mechanism == "MAR" else missing
        return default.astype(np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim == 1:
        weights = np.tile(weights, (len(missing), 1))
    if weights.shape != missing.shape:
        raise ValueError(
            f"weights must have shape {missing.shape} (patterns by columns) or "
            f"({missing.shape[1]},), got {weights.shape}"
        )
    if mechanism == "MAR":
        on_missing = np.flatnonzero((weights != 0) & missing)
        if len(on_missing):
            columns = np.unique(on_missing % missing.shape[1])
            raise ValueError(
                f"mechanism='MAR' with weight on {_describe(names, columns)}, "
                "which the pattern makes missing: that is MNAR (use "
                "mechanism='MNAR', or give those columns weight 0)"
            )
    if mechanism != "MCAR" and not (weights != 0).any(axis=1).all():
        raise ValueError("every pattern needs a non-zero weight unless MCAR")
    return weights


def _safe_std(values):
    std = values.std(axis=0)
    return np.where(std > 0, std, 1.0)


def _standardise(score):
    std = score.std()
    return (score - score.mean()) / (std if std > 0 else 1.0)


def _shift(shape, target):
    """b such that the mean of expit(shape + b) is ``target`` (monotone in b)."""
    return optimize.brentq(
        lambda b: special.expit(shape + b).mean() - target, -50.0, 50.0, xtol=1e-12
    )
