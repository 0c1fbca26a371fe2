"""EM for the multivariate normal with incomplete data (statistical kernel).

Maximum likelihood (or, with ``ridge > 0``, maximum a posteriori) estimates of
the mean and covariance of N(mu, S) from a data matrix with NaN at missing
cells, for any pattern of missingness.  No scikit-learn import here.

References
----------
Little, R. J. A. & Rubin, D. B. (2002). *Statistical Analysis with Missing
Data*, 2nd ed., Wiley, sec. 11.2.
Schafer, J. L. (1997). *Analysis of Incomplete Multivariate Data*, ch. 5.
Varadhan, R. & Roland, C. (2008). Simple and globally convergent methods for
accelerating the convergence of any EM algorithm. *Scand. J. Stat.* 35, 335-353.
"""

from dataclasses import dataclass

import numpy as np

from emimpute.engine._driver import run_em, shifted_callback
from emimpute.engine._model import EMModel, Statistics
from emimpute.engine._squarem import from_log_cholesky, log_cholesky
from emimpute.gaussian import _compiled
from emimpute.gaussian._conditional import (
    LOG_2PI,
    chunk_moments,
    chunk_rows_for,
    plan_chunks,
    precision_and_logdet,
)
from emimpute.utils._scale import ridge_scatter, standardising_scale


@dataclass(frozen=True)
class EMResult:
    """Outcome of :func:`fit_normal_em`.

    ``loglik`` is the observed-data log-likelihood at (mean, covariance),
    constant included; ``loglik_path`` holds it after every iteration.
    ``n_em_steps`` counts evaluations of the EM map (E-step plus M-step), the
    unit of cost that is comparable with and without acceleration.
    """

    mean: np.ndarray
    covariance: np.ndarray
    loglik: float
    loglik_path: np.ndarray
    n_iter: int
    n_em_steps: int
    converged: bool


@dataclass(frozen=True)
class NormalParams:
    """Mean and covariance of N(mu, S)."""

    mean: np.ndarray
    covariance: np.ndarray


@dataclass(frozen=True)
class NormalStatistics(Statistics):
    """E-step sums about a fixed center: ``row_sum`` (T1, the sum of the
    completed rows), ``cross`` (T2, their cross-products plus the
    conditional covariances) and ``loglik``; they add over row blocks."""

    row_sum: np.ndarray
    cross: np.ndarray


@dataclass(frozen=True)
class _Problem:
    """What one fit needs at every E-step, computed once."""

    data: np.ndarray  # incomplete rows minus center, in chunk order (scratch)
    chunks: list  # chunks[i] describes data[bounds[i] : bounds[i + 1]]
    bounds: np.ndarray  # (n_chunks + 1,)
    n_rows: int  # rows that carry information (not all-missing)
    complete_sum: np.ndarray  # T1 and T2 of the complete rows about center
    complete_cross: np.ndarray
    n_complete: int
    center: np.ndarray  # observed column means and standard deviations:
    scale: np.ndarray  # the standardised scale of the prior and the tolerances
    ridge: float
    origin: np.ndarray | float = 0.0  # the problem's data are (X - origin) / unit
    unit: np.ndarray | float = 1.0


# ---------------------------------------------------------------------------
# E-step and M-step


def e_step(problem, mean, covariance):
    """Expected sufficient statistics and observed-data log-likelihood.

    Returns :class:`NormalStatistics`: T1 (``row_sum``) the sum of completed
    rows and T2 (``cross``) the sum of completed cross-products plus the
    conditional covariances (Little & Rubin 2002, eq. 11.4-11.5), both taken
    about ``problem.center``
    (so that large column means cause no cancellation in the M-step), or
    ``None`` if ``covariance`` is not positive definite.  Uses the compiled
    kernel when it was built (:mod:`emimpute.gaussian._compiled`), the NumPy one
    otherwise; both give the same numbers.
    """
    try:
        precision, logdet_cov = precision_and_logdet(covariance)
    except np.linalg.LinAlgError:
        return None
    shift = mean - problem.center
    try:
        incomplete = _incomplete_sums(
            problem.data,
            problem.chunks,
            problem.bounds,
            shift,
            precision,
            logdet_cov,
            n_threads=None,
        )
    except np.linalg.LinAlgError:
        return None
    return add_complete_rows(
        incomplete,
        (problem.n_complete, problem.complete_sum, problem.complete_cross),
        shift,
        precision,
        logdet_cov,
    )


