"""EM for the multivariate t with incomplete data (statistical kernel).

x ~ t_p(mu, S, nu) is a scale mixture of normals: x | w ~ N(mu, S / w),
w ~ Gamma(nu / 2, nu / 2).  Given a row's observed cells o (p_o of them),
w | x_o ~ Gamma((nu + p_o) / 2, (nu + d^2) / 2) with d^2 the observed-part
Mahalanobis distance (x_o - mu_o)' inv(S_oo) (x_o - mu_o), so

* E[w | x_o] = w_i = (nu + p_o) / (nu + d^2);
* x_m | x_o, w ~ N(c, C / w), with c and C the normal conditional mean and
  covariance (they do not depend on w), hence E[w x_m | x_o] = w_i c and
  E[w x_m x_m' | x_o] = E[w (C / w + c c')] = C + w_i c c': the completed row
  enters weighted, its conditional covariance unweighted.

M-step (the weighted normal update): mu = sum w_i xhat_i / sum w_i and
S = (1 / n) sum [w_i (xhat_i - mu)(xhat_i - mu)' + C_i], with the same ridge
prior as the normal model (:func:`emimpute.models._normal.m_step`).

Degrees of freedom: fixed, or estimated by ECME (Liu & Rubin 1995): at each
E-step the df maximising the observed-data t log-likelihood at the current
(mu, S) is found first (a one-dimensional Newton search on log nu, safeguarded
by bisection; the objective depends on the rows only through (d^2_i, p_o,i)),
and the weights use it.  The objective of the driver is then the profile
log-likelihood max_nu L(mu, S, nu), which every EM step increases: the
weighted update at nu_hat(mu0, S0) raises L(., ., nu_hat(mu0, S0)), and
re-profiling can only raise it further.

Block-additive statistics: for a fixed df the E-step sums (sum w, sum w x,
sum w x x' + sum C, log-likelihood) add over row blocks
(:func:`block_statistics`).  An estimated df needs every row's (d^2, p_o)
before any weight is known, and the df objective has no finite set of
additive summaries (it involves sum log(1 + d^2_i / nu) for every nu), so a
distributed fit makes two passes per E-step: :func:`block_distances` on each
block (gathering n floats and n small integers), :func:`profile_df` where
they are gathered, then :func:`block_statistics` at that df.

References
----------
Liu, C. & Rubin, D. B. (1995). ML estimation of the t distribution using EM
and its extensions, ECM and ECME. *Statistica Sinica* 5, 19-39.
Little, R. J. A. & Rubin, D. B. (2002). *Statistical Analysis with Missing
Data*, 2nd ed., Wiley, sec. 12.2.
"""

from dataclasses import dataclass, fields, replace

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from emimpute.engine._driver import run_em, shifted_callback
from emimpute.engine._model import EMModel, Statistics
from emimpute.gaussian import _compiled
from emimpute.gaussian._conditional import (
    chunk_moments,
    chunk_rows_for,
    plan_chunks,
    precision_and_logdet,
)
from emimpute.models._normal import (
    _from_vector,
    _incomplete_layout,
    _relative_change,
    _to_vector,
    log_prior,
    observed_column_moments,
    observed_counts,
)
from emimpute.utils._scale import ridge_scatter, standardising_scale

#: Bounds of an estimated df.  Below 0.5 the tails are so heavy that a
#: handful of rows decide the fit; at 1000 the t is practically normal
#: (excess kurtosis 6 / (nu - 4) < 0.01), and a df at the upper bound says
#: the data show no heavier tails than the normal's.
DF_BOUNDS = (0.5, 1000.0)
#: Warm start of the first df search.
DF_START = 10.0
LOG_PI = np.log(np.pi)


@dataclass(frozen=True)
class StudentTParams:
    """Location, scale matrix and degrees of freedom of t_p(mu, S, nu).

    ``df`` is the df the weights of the last E-step used (an estimated df
    is re-profiled at every E-step; it is not part of the vector)."""

    mean: np.ndarray
    scale: np.ndarray
    df: float


