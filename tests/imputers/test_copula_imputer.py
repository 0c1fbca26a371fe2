"""GaussianCopulaImputer: agreement with the normal model where the copula is
normal, recovery of a known latent correlation with mixed margins, valid
imputed values, pandas dtypes, bad input.

The SAEM kernel itself is checked against the exact maximum likelihood
estimate in tests/models/test_copula.py.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from emimpute import EMImputer, GaussianCopulaImputer
from emimpute.exceptions import RegularisationWarning
from emimpute.models._copula import correlation_of

# Normal data, every column continuous: the copula's latent correlation is
# the normal scores' correlation, which under normality is asymptotically
# the normal maximum likelihood estimate (the two differ by o(1/sqrt(n));
# about 0.005 at n = 3,000 here).  SAEM adds Monte Carlo error: the stopping
# rule's 0.005 on the averaged statistic, at most about twice that on R
# where a fifth of the cells are missing.  0.025 is that sum with a margin
# of more than two Monte Carlo standard deviations; an attenuated E-step
# (gcimpute's is 0.05-0.1 off on such data) fails it.
NORMAL_TOL = 0.025


def normal_data(seed, n=3000):
    rng = np.random.default_rng(seed)
    R = np.array(
        [[1, 0.6, 0.3, 0.5], [0.6, 1, 0.4, 0.2], [0.3, 0.4, 1, 0.1], [0.5, 0.2, 0.1, 1]]
    )
    X = rng.multivariate_normal(np.zeros(4), R, size=n) * [1, 2, 3, 4] + [0, 1, 2, 3]
    X[rng.random(X.shape) < 0.2] = np.nan
    return X


@pytest.mark.parametrize("seed", [0, 1])
def test_normal_continuous_data_give_the_normal_model(seed):
    X = normal_data(seed)
    copula = GaussianCopulaImputer(random_state=seed).fit(X)
    em = EMImputer().fit(X)
    assert list(copula.kinds_) == ["continuous"] * 4
    R_em = correlation_of(em.covariance_)
    np.testing.assert_allclose(copula.correlation_, R_em, atol=NORMAL_TOL)
    # The imputations, on the standardised scale: the copula maps its latent
    # conditional mean back through the estimated margin (piecewise linear
    # between observed values) where the normal model is linear; they
    # differ by a few hundredths of a standard deviation on average.
    missing = np.isnan(X)
    sd = np.sqrt(np.diag(em.covariance_))
    gap = ((copula.transform(X) - em.transform(X)) / sd)[missing]
    assert np.sqrt(np.mean(gap**2)) < 0.06


def mixed_data(n, seed, mar, R=None):
    """Six columns from a latent correlation R (default: random):
    log-normal, cubed normal, two ordinal (5 levels), two binary; holes
    MCAR (20%) or MAR (depending on the always observed first column)."""
    rng = np.random.default_rng(seed)
    if R is None:
        A = rng.normal(size=(6, 6))
        R = correlation_of(A @ A.T + 2 * np.eye(6))
    z = rng.multivariate_normal(np.zeros(6), R, size=n)
    X = np.column_stack(
        [
            np.exp(z[:, 0]),
            z[:, 1] ** 3,
            np.digitize(z[:, 2], [-1.2, -0.4, 0.3, 1.0]),
            np.digitize(z[:, 3], [-0.5, 0.0, 0.5, 1.5]),
            z[:, 4] > 0.5,
            z[:, 5] > -0.2,
        ]
    ).astype(float)
    if mar:
        hide = rng.random((n, 6)) < 1 / (1 + np.exp(1.5 - 1.2 * z[:, [0]]))
        hide[:, 0] = False
    else:
        hide = rng.random((n, 6)) < 0.2
    X[hide] = np.nan
    return X, R


@pytest.mark.parametrize("mar", [False, True], ids=["MCAR", "MAR"])
def test_latent_correlation_is_recovered_at_the_rate_one_over_sqrt_n(mar):
    # Largest error over the 15 correlations times sqrt(n): about 3-5 at
    # every n in simulation (ordinal and binary pairs have standard errors
    # up to about 2 / sqrt(n)); it must stay bounded as n grows 16-fold,
    # so the error itself falls about 4-fold.
    scaled = {}
    for n in (1000, 16000):
        errors = []
        for seed in (0, 1):
            X, R = mixed_data(n, seed, mar)
            fit = GaussianCopulaImputer(random_state=0).fit(X)
            errors.append(np.abs(fit.correlation_ - R).max())
        scaled[n] = np.sqrt(n) * np.mean(errors)
    assert scaled[1000] < 7 and scaled[16000] < 7, scaled
    assert list(GaussianCopulaImputer().fit(X).kinds_) == (
        ["continuous"] * 2 + ["ordinal"] * 4
    )


def test_binary_and_ordinal_imputations_beat_a_median_fill():
    X, _ = mixed_data(3000, 5, mar=False, R=0.5 * np.eye(6) + 0.5)
    rng = np.random.default_rng(5)
    truth = X[~np.isnan(X).any(axis=1)]
    hide = rng.random(truth.shape) < 0.2
    X = np.where(hide, np.nan, truth)
    imputed = GaussianCopulaImputer(random_state=0).fit_transform(X)
    median = np.nanmedian(X, axis=0)
    ratios = []
    for j in (2, 3, 4, 5):
        rows = hide[:, j]
        copula_error = np.mean(np.abs(imputed[rows, j] - truth[rows, j]))
        median_error = np.mean(np.abs(median[j] - truth[rows, j]))
        ratios.append(copula_error / median_error)
    # Every column better, and by a tenth on average (latent correlations of
    # 0.5: the other five columns explain about half of each one's latent
    # variance).
    assert max(ratios) < 1 and np.mean(ratios) < 0.9, ratios


# ---------------------------------------------------------------------------
# Every imputed value is a valid value of its column


@st.composite
def mixed_frames(draw):
    n = draw(st.integers(12, 40))
    p = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(p), 0.5 * np.eye(p) + 0.5, size=n)
    columns = []
    for j in range(p):
        kind = draw(st.sampled_from(["skewed", "count", "binary", "whole"]))
        if kind == "skewed":
            columns.append(np.exp(2 * z[:, j]) * 1000)
        elif kind == "count":
            columns.append(np.floor(np.exp(z[:, j])).astype(float))
        elif kind == "binary":
            columns.append((z[:, j] > 0).astype(float))
        else:  # many whole numbers: continuous, imputed as whole numbers
            columns.append(np.round(50 * z[:, j]))
    X = np.column_stack(columns)
    X[rng.random(X.shape) < draw(st.floats(0.05, 0.5))] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 1.0
    return X, seed


@given(mixed_frames(), st.booleans())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_imputed_cells_are_valid_values_of_their_columns(data, draws):
    X, seed = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty columns, ridge, convergence
        imputer = GaussianCopulaImputer(
            max_iter=60, sample_posterior=draws, random_state=seed
        )
        out = imputer.fit_transform(X)
    kept = ~imputer._empty_features
    for j_out, j in enumerate(np.flatnonzero(kept)):
        observed = X[~np.isnan(X[:, j]), j]
        cells = out[np.isnan(X[:, j]), j_out]
        assert np.all(np.isfinite(cells))
        if imputer.kinds_[j] in ("ordinal", "constant"):
            assert np.isin(cells, observed).all()  # a level seen in fit
        else:
            assert np.all((cells >= observed.min()) & (cells <= observed.max()))
        if np.all(observed == np.round(observed)):
            assert np.all(cells == np.round(cells))  # whole numbers stay whole


# ---------------------------------------------------------------------------
# pandas in, pandas out


def survey_frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(5), 0.6 * np.eye(5) + 0.4, size=n)
    frame = pd.DataFrame(
        {
            "income": np.exp(z[:, 0]) * 30_000,
            "stars": pd.array(np.digitize(z[:, 1], [-1, -0.3, 0.3, 1]) + 1, "Int64"),
            "member": pd.array(z[:, 2] > 0, dtype="boolean"),
            "grade": pd.Categorical.from_codes(
                np.digitize(z[:, 3], [-0.5, 0.5]), ["low", "mid", "high"], ordered=True
            ),
            "visits": np.floor(np.exp(z[:, 4] + 1)).astype(np.int64),
        }
    )
    masked = frame.mask(rng.random(frame.shape) < 0.15)
    masked["visits"] = frame["visits"]  # numpy int64 has no missing cells
    return masked


def test_a_frame_comes_back_in_its_own_dtypes_with_valid_values():
    frame = survey_frame()
    original = frame.copy()
    imputer = GaussianCopulaImputer(random_state=0).fit(frame)
    # visits: whole numbers, but more than 20 of them: continuous.
    assert list(imputer.kinds_) == [
        "continuous", "ordinal", "ordinal", "ordinal", "continuous",
    ]  # fmt: skip
    for draws in (False, True):
        out = imputer.set_params(sample_posterior=draws).transform(frame)
        pd.testing.assert_series_equal(out.dtypes, frame.dtypes)
        assert not out.isna().any().any()
        assert set(out["stars"]) <= set(frame["stars"].dropna())
        assert set(out["grade"]) <= {"low", "mid", "high"}
        observed = frame.notna().to_numpy()
        for name in frame:
            kept = frame[name][observed[:, frame.columns.get_loc(name)]]
            pd.testing.assert_series_equal(out[name][kept.index], kept)
    pd.testing.assert_frame_equal(frame, original)  # the caller's frame


def test_set_output_pandas_keeps_the_dtypes_and_arrays_stay_arrays():
    frame = survey_frame()
    out = GaussianCopulaImputer(random_state=0).set_output(transform="pandas")
    out = out.fit_transform(frame)
    pd.testing.assert_series_equal(out.dtypes, frame.dtypes)
    numbers = (
        frame.drop(columns="grade")
        .astype("Float64")
        .to_numpy(np.float64, na_value=np.nan)
    )
    imputed = GaussianCopulaImputer(random_state=0).fit_transform(numbers)
    assert isinstance(imputed, np.ndarray) and imputed.dtype == np.float64


def test_in_a_pipeline_before_one_hot_encoding_under_cross_validation():
    frame = survey_frame(600)
    y = (frame["income"].fillna(30_000) > 30_000).to_numpy()
    features = frame.drop(columns="income")
    model = make_pipeline(
        GaussianCopulaImputer(random_state=0),
        ColumnTransformer(
            [("levels", OneHotEncoder(handle_unknown="ignore"), ["grade"])],
            remainder="passthrough",
        ),
        LogisticRegression(max_iter=1000),
    )
    scores = cross_val_score(model, features, y, cv=3)
    assert scores.mean() > 0.6  # the features predict income (rho 0.4 each)


def test_unordered_categories_are_nominal_and_imputed_as_categories():
    frame = survey_frame()
    frame["grade"] = frame["grade"].cat.as_unordered()
    imputer = GaussianCopulaImputer(random_state=0).fit(frame)
    assert imputer.kinds_[3] == "nominal"
    assert list(imputer.latent_feature_names_[3:6]) == ["grade=0", "grade=1", "grade=2"]
    assert imputer.correlation_.shape == (7, 7)
    np.testing.assert_array_equal(imputer.correlation_[3:6, 3:6], np.eye(3))
    out = imputer.transform(frame)
    assert out["grade"].dtype == frame["grade"].dtype
    assert out["grade"].notna().all()


def with_unseen_grade(frame):
    """A copy of ``frame`` whose first grade is a category fit never saw."""
    other = frame.copy()
    other["grade"] = other["grade"].cat.add_categories("top")
    other.loc[0, "grade"] = "top"
    return other


def test_a_category_unseen_in_fit_is_refused_naming_the_column():
    frame = survey_frame()
    imputer = GaussianCopulaImputer(random_state=0).fit(frame)
    other = with_unseen_grade(frame)
    with pytest.raises(ValueError, match="not seen in fit in column 'grade'"):
        imputer.transform(other)


# ---------------------------------------------------------------------------
# Kinds, degenerate columns


def test_kinds_given_by_name_position_or_list():
    X = normal_data(0, n=300)
    X[:, 2] = np.round(X[:, 2])  # whole numbers: ordinal when inferred
    inferred = GaussianCopulaImputer(random_state=0).fit(X).kinds_
    assert inferred[2] == "ordinal"
    given = GaussianCopulaImputer(kinds={2: "continuous"}, random_state=0).fit(X)
    assert list(given.kinds_) == ["continuous"] * 4
    listed = GaussianCopulaImputer(kinds=["ordinal"] + ["continuous"] * 3).fit(X)
    assert listed.kinds_[0] == "ordinal"
    frame = pd.DataFrame(X, columns=list("abcd"))
    named = GaussianCopulaImputer(kinds={"c": "continuous"}).fit(frame)
    assert named.kinds_[2] == "continuous"


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        ({"c": "circular"}, "column 'c' has kind 'circular'"),
        ({"z": "ordinal"}, "'z'"),
        (["ordinal"], "kinds has 1 entries but X has 4 columns"),
        ({"a": "nominal"}, "column 'a': 1.. categories, where a nominal column"),
    ],
)
def test_bad_kinds_are_refused_naming_the_column(kinds, message):
    frame = pd.DataFrame(normal_data(0, n=200), columns=list("abcd"))
    with pytest.raises(ValueError, match=message):
        GaussianCopulaImputer(kinds=kinds).fit(frame)


def test_a_constant_column_is_imputed_by_its_value_without_a_model():
    X = normal_data(1, n=300)
    X[:, 1] = np.where(np.isnan(X[:, 1]), np.nan, 7.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imputer = GaussianCopulaImputer(random_state=0).fit(X)
    assert imputer.kinds_[1] == "constant"
    assert np.isnan(imputer.correlation_[1]).all()
    assert_array_equal(imputer.transform(X)[:, 1], 7.0)


def test_duplicated_columns_get_the_smallest_ridge_and_a_warning_naming_them():
    X = normal_data(2, n=500)
    X = np.column_stack([X, 2 * X[:, 0]])  # exactly collinear in the latent scale
    with pytest.warns(RegularisationWarning, match="collinear columns 'x0', 'x4'"):
        imputer = GaussianCopulaImputer(random_state=0).fit(X)
    assert imputer.ridge_ > 0
    out = imputer.transform(X)
    both = ~np.isnan(X[:, 0])
    np.testing.assert_allclose(out[both, 4], 2 * X[both, 0])


# ---------------------------------------------------------------------------
# Values censored at a detection limit


def censored_lognormal(seed, n=4000, limit=1.0):
    """Three log-normal columns (latent correlation 0.6); the first censored
    at ``limit`` (its median: half the values reported as the limit), 10%
    of all cells missing.  Returns the data and the first column's truth."""
    rng = np.random.default_rng(seed)
    X = np.exp(rng.multivariate_normal(np.zeros(3), 0.4 * np.eye(3) + 0.6, size=n))
    truth = X[:, 0].copy()
    X[X[:, 0] <= limit, 0] = limit
    X[rng.random(X.shape) < 0.1] = np.nan
    return X, truth


