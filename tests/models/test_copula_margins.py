"""The Gaussian copula's margins against independent references: scipy's
ranks and normal quantiles, the cumulative proportions counted by pandas,
the normal's own quantiles on normal data, and exact round trips."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from emimpute.models._copula_margins import (
    fit_margin,
    from_latent,
    infer_kind,
    latent_bounds,
    latent_interval,
    to_latent,
    values_from_latent,
)


def test_continuous_latent_values_are_van_der_waerden_scores():
    """z of the observed values: Phi^-1 of their mid-ranks over n + 1,
    ties included (scipy's rankdata averages them)."""
    x = np.round(np.random.default_rng(0).lognormal(size=500), 1)  # ties
    margin = fit_margin(x, "continuous")
    reference = stats.norm.ppf(stats.rankdata(x) / (len(x) + 1))
    assert_allclose(to_latent(margin, x), reference, rtol=1e-12, atol=1e-12)


def test_on_normal_data_the_latent_value_is_the_standardised_value():
    """With a normal margin, z = Phi^-1(F(x)) = (x - mu) / sigma; the
    empirical version is within its sampling error, 4.5 standard errors
    sqrt(F (1 - F) / n) / phi(z) at each point (the delta method), and the
    tails' lines extend it with slope near 1 / sigma."""
    rng = np.random.default_rng(1)
    n = 20_000
    x = rng.normal(3.0, 2.0, size=n)
    margin = fit_margin(x, "continuous")
    truth = np.linspace(-2.3, 2.3, 50)
    grid = 3.0 + 2.0 * truth
    F = stats.norm.cdf(truth)
    standard_error = np.sqrt(F * (1 - F) / n) / stats.norm.pdf(truth)
    assert np.all(np.abs(to_latent(margin, grid) - truth) < 4.5 * standard_error)
    for _, _, slope in (margin.low, margin.high):
        assert slope == pytest.approx(0.5, rel=0.25)


def test_continuous_map_is_increasing_and_inverts_exactly():
    rng = np.random.default_rng(2)
    x = rng.gamma(2.0, size=300)
    margin = fit_margin(x, "continuous")
    new = np.sort(np.concatenate([rng.uniform(-5, 40, size=1000), x]))
    z = to_latent(margin, new)
    assert np.all(np.diff(z) > 0)  # beyond the range too
    assert_allclose(from_latent(margin, z), new, rtol=1e-12, atol=1e-12)
    # Every latent value maps to a finite value, far tails included.
    assert np.all(np.isfinite(from_latent(margin, np.linspace(-9, 9, 101))))


def test_ordinal_cut_points_are_the_cumulative_proportions():
    x = np.random.default_rng(3).choice([1, 2, 3, 4, 5], p=[0.1, 0.2, 0.4, 0.2, 0.1],
                                        size=400).astype(float)  # fmt: skip
    margin = fit_margin(x, "ordinal")
    counted = pd.Series(x).value_counts(normalize=True).sort_index().cumsum()
    assert_array_equal(margin.values, counted.index.to_numpy())
    # The top level's cut is +inf (the sum of the proportions, 1 up to
    # rounding, is not used).
    assert_allclose(margin.z[:-1], stats.norm.ppf(counted.to_numpy()[:-1]), rtol=1e-12)
    assert margin.z[-1] == np.inf
    lower, upper = latent_interval(margin, x)
    # Each value's interval has the probability of its level.
    share = stats.norm.cdf(upper) - stats.norm.cdf(lower)
    by_level = pd.Series(x).map(pd.Series(x).value_counts(normalize=True))
    assert_allclose(share, by_level.to_numpy(), rtol=1e-12)


def test_ordinal_values_map_back_to_their_own_level():
    x = np.array([0.0, 0.0, 1.0, 3.0, 3.0, 3.0, 7.0])
    margin = fit_margin(x, "ordinal")
    lower, upper = latent_interval(margin, x)
    for z in (lower, upper, 0.5 * (np.maximum(lower, -10) + np.minimum(upper, 10))):
        inside = np.clip(z, lower + 1e-12, upper)
        assert_array_equal(from_latent(margin, inside), x)
    # A level never seen is the nearest seen one; missing is the whole line.
    lower, upper = latent_interval(margin, np.array([2.4, 5.1, 100.0, np.nan]))
    assert_array_equal(upper[:3], margin.z[[2, 3, 3]])
    assert lower[3] == -np.inf and upper[3] == np.inf


def test_kinds_are_inferred_from_values_and_dtype():
    assert infer_kind(np.array([0.0, 1.0, np.nan, 1.0])) == "ordinal"
    assert infer_kind(np.arange(21.0)) == "continuous"  # too many levels
    assert infer_kind(np.array([0.5, 1.0])) == "continuous"
    assert infer_kind(np.array([1.0, 0.0]), dtype=bool) == "ordinal"


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        fit_margin(np.array([1.0]), "circular")


@st.composite
def mixed_columns(draw):
    """A matrix of 2-40 rows: a continuous column (floats, ties allowed) and
    an ordinal one (a few integer levels), each with some NaN but at least
    one observed value."""
    n = draw(st.integers(2, 40))
    finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    continuous = draw(st.lists(finite, min_size=n, max_size=n))
    ordinal = draw(st.lists(st.integers(-3, 7), min_size=n, max_size=n))
    X = np.column_stack([continuous, ordinal]).astype(float)
    hide = np.array(draw(st.lists(st.booleans(), min_size=2 * n, max_size=2 * n)))
    hide = hide.reshape(n, 2)
    hide[0] = False  # an observed value in each column
    X[hide] = np.nan
    return X


@settings(max_examples=150, deadline=None)
@given(X=mixed_columns(), z=st.lists(st.floats(-40, 40), min_size=1, max_size=20))
def test_values_from_any_latent_value_are_valid(X, z):
    """Whatever the latent value, the value it maps to is one the column can
    take: a level seen in fit for the ordinal column, a finite number for
    the continuous one (increasing in z); and an observed cell's own
    interval maps back to its own value."""
    margins = [
        fit_margin(X[~np.isnan(X[:, 0]), 0], "continuous"),
        fit_margin(X[~np.isnan(X[:, 1]), 1], "ordinal"),
    ]
    Z = np.repeat(np.sort(np.asarray(z))[:, None], 2, axis=1)
    values = values_from_latent(Z, margins)
    assert np.all(np.isfinite(values[:, 0]))
    # Increasing, to rounding: linear interpolation between two observed
    # values rounds on their scale, not the result's.
    steps = np.diff(values[:, 0])
    scale = np.abs(margins[0].values).max()
    assert np.all(steps >= -4 * np.spacing(scale))
    assert set(values[:, 1]) <= set(X[~np.isnan(X[:, 1]), 1])
    lower, upper = latent_bounds(X, margins)
    inside = np.clip(np.zeros(X.shape), lower, upper)  # a point of each interval
    inside = np.where(lower == upper, lower, np.clip(inside, lower + 1e-9, upper))
    back = values_from_latent(inside, margins)
    seen = ~np.isnan(X)
    assert_allclose(back[seen], X[seen], rtol=1e-9, atol=1e-9 * np.abs(X[seen]).max())


def test_tails_stay_finite_when_values_are_a_denormal_apart():
    """Found by the property test: two values 5e-324 apart gave an
    infinite tail slope and NaN values."""
    margin = fit_margin(np.array([0.0, 5e-324]), "continuous")
    assert np.all(np.isfinite(from_latent(margin, np.linspace(-40, 40, 81))))
    z = to_latent(margin, np.array([-1e10, 1e10]))
    assert np.all(np.isfinite(z)) and z[0] < 0 < z[1]


def test_tails_are_increasing_for_data_far_from_zero():
    """Found by the property test: a tail line written as an intercept
    lost digits when the values reached 2e5, and values just beyond the
    range came back 3e-11 below the last one."""
    x = np.array([-204416.0, -204416.0, -0.0625, 0.0, 0.0])
    margin = fit_margin(x, "continuous")
    end = margin.z[-1]
    z = end + np.array([-1e-12, 0.0, 1e-12, 1e-9, 1e-6, 1.0])
    values = from_latent(margin, z)
    assert np.all(np.diff(values) >= 0)
    assert values[1] == 0.0


def test_a_censored_margin_ranks_the_censored_values_lowest():
    from scipy import special

    from emimpute.models._copula_margins import censored_cells

    x = np.array([0.5, 0.5, 0.5, 1.0, 2.0, 4.0, 8.0])  # 0.5: "below 0.5"
    margin = fit_margin(x, "continuous", limit=0.5)
    # n = 7, three censored: the detected values' mid-ranks are 4..7 over 8.
    np.testing.assert_allclose(margin.z[1:], special.ndtri(np.arange(4, 8) / 8))
    assert margin.values[0] == 0.5 and margin.z[0] == special.ndtri(3.5 / 8)
    X = np.array([[0.2], [0.5], [2.0], [np.nan]])
    lower, upper = latent_bounds(X, [margin])
    assert np.isneginf(lower[:2, 0]).all() and (upper[:2, 0] == margin.z[0]).all()
    assert lower[2, 0] == upper[2, 0] == special.ndtri(5 / 8)
    assert_array_equal(censored_cells(X, [margin])[:, 0], [True, True, False, False])
    # Below the limit: the log-scale line through (log 0.5, z_limit) fitted
    # to the lower half of the points, so values stay positive and the map
    # inverts there.
    deep = np.array([-12.0, -3.0, margin.z[0] - 0.1])
    back = from_latent(margin, deep)
    assert np.all((back > 0) & (back < 0.5))
    np.testing.assert_allclose(to_latent(margin, back), deep, rtol=1e-12)


def test_an_upper_limit_mirrors_a_lower_one():
    from emimpute.models._copula_margins import (
        censored_cells,
        margin_from_state,
        margin_state,
    )

    # On the data's scale (values of both signs near each limit, so both
    # tails are lines, not log-lines), x censored above 1 is -x censored
    # below -1 turned round: the mid-ranks mirror exactly (the upper cut
    # point at Phi^-1((n - c + 1/2) / (n + 1))).
    x = np.random.default_rng(0).normal(size=400)
    x = np.minimum(x, 1.0)
    above = fit_margin(x, "continuous", upper_limit=1.0)
    below = fit_margin(-x, "continuous", limit=-1.0)
    assert not above.log_high and not below.log_low
    assert_allclose(above.values, -below.values[::-1])
    assert_allclose(above.z, -below.z[::-1], atol=1e-12)
    assert_allclose(above.high, np.multiply(below.low, [-1, -1, 1]), atol=1e-12)
    X = np.array([[1.0], [3.0], [0.0], [np.nan]])
    lower, upper = latent_bounds(X, [above])
    assert (lower[:2, 0] == above.z[-1]).all() and np.isposinf(upper[:2, 0]).all()
    assert_array_equal(censored_cells(X, [above])[:, 0], [True, True, False, False])
    # Beyond it values are above the limit, and the map inverts there.
    high = np.array([above.z[-1] + 0.1, 3.0])
    back = from_latent(above, high)
    assert np.all(back > 1.0)
    assert_allclose(to_latent(above, back), high, rtol=1e-12)
    # Positive values near an upper limit: a log-line, as a lower limit's.
    incomes = np.minimum(np.exp(np.random.default_rng(1).normal(size=400)), 2.0)
    top_coded = fit_margin(incomes, "continuous", upper_limit=2.0)
    assert top_coded.log_high and top_coded.censored_above
    state = margin_state(top_coded)
    assert margin_state(margin_from_state(state)) == state
    assert state["upper_limit"] == 2.0 and state["log_high"]