@dataclass(frozen=True)
class StudentTStatistics(Statistics):
    """E-step sums about a fixed center, at one df: ``weight_sum`` (sum
    w_i), ``row_sum`` (sum w_i xhat_i), ``cross`` (sum w_i xhat_i xhat_i'
    plus the conditional covariances), ``loglik`` and the ``df`` used.
    They add over row blocks computed at the same df."""

    weight_sum: float
    row_sum: np.ndarray
    cross: np.ndarray
    df: float

    def __add__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        if other.df != self.df:
            raise ValueError(
                f"statistics at different df ({self.df} and {other.df}) do not add"
            )
        summed = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "df"
        }
        return replace(self, **summed)


@dataclass(frozen=True)
class StudentTResult:
    """Outcome of :func:`fit_student_t_em`, in the data's units.

    ``covariance`` is scale * df / (df - 2), the covariance of the t; for
    df <= 2 the t has no finite covariance and it is a matrix of NaN.
    ``loglik`` is the observed-data t log-likelihood (constant included) at
    (mean, scale, df); ``loglik_path`` holds it after every iteration.
    """

    mean: np.ndarray
    scale: np.ndarray
    df: float
    covariance: np.ndarray
    loglik: float
    loglik_path: np.ndarray
    n_iter: int
    n_em_steps: int
    converged: bool

    @property
    def dispersion(self):
        """The scale matrix: what the automatic ridge checks for collinear
        columns (the covariance does not exist for df <= 2)."""
        return self.scale


# ---------------------------------------------------------------------------
# The df: log-likelihood and its profile


def _dot(a, b):
    """Dot product of two long vectors without BLAS: OpenBLAS's threaded
    ddot costs milliseconds on a busy machine where this costs microseconds."""
    return float(np.einsum("i,i->", a, b))


def t_loglik(distance, n_observed, df, logdet_oo_sum):
    """Sum over rows of log t_{p_o}(x_o; mu_o, S_oo, df).

    Parameters
    ----------
    distance, n_observed : ndarrays of shape (n,)
        d^2 and p_o of each row.
    df : float
    logdet_oo_sum : float
        Sum over rows of log det S_oo.
    """
    counts = np.bincount(n_observed)
    p_values = np.arange(len(counts))
    constant = counts @ (
        gammaln((df + p_values) / 2.0)
        - gammaln(df / 2.0)
        - 0.5 * p_values * (np.log(df) + LOG_PI)
    )
    tail = _dot(df + n_observed, np.log1p(distance / df))
    return float(constant - 0.5 * logdet_oo_sum - 0.5 * tail)


def _df_derivatives(t, distance, n_observed, counts):
    """First and second derivatives in t = log nu of the t log-likelihood.

    With a = nu + p_o and b = nu + d^2, the nu-dependent part of a row's log
    density is lgamma(a/2) - lgamma(nu/2) + (nu/2) log nu - (a/2) log b, so
    f' = sum [psi(a/2)/2 - psi(nu/2)/2 + (log nu + 1)/2 - (log b)/2 - a/(2b)]
    and f'' = sum [psi1(a/2)/4 - psi1(nu/2)/4 + 1/(2 nu) - 1/b + a/(2 b^2)].
    """
    nu = np.exp(t)
    n = counts.sum()
    p_values = np.arange(len(counts))
    half = (nu + p_values) / 2.0
    inv_b = 1.0 / (nu + distance)
    sum_inv = inv_b.sum()
    p_inv_b = n_observed * inv_b
    sum_p_inv = p_inv_b.sum()
    sum_inv2 = _dot(inv_b, inv_b)
    sum_p_inv2 = _dot(p_inv_b, inv_b)
    sum_a_over_b = nu * sum_inv + sum_p_inv
    sum_a_over_b2 = nu * sum_inv2 + sum_p_inv2
    first = 0.5 * (
        counts @ digamma(half)
        - n * digamma(nu / 2.0)
        + n * (np.log(nu) + 1.0)
        - np.log(nu + distance).sum()
        - sum_a_over_b
    )
    second = (
        0.25 * (counts @ polygamma(1, half) - n * polygamma(1, nu / 2.0))
        + 0.5 * n / nu
        - sum_inv
        + 0.5 * sum_a_over_b2
    )
    return nu * first, nu * first + nu * nu * second