@pytest.mark.parametrize("seed", [0, 1])
def test_censored_values_give_an_unbiased_mean_and_sd(seed, tmp_path):
    X, truth = censored_lognormal(seed)
    kept = ~np.isnan(X[:, 0])
    censored = kept & (X[:, 0] <= 1.0)
    imputer = GaussianCopulaImputer(
        detection_limits={0: 1.0}, sample_posterior=True, random_state=seed
    ).fit(X)
    completed = imputer.transform(X)[:, 0]
    assert np.all(completed[censored] < 1.0) and np.all(completed[censored] > 0)
    assert_array_equal(completed[kept & ~censored], X[kept & ~censored, 0])

    def bias(values):
        """Mean and SD of the logs, minus those of the true values (the
        sample's own, so what remains is the imputation's error)."""
        logs, true_logs = np.log(values[kept]), np.log(truth[kept])
        return logs.mean() - true_logs.mean(), logs.std() - true_logs.std()

    # The draws: within a few hundredths (2 seeds x 3 in a study: at most
    # 0.021 for the mean of the logs, 0.023 for their SD; the original
    # scale's mean within 0.01).
    mean_bias, sd_bias = bias(completed)
    assert abs(mean_bias) < 0.045 and abs(sd_bias) < 0.05, (mean_bias, sd_bias)
    assert abs(completed[kept].mean() - truth[kept].mean()) < 0.03
    # Half the limit: the SD of the logs shrinks by 0.14 (a point mass for
    # half the values) ...
    half = np.where(censored, 0.5, X[:, 0])
    assert bias(half)[1] < -0.1
    # ... and treating them as missing imputes them from the detected
    # values, all above the limit: the mean of the logs 0.75 too high.
    as_missing = X.copy()
    as_missing[censored, 0] = np.nan
    drawn = GaussianCopulaImputer(sample_posterior=True, random_state=seed)
    assert bias(drawn.fit_transform(as_missing)[:, 0])[0] > 0.3
    # The limit travels in the model file.
    from emimpute._model_io import load_model, save_model

    save_model(imputer, tmp_path / "censored.json")
    loaded = load_model(tmp_path / "censored.json")
    assert_array_equal(loaded.transform(X), imputer.transform(X))


