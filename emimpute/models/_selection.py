"""EM for a normal data model times a selection model (statistical kernel).

The model (the selection-model factorisation of Little & Rubin 2002, sec.
15.3): rows x ~ N(mu, S); for each column j with a missingness model,

    P(x_j missing | x) = F(alpha_j + psi_j x_j + gamma_j' x_c),

F the probit or logistic link, x_c the covariates: the columns that are
never missing (so that the model is missing at random when psi_j = 0, and
then the normal part is exactly EMImputer's), psi_j the MNAR coefficient.
Columns without a model are missing at random.

E-step.  Given its observed cells, a row's missing cells are N(c, C) from
the data model (:mod:`emimpute.gaussian._conditional`).  Of them, the MNAR ones, y,
are reweighted by the chance of being missing:

    f(y | x_o, missing) ~ N(y; c_J, C_JJ) prod_j F(alpha_j + psi_j y_j + ...),

and the other missing cells are normal given (x_o, y).  The expectation
over y uses nodes: Gauss-Hermite for one MNAR cell per row (exact to about
1e-10, the node count growing with the steepness psi s, see
:mod:`emimpute.models._selection_cell`), a product Gauss-Hermite grid for two, and a
scrambled Sobol sample (fixed for the fit, so the fit is deterministic given
``random_state``) for more; each node carries a posterior weight (the
"method of weights", Ibrahim 1990; Ibrahim, Lipsitz & Chen 1999).

M-step.  The normal part from the weighted expected sufficient statistics;
each selection model by a weighted binary regression of "is missing" on
(1, x_j, x_c) over the rows, a missing x_j entering as its weighted nodes
(:func:`emimpute.models._binary_glm.fit_binary_glm`), psi_j held fixed through an
offset when given.

Starting values.  The likelihood of a selection model can have more than
one mode in psi (on Mroz's wage data, Heckman's model has one near psi = 0.1
and a higher one near 1.2).  The fit first runs a few EM iterations with
each free psi held at -1, 0 and 1 (per standard deviation of its column),
then frees psi from the best of them.

Everything is computed on the standardised scale (observed column means and
standard deviations) and converted back at the end.

References
----------
Heckman, J. J. (1979). Sample selection bias as a specification error.
*Econometrica* 47, 153-161.
Ibrahim, J. G. (1990). Incomplete data in generalized linear models. *JASA*
85, 765-769.
Ibrahim, J. G., Lipsitz, S. R. & Chen, M.-H. (1999). Missing covariates in
generalized linear models when the missing data mechanism is non-ignorable.
*JRSS-B* 61, 173-190.
Little, R. J. A. & Rubin, D. B. (2002). *Statistical Analysis with Missing
Data*, 2nd ed., ch. 15.
"""

from dataclasses import dataclass, replace

import numpy as np
from scipy import special, stats

from emimpute.engine._driver import best_start, run_em
from emimpute.engine._model import EMModel, Statistics
from emimpute.engine._squarem import from_log_cholesky, log_cholesky
from emimpute.gaussian._conditional import (
    LOG_2PI,
    Chunk,
    chunk_moments,
    conditional_moments,
    precision_and_logdet,
)
from emimpute.models._binary_glm import fit_binary_glm, log_probabilities
from emimpute.models._normal import (
    fit_normal_em,
    log_prior,
    m_step,
    observed_column_moments,
)
from emimpute.models._selection_cell import gauss_hermite, gauss_hermite_size

# Nodes per dimension of the product Gauss-Hermite grid for two MNAR cells.
GRID_NODES_2D = 24
# Sobol points for three or more MNAR cells in one row (a power of two).
SOBOL_POINTS = 512
# Starting values of each free psi (per standard deviation of its column),
# each refined by a short fit with psi held, the best one then freed.
PSI_STARTS = (-1.0, 0.0, 1.0)
START_ITER, START_TOL = 5, 1e-4


