"""One missing normal value under a selection model (statistical kernel).

The building block of the MNAR selection-model E-step: a value y, normal
N(nu, s^2) given what is observed in its row (the conditional normal of the
data model), goes missing with probability F(eta + psi * y), F the probit
(standard normal CDF) or logistic link, eta gathering the intercept and the
row's observed covariates.  Given that it is missing, y has density

    f(y | missing) = N(y; nu, s^2) F(eta + psi y) / P(missing),
    P(missing) = E[F(eta + psi y)],  y ~ N(nu, s^2),

and the three quantities the EM needs are log P(missing) (the row's
contribution to the observed-data likelihood beyond log N(x_o)), E[y |
missing] and Var[y | missing].  Each function takes arrays (one entry per
row) and broadcasts.

Probit: closed form.  With u ~ N(0, 1) independent of z = (y - nu) / s,
"missing" is the event u < eta + psi nu + psi s z, i.e. w < a with
w = (u - psi s z) / sqrt(1 + psi^2 s^2) ~ N(0, 1) and
a = (eta + psi nu) / sqrt(1 + psi^2 s^2); corr(z, w) = -rho with
rho = psi s / sqrt(1 + psi^2 s^2).  The truncated-normal moments of w
(Johnson, Kotz & Balakrishnan 1994, sec. 10.1) give, with the inverse Mills
ratio lam = phi(a) / Phi(a):

    P(missing) = Phi(a),  E[y | missing] = nu + s rho lam,
    Var[y | missing] = s^2 (1 - rho^2 lam (lam + a)).

This is Heckman's (1979) selection model with the outcome as its own
selection covariate; the sign convention here is the issue's:
psi > 0 means larger values are missing more often.

Logit: no closed form; Gauss-Hermite quadrature on y = nu + sqrt(2) s t
(Ibrahim 1990's method of weights with quadrature nodes).  The logistic
curve has poles at imaginary distance pi / |psi| from the real axis, so
the rule's error falls like exp(-2 d sqrt(2 n)) with d = pi / (sqrt(2)
|psi| s) (the standard bound for functions analytic in a strip); the number
of nodes grows with (psi s)^2 to keep it near 1e-12.
"""

import numpy as np
from scipy import special

# Gauss-Hermite nodes for the logit link: at least MIN_NODES, and about
# NODES_PER_STEEPNESS * (psi s)^2, enough for an error near 1e-12 (see the
# module docstring), up to MAX_NODES.
MIN_NODES = 24
NODES_PER_STEEPNESS = 20.0
MAX_NODES = 1000


def gauss_hermite_size(steepness):
    """Nodes for a logistic curve of slope ``steepness`` = max |psi| s."""
    wanted = np.ceil(NODES_PER_STEEPNESS * float(steepness) ** 2)
    return int(np.clip(wanted, MIN_NODES, MAX_NODES))


def gauss_hermite(n_nodes):
    """Nodes t and log weights of the ``n_nodes``-point Gauss-Hermite rule
    for weight exp(-t^2), without the nodes whose weight underflows to 0.

    scipy's ``roots_hermite`` stays accurate for large rules, where NumPy's
    ``hermgauss`` overflows (above about 350 points).
    """
    t, w = special.roots_hermite(n_nodes)
    keep = w > 0
    return t[keep], np.log(w[keep])


def log_inverse_mills(a):
    """log(phi(a) / Phi(a)), stable for very negative a."""
    return -0.5 * a * a - 0.5 * np.log(2.0 * np.pi) - special.log_ndtr(a)


def probit_missing_moments(nu, s, eta, psi):
    """log P(missing), E[y | missing] and Var[y | missing], probit link.

    Parameters
    ----------
    nu, s : array-like
        Mean and standard deviation (> 0) of y given the row's observed cells.
    eta : array-like
        The rest of the selection index: intercept plus observed covariates.
    psi : array-like
        The coefficient of y itself (0: missing at random).

    Returns
    -------
    log_prob, mean, variance : ndarrays (broadcast shape)

    Examples
    --------
    >>> log_prob, mean, variance = probit_missing_moments(0.0, 1.0, 0.0, 0.0)
    >>> float(np.exp(log_prob)), float(mean), float(variance)
    (0.5, 0.0, 1.0)
    >>> _, mean, _ = probit_missing_moments(0.0, 1.0, 0.0, 1.0)
    >>> bool(mean > 0)  # psi > 0: the missing values are the larger ones
    True
    """
    nu, s, eta, psi = np.broadcast_arrays(
        *(np.asarray(v, float) for v in (nu, s, eta, psi))
    )
    scale = np.sqrt(1.0 + (psi * s) ** 2)
    a = (eta + psi * nu) / scale
    rho = psi * s / scale
    lam = np.exp(log_inverse_mills(a))
    log_prob = special.log_ndtr(a)
    mean = nu + s * rho * lam
    variance = s * s * (1.0 - rho * rho * lam * (lam + a))
    return log_prob, mean, variance


def logit_missing_moments(nu, s, eta, psi, n_nodes=None):
    """log P(missing), E[y | missing] and Var[y | missing], logistic link.

    Gauss-Hermite quadrature: E[g(y)] = sum_k w_k g(nu + sqrt(2) s t_k) /
    sqrt(pi) for the nodes t_k and weights w_k of ``n_nodes`` points; the
    weights times expit(eta + psi y_k), normalised, are the posterior weights
    of the nodes given "missing".  Sums are taken in log space, so a tiny
    P(missing) keeps its relative precision.

    Parameters
    ----------
    nu, s, eta, psi : array-like
        As in :func:`probit_missing_moments`.
    n_nodes : int, optional
        Points of the rule; by default :func:`gauss_hermite_size` of the
        largest |psi| s (24 up to |psi| s = 1.1, 80 at 2, 500 at 5).

    Returns
    -------
    log_prob, mean, variance : ndarrays (broadcast shape)
    """
    nu, s, eta, psi = np.broadcast_arrays(
        *(np.asarray(v, float) for v in (nu, s, eta, psi))
    )
    if n_nodes is None:
        n_nodes = gauss_hermite_size(np.max(np.abs(psi) * s, initial=0.0))
    t, log_w = gauss_hermite(n_nodes)
    y = nu[..., None] + np.sqrt(2.0) * s[..., None] * t  # (..., n_nodes)
    log_terms = (
        log_w
        - 0.5 * np.log(np.pi)
        - np.logaddexp(0.0, -(eta[..., None] + psi[..., None] * y))
    )  # log(w_k / sqrt(pi) * expit(index)), expit(x) = 1 / (1 + exp(-x))
    log_prob = special.logsumexp(log_terms, axis=-1)
    posterior = np.exp(log_terms - log_prob[..., None])
    mean = np.sum(posterior * y, axis=-1)
    variance = np.sum(posterior * (y - mean[..., None]) ** 2, axis=-1)
    return log_prob, mean, variance
