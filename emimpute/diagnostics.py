"""How is the data missing?  Patterns, Little's MCAR test, and missingness
against the other variables.

Look before imputing: which combinations of columns are missing together and
how often (:func:`missing_patterns`), whether the data are consistent with
missing completely at random (:func:`little_mcar_test`), and where MCAR
fails, which observed variables the missingness tracks
(:func:`missing_rate_by`, :func:`missingness_associations`), the evidence
for a MAR model with those variables in it.  Every function takes a pandas
DataFrame (names kept) or a 2-d array (columns named ``x0``, ``x1``, ...),
with NaN (or ``pd.NA``) at missing cells, and never modifies it.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from emimpute.models._normal import fit_normal_em
from emimpute.utils._patterns import little_statistic, pattern_groups
from emimpute.utils._validation import _describe, numeric_matrix

__all__ = [
    "MCARTestResult",
    "little_mcar_test",
    "missing_patterns",
    "missing_rate_by",
    "missingness_associations",
]

_PURPOSE = "these diagnostics need numeric columns"


def missing_patterns(X):
    """One row per missingness pattern, sorted as in R's ``mice::md.pattern``.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)

    Returns
    -------
    pandas.DataFrame
        Columns: the variables, ordered from least to most often missing
        (1 = observed, 0 = missing in that pattern), then ``count`` (rows with
        the pattern), ``share`` (count / n) and ``n_missing`` (missing cells
        per row of the pattern).  Patterns are ordered from the most complete
        down (the complete-case pattern first, if any), ties broken as
        md.pattern does, by reading the 0/1 columns left to right.  Two
        summary rows close the table: ``n_missing`` (missing cells per
        column; ``count`` holds the total) and ``missing_rate`` (their share
        of the rows; ``count`` holds the share of all cells).

    Examples
    --------
    >>> from emimpute.datasets import load_airquality
    >>> table = missing_patterns(load_airquality())
    >>> table[["Solar.R", "Ozone", "count", "n_missing"]].round(3)
                  Solar.R   Ozone    count  n_missing
    1               1.000   1.000  111.000        0.0
    2               1.000   0.000   35.000        1.0
    3               0.000   1.000    5.000        1.0
    4               0.000   0.000    2.000        2.0
    n_missing       7.000  37.000   44.000        NaN
    missing_rate    0.046   0.242    0.048        NaN
    """
    values, names = numeric_matrix(X, _PURPOSE)
    n, p = values.shape
    mask = np.isnan(values)
    per_column = mask.sum(axis=0)
    order = np.argsort(per_column, kind="stable")
    groups = pattern_groups(mask[:, order])
    observed = (~groups.missing).astype(np.float64)
    # Sort patterns by number of missing cells, then by the observed flags
    # read left to right as a binary number, largest first (md.pattern).
    keys = [-observed[:, j] for j in range(p - 1, -1, -1)]
    rank = np.lexsort([*keys, groups.missing.sum(axis=1)])
    table = pd.DataFrame(observed[rank], columns=[names[j] for j in order])
    table["count"] = groups.counts[rank].astype(np.float64)
    table["share"] = table["count"] / n
    table["n_missing"] = groups.missing[rank].sum(axis=1).astype(np.float64)
    table.index = [str(i + 1) for i in range(len(table))]
    summary = pd.DataFrame(
        [
            [*per_column[order], mask.sum(), np.nan, np.nan],
            [*(per_column[order] / n), mask.mean(), np.nan, np.nan],
        ],
        columns=table.columns,
        index=["n_missing", "missing_rate"],
    )
    return pd.concat([table, summary])


@dataclass(frozen=True)
class MCARTestResult:
    """Outcome of :func:`little_mcar_test`.

    Attributes
    ----------
    statistic : float
        Little's d^2.
    df : int
        Degrees of freedom of its chi-square reference distribution.
    p_value : float
        Small values are evidence against MCAR.
    n_patterns : int
        Distinct missingness patterns, an all-missing one included.
    n_samples : int
    mean, covariance : ndarray
        The maximum likelihood estimates the statistic uses.
    """

    statistic: float
    df: int
    p_value: float
    n_patterns: int
    n_samples: int
    mean: np.ndarray
    covariance: np.ndarray

    def __repr__(self):
        return (
            "Little's MCAR test\n"
            f"  chi-square = {self.statistic:.4f}, df = {self.df}, "
            f"p-value = {self.p_value:.4g}\n"
            f"  {self.n_patterns} missingness patterns, {self.n_samples} rows"
        )


def little_mcar_test(X, *, ridge=0.0, tol=1e-10, max_iter=1000):
    """Little's (1988) chi-square test of missing completely at random.

    Under MCAR, the mean of each missingness pattern's rows, over the columns
    it observes, differs from the overall mean only by chance; the statistic
    adds these differences up in Mahalanobis units, with the maximum
    likelihood mean and covariance (divisor n) fitted by EM.  Like any such
    test it can only reject MCAR: a large p-value does not show MCAR, and a
    small one does not tell MAR from MNAR.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        Numeric, NaN (or ``pd.NA``) at missing cells.
    ridge : float, default=0.0
        Ridge prior for the EM fit (see :class:`emimpute.EMImputer`); 0 gives
        the maximum likelihood estimate the test assumes.
    tol, max_iter : float and int
        Convergence of the EM fit, tighter than EMImputer's default so that
        the statistic does not depend on where EM stopped.

    Returns
    -------
    MCARTestResult

    Notes
    -----
    d^2 = sum over patterns j of n_j (xbar_j - mu)_o' inv(S_oo) (xbar_j - mu)_o
    over the observed columns o of pattern j, compared with a chi-square on
    sum_j |o_j| - p degrees of freedom (Little 1988, eq. 5).  A pattern with
    every column missing counts as a pattern and adds nothing.  On R's
    ``airquality`` this gives the value that ``naniar::mcar_test`` reports
    (35.106 on 14 df, p = 0.0014, 4 patterns); naniar's EM (from ``norm``)
    stops earlier, so the digits beyond the fourth can differ.

    References
    ----------
    Little, R. J. A. (1988). A test of missing completely at random for
    multivariate data with missing values. *JASA* 83, 1198-1202.

    Examples
    --------
    >>> from emimpute.datasets import load_airquality
    >>> little_mcar_test(load_airquality())
    Little's MCAR test
      chi-square = 35.1062, df = 14, p-value = 0.001418
      4 missingness patterns, 153 rows
    """
    values, names = numeric_matrix(X, _PURPOSE)
    mask = np.isnan(values)
    empty = np.flatnonzero(mask.all(axis=0))
    if len(empty):
        raise ValueError(
            f"no observed value in {_describe(names, empty)}: drop it first"
        )
    result = fit_normal_em(values, ridge=ridge, tol=tol, max_iter=max_iter)
    groups = pattern_groups(mask)
    statistic, df = little_statistic(values, result.mean, result.covariance, groups)
    p_value = float(stats.chi2.sf(statistic, df)) if df > 0 else np.nan
    return MCARTestResult(
        statistic=statistic,
        df=df,
        p_value=p_value,
        n_patterns=len(groups.counts),
        n_samples=len(values),
        mean=result.mean,
        covariance=result.covariance,
    )


def missing_rate_by(X, by, *, bins=4, max_levels=10):
    """Missing rate of each incomplete column within the levels of another.

    A quick look for segments where data go missing more often ("do the
    missing incomes sit in one region?", "does missingness jump above some
    age?"): under MCAR every row of the table is about the same.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        Any dtypes (only whether a cell is missing matters).
    by : str or int, or array-like of shape (n_samples,)
        The segmenting variable: the name (or position, for arrays) of a
        column of X, which is then left out of the report, or a separate
        sequence, for example a categorical column not in X.
    bins : int, default=4
        A numeric ``by`` with more than ``max_levels`` distinct values is cut
        into this many quantile bins (``pandas.qcut``, fewer if quantiles
        tie).
    max_levels : int, default=10
        Up to this many distinct values, each value of ``by`` is a level of
        its own.  Rows where ``by`` is missing form the level ``"(missing)"``.

    Returns
    -------
    pandas.DataFrame
        One row per level (in order), columns ``n`` (rows in the level) and
        the missing rate of each column of X that has missing cells.

    Examples
    --------
    >>> from emimpute.datasets import load_airquality
    >>> table = missing_rate_by(load_airquality(), "Month")
    >>> table.round(3)  # doctest: +NORMALIZE_WHITESPACE
            n  Ozone  Solar.R
    Month
    5.0    31  0.161    0.129
    6.0    30  0.700    0.000
    7.0    31  0.161    0.000
    8.0    31  0.161    0.097
    9.0    30  0.033    0.000
    """
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    if not isinstance(X, pd.DataFrame):
        frame.columns = [f"x{j}" for j in range(frame.shape[1])]
    if isinstance(by, (str, int, np.integer)) and not isinstance(by, bool):
        key = by if by in frame.columns else None
        if key is None and isinstance(by, (int, np.integer)):
            if not 0 <= by < frame.shape[1]:
                raise ValueError(f"by={by} is not a column position of X")
            key = frame.columns[by]
        if key is None:
            raise ValueError(f"by={by!r} is not a column of X")
        segment = frame[key]
        frame = frame.drop(columns=[key])
        name = str(key)
    else:
        segment = pd.Series(np.asarray(by) if not isinstance(by, pd.Series) else by)
        if len(segment) != len(frame):
            raise ValueError(
                f"by has {len(segment)} values but X has {len(frame)} rows"
            )
        name = segment.name if segment.name is not None else "by"
        segment = segment.reset_index(drop=True)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    numeric = pd.api.types.is_numeric_dtype(segment.dtype)
    if numeric and segment.nunique(dropna=True) > max_levels:
        levels = pd.qcut(segment, bins, duplicates="drop")
    else:
        levels = segment
    levels = pd.Series(levels.to_numpy(), name=name).astype(object)
    levels[pd.isna(levels)] = "(missing)"
    mask = frame.reset_index(drop=True).isna()
    mask = mask.loc[:, mask.any(axis=0).to_numpy()]
    mask.columns = [str(c) for c in mask.columns]
    grouped = mask.groupby(levels.to_numpy(), sort=False)
    table = grouped.mean()
    table.insert(0, "n", grouped.size())
    order = sorted(table.index, key=_level_order)
    table = table.loc[order]
    table.index.name = name
    return table


def _level_order(level):
    """Levels in their natural order, "(missing)" last."""
    if isinstance(level, str) and level == "(missing)":
        return (2, 0, "")
    if isinstance(level, pd.Interval):
        return (0, level.left, "")
    if isinstance(level, (int, float, np.number)):
        return (0, float(level), "")
    return (1, 0, str(level))


def missingness_associations(X):
    """How each column's missingness relates to every other observed column.

    For each incomplete column j and each other column k, the mean of k on
    the rows where j is missing against the rows where j is observed (rows
    where k is observed only): their difference in pooled standard
    deviations (standardised mean difference) and a Welch t-test.  Under MCAR
    all differences are noise; a large one says the missingness of j is
    predictable from k, which is evidence against MCAR and points to the
    variables a MAR imputation model must include.  (MNAR, dependence on the
    missing value itself, cannot be seen in observed data.)

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        Numeric, NaN (or ``pd.NA``) at missing cells.

    Returns
    -------
    pandas.DataFrame
        One row per (``missing_column``, ``other_column``) pair, sorted by
        the size of ``std_difference``: ``n_missing`` and ``n_observed``
        (rows of each group where the other column is observed),
        ``mean_if_missing``, ``mean_if_observed``, ``std_difference``
        ((mean_if_missing - mean_if_observed) / sqrt((var_missing +
        var_observed) / 2)), ``t_statistic`` and ``p_value`` (Welch's
        unequal-variance t-test; NaN when a group has fewer than 2 rows).

    Examples
    --------
    >>> from emimpute.datasets import load_airquality
    >>> table = missingness_associations(load_airquality()).set_index(
    ...     ["missing_column", "other_column"])
    >>> table.loc[("Ozone", "Month"), ["n_missing", "mean_if_missing",
    ...                                "mean_if_observed", "p_value"]].round(4)
    n_missing           37.0000
    mean_if_missing      6.3514
    mean_if_observed     7.1983
    p_value              0.0001
    Name: (Ozone, Month), dtype: float64
    """
    values, names = numeric_matrix(X, _PURPOSE)
    mask = np.isnan(values)
    rows = []
    for j in np.flatnonzero(mask.any(axis=0)):
        others = np.array([k for k in range(values.shape[1]) if k != j])
        if len(others) == 0:
            continue
        groups = {}
        for label, in_group in (("missing", mask[:, j]), ("observed", ~mask[:, j])):
            usable = in_group[:, None] & ~mask[:, others]
            count = usable.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(usable, values[:, others], 0.0).sum(axis=0) / count
                deviation = np.where(usable, values[:, others] - mean, 0.0)
                variance = (deviation**2).sum(axis=0) / (count - 1)
            groups[label] = (count, mean, variance)
        (n_m, mean_m, var_m), (n_o, mean_o, var_o) = (
            groups["missing"],
            groups["observed"],
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            difference = mean_m - mean_o
            std_difference = difference / np.sqrt((var_m + var_o) / 2.0)
            standard_error2 = var_m / n_m + var_o / n_o
            t = difference / np.sqrt(standard_error2)
            # Welch-Satterthwaite degrees of freedom.
            df = standard_error2**2 / (
                (var_m / n_m) ** 2 / (n_m - 1) + (var_o / n_o) ** 2 / (n_o - 1)
            )
            p_value = 2.0 * stats.t.sf(np.abs(t), df)
        too_few = (n_m < 2) | (n_o < 2)
        for array in (std_difference, t, p_value):
            array[too_few] = np.nan
        rows.append(
            pd.DataFrame(
                {
                    "missing_column": names[j],
                    "other_column": [names[k] for k in others],
                    "n_missing": n_m,
                    "n_observed": n_o,
                    "mean_if_missing": mean_m,
                    "mean_if_observed": mean_o,
                    "std_difference": std_difference,
                    "t_statistic": t,
                    "p_value": p_value,
                }
            )
        )
    columns = [
        "missing_column", "other_column", "n_missing", "n_observed",
        "mean_if_missing", "mean_if_observed", "std_difference", "t_statistic",
        "p_value",
    ]  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.concat(rows, ignore_index=True)
    order = np.argsort(-np.abs(table["std_difference"].to_numpy()), kind="stable")
    return table.iloc[order].reset_index(drop=True)
