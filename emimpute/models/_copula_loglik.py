"""The log-likelihood of each row's latent observation under the copula
(statistical kernel): what ``score_samples`` reports.

A row says of its latent vector z ~ N(0, R): some values exactly (observed
continuous cells), some intervals (observed levels, censored values),
nothing of the rest.  Its likelihood is the normal density of the exact
values times the probability of the intervals given them.  The margins'
own density terms (the Jacobian of each continuous column's map, which
does not depend on R) are left out: the score compares fits of R, as in
``GridSearchCV`` over ``ridge``.

The probability has no closed form with several interval cells; it is
estimated by the GHK simulator (Geweke 1991; Hajivassiliou & McFadden
1998; Keane 1994) on the Cholesky factor L of R, column by column in the
latent order: with z = L e and mu_k = sum_{j<k} L_kj e_j,

- an exact value fixes e_k = (z_k - mu_k) / L_kk and multiplies the
  weight by phi(e_k) / L_kk;
- an interval (a, b] draws e_k from N(0, 1) restricted to
  ((a - mu_k) / L_kk, (b - mu_k) / L_kk] and multiplies the weight by
  that interval's probability;
- a missing value is integrated out exactly: each row's factor is that of
  R with the row's missing columns replaced by the identity's.

The average weight over ``GHK_DRAWS`` replicates is an unbiased estimate
of the row's likelihood; with no interval cell every replicate has the
same weight and the estimate is exact (the normal model's log density).

References
----------
Geweke, J. (1991). Efficient simulation from the multivariate normal and
Student-t distributions subject to linear constraints.  Hajivassiliou, V.
A. & McFadden, D. L. (1998). The method of simulated scores for the
estimation of LDV models. *Econometrica* 66, 863-896.
"""

import numpy as np
from scipy import special

from emimpute.gaussian._interval import interval_moments, sample_interval
from emimpute.models._copula_nominal import NominalBlock

# Replicates of the GHK simulator per row; rows per block of the
# computation (replicates x rows x latent columns floats at a time).
GHK_DRAWS = 200
ROWS_PER_BLOCK = 500
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def latent_loglik(lower, upper, R, *, rng, n_draws=GHK_DRAWS, blocks=()):
    """Each row's log-likelihood of its latent observation (module
    docstring).

    Parameters
    ----------
    lower, upper : ndarray of shape (n, q)
        Latent bounds: equal for an exact value, infinite for a missing one.
    R : ndarray of shape (q, q)
    rng : numpy.random.Generator
    n_draws : int
    blocks : sequence of NominalBlock
        Nominal columns: an observed category c is the event z_k - z_c <=
        mu_c - mu_k for the column's other latent values k, a box for the
        differences, whose covariance each row's factor uses; z_c itself
        is then integrated out.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> R = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> lower = np.array([[0.3, -np.inf]]); upper = np.array([[0.3, 0.0]])
    >>> ll = latent_loglik(lower, upper, R, rng=np.random.default_rng(0))
    >>> # phi(0.3) * P(z2 <= 0 | z1 = 0.3) = phi(0.3) Phi(-0.15 / sqrt(0.75))
    >>> from scipy import stats
    >>> exact = stats.norm.logpdf(0.3) + stats.norm.logcdf(-0.15 / np.sqrt(0.75))
    >>> bool(abs(ll[0] - exact) < 1e-12)
    True
    """
    out = np.empty(len(lower))
    for start in range(0, len(lower), ROWS_PER_BLOCK):
        rows = slice(start, start + ROWS_PER_BLOCK)
        cut = [NominalBlock(b.dims, b.mu, b.level[rows]) for b in blocks]
        out[rows] = _block(lower[rows], upper[rows], R, rng, n_draws, cut)
    return out


def _block(lower, upper, R, rng, n_draws, blocks):
    """GHK on a block of rows, (rows, draws) replicates at once.  Each row
    has its own factor: R with its missing columns replaced by those of
    the identity, so that they touch nothing else (integrated out
    exactly) and need no draws."""
    n, q = lower.shape
    R_rows = np.broadcast_to(R, (n, q, q)).copy()
    if len(blocks):
        lower, upper = lower.copy(), upper.copy()
        for block in blocks:
            _as_differences(R_rows, lower, upper, block)
    exact = lower == upper
    missing = np.isneginf(lower) & np.isposinf(upper)
    interval = ~exact & ~missing
    seen = ~missing
    R_rows = np.where(seen[:, :, None] & seen[:, None, :], R_rows, 0.0)
    diagonal = R_rows[:, np.arange(q), np.arange(q)]  # (differences: 2)
    R_rows[:, np.arange(q), np.arange(q)] = np.where(missing, 1.0, diagonal)
    L = np.linalg.cholesky(R_rows)  # (n, q, q)
    draws = n_draws if interval.any() else 1  # no interval: exact, one is enough
    e = np.zeros((n, draws, q))
    log_weight = np.zeros((n, draws))
    for k in range(q):
        mu = np.einsum("irj,ij->ir", e[:, :, :k], L[:, k, :k])
        d = L[:, k, k][:, None]
        cells = exact[:, k]
        e_k = (lower[cells, k][:, None] - mu[cells]) / d[cells]
        e[cells, :, k] = e_k
        log_weight[cells] += -0.5 * e_k * e_k - _LOG_SQRT_2PI - np.log(d[cells])
        cells = interval[:, k]
        if not cells.any():
            continue
        a = (lower[cells, k][:, None] - mu[cells]) / d[cells]
        b = (upper[cells, k][:, None] - mu[cells]) / d[cells]
        log_p, _, _ = interval_moments(a.ravel(), b.ravel())
        log_weight[cells] += log_p.reshape(a.shape)
        e[cells, :, k] = sample_interval(a, b, rng)
    return special.logsumexp(log_weight, axis=1) - np.log(draws)


def _as_differences(R_rows, lower, upper, block):
    """In place, for the rows where ``block``'s category c is observed: its
    other latent values z_k become z_k - z_c (rows and columns of each
    row's covariance, T R T'), bounded above by mu_c - mu_k, and z_c
    becomes missing (integrated out)."""
    rows = np.flatnonzero(block.observed)
    if not len(rows):
        return
    dims, level = block.dims, block.level[rows]
    winner = dims[level]
    others = dims[None, :] != winner[:, None]  # (m, K): the k != c
    every = np.arange(len(rows))
    part = R_rows[rows]
    part[:, dims, :] -= others[:, :, None] * part[every, winner][:, None, :]
    part[:, :, dims] -= others[:, None, :] * part[every, :, winner][:, :, None]
    R_rows[rows] = part
    lower[np.ix_(rows, dims)] = -np.inf
    upper[np.ix_(rows, dims)] = block.mu[level][:, None] - block.mu[None, :]
    upper[rows, winner] = np.inf
