"""Where the selection model's E-step places the nodes of each row's missing
MNAR cells, and which rows share one array of them (statistical kernel).

A row with one missing MNAR cell takes a rule of its own
(:func:`._selection_cell.one_cell_rule`, 12 to 228 nodes by the steepness
of its selection curve); a row with two, a product Gauss-Hermite grid sized
per axis (:func:`grid_per_row`, 144 to 576 nodes); a row with more, the
shared scrambled Sobol points (:class:`NodeRule`).

The E-step holds the nodes of many rows in one array, so rows of shorter
rules are padded to the longest with nodes of weight 0.  One steep row
among 100,000 gentle ones would then make every row carry 228 nodes
instead of 12, so the rows are first split into buckets by their rule's
size (:func:`size_buckets`): a bucket more costs a fixed number of NumPy
calls, padding costs per node, and the split that minimises the sum is
found exactly.  A row's moments never depend on its bucket.
"""

import numpy as np
from scipy import stats

from emimpute.models._selection_cell import (
    STEEP_NODES,
    gentle_size,
    one_cell_rule,
    product_rule,
    steep_slope,
)

# The most nodes per axis of the product Gauss-Hermite grid of a row with
# two MNAR cells (sized by its slopes, :func:`grid_per_row`).
GRID_NODES_2D = 24
# Sobol points for rows with more MNAR cells than the closed forms take
# (three or more under the logit link, four or more under the probit; a
# power of two).
SOBOL_POINTS = 512
# What one bucket more costs, in padded nodes (rows x nodes) it must save:
# a bucket is some 20 NumPy calls on small arrays.  1,000, 4,000 and 10,000
# timed within noise of each other on the slowest designs of
# benchmarks/mnar_tiny.py (2 cores); no split at all was 30% slower on the
# slowest of them.
BUCKET_COST = 4000


class NodeRule:
    """Scrambled Sobol points for rows with three or more MNAR cells (from
    ``seed``, made once per dimension and kept)."""

    def __init__(self, seed):
        self.seed = seed
        self._sobol = {}

    def standard(self, dim):
        """Nodes z (Q, dim) of N(0, I), dim >= 3, and their log weights (Q,)."""
        if dim not in self._sobol:
            engine = stats.qmc.Sobol(dim, scramble=True, seed=self.seed)
            self._sobol[dim] = stats.norm.ppf(engine.random(SOBOL_POINTS))
        z = self._sobol[dim]
        return z, np.full(len(z), -np.log(len(z)))


def row_rules(index, c, C_JJ, psi, link, sobol):
    """The nodes of each row's MNAR cells, rows in buckets.

    Parameters
    ----------
    index : ndarray of shape (n, k_J)
        Each MNAR cell's selection index alpha + gamma' x_c (without its
        psi y term).
    c : ndarray of shape (n, k_J)
        The cells' conditional mean given the row's observed cells.
    C_JJ : ndarray of shape (n, k_J, k_J)
        Their conditional covariance.
    psi : ndarray of shape (n, k_J)
        Each cell's psi.
    link : {"probit", "logit"}
    sobol : NodeRule

    Yields
    ------
    rows : ndarray of int or slice
        The bucket's rows.
    y : ndarray of shape (n_b, Q, k_J)
        Their nodes (rows of shorter rules padded at c with weight 0).
    log_w : ndarray of shape (n_b, Q) or (Q,)
        The nodes' log weights against N(c, C_JJ).
    """
    k_J = c.shape[1]
    if k_J == 1:
        sd = np.sqrt(C_JJ[:, 0, 0])
        a, b = index[:, 0] + psi[:, 0] * c[:, 0], psi[:, 0] * sd
        for rows in size_buckets(one_cell_size(b, link)):
            z, log_w = one_cell_rule(a[rows], b[rows], link)
            yield rows, c[rows, None, :] + (sd[rows, None] * z)[:, :, None], log_w
        return
    L = np.linalg.cholesky(C_JJ)
    if k_J == 2:
        sizes = grid_sizes(L, np.abs(psi), link)
        for rows in size_buckets(sizes[:, 0] * sizes[:, 1]):
            yield rows, *grid_per_row(c[rows], L[rows], sizes[rows])
        return
    z, log_w = sobol.standard(k_J)
    yield slice(None), c[:, None, :] + z @ L.transpose(0, 2, 1), log_w


