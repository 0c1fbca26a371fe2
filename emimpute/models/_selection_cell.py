"""The quadrature rules for one missing value under a selection model, and
the product grid for two (statistical kernel).

The building block of the MNAR selection-model E-step
(:mod:`emimpute.models._selection`): a value y, normal N(nu, s^2) given
what is observed in its row, goes missing with probability
F(eta + psi * y), F the probit or logistic link.  Given that it is missing,
y has density

    f(y | missing) = N(y; nu, s^2) F(eta + psi y) / P(missing),
    P(missing) = E[F(eta + psi y)],  y ~ N(nu, s^2),

and the E-step needs log P(missing) and moments under f(y | missing).  It
takes them by quadrature on z = (y - nu) / s, the weights times
F(eta + psi y_k), normalised, being the posterior weights of the nodes
(Ibrahim 1990's method of weights with quadrature nodes).

Which rule: a row whose selection curve is gentle (b = |psi| s up to
:func:`steep_slope`) takes Gauss-Hermite nodes.  The logistic curve has
poles at imaginary distance pi / |psi| from the real axis, so that rule's
error falls like exp(-2 d sqrt(2 n)) with d = pi / (sqrt(2) b) (the
standard bound for functions analytic in a strip): the count grows with
b^2, rounded up to a few sizes (``GENTLE_SIZES``).  Measured for the logit
(the smallest rule with moments within 1e-10 of a 300-node one, any index
a up to |a| = 40: its tails are exponential, so a tilts the posterior by at
most b): 8 nodes at b = 0.1, 12 at 0.3-0.5, 20 at 0.8, 32 at 1.1, 48 at
1.5; the rule 28 b^2, at least 12, covers that.  The probit's Gaussian
tails tilt more at extreme indices (24 nodes at |a| = 10, b = 0.5), so it
keeps 20 b^2, at least 24.  (Fits under the probit never use these
nodes: rows with up to three MNAR cells have closed forms, rows with more
take Sobol points.)

A steep row (b above :func:`steep_slope`) would need hundreds to thousands of
Gauss-Hermite nodes, most of them where the integrand is flat.  It takes a
composite Gauss-Legendre rule of ``STEEP_NODES`` nodes placed for that row
instead (:func:`_steep_rule`): on z = (y - nu) / s the integrand
phi(z) F(a + b z) is log-concave with curvature at least 1, so all but
e^-37 of it lies within ``HALF_WIDTH`` of its mode; that window is cut into
panels of the normal's scale, and around the curve's step at z = -a / b into
panels growing geometrically away from it (widths 2, 4, 8, 16 on the scale
of b z), so that each panel's distance to the logistic poles is large
relative to its length (the Gauss-Legendre error bound for analytic
functions, Trefethen 2013, Approximation Theory and Approximation Practice,
thm. 19.3), and around the mode on the integrand's own scale there (which
is far below 1 for a probit row deep in the curve's Gaussian tail).  The
rule's count does not grow with b; against adaptive quadrature its error
was below 3e-11 for the logit at slopes 3-100 and indices up to |a| = 300,
and below 1e-9 for the probit out to P(missing) = e^-4000
(tests/models/test_selection_cell.py checks both rules against adaptive
quadrature, against Heckman's closed form for the probit, and against a
simulation).

A row with two MNAR cells, y = c + L z, takes a product Gauss-Hermite grid
(:func:`product_rule`) with each axis sized by the one-cell rule for the
slopes along it (:func:`emimpute.models._selection_nodes.grid_per_row`).

Each row's rule depends on its own (a, b) only, so the statistics of a data
set remain the sum of those of its row blocks.

References
----------
Heckman, J. J. (1979). Sample selection bias as a specification error.
*Econometrica* 47, 153-161.
Ibrahim, J. G. (1990). Incomplete data in generalized linear models. *JASA*
85, 765-769.
"""

from functools import lru_cache

import numpy as np
from scipy import special

from emimpute.gaussian._interval import gauss_legendre
from emimpute.models._selection_latent import mills_ratio

