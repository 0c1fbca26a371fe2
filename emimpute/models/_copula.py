"""The Gaussian copula's latent correlation by stochastic approximation EM
(statistical kernel; issue 15, first part: no estimator uses it yet).

Each cell of the data says where its latent value z_ij lies
(:mod:`._copula_margins`): exactly (an observed continuous value, lower ==
upper), in an interval (an observed ordinal level), or anywhere (a missing
cell).  The rows' latent vectors are N(0, R), R a correlation matrix.

Why a stochastic E-step.  With several interval cells in a row, the E-step
needs the moments of a multivariate truncated normal, which have no closed
form.  The deterministic approximations used elsewhere (gcimpute's, or a
mean-field fixed point) attenuate the correlations by more than their
sampling error: on ordinal data from a known copula they landed 0.08 and
0.13 from the exact maximum likelihood estimate (the MLE itself 0.03-0.04
from the truth at n = 2,000; ``benchmarks/copula_estep_study.py``).
Stochastic approximation EM (SAEM; Delyon, Lavielle & Moulines 1999, with
an MCMC step as in Kuhn & Lavielle 2004) replaces the E-step by one sweep
of a Gibbs sampler of the latent cells and averages the sufficient
statistic S = Z'Z / n with steps gamma_k (1 during ``burn_in``, then
(k - burn_in)^-0.7, :mod:`emimpute.engine._saem`); it converges to a
maximum of the observed likelihood: in the same study within 0.004 of
the exact MLE after 600 iterations, and within 1.4 standard errors of it
over long chains (``--bias``).

The Gibbs sweep (:func:`gibbs_sweep`) updates one column at a time for all
rows at once: z_j given the rest is N(m_j, 1 / Lambda_jj), m_j =
-sum_{k != j} Lambda_jk z_k / Lambda_jj with Lambda = R^-1, restricted to
the cell's interval (:func:`emimpute.gaussian._interval.sample_interval`).
A sweep costs O(n p^2).

M-step: the correlation matrix that maximises the expected complete-data
log-likelihood, -log|R| - tr(R^-1 S) (:func:`correlation_m_step`), not the
rescaled S of Zhao & Udell (2020), which is that maximum only when S has a
unit diagonal.

References
----------
Delyon, B., Lavielle, M. & Moulines, E. (1999). Convergence of a
stochastic approximation version of the EM algorithm. *Ann. Statist.* 27,
94-128.
Gelfand, A. E. & Smith, A. F. M. (1990). Sampling-based approaches to
calculating marginal densities. *JASA* 85, 398-409.
Kuhn, E. & Lavielle, M. (2004). Coupling a stochastic approximation version
of EM with an MCMC procedure. *ESAIM: P&S* 8, 115-131.
Zhao, Y. & Udell, M. (2020). Missing value imputation for mixed data via
Gaussian copula. *KDD*.
"""

import functools
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize
from threadpoolctl import ThreadpoolController

from emimpute.engine._model import SingularCovarianceError
from emimpute.engine._saem import run_saem
from emimpute.gaussian._interval import interval_moments, sample_interval
from emimpute.models._copula_nominal import (
    NominalBlock,
    categories_of,
    centre_blocks,
    nominal_sweep,
)
from emimpute.models._copula_threads import row_blocks, run_blocks

# Iterations at step 1 before the steps of the stochastic approximation
# decay (:mod:`emimpute.engine._saem`).  From the independent start, R is
# within the Monte Carlo error of a 300-iteration run after 20 (max
# deviation 0.007 at n = 100,000, p = 30, against 0.006 after 30 and 0.024
# after 10; at n = 2,000 the same for 10, 20 and 30).
BURN_IN = 20
# The stopping rule never asks for a Monte Carlo error below this fraction
# of the sampling standard error 1 / sqrt(n) of a correlation near 0 (the
# two add in variance: a quarter adds 6% to the estimate's).
SAMPLING_FRACTION = 0.25
SINGULAR_MESSAGE = "the latent correlation became singular (collinear columns)"
# A latent correlation matrix with an eigenvalue below this is taken as
# singular: no genuine estimate comes within 5e-8 of a perfect correlation,
# while SAEM heading for a singular maximum (duplicated columns) stalls
# near 1e-10, short of the normal models' threshold (SINGULAR_EIGENVALUE
# of emimpute.engine._regularise, 1e-10), as its L-BFGS M-step cannot
# approach the boundary further.
SINGULAR_EIGENVALUE = 1e-7
# The M-step's L-BFGS stops when the largest gradient entry is below this
# (its objective is of order p; far below the Monte Carlo error of S).
M_STEP_GTOL = 1e-9