@dataclass(frozen=True)
class SelectionEMResult:
    """Outcome of :func:`fit_selection_em`, in the data's own units.

    ``intercept[i]``, ``psi[i]`` and ``gamma[i]`` belong to the missingness
    model of column ``mnar[i]``; ``gamma`` has one column per covariate, in
    the order of ``covariates`` (column indices).
    """

    mean: np.ndarray
    covariance: np.ndarray
    mnar: np.ndarray
    covariates: np.ndarray
    intercept: np.ndarray
    psi: np.ndarray
    gamma: np.ndarray
    psi_fixed: np.ndarray  # bool, per MNAR column
    link: str
    center: np.ndarray  # the standardisation (observed means and sds)
    scale: np.ndarray
    standardised: tuple  # (mean, covariance, _Coefficients) on that scale
    loglik: float
    loglik_path: np.ndarray
    n_iter: int
    converged: bool


@dataclass
class _Group:
    """Incomplete rows with k missing cells of which k_J have a model."""

    chunk: Chunk  # rows and their missing columns (k, n)
    mnar_slots: np.ndarray  # (n, k_J) which of the k missing cells have a model
    other_slots: np.ndarray  # (n, k - k_J)
    models: np.ndarray  # (n, k_J) index into `mnar` of those cells' models


def _groups(mask, mnar):
    """Incomplete rows grouped by (k, k_J); missing columns increasing."""
    is_model = np.zeros(mask.shape[1], dtype=bool)
    is_model[mnar] = True
    model_of = np.full(mask.shape[1], -1)
    model_of[mnar] = np.arange(len(mnar))
    k = mask.sum(axis=1)
    k_J = mask[:, is_model].sum(axis=1)
    groups = []
    for key in np.unique(k[k > 0] * (mask.shape[1] + 1) + k_J[k > 0]):
        k_g, kJ_g = divmod(int(key), mask.shape[1] + 1)
        rows = np.flatnonzero((k == k_g) & (k_J == kJ_g))
        cols = np.nonzero(mask[rows])[1].reshape(len(rows), k_g)
        flags = is_model[cols]  # (n, k)
        order = np.argsort(~flags, axis=1, kind="stable")  # model cells first
        groups.append(
            _Group(
                Chunk(rows, np.ascontiguousarray(cols.T)),
                order[:, :kJ_g],
                order[:, kJ_g:],
                model_of[np.take_along_axis(cols, order[:, :kJ_g], axis=1)],
            )
        )
    return groups


