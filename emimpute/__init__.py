"""emimpute: Expectation-Maximization imputers compatible with scikit-learn.

Layout
------
- Statistical kernels (NumPy/SciPy only): ``_normal_em`` (EM for the
  multivariate normal, SQUAREM, ridge prior), ``_conditional`` (conditional
  normal moments of missing cells, vectorised over rows),
  ``_batched_cholesky`` (many small factorisations at once), ``_compiled``
  with ``_fast_estep.c`` (the compiled E-step), ``_patterns`` (missingness
  patterns, Little's statistic), ``_selection`` / ``_selection_em`` /
  ``_binary_glm`` (the MNAR selection model: one missing value, the EM,
  weighted probit/logit regression), ``_data_augmentation`` (posterior
  draws for the normal model).
- Estimators: :class:`EMImputer` in ``_em_imputer``,
  :class:`MNARSelectionImputer` in ``_mnar_imputer``,
  :class:`MultipleImputer` in ``_multiple_imputer``,
  :class:`DeltaAdjustedImputer` in ``_delta_imputer``; shared input checks in
  ``_validation``, the automatic ridge for data without a maximum
  likelihood estimate in ``_regularise`` (its warning class in
  :mod:`emimpute.exceptions`), progress printing in ``_progress``.
- Around them: :mod:`emimpute.diagnostics` (pattern table, Little's MCAR
  test, missingness against other variables), :mod:`emimpute.ampute`
  (missing values on purpose, under MCAR, MAR or MNAR),
  :mod:`emimpute.plotting` (pattern matrix, observed against imputed
  distributions, log-likelihood trace; matplotlib imported lazily),
  :mod:`emimpute.pooling` (Rubin's rules, D1 and D2 tests),
  :mod:`emimpute.sensitivity` (delta / psi grids, tipping points),
  :mod:`emimpute.report` (the audit record in Markdown),
  :mod:`emimpute.cli` (the ``emimpute`` command; models saved as JSON by
  ``_model_io``), :mod:`emimpute.dask` (:class:`~emimpute.dask.DaskEMImputer`
  and blockwise transforms of Dask collections; imported on demand, it needs
  the ``dask`` extra), :mod:`emimpute.datasets` (example data).
"""

from emimpute.imputers._delta_imputer import DeltaAdjustedImputer
from emimpute.imputers._em_imputer import EMImputer
from emimpute.imputers._mnar_imputer import MNARSelectionImputer
from emimpute.imputers._multiple_imputer import MultipleImputer
from emimpute.imputers._t_imputer import StudentTImputer

__all__ = [
    "DeltaAdjustedImputer",
    "EMImputer",
    "MNARSelectionImputer",
    "MultipleImputer",
    "StudentTImputer",
]
__version__ = "0.1.0"
