"""EMImputer inside scikit-learn: a pipeline, cross-validation and a ridge.

Three habits of scikit-learn users, on scikit-learn's diabetes data with a
quarter of the cells of the ten predictors hidden at random:

1. impute inside a ``Pipeline``, so that cross-validation fits the imputer on
   each training fold only (no leakage from the test fold);
2. choose the imputer's ``ridge`` on its own with ``GridSearchCV``, which
   uses ``EMImputer.score`` (held-out observed-data log-likelihood per row);
3. look at how uncertain each imputed value is with ``conditional_moments``.

Run it with ``python examples/pipeline_and_model_selection.py``.
"""

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.impute import SimpleImputer
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from emimpute import EMImputer


def main():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(0)
    X_missing = X.mask(rng.random(X.shape) < 0.25)
    print(f"{X_missing.isna().mean().mean():.0%} of the predictors' cells hidden\n")

    print("1. R^2 of a regression on imputed predictors (5-fold cross-validation)")
    for name, imputer in [("mean", SimpleImputer()), ("EM", EMImputer())]:
        pipe = make_pipeline(imputer, RidgeCV())
        scores = cross_val_score(pipe, X_missing, y, cv=5)
        print(f"   {name:>4} imputation: R^2 = {scores.mean():.3f}")

    print("\n2. The imputer's ridge, chosen by held-out log-likelihood")
    search = GridSearchCV(EMImputer(), {"ridge": [0.0, 1.0, 4.0, 16.0]}, cv=5)
    search.fit(X_missing)
    for ridge, score in zip(
        search.cv_results_["param_ridge"],
        search.cv_results_["mean_test_score"],
        strict=True,
    ):
        print(f"   ridge = {ridge:>4}: mean log-likelihood per row {score:.3f}")
    print(f"   chosen: ridge = {search.best_params_['ridge']}")

    print("\n3. Imputed values with their conditional standard deviations")
    imputer = search.best_estimator_
    mean, variance = imputer.conditional_moments(X_missing.head(3))
    for i in range(3):
        cells = [
            f"{column}={mean[i, j]:.3f} (sd {np.sqrt(variance[i, j]):.3f})"
            for j, column in enumerate(X.columns)
            if np.isnan(X_missing.iloc[i, j])
        ]
        print(f"   row {i}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
