"""Save and load fitted imputers as JSON: a safe alternative to pickle.

A fitted EMImputer or MNARSelectionImputer is its parameters, its column
names and a few arrays.  They are written as standard JSON (RFC 8259:
numbers, strings, ``true``/``false``/``null``), so loading a model file can
never run code, unlike ``pickle`` or ``joblib.load`` on an untrusted file,
and any language's JSON parser reads it.  JSON has no NaN: a missing number
(the ``missing_values`` placeholder, the moments of a column that was empty
in ``fit``) is written as ``null`` and read back as NaN.  Files written
before this rule, with bare ``NaN`` tokens, still load.

A model file is input from outside, so :func:`load_model` checks all of it
before building an imputer: known fields only, every field present, the
estimator's parameter constraints, array shapes, finite numbers (NaN only
for an empty column), and a symmetric positive-definite covariance.  Each
error names the file and the field.  The format carries a version number;
files of another format or version are refused.
"""

import json
import math
import numbers
from pathlib import Path

import numpy as np

from emimpute.imputers._em_imputer import EMImputer
from emimpute.imputers._mnar_imputer import MNARSelectionImputer
from emimpute.models._selection import SelectionEMResult, _Coefficients

FORMAT = "emimpute-model"
VERSION = 1
_CLASSES = {"EMImputer": EMImputer, "MNARSelectionImputer": MNARSelectionImputer}
_COMMON_FIELDS = {
    "format", "version", "class", "params", "n_features_in_",
    "feature_names_in_", "mean_", "covariance_", "loglik_", "n_iter_",
    "converged_",
}  # fmt: skip
_CLASS_FIELDS = {"EMImputer": {"empty_features"}, "MNARSelectionImputer": {"selection"}}
_OPTIONAL_FIELDS = {"ridge_"}  # absent from files written before automatic ridge
_SELECTION_FIELDS = {
    "mnar", "covariates", "intercept", "psi", "gamma", "psi_fixed", "link",
    "center", "scale", "standardised",
}  # fmt: skip
_STANDARDISED_FIELDS = {"mean", "covariance", "intercept", "psi", "gamma"}


# --- writing -----------------------------------------------------------------