@dataclass(frozen=True)
class CopulaSAEMResult:
    """The estimated latent correlation and the last state of the chain."""

    correlation: np.ndarray  # (p, p)
    latent: np.ndarray  # (n, p) the last Gibbs draw of every cell
    n_iter: int
    converged: bool = True
    # The Monte Carlo standard error of the averaged statistic.
    monte_carlo_error: float = np.nan
    # What saem_correlation's ``tally`` made, fed by the averaged sweeps.
    tallies: list = ()

    # What the automatic ridge and the estimator base read of a fit
    # (emimpute.engine._regularise): SAEM tracks no likelihood.
    @property
    def covariance(self):
        return self.correlation

    loglik = np.nan
    loglik_path = np.zeros(0)


def correlation_of(S):
    """D^-1/2 S D^-1/2: the correlation matrix of a covariance S.

    Examples
    --------
    >>> correlation_of(np.array([[4.0, 1.0], [1.0, 1.0]]))
    array([[1. , 0.5],
           [0.5, 1. ]])
    """
    sd = np.sqrt(np.diag(S))
    R = S / np.outer(sd, sd)
    np.fill_diagonal(R, 1.0)
    return R


def correlation_m_step(S, start=None, groups=()):
    """The correlation matrix R maximising -log|R| - tr(R^-1 S): the M-step
    of a normal with zero mean and unit variances, given the average
    cross-product S.

    Rescaling S to a correlation (:func:`correlation_of`) is not this
    maximum unless S's diagonal is 1; on ordinal data SAEM with the
    rescaling settled 0.0017 (3.7 standard errors of the chains) from the
    exact MLE, and with this M-step within its Monte Carlo error
    (``benchmarks/copula_estep_study.py --bias``).  R is
    parametrised as L L' with L lower triangular, each row b_i / |b_i| and
    b_ii = 1 (positive definite for any value of the free entries), and
    maximised by L-BFGS from ``start`` (default: the rescaled S) with the
    analytic gradient: dF/dR = R^-1 - R^-1 S R^-1 for F = log|R| +
    tr(R^-1 S), dF/dL = 2 (dF/dR) L, then back through the rows.

    ``groups`` (arrays of increasing positions): sets of variables whose
    correlations with each other the model holds at 0 (the latent columns
    of a nominal column, :mod:`._copula_nominal`).  The parametrisation
    keeps them at 0 exactly: a group member's row is b_i with its
    components along the group's earlier rows removed (Gram-Schmidt; their
    supports end before i, so b_ii = 1 survives), then normalised, so the
    maximum is over the constrained set with no penalty or projection.
    ``start`` must satisfy the constraints.

    Examples
    --------
    >>> S = np.array([[1.2, 0.5], [0.5, 0.9]])
    >>> R = correlation_m_step(S)
    >>> bool(np.isclose(R[0, 1], correlation_m_step(S, start=np.eye(2))[0, 1]))
    True
    """
    p = len(S)
    start = correlation_of(S) if start is None else start
    below = np.tril_indices(p, -1)
    L0 = np.linalg.cholesky(start)
    B0 = L0 / np.diag(L0)[:, None]  # rows scaled to b_ii = 1
    groups = [np.asarray(group) for group in groups]
    with single_blas_thread():
        fit = optimize.minimize(
            _m_step_objective, B0[below], args=(S, below, groups), jac=True,
            method="L-BFGS-B",
            options={"gtol": M_STEP_GTOL, "ftol": 0.0, "maxiter": 500},
        )  # fmt: skip
    R = _correlation_from_free(fit.x, p, below, groups)[0]
    for group in groups:  # zero to rounding already
        R[np.ix_(group, group)] = np.eye(len(group))
    return R


