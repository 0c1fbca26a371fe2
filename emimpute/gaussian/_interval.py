"""A standard normal restricted to an interval (a, b]: its probability,
mean and variance, and draws from it, accurate for wide, narrow and far-tail
intervals alike (Gaussian algebra).

The Gaussian copula's E-step needs these for every cell known only to lie
in an interval (an ordinal level, a censored value), after standardising by
the cell's conditional mean and sd, which can put the interval far out in a
tail (a strongly correlated row) or make it very narrow (a rare level).

Moments.  With the interval turned, by symmetry, so that its centre is at
or below 0 (then the bound b is the one nearest 0, or the interval holds 0),
the textbook formulas (Johnson, Kotz & Balakrishnan 1994, sec. 10.1)

    P = Phi(b) - Phi(a),   E = (phi(a) - phi(b)) / P,
    Var = 1 + (a phi(a) - b phi(b)) / P - E^2,

with P from ``log_ndtr`` (no cancellation in the lower tail), lose digits in
two cases only: a narrow interval (Var ~ (b - a)^2 / 12 left after
cancelling terms of order 1 + b^2) and one far in the tail (E^2 ~ b^2 against
Var ~ 1 / b^2).  Those intervals (narrower than ``NARROW``, or beyond
``DIRECT_FROM`` sds) take Gauss-Legendre quadrature of the density relative
to its value at z0, the point of the interval nearest 0,

    exp(-(z^2 - z0^2) / 2)   on (a, b] within ``reach`` of z0,

where reach = sqrt(z0^2 + 2 L) - |z0| is where that falls to e^-L,
L = ``TAIL_LOG``: the integrand is smooth and varies by at most e^L there,
so ``QUAD_NODES`` points give it to rounding, and the variance comes from
centred sums.

Draws.  Inverse CDF in the lower half: u = Phi(a) + v (Phi(b) - Phi(a)),
v uniform, z = Phi^-1(u); beyond ``PLAIN_FROM`` sds in logs,
log u = log Phi(b) + log(v + (1 - v) Phi(a) / Phi(b)) by ``log_ndtr`` and
``ndtri_exp``, so draws stay finite however far out the interval lies.

References
----------
Johnson, N. L., Kotz, S. & Balakrishnan, N. (1994). *Continuous Univariate
Distributions*, vol. 1, 2nd ed., Wiley, sec. 10.1.
"""

from functools import lru_cache

import numpy as np
from scipy import special

# Below this width the textbook variance loses more than about 1e-11 of
# its relative accuracy (1e-16 (1 + b^2) / width^2 at |b| <= DIRECT_FROM).
NARROW = 0.05
# Beyond this many sds (the bound nearest 0), E^2 ~ b^2 against
# Var ~ 1 / b^2 costs the textbook variance 1e-16 b^4: 4e-13 at 8.
DIRECT_FROM = 8.0
# The quadrature covers the interval where the density is within e^-TAIL_LOG
# of its largest value on it; the rest holds less than e^-TAIL_LOG of the
# mass (relative), as the density falls at least exponentially from z0.
TAIL_LOG = 40.0
QUAD_NODES = 64
# Draws use Phi directly for intervals (turned to the lower half) whose
# upper bound is above this (Phi(-30) = 5e-198, far from underflow).
PLAIN_FROM = -30.0
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def interval_moments(a, b):
    """log P(a < Z <= b), E[Z | a < Z <= b] and Var[Z | a < Z <= b] for a
    standard normal Z, elementwise.

    Parameters
    ----------
    a, b : array_like
        Bounds, a < b (either may be infinite); broadcast together.

    Returns
    -------
    log_prob, mean, var : ndarray

    Examples
    --------
    >>> log_prob, mean, var = interval_moments([0.0, -np.inf], [np.inf, 0.0])
    >>> np.round(np.exp(log_prob), 12), np.round(mean, 12)
    (array([0.5, 0.5]), array([ 0.79788456, -0.79788456]))
    >>> np.round(var, 12)
    array([0.36338023, 0.36338023])
    >>> lp, m, v = interval_moments(-41.0, -40.0)  # far tail: sd about 1 / 40
    >>> round(float(m), 6), round(float(np.sqrt(v)), 6)
    (-40.024969, 0.024953)
    """
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    lo, hi, turned = _turned(a, b)
    log_prob, mean, var = (np.empty(lo.shape) for _ in range(3))
    direct = (hi - lo >= NARROW) & (hi >= -DIRECT_FROM)
    for rows, moments in ((direct, _textbook), (~direct, _by_quadrature)):
        if np.any(rows):
            log_prob[rows], mean[rows], var[rows] = moments(lo[rows], hi[rows])
    return log_prob, np.where(turned, -mean, mean), var


