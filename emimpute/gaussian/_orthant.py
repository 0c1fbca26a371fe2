"""Moments of a normal vector truncated to the positive orthant, k = 1, 2, 3.

For each of n rows, ``u ~ N(m, V)`` with k = 1, 2 or 3 components is conditioned
on ``u > 0`` (every component positive); :func:`orthant_moments` returns
``log P(u > 0)``, ``E[u | u > 0]`` and ``Cov[u | u > 0]`` for all rows at once.
It serves the E-step of a probit (Heckman-type) selection model.

Sources
-------
* k = 1: the truncated normal's inverse Mills ratio (Johnson, Kotz &
  Balakrishnan 1994, *Continuous Univariate Distributions* 1, sec. 10.1).
  Far in the upper tail (bound above ``LAGUERRE_FROM`` sd) the ratios are taken
  from a Gauss-Laguerre rule on the exponentially tilted excess over the
  bound, which has no cancellation (see :func:`_upper_tail_laguerre`).
* The bivariate orthant probability: Drezner, Z. & Wesolowsky, G. O. (1990),
  "On the computation of the bivariate normal integral", J. Statist. Comput.
  Simul. 35, 101-107, with Genz's double-precision refinements: Gauss-Legendre
  on the arcsin form for ``|rho| < 0.925`` and a series plus quadrature near
  ``|rho| = 1`` (Genz, A. (2004), "Numerical computation of rectangular
  bivariate and trivariate normal and t probabilities", Statistics and
  Computing 14, 251-260).  Written here from the paper's formulas,
  vectorised over rows; the loops are over the 20 quadrature nodes only.
* k = 2 moments: Tallis, G. M. (1961), "The moment generating function of the
  truncated multi-normal distribution", JRSS-B 23, 223-229; in the form of
  Manjunath, B. G. & Wilhelm, S. (2012), "Moments calculation for the doubly
  truncated multivariate normal density", arXiv:1206.5387, eqs. (9)-(16).
* k = 2 rows where Genz + Tallis cannot give ~1e-10 relative accuracy
  (``P(u > 0)`` below ``ACCURATE_FROM``, where Genz's absolute error dominates,
  or moments whose terms cancel, e.g. near ``|rho| = 1``): the log probability
  and the moments come from one-dimensional quadrature on the log scale
  (:func:`_tail_moments_2d`), conditioning on the component whose bound is
  the farther out, with the laws of total expectation and variance and the
  k = 1 moments for the other component.  No cancellation is left, so these
  rows are as accurate as the others (checked against mpmath to log P = -1e5).
* The trivariate orthant probability: Genz (2004), sec. 3 (his TVNL):
  Plackett's (1954, Biometrika 41, 351-360) identity integrated along the
  path r12(t) = sin(t asin r12), r13(t) = sin(t asin r13), r23 fixed (the
  largest |r|), P = Phi(h1) Phi_2(h2, h3; r23) + a one-dimensional integral
  of bivariate densities times univariate conditional probabilities.
  Genz integrates adaptively; here a fixed 64-point Gauss-Legendre rule,
  vectorised, with the 32-point rule's difference as error estimate.
* k = 3 moments: Manjunath & Wilhelm (2012), eqs. (9)-(16), with F_k a
  density times the conditional bivariate orthant probability
  (:func:`bivariate_upper`) and F_kq a bivariate density times a
  conditional univariate probability.
* k = 3 rows where that cannot give ~1e-10 (by an error estimate from the
  path rule, Genz's bivariate error, rounding, and the cancellation in
  Tallis' formulas; or P below 1e-12):
  one-dimensional log-scale quadrature conditioning on the component whose
  bound is farthest out, with the exact k = 2 moments of the other two at
  each node, mixed by the laws of total expectation and variance
  (:func:`_tail_moments_3d`).  Its split points use a rough log probability
  (Mendell, N. R. & Elston, R. C. (1974), "Multifactorial qualitative traits:
  genetic analysis and prediction of recurrence risks", Biometrics 30,
  41-57) in the far tail; they only place the nodes.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, ndtr

LOG_2PI = float(np.log(2.0 * np.pi))

# Gauss-Legendre nodes on [-1, 1]: Genz (2004) uses 6, 12 or 20 points by
# |rho|; 20 points everywhere is as accurate and keeps one vectorised branch.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)

# Above this standardised bound the k = 1 ratios come from Gauss-Laguerre
# (the direct formula's 1 - lambda (lambda - a) cancels about log10(a^2)
# digits).
LAGUERRE_FROM = 2.0
_GLAG_X, _GLAG_W = np.polynomial.laguerre.laggauss(60)

# Below this orthant probability the k = 2 moments are computed by the
# log-scale tail quadrature instead of Tallis' ratios (Genz's error, ~2e-17
# absolute, would be 2e-12 relative here; more rows go there by _moments_2d's
# cancellation check).
ACCURATE_FROM = 1e-5

# Below this log probability (k = 2, 3) accurate is False.
TRUSTED_LOG_PROB = -1e6

# Genz's switch between the arcsin form and the form near |rho| = 1.
_RHO_SWITCH = 0.925


@dataclass(frozen=True)
class OrthantMoments:
    """Moments of ``u ~ N(m, V)`` conditioned on ``u > 0``, per row.

    Attributes
    ----------
    log_prob : ndarray of shape (n,)
        ``log P(u > 0)``.
    mean : ndarray of shape (n, k)
        ``E[u | u > 0]``.
    cov : ndarray of shape (n, k, k)
        ``Cov[u | u > 0]``, symmetric positive semi-definite.
    accurate : ndarray of bool, shape (n,)
        True where the moments are guaranteed to about 1e-9 relative
        accuracy; rows with False should be recomputed by quadrature.
    """

    log_prob: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    accurate: np.ndarray


def bivariate_upper(h, k, rho):
    """Upper orthant probability of a standard bivariate normal.

    ``P(Z1 > h, Z2 > k)`` for ``(Z1, Z2)`` standard normal with correlation
    ``rho``, by Genz's (2004) version of Drezner & Wesolowsky (1990); absolute
    error about 1e-15.

    Parameters
    ----------
    h, k : array_like
        Lower limits (broadcast against each other and ``rho``; may be
        infinite).
    rho : array_like
        Correlations, ``-1 < rho < 1``.

    Returns
    -------
    ndarray
        The probabilities, of the broadcast shape.

    Examples
    --------
    >>> import numpy as np
    >>> p = bivariate_upper([0.0, 1.0], [0.0, -1.0], 0.5)
    >>> bool(np.isclose(p[0], 1 / 4 + np.arcsin(0.5) / (2 * np.pi)))
    True
    """
    h, k, rho = (np.asarray(x, dtype=float) for x in (h, k, rho))
    h, k, rho = np.broadcast_arrays(h, k, rho)
    if np.any(np.abs(rho) >= 1.0) or np.any(np.isnan(rho)):
        raise ValueError("bivariate_upper: rho must lie strictly in (-1, 1).")
    shape = h.shape
    h, k, rho = h.ravel(), k.ravel(), rho.ravel()
    # Infinite limits: Genz's formulas take finite numbers; +-40 sd is
    # exact to double precision (Phi(-40) ~ 4e-350 underflows).
    h, k = np.clip(h, -40.0, 40.0), np.clip(k, -40.0, 40.0)
    out = np.empty_like(h)
    mid = np.abs(rho) < _RHO_SWITCH
    out[mid] = _upper_arcsin(h[mid], k[mid], rho[mid])
    out[~mid] = _upper_near_one(h[~mid], k[~mid], rho[~mid])
    return np.clip(out, 0.0, 1.0).reshape(shape)


def log_bivariate_upper(h, k, rho):
    """``log P(Z1 > h, Z2 > k)``, accurate also where the probability is tiny.

    Genz's algorithm where the probability is at least ``ACCURATE_FROM``, the
    log-scale tail quadrature of :func:`orthant_moments` elsewhere (about
    1e-12 relative accuracy in the probability, down to ``log P = -1e5``).

    Parameters
    ----------
    h, k, rho : array_like
        As in :func:`bivariate_upper` (finite limits).

    Returns
    -------
    ndarray
        The log probabilities, of the broadcast shape.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import log_ndtr
    >>> lp = log_bivariate_upper(30.0, 20.0, 0.0)  # P ~ 1e-285
    >>> bool(np.isclose(lp, log_ndtr(-30.0) + log_ndtr(-20.0), rtol=1e-13))
    True
    """
    h, k, rho = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (h, k, rho)))
    shape = h.shape
    h, k, rho = h.ravel(), k.ravel(), rho.ravel()
    prob = bivariate_upper(h, k, rho)
    out = np.log(np.maximum(prob, np.finfo(float).tiny))
    slow = np.flatnonzero(prob < ACCURATE_FROM)
    for start in range(0, len(slow), _TAIL_CHUNK):  # chunks bound the memory
        idx = slow[start : start + _TAIL_CHUNK]
        b1, b2 = np.maximum(h[idx], k[idx]), np.minimum(h[idx], k[idx])
        out[idx] = _tail_moments_2d(b1, b2, rho[idx])[0]
    return out.reshape(shape)


def _upper_arcsin(h, k, rho):
    """Genz (2004), eq. (3): P = Phi(-h) Phi(-k) + 1/(2 pi) times the
    integral over theta in (0, asin rho) of
    exp(-(h^2 + k^2 - 2 h k sin theta) / (2 cos^2 theta)), by Gauss-Legendre."""
    hk, hs = h * k, (h * h + k * k) / 2.0
    asr = np.arcsin(rho)
    total = np.empty_like(h)
    # All nodes at once on (rows, nodes) arrays, a block of rows at a time
    # (a loop over the 20 nodes paid NumPy's call overhead on short vectors).
    for rows in _row_blocks(len(h), len(_GL_X)):
        sn = np.sin(asr[rows, None] * (_GL_X + 1.0) / 2.0)
        exponent = (sn * hk[rows, None] - hs[rows, None]) / (1.0 - sn * sn)
        total[rows] = np.exp(exponent) @ _GL_W
    return total * asr / (4.0 * np.pi) + ndtr(-h) * ndtr(-k)


def _row_blocks(n_rows, n_nodes):
    """Slices of rows such that a (rows, nodes) block holds about 2**18
    numbers."""
    step = max(1, 2**18 // n_nodes)
    return [slice(start, start + step) for start in range(0, n_rows, step)]


def _upper_near_one(h, k, rho):
    """Genz (2004), sec. 2.2: for |rho| >= 0.925, with s = sqrt(1 - rho^2) the
    integral over x in (0, s) in Drezner & Wesolowsky's form, whose
    singular part at x = 0 is integrated exactly by a two-term series and
    the smooth remainder by Gauss-Legendre."""
    neg = rho < 0
    k = np.where(neg, -k, k)  # P for -rho from P for rho with k -> -k
    hk = h * k
    as_ = (1.0 - rho) * (1.0 + rho)
    a = np.sqrt(as_)
    bs = (h - k) ** 2
    c = (4.0 - hk) / 8.0
    d = (12.0 - hk) / 16.0
    asr = -(bs / as_ + hk) / 2.0
    bvn = np.where(
        asr > -100.0,
        a
        * np.exp(np.maximum(asr, -100.0))
        * (1.0 - c * (bs - as_) * (1.0 - d * bs / 5.0) / 3.0 + c * d * as_ * as_ / 5.0),
        0.0,
    )
    b = np.sqrt(bs)
    series = (
        np.exp(np.minimum(-hk / 2.0, 100.0))
        * np.sqrt(2.0 * np.pi)
        * ndtr(-b / a)
        * b
        * (1.0 - c * bs * (1.0 - d * bs / 5.0) / 3.0)
    )
    bvn = bvn - np.where(-hk < 100.0, series, 0.0)
    half = a / 2.0
    for rows in _row_blocks(len(h), len(_GL_X)):  # all nodes at once
        bvn[rows] += _near_one_nodes(
            half[rows, None], bs[rows, None], hk[rows, None], c[rows, None],
            d[rows, None],
        )  # fmt: skip
    bvn = -bvn / (2.0 * np.pi)
    # rho > 0: P = Phi(-max(h, k)) - bvn; rho < 0: P = bvn' + P(h < Z < k),
    # the interval probability taken on the side that does not cancel.
    pos = bvn + ndtr(-np.maximum(h, k))
    between = np.where(h < 0.0, ndtr(k) - ndtr(h), ndtr(-h) - ndtr(-k))
    negv = -bvn + np.where(k > h, between, 0.0)
    return np.where(neg, negv, pos)


def _near_one_nodes(half, bs, hk, c, d):
    """The Gauss-Legendre sum of :func:`_upper_near_one`'s smooth remainder,
    rows given as (n, 1) columns."""
    xs = (half * (_GL_X + 1.0)) ** 2
    rs = np.sqrt(1.0 - xs)
    asr = -(bs / xs + hk) / 2.0
    # exp(asr) * exp(-hk xs / (2 (1 + rs)^2)) in one exponent,
    # -bs / (2 xs) - hk / (1 + rs), which cannot overflow.
    both = np.exp(np.maximum(-bs / (2.0 * xs) - hk / (1.0 + rs), -745.0))
    term = both / rs - np.exp(np.maximum(asr, -745.0)) * (1.0 + c * xs * (1.0 + d * xs))
    return np.where(asr > -100.0, half * _GL_W * term, 0.0).sum(axis=1)


def _log_phi(x):
    """Log standard normal density."""
    return -0.5 * x * x - 0.5 * LOG_2PI


def _upper_tail_laguerre(a):
    """Truncated standard normal Z > a for large a, without cancellation.

    With Z = a + s / a the excess s has density proportional to
    exp(-s) exp(-s^2 / (2 a^2)) on s > 0, so a Gauss-Laguerre rule in s gives
    P(Z > a) = phi(a) / a * sum_i w_i g(s_i) with g(s) = exp(-s^2 / (2 a^2)),
    and the mean and variance of s as weighted moments: both are O(1), so the
    variance of Z, var(s) / a^2 ~ 1 / a^2, keeps full relative accuracy
    where 1 - lambda (lambda - a) would cancel.
    """
    # A loop over the nodes keeps the memory at a few arrays of len(a).  The
    # moments of s are O(1) with variance O(1), so the raw second moment
    # loses nothing to cancellation.
    mass = np.zeros_like(a)
    first = np.zeros_like(a)
    second = np.zeros_like(a)
    inv_a2 = -0.5 / (a * a)
    for s, w in zip(_GLAG_X, _GLAG_W, strict=True):
        g = w * np.exp(s * s * inv_a2)
        mass += g
        first += g * s
        second += g * (s * s)
    s_mean = first / mass
    s_var = second / mass - s_mean * s_mean
    log_prob = _log_phi(a) - np.log(a) + np.log(mass)
    return log_prob, s_mean / a, s_var / a**2  # Z - a = s / a


def truncated_standard(a):
    """Moments of a standard normal Z conditioned on Z > a, vectorised.

    Parameters
    ----------
    a : ndarray of shape (n,)
        Lower bounds (finite).

    Returns
    -------
    log_prob, mean, var : ndarray of shape (n,)
        ``log P(Z > a)``, ``E[Z | Z > a]`` and ``Var[Z | Z > a]``.

    Examples
    --------
    >>> import numpy as np
    >>> lp, m, v = truncated_standard(np.array([0.0]))
    >>> bool(np.isclose(m[0], np.sqrt(2 / np.pi)))
    True
    """
    log_prob, excess, var = _truncated_excess(np.asarray(a, dtype=float))
    return log_prob, a + excess, var


def _truncated_excess(a):
    """``log P(Z > a)``, ``E[Z - a | Z > a]`` and ``Var[Z | Z > a]``.

    The excess over the bound, not the mean, so that E[u] = s E[Z - a] for
    u = m + s Z > 0 keeps its relative accuracy when a is far out (E[Z] ~ a
    there and m + s E[Z] would cancel)."""
    log_prob = log_ndtr(-a)
    # Inverse Mills ratio phi(a) / Phi(-a) on the log scale: finite however
    # far out a is (JKB 1994, sec. 10.1: E = lambda, Var = 1 - lambda (lambda - a)).
    lam = np.exp(_log_phi(a) - log_prob)
    excess = lam - a
    var = 1.0 - lam * excess
    far = a > LAGUERRE_FROM
    if np.any(far):
        log_prob[far], excess[far], var[far] = _upper_tail_laguerre(a[far])
    return log_prob, excess, np.maximum(var, 0.0)


def _tallis_2d(a1, a2, rho, log_prob):
    """Tallis (1961) moments of a standard bivariate normal truncated below.

    Manjunath & Wilhelm (2012), eqs. (9)-(16), with sigma_kk = 1, sigma_12 =
    rho and no upper bounds: for Z > a,

    * F_1 = phi(a1) Phi((rho a1 - a2) / r) / P (the truncated marginal density
      of Z1 at its bound: a normal density times the conditional tail of Z2
      given Z1 = a1), F_2 alike, F_12 = phi_2(a1, a2; rho) / P, r^2 = 1 - rho^2;
    * E[Z_i] = sum_k sigma_ik F_k;
    * E[Z_i Z_j] = sigma_ij + sum_k sigma_ik sigma_jk a_k F_k / sigma_kk
      + sum_k sigma_ik sum_{q != k} (sigma_jq - sigma_kq sigma_jk / sigma_kk)
      F_kq, whose last bracket is r^2 for (i, j, k) = (1, 2, 1), rho r^2 for
      (1, 1, 2) and (2, 2, 1), and 0 otherwise.

    Returns the means, the (co)variances (v11, v22, v12) and a condition
    number for the cancellation in them.
    """
    r2 = (1.0 - rho) * (1.0 + rho)
    r = np.sqrt(r2)
    f1 = np.exp(_log_phi(a1) + log_ndtr((rho * a1 - a2) / r) - log_prob)
    f2 = np.exp(_log_phi(a2) + log_ndtr((rho * a2 - a1) / r) - log_prob)
    quad = (a1 * a1 - 2.0 * rho * a1 * a2 + a2 * a2) / (2.0 * r2)
    f12 = np.exp(-quad - LOG_2PI - np.log(r) - log_prob)
    e1 = f1 + rho * f2
    e2 = rho * f1 + f2
    m11 = 1.0 + a1 * f1 + rho * rho * a2 * f2 + rho * r2 * f12
    m22 = 1.0 + rho * rho * a1 * f1 + a2 * f2 + rho * r2 * f12
    m12 = rho + rho * a1 * f1 + rho * a2 * f2 + r2 * f12
    v11, v22, v12 = m11 - e1 * e1, m22 - e2 * e2, m12 - e1 * e2
    # Condition numbers: the sums of absolute terms over the result (its
    # sd for the means and for v12), by which relative errors in the F's
    # are amplified when the terms cancel (near |rho| = 1 or far in the
    # tails a variance can be 1e-6 of E[Z^2]).
    sd1, sd2 = np.sqrt(np.abs(v11)), np.sqrt(np.abs(v22))
    t1 = np.abs(a1 * f1)
    t2 = np.abs(a2 * f2)
    tq = np.abs(rho) * r2 * f12
    cond = np.maximum.reduce(
        [
            (np.abs(f1) + np.abs(rho * f2)) / (np.abs(e1) + sd1),
            (np.abs(rho * f1) + np.abs(f2)) / (np.abs(e2) + sd2),
            (1.0 + t1 + rho * rho * t2 + tq + e1 * e1) / np.abs(v11),
            (1.0 + rho * rho * t1 + t2 + tq + e2 * e2) / np.abs(v22),
            (1.0 + t1 + t2 + r2 * f12 + np.abs(e1 * e2)) / (sd1 * sd2),
        ]
    )
    return e1, e2, v11, v22, v12, cond


# Log-density drops (below the maximum) at which the tail quadrature splits
# its range; beyond the last, exp(-50) of the peak, nothing is integrated.
_TAIL_LEVELS = np.array([0.25, 1.0, 2.5, 5.0, 9.0, 15.0, 23.0, 34.0, 50.0])
_KNEE_C = np.array([-6.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.5, 6.0, 8.0])
# 10 nodes a piece agree with 32 to 5e-14 on 20,000 random rows.
_PIECE_X, _PIECE_W = np.polynomial.legendre.leggauss(10)
_TAIL_CHUNK = 4096


def _bisect(f, lo, hi, iters):
    """Vectorised bisection for f(lo) >= 0 >= f(hi) (either may be the
    larger end); returns the midpoint of the final bracket."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        up = f(mid) >= 0.0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return 0.5 * (lo + hi)