@functools.cache
def _blas_threads():
    """The process's thread pools (made once: finding them takes ms)."""
    return ThreadpoolController()


def single_blas_thread():
    """A context with one BLAS thread.  The copula's kernels make many
    small BLAS calls (a matrix-vector product per column per sweep, the
    M-step's vectors of p (p - 1) / 2 entries), where a second thread
    gains little and, on a busy machine, waits: with another process on
    the same two cores, a fit on 6,366 rows took 15-19 s with two threads
    and 2.4-2.9 s with one, and one M-step at p = 10 48 ms against 1.6 ms.
    """
    return _blas_threads().limit(limits=1, user_api="blas")


def _correlation_from_free(free, p, below, groups=()):
    """R = L L', L's rows from B's (see :func:`correlation_m_step`)."""
    B = np.eye(p)
    B[below] = free
    norms = np.linalg.norm(B, axis=1)
    L = B / norms[:, None]
    for group in groups:
        for t in range(1, len(group)):
            i, earlier = group[t], L[group[:t]]
            u = B[i] - earlier.T @ (earlier @ B[i])
            norms[i] = np.linalg.norm(u)
            L[i] = u / norms[i]
    R = L @ L.T
    np.fill_diagonal(R, 1.0)
    return R, L, B, norms


def _m_step_objective(free, S, below, groups=()):
    """F = log|R| + tr(R^-1 S) and its gradient in the free entries of B."""
    R, L, B, norms = _correlation_from_free(free, len(S), below, groups)
    chol = np.linalg.cholesky(R)
    R_inv = linalg.cho_solve((chol, True), np.eye(len(S)))
    value = 2.0 * np.log(np.diag(chol)).sum() + np.sum(R_inv * S)
    G = R_inv - R_inv @ S @ R_inv
    dL = 2.0 * G @ L
    # Through L_i = u_i / |u_i|: dF/du_i = (dF/dL_i - (dF/dL_i . L_i) L_i) / |u_i|;
    # u_i = b_i for a row outside a group.
    dU = (dL - np.sum(dL * L, axis=1)[:, None] * L) / norms[:, None]
    dB = dU.copy()
    for group in groups:
        # u_i = b_i - sum_j (L_j . b_i) L_j over the group's earlier rows j:
        # dF/db_i = P_i dF/du_i, and each L_j gets -(L_j . b_i) dF/du_i -
        # (dF/du_i . L_j) b_i, passed on to u_j: later rows first.
        for t in range(len(group) - 1, 0, -1):
            i, earlier = group[t], group[:t]
            h = dU[i]
            along_h, along_b = L[earlier] @ h, L[earlier] @ B[i]
            dB[i] = h - L[earlier].T @ along_h
            extra = -(along_b[:, None] * h + along_h[:, None] * B[i])
            for k, j in enumerate(earlier):
                g = extra[k]
                dU[j] += (g - (g @ L[j]) * L[j]) / norms[j]
            dB[earlier] = dU[earlier]
    return value, dB[below]


@dataclass(frozen=True)
class _ColumnCells:
    """One column's free cells, fixed for a data set: the rows of the
    missing ones (drawn from a plain normal) and of the bounded ones with
    their bounds."""

    column: int
    missing: np.ndarray
    bounded: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def free_cells(lower, upper):
    """The :class:`_ColumnCells` of every column with a free cell (made once
    per data set: a Gibbs sweep would otherwise find them again each time).
    """
    free = lower < upper
    whole_line = np.isneginf(lower) & np.isposinf(upper)
    columns = []
    for j in np.flatnonzero(free.any(axis=0)):  # columns, not rows
        bounded = np.flatnonzero(free[:, j] & ~whole_line[:, j])
        columns.append(_ColumnCells(
            j, np.flatnonzero(whole_line[:, j]), bounded,
            lower[bounded, j], upper[bounded, j],
        ))  # fmt: skip
    return columns


