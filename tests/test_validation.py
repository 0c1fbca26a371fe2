"""Bad input: a clear error naming the problem and the column, or a documented
behaviour, and the caller's data never changed."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from emimpute import EMImputer


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


def test_single_row():
    with pytest.raises(ValueError, match="n_samples = 1"):
        EMImputer().fit(np.array([[1.0, 2.0, np.nan]]))


def test_all_cells_missing():
    with pytest.raises(ValueError, match="every value of X is missing"):
        EMImputer().fit(np.full((5, 3), np.nan))


def test_column_with_one_observed_value_needs_a_prior():
    data = frame()
    data["score"] = np.nan
    data.loc[4, "score"] = 2.0
    before = data.copy()
    with pytest.raises(ValueError, match="single observed value in column 'score'"):
        EMImputer().fit(data)
    out = fit_and_transform(data, ridge=1.0)
    assert np.all(np.isfinite(out))
    pd.testing.assert_frame_equal(data, before)


def test_constant_column_needs_a_prior():
    data = frame()
    data["score"] = 5.0
    with pytest.raises(ValueError, match="zero variance in column 'score'"):
        EMImputer().fit(data)
    out = fit_and_transform(data, ridge=1.0)
    assert np.all(np.isfinite(out))
    assert_allclose(out[:, 2], 5.0)


def test_collinear_columns_and_more_columns_than_rows_fit_with_a_prior():
    data = frame(n=40)
    data["twice_age"] = 2 * data["age"]
    data.loc[data["age"].isna(), "twice_age"] = np.nan
    with pytest.raises(ValueError, match="singular.*ridge"):
        EMImputer().fit(data)
    assert np.all(np.isfinite(fit_and_transform(data, ridge=1.0)))
    rng = np.random.default_rng(1)
    wide = rng.standard_normal((8, 20))
    wide[rng.random(wide.shape) < 0.2] = np.nan
    out = fit_and_transform(wide, ridge=1.0)
    assert np.all(np.isfinite(out))


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