def profile_df(distance, n_observed, start=DF_START, bounds=DF_BOUNDS):
    """The df maximising the observed-data t log-likelihood at fixed (mu, S).

    Newton's method on log nu from ``start`` (the previous estimate, so that
    late in a fit one or two steps suffice), kept inside a bracket of the
    root of the derivative and replaced by bisection when it leaves it.
    The profile is taken as unimodal in nu (as Liu & Rubin's root finding
    does); a maximum at a bound returns the bound.

    Parameters
    ----------
    distance, n_observed : ndarrays of shape (n,)
        d^2 and p_o of each row with an observed cell.
    start : float
    bounds : (float, float)

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_t(4.0, size=(20000, 1))
    >>> round(profile_df((x**2).ravel(), np.ones(20000, dtype=int)), 1)
    4.0
    """
    n_observed = np.asarray(n_observed, dtype=np.int64)
    counts = np.bincount(n_observed).astype(np.float64)
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    lo_checked = hi_checked = False
    t = float(np.clip(np.log(start), lo, hi))
    for _ in range(200):
        first, second = _df_derivatives(t, distance, n_observed, counts)
        if first > 0:
            lo, lo_checked = t, True
        else:
            hi, hi_checked = t, True
        if lo >= hi:  # a maximum at a bound
            return float(np.exp(t))
        step = -first / second if second < 0 else np.inf
        new = t + float(np.clip(step, -2.0, 2.0))
        if not lo < new < hi:
            # Outside the bracket: try the bound itself once, else bisect.
            if new >= hi and not hi_checked:
                new = hi
            elif new <= lo and not lo_checked:
                new = lo
            else:
                new = 0.5 * (lo + hi)
        if abs(new - t) < 1e-10:
            return float(np.exp(new))
        t = new
    return float(np.exp(t))


def t_weights(distance, n_observed, df):
    """E[w | x_o] = (df + p_o) / (df + d^2) (Liu & Rubin 1995, eq. 10)."""
    return (df + n_observed) / (df + distance)


# ---------------------------------------------------------------------------
# The data laid out once, and the E-step


@dataclass(frozen=True)
class _TProblem:
    """What every E-step of a t fit needs, computed once.

    ``data`` holds the informative rows (not entirely missing) about
    ``center``: the complete rows first, then the incomplete ones in chunk
    order (``chunks``, ``bounds`` relative to ``n_complete``).  The E-step
    writes the completed rows into it.
    """

    data: np.ndarray
    n_complete: int
    chunks: list
    bounds: np.ndarray
    n_observed: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    ridge: float
    origin: np.ndarray  # data units: model coordinates are (x - origin) / unit
    unit: np.ndarray


def prepare_t_problem(X, ridge=0.0, chunk_size=None, column_moments=None):
    """Lay out the standardised informative rows of X for :func:`t_e_step`.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        NaN at missing cells; not modified.
    ridge : float
    chunk_size : int, optional
    column_moments : (mean, std), optional
        The observed column means and standard deviations.

    Returns
    -------
    _TProblem
        On the standardised scale (center 0, scale 1).
    """
    X = np.asarray(X, dtype=np.float64)
    if column_moments is None:
        _, center, scale, _, _ = observed_column_moments(X, chunk_size)
    else:
        center, scale = column_moments
    unit = standardising_scale(scale)
    n_missing = np.isnan(X).sum(axis=1)
    complete = (X[n_missing == 0] - center) / unit
    incomplete, chunks, bounds = _incomplete_layout(X, center, chunk_size, unit)
    data = np.concatenate([complete, incomplete])
    del complete, incomplete
    p = X.shape[1]
    observed = np.concatenate(
        [np.full(len(data) - bounds[-1], p)]
        + [np.full(len(chunk.rows), p - chunk.missing.shape[0]) for chunk in chunks]
    ).astype(np.int64)
    return _TProblem(
        data=data,
        n_complete=len(data) - int(bounds[-1]),
        chunks=chunks,
        bounds=bounds,
        n_observed=observed,
        center=np.zeros(p),
        scale=np.ones(p),
        ridge=float(ridge),
        origin=center,
        unit=unit,
    )


