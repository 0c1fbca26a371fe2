"""The automatic ridge: a proper fit where the normal MLE does not exist.

The likelihood of a multivariate normal has no finite maximum when the data
leave some direction without spread: a constant column, a column with a
single observed value, exactly collinear columns (x3 = 2 x0, duplicates,
one-hot dummies that sum to 1), more columns than rows.  The likelihood then
grows without bound as the covariance collapses onto that direction, and EM
heads for a singular matrix.  Following the advice of Amelia (Honaker, King
& Blackwell 2011, sec. 4.6) and Schafer (1997, sec. 5.2.3), a ridge prior
makes the estimate proper; here the prior is chosen as small as it can be:
the first strength of :data:`LADDER` whose fit is proper.  Its imputations
are then those of the limit of the prior as it vanishes, to a relative
error of about the strength (with x3 = 2 x0 in the data the imputed x3 is
2 x0 to about 1e-8).  Where the MLE exists nothing changes.

No scikit-learn import here: the estimators word the warning.
"""

from dataclasses import dataclass

import numpy as np

from emimpute.engine._model import SingularCovarianceError

# Prior strengths tried, in pseudo-observations per row of data.  The first
# (1e-8 n) moves each correlation by a relative 1e-8, and bounds the
# condition number of the standardised covariance by about 1e8, which keeps
# the E-step's precision matrix accurate to about 1e-8 in float64.
LADDER = (1e-8, 1e-6, 1e-4, 1e-2)

# A prior of strength f (per row) leaves the standardised covariance a
# condition number of about 1/f, so its iterates carry rounding noise of
# about NOISE / f in relative terms: a tolerance below that cannot be met,
# and each rung is fitted with a tolerance of at least NOISE / f (1e-7 at
# the weakest rung), or a tight user tol would push the ladder up to a
# needlessly strong prior.
NOISE = 1e-15

# A fitted correlation matrix with an eigenvalue below this is singular for
# all purposes: its precision matrix has lost about 10 of float64's 16
# digits, and a likelihood that reached it was still growing without bound
# (a genuine MLE with correlations this close to 1 is beyond float64 anyway).
SINGULAR_EIGENVALUE = 1e-10

# After a regularised fit, columns loading on eigenvalues of the correlation
# matrix below this are named as collinear (correlations within 1e-4 of a
# perfect linear relation, or held only by the prior).
COLLINEAR_EIGENVALUE = 1e-4


@dataclass(frozen=True)
class RidgeFit:
    """Outcome of :func:`fit_with_automatic_ridge`.

    ``result`` is what ``fit`` returned, at prior strength ``ridge``.
    ``problems`` is empty when no prior had to be added, else it maps each
    reason the MLE does not exist ("single", "constant", "collinear",
    "wide") to the positions of the columns involved.
    """

    result: object
    ridge: float
    problems: dict


def degenerate_columns(n_observed, spread):
    """Columns without a variance estimate of their own, found before fitting:
    ``{"single": positions with one observed value, "constant": positions
    whose observed values are all equal}`` (empty entries left out)."""
    n_observed = np.asarray(n_observed)
    found = {
        "single": np.flatnonzero(n_observed == 1),
        "constant": np.flatnonzero((n_observed > 1) & (np.asarray(spread) == 0)),
    }
    return {reason: columns for reason, columns in found.items() if len(columns)}


def small_eigen_columns(covariance, scale, threshold):
    """Positions of the columns that load on the eigenvectors of the
    correlation-scale covariance whose eigenvalues are below ``threshold``."""
    scaled = covariance / np.outer(scale, scale)
    values, vectors = np.linalg.eigh(0.5 * (scaled + scaled.T))
    weak = vectors[:, values < threshold]
    if not weak.shape[1]:
        return np.array([], dtype=int)
    # A column is involved when it carries a visible share of a weak direction.
    return np.flatnonzero(np.max(np.abs(weak), axis=1) > 0.1)


