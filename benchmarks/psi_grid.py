"""A fixed-psi grid (the MNAR sensitivity curve): cold fits against warm
starts from the neighbouring psi (issue 14).

The matrix of ``mnar_fit.py`` (:func:`mnar_fit.mnar_matrix`: normal data,
column 0 hidden by probit self-selection, 10% MCAR elsewhere), n = 20,000
rows and p = 5 columns by default.  A grid of 20 psi values, -2 to 1.8
standard deviations of the column in steps of 0.2 (0, the MAR point,
first), fixed in ``MNARSelectionImputer(mnar_features=[0], psi=...)``:

- fits only: 20 cold fits, against the warm path (the points in order of
  distance from 0, each fit starting from a copy of the nearest fitted
  point's imputer with ``warm_start=True``), with the total EM iterations
  and the largest difference of the estimates (standardised scale);
- the whole analysis: ``sensitivity_analysis(kind="psi")`` of the mean of
  column 0 with ``n_imputations`` imputations, ``warm_start=False`` against
  True, with the largest difference of the pooled estimates.

Each run's cost is also given in units of one cold held-psi fit (the mean
of the 20 cold fits) and of one free-psi fit of the same matrix
(``MNARSelectionImputer(mnar_features=[0])``, the median of three); for
``sensitivity_analysis`` per imputation (seconds / m), whose m fits per
point also draw the imputations.

Usage::

    python benchmarks/psi_grid.py                 # n = 20,000, p = 5, m = 5
    python benchmarks/psi_grid.py --quick         # n = 2,000, m = 2
    python benchmarks/psi_grid.py --n 100000 --p 10 --imputations 10
"""

import argparse
import copy
import warnings

import numpy as np
from _report import machine_header, markdown_table, median_time, timed
from mnar_fit import mnar_matrix

from emimpute import MNARSelectionImputer
from emimpute.sensitivity import sensitivity_analysis

GRID_SD = np.r_[0.0, np.delete(np.round(np.arange(-2.0, 1.81, 0.2), 10), 10)]


def cold_fits(X, grid):
    """One fresh fit per grid value."""
    return [MNARSelectionImputer([0], psi=psi, random_state=0).fit(X) for psi in grid]


def warm_fits(X, grid):
    """The grid outward from its first value, each fit from the nearest
    fitted one (as sensitivity_analysis does)."""
    fitted = {}
    for i in np.argsort(np.abs(grid - grid[0]), kind="stable"):
        if fitted:
            nearest = min(fitted, key=lambda k: abs(grid[k] - grid[i]))
            imputer = copy.deepcopy(fitted[nearest]).set_params(psi=grid[i])
        else:
            imputer = MNARSelectionImputer([0], psi=grid[i], random_state=0)
            imputer.set_params(warm_start=True)
        fitted[i] = imputer.fit(X)
    return [fitted[i] for i in range(len(grid))]


def free_fit(X):
    """One fit with psi estimated: the unit the grid is also measured in."""
    return MNARSelectionImputer([0], random_state=0).fit(X)


def in_units(seconds, unit):
    return f"{seconds / unit:.1f}"


def largest_difference(a, b, scale):
    """The largest difference of the means, covariances and selection
    coefficients of two lists of fits, on the standardised scale."""
    worst = 0.0
    for fa, fb in zip(a, b, strict=True):
        coef_scale = np.r_[1.0, scale[0], scale[fa.covariates_]]
        ca = fa.selection_coef_.drop(columns="psi_fixed").to_numpy(float)
        cb = fb.selection_coef_.drop(columns="psi_fixed").to_numpy(float)
        worst = max(
            worst,
            np.abs((fa.mean_ - fb.mean_) / scale).max(),
            np.abs((fa.covariance_ - fb.covariance_) / np.outer(scale, scale)).max(),
            np.abs((ca - cb) * coef_scale).max(),
        )
    return worst


def mean_of_x0(values, y):
    """The analysis: the mean of column 0 and its squared standard error."""
    column = values[:, 0]
    return [column.mean()], [column.var(ddof=1) / len(column)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--p", type=int, default=5)
    parser.add_argument("--imputations", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, m = (2_000, 2) if args.quick else (args.n, args.imputations)
    X = mnar_matrix(n, args.p, 1)
    scale = np.nanstd(X, axis=0)
    grid = GRID_SD / scale[0]
    warnings.simplefilter("ignore")  # far psi may stop early; timed as they are
    free = free_fit(X)  # a warm-up, and the iterations of one
    t_free = median_time(lambda: free_fit(X), 3)
    t_cold, cold = timed(cold_fits, X, grid)
    t_warm, warm = timed(warm_fits, X, grid)
    unit = t_cold / len(grid)  # one cold held-psi fit
    rows = [
        ["20 fits, cold", f"{t_cold:.2f}", in_units(t_cold, unit),
         in_units(t_cold, t_free), sum(f.n_iter_ for f in cold), "", ""],
        ["20 fits, warm (neighbouring psi)", f"{t_warm:.2f}",
         in_units(t_warm, unit), in_units(t_warm, t_free),
         sum(f.n_iter_ for f in warm), f"{t_cold / t_warm:.2f}x",
         f"{largest_difference(warm, cold, scale):.1e}"],
    ]  # fmt: skip
    tables, seconds = {}, {}
    for flag in (False, True):
        seconds[flag], tables[flag] = timed(
            sensitivity_analysis, mean_of_x0, X, column=0, deltas=list(grid),
            kind="psi", n_imputations=m, warm_start=flag,
        )  # fmt: skip
        rows.append([f"sensitivity_analysis, m = {m}, warm_start={flag}",
                     f"{seconds[flag]:.2f}", in_units(seconds[flag] / m, unit),
                     in_units(seconds[flag] / m, t_free), "", "", ""])  # fmt: skip
    rows[3][5] = f"{seconds[False] / seconds[True]:.2f}x"
    diff = np.abs(tables[True]["estimate"] - tables[False]["estimate"]).max()
    rows[3][6] = f"{diff / scale[0]:.1e}"
    print(f"## psi grid: 20 points, n = {n:,}, p = {args.p}, one MNAR column\n")
    print(machine_header() + "\n")
    print(f"One cold held-psi fit (mean of the 20): {unit:.3f} s; one free-psi "
          f"fit: {t_free:.3f} s ({free.n_iter_} iterations).\n")  # fmt: skip
    headers = ["run", "seconds", "in cold held-psi fits", "in free-psi fits",
               "EM iterations", "speed-up", "largest difference"]  # fmt: skip
    print(markdown_table(headers, rows))
    print("\nsensitivity_analysis rows: cost per imputation (seconds / m).")


if __name__ == "__main__":
    main()
