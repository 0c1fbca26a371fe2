"""Weighted probit and logit regression (statistical kernel).

The M-step of a selection model fits each missingness model, P(missing |
x) = F(design @ coef + offset), to pseudo-rows that carry posterior weights
(Ibrahim 1990's method of weights): a weighted binary regression.  The
offset carries terms whose coefficient is fixed (a psi held at a chosen
value in a sensitivity analysis).  Newton's method on the weighted
log-likelihood, which is concave in the coefficients for both links
(Pratt 1981 for the probit), with step halving so that every step goes up.

References
----------
Pratt, J. W. (1981). Concavity of the log likelihood. *JASA* 76, 103-106.
McCullagh, P. & Nelder, J. A. (1989). *Generalized Linear Models*, 2nd ed.,
ch. 4.
"""

from dataclasses import dataclass

import numpy as np
from scipy import special

LINKS = ("probit", "logit")


@dataclass(frozen=True)
class BinaryFit:
    """Outcome of :func:`fit_binary_glm`."""

    coef: np.ndarray
    loglik: float  # weighted log-likelihood at coef
    n_iter: int
    converged: bool


def log_probabilities(index, link):
    """log F(index) and log(1 - F(index)), accurate in both tails."""
    return log_cdf(index, link), log_cdf(-index, link)


def log_cdf(index, link):
    """log F(index) alone, accurate in both tails (half the work of
    :func:`log_probabilities`; both links are symmetric, 1 - F(x) = F(-x))."""
    if link == "probit":
        return special.log_ndtr(index)
    return -np.logaddexp(0.0, -index)


def weighted_loglik(coef, design, outcome, weights, link, offset=0.0):
    """sum_i w_i [y_i log F(eta_i) + (1 - y_i) log(1 - F(eta_i))].

    A Newton step that runs off on (quasi-)separated data can overflow the
    index; the value is then -inf or NaN, which the step halving of
    :func:`fit_binary_glm` rejects, so the overflow is not worth a warning.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        index = design @ coef + offset
        return _sum_finite(weights, log_cdf(np.where(outcome, index, -index), link))


def _sum_finite(weights, log_prob):
    """sum_i w_i log_prob_i, or -inf when that is not finite.

    Not ``weights @ log_prob``: OpenBLAS splits a long dot product over its
    threads, and on a machine whose cores are busy with other work each such
    call waited milliseconds for them (fits of a few hundred rows ran 7x
    slower, most of it here); einsum's own loop takes microseconds.
    """
    value = float(np.einsum("i,i->", weights, log_prob))
    return value if np.isfinite(value) else -np.inf


def _score_and_curvature(index, outcome, link):
    """d/d(index) of each row's log-likelihood, minus its second derivative,
    and the log-likelihood itself (each row's log F(q index), q = 2y - 1)."""
    sign = np.where(outcome, 1.0, -1.0)
    signed = sign * index
    log_prob = log_cdf(signed, link)
    if link == "logit":
        p = special.expit(index)
        return outcome - p, p * (1.0 - p), log_prob
    # Probit: log Phi(q index) has derivative q lam and second derivative
    # -lam (lam + q index), lam = phi(q index) / Phi(q index).
    with np.errstate(over="ignore"):  # lam ~ -signed far in the left tail
        lam = np.exp(-0.5 * signed**2 - 0.5 * np.log(2 * np.pi) - log_prob)
    return sign * lam, lam * (lam + signed), log_prob


def fit_binary_glm(
    design,
    outcome,
    weights=None,
    *,
    link="probit",
    offset=0.0,
    start=None,
    max_iter=100,
    tol=1e-10,
):
    """Maximise the weighted probit or logit log-likelihood by Newton's method.

    Parameters
    ----------
    design : ndarray of shape (n, q)
        Covariates (include a column of ones for an intercept).
    outcome : ndarray of shape (n,)
        1 (or True) where the event happened, e.g. the value is missing.
    weights : ndarray of shape (n,), optional
        Non-negative row weights (posterior weights of pseudo-rows); 1 each
        by default.
    link : {"probit", "logit"}
    offset : float or ndarray of shape (n,)
        Added to the linear index (terms with a fixed coefficient).
    start : ndarray of shape (q,), optional
        Starting coefficients (e.g. the previous M-step's); zeros by default.
    max_iter, tol : int and float
        Stop when the largest Newton step is below ``tol``.

    Returns
    -------
    BinaryFit
        Not converged when the data are (quasi-)separated and the
        coefficients run off; the log-likelihood still never went down.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 0.5, -0.5, 1.5])
    >>> y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    >>> fit = fit_binary_glm(np.column_stack([np.ones(8), x]), y, link="logit")
    >>> fit.converged, fit.coef.round(4)
    (True, array([-0.123 ,  0.6149]))
    """
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}, got {link!r}")
    design = np.asarray(design, dtype=np.float64)
    outcome = np.asarray(outcome).astype(bool)
    weights = np.ones(len(outcome)) if weights is None else np.asarray(weights, float)
    coef = np.zeros(design.shape[1]) if start is None else np.array(start, float)
    if max_iter < 1:
        value = weighted_loglik(coef, design, outcome, weights, link, offset)
    for iteration in range(1, max_iter + 1):
        # Far in a tail (quasi-separated data), the score and curvature can
        # overflow; a step that is not finite then fails the halving below,
        # which ends the fit as not converged, so no warning is needed.
        with np.errstate(over="ignore", invalid="ignore"):
            index = design @ coef + offset
            score, curvature, log_prob = _score_and_curvature(index, outcome, link)
            if iteration == 1:  # the log-likelihood at the start, from log_prob
                value = _sum_finite(weights, log_prob)
            gradient = design.T @ (weights * score)
            information = (design * (weights * curvature)[:, None]).T @ design
        if not (np.all(np.isfinite(gradient)) and np.all(np.isfinite(information))):
            return BinaryFit(coef, value, iteration, False)
        try:
            step = np.linalg.solve(information, gradient)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(information, gradient, rcond=None)[0]
        # Step halving: the log-likelihood is concave, so a short enough
        # Newton step always goes up unless we are at the maximum.
        for _ in range(40):
            candidate = coef + step
            new_value = weighted_loglik(
                candidate, design, outcome, weights, link, offset
            )
            if new_value >= value - 1e-12 * abs(value):
                break
            step = step / 2.0
        else:
            return BinaryFit(coef, value, iteration, False)
        coef, value = candidate, new_value
        if np.max(np.abs(step)) < tol:
            return BinaryFit(coef, value, iteration, True)
    return BinaryFit(coef, value, max_iter, False)
