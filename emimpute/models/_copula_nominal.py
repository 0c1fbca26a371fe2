"""Nominal (unordered categorical) columns in the Gaussian copula
(statistical kernel): the Gaussian-max model of Zhao, Townsend & Udell
(2022).

A column with K categories has K latent values z_1..z_K, independent
standard normals given nothing else (identity covariance within the
column: the model is then identifiable, their Theorem 1), and the category
is argmax_k (z_k + mu_k).  The means mu (mu_1 = 0) are fixed by the
marginal probabilities, as the cut points of an ordinal column are by its
proportions (:func:`nominal_means`).  The latent values of different
columns correlate freely: the correlation matrix R of all latent values
has an identity block for each nominal column
(:func:`within_block_pairs`, which the M-step holds at 0).

An observed category c says z_c + mu_c > z_k + mu_k for every other k:
bounds on each latent value that depend on the others', so the Gibbs
sampler updates them one at a time with the current bounds
(:func:`nominal_sweep`): z_c above max_{k != c}(z_k + mu_k) - mu_c, and
every other z_k below z_c + mu_c - mu_k.  A missing category leaves its K
values free (drawn by the ordinary sweep).  The imputed category is the
most frequent argmax over the sweeps of the chain (its posterior mode),
or, for a draw, the argmax of one state.

References
----------
Zhao, Y., Townsend, A. & Udell, M. (2022). Probabilistic missing value
imputation for mixed categorical and ordered data. *NeurIPS*.
Christoffersen, B., Clements, M., Humphreys, K. & Kjellstrom, H. (2021).
Asymptotically exact and fast Gaussian copula models for imputation of
mixed data types. *ACML* (R package mdgc).
"""

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import optimize, special

from emimpute.gaussian._interval import sample_interval

# Gauss-Hermite nodes for the one-dimensional integral of the category
# probabilities (the integrand, a product of normal CDFs, is smooth).
HERMITE_NODES = 64
# nominal_means stops when every probability is this close to its target.
MEANS_TOL = 1e-12


@cache
def _hermite():
    x, w = np.polynomial.hermite.hermgauss(HERMITE_NODES)
    return np.sqrt(2.0) * x, w / np.sqrt(np.pi)


def gaussian_max_probabilities(mu):
    """P(argmax_k (z_k + mu_k) = k) for z ~ N(0, I_K): the integral over u
    of phi(u) prod_{k' != k} Phi(u + mu_k - mu_k').

    Examples
    --------
    >>> np.round(gaussian_max_probabilities(np.zeros(4)), 6)
    array([0.25, 0.25, 0.25, 0.25])
    """
    return np.exp(_log_terms(np.asarray(mu, float))[1])


def _log_terms(mu):
    """Per category k and node u_i: log of w_i prod_{k' != k} Phi(u_i +
    mu_k - mu_k') (K x nodes), and the log probabilities (K,), in logs so
    that a rare category's probability does not underflow."""
    u, w = _hermite()
    log_cdf = special.log_ndtr(u + (mu[:, None] - mu[None, :])[..., None])
    log_cdf[np.arange(len(mu)), np.arange(len(mu))] = 0.0  # k' == k
    terms = log_cdf.sum(axis=1) + np.log(w)
    return terms, special.logsumexp(terms, axis=1)


