"""The margins of the Gaussian copula model: each column's map to a latent
standard normal and back (statistical kernel).

Under the Gaussian copula (Hoff 2007; Zhao & Udell 2020) a column x_j is
x_j = F_j^-1(Phi(z_j)), z ~ N(0, R).  Given F_j, an observed value says
where z_j is:

- a **continuous** column: exactly, z_j = Phi^-1(F_j(x_j));
- an **ordinal** column (binary, counts and ratings with few levels): an
  interval, z_j in (Phi^-1(F_j(l-)), Phi^-1(F_j(l))] for level l, F_j(l-)
  the probability below l.

F_j is estimated from the column's observed values (``../shared/METHODS.md``,
section 7):

- continuous: the empirical CDF scaled by n / (n + 1), so z stays finite,
  mid-ranks for tied values; between the observed values it is linear
  (so a new value transforms, and a latent value maps back, to a value
  between its neighbours), and beyond the observed range z is extended
  along a straight line from the outermost point of each side, its slope
  fitted by least squares to the ``TAIL_POINTS`` outermost (x, z) pairs
  there: new data outside the training range still transform, smoothly,
  and z maps back beyond the range.  On normal data that line is close
  to the normal's own (there z is linear in x).
- ordinal: the empirical CDF itself (the proportions are the maximum
  likelihood estimate of the cut points of a marginal ordered probit);
  a value not seen in ``fit`` is taken as the nearest level seen.

The map back (imputation): continuous, x = the inverse of the piecewise
linear map; ordinal, the level whose interval holds z.

References
----------
Hoff, P. D. (2007). Extending the rank likelihood for semiparametric copula
estimation. *Ann. Appl. Stat.* 1, 265-283.
Zhao, Y. & Udell, M. (2020). Missing value imputation for mixed data via
Gaussian copula. *KDD*.
"""

from dataclasses import dataclass

import numpy as np
from scipy import special

from emimpute.models._copula_nominal import (
    NominalBlock,
    nominal_means,
    starting_values,
)

KINDS = ("continuous", "ordinal", "nominal")
# Points of each tail of a continuous margin fitted by the line that
# extends it beyond the observed range (at most a tenth of the distinct
# values, at least 2).
TAIL_POINTS = 20
# Integer-valued columns with at most this many distinct observed values
# are ordinal when kinds are inferred (gcimpute's default max_ord is 20).
MAX_ORDINAL_LEVELS = 20
# A nominal column's categories, at most (each is a latent column; more
# usually means an identifier or a number given the wrong kind).
MAX_NOMINAL_LEVELS = 100
# Bounds on a tail line's slope (z per unit of x), and on the latent value
# of a new value far beyond the observed range (Phi(-37.5) underflows).
SLOPE_RANGE = (1e-300, 1e300)
LATENT_LIMIT = 37.5


@dataclass(frozen=True)
class Margin:
    """One column's margin.

    continuous: ``values`` the distinct observed values (increasing) and
    ``z`` their latent values; ``low`` and ``high`` the lines
    z = z0 + b (x - x0) beyond them, as (x0, z0, b).  ordinal: ``values``
    the levels and ``z`` the upper cut points of their intervals, the last
    +inf.
    """

    kind: str
    values: np.ndarray
    z: np.ndarray
    low: tuple = (0.0, 0.0, 1.0)
    high: tuple = (0.0, 0.0, 1.0)
    # Continuous with a detection limit (:func:`fit_margin`): values at or
    # below ``limit`` are censored; ``values[0]`` is the limit and ``z[0]``
    # its cut point; with ``log_low`` the low tail is linear in log(x).
    limit: float = np.nan
    log_low: bool = False
    # The same above: values at or above ``upper_limit`` censored, which is
    # then ``values[-1]`` with ``z[-1]`` its cut point.
    upper_limit: float = np.nan
    log_high: bool = False

    @property
    def censored_below(self):
        return not np.isnan(self.limit)

    @property
    def censored_above(self):
        return not np.isnan(self.upper_limit)

    @property
    def censored(self):
        """Censored at a detection limit, below or above."""
        return self.censored_below or self.censored_above

    @property
    def lower_cuts(self):
        """Ordinal: the lower cut point of each level's interval."""
        return np.concatenate([[-np.inf], self.z[:-1]])


