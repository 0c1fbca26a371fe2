"""Benchmark problems: complete data, the same data with holes, and the mask.

Every generator is seeded and returns a :class:`Problem`; the hidden cells
(``mask``) are what the imputers are scored on.

* :func:`synthetic` draws a multivariate normal with a random factor-model
  correlation matrix (moderate correlations, unit variances) and removes cells
  MCAR or MAR.
* :func:`real` takes a data set shipped with scikit-learn (no download) and
  removes cells MCAR.
* :data:`PROBLEMS` is the problem list of ``compare_imputers.py``.

Run ``python benchmarks/problems.py`` for a summary table of the problem list
(``--quick``: without the n = 100,000 problems).
"""

import argparse
from dataclasses import dataclass

import numpy as np
from _report import machine_header
from scipy.optimize import brentq
from scipy.special import expit

# ---------------------------------------------------------------------------
# What a problem is


@dataclass(frozen=True)
class Problem:
    """A complete matrix, its amputed copy (NaN at hidden cells) and the mask."""

    name: str
    X_complete: np.ndarray
    X_missing: np.ndarray
    mask: np.ndarray  # True at the hidden cells

    @property
    def shape(self):
        return self.X_complete.shape

    @property
    def missing_fraction(self):
        return float(self.mask.mean())


@dataclass(frozen=True)
class Spec:
    """A recipe for a problem, cheap to list; :meth:`make` builds the arrays."""

    kind: str  # "synthetic" or the name of a scikit-learn data set
    n: int = 0
    p: int = 0
    rate: float = 0.2
    mechanism: str = "MCAR"
    seed: int = 0

    @property
    def name(self):
        if self.kind == "synthetic":
            return f"normal n={self.n:,} p={self.p} {self.rate:.0%} {self.mechanism}"
        return f"{self.kind} {self.rate:.0%} {self.mechanism}"

    def make(self):
        if self.kind == "synthetic":
            return synthetic(self.n, self.p, self.rate, self.mechanism, self.seed)
        return real(self.kind, self.rate, self.seed)


# ---------------------------------------------------------------------------
# Complete data


