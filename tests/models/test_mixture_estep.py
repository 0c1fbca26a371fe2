"""The mixture's compiled E-step (``mixture_rows`` in
emimpute/gaussian/_fast_estep.c, driven by emimpute.models._mixture_estep)
against a reference computed row by row with numpy.linalg and scipy: each
component's observed-part density, the responsibilities, the conditional
means and covariances, and the weighted sums built from them.

Tolerances: the same sums at the same parameters by another order of
operations, so relative 1e-9 (conditioning of the covariances ~1e2 times
sums over ~1e3 rows).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from emimpute.gaussian import _compiled
from emimpute.gaussian._conditional import plan_chunks
from emimpute.models._mixture import (
    MixtureParams,
    _in_memory_statistics,
    mixture_conditional,
    mixture_statistics,
)
from emimpute.models._mixture_estep import MixtureLayout

P = 15  # k from 0 to 14: the kernels specialised for k <= 12 and the generic one


def mixture(seed, n_components=3, p=P):
    """Random well-conditioned components with unequal weights."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_components, p, p)) / np.sqrt(p)
    covariances = np.einsum("kij,klj->kil", A, A) + 0.3 * np.eye(p)
    means = rng.normal(scale=2.0, size=(n_components, p))
    weights = rng.dirichlet(np.full(n_components, 3.0))
    return MixtureParams(weights, means, covariances), rng


def incomplete_rows(params, n, rng):
    """Rows of the mixture with every number of missing cells from 0 (whole
    rows) to p (a row with nothing observed)."""
    labels = rng.choice(len(params.weights), size=n, p=params.weights)
    factors = np.linalg.cholesky(params.covariances)[labels]
    p = params.means.shape[1]
    X = params.means[labels] + np.einsum("nij,nj->ni", factors, rng.normal(size=(n, p)))
    rates = rng.uniform(0.0, 1.0, size=(n, 1))
    X[rng.random(X.shape) < rates] = np.nan
    X[: p + 1] = np.where(np.arange(p) < np.arange(p + 1)[:, None], np.nan, X[: p + 1])
    return X


def components(params):
    """The kernel's precisions and log pi_c - log det S_c / 2."""
    precisions = np.linalg.inv(params.covariances)
    logdets = np.linalg.slogdet(params.covariances)[1]
    return precisions, np.log(params.weights) - 0.5 * logdets


def reference(X, params):
    """Per row, with scipy and numpy.linalg: log tau, the rows' log densities
    and the sums of MixtureStatistics (rows with nothing observed left out)."""
    K, p = params.means.shape
    resp_sum, row_sum, cross = np.zeros(K), np.zeros((K, p)), np.zeros((K, p, p))
    total, taus, means = 0.0, [], []
    for x in X:
        m = np.isnan(x)
        o = ~m
        if m.all():
            continue
        parts = zip(params.weights, params.means, params.covariances, strict=True)
        log_dens, completed, conditional = [], [], []
        for w, mu, S in parts:
            density = stats.multivariate_normal(mu[o], S[np.ix_(o, o)])
            log_dens.append(np.log(w) + density.logpdf(x[o]))
            gain = np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, m)]).T
            xhat = x.copy()
            xhat[m] = mu[m] + gain @ (x[o] - mu[o])
            C = np.zeros((p, p))
            C[np.ix_(m, m)] = S[np.ix_(m, m)] - gain @ S[np.ix_(o, m)]
            completed.append(xhat)
            conditional.append(C)
        log_dens = np.array(log_dens)
        row = np.logaddexp.reduce(log_dens)
        tau = np.exp(log_dens - row)
        total += row
        taus.append(tau)
        means.append(tau @ np.array(completed))
        for c in range(K):
            resp_sum[c] += tau[c]
            row_sum[c] += tau[c] * completed[c]
            cross[c] += tau[c] * (np.outer(completed[c], completed[c]) + conditional[c])
    return total, resp_sum, row_sum, cross, np.array(taus), np.array(means)


@pytest.mark.parametrize("n_threads", [1, 3])
def test_the_statistics_equal_the_row_by_row_reference(
    n_threads, monkeypatch, compiled_path
):
    monkeypatch.setattr(_compiled, "MIN_ROWS_PER_THREAD", 1)
    params, rng = mixture(0)
    X = incomplete_rows(params, 400, rng)
    layout = MixtureLayout.of(X)
    assert {missing.shape[0] for _, missing in layout.blocks} == set(range(1, P))
    assert len(layout.complete) >= 1
    resp_sum, row_sum, cross, loglik = _compiled.mixture_blocks(
        layout.blocks, params.means, *components(params), n_threads=n_threads
    )
    # The kernel's part: the incomplete rows (those with something observed).
    partial = X[layout.incomplete_rows]
    want = reference(partial, params)
    assert loglik == pytest.approx(want[0], rel=1e-11)
    assert_allclose(resp_sum, want[1], rtol=1e-10)
    assert_allclose(row_sum, want[2], rtol=1e-9, atol=1e-9)
    assert_allclose(cross, want[3], rtol=1e-9, atol=1e-9)


