"""The probit selection model's E-step on rows grouped by pattern (kernel).

Under the probit link a row's missing cells given its observed cells and
"missing" are those of the normal model moved by the truncation of the
latent u_J of its missing MNAR cells
(:func:`emimpute.models._selection_latent.latent_posterior`):

    mean = c + B delta,   cov = C - B K' + B Omega B',

with c, C the normal conditional mean and covariance, K = Cov[x_m, u_J] =
C_.J diag(psi), V = Cov[u_J] = diag(psi) C_JJ diag(psi) + I, B = K V^-1,
delta = E[u_J | u_J > 0] - E[u_J] and Omega = Cov[u_J | u_J > 0].  C, K, V
and B depend on the row's missingness pattern only, delta and Omega on the
row.  So the E-step is the normal model's (its compiled kernel, which also
leaves c in the rows) plus a correction: per row the truncated moments of
u_J (one or two cells, closed form), per pattern a few small matrices.
The sums the normal M-step needs change by

    T1 += sum_r y_r,   T2 += sum_r (x_r y_r' + y_r x_r' + y_r y_r')
                             + sum_P B_P (sum_{r in P} Omega_r) B_P'
                             - n_P B_P K_P',

y_r = B delta_r placed on the row's missing cells, x_r the row completed
with c (Little & Rubin 2002, eq. 11.4-11.5, with the truncated moments in
place of the normal ones).
"""

from dataclasses import dataclass

import numpy as np

from emimpute.gaussian._conditional import _pattern_keys
from emimpute.gaussian._orthant import orthant_moments
from emimpute.models._normal import prepare_problem
from emimpute.models._selection_latent import CellMoments


@dataclass(frozen=True)
class PatternSet:
    """The selected rows whose patterns have k missing cells, k_J of them
    with a model; rows sorted by pattern."""

    missing: np.ndarray  # (P, k) missing columns of each pattern, increasing
    slots: np.ndarray  # (P, k_J) positions of its MNAR cells among them
    models: np.ndarray  # (P, k_J) their selection models
    rows: np.ndarray | slice  # positions in the problem's data (chunk order)
    covariates: np.ndarray  # (n_s, n_covariates) their covariates
    which: np.ndarray  # (n_s,) each row's pattern, 0 .. P - 1, increasing
    starts: np.ndarray  # (P,) where each pattern's rows begin


@dataclass(frozen=True)
class PatternLayout:
    """A prepared normal problem of some rows of the data and, among them,
    the rows with missing MNAR cells grouped into :class:`PatternSet`."""

    problem: object  # emimpute.models._normal._Problem, centre 0, scale 1
    sets: list


def lay_out_patterns(Z, mask, rows, mnar, covariates):
    """:class:`PatternLayout` of ``rows`` of the standardised data Z."""
    p = Z.shape[1]
    # Rows with MNAR cells first, by their count and pattern: the problem
    # keeps this order among rows with the same number of missing cells
    # (a stable sort), so each set of patterns is one slice of its data
    # (no gather at every E-step; checked in _pattern_set).
    row_mask = mask[rows]
    k_J = row_mask[:, mnar].sum(axis=1)
    _, pattern_of = np.unique(_pattern_keys(row_mask), return_inverse=True)
    rows = rows[np.lexsort((pattern_of, k_J, k_J == 0))]
    problem = prepare_problem(Z, column_moments=(np.zeros(p), np.ones(p)), rows=rows)
    in_data = np.concatenate([[], *(c.rows for c in problem.chunks)]).astype(int)
    data_mask = mask[in_data]
    selected = np.flatnonzero(data_mask[:, mnar].any(axis=1))
    if not len(selected):
        return PatternLayout(problem, [])
    _, first, pattern = np.unique(
        _pattern_keys(data_mask[selected]), return_index=True, return_inverse=True
    )
    pattern_mask = data_mask[selected[first]]  # (P, p)
    is_model = np.zeros(p, dtype=bool)
    is_model[mnar] = True
    model_of = np.full(p, -1)
    model_of[mnar] = np.arange(len(mnar))
    k = pattern_mask.sum(axis=1)
    k_J = pattern_mask[:, is_model].sum(axis=1)
    sets = []
    for key in np.unique(k * (p + 1) + k_J):
        chosen = np.flatnonzero(k * (p + 1) + k_J == key)  # patterns of the set
        sets.append(
            _pattern_set(
                pattern_mask[chosen], chosen, pattern, selected, in_data,
                is_model, model_of, Z[:, covariates],
            )
        )  # fmt: skip
    return PatternLayout(problem, sets)


def _pattern_set(
    masks, chosen, pattern, selected, in_data, is_model, model_of, covariate_values
):
    """The :class:`PatternSet` of the patterns ``chosen`` (their ``masks``);
    ``covariate_values`` are the covariates of every row of the data."""
    n_patterns, p = masks.shape
    k, k_J = int(masks[0].sum()), int(masks[0, is_model].sum())
    missing = (np.flatnonzero(masks) % p).reshape(n_patterns, k)
    slots = np.argsort(~is_model[missing], axis=1, kind="stable")[:, :k_J]
    local = np.full(pattern.max() + 1, -1)
    local[chosen] = np.arange(n_patterns)
    members = np.flatnonzero(local[pattern] >= 0)
    which = local[pattern[members]]
    order = np.argsort(which, kind="stable")
    members, which = members[order], which[order]
    rows = selected[members]
    covariates = covariate_values[in_data[rows]]
    if np.all(np.diff(rows) == 1):  # one slice of the data (see lay_out_patterns)
        rows = slice(int(rows[0]), int(rows[-1]) + 1)
    return PatternSet(
        missing=missing,
        slots=slots,
        models=model_of[np.take_along_axis(missing, slots, axis=1)],
        rows=rows,
        covariates=covariates,
        which=which,
        starts=np.searchsorted(which, np.arange(n_patterns)),
    )


