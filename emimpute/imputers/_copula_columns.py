"""GaussianCopulaImputer's columns: their kinds (given or inferred), their
detection limits and margins, checked with errors that name the column;
and the margins of a model file."""

import numbers

import numpy as np
import pandas as pd

from emimpute.models._copula_margins import (
    KINDS,
    fit_margin,
    infer_kind,
    margin_from_state,
)
from emimpute.utils._columns import column_position


def given_limits(detection_limits, names):
    """The ``detection_limits`` parameter as {position: (lower, upper)},
    checked: a number is a lower limit, a pair (lower, upper) either or
    both limits (None: no limit that side)."""
    limits = {}
    for column, limit in (detection_limits or {}).items():
        j = column_position(names, column, "detection_limits")
        pair = tuple(limit) if isinstance(limit, (tuple, list)) else (limit, None)
        if len(pair) != 2 or pair == (None, None):
            raise ValueError(
                f"detection_limits: the limits of column '{names[j]}' must be a "
                f"number (a lower limit) or a pair (lower, upper) with None for "
                f"no limit that side, not {limit!r}"
            )
        for value in pair:
            _check_limit(value, names[j])
        lower, upper = (None if v is None else float(v) for v in pair)
        if lower is not None and upper is not None and not lower < upper:
            raise ValueError(
                f"detection_limits: the lower limit of column '{names[j]}' "
                f"({lower:g}) must be below its upper limit ({upper:g})"
            )
        limits[j] = (lower, upper)
    return limits


def _check_limit(value, name):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"detection_limits: the limit of column '{name}' must be "
            f"a number, not {value!r}"
        )
    if not np.isfinite(value):
        raise ValueError(
            f"detection_limits: the limit of column '{name}' must be "
            f"finite, not {value!r}"
        )


def given_kinds(kinds, names):
    """The ``kinds`` parameter as {position: kind}, checked."""
    if kinds is None:
        return {}
    if isinstance(kinds, dict):
        given = {
            column_position(names, column, "kinds"): kind
            for column, kind in kinds.items()
        }
    else:
        if len(kinds) != len(names):
            raise ValueError(
                f"kinds has {len(kinds)} entries but X has {len(names)} columns."
            )
        given = dict(enumerate(kinds))
    for j, kind in given.items():
        if kind not in KINDS:
            raise ValueError(
                f"kinds: column '{names[j]}' has kind {kind!r}; the kinds "
                f"are {', '.join(map(repr, KINDS))}."
            )
    return given


def resolve_kinds(observed, *, empty, varies, given, limits, types, names):
    """Each column's kind: ``given``, or inferred (continuous where a
    detection limit is given); "empty" and "constant" for columns without
    a margin to estimate.  ``observed``: each column's observed values;
    ``types``: the frame's :class:`~emimpute.utils._column_types.ColumnTypes`.
    """
    given = dict(given)
    for j in limits:
        if given.get(j, "continuous") != "continuous":
            raise ValueError(
                f"column '{names[j]}' has a detection limit, so it is "
                f"continuous; kinds gives it {given[j]!r}."
            )
        given[j] = "continuous"
    kinds = []
    for j in range(len(names)):
        if empty[j]:
            kinds.append("empty")
        elif not varies[j]:
            kinds.append("constant")
        elif given.get(j) is not None:
            kinds.append(given[j])
        else:
            kinds.append(_inferred_kind(observed[j], j, types))
    return np.array(kinds, dtype=object)


def _inferred_kind(x, j, types):
    """A frame's categories are nominal (unordered) or ordinal, its flags
    ordinal; numbers by their values (:func:`infer_kind`)."""
    if types.is_frame:
        dtype = types.dtypes[j]
        if j in types.categories:
            return "ordinal" if dtype.ordered else "nominal"
        if pd.api.types.is_bool_dtype(dtype):
            return "ordinal"
    return infer_kind(x)


def column_margin(x, kind, limits, name):
    """The margin of a column's observed values ``x`` (None for an empty or
    constant column), ``limits`` its detection limits (lower, upper) or
    None; errors name the column."""
    if kind in ("empty", "constant"):
        return None
    try:
        return fit_margin(x, kind, *(limits or (None, None)))
    except ValueError as error:
        raise ValueError(f"column '{name}': {error}") from None


def margins_from_state(margins, kinds, check):
    """The margins of a model file (``check``: its field checker), one per
    column, None where ``kinds`` has no margin."""
    modelled = np.isin(kinds, KINDS)
    if not (isinstance(margins, list) and len(margins) == len(kinds)):
        raise check.error("margins", f"must be a list of {len(kinds)} margins")
    out = []
    for j, (margin, kind) in enumerate(zip(margins, kinds, strict=True)):
        if (margin is None) == modelled[j]:
            raise check.error(f"margins[{j}]", f"does not fit kind {kind!r}")
        try:
            margin = None if margin is None else margin_from_state(margin)
        except (ValueError, AttributeError) as error:
            raise check.error(f"margins[{j}]", str(error)) from None
        if margin is not None and margin.kind != kind:
            raise check.error(f"margins[{j}]", f"does not fit kind {kind!r}")
        out.append(margin)
    return out
