"""Imputation, conditional moments and draws under a fitted selection
model (statistical kernel).

Given a :class:`~emimpute.models._selection.SelectionEMResult`, each row's
missing cells get their distribution given the observed cells *and* the
fact that its MNAR cells are missing: the reweighted distribution of the
E-step (:func:`emimpute.models._selection._posterior`: closed-form
truncated-normal moments under the probit link, the fit's nodes
otherwise).  :func:`impute_selection` returns the means or one draw per
row; :func:`selection_moments` also the variances and each row's
log-likelihood.
"""

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from emimpute.gaussian._conditional import (
    LOG_2PI,
    ConditionalMoments,
    conditional_moments,
    precision_and_logdet,
)
from emimpute.models._binary_glm import log_cdf
from emimpute.models._selection import (
    CANDIDATES,
    _conditional,
    _groups,
    _mnar_first,
    _posterior,
    _selection_index,
)
from emimpute.models._selection_nodes import NodeRule


def impute_selection(X, result, *, rng=None):
    """Impute the missing cells of X given the fitted selection model.

    Each missing cell gets its conditional mean given the row's observed
    cells *and* its missingness (the reweighted distribution of the E-step,
    with the fit's nodes), or, with ``rng``, a draw from that distribution:
    the MNAR cells exactly under the probit link when a row has one of them
    (the latent u drawn from its truncated normal, then the cell from its
    regression on u), otherwise by sampling-importance-resampling
    (``CANDIDATES`` draws from their conditional normal, one kept with
    probability proportional to the chance of being missing), the other
    missing cells from their normal distribution given the drawn values.

    A covariate of the missingness models (a column never missing in the
    fit) may be missing in X.  The selection models describe only the
    missingness of the MNAR columns, so such cells are imputed under MAR:
    their conditional mean given the row's observed cells under the normal
    part (with ``rng``, a draw from that conditional normal).  The selection
    index of the row's MNAR cells then uses that value in place of the
    unknown covariate (a plug-in: its uncertainty is not carried into the
    index).  With means, the MNAR cells keep their conditional normal
    given the observed cells only; with draws, the drawn covariate is
    conditioned on, so that each completed row is one coherent draw.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        NaN at missing cells.
    result : SelectionEMResult
    rng : numpy.random.RandomState, optional

    Returns
    -------
    ndarray of shape (n, p), float64

    See Also
    --------
    selection_moments : The same with conditional variances and per-row
        log-likelihoods.

    Examples
    --------
    >>> import numpy as np
    >>> from emimpute.models._selection import fit_selection_em
    >>> rng = np.random.default_rng(0)
    >>> X = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=500)
    >>> X[X[:, 0] > 0.5, 0] = np.nan  # the high values hidden
    >>> result = fit_selection_em(X, [0], psi={0: 2.0}, gamma=False)
    >>> completed = impute_selection(X, result)
    >>> bool(completed[np.isnan(X[:, 0]), 0].mean() > np.nanmean(X[:, 0]))
    True
    """
    return selection_moments(X, result, rng=rng).completed