def _complete_distances(rows, shift, precision):
    """d' K d of complete rows, in chunks (one n x p x p product)."""
    step = chunk_rows_for(rows.shape[1])
    out = np.empty(len(rows))
    for start in range(0, len(rows), step):
        deviation = rows[start : start + step] - shift
        out[start : start + step] = np.einsum(
            "ij,ij->i", deviation @ precision, deviation
        )
    return out


def _incomplete_pass(data, chunks, bounds, shift, precision, logdet_cov, n_threads):
    """Complete the incomplete rows ``data`` in place; return their d^2, the
    sum of their conditional covariances and the sum of log det K_mm."""
    p = shift.shape[0]
    distance = np.empty(len(data))
    if _compiled.available():
        starts, stops = bounds[:-1], bounds[1:]
        blocks = [
            (data[a:b], chunk.missing)
            for chunk, a, b in zip(chunks, starts, stops, strict=True)
        ]
        pieces = [distance[a:b] for a, b in zip(starts, stops, strict=True)]
        _, cov_sum, logdet_mm, _ = _compiled.complete_blocks(
            blocks, shift, precision, n_threads=n_threads, distances=pieces
        )
        return distance, cov_sum, logdet_mm
    cov_sum, logdet_mm = np.zeros(p * p), 0.0
    for chunk, a, b in zip(chunks, bounds[:-1], bounds[1:], strict=True):
        moments = chunk_moments(data[a:b], chunk, shift, precision, logdet_cov)
        distance[a:b] = moments.distance
        cov_sum += moments.cov_sum
        logdet_mm += moments.logdet_mm.sum()
    return distance, cov_sum.reshape(p, p), float(logdet_mm)


def weighted_sums(data, weights, n_threads=None):
    """sum w x and sum w x x' over the rows of ``data`` (compiled or BLAS)."""
    if _compiled.available():
        return _compiled.weighted_sums(data, weights, n_threads)
    p = data.shape[1]
    step = chunk_rows_for(p)
    row_sum, cross = np.zeros(p), np.zeros((p, p))
    for start in range(0, len(data), step):
        block, w = data[start : start + step], weights[start : start + step]
        row_sum += w @ block
        cross += (block * w[:, None]).T @ block
    return row_sum, cross


def distances_and_sums(problem, shift, precision, logdet_cov, n_threads=None):
    """First pass of the E-step: every row's d^2 (rows completed in place),
    the sum of conditional covariances and the sum of log det S_oo."""
    nc = problem.n_complete
    incomplete = problem.data[nc:]
    distance_i, cov_sum, logdet_mm = _incomplete_pass(
        incomplete,
        problem.chunks,
        problem.bounds,
        shift,
        precision,
        logdet_cov,
        n_threads,
    )
    distance = np.concatenate(
        [_complete_distances(problem.data[:nc], shift, precision), distance_i]
    )
    # d^2 >= 0, but with a nearly singular scale (collinear columns under the
    # automatic ridge) rounding can make it slightly negative, and log(nu + d^2)
    # then fails for small nu.
    np.maximum(distance, 0.0, out=distance)
    logdet_oo_sum = len(problem.data) * logdet_cov + logdet_mm
    return distance, cov_sum, logdet_oo_sum


def t_e_step(problem, mean, scale, df, df_start=DF_START, n_threads=None):
    """:class:`StudentTStatistics` of all rows about ``problem.center``.

    ``df`` is a number (fixed) or ``"estimate"`` (profiled at (mean, scale)
    from ``df_start``).  None if ``scale`` is not positive definite.
    """
    try:
        precision, logdet_cov = precision_and_logdet(scale)
    except np.linalg.LinAlgError:
        return None
    shift = mean - problem.center
    try:
        distance, cov_sum, logdet_oo_sum = distances_and_sums(
            problem, shift, precision, logdet_cov, n_threads
        )
    except np.linalg.LinAlgError:
        return None
    return statistics_from_distances(
        problem.data, distance, problem.n_observed, cov_sum, logdet_oo_sum,
        df, df_start, n_threads,
    )  # fmt: skip