def one_cell_size(b, link):
    """The node count of :func:`._selection_cell.one_cell_rule` for each
    row of slope ``b``."""
    slope = np.abs(b)
    return np.where(slope > steep_slope(link), STEEP_NODES, gentle_size(slope, link))


def grid_slopes(L, psi):
    """The slopes of a two-cell row's selection factors along the axes of
    its grid y = c + L z (``psi`` their absolute values): along z1 both
    factors' add, |psi_1 L_11| + |psi_2 L_21|; along z2, |psi_2 L_22|."""
    along_1 = psi[:, 0] * np.abs(L[:, 0, 0]) + psi[:, 1] * np.abs(L[:, 1, 0])
    return along_1, psi[:, 1] * np.abs(L[:, 1, 1])


def grid_sizes(L, psi, link):
    """Nodes per axis (n, 2) of each two-cell row's grid: the one-cell
    rule's Gauss-Hermite size for the slope along the axis
    (:func:`grid_slopes`, :func:`._selection_cell.gentle_size`), at most
    ``GRID_NODES_2D``."""
    slope_1, slope_2 = grid_slopes(L, psi)
    sizes = np.column_stack([gentle_size(slope_1, link), gentle_size(slope_2, link)])
    return np.minimum(sizes, GRID_NODES_2D)


def grid_per_row(c, L, sizes):
    """Each row's product Gauss-Hermite grid y = c + L z for its two MNAR
    cells, of ``sizes`` (n, 2) nodes per axis.  Returns the nodes y
    (n, Q, 2), rows padded to the largest grid (at c, weight 0), and their
    log weights (n, Q)."""
    pairs, which = np.unique(sizes, axis=0, return_inverse=True)
    which = np.asarray(which).ravel()
    width = int(np.max(pairs[:, 0] * pairs[:, 1]))
    y = np.repeat(c[:, None, :], width, axis=1)
    log_w = np.full((len(L), width), -np.inf)
    for i, (n1, n2) in enumerate(pairs):  # a few sizes, not rows
        rows = np.flatnonzero(which == i)
        grid, log_grid = product_rule(n1, n2)
        y[rows, : len(grid)] += grid @ L[rows].transpose(0, 2, 1)
        log_w[rows, : len(grid)] = log_grid
    return y, log_w


def size_buckets(sizes, bucket_cost=None):
    """Split rows into buckets of neighbouring rule sizes, each to be padded
    to its largest, minimising the padded nodes plus ``bucket_cost`` per
    bucket (an exact dynamic programme over the distinct sizes, of which
    there are a few).  One bucket is ``slice(None)``.  ``bucket_cost``
    defaults to ``BUCKET_COST``, read at the call.

    Examples
    --------
    >>> size_buckets(np.array([12, 12, 228]), bucket_cost=100)
    [array([0, 1]), array([2])]
    >>> size_buckets(np.array([12, 12, 228]), bucket_cost=1000)
    [slice(None, None, None)]
    """
    bucket_cost = BUCKET_COST if bucket_cost is None else bucket_cost
    distinct, of_row, counts = np.unique(sizes, return_inverse=True, return_counts=True)
    if len(distinct) < 2:
        return [slice(None)]
    below = np.concatenate([[0], np.cumsum(counts)])  # rows up to each size
    best, start = np.zeros(len(distinct) + 1), np.zeros(len(distinct) + 1, int)
    for end in range(1, len(distinct) + 1):  # buckets end at distinct[end-1]
        cost = best[:end] + bucket_cost + distinct[end - 1] * (below[end] - below[:end])
        start[end] = int(np.argmin(cost))
        best[end] = cost[start[end]]
    edges, end = [], len(distinct)
    while end:
        edges.append((start[end], end))
        end = start[end]
    if len(edges) == 1:
        return [slice(None)]
    of_row = np.asarray(of_row).ravel()
    return [
        np.flatnonzero((of_row >= lo) & (of_row < hi)) for lo, hi in reversed(edges)
    ]
