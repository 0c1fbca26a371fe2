"""MNARSelectionImputer(warm_start=True) keeps the standardised rows and their
E-step layout, and a refit on an X with the same bytes reuses them (issue
14: a grid of held psi on one X).

The references are cold fits with ``warm_start=False``: they build their own
layout with ``SelectionModel.from_data`` and start from the MAR fit, so they
share none of the shortcut (no kept layout, no digest, no warm start).
"""

import copy
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import special

import emimpute.imputers._mnar_imputer as mnar_module
from emimpute import MNARSelectionImputer


def selection_data(n=1500, seed=0):
    """Three correlated normal columns; x0 missing more often when high,
    x1 missing completely at random (so x2 is the only covariate)."""
    rng = np.random.default_rng(seed)
    cov = [[1.0, 0.5, 0.3], [0.5, 1.0, 0.2], [0.3, 0.2, 1.0]]
    X = rng.multivariate_normal([1.0, -2.0, 0.5], cov, size=n) * [2.0, 1.0, 3.0]
    X[rng.random(n) < special.ndtr(-0.3 + 0.4 * X[:, 0]), 0] = np.nan
    X[rng.random(n) < 0.1, 1] = np.nan
    return X


@pytest.fixture
def builds(monkeypatch):
    """Counts SelectionModel.from_data calls of the shell (layouts built)."""
    calls = []
    build = mnar_module.SelectionModel.from_data

    def counting(*args, **kwargs):
        calls.append(1)
        return build(*args, **kwargs)

    monkeypatch.setattr(mnar_module.SelectionModel, "from_data", counting)
    return calls


def coefficients(imputer, scale):
    """intercept, psi and gamma on the standardised scale (as fitted)."""
    table = imputer.selection_coef_.drop(columns="psi_fixed").to_numpy(float)
    return table * np.r_[1.0, scale[imputer.mnar_features_], scale[imputer.covariates_]]


def assert_reaches(fit, reference, X, assert_same_fit, fit_tolerance, loglik_tol):
    scale = np.nanstd(X, axis=0)
    assert_same_fit(
        fit.mean_, fit.covariance_, reference.mean_, reference.covariance_,
        tol=reference.tol, scale=scale,
    )  # fmt: skip
    assert_allclose(
        coefficients(fit, scale), coefficients(reference, scale),
        rtol=0, atol=fit_tolerance(reference.tol),
    )  # fmt: skip
    assert fit.loglik_ == pytest.approx(
        reference.loglik_, rel=loglik_tol(reference.tol)
    )


def test_a_grid_on_one_X_builds_the_layout_once_and_reaches_the_cold_fits(
    builds, assert_same_fit, fit_tolerance, loglik_tolerance
):
    X = selection_data()
    X_before = X.copy()
    first = MNARSelectionImputer([0], psi=0.0, warm_start=True, random_state=0)
    fitted = [first.fit(X)]
    for psi in (0.2, 0.4, -0.2):
        # As the benchmark's grid: a copy of the last fit, refitted.
        fitted.append(copy.deepcopy(fitted[-1]).set_params(psi=psi).fit(X.copy()))
    assert len(builds) == 1  # every refit reused the first fit's layout
    assert all(f._layout is first._layout for f in fitted)  # shared, not copied
    assert_array_equal(X, X_before)
    for imputer in fitted[1:]:
        cold = MNARSelectionImputer([0], psi=imputer.psi, random_state=0).fit(X)
        assert_reaches(
            imputer, cold, X, assert_same_fit, fit_tolerance, loglik_tolerance
        )
    assert len(builds) == 1 + 3  # the cold fits built their own


def test_the_kept_layout_gives_the_same_run_as_a_fresh_one():
    # An exact identity on fixed inputs: the same EM run from the same start
    # on a layout built again from the same bytes.
    X = selection_data(800, seed=1)
    warm = MNARSelectionImputer([0], psi=0.3, warm_start=True, random_state=0).fit(X)
    kept = copy.deepcopy(warm).set_params(psi=0.5).fit(X)
    fresh = pickle.loads(pickle.dumps(warm)).set_params(psi=0.5).fit(X)
    assert fresh._layout is not warm._layout and kept._layout is warm._layout
    assert kept.n_iter_ == fresh.n_iter_
    assert_array_equal(kept.mean_, fresh.mean_)
    assert_array_equal(kept.covariance_, fresh.covariance_)
    assert_array_equal(kept.selection_coef_, fresh.selection_coef_)


@pytest.mark.parametrize(
    "change",
    ["value", "missing", "observed"],
)
def test_X_changed_in_place_is_not_served_the_old_layout(
    change, builds, assert_same_fit, fit_tolerance, loglik_tolerance
):
    X = selection_data(1000, seed=2)
    imputer = MNARSelectionImputer([0], psi=0.4, warm_start=True, random_state=0)
    imputer.fit(X)
    old = imputer._layout
    # The same array object, one cell changed.
    row = int(np.flatnonzero(~np.isnan(X[:, 0]))[0])
    if change == "value":
        X[row, 2] += 5.0  # a covariate's value
    elif change == "missing":
        X[row, 0] = np.nan  # one more missing MNAR cell
    else:
        X[int(np.flatnonzero(np.isnan(X[:, 1]))[0]), 1] = 0.25  # one fewer
    imputer.set_params(psi=0.5).fit(X)
    assert imputer._layout is not old and len(builds) == 2
    cold = MNARSelectionImputer([0], psi=0.5, random_state=0).fit(X)
    assert_reaches(imputer, cold, X, assert_same_fit, fit_tolerance, loglik_tolerance)


def test_other_settings_build_their_own_layout(builds):
    X = selection_data(600, seed=3)
    imputer = MNARSelectionImputer([0], psi=0.2, warm_start=True, random_state=0)
    imputer.fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a logit fit on few rows may stop early
        for change in ({"link": "logit"}, {"gamma": False}, {"mnar_features": [0, 1]}):
            before = len(builds)
            copy.deepcopy(imputer).set_params(**change).fit(X)
            assert len(builds) == before + 1, change


def test_the_layout_is_not_pickled_nor_kept_without_warm_start():
    X = selection_data(2000, seed=4)
    warm = MNARSelectionImputer([0], psi=0.2, warm_start=True, random_state=0).fit(X)
    cold = MNARSelectionImputer([0], psi=0.2, random_state=0).fit(X)
    assert cold._layout is None
    # A model-sized pickle, not a data-sized one (X alone is 48 kB here).
    assert len(pickle.dumps(warm)) < len(pickle.dumps(cold)) + 300
    assert pickle.loads(pickle.dumps(warm))._layout.key is None
    warm.set_params(warm_start=False).fit(X)
    assert warm._layout is None  # released