def _level_points(ell, slope, a1, mode_iters, level_iters):
    """Split points of z > a1 for integrating exp(l(z)) with l concave and
    l'' <= -1 (a normal log density plus a log-concave term, Prekopa 1973),
    so that its maximiser lies in [a1, a1 + max(l'(a1), 0)] and l has dropped
    by L within sqrt(2 L) of it.  The points are where l is L below its
    maximum for L in _TAIL_LEVELS, on both sides, so that each piece holds a
    bounded change of l whatever the scale.  Returns the points, (n, 19),
    sorted, and the maximum of l."""
    s0 = slope(a1)
    mode = np.where(
        s0 > 0.0, _bisect(slope, a1, a1 + np.maximum(s0, 0.0), mode_iters), a1
    )
    top = ell(mode)
    points = [mode]
    for level in _TAIL_LEVELS:
        width = np.sqrt(2.0 * level)

        def drop(z, level=level):
            return ell(z) - (top - level)

        right = _bisect(drop, mode, mode + width, level_iters)
        lo = np.maximum(a1, mode - width)
        left = np.where(drop(lo) >= 0.0, lo, _bisect(drop, mode, lo, level_iters))
        points = [left, *points, right]
    return np.stack(points, axis=1), top


def _tail_breakpoints(a1, a2, rho, r):
    """Split points of z > a1 for integrating exp(l(z)),
    l(z) = log phi(z) + log Phi((rho z - a2) / r), the unnormalised density
    of Z1 on the orthant (see :func:`_level_points`), plus the knees of the
    conditional tail."""

    def ell(z):
        return _log_phi(z) + log_ndtr((rho * z - a2) / r)

    def slope(z):
        c = (rho * z - a2) / r
        return -z + rho / r * np.exp(_log_phi(c) - log_ndtr(c))

    points, top = _level_points(ell, slope, a1, 64, 40)
    # The levels alone can leave the knee of Phi(c), c = (rho z - a2) / r,
    # inside a piece (a flat stretch, then a cliff of width r / |rho|); split
    # also where c crosses _KNEE_C, clipped to the range.
    safe = np.where(rho == 0.0, 1.0, rho)
    knees = (a2[:, None] + r[:, None] * _KNEE_C) / safe[:, None]
    knees = np.where((rho == 0.0)[:, None], points[:, 9:10], knees)  # mode
    knees = np.clip(knees, points[:, :1], points[:, -1:])
    return np.sort(np.concatenate([points, knees], axis=1), axis=1), top


