"""emimpute: Expectation-Maximization imputers compatible with scikit-learn.

Layout (three layers, one folder each)
--------------------------------------
- Statistical kernels, NumPy/SciPy only: ``engine`` (the model interface
  ``EMModel``, the one driver ``run_em`` with SQUAREM and the stopping rule,
  the automatic ridge; ``run_saem``, stochastic approximation EM),
  ``models`` (one module per model: the multivariate normal, the MNAR
  selection model, the multivariate t, the Gaussian copula, and their
  posterior draws), ``gaussian`` (conditional moments through the precision matrix,
  batched Cholesky factorisations, the compiled E-step).
- Estimators, in ``imputers``: the shared base ``BaseEMImputer``, one thin
  shell per model (:class:`EMImputer`, :class:`MNARSelectionImputer`,
  :class:`StudentTImputer`, :class:`GaussianCopulaImputer`,
  :class:`GaussianMixtureImputer`), the imputers
  built on others (:class:`MultipleImputer`, :class:`DeltaAdjustedImputer`), and the
  registry through which the command line, model files, reports, multiple
  imputation and Dask find every model.
- Around them, public modules: :mod:`emimpute.diagnostics` (pattern table,
  Little's MCAR test, missingness against other variables),
  :mod:`emimpute.ampute` (missing values on purpose, under MCAR, MAR or
  MNAR), :mod:`emimpute.plotting` (matplotlib imported lazily),
  :mod:`emimpute.pooling` (Rubin's rules, D1 and D2 tests),
  :mod:`emimpute.sensitivity` (delta / psi grids, tipping points),
  :mod:`emimpute.report` (the audit record in Markdown),
  :mod:`emimpute.cli` (the ``emimpute`` command; model files as JSON),
  :mod:`emimpute.dask` (Dask collections; needs the ``dask`` extra),
  :mod:`emimpute.datasets` (example data), :mod:`emimpute.exceptions`.
- ``utils``: input checks, column names, seeding, the standardising scale,
  scikit-learn compatibility imports, progress output.
"""

from emimpute.imputers._copula_imputer import GaussianCopulaImputer
from emimpute.imputers._delta_imputer import DeltaAdjustedImputer
from emimpute.imputers._em_imputer import EMImputer
from emimpute.imputers._mixture_imputer import GaussianMixtureImputer
from emimpute.imputers._mnar_imputer import MNARSelectionImputer
from emimpute.imputers._multiple_imputer import MultipleImputer
from emimpute.imputers._t_imputer import StudentTImputer

__all__ = [
    "DeltaAdjustedImputer",
    "EMImputer",
    "GaussianCopulaImputer",
    "GaussianMixtureImputer",
    "MNARSelectionImputer",
    "MultipleImputer",
    "StudentTImputer",
]
__version__ = "0.1.0"