def add_complete_rows(incomplete, complete, shift, precision, logdet_cov):
    """The E-step over all rows from its parts.

    ``incomplete`` is the :class:`NormalStatistics` of the incomplete rows (see
    :func:`block_statistics`), ``complete`` is ``(n_complete, T1, T2)`` of
    the rows with nothing missing (:func:`complete_row_sums`), which enter
    through their fixed sums: the sum of d' K d is tr(K * sum d d').
    """
    n_complete, complete_sum, complete_cross = complete
    loglik = _normal_loglik(
        n_complete, shift, precision, logdet_cov, complete_sum, complete_cross
    )
    return incomplete + NormalStatistics(float(loglik), complete_sum, complete_cross)


def _scatter_about(shift, T1, T2, n):
    """sum (x - mu)(x - mu)' from sums T1, T2 about the center, mu - center = shift."""
    return T2 - np.outer(shift, T1) - np.outer(T1, shift) + n * np.outer(shift, shift)


def _normal_loglik(n, shift, precision, logdet_cov, T1, T2):
    """sum over n rows of log N(x; mu, S), or its expectation when T1, T2
    are expected sums about the center."""
    p = shift.shape[0]
    return -0.5 * (
        n * (p * LOG_2PI + logdet_cov)
        + np.sum(precision * _scatter_about(shift, T1, T2, n))
    )


def _incomplete_sums(data, chunks, bounds, shift, precision, logdet_cov, n_threads):
    """:class:`NormalStatistics` of the incomplete rows ``data`` laid out in
    ``chunks``.

    Raises ``numpy.linalg.LinAlgError`` if some K_mm is not positive definite.
    """
    if _compiled.available():
        return _incomplete_sums_compiled(
            data, chunks, bounds, shift, precision, logdet_cov, n_threads
        )
    p = shift.shape[0]
    T1, T2, cov_sum, loglik = np.zeros(p), np.zeros((p, p)), np.zeros(p * p), 0.0
    for chunk, start, stop in zip(chunks, bounds[:-1], bounds[1:], strict=True):
        moments = chunk_moments(data[start:stop], chunk, shift, precision, logdet_cov)
        T1 += moments.completed.sum(axis=0)
        T2 += moments.completed.T @ moments.completed
        cov_sum += moments.cov_sum
        loglik += moments.loglik.sum()
    return NormalStatistics(float(loglik), T1, T2 + cov_sum.reshape(p, p))


def _incomplete_sums_compiled(
    data, chunks, bounds, shift, precision, logdet_cov, n_threads
):
    """:func:`_incomplete_sums` through the compiled kernel.

    The kernel returns no per-row log-likelihood; the total comes from the
    statistics instead.  For each row, log f(x_o) = E[log f(x)] + H, the
    expectation and the entropy H taken under the conditional distribution
    N(c, C) of the missing cells (Dempster, Laird & Rubin 1977, sec. 1;
    Q(theta | theta) - H(theta | theta) in Little & Rubin 2002, sec. 8.4).
    Summed over rows, E[log f(x)] = -(n/2) (p log 2 pi + log det S) -
    tr(K T) / 2, with T the expected scatter about mu (T2 about mu), and
    H = k/2 (1 + log 2 pi) + log det C / 2, where log det C = -log det K_mm.
    """
    blocks = [
        (data[start:stop], chunk.missing)
        for chunk, start, stop in zip(chunks, bounds[:-1], bounds[1:], strict=True)
    ]
    row_sum, cov_sum, logdet_mm, cross = _compiled.complete_blocks(
        blocks, shift, precision, want_cross=True, n_threads=n_threads
    )
    T2 = cross + cov_sum
    n_missing = sum(chunk.missing.size for chunk in chunks)
    loglik = (
        _normal_loglik(len(data), shift, precision, logdet_cov, row_sum, T2)
        - 0.5 * logdet_mm
        + 0.5 * n_missing * (1.0 + LOG_2PI)
    )
    return NormalStatistics(float(loglik), row_sum, T2)


