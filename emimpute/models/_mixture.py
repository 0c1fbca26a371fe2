"""EM for a mixture of multivariate normals with incomplete rows
(statistical kernel).

A row's density is sum_k pi_k N(x; mu_k, S_k); with missing cells it is
that of its observed cells o, sum_k pi_k N(x_o; mu_k,o, S_k,oo), the
missing ones integrated out (Ghahramani & Jordan 1994; McLachlan & Peel
2000, sec. 3.2).

E-step.  Component k's responsibility for row i is
tau_ik = pi_k N(x_o; mu_k,o, S_k,oo) / sum_l pi_l N(x_o; mu_l,o, S_l,oo),
from the observed cells only.  Given component k, the missing cells are
normal with the normal model's conditional mean c_ik and covariance C_ik
under (mu_k, S_k) (:func:`emimpute.gaussian._conditional.chunk_moments`,
through the precision matrix).  The sufficient statistics of component k
are sum_i tau_ik, sum_i tau_ik xhat_ik and
sum_i tau_ik (xhat_ik xhat_ik' + C_ik), xhat_ik the row completed by c_ik:
the normal E-step's statistics with row weights tau_ik, the conditional
covariance weighted too (unlike the multivariate t's).  They add over
blocks of rows.

M-step.  pi_k = sum_i tau_ik / n; mu_k and S_k the weighted normal
update, each S_k with the normal model's ridge prior (``ridge``
pseudo-observations of the standardised scale's diagonal, per component),
so that a component with few rows cannot collapse onto them; S_k then
restricted to the covariance type (:func:`mixture_m_step`).

Cost.  With the compiled extension the E-step is one pass over the
incomplete rows (:mod:`emimpute.models._mixture_estep`): each group of
rows is taken through every component while it is in the CPU's caches,
at about the cost of one normal E-step per component
(``benchmarks/results.md``).  Without it, :func:`mixture_statistics`
runs K of the normal model's NumPy E-steps.

Everything is computed on the standardised scale of the observed columns
(each column centred by its observed mean and divided by its standard
deviation), as the normal model does, and reported in the data's units.

References
----------
Ghahramani, Z. & Jordan, M. I. (1994). Supervised learning from incomplete
data via an EM approach. *NIPS* 6, 120-127.
McLachlan, G. J. & Peel, D. (2000). *Finite Mixture Models*, Wiley, ch. 3.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.special import logsumexp

from emimpute.engine._model import EMModel, SingularCovarianceError, Statistics
from emimpute.engine._squarem import from_log_cholesky, log_cholesky
from emimpute.gaussian import _compiled
from emimpute.gaussian._conditional import (
    LOG_2PI,
    _scatter_conditional_covariances,
    chunk_moments,
    conditional_moments,
    plan_chunks,
    precision_and_logdet,
)
from emimpute.models._mixture_estep import (
    MixtureLayout,
    compiled_conditional,
    compiled_statistics,
)
from emimpute.models._normal import fit_normal_em, observed_column_moments
from emimpute.models._normal import log_prior as normal_log_prior
from emimpute.utils._scale import standardising_scale


@dataclass(frozen=True)
class MixtureParams:
    """Mixing weights (K,), means (K, p) and covariances (K, p, p)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray


@dataclass(frozen=True)
class MixtureStatistics(Statistics):
    """Per component: sum of responsibilities (K,), of responsibility-
    weighted completed rows (K, p), and of weighted cross-products plus
    conditional covariances (K, p, p); they add over row blocks."""

    resp_sum: np.ndarray
    row_sum: np.ndarray
    cross: np.ndarray


@dataclass(frozen=True)
class ComponentMoments:
    """What one component says about every row: the log density of its
    observed cells (n,), the rows completed by the conditional means
    (n, p), and the conditional covariances as factors per chunk (W with
    C = W' W, batch-last; :func:`chunk_moments`)."""

    loglik: np.ndarray
    completed: np.ndarray
    factors: list