def _nan_to_null(value):
    """JSON-ready copy of ``value`` with NaN as None (JSON ``null``)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict):
        return {key: _nan_to_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_null(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def save_model(imputer, path):
    """Write a fitted EMImputer or MNARSelectionImputer to ``path`` (JSON).

    Parameters
    ----------
    imputer : EMImputer or MNARSelectionImputer
        A fitted imputer without ``add_indicator`` (the indicator is a fitted
        scikit-learn estimator the format does not carry).
    path : str or path-like
        The file to write.

    Raises
    ------
    TypeError
        If ``imputer`` is of another class.
    ValueError
        If it uses ``add_indicator=True`` or holds infinite numbers.
    """
    if not isinstance(imputer, (EMImputer, MNARSelectionImputer)):
        raise TypeError(f"cannot save a {type(imputer).__name__}")
    if getattr(imputer, "add_indicator", False):
        raise ValueError(
            "a model file cannot carry the missing indicator: refit with "
            "add_indicator=False and add indicators in the pipeline"
        )
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
        "mean_": imputer.mean_,
        "covariance_": imputer.covariance_,
        "loglik_": float(imputer.loglik_),
        "n_iter_": int(imputer.n_iter_),
        "converged_": bool(imputer.converged_),
    }
    if hasattr(imputer, "ridge_"):
        state["ridge_"] = float(imputer.ridge_)
    if isinstance(imputer, EMImputer):
        state["empty_features"] = imputer._empty_features.tolist()
    else:
        r = imputer._result
        mean, cov, coef = r.standardised
        state["selection"] = {
            "mnar": r.mnar.tolist(),
            "covariates": r.covariates.tolist(),
            "intercept": r.intercept,
            "psi": r.psi,
            "gamma": r.gamma,
            "psi_fixed": r.psi_fixed.tolist(),
            "link": r.link,
            "center": r.center,
            "scale": r.scale,
            "standardised": {
                "mean": mean,
                "covariance": cov,
                "intercept": coef.intercept,
                "psi": coef.psi,
                "gamma": coef.gamma,
            },
        }
    # allow_nan=False: an infinite number raises here instead of writing the
    # non-standard token ``Infinity``.
    text = json.dumps(_nan_to_null(state), allow_nan=False)
    Path(path).write_text(text, encoding="utf-8")


# --- reading and checking ----------------------------------------------------


class _Fields:
    """Reads fields of one model file; every error names the file and field."""

    def __init__(self, path):
        self.path = path

    def error(self, field, problem):
        where = f"field {field!r}" if field else "the file"
        return ValueError(f"{self.path}: {where} {problem}")

    def keys(self, mapping, field, required, optional=frozenset()):
        if not isinstance(mapping, dict):
            raise self.error(field, "must be a JSON object")
        unknown = sorted(set(mapping) - required - optional)
        if unknown:
            names = ", ".join(repr(k) for k in unknown)
            raise self.error(field, f"has unknown field(s) {names}")
        missing = sorted(required - set(mapping))
        if missing:
            raise self.error(
                f"{field}.{missing[0]}" if field else missing[0], "is missing"
            )

    def integer(self, value, field, low=0):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.error(field, f"must be an integer >= {low}, not {value!r}")
        return value

    def array(self, value, field, shape, allow_nan=None):
        """A float array of ``shape``; NaN only where ``allow_nan`` is True."""
        try:
            # None (JSON null) becomes NaN; strings and ragged lists raise.
            out = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.error(field, "must be an array of numbers") from None
        if out.shape != shape:
            raise self.error(field, f"must have shape {shape}, not {out.shape}")
        bad = ~np.isfinite(out)
        if allow_nan is not None:
            bad &= ~(np.isnan(out) & allow_nan)
        if bad.any():
            raise self.error(field, "must hold finite numbers only")
        return out

    def positions(self, value, field, p):
        if not isinstance(value, list):
            raise self.error(field, "must be a list of column positions")
        for item in value:
            self.integer(item, field)
            if item >= p:
                raise self.error(
                    field, f"has position {item}; the model has {p} columns"
                )
        if len(set(value)) != len(value):
            raise self.error(field, "has a repeated position")
        return np.asarray(value, dtype=int)

    def flags(self, value, field, length):
        if not (isinstance(value, list) and all(isinstance(v, bool) for v in value)):
            raise self.error(field, "must be a list of true/false")
        if len(value) != length:
            raise self.error(field, f"must have {length} entries, not {len(value)}")
        return np.asarray(value, dtype=bool)

    def covariance(self, value, field, p, valid=None):
        """A symmetric positive-definite matrix on the ``valid`` columns."""
        valid = np.ones(p, dtype=bool) if valid is None else valid
        allow_nan = ~(valid[:, None] & valid[None, :])
        cov = self.array(value, field, (p, p), allow_nan=allow_nan)
        block = cov[np.ix_(valid, valid)]
        # The writer stores the fitted matrix digit for digit (repr of each
        # float), so a fitted covariance is symmetric to rounding of its own
        # computation; anything larger was edited.
        scale = np.max(np.abs(block), initial=0.0)
        if np.max(np.abs(block - block.T), initial=0.0) > 1e-12 * scale:
            raise self.error(field, "must be symmetric")
        try:
            np.linalg.cholesky(block)
        except np.linalg.LinAlgError:
            raise self.error(field, "must be positive definite") from None
        return cov


def _read_state(path):
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a model file")
    try:
        # json.loads also accepts the bare NaN tokens of files written before
        # null was used for missing numbers; the checks below decide where
        # NaN may stand.
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not an emimpute model file ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not an emimpute model file")
    if state.get("version") != VERSION:
        raise ValueError(
            f"{path} has model format version {state.get('version')!r}; this "
            f"emimpute reads version {VERSION}"
        )
    return state


def _build_estimator(state, check):
    """The estimator with the file's parameters, checked by its constraints."""
    cls = _CLASSES[state["class"]]
    params = state["params"]
    check.keys(params, "params", set(), set(cls().get_params()))
    params = dict(params)
    if params.get("missing_values", np.nan) is None:  # NaN written as null
        params["missing_values"] = np.nan
    coef = params.get("mnar_coef")
    if isinstance(coef, dict):  # JSON keys are strings; positions were ints
        names = state["feature_names_in_"] or []
        params["mnar_coef"] = {
            (int(k) if k.isdigit() and k not in names else k): v
            for k, v in coef.items()
        }
    imputer = cls(**params)
    try:
        imputer._validate_params()  # scikit-learn's constraints, naming the parameter
    except (TypeError, ValueError) as error:
        raise check.error("params", f"is invalid: {error}") from None
    values = coef.values() if isinstance(coef, dict) else [coef]
    for value in values:
        if value is not None and not (
            isinstance(value, numbers.Real) and math.isfinite(value)
        ):
            raise check.error("params.mnar_coef", f"must be finite, not {value!r}")
    if params.get("add_indicator"):
        raise check.error("params.add_indicator", "must be false in a model file")
    return imputer


