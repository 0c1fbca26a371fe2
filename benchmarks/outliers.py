"""Imputation and correlation under gross outliers: multivariate t against
the normal model, IterativeImputer and KNNImputer.

Data: n=2000 draws of N(mu, R), p=6, R from a random factor model
(``problems.factor_correlation``); in the contaminated setting 5% of the rows
are shifted up by 8 SD in two columns chosen at random per row; then 20% of
all cells are hidden MCAR.  Scores, averaged over seeds:

* RMSE of the imputations at the hidden cells of the clean rows, in SDs of
  each column (the outlying rows' own cells are not scored: their "truth"
  is the outlier);
* the largest absolute error of the estimated correlation matrix against R
  (the model's estimate for the t and the normal; the correlation of the
  completed data for the two scikit-learn imputers).

Methods: the multivariate t with the df estimated (``fit_student_t_em`` and
``conditional_t``), the normal model (``fit_normal_em`` and
``conditional_moments``, the kernel of ``EMImputer``), scikit-learn's
``IterativeImputer`` and ``KNNImputer`` at their defaults.

Usage::

    python benchmarks/outliers.py            # 10 seeds, about 30 s
    python benchmarks/outliers.py --quick    # 2 seeds
"""

import argparse
import warnings

import numpy as np
from _report import machine_header, markdown_table, timed
from problems import factor_correlation
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer

from emimpute.gaussian._conditional import conditional_moments
from emimpute.models._normal import fit_normal_em
from emimpute.models._student_t import conditional_t, fit_student_t_em

N, P, OUTLIER_ROWS, SHIFT_SD, SHIFTED_COLUMNS, RATE = 2000, 6, 0.05, 8.0, 2, 0.2


def make_data(seed, contaminated):
    """(complete data, amputed data, mask of hidden cells, clean rows, R)."""
    rng = np.random.default_rng(seed)
    R = factor_correlation(P, rng)
    X = rng.normal(size=P) + rng.standard_normal((N, P)) @ np.linalg.cholesky(R).T
    clean = np.ones(N, dtype=bool)
    if contaminated:
        bad = rng.choice(N, size=int(OUTLIER_ROWS * N), replace=False)
        clean[bad] = False
        for row in bad:
            columns = rng.choice(P, size=SHIFTED_COLUMNS, replace=False)
            X[row, columns] += SHIFT_SD
    mask = rng.random(X.shape) < RATE
    mask[mask.all(axis=1), 0] = False
    X_missing = np.where(mask, np.nan, X)
    return X, X_missing, mask, clean, R


def correlation(covariance):
    sd = np.sqrt(np.diag(covariance))
    return covariance / np.outer(sd, sd)


def run_t(X):
    fit = fit_student_t_em(X)
    return (
        conditional_t(X, fit.mean, fit.scale, fit.df).completed,
        correlation(fit.scale),
        fit.df,
    )


def run_normal(X):
    fit = fit_normal_em(X)
    completed = conditional_moments(X, fit.mean, fit.covariance).completed
    return completed, correlation(fit.covariance), None


def run_sklearn(imputer):
    def run(X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # IterativeImputer's convergence
            completed = imputer.fit_transform(X)
        return completed, np.corrcoef(completed.T), None

    return run


METHODS = {
    "t (df estimated)": run_t,
    "normal EM": run_normal,
    "IterativeImputer": run_sklearn(IterativeImputer(random_state=0)),
    "KNNImputer": run_sklearn(KNNImputer()),
}


def scores(seeds, contaminated):
    """Per method: RMSE on the clean rows' hidden cells, max |corr error|,
    seconds, and the df estimates of the t, over seeds."""
    out = {name: {"rmse": [], "corr": [], "time": [], "df": []} for name in METHODS}
    for seed in seeds:
        X, X_missing, mask, clean, R = make_data(seed, contaminated)
        sd = X[clean].std(axis=0)
        scored = mask & clean[:, None]
        for name, method in METHODS.items():
            seconds, (completed, corr, df) = timed(method, X_missing)
            error = ((completed - X) / sd)[scored]
            out[name]["rmse"].append(np.sqrt(np.mean(error**2)))
            out[name]["corr"].append(np.max(np.abs(corr - R)))
            out[name]["time"].append(seconds)
            if df is not None:
                out[name]["df"].append(df)
    return out


def table(results):
    normal_rmse = np.mean(results["normal EM"]["rmse"])
    rows = []
    for name, r in results.items():
        rmse, corr = np.array(r["rmse"]), np.array(r["corr"])
        df = f"; df {np.median(r['df']):.3g}" if r["df"] else ""
        rows.append(
            [
                name + df,
                f"{rmse.mean():.4f} ± {rmse.std():.4f}",
                f"{rmse.mean() / normal_rmse:.3f}",
                f"{corr.mean():.4f} ± {corr.std():.4f}",
                f"{np.median(r['time']) * 1e3:.0f}",
            ]
        )
    headers = [
        "method",
        "RMSE, clean rows' hidden cells (SD)",
        "/ normal EM",
        "max |corr error|",
        "time (ms)",
    ]
    return markdown_table(headers, rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds")
    args = parser.parse_args()
    seeds = range(2 if args.quick else 10)
    print("## Outliers: multivariate t against the normal model and scikit-learn\n")
    print(machine_header() + "\n")
    for contaminated in (True, False):
        title = (
            f"{OUTLIER_ROWS:.0%} of rows shifted by {SHIFT_SD:g} SD in "
            f"{SHIFTED_COLUMNS} columns"
            if contaminated
            else "clean normal data"
        )
        print(f"### n={N}, p={P}, {RATE:.0%} MCAR, {title}\n")
        print(table(scores(seeds, contaminated)) + "\n")
    print(
        f"Means ± SD over {len(seeds)} seeds (the df: median). RMSE in SDs of "
        "each column of the clean complete rows, at the hidden cells of the "
        "clean rows; correlation error: largest absolute difference from the "
        "true correlation matrix (model estimate for the t and normal EM, "
        "correlation of the completed data for the scikit-learn imputers). "
        "Defaults everywhere (tol=1e-6; IterativeImputer random_state=0)."
    )


if __name__ == "__main__":
    main()