TOP_CODE = np.exp(0.84)  # the 80th percentile of a standard log-normal


def top_coded_lognormal(seed, n=4000, lower=None, upper=TOP_CODE):
    """As :func:`censored_lognormal`, the first column top-coded at
    ``upper`` (default its 80th percentile: a top-coded income) and, with
    ``lower``, censored below it too."""
    rng = np.random.default_rng(seed)
    X = np.exp(rng.multivariate_normal(np.zeros(3), 0.4 * np.eye(3) + 0.6, size=n))
    truth = X[:, 0].copy()
    X[:, 0] = np.clip(X[:, 0], lower, upper)
    X[rng.random(X.shape) < 0.1] = np.nan
    return X, truth


@pytest.mark.parametrize(
    "lower", [None, np.exp(-0.84)], ids=["upper limit", "both limits"]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_values_above_an_upper_limit_give_an_unbiased_mean_and_sd(seed, lower):
    upper = TOP_CODE
    X, truth = top_coded_lognormal(seed, lower=lower)
    kept = ~np.isnan(X[:, 0])
    above = kept & (X[:, 0] >= upper)
    below = kept & (X[:, 0] <= (lower or 0.0))
    limits = {0: (lower, upper)}
    drawn = GaussianCopulaImputer(
        detection_limits=limits, sample_posterior=True, random_state=seed
    )
    completed = drawn.fit_transform(X)[:, 0]
    assert np.all(completed[above] > upper)
    assert np.all(completed[below] < (lower or 0.0))
    detected = kept & ~above & ~below
    assert_array_equal(completed[detected], X[detected, 0])
    logs, true_logs = np.log(completed[kept]), np.log(truth[kept])
    # 4 seeds in a study: at most 0.016 off for the mean of the logs and
    # 0.026 for their SD (0.043 and 0.056 when half the values are
    # top-coded, the upper tail then an assumption over half the column);
    # the tolerances of the lower limit's test.
    assert abs(logs.mean() - true_logs.mean()) < 0.045
    assert abs(logs.std() - true_logs.std()) < 0.05
    # Keeping the top code shrinks the SD of the logs (by 0.17-0.18) and
    # treating the values as missing lowers their mean (by 0.27-0.29).
    assert np.log(X[kept, 0]).std() - true_logs.std() < -0.1
    as_missing = X.copy()
    as_missing[above | below, 0] = np.nan
    missing_fill = GaussianCopulaImputer(sample_posterior=True, random_state=seed)
    filled = np.log(missing_fill.fit_transform(as_missing)[kept, 0])
    if lower is None:
        assert filled.mean() - true_logs.mean() < -0.15
    # The single imputation (posterior means; at a censored cell the value
    # at its latent posterior mean) stays beyond the limit too.
    single = GaussianCopulaImputer(detection_limits=limits, random_state=seed)
    imputed = single.fit_transform(X)[:, 0]
    assert np.all(imputed[above] >= upper) and np.all(imputed[below] <= (lower or 0))


def test_detection_limits_on_the_command_line_and_in_model_files(tmp_path):
    from emimpute._model_io import load_model, save_model
    from emimpute.imputers._copula_imputer import _limits

    assert _limits("1.5") == 1.5
    assert _limits(":2") == (None, 2.0)
    assert _limits("0.5:2") == (0.5, 2.0)
    X, _ = top_coded_lognormal(0, n=500, lower=np.exp(-0.84))
    imputer = GaussianCopulaImputer(
        detection_limits={0: (np.exp(-0.84), TOP_CODE)}, random_state=0
    ).fit(X)
    save_model(imputer, tmp_path / "limits.json")
    loaded = load_model(tmp_path / "limits.json")
    assert_array_equal(loaded.transform(X), imputer.transform(X))


def test_bad_detection_limits_are_refused_naming_the_column():
    X, _ = censored_lognormal(0, n=200)
    with pytest.raises(ValueError, match="column 'x0': no observed value above"):
        GaussianCopulaImputer(detection_limits={0: 1e9}).fit(X)
    with pytest.raises(ValueError, match="'x1' has a detection limit.*'ordinal'"):
        GaussianCopulaImputer(detection_limits={1: 1.0}, kinds={1: "ordinal"}).fit(X)
    with pytest.raises(TypeError, match="limit of column 'x2' must be a number"):
        GaussianCopulaImputer(detection_limits={2: "low"}).fit(X)
    with pytest.raises(ValueError, match="limit of column 'x2' must be finite"):
        GaussianCopulaImputer(detection_limits={2: np.inf}).fit(X)
    with pytest.raises(ValueError, match="lower limit of column 'x0' .* below"):
        GaussianCopulaImputer(detection_limits={0: (2.0, 1.0)}).fit(X)
    with pytest.raises(ValueError, match="limits of column 'x0' must be a number"):
        GaussianCopulaImputer(detection_limits={0: (None, None)}).fit(X)
    with pytest.raises(ValueError, match="limits of column 'x0' must be a number"):
        GaussianCopulaImputer(detection_limits={0: (1.0, 2.0, 3.0)}).fit(X)
    with pytest.raises(ValueError, match="column 'x0': no observed value below"):
        GaussianCopulaImputer(detection_limits={0: (None, 1e-9)}).fit(X)
    with pytest.raises(ValueError, match="column 'x0': no observed value between"):
        GaussianCopulaImputer(detection_limits={0: (1.0, 1.0 + 1e-12)}).fit(X)


# ---------------------------------------------------------------------------
# Nominal columns (the Gaussian-max model)


def nominal_data(n, seed):
    """A log-normal, an ordinal (4 levels), a nominal column with three
    categories (50/30/20%) and a binary column from a latent correlation
    with an identity block for the nominal column; 20% MCAR."""
    from emimpute.models._copula_nominal import NominalBlock, centre_blocks

    R = np.eye(6)
    for (i, j), r in {
        (0, 1): 0.5, (0, 2): 0.4, (0, 3): -0.2, (1, 3): 0.3, (0, 5): 0.3,
        (2, 5): -0.3, (4, 5): 0.3,
    }.items():  # fmt: skip
        R[i, j] = R[j, i] = r
    R = centre_blocks(R, [NominalBlock(np.arange(2, 5), None, None)])
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(6), R, size=n)
    from emimpute.models._copula_nominal import nominal_means

    mu = nominal_means(np.array([0.5, 0.3, 0.2]))
    truth = pd.DataFrame(
        {
            "a": np.exp(z[:, 0]),
            "b": np.digitize(z[:, 1], [-1, 0, 1]).astype(float),
            "c": pd.Categorical.from_codes(
                np.argmax(z[:, 2:5] + mu, axis=1), ["red", "green", "blue"]
            ),
            "d": (z[:, 5] > 0).astype(float),
        }
    )
    hidden = rng.random(truth.shape) < 0.2
    return truth.mask(hidden), truth, R, hidden