def _tail_moments_2d(a1, a2, rho):
    """Orthant moments of a standard bivariate normal, Z > (a1, a2), by
    conditioning on Z1: P = int_{a1}^inf phi(z) Phi((rho z - a2) / r) dz on
    the log scale (piecewise Gauss-Legendre between _tail_breakpoints), and
    given Z1 = z, Z2 is N(rho z, r^2) truncated at a2, whose moments come
    from truncated_standard.  The laws of total expectation and variance
    then give all moments as weighted means with positive weights, centred
    before squaring: no cancellation however small P is, and the covariance
    is positive semi-definite by construction."""
    r = np.sqrt((1.0 - rho) * (1.0 + rho))
    points, top = _tail_breakpoints(a1, a2, rho, r)
    half = 0.5 * np.diff(points, axis=1)  # (n, pieces)
    centre = 0.5 * (points[:, 1:] + points[:, :-1])
    z = (centre[:, :, None] + half[:, :, None] * _PIECE_X).reshape(len(a1), -1)
    wq = (half[:, :, None] * _PIECE_W).reshape(len(a1), -1)
    c = (rho[:, None] * z - a2[:, None]) / r[:, None]
    omega = wq * np.exp(_log_phi(z) + log_ndtr(c) - top[:, None])
    mass = omega.sum(axis=1)
    p = omega / mass[:, None]
    # Nodes of negligible weight (zero-width pieces, the far ends) get no
    # conditional moments: dropping them changes the sums by < 1e-18.
    used = p > 1e-20
    p = np.where(used, p, 0.0)
    _, m_c, v_c = truncated_standard(-c[used])
    mu2 = rho[:, None] * z
    mu2[used] += (r[:, None] * np.ones_like(z))[used] * m_c
    v2 = np.zeros_like(z)
    v2[used] = ((r * r)[:, None] * np.ones_like(z))[used] * v_c
    e1 = np.einsum("ij,ij->i", p, z)
    e2 = np.einsum("ij,ij->i", p, mu2)
    d1, d2 = z - e1[:, None], mu2 - e2[:, None]
    v11 = np.einsum("ij,ij->i", p, d1 * d1)
    v22 = np.einsum("ij,ij->i", p, v2 + d2 * d2)
    v12 = np.einsum("ij,ij->i", p, d1 * d2)
    return top + np.log(mass), e1, e2, v11, v22, v12


