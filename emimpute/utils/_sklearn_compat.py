"""Every scikit-learn import that is private or moved between versions, in
one place.

scikit-learn's parameter validation (``Interval``, ``StrOptions``,
``MissingValues``, ``HasMethods``) and ``_fit_context`` live in private
modules; ``validate_data`` became a public function in 1.6.  When one of
them moves, this module is the only file to change.  Estimators import them
from here, never from ``sklearn.utils._param_validation`` or
``sklearn.base`` directly.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    MissingValues,
    Options,
    StrOptions,
)
from sklearn.utils.validation import validate_data

__all__ = [
    "HasMethods",
    "Hidden",
    "Interval",
    "MissingValues",
    "Options",
    "StrOptions",
    "_fit_context",
    "validate_data",
]
