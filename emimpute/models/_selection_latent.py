"""The probit selection model as a latent normal (statistical kernel).

A probit missingness model is a threshold on a latent normal (Heckman
1979; Amemiya 1984, sec. 3): for each column j with a model,

    u_j = alpha_j + psi_j x_j + gamma_j' x_c + e_j,   e_j ~ N(0, 1),

independently across models given x, and x_j is missing exactly when
u_j > 0, so that P(missing | x) = Phi(alpha_j + psi_j x_j + gamma_j' x_c).
With the u_j added to the missing data, EM has closed forms throughout:

E-step.  Where x_j is observed, u_j given the row is N(eta_j, 1) truncated
to u_j < 0 (eta_j its index): E[u_j] = eta_j - phi(eta_j) / Phi(-eta_j).
Where it is missing, the row's missing cells x_m and the latent u_J of its
missing MNAR cells are jointly normal given the observed cells (u_J is
linear in x_J plus independent noise), conditioned on u_J > 0: the moments
of a normal truncated to the positive orthant
(:func:`emimpute.gaussian._orthant.orthant_moments` for one to three MNAR
cells, Tallis 1961), then those of x_m by regression on u_J (the rest of
the vector is normal given u_J).  The log-likelihood term log P(u_J > 0 |
x_o) comes out of the same computation; for one cell it is Heckman's
log Phi(eta_bar / sqrt(1 + psi^2 C_jj)).  Rows with four or more missing
MNAR cells keep the nodes of :mod:`emimpute.models._selection`, with the
moments of u given each node in closed form.

M-step.  Each model is a linear regression of u_j on d = (1, x_j, x_c)
with unit error variance: coef = E[sum d d']^-1 E[sum d u_j], the sums
(:class:`LatentSums`) added over the rows, rescaled by parameter expansion
when psi_j is free (:func:`fit_latent_probit`).  A held psi_j moves its
term to the left: the regression of u_j - psi_j x_j on (1, x_c).

The statistics are sums, so row blocks add (the Dask fit), and nothing in
the E-step or M-step depends on nodes, Newton steps or step halving.

References
----------
Amemiya, T. (1984). Tobit models: a survey. *J. Econometrics* 24, 3-61.
Heckman, J. J. (1979). Sample selection bias as a specification error.
*Econometrica* 47, 153-161.
Tallis, G. M. (1961). The moment generating function of the truncated
multi-normal distribution. *JRSS-B* 23, 223-229.
"""

from dataclasses import dataclass

import numpy as np
from scipy import special

from emimpute.gaussian._orthant import orthant_moments

LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


@dataclass(frozen=True)
class LatentSums:
    """The sums of one probit model's M-step over the rows: ``dd`` =
    E[sum d d'], ``du`` = E[sum d u] and ``uu`` = E[sum u^2], d = (1, x_j,
    x_c).  Blocks add."""

    dd: np.ndarray  # (2 + n_covariates, 2 + n_covariates)
    du: np.ndarray  # (2 + n_covariates,)
    uu: np.ndarray  # (), an array so that it can be added in place

    def __add__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return LatentSums(self.dd + other.dd, self.du + other.du, self.uu + other.uu)

    @classmethod
    def zeros(cls, n_covariates):
        size = 2 + n_covariates
        return cls(np.zeros((size, size)), np.zeros(size), np.zeros(()))


def mills_ratio(t):
    """phi(t) / Phi(t), accurate in both tails (it tends to -t as t goes
    to -infinity, and to 0 as t goes to +infinity)."""
    return np.exp(-0.5 * t * t - LOG_SQRT_2PI - special.log_ndtr(t))


@dataclass(frozen=True)
class CellMoments:
    """Posterior moments of the missing MNAR cells of a group's rows, one
    column per MNAR cell (the order of ``group.models``)."""

    mean: np.ndarray  # E[x_j]
    variance: np.ndarray  # Var[x_j]
    latent: np.ndarray  # E[u_j]
    cross: np.ndarray  # E[x_j u_j]
    square: np.ndarray  # E[u_j^2]


def add_observed_sums(sums, design, gram, index):
    """Add to one model's :class:`LatentSums` the rows where its column is
    observed (their ``design`` (1, x_j, x_c), its Gram matrix ``gram`` and
    their ``index``): u is N(index, 1) truncated to u < 0, so
    E[u] = index - r and Var[u] = 1 + index r - r^2, r = phi(index) /
    Phi(-index) (the moments of a normal truncated above; Johnson, Kotz &
    Balakrishnan 1994, sec. 10.1).  Returns sum log Phi(-index), those
    rows' log-probability of being observed."""
    log_observed = special.log_ndtr(-index)
    r = np.exp(-0.5 * index * index - LOG_SQRT_2PI - log_observed)
    latent = index - r
    sums.dd[...] += gram
    sums.du[...] += design.T @ latent
    # E[u^2] = Var + E[u]^2 = 1 + index r - r^2 + (index - r)^2 = 1 + index^2 - index r
    sums.uu[...] += np.sum(1.0 + index * latent)
    return float(log_observed.sum())


