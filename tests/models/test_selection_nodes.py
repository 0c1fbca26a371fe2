"""Where the selection E-step puts its nodes and which rows share an array
of them (:mod:`emimpute.models._selection_nodes`), against independent
references: every partition of the sizes tried, the E-step without any
split, and 2-D numerical integration of a row's posterior moments."""

import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, special, stats

from emimpute.models import _selection_nodes as selection_nodes
from emimpute.models._selection import SelectionModel, fit_selection_em
from emimpute.models._selection_impute import selection_moments
from emimpute.models._selection_nodes import size_buckets


def padded_cost(sizes, buckets, bucket_cost):
    """Nodes of the rows padded to their bucket's largest size, plus the
    cost of the buckets."""
    parts = [np.arange(len(sizes)) if isinstance(b, slice) else b for b in buckets]
    return sum(len(b) * sizes[b].max() + bucket_cost for b in parts)


def cheapest_by_enumeration(sizes, bucket_cost):
    """The least cost over every split of the sorted distinct sizes into
    runs (2^(m-1) of them)."""
    distinct = np.unique(sizes)
    best = np.inf
    for cuts in itertools.product([False, True], repeat=len(distinct) - 1):
        edges = [0, *(i + 1 for i, cut in enumerate(cuts) if cut), len(distinct)]
        cost = 0.0
        for lo, hi in itertools.pairwise(edges):
            rows = (sizes >= distinct[lo]) & (sizes <= distinct[hi - 1])
            cost += rows.sum() * distinct[hi - 1] + bucket_cost
        best = min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_buckets_are_the_cheapest_split(seed):
    rng = np.random.default_rng(seed)
    rule_sizes = [12, 16, 20, 24, 32, 48, 96, 180, 228]
    sizes = rng.choice(rule_sizes, size=rng.integers(1, 400))
    bucket_cost = float(rng.choice([0, 100, 1000, 4000, 1e9]))
    buckets = size_buckets(sizes, bucket_cost)
    parts = [np.arange(len(sizes)) if isinstance(b, slice) else b for b in buckets]
    # Every row in exactly one bucket, buckets of neighbouring sizes.
    assert_allclose(np.sort(np.concatenate(parts)), np.arange(len(sizes)))
    tops = [sizes[b].max() for b in parts]
    bottoms = [sizes[b].min() for b in parts]
    assert all(t < b for t, b in zip(tops, bottoms[1:], strict=False))
    assert padded_cost(sizes, buckets, bucket_cost) == pytest.approx(
        cheapest_by_enumeration(sizes, bucket_cost)
    )


def mixed_steepness_model():
    """A logit model whose rows need rules of many sizes: x0 MNAR with psi
    held at 2.2 per SD (rows with x1 and x2 missing have a steeper
    curve), x1 MNAR too (rows with two MNAR cells), x2 MCAR."""
    rng = np.random.default_rng(3)
    cov = np.array([[1.0, 0.7, 0.5], [0.7, 1.0, 0.3], [0.5, 0.3, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), cov, size=400)
    X[rng.random(400) < special.expit(-0.5 + 2.0 * X[:, 0]), 0] = np.nan
    X[rng.random(400) < 0.3, 1] = np.nan
    X[rng.random(400) < 0.3, 2] = np.nan
    model = SelectionModel.from_data(X, [0, 1], link="logit", psi={0: 2.2})
    return model, model.start()


def test_the_split_into_buckets_leaves_every_statistic_unchanged(monkeypatch):
    """An exact identity on fixed inputs: a row's nodes and weights do not
    depend on the rows it shares an array with (padding has weight 0)."""
    model, params = mixed_steepness_model()
    monkeypatch.setattr(selection_nodes, "BUCKET_COST", 1e18)
    whole = model.e_step(params)
    monkeypatch.setattr(selection_nodes, "BUCKET_COST", 0.0)
    split = model.e_step(params)
    assert split.loglik == pytest.approx(whole.loglik, rel=1e-13)
    assert_allclose(split.row_sum, whole.row_sum, rtol=1e-13, atol=1e-11)
    assert_allclose(split.cross, whole.cross, rtol=1e-13, atol=1e-11)
    for a, b in zip(split.selection, whole.selection, strict=True):
        assert_allclose(a.weights.sum(), b.weights.sum(), rtol=1e-13)
        assert_allclose(a.weights @ a.values, b.weights @ b.values, rtol=1e-12)


def test_a_missing_mar_cell_follows_its_mnar_neighbour():
    """Rows with x0 missing (MNAR, logit) and x1 missing (no model): the
    posterior mean and variance of both cells against 2-D adaptive
    quadrature of N((x0, x1); c, C) sigma(a + psi x0) with the fit's
    parameters (x2 observed)."""
    rng = np.random.default_rng(5)
    cov = np.array([[1.0, 0.6, 0.4], [0.6, 1.0, 0.3], [0.4, 0.3, 1.0]])
    X = rng.multivariate_normal([1.0, 0.0, -1.0], cov, size=300)
    X[rng.random(300) < special.expit(-0.5 + 1.5 * X[:, 0]), 0] = np.nan
    X[rng.random(300) < 0.4, 1] = np.nan
    result = fit_selection_em(X, [0], link="logit", tol=1e-9)
    moments = selection_moments(X, result, want_variance=True)
    both = np.flatnonzero(np.isnan(X[:, 0]) & np.isnan(X[:, 1]))[:3]
    assert len(both) == 3
    mean, S = result.mean, result.covariance
    for r in both:
        x2 = X[r, 2]
        c = mean[:2] + S[:2, 2] / S[2, 2] * (x2 - mean[2])
        C = S[:2, :2] - np.outer(S[:2, 2], S[:2, 2]) / S[2, 2]
        a = result.intercept[0] + result.gamma[0, 0] * x2
        density = stats.multivariate_normal(c, C).pdf
        sd = np.sqrt(np.diag(C))

        def integral(g, c=c, sd=sd, density=density, a=a):
            value, _ = integrate.dblquad(
                lambda x1, x0: g(x0, x1)
                * density([x0, x1])
                * special.expit(a + result.psi[0] * x0),
                c[0] - 12 * sd[0], c[0] + 12 * sd[0],
                c[1] - 12 * sd[1], c[1] + 12 * sd[1],
                epsabs=1e-13, epsrel=1e-11,
            )  # fmt: skip
            return value

        total = integral(lambda x0, x1: 1.0)
        for j in (0, 1):
            m = integral(lambda x0, x1, j=j: (x0, x1)[j]) / total
            v = integral(lambda x0, x1, j=j, m=m: ((x0, x1)[j] - m) ** 2) / total
            assert moments.completed[r, j] == pytest.approx(m, abs=1e-8)
            assert moments.variance[r, j] == pytest.approx(v, abs=1e-8)
