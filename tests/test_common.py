"""scikit-learn's estimator checks, run on every estimator of the package:
every registered imputer (so a new model joins by registering itself), and
the imputers built on others."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from emimpute import DeltaAdjustedImputer, GaussianCopulaImputer, MultipleImputer
from emimpute.dask import (
    DaskEMImputer,
    DaskGaussianCopulaImputer,
    DaskGaussianMixtureImputer,
    DaskMNARSelectionImputer,
    DaskStudentTImputer,
)
from emimpute.imputers._registry import registered_imputers

ESTIMATORS = [
    *(entry.estimator() for entry in registered_imputers()),
    # Seeded: with random_state=None the copula's Gibbs sampler makes it
    # non-deterministic, and scikit-learn skips four checks of the default
    # instance above for that reason; seeded, they run.
    GaussianCopulaImputer(random_state=0),
    MultipleImputer(n_imputations=3),
    DeltaAdjustedImputer(delta=0.5),
    DaskEMImputer(),  # in-memory input; Dask input in tests/test_dask.py
    DaskStudentTImputer(),
    DaskMNARSelectionImputer(),
    DaskGaussianCopulaImputer(random_state=0),
    DaskGaussianMixtureImputer(),
]

# Every entry needs a reason: these are checks whose premise does not hold.
# (None today.  The skips in this module are scikit-learn's own: its
# array-API check skips itself unless SCIPY_ARRAY_API=1 is set, and these
# estimators are NumPy-only, array_api_support=False; and four checks skip
# the unseeded, non-deterministic GaussianCopulaImputer, run seeded.)
EXPECTED_FAILURES = {}


def test_every_registered_imputer_is_checked():
    checked = {type(estimator) for estimator in ESTIMATORS}
    assert {entry.estimator for entry in registered_imputers()} <= checked
    assert len(registered_imputers()) >= 3  # em, mnar and t at least


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILURES.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
