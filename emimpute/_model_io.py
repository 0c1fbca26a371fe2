"""Save and load fitted imputers as JSON: a safe alternative to pickle.

A fitted imputer is its parameters, its column names and a few arrays.
They are written as standard JSON (RFC 8259: numbers, strings,
``true``/``false``/``null``), so loading a model file can never run code,
unlike ``pickle`` or ``joblib.load`` on an untrusted file, and any
language's JSON parser reads it.  JSON has no NaN: a missing number (the
``missing_values`` placeholder, the moments of a column that was empty in
``fit``) is written as ``null`` and read back as NaN.  Files written before
this rule, with bare ``NaN`` tokens, still load.

The format is the same for every registered imputer
(:mod:`emimpute.imputers._registry`): ``"class"`` names the estimator
class, ``"params"`` its parameters, and the other fields are what its
``_fitted_state()`` hook returns (read back by ``_restore_fitted_state``).
Files of the first release name the parameters of
:class:`~emimpute.MNARSelectionImputer` by their old names (``selection``,
``mnar_coef``); they are read under the new ones (``link``, ``psi``).

A model file is input from outside, so :func:`load_model` checks all of it
before building an imputer: known fields only, every field present, the
estimator's parameter constraints, array shapes, finite numbers (NaN only
for an empty column), and a symmetric positive-definite covariance.  Each
error names the file and the field.  The format carries a version number;
files of another format or version are refused.
"""

import json
import math
from pathlib import Path

import numpy as np

from emimpute.imputers._registry import entry_of, registered_imputers

FORMAT = "emimpute-model"
VERSION = 1
_COMMON_FIELDS = {"format", "version", "class", "params", "n_features_in_",
                  "feature_names_in_"}  # fmt: skip


def _classes():
    """Registered estimator classes by class name (the file's ``"class"``)."""
    return {
        entry.estimator.__name__: entry.estimator for entry in registered_imputers()
    }


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
    """Write a fitted imputer of a registered model to ``path`` (JSON).

    Parameters
    ----------
    imputer : EMImputer, MNARSelectionImputer or another registered imputer
        A fitted imputer without ``add_indicator`` (the indicator is a fitted
        scikit-learn estimator the format does not carry).
    path : str or path-like
        The file to write.

    Raises
    ------
    TypeError
        If ``imputer`` is of a class that is not registered.
    ValueError
        If it uses ``add_indicator=True`` or holds infinite numbers.
    """
    entry = entry_of(imputer)
    if entry is None or entry.estimator is not type(imputer):
        raise TypeError(f"cannot save a {type(imputer).__name__}")
    if getattr(imputer, "add_indicator", False):
        raise ValueError(
            "a model file cannot carry the missing indicator: refit with "
            "add_indicator=False and add indicators in the pipeline"
        )
    renamed = type(imputer)._renamed_params
    state = {
        "format": FORMAT,
        "version": VERSION,
        "class": type(imputer).__name__,
        "params": {
            key: value
            for key, value in imputer.get_params().items()
            if isinstance(value, (int, float, str, bool, list, dict, type(None)))
            and not (key in renamed and value == "deprecated")
        },
        "n_features_in_": int(imputer.n_features_in_),
        "feature_names_in_": [str(c) for c in getattr(imputer, "feature_names_in_", [])]
        or None,
        **imputer._fitted_state(),
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


def _file_params(cls, state, check):
    """The file's parameters under their current names, JSON's stand-ins
    undone: null for NaN, string keys for column positions."""
    params = state["params"]
    renamed = cls._renamed_params
    check.keys(params, "params", set(), set(cls().get_params()) | set(renamed))
    params = {renamed.get(key, key): value for key, value in params.items()}
    if params.get("missing_values", np.nan) is None:  # NaN written as null
        params["missing_values"] = np.nan
    names = state["feature_names_in_"] or []
    for key, value in params.items():
        if isinstance(value, dict):  # JSON keys are strings; positions were ints
            params[key] = {
                (int(k) if k.isdigit() and k not in names else k): v
                for k, v in value.items()
            }
    return params


def _build_estimator(cls, state, check):
    """The estimator with the file's parameters, checked by its constraints."""
    params = _file_params(cls, state, check)
    imputer = cls(**params)
    try:
        imputer._validate_params()  # scikit-learn's constraints, naming the parameter
        imputer._check_params()  # the estimator's own checks (finite psi, ...)
    except (TypeError, ValueError) as error:
        raise check.error("params", f"is invalid: {error}") from None
    for key, value in params.items():
        values = value.values() if isinstance(value, dict) else [value]
        for item in values:
            if isinstance(item, float) and not math.isfinite(item):
                if not (key == "missing_values" and math.isnan(item)):
                    raise check.error(f"params.{key}", f"must be finite, not {item!r}")
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
    EMImputer, MNARSelectionImputer or another registered imputer
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
    classes = _classes()
    if name not in classes:
        raise check.error("class", f"names an unknown model class {name!r}")
    cls = classes[name]
    optional = set(cls._optional_state)
    check.keys(state, "", _COMMON_FIELDS | (cls._state_fields - optional), optional)
    imputer = _build_estimator(cls, state, check)
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
    imputer._restore_fitted_state(state, check)
    return imputer
