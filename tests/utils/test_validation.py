"""Bad input: a clear error naming the problem and the column, or a documented
behaviour, and the caller's data never changed."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from emimpute import EMImputer
from emimpute.exceptions import RegularisationWarning


def frame(seed=0, n=30):
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal([0, 1, 2], [[1, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 1]], n)
    X[rng.random(X.shape) < 0.2] = np.nan
    return pd.DataFrame(X, columns=["age", "income", "score"])


def fit_and_transform(X, **params):
    return EMImputer(**params).fit(X).transform(X)


def test_infinite_values_name_the_column_and_leave_data_unchanged():
    data = frame()
    data.loc[3, "income"] = np.inf
    before = data.copy()
    with pytest.raises(ValueError, match="infinite values in column 'income'"):
        EMImputer().fit(data)
    pd.testing.assert_frame_equal(data, before)
    array = data.to_numpy()
    with pytest.raises(ValueError, match="infinite values in column 1"):
        EMImputer().fit(array)
    fitted = EMImputer().fit(frame())
    with pytest.raises(ValueError, match="column 'income'"):
        fitted.transform(data)


def test_non_numeric_columns_are_named():
    data = frame()
    data["city"] = "Oslo"
    data["grade"] = pd.Categorical(["a", "b"] * 15)
    with pytest.raises(TypeError, match="columns 'city', 'grade'"):
        EMImputer().fit(data)
    array = np.array([[1.0, "x"], [2.0, "y"]], dtype=object)
    with pytest.raises(TypeError, match="column 1"):
        EMImputer().fit(array)


def test_empty_array():
    with pytest.raises(ValueError, match="0 sample"):
        EMImputer().fit(np.empty((0, 3)))


# A fit regularised by the automatic ridge is the limit of the prior as it
# vanishes only to about the prior's strength: 1e-8 pseudo-observations per
# row moves each standardised parameter by about 1e-8 times the ratio of all
# rows to those that observe the degenerate direction, and (through the
# condition number, about 1e8) leaves the iterates numerical noise of about
# 1e-8 relative.  So these fits keep the default tol=1e-6 (a tol below that
# noise cannot be met at the weakest rung, and the ladder moves on to a
# stronger prior), and the comparisons use 1e-5: above the stopping rule's
# error at the well-conditioned parameters, far below any real difference.
LIMIT_RTOL = 1e-5


def fit_warning_once(X, **params):
    """Fit with default arguments; exactly one RegularisationWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imputer = EMImputer(**params).fit(X)
    regularised = [w for w in caught if w.category is RegularisationWarning]
    assert len(regularised) == 1, [str(w.message) for w in caught]
    assert imputer.ridge_ > 0
    return imputer, str(regularised[0].message)


def test_single_row_fits_like_iterative_imputer():
    X = np.array([[1.0, 2.0, np.nan]])
    with pytest.warns(UserWarning, match="Skipping column 2"):
        imputer = EMImputer().fit(X)
    assert_array_equal(imputer.transform(X), [[1.0, 2.0]])
    assert_array_equal(imputer.transform([[np.nan, 5.0, 1.0]]), [[1.0, 5.0]])


def test_all_cells_missing_drops_every_column_as_simple_imputer_does():
    X = np.full((5, 3), np.nan)
    with pytest.warns(UserWarning, match="Skipping columns 0, 1, 2"):
        assert EMImputer().fit(X).transform(X).shape == (5, 0)
    kept = EMImputer(keep_empty_features=True).fit(X)
    assert_array_equal(kept.transform(X), np.zeros((5, 3)))
    assert kept.score(X) == 0.0


def without(data, column):
    """EMImputer's MLE on the other columns (it exists): the reference."""
    reference = EMImputer(tol=1e-10).fit(data.drop(columns=column))
    return reference.mean_, reference.covariance_


def test_column_with_one_observed_value_is_imputed_by_that_value():
    data = frame()
    data["score"] = np.nan
    data.loc[4, "score"] = 2.0
    before = data.copy()
    imputer, message = fit_warning_once(data)
    assert "single observed value in column 'score'" in message
    assert_allclose(imputer.transform(data)[:, 2], 2.0, rtol=LIMIT_RTOL)
    mean, covariance = without(data, "score")
    assert_allclose(imputer.mean_[:2], mean, rtol=LIMIT_RTOL)
    assert_allclose(imputer.covariance_[:2, :2], covariance, rtol=LIMIT_RTOL)
    pd.testing.assert_frame_equal(data, before)


def test_constant_column_is_imputed_by_its_constant():
    data = frame()
    data["score"] = 5.0
    data.loc[[1, 7], "score"] = np.nan
    imputer, message = fit_warning_once(data)
    assert "no variance in column 'score'" in message
    assert_allclose(imputer.transform(data)[:, 2], 5.0, rtol=LIMIT_RTOL)
    mean, covariance = without(data, "score")
    assert_allclose(imputer.covariance_[:2, :2], covariance, rtol=LIMIT_RTOL)


def test_collinear_columns_impute_consistently_and_fit_the_limit():
    data = frame(n=60)
    data["twice_age"] = 2 * data["age"]
    rng = np.random.default_rng(3)
    data.loc[rng.random(60) < 0.3, "twice_age"] = np.nan  # its own holes
    imputer, message = fit_warning_once(data)
    assert "collinear columns 'age', 'twice_age'" in message
    out = imputer.transform(data)
    assert_allclose(out[:, 3], 2 * out[:, 0], rtol=LIMIT_RTOL)
    # The limit is the MLE of the data in which age is known wherever age or
    # twice_age is: an independent, proper fit.
    merged = data.drop(columns="twice_age")
    merged["age"] = data["age"].fillna(data["twice_age"] / 2)
    reference = EMImputer(tol=1e-10).fit(merged)
    assert_allclose(imputer.mean_[:3], reference.mean_, rtol=LIMIT_RTOL)
    assert_allclose(
        imputer.covariance_[:3, :3], reference.covariance_, rtol=LIMIT_RTOL, atol=1e-7
    )