def _turned(a, b):
    """(lo, hi, turned): the interval turned by z -> -z where that puts
    its centre at or below 0.  (a + b is NaN only for the whole line, which
    needs no turn.)"""
    with np.errstate(invalid="ignore"):
        turned = (a + b) > 0
    return np.where(turned, -b, a), np.where(turned, -a, b), turned


def _log_phi(z):
    return -0.5 * z * z - _LOG_SQRT_2PI


def _textbook(lo, hi):
    """The closed forms, for lo + hi <= 0, hi - lo >= NARROW and
    hi >= -DIRECT_FROM."""
    log_hi = special.log_ndtr(hi)
    log_prob = log_hi + np.log(-np.expm1(special.log_ndtr(lo) - log_hi))
    with np.errstate(invalid="ignore"):  # inf * 0 at infinite bounds
        r_lo = np.exp(_log_phi(lo) - log_prob)  # phi(lo) / P, 0 at -inf
        r_hi = np.exp(_log_phi(hi) - log_prob)
        mean = r_lo - r_hi
        lo_term = np.where(np.isfinite(lo), lo * r_lo, 0.0)
        hi_term = np.where(np.isfinite(hi), hi * r_hi, 0.0)
    var = 1.0 + lo_term - hi_term - mean * mean
    return log_prob, mean, np.maximum(var, 0.0)


def _by_quadrature(lo, hi):
    """Gauss-Legendre on (lo, hi] within reach of z0 (module notes)."""
    z0 = np.clip(0.0, lo, hi)
    reach = np.sqrt(z0 * z0 + 2.0 * TAIL_LOG) - np.abs(z0)
    start, end = np.maximum(lo, z0 - reach), np.minimum(hi, z0 + reach)
    x, w = gauss_legendre(QUAD_NODES)
    half = 0.5 * (end - start)
    z = 0.5 * (end + start)[:, None] + half[:, None] * x
    weight = half[:, None] * w * np.exp(-0.5 * (z * z - (z0 * z0)[:, None]))
    mass = weight.sum(axis=1)
    mean = (weight * z).sum(axis=1) / mass
    centred = z - mean[:, None]
    var = (weight * centred * centred).sum(axis=1) / mass
    return np.log(mass) + _log_phi(z0), mean, var


@lru_cache(maxsize=4)
def gauss_legendre(n_nodes):
    """Gauss-Legendre nodes and weights on [-1, 1], computed once per size
    (read-only, as they are shared)."""
    x, w = special.roots_legendre(n_nodes)
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


def sample_interval(a, b, rng):
    """Draws of a standard normal Z given a < Z <= b, elementwise.

    Parameters
    ----------
    a, b : array_like
        Bounds, a < b (either may be infinite); broadcast together.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray
        One draw per element, within [a, b].

    Examples
    --------
    >>> z = sample_interval(-50.0, -49.0, np.random.default_rng(0))
    >>> bool(-50.0 <= z <= -49.0)
    True
    """
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    lo, hi, turned = _turned(a, b)
    v = rng.random(lo.shape)
    z = np.empty(lo.shape)
    # Phi itself where Phi(hi) is far from underflow (its relative accuracy
    # holds there, and ndtri inverts it to rounding); logs further out.
    plain = hi > PLAIN_FROM
    if plain.all():  # the usual case: no gathering and scattering
        p_hi = special.ndtr(hi)
        if np.isneginf(lo).all():  # half-lines (binary cells): Phi(lo) = 0
            z = special.ndtri(v * p_hi)
        else:
            p_lo = special.ndtr(lo)
            z = special.ndtri(p_lo + v * (p_hi - p_lo))
        z = np.clip(z, lo, hi, out=z)
        return np.negative(z, out=z, where=turned)
    p_lo, p_hi = special.ndtr(lo[plain]), special.ndtr(hi[plain])
    z[plain] = special.ndtri(p_lo + v[plain] * (p_hi - p_lo))
    far = ~plain
    if np.any(far):
        log_hi = special.log_ndtr(hi[far])
        ratio = np.exp(special.log_ndtr(lo[far]) - log_hi)  # Phi(lo) / Phi(hi)
        z[far] = special.ndtri_exp(log_hi + np.log(v[far] + (1.0 - v[far]) * ratio))
    z = np.clip(z, lo, hi)
    return np.where(turned, -z, z)
