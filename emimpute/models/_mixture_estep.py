"""The mixture's E-step through the compiled kernel (statistical kernel).

:func:`emimpute.models._mixture.mixture_statistics` runs the E-step as K
of the normal model's NumPy E-steps.  Here the incomplete rows go once
through ``mixture_rows`` of ``emimpute/gaussian/_fast_estep.c``, which for
each group of rows works out every component's conditional moments and
observed-part log density, the responsibilities, and the weighted sums,
without leaving the CPU's caches; the rows with nothing missing go through
BLAS.  Both give the same numbers to rounding (tested), and the NumPy one
remains the path when the extension was not built
(``EMIMPUTE_KERNEL=numpy``).

The observed-part log density of row i under component c is

    log N(x_o; mu_c,o, S_c,oo) = -(p_o log 2 pi + log det S_c
                                   + log det K_c,mm + d_o' inv(S_c,oo) d_o) / 2

with K_c = inv(S_c): det S = det S_oo det S_mm.o and S_mm.o = inv(K_mm)
(the Schur complement; e.g. Little & Rubin 2002, sec. 6.2), so nothing of
size p_o is factorised per row.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from emimpute.gaussian import _compiled
from emimpute.gaussian._conditional import LOG_2PI, precision_and_logdet
from emimpute.models._normal import _incomplete_layout


@dataclass(frozen=True)
class MixtureLayout:
    """The rows of a data set as the E-step reads them: ``complete`` (the
    rows with nothing missing, at their positions ``complete_rows``) and
    the others copied in blocks of rows with equal numbers of missing
    cells (``blocks``: pairs of rows and missing columns, at positions
    ``incomplete_rows``)."""

    complete: np.ndarray
    complete_rows: np.ndarray
    blocks: list
    incomplete_rows: np.ndarray
    n_rows: int

    @classmethod
    def of(cls, X):
        """The layout of X (NaN at missing cells; rows with every cell
        missing are left out of both parts)."""
        n_missing = np.isnan(X).sum(axis=1)
        complete_rows = np.flatnonzero(n_missing == 0)
        data, chunks, bounds = _incomplete_layout(X, 0.0, None)
        blocks = [
            (data[start:stop], chunk.missing)
            for chunk, start, stop in zip(chunks, bounds[:-1], bounds[1:], strict=True)
        ]
        incomplete = np.concatenate([c.rows for c in chunks] or [np.zeros(0, int)])
        return cls(X[complete_rows], complete_rows, blocks, incomplete, len(X))


def _components(params):
    """Precisions (K, p, p) and log pi_c - log det S_c / 2 (K,).

    Raises numpy.linalg.LinAlgError if a covariance is not positive definite.
    """
    factors = [precision_and_logdet(S) for S in params.covariances]
    precisions = np.array([precision for precision, _ in factors])
    logdets = np.array([logdet for _, logdet in factors])
    with np.errstate(divide="ignore"):  # an emptied component: weight 0
        return precisions, np.log(params.weights) - 0.5 * logdets


def _complete_part(X, params, precisions, log_norm):
    """log tau (n, K) and the rows' log-likelihoods (n,) of complete rows."""
    quad = np.empty((len(X), len(log_norm)))
    for c, (mean, precision) in enumerate(zip(params.means, precisions, strict=True)):
        deviation = X - mean
        quad[:, c] = np.einsum("ij,ij->i", deviation @ precision, deviation)
    joint = log_norm - 0.5 * (X.shape[1] * LOG_2PI + quad)
    row_loglik = logsumexp(joint, axis=1)
    return joint - row_loglik[:, None], row_loglik


def compiled_statistics(layout, params):
    """The sums of :class:`emimpute.models._mixture.MixtureStatistics`
    (resp_sum, row_sum, cross, loglik) of the rows of ``layout`` at
    ``params``, or None when a covariance or some K_c,mm is not positive
    definite."""
    try:
        precisions, log_norm = _components(params)
        resp_sum, row_sum, cross, loglik = _compiled.mixture_blocks(
            layout.blocks, params.means, precisions, log_norm
        )
    except np.linalg.LinAlgError:
        return None
    X = layout.complete
    if len(X):
        log_tau, row_loglik = _complete_part(X, params, precisions, log_norm)
        tau = np.exp(log_tau)
        resp_sum = resp_sum + tau.sum(axis=0)
        row_sum = row_sum + tau.T @ X
        cross = cross + np.array([(X * w[:, None]).T @ X for w in tau.T])
        loglik += float(row_loglik.sum())
    return resp_sum, row_sum, cross, loglik


def compiled_conditional(X, params):
    """Responsibilities (n, K), the rows completed by the mixture's
    conditional means (n, p) and the rows' log-likelihoods (n,), through
    the compiled kernel; rows with nothing observed get the weights, the
    mixture's mean and log-likelihood 0.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a covariance is not positive definite.
    """
    n, p = X.shape
    layout = MixtureLayout.of(X)
    precisions, log_norm = _components(params)
    n_comp = len(params.weights)
    logliks = [np.empty(len(rows)) for rows, _ in layout.blocks]
    resp = [np.empty((len(rows), n_comp)) for rows, _ in layout.blocks]
    _compiled.mixture_blocks(
        layout.blocks, params.means, precisions, log_norm, logliks=logliks,
        responsibilities=resp, write_means=True,
    )  # fmt: skip
    tau = np.tile(params.weights, (n, 1))
    completed = np.tile(params.weights @ params.means, (n, 1))
    row_loglik = np.zeros(n)
    if len(layout.blocks):
        rows = layout.incomplete_rows
        tau[rows] = np.concatenate(resp)
        completed[rows] = np.concatenate([block for block, _ in layout.blocks])
        row_loglik[rows] = np.concatenate(logliks)
    if len(layout.complete):
        rows = layout.complete_rows
        log_tau, row_loglik[rows] = _complete_part(
            layout.complete, params, precisions, log_norm
        )
        tau[rows] = np.exp(log_tau)
        completed[rows] = layout.complete
    return tau, completed, row_loglik