def _standard_nodes(dim, steepness, sobol):
    """Nodes z (Q, dim) of N(0, I) and their log weights (Q,)."""
    if dim == 1:
        t, log_w = gauss_hermite(gauss_hermite_size(steepness))
        return np.sqrt(2.0) * t[:, None], log_w - 0.5 * np.log(np.pi)
    if dim == 2:
        t, log_w = gauss_hermite(GRID_NODES_2D)
        z = np.sqrt(2.0) * np.stack(np.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
        lw = (log_w[:, None] + log_w[None, :]).ravel() - np.log(np.pi)
        return z, lw
    return sobol[dim], np.full(len(sobol[dim]), -np.log(len(sobol[dim])))


@dataclass
class _Coefficients:
    """Selection coefficients on the standardised scale, one row per model."""

    intercept: np.ndarray
    psi: np.ndarray
    gamma: np.ndarray  # (n_models, n_covariates)


@dataclass(frozen=True)
class SelectionParams:
    """Normal data model and selection coefficients (standardised scale)."""

    mean: np.ndarray
    covariance: np.ndarray
    coef: _Coefficients


@dataclass(frozen=True)
class SelectionStatistics(Statistics):
    """Expected sums for the normal part (``row_sum``, ``cross``) and, per
    selection model, its pseudo-rows ``(values, rows, weights, outcome)``:
    the x_j values entering it, the row each comes from (for its
    covariates), their weights and whether x_j is missing.  Blocks add by
    concatenating their pseudo-rows."""

    row_sum: np.ndarray
    cross: np.ndarray
    pseudo: tuple

    def __add__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        pseudo = tuple(
            tuple(np.concatenate([a, b]) for a, b in zip(mine, theirs, strict=True))
            for mine, theirs in zip(self.pseudo, other.pseudo, strict=True)
        )
        return SelectionStatistics(
            self.loglik + other.loglik,
            self.row_sum + other.row_sum,
            self.cross + other.cross,
            pseudo,
        )


class SelectionModel(EMModel):
    """The normal data model times the selection models, on standardised
    data ``Z``, with the MNAR coefficients psi held where ``held``."""

    singular_message = (
        "the covariance estimate became singular; use a ridge prior (ridge > 0)"
    )

    def __init__(self, Z, mask, groups, mnar, covariates, *, link, held, ridge, sobol):
        self.Z, self.mask, self.groups = Z, mask, groups
        self.mnar, self.covariates = mnar, covariates
        self.link, self.held, self.ridge, self.sobol = link, held, ridge, sobol
        self.prior = np.eye(Z.shape[1])

    def holding(self, held):
        """The same model with psi held where ``held``."""
        return SelectionModel(
            self.Z,
            self.mask,
            self.groups,
            self.mnar,
            self.covariates,
            link=self.link,
            held=held,
            ridge=self.ridge,
            sobol=self.sobol,
        )

    def start(self):
        raise NotImplementedError("fit_selection_em chooses the starts")

    def e_step(self, params):
        try:
            return _e_step(
                self.Z,
                self.mask,
                self.groups,
                self.mnar,
                self.covariates,
                params.coef,
                self.link,
                params.mean,
                params.covariance,
                self.sobol,
            )
        except np.linalg.LinAlgError:  # a conditional covariance not PD
            return None

    def m_step(self, params, stats):
        mean, cov = m_step(
            stats.row_sum, stats.cross, self.Z.shape[0], self.prior, self.ridge
        )
        coef = _fit_models(
            self.Z, self.covariates, stats.pseudo, params.coef, self.held, self.link
        )
        return SelectionParams(mean, cov, coef)

    def log_prior(self, params):
        return log_prior(params.covariance, self.prior, self.ridge)

    def to_vector(self, params):
        return _to_vector(params, self.held)

    def from_vector(self, vector, like):
        return _from_vector(vector, like, self.held)


def _e_step(Z, mask, groups, mnar, covariates, coef, link, mean, cov, sobol):
    """Expected statistics, pseudo-rows for the selection fits, log-likelihood.

    Returns ``None`` if the covariance is not positive definite, else
    :class:`SelectionStatistics`.
    """
    try:
        precision, logdet_cov = precision_and_logdet(cov)
    except np.linalg.LinAlgError:
        return None
    n, p = Z.shape
    covariate_part = Z[:, covariates] @ coef.gamma.T  # (n, n_models)
    base = coef.intercept + covariate_part  # alpha_j + gamma_j' x_c, per row
    T1 = np.zeros(p)
    T2 = np.zeros((p, p))
    loglik = 0.0
    # Observed MNAR cells: log(1 - F) of their (fully observed) index.
    pseudo = []
    for i, j in enumerate(mnar):
        rows = np.flatnonzero(~mask[:, j])
        index = base[rows, i] + coef.psi[i] * Z[rows, j]
        loglik += log_probabilities(index, link)[1].sum()
        pseudo.append(
            [[Z[rows, j]], [rows], [np.ones(len(rows))], [np.zeros(len(rows), bool)]]
        )
    complete = np.flatnonzero(~mask.any(axis=1))
    d = Z[complete] - mean
    T1 += Z[complete].sum(axis=0)
    T2 += Z[complete].T @ Z[complete]
    quad = np.einsum("ij,ij->i", d, d @ precision)
    loglik += -0.5 * (len(complete) * (p * LOG_2PI + logdet_cov) + quad.sum())
    steepness = np.max(np.abs(coef.psi), initial=0.0)
    for group in groups:
        chunk = group.chunk
        block = Z[chunk.rows].copy()
        try:
            moments = chunk_moments(
                block, chunk, mean, precision, logdet_cov,
                want_cov_sum=False, want_factor=True,
            )  # fmt: skip
        except np.linalg.LinAlgError:
            return None
        loglik += moments.loglik.sum()
        W = moments.factor
        C = np.einsum("lan,lbn->nab", W, W)  # (n, k, k)
        cols = chunk.missing.T  # (n, k)
        c = np.take_along_axis(block, cols, axis=1)  # conditional means
        k_J = group.mnar_slots.shape[1]
        if k_J == 0:
            post_mean, post_cov = c, C
        else:
            post_mean, post_cov, extra = _reweight(
                group, c, C, base[chunk.rows], coef, link, steepness, sobol, pseudo
            )
            loglik += extra
        np.put_along_axis(block, cols, post_mean, axis=1)
        T1 += block.sum(axis=0)
        T2 += block.T @ block
        flat = (cols[:, :, None] * p + cols[:, None, :]).ravel()
        T2 += np.bincount(flat, weights=post_cov.ravel(), minlength=p * p).reshape(p, p)
    pseudo = tuple(tuple(np.concatenate(part) for part in parts) for parts in pseudo)
    return SelectionStatistics(float(loglik), T1, T2, pseudo)


def _mnar_first(group, c, C):
    """Each row's missing cells reordered with the MNAR ones first: the
    order, the conditional mean and the conditional covariance."""
    order = np.concatenate([group.mnar_slots, group.other_slots], axis=1)
    c_p = np.take_along_axis(c, order, axis=1)
    C_p = np.take_along_axis(
        np.take_along_axis(C, order[:, :, None], 1), order[:, None, :], 2
    )
    return order, c_p, C_p


def _reweight(group, c, C, base, coef, link, steepness, sobol, pseudo):
    """Posterior mean and covariance of the missing cells given "missing".

    Also appends the nodes of each MNAR cell to ``pseudo`` and returns the
    log of E[prod F] over the conditional normal (the rows' extra
    log-likelihood).
    """
    n, k = c.shape
    k_J = group.mnar_slots.shape[1]
    order, c_p, C_p = _mnar_first(group, c, C)
    C_JJ = C_p[:, :k_J, :k_J]
    L = np.linalg.cholesky(C_JJ)
    spread = np.sqrt(np.max(np.diagonal(C_JJ, axis1=1, axis2=2), initial=0.0))
    z, log_w = _standard_nodes(k_J, steepness * spread, sobol)
    y = c_p[:, None, :k_J] + np.einsum("nab,qb->nqa", L, z)  # (n, Q, k_J)
    log_weight = np.broadcast_to(log_w, y.shape[:2]).copy()
    models = group.models  # (n, k_J)
    rows_base = np.take_along_axis(base, models, axis=1)  # (n, k_J)
    index = rows_base[:, None, :] + coef.psi[models][:, None, :] * y
    log_weight += log_probabilities(index, link)[0].sum(axis=2)
    extra = special.logsumexp(log_weight, axis=1)
    weight = np.exp(log_weight - extra[:, None])  # posterior weights (n, Q)
    # The other missing cells are normal given y: regression on y.
    regression = np.linalg.solve(C_JJ, C_p[:, :k_J, :])  # (n, k_J, k)
    nodes = c_p[:, None, :] + np.einsum(
        "nqa,nak->nqk", y - c_p[:, None, :k_J], regression
    )
    mean_p = np.einsum("nq,nqk->nk", weight, nodes)
    centred = nodes - mean_p[:, None, :]
    cov_p = np.einsum("nq,nqa,nqb->nab", weight, centred, centred)
    cov_p += C_p - np.einsum("nak,nal->nkl", C_p[:, :k_J, :], regression)
    inverse = np.argsort(order, axis=1)
    post_mean = np.take_along_axis(mean_p, inverse, axis=1)
    post_cov = np.take_along_axis(
        np.take_along_axis(cov_p, inverse[:, :, None], 1), inverse[:, None, :], 2
    )
    rows = group.chunk.rows
    Q = y.shape[1]
    for a in range(k_J):
        for i in np.unique(models[:, a]):
            sel = np.flatnonzero(models[:, a] == i)
            parts = pseudo[i]
            parts[0].append(y[sel, :, a].ravel())
            parts[1].append(np.repeat(rows[sel], Q))
            parts[2].append(weight[sel].ravel())
            parts[3].append(np.ones(len(sel) * Q, bool))
    return post_mean, post_cov, float(extra.sum())


def _fit_models(Z, covariates, pseudo, coef, fixed, link, newton_steps=1):
    """The M-step of every selection model; returns new coefficients.

    One Newton step (with step halving, so the expected log-likelihood goes
    up) per EM iteration by default: a generalised EM step, as monotone as a
    full maximisation and much cheaper (Dempster, Laird & Rubin 1977, sec. 3).
    """
    new = _Coefficients(coef.intercept.copy(), coef.psi.copy(), coef.gamma.copy())
    for i, (values, rows, weights, outcome) in enumerate(pseudo):
        columns = [np.ones(len(values))]
        if not fixed[i]:
            columns.append(values)
        design = np.column_stack([*columns, Z[rows][:, covariates]])
        offset = coef.psi[i] * values if fixed[i] else 0.0
        start = np.concatenate(
            [[coef.intercept[i]], [] if fixed[i] else [coef.psi[i]], coef.gamma[i]]
        )
        fit = fit_binary_glm(
            design, outcome, weights, link=link, offset=offset, start=start,
            max_iter=newton_steps,
        )  # fmt: skip
        new.intercept[i] = fit.coef[0]
        if not fixed[i]:
            new.psi[i] = fit.coef[1]
        new.gamma[i] = fit.coef[1 if fixed[i] else 2 :]
    return new


def fit_selection_em(
    X,
    mnar,
    *,
    link="probit",
    psi=None,
    gamma=True,
    ridge=0.0,
    max_iter=500,
    tol=1e-6,
    accelerate=True,
    random_state=None,
    callback=None,
):
    """Fit the normal data model and the selection models by EM.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        NaN at missing cells.
    mnar : sequence of int
        Columns with a missingness model (each must have missing cells).
    link : {"probit", "logit"}
    psi : dict {column: float}, optional
        MNAR coefficients held fixed, in the data's units (per unit of the
        column); the others are estimated.
    gamma : bool, default=True
        Whether the missingness models include the never-missing columns.
    ridge : float, default=0.0
        Ridge prior on the covariance, as in
        :func:`emimpute.models._normal.fit_normal_em`.
    max_iter, tol : int and float
        Stop when the relative change of the log-likelihood and the largest
        change of the parameters (standardised scale) are below ``tol``.
    accelerate : bool, default=True
        SQUAREM (Varadhan & Roland 2008) on the unconstrained parameters
        (means, log-Cholesky factor, selection coefficients), falling back
        to the plain EM step whenever an extrapolation lowers the
        log-likelihood, as in :func:`emimpute.models._normal.fit_normal_em`.
    random_state : numpy.random.RandomState, optional
        Seeds the Sobol nodes used for rows with three or more MNAR cells.
    callback : callable, optional
        ``callback(iteration, loglik, change)`` after each iteration.

    Returns
    -------
    SelectionEMResult
    """
    X = np.asarray(X, dtype=np.float64)
    mnar = np.asarray(mnar, dtype=int)
    mask = np.isnan(X)
    n, p = X.shape
    _, center, scale, _, _ = observed_column_moments(X)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    Z = (X - center) / scale
    covariates = np.flatnonzero(~mask.any(axis=0)) if gamma else np.array([], int)
    fixed = np.zeros(len(mnar), bool)
    coef = _Coefficients(np.zeros(len(mnar)), np.zeros(len(mnar)),
                         np.zeros((len(mnar), len(covariates))))  # fmt: skip
    for i, j in enumerate(mnar):
        if psi is not None and j in psi:
            fixed[i] = True
            coef.psi[i] = psi[j] * scale[j]  # per standard deviation
    groups = _groups(mask, mnar)
    sobol = {}
    for dim in {g.mnar_slots.shape[1] for g in groups} - {0, 1, 2}:
        engine = stats.qmc.Sobol(dim, scramble=True, seed=random_state)
        sobol[dim] = stats.norm.ppf(engine.random(SOBOL_POINTS))
    # Start: the MAR fit, and each model fitted at psi as given (0 or fixed).
    start = fit_normal_em(Z, ridge=ridge, tol=min(tol, 1e-6))
    model = SelectionModel(Z, mask, groups, mnar, covariates, link=link,
                           held=fixed, ridge=ridge, sobol=sobol)  # fmt: skip
    all_held = np.ones_like(fixed)
    params = SelectionParams(start.mean, start.covariance, coef)
    first = model.e_step(params)
    coef = _fit_models(
        Z, covariates, first.pseudo, coef, all_held, link, newton_steps=100
    )
    params = SelectionParams(start.mean, start.covariance, coef)
    if not fixed.all():
        # The likelihood of selection models can have several modes in psi
        # (Heckman's among them): start from the best of short fits with
        # psi held at a few values (per standard deviation of the column).
        held_model = model.holding(all_held)
        candidates = [
            (
                held_model,
                replace(
                    params,
                    coef=_Coefficients(
                        coef.intercept.copy(),
                        np.where(fixed, coef.psi, value),
                        coef.gamma.copy(),
                    ),
                ),
            )
            for value in PSI_STARTS
        ]
        params = best_start(
            candidates, max_iter=START_ITER, tol=START_TOL, accelerate=accelerate
        ).params
    fit = run_em(
        model,
        params,
        max_iter=max_iter,
        tol=tol,
        accelerate=accelerate,
        callback=callback,
    )
    mean, cov, coef = fit.params.mean, fit.params.covariance, fit.params.coef
    # Back to the data's units.  index = a + psi z_j + g' z_c with
    # z = (x - center) / scale.
    c_scale = scale[covariates]
    psi_units = coef.psi / scale[mnar]
    gamma_units = coef.gamma / c_scale
    intercept = (
        coef.intercept - psi_units * center[mnar] - gamma_units @ center[covariates]
    )
    return SelectionEMResult(
        mean=center + scale * mean,
        covariance=cov * np.outer(scale, scale),
        mnar=mnar,
        covariates=covariates,
        intercept=intercept,
        psi=psi_units,
        gamma=gamma_units,
        psi_fixed=fixed,
        link=link,
        center=center,
        scale=scale,
        standardised=(mean, cov, coef),
        loglik=fit.loglik - n_observed_log_scale(mask, scale),
        loglik_path=np.asarray(fit.path) - n_observed_log_scale(mask, scale),
        n_iter=fit.n_iter,
        converged=fit.converged,
    )


def _to_vector(params, fixed):
    """Parameters as one unconstrained vector (standardised scale)."""
    mean, cov, coef = params.mean, params.covariance, params.coef
    return np.concatenate(
        [mean, log_cholesky(cov), coef.intercept, coef.psi[~fixed], coef.gamma.ravel()]
    )


def _from_vector(vector, like, fixed):
    mean, coef = like.mean, like.coef
    p = len(mean)
    n_chol = p * (p + 1) // 2
    rest = vector[p + n_chol :]
    m = len(coef.intercept)
    n_free = int((~fixed).sum())
    psi = coef.psi.copy()
    psi[~fixed] = rest[m : m + n_free]
    new = _Coefficients(
        rest[:m].copy(), psi, rest[m + n_free :].reshape(coef.gamma.shape).copy()
    )
    return SelectionParams(vector[:p].copy(), from_log_cholesky(vector[p:], p), new)


def n_observed_log_scale(mask, scale):
    """Jacobian of standardising: sum over observed cells of log(scale)."""
    return float(((~mask) * np.log(scale)).sum())


# ---------------------------------------------------------------------------
# Imputation with fitted parameters


CANDIDATES = 256  # candidates per row for sampling-importance-resampling


def impute_selection(X, result, *, rng=None):
    """Impute the missing cells of X given the fitted selection model.

    Each missing cell gets its conditional mean given the row's observed
    cells *and* its missingness (the reweighted distribution of the E-step),
    or, with ``rng``, a draw from that distribution: the MNAR cells by
    sampling-importance-resampling (``CANDIDATES`` draws from their
    conditional normal, one kept with probability proportional to the
    chance of being missing), the other missing cells from their normal
    distribution given the kept values.

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
    """
    mean, cov, coef = result.standardised
    Z = (np.asarray(X, dtype=np.float64) - result.center) / result.scale
    mask = np.isnan(Z)
    precision, logdet_cov = precision_and_logdet(cov)
    covariate_gaps = _impute_covariates_under_mar(Z, mask, result, rng)
    if rng is not None:
        mask = np.isnan(Z)  # the drawn covariates are now conditioned on
    base = coef.intercept + covariate_gaps.filled @ coef.gamma.T
    steepness = np.max(np.abs(coef.psi), initial=0.0)
    sobol = {}
    out = Z.copy()
    for group in _groups(mask, result.mnar):
        chunk = group.chunk
        block = Z[chunk.rows].copy()
        moments = chunk_moments(
            block, chunk, mean, precision, logdet_cov,
            want_cov_sum=False, want_factor=True,
        )  # fmt: skip
        W = moments.factor
        C = np.einsum("lan,lbn->nab", W, W)
        cols = chunk.missing.T
        c = np.take_along_axis(block, cols, axis=1)
        k_J = group.mnar_slots.shape[1]
        if rng is not None:
            values = _draw(group, c, C, base[chunk.rows], coef, result.link, rng)
        elif k_J == 0:
            values = c
        else:
            if k_J > 2 and k_J not in sobol:
                engine = stats.qmc.Sobol(k_J, scramble=True, seed=0)
                sobol[k_J] = stats.norm.ppf(engine.random(SOBOL_POINTS))
            values = _reweight(
                group, c, C, base[chunk.rows], coef, result.link, steepness, sobol,
                [[[], [], [], []] for _ in result.mnar],
            )[0]  # fmt: skip
        np.put_along_axis(block, cols, values, axis=1)
        out[chunk.rows] = block
    # Covariate cells keep their MAR value (the regression on the MNAR
    # cells' reweighted values would move them; the selection models say
    # nothing about why a covariate is missing).
    rows, columns = covariate_gaps.cells
    out[rows, columns] = covariate_gaps.filled[rows, covariate_gaps.slots]
    # Observed cells are copied, not round-tripped through the scaling.
    completed = np.array(X, dtype=np.float64)
    missing = np.isnan(completed)
    completed[missing] = (result.center + result.scale * out)[missing]
    return completed


@dataclass
class _CovariateGaps:
    """Covariate values for the selection index, missing ones imputed."""

    filled: np.ndarray  # (n, n_covariates), standardised scale
    cells: tuple  # (rows, columns) of the imputed covariate cells in X
    slots: np.ndarray  # position of each of those columns among covariates


def _impute_covariates_under_mar(Z, mask, result, rng):
    """Fill missing covariate cells from the normal part given each row's
    observed cells (mean, or a draw with ``rng``); with ``rng`` the draws
    are also written into ``Z``."""
    covariates = result.covariates
    filled = Z[:, covariates].copy()
    gaps = mask[:, covariates]
    rows = np.flatnonzero(gaps.any(axis=1))
    if len(rows):
        mean, cov, _ = result.standardised
        completed = conditional_moments(Z[rows], mean, cov, rng=rng).completed
        filled[rows] = np.where(gaps[rows], completed[:, covariates], filled[rows])
    gap_rows, slots = np.nonzero(gaps)
    if rng is not None:
        Z[gap_rows, covariates[slots]] = filled[gap_rows, slots]
    return _CovariateGaps(filled, (gap_rows, covariates[slots]), slots)


def _draw(group, c, C, base, coef, link, rng):
    """One draw per row of the missing cells given "missing" (see
    :func:`impute_selection`)."""
    n, k = c.shape
    k_J = group.mnar_slots.shape[1]
    order, c_p, C_p = _mnar_first(group, c, C)
    if k_J == 0:
        y = np.zeros((n, 0))
        residual_mean, residual_cov = c_p, C_p
    else:
        C_JJ = C_p[:, :k_J, :k_J]
        L = np.linalg.cholesky(C_JJ)
        z = rng.standard_normal((n, CANDIDATES, k_J))
        candidates = c_p[:, None, :k_J] + np.einsum("nab,nqb->nqa", L, z)
        models = group.models
        index = (
            np.take_along_axis(base, models, axis=1)[:, None, :]
            + coef.psi[models][:, None, :] * candidates
        )
        log_weight = log_probabilities(index, link)[0].sum(axis=2)
        weight = np.exp(log_weight - special.logsumexp(log_weight, axis=1)[:, None])
        picks = (weight.cumsum(axis=1) < rng.random_sample((n, 1))).sum(axis=1)
        y = candidates[np.arange(n), np.minimum(picks, CANDIDATES - 1)]
        regression = np.linalg.solve(C_JJ, C_p[:, :k_J, k_J:])  # (n, k_J, k - k_J)
        residual_mean = c_p[:, k_J:] + np.einsum(
            "na,nak->nk", y - c_p[:, :k_J], regression
        )
        residual_cov = C_p[:, k_J:, k_J:] - np.einsum(
            "nak,nal->nkl", C_p[:, :k_J, k_J:], regression
        )
    rest = residual_mean
    if k - k_J:
        L_rest = np.linalg.cholesky(residual_cov)
        rest = residual_mean + np.einsum(
            "nab,nb->na", L_rest, rng.standard_normal((n, k - k_J))
        )
    values_p = np.concatenate([y, rest], axis=1)
    return np.take_along_axis(values_p, np.argsort(order, axis=1), axis=1)