def _check_inputs(mean, cov):
    """Validate shapes and values; returns float copies' views (never
    modifies the caller's arrays)."""
    mean = np.asarray(mean, dtype=float)
    cov = np.asarray(cov, dtype=float)
    if mean.ndim != 2 or mean.shape[1] not in (1, 2, 3):
        raise ValueError(
            f"orthant_moments: mean must have shape (n, k) with k in (1, 2, 3); "
            f"got {mean.shape}."
        )
    n, k = mean.shape
    if cov.shape != (n, k, k):
        raise ValueError(
            f"orthant_moments: cov must have shape {(n, k, k)}; got {cov.shape}."
        )
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise ValueError("orthant_moments: mean and cov must be finite.")
    var = np.diagonal(cov, axis1=1, axis2=2)
    if np.any(var <= 0.0):
        raise ValueError("orthant_moments: every variance must be positive.")
    if k == 2:
        if not np.allclose(cov[:, 0, 1], cov[:, 1, 0], rtol=1e-12, atol=0.0):
            raise ValueError("orthant_moments: cov must be symmetric.")
        rho = cov[:, 0, 1] / np.sqrt(var[:, 0] * var[:, 1])
        if np.any(np.abs(rho) >= 1.0):
            raise ValueError(
                "orthant_moments: cov must be positive definite (|correlation| < 1)."
            )
    if k == 3:
        if not np.allclose(cov, np.swapaxes(cov, 1, 2), rtol=1e-12, atol=0.0):
            raise ValueError("orthant_moments: cov must be symmetric.")
        sd = np.sqrt(var)
        corr = cov / (sd[:, :, None] * sd[:, None, :])
        # A 3 x 3 correlation matrix is positive definite iff its leading
        # minors 1 - r12^2 and det are positive.
        if np.any(np.abs(corr[:, 0, 1]) >= 1.0) or np.any(np.linalg.det(corr) <= 0.0):
            raise ValueError("orthant_moments: cov must be positive definite.")
    return mean, cov


