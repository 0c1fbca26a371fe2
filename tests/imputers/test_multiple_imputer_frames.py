"""MultipleImputer on a DataFrame with categorical, boolean and integer
columns (the GaussianCopulaImputer's data): the wrapped imputer and the
analysis see the frame in its own dtypes, and every completed data set
comes back in them, with valid values only."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from emimpute import GaussianCopulaImputer, MultipleImputer


def survey(n=400, seed=0, rare=False):
    """Income (log-normal), a 1-5 rating (Int64), a smoker flag (boolean)
    and a region (categories), all related through one latent factor;
    15% of each column missing.  With ``rare``, one row's region is a
    category seen nowhere else."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=n)
    noise = rng.normal(size=(n, 4))
    region = np.array(["north", "south", "east"])[
        np.digitize(factor + noise[:, 3], [-0.5, 0.5])
    ]
    if rare:
        region[0] = "west"
    frame = pd.DataFrame(
        {
            "income": np.exp(0.7 * factor + noise[:, 0]),
            "rating": pd.array(
                np.digitize(factor + noise[:, 1], [-1.5, -0.5, 0.5, 1.5]) + 1,
                dtype="Int64",
            ),
            "smoker": pd.array(factor + noise[:, 2] > 1.0, dtype="boolean"),
            "region": pd.Categorical(region),
        }
    )
    for column in frame.columns:
        hide = rng.random(n) < 0.15
        hide[0] = False  # the rare category stays observed
        frame.loc[hide, column] = None
    return frame


def assert_valid_completion(completed, frame):
    assert list(completed.columns) == list(frame.columns)
    assert completed.dtypes.to_dict() == frame.dtypes.to_dict()
    assert not completed.isna().any().any()
    observed = frame.notna()
    for column in frame.columns:
        kept = observed[column].to_numpy()
        assert_array_equal(
            completed[column][kept].to_numpy(), frame[column][kept].to_numpy()
        )
    assert set(completed["region"]) <= set(frame["region"].dropna())
    assert set(completed["rating"]) <= set(frame["rating"].dropna())


def test_every_completed_data_set_keeps_the_dtypes_and_valid_values():
    frame = survey()
    before = frame.copy()
    imputer = MultipleImputer(
        GaussianCopulaImputer(), n_imputations=4, random_state=0
    ).fit(frame)
    completed = imputer.multiple_transform(frame)
    pd.testing.assert_frame_equal(frame, before)  # the caller's data untouched
    assert len(completed) == 4
    for each in completed:
        assert_valid_completion(each, frame)
    # Proper imputations differ from one another (draws, and a bootstrap fit
    # of the model each): a missing region is not the same category in all.
    missing = frame["region"].isna().to_numpy()
    drawn = np.array([each["region"].to_numpy()[missing] for each in completed])
    assert np.mean((drawn != drawn[0]).any(axis=0)) > 0.1
    # transform: one frame; the typed columns' cells are the most frequent
    # of the four draws, a float column's their mean.
    combined = imputer.transform(frame)
    assert_valid_completion(combined, frame)
    incomes = np.array([each["income"].to_numpy() for each in completed])
    np.testing.assert_allclose(combined["income"], incomes.mean(axis=0))
    ratings = np.array([each["rating"].to_numpy(int) for each in completed])
    row = np.flatnonzero(frame["rating"].isna().to_numpy())[0]
    values, counts = np.unique(ratings[:, row], return_counts=True)
    assert combined["rating"][row] == values[np.argmax(counts)]


def test_a_category_seen_once_is_in_every_bootstrap_fit():
    # A resample without the one 'west' row would fit a model that refuses
    # it (a category not seen in fit): resamples are drawn again until each
    # holds every observed category.
    frame = survey(rare=True)
    imputer = MultipleImputer(
        GaussianCopulaImputer(), n_imputations=8, random_state=1
    ).fit(frame)
    for each in imputer.multiple_transform(frame):
        assert each["region"][0] == "west"
        assert_valid_completion(each, frame)


def test_the_analysis_gets_the_frame_in_its_dtypes():
    frame = survey()
    rng = np.random.default_rng(3)
    y = 2.0 * np.log(frame["income"].fillna(1.0)) + rng.normal(size=len(frame))
    seen = []

    def inference(X, y):
        seen.append(X.dtypes.to_dict())
        model = analysis.fit(X, y)[-1]
        return model.coef_, np.full(len(model.coef_), 0.01)

    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["region"]),
        remainder="passthrough",
    )
    analysis = make_pipeline(encode, LinearRegression())
    imputer = MultipleImputer(
        GaussianCopulaImputer(), n_imputations=3, estimator=analysis,
        inference=inference, random_state=0,
    ).fit(frame, y)  # fmt: skip
    assert seen == [frame.dtypes.to_dict()] * 3
    assert imputer.predict(frame).shape == (len(frame),)
    assert imputer.pooled_ is not None


@pytest.mark.parametrize("as_array", [False, True])
def test_a_float_frame_or_array_is_handled_as_before(as_array):
    frame = survey()[["income"]].assign(other=lambda f: np.log(f["income"]) * 2)
    X = frame.to_numpy() if as_array else frame
    imputer = MultipleImputer(n_imputations=2, random_state=0).fit(X)
    out = imputer.multiple_transform(X)
    assert all(isinstance(each, np.ndarray) for each in out)
    assert isinstance(imputer.transform(X), np.ndarray)


def test_an_imputer_that_does_not_keep_dtypes_gets_numbers_as_before():
    # EMImputer draws real numbers for a rating or a flag: giving them back
    # as Int64 or boolean would truncate them, so its data sets are arrays.
    frame = survey().drop(columns="region")
    imputer = MultipleImputer(n_imputations=2, random_state=0).fit(frame)
    completed = imputer.multiple_transform(frame)
    assert all(isinstance(each, np.ndarray) for each in completed)
    rating = completed[0][frame["rating"].isna().to_numpy(), 1]
    assert np.any(rating != np.round(rating))
    # ... and a category is refused, not taken as its code.
    with pytest.raises(ValueError, match="convert|cast"):
        MultipleImputer(n_imputations=2).fit(survey())
