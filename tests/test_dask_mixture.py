"""DaskGaussianMixtureImputer: the mixture's E-step summed over blocks,
against the in-memory E-step and fit of the same data."""

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

from emimpute import GaussianMixtureImputer  # noqa: E402
from emimpute._dask_mixture import _e_step  # noqa: E402
from emimpute.dask import DaskGaussianMixtureImputer, column_passes  # noqa: E402
from emimpute.models._mixture import (  # noqa: E402
    _in_memory_statistics,
    initial_params,
)


def clustered(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0, 0.0], [5.0, 2.0, -3.0], [-4.0, 5.0, 2.0]])
    labels = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    X = means[labels] + rng.normal(size=(n, 3)) @ np.array(
        [[1.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]
    )
    X[rng.random(X.shape) < 0.2] = np.nan
    X[::97] = np.nan  # some rows with nothing observed
    return X


def test_the_blockwise_statistics_are_the_in_memory_ones():
    X = clustered()
    blocks = da.from_array(X, chunks=(300, 3)).to_delayed().ravel().tolist()
    columns = column_passes(blocks)
    Z = (X - columns.center) / columns.scale
    start = initial_params(
        Z[~np.isnan(Z).all(axis=1)], 3, "kmeans", np.random.default_rng(0), 0.0,
        "full", columns.scale,
    )  # fmt: skip
    summed = _e_step(blocks, columns, start)
    local = _in_memory_statistics(Z)(start)
    # The same sums in another order: equal to rounding.
    assert np.isclose(summed.loglik, local.loglik, rtol=1e-12)
    for name in ("resp_sum", "row_sum", "cross"):
        np.testing.assert_allclose(
            getattr(summed, name), getattr(local, name), rtol=1e-10, atol=1e-9
        )


def test_the_blockwise_fit_reaches_the_in_memory_fit(fit_tolerance):
    X = clustered(seed=1)
    local = GaussianMixtureImputer(n_components=3, tol=1e-9, random_state=0).fit(X)
    remote = DaskGaussianMixtureImputer(n_components=3, tol=1e-9, random_state=0)
    remote.fit(da.from_array(X, chunks=(500, 3)))
    assert remote.n_blocks_ == 4
    # Other starts (the first block's k-means), the same maximum: within the
    # stopping rule's distance of it (tests/conftest.py), on the
    # standardised scale.
    order, local_order = np.argsort(remote.means_[:, 0]), np.argsort(local.means_[:, 0])
    scale = np.nanstd(X, axis=0)
    tol = 10 * fit_tolerance(1e-9)
    np.testing.assert_allclose(
        remote.means_[order] / scale, local.means_[local_order] / scale, atol=tol
    )
    np.testing.assert_allclose(
        remote.weights_[order], local.weights_[local_order], atol=tol
    )
    np.testing.assert_allclose(remote.loglik_, local.loglik_, rtol=1e-8)
    # transform of Dask input: lazy, block by block, the fitted model's.
    lazy = remote.transform(da.from_array(X, chunks=(500, 3)))
    np.testing.assert_allclose(
        lazy.compute(), GaussianMixtureImputer.transform(remote, X), rtol=1e-12
    )