def fit_margin(x, kind, limit=None, upper_limit=None):
    """The :class:`Margin` of kind ``kind`` of the observed values ``x``
    (1-d, no NaN, at least one value).

    ``limit``, ``upper_limit`` (continuous only): detection limits; values
    at or below ``limit`` are censored, known only to lie below it, and
    values at or above ``upper_limit`` known only to lie above it
    (:func:`_censored_margin`).

    Examples
    --------
    >>> m = fit_margin(np.array([0.0, 1.0, 1.0, 2.0]), "ordinal")
    >>> m.values, np.round(m.z, 3)
    (array([0., 1., 2.]), array([-0.674,  0.674,    inf]))
    """
    if limit is not None or upper_limit is not None:
        if kind != "continuous":
            raise ValueError(f"a detection limit needs a continuous column, not {kind}")
        return _censored_margin(x, limit, upper_limit)
    values, counts = np.unique(x, return_counts=True)
    n = len(x)
    if kind == "ordinal":
        return Margin("ordinal", values, special.ndtri(np.cumsum(counts) / n))
    if kind == "nominal":  # z: the Gaussian-max means (._copula_nominal)
        if len(values) > MAX_NOMINAL_LEVELS:
            raise ValueError(
                f"{len(values)} categories, where a nominal column takes at most "
                f"{MAX_NOMINAL_LEVELS} (each is a latent column): is it an "
                "identifier, or a number?"
            )
        return Margin("nominal", values, nominal_means(counts / n))
    if kind != "continuous":
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    # Mid-rank of each distinct value over n + 1: (below + (count + 1) / 2).
    below = np.cumsum(counts) - counts
    z = special.ndtri((below + (counts + 1) / 2.0) / (n + 1))
    return Margin("continuous", values, z, _tail_line(values, z, low=True),
                  _tail_line(values, z, low=False))  # fmt: skip


def _censored_margin(x, limit, upper_limit):
    """A continuous margin with c of its n values censored at ``limit``
    (None: none) and c' at ``upper_limit`` (None: none).

    The values censored below take the c lowest ranks, those censored above
    the c' highest, so a detected value's z is its mid-rank counted after
    the c, and the censored cells' intervals are z <= Phi^-1((c + 1/2) /
    (n + 1)), the point between rank c and the first detected value, and
    z > Phi^-1((n - c' + 1/2) / (n + 1)).  Beyond a limit nothing is
    observed, so the margin's shape there is an assumption: the tail
    continues the trend of the nearer half of the detected values, on the
    log scale where those values are positive (a log-normal tail, as in
    the robust regression on order statistics of Helsel 2012, ch. 6, which
    regresses the logs of the detected values on their normal scores),
    else on the data's scale.

    Raises
    ------
    ValueError
        If no value lies between the limits, or the limits are not in
        increasing order.
    """
    n = len(x)
    low_limit = -np.inf if limit is None else float(limit)
    high_limit = np.inf if upper_limit is None else float(upper_limit)
    if not low_limit < high_limit:
        raise ValueError(
            f"the lower detection limit {low_limit:g} is not below the upper "
            f"one {high_limit:g}"
        )
    detected = x[(x > low_limit) & (x < high_limit)]
    if not len(detected):
        if limit is None:
            where = f"below the detection limit {high_limit:g}"
        elif upper_limit is None:
            where = f"above the detection limit {low_limit:g}"
        else:
            where = f"between the detection limits {low_limit:g} and {high_limit:g}"
        raise ValueError(f"no observed value {where}")
    values, counts = np.unique(detected, return_counts=True)
    c = int(np.sum(x <= low_limit))
    c_above = int(np.sum(x >= high_limit))
    below = c + np.cumsum(counts) - counts
    knots, latent = values, special.ndtri((below + (counts + 1) / 2.0) / (n + 1))
    if limit is not None:
        knots = np.concatenate([[low_limit], knots])
        latent = np.concatenate([[special.ndtri((c + 0.5) / (n + 1))], latent])
    if upper_limit is not None:
        knots = np.concatenate([knots, [high_limit]])
        latent = np.concatenate(
            [latent, [special.ndtri((n - c_above + 0.5) / (n + 1))]]
        )
    low, log_low = _tail_line(knots, latent, low=True), False
    if limit is not None:
        low, log_low = _limit_tail(knots, latent, low=True)
    high, log_high = _tail_line(knots, latent, low=False), False
    if upper_limit is not None:
        high, log_high = _limit_tail(knots, latent, low=False)
    return Margin(
        "continuous", knots, latent, low, high,
        np.nan if limit is None else low_limit, log_low,
        np.nan if upper_limit is None else high_limit, log_high,
    )  # fmt: skip


