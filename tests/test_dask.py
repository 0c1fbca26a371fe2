"""emimpute.dask: fits and transforms of Dask collections on a LocalCluster
of several worker processes, checked against the in-memory estimators."""

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from emimpute import EMImputer, MNARSelectionImputer
from emimpute.dask import DaskEMImputer, blockwise_transform, is_dask_collection
from emimpute.exceptions import RegularisationWarning


@pytest.fixture
def client(dask_cluster_client):
    """The session's LocalCluster client (tests/conftest.py)."""
    return dask_cluster_client


def correlated(n, p, *, missing=0.2, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(p, p))
    cov = A @ A.T / p + np.eye(p)
    X = rng.multivariate_normal(np.linspace(-50.0, 50.0, p), cov, size=n)
    X[rng.random((n, p)) < missing] = np.nan
    return X


@pytest.fixture
def assert_dask_fit_matches(assert_same_fit, loglik_tolerance):
    """Two fits (the blocks' sums add up in another order than in memory):
    the stopping rule's tolerance (tests/conftest.py), on the scale of the
    fitted standard deviations."""

    def check(dask_fit, memory_fit):
        tol = max(dask_fit.tol, memory_fit.tol)
        assert_same_fit(
            dask_fit.mean_,
            dask_fit.covariance_,
            memory_fit.mean_,
            memory_fit.covariance_,
            tol=tol,
            scale=np.sqrt(np.diag(memory_fit.covariance_)),
        )
        assert dask_fit.loglik_ == pytest.approx(
            memory_fit.loglik_, rel=loglik_tolerance(tol)
        )
        assert dask_fit.converged_ and memory_fit.converged_

    return check


def imputation_tolerance(fit_tolerance, fit, X):
    """How far the imputations of two fits at ``fit.tol`` may differ: the
    conditional mean mu_m + B (x_o - mu_o) moves by d mu_m + d B (x_o - mu_o),
    at most the parameter tolerance times (1 + p max |z|) column SDs, z the
    standardised observed cells."""
    sd = np.sqrt(np.diag(fit.covariance_))  # NaN for a dropped column
    z = np.abs((X - fit.mean_) / sd)
    factor = 1 + np.isfinite(sd).sum() * np.nanmax(z)
    return float(fit_tolerance(fit.tol, np.nanmax(sd)) * factor)


# ---------------------------------------------------------------------------
# fit


@pytest.mark.parametrize("ridge", [0.0, 25.0])
def test_fit_on_a_cluster_equals_the_in_memory_fit(
    client, ridge, assert_dask_fit_matches
):
    X = correlated(6000, 7)
    X[::50] = np.nan  # all-missing rows carry no information
    X[1::50, :6] = 1.0  # and rows with nothing missing enter through sums
    X_dask = da.from_array(X, chunks=(700, 3))  # uneven blocks, split columns
    fitted = DaskEMImputer(ridge=ridge, tol=1e-10).fit(X_dask)
    reference = EMImputer(ridge=ridge, tol=1e-10).fit(X)
    assert fitted.n_blocks_ == 9
    assert_dask_fit_matches(fitted, reference)
    # Same iterations up to where rounding meets the stopping rule.
    assert abs(fitted.n_iter_ - reference.n_iter_) <= 1
    assert np.all(np.diff(fitted.loglik_path_) >= -1e-9 * abs(fitted.loglik_))


@pytest.mark.parametrize("df", [5.0, "estimate"])
def test_blockwise_student_t_fit_equals_the_in_memory_fit(
    client, df, assert_same_fit, fit_tolerance, loglik_tolerance
):
    # The t model's E-step summed over blocks (two passes for an estimated
    # df) in the same driver: the in-memory fit's estimate, to the rule.
    import functools

    from emimpute.dask import (
        _DaskSource,
        column_passes,
        run_student_t_em,
        student_t_e_step,
    )
    from emimpute.models._student_t import fit_student_t_em

    rng = np.random.default_rng(4)
    X = correlated(3000, 4, missing=0.0, seed=4)
    X /= np.sqrt(rng.chisquare(4, size=3000) / 4)[:, None]  # t with 4 df
    X[rng.random(X.shape) < 0.2] = np.nan
    X[::60] = np.nan  # all-missing rows carry no information
    reference = fit_student_t_em(X, df=df, tol=1e-10)
    blocks = _DaskSource.of(da.from_array(X, chunks=(700, 2))).float_blocks(np.nan)
    columns = column_passes(blocks)
    fitted = run_student_t_em(
        evaluate=functools.partial(student_t_e_step, blocks, columns),
        n_rows=columns.n_rows, center=columns.center, scale=columns.scale,
        df=df, ridge=0.0, max_iter=500, tol=1e-10, accelerate=True,
        callback=None,
    )  # fmt: skip
    sd = np.sqrt(np.diag(reference.scale))
    assert_same_fit(fitted.mean, fitted.scale, reference.mean, reference.scale,
                    tol=1e-10, scale=sd)  # fmt: skip
    # The df maximises the profile at (mu, S), so it agrees as they do;
    # compared on log df, the scale of its search.
    assert abs(np.log(fitted.df) - np.log(reference.df)) < fit_tolerance(1e-10)
    assert fitted.loglik == pytest.approx(reference.loglik, rel=loglik_tolerance(1e-10))
    assert fitted.converged and reference.converged