# Gauss-Hermite sizes of a gentle row: the smallest one at least
# max(fewest, per * b^2), with (per, fewest) of the link (see the module
# docstring).
GENTLE_SIZES = (12, 16, 20, 24, 32, 48, 64, 96, 128, 180)
SIZE_RULE = {"logit": (28.0, 12), "probit": (20.0, 24)}
# The composite rule: the window around the mode (in sds of z; the
# integrand's log falls by HALF_WIDTH^2 / 2 = 37 at its ends), its
# Gaussian panels, the breakpoints around the step (on the scale of b z)
# and the Gauss-Legendre points per panel.
HALF_WIDTH = 8.6
GAUSSIAN_PANELS = 6
STEP_BREAKS = (-30.0, -14.0, -6.0, -2.0, 0.0, 2.0, 6.0, 14.0, 30.0)
MODE_BREAKS = (-3.0, -1.0, 1.0, 3.0)
PANEL_NODES = 12
STEEP_NODES = (GAUSSIAN_PANELS + len(STEP_BREAKS) + len(MODE_BREAKS)) * PANEL_NODES
# Bisection steps locating the mode (to within 1e-7 of its bracket, far
# finer than the window needs).
MODE_STEPS = 24


def gentle_size(slope, link):
    """Gauss-Hermite nodes for gentle rows of slope |psi| s (an array or a
    number).

    Examples
    --------
    >>> [int(gentle_size(b, "logit")) for b in (0.3, 0.8, 2.0)]
    [12, 20, 128]
    >>> [int(gentle_size(b, "probit")) for b in (0.3, 0.8, 2.0)]
    [24, 24, 96]
    """
    per, fewest = SIZE_RULE[link]
    wanted = np.maximum(per * np.asarray(slope, float) ** 2, fewest)
    index = np.minimum(np.searchsorted(GENTLE_SIZES, wanted), len(GENTLE_SIZES) - 1)
    return np.asarray(GENTLE_SIZES)[index]


def steep_slope(link):
    """The slope above which a row takes the composite rule (where the
    Gauss-Hermite size would pass the largest gentle one)."""
    return float(np.sqrt(GENTLE_SIZES[-1] / SIZE_RULE[link][0]))