def orthant_moments(mean, cov):
    """Moments of ``u ~ N(mean, cov)`` conditioned on ``u > 0``, per row.

    Parameters
    ----------
    mean : array_like of shape (n, k)
        Means, k = 1, 2 or 3.
    cov : array_like of shape (n, k, k)
        Positive definite covariances.

    Returns
    -------
    OrthantMoments
        ``log_prob`` (n,), ``mean`` (n, k), ``cov`` (n, k, k) and
        ``accurate`` (n,).  For k = 1 every row is accurate.  For k = 2 the
        rows with ``P(u > 0) >= ACCURATE_FROM`` use Genz's probability and
        Tallis' moments; the others the log-scale tail quadrature, which
        keeps about 1e-10 relative accuracy however small the probability
        (tested to ``|rho| = 0.99999`` and ``log P = -1e5``), so
        ``accurate`` is False only below ``log P = TRUSTED_LOG_PROB``
        (-1e6), where double precision runs out.  k = 3 likewise: Genz's
        trivariate probability and Tallis' moments where their estimated
        error is below 1e-10, the tail quadrature (each node an exact k = 2
        problem) elsewhere; the latter costs about 5-10 ms a row.

    Examples
    --------
    >>> import numpy as np
    >>> out = orthant_moments(np.zeros((1, 1)), np.ones((1, 1, 1)))
    >>> bool(np.isclose(out.mean[0, 0], np.sqrt(2 / np.pi)))
    True
    >>> out = orthant_moments(np.zeros((1, 2)), np.eye(2)[None])
    >>> bool(np.isclose(np.exp(out.log_prob[0]), 0.25))
    True
    >>> out = orthant_moments(np.zeros((1, 3)), np.eye(3)[None])
    >>> bool(np.isclose(np.exp(out.log_prob[0]), 0.125))
    True
    """
    mean, cov = _check_inputs(mean, cov)
    n, k = mean.shape
    sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    # Standardise: u_i > 0  <=>  z_i > a_i = -m_i / s_i, z standard.  The
    # clip keeps a_i^2 finite; beyond 1e150 sd nothing changes but log P.
    a = np.clip(-mean / sd, -1e150, 1e150)
    if k == 1:
        log_prob, excess, z_var = _truncated_excess(a[:, 0])
        out_mean = sd * excess[:, None]  # u = s (Z - a)
        out_cov = (sd[:, 0] ** 2 * z_var)[:, None, None]
        return OrthantMoments(log_prob, out_mean, out_cov, np.ones(n, dtype=bool))
    if k == 3:
        return _orthant_3d(mean, cov, sd, a)
    rho = cov[:, 0, 1] / (sd[:, 0] * sd[:, 1])
    log_prob, e1, e2, v11, v22, v12 = _moments_2d(a[:, 0], a[:, 1], rho)
    z_mean = np.stack([e1, e2], axis=1)
    out_mean = mean + sd * z_mean
    v11, v22 = np.maximum(v11, 0.0), np.maximum(v22, 0.0)
    # Cauchy-Schwarz bound keeps the 2 x 2 covariance semi-definite.
    bound = np.sqrt(v11 * v22)
    v12 = np.clip(v12, -bound, bound)
    out_cov = np.empty((n, 2, 2))
    out_cov[:, 0, 0] = v11 * sd[:, 0] ** 2
    out_cov[:, 1, 1] = v22 * sd[:, 1] ** 2
    out_cov[:, 0, 1] = out_cov[:, 1, 0] = v12 * sd[:, 0] * sd[:, 1]
    # Beyond log P = -1e6 (|rho| ~ 1, bounds ~ 15 sd) the pieces of the tail
    # quadrature shrink towards the spacing of doubles: about 2e-9 there.
    accurate = (log_prob > TRUSTED_LOG_PROB) & np.all(np.isfinite(out_cov), axis=(1, 2))
    accurate &= np.all(np.isfinite(out_mean), axis=1)
    return OrthantMoments(log_prob, out_mean, out_cov, accurate)


def _moments_2d(a1, a2, rho):
    """Standardised k = 2 moments: Genz + Tallis where the probability is
    at least ACCURATE_FROM (Genz's error is absolute, ~1e-16, so relative
    1e-9 needs P well above 1e-7), the tail quadrature elsewhere."""
    prob = bivariate_upper(a1, a2, rho)
    fast = prob >= ACCURATE_FROM
    log_prob = np.empty_like(a1)
    res = [np.empty_like(a1) for _ in range(5)]
    log_prob[fast] = np.log(prob[fast])
    *moments, cond = _tallis_2d(a1[fast], a2[fast], rho[fast], log_prob[fast])
    for dst, src in zip(res, moments, strict=True):
        dst[fast] = src
    # Relative error of the F's: ~4e-16 from the special functions plus
    # Genz's absolute error (~2e-17) over P; amplified by cond it must stay
    # below 1e-10, or the row goes to the tail quadrature (no cancellation
    # there).  Calibrated against the tail quadrature on 40,000 random rows
    # with |rho| up to 0.99999: the actual error never exceeded this estimate.
    err = (4e-16 + 2e-17 / prob[fast]) * cond
    fast[np.flatnonzero(fast)[~(err < 1e-10)]] = False
    slow = np.flatnonzero(~fast)
    for start in range(0, len(slow), _TAIL_CHUNK):  # chunks bound the memory
        idx = slow[start : start + _TAIL_CHUNK]
        # Condition on the component whose bound is farther out.
        swap = a2[idx] > a1[idx]
        b1 = np.where(swap, a2[idx], a1[idx])
        b2 = np.where(swap, a1[idx], a2[idx])
        lp, f1, f2, w11, w22, w12 = _tail_moments_2d(b1, b2, rho[idx])
        log_prob[idx] = lp
        res[0][idx] = np.where(swap, f2, f1)
        res[1][idx] = np.where(swap, f1, f2)
        res[2][idx] = np.where(swap, w22, w11)
        res[3][idx] = np.where(swap, w11, w22)
        res[4][idx] = w12
    return (log_prob, *res)


# ------------------------------------------------------------------ k = 3

# Genz's (2004) trivariate integral over the correlation path t in (0, 1):
# Gauss-Legendre with 40 nodes, and 20 for an error estimate (their
# difference is about the error of the 20-node rule, so it over-states the
# 40-node rule's; rows failing it go to the tail quadrature).  Genz
# integrates adaptively; a fixed rule vectorises, and the estimate catches
# the near-singular paths where it would not suffice.
_TV_X, _TV_W = np.polynomial.legendre.leggauss(64)
_TV_X32, _TV_W32 = np.polynomial.legendre.leggauss(32)
_TV_XE16, _TV_WE16 = np.polynomial.legendre.leggauss(16)
# Fewer rows per chunk for k = 3: each row has ~400 nodes, each a k = 2
# problem.
_TAIL_CHUNK_3 = 256
# k = 3 rows with P above this may take Genz + Tallis if their error
# estimate allows (calibrated against the tail quadrature, see _moments_3d).
_GENZ_FROM = 1e-12