def nominal_means(probabilities):
    """The means mu (mu_1 = 0) under which the Gaussian-max model gives
    these category probabilities p (all positive, summing to 1).

    The probabilities are the gradient of the convex function
    g(mu) = E[max_k (z_k + mu_k)], so mu minimises g(mu) - p . mu, unique
    once mu_1 = 0 (Zhao et al.'s Theorem 1); solved by L-BFGS with that
    gradient, P(mu) - p.  g(mu) = sum_k E[(u + mu_k) 1{k wins}].

    Examples
    --------
    >>> p = np.array([0.5, 0.3, 0.2])
    >>> np.round(gaussian_max_probabilities(nominal_means(p)), 8)
    array([0.5, 0.3, 0.2])
    """
    p = np.asarray(probabilities, float)
    if len(p) == 1:
        return np.zeros(1)
    u, _ = _hermite()

    def objective(free):
        mu = np.concatenate([[0.0], free])
        terms, log_p = _log_terms(mu)
        expected_max = np.sum(np.exp(terms) * (u + mu[:, None]))
        return expected_max - p @ mu, (np.exp(log_p) - p)[1:]

    start = np.log(p[1:]) - np.log(p[0])
    fit = optimize.minimize(
        objective, start, jac=True, method="L-BFGS-B",
        options={"gtol": MEANS_TOL, "ftol": 0.0, "maxiter": 1000},
    )  # fmt: skip
    return np.concatenate([[0.0], fit.x])


@dataclass(frozen=True)
class NominalBlock:
    """One nominal column in the latent matrix: its K latent columns
    (``dims``), means ``mu`` and each row's observed category (an index
    into ``dims``; -1 where missing)."""

    dims: np.ndarray
    mu: np.ndarray
    level: np.ndarray

    @property
    def observed(self):
        return self.level >= 0


def starting_values(block):
    """Latent values of the observed rows (n_observed, K) that satisfy
    their argmax: z_k + mu_k = 0 for the other categories, 1 for the
    observed one (exact cells of the latent bounds until the sweep moves
    them)."""
    level = block.level[block.observed]
    start = np.broadcast_to(-block.mu, (len(level), len(block.mu))).copy()
    start[np.arange(len(level)), level] += 1.0
    return start


def nominal_sweep(Z, blocks, precision, rng):
    """Update the latent values of every observed category in place, one
    latent column at a time, each from its full conditional normal
    restricted by the current values of its column's other latent values.
    """
    for block in blocks:
        rows = np.flatnonzero(block.observed)
        level = block.level[rows]
        for k, d in enumerate(block.dims):
            s = 1.0 / np.sqrt(precision[d, d])
            m = Z[rows, d] - (Z[rows] @ precision[:, d]) * (s * s)
            shifted = Z[np.ix_(rows, block.dims)] + block.mu
            winner = level == k
            shifted[:, k] = -np.inf
            lower = np.where(winner, shifted.max(axis=1) - block.mu[k], -np.inf)
            top = shifted[np.arange(len(rows)), level]
            upper = np.where(winner, np.inf, top - block.mu[k])
            Z[rows, d] = m + s * sample_interval((lower - m) / s, (upper - m) / s, rng)
    return Z


def categories_of(Z, block):
    """The category index argmax_k (z_k + mu_k) of every row of Z."""
    return np.argmax(Z[:, block.dims] + block.mu, axis=1)


def within_block_pairs(blocks, q):
    """Boolean (q, q): the pairs of distinct latent columns of one nominal
    column, whose correlation the model fixes at 0."""
    mask = np.zeros((q, q), dtype=bool)
    for block in blocks:
        mask[np.ix_(block.dims, block.dims)] = True
    np.fill_diagonal(mask, False)
    return mask


def centre_blocks(R, blocks):
    """R with each nominal column's correlations with every other latent
    column centred over its K latent columns (summing to 0).

    The category depends on a column's latent values only through their
    differences, so adding the same amount b_x to a block's K correlations
    with another latent column x leaves the likelihood unchanged: the
    model identifies the centred correlations only (the block's sum is
    then unrelated to the rest).  Centring keeps R positive definite: with
    C the correlation of the other columns and B their cross-correlations
    with the block, I - B'C^-1B > 0 implies I - PB'C^-1BP > 0 for the
    centring projector P.
    """
    R = R.copy()
    for block in blocks:
        dims = block.dims
        others = np.setdiff1d(np.arange(len(R)), dims)
        cross = R[np.ix_(others, dims)]
        cross -= cross.mean(axis=1, keepdims=True)
        R[np.ix_(others, dims)] = cross
        R[np.ix_(dims, others)] = cross.T
    return R
