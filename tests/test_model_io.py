"""Model files (emimpute/_model_io.py): standard JSON, and validation on load.

A model file is data from outside: a tampered or hand-edited file must be
refused with an error naming the field, never turned into NaN or infinite
imputations.  References are the definitions themselves: RFC 8259 JSON has no
NaN or Infinity literal, a covariance is symmetric positive definite, and the
estimators' own parameter constraints.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from emimpute import EMImputer, MNARSelectionImputer
from emimpute._model_io import load_model, save_model
from emimpute.datasets import load_airquality
from emimpute.imputers._registry import registered_imputers

# Model files written by save_model before the estimators shared a base
# class (emimpute 0.1, commit 669d401): EMImputer(ridge=0.5) and
# MNARSelectionImputer(mnar_features=["Ozone"], selection="logit",
# mnar_coef={"Ozone": 0.02}, tol=1e-8), both fitted on load_airquality().
OLD_FILES = Path(__file__).parent / "model_files"


def _strict_json(text):
    """Parse as RFC 8259 JSON: NaN, Infinity and -Infinity are refused."""

    def refuse(token):
        raise ValueError(f"not standard JSON: {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def air():
    return load_airquality()


@pytest.fixture(scope="module")
def em_state(air, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "em.json"
    save_model(EMImputer().fit(air), path)
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def mnar_state(air, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "mnar.json"
    save_model(MNARSelectionImputer(mnar_features=["Ozone"]).fit(air), path)
    return json.loads(path.read_text())


def _write(tmp_path, state, allow_nan=False):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(state, allow_nan=allow_nan))
    return path


def test_files_are_standard_json_and_round_trip(air, tmp_path):
    """NaN (missing_values, an empty column's moments) is written as null."""
    data = air.copy()
    data["empty"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the empty column's warning
        imputer = EMImputer().fit(data)
    path = tmp_path / "m.json"
    save_model(imputer, path)
    state = _strict_json(path.read_text())
    assert state["params"]["missing_values"] is None
    assert state["mean_"][-1] is None
    loaded = load_model(path)
    assert np.isnan(loaded.missing_values)
    # An exact copy: the same numbers, NaN exactly where the fit put NaN.
    np.testing.assert_array_equal(loaded.mean_, imputer.mean_)
    np.testing.assert_array_equal(loaded.covariance_, imputer.covariance_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(loaded.transform(data), imputer.transform(data))


def test_selection_model_is_standard_json(air, tmp_path):
    imputer = MNARSelectionImputer(mnar_features=["Ozone"]).fit(air)
    path = tmp_path / "m.json"
    save_model(imputer, path)
    _strict_json(path.read_text())
    np.testing.assert_array_equal(
        load_model(path).transform(air), imputer.transform(air)
    )


def test_old_files_with_nan_literals_still_load(em_state, tmp_path):
    state = json.loads(json.dumps(em_state))
    state["params"]["missing_values"] = float("nan")
    path = _write(tmp_path, state, allow_nan=True)
    assert "NaN" in path.read_text()
    assert np.isnan(load_model(path).missing_values)


def _set(state, dotted, value):
    *parents, leaf = dotted.split(".")
    node = state
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[leaf]
    else:
        node[leaf] = value


_DELETE = object()
_SPD_BREAK = [[1.0, 2.0], [2.0, 1.0]]  # eigenvalues 3 and -1


def _tamper_cov(state, kind):
    cov = np.array(state["covariance_"])
    if kind == "asymmetric":
        cov[0, 1] += 0.1 * abs(cov[0, 1]) + 1.0
    elif kind == "indefinite":
        cov[:2, :2] = np.array(_SPD_BREAK) * cov[0, 0]
    elif kind == "infinite":
        cov[1, 1] = np.inf
    return cov.tolist()


EM_CASES = [
    ("mean_", None, "mean_"),
    ("mean_", "nan-entry", "mean_"),
    ("mean_", [1.0, 2.0], "mean_"),
    ("covariance_", "asymmetric", "symmetric"),
    ("covariance_", "indefinite", "positive definite"),
    ("covariance_", "infinite", "covariance_"),
    ("covariance_", _DELETE, "covariance_"),
    ("params.ridge", -1.0, "ridge"),
    ("params.max_iter", "many", "max_iter"),
    ("params.colour", "blue", "colour"),
    ("surprise", 1, "surprise"),
    ("n_features_in_", 4, "n_features_in_"),
    ("feature_names_in_", ["a", "b"], "feature_names_in_"),
    ("empty_features", [True], "empty_features"),
    ("class", "Pickle", "class"),
]


@pytest.mark.parametrize("field, value, named", EM_CASES)
def test_tampered_em_file_is_refused_naming_the_field(
    em_state, tmp_path, field, value, named
):
    state = json.loads(json.dumps(em_state))
    if field == "covariance_" and isinstance(value, str):
        value = _tamper_cov(state, value)
    if value == "nan-entry":
        value = [*state["mean_"][:-1], float("nan")]
    _set(state, field, value)
    path = _write(tmp_path, state, allow_nan=True)
    with pytest.raises(ValueError, match=named) as error:
        load_model(path)
    assert str(path) in str(error.value)


MNAR_CASES = [
    ("selection.psi", [float("inf")], "psi"),
    ("selection.intercept", [None], "intercept"),
    ("selection.link", "cauchit", "link"),
    ("selection.mnar", [17], "mnar"),
    ("selection.scale", [0.0] * 6, "scale"),
    ("selection.gamma", [[1.0]], "gamma"),
    ("selection.standardised.covariance", _SPD_BREAK, "covariance"),
    ("selection.standardised", _DELETE, "standardised"),
    ("params.link", "cauchit", "link"),
    ("params.psi", "high", "psi"),
]


@pytest.mark.parametrize("field, value, named", MNAR_CASES)
def test_tampered_selection_file_is_refused_naming_the_field(
    mnar_state, tmp_path, field, value, named
):
    state = json.loads(json.dumps(mnar_state))
    _set(state, field, value)
    path = _write(tmp_path, state, allow_nan=True)
    with pytest.raises(ValueError, match=named):
        load_model(path)


def test_an_untampered_file_loads(em_state, mnar_state, tmp_path, air):
    for state in (em_state, mnar_state):
        imputer = load_model(_write(tmp_path, state))
        assert np.isfinite(imputer.transform(air)).all()


def test_save_refuses_what_a_file_cannot_carry(air, tmp_path):
    """The missing indicator is a fitted sub-estimator the format lacks."""
    imputer = EMImputer(add_indicator=True).fit(air)
    with pytest.raises(ValueError, match="add_indicator"):
        save_model(imputer, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def _conditional_mean(mean, cov, row):
    """E[x_m | x_o] = mu_m + S_mo S_oo^-1 (x_o - mu_o) (Little & Rubin 2002,
    sec. 11.2), solved directly on S_oo."""
    m = np.isnan(row)
    o = ~m
    return mean[m] + cov[np.ix_(m, o)] @ np.linalg.solve(
        cov[np.ix_(o, o)], row[o] - mean[o]
    )


def test_an_old_em_file_loads_and_imputes_by_its_moments(air):
    path = OLD_FILES / "em_v1.json"
    state = json.loads(path.read_text())
    imputer = load_model(path)
    assert isinstance(imputer, EMImputer) and imputer.ridge == 0.5
    np.testing.assert_array_equal(imputer.mean_, state["mean_"])
    np.testing.assert_array_equal(imputer.covariance_, state["covariance_"])
    completed = imputer.transform(air)
    values = air.to_numpy(dtype=float)
    for i in np.flatnonzero(np.isnan(values).any(axis=1)):
        expected = _conditional_mean(imputer.mean_, imputer.covariance_, values[i])
        np.testing.assert_allclose(
            completed[i, np.isnan(values[i])], expected, rtol=1e-10
        )


def test_an_old_selection_file_loads_under_the_new_parameter_names(air):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FutureWarning for the old names
        imputer = load_model(OLD_FILES / "mnar_v1.json")
    assert imputer.link == "logit" and imputer.psi == {"Ozone": 0.02}
    assert imputer.selection == "deprecated" and imputer.mnar_coef == "deprecated"
    coef = imputer.selection_coef_.loc["Ozone"]
    assert coef["psi"] == pytest.approx(0.02) and coef["psi_fixed"]
    # The same model refitted today (new names) imputes the same, to the
    # stopping rule of the fit (tol=1e-8).
    refit = MNARSelectionImputer(
        mnar_features=["Ozone"], link="logit", psi={"Ozone": 0.02}, tol=1e-8
    ).fit(air)
    np.testing.assert_allclose(imputer.transform(air), refit.transform(air), rtol=1e-5)


def test_new_files_carry_the_new_names_only(mnar_state):
    assert {"link", "psi"} <= set(mnar_state["params"])
    assert not {"selection", "mnar_coef"} & set(mnar_state["params"])


@pytest.mark.parametrize("entry", registered_imputers(), ids=lambda entry: entry.name)
def test_every_registered_imputer_round_trips(entry, air, tmp_path):
    """The file names the registered class and gives back its imputations."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence or ridge notes
        # Seeded: the Gaussian copula's transform runs a Gibbs sampler.
        imputer = entry.estimator(max_iter=50, random_state=0).fit(air)
    path = tmp_path / "m.json"
    save_model(imputer, path)
    assert _strict_json(path.read_text())["class"] == entry.estimator.__name__
    loaded = load_model(path)
    assert type(loaded) is entry.estimator
    np.testing.assert_array_equal(loaded.transform(air), imputer.transform(air))


def test_an_unregistered_class_cannot_be_saved(air, tmp_path):
    from sklearn.impute import SimpleImputer

    with pytest.raises(TypeError, match="SimpleImputer"):
        save_model(SimpleImputer().fit(air), tmp_path / "m.json")
