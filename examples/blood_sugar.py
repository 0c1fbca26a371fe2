"""Blood sugar: maximum likelihood by EM versus two common shortcuts.

Twenty people had their fasting (F) and post-meal (PP) blood sugar measured
(mg/dL); five are missing PP and four are missing F.  We estimate the means,
standard deviations and correlation three ways:

1. complete cases: drop every row with a missing value (11 of 20 rows left);
2. naive regression fill: fill each missing value with its regression
   prediction from the other variable, re-estimate from the filled data, and
   repeat until nothing changes;
3. EMImputer: maximum likelihood by EM, whose E-step also adds each filled
   value's conditional variance to the cross-products.

Run it with ``python examples/blood_sugar.py``.
"""

import numpy as np
import pandas as pd

from emimpute import EMImputer
from emimpute.datasets import load_blood_sugar


def summarise(mean, covariance):
    """Means, standard deviations and the correlation, as one table row."""
    sd = np.sqrt(np.diag(covariance))
    return {
        "mean F": mean[0],
        "mean PP": mean[1],
        "sd F": sd[0],
        "sd PP": sd[1],
        "corr": covariance[0, 1] / (sd[0] * sd[1]),
    }


def complete_case(X):
    rows = X[~np.isnan(X).any(axis=1)]
    return rows.mean(axis=0), np.cov(rows.T, bias=True)


def regression_fill(X, n_iter=200):
    """The shortcut: fill by regression predictions, re-estimate, repeat.

    Without the conditional variance this converges to a covariance that is
    too small where values were filled, and to a correlation that is too
    strong (each filled value lies exactly on the regression line).
    """
    missing = np.isnan(X)
    filled = np.where(missing, np.nanmean(X, axis=0), X)
    for _ in range(n_iter):
        mean = filled.mean(axis=0)
        cov = np.cov(filled.T, bias=True)
        for target, other in [(0, 1), (1, 0)]:
            slope = cov[target, other] / cov[other, other]
            prediction = mean[target] + slope * (filled[:, other] - mean[other])
            filled[missing[:, target], target] = prediction[missing[:, target]]
    return filled.mean(axis=0), np.cov(filled.T, bias=True)


def main():
    data = load_blood_sugar()
    X = data.to_numpy()
    imputer = EMImputer().fit(data)
    table = pd.DataFrame(
        {
            "complete cases (n=11)": summarise(*complete_case(X)),
            "regression fill": summarise(*regression_fill(X)),
            "EM maximum likelihood": summarise(imputer.mean_, imputer.covariance_),
        }
    ).T
    print("Blood sugar (mg/dL): 20 people, F missing for 4, PP missing for 5\n")
    print(table.round(2).to_string())
    print(
        f"\nEM converged in {imputer.n_iter_} iterations; "
        f"observed-data log-likelihood {imputer.loglik_:.4f}."
    )
    print(
        "\nComplete cases waste the 9 half-observed people.  The regression fill\n"
        "treats its predictions as data: they sit exactly on the regression\n"
        "line, so the spread of the filled column shrinks and the correlation\n"
        "is pulled away from 0.  EM adds each prediction's conditional variance\n"
        "back into the covariance and gives the maximum likelihood estimate."
    )
    mean, variance = imputer.conditional_moments(data)
    imputed = pd.DataFrame(imputer.set_output(transform="pandas").transform(data))
    missing = data.isna().any(axis=1)
    shown = imputed[missing].round(1)
    shown["sd of imputed value"] = np.sqrt(variance[missing.to_numpy()].sum(axis=1))
    print("\nImputed rows (conditional means given the observed value):\n")
    print(shown.round(1).to_string())


if __name__ == "__main__":
    main()