def statistics_from_distances(
    data, distance, n_observed, cov_sum, logdet_oo_sum, df, df_start, n_threads=None
):
    """Second pass of the E-step: the df (fixed or profiled), the weights and
    the weighted sums of the completed rows ``data``."""
    if df == "estimate":
        df = profile_df(distance, n_observed, df_start)
    weights = t_weights(distance, n_observed, df)
    row_sum, cross = weighted_sums(data, weights, n_threads)
    return StudentTStatistics(
        loglik=t_loglik(distance, n_observed, df, logdet_oo_sum),
        weight_sum=float(weights.sum()),
        row_sum=row_sum,
        cross=cross + cov_sum,
        df=float(df),
    )


def block_distances(X, center, mean, precision, logdet_cov, n_threads=None):
    """First pass of a distributed E-step on one block of rows.

    Returns
    -------
    distance, n_observed : ndarrays over the block's informative rows
        (in the block's own layout, the same as :func:`block_statistics`).
    logdet_oo_sum : float
    """
    problem = prepare_t_problem(X, column_moments=(center, np.ones_like(center)))
    distance, _, logdet_oo_sum = distances_and_sums(
        problem, mean - center, precision, logdet_cov, n_threads
    )
    return distance, problem.n_observed, logdet_oo_sum


def block_statistics(X, center, mean, precision, logdet_cov, df, n_threads=None):
    """:class:`StudentTStatistics` of one block of rows at a fixed ``df``,
    about ``center``; they add over blocks (the second pass of a
    distributed E-step, :func:`block_distances` the first)."""
    problem = prepare_t_problem(X, column_moments=(center, np.ones_like(center)))
    distance, cov_sum, logdet_oo_sum = distances_and_sums(
        problem, mean - center, precision, logdet_cov, n_threads
    )
    return statistics_from_distances(
        problem.data, distance, problem.n_observed, cov_sum, logdet_oo_sum,
        float(df), None, n_threads,
    )  # fmt: skip


# ---------------------------------------------------------------------------
# The model on the engine


class StudentTModel(EMModel):
    """The multivariate t as an :class:`~emimpute.engine._model.EMModel`.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(mean, scale, df, df_start)`` returns the
        :class:`StudentTStatistics` of all rows about ``center`` (or None
        when ``scale`` is not positive definite): :func:`t_e_step` on a
        prepared problem in memory, or a two-pass sum of block statistics.
    n_rows : int
        Rows that carry information (not entirely missing).
    center, scale : ndarrays of shape (p,)
        As in :class:`emimpute.models._normal.NormalModel`.
    ridge : float
        Prior strength in pseudo-observations, as for the normal model.
    df : float or "estimate"
    origin, unit : ndarrays of shape (p,) or floats
        The model's coordinates are (x - origin) / unit of the data's x
        (:meth:`statistics_of`); 0 and 1 when the model works in data units.
    """

    singular_message = (
        "the scale matrix estimate became singular, so the likelihood has no "
        "finite maximum (constant or collinear columns, more columns than rows); "
        "use a ridge prior (ridge > 0, for example 1% of n_samples)"
    )

    def __init__(
        self,
        evaluate,
        *,
        n_rows,
        center,
        scale,
        ridge=0.0,
        df="estimate",
        origin=0.0,
        unit=1.0,
    ):
        self.evaluate = evaluate
        self.n_rows = n_rows
        self.center = center
        self.scale = scale
        self.ridge = float(ridge)
        self.df = check_df(df)
        self.prior_scatter = ridge_scatter(scale)  # diag(scale**2)
        self.origin, self.unit = origin, unit

    @classmethod
    def in_memory(cls, problem, df="estimate"):
        """The model of a prepared problem (:func:`prepare_t_problem`)."""
        return cls(
            lambda mean, scale, df, start: t_e_step(problem, mean, scale, df, start),
            n_rows=len(problem.data),
            center=problem.center,
            scale=problem.scale,
            ridge=problem.ridge,
            df=df,
            origin=problem.origin,
            unit=problem.unit,
        )

    def statistics_of(self, X, params):
        """The E-step statistics of the rows of X (data units, NaN at
        missing cells) in this model's coordinates, at a fixed df: summed
        over the row blocks of the data they equal :meth:`e_step`.

        An estimated df is chosen from every row's distance before any
        weight is known, so its statistics do not add: a distributed fit
        gathers :func:`block_distances`, profiles the df
        (:func:`profile_df`) and then sums :func:`block_statistics` at it.
        """
        if self.df == "estimate":
            raise NotImplementedError(
                "with df='estimate' the statistics of a block depend on the df "
                "profiled over all rows; use block_distances, profile_df and "
                "block_statistics (two passes)"
            )
        Z = (np.asarray(X, dtype=np.float64) - self.origin) / self.unit
        try:
            precision, logdet_cov = precision_and_logdet(params.scale)
            return block_statistics(
                Z, self.center, params.mean, precision, logdet_cov, self.df
            )
        except np.linalg.LinAlgError:
            return None

    def start(self):
        # The normal model's start: observed means and variances.
        df = DF_START if self.df == "estimate" else self.df
        return StudentTParams(self.center, np.diag(self.scale**2), df)

    def e_step(self, params):
        return self.evaluate(params.mean, params.scale, self.df, params.df)

    def m_step(self, params, stats):
        # mu - center = sum w e / sum w; n S = sum w e e' + sum C - W s s'.
        shift = stats.row_sum / stats.weight_sum
        n = self.n_rows
        scatter = stats.cross - stats.weight_sum * np.outer(shift, shift)
        scale = (scatter + self.ridge * self.prior_scatter) / (n + self.ridge)
        return StudentTParams(self.center + shift, 0.5 * (scale + scale.T), stats.df)

    def log_prior(self, params):
        return log_prior(params.scale, self.prior_scatter, self.ridge)

    def to_vector(self, params):
        return _to_vector(self.center, self.scale, params.mean, params.scale)

    def from_vector(self, vector, like):
        mean, scale = _from_vector(self.center, self.scale, vector)
        return StudentTParams(mean, scale, like.df)

    def change(self, old, new):
        return _relative_change(
            self.scale, (old.mean, old.scale), (new.mean, new.scale)
        )


