"""Missingness patterns and Little's MCAR statistic (statistical kernel).

No scikit-learn or pandas here: arrays in, arrays out.

References
----------
Little, R. J. A. (1988). A test of missing completely at random for
multivariate data with missing values. *JASA* 83, 1198-1202.
"""

from dataclasses import dataclass

import numpy as np

from emimpute.gaussian._conditional import conditional_moments


@dataclass(frozen=True)
class PatternGroups:
    """Rows grouped by missingness pattern.

    ``missing[j]`` is pattern j (True where missing), ``counts[j]`` its number
    of rows and ``index[i]`` the pattern of row i.
    """

    missing: np.ndarray  # (n_patterns, p) bool
    counts: np.ndarray  # (n_patterns,)
    index: np.ndarray  # (n,)


def pattern_groups(mask):
    """Distinct rows of the boolean ``mask`` (True = missing), with counts."""
    missing, index, counts = np.unique(
        mask, axis=0, return_inverse=True, return_counts=True
    )
    return PatternGroups(missing, counts, index.ravel())


def pattern_means(X, groups):
    """Mean of each column over the rows of each pattern (NaN where missing)."""
    n_patterns, p = groups.missing.shape
    observed = np.where(np.isnan(X), 0.0, X)
    sums = np.column_stack(
        [
            np.bincount(groups.index, weights=observed[:, j], minlength=n_patterns)
            for j in range(p)
        ]
    )
    means = sums / groups.counts[:, None]
    means[groups.missing] = np.nan
    return means


def little_statistic(X, mean, covariance, groups=None):
    """Little's (1988) d^2 statistic and its degrees of freedom.

    d^2 = sum over patterns j of n_j (xbar_j - mu)_o' inv(S_oo) (xbar_j - mu)_o,
    with xbar_j the mean of pattern j's rows over its observed columns o, and
    (mu, S) the maximum likelihood estimates under MAR.  Under MCAR it is
    asymptotically chi-square with sum_j |o_j| - p degrees of freedom.  A
    pattern with every column missing adds nothing to either.

    The Mahalanobis terms of all patterns are computed at once, as the
    difference between two observed-data log-likelihoods (of the pattern
    means, and of mu itself, under the same pattern), so that many distinct
    patterns cost no loop.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        NaN at missing cells.
    mean, covariance : ndarrays of shape (p,) and (p, p)
    groups : PatternGroups, optional

    Returns
    -------
    statistic : float
    df : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [2.0, np.nan], [np.nan, 0.0], [1.0, 1.0]])
    >>> statistic, df = little_statistic(X, np.zeros(2), np.eye(2))
    >>> round(statistic, 6), df
    (6.5, 2)
    """
    if groups is None:
        groups = pattern_groups(np.isnan(X))
    means = pattern_means(X, groups)
    at_mean = np.where(groups.missing, np.nan, mean)
    loglik = conditional_moments(means, mean, covariance, want_loglik=True).loglik
    loglik0 = conditional_moments(at_mean, mean, covariance, want_loglik=True).loglik
    mahalanobis = -2.0 * (loglik - loglik0)
    n_observed = (~groups.missing).sum(axis=1)
    statistic = float(np.sum(groups.counts * mahalanobis))
    df = int(n_observed.sum() - groups.missing.shape[1])
    return statistic, df
