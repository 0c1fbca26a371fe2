"""The copula's imputations on the columns' scales (statistical kernel):
the value that minimises the expected loss of each kind of column.

- continuous: the posterior mean of the value, E[F^-1(Phi(z))] (not
  F^-1(E[z]), which is about the posterior median and, on a skewed
  column, biased for squared error);
- ordinal and binary: the posterior median level (the expected absolute
  error's minimum; for two levels, the most probable one);
- nominal: the most probable category (:mod:`._copula_nominal`);
- censored cells: the value at their latent posterior mean.

A missing cell's latent posterior given its row is a mixture, over the
Gibbs sweeps, of its full conditional N(m, s^2), s^2 = 1 / Lambda_jj
(Rao-Blackwellisation, with less Monte Carlo error than the draws;
Gelfand & Smith 1990).  An ordinal cell adds Phi((c - m) / s) at its
column's cut points c each sweep: its posterior CDF at the levels.  A
continuous cell adds m and m^2: the mixture is summarised by a normal of
its mean and variance (s^2 plus the variance of m over the sweeps), and
E[F^-1(Phi(z))] under that normal is taken once, by Gauss-Hermite
quadrature (per sweep it cost 10.7 of 23 s at 100,000 x 30, for a change
far below the Monte Carlo error).  Rows whose observed cells are all
exact have a normal latent posterior (the normal model's conditional mean
and variance): the same sums with one term, exactly.

In ``fit_transform`` the fit's sweeps after its burn-in are already
sweeps of this chain, on the same rows: they feed the sums as they are
made (:func:`fit_tallies`), and the imputation goes on from the fit's last
state for the sweeps still short.
"""

from dataclasses import dataclass

import numpy as np
from scipy import special

from emimpute.gaussian._conditional import conditional_moments
from emimpute.gaussian._interval import interval_moments
from emimpute.models._copula import (
    _initial_state,
    free_cells,
    gibbs_sweep,
    single_blas_thread,
)
from emimpute.models._copula_margins import (
    censored_cells,
    from_latent,
    imputed_range,
    latent_layout,
    values_from_latent,
)
from emimpute.models._copula_nominal import NominalBlock, categories_of, nominal_sweep
from emimpute.models._copula_posterior import latent_draw, latent_quantiles
from emimpute.models._copula_threads import row_blocks, run_blocks

# Gauss-Hermite nodes for E[g(m + s e)], e ~ N(0, 1): g is the margin's
# inverse, piecewise linear in z between observed values; 16 nodes put the
# outermost at 5.4 standard deviations.
HERMITE_NODES = 16


def _hermite():
    x, w = np.polynomial.hermite.hermgauss(HERMITE_NODES)
    return np.sqrt(2.0) * x, w / np.sqrt(np.pi)