def check_df(df):
    """``df`` as "estimate" or a float > 0; ValueError otherwise."""
    if isinstance(df, str) and df == "estimate":
        return df
    if isinstance(df, bool) or not isinstance(df, (int, float, np.number)):
        raise ValueError(f"df must be 'estimate' or a number > 0, got {df!r}")
    if not np.isfinite(df) or df <= 0:
        raise ValueError(f"df must be 'estimate' or a number > 0, got {df!r}")
    return float(df)


def t_covariance(scale, df):
    """scale * df / (df - 2), or NaN where the t has no covariance (df <= 2)."""
    if df <= 2:
        return np.full_like(scale, np.nan)
    return scale * (df / (df - 2.0))


def fit_student_t_em(
    X,
    *,
    df="estimate",
    ridge=0.0,
    max_iter=500,
    tol=1e-6,
    accelerate=True,
    callback=None,
    chunk_size=None,
):
    """Fit t_p(mu, S, nu) to incomplete data by EM (ECME for nu).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data with NaN at missing cells; every column needs an observed value.
    df : "estimate" or float > 0, default="estimate"
        Degrees of freedom: estimated (in :data:`DF_BOUNDS`) or fixed.
    ridge : float, default=0.0
        Prior strength in pseudo-observations, as in
        :func:`emimpute.models._normal.fit_normal_em`.
    max_iter, tol, accelerate, callback
        As in :func:`emimpute.models._normal.fit_normal_em`; the stopping
        rule measures the mean and the scale matrix on the standardised
        scale and the relative change of the (profile) log-likelihood.
    chunk_size : int, optional
        Rows per chunk in the E-step.

    Returns
    -------
    StudentTResult

    Raises
    ------
    ValueError
        If ``df`` is neither "estimate" nor a number > 0.
    SingularCovarianceError
        If the scale matrix becomes singular (a ridge prior fixes this).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_t(3.0, size=(500, 2)) @ np.array([[1.0, 0.5], [0.0, 1.0]])
    >>> X[rng.random(X.shape) < 0.2] = np.nan
    >>> result = fit_student_t_em(X)
    >>> bool(result.converged), bool(2.0 < result.df < 5.0)
    (True, True)
    """
    df = check_df(df)
    X = np.asarray(X, dtype=np.float64)
    _, center, std, _, _ = observed_column_moments(X, chunk_size)
    unit = standardising_scale(std)
    problem = prepare_t_problem(X, ridge, chunk_size, (center, std))
    # log f(x_o) = log f(z_o) - sum over the observed cells of log unit_j.
    jacobian = -float(observed_counts(X, chunk_size) @ np.log(unit))
    report = shifted_callback(callback, jacobian)
    model = StudentTModel.in_memory(problem, df)
    run = run_em(
        model, max_iter=max_iter, tol=tol, accelerate=accelerate, callback=report
    )
    scale = run.params.scale * np.outer(unit, unit)
    return StudentTResult(
        mean=center + unit * run.params.mean,
        scale=scale,
        df=run.stats.df,
        covariance=t_covariance(scale, run.stats.df),
        loglik=run.loglik + jacobian,
        loglik_path=run.path + jacobian,
        n_iter=run.n_iter,
        n_em_steps=run.n_steps,
        converged=run.converged,
    )