def component_moments(X, mean, covariance, chunks, *, rng=None):
    """:class:`ComponentMoments` of the rows of X (NaN at missing cells)
    under N(mean, covariance); ``chunks``: the incomplete rows' plan
    (:func:`emimpute.gaussian._conditional.plan_chunks`).  With ``rng``
    (a RandomState) the missing cells are drawn, not set to their means.

    Raises
    ------
    numpy.linalg.LinAlgError
        If ``covariance`` is not positive definite.
    """
    precision, logdet = precision_and_logdet(covariance)
    p = X.shape[1]
    completed = np.array(X, dtype=np.float64)
    deviation = np.nan_to_num(completed - mean)
    # Complete rows (and the observed part of every row, corrected below).
    quad = np.einsum("ij,ij->i", deviation @ precision, deviation)
    loglik = -0.5 * (p * LOG_2PI + logdet + quad)
    factors = []
    for chunk in chunks:
        block = completed[chunk.rows]
        moments = chunk_moments(
            block, chunk, mean, precision, logdet, want_cov_sum=False,
            want_factor=True, rng=rng,
        )  # fmt: skip
        completed[chunk.rows] = moments.completed
        loglik[chunk.rows] = moments.loglik
        factors.append(moments.factor)
    return ComponentMoments(loglik, completed, factors)


def log_responsibilities(logliks, weights):
    """log tau (n, K) and each row's log-likelihood (n,) from the
    components' observed-part log densities (K, n)."""
    joint = logliks.T + np.log(weights)
    row_loglik = logsumexp(joint, axis=1)
    return joint - row_loglik[:, None], row_loglik


def mixture_statistics(X, params, chunks):
    """:class:`MixtureStatistics` of the rows of X at ``params``, or None
    when a covariance is not positive definite."""
    try:
        components = [
            component_moments(X, mu, S, chunks)
            for mu, S in zip(params.means, params.covariances, strict=True)
        ]
    except np.linalg.LinAlgError:
        return None
    log_tau, row_loglik = log_responsibilities(
        np.array([c.loglik for c in components]), params.weights
    )
    tau = np.exp(log_tau)
    p = X.shape[1]
    row_sum, cross = [], []
    for k, component in enumerate(components):
        w = tau[:, k]
        xhat = component.completed
        row_sum.append(w @ xhat)
        total = (xhat * w[:, None]).T @ xhat
        for chunk, W in zip(chunks, component.factors, strict=True):
            # sum_i w_i C_i = sum_i (sqrt(w_i) W_i)' (sqrt(w_i) W_i)
            missing = chunk.missing
            flat = missing[:, None, :] * p + missing[None, :, :]
            scaled = W * np.sqrt(w[chunk.rows])
            total += _scatter_conditional_covariances(scaled, missing, flat, p).reshape(
                p, p
            )
        cross.append(total)
    return MixtureStatistics(
        loglik=float(row_loglik.sum()),
        resp_sum=tau.sum(axis=0),
        row_sum=np.array(row_sum),
        cross=np.array(cross),
    )


COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")


def mixture_m_step(stats, ridge, prior_scatter, covariance_type="full", unit=None):
    """The weights, means and covariances that maximise the expected
    complete-data log-likelihood plus the ridge prior.

    ``covariance_type`` as scikit-learn's ``GaussianMixture``: "full" (each
    component its own), "diag" (each its own diagonal: the diagonal of the
    full maximiser), "spherical" (each its own variance times the
    identity: the mean of that diagonal) or "tied" (one covariance for
    all: the pooled scatter).  The prior is per component (once for
    "tied"), and the covariances are always returned as (K, p, p)
    matrices with the type's structure.  ``unit`` (p,): the columns'
    scales when the statistics are of standardised data, so that a
    spherical covariance is spherical in the data's units (as
    scikit-learn's): its variance is the mean of the diagonal in those
    units, sigma^2 = mean_j unit_j^2 S_jj.
    """
    n_k = np.maximum(stats.resp_sum, np.finfo(float).tiny)
    means = stats.row_sum / n_k[:, None]
    scatter = stats.cross - n_k[:, None, None] * np.einsum("ki,kj->kij", means, means)
    K, p = means.shape
    if covariance_type == "tied":
        pooled = (scatter.sum(axis=0) + ridge * prior_scatter) / (n_k.sum() + ridge)
        covariances = np.broadcast_to(pooled, (K, p, p)).copy()
    else:
        covariances = (scatter + ridge * prior_scatter) / (n_k + ridge)[:, None, None]
        if covariance_type in ("diag", "spherical"):
            diagonal = np.einsum("kii->ki", covariances)
            if covariance_type == "spherical":
                square = np.ones(p) if unit is None else unit**2
                variance = (diagonal * square).mean(axis=1, keepdims=True)
                diagonal = variance / square
            covariances = np.einsum("ki,ij->kij", diagonal, np.eye(p))
    covariances = 0.5 * (covariances + np.swapaxes(covariances, 1, 2))
    weights = stats.resp_sum / stats.resp_sum.sum()
    return MixtureParams(weights, means, covariances)


