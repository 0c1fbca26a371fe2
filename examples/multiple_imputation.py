"""Linear regression on incomplete data: complete cases, one imputation, and
multiple imputation with pooled standard errors.

Simulated study of 400 people: an outcome y depends on an exposure x0 and a
covariate x1 (true slopes 1.0 and 0.5).  x0 and y are each missing for about
a third of people, more often when x1 is high (missing at random given x1).

- Complete-case analysis drops more than half of the rows.  It is unbiased
  here (the missingness depends on a covariate of the model), but it throws
  away what the incomplete rows know, so its intervals are wide.
- A single EM imputation, analysed as if it were complete data, gives
  intervals that are too narrow: it treats guesses as observations.
- Multiple imputation (20 bootstrap-EM imputations from X and y together,
  OLS on each, Rubin's rules) gives honest intervals; the fraction of
  missing information (fmi) says how much of the information about each
  coefficient the missing values took away.

Run it with ``python examples/multiple_imputation.py``.
"""

import numpy as np
import pandas as pd
from scipy import special, stats
from sklearn.linear_model import LinearRegression

from emimpute import EMImputer, MultipleImputer


def simulate(n=400, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=n)
    y = 1.0 + 1.0 * X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=n)
    chance = special.expit(-0.85 + X[:, 1])
    X_missing = X.copy()
    X_missing[rng.random(n) < chance, 0] = np.nan
    y_missing = y.copy()
    y_missing[rng.random(n) < chance] = np.nan
    return pd.DataFrame(X_missing, columns=["x0", "x1"]), pd.Series(y_missing, name="y")


def ols_table(X, y):
    """OLS estimates, standard errors and 95% intervals of one data set."""
    design = np.column_stack([np.ones(len(X)), X])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    df = len(X) - design.shape[1]
    se = np.sqrt(np.diag(residual @ residual / df * np.linalg.inv(design.T @ design)))
    half = stats.t.ppf(0.975, df) * se
    return pd.DataFrame(
        {
            "estimate": coef,
            "std_error": se,
            "ci_low": coef - half,
            "ci_high": coef + half,
        },
        index=["intercept", "x0", "x1"],
    )


def main():
    X, y = simulate()
    print(
        f"{X['x0'].isna().mean():.0%} of x0 and {y.isna().mean():.0%} of y missing; "
        f"true slopes: x0 1.0, x1 0.5\n"
    )
    complete = X.notna().all(axis=1) & y.notna()
    print(f"1. Complete cases ({complete.sum()} of {len(X)} rows)\n")
    print(ols_table(X[complete].to_numpy(), y[complete].to_numpy()).round(3), "\n")

    single = EMImputer(sample_posterior=True, random_state=0).fit_transform(
        np.column_stack([X, y])
    )
    print("2. One EM imputation (a draw), analysed as if complete\n")
    print(ols_table(single[:, :2], single[:, 2]).round(3), "\n")

    mi = MultipleImputer(
        n_imputations=20, estimator=LinearRegression(), random_state=0
    ).fit(X, y)
    print("3. Multiple imputation, 20 imputations, Rubin's rules\n")
    table = mi.summary()
    print(table[["estimate", "std_error", "df", "ci_low", "ci_high", "fmi"]].round(3))
    fmi = table.loc["x0", "fmi"]
    print(
        f"\n   fmi of x0 = {fmi:.2f}: the missing values cost about {fmi:.0%} of the\n"
        "   information about its slope. The single imputation's standard errors\n"
        "   ignore that loss, so its intervals are too narrow; the pooled ones add\n"
        "   the between-imputation variance and use Barnard-Rubin degrees of\n"
        "   freedom."
    )
    return table


if __name__ == "__main__":
    main()