def block_statistics(X, center, mean, precision, logdet_cov, n_threads=None):
    """E-step sums over the incomplete rows of one block of rows.

    The piece of :func:`e_step` that a distributed fit computes where the
    block lives: rows with nothing missing are left out (their sums are
    fixed, see :func:`complete_row_sums`) and so are rows with everything
    missing (they carry no information).  All three results add up over
    blocks.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        NaN at missing cells; not modified.
    center, mean : ndarrays of shape (p,)
        The origin of the sums and the current mean.
    precision, logdet_cov : ndarray of shape (p, p) and float
        inv(S) and log det S at the current covariance.
    n_threads : int, optional
        Threads of the compiled kernel.

    Returns
    -------
    NormalStatistics
        As :func:`e_step`, over the incomplete rows of X only.

    Raises
    ------
    numpy.linalg.LinAlgError
        If some K_mm block is not positive definite.
    """
    data, chunks, bounds = _incomplete_layout(X, center, None)
    return _incomplete_sums(
        data, chunks, bounds, mean - center, precision, logdet_cov, n_threads
    )


def m_step(T1, T2, n, prior_scatter, ridge, center=0.0):
    """Mean and covariance from expected sufficient statistics about ``center``.

    With ``ridge = 0`` this is the MLE (divisor n).  Otherwise it is the
    posterior mode under a flat prior on the mean and an inverse-Wishart prior
    worth ``ridge`` pseudo-observations shrinking the correlations towards 0 on
    the standardised scale: S = (n S_ml + ridge * diag(scale**2)) / (n + ridge).
    (A prior in the spirit of Amelia's ``empri``, Honaker, King & Blackwell
    2011, but not the same: Amelia 1.8.1's M-step, in its C++ ``emcore``, is
    (n S_ml + e diag(s**2)) / (n + e + p + 2) with s of divisor n_obs - 1 and
    e truncated to an integer; tests/test_reference_amelia.py.)
    """
    shift = T1 / n
    covariance = T2 / n - np.outer(shift, shift)
    if ridge > 0:
        covariance = (n * covariance + ridge * prior_scatter) / (n + ridge)
    return center + shift, 0.5 * (covariance + covariance.T)


def log_prior(covariance, prior_scatter, ridge):
    """Log density (up to a constant) of the inverse-Wishart ridge prior.

    Its mode, combined with the likelihood, is the :func:`m_step` update; EM
    with the prior increases ``loglik + log_prior`` at every step.
    """
    if ridge == 0:
        return 0.0
    precision, logdet = precision_and_logdet(covariance)
    return -0.5 * ridge * (logdet + np.sum(precision * prior_scatter))


# ---------------------------------------------------------------------------
# Parameters on the standardised scale, for SQUAREM and the tolerance


def _to_vector(center, scale, mean, covariance):
    """(mu, S) as an unconstrained vector: standardised mean and log-Cholesky."""
    scaled = covariance / np.outer(scale, scale)
    return np.concatenate([(mean - center) / scale, log_cholesky(scaled)])


def _from_vector(center, scale, vector):
    p = center.shape[0]
    covariance = from_log_cholesky(vector[p:], p) * np.outer(scale, scale)
    return vector[:p] * scale + center, covariance


def _relative_change(scale, old, new):
    """Largest change of mean and covariance, on the standardised scale."""
    (mean0, cov0), (mean1, cov1) = old, new
    d_mean = np.max(np.abs(mean1 - mean0) / scale)
    d_cov = np.max(np.abs(cov1 - cov0) / np.outer(scale, scale))
    return max(d_mean, d_cov)


# ---------------------------------------------------------------------------
# The driver


def column_sums(block):
    """Count, sum, minimum and maximum of the observed cells of each column
    of a block of rows: the first pass of :func:`observed_column_moments`,
    whose results add up (or take fmin / fmax) over blocks."""
    block = np.asarray(block, dtype=np.float64)
    observed = ~np.isnan(block)
    return (
        observed.sum(axis=0).astype(np.float64),
        np.where(observed, block, 0.0).sum(axis=0),
        np.fmin.reduce(block, axis=0, initial=np.inf),
        np.fmax.reduce(block, axis=0, initial=-np.inf),
    )


def column_squares(block, mean):
    """Sum of squared deviations from ``mean`` of the observed cells of each
    column: the second pass of :func:`observed_column_moments` (about the
    mean, so no cancellation, unlike a sum of squares)."""
    deviation = np.asarray(block, dtype=np.float64) - mean
    # Squares of values beyond 1e154 overflow to inf; the caller refuses such
    # columns by their range (emimpute.utils._validation.check_scale), quietly.
    with np.errstate(over="ignore"):
        return np.where(np.isnan(deviation), 0.0, deviation**2).sum(axis=0)