class MixtureModel(EMModel):
    """The mixture as an :class:`~emimpute.engine._model.EMModel` on the
    standardised data."""

    singular_message = "a component's covariance became singular"

    def __init__(
        self, Z, start, ridge, covariance_type="full", unit=None, evaluate=None,
        center=None,
    ):  # fmt: skip
        p = start.means.shape[1]
        # The statistics at given parameters: of the rows of Z in memory, or
        # ``evaluate(params)`` (summed over a distributed data set's blocks).
        self.evaluate = evaluate or _in_memory_statistics(Z)
        self.ridge = float(ridge)
        self.prior_scatter = np.eye(p)
        self.covariance_type = covariance_type
        # The columns' scales (spherical covariances are spherical in the
        # data's units, see mixture_m_step).
        self.unit = np.ones(p) if unit is None else np.asarray(unit, float)
        # The standardisation's centre, for the statistics of rows given in
        # the data's units (statistics_of).
        self.center = center
        self._start = start

    def start(self):
        return self._start

    def e_step(self, params):
        return self.evaluate(params)

    def statistics_of(self, X, params):
        """:class:`MixtureStatistics` of the rows X (data units) at the
        standardised ``params``; they add over blocks (the E-step of a
        distributed fit), None when a covariance is not positive definite."""
        if self.center is None:
            raise NotImplementedError("MixtureModel without its centre")
        try:
            return block_statistics(X, self.center, self.unit, params)
        except np.linalg.LinAlgError:
            return None

    def m_step(self, params, stats):
        return mixture_m_step(
            stats, self.ridge, self.prior_scatter, self.covariance_type, self.unit
        )

    def log_prior(self, params):
        shared = params.covariances[:1] if self.covariance_type == "tied" else None
        return sum(
            normal_log_prior(S, self.prior_scatter, self.ridge)
            for S in (params.covariances if shared is None else shared)
        )

    def change(self, old, new):
        """The largest change of a weight, a mean or a covariance entry on
        the standardised scale: the stopping rule's measure.  (Not of the
        unconstrained vector: a superfluous component's weight decays
        geometrically, so its log-odds move by a constant step for ever.)"""
        return float(
            max(
                np.max(np.abs(new.weights - old.weights)),
                np.max(np.abs(new.means - old.means)),
                np.max(np.abs(new.covariances - old.covariances)),
            )
        )

    def to_vector(self, params):
        """Unconstrained, the type's free parameters only: the log-odds of
        each weight against the first's, the means, and the covariances'
        log-Cholesky entries ("full", "tied": one), log diagonals ("diag")
        or log variances ("spherical"), on the standardised scale."""
        logits = np.log(params.weights[1:] / params.weights[0])
        S = params.covariances
        if self.covariance_type == "full":
            shapes = [log_cholesky(c) for c in S]
        elif self.covariance_type == "tied":
            shapes = [log_cholesky(S[0])]
        elif self.covariance_type == "diag":
            shapes = [np.log(np.einsum("kii->ki", S)).ravel()]
        else:  # the variance in the data's units
            shapes = [np.log(S[:, 0, 0] * self.unit[0] ** 2)]
        return np.concatenate([logits, params.means.ravel(), *shapes])

    def from_vector(self, vector, like):
        K, p = like.means.shape
        logits = np.concatenate([[0.0], vector[: K - 1]])
        weights = np.exp(logits - logits.max())
        means = vector[K - 1 : K - 1 + K * p].reshape(K, p)
        rest = vector[K - 1 + K * p :]
        if self.covariance_type == "full":
            covariances = np.array(
                [from_log_cholesky(v, p) for v in rest.reshape(K, -1)]
            )
        elif self.covariance_type == "tied":
            covariances = np.broadcast_to(from_log_cholesky(rest, p), (K, p, p)).copy()
        elif self.covariance_type == "diag":
            variances = np.exp(rest).reshape(K, p)
            covariances = np.einsum("ki,ij->kij", variances, np.eye(p))
        else:
            variances = np.exp(rest)[:, None] / self.unit**2
            covariances = np.einsum("ki,ij->kij", variances, np.eye(p))
        return MixtureParams(weights / weights.sum(), means, covariances)