def test_nominal_correlations_are_recovered_at_the_rate_one_over_sqrt_n():
    scaled = {}
    for n in (2000, 8000):
        X, _, R, _ = nominal_data(n, 0)
        fit = GaussianCopulaImputer(random_state=0).fit(X)
        assert list(fit.kinds_) == ["continuous", "ordinal", "nominal", "ordinal"]
        scaled[n] = np.sqrt(n) * np.abs(fit.correlation_ - R).max()
    # About 3-4 at both sizes in simulation; without the centring of the
    # nominal block's correlations (not identified otherwise) 12 at n = 2,000.
    assert max(scaled.values()) < 6, scaled


def test_nominal_imputations_beat_the_mode_and_iterative_imputer_on_codes():
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    X, truth, _, hidden = nominal_data(4000, 1)
    rows = hidden[:, 2]
    out = GaussianCopulaImputer(random_state=0).fit_transform(X)
    copula = np.mean(out["c"][rows] == truth["c"][rows])
    mode = np.mean(truth["c"][rows] == X["c"].mode()[0])
    codes = X.assign(c=X["c"].cat.codes.replace(-1, np.nan)).to_numpy(float)
    iterative = IterativeImputer(random_state=0).fit_transform(codes)[:, 2]
    iterative = np.clip(np.round(iterative), 0, 2)
    iterative_accuracy = np.mean(iterative[rows] == truth["c"].cat.codes[rows])
    # In simulation 0.56-0.58 against 0.48-0.49 for the mode.
    assert copula > mode + 0.04 and copula > iterative_accuracy, (
        copula, mode, iterative_accuracy,
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Intervals for imputed cells


def test_conditional_quantiles_give_calibrated_intervals():
    X, R = mixed_data(3000, 7, mar=False)
    truth, _ = mixed_data(3000, 7, mar=False)  # the same draws, before holes
    rng = np.random.default_rng(7)
    complete = truth[~np.isnan(truth).any(axis=1)]
    hide = rng.random(complete.shape) < 0.2
    X = np.where(hide, np.nan, complete)
    imputer = GaussianCopulaImputer(random_state=0).fit(X)
    low, middle, high = imputer.conditional_quantiles(X, (0.05, 0.5, 0.95))
    observed = ~hide
    assert_array_equal(low[observed], X[observed])
    assert np.all((low <= middle) & (middle <= high))
    for j in range(6):
        rows = hide[:, j]
        inside = (low[rows, j] <= complete[rows, j]) & (
            complete[rows, j] <= high[rows, j]
        )
        # 90% intervals: about 0.90 for the continuous columns (about 120
        # hidden cells each: standard error 0.03), at least that for the
        # discrete ones (their quantiles are levels).
        if j < 2:
            assert 0.82 < inside.mean() < 0.97, (j, inside.mean())
        else:
            assert inside.mean() > 0.86, (j, inside.mean())
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        imputer.conditional_quantiles(X, (0.0, 0.5))


# ---------------------------------------------------------------------------
# Delta adjustment on the latent scale


def test_a_latent_delta_moves_every_imputed_latent_value_by_delta():
    from emimpute import DeltaAdjustedImputer
    from emimpute.models._copula_margins import to_latent

    X, _ = mixed_data(2000, 3, mar=False)
    missing = np.isnan(X)

    def imputed(delta, draws=False):
        imputer = GaussianCopulaImputer(sample_posterior=draws, random_state=0)
        adjusted = DeltaAdjustedImputer(imputer, delta=delta, kind="latent")
        return adjusted.fit(X), adjusted.transform(X)

    adjusted, mar = imputed(0.0)
    assert_array_equal(mar, GaussianCopulaImputer(random_state=0).fit(X).transform(X))
    delta = {0: 0.5, 2: 0.5, 4: 0.5}
    _, up = imputed(delta)
    assert_array_equal(up[~missing], X[~missing])
    # Imputations move up, never down, in the shifted columns (continuous,
    # ordinal, binary), and not at all in the others.
    for j in (0, 2, 4):
        assert np.all(up[missing[:, j], j] >= mar[missing[:, j], j])
        assert np.mean(up[missing[:, j], j]) > np.mean(mar[missing[:, j], j])
    assert_array_equal(up[:, [1, 3, 5]], mar[:, [1, 3, 5]])
    # Draws (the same seed): a continuous column's drawn latent values move
    # by exactly 0.5 where the value is not clipped at the observed range.
    _, drawn = imputed(0.0, draws=True)
    _, drawn_up = imputed(delta, draws=True)
    margin = adjusted.imputer_._margins[0]
    cells = missing[:, 0] & (drawn_up[:, 0] < margin.values[-1])
    z, z_up = (to_latent(margin, v[cells, 0]) for v in (drawn, drawn_up))
    np.testing.assert_allclose(z_up - z, 0.5, atol=1e-9)


def test_a_latent_delta_needs_a_latent_scale():
    from emimpute import DeltaAdjustedImputer

    X, _ = mixed_data(300, 3, mar=False)
    with pytest.raises(ValueError, match="must have one \\(GaussianCopulaImputer\\)"):
        DeltaAdjustedImputer(EMImputer(), delta=0.5, kind="latent").fit(X)


def test_multiple_imputation_draws_parameters_and_valid_values():
    from emimpute import MultipleImputer

    X, _ = mixed_data(800, 4, mar=False)
    mi = MultipleImputer(GaussianCopulaImputer(), n_imputations=4, random_state=0)
    sets = mi.fit(X).multiple_transform(X)
    # Proper: each data set from its own bootstrap fit of R ...
    correlations = np.array([imputer.correlation_ for imputer in mi.imputers_])
    assert np.all(correlations.std(axis=0)[np.triu_indices(6, 1)] > 0)
    # ... and its own draws, each a valid value of its column.
    missing = np.isnan(X)
    assert not np.array_equal(sets[0][missing], sets[1][missing])
    for completed in sets:
        for j in range(2, 6):
            assert np.isin(
                completed[missing[:, j], j], np.unique(X[~missing[:, j], j])
            ).all()


# ---------------------------------------------------------------------------
# Scores


def test_score_samples_is_the_latent_normal_density_on_continuous_data():
    from scipy import stats

    from emimpute.models._copula_margins import to_latent

    X = normal_data(3, n=400)
    imputer = GaussianCopulaImputer(random_state=0).fit(X)
    scores = imputer.score_samples(X)
    Z = np.column_stack([to_latent(m, X[:, j]) for j, m in enumerate(imputer._margins)])
    R = imputer.correlation_
    for i in range(0, 400, 37):
        seen = ~np.isnan(Z[i])
        if not seen.any():
            assert scores[i] == 0.0
            continue
        expected = stats.multivariate_normal(
            np.zeros(seen.sum()), R[np.ix_(seen, seen)]
        ).logpdf(Z[i, seen])
        np.testing.assert_allclose(scores[i], expected, rtol=1e-10)


def test_score_samples_with_interval_cells_matches_the_box_probability():
    import itertools

    from scipy import stats

    from emimpute.models._copula_margins import latent_bounds

    X, _ = mixed_data(500, 8, mar=False)
    imputer = GaussianCopulaImputer(random_state=0).fit(X)
    R = imputer.correlation_
    lower, upper = latent_bounds(X, imputer._margins)
    missing = np.isneginf(lower) & np.isposinf(upper)
    checked = 0
    for i in range(len(X)):
        E = np.flatnonzero(lower[i] == upper[i])
        B = np.flatnonzero((lower[i] < upper[i]) & ~missing[i])
        if not (1 <= len(B) <= 3 and len(E)):
            continue
        # The reference: the normal density of the exact values times the
        # probability of the box given them, by inclusion-exclusion of
        # scipy's multivariate normal CDF.
        gain = np.linalg.solve(R[np.ix_(E, E)], R[np.ix_(E, B)]).T
        c = gain @ lower[i, E]
        C = R[np.ix_(B, B)] - gain @ R[np.ix_(E, B)]
        lo, hi = np.maximum(lower[i, B], -30.0), np.minimum(upper[i, B], 30.0)
        box = stats.multivariate_normal(c, C, allow_singular=False)
        p = sum(
            (-1) ** sum(corner) * box.cdf(np.where(corner, lo, hi))
            for corner in itertools.product([0, 1], repeat=len(B))
        )
        density = stats.multivariate_normal(np.zeros(len(E)), R[np.ix_(E, E)])
        expected = density.logpdf(lower[i, E]) + np.log(p)
        row = imputer.score_samples(X[i : i + 1])[0]
        # GHK with 200 replicates: a relative error of the probability of
        # about 1% here (0.01 in the log); scipy's CDF is good to 1e-5.
        assert abs(row - expected) < 0.03, (i, row, expected)
        checked += 1
        if checked == 15:
            break
    assert checked == 15


def test_ridge_is_chosen_by_grid_search_on_the_score():
    from sklearn.model_selection import GridSearchCV

    X, _ = mixed_data(600, 9, mar=False)
    search = GridSearchCV(
        GaussianCopulaImputer(random_state=0), {"ridge": [0.0, 600.0]}, cv=3
    ).fit(X)
    # A prior worth as many rows as the data pulls R halfway to the
    # identity: a worse fit of held-out rows.
    assert search.best_params_ == {"ridge": 0.0}
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] > scores[1]


