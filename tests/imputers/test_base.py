"""BaseEMImputer: what every registered imputer gets from the base class
(parameter constraints, missing_values, indicator, empty features, copy,
feature names, warnings), checked on each of them."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.utils._param_validation import InvalidParameterError

from emimpute import EMImputer, MNARSelectionImputer
from emimpute.gaussian._conditional import ConditionalMoments
from emimpute.imputers._base import BaseEMImputer
from emimpute.imputers._registry import registered_imputers

IMPUTERS = [entry.estimator for entry in registered_imputers()]


def data(n=200, seed=0):
    """Three correlated normal columns, a quarter of the first two hidden."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), cov, size=n)
    X[rng.random(n) < 0.25, 0] = np.nan
    X[rng.random(n) < 0.25, 1] = np.nan
    return X


def make(cls, **params):
    """An imputer of class ``cls``, seeded: the Gaussian copula's fit and
    transform run a Gibbs sampler (the other models ignore the seed here)."""
    return cls(random_state=0, **params)


@pytest.mark.parametrize("cls", IMPUTERS)
def test_constraints_and_parameters_extend_the_base(cls):
    shared = set(BaseEMImputer._parameter_constraints) - cls._inapplicable_params
    assert shared <= set(cls._parameter_constraints)
    assert shared <= set(cls().get_params())
    assert set(cls._parameter_constraints) == set(cls().get_params())


@pytest.mark.parametrize("cls", IMPUTERS)
@pytest.mark.parametrize("marker", [-1, -1.5, np.float32(-1.0), np.int64(-1)])
def test_a_number_marks_missing_cells_as_nan_does(cls, marker):
    X = data()
    coded = np.where(np.isnan(X), float(marker), X)
    expected = make(cls).fit_transform(X)
    assert_array_equal(make(cls, missing_values=marker).fit_transform(coded), expected)


@pytest.mark.parametrize("cls", IMPUTERS)
def test_pd_na_is_the_nan_marker(cls):
    frame = pd.DataFrame(data()).astype("Float64")  # pd.NA at missing cells
    imputer = make(cls, missing_values=pd.NA, tol=1e-10)
    assert imputer.__sklearn_tags__().input_tags.allow_nan
    # The same fit; a DataFrame's column-major layout changes the order of
    # sums, hence the iterates by rounding, and the estimates within the
    # stopping rule.
    expected = make(cls, tol=1e-10).fit_transform(data())
    # (GaussianCopulaImputer gives a frame back, in the frame's dtypes.)
    out = np.asarray(imputer.fit_transform(frame), dtype=np.float64)
    assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("cls", IMPUTERS)
@pytest.mark.parametrize("marker", [None, "NaN", [np.nan]])
def test_other_markers_are_refused_naming_the_parameter(cls, marker):
    with pytest.raises(InvalidParameterError, match="missing_values"):
        make(cls, missing_values=marker).fit(data())


@pytest.mark.parametrize("cls", IMPUTERS)
def test_indicator_columns_are_the_missing_cells(cls):
    X = data()
    out = make(cls, add_indicator=True).fit(X).transform(X)
    assert out.shape == (len(X), 5)  # two columns had missing cells
    assert_array_equal(out[:, 3:], np.isnan(X[:, :2]))
    assert_array_equal(out[:, :3], make(cls).fit_transform(X))
    names = make(cls, add_indicator=True).fit(pd.DataFrame(X, columns=list("abc")))
    assert list(names.get_feature_names_out()) == [
        "a", "b", "c", "missingindicator_a", "missingindicator_b",
    ]  # fmt: skip


@pytest.mark.parametrize("cls", IMPUTERS)
def test_copy_false_imputes_in_place(cls):
    X = data()
    expected = make(cls).fit_transform(X)
    imputer = make(cls, copy=False).fit(X)
    out = imputer.transform(X)
    assert np.shares_memory(out, X)
    assert_array_equal(X, expected)
    with_copy = data()
    make(cls).fit(with_copy).transform(with_copy)
    assert np.isnan(with_copy).any()  # copy=True leaves the caller's data