def run_student_t_em(
    *,
    evaluate, n_rows, center, scale, df, ridge, max_iter, tol, accelerate,
    callback,
):  # fmt: skip
    """EM for the multivariate t with any E-step ``evaluate`` (as
    :func:`~emimpute.models._normal.run_normal_em` for the normal model):
    :class:`~emimpute.models._student_t.StudentTModel` on the one driver,
    in the data's units.

    Returns
    -------
    StudentTResult
    """
    model = StudentTModel(
        evaluate, n_rows=n_rows, center=center, scale=scale, ridge=ridge, df=df
    )
    run = run_em(
        model, max_iter=max_iter, tol=tol, accelerate=accelerate, callback=callback
    )
    return StudentTResult(
        mean=run.params.mean,
        scale=run.params.scale,
        df=run.stats.df,
        covariance=t_covariance(run.params.scale, run.stats.df),
        loglik=run.loglik,
        loglik_path=run.path,
        n_iter=run.n_iter,
        n_em_steps=run.n_steps,
        converged=run.converged,
    )


# ---------------------------------------------------------------------------
# The conditional distribution of the missing cells


@dataclass
class ConditionalT:
    """Result of :func:`conditional_t`."""

    completed: np.ndarray  # (n, p) missing cells imputed (or drawn)
    variance: np.ndarray  # (n, p) conditional variance, 0 at observed cells
    loglik: np.ndarray  # (n,) observed-data t log density of each row
    weights: np.ndarray  # (n,) E[w | x_o] = (df + p_o) / (df + d^2)


def _conditional_chunk(X, chunk, mean, precision, logdet_cov, df, rng, want_variance):
    """Conditional t of one chunk of rows: completed block, d^2, log det
    K_mm, and the conditional variances (or None)."""
    k = chunk.missing.shape[0]
    dof = df + X.shape[1] - k
    moments = chunk_moments(
        np.array(X[chunk.rows], dtype=np.float64),
        chunk,
        mean,
        precision,
        logdet_cov,
        want_cov_sum=False,
        want_variance=want_variance,
        want_factor=rng is not None,
    )
    block = moments.completed
    distance = np.maximum(moments.distance, 0.0)  # rounding, as in the E-step
    # x_m | x_o ~ t_{dof}(c, C (df + d^2) / dof) (Liu & Rubin 1995, sec. 2).
    factor = (df + distance) / dof
    if rng is not None:
        # c + sqrt(factor) W'z / sqrt(chi2_dof / dof), C = W'W: a t draw as a
        # normal draw over the square root of an independent gamma.
        z = rng.standard_normal(size=(k, len(block)))
        noise = np.einsum("lan,ln->an", moments.factor, z)
        mix = np.sqrt(factor / (rng.chisquare(dof, size=len(block)) / dof))
        block[np.arange(len(block))[None, :], chunk.missing] += noise * mix
    variance = None
    if want_variance:  # scale * dof / (dof - 2); infinite for dof <= 2
        ratio = factor * dof / (dof - 2.0) if dof > 2 else np.full_like(factor, np.inf)
        variance = np.where(moments.variance > 0, moments.variance * ratio[:, None], 0)
    return block, distance, moments.logdet_mm, variance