@pytest.mark.parametrize("df", [4.0, "estimate"])
def test_student_t_shell_on_a_cluster_equals_the_in_memory_fit(
    client, df, assert_same_fit, loglik_tolerance
):
    from emimpute import StudentTImputer
    from emimpute.dask import DaskStudentTImputer

    rng = np.random.default_rng(8)
    X = correlated(2000, 3, missing=0.0, seed=8)
    X /= np.sqrt(rng.chisquare(4, size=2000) / 4)[:, None]
    X[rng.random(X.shape) < 0.2] = np.nan
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    fitted = DaskStudentTImputer(df=df, tol=1e-10).fit(
        dd.from_pandas(frame, npartitions=3)
    )
    reference = StudentTImputer(df=df, tol=1e-10).fit(frame)
    assert fitted.n_blocks_ == 3
    assert_same_fit(fitted.mean_, fitted.scale_, reference.mean_, reference.scale_,
                    tol=1e-10, scale=np.sqrt(np.diag(reference.scale_)))  # fmt: skip
    assert fitted.loglik_ == pytest.approx(
        reference.loglik_, rel=loglik_tolerance(1e-10)
    )
    local = fitted.to_local()
    assert type(local) is StudentTImputer and local.df_ == fitted.df_
    lazy = fitted.transform(dd.from_pandas(frame, npartitions=3))
    np.testing.assert_allclose(
        lazy.compute().to_numpy(), local.transform(frame), rtol=0, atol=1e-12
    )


def test_plain_em_path_matches_step_by_step(client):
    # Without acceleration and a fixed number of steps, every iterate is the
    # same function of the data, so the whole path must agree up to the
    # order of the sums over rows (n eps relative: 7e-13; EM contracts, so
    # rounding does not grow over the 15 steps).
    X = correlated(3000, 5, missing=0.35, seed=1)
    kwargs = dict(accelerate=False, max_iter=15, tol=0.0)
    with pytest.warns(ConvergenceWarning, match="DaskEMImputer did not converge"):
        fitted = DaskEMImputer(**kwargs).fit(da.from_array(X, chunks=500))
    with pytest.warns(ConvergenceWarning):
        reference = EMImputer(**kwargs).fit(X)
    np.testing.assert_allclose(
        fitted.loglik_path_, reference.loglik_path_, rtol=len(X) * 2.3e-16, atol=0
    )
    np.testing.assert_allclose(fitted.covariance_, reference.covariance_, atol=1e-11)


def test_fit_on_a_dataframe_with_nullable_columns(client, assert_dask_fit_matches):
    X = correlated(4000, 4, seed=2)
    frame = pd.DataFrame(X, columns=["age", "income", "score", "hours"])
    frame["age"] = frame["age"].round().astype("Int64")  # pd.NA at missing
    ddf = dd.from_pandas(frame, npartitions=6)
    fitted = DaskEMImputer(tol=1e-10).fit(ddf)
    reference = EMImputer(tol=1e-10).fit(frame)
    assert list(fitted.feature_names_in_) == ["age", "income", "score", "hours"]
    assert fitted.n_blocks_ == 6
    assert_dask_fit_matches(fitted, reference)


def test_fit_with_a_sentinel_and_an_empty_column(
    client, assert_dask_fit_matches, fit_tolerance
):
    X = correlated(2000, 4, seed=3)
    X[:, 2] = np.nan  # never observed: dropped, as in EMImputer
    coded = np.where(np.isnan(X), -999.0, X)
    fitted = DaskEMImputer(missing_values=-999.0, tol=1e-10).fit(
        da.from_array(coded, chunks=300)
    )
    reference = EMImputer(missing_values=-999.0, tol=1e-10).fit(coded)
    assert_dask_fit_matches(fitted, reference)
    assert np.isnan(fitted.mean_[2]) and np.isnan(fitted.covariance_[2]).all()
    out = fitted.transform(da.from_array(coded, chunks=300)).compute()
    atol = imputation_tolerance(fit_tolerance, reference, X)
    np.testing.assert_allclose(out, reference.transform(coded), rtol=0, atol=atol)
    assert out.shape == (2000, 3)