def test_more_columns_than_rows_fit_with_default_arguments():
    rng = np.random.default_rng(1)
    wide = rng.standard_normal((8, 20))
    wide[rng.random(wide.shape) < 0.2] = np.nan
    before = wide.copy()
    imputer, message = fit_warning_once(wide)
    assert "more columns than rows (20 columns)" in message
    out = imputer.transform(wide)
    assert np.all(np.isfinite(out))
    observed = ~np.isnan(before)
    assert_array_equal(out[observed], before[observed])
    assert_array_equal(np.isnan(wide), np.isnan(before))


def test_where_the_mle_exists_nothing_changes():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegularisationWarning)
        imputer = EMImputer().fit(frame())
    assert imputer.ridge_ == 0.0


def test_a_ridge_given_by_the_user_is_used_as_given():
    data = frame()
    data["score"] = 5.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegularisationWarning)
        assert EMImputer(ridge=1.0).fit(data).ridge_ == 1.0


@pytest.mark.parametrize("factor", [1e-110, 1e110])
def test_extreme_but_representable_scales_fit_equivariantly(
    factor, assert_same_fit, fit_tolerance
):
    data = frame().to_numpy()
    sd = np.nanstd(data, axis=0)
    reference = EMImputer(tol=1e-10).fit(data)
    scaled = EMImputer(tol=1e-10).fit(data * factor)
    assert_same_fit(
        scaled.mean_ / factor, scaled.covariance_ / factor**2,
        reference.mean_, reference.covariance_, tol=1e-10, scale=sd,
    )  # fmt: skip
    # An imputation mu_m + B (x_o - mu_o) moves with the parameters, times
    # up to 1 + p |z| for the few standard scores |z| < 4 of these rows.
    atol = fit_tolerance(1e-10) * (1 + data.shape[1] * 4)
    assert_allclose(
        scaled.transform(data * factor) / factor / sd,
        reference.transform(data) / sd,
        rtol=0,
        atol=atol,
    )


@pytest.mark.parametrize("factor", [1e-300, 1e300])
def test_unrepresentable_scales_say_what_is_wrong(factor):
    data = frame()
    data["income"] *= factor
    with pytest.raises(ValueError, match="spread over .* in column 'income'.*Rescale"):
        EMImputer().fit(data)


def test_sparse_input_is_refused():
    with pytest.raises(TypeError, match="dense data is required"):
        EMImputer().fit(sp.csr_matrix(np.eye(3)))


def test_pandas_nullable_dtypes_are_read_as_missing():
    data = frame()
    nullable = pd.DataFrame(
        {
            "age": data["age"].astype("Float64"),
            "income": data["income"].round().astype("Int64"),
            "score": data["score"].astype("Float64"),
        }
    )
    assert nullable["income"].isna().any()
    plain = nullable.astype("float64")
    assert_allclose(fit_and_transform(nullable), fit_and_transform(plain))
    assert nullable["income"].isna().any()  # still pd.NA in the caller's frame


def test_sentinel_with_nan_present_is_an_error():
    X = np.array([[1.0, -1.0], [2.0, np.nan], [3.0, 4.0]])
    with pytest.raises(ValueError, match="NaN in column 1 but missing_values=-1"):
        EMImputer(missing_values=-1).fit(X)


def test_integer_array_with_sentinel_is_not_modified():
    X = np.array([[1, 2], [2, -1], [3, 5], [-1, 3], [4, 4], [5, 7]])
    before = X.copy()
    out = fit_and_transform(X, missing_values=-1)
    assert_array_equal(X, before)
    assert np.all(np.isfinite(out)) and out.dtype == np.float64


def test_float32_is_supported():
    X = frame().to_numpy().astype(np.float32)
    before = X.copy()
    out = fit_and_transform(X)
    assert out.dtype == np.float32
    assert_array_equal(np.isnan(X), np.isnan(before))


def test_transform_with_other_columns_is_refused():
    fitted = EMImputer().fit(frame())
    renamed = frame().rename(columns={"score": "points"})
    with pytest.raises(ValueError, match="feature names"):
        fitted.transform(renamed)
    with pytest.raises(ValueError, match="4 features, but EMImputer is expecting 3"):
        EMImputer().fit(frame().to_numpy()).transform(np.zeros((2, 4)))


@pytest.mark.parametrize("params", [{"ridge": -1.0}, {"max_iter": -1}, {"tol": "a"}])
def test_invalid_parameters(params):
    with pytest.raises(ValueError, match="parameter"):
        EMImputer(**params).fit(frame())


def test_object_columns_of_numbers_are_accepted_and_left_unchanged():
    data = frame()
    as_objects = data.astype(object).where(data.notna(), None)
    assert all(pd.api.types.is_object_dtype(d) for d in as_objects.dtypes)
    before = as_objects.copy()
    assert_allclose(fit_and_transform(as_objects), fit_and_transform(data))
    pd.testing.assert_frame_equal(as_objects, before)
    mixed = as_objects.copy()
    mixed.loc[2, "income"] = "n/a"
    with pytest.raises(TypeError, match="column 'income'"):
        EMImputer().fit(mixed)
