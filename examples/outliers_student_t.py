"""Outliers: the multivariate t against the normal model and scikit-learn.

Six correlated measurements on 2,000 rows; 5% of the rows are gross errors
(shifted by 8 standard deviations in two columns, as a unit mix-up or a
data-entry slip would), then 20% of all cells are hidden completely at
random.  We impute with four methods and score them on what matters for the
rows that are *not* errors:

- RMSE of the imputed cells of the clean rows (in standard deviations);
- the largest error of the estimated correlation matrix (from the fitted
  model, or from the completed data for the scikit-learn imputers);

then repeat on the same data without the errors, where the t must cost
nothing.  StudentTImputer's row weights also point at the errors.

Run it with ``python examples/outliers_student_t.py``.
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer

from emimpute import EMImputer, StudentTImputer

P, N = 6, 2000


def true_correlation():
    """An AR(1)-like correlation: neighbouring columns correlate 0.7."""
    lags = np.abs(np.subtract.outer(np.arange(P), np.arange(P)))
    return 0.7**lags


def simulate(seed, contaminate=True):
    """(incomplete data, complete data, rows that are gross errors)."""
    rng = np.random.default_rng(seed)
    complete = rng.multivariate_normal(np.zeros(P), true_correlation(), size=N)
    errors = rng.choice(N, size=N // 20, replace=False) if contaminate else []
    complete[np.ix_(errors, [0, 1])] += 8.0
    X = complete.copy()
    X[rng.random(X.shape) < 0.2] = np.nan
    return X, complete, np.asarray(errors, dtype=int)


def correlation_of(imputer, completed):
    covariance = getattr(imputer, "covariance_", None)
    if covariance is None:
        covariance = np.cov(completed, rowvar=False)
    sd = np.sqrt(np.diag(covariance))
    return covariance / np.outer(sd, sd)


def imputers():
    return {
        "StudentTImputer": StudentTImputer(),
        "EMImputer": EMImputer(),
        "IterativeImputer": IterativeImputer(max_iter=30, random_state=0),
        "KNNImputer": KNNImputer(),
    }


def score(seed, contaminate):
    """One row per method: RMSE on the clean rows, correlation error."""
    X, complete, errors = simulate(seed, contaminate)
    clean = np.setdiff1d(np.arange(N), errors)
    hidden = np.isnan(X[clean])
    rows = []
    for name, imputer in imputers().items():
        with warnings.catch_warnings():
            # IterativeImputer's own stopping rule is not met on the
            # contaminated data; its last round is used as it is.
            warnings.simplefilter("ignore", ConvergenceWarning)
            completed = imputer.fit_transform(X)
        error = completed[clean][hidden] - complete[clean][hidden]
        corr = correlation_of(imputer, completed)
        rows.append(
            {
                "method": name,
                "RMSE clean rows": np.sqrt(np.mean(error**2)),
                "max |correlation error|": np.max(np.abs(corr - true_correlation())),
            }
        )
    return pd.DataFrame(rows)


def compare(contaminate, seeds=range(3)):
    table = pd.concat([score(seed, contaminate) for seed in seeds])
    return table.groupby("method", sort=False).mean()


def main():
    contaminated = compare(contaminate=True)
    clean = compare(contaminate=False)
    with pd.option_context("display.precision", 3):
        print("5% gross errors, 20% of cells missing (mean of 3 data sets):")
        print(contaminated, end="\n\n")
        print("The same data without errors:")
        print(clean, end="\n\n")

    X, _, errors = simulate(0)
    t = StudentTImputer().fit(X)
    weights = t.row_weights(X)
    flagged = np.argsort(weights)[: len(errors)]
    print(
        f"Estimated df: {t.df_:.2f}. The {len(errors)} rows with the smallest "
        f"weights include {np.isin(flagged, errors).mean():.0%} of the errors "
        f"(mean weight {weights[errors].mean():.2f} against "
        f"{np.delete(weights, errors).mean():.2f} for the other rows)."
    )
    return contaminated, clean


if __name__ == "__main__":
    main()