def column_moments_from_sums(count, total, squares):
    """Mean and standard deviation (divisor count) from the two passes."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count, np.sqrt(squares / count)


def observed_column_moments(X, chunk_size=None):
    """Count, mean, standard deviation (divisor count) and range of the
    observed cells of each column, in one chunked pass (no copy of X).

    Returns
    -------
    count, mean, std, minimum, maximum : ndarrays of shape (p,)
        NaN mean, std and range for a column with no observed cell.
    """
    n, p = X.shape
    step = chunk_size or chunk_rows_for(p)
    count, total = np.zeros(p), np.zeros(p)
    minimum, maximum = np.full(p, np.inf), np.full(p, -np.inf)
    for start in range(0, n, step):
        sums = column_sums(X[start : start + step])
        count += sums[0]
        total += sums[1]
        minimum = np.fmin(minimum, sums[2])
        maximum = np.fmax(maximum, sums[3])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    squares = np.zeros(p)
    for start in range(0, n, step):
        squares += column_squares(X[start : start + step], mean)
    mean, std = column_moments_from_sums(count, total, squares)
    empty = count == 0
    minimum[empty] = maximum[empty] = np.nan
    return count, mean, std, minimum, maximum


def complete_row_sums(X, center, chunk_size=None, unit=1.0, rows=None):
    """Rows with nothing missing: their number and the sums T1 and T2 of the
    rows and their cross-products about ``center``.  These are the same at
    every E-step, so they are computed once.  Also returns the number of
    rows that carry information (not entirely missing).

    Returns
    -------
    n_complete : int
    T1 : ndarray of shape (p,)
    T2 : ndarray of shape (p, p)
    n_informative : int
    """
    X = np.asarray(X, dtype=np.float64)
    p = X.shape[1]
    n_missing = np.isnan(X).sum(axis=1)
    if rows is not None:  # these rows only
        n_missing = n_missing[rows]
    complete = np.flatnonzero(n_missing == 0)
    if rows is not None:
        complete = rows[complete]
    step = chunk_size or chunk_rows_for(p)
    T1, T2 = np.zeros(p), np.zeros((p, p))
    for start in range(0, len(complete), step):
        block = (X[complete[start : start + step]] - center) / unit
        T1 += block.sum(axis=0)
        T2 += block.T @ block
    return len(complete), T1, T2, int(np.count_nonzero(n_missing < p))


def _incomplete_layout(X, center, chunk_size, unit=1.0, rows=None):
    """The rows of X (of ``rows``, if given) with some but not all cells
    missing, centred, copied in chunk order (so each E-step reads contiguous
    blocks), and their plan.  Rows with the same number of missing cells
    keep their order (that of ``rows``)."""
    mask = np.isnan(X)
    n_missing = mask.sum(axis=1)
    partial = np.flatnonzero((n_missing > 0) & (n_missing < X.shape[1]))
    if rows is not None:
        partial = rows[(n_missing[rows] > 0) & (n_missing[rows] < X.shape[1])]
    chunks = plan_chunks(
        mask, partial, chunk_size, find_shared_patterns=not _compiled.available()
    )
    del mask  # before the copy below: it is the largest allocation
    bounds = np.cumsum([0] + [len(chunk.rows) for chunk in chunks])
    data = np.empty((len(partial), X.shape[1]))
    for chunk, start, stop in zip(chunks, bounds[:-1], bounds[1:], strict=True):
        data[start:stop] = (X[chunk.rows] - center) / unit
    return data, chunks, bounds


def prepare_problem(
    X, ridge=0.0, chunk_size=None, column_moments=None, standardise=False, rows=None
):
    """Pre-compute what every E-step needs.  ``X`` has NaN at missing cells.

    Complete rows enter only through their sums, computed here once.  The
    incomplete rows are copied once, centred, in float64 and in chunk order,
    so each E-step reads contiguous blocks instead of gathering rows.
    ``column_moments`` may pass in the observed column means and standard
    deviations if the caller already has them (:func:`observed_column_moments`).
    With ``standardise=True`` the rows are also divided by the standardising
    scale as they are copied (no extra copy), so that the problem is that of
    the standardised data, whose centre is 0 and scale 1.  ``rows`` (indices)
    restricts the problem to those rows of X, without a copy of them; rows
    with the same number of missing cells keep their order in the data.
    """
    if column_moments is None:
        _, center, scale, _, _ = observed_column_moments(X, chunk_size)
    else:
        center, scale = column_moments
    scale = standardising_scale(scale)
    unit = scale if standardise else 1.0
    n_complete, T1, T2, n_rows = complete_row_sums(X, center, chunk_size, unit, rows)
    data, chunks, bounds = _incomplete_layout(X, center, chunk_size, unit, rows)
    origin = 0.0
    if standardise:
        origin = center
        center, scale = np.zeros_like(center), np.ones_like(scale)
    return _Problem(
        origin=origin,
        unit=unit,
        data=data,
        chunks=chunks,
        bounds=bounds,
        n_rows=n_rows,
        complete_sum=T1,
        complete_cross=T2,
        n_complete=n_complete,
        center=center,
        scale=scale,
        ridge=float(ridge),
    )


def observed_counts(X, chunk_size=None):
    """Observed cells per column, in chunks (no mask of the whole of X)."""
    step = chunk_size or chunk_rows_for(X.shape[1])
    return sum(
        np.count_nonzero(~np.isnan(X[start : start + step]), axis=0)
        for start in range(0, X.shape[0], step)
    )


def fit_normal_em(
    X,
    *,
    ridge=0.0,
    max_iter=500,
    tol=1e-6,
    accelerate=True,
    callback=None,
    chunk_size=None,
    column_moments=None,
):
    """Fit N(mu, S) to incomplete data by EM, optionally SQUAREM-accelerated.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data with NaN at missing cells.  Every column needs an observed value.
    ridge : float, default=0.0
        Prior strength in pseudo-observations (see :func:`m_step`); 0 gives
        the maximum likelihood estimate.
    max_iter : int, default=500
        Maximum number of iterations (a SQUAREM cycle counts as one).
    tol : float, default=1e-6
        Stop when the relative change of the objective (log-likelihood plus
        log prior) and the largest change of the parameters on the
        standardised scale are both below ``tol``.
    accelerate : bool, default=True
        Use SQUAREM (Varadhan & Roland 2008, scheme S3) with a fallback to the
        plain EM step whenever an extrapolation does not increase the
        objective, so the objective never decreases between iterations.
    callback : callable, optional
        Called as ``callback(iteration, loglik, change)`` after each iteration.
    chunk_size : int, optional
        Rows per chunk in the E-step (memory versus speed).
    column_moments : tuple of ndarrays (mean, std), optional
        The observed column means and standard deviations, if already
        computed (saves one pass over X).

    Returns
    -------
    EMResult

    Raises
    ------
    SingularCovarianceError
        If the covariance becomes singular (collinear or constant columns,
        p > n): a ridge prior fixes this.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 5.0], [np.nan, 3.0], [4.0, 4.0]])
    >>> result = fit_normal_em(X)
    >>> bool(result.converged)
    True
    >>> result.mean.round(3)
    array([2.423, 3.423])
    """
    # EM runs on the standardised data, so that columns in very different
    # units (1e-100 next to 1e100) cost no accuracy: the fit is scale-free.
    # The ridge prior, the start and the stopping rule are already defined
    # on that scale, so the iterates are those of the raw-scale EM, mapped.
    if column_moments is None:
        _, center, scale, _, _ = observed_column_moments(X, chunk_size)
        column_moments = (center, scale)
    center, unit = column_moments[0], standardising_scale(column_moments[1])
    problem = prepare_problem(X, ridge, chunk_size, column_moments, standardise=True)
    # log f(x_o) = log f(z_o) - sum over the observed cells of log unit_j.
    jacobian = -float(observed_counts(X, chunk_size) @ np.log(unit))
    report = shifted_callback(callback, jacobian)
    run = run_em(
        NormalModel.in_memory(problem),
        max_iter=max_iter,
        tol=tol,
        accelerate=accelerate,
        callback=report,
    )
    return EMResult(
        mean=center + unit * run.params.mean,
        covariance=run.params.covariance * np.outer(unit, unit),
        loglik=run.loglik + jacobian,
        loglik_path=run.path + jacobian,
        n_iter=run.n_iter,
        n_em_steps=run.n_steps,
        converged=run.converged,
    )


class NormalModel(EMModel):
    """The multivariate normal as an :class:`~emimpute.engine._model.EMModel`.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(mean, covariance)`` returns the :class:`NormalStatistics`
        of all rows about ``center`` (or None when the covariance is not
        positive definite): :func:`e_step` on a prepared problem in memory,
        a sum of :func:`block_statistics` over blocks in a distributed fit.
    n_rows : int
        Rows that carry information (not entirely missing).
    center, scale : ndarrays of shape (p,)
        Observed column means and standardising scales
        (:func:`standardising_scale`): the origin of the sums, the start,
        the prior's scale and the scale of the stopping rule.
    ridge : float
        Prior strength in pseudo-observations (:func:`m_step`).
    """

    singular_message = (
        "the covariance estimate became singular, so the likelihood has no "
        "finite maximum (constant or collinear columns, more columns than rows, "
        "or too few rows observing pairs of columns together); use a ridge "
        "prior (ridge > 0, for example 1% of n_samples)"
    )

    def __init__(
        self, evaluate, *, n_rows, center, scale, ridge=0.0, origin=0.0, unit=1.0
    ):
        self.evaluate = evaluate
        self.n_rows = n_rows
        self.center = center
        self.scale = scale
        self.ridge = float(ridge)
        self.prior_scatter = ridge_scatter(scale)  # diag(scale**2)
        self.origin, self.unit = origin, unit

    @classmethod
    def in_memory(cls, problem):
        """The model of a prepared problem (:func:`prepare_problem`)."""
        return cls(
            lambda mean, covariance: e_step(problem, mean, covariance),
            n_rows=problem.n_rows,
            center=problem.center,
            scale=problem.scale,
            ridge=problem.ridge,
            origin=problem.origin,
            unit=problem.unit,
        )

    def statistics_of(self, X, params):
        """The E-step statistics of the rows of X (data units, NaN at
        missing cells) in this model's coordinates: the statistics of a data
        set are the sum of those of its row blocks."""
        Z = (np.asarray(X, dtype=np.float64) - self.origin) / self.unit
        try:
            precision, logdet_cov = precision_and_logdet(params.covariance)
            incomplete = block_statistics(
                Z, self.center, params.mean, precision, logdet_cov
            )
        except np.linalg.LinAlgError:
            return None
        n_complete, T1, T2, _ = complete_row_sums(Z, self.center)
        shift = params.mean - self.center
        return add_complete_rows(
            incomplete, (n_complete, T1, T2), shift, precision, logdet_cov
        )

    def start(self):
        # The observed means and variances with zero correlations, so that
        # the first E-step fills every missing cell with its column mean.
        return NormalParams(self.center, np.diag(self.scale**2))

    def e_step(self, params):
        return self.evaluate(params.mean, params.covariance)

    def m_step(self, params, stats):
        mean, covariance = m_step(
            stats.row_sum,
            stats.cross,
            self.n_rows,
            self.prior_scatter,
            self.ridge,
            self.center,
        )
        return NormalParams(mean, covariance)

    def log_prior(self, params):
        return log_prior(params.covariance, self.prior_scatter, self.ridge)

    def to_vector(self, params):
        return _to_vector(self.center, self.scale, params.mean, params.covariance)

    def from_vector(self, vector, like):
        return NormalParams(*_from_vector(self.center, self.scale, vector))

    def change(self, old, new):
        return _relative_change(
            self.scale, (old.mean, old.covariance), (new.mean, new.covariance)
        )


def run_normal_em(
    evaluate,
    *,
    n_rows,
    center,
    scale,
    ridge=0.0,
    max_iter=500,
    tol=1e-6,
    accelerate=True,
    callback=None,
):
    """The EM iterations of :func:`fit_normal_em`, for any E-step.

    ``evaluate(mean, covariance)`` returns the :class:`NormalStatistics` of
    :func:`e_step` (sums about ``center``) or None when the covariance is
    not positive definite.  In memory that is :func:`e_step`; a distributed
    fit adds up :func:`block_statistics` over the blocks of its data
    instead.  Everything else (start, M-step, prior, acceleration, stopping
    rule) is :class:`NormalModel` on the one driver, so both give the same
    estimates.

    Parameters
    ----------
    evaluate : callable
    n_rows, center, scale, ridge
        As in :class:`NormalModel`.
    max_iter, tol, accelerate, callback
        As in :func:`fit_normal_em`.

    Returns
    -------
    EMResult
    """
    model = NormalModel(
        evaluate, n_rows=n_rows, center=center, scale=scale, ridge=ridge
    )
    run = run_em(
        model, max_iter=max_iter, tol=tol, accelerate=accelerate, callback=callback
    )
    return EMResult(
        mean=run.params.mean,
        covariance=run.params.covariance,
        loglik=run.loglik,
        loglik_path=run.path,
        n_iter=run.n_iter,
        n_em_steps=run.n_steps,
        converged=run.converged,
    )