def fit_with_automatic_ridge(fit, *, ridge, n_rows, scale, known=None):
    """Fit at ``ridge``; if that is 0 and the MLE does not exist, at the
    smallest strength of :data:`LADDER` (times ``n_rows``) whose fit is
    proper.

    Parameters
    ----------
    fit : callable
        ``fit(ridge, min_tol) -> result`` with ``covariance`` (or, for
        models whose covariance may not exist, ``dispersion``: the matrix
        whose small eigenvalues mark collinear columns) and ``converged``
        attributes, fitted with a tolerance of at least ``min_tol`` (see
        :data:`NOISE`); raises
        :class:`~emimpute.engine._model.SingularCovarianceError` when the
        covariance becomes singular.
    ridge : float
        The user's prior strength; when positive it is used as given.
    n_rows : int
        Rows of data (the ladder's strengths are per row).
    scale : ndarray of shape (p,)
        Standardising scale of the columns (for the eigenvalue checks).
    known : dict, optional
        Degenerate columns found before fitting (:func:`degenerate_columns`);
        the fit at ``ridge=0`` is then skipped, since it cannot be proper.

    Returns
    -------
    RidgeFit

    Raises
    ------
    SingularCovarianceError
        If every prior of the ladder gives a singular fit.
    """
    known = dict(known or {})
    p = len(scale)
    if ridge > 0:
        return RidgeFit(fit(ridge, 0.0), float(ridge), {})
    if not known:
        try:
            result = fit(0.0, 0.0)
        except SingularCovarianceError:
            pass
        else:
            weak = small_eigen_columns(_dispersion(result), scale, SINGULAR_EIGENVALUE)
            if not len(weak):
                return RidgeFit(result, 0.0, {})
    # The first strength whose fit is proper.  A rung that is proper but
    # does not converge is kept (the estimator warns): a stronger prior would
    # converge sooner but moves the estimate away from the limit (on mice's
    # boys data with one-hot dummies, from 1e-6 to 0.7 on the standardised
    # scale).
    error = None
    for fraction in LADDER:
        strength = fraction * max(n_rows, 1)
        try:
            result = fit(strength, NOISE / fraction)
        except SingularCovarianceError as caught:
            error = caught
            continue
        return RidgeFit(result, strength, _problems(result, scale, known, n_rows, p))
    raise error


def _dispersion(result):
    """The fitted matrix whose eigenvalues show collinearity: ``dispersion``
    where a model has one (the t's scale matrix, defined for any df), else
    the covariance."""
    return getattr(result, "dispersion", result.covariance)


def _problems(result, scale, known, n_rows, p):
    """The reasons the MLE did not exist, with the columns involved."""
    problems = dict(known)
    named = set().union(*(set(columns) for columns in known.values()))
    weak = small_eigen_columns(_dispersion(result), scale, COLLINEAR_EIGENVALUE)
    collinear = np.array([j for j in weak if j not in named], dtype=int)
    if p >= n_rows:
        problems["wide"] = np.arange(p)
    elif len(collinear):
        problems["collinear"] = collinear
    elif not problems:  # singular for a reason no check could name
        problems["collinear"] = weak if len(weak) else np.arange(p)
    return problems


_REASONS = {
    "single": "a single observed value in {}",
    "constant": "no variance in {}",
    "collinear": "exactly (or all but exactly) collinear {}",
    "wide": "more columns than rows ({} columns)",
}


def describe_problems(problems, names, ridge):
    """One sentence for the warning: why the MLE does not exist, and what
    was done.  ``names`` are the column names, by position."""

    def listed(columns):
        labels = [f"'{names[j]}'" for j in columns[:8]]
        more = f" and {len(columns) - 8} more" if len(columns) > 8 else ""
        kind = "columns" if len(columns) > 1 else "column"
        return f"{kind} {', '.join(labels)}{more}"

    reasons = [
        _REASONS[reason].format(len(columns) if reason == "wide" else listed(columns))
        for reason, columns in problems.items()
    ]
    return (
        f"the maximum likelihood estimate does not exist ({'; '.join(reasons)}), "
        f"so the fit used the smallest ridge prior that makes it proper, "
        f"ridge={ridge:.3g} pseudo-observations (ridge_); its imputations are "
        "the limit of the prior as it vanishes. Set ridge > 0 to choose the "
        "prior yourself, or drop or combine the columns named."
    )