def selection_moments(X, result, *, rng=None, want_variance=False, want_loglik=False):
    """Completed values, conditional variances and row log-likelihoods of X
    under the fitted selection model.

    ``completed`` is :func:`impute_selection`'s.  ``variance`` holds the
    variance of each missing cell given the row's observed cells *and* the
    fact that its MNAR cells are missing: the diagonal of the reweighted
    posterior covariance of the E-step (the conditional normal one for a
    row without a missing MNAR cell), in data units, 0 at observed cells.
    ``loglik`` holds each row's observed-data log-likelihood of the
    selection model,

        log f(x_o) + log E[prod_{j missing} F(eta_j) | x_o]
                   + sum_{j observed} log(1 - F(eta_j)),

    eta_j = alpha_j + psi_j x_j + gamma_j' x_c, the expectation over the
    conditional normal of the missing MNAR cells (the E-step's term, with
    the fit's nodes), f the normal density in data units.  Summed over the
    rows of the fit it is the fit's ``loglik``.

    A covariate missing in X (never missing in the fit) is MAR, as in
    :func:`impute_selection`: its variance is the normal conditional one
    given the row's observed cells, and the selection index of the row's
    MNAR cells, missing or observed, uses its conditional mean (a plug-in;
    ``f(x_o)`` integrates it out exactly, the missingness of the covariate
    itself has no model and no term).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        NaN at missing cells.
    result : SelectionEMResult
    rng : numpy.random.RandomState, optional
        Draw the completed values (as :func:`impute_selection`); the
        variances and log-likelihoods are those of the distribution drawn
        from (computed without ``rng``).
    want_variance, want_loglik : bool, default=False

    Returns
    -------
    ConditionalMoments
        ``variance`` and ``loglik`` None unless asked for.

    Examples
    --------
    >>> import numpy as np
    >>> from emimpute.models._selection import fit_selection_em
    >>> rng = np.random.default_rng(0)
    >>> X = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=500)
    >>> X[X[:, 0] > 0.5, 0] = np.nan
    >>> result = fit_selection_em(X, [0], psi={0: 2.0}, gamma=False)
    >>> moments = selection_moments(X, result, want_variance=True, want_loglik=True)
    >>> bool(np.isclose(moments.loglik.sum(), result.loglik))
    True
    >>> bool((moments.variance[np.isnan(X)] < result.covariance[0, 0]).all())
    True
    """
    if rng is not None and (want_variance or want_loglik):
        moments = selection_moments(
            X, result, want_variance=want_variance, want_loglik=want_loglik
        )
        moments.completed = selection_moments(X, result, rng=rng).completed
        return moments
    params = result.standardised
    Z = (np.asarray(X, dtype=np.float64) - result.center) / result.scale
    mask = np.isnan(Z)
    covariate_gaps = _impute_covariates_under_mar(Z, mask, result, rng, want_variance)
    # With draws, the drawn covariates (written into Z) are conditioned on.
    base = params.coef.intercept + covariate_gaps.filled @ params.coef.gamma.T
    out, variance, loglik = _moments_standardised(
        Z, base, params, result, rng, want_variance, want_loglik
    )
    # Covariate cells keep their MAR value and variance (the regression on
    # the MNAR cells' reweighted values would move them; the selection
    # models say nothing about why a covariate is missing).
    rows, columns = covariate_gaps.cells
    out[rows, columns] = covariate_gaps.filled[rows, covariate_gaps.slots]
    # Observed cells are copied, not round-tripped through the scaling.
    completed = np.array(X, dtype=np.float64)
    completed[mask] = (result.center + result.scale * out)[mask]
    if want_variance:
        variance[rows, columns] = covariate_gaps.variance[rows, covariate_gaps.slots]
        variance *= result.scale**2  # zero at observed cells stays zero
    if want_loglik:
        # log f(x_o) = log f(z_o) - sum over the observed cells of log scale_j.
        loglik -= (~mask) @ np.log(result.scale)
    return ConditionalMoments(completed, variance, loglik)


def _moments_standardised(Z, base, params, result, rng, want_variance, want_loglik):
    """Z (standardised) with its missing cells imputed, group by group; the
    conditional variances (standardised, or None) and row log-likelihoods
    (of z, or None)."""
    precision, logdet_cov = precision_and_logdet(params.covariance)
    nodes = NodeRule(result.node_seed)
    mask = np.isnan(Z)
    out = Z.copy()
    variance = np.zeros(Z.shape) if want_variance else None
    loglik = None
    if want_loglik:
        loglik = _observed_mnar_terms(Z, mask, base, params.coef, result)
        loglik += _complete_row_logliks(Z, mask, params.mean, precision, logdet_cov)
    for group in _groups(mask, result.mnar):
        rows = group.chunk.rows
        cond = _conditional(Z, group, params.mean, precision, logdet_cov)
        values, cov = cond.c, cond.C
        if group.mnar_slots.shape[1] and (rng is None or want_variance or want_loglik):
            posterior = _posterior(
                group, cond, base[rows], params.coef, result.link, nodes
            )
            values, cov = posterior.mean, posterior.cov
            if want_loglik:
                loglik[rows] += posterior.log_prob
        if rng is not None:
            values = _draw(group, cond.c, cond.C, base[rows], params.coef,
                           result.link, rng)  # fmt: skip
        if want_variance:  # (variance[rows] is a copy: fill it, then store)
            block = np.zeros((len(rows), Z.shape[1]))
            diagonal = np.diagonal(cov, axis1=1, axis2=2)
            np.put_along_axis(block, cond.cols, diagonal, axis=1)
            variance[rows] = block
        if want_loglik:
            loglik[rows] += cond.loglik
        np.put_along_axis(cond.block, cond.cols, values, axis=1)
        out[rows] = cond.block
    return out, variance, loglik


def _observed_mnar_terms(Z, mask, base, coef, result):
    """Per row, the sum over its observed MNAR cells of log(1 - F(index))
    (the probability of being observed)."""
    seen = ~mask[:, result.mnar]
    values = np.where(seen, Z[:, result.mnar], 0.0)
    index = base + coef.psi * values
    log_observed = log_cdf(-index, result.link)
    return np.where(seen, log_observed, 0.0).sum(axis=1)


def _complete_row_logliks(Z, mask, mean, precision, logdet_cov):
    """Per row, the normal log-density of a row with nothing missing (0 for
    the others, whose observed part the groups add)."""
    complete = ~mask.any(axis=1)
    d = Z[complete] - mean
    quad = np.einsum("ij,ij->i", d, d @ precision)
    loglik = np.zeros(len(Z))
    loglik[complete] = -0.5 * (Z.shape[1] * LOG_2PI + logdet_cov + quad)
    return loglik


