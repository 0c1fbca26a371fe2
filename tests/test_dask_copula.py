"""DaskGaussianCopulaImputer: the copula's fit block by block, against the
in-memory fit of the same data."""

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

from emimpute import GaussianCopulaImputer  # noqa: E402
from emimpute.dask import DaskGaussianCopulaImputer  # noqa: E402


def mixed(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(np.zeros(4), 0.5 * np.eye(4) + 0.5, size=n)
    X = np.column_stack(
        [np.exp(z[:, 0]), np.digitize(z[:, 1], [-1, 0, 1]), z[:, 2] > 0,
         np.argmax(z[:, [3]] * [1, -1, 0.3] + rng.normal(size=(n, 3)), axis=1)]
    ).astype(float)  # fmt: skip
    X[rng.random(X.shape) < 0.2] = np.nan
    return X


KINDS = {3: "nominal"}


def test_the_blockwise_fit_has_the_in_memory_margins_and_correlation():
    X = mixed()
    local = GaussianCopulaImputer(kinds=KINDS, random_state=0).fit(X)
    remote = DaskGaussianCopulaImputer(kinds=KINDS, random_state=0)
    remote.fit(da.from_array(X, chunks=(700, 4)))
    assert remote.n_blocks_ == 5
    assert list(remote.kinds_) == list(local.kinds_)
    for mine, theirs in zip(remote._margins, local._margins, strict=True):
        np.testing.assert_array_equal(mine.values, theirs.values)
        np.testing.assert_array_equal(mine.z, theirs.z)
    # Two SAEM runs with other draws: each within its Monte Carlo error
    # (0.005 on the statistic, about twice that on R), plus the M-step's.
    np.testing.assert_allclose(remote.correlation_, local.correlation_, atol=0.04)
    # Repeatable with random_state.
    again = DaskGaussianCopulaImputer(kinds=KINDS, random_state=0)
    again.fit(da.from_array(X, chunks=(700, 4)))
    np.testing.assert_array_equal(again.correlation_, remote.correlation_)


def test_the_fit_on_a_cluster_of_worker_processes_equals_the_local_one(
    dask_cluster_client,
):
    # The same seeds per block and iteration: the same draws wherever the
    # tasks run (and the tasks and their states pickle to the workers).
    X = mixed(1200, seed=3)
    chunks = da.from_array(X, chunks=(400, 4))
    remote = DaskGaussianCopulaImputer(kinds=KINDS, random_state=0).fit(chunks)
    with dask.config.set(scheduler="synchronous"):
        local = DaskGaussianCopulaImputer(kinds=KINDS, random_state=0).fit(chunks)
    np.testing.assert_allclose(remote.correlation_, local.correlation_, atol=1e-12)


def test_a_dask_frame_is_imputed_lazily_with_valid_values():
    X = mixed(seed=1)
    frame = pd.DataFrame(X, columns=["amount", "stars", "flag", "colour"])
    lazy_frame = dd.from_pandas(frame, npartitions=3)
    imputer = DaskGaussianCopulaImputer(kinds={"colour": "nominal"}, random_state=0)
    imputer.fit(lazy_frame)
    assert list(imputer.feature_names_in_) == list(frame.columns)
    out = imputer.transform(lazy_frame).compute()
    assert not out.isna().any().any()
    for column in ("stars", "flag", "colour"):
        assert set(out[column]) <= set(frame[column].dropna())
    local = imputer.to_local()
    assert type(local) is GaussianCopulaImputer
    assert not hasattr(local, "n_blocks_")
    np.testing.assert_array_equal(local.correlation_, imputer.correlation_)


def test_in_memory_input_is_the_plain_fit():
    X = mixed(500, seed=2)
    imputer = DaskGaussianCopulaImputer(random_state=0).fit(X)
    plain = GaussianCopulaImputer(random_state=0).fit(X)
    assert imputer.n_blocks_ == 0
    np.testing.assert_array_equal(imputer.correlation_, plain.correlation_)