def _in_memory_statistics(Z):
    """``statistics(params)`` of the rows of Z with an observed cell (a row
    with none adds nothing to the likelihood; in the sums it would only
    repeat the current parameters)."""
    Z = Z[~np.isnan(Z).all(axis=1)]
    if _compiled.available():
        layout = MixtureLayout.of(Z)

        def statistics(params):
            found = compiled_statistics(layout, params)
            if found is None:
                return None
            resp_sum, row_sum, cross, loglik = found
            return MixtureStatistics(loglik, resp_sum, row_sum, cross)

        return statistics
    mask = np.isnan(Z)
    chunks = plan_chunks(mask, np.flatnonzero(mask.any(axis=1)))
    return lambda params: mixture_statistics(Z, params, chunks)


def block_statistics(X, center, unit, params):
    """:class:`MixtureStatistics` of a block of rows X (data units, NaN at
    missing cells) at the standardised ``params``, the block standardised
    by ``center`` and ``unit``; they add over blocks (a distributed
    E-step).

    Raises
    ------
    numpy.linalg.LinAlgError
        If a covariance is not positive definite.
    """
    found = _in_memory_statistics((np.asarray(X, float) - center) / unit)(params)
    if found is None:
        raise np.linalg.LinAlgError("a component's covariance is not positive definite")
    return found


def standardise(X):
    """(Z, center, unit): X centred by its observed column means and divided
    by the standardising scale of :mod:`emimpute.utils._scale`."""
    _, center, scale, _, _ = observed_column_moments(X)
    unit = standardising_scale(scale)
    return (X - center) / unit, center, unit


def to_data_units(params, center, unit):
    """Standardised parameters in the data's units."""
    return MixtureParams(
        params.weights,
        params.means * unit + center,
        params.covariances * np.outer(unit, unit),
    )


def to_standard_units(params, center, unit):
    """Inverse of :func:`to_data_units`."""
    return MixtureParams(
        params.weights,
        (params.means - center) / unit,
        params.covariances / np.outer(unit, unit),
    )


# ---------------------------------------------------------------------------
# Starting values and the fit


def start_fill(Z, ridge=0.0):
    """Z with its missing cells at their conditional means under one normal
    fitted by EM: the rows the starts are computed from.

    The column means would put every incomplete row at the centre of its
    missing coordinates, so that k-means groups rows by their pattern of
    missing cells as much as by their values; the normal model's
    regression fill keeps them near their own cluster when the columns are
    correlated.  A start needs no precise fit (100 iterations at most, tol
    1e-4, one pseudo-observation of prior at least); where the normal fit
    fails, the column means.  A column with nothing observed in Z (a block
    of a distributed data set) keeps 0, the standardised scale's centre."""
    if not np.isnan(Z).any():
        return Z
    filled = np.nan_to_num(Z)  # 0: the column's observed mean
    seen = ~np.isnan(Z).all(axis=0)
    try:
        fit = fit_normal_em(Z[:, seen], ridge=max(ridge, 1.0), max_iter=100, tol=1e-4)
        moments = conditional_moments(Z[:, seen], fit.mean, fit.covariance)
    except (SingularCovarianceError, np.linalg.LinAlgError):
        return filled
    filled[:, seen] = moments.completed
    return filled