def posterior_imputations(
    lower, upper, R, margins, *, rng, impute, blocks=(), n_sweeps, burn_in,
    warm=None, shift=None,
):  # fmt: skip
    """The imputed value of every cell in ``impute`` (module docstring).

    Parameters
    ----------
    lower, upper : ndarray of shape (n, q)
        Latent bounds (:func:`~._copula_margins.latent_bounds`).
    R : ndarray of shape (q, q)
    margins : list of Margin
        One per column (p columns, laid out by
        :func:`~._copula_margins.latent_layout`).
    rng : numpy.random.Generator
    impute : ndarray of bool of shape (n, p)
        The cells wanted (missing or censored), by column.
    blocks : sequence of NominalBlock
    n_sweeps, burn_in : int
        Of the Gibbs chain of rows with interval or nominal cells: sweeps
        summed (at least), and sweeps discarded before them.
    warm : FitChain, optional
        The chain of a fit of the same data (``fit_transform``): it goes
        on from the fit's last state with no burn-in, and its tallies
        already hold the fit's sweeps after its burn-in, so only the
        sweeps short of ``n_sweeps`` are run.
    shift : ndarray of shape (n, p), optional
        Added to the latent value of each cell before it is mapped back
        (``DeltaAdjustedImputer(kind="latent")``).

    Returns
    -------
    ndarray of shape (n, p)
        The imputed values at ``impute``, NaN elsewhere.
    """
    dims = [d[0] for d in latent_layout(margins)]
    out = np.full(impute.shape, np.nan)
    missing = np.isneginf(lower) & np.isposinf(upper)
    wanted = impute.any(axis=1)
    chained = chained_rows(lower, upper, impute, blocks)
    closed = np.flatnonzero(wanted & ~chained)
    if len(closed):
        X = np.where(missing[closed], np.nan, lower[closed])
        moments = conditional_moments(X, np.zeros(len(R)), R, want_variance=True)
        spread = np.sqrt(moments.variance)
        sums = _Sums(margins, dims, shift)
        out[closed] = sums.one_term(moments.completed, spread, impute[closed], closed)
    precision = np.linalg.inv(R)
    if warm is not None:
        seeds = rng.integers(0, 2**63 - 1, size=len(warm.tallies))

        def run(item):  # a fit block's chained rows, on its own thread
            tally, seed = item
            Z = np.array(warm.latent[tally.rows], order="F")
            more = max(n_sweeps - tally.n_terms, 0)
            run_chain(Z, tally, precision, np.random.default_rng(seed), 0, more)
            return tally.result()

        with single_blas_thread():
            found = run_blocks(run, list(zip(warm.tallies, seeds, strict=True)))
        for tally, values in zip(warm.tallies, found, strict=True):
            out[tally.rows] = values
    elif chained.any():
        chained = np.flatnonzero(chained)
        cut = [NominalBlock(b.dims, b.mu, b.level[chained]) for b in blocks]

        def run(part):  # a block of the chained rows, on its own thread
            rows = chained[part.rows]
            tally = ChainTally(
                lower[rows], upper[rows], margins, impute[rows], part.blocks, rows,
                shift,
            )  # fmt: skip
            Z = _initial_state(lower[rows], upper[rows], part.rng)
            run_chain(Z, tally, precision, part.rng, burn_in, n_sweeps)
            return tally.result()

        with single_blas_thread():
            found = run_blocks(run, row_blocks(len(chained), cut, rng))
        out[chained] = np.concatenate(found)
    out[~impute] = np.nan
    return out


def chained_rows(lower, upper, impute, blocks):
    """Boolean over rows: those whose imputations need the Gibbs chain (a
    cell to impute, and an interval cell or a nominal column); the others'
    latent posterior is normal, in closed form."""
    interval = (lower < upper) & ~(np.isneginf(lower) & np.isposinf(upper))
    return impute.any(axis=1) & (interval.any(axis=1) | bool(len(blocks)))


def run_chain(Z, tally, precision, rng, burn_in, n_sweeps):
    """``burn_in`` Gibbs sweeps of the tally's rows from state Z (in
    place), then ``n_sweeps`` more, each added to ``tally``."""
    cells = free_cells(tally.lower, tally.upper)
    for sweep in range(burn_in + n_sweeps):
        gibbs_sweep(Z, cells, precision, rng)
        nominal_sweep(Z, tally.blocks, precision, rng)
        if sweep >= burn_in:
            tally.add(Z, precision)


class ChainTally:
    """The Rao-Blackwellised sums of a Gibbs chain of some rows, sweep by
    sweep, and the imputations they give (module docstring).

    Parameters
    ----------
    lower, upper : ndarray of shape (n, q)
        The rows' latent bounds.
    margins : list of Margin
    impute : ndarray of bool of shape (n, p)
        The rows' cells to impute.
    blocks : sequence of NominalBlock
        Cut to the rows.
    rows : ndarray of int
        The rows' positions in the data (for ``shift``).
    shift : ndarray of shape (n_data, p), optional
    """

    def __init__(self, lower, upper, margins, impute, blocks, rows, shift=None):
        self.lower, self.upper, self.blocks, self.rows = lower, upper, blocks, rows
        self.sums = _Sums(margins, [d[0] for d in latent_layout(margins)], shift)
        self.sums.start(impute, rows)
        self.counts = [np.zeros((len(lower), len(b.dims))) for b in blocks]
        self.n_terms = 0
        self._means = None

    def add(self, Z, precision):
        """Add the sweep that left the rows at Z, made with ``precision``."""
        s = 1.0 / np.sqrt(np.diag(precision))
        if self._means is None:
            self._means = np.empty_like(Z)
        # Each cell's full-conditional mean m = Z - Z (Lambda / diag(Lambda))
        # in one buffer: the temporaries of the plain expression took 2.5 ms
        # of a 10,000-row block's 14 ms per sweep, against 0.5 ms.
        m = np.matmul(Z, precision * (s * s), out=self._means)
        np.subtract(Z, m, out=m)
        self.sums.add(m, s, self.lower, self.upper)
        rows = np.arange(len(Z))
        for count, block in zip(self.counts, self.blocks, strict=True):
            count[rows, categories_of(Z, block)] += 1
        self.n_terms += 1

    def result(self):
        """The imputed values (NaN at cells not imputed), shape (n, p)."""
        out = self.sums.result(self.n_terms)
        margins = self.sums.margins
        nominal = [j for j, margin in enumerate(margins) if margin.kind == "nominal"]
        for j, count in zip(nominal, self.counts, strict=True):
            out[:, j] = margins[j].values[np.argmax(count, axis=1)]
        return out


