"""The standard normal on an interval against independent references:
mpmath's arbitrary-precision quadrature (wide, narrow and far-tail
intervals), the one-sided truncation of ``_orthant``, and scipy's
``truncnorm`` distribution for the draws."""

import mpmath
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from emimpute.gaussian._interval import interval_moments, sample_interval
from emimpute.gaussian._orthant import truncated_standard

INF = np.inf
INTERVALS = [
    (-INF, INF), (0.0, INF), (-INF, -1.0), (-0.3, 0.7), (1.2, 2.5),  # wide
    (-2.0, -1.9999), (0.4, 0.4 + 1e-9), (-1e-7, 2e-7), (3.0, 3.049),  # narrow
    (-9.0, -8.0), (-41.0, -40.0), (-60.0, -59.999), (35.0, INF),  # far tails
    (-INF, -45.0), (7.9, 8.2), (-8.1, 1.0), (-30.0, 30.0), (5.0, 12.0),
]  # fmt: skip


def reference(a, b):
    """log P, mean and variance by mpmath quadrature at 40 digits, the
    density taken relative to its value at the point of (a, b] nearest 0
    (so that far tails do not underflow)."""
    mpmath.mp.dps = 40
    a_, b_ = (
        mpmath.mpf(v) if np.isfinite(v) else mpmath.inf * np.sign(v) for v in (a, b)
    )
    z0 = min(max(mpmath.mpf(0), a_), b_)
    points = [a_, *([z0] if a_ < z0 < b_ else []), b_]

    def moment(k, centre=0):
        return mpmath.quad(
            lambda z: (z - centre) ** k * mpmath.exp(-(z * z - z0 * z0) / 2), points
        )

    mass = moment(0)
    mean = moment(1) / mass
    var = moment(2, mean) / mass
    log_prob = mpmath.log(mass) - z0 * z0 / 2 - mpmath.log(mpmath.sqrt(2 * mpmath.pi))
    return float(log_prob), float(mean), float(var)


@pytest.mark.parametrize(("a", "b"), INTERVALS)
def test_moments_match_arbitrary_precision_quadrature(a, b):
    log_prob, mean, var = (v[0] for v in interval_moments([a], [b]))
    ref = reference(a, b)
    assert log_prob == pytest.approx(ref[0], rel=1e-12, abs=1e-13)
    # The mean to 1e-12 of the interval's own scale (its sd) or better.
    assert mean == pytest.approx(ref[1], rel=1e-13, abs=1e-12 * np.sqrt(ref[2]))
    assert var == pytest.approx(ref[2], rel=1e-9)


def test_the_upper_tail_is_the_lower_one_turned():
    a = np.array([-3.0, -50.0, 0.2, -INF])
    b = np.array([-1.0, -49.5, 0.2 + 1e-6, 4.0])
    lp, m, v = interval_moments(a, b)
    lp_t, m_t, v_t = interval_moments(-b, -a)
    assert_allclose(lp_t, lp, rtol=1e-14)
    assert_allclose(m_t, -m, rtol=1e-14)
    assert_allclose(v_t, v, rtol=1e-14)


def test_one_sided_intervals_agree_with_the_orthant_truncation():
    a = np.array([-3.0, -0.5, 0.0, 2.0, 6.0, 9.0, 25.0])
    log_prob, mean, var = interval_moments(a, INF)
    ref_log_prob, ref_mean, ref_var = truncated_standard(a)
    assert_allclose(log_prob, ref_log_prob, rtol=1e-12)
    assert_allclose(mean, ref_mean, rtol=1e-12)
    assert_allclose(var, ref_var, rtol=1e-9)


@pytest.mark.parametrize(
    ("a", "b"), [(-0.3, 0.7), (1.5, INF), (-INF, -3.0), (-3.1, -3.0)]
)
def test_draws_follow_the_truncated_normal(a, b):
    """Kolmogorov-Smirnov against scipy's truncnorm (a test of level
    1e-4 on fixed seeds), and the draws' mean within 5 standard errors of
    the computed one."""
    z = sample_interval(np.full(20_000, a), b, np.random.default_rng(0))
    assert np.all((z >= a) & (z <= b))
    assert stats.kstest(z, stats.truncnorm(a, b).cdf).pvalue > 1e-4
    _, mean, var = interval_moments(a, b)
    assert abs(z.mean() - mean) < 5 * np.sqrt(var / len(z))


def test_draws_stay_inside_far_tail_and_narrow_intervals():
    a = np.array([-60.0, 45.0, 0.3, -INF, 38.0])
    b = np.array([-59.0, 46.0, 0.3 + 1e-12, -40.0, INF])
    z = sample_interval(np.tile(a, 1000), np.tile(b, 1000), np.random.default_rng(1))
    assert np.all(np.isfinite(z))
    assert np.all((z >= np.tile(a, 1000)) & (z <= np.tile(b, 1000)))
    # The draws' mean in the far tail: within 5 standard errors.
    _, mean, var = interval_moments(-60.0, -59.0)
    assert abs(z[::5].mean() - mean) < 5 * np.sqrt(var / 1000)


def random_intervals(n, seed):
    """Lower bounds uniform on (-70, 70), widths log-uniform 1e-10 .. 100,
    some bounds infinite."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-70, 70, n)
    b = a + 10.0 ** rng.uniform(-10, 2, n)
    a[rng.random(n) < 0.1] = -INF
    b[rng.random(n) < 0.1] = INF
    return list(zip(a.tolist(), b.tolist(), strict=True))


@pytest.mark.parametrize(("a", "b"), random_intervals(40, seed=7))
def test_random_intervals_match_arbitrary_precision_quadrature(a, b):
    test_moments_match_arbitrary_precision_quadrature(a, b)