def factor_correlation(p, rng, n_factors=None):
    """A random correlation matrix ``B B' + D``, rescaled to unit diagonal.

    ``n_factors`` (default ``max(2, p // 5)``) loadings per column are drawn
    from N(0, 1/n_factors) and the unique variances from U(0.3, 1); the
    correlations are moderate (most |r| in 0.1-0.6) and the matrix is well
    conditioned.
    """
    n_factors = n_factors or max(2, p // 5)
    loadings = rng.normal(scale=np.sqrt(1.0 / n_factors), size=(p, n_factors))
    covariance = loadings @ loadings.T + np.diag(rng.uniform(0.3, 1.0, size=p))
    sd = np.sqrt(np.diag(covariance))
    return covariance / np.outer(sd, sd)


def normal_data(n, p, rng, *, out=None, chunk_rows=65536):
    """n draws of N(mu, R) with R from :func:`factor_correlation`, float64.

    Written ``chunk_rows`` rows at a time into ``out`` (allocated if None), so
    memory never exceeds the output plus one chunk.  Means are drawn from
    N(0, 1) so that mean imputation is not trivially right.
    """
    correlation = factor_correlation(p, rng)
    factor = np.linalg.cholesky(correlation)
    mean = rng.normal(size=p)
    if out is None:
        out = np.empty((n, p))
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        z = rng.standard_normal((stop - start, p))
        np.matmul(z, factor.T, out=out[start:stop])
        out[start:stop] += mean
    return out, mean, correlation


# ---------------------------------------------------------------------------
# Masks


def mcar_mask(shape, rate, rng):
    """Each cell hidden independently with probability ``rate``."""
    return rng.random(shape) < rate


def mar_mask(X, rate, rng, *, n_drivers=None, slope=2.0):
    """MAR: holes in most columns, driven by fully observed columns.

    The first ``n_drivers`` columns (default ``max(1, p // 5)``) stay fully
    observed.  Each other column j is hidden with probability
    ``expit(a_j + s_j z)``, where z is driver ``j % n_drivers`` standardised,
    ``s_j = +-slope`` alternates in sign, and ``a_j`` is solved for so that the
    column's expected missing rate is ``rate * p / (p - n_drivers)``: the
    expected fraction of hidden cells in the whole matrix is ``rate``, as for
    :func:`mcar_mask`.  Missingness depends on observed values only (MAR, not
    MCAR): the observed part of column j is a biased sample of it, so
    column-mean imputation is biased.
    """
    n, p = X.shape
    n_drivers = n_drivers or max(1, p // 5)
    column_rate = rate * p / (p - n_drivers)
    if not 0.0 < column_rate < 1.0:
        raise ValueError(f"MAR rate {rate} is too high for {n_drivers} drivers")
    mask = np.zeros((n, p), dtype=bool)
    drivers = X[:, :n_drivers]
    z = (drivers - drivers.mean(axis=0)) / drivers.std(axis=0)
    for j in range(n_drivers, p):
        score = (1.0 if j % 2 else -1.0) * slope * z[:, j % n_drivers]
        offset = brentq(
            lambda a, s=score: expit(a + s).mean() - column_rate, -30.0, 30.0
        )
        mask[:, j] = rng.random(n) < expit(offset + score)
    return mask


def amputed(X, mask):
    """A copy of X with NaN where ``mask`` is True."""
    X_missing = X.copy()
    X_missing[mask] = np.nan
    return X_missing


# ---------------------------------------------------------------------------
# Problems


def synthetic(n, p, rate, mechanism="MCAR", seed=0):
    """Multivariate normal data (see :func:`normal_data`) with MCAR/MAR holes."""
    rng = np.random.default_rng(seed)
    X, _, _ = normal_data(n, p, rng)
    if mechanism == "MCAR":
        mask = mcar_mask(X.shape, rate, rng)
    elif mechanism == "MAR":
        mask = mar_mask(X, rate, rng)
    else:
        raise ValueError(f"unknown mechanism {mechanism!r}")
    name = f"normal n={n:,} p={p} {rate:.0%} {mechanism}"
    return Problem(name, X, amputed(X, mask), mask)


REAL_DATA = ("breast_cancer", "diabetes", "wine")


def real(dataset, rate=0.2, seed=0):
    """A scikit-learn data set (features only, unscaled) with MCAR holes.

    ``breast_cancer`` (569 x 30; skewed, some columns nearly collinear),
    ``diabetes`` (442 x 10) or ``wine`` (178 x 13), all shipped with
    scikit-learn.
    """
    from sklearn import datasets

    if dataset not in REAL_DATA:
        raise ValueError(f"unknown data set {dataset!r}; one of {REAL_DATA}")
    loader = getattr(datasets, f"load_{dataset}")
    # diabetes: the raw (unscaled) features; the others have no scaled variant.
    kwargs = {"scaled": False} if dataset == "diabetes" else {}
    X = np.asarray(loader(**kwargs).data, dtype=np.float64)
    rng = np.random.default_rng(seed)
    mask = mcar_mask(X.shape, rate, rng)
    return Problem(f"{dataset} {rate:.0%} MCAR", X, amputed(X, mask), mask)


def _problem_list():
    specs = []
    for n in (1_000, 10_000, 100_000):
        for p in (10, 30):
            for rate in (0.1, 0.2, 0.5):
                specs.append(Spec("synthetic", n, p, rate, "MCAR"))
            specs.append(Spec("synthetic", n, p, 0.2, "MAR"))
    specs.append(Spec("synthetic", 100_000, 30, 0.5, "MAR"))
    for dataset in ("breast_cancer", "diabetes"):
        for rate in (0.1, 0.2, 0.5):
            specs.append(Spec(dataset, rate=rate))
    return specs


#: The problems of ``compare_imputers.py``.
PROBLEMS = _problem_list()

#: The headline problem.
HEADLINE = Spec("synthetic", 100_000, 30, 0.2, "MCAR")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip n = 100,000")
    args = parser.parse_args()
    specs = [s for s in PROBLEMS if not (args.quick and s.n >= 100_000)]
    print("## Benchmark problems\n")
    print(machine_header() + "\n")
    print("| problem | n | p | hidden cells | rows with a hole | max abs corr |")
    print("|---|---:|---:|---:|---:|---:|")
    for spec in specs:
        problem = spec.make()
        corr = np.corrcoef(problem.X_complete, rowvar=False)
        off = np.abs(corr[~np.eye(len(corr), dtype=bool)]).max()
        rows = problem.mask.any(axis=1).mean()
        n, p = problem.shape
        print(
            f"| {problem.name} | {n:,} | {p} | {problem.missing_fraction:.1%} "
            f"| {rows:.1%} | {off:.2f} |"
        )
    print(
        "\nhidden cells: fraction of the matrix hidden (the cells scored); rows "
        "with a hole: fraction of rows with at least one hidden cell; max abs "
        "corr: largest absolute correlation between two columns of the "
        "complete data."
    )


if __name__ == "__main__":
    main()
