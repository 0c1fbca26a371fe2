"""fit_transform's imputations: the fit's sweeps after its burn-in count
among the imputation's sweeps (emimpute.models._copula_impute.fit_tallies)."""

import numpy as np
import pytest

from emimpute import GaussianCopulaImputer
from emimpute.models import _copula_impute, _copula_threads
from emimpute.models._copula import BURN_IN
from emimpute.models._copula_posterior import imputation_sweeps


def _data(seed=0, n=3000):
    """Latent correlations of 0.5; log-normal, cubed normal, two ordinal
    (5 levels) and two binary columns; 20% MCAR holes."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(6), 0.5 * np.eye(6) + 0.5, size=n)
    X = np.column_stack([
        np.exp(z[:, 0]), z[:, 1] ** 3,
        np.digitize(z[:, 2], [-1.2, -0.4, 0.3, 1.0]),
        np.digitize(z[:, 3], [-0.5, 0.0, 0.5, 1.5]),
        z[:, 4] > 0.5, z[:, 5] > -0.2,
    ]).astype(float)  # fmt: skip
    return np.where(rng.random(X.shape) < 0.2, np.nan, X)


@pytest.mark.parametrize("averaged", [15, 150])
def test_the_fits_averaged_sweeps_are_counted_and_only_the_rest_run(
    monkeypatch, averaged
):
    X = _data()
    runs = []
    run_chain = _copula_impute.run_chain

    def recorded(Z, tally, precision, rng, burn_in, n_sweeps):
        runs.append((tally.n_terms, burn_in, n_sweeps))
        run_chain(Z, tally, precision, rng, burn_in, n_sweeps)
        runs.append(tally.n_terms)

    monkeypatch.setattr(_copula_impute, "run_chain", recorded)
    imputer = GaussianCopulaImputer(max_iter=BURN_IN + averaged, tol=0, random_state=0)
    imputer.fit_transform(X)
    wanted = imputation_sweeps(len(X))
    # One chain (3,000 rows: one row block): it starts holding the fit's
    # averaged sweeps, runs no burn-in and only the sweeps short of the
    # imputation's number, and ends with at least that many.
    assert runs == [(averaged, 0, max(wanted - averaged, 0)), max(wanted, averaged)]


def _mean_differences(A, B, missing):
    """Per column, the mean absolute difference of two imputations of the
    missing cells, over the mean absolute deviation of B's from their median
    (differences of Monte Carlo error are a few per cent of it)."""
    out = []
    for j in range(A.shape[1]):
        rows = missing[:, j]
        spread = np.mean(np.abs(B[rows, j] - np.median(B[rows, j])))
        out.append(np.mean(np.abs(A[rows, j] - B[rows, j])) / spread)
    return np.array(out)


def test_fit_transform_imputes_as_fit_then_transform_up_to_monte_carlo_error(
    monkeypatch,
):
    # Small row blocks (five, and the chained rows of each a subset of its
    # rows) check that the fit's tallies are put back on their own rows.
    monkeypatch.setattr(_copula_threads, "MAX_ROW_BLOCK", 700)
    X = _data(1)
    missing = np.isnan(X)
    together = GaussianCopulaImputer(random_state=0)
    imputed = together.fit_transform(X)
    apart = GaussianCopulaImputer(random_state=0).fit(X)
    # The tallies take no random numbers: the fit is the same.
    np.testing.assert_array_equal(together.correlation_, apart.correlation_)
    reference = apart.transform(X)
    apart.random_state = 1  # another chain for the same fit
    other_chain = apart.transform(X)
    # fit_transform differs from transform by no more than two transforms'
    # independent chains differ from each other (0.03-0.08 of the spread per
    # column, ratio 0.5-1.2 between the two); rows mismatched between the
    # fit's tallies and the data would differ by about the spread itself.
    ours = _mean_differences(imputed, reference, missing)
    chains = _mean_differences(other_chain, reference, missing)
    assert np.mean(ours) < 1.5 * np.mean(chains), (ours, chains)
    assert np.max(ours) < 0.15, ours