def test_fit_on_the_local_scheduler_without_a_cluster(assert_dask_fit_matches):
    X = correlated(2000, 4, seed=4)
    with dask.config.set(scheduler="threads"):
        fitted = DaskEMImputer(tol=1e-10).fit(da.from_array(X, chunks=400))
    assert_dask_fit_matches(fitted, EMImputer(tol=1e-10).fit(X))


def test_caller_data_is_not_modified(client):
    X = correlated(1000, 4, seed=5)
    before = X.copy()
    frame = pd.DataFrame(X)
    with dask.config.set(scheduler="threads"):  # blocks are views of X here
        imputer = DaskEMImputer().fit(da.from_array(X, chunks=200))
        imputer.transform(da.from_array(X, chunks=200)).compute()
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(frame.to_numpy(), before)


# ---------------------------------------------------------------------------
# transform


def test_transform_on_a_cluster_equals_in_memory(client):
    X = correlated(5000, 6, seed=6)
    imputer = DaskEMImputer().fit(da.from_array(X, chunks=1000))
    lazy = imputer.transform(da.from_array(X, chunks=(800, 6)))
    assert is_dask_collection(lazy)
    np.testing.assert_allclose(
        lazy.compute(), imputer.to_local().transform(X), rtol=0, atol=1e-10
    )
    np.testing.assert_allclose(
        imputer.score_samples(da.from_array(X, chunks=800)).compute(),
        imputer.to_local().score_samples(X),
        rtol=1e-12,
    )
    assert imputer.score(da.from_array(X, chunks=800)) == pytest.approx(
        imputer.to_local().score(X), rel=1e-12
    )
    mean, variance = imputer.conditional_moments(da.from_array(X, chunks=800))
    reference = imputer.to_local().conditional_moments(X)
    np.testing.assert_allclose(mean.compute(), reference[0], atol=1e-10)
    np.testing.assert_allclose(variance.compute(), reference[1], atol=1e-10)


def test_dataframe_transform_keeps_index_and_names(client, fit_tolerance):
    X = correlated(3000, 3, seed=7)
    frame = pd.DataFrame(X, columns=["a", "b", "c"], index=np.arange(3000) * 10)
    ddf = dd.from_pandas(frame, npartitions=4)
    imputer = DaskEMImputer(add_indicator=True).fit(ddf)
    out = imputer.transform(ddf)
    assert isinstance(out, dd.DataFrame)
    expected_names = ["a", "b", "c", "missingindicator_a", "missingindicator_b",
                      "missingindicator_c"]  # fmt: skip
    assert list(out.columns) == expected_names
    computed = out.compute()
    reference = EMImputer(add_indicator=True).fit(frame)
    pd.testing.assert_index_equal(computed.index, frame.index)
    # Two fits (Dask's and the in-memory one) at the default tol.
    atol = imputation_tolerance(fit_tolerance, reference, X)
    np.testing.assert_allclose(
        computed.to_numpy(), reference.transform(frame), rtol=0, atol=atol
    )
    assert list(imputer.get_feature_names_out()) == expected_names


def test_posterior_draws_are_reproducible_and_independent_between_blocks(client):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(2000, 2))
    X[:, 1] += X[:, 0]
    X[:1000:2, 1] = np.nan
    X[1000:] = X[:1000]  # the second block repeats the first
    imputer = DaskEMImputer(sample_posterior=True, random_state=0).fit(X)
    X_dask = da.from_array(X, chunks=1000)
    first = imputer.transform(X_dask).compute()
    np.testing.assert_array_equal(first, imputer.transform(X_dask).compute())
    np.testing.assert_array_equal(first[~np.isnan(X)], X[~np.isnan(X)])
    # Each draw is its conditional mean plus N(0, conditional variance)
    # noise, and the two blocks' noises (same rows, same model) are
    # independent: the blocks do not share one random stream.
    mean, variance = imputer.conditional_moments(X)
    missing = np.isnan(X[:, 1])
    z = (first[:, 1] - mean[:, 1]) / np.sqrt(np.where(missing, variance[:, 1], 1))
    z_a, z_b = z[:1000][missing[:1000]], z[1000:][missing[1000:]]
    assert abs(z[missing].mean()) < 0.15 and abs(z[missing].std() - 1.0) < 0.1
    assert abs(np.corrcoef(z_a, z_b)[0, 1]) < 0.15


def test_blockwise_transform_of_an_mnar_imputer(client):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(1500, 3))
    X[:, 1] += 0.8 * X[:, 0]
    X[rng.random(1500) < 1 / (1 + np.exp(-X[:, 1])), 1] = np.nan
    frame = pd.DataFrame(X, columns=["x", "y", "z"])
    imputer = MNARSelectionImputer(max_iter=50).fit(frame)
    out = blockwise_transform(imputer, dd.from_pandas(frame, npartitions=3))
    np.testing.assert_allclose(
        out.compute().to_numpy(), imputer.transform(frame), atol=1e-12
    )