def initial_params(
    Z, n_components, method, rng, ridge, covariance_type="full", unit=None,
    filled=None,
):  # fmt: skip
    """Starting parameters on the standardised data Z: the weighted normal
    update from hard (``"kmeans"``: k-means++ and Lloyd's iterations,
    scipy's ``kmeans2``) or random (``"random"``: uniform responsibilities
    normalised per row) responsibilities, as scikit-learn's
    ``GaussianMixture`` starts, on the rows completed by
    :func:`start_fill` (``filled``, computed when not given)."""
    if filled is None:
        filled = start_fill(Z, ridge)
    n = len(Z)
    if method == "kmeans":
        with warnings.catch_warnings():
            # An empty cluster: that component starts from the prior alone.
            warnings.filterwarnings("ignore", message="One of the clusters is empty")
            _, labels = kmeans2(filled, n_components, minit="++", seed=rng)
        resp = np.zeros((n, n_components))
        resp[np.arange(n), labels] = 1.0
    else:
        resp = rng.uniform(size=(n, n_components))
        resp /= resp.sum(axis=1, keepdims=True)
    stats = MixtureStatistics(
        loglik=0.0,
        resp_sum=resp.sum(axis=0),
        row_sum=resp.T @ filled,
        cross=np.einsum("nk,ni,nj->kij", resp, filled, filled),
    )
    # At least one pseudo-row of the prior: a start from a cluster of one
    # row (or of rows equal after the fill) must be positive definite.
    prior = np.eye(Z.shape[1])
    return mixture_m_step(stats, max(ridge, 1.0), prior, covariance_type, unit)


@dataclass(frozen=True)
class MixtureResult:
    """A fitted mixture in the data's units, with the run's record."""

    params: MixtureParams
    loglik: float
    loglik_path: np.ndarray
    n_iter: int
    converged: bool
    lower_bound: float

    @property
    def dispersion(self):
        """The mixture's total covariance (what the automatic ridge checks
        for collinear columns)."""
        w, mu, S = self.params.weights, self.params.means, self.params.covariances
        mean = w @ mu
        second = np.einsum("k,kij->ij", w, S + np.einsum("ki,kj->kij", mu, mu))
        return second - np.outer(mean, mean)

    covariance = dispersion


def fit_mixture_em(
    X, n_components, *, covariance_type="full", ridge=0.0, max_iter=500,
    tol=1e-6, accelerate=True, n_init=1, init_params="kmeans", rng,
    callback=None,
):  # fmt: skip
    """Maximum likelihood (with ``ridge``: posterior mode) of a mixture of
    ``n_components`` normals with full covariances from incomplete rows.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        NaN at missing cells; every column with an observed value.
    n_components : int
    covariance_type : {"full", "diag", "spherical", "tied"}
        See :func:`mixture_m_step`.
    ridge : float
        Prior strength per component, in pseudo-observations.
    max_iter, tol, accelerate
        As :func:`emimpute.engine._driver.run_em` (SQUAREM on the
        unconstrained vector of :meth:`MixtureModel.to_vector`, or plain
        EM).
    n_init : int
        Starts; the best objective is kept.
    init_params : {"kmeans", "random"}
    rng : numpy.random.Generator
    callback : callable, optional

    Returns
    -------
    MixtureResult

    Raises
    ------
    SingularCovarianceError
        If a component's covariance becomes singular in every start.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-3, 1, (200, 2)), rng.normal(3, 1, (200, 2))])
    >>> X[rng.random(X.shape) < 0.2] = np.nan
    >>> fit = fit_mixture_em(X, 2, rng=rng)
    >>> np.round(np.sort(fit.params.means[:, 0]))
    array([-3.,  3.])
    """
    Z, center, unit = standardise(X)
    filled = start_fill(Z, ridge)
    starts = [
        initial_params(
            Z, n_components, init_params, rng, ridge, covariance_type, unit, filled
        )
        for _ in range(n_init)
    ]
    return fit_mixture_from(
        _in_memory_statistics(Z), starts, center=center, unit=unit,
        counts=np.sum(~np.isnan(X), axis=0), ridge=ridge,
        covariance_type=covariance_type, max_iter=max_iter, tol=tol,
        accelerate=accelerate, callback=callback,
    )  # fmt: skip