def _path_term(h1, h2, h3, r23, theta12, theta13, x, w):
    """Genz (2004), sec. 3 (TVNL's PNTGND): the integrand of the r12 leg
    of the trivariate path, summed over nodes x with weights w on (0, 1).

    Along r12(t) = sin(t theta12), r13(t) = sin(t theta13), r23 fixed,
    Plackett's (1954) identity gives d Phi_3 / d r12 = phi_2(h1, h2; r12)
    Phi((h3 - E[Z3 | h1, h2]) / sd); with dr12/dt = theta12 cos(t theta12)
    the 1 / cos of phi_2 cancels."""
    # All nodes at once on (rows, nodes) arrays, a block of rows at a time
    # (a loop over the nodes paid NumPy's call overhead 64 times on short
    # vectors).
    total = np.empty_like(h1)
    step = max(1, 2**18 // len(x))
    for start in range(0, len(h1), step):
        rows = slice(start, start + step)
        total[rows] = _path_sum(
            h1[rows, None], h2[rows, None], h3[rows, None], r23[rows, None],
            theta12[rows, None], theta13[rows, None], x, w,
        )  # fmt: skip
    return total * theta12 / (2.0 * np.pi)


def _path_sum(h1, h2, h3, r23, theta12, theta13, x, w):
    """The sum over the nodes x (weights w) of :func:`_path_term`'s
    integrand, for rows given as (n, 1) columns."""
    r = np.sin(x * theta12)
    ra = np.sin(x * theta13)
    rr = (1.0 - r) * (1.0 + r)
    dt = rr * (rr - ra * ra - r23 * r23 + 2.0 * ra * r23 * r)
    ok = dt > 0.0
    sdt = np.sqrt(np.where(ok, dt, 1.0))
    bt = (h3 * rr + h1 * (r * r23 - ra) + h2 * (r * ra - r23)) / sdt
    ft = (h1 * h1 - 2.0 * r * h1 * h2 + h2 * h2) / np.where(ok, rr, 1.0)
    return np.where(ok, w * np.exp(-0.5 * ft) * ndtr(bt), 0.0).sum(axis=1)


def _trivariate_upper(a, corr):
    """``P(Z > a)`` for Z standard trivariate normal with correlation
    ``corr`` (n, 3, 3), and an absolute error estimate, by Genz (2004),
    sec. 3: with h = -a, ordered so that |r23| is the largest correlation,
    P = Phi(h1) Phi_2(h2, h3; r23) + the path integral of
    :func:`_path_term` for the r12 and r13 legs (t from 0 to 1)."""
    n = len(a)
    rows = np.arange(n)
    off = np.abs(np.stack([corr[:, 1, 2], corr[:, 0, 2], corr[:, 0, 1]], axis=1))
    first = np.argmax(off, axis=1)  # the component opposite the largest |r|
    perm = np.stack([first, (first + 1) % 3, (first + 2) % 3], axis=1)
    h = -np.take_along_axis(a, perm, axis=1)
    c = corr[rows[:, None, None], perm[:, :, None], perm[:, None, :]]
    r12, r13, r23 = c[:, 0, 1], c[:, 0, 2], c[:, 1, 2]
    th12, th13 = np.arcsin(r12), np.arcsin(r13)
    base = ndtr(h[:, 0]) * bivariate_upper(-h[:, 1], -h[:, 2], r23)
    path = (h, r23, th12, th13)
    # The 32-point rule, its error estimated from the 16-point one; rows
    # where they differ by more than rounding take the 64-point rule, its
    # error estimated from the 32-point one (Genz's rule is adaptive; this
    # is its two-level, vectorised form, and the smooth rows, most of them,
    # cost 48 nodes instead of 96).
    fine = _path_legs(*path, _TV_X32, _TV_W32)
    coarse = _path_legs(*path, _TV_XE16, _TV_WE16)
    magnitude = base + np.abs(fine[0]) + np.abs(fine[1])
    refine = np.abs(fine[0] + fine[1] - coarse[0] - coarse[1]) > 1e-16 * magnitude
    if refine.any():
        finer = _path_legs(*(part[refine] for part in path), _TV_X, _TV_W)
        coarse = tuple(np.where(refine, np.nan, leg) for leg in coarse)
        for leg, (fine_leg, coarse_leg) in enumerate(zip(fine, coarse, strict=True)):
            coarse_leg[refine], fine_leg[refine] = fine_leg[refine], finer[leg]
    total = fine[0] + fine[1]
    # Error: the path rule's (from the coarser rule), Genz's bivariate
    # error (~2e-17 absolute, as for k = 2) times Phi(h1), and rounding in
    # the sum, relative to its terms (each leg has one sign), which can
    # cancel when P is small.
    magnitude = base + np.abs(fine[0]) + np.abs(fine[1])
    err = np.abs(total - coarse[0] - coarse[1]) + 2e-17 * ndtr(h[:, 0])
    err += 1e-16 * magnitude
    return np.clip(base + total, 0.0, 1.0), err


def _path_legs(h, r23, th12, th13, x, w):
    """The two legs of the trivariate path integral by the Gauss-Legendre
    rule (x, w) on (-1, 1)."""
    t, wt = (x + 1.0) / 2.0, w / 2.0
    leg2 = _path_term(h[:, 0], h[:, 1], h[:, 2], r23, th12, th13, t, wt)
    leg3 = _path_term(h[:, 0], h[:, 2], h[:, 1], r23, th13, th12, t, wt)
    return leg2, leg3


def _others(k):
    """The two components other than k, in order."""
    return [j for j in range(3) if j != k]


def _tallis_f(a, corr, log_prob):
    """Manjunath & Wilhelm (2012), eqs. (9)-(11), for k = 3 standardised:
    F_k = phi(a_k) P(Z_-k > a_-k | Z_k = a_k) / P, a density times the
    conditional bivariate orthant probability, and F_kq = phi_2(a_k, a_q;
    r_kq) P(Z_l > a_l | Z_k = a_k, Z_q = a_q) / P.  Returns F (n, 3) and the
    symmetric F_kq (n, 3, 3) with a zero diagonal."""
    n = len(a)
    f = np.empty((n, 3))
    fkq = np.zeros((n, 3, 3))
    with np.errstate(divide="ignore"):
        for k in range(3):
            j, m = _others(k)
            sj = np.sqrt((1.0 - corr[:, j, k]) * (1.0 + corr[:, j, k]))
            sm = np.sqrt((1.0 - corr[:, m, k]) * (1.0 + corr[:, m, k]))
            bj = (a[:, j] - corr[:, j, k] * a[:, k]) / sj
            bm = (a[:, m] - corr[:, m, k] * a[:, k]) / sm
            rho = (corr[:, j, m] - corr[:, j, k] * corr[:, m, k]) / (sj * sm)
            p2 = bivariate_upper(bj, bm, np.clip(rho, -1.0 + 1e-16, 1.0 - 1e-16))
            f[:, k] = np.exp(_log_phi(a[:, k]) + np.log(p2) - log_prob)
        for k, q in ((0, 1), (0, 2), (1, 2)):
            (m,) = [i for i in range(3) if i not in (k, q)]
            r = corr[:, k, q]
            r2 = (1.0 - r) * (1.0 + r)
            bk = (corr[:, m, k] - r * corr[:, m, q]) / r2
            bq = (corr[:, m, q] - r * corr[:, m, k]) / r2
            det = np.linalg.det(corr)
            sd = np.sqrt(np.maximum(det / r2, 0.0))
            quad = (a[:, k] ** 2 - 2.0 * r * a[:, k] * a[:, q] + a[:, q] ** 2) / r2
            tail = log_ndtr((bk * a[:, k] + bq * a[:, q] - a[:, m]) / sd)
            log_dens = -0.5 * quad - LOG_2PI - 0.5 * np.log(r2)
            fkq[:, k, q] = fkq[:, q, k] = np.exp(log_dens + tail - log_prob)
    return f, fkq


def _tallis_3d(a, corr, log_prob):
    """Tallis (1961) moments of a standard trivariate normal truncated to
    Z > a, in Manjunath & Wilhelm's (2012) eqs. (14)-(16) with unit
    variances: E[Z_i] = sum_k r_ik F_k, and
    E[Z_i Z_j] = r_ij + sum_k r_ik r_jk a_k F_k
    + sum_k r_ik sum_{q != k} (r_jq - r_kq r_jk) F_kq.
    Returns the mean (n, 3), covariance (n, 3, 3) and a condition number
    for the cancellation (as in :func:`_tallis_2d`)."""
    f, fkq = _tallis_f(a, corr, log_prob)
    af = a * f
    mean = np.einsum("nik,nk->ni", corr, f)
    # G_kj = sum_q (r_jq - r_kq r_jk) F_kq, so that the last sum is (R G)_ij.
    g = fkq @ corr - corr * np.einsum("nkq,nkq->nk", corr, fkq)[:, :, None]
    second = corr + np.einsum("nik,njk,nk->nij", corr, corr, af) + corr @ g
    cov = second - mean[:, :, None] * mean[:, None, :]
    cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
    # Sums of absolute terms over the result's scale.
    ab = np.abs(corr)
    g_abs = np.abs(fkq) @ ab + ab * np.einsum("nkq,nkq->nk", ab, fkq)[:, :, None]
    terms = ab + np.einsum("nik,njk,nk->nij", ab, ab, np.abs(af)) + ab @ g_abs
    terms += np.abs(mean[:, :, None] * mean[:, None, :])
    sd = np.sqrt(np.abs(np.einsum("nii->ni", cov)))
    cond_mean = (ab @ np.abs(f)[:, :, None])[:, :, 0] / (np.abs(mean) + sd)
    cond_cov = terms / (sd[:, :, None] * sd[:, None, :])
    cond = np.maximum(cond_mean.max(axis=1), cond_cov.max(axis=(1, 2)))
    return mean, cov, cond


def _conditional_2d(z, a, corr):
    """Given Z1 = z (n, N): the standardised bounds (b2, b3) and the
    regression (mean slope r_1j, sd s_j, partial correlation) of (Z2, Z3)."""
    s = np.sqrt((1.0 - corr[:, 0, 1:]) * (1.0 + corr[:, 0, 1:]))  # (n, 2)
    slope = corr[:, 0, 1:]
    b = (a[:, None, 1:] - slope[:, None, :] * z[:, :, None]) / s[:, None, :]
    rho = (corr[:, 1, 2] - slope[:, 0] * slope[:, 1]) / (s[:, 0] * s[:, 1])
    return b, slope, s, np.clip(rho, -1.0 + 1e-16, 1.0 - 1e-16)


def _rough_log_bivariate(b1, b2, rho):
    """log P(Y1 > b1, Y2 > b2) good enough to place split points (their
    placement does not affect correctness): Genz's probability where it is
    above 1e-10, else Mendell & Elston's (1974) approximation (condition on
    the farther bound, replace Y1's truncated law by a normal with its
    moments).  Avoids the nested tail quadrature of log_bivariate_upper."""
    hi, lo = np.maximum(b1, b2), np.minimum(b1, b2)
    lp1, excess, var1 = _truncated_excess(hi)
    sd = np.sqrt((1.0 - rho * rho) + rho * rho * var1)
    rough = lp1 + log_ndtr((rho * (hi + excess) - lo) / sd)
    prob = bivariate_upper(b1, b2, rho)
    with np.errstate(divide="ignore"):
        return np.where(prob > 1e-10, np.log(prob), rough)


def _tail_breakpoints_3d(a, corr):
    """Split points of z > a1 for the density of Z1 on the orthant,
    l(z) = log phi(z) + log P(Z2 > a2, Z3 > a3 | Z1 = z), concave with
    l'' <= -1 like k = 2's (:func:`_level_points`); its slope is
    -z + sum_j (r_1j / s_j) F_j of the conditional k = 2 problem.  Plus the
    knees where either conditional bound, or their sum (the sliver
    P(b2 < Y2 < -b3) as the partial correlation nears -1), crosses
    _KNEE_C on its own scale."""

    def ell(z):
        b, _, _, rho = _conditional_2d(z[:, None], a, corr)
        return _log_phi(z) + _rough_log_bivariate(b[:, 0, 0], b[:, 0, 1], rho)

    def slope(z):
        b, beta, s, rho = _conditional_2d(z[:, None], a, corr)
        b1, b2 = b[:, 0, 0], b[:, 0, 1]
        lp = _rough_log_bivariate(b1, b2, rho)
        r = np.sqrt((1.0 - rho) * (1.0 + rho))
        f1 = np.exp(_log_phi(b1) + log_ndtr((rho * b1 - b2) / r) - lp)
        f2 = np.exp(_log_phi(b2) + log_ndtr((rho * b2 - b1) / r) - lp)
        return -z + beta[:, 0] / s[:, 0] * f1 + beta[:, 1] / s[:, 1] * f2

    # Split points need no precision (any split is valid): fewer steps.
    points, top = _level_points(ell, slope, a[:, 0], 30, 10)
    _, beta, s, rho = _conditional_2d(a[:, :1], a, corr)
    # b_j(z) = (a_j - beta_j z) / s_j crosses C at z = (a_j - s_j C) / beta_j;
    # the sum b2 + b3 on the scale sqrt(2 (1 + rho)) likewise.
    coef = np.concatenate([beta / s, (beta / s).sum(axis=1, keepdims=True)], axis=1)
    level = np.concatenate([a[:, 1:] / s, (a[:, 1:] / s).sum(axis=1)[:, None]], 1)
    width = np.concatenate([np.ones_like(s), np.sqrt(2.0 * (1.0 + rho))[:, None]], 1)
    safe = np.where(coef == 0.0, 1.0, coef)
    knees = (level[:, :, None] - width[:, :, None] * _KNEE_C) / safe[:, :, None]
    knees = np.where((coef == 0.0)[:, :, None], points[:, 9:10, None], knees)
    knees = np.clip(knees.reshape(len(a), -1), points[:, :1], points[:, -1:])
    return np.sort(np.concatenate([points, knees], axis=1), axis=1), top


def _tail_moments_3d(a, corr):
    """Orthant moments of a standard trivariate normal, Z > a, conditioning
    on Z1 (the caller puts the farthest bound first): P = int_{a1}^inf
    phi(z) P_2(z) dz on the log scale, piecewise Gauss-Legendre between
    :func:`_tail_breakpoints_3d`, where P_2(z) and the moments of (Z2, Z3)
    given Z1 = z are the exact k = 2 ones (:func:`_moments_2d`).  The laws of
    total expectation and variance mix them with positive weights, centred
    before squaring: no cancellation however small P is."""
    n = len(a)
    points, _ = _tail_breakpoints_3d(a, corr)
    half = 0.5 * np.diff(points, axis=1)
    centre = 0.5 * (points[:, 1:] + points[:, :-1])
    z = (centre[:, :, None] + half[:, :, None] * _PIECE_X).reshape(n, -1)
    wq = (half[:, :, None] * _PIECE_W).reshape(n, -1)
    b, beta, s, rho = _conditional_2d(z, a, corr)
    nodes = z.shape[1]
    # About two thirds of the pieces have zero width (split points clipped
    # to the range): their nodes get weight 0 and no k = 2 problem.
    used = wq > 0.0
    rho_n = np.broadcast_to(rho[:, None], z.shape)
    lp2 = np.full((n, nodes), -np.inf)
    e2, e3, v22, v33, v23 = (np.zeros((n, nodes)) for _ in range(5))
    lp2[used], e2[used], e3[used], v22[used], v33[used], v23[used] = _moments_2d(
        b[:, :, 0][used], b[:, :, 1][used], rho_n[used]
    )
    # Normalise by the largest exact log weight, not the rough maximum
    # `top` of the split points, which can be hundreds of units off.
    log_w = _log_phi(z) + lp2
    top = np.max(np.where(used, log_w, -np.inf), axis=1)
    omega = wq * np.exp(log_w - top[:, None])
    mass = omega.sum(axis=1)
    p = omega / mass[:, None]
    mu = np.stack(
        [
            z,
            beta[:, :1] * z + s[:, :1] * e2,
            beta[:, 1:] * z + s[:, 1:] * e3,
        ],
        axis=2,
    )  # (n, N, 3)
    cv = np.zeros((n, nodes, 3, 3))
    cv[:, :, 1, 1] = s[:, :1] ** 2 * np.maximum(v22, 0.0)
    cv[:, :, 2, 2] = s[:, 1:] ** 2 * np.maximum(v33, 0.0)
    cv[:, :, 1, 2] = cv[:, :, 2, 1] = s[:, :1] * s[:, 1:] * v23
    mean = np.einsum("nj,nji->ni", p, mu)
    d = mu - mean[:, None, :]
    cov = np.einsum("nj,njik->nik", p, cv + d[:, :, :, None] * d[:, :, None, :])
    return top + np.log(mass), mean, cov


def _moments_3d(a, corr):
    """Standardised k = 3 moments: Genz's trivariate probability and
    Tallis' moments where their error estimate is below 1e-10, the tail
    quadrature conditioning on the farthest bound elsewhere.  Calibration:
    on the 4,000 hardest accepted rows of 100,000 (bounds ~ N(0, 1.7^2),
    Wishart(4) correlations, P down to 3e-12) the largest difference from
    the tail quadrature was 1.3e-10 (relative, means and covariances on the
    scale of the sd's, log P absolute)."""
    n = len(a)
    prob, abs_err = _trivariate_upper(a, corr)
    fast = np.flatnonzero(prob >= _GENZ_FROM)
    log_prob = np.empty(n)
    mean = np.empty((n, 3))
    cov = np.empty((n, 3, 3))
    log_prob[fast] = np.log(prob[fast])
    mean[fast], cov[fast], cond = _tallis_3d(a[fast], corr[fast], log_prob[fast])
    # Relative error of the F's: the special functions' ~4e-16 plus the
    # probability's absolute error over P, amplified by the cancellation.
    err = (4e-16 + abs_err[fast] / prob[fast]) * cond
    slow = np.setdiff1d(np.arange(n), fast[err < 1e-10])
    rows = np.arange(_TAIL_CHUNK_3)
    for start in range(0, len(slow), _TAIL_CHUNK_3):  # chunks bound the memory
        idx = slow[start : start + _TAIL_CHUNK_3]
        r = rows[: len(idx)]
        # Condition on the component whose bound is farthest out.
        first = np.argmax(a[idx], axis=1)
        perm = np.stack([first, (first + 1) % 3, (first + 2) % 3], axis=1)
        ap = np.take_along_axis(a[idx], perm, axis=1)
        cp = corr[idx][r[:, None, None], perm[:, :, None], perm[:, None, :]]
        lp, mp, vp = _tail_moments_3d(ap, cp)
        log_prob[idx] = lp
        m_out = np.empty_like(mp)
        m_out[r[:, None], perm] = mp
        v_out = np.empty_like(vp)
        v_out[r[:, None, None], perm[:, :, None], perm[:, None, :]] = vp
        mean[idx], cov[idx] = m_out, v_out
    return log_prob, mean, cov


def _orthant_3d(mean, cov, sd, a):
    """orthant_moments for k = 3 from the standardised moments."""
    corr = cov / (sd[:, :, None] * sd[:, None, :])
    log_prob, z_mean, z_cov = _moments_3d(a, corr)
    out_mean = mean + sd * z_mean
    out_cov = z_cov * sd[:, :, None] * sd[:, None, :]
    out_cov = 0.5 * (out_cov + np.swapaxes(out_cov, 1, 2))
    finite = np.all(np.isfinite(out_cov), axis=(1, 2))
    finite &= np.all(np.isfinite(out_mean), axis=1)
    accurate = (log_prob > TRUSTED_LOG_PROB) & finite
    return OrthantMoments(log_prob, out_mean, out_cov, accurate)