def _registered_imputers():
    from emimpute.imputers._registry import registered_imputers

    classes = [entry.estimator for entry in registered_imputers()]
    return classes or [EMImputer, MNARSelectionImputer]  # before they register


@pytest.mark.parametrize(
    "imputer_class", _registered_imputers(), ids=lambda cls: cls.__name__
)
def test_blockwise_transform_of_every_registered_imputer(imputer_class):
    # A row's imputation depends on that row and the fitted model only, so
    # imputing block by block is the in-memory transform, for every model.
    X = correlated(600, 3, seed=11)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    imputer = imputer_class(max_iter=30).fit(frame)
    lazy = blockwise_transform(imputer, dd.from_pandas(frame, npartitions=4))
    assert list(lazy.columns) == list(imputer.get_feature_names_out())
    np.testing.assert_allclose(
        lazy.compute().to_numpy(), imputer.transform(frame), rtol=0, atol=1e-12
    )
    unnamed = imputer_class(max_iter=30).fit(X)
    array = blockwise_transform(unnamed, da.from_array(X, chunks=(150, 3)))
    np.testing.assert_allclose(
        array.compute(), unnamed.transform(X), rtol=0, atol=1e-12
    )


def test_to_local_gives_a_plain_fitted_emimputer(client):
    X = correlated(1000, 3, seed=10)
    imputer = DaskEMImputer(ridge=2.0).fit(da.from_array(X, chunks=250))
    local = imputer.to_local()
    assert type(local) is EMImputer
    assert local.get_params() == imputer.get_params()
    np.testing.assert_array_equal(local.covariance_, imputer.covariance_)
    assert not hasattr(local, "n_blocks_")


# ---------------------------------------------------------------------------
# bad input: clear errors that name the column


def test_non_numeric_dataframe_column_is_named(client):
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0], "city": ["a", "b", "c"]})
    with pytest.raises(TypeError, match="non-numeric data in column 'city'"):
        DaskEMImputer().fit(dd.from_pandas(frame, npartitions=1))


def test_non_numeric_or_badly_shaped_arrays(client):
    with pytest.raises(TypeError, match="non-numeric Dask array"):
        DaskEMImputer().fit(da.from_array(np.array([["a", "b"], ["c", "d"]])))
    with pytest.raises(ValueError, match="2-d Dask array"):
        DaskEMImputer().fit(da.zeros((4, 3, 2)))


def test_infinite_values_are_named_from_the_worker(client):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, np.inf, 2.0, 5.0]})
    with pytest.raises(ValueError, match="infinite values in column 'y'"):
        DaskEMImputer().fit(dd.from_pandas(frame, npartitions=2))


def test_nan_with_a_sentinel_marker_is_refused(client):
    X = np.array([[1.0, -1.0], [2.0, np.nan], [3.0, 4.0]])
    with pytest.raises(ValueError, match="NaN in column 1 but missing_values=-1"):
        DaskEMImputer(missing_values=-1).fit(da.from_array(X))


def test_transform_with_other_columns_is_refused(client):
    X = correlated(500, 3, seed=11)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    imputer = DaskEMImputer().fit(dd.from_pandas(frame, npartitions=2))
    with pytest.raises(ValueError, match="X has 2 features"):
        imputer.transform(da.from_array(X[:, :2]))
    renamed = frame.rename(columns={"c": "d"})
    with pytest.raises(ValueError, match=r"columns missing from X: \['c'\]"):
        imputer.transform(dd.from_pandas(renamed, npartitions=2))


def test_degenerate_data_are_regularised_as_in_emimputer(client):
    X = correlated(500, 3, seed=12)
    X[:, 1] = 7.0  # constant
    X[::7, 1] = np.nan
    with pytest.warns(RegularisationWarning, match="no variance in column 'x1'"):
        fitted = DaskEMImputer(tol=1e-10).fit(da.from_array(X, chunks=100))
    with pytest.warns(RegularisationWarning):
        reference = EMImputer(tol=1e-10).fit(X)
    assert fitted.ridge_ == reference.ridge_ > 0
    np.testing.assert_allclose(
        fitted.covariance_, reference.covariance_, rtol=1e-6, atol=1e-12
    )
    np.testing.assert_allclose(fitted.transform(X)[:, 1], 7.0)
    with pytest.warns(UserWarning, match="Skipping columns 0, 1"):
        empty = DaskEMImputer().fit(da.full((10, 2), np.nan, chunks=5))
    assert empty.transform(np.full((3, 2), np.nan)).shape == (3, 0)
