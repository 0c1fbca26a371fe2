"""Save and load fitted imputers as JSON: a safe alternative to pickle.

A fitted EMImputer or MNARSelectionImputer is its parameters, its column
names and a few arrays.  They are written as plain JSON (numbers and
strings), so loading a model file can never run code, unlike ``pickle`` or
``joblib.load`` on an untrusted file.  The format carries a version number;
loading refuses files of another format or version.
"""

import json
from pathlib import Path

import numpy as np

from emimpute._em_imputer import EMImputer
from emimpute._mnar_imputer import MNARSelectionImputer
from emimpute._selection_em import SelectionEMResult, _Coefficients

FORMAT = "emimpute-model"
VERSION = 1


def _array(values):
    return np.asarray(values, dtype=np.float64)


def save_model(imputer, path):
    """Write a fitted EMImputer or MNARSelectionImputer to ``path`` (JSON)."""
    state = {
        "format": FORMAT,
        "version": VERSION,
        "class": type(imputer).__name__,
        "params": {
            key: value
            for key, value in imputer.get_params().items()
            if isinstance(value, (int, float, str, bool, list, dict, type(None)))
        },
        "n_features_in_": int(imputer.n_features_in_),
        "feature_names_in_": [str(c) for c in getattr(imputer, "feature_names_in_", [])]
        or None,
        "mean_": imputer.mean_.tolist(),
        "covariance_": imputer.covariance_.tolist(),
        "loglik_": float(imputer.loglik_),
        "n_iter_": int(imputer.n_iter_),
        "converged_": bool(imputer.converged_),
    }
    if isinstance(imputer, EMImputer):
        state["empty_features"] = imputer._empty_features.tolist()
    elif isinstance(imputer, MNARSelectionImputer):
        r = imputer._result
        mean, cov, coef = r.standardised
        state["selection"] = {
            "mnar": r.mnar.tolist(),
            "covariates": r.covariates.tolist(),
            "intercept": r.intercept.tolist(),
            "psi": r.psi.tolist(),
            "gamma": r.gamma.tolist(),
            "psi_fixed": r.psi_fixed.tolist(),
            "link": r.link,
            "center": r.center.tolist(),
            "scale": r.scale.tolist(),
            "standardised": {
                "mean": mean.tolist(),
                "covariance": cov.tolist(),
                "intercept": coef.intercept.tolist(),
                "psi": coef.psi.tolist(),
                "gamma": coef.gamma.tolist(),
            },
        }
    else:
        raise TypeError(f"cannot save a {type(imputer).__name__}")
    Path(path).write_text(json.dumps(state))


def load_model(path):
    """Read a model written by :func:`save_model`.

    Raises
    ------
    ValueError
        If the file is not JSON of this format and version.
    """
    try:
        state = json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not an emimpute model file ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not an emimpute model file")
    if state.get("version") != VERSION:
        raise ValueError(
            f"{path} has model format version {state.get('version')}; this "
            f"emimpute reads version {VERSION}"
        )
    classes = {"EMImputer": EMImputer, "MNARSelectionImputer": MNARSelectionImputer}
    if state["class"] not in classes:
        raise ValueError(f"{path}: unknown model class {state['class']!r}")
    params = dict(state["params"])
    coef = params.get("mnar_coef")
    if isinstance(coef, dict):  # JSON keys are strings; positions were ints
        names = state["feature_names_in_"] or []
        params["mnar_coef"] = {
            (int(k) if k.isdigit() and k not in names else k): v
            for k, v in coef.items()
        }
    imputer = classes[state["class"]](**params)
    imputer.n_features_in_ = state["n_features_in_"]
    if state["feature_names_in_"] is not None:
        imputer.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
    imputer.mean_ = _array(state["mean_"])
    imputer.covariance_ = _array(state["covariance_"])
    imputer.loglik_ = state["loglik_"]
    imputer.n_iter_ = state["n_iter_"]
    imputer.converged_ = state["converged_"]
    if isinstance(imputer, EMImputer):
        imputer._empty_features = np.asarray(state["empty_features"], dtype=bool)
        imputer.indicator_ = None
        imputer.loglik_path_ = np.array([])
        imputer.n_em_steps_ = 0
        return imputer
    s = state["selection"]
    std = s["standardised"]
    coef = _Coefficients(
        _array(std["intercept"]),
        _array(std["psi"]),
        _array(std["gamma"]).reshape(len(s["mnar"]), len(s["covariates"])),
    )
    imputer._result = SelectionEMResult(
        mean=imputer.mean_,
        covariance=imputer.covariance_,
        mnar=np.asarray(s["mnar"], dtype=int),
        covariates=np.asarray(s["covariates"], dtype=int),
        intercept=_array(s["intercept"]),
        psi=_array(s["psi"]),
        gamma=_array(s["gamma"]).reshape(len(s["mnar"]), len(s["covariates"])),
        psi_fixed=np.asarray(s["psi_fixed"], dtype=bool),
        link=s["link"],
        center=_array(s["center"]),
        scale=_array(s["scale"]),
        standardised=(_array(std["mean"]), _array(std["covariance"]), coef),
        loglik=imputer.loglik_,
        loglik_path=np.array([]),
        n_iter=imputer.n_iter_,
        converged=imputer.converged_,
    )
    imputer.mnar_features_ = imputer._result.mnar
    imputer.covariates_ = imputer._result.covariates
    imputer.loglik_path_ = np.array([])
    imputer.selection_coef_ = imputer._coefficient_table(imputer._result)
    return imputer