@dataclass
class FitChain:
    """What ``fit_transform``'s imputation takes over from the fit: the
    last latent state, and per fit row block the :class:`ChainTally` of
    its chained rows, fed by the fit's sweeps after its burn-in."""

    latent: np.ndarray
    tallies: list


def fit_tallies(lower, upper, margins, impute, blocks):
    """``tally(part)``: the (local rows, :class:`ChainTally`) of a fit row
    block ``part`` (:class:`~._copula_threads.RowBlock`), over its chained
    rows (None if it has none), for the fit's sweeps to feed
    (:func:`~._copula.saem_correlation`'s ``tally``).

    Why: a fit's sweeps after its burn-in are sweeps of the chain the
    imputations need, made at the current estimate of R instead of the
    final one, which after the burn-in is within the Monte Carlo error of
    a long run (largest deviation 0.007 at 100,000 x 30, the note on
    ``_copula.BURN_IN``) and closes in on it.  Measured: the imputations
    of fit_transform differ from those of fit then transform no more than
    two transforms' independent chains differ (tests/models/
    test_copula_impute.py).  At 100,000 x 30 the fit's last 10 of its 30
    sweeps count, and fit_transform takes 4.4 s against 4.8 s.
    """
    chained = chained_rows(lower, upper, impute, blocks)
    positions = np.arange(len(lower))

    def tally(part):
        local = np.flatnonzero(chained[part.rows])
        if not len(local):
            return None
        rows = positions[part.rows][local]
        cut = [NominalBlock(b.dims, b.mu, b.level[local]) for b in part.blocks]
        counted = ChainTally(lower[rows], upper[rows], margins, impute[rows], cut, rows)
        return local, counted

    return tally


