"""EMImputer with default arguments in an everyday scikit-learn pipeline.

A real data set with categorical and numeric columns, both with holes
(R's ``mice::boys``, 748 Dutch boys; see tests/reference/README.md):
one-hot encoding, EMImputer(), logistic regression, under
``cross_val_score``.  One-hot dummies sum to 1, so the normal MLE does not
exist; the one warning allowed is the documented RegularisationWarning,
every other warning is an error.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from emimpute import EMImputer
from emimpute.exceptions import RegularisationWarning

BOYS = Path(__file__).parent / "reference" / "boys.csv"
CATEGORICAL = ["gen", "phb", "reg"]
NUMERIC = ["hgt", "wgt", "bmi", "hc", "tv"]


def boys():
    data = pd.read_csv(BOYS)
    data[CATEGORICAL] = data[CATEGORICAL].astype(object)  # NaN for missing
    return data[CATEGORICAL + NUMERIC], (data["age"] >= 12).astype(int)


def pipeline():
    encode = ColumnTransformer(
        [
            ("categories", OneHotEncoder(sparse_output=False), CATEGORICAL),
            ("numbers", StandardScaler(), NUMERIC),
        ]
    )
    return make_pipeline(encode, EMImputer(), LogisticRegression())


def test_onehot_emimputer_logistic_regression_under_cross_validation():
    X, y = boys()
    before = X.copy()
    assert X[CATEGORICAL].isna().any().all() and X[NUMERIC].isna().any().all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("error")
        warnings.simplefilter("always", RegularisationWarning)
        scores = cross_val_score(
            pipeline(),
            X,
            y,
            cv=KFold(5, shuffle=True, random_state=0),
            error_score="raise",
        )
    assert {w.category for w in caught} <= {RegularisationWarning}
    assert np.all(np.isfinite(scores))
    # Height, weight and puberty stages tell a boy of 12 from a younger one
    # far better than the majority class (57%) does.
    assert scores.mean() > 0.9
    pd.testing.assert_frame_equal(X, before)


def encoded(X, drop):
    encode = ColumnTransformer(
        [
            ("categories", OneHotEncoder(sparse_output=False, drop=drop), CATEGORICAL),
            ("numbers", StandardScaler(), NUMERIC),
        ],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    return encode.fit_transform(X)


def test_full_dummies_impute_as_the_proper_fit_without_one_per_block():
    """Dummies that sum to 1 make the MLE not exist; dropping one per block
    spans the same space and the MLE exists.  The imputations of the
    regularised fit are the limit, so they equal the proper fit's."""
    X, _ = boys()
    full, reduced = encoded(X, None), encoded(X, "first")
    with pytest.warns(RegularisationWarning) as caught:
        regularised = EMImputer(tol=1e-8).fit(full)
    message = str(caught[0].message)
    named = message.split("collinear columns ")[1].split(")")[0]
    assert named.startswith("'gen_G1', 'gen_G2'") and "'tv'" not in named
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegularisationWarning)
        proper = EMImputer(tol=1e-8).fit(reduced)
    assert proper.ridge_ == 0.0 < regularised.ridge_
    # The regularised fit stops at a tolerance of 1e-7 (its prior's rounding
    # floor, emimpute.engine._regularise.NOISE), the proper one at 1e-8; with tv 70%
    # missing EM's rate is about 0.99, so each is within about 1e-7 / (1 -
    # 0.99) = 1e-5 of its limit on the standardised scale.
    np.testing.assert_allclose(
        regularised.transform(full)[:, -len(NUMERIC) :],
        proper.transform(reduced)[:, -len(NUMERIC) :],
        atol=2e-5,
    )