def add_missing_sums(sums, covariates, moments, slot, rows):
    """Add to one model's :class:`LatentSums` the ``rows`` of a group where
    its column is missing (``covariates``: theirs): ``moments``
    (:class:`CellMoments`) at MNAR cell ``slot``.  E[d d'] is the outer
    product of E[d] plus Var[x_j] in the (x_j, x_j) entry."""
    mean, latent = moments.mean[rows, slot], moments.latent[rows, slot]
    d = np.column_stack([np.ones(len(mean)), mean, covariates])
    sums.dd[...] += d.T @ d
    sums.dd[1, 1] += moments.variance[rows, slot].sum()
    du = d.T @ latent
    du[1] = moments.cross[rows, slot].sum()
    sums.du[...] += du
    sums.uu[...] += moments.square[rows, slot].sum()


def fit_latent_probit(sums, psi, held):
    """(intercept, psi, gamma) of one probit model from its
    :class:`LatentSums`.

    With psi free, parameter-expanded EM (Liu, Rubin & Wu 1998, sec. 4.2,
    whose example is this probit regression): in the expanded model u =
    d' b + s e the M-step is the least-squares regression of u on d with
    s^2 its mean squared residual, and the reduction to s = 1 is b / s.
    The same fixed point as plain EM, monotone as EM, and far faster where
    the coefficients are large (plain EM creeps, a step function of the
    value making psi run off at a few per cent per iteration).  With psi
    held, the plain EM step: the regression of u - psi x_j on (1, x_c) (a
    held psi does not scale with s).
    """
    if held:
        keep = np.r_[0, 2 : len(sums.du)]
        rhs = sums.du[keep] - psi * sums.dd[keep, 1]
        coef = _solve(sums.dd[np.ix_(keep, keep)], rhs)
        return coef[0], psi, coef[1:]
    coef = _solve(sums.dd, sums.du)
    n = sums.dd[0, 0]  # the sum of d's leading 1: the rows
    residual = (sums.uu - coef @ sums.du) / n
    coef = coef / np.sqrt(residual) if residual > 0 else coef
    return coef[0], coef[1], coef[2:]


def _solve(gram, rhs):
    """The least-squares coefficients; the minimum-norm ones when the
    design is rank deficient (a covariate constant among the rows)."""
    try:
        return np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(gram, rhs, rcond=None)[0]


@dataclass(frozen=True)
class LatentPosterior:
    """A group's missing cells given its observed cells and "missing",
    in the MNAR-first order of :func:`latent_posterior`'s inputs."""

    mean: np.ndarray  # (n, k)
    cov: np.ndarray  # (n, k, k)
    log_prob: np.ndarray  # (n,) log P(u_J > 0 | x_o)
    cells: CellMoments


def latent_posterior(c, C, index, psi):
    """Moments of the missing cells x_m ~ N(c, C) (MNAR cells first, k_J of
    them) of rows given u_J > 0, u_J = index + psi * x_J + e.

    ``index`` (n, k_J) holds alpha + gamma' x_c of each MNAR cell,
    ``psi`` (n, k_J) its coefficient; the moments of u truncated to u > 0
    come from :func:`emimpute.gaussian._orthant.orthant_moments`.  With
    m = E[u_J], V = Cov[u_J] and K = Cov[x_m, u_J] = C_.J diag(psi), the
    regression of x_m on u_J gives (Tallis 1961)

        E[x_m | u_J > 0] = c + K V^-1 (nu - m),
        Cov[x_m | u_J > 0] = C - K V^-1 K' + K V^-1 Omega V^-1 K',

    nu and Omega the truncated mean and covariance of u_J.
    """
    k_J = index.shape[1]
    m = index + psi * c[:, :k_J]
    K = C[:, :, :k_J] * psi[:, None, :]  # (n, k, k_J)
    V = psi[:, :, None] * C[:, :k_J, :k_J] * psi[:, None, :] + np.eye(k_J)
    V = 0.5 * (V + V.transpose(0, 2, 1))  # C is symmetric to rounding only
    truncated = orthant_moments(m, V)
    B = np.linalg.solve(V, K.transpose(0, 2, 1)).transpose(0, 2, 1)  # K V^-1
    mean = c + np.einsum("nka,na->nk", B, truncated.mean - m)
    B_omega = B @ truncated.cov  # Cov[x_m, u_J | u_J > 0]
    cov = C - B @ K.transpose(0, 2, 1) + B_omega @ B.transpose(0, 2, 1)
    slots = np.arange(k_J)
    cells = CellMoments(
        mean=mean[:, :k_J],
        variance=cov[:, slots, slots],
        latent=truncated.mean,
        cross=B_omega[:, slots, slots] + mean[:, :k_J] * truncated.mean,
        square=truncated.cov[:, slots, slots] + truncated.mean**2,
    )
    return LatentPosterior(mean, cov, truncated.log_prob, cells)


def node_cell_moments(y, weight, index):
    """:class:`CellMoments` from the nodes of a row's MNAR cells (rows with
    three or more of them): nodes y (n, Q, k_J) with posterior weights
    (n, Q) and each node's selection index (n, Q, k_J).  Given the node,
    u is N(index, 1) truncated to u > 0: E[u] = index + r and E[u^2] =
    1 + index E[u], r = phi(index) / Phi(index)."""
    latent_given_y = index + mills_ratio(index)
    mean = np.einsum("nq,nqa->na", weight, y)
    return CellMoments(
        mean=mean,
        variance=np.einsum("nq,nqa->na", weight, y * y) - mean**2,
        latent=np.einsum("nq,nqa->na", weight, latent_given_y),
        cross=np.einsum("nq,nqa->na", weight, y * latent_given_y),
        square=np.einsum("nq,nqa->na", weight, 1.0 + index * latent_given_y),
    )