def test_the_e_step_equals_the_reference_and_the_numpy_path(kernel):
    """The whole E-step (complete rows through BLAS), compiled or NumPy."""
    params, rng = mixture(1)
    X = incomplete_rows(params, 300, rng)
    found = _in_memory_statistics(X)(params)
    loglik, resp_sum, row_sum, cross, _, _ = reference(X, params)
    assert found.loglik == pytest.approx(loglik, rel=1e-11)
    assert_allclose(found.resp_sum, resp_sum, rtol=1e-10)
    assert_allclose(found.row_sum, row_sum, rtol=1e-9, atol=1e-9)
    assert_allclose(found.cross, cross, rtol=1e-9, atol=1e-9)


def test_responsibilities_means_and_row_logliks_for_transform(compiled_path):
    """mixture_conditional without draws or variances runs on the kernel
    (rows with nothing observed get the weights and the mixture's mean)."""
    params, rng = mixture(2)
    X = incomplete_rows(params, 200, rng)
    out = mixture_conditional(X, params)
    _, _, _, _, tau, means = reference(X, params)
    seen = ~np.isnan(X).all(axis=1)
    assert_allclose(out.responsibilities[seen], tau, rtol=1e-9, atol=1e-12)
    assert_allclose(out.completed[seen], means, rtol=1e-9, atol=1e-9)
    blank = np.count_nonzero(~seen)
    assert blank >= 1
    assert_allclose(out.responsibilities[~seen], np.tile(params.weights, (blank, 1)))
    mixture_mean = params.weights @ params.means
    assert_allclose(out.completed[~seen], np.tile(mixture_mean, (blank, 1)))
    observed = ~np.isnan(X)
    assert np.array_equal(out.completed[observed], X[observed])
    numpy_path = mixture_conditional(X, params, want_variance=True)
    assert_allclose(out.loglik, numpy_path.loglik, rtol=1e-11, atol=1e-12)


def test_a_component_of_weight_zero_takes_no_rows(compiled_path):
    params, rng = mixture(3)
    X = incomplete_rows(params, 200, rng)
    emptied = MixtureParams(
        np.array([0.0, *params.weights[1:] / params.weights[1:].sum()]),
        params.means,
        params.covariances,
    )
    found = _in_memory_statistics(X)(emptied)
    assert found.resp_sum[0] == 0.0
    assert np.isfinite(found.loglik)
    assert_allclose(found.resp_sum.sum(), (~np.isnan(X).all(axis=1)).sum())


def test_the_threads_split_the_rows_without_changing_the_sums(monkeypatch):
    """The split of rows among threads changes only the order of the sums."""
    if not _compiled.available():
        pytest.skip("the compiled E-step is switched off or absent")
    params, rng = mixture(4, p=8)
    X = incomplete_rows(params, 30_000, rng)
    layout = MixtureLayout.of(X)
    args = (layout.blocks, params.means, *components(params))
    one = _compiled.mixture_blocks(*args, n_threads=1)
    four = _compiled.mixture_blocks(*args, n_threads=4)
    for a, b in zip(one, four, strict=True):
        assert_allclose(a, b, rtol=1e-12)


def test_a_singular_block_is_reported_as_no_statistics():
    """K_mm of a 'precision' that is not positive definite fails the
    Cholesky in the kernel: the E-step says None, as the NumPy one does."""
    if not _compiled.available():
        pytest.skip("the compiled E-step is switched off or absent")
    X = np.array([[np.nan, np.nan, 1.0]] * 3)
    layout = MixtureLayout.of(X)
    bad = np.array([[[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    with pytest.raises(np.linalg.LinAlgError):
        _compiled.mixture_blocks(layout.blocks, np.zeros((1, 3)), bad, np.zeros(1))


@pytest.mark.parametrize(
    "change",
    [
        {"means": lambda a: a[:, :2].copy()},
        {"precisions": lambda a: a[:1].copy()},
        {"cross": lambda a: a[:-1].copy()},
        {"missing": lambda a: a + 3},
        {"resp": lambda a: a[:2].copy()},
    ],
    ids=[
        "short means",
        "one precision",
        "short cross",
        "column out of range",
        "short resp",
    ],  # fmt: skip
)
def test_bad_buffers_raise_instead_of_crashing(change):
    if not _compiled.available():
        pytest.skip("the compiled E-step is switched off or absent")
    K, p, n = 2, 3, 4
    args = {
        "data": np.ones((n, p)),
        "missing": np.zeros((1, n), dtype=np.int64),
        "first_row": 0,
        "means": np.zeros((K, p)),
        "precisions": np.tile(np.eye(p), (K, 1, 1)),
        "log_norm": np.zeros(K),
        "resp_sum": np.zeros(K),
        "row_sum": np.zeros(K * p),
        "cross": np.zeros(K * p * p),
        "loglik": None,
        "resp": np.zeros((n, K)),
    }
    ((name, modify),) = change.items()
    args[name] = modify(args[name])
    with pytest.raises(ValueError):
        _compiled._fast_estep.mixture_rows(*args.values())


def test_the_numpy_path_plans_the_same_rows():
    """The NumPy E-step (the fallback) is given the same rows."""
    params, rng = mixture(5, p=5)
    X = incomplete_rows(params, 100, rng)
    seen = X[~np.isnan(X).all(axis=1)]
    mask = np.isnan(seen)
    numpy_stats = mixture_statistics(
        seen, params, plan_chunks(mask, np.flatnonzero(mask.any(axis=1)))
    )
    assert numpy_stats.loglik == pytest.approx(reference(X, params)[0], rel=1e-11)
