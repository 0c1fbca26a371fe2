"""EM for a normal data model times a selection model (statistical kernel).

The model (the selection-model factorisation of Little & Rubin 2002, sec.
15.3): rows x ~ N(mu, S); for each column j with a missingness model,

    P(x_j missing | x) = F(alpha_j + psi_j x_j + gamma_j' x_c),

F the probit or logistic link, x_c the covariates: the columns that are
never missing (so that the model is missing at random when psi_j = 0, and
then the normal part is exactly EMImputer's), psi_j the MNAR coefficient.
Columns without a model are missing at random.

E-step.  Given its observed cells, a row's missing cells are N(c, C) from
the data model (:mod:`emimpute.gaussian._conditional`).  Of them, the MNAR
ones, y, are reweighted by the chance of being missing:

    f(y | x_o, missing) ~ N(y; c_J, C_JJ) prod_j F(alpha_j + psi_j y_j + ...),

and the other missing cells are normal given (x_o, y).  Under the probit
link the model is a latent normal threshold (:mod:`._selection_latent`):
for rows with at most ``ORTHANT_CELLS`` missing MNAR cells the moments are
closed-form truncated-normal ones, computed on rows grouped by pattern on
top of the normal model's compiled E-step (:mod:`._selection_patterns`).
The other rows, and every row under the logit link, take the expectation
over y by nodes: for one MNAR cell per row a rule placed for the row's own
selection curve (Gauss-Hermite when it is gentle, composite Gauss-Legendre
around its step when it is steep; exact to about 1e-11 whatever the slope,
see :mod:`emimpute.models._selection_cell`), a product Gauss-Hermite grid for
two (each axis sized by the slopes along it, 12-24 nodes), and a scrambled
Sobol sample (fixed for the fit, so the fit is deterministic given
``random_state``) for more (:mod:`._selection_nodes`, which also puts rows
of similar rule size into one array); each node carries a posterior weight
(the "method of weights", Ibrahim 1990; Ibrahim, Lipsitz & Chen 1999).  A
row's nodes depend on its own values and the parameters only, so the
statistics of a data set are the sum of those of its row blocks.

M-step.  The normal part from the weighted expected sufficient statistics.
Probit: each selection model by least squares of its latent u on (1, x_j,
x_c) from summed moments, with parameter expansion
(:func:`._selection_latent.fit_latent_probit`).  Logit: a weighted binary
regression of "is missing" on (1, x_j, x_c) over its pseudo-rows
(:class:`PseudoRows`: the observed cells, and the weighted nodes of the
missing ones; :func:`emimpute.models._binary_glm.fit_binary_glm`).  A psi_j
given by the user is held fixed.

Starting values.  The likelihood of a selection model can have more than
one mode in psi (on Mroz's wage data, Heckman's model has one near psi = 0.1
and a higher one near 1.2).  The fit first runs a few EM iterations with
each free psi held at -1, 0 and 1 (per standard deviation of its column),
then frees psi from the best of them
(:func:`emimpute.engine._driver.best_start`).

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

import copy
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from emimpute.engine._driver import best_start, run_em
from emimpute.engine._model import EMModel, Statistics
from emimpute.engine._squarem import from_log_cholesky, log_cholesky
from emimpute.gaussian._conditional import (
    Chunk,
    chunk_moments,
    conditional_moments,
    precision_and_logdet,
)
from emimpute.models._binary_glm import fit_binary_glm, log_cdf
from emimpute.models._normal import (
    NormalModel,
    e_step,
    fit_normal_em,
    log_prior,
    m_step,
    observed_column_moments,
    standardising_scale,
)
from emimpute.models._selection_latent import (
    CellMoments,
    LatentSums,
    add_missing_sums,
    add_observed_sums,
    fit_latent_probit,
    latent_posterior,
    node_cell_moments,
)
from emimpute.models._selection_nodes import NodeRule, grid_slopes, row_rules
from emimpute.models._selection_patterns import (
    PatternLayout,
    lay_out_patterns,
    pattern_terms,
)
from emimpute.models._selection_profile import run_searching_psi

# The slope psi s along an axis of a two-cell row's grid
# (:func:`._selection_nodes.grid_per_row`) above which its 24 nodes leave
# an error worth saying (the one-cell analogue, worst over indices up to
# 20: 1e-7 of log-likelihood per row at 1.5, 7e-6 at 2, 4e-4 at 3, 0.04 at
# 6): the fit then names the pair of columns in a warning.
STEEP_TWO_CELL_SLOPE = 2.0
# Under the probit link, rows with at most this many missing MNAR cells
# get closed-form truncated-normal moments (:mod:`_selection_latent`);
# rows with more, and every row under the logit link, use the nodes.
ORTHANT_CELLS = 3
# Starting values of each free psi (per standard deviation of its column),
# each refined by a short fit with psi held, the best one then freed.  Two
# iterations rank the starts as five did (Mroz's two modes, and 29 of 30
# random designs with the same optimum; the 30th ran off to PSI_LIMIT either
# way) at 40% of the cost: the start took half of a fit's time.
PSI_STARTS = (-1.0, 0.0, 1.0)
START_ITER, START_TOL = 2, 1e-4
# On more rows than twice this, the short fits that rank the psi starts run
# on every k-th row, about START_ROWS of them (a systematic sample; the
# ranking is a heuristic of where to start either way, and the full fit
# then climbs from the winner).  They took a quarter of a fit's time at
# 100,000 rows; the same optimum on the benchmark's designs.
START_ROWS = 20_000
# The largest |psi| per standard deviation of the column.  At 100 the chance
# of being missing goes from 0 to 1 within a tenth of a standard deviation:
# a free psi beyond it is running off to infinity (the missingness is a step
# function of the value and the likelihood has no finite maximum in psi), so
# the fit stops there instead of creeping on for max_iter iterations.
PSI_LIMIT = 100.0
# Newton steps of the selection models' first fit, at the MAR start.
START_NEWTON_STEPS = 100
# Posterior weights of a node (a row's sum to 1) below which it is left out
# of the logit M-step's pseudo-rows (see _node_pseudo_rows).
NEGLIGIBLE_WEIGHT = 1e-20
# Candidates per row for sampling-importance-resampling (draws).
CANDIDATES = 256


# ---------------------------------------------------------------------------
# Parameters, statistics, result


@dataclass(frozen=True)
class SelectionCoefficients:
    """Selection coefficients on the standardised scale, one entry (row of
    ``gamma``) per missingness model."""

    intercept: np.ndarray  # (n_models,)
    psi: np.ndarray  # (n_models,)
    gamma: np.ndarray  # (n_models, n_covariates)


@dataclass(frozen=True)
class SelectionParams:
    """Normal data model and selection coefficients (standardised scale)."""

    mean: np.ndarray
    covariance: np.ndarray
    coef: SelectionCoefficients


@dataclass(frozen=True)
class PseudoRows:
    """The data of one selection model's binary regression: each value of
    x_j entering it (an observed cell, or a node of a missing one), the
    covariates of its row, its weight and whether x_j is missing.  Row
    blocks add by concatenation (the regression sums over pseudo-rows, in
    any order)."""

    values: np.ndarray  # (m,)
    covariates: np.ndarray  # (m, n_covariates)
    weights: np.ndarray  # (m,)
    missing: np.ndarray  # (m,) bool

    def __add__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return PseudoRows.concatenate([self, other])

    @classmethod
    def concatenate(cls, parts):
        """The pseudo-rows of all ``parts`` (a non-empty sequence), in order."""
        return cls(
            np.concatenate([part.values for part in parts]),
            np.concatenate([part.covariates for part in parts]),
            np.concatenate([part.weights for part in parts]),
            np.concatenate([part.missing for part in parts]),
        )


@dataclass(frozen=True)
class SelectionStatistics(Statistics):
    """Expected sums for the normal part (``row_sum``, ``cross``, about 0 on
    the standardised scale) and, per selection model, the data of its
    M-step: :class:`~emimpute.models._selection_latent.LatentSums` under
    the probit link, :class:`PseudoRows` under the logit.  Blocks add: the
    sums add, the pseudo-rows concatenate."""

    row_sum: np.ndarray
    cross: np.ndarray
    selection: tuple  # of LatentSums or PseudoRows, one per selection model

    def __add__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return SelectionStatistics(
            self.loglik + other.loglik,
            self.row_sum + other.row_sum,
            self.cross + other.cross,
            tuple(a + b for a, b in zip(self.selection, other.selection, strict=True)),
        )


@dataclass(frozen=True)
class SelectionEMResult:
    """Outcome of :func:`fit_selection_em`, in the data's own units.

    ``intercept[i]``, ``psi[i]`` and ``gamma[i]`` belong to the missingness
    model of column ``mnar[i]``; ``gamma`` has one column per covariate, in
    the order of ``covariates`` (column indices).  ``standardised`` holds
    the same fit on the standardised scale (``center``, ``scale``), where
    imputation works; ``node_seed`` seeded the Sobol nodes of rows with
    three (logit) or four (probit) MNAR cells or more (imputation reuses
    it, so that it integrates with the fit's nodes).
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
    standardised: SelectionParams
    loglik: float
    loglik_path: np.ndarray
    n_iter: int
    converged: bool
    node_seed: int | None = None
    stopped: str | None = None  # why the fit stopped early, if it did
    # Pairs of MNAR columns (indices among the fit's columns) whose rows with
    # both missing were integrated approximately, with the steepest slope
    # (:func:`steep_two_cell_pairs`).
    steep_pairs: tuple = ()


# ---------------------------------------------------------------------------
# Rows laid out for the E-step


@dataclass(frozen=True)
class _Group:
    """Incomplete rows with k missing cells of which k_J have a model."""

    chunk: Chunk  # rows and their missing columns (k, n)
    mnar_slots: np.ndarray  # (n, k_J) which of the k missing cells have a model
    other_slots: np.ndarray  # (n, k - k_J)
    models: np.ndarray  # (n, k_J) index into `mnar` of those cells' models


@dataclass(frozen=True)
class _Rows:
    """A block of standardised rows and its layout, computed once.

    The rows without a missing MNAR cell are those of the normal model: their
    E-step is :func:`emimpute.models._normal.e_step` on ``plain`` (its
    compiled kernel, about ``center`` 0).  The ``groups`` hold the others.
    """

    Z: np.ndarray  # (n, p), NaN at missing cells
    mask: np.ndarray  # (n, p)
    patterns: PatternLayout  # the rows of the normal kernel
    groups: list  # of _Group, the rows integrated by nodes
    observed: list  # per model, (design, Gram matrix) of its observed cells


def _lay_out(Z, mnar, covariates, link):
    """The rows without a missing MNAR cell and, under the probit link, those
    with at most ``ORTHANT_CELLS`` of them (not entirely missing) go to the
    normal kernel (:mod:`_selection_patterns`); the others to the nodes."""
    mask = np.isnan(Z)
    k_J = mask[:, mnar].sum(axis=1)
    closed_form = k_J == 0
    if link == "probit":
        closed_form |= (k_J <= ORTHANT_CELLS) & ~mask.all(axis=1)
    patterns = lay_out_patterns(Z, mask, np.flatnonzero(closed_form), mnar, covariates)
    groups = _groups(mask, mnar, only=~closed_form)
    return _Rows(
        Z, mask, patterns, groups, _observed_designs(Z, mask, mnar, covariates)
    )


def _groups(mask, mnar, only=None):
    """Incomplete rows (of ``only``, a boolean mask of rows, if given)
    grouped by (k, k_J); missing columns increasing."""
    p = mask.shape[1]
    is_model = np.zeros(p, dtype=bool)
    is_model[mnar] = True
    model_of = np.full(p, -1)
    model_of[mnar] = np.arange(len(mnar))
    k = mask.sum(axis=1)
    if only is not None:
        k = np.where(only, k, 0)
    k_J = mask[:, is_model].sum(axis=1)
    groups = []
    for key in np.unique(k[k > 0] * (p + 1) + k_J[k > 0]):
        k_g, kJ_g = divmod(int(key), p + 1)
        rows = np.flatnonzero((k == k_g) & (k_J == kJ_g))
        cols = np.nonzero(mask[rows])[1].reshape(len(rows), k_g)
        order = np.argsort(~is_model[cols], axis=1, kind="stable")  # models first
        groups.append(
            _Group(
                Chunk(rows, np.ascontiguousarray(cols.T)),
                order[:, :kJ_g],
                order[:, kJ_g:],
                model_of[np.take_along_axis(cols, order[:, :kJ_g], axis=1)],
            )
        )
    return groups


# ---------------------------------------------------------------------------
# Arguments


def _check_held_psi(psi, mnar):
    """``psi`` is None or a dict {MNAR column index: value}: a list or a
    number was silently taken as "no psi held"."""
    if psi is None:
        return
    if not isinstance(psi, Mapping):
        raise TypeError(
            "psi must be None or a dict {column index: psi}, "
            f"got {type(psi).__name__}"
        )
    stray = sorted(set(psi) - set(mnar.tolist()))
    if stray:
        raise ValueError(
            f"psi is given for column(s) {stray}, which have no selection "
            f"model (the MNAR columns are {mnar.tolist()})"
        )


def _check_node_seed(random_state):
    """The Sobol seed as given: an int (reproducible) or None (fresh)."""
    if random_state is None or isinstance(random_state, numbers.Integral):
        return random_state
    raise TypeError(
        "random_state must be an int or None (the seed of the Sobol nodes), "
        f"got {type(random_state).__name__}"
    )


# ---------------------------------------------------------------------------
# E-step


@dataclass(frozen=True)
class _Conditional:
    """The conditional normal N(c, C) of one group's missing cells."""

    block: np.ndarray  # (n, p) the rows, missing cells set to c
    cols: np.ndarray  # (n, k) missing columns
    c: np.ndarray  # (n, k)
    C: np.ndarray  # (n, k, k)
    loglik: np.ndarray  # (n,) log-density of the observed cells


def _conditional(Z, group, mean, precision, logdet_cov):
    """N(c, C) of a group's missing cells given the observed ones.

    Raises ``numpy.linalg.LinAlgError`` if some C is not positive definite.
    """
    block = Z[group.chunk.rows].copy()
    moments = chunk_moments(
        block, group.chunk, mean, precision, logdet_cov,
        want_cov_sum=False, want_factor=True,
    )  # fmt: skip
    W = moments.factor
    C = np.einsum("lan,lbn->nab", W, W)  # C = W' W, (n, k, k)
    cols = group.chunk.missing.T
    c = np.take_along_axis(block, cols, axis=1)
    return _Conditional(block, cols, c, C, moments.loglik)


def _mnar_first(group, c, C):
    """Each row's missing cells reordered with the MNAR ones first: the
    order, the conditional mean and the conditional covariance."""
    order = np.concatenate([group.mnar_slots, group.other_slots], axis=1)
    c_p = np.take_along_axis(c, order, axis=1)
    C_p = np.take_along_axis(
        np.take_along_axis(C, order[:, :, None], 1), order[:, None, :], 2
    )
    return order, c_p, C_p


@dataclass(frozen=True)
class _Reweighted:
    """The missing cells of a group given "missing": moments, and the nodes
    of the MNAR cells with their posterior weights."""

    mean: np.ndarray  # (n, k) in the rows' order of missing cells
    cov: np.ndarray  # (n, k, k)
    log_prob: np.ndarray  # (n,) log E[prod F] over the conditional normal
    y: np.ndarray  # (n, Q, k_J) nodes of the MNAR cells
    weight: np.ndarray  # (n, Q) their posterior weights


def _selection_index(base, coef, models, y):
    """alpha + gamma' x_c + psi y of each MNAR cell (..., k_J) at values y
    (n, Q, k_J); ``base`` (n, n_models) holds alpha + gamma' x_c."""
    return (
        np.take_along_axis(base, models, axis=1)[:, None, :]
        + coef.psi[models][:, None, :] * y
    )


def _normalised(log_weight):
    """log sum_q exp(l_q) per row and the weights exp(l_q) / that sum, with
    one pass of exp (scipy's logsumexp, then exp again, took two)."""
    top = np.max(log_weight, axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)  # a row of -inf stays -inf
    weight = np.exp(log_weight - top)
    total = weight.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_total = np.log(total)
        weight /= total
    return (log_total + top)[:, 0], weight


def _reweight(group, cond, base, coef, link, nodes):
    """Posterior mean and covariance of a group's missing cells given
    "missing", by the nodes of its MNAR cells (placed per row, rows in
    buckets of similar rule size: :func:`._selection_nodes.row_rules`)."""
    k_J = group.mnar_slots.shape[1]
    order, c_p, C_p = _mnar_first(group, cond.c, cond.C)
    C_JJ = C_p[:, :k_J, :k_J]
    # The other missing cells are normal given y: regression on y.
    regression = np.linalg.solve(C_JJ, C_p[:, :k_J, :])  # (n, k_J, k)
    cov_p = C_p - C_p[:, :k_J, :].transpose(0, 2, 1) @ regression
    mean_p, log_prob = np.empty_like(c_p), np.empty(len(c_p))
    index = np.take_along_axis(base, group.models, axis=1)
    psi = coef.psi[group.models]
    buckets = list(row_rules(index, c_p[:, :k_J], C_JJ, psi, link, nodes))
    width = max(y.shape[1] for _, y, _ in buckets)
    y_all = np.repeat(c_p[:, None, :k_J], width, axis=1)
    weight_all = np.zeros((len(c_p), width))
    for rows, y, log_w in buckets:
        at_nodes = index[rows, None, :] + psi[rows, None, :] * y  # (n_b, Q, k_J)
        log_weight = log_w + log_cdf(at_nodes, link).sum(axis=2)
        log_prob[rows], weight = _normalised(log_weight)  # posterior weights
        # The other cells are affine in y (c + (y - c_J) R), so their
        # moments follow from y's: mean c + (E[y] - c_J) R, covariance
        # R' Cov[y] R; nothing of size k per node.
        y_mean = np.einsum("nq,nqj->nj", weight, y)
        centred = y - y_mean[:, None, :]
        y_cov = (centred * weight[:, :, None]).transpose(0, 2, 1) @ centred
        R = regression[rows]
        mean_p[rows] = c_p[rows] + np.einsum("nj,njk->nk", y_mean - c_p[rows, :k_J], R)
        cov_p[rows] += R.transpose(0, 2, 1) @ y_cov @ R
        y_all[rows, : y.shape[1]] = y
        weight_all[rows, : y.shape[1]] = weight
    post_mean, post_cov = _in_row_order(order, mean_p, cov_p)
    return _Reweighted(post_mean, post_cov, log_prob, y_all, weight_all)


def steep_two_cell_pairs(rows, params, mnar):
    """The pairs of MNAR columns (indices among the fit's columns) with a
    row where both are missing and a grid axis has a slope above
    ``STEEP_TWO_CELL_SLOPE`` at ``params`` (standardised), each with its
    steepest slope: where the E-step's grid integrates approximately.
    Empty for a row source without a layout in memory.

    Raises ``numpy.linalg.LinAlgError`` if a conditional covariance is not
    positive definite.
    """
    if not hasattr(rows, "groups"):
        return ()
    precision, logdet_cov = precision_and_logdet(params.covariance)
    steepest = {}
    for group in rows.groups:
        if group.mnar_slots.shape[1] != 2:
            continue
        cond = _conditional(rows.Z, group, params.mean, precision, logdet_cov)
        _, _, C_p = _mnar_first(group, cond.c, cond.C)
        L = np.linalg.cholesky(C_p[:, :2, :2])
        slope = np.maximum(*grid_slopes(L, np.abs(params.coef.psi[group.models])))
        steep = slope > STEEP_TWO_CELL_SLOPE
        pairs = np.sort(mnar[group.models[steep]], axis=1)
        for pair in np.unique(pairs, axis=0):  # pairs of columns, not rows
            at = np.all(pairs == pair, axis=1)
            key = (int(pair[0]), int(pair[1]))
            steepest[key] = max(steepest.get(key, 0.0), float(slope[steep][at].max()))
    return tuple((a, b, v) for (a, b), v in sorted(steepest.items()))


def _in_row_order(order, mean_p, cov_p):
    """Moments in the MNAR-first ``order`` of :func:`_mnar_first` back in
    the rows' order of missing cells."""
    inverse = np.argsort(order, axis=1)
    mean = np.take_along_axis(mean_p, inverse, axis=1)
    cov = np.take_along_axis(
        np.take_along_axis(cov_p, inverse[:, :, None], 1), inverse[:, None, :], 2
    )
    return mean, cov


@dataclass(frozen=True)
class _Posterior:
    """The missing cells of a group given "missing": their moments, the
    log-probability of the row's missingness given its observed cells, and
    what the M-step needs: the nodes (logit) or the MNAR cells' moments
    with their latent u (probit)."""

    mean: np.ndarray  # (n, k) in the rows' order of missing cells
    cov: np.ndarray  # (n, k, k)
    log_prob: np.ndarray  # (n,)
    nodes: _Reweighted | None
    cells: CellMoments | None


def _posterior(group, cond, base, coef, link, nodes):
    """:class:`_Posterior` of a group with missing MNAR cells: in closed
    form under the probit link for rows with at most ``ORTHANT_CELLS`` of
    them (:func:`~emimpute.models._selection_latent.latent_posterior`), by
    the nodes otherwise."""
    models = group.models
    if link == "probit" and models.shape[1] <= ORTHANT_CELLS:
        order, c_p, C_p = _mnar_first(group, cond.c, cond.C)
        index = np.take_along_axis(base, models, axis=1)
        latent = latent_posterior(c_p, C_p, index, coef.psi[models])
        mean, cov = _in_row_order(order, latent.mean, latent.cov)
        return _Posterior(mean, cov, latent.log_prob, None, latent.cells)
    reweighted = _reweight(group, cond, base, coef, link, nodes)
    cells = None
    if link == "probit":
        index = _selection_index(base, coef, models, reweighted.y)
        cells = node_cell_moments(reweighted.y, reweighted.weight, index)
    return _Posterior(
        reweighted.mean, reweighted.cov, reweighted.log_prob, reweighted, cells
    )


def _observed_designs(Z, mask, mnar, covariates):
    """Per model, the design (1, x_j, x_c) of the rows where x_j is observed
    and its Gram matrix: fixed data, so computed once."""
    designs = []
    for j in mnar:
        seen = np.flatnonzero(~mask[:, j])
        design = np.column_stack(
            [np.ones(len(seen)), Z[seen, j], Z[np.ix_(seen, covariates)]]
        )
        designs.append((design, design.T @ design))
    return designs


def _observed_terms(rows, coef, link):
    """Per model, the M-step data of its observed cells (probit: their
    :class:`LatentSums`; logit: a list of pseudo-rows, weight 1, not
    missing) and the sum of their log(1 - F(index))."""
    loglik, terms = 0.0, []
    for i, (design, gram) in enumerate(rows.observed):
        index = design @ np.r_[coef.intercept[i], coef.psi[i], coef.gamma[i]]
        if link == "probit":
            sums = LatentSums.zeros(design.shape[1] - 2)
            loglik += add_observed_sums(sums, design, gram, index)
            terms.append(sums)
            continue
        loglik += log_cdf(-index, link).sum()
        ones = np.ones(len(index))
        terms.append([PseudoRows(design[:, 1], design[:, 2:], ones, ones == 0)])
    return loglik, terms


def _add_missing_terms(models, posterior, covariate_values, terms):
    """Add to ``terms`` (per model) the M-step data of some rows' missing
    MNAR cells (``models`` and ``covariate_values``: theirs, a row each):
    their moments (probit) or weighted nodes (logit)."""
    for a in range(models.shape[1]):
        for i in np.unique(models[:, a]):
            sel = np.flatnonzero(models[:, a] == i)
            covariates = covariate_values[sel]
            if posterior.cells is not None:
                add_missing_sums(terms[i], covariates, posterior.cells, a, sel)
                continue
            terms[i].append(_node_pseudo_rows(posterior.nodes, sel, a, covariates))


def _node_pseudo_rows(nodes, sel, a, covariates):
    """The pseudo-rows of MNAR cell ``a`` of rows ``sel``: its nodes with
    their posterior weights, the nodes of negligible weight left out.

    A row's weights sum to 1, so a node below ``NEGLIGIBLE_WEIGHT`` adds
    less than that, relatively, to the binary regression's sums: far below
    rounding.  Most nodes of a row whose selection curve is steep carry no
    weight (87% of the then 1,000 Gauss-Hermite nodes of a row on a 609-row
    fit with psi 79 per SD), nor does the padding of rows with shorter
    rules, and the regression's Newton steps ran over all of them.
    """
    weight = nodes.weight[sel]
    keep = weight > NEGLIGIBLE_WEIGHT
    row_of_node = np.broadcast_to(np.arange(len(sel))[:, None], weight.shape)[keep]
    return PseudoRows(
        nodes.y[sel, :, a][keep],
        covariates[row_of_node],
        weight[keep],
        np.ones(int(keep.sum()), bool),
    )


def _scatter_sums(block, cols, cond_cov, T1, T2):
    """Add a group's completed rows and conditional covariances to T1, T2."""
    p = block.shape[1]
    T1 += block.sum(axis=0)
    T2 += block.T @ block
    flat = (cols[:, :, None] * p + cols[:, None, :]).ravel()
    T2 += np.bincount(flat, weights=cond_cov.ravel(), minlength=p * p).reshape(p, p)


@dataclass(frozen=True)
class _Spec:
    """What the E-step needs of the model besides rows and parameters."""

    mnar: np.ndarray
    covariates: np.ndarray
    link: str
    nodes: NodeRule


def _statistics(rows, params, spec):
    """:class:`SelectionStatistics` of a block of rows at ``params``.

    Raises ``numpy.linalg.LinAlgError`` if the covariance or a conditional
    covariance is not positive definite.
    """
    precision, logdet_cov = precision_and_logdet(params.covariance)
    coef = params.coef
    loglik, terms = _observed_terms(rows, coef, spec.link)
    problem = rows.patterns.problem
    normal = e_step(problem, params.mean, params.covariance)
    if normal is None:
        raise np.linalg.LinAlgError("a covariance is not positive definite")
    loglik += normal.loglik
    T1, T2 = normal.row_sum.copy(), normal.cross.copy()
    for pattern_set in rows.patterns.sets:  # e_step left c in problem.data
        corrected = pattern_terms(problem.data, pattern_set, precision, coef)
        T1 += corrected.row_sum
        T2 += corrected.cross
        loglik += corrected.log_prob
        _add_missing_terms(
            pattern_set.models[pattern_set.which], corrected,
            pattern_set.covariates, terms,
        )  # fmt: skip
    for group in rows.groups:
        cond = _conditional(rows.Z, group, params.mean, precision, logdet_cov)
        loglik += cond.loglik.sum()
        post_mean, post_cov = cond.c, cond.C
        if group.mnar_slots.shape[1]:
            covariates = rows.Z[np.ix_(group.chunk.rows, spec.covariates)]
            base = coef.intercept + covariates @ coef.gamma.T  # alpha + gamma' x_c
            posterior = _posterior(group, cond, base, coef, spec.link, spec.nodes)
            loglik += float(posterior.log_prob.sum())
            post_mean, post_cov = posterior.mean, posterior.cov
            _add_missing_terms(group.models, posterior, covariates, terms)
        np.put_along_axis(cond.block, cond.cols, post_mean, axis=1)
        _scatter_sums(cond.block, cond.cols, post_cov, T1, T2)
    if spec.link != "probit":
        terms = [PseudoRows.concatenate(parts) for parts in terms]
    return SelectionStatistics(float(loglik), T1, T2, tuple(terms))


# ---------------------------------------------------------------------------
# M-step of the selection models


def _fit_selection_models(selection, coef, held, link):
    """New coefficients of every selection model from its M-step data.

    Probit: the exact least-squares M-step of the latent normal
    (:func:`~emimpute.models._selection_latent.fit_latent_probit`).  Logit:
    one Newton step on the pseudo-rows (with step halving, so the expected
    log-likelihood goes up), a generalised EM step, as monotone as a full
    maximisation and much cheaper (Dempster, Laird & Rubin 1977, sec. 3).
    """
    fits = [
        fit_latent_probit(data, coef.psi[i], held[i])
        if isinstance(data, LatentSums)
        else _fit_one_selection_model(
            data, coef.intercept[i], coef.psi[i], coef.gamma[i], held[i], link
        )
        for i, data in enumerate(selection)
    ]
    if not fits:  # no column with a selection model: nothing to fit
        return coef
    intercept, psi, gamma = (np.array(values) for values in zip(*fits, strict=True))
    return SelectionCoefficients(intercept, psi, gamma.reshape(coef.gamma.shape))


def _fit_one_selection_model(rows, intercept, psi, gamma, held, link):
    """(intercept, psi, gamma) of one model after one Newton step of the
    weighted binary regression of "missing" on (1, x_j, x_c); a held psi
    enters through an offset."""
    free_psi = [] if held else [rows.values]
    design = np.column_stack([np.ones(len(rows.values)), *free_psi, rows.covariates])
    start = np.concatenate([[intercept], [] if held else [psi], gamma])
    fit = fit_binary_glm(
        design, rows.missing, rows.weights, link=link,
        offset=psi * rows.values if held else 0.0, start=start, max_iter=1,
    )  # fmt: skip
    first_gamma = 1 if held else 2
    return fit.coef[0], psi if held else fit.coef[1], fit.coef[first_gamma:]


def _mar_means(Z, mar, columns, step=65536):
    """Z's ``columns`` with their missing cells at the MAR conditional means,
    a block of rows at a time (no completed copy of the whole of Z)."""
    out = np.empty((len(Z), len(columns)))
    for start in range(0, len(Z), step):
        block = conditional_moments(Z[start : start + step], mar.mean, mar.covariance)
        out[start : start + step] = block.completed[:, columns]
    return out


def _selection_start(rows, mar, initial, spec):
    """Each selection model's binary regression of "missing" on (1, x_c) at
    the MAR fit ``mar``, its psi held at its initial value through an
    offset psi x_j, x_j the MAR conditional mean where missing.  With psi
    = 0 (a free psi's start) this is the exact maximum at the MAR fit."""
    filled = _mar_means(rows.Z, mar, spec.mnar)
    design = np.column_stack([np.ones(len(filled)), rows.Z[:, spec.covariates]])
    fits = [
        fit_binary_glm(
            design, rows.mask[:, j], link=spec.link,
            offset=initial.psi[i] * filled[:, i], max_iter=START_NEWTON_STEPS,
        ).coef
        for i, j in enumerate(spec.mnar)
    ]  # fmt: skip
    if not fits:
        return initial
    fits = np.array(fits)
    return SelectionCoefficients(
        fits[:, 0], initial.psi.copy(), fits[:, 1:].reshape(initial.gamma.shape)
    )


def block_statistics(X, center, scale, params, spec):
    """:class:`SelectionStatistics` of the rows of X (data units, NaN at
    missing cells, the covariates observed) at ``params``, standardised by
    ``center`` and ``scale``: what a block of rows adds to the E-step.

    Raises ``ValueError`` if a covariate has a missing cell, and
    ``numpy.linalg.LinAlgError`` if a covariance is not positive definite.
    """
    Z = (np.asarray(X, dtype=np.float64) - center) / scale
    gaps = np.isnan(Z[:, spec.covariates]).any(axis=0)
    if gaps.any():
        columns = spec.covariates[gaps].tolist()
        raise ValueError(
            f"covariate columns {columns} of the selection models have "
            "missing cells in these rows; they must be observed"
        )
    rows = _lay_out(Z, spec.mnar, spec.covariates, spec.link)
    return _statistics(rows, params, spec)


class RowsInMemory:
    """The standardised rows Z (NaN at missing cells) of a selection model,
    laid out once for the E-step: the row source of :class:`SelectionModel`
    for data in memory."""

    def __init__(self, Z, mnar, covariates, link):
        self._layout_spec = (mnar, covariates, link)
        self.rows = _lay_out(Z, mnar, covariates, link)
        self.n_rows = Z.shape[0]
        self.observed_counts = (~self.rows.mask).sum(axis=0)

    def statistics(self, params, spec):
        """:class:`SelectionStatistics` at ``params``; raises
        ``numpy.linalg.LinAlgError`` if a covariance is not positive
        definite."""
        return _statistics(self.rows, params, spec)

    def mar_fit(self, ridge, tol):
        """The MAR fit (normal model) of the rows: on the layout's normal
        problem when it holds every row (no second copy of the data)."""
        if self.rows.groups:
            return fit_normal_em(self.rows.Z, ridge=ridge, tol=tol)
        problem = replace(self.rows.patterns.problem, ridge=float(ridge))
        return run_em(NormalModel.in_memory(problem), tol=tol).params

    def selection_start(self, mar, initial, spec):
        """The selection models' start at the MAR fit (:func:`_selection_start`)."""
        return _selection_start(self.rows, mar, initial, spec)

    def every_kth(self, size):
        """These rows, or every k-th of them when there are more than twice
        ``size`` (about ``size`` rows)."""
        if self.n_rows <= 2 * size:
            return self
        step = int(np.ceil(self.n_rows / size))
        spec = self._layout_spec
        return RowsInMemory(self.rows.Z[::step], *spec)


# ---------------------------------------------------------------------------
# The model


class SelectionModel(EMModel):
    """The normal data model times the selection models, as an
    :class:`~emimpute.engine._model.EMModel`.

    Build it with :meth:`from_data`.  It works on the standardised data (the
    observed column means ``center`` and standardising scales ``scale``);
    its parameters are :class:`SelectionParams`, its statistics
    :class:`SelectionStatistics`.  The MNAR coefficients psi are held where
    ``held`` (given by the user, or held for a start, :meth:`holding`).

    Parameters
    ----------
    source : RowsInMemory or another row source
        Where the standardised rows are and how to pass over them: the
        model asks it for ``statistics(params, spec)`` (the E-step),
        ``n_rows``, ``observed_counts`` (observed cells per column),
        ``mar_fit(ridge, tol)`` and ``selection_start(mar, initial, spec)``
        (:meth:`start`).  :class:`RowsInMemory` for an array; a Dask source
        sums the statistics of blocks.
    mnar, covariates : ndarrays of int
        Columns with a selection model, and the covariates of those models.
    link : {"probit", "logit"}
    held : ndarray of bool, one per selection model
        Where psi is held at its value in the parameters.
    initial_coef : SelectionCoefficients
        Zeros but for the held psi, per standard deviation: where
        :meth:`start` begins.
    ridge : float
        Prior strength, as in :func:`emimpute.models._normal.m_step`.
    node_seed : int or None
        Seed of the Sobol nodes (rows with three or more MNAR cells under the
        logit link, four or more under the probit).
    center, scale : ndarrays of shape (p,)
        The standardisation, for :meth:`statistics_of` of rows in data units.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> X[X[:, 0] > 0.5, 0] = np.nan
    >>> model = SelectionModel.from_data(X, [0])
    >>> params = model.start()
    >>> whole = model.e_step(params)
    >>> halves = model.statistics_of(X[:100], params) + model.statistics_of(
    ...     X[100:], params
    ... )
    >>> bool(np.isclose(halves.loglik, whole.loglik))
    True
    """

    singular_message = (
        "the covariance estimate became singular; use a ridge prior (ridge > 0)"
    )

    def __init__(
        self, source, mnar, covariates, *, link, held, initial_coef, ridge,
        node_seed, center, scale,
    ):  # fmt: skip
        self.source = source
        self.spec = _Spec(mnar, covariates, link, NodeRule(node_seed))
        self.held, self.initial_coef = held, initial_coef
        self.ridge, self.prior = float(ridge), np.eye(len(center))
        self.center, self.scale = center, scale

    @classmethod
    def from_data(
        cls, X, mnar, *, link="probit", psi=None, gamma=True, ridge=0.0,
        random_state=None,
    ):  # fmt: skip
        """The model of data X (NaN at missing cells); the arguments are
        those of :func:`fit_selection_em`."""
        X = np.asarray(X, dtype=np.float64)
        mnar = np.asarray(mnar, dtype=int)
        _, center, scale, _, _ = observed_column_moments(X)
        scale = standardising_scale(scale)
        mask = np.isnan(X)
        covariates = np.flatnonzero(~mask.any(axis=0)) if gamma else np.array([], int)
        Z = X - center
        Z /= scale  # in place: one copy of the data, not two
        source = RowsInMemory(Z, mnar, covariates, link)
        return cls.from_source(
            source, mnar, covariates, center, scale, link=link, psi=psi,
            ridge=ridge, random_state=random_state,
        )  # fmt: skip

    @classmethod
    def from_source(
        cls, source, mnar, covariates, center, scale, *, link="probit", psi=None,
        ridge=0.0, random_state=None,
    ):  # fmt: skip
        """The model of the rows of ``source`` (standardised by ``center``
        and ``scale``: the observed column means and standardising scales);
        ``mnar`` and ``covariates`` as column indices, the other arguments
        those of :func:`fit_selection_em`."""
        mnar = np.asarray(mnar, dtype=int)
        covariates = np.asarray(covariates, dtype=int)
        _check_held_psi(psi, mnar)
        held = np.array([psi is not None and j in psi for j in mnar], dtype=bool)
        # A given psi is per unit of its column: per standard deviation here.
        given = [psi[j] * scale[j] if held[i] else 0.0 for i, j in enumerate(mnar)]
        k = len(mnar)
        initial = SelectionCoefficients(
            np.zeros(k), np.array(given, dtype=float), np.zeros((k, len(covariates)))
        )
        return cls(
            source, mnar, covariates, link=link, held=held,
            initial_coef=initial, ridge=ridge,
            node_seed=_check_node_seed(random_state), center=center, scale=scale,
        )  # fmt: skip

    @property
    def mnar(self):
        return self.spec.mnar

    @property
    def covariates(self):
        return self.spec.covariates

    @property
    def link(self):
        return self.spec.link

    @property
    def node_seed(self):
        return self.spec.nodes.seed

    def on_rows(self, source):
        """The same model on other rows (a row source)."""
        model = copy.copy(self)
        model.source = source
        return model

    def holding(self, held):
        """The same model (and data) with psi held where ``held``."""
        model = copy.copy(self)
        model.held = held
        return model

    def start(self, tol=1e-6):
        """The MAR fit (:func:`~emimpute.models._normal.fit_normal_em` at
        ``tol``) and each selection model fitted there with psi as given
        (0 unless held)."""
        mar = self.source.mar_fit(self.ridge, tol)
        coef = self.source.selection_start(mar, self.initial_coef, self.spec)
        return SelectionParams(mar.mean, mar.covariance, coef)

    def warm_start(self, result):
        """The parameters of an earlier fit (a :class:`SelectionEMResult`,
        data units) on this model's standardised scale, held psi as given."""
        same = np.array_equal(result.mnar, self.mnar) and np.array_equal(
            result.covariates, self.covariates
        )
        if not same or result.link != self.link:
            raise ValueError(
                "the warm start is a fit of other MNAR columns, covariates or "
                f"link (columns {result.mnar.tolist()}, covariates "
                f"{result.covariates.tolist()}, link {result.link!r}); fit "
                "from scratch instead"
            )
        center, scale = self.center, self.scale
        mnar, covariates = self.mnar, self.covariates
        # index = a + psi x_j + g' x_c, with x = center + scale * z.
        psi = np.where(self.held, self.initial_coef.psi, result.psi * scale[mnar])
        coef = SelectionCoefficients(
            result.intercept
            + result.psi * center[mnar]
            + result.gamma @ center[covariates],
            psi,
            result.gamma * scale[covariates],
        )
        return SelectionParams(
            (result.mean - center) / scale,
            result.covariance / np.outer(scale, scale),
            coef,
        )

    def psi_starts(self, params):
        """(model, params) for :func:`~emimpute.engine._driver.best_start`:
        every free psi held at each of ``PSI_STARTS``."""
        all_held = self.holding(np.ones_like(self.held))
        coef = params.coef
        return [
            (
                all_held,
                replace(
                    params, coef=replace(coef, psi=np.where(self.held, coef.psi, value))
                ),
            )
            for value in PSI_STARTS
        ]

    def e_step(self, params):
        try:
            return self.source.statistics(params, self.spec)
        except np.linalg.LinAlgError:  # a covariance not positive definite
            return None

    def statistics_of(self, X, params):
        """The E-step statistics of the rows of X (data units, NaN at
        missing cells, the covariates observed): summed over the row blocks
        of the data they equal :meth:`e_step`."""
        try:
            return block_statistics(X, self.center, self.scale, params, self.spec)
        except np.linalg.LinAlgError:
            return None

    def m_step(self, params, stats):
        n = self.source.n_rows
        mean, cov = m_step(stats.row_sum, stats.cross, n, self.prior, self.ridge)
        coef = _fit_selection_models(stats.selection, params.coef, self.held, self.link)
        return SelectionParams(mean, cov, coef)

    def log_prior(self, params):
        return log_prior(params.covariance, self.prior, self.ridge)

    def out_of_bounds(self, params):
        # psi is per standard deviation on this (standardised) scale.
        coef = params.coef
        free = np.abs(coef.psi[~self.held])
        if free.size and not np.all(free <= PSI_LIMIT):
            return (
                f"the MNAR coefficient psi passed {PSI_LIMIT:g} per standard "
                "deviation and was still growing: the likelihood has no finite "
                "maximum in psi (missingness that is a step function of the "
                "value)"
            )
        # The same for the covariates' coefficients gamma (per standard
        # deviation): the missingness separated by the covariates.  (Not the
        # intercept: with psi running off it runs off too, as -psi times
        # the threshold.)
        others = np.abs(coef.gamma.ravel())
        if not np.all(others <= PSI_LIMIT):
            return (
                f"a covariate's coefficient gamma in a missingness model "
                f"passed {PSI_LIMIT:g} per standard deviation and was still "
                "growing: the likelihood has no finite maximum (the covariates "
                "separate the missing rows from the observed ones)"
            )
        return None

    def to_vector(self, params):
        coef = params.coef
        return np.concatenate(
            [
                params.mean,
                log_cholesky(params.covariance),
                coef.intercept,
                coef.psi[~self.held],
                coef.gamma.ravel(),
            ]
        )

    def from_vector(self, vector, like):
        p, coef = len(like.mean), like.coef
        rest = vector[p + p * (p + 1) // 2 :]
        k, n_free = len(coef.intercept), int((~self.held).sum())
        psi = coef.psi.copy()
        psi[~self.held] = rest[k : k + n_free]
        gamma = rest[k + n_free :].reshape(coef.gamma.shape).copy()
        new = SelectionCoefficients(rest[:k].copy(), psi, gamma)
        return SelectionParams(vector[:p].copy(), from_log_cholesky(vector[p:], p), new)


# ---------------------------------------------------------------------------
# The fit


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
    init=None,
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
    random_state : int or None, optional
        Seeds the Sobol nodes used for rows with three or more MNAR cells
        under the logit link, four or more under the probit (None: fresh
        ones); kept in the result for imputation.
    callback : callable, optional
        ``callback(iteration, loglik, change)`` after each iteration.
    init : SelectionEMResult, optional
        A warm start: EM begins at this earlier fit (of the same columns,
        possibly on other rows or with other held psi; a held psi takes its
        value from ``psi``), without the MAR start and the multi-start in
        psi.  Along a grid of held psi values, starting each point from its
        neighbour's fit saves most of the iterations.

    Returns
    -------
    SelectionEMResult

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import ndtr
    >>> rng = np.random.default_rng(0)
    >>> X = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=2000)
    >>> X[rng.random(2000) < ndtr(X[:, 0]), 0] = np.nan  # high values hidden
    >>> result = fit_selection_em(X, [0], gamma=False)
    >>> bool(result.converged), round(float(result.psi[0]), 1)  # truth: 1
    (True, 0.9)
    >>> round(float(np.nanmean(X[:, 0])), 2), round(float(result.mean[0]), 2)
    (-0.55, -0.03)
    """
    model = SelectionModel.from_data(
        X, mnar, link=link, psi=psi, gamma=gamma, ridge=ridge,
        random_state=random_state,
    )  # fmt: skip
    return fit_model(
        model, max_iter=max_iter, tol=tol, accelerate=accelerate,
        callback=callback, init=init,
    )  # fmt: skip


def fit_model(model, *, max_iter, tol, accelerate, callback, init):
    """The fit of a built :class:`SelectionModel` (in memory or on another
    row source): from ``init`` (an earlier :class:`SelectionEMResult`) or
    the cold start, EM to convergence, the result in data units.

    A fit with one free psi creeping after ``CREEP_ITER`` iterations takes
    a profile-likelihood search in psi, then EM resumes from its best point
    (:func:`._selection_profile.run_searching_psi`); ``n_iter`` counts the
    free EM iterations.
    """
    if init is not None:
        params = model.warm_start(init)
    else:
        params = _cold_start(model, tol, accelerate)
    run = run_searching_psi(
        model, params, max_iter=max_iter, tol=tol, accelerate=accelerate,
        callback=callback, limit=PSI_LIMIT,
    )  # fmt: skip
    steep = ()
    if model.link == "logit":  # (probit rows with two MNAR cells: closed form)
        source = getattr(model.source, "rows", None)
        steep = steep_two_cell_pairs(source, run.params, model.mnar)
    return replace(_in_data_units(model, run), steep_pairs=steep)


def _cold_start(model, tol, accelerate):
    """The MAR fit, then (with a free psi) the best of the psi starts."""
    params = model.start(tol=min(tol, 1e-6))
    if not model.held.all():
        # The likelihood of selection models can have several modes in psi
        # (Heckman's among them): start from the best of short fits with
        # psi held at a few values (per standard deviation of the column).
        ranking = model
        if hasattr(model.source, "every_kth"):  # in memory: a sample if large
            ranking = model.on_rows(model.source.every_kth(START_ROWS))
        params = best_start(
            ranking.psi_starts(params),
            max_iter=START_ITER,
            tol=START_TOL,
            accelerate=accelerate,
        ).params
    return params


def _in_data_units(model, run):
    """The :class:`SelectionEMResult` of an EM run on the model."""
    center, scale = model.center, model.scale
    mnar, covariates = model.mnar, model.covariates
    params = run.params
    coef = params.coef
    # index = a + psi z_j + g' z_c with z = (x - center) / scale.
    psi_units = coef.psi / scale[mnar]
    gamma_units = coef.gamma / scale[covariates]
    intercept = (
        coef.intercept - psi_units * center[mnar] - gamma_units @ center[covariates]
    )
    # log f(x_o) = log f(z_o) - sum over the observed cells of log scale_j.
    jacobian = float(model.source.observed_counts @ np.log(scale))
    return SelectionEMResult(
        mean=center + scale * params.mean,
        covariance=params.covariance * np.outer(scale, scale),
        mnar=mnar,
        covariates=covariates,
        intercept=intercept,
        psi=psi_units,
        gamma=gamma_units,
        psi_fixed=model.held,
        link=model.link,
        center=center,
        scale=scale,
        standardised=params,
        loglik=run.loglik - jacobian,
        loglik_path=np.asarray(run.path) - jacobian,
        n_iter=run.n_iter,
        converged=run.converged,
        node_seed=model.node_seed,
        stopped=run.stopped,
    )
