"""Which imputers exist: one registry instead of ``isinstance`` chains.

Each model's estimator registers itself where it is defined
(``@register_imputer("t", ...)``), and everything around the estimators
asks the registry or the estimator's own hooks instead of naming classes:
the command line (``--method`` lists every registered model), the JSON
model files, ``report.record``, ``MultipleImputer`` (data-augmentation draws
for every model that can draw its parameters) and the Dask adapter (every
model whose E-step statistics add over row blocks).  A new model is then one
kernel module, one estimator shell that registers itself, and their tests.

The hooks an estimator provides (defaults in
:class:`emimpute.imputers._base.BaseEMImputer`):

- ``_fitted_state()`` / ``_restore_fitted_state(state, check)``: its fitted
  attributes to and from JSON-able values (model files);
- ``_record()``: its paragraph of Markdown in :func:`emimpute.report.record`;
- ``_cli_options(group)`` (classmethod) and ``_params_from_cli(args)``
  (classmethod): its own flags on the command line (the shared ones, such as
  ``--ridge``, belong to the command line) and their translation into its
  parameters;
- ``_build_model(X)``: the :class:`~emimpute.engine._model.EMModel` and its
  start for validated data X (the model-contract tests run every registered
  model through it);
- optional ``_draw_parameters(X, *, n_steps, rng)``: a copy of the fitted
  estimator with parameters drawn from their posterior after ``n_steps``
  steps of data augmentation on X, and the completed X of the last step
  (``MultipleImputer(method="data-augmentation")`` offers every model that
  has it).
"""

from dataclasses import dataclass

_REGISTRY = {}


@dataclass(frozen=True)
class ImputerEntry:
    """One registered imputer.

    Attributes
    ----------
    name : str
        Its name on the command line (``--method``) and in model files.
    estimator : type
        The estimator class.
    description : str
        One line for ``--help`` and error messages.
    """

    name: str
    estimator: type
    description: str


def register_imputer(name, description):
    """Class decorator: register an imputer under ``name``.

    Raises
    ------
    ValueError
        If ``name`` or the class is registered already.
    """

    def decorate(cls):
        known = _REGISTRY.get(name)
        # A module imported a second time (pytest's doctest collection does
        # this) registers its class again: the new class takes the place.
        if known is not None and _qualified(known.estimator) != _qualified(cls):
            raise ValueError(f"an imputer named {name!r} is registered already")
        if any(
            entry.name != name and _qualified(entry.estimator) == _qualified(cls)
            for entry in _REGISTRY.values()
        ):
            raise ValueError(f"{cls.__name__} is registered already")
        _REGISTRY[name] = ImputerEntry(name, cls, description)
        return cls

    return decorate


def _qualified(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def registered_imputers():
    """The registered imputers, in order of registration (a list of
    :class:`ImputerEntry`)."""
    return list(_REGISTRY.values())


def entry_of(estimator):
    """The entry of an estimator instance or class, the most derived
    registered class in its MRO; None if it has none."""
    cls = estimator if isinstance(estimator, type) else type(estimator)
    by_class = {_qualified(entry.estimator): entry for entry in _REGISTRY.values()}
    for base in cls.__mro__:
        if _qualified(base) in by_class:
            return by_class[_qualified(base)]
    return None
