"""What a fitted Gaussian copula says about the missing cells of rows
(statistical kernel): joint draws of their latent values, and quantiles.

A row's latent vector is N(0, R) restricted to its cells' intervals
(:func:`emimpute.models._copula_margins.latent_bounds`).  Two kinds of rows:

- every observed cell exact (continuous columns only, or the row's
  ordinal cells all missing): the missing cells are normal given the
  exact ones, drawn from the normal model's conditional
  (:func:`emimpute.gaussian._conditional.conditional_moments`), and their
  quantiles are the normal's, exactly;
- some observed cell only an interval (an ordinal level): a Gibbs chain
  of the row's free cells (:func:`emimpute.models._copula.gibbs_sweep`);
  a draw is its state after ``burn_in`` sweeps, quantiles those of the
  mixture of its full conditionals over ``n_sweeps`` sweeps.

Only rows with a cell to impute are computed (a missing cell, or one
the caller names, such as a value censored at a detection limit: an
interval cell whose value is wanted).
"""

import numpy as np
from scipy import special

from emimpute.gaussian._conditional import conditional_moments
from emimpute.models._copula import (
    _initial_state,
    free_cells,
    gibbs_sweep,
    single_blas_thread,
)
from emimpute.models._copula_nominal import (
    NominalBlock,
    categories_of,
    nominal_sweep,
)

# Sweeps discarded, and sweeps averaged (at least), by the chain of rows
# with interval cells.  A single row's Rao-Blackwellised mean of 50 sweeps
# was off by 0.05 posterior standard deviations (measured with
# posterior_latent_means), so 30 sweeps by about 0.065 (the 1/sqrt(sweeps)
# scaling): far below the imputation error itself, of the order of that
# standard deviation.
GIBBS_BURN_IN = 20
GIBBS_SWEEPS = 30
# The imputations of transform average more sweeps where rows are few
# (``imputation_sweeps``): a level is chosen where the averaged CDF
# crosses 1/2, and Monte Carlo error there moves decisions.  On simulated
# mixed data at n = 2,000 (p = 30) the ordinal scaled MAE went from 0.798
# with 30 sweeps to 0.792 with 200 (gcimpute 0.789), at a cost in time
# that only large n makes noticeable.
SWEEP_BUDGET = 400_000
MAX_SWEEPS = 200