@pytest.mark.parametrize("cls", IMPUTERS)
def test_set_output_pandas_names_the_columns(cls):
    frame = pd.DataFrame(data(), columns=["x", "y", "z"]).assign(empty=np.nan)
    imputer = make(cls, keep_empty_features=True).set_output(transform="pandas")
    with pytest.warns(UserWarning, match="Skipping column 'empty'.* fills it"):
        out = imputer.fit_transform(frame)
    assert list(out.columns) == ["x", "y", "z", "empty"]
    assert (out["empty"] == 0).all()


def test_what_each_model_provides():
    X = data()
    em, mnar = EMImputer().fit(X), MNARSelectionImputer().fit(X)
    assert hasattr(em, "conditional_moments") and hasattr(em, "score")
    assert hasattr(mnar, "conditional_moments") and hasattr(mnar, "score")


@pytest.mark.parametrize(
    ("cls", "advice"),
    [(EMImputer, "ridge prior"), (MNARSelectionImputer, "fix it with psi")],
)
def test_one_convergence_warning_with_the_model_s_advice(cls, advice):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make(cls, max_iter=1, tol=1e-12).fit(data())
    notes = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(notes) == 1
    assert "did not converge in max_iter=1" in str(notes[0].message)
    assert advice in str(notes[0].message)


@pytest.mark.parametrize("cls", IMPUTERS)
def test_registry_hooks_have_defaults(cls):
    imputer = make(cls).fit(data())
    state = imputer._fitted_state()
    assert set(state) == set(cls._state_fields)
    assert imputer._record().startswith(f"**{cls.__name__}**")
    assert isinstance(cls._params_from_cli(_Namespace()), dict)


class _Namespace:
    """argparse's namespace with no flag given."""

    def __getattr__(self, name):
        return None


class _ColumnMeans:
    """A kernel result: the observed column means (the MLE of independent
    normal columns, reached in one step)."""

    def __init__(self, X):
        self.mean = np.nanmean(X, axis=0)
        self.covariance = np.diag(np.nanvar(X, axis=0))
        self.loglik, self.loglik_path = 0.0, np.zeros(1)
        self.n_iter, self.converged = 1, True


class _MeanImputer(BaseEMImputer):
    """The smallest model on the base: the module docstring's hooks only."""

    _provides = frozenset()

    def _kernel(self, X, *, center, scale, rng):
        return (lambda X, **settings: _ColumnMeans(X)), {"X": X}

    def _store_result(self, result, valid):
        self.mean_ = np.full(len(valid), np.nan)
        if result is not None:
            self.mean_[valid] = result.mean

    def _conditional(self, X, *, rng=None, want_variance=False, want_loglik=False):
        filled = np.where(np.isnan(X), self.mean_[~self._empty_features], X)
        return ConditionalMoments(filled, None, None)


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("indicator", [False, True])
def test_a_model_needs_only_the_documented_hooks(keep, indicator):
    # The reference: scikit-learn's own mean imputation, with the same
    # treatment of empty columns and the same indicator.
    X = np.column_stack([data(), np.full(200, np.nan)])
    settings = {"keep_empty_features": keep, "add_indicator": indicator}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the empty column
        ours = _MeanImputer(**settings).fit(X)
        reference = SimpleImputer(**settings).fit(X)
        expected = reference.transform(X)
    assert_allclose(ours.transform(X), expected, rtol=1e-12)
    assert_array_equal(ours.get_feature_names_out(), reference.get_feature_names_out())


def test_methods_a_model_cannot_give_are_absent_not_broken():
    """conditional_moments and score exist only where _conditional provides
    variances and log-likelihoods."""
    imputer = _MeanImputer().fit(data())
    assert not hasattr(imputer, "conditional_moments")
    assert not hasattr(imputer, "score_samples") and not hasattr(imputer, "score")