def conditional_t(
    X, mean, scale, df, *, rng=None, want_variance=False, want_loglik=False, out=None
):
    """Impute every missing cell from t_p(mu, S, df) given its row's observed
    cells.

    Given p_o observed cells at distance d^2, the missing cells follow a t
    with df + p_o degrees of freedom, the normal conditional mean c and
    scale C (df + d^2) / (df + p_o), C the normal conditional covariance
    (Liu & Rubin 1995; Little & Rubin 2002, sec. 12.2).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Data with NaN at missing cells; not modified (unless ``out is X``).
    mean, scale : ndarrays of shape (p,) and (p, p)
        Location and scale matrix; ``scale`` positive definite.
    df : float > 0
    rng : numpy.random.Generator or RandomState, optional
        Draw the missing cells from their conditional t instead of setting
        them to the conditional mean.
    want_variance, want_loglik : bool
        Also return the conditional variance of every cell (infinite where
        the conditional df is 2 or less) and each row's observed-data log
        density (0 for a row with nothing observed).
    out : ndarray of shape (n, p), optional
        Where to write the completed data (may be ``X``).

    Returns
    -------
    ConditionalT

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, np.nan], [np.nan, np.nan]])
    >>> result = conditional_t(X, np.zeros(2), np.array([[1.0, 0.5], [0.5, 1.0]]),
    ...                        4.0, want_variance=True)
    >>> result.completed
    array([[1. , 0.5],
           [0. , 0. ]])
    >>> result.variance.round(4)  # 0.75 (4 + 1) / (4 + 1 - 2); 1 * 4 / 2
    array([[0.  , 1.25],
           [2.  , 2.  ]])
    """
    df = check_df(df)
    if df == "estimate":
        raise ValueError("conditional_t needs a number for df, not 'estimate'")
    X = np.asarray(X)
    n, p = X.shape
    precision, logdet_cov = precision_and_logdet(scale)
    if out is None:
        out = np.array(X, dtype=np.float64)
    elif out is not X:
        out[...] = X
    mask = np.isnan(X)
    n_observed = p - mask.sum(axis=1)
    distance, logdet_mm = np.zeros(n), np.zeros(n)
    variance = np.zeros((n, p)) if want_variance else None
    for chunk in plan_chunks(mask, np.flatnonzero(n_observed < p)):
        block, d2, logdet, var = _conditional_chunk(
            X, chunk, mean, precision, logdet_cov, df, rng, want_variance
        )
        out[chunk.rows], distance[chunk.rows] = block, d2
        logdet_mm[chunk.rows] = logdet
        if want_variance:
            variance[chunk.rows] = var
    complete = np.flatnonzero(n_observed == p)
    rows = np.asarray(X[complete], dtype=np.float64)
    distance[complete] = _complete_distances(rows, mean, precision)
    loglik = None
    if want_loglik:
        loglik = _row_logliks(distance, n_observed, df, logdet_cov + logdet_mm)
    weights = t_weights(distance, n_observed, df)
    return ConditionalT(out, variance, loglik, weights)


def _row_logliks(distance, n_observed, df, logdet_oo):
    """log t_{p_o}(x_o; mu_o, S_oo, df) of each row; 0 with nothing observed."""
    loglik = (
        gammaln((df + n_observed) / 2.0)
        - gammaln(df / 2.0)
        - 0.5 * n_observed * (np.log(df) + LOG_PI)
        - 0.5 * logdet_oo
        - 0.5 * (df + n_observed) * np.log1p(distance / df)
    )
    return np.where(n_observed == 0, 0.0, loglik)


def row_weights(X, mean, scale, df):
    """Each row's E[w | x_o] = (df + p_o) / (df + d^2): the weight the fit
    gives it, small for outlying rows (an outlier score); 1 for a row with
    nothing observed.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [10.0, np.nan], [np.nan, np.nan]])
    >>> row_weights(X, np.zeros(2), np.eye(2), 4.0).round(3)
    array([1.5  , 0.048, 1.   ])
    """
    return conditional_t(X, mean, scale, df).weights