def gibbs_sweep(Z, cells, precision, rng):
    """One Gibbs sweep of the latent cells in place.

    Parameters
    ----------
    Z : ndarray of shape (n, p)
        The current latent values (exact cells hold their value); column
        major (Fortran order) is fastest, each column's cells contiguous.
    cells : list of _ColumnCells
        The free cells, from :func:`free_cells`.
    precision : ndarray of shape (p, p)
        R^-1.
    rng : numpy.random.Generator

    Returns
    -------
    Z : ndarray of shape (n, p)
        The same array, each free cell drawn from its full conditional.
    """
    for column in cells:
        j = column.column
        s = 1.0 / np.sqrt(precision[j, j])
        # m_j = z_j - (Z Lambda)_j / Lambda_jj, over every row at once (one
        # matrix-vector product), then taken at the free rows.
        m = Z[:, j] - (Z @ precision[:, j]) * (s * s)
        missing = column.missing
        Z[missing, j] = m[missing] + s * rng.standard_normal(len(missing))
        rows = column.bounded
        m_rows = m[rows]
        draw = sample_interval(
            (column.lower - m_rows) / s, (column.upper - m_rows) / s, rng
        )
        Z[rows, j] = m_rows + s * draw
    return Z


def saem_correlation(
    lower, upper, *, n_iter=600, burn_in=BURN_IN, rng, start=None, ridge=0.0,
    tol=0.0, callback=None, blocks=(), tally=None,
):  # fmt: skip
    """The latent correlation of the Gaussian copula by SAEM
    (:func:`emimpute.engine._saem.run_saem` with a Gibbs sweep as its
    chain step and :func:`correlation_m_step` as its M-step).

    Parameters
    ----------
    lower, upper : ndarray of shape (n, p)
        Each cell's latent interval: equal bounds for an exact value, -inf
        and inf for a missing cell.
    n_iter, burn_in : int
        Most iterations (one Gibbs sweep each), and how many of them take
        the whole new statistic (step 1) before the steps decay.
    rng : numpy.random.Generator
    start : CopulaSAEMResult, optional
        Go on from its correlation and latent state.
    ridge : float, default=0
        Prior strength in pseudo-observations: the M-step sees
        (n S + ridge I) / (n + ridge), the identity's weight that of
        ``ridge`` rows with uncorrelated latent values.
    tol : float, default=0
        Stop once the Monte Carlo standard error of every entry of the
        averaged statistic is below ``tol``, or below a quarter of the
        sampling standard error of a correlation near 0, 1 / sqrt(n)
        (``SAMPLING_FRACTION``), whichever is larger: Monte Carlo error
        far below the sampling error buys nothing (0: run ``n_iter``
        iterations).
    callback : callable, optional
        ``callback(iteration, nan, error)`` after each iteration.
    blocks : sequence of NominalBlock, optional
        The nominal columns (:mod:`._copula_nominal`): their observed
        rows' latent cells are exact in ``lower`` and ``upper`` (valid
        starting values) and move by their own sweep; their within-column
        correlations are held at 0, and their correlations with the other
        latent columns centred (:func:`centre_blocks`), the version the
        model identifies.
    tally : callable, optional
        ``tally(part)`` for each row block (:mod:`._copula_threads`):
        None, or (local rows, an object with ``add(Z, precision)``) that
        every sweep after the burn-in feeds with those rows' state, on the
        block's thread (``fit_transform``'s imputation sums,
        :func:`~._copula_impute.fit_tallies`).

    Returns
    -------
    CopulaSAEMResult
        Its ``tallies``: the objects ``tally`` made, after the last sweep.

    Raises
    ------
    SingularCovarianceError
        If the correlation estimate becomes singular (exactly collinear
        latent columns and no ridge).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=2000)
    >>> lower, upper = z.copy(), z.copy()
    >>> lower[:, 1] = np.where(z[:, 1] > 0, 0.0, -np.inf)  # a binary column
    >>> upper[:, 1] = np.where(z[:, 1] > 0, np.inf, 0.0)
    >>> result = saem_correlation(lower, upper, rng=rng)
    >>> bool(abs(result.correlation[0, 1] - 0.5) < 0.05)
    True
    """
    n, p = lower.shape
    parts = row_blocks(n, blocks, rng)
    if start is None:
        Z, R = _initial_blocks(lower, upper, parts), np.eye(p)
    else:
        Z, R = np.array(start.latent, order="F"), start.correlation  # a copy
    cells = [free_cells(lower[part.rows], upper[part.rows]) for part in parts]
    tallies = [None if tally is None else tally(part) for part in parts]

    cross_products = []  # each block's Z'Z after the last sweep
    sweeps = [0]

    def simulate(Z, R):
        precision = _precision(R)
        counted = sweeps[0] >= burn_in  # an averaged iteration's sweep
        sweeps[0] += 1

        def sweep(i):  # one block of rows, in place (Z[rows] is a view)
            part = parts[i]
            block = Z[part.rows]
            gibbs_sweep(block, cells[i], precision, part.rng)
            nominal_sweep(block, part.blocks, precision, part.rng)
            if counted and tallies[i] is not None:
                local, counter = tallies[i]
                counter.add(block[local], precision)
            return block.T @ block  # on the block's thread too

        cross_products[:] = run_blocks(sweep, range(len(parts)))
        return Z

    def statistic_of(Z):  # of the state simulate just made
        return sum(cross_products) / n

    m_step = copula_m_step(n, ridge, [block.dims for block in blocks])
    with single_blas_thread():
        run = run_copula_saem(
            simulate, statistic_of, m_step, R, Z, n=n, n_iter=n_iter,
            tol=tol, burn_in=burn_in, callback=callback,
        )  # fmt: skip
    return CopulaSAEMResult(
        run.params, run.state, run.n_iter, run.converged, run.monte_carlo_error,
        [counter for _, counter in filter(None, tallies)],
    )  # fmt: skip