class _Sums:
    """Per column, the running sums that give its imputations."""

    def __init__(self, margins, dims, shift=None):
        self.margins, self.dims, self.shift = margins, dims, shift
        self.nodes, self.weights = _hermite()

    def start(self, impute, rows):
        """Sums over the cells ``impute`` of the data's ``rows``."""
        self.impute = impute
        # Each summed column's rows to impute, found once for all sweeps.
        self.rows = {
            j: np.flatnonzero(impute[:, j])
            for j, margin in enumerate(self.margins)
            if margin.kind != "nominal" and impute[:, j].any()
        }
        self.totals = {}
        self.censored_rows = {}
        self.row_shift = None if self.shift is None else self.shift[rows]

    def one_term(self, mean, spread, impute, rows):
        """Imputations from a normal latent posterior N(mean, spread^2)
        per cell (one term of the sums)."""
        self.start(impute, rows)
        self.add(mean, spread, None, None, given_spread=True)
        return self.result(1)

    def add(self, m, s, lower, upper, given_spread=False):
        """Add one sweep's terms: m the full-conditional means, s their
        standard deviations (one per latent column, or per cell with
        ``given_spread``)."""
        for j, rows in self.rows.items():
            d = self.dims[j]
            centre = m[rows, d]
            if self.row_shift is not None:
                centre += self.row_shift[rows, j]  # (centre is a copy)
            sd = s[rows, d] if given_spread else s[d]
            term = self._term(j, centre, sd, rows, lower, upper)
            if j in self.totals:
                self.totals[j] += term
            else:
                self.totals[j] = term

    def _term(self, j, centre, sd, rows, lower, upper):
        """This sweep's term of column j: its CDF at the cut points
        (ordinal), or the latent mean and mean square (continuous; the
        truncated conditional's mean at censored cells).  ``sd``: a number,
        or one per cell."""
        margin, d = self.margins[j], self.dims[j]
        sd_cells = np.broadcast_to(sd, centre.shape)
        if margin.kind == "ordinal":  # the CDF at each level's upper cut
            cuts = margin.z[None, :-1]
            return special.ndtr((cuts - centre[:, None]) / sd_cells[:, None])
        moments = np.column_stack([centre, centre * centre + sd_cells * sd_cells])
        if margin.censored and lower is not None:
            # A continuous column's interval cells: those censored at a limit.
            low, high = lower[rows, d], upper[rows, d]
            censored = (low < high) & ~(np.isneginf(low) & np.isposinf(high))
            if censored.any():  # the latent mean of the truncated conditional
                self.censored_rows[j] = censored
                z = centre.copy()
                sd_censored = sd_cells[censored]
                lo = (lower[rows, d][censored] - centre[censored]) / sd_censored
                hi = (upper[rows, d][censored] - centre[censored]) / sd_censored
                z[censored] += sd_censored * interval_moments(lo, hi)[1]
                moments[censored] = np.column_stack([z[censored], z[censored] ** 2])
        return moments

    def _mean_value(self, margin, centre, sd):
        """E[g(centre + sd e)] by Gauss-Hermite, g the margin's inverse
        kept within the observed range (open beyond a detection limit)."""
        z = centre[:, None] + sd[:, None] * self.nodes[None, :]
        values = from_latent(margin, z.ravel()).reshape(z.shape)
        low, high = imputed_range(margin)
        # (Clipped after the sum too: the weights sum to 1 only to rounding.)
        bounded = np.clip(values, low, high) @ self.weights
        return np.clip(bounded, low, high)

    def result(self, n_terms):
        out = np.full(self.impute.shape, np.nan)
        for j, total in self.totals.items():
            rows = self.rows[j]
            margin = self.margins[j]
            if margin.kind == "ordinal":  # the posterior median level
                cdf = total / n_terms
                out[rows, j] = margin.values[np.sum(cdf < 0.5, axis=1)]
                continue
            mean, square = (total / n_terms).T  # E[z], E[z^2]
            values = self._mean_value(
                margin, mean, np.sqrt(np.maximum(square - mean * mean, 0.0))
            )
            if margin.censored:  # censored cells: the value at the latent mean
                censored = self.censored_rows.get(j)
                if censored is not None:
                    values[censored] = from_latent(margin, mean[censored])
            out[rows, j] = values
        return out


def drawn_values(lower, upper, R, margins, *, rng, impute, blocks=(), shift=None):
    """One joint draw of the cells to impute (``impute``, by column), as
    column values: the latent draw (plus ``shift``) through the margins,
    the drawn category for nominal columns."""
    Z, categories = latent_draw(lower, upper, R, rng=rng, impute=impute, blocks=blocks)
    if shift is not None:
        Z[:, [d[0] for d in latent_layout(margins)]] += shift
    values = values_from_latent(Z, margins, within_range=True)
    nominal = [j for j, m in enumerate(margins) if m.kind == "nominal"]
    for j, category in zip(nominal, categories, strict=True):
        found = category >= 0  # the drawn category
        values[found, j] = margins[j].values[category[found]]
    return values


def quantile_values(part, lower, upper, R, margins, probabilities, *, rng, blocks=()):
    """Quantiles of each imputed (missing or censored) cell of ``part`` on
    its column's scale, (len(probabilities), n, p): the latent quantiles
    (:func:`~._copula_posterior.latent_quantiles`) through the increasing
    margins; observed cells keep their value, nominal cells get NaN."""
    dims = [d[0] for d in latent_layout(margins)]
    nominal = np.array([m.kind == "nominal" for m in margins])
    impute = np.isnan(part) | censored_cells(part, margins)
    wanted = np.zeros(lower.shape, dtype=bool)
    wanted[:, dims] = impute & ~nominal
    latent = latent_quantiles(
        lower, upper, R, probabilities, rng=rng, impute=wanted, blocks=blocks
    )
    found = []
    for Z in latent:
        values = values_from_latent(np.nan_to_num(Z), margins, within_range=True)
        values = np.where(impute, values, part)
        values[impute & nominal] = np.nan
        found.append(values)
    return np.stack(found)