def one_cell_rule(a, b, link):
    """Per-row nodes for the integrals of phi(z) F(a + b z) g(z) dz.

    Parameters
    ----------
    a, b : ndarray of shape (n,)
        Each row's selection index at the conditional mean of its missing
        value, and its slope psi s on z = (y - nu) / s.
    link : {"probit", "logit"}

    Returns
    -------
    z : ndarray of shape (n, Q)
        Nodes on the standard normal scale.
    log_w : ndarray of shape (n, Q)
        Log weights: sum_q exp(log_w) g(z_q) integrates g against the
        standard normal density; -inf pads rows whose rule is shorter.

    Examples
    --------
    >>> z, log_w = one_cell_rule(np.zeros(2), np.array([0.5, 40.0]), "logit")
    >>> z.shape
    (2, 228)
    >>> np.round(np.exp(log_w).sum(axis=1), 12)  # both integrate phi to 1
    array([1., 1.])
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    slope = np.abs(b)
    steep = slope > steep_slope(link)
    gentle = np.flatnonzero(~steep)
    sizes = gentle_size(slope[gentle], link)
    width = STEEP_NODES if steep.any() else max(sizes, default=GENTLE_SIZES[0])
    z = np.zeros((len(a), width))
    log_w = np.full((len(a), width), -np.inf)
    for size in np.unique(sizes):  # a few sizes, not rows
        rows = gentle[sizes == size]
        t, log_t = gauss_hermite(size)  # (nodes of weight 0 left out)
        z[rows, : len(t)] = np.sqrt(2.0) * t
        log_w[rows, : len(t)] = log_t - 0.5 * np.log(np.pi)
    if steep.any():
        z[steep], log_w[steep] = _steep_rule(a[steep], b[steep], link)
    return z, log_w


def _steep_rule(a, b, link):
    """The composite rule of a steep row (see the module docstring): nodes
    z (n, STEEP_NODES) and log weights against the standard normal."""
    sign, slope = np.sign(b), np.abs(b)
    # On x = sign(b) z the factor is F(a + slope x), increasing; the log
    # integrand -x^2/2 + log F(a + slope x) has its mode in (0, top): its
    # derivative is slope * lam(a) > 0 at 0, and below -top + 0.8 slope < 0
    # at top, where a + slope top >= 0 makes lam <= phi(0)/Phi(0) < 0.8.
    low, high = np.zeros_like(a), np.maximum(slope, -a / slope)
    for _ in range(MODE_STEPS):
        mid = 0.5 * (low + high)
        rising = slope * _log_cdf_slope(a + slope * mid, link) > mid
        low, high = np.where(rising, mid, low), np.where(rising, high, mid)
    mode = 0.5 * (low + high)
    lo, hi = mode - HALF_WIDTH, mode + HALF_WIDTH
    steps = (-a / slope)[:, None] + np.asarray(STEP_BREAKS) / slope[:, None]
    # The integrand's own scale at its mode, 1 / sqrt(1 + slope^2 (-d lam /
    # dt)), is far below 1 where a probit row's mode lies deep in the
    # curve's Gaussian tail; panels on that scale keep the rule exact there.
    width = 1.0 / np.sqrt(1.0 + slope**2 * _log_cdf_curvature(a + slope * mode, link))
    around_mode = mode[:, None] + np.asarray(MODE_BREAKS) * width[:, None]
    gaussian = lo[:, None] + (2 * HALF_WIDTH / GAUSSIAN_PANELS) * np.arange(
        GAUSSIAN_PANELS + 1
    )
    inner = np.clip(
        np.concatenate([steps, around_mode], axis=1), lo[:, None], hi[:, None]
    )
    cuts = np.sort(np.concatenate([gaussian, inner], axis=1), axis=1)
    half = 0.5 * np.diff(cuts, axis=1)  # (n, panels), some zero
    middle = 0.5 * (cuts[:, 1:] + cuts[:, :-1])
    t, w = gauss_legendre(PANEL_NODES)
    x = (middle[:, :, None] + half[:, :, None] * t).reshape(len(a), -1)
    with np.errstate(divide="ignore"):  # empty panels: weight 0
        log_w = (np.log(half)[:, :, None] + np.log(w)).reshape(len(a), -1)
    log_w += -0.5 * x * x - 0.5 * np.log(2.0 * np.pi)
    return sign[:, None] * x, log_w


def _log_cdf_slope(t, link):
    """d/dt log F(t): sigma(-t) (logit), phi(t) / Phi(t) (probit)."""
    if link == "probit":
        return mills_ratio(t)
    return special.expit(-t)


def _log_cdf_curvature(t, link):
    """-d^2/dt^2 log F(t): sigma(t) sigma(-t) (logit), lam (lam + t) with
    lam = phi(t) / Phi(t) (probit)."""
    if link == "probit":
        lam = _log_cdf_slope(t, link)
        return lam * (lam + t)
    return special.expit(t) * special.expit(-t)


def product_rule(n1, n2):
    """Nodes z (n1 n2, 2) and log weights of the product Gauss-Hermite rule
    for N(0, I) in two dimensions, ``n1`` nodes along the first axis and
    ``n2`` along the second (nodes of weight 0 left out).

    Examples
    --------
    >>> z, log_w = product_rule(12, 16)
    >>> z.shape, round(float(np.exp(log_w).sum()), 12)
    ((192, 2), 1.0)
    """
    return _product_rule(int(n1), int(n2))


@lru_cache(maxsize=64)
def _product_rule(n1, n2):
    t1, w1 = gauss_hermite(n1)
    t2, w2 = gauss_hermite(n2)
    grid = np.stack(np.meshgrid(t1, t2, indexing="ij"), -1).reshape(-1, 2)
    log_w = (w1[:, None] + w2[None, :]).ravel() - np.log(np.pi)
    z = np.sqrt(2.0) * grid
    z.flags.writeable = False
    log_w.flags.writeable = False
    return z, log_w


def gauss_hermite(n_nodes):
    """Nodes t and log weights of the ``n_nodes``-point Gauss-Hermite rule
    for weight exp(-t^2), without the nodes whose weight underflows to 0.

    scipy's ``roots_hermite`` stays accurate for large rules, where NumPy's
    ``hermgauss`` overflows (above about 350 points).

    Examples
    --------
    >>> t, log_w = gauss_hermite(3)
    >>> bool(np.isclose(np.exp(log_w).sum(), np.sqrt(np.pi)))
    True
    """
    return _gauss_hermite(int(n_nodes))


@lru_cache(maxsize=64)
def _gauss_hermite(n_nodes):
    """The rule of :func:`gauss_hermite`, computed once per size (every
    E-step of a fit asks for it; read-only, as it is shared)."""
    t, w = special.roots_hermite(n_nodes)
    keep = w > 0
    t, log_w = t[keep], np.log(w[keep])
    t.flags.writeable = False
    log_w.flags.writeable = False
    return t, log_w