@dataclass(frozen=True)
class _CovariateGaps:
    """Covariate values for the selection index, missing ones imputed."""

    filled: np.ndarray  # (n, n_covariates), standardised scale
    cells: tuple  # (rows, columns) of the imputed covariate cells in X
    slots: np.ndarray  # position of each of those columns among covariates
    variance: np.ndarray | None  # (n, n_covariates) their MAR variances


def _impute_covariates_under_mar(Z, mask, result, rng, want_variance=False):
    """Fill missing covariate cells from the normal part given each row's
    observed cells (mean, or a draw with ``rng``); with ``rng`` the draws
    are also written into ``Z``.  With ``want_variance``, their conditional
    variances (standardised)."""
    covariates = result.covariates
    filled = Z[:, covariates].copy()
    variance = np.zeros(filled.shape) if want_variance else None
    gaps = mask[:, covariates]
    rows = np.flatnonzero(gaps.any(axis=1))
    if len(rows):
        params = result.standardised
        moments = conditional_moments(
            Z[rows], params.mean, params.covariance, rng=rng,
            want_variance=want_variance,
        )  # fmt: skip
        completed = moments.completed
        filled[rows] = np.where(gaps[rows], completed[:, covariates], filled[rows])
        if want_variance:
            variance[rows] = moments.variance[:, covariates]
    gap_rows, slots = np.nonzero(gaps)
    if rng is not None:
        Z[gap_rows, covariates[slots]] = filled[gap_rows, slots]
    return _CovariateGaps(filled, (gap_rows, covariates[slots]), slots, variance)


def _draw(group, c, C, base, coef, link, rng):
    """One draw per row of a group's missing cells given "missing" (see
    :func:`impute_selection`)."""
    k_J = group.mnar_slots.shape[1]
    order, c_p, C_p = _mnar_first(group, c, C)
    if k_J == 0:
        y = np.zeros((len(c), 0))
        residual_mean, residual_cov = c_p, C_p
    else:
        if link == "probit" and k_J == 1:
            y = _draw_probit_cell(group, c_p, C_p, base, coef, rng)
        else:
            y = _resample_mnar_cells(group, c_p, C_p, base, coef, link, rng)
        C_JJ = C_p[:, :k_J, :k_J]
        regression = np.linalg.solve(C_JJ, C_p[:, :k_J, k_J:])  # (n, k_J, k - k_J)
        residual_mean = c_p[:, k_J:] + np.einsum(
            "na,nak->nk", y - c_p[:, :k_J], regression
        )
        residual_cov = C_p[:, k_J:, k_J:] - np.einsum(
            "nak,nal->nkl", C_p[:, :k_J, k_J:], regression
        )
    rest = residual_mean
    if residual_mean.shape[1]:
        L_rest = np.linalg.cholesky(residual_cov)
        rest = residual_mean + np.einsum(
            "nab,nb->na", L_rest, rng.standard_normal(residual_mean.shape)
        )
    values_p = np.concatenate([y, rest], axis=1)
    return np.take_along_axis(values_p, np.argsort(order, axis=1), axis=1)


def _draw_probit_cell(group, c_p, C_p, base, coef, rng):
    """An exact draw (n, 1) of the one MNAR cell y of each row given
    "missing" under the probit link: u = index + psi y + e is N(m, V) given
    the observed cells, m = index + psi c, V = 1 + psi^2 C; draw u from it
    truncated to u > 0, then y from its normal regression on u."""
    psi = coef.psi[group.models[:, 0]]
    index = base[np.arange(len(psi)), group.models[:, 0]]
    c, C = c_p[:, 0], C_p[:, 0, 0]
    m, V = index + psi * c, 1.0 + psi**2 * C
    u = m + np.sqrt(V) * stats.truncnorm.rvs(
        -m / np.sqrt(V), np.inf, size=len(m), random_state=rng
    )
    mean = c + psi * C * (u - m) / V
    sd = np.sqrt(C - (psi * C) ** 2 / V)
    return (mean + sd * rng.standard_normal(len(m)))[:, None]


def _resample_mnar_cells(group, c_p, C_p, base, coef, link, rng):
    """Sampling-importance-resampling of the MNAR cells (n, k_J): candidates
    from their conditional normal, one kept per row with probability
    proportional to the chance of being missing."""
    n, k_J = len(c_p), group.mnar_slots.shape[1]
    L = np.linalg.cholesky(C_p[:, :k_J, :k_J])
    z = rng.standard_normal((n, CANDIDATES, k_J))
    candidates = c_p[:, None, :k_J] + np.einsum("nab,nqb->nqa", L, z)
    index = _selection_index(base, coef, group.models, candidates)
    log_weight = log_cdf(index, link).sum(axis=2)
    weight = np.exp(log_weight - special.logsumexp(log_weight, axis=1)[:, None])
    picks = (weight.cumsum(axis=1) < rng.random_sample((n, 1))).sum(axis=1)
    return candidates[np.arange(n), np.minimum(picks, CANDIDATES - 1)]