def test_score_with_nominal_columns_and_unseen_categories():
    frame = survey_frame()
    frame["grade"] = frame["grade"].cat.as_unordered()
    imputer = GaussianCopulaImputer(random_state=0).fit(frame)
    scores = imputer.score_samples(frame)
    assert np.all(np.isfinite(scores)) and np.all(scores < 0)
    # Leaving out the categories (making them missing) raises the scores:
    # a category's probability given the rest is below 1 (three grades:
    # -log of it is about 1 on average, far above the simulator's error).
    hidden = frame.copy()
    hidden["grade"] = pd.Categorical([None] * len(frame), dtype=frame["grade"].dtype)
    assert imputer.score(hidden) > scores.mean() + 0.3
    other = with_unseen_grade(frame)
    with pytest.raises(ValueError, match="not seen in fit in column 'grade'"):
        imputer.score(other)


def test_a_tipping_point_grid_on_the_latent_scale():
    from emimpute import MultipleImputer
    from emimpute.sensitivity import sensitivity_analysis

    X, _ = mixed_data(600, 2, mar=False)

    def share(completed, y):  # the share of ones in the binary column 4
        v = completed[:, 4]
        return np.array([v.mean()]), np.array([v.var(ddof=1) / len(v)])

    table = sensitivity_analysis(
        share, X, column=4, deltas=[-1.0, 0.0, 1.0], kind="latent",
        imputer=GaussianCopulaImputer(), n_imputations=5, random_state=0,
    )  # fmt: skip
    estimates = table["estimate"].to_numpy()
    assert np.all(np.diff(estimates) > 0.03)  # fewer ones below, more above
    # delta 0 is the MAR multiple imputation itself (common random numbers).
    mi = MultipleImputer(GaussianCopulaImputer(), n_imputations=5, random_state=0)
    mar = np.mean([d[:, 4].mean() for d in mi.fit(X).multiple_transform(X)])
    assert estimates[1] == pytest.approx(mar, abs=1e-12)
    with pytest.raises(ValueError, match="must have one \\(GaussianCopulaImputer\\)"):
        sensitivity_analysis(share, X, column=4, deltas=[0.5], kind="latent")
