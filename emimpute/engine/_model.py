"""The interface every EM model implements, and the statistics they share.

A model is one object that knows its prepared data and answers a handful of
questions; :func:`emimpute.engine._driver.run_em` does everything else
(SQUAREM, the safe fall-back, the stopping rule, the log-likelihood path),
as scikit-learn's ``BaseMixture`` owns the loop and asks its subclasses for
``_e_step`` and ``_m_step``.

- ``start()``: starting parameters.
- ``e_step(params)``: expected sufficient statistics at ``params``, as a
  :class:`Statistics` dataclass that carries the observed-data
  log-likelihood and **adds over blocks of rows**: the statistics of a data
  set are the sum of those of its row blocks, which is what lets chunked and
  Dask fits run any model (``block_statistics``).
- ``m_step(params, stats)``: the next parameters (the prior included).
- ``log_prior(params)``: the log prior density (0 without a prior), so the
  objective is ``stats.loglik + log_prior(params)``.
- ``to_vector(params)`` / ``from_vector(vector, like)``: parameters to and
  from an unconstrained vector on the standardised scale (SQUAREM
  extrapolates there, and the stopping rule measures changes there).
- ``statistics_of(X, params)`` (models whose statistics add): the
  statistics of any rows X, in the data's units, in the model's
  coordinates; summed over the row blocks of the data they equal
  ``e_step(params)``.  A distributed fit evaluates it where each block
  lives.

Parameters and statistics are small dataclasses, never tuples read by
position.

What a fitted model says about new rows (the conditional distribution of
their missing cells: means, draws, variances, per-row log-likelihoods) is a
function of the fitted parameters alone, not of the prepared data, so it is
a module-level function of each model
(:func:`emimpute.gaussian._conditional.conditional_moments` for the normal,
:func:`emimpute.models._student_t.conditional_t`,
:func:`emimpute.models._selection_impute.selection_moments`), which the estimator
shell calls from its ``_conditional`` hook.
"""

import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, replace

import numpy as np


class SingularCovarianceError(ValueError):
    """The covariance estimate became singular (no finite likelihood)."""


@dataclass(frozen=True)
class Statistics:
    """E-step statistics: the observed-data log-likelihood plus, in
    subclasses, arrays of sums over rows.

    ``a + b`` adds every field, so statistics of row blocks add up to those
    of the whole data set.  A field that is None in both stays None.
    """

    loglik: float

    def __add__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        summed = {}
        for field in fields(self):
            a, b = getattr(self, field.name), getattr(other, field.name)
            if a is None and b is None:
                summed[field.name] = None
            elif _is_sum(a) and _is_sum(b):
                summed[field.name] = a + b
            else:
                # A tuple or list would be concatenated, not summed: a
                # structured field needs the subclass's own __add__.
                raise TypeError(
                    f"{type(self).__name__}.{field.name} is not a number or an "
                    "array; the subclass must define how its blocks add"
                )
        return replace(self, **summed)


def _is_sum(value):
    return isinstance(value, (numbers.Number, np.ndarray))


def sum_statistics(parts):
    """The sum of an iterable of :class:`Statistics` (at least one)."""
    parts = iter(parts)
    total = next(parts)
    for part in parts:
        total = total + part
    return total


class EMModel(ABC):
    """An EM model on prepared data.

    Subclasses keep what every E-step needs (the data laid out once, the
    standardisation, the prior) and implement the abstract methods below.
    ``singular_message`` says, in the words of the model, why an E-step can
    fail (:class:`SingularCovarianceError`).
    """

    singular_message = "the covariance estimate became singular"

    @abstractmethod
    def start(self):
        """Starting parameters."""

    @abstractmethod
    def e_step(self, params):
        """:class:`Statistics` at ``params``, or None when ``params`` give no
        finite likelihood (a covariance that is not positive definite)."""

    @abstractmethod
    def m_step(self, params, stats):
        """The parameters that maximise the expected complete-data
        log-likelihood (plus log prior) given ``stats``."""

    @abstractmethod
    def to_vector(self, params):
        """``params`` as an unconstrained 1-d array on the standardised
        scale."""

    @abstractmethod
    def from_vector(self, vector, like):
        """Inverse of :meth:`to_vector`; ``like`` supplies whatever the
        vector leaves out (parameters held fixed)."""

    def statistics_of(self, X, params):
        """:class:`Statistics` of the rows of X (data units, NaN at missing
        cells) at ``params``, or None as :meth:`e_step`.  Models whose
        statistics do not add over rows leave it unimplemented."""
        raise NotImplementedError(
            f"{type(self).__name__} has no statistics of a block of rows"
        )

    def out_of_bounds(self, params):
        """A reason to stop at ``params``, or None (the default).

        For parameters running off to infinity, where the likelihood has no
        finite maximum (the MNAR coefficient of a missingness that is a step
        function of the value): EM would creep on for every iteration it is
        given.  The driver stops, not converged, and reports the reason.
        """
        return None

    def log_prior(self, params):
        """Log prior density at ``params`` (up to a constant); 0 by
        default (maximum likelihood)."""
        return 0.0

    def objective(self, params, stats):
        """The value EM increases: log-likelihood plus log prior."""
        return stats.loglik + self.log_prior(params)

    def change(self, old, new):
        """The largest change of the parameters on the standardised scale,
        compared with the tolerance."""
        return float(np.max(np.abs(self.to_vector(new) - self.to_vector(old))))