def _limit_tail(knots, latent, low):
    """(line, log): the tail beyond a detection limit (the first knot, or
    the last), a line through it fitted by least squares to the nearer
    half of the knots, in log(x) where those are all positive."""
    k = max(2, len(knots) // 2)
    part = slice(None, k) if low else slice(-k, None)
    end = 0 if low else -1
    log = bool(np.all(knots[part] > 0))
    scale = np.log(knots[part]) if log else knots[part]
    end_scale = np.log(knots[end]) if log else knots[end]
    dx, dz = scale - end_scale, latent[part] - latent[end]
    slope = (dx @ dz) / (dx @ dx) if dx @ dx > 0 else 1.0
    line = (float(knots[end]), float(latent[end]), float(np.clip(slope, *SLOPE_RANGE)))
    return line, log


def _tail_line(values, z, low):
    """(x0, z0, b): the line z = z0 + b (x - x0) through the outermost point
    (x0, z0) of one tail, its slope fitted by least squares to that tail's
    points, so the map stays continuous and increasing at the end of the
    observed range.  Written from the end point, not as an intercept,
    which would cancel digits for data far from 0.  Slope 1 with one
    distinct value; kept within ``SLOPE_RANGE`` (points a denormal apart
    would give an infinite one)."""
    end = 0 if low else -1
    if len(values) < 2:
        return (float(values[end]), float(z[end]), 1.0)
    k = int(np.clip(len(values) // 10, 2, TAIL_POINTS))
    part = slice(None, k) if low else slice(-k, None)
    dx, dz = values[part] - values[end], z[part] - z[end]
    scale = np.max(np.abs(dx))
    u = dx / scale  # no underflow or overflow in the dot products
    with np.errstate(over="ignore"):
        slope = (u @ dz) / (u @ u) / scale
    return (float(values[end]), float(z[end]), float(np.clip(slope, *SLOPE_RANGE)))


def _along_tail(line, x, log=False):
    """z on a tail line at values x (on the log scale with ``log``; there
    x <= 0 is the end of the line), within +-``LATENT_LIMIT``."""
    x0, z0, slope = line
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if log:
            z = z0 + slope * (np.log(np.maximum(x, 0.0)) - np.log(x0))
        else:
            z = z0 + slope * (x - x0)
    return np.clip(np.nan_to_num(z, nan=-LATENT_LIMIT), -LATENT_LIMIT, LATENT_LIMIT)


def _back_along_tail(line, z, log=False):
    """The value on a tail line at latent values z."""
    x0, z0, slope = line
    if log:
        return x0 * np.exp((z - z0) / slope)
    return x0 + (z - z0) / slope


def to_latent(margin, x):
    """Continuous: z of each value of ``x`` (NaN stays NaN).

    Examples
    --------
    >>> m = fit_margin(np.array([1.0, 2.0, 3.0]), "continuous")
    >>> np.round(to_latent(m, np.array([1.0, 2.5, np.nan])), 3)
    array([-0.674,  0.337,    nan])
    """
    if margin.kind != "continuous":
        raise ValueError("to_latent is for continuous margins; use latent_interval")
    x = np.asarray(x, float)
    return _piecewise(x, margin.values, margin.z, _along_tail, margin)


def latent_interval(margin, x):
    """Ordinal: the interval (lower, upper] of z of each value of ``x``
    (NaN: the whole line), a value not seen in fit taken as the nearest
    level."""
    x = np.asarray(x, float)
    level = nearest_level(margin, x)
    missing = np.isnan(x)
    lower = np.where(missing, -np.inf, margin.lower_cuts[level])
    upper = np.where(missing, np.inf, margin.z[level])
    return lower, upper


def nearest_level(margin, x):
    """The index of the level nearest each value of ``x`` (NaN: 0)."""
    values = margin.values
    x = np.where(np.isnan(x), values[0], x)
    right = np.clip(np.searchsorted(values, x), 1, max(len(values) - 1, 1))
    left = right - 1
    if len(values) == 1:
        return np.zeros(x.shape, int)
    closer_left = np.abs(x - values[left]) <= np.abs(values[right] - x)
    return np.where(closer_left, left, right)


def from_latent(margin, z):
    """The value of the column at latent ``z``: the inverse of the
    continuous map, or the level whose interval holds z.

    Examples
    --------
    >>> m = fit_margin(np.array([1.0, 2.0, 3.0]), "continuous")
    >>> from_latent(m, to_latent(m, np.array([1.0, 2.5, 9.0])))
    array([1. , 2.5, 9. ])
    >>> o = fit_margin(np.array([0.0, 1.0, 1.0, 2.0]), "ordinal")
    >>> from_latent(o, np.array([-3.0, 0.0, 3.0]))
    array([0., 1., 2.])
    """
    z = np.asarray(z, float)
    if margin.kind == "ordinal":
        return margin.values[np.searchsorted(margin.z, z, side="left")]
    return _piecewise(z, margin.z, margin.values, _back_along_tail, margin)


def _piecewise(t, knots, images, tail, margin):
    """Linear interpolation of (knots, images) at t, and ``tail`` on the
    margin's tail lines beyond the knots (the continuous map, either
    way)."""
    out = np.interp(t, knots, images)
    below, above = t < knots[0], t > knots[-1]
    out[below] = tail(margin.low, t[below], margin.log_low)
    out[above] = tail(margin.high, t[above], margin.log_high)
    return out


class UnseenCategoryError(ValueError):
    """A nominal column (position ``column``) holds values not among the
    categories of fit."""

    def __init__(self, column, values):
        super().__init__(f"categories not seen in fit: {values}")
        self.column, self.values = column, values


def latent_layout(margins):
    """The latent columns of each column: one, or K for a nominal column
    with K categories (arrays of positions in the latent matrix)."""
    widths = [len(m.values) if m.kind == "nominal" else 1 for m in margins]
    ends = np.cumsum(widths)
    return [
        np.arange(end - width, end) for end, width in zip(ends, widths, strict=True)
    ]


def nominal_blocks(X, margins):
    """The :class:`~._copula_nominal.NominalBlock` of each nominal column
    of X, in latent positions.

    Raises
    ------
    UnseenCategoryError
        If a nominal column holds a value that is not a category of fit.
    """
    blocks = []
    for j, (margin, dims) in enumerate(
        zip(margins, latent_layout(margins), strict=True)
    ):
        if margin.kind != "nominal":
            continue
        x = X[:, j]
        level = np.searchsorted(margin.values, x)
        level = np.minimum(level, len(margin.values) - 1)
        known = margin.values[level] == x
        unseen = ~known & ~np.isnan(x)
        if unseen.any():
            raise UnseenCategoryError(j, np.unique(x[unseen])[:5].tolist())
        blocks.append(NominalBlock(dims, margin.z, np.where(known, level, -1)))
    return blocks


def latent_bounds(X, margins):
    """Each cell's latent interval (lower, upper), both (n, q) over the
    latent columns (:func:`latent_layout`): equal bounds at an observed
    continuous value, its level's interval at an observed ordinal value,
    the whole line at a missing cell.  A nominal column's observed
    categories are held by their block (:func:`nominal_blocks`); their
    cells here are exact at valid starting values.

    Examples
    --------
    >>> X = np.array([[0.5, 1.0], [np.nan, 0.0], [1.5, np.nan]])
    >>> margins = [fit_margin(X[[0, 2], 0], "continuous"),
    ...            fit_margin(X[[0, 1], 1], "ordinal")]
    >>> lower, upper = latent_bounds(X, margins)
    >>> np.round(lower, 3)
    array([[-0.431,  0.   ],
           [  -inf,   -inf],
           [ 0.431,   -inf]])
    >>> np.round(upper, 3)
    array([[-0.431,    inf],
           [   inf,  0.   ],
           [ 0.431,    inf]])
    """
    layout = latent_layout(margins)
    q = sum(len(dims) for dims in layout)
    lower, upper = np.empty((len(X), q)), np.empty((len(X), q))
    blocks = iter(nominal_blocks(X, margins))
    for j, (margin, dims) in enumerate(zip(margins, layout, strict=True)):
        if margin.kind == "nominal":
            block = next(blocks)
            lower[:, dims], upper[:, dims] = -np.inf, np.inf
            observed = np.flatnonzero(block.observed)
            lower[np.ix_(observed, dims)] = starting_values(block)
            upper[np.ix_(observed, dims)] = lower[np.ix_(observed, dims)]
            continue
        j_latent = dims[0]
        if margin.kind == "ordinal":
            lower[:, j_latent], upper[:, j_latent] = latent_interval(margin, X[:, j])
            continue
        z = to_latent(margin, X[:, j])
        missing = np.isnan(z)
        lower[:, j_latent] = np.where(missing, -np.inf, z)
        upper[:, j_latent] = np.where(missing, np.inf, z)
        if margin.censored_below:
            censored = X[:, j] <= margin.limit
            lower[censored, j_latent], upper[censored, j_latent] = -np.inf, margin.z[0]
        if margin.censored_above:
            censored = X[:, j] >= margin.upper_limit
            lower[censored, j_latent], upper[censored, j_latent] = margin.z[-1], np.inf
    return lower, upper


def imputed_range(margin):
    """(low, high): where a continuous column's imputed values are kept,
    the observed range, open beyond a detection limit (there the tail
    itself is the range)."""
    low = -np.inf if margin.censored_below else margin.values[0]
    high = np.inf if margin.censored_above else margin.values[-1]
    return low, high


def censored_cells(X, margins):
    """Where X (n, p) holds a censored value: at or below its column's
    lower detection limit, or at or above its upper one (NaN: never)."""
    censored = np.zeros(X.shape, dtype=bool)
    for j, margin in enumerate(margins):
        if margin.censored:
            # (A comparison with a NaN limit is False: no censoring that side.)
            censored[:, j] = (X[:, j] <= margin.limit) | (X[:, j] >= margin.upper_limit)
    return censored


def values_from_latent(Z, margins, within_range=False):
    """The matrix of column values at latent values Z (n, p): each column
    through :func:`from_latent` (a level of an ordinal column, always one
    seen in fit; a finite value of a continuous one, with
    ``within_range=True`` kept within the observed range, as an imputed
    value should be: the tail lines are there to transform new data)."""
    columns = []
    for margin, dims in zip(margins, latent_layout(margins), strict=True):
        if margin.kind == "nominal":  # the category of the largest z + mu
            columns.append(margin.values[np.argmax(Z[:, dims] + margin.z, axis=1)])
            continue
        values = from_latent(margin, Z[:, dims[0]])
        if within_range and margin.kind == "continuous":
            values = np.clip(values, *imputed_range(margin))
        columns.append(values)
    return np.column_stack(columns) if columns else np.empty(Z.shape)


def infer_kind(x, dtype=None):
    """``"ordinal"`` for a column of booleans or of integers (integer dtype,
    or floats that are all whole numbers) with at most
    ``MAX_ORDINAL_LEVELS`` distinct observed values; else ``"continuous"``.

    Examples
    --------
    >>> infer_kind(np.array([1.0, 2.0, 5.0, np.nan]))
    'ordinal'
    >>> infer_kind(np.array([1.5, 2.0]))
    'continuous'
    """
    if dtype is not None and np.dtype(dtype) == np.bool_:
        return "ordinal"
    observed = np.asarray(x, float)
    observed = observed[~np.isnan(observed)]
    whole = np.all(observed == np.round(observed))
    few = len(np.unique(observed)) <= MAX_ORDINAL_LEVELS
    return "ordinal" if whole and few else "continuous"


def margin_state(margin):
    """A :class:`Margin` as JSON-able values (an ordinal margin's last cut
    point, always +inf, left out)."""
    z = margin.z[:-1] if margin.kind == "ordinal" else margin.z
    return {
        "kind": margin.kind,
        "values": margin.values.tolist(),
        "z": z.tolist(),
        "low": list(margin.low),
        "high": list(margin.high),
        "limit": None if not margin.censored_below else float(margin.limit),
        "log_low": bool(margin.log_low),
        "upper_limit": None if not margin.censored_above else float(margin.upper_limit),
        "log_high": bool(margin.log_high),
    }


def margin_from_state(state):
    """The :class:`Margin` of :func:`margin_state`'s values.

    Raises
    ------
    ValueError
        If they are not a margin: an unknown kind, values or cut points
        that are not finite and increasing, lengths that disagree, tail
        lines with a slope that is not positive.
    """
    kind = state.get("kind")
    if kind not in KINDS:
        raise ValueError(f"has kind {kind!r}; the kinds are {KINDS}")
    try:
        values = np.array(state["values"], dtype=np.float64)
        z = np.array(state["z"], dtype=np.float64)
        low = tuple(float(v) for v in state["low"])
        high = tuple(float(v) for v in state["high"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("must hold values, z, low and high, all numbers") from None
    wanted = len(values) - 1 if kind == "ordinal" else len(values)
    if values.ndim != 1 or len(values) == 0 or z.shape != (wanted,):
        raise ValueError(f"must have {wanted} latent points for {len(values)} values")
    if len(low) != 3 or len(high) != 3:
        raise ValueError("must have tail lines of three numbers (x0, z0, slope)")
    numbers = np.concatenate([values, z, low, high])
    if not np.all(np.isfinite(numbers)):
        raise ValueError("must hold finite numbers only")
    if np.any(np.diff(values) <= 0):
        raise ValueError("must have increasing values")
    if kind == "nominal" and (len(z) == 0 or z[0] != 0):
        raise ValueError("must have means starting at 0")
    if kind != "nominal" and np.any(np.diff(z) <= 0):
        raise ValueError("must have increasing latent points")
    if low[2] <= 0 or high[2] <= 0:
        raise ValueError("must have tail lines of positive slope")
    limit = _state_limit(state, "limit", "log_low", kind, values[0], "first")
    upper_limit = _state_limit(
        state, "upper_limit", "log_high", kind, values[-1], "last"
    )
    if kind == "ordinal":
        z = np.append(z, np.inf)
    return Margin(
        kind, values, z, low, high, limit, state.get("log_low", False),
        upper_limit, state.get("log_high", False),
    )  # fmt: skip


def _state_limit(state, name, log_name, kind, end_value, end):
    """A model file's detection limit ``name`` (NaN: none), checked: a
    number equal to the end value of a continuous margin's values."""
    limit = state.get(name)
    limit = np.nan if limit is None else limit
    if not (
        isinstance(limit, (int, float))
        and isinstance(state.get(log_name, False), bool)
        and (np.isnan(limit) or (kind == "continuous" and limit == end_value))
    ):
        raise ValueError(f"must have a detection limit equal to its {end} value")
    return float(limit)