def load_model(path):
    """Read and check a model written by :func:`save_model`.

    Parameters
    ----------
    path : str or path-like
        The model file.

    Returns
    -------
    EMImputer or MNARSelectionImputer
        The fitted imputer, ready for ``transform``.

    Raises
    ------
    ValueError
        If the file is not JSON of this format and version, or a field is
        missing, unknown or invalid (the message names the field).
    OSError
        If the file cannot be read.
    """
    state = _read_state(path)
    check = _Fields(path)
    name = state.get("class")
    if name not in _CLASSES:
        raise check.error("class", f"names an unknown model class {name!r}")
    check.keys(state, "", _COMMON_FIELDS | _CLASS_FIELDS[name], _OPTIONAL_FIELDS)
    imputer = _build_estimator(state, check)

    p = check.integer(state["n_features_in_"], "n_features_in_", low=1)
    names = state["feature_names_in_"]
    if names is not None:
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise check.error("feature_names_in_", "must be a list of strings or null")
        if len(names) != p:
            raise check.error(
                "feature_names_in_", f"has {len(names)} names; n_features_in_ is {p}"
            )
        if len(set(names)) != p:
            raise check.error("feature_names_in_", "has a repeated name")
        imputer.feature_names_in_ = np.asarray(names, dtype=object)
    imputer.n_features_in_ = p
    loglik = state["loglik_"]
    if not (loglik is None or isinstance(loglik, numbers.Real)):
        raise check.error("loglik_", "must be a number")
    imputer.loglik_ = np.nan if loglik is None else float(loglik)
    imputer.n_iter_ = check.integer(state["n_iter_"], "n_iter_")
    if not isinstance(state["converged_"], bool):
        raise check.error("converged_", "must be true or false")
    imputer.converged_ = state["converged_"]
    if "ridge_" in state:
        ridge = check.array(state["ridge_"], "ridge_", ())
        if ridge < 0:
            raise check.error("ridge_", "must be >= 0")
        imputer.ridge_ = float(ridge)
    imputer.loglik_path_ = np.array([])
    if isinstance(imputer, EMImputer):
        return _load_em(imputer, state, check, p)
    return _load_selection(imputer, state, check, p)


def _load_em(imputer, state, check, p):
    empty = check.flags(state["empty_features"], "empty_features", p)
    imputer._empty_features = empty
    # An empty column has no moments: NaN (null) there, and only there.
    imputer.mean_ = check.array(state["mean_"], "mean_", (p,), allow_nan=empty)
    imputer.covariance_ = check.covariance(
        state["covariance_"], "covariance_", p, ~empty
    )
    imputer.indicator_ = None
    imputer.n_em_steps_ = 0
    return imputer


def _load_selection(imputer, state, check, p):
    s = state["selection"]
    check.keys(s, "selection", _SELECTION_FIELDS)
    std = s["standardised"]
    check.keys(std, "selection.standardised", _STANDARDISED_FIELDS)
    imputer.mean_ = check.array(state["mean_"], "mean_", (p,))
    imputer.covariance_ = check.covariance(state["covariance_"], "covariance_", p)
    mnar = check.positions(s["mnar"], "selection.mnar", p)
    covariates = check.positions(s["covariates"], "selection.covariates", p)
    if np.intersect1d(mnar, covariates).size:
        raise check.error("selection.covariates", "overlaps selection.mnar")
    k, c = len(mnar), len(covariates)
    if s["link"] != imputer.selection:
        raise check.error(
            "selection.link",
            f"is {s['link']!r}; params.selection is {imputer.selection!r}",
        )

    def vector(node, prefix, key, length):
        return check.array(node[key], f"{prefix}.{key}", (length,))

    def gamma(node, prefix):
        # A JSON array of k rows of c numbers ([[]] when c is 0).
        value = node["gamma"]
        if c == 0 and value in ([], [[]] * k):  # no covariate: nothing to check
            return np.zeros((k, 0))
        return check.array(value, f"{prefix}.gamma", (k, c))

    scale = vector(s, "selection", "scale", p)
    if (scale <= 0).any():
        raise check.error("selection.scale", "must be positive")
    coef = _Coefficients(
        vector(std, "selection.standardised", "intercept", k),
        vector(std, "selection.standardised", "psi", k),
        gamma(std, "selection.standardised"),
    )
    std_moments = (
        vector(std, "selection.standardised", "mean", p),
        check.covariance(std["covariance"], "selection.standardised.covariance", p),
    )
    imputer._result = SelectionEMResult(
        mean=imputer.mean_,
        covariance=imputer.covariance_,
        mnar=mnar,
        covariates=covariates,
        intercept=vector(s, "selection", "intercept", k),
        psi=vector(s, "selection", "psi", k),
        gamma=gamma(s, "selection"),
        psi_fixed=check.flags(s["psi_fixed"], "selection.psi_fixed", k),
        link=s["link"],
        center=vector(s, "selection", "center", p),
        scale=scale,
        standardised=(*std_moments, coef),
        loglik=imputer.loglik_,
        loglik_path=np.array([]),
        n_iter=imputer.n_iter_,
        converged=imputer.converged_,
    )
    imputer.mnar_features_ = mnar
    imputer.covariates_ = covariates
    imputer.selection_coef_ = imputer._coefficient_table(imputer._result)
    return imputer