def fit_mixture_from(
    evaluate, starts, *, center, unit, counts, ridge, covariance_type, max_iter,
    tol, accelerate, callback=None,
):  # fmt: skip
    """EM from each of ``starts`` (standardised parameters) with the E-step
    ``evaluate(params)``; the fit of highest objective, in the data's units
    (``center``, ``unit``: the standardisation; ``counts``: the observed
    cells per column, for the log-likelihood in the data's units).  The
    in-memory fit and the distributed one (:mod:`emimpute.dask`) both end
    here.

    Raises
    ------
    SingularCovarianceError
        If a component's covariance becomes singular from every start.
    """
    from emimpute.engine._driver import run_em
    from emimpute.engine._model import SingularCovarianceError

    best, error = None, None
    for start in starts:
        model = MixtureModel(
            None, start, ridge, covariance_type, unit, evaluate=evaluate
        )
        try:
            run = run_em(
                model, max_iter=max_iter, tol=tol, accelerate=accelerate,
                callback=callback,
            )  # fmt: skip
        except SingularCovarianceError as raised:
            error = raised
            continue
        if best is None or run.value > best.value:
            best = run
    if best is None:
        raise error
    # The log-likelihood in the data's units: the standardised densities
    # divided by the Jacobian of the scaling of each observed cell.
    shift = float(np.sum(np.log(unit) * counts))
    return MixtureResult(
        params=to_data_units(best.params, center, unit),
        loglik=best.loglik - shift,
        loglik_path=np.asarray(best.path) - shift,
        n_iter=best.n_iter,
        converged=best.converged,
        lower_bound=best.value - shift,
    )


# ---------------------------------------------------------------------------
# What a fitted mixture says about rows


@dataclass(frozen=True)
class MixtureConditional:
    """Per row: the responsibilities (n, K) given the observed cells, the
    completed rows (n, p; conditional means, or draws), the conditional
    variances (n, p; 0 at observed cells) and the log-likelihoods (n,)."""

    responsibilities: np.ndarray
    completed: np.ndarray
    variance: np.ndarray
    loglik: np.ndarray


def mixture_conditional(X, params, *, rng=None, want_variance=False):
    """:class:`MixtureConditional` of the rows of X (data units, NaN at
    missing cells) under the fitted ``params`` (its ``variance`` None
    unless ``want_variance``).

    The mean of a missing cell is sum_k tau_ik c_ik, its variance (law of
    total variance) sum_k tau_ik (C_ik,jj + c_ik,j^2) - mean^2; a draw
    (``rng``, a RandomState) takes a component from the responsibilities,
    then the cells from that component's conditional normal.
    """
    if rng is None and not want_variance and _compiled.available():
        tau, completed, row_loglik = compiled_conditional(X, params)
        return MixtureConditional(tau, completed, None, row_loglik)
    mask = np.isnan(X)
    chunks = plan_chunks(mask, np.flatnonzero(mask.any(axis=1)))
    components = [
        component_moments(X, mu, S, chunks)
        for mu, S in zip(params.means, params.covariances, strict=True)
    ]
    log_tau, row_loglik = log_responsibilities(
        np.array([c.loglik for c in components]), params.weights
    )
    tau = np.exp(log_tau)
    means = np.einsum("nk,knp->np", tau, np.array([c.completed for c in components]))
    variance = None
    if want_variance:
        variance = _total_variance(components, tau, means, chunks, mask)
    completed = means
    if rng is not None:
        cumulative = np.cumsum(tau, axis=1)
        u = rng.uniform(size=(len(X), 1))
        chosen = np.minimum((u > cumulative).sum(axis=1), len(params.weights) - 1)
        completed = np.array(X, dtype=np.float64)
        for k in range(len(params.weights)):
            rows = chosen == k
            if rows.any():
                sub = X[rows]
                sub_mask = np.isnan(sub)
                sub_chunks = plan_chunks(sub_mask, np.flatnonzero(sub_mask.any(axis=1)))
                drawn = component_moments(
                    sub, params.means[k], params.covariances[k], sub_chunks, rng=rng
                )
                completed[rows] = drawn.completed
    completed = np.where(mask, completed, X)
    return MixtureConditional(tau, completed, variance, row_loglik)


def _total_variance(components, tau, means, chunks, mask):
    """Each missing cell's variance over the mixture, sum_k tau_ik (C_ik,jj
    + c_ik,j^2) - mean^2 (0 at observed cells)."""
    second = np.zeros_like(means)
    for k, component in enumerate(components):
        within = np.zeros_like(means)  # diag(C_ik) at the missing cells
        for chunk, W in zip(chunks, component.factors, strict=True):
            within[chunk.rows[None, :], chunk.missing] = np.einsum("lan,lan->an", W, W)
        second += tau[:, [k]] * (within + component.completed**2)
    return np.where(mask, np.maximum(second - means**2, 0.0), 0.0)