@dataclass(frozen=True)
class PatternTerms:
    """A set's corrections to the normal sums, its log P(u_J > 0 | x_o),
    and its MNAR cells' :class:`CellMoments` (rows of the set)."""

    row_sum: np.ndarray  # (p,)
    cross: np.ndarray  # (p, p)
    log_prob: float
    cells: CellMoments


def pattern_terms(data, pattern_set, precision, coef):
    """:class:`PatternTerms` of one :class:`PatternSet`.

    ``data`` holds the problem's rows completed with their conditional
    means (after :func:`emimpute.models._normal.e_step`), ``precision`` is
    inv(S), ``coef`` the selection coefficients (standardised scale).  The
    truncated moments of u come from
    :func:`emimpute.gaussian._orthant.orthant_moments`.
    """
    s = pattern_set
    P, k = s.missing.shape
    k_J = s.slots.shape[1]
    # Per pattern: C = inv(K_mm), K = C_.J diag(psi), V, B = K V^-1.
    C = np.linalg.inv(precision[s.missing[:, :, None], s.missing[:, None, :]])
    psi_P = coef.psi[s.models]  # (P, k_J)
    C_J = np.take_along_axis(C, s.slots[:, None, :], axis=2)  # (P, k, k_J)
    K = C_J * psi_P[:, None, :]
    K_JJ = np.take_along_axis(K, s.slots[:, :, None], axis=1)  # (P, k_J, k_J)
    V = psi_P[:, :, None] * K_JJ + np.eye(k_J)
    V = 0.5 * (V + V.transpose(0, 2, 1))  # inv(K_mm) is symmetric to rounding only
    B = np.linalg.solve(V, K.transpose(0, 2, 1)).transpose(0, 2, 1)  # (P, k, k_J)
    # Per row: the truncated moments of u_J.
    x = data[s.rows]
    cols_J = np.take_along_axis(s.missing, s.slots, axis=1)[s.which]  # (n_s, k_J)
    c_J = np.take_along_axis(x, cols_J, axis=1)
    base = coef.intercept + s.covariates @ coef.gamma.T  # (n_s, n_models)
    index = np.take_along_axis(base, s.models[s.which], axis=1)
    m = index + psi_P[s.which] * c_J
    truncated = orthant_moments(m, V[s.which])
    if not truncated.accurate.all():  # not finite: the E-step fails here
        raise np.linalg.LinAlgError("truncated-normal moments are not finite")
    delta = truncated.mean - m
    B_rows = B[s.which]  # (n_s, k, k_J)
    shift = np.einsum("nka,na->nk", B_rows, delta)
    y = np.zeros_like(x)
    np.put_along_axis(y, s.missing[s.which], shift, axis=1)
    # Per pattern: sum B Omega B' - n B K', on the pattern's (m, m) block.
    n_P = np.diff(np.append(s.starts, len(s.which)))
    omega_P = np.add.reduceat(truncated.cov, s.starts, axis=0)
    block = B @ omega_P @ B.transpose(0, 2, 1) - n_P[:, None, None] * (
        B @ K.transpose(0, 2, 1)
    )
    p = x.shape[1]
    flat = (s.missing[:, :, None] * p + s.missing[:, None, :]).ravel()
    cov_change = np.bincount(flat, weights=block.ravel(), minlength=p * p)
    cross = x.T @ y
    cross = cross + cross.T + y.T @ y + cov_change.reshape(p, p)
    cells = _cell_moments(c_J, delta, truncated, B_rows, C_J, K, s)
    return PatternTerms(y.sum(axis=0), cross, float(truncated.log_prob.sum()), cells)


def _cell_moments(c_J, delta, truncated, B_rows, C_J, K, s):
    """The MNAR cells' moments given "missing", row by row (see
    :func:`emimpute.models._selection_latent.latent_posterior`)."""
    slots = s.slots[s.which]  # (n_s, k_J)
    B_JJ = np.take_along_axis(B_rows, slots[:, :, None], axis=1)  # (n_s, k_J, k_J)
    C_JJ = np.take_along_axis(C_J, s.slots[:, :, None], axis=1)[s.which]
    K_JJ = np.take_along_axis(K, s.slots[:, :, None], axis=1)[s.which]
    mean = c_J + np.einsum("nab,nb->na", B_JJ, delta)
    # Only the diagonals are needed: Var[x_a] = C_aa - (B K')_aa + (B Omega
    # B')_aa and Cov[x_a, u_a] = (B Omega)_aa.  (einsum: matmul is slow on
    # stacks of 1 x 1 and 2 x 2 matrices.)
    B_omega = np.einsum("nab,nbc->nac", B_JJ, truncated.cov)
    variance = (
        np.einsum("naa->na", C_JJ)
        - np.einsum("nab,nab->na", B_JJ, K_JJ)
        + np.einsum("nab,nab->na", B_omega, B_JJ)
    )
    nu = truncated.mean
    return CellMoments(
        mean=mean,
        variance=variance,
        latent=nu,
        cross=np.einsum("naa->na", B_omega) + mean * nu,
        square=np.einsum("naa->na", truncated.cov) + nu**2,
    )