def copula_m_step(n, ridge, groups):
    """The SAEM M-step ``m_step(S, R)`` for n rows: the correlation
    maximising the likelihood given the averaged S, with ``ridge``
    pseudo-rows of the identity, nominal ``groups`` (their latent columns)
    held at the identity and their correlations with the rest centred
    (:func:`~._copula_nominal.centre_blocks`, the identified part)."""
    groups = [np.asarray(group) for group in groups]

    def m_step(S, R):
        p = len(S)
        R = _checked_m_step((n * S + ridge * np.eye(p)) / (n + ridge), R, groups)
        return _centre_groups(R, groups) if groups else R

    return m_step


def _centre_groups(R, groups):
    return centre_blocks(R, [NominalBlock(group, None, None) for group in groups])


def run_copula_saem(simulate, statistic_of, m_step, R, state, **options):
    """:func:`run_saem` with the copula's stopping-rule floor: the
    estimated Monte Carlo error is never asked below ``SAMPLING_FRACTION``
    / sqrt(n) (``options``: n, n_iter, tol, burn_in, callback)."""
    n, tol = options["n"], options["tol"]
    return run_saem(
        simulate, statistic_of, m_step, R, state, max_iter=options["n_iter"],
        tol=tol and max(tol, SAMPLING_FRACTION / np.sqrt(n)),
        burn_in=options["burn_in"], callback=options["callback"],
    )  # fmt: skip


def _precision(R):
    try:
        return np.linalg.inv(R)
    except np.linalg.LinAlgError:
        raise SingularCovarianceError(SINGULAR_MESSAGE) from None