def imputation_sweeps(n_rows):
    """Sweeps for the imputations of ``n_rows`` chained rows: as many as
    ``SWEEP_BUDGET`` row-sweeps allow, between ``GIBBS_SWEEPS`` and
    ``MAX_SWEEPS`` (200 up to 2,000 rows, 30 from about 13,000).

    Examples
    --------
    >>> imputation_sweeps(1000), imputation_sweeps(10_000), imputation_sweeps(10**6)
    (200, 40, 30)
    """
    return int(np.clip(SWEEP_BUDGET // max(n_rows, 1), GIBBS_SWEEPS, MAX_SWEEPS))


def latent_draw(lower, upper, R, *, rng, burn_in=GIBBS_BURN_IN, impute=None, blocks=()):
    """A joint draw of every row's cells to impute given its other cells,
    and the drawn category of every nominal column.  (Imputations by
    posterior means and levels: :mod:`._copula_impute`.)

    Parameters
    ----------
    lower, upper : ndarray of shape (n, q)
        Each cell's latent interval (equal: exact; infinite: missing).
    R : ndarray of shape (q, q)
        The latent correlation.
    rng : numpy.random.Generator
    burn_in : int
        Sweeps of the Gibbs chain, for rows with interval or nominal cells.
    impute : ndarray of bool of shape (n, q), optional
        The cells wanted (default: the missing ones); censored cells, say,
        are interval cells to impute.
    blocks : sequence of NominalBlock, optional
        The nominal columns (:mod:`._copula_nominal`); rows with one go
        through the chain.

    Returns
    -------
    Z : ndarray of shape (n, q)
        Exact cells hold their value; the rows with a cell to impute hold
        a draw of their free cells.
    categories : list of ndarray of shape (n,)
        For each block, the drawn category's index where it is missing,
        else -1.

    Examples
    --------
    >>> lower = np.array([[1.0, -np.inf]] + [[0.0, -np.inf]] * 4000)
    >>> upper = np.array([[1.0, np.inf]] + [[np.inf, np.inf]] * 4000)
    >>> R = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> Z, _ = latent_draw(lower, upper, R, rng=np.random.default_rng(0))
    >>> float(Z[0, 0])  # an exact cell keeps its value
    1.0
    >>> # E[z2 | z1 > 0] = 0.5 sqrt(2 / pi); the draws' mean is off by
    >>> # about 0.97 / sqrt(4000) = 0.015.
    >>> bool(abs(Z[1:, 1].mean() - 0.5 * np.sqrt(2 / np.pi)) < 0.05)
    True
    """
    Z = np.where(np.isfinite(lower), lower, upper)
    Z[~np.isfinite(Z)] = 0.0
    missing = np.isneginf(lower) & np.isposinf(upper)
    interval = (lower < upper) & ~missing
    wanted = (missing if impute is None else impute).any(axis=1)
    needs_chain = interval.any(axis=1) | bool(len(blocks))
    closed = wanted & ~needs_chain
    if closed.any():
        Z[closed] = _normal_rows(lower[closed], missing[closed], R, rng)
    categories = [np.full(len(Z), -1) for _ in blocks]
    chained = np.flatnonzero(wanted & needs_chain)
    if not len(chained):
        return Z, categories
    part = [NominalBlock(b.dims, b.mu, b.level[chained]) for b in blocks]
    with single_blas_thread():
        Z[chained] = _chain_draw(lower[chained], upper[chained], R, rng, burn_in, part)
    for category, block in zip(categories, part, strict=True):
        drawn = categories_of(Z[chained], block)
        category[chained] = np.where(block.observed, -1, drawn)
    return Z, categories


def _normal_rows(exact, missing, R, rng):
    """Rows whose observed cells are exact: a joint draw of their missing
    cells from the normal model's conditional distribution."""
    X = np.where(missing, np.nan, exact)
    state = np.random.RandomState(rng.integers(2**31 - 1))
    return conditional_moments(X, np.zeros(len(R)), R, rng=state).completed


def _chain_draw(lower, upper, R, rng, burn_in, blocks):
    """One joint draw of the free cells: the Gibbs state after
    ``burn_in`` sweeps (at least one) from independent starting draws."""
    Z = _initial_state(lower, upper, rng)
    cells = free_cells(lower, upper)
    precision = np.linalg.inv(R)
    for _ in range(max(burn_in, 1)):
        gibbs_sweep(Z, cells, precision, rng)
        nominal_sweep(Z, blocks, precision, rng)
    return Z


# The bisection of latent_quantiles halves the bracket this many times
# (from about 16 latent standard deviations wide to below 1e-13).
BISECTIONS = 48


def latent_quantiles(
    lower, upper, R, probabilities, *, rng, impute, n_sweeps=GIBBS_SWEEPS,
    burn_in=GIBBS_BURN_IN, blocks=(),
):  # fmt: skip
    """Quantiles of the latent posterior of every cell in ``impute``.

    A cell's posterior given its row is a mixture, over the other free
    cells' values, of its full conditional: N(m, 1 / Lambda_jj) restricted
    to its interval.  Rows whose observed cells are all exact have a
    normal posterior with the normal model's conditional mean and variance,
    whose quantiles are exact; for the others the mixture is that of the
    ``n_sweeps`` states of a Gibbs chain (as for the means, the
    Rao-Blackwellised estimate), and its quantiles are found by bisection.

    Parameters
    ----------
    lower, upper : ndarray of shape (n, q)
    R : ndarray of shape (q, q)
    probabilities : sequence of float in (0, 1)
    rng : numpy.random.Generator
    impute : ndarray of bool of shape (n, q)
        The cells wanted (missing or censored); nominal columns' cells are
        not (a category has no quantiles).
    n_sweeps, burn_in : int
    blocks : sequence of NominalBlock, optional

    Returns
    -------
    ndarray of shape (len(probabilities), n, q)
        NaN outside ``impute``.

    Examples
    --------
    >>> lower = np.array([[1.0, -np.inf]])
    >>> upper = np.array([[1.0, np.inf]])
    >>> R = np.array([[1.0, 0.6], [0.6, 1.0]])
    >>> q = latent_quantiles(lower, upper, R, [0.5, 0.975],
    ...                      rng=np.random.default_rng(0), impute=upper > lower)
    >>> np.round(q[:, 0, 1], 3)  # N(0.6, 0.64): 0.6 and 0.6 + 1.96 * 0.8
    array([0.6  , 2.168])
    """
    probabilities = np.asarray(probabilities, float)
    out = np.full((len(probabilities), *lower.shape), np.nan)
    missing = np.isneginf(lower) & np.isposinf(upper)
    interval = (lower < upper) & ~missing
    wanted = impute.any(axis=1)
    needs_chain = interval.any(axis=1) | bool(len(blocks))
    closed = np.flatnonzero(wanted & ~needs_chain)
    if len(closed):
        X = np.where(missing[closed], np.nan, lower[closed])
        moments = conditional_moments(X, np.zeros(len(R)), R, want_variance=True)
        spread = np.sqrt(moments.variance)
        for k, p in enumerate(probabilities):
            out[k, closed] = moments.completed + spread * special.ndtri(p)
    chained = np.flatnonzero(wanted & needs_chain)
    if len(chained):
        part = [NominalBlock(b.dims, b.mu, b.level[chained]) for b in blocks]
        with single_blas_thread():
            found = _chain_quantiles(
                lower[chained], upper[chained], R, probabilities, impute[chained],
                rng, n_sweeps, burn_in, part,
            )  # fmt: skip
        out[:, chained] = found
    out[:, ~impute] = np.nan
    return out


def _chain_quantiles(lower, upper, R, probabilities, impute, rng, n_sweeps,
                     burn_in, blocks):  # fmt: skip
    """Quantiles of the mixture over the chain's sweeps of each wanted
    cell's full conditional (a normal restricted to the cell's interval)."""
    Z = _initial_state(lower, upper, rng)
    cells = free_cells(lower, upper)
    precision = np.linalg.inv(R)
    s = np.broadcast_to(1.0 / np.sqrt(np.diag(precision)), Z.shape)[impute]
    a, b = lower[impute], upper[impute]
    centres = np.empty((n_sweeps, int(impute.sum())))
    for sweep in range(burn_in + n_sweeps):
        gibbs_sweep(Z, cells, precision, rng)
        nominal_sweep(Z, blocks, precision, rng)
        if sweep >= burn_in:
            m = Z - (Z @ precision) / np.diag(precision)
            centres[sweep - burn_in] = m[impute]
    mass_a, mass_b = special.ndtr((a - centres) / s), special.ndtr((b - centres) / s)

    def cdf(t):  # the mixture's CDF at t (one value per cell)
        inside = special.ndtr((t - centres) / s) - mass_a
        return np.mean(np.clip(inside / (mass_b - mass_a), 0.0, 1.0), axis=0)

    out = np.full((len(probabilities), *lower.shape), np.nan)
    for k, p in enumerate(probabilities):
        lo = np.maximum(centres.min(axis=0) - 8 * s, a)
        hi = np.minimum(centres.max(axis=0) + 8 * s, b)
        for _ in range(BISECTIONS):
            mid = 0.5 * (lo + hi)
            below = cdf(mid) < p
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        out[k][impute] = 0.5 * (lo + hi)
    return out
