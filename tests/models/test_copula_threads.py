"""Row blocks on threads: the results do not depend on how many threads
run them."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.testing import assert_array_equal

from emimpute import GaussianCopulaImputer
from emimpute.models import _copula_threads


def test_fit_and_imputations_are_the_same_with_one_thread_or_several(monkeypatch):
    rng = np.random.default_rng(0)
    n = 3 * _copula_threads.MIN_ROW_BLOCK + 500  # three blocks
    z = rng.multivariate_normal(np.zeros(3), 0.5 * np.eye(3) + 0.5, size=n)
    X = np.column_stack(
        [np.exp(z[:, 0]), np.digitize(z[:, 1], [-1, 0, 1]), z[:, 2] > 0]
    )
    X = np.where(rng.random(X.shape) < 0.2, np.nan, X.astype(float))

    def fit_transform():
        imputer = GaussianCopulaImputer(max_iter=45, random_state=0)
        fitted = imputer.fit(X).correlation_, imputer.transform(X)
        # fit_transform: the fit's sweeps feed the imputation's tallies
        together = GaussianCopulaImputer(max_iter=45, random_state=0)
        return (*fitted, together.fit_transform(X))

    several = fit_transform()
    one = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(_copula_threads, "_pool", lambda: one)
    alone = fit_transform()
    for ours, theirs in zip(several, alone, strict=True):
        assert_array_equal(ours, theirs)