def _checked_m_step(S, R, groups=()):
    """:func:`correlation_m_step`, or SingularCovarianceError when its
    maximum is (numerically) a singular matrix."""
    try:
        R = correlation_m_step(S, start=R, groups=groups)
    except np.linalg.LinAlgError:
        raise SingularCovarianceError(SINGULAR_MESSAGE) from None
    if np.linalg.eigvalsh(R)[0] < SINGULAR_EIGENVALUE:
        raise SingularCovarianceError(SINGULAR_MESSAGE)
    return R


def posterior_latent_means(
    lower, upper, R, *, n_sweeps=200, burn_in=20, rng, start=None, blocks=()
):
    """E[z_ij | the row's cells] under N(0, R) for every cell, by a Gibbs
    chain with Rao-Blackwellisation: after ``burn_in`` sweeps, the average
    over sweeps of each free cell's full-conditional mean (the mean of its
    truncated normal given the other cells' current draws), whose variance
    is below that of the plain average of the draws (Gelfand & Smith 1990).
    Exact cells keep their value.

    Parameters
    ----------
    lower, upper : ndarray of shape (n, p)
        Each cell's latent interval (equal bounds: exact; infinite: missing).
    R : ndarray of shape (p, p)
        The latent correlation.
    n_sweeps, burn_in : int
        Sweeps averaged, and sweeps discarded before them.
    rng : numpy.random.Generator
    start : ndarray of shape (n, p), optional
        A latent state to start the chain from (the fit's last draw).
    blocks : sequence of NominalBlock, optional
        Nominal columns (see :func:`saem_correlation`).

    Returns
    -------
    means : ndarray of shape (n, p)
    counts : list of ndarray of shape (n, K)
        For each block, how often each category was the argmax over the
        averaged sweeps (its posterior probabilities times ``n_sweeps``).
    """
    Z = (
        _initial_state(lower, upper, rng)
        if start is None
        else np.array(start, order="F")
    )
    precision = np.linalg.inv(R)
    free = lower < upper
    cells = free_cells(lower, upper)
    total = np.zeros(int(free.sum()))
    counts = [np.zeros((len(Z), len(block.dims))) for block in blocks]
    rows = np.arange(len(Z))
    for sweep in range(burn_in + n_sweeps):
        gibbs_sweep(Z, cells, precision, rng)
        nominal_sweep(Z, blocks, precision, rng)
        if sweep >= burn_in:
            total += _full_conditional_means(Z, lower, upper, precision, free)
            for count, block in zip(counts, blocks, strict=True):
                count[rows, categories_of(Z, block)] += 1
    means = lower.copy()
    means[free] = total / n_sweeps
    return means, counts


def _initial_state(lower, upper, rng):
    """Exact cells at their value, the others drawn from N(0, 1) restricted
    to their interval; column major (see :func:`gibbs_sweep`)."""
    Z = np.array(lower, order="F")
    missing = np.isneginf(lower) & np.isposinf(upper)
    bounded = (lower < upper) & ~missing
    Z[missing] = rng.standard_normal(np.count_nonzero(missing))
    Z[bounded] = sample_interval(lower[bounded], upper[bounded], rng)
    return Z


def _initial_blocks(lower, upper, parts):
    """:func:`_initial_state` of each row block (:mod:`._copula_threads`)
    with its own generator, the blocks on threads: on 100,000 x 30 cells
    0.1 s against 0.5 s for the whole array at once, whose temporaries
    leave the cache."""
    Z = np.empty(lower.shape, order="F")

    def fill(part):
        rows = part.rows
        Z[rows] = _initial_state(lower[rows], upper[rows], part.rng)

    run_blocks(fill, parts)
    return Z


def _full_conditional_means(Z, lower, upper, precision, free):
    """The mean of each free cell given the other cells' values in Z: its
    conditional normal N(m, 1 / Lambda_jj) restricted to its interval."""
    s = np.broadcast_to(1.0 / np.sqrt(np.diag(precision)), Z.shape)[free]
    m = (Z - (Z @ precision) / np.diag(precision))[free]  # -sum_k!=j L_jk z_k / L_jj
    _, mean, _ = interval_moments((lower[free] - m) / s, (upper[free] - m) / s)
    return m + s * mean
