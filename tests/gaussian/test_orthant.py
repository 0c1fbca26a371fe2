"""Orthant moments of a normal (k = 1, 2, 3) against independent references:
scipy.stats.truncnorm, scipy's bivariate normal CDF, direct numerical
integration (scipy.integrate.dblquad and a 1-D quad over the conditional
closed form; nested quad_vec for k = 3), mpmath for the far tails, Monte
Carlo, and the invariances (independence, blocks, permutations)."""

import numpy as np
import pytest
from scipy import integrate
from scipy.special import log_ndtr
from scipy.stats import multivariate_normal, norm, truncnorm

from emimpute.gaussian._orthant import (
    ACCURATE_FROM,
    bivariate_upper,
    log_bivariate_upper,
    orthant_moments,
    truncated_standard,
)


def _cov2(s1, s2, rho):
    return np.array([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]])


# ---------------------------------------------------------------- k = 1


def test_k1_matches_truncnorm():
    rng = np.random.default_rng(0)
    m = rng.normal(scale=3.0, size=200)
    s = rng.uniform(0.2, 5.0, size=200)
    out = orthant_moments(m[:, None], (s * s)[:, None, None])
    a = -m / s
    ref_mean, ref_var = truncnorm.stats(a, np.inf, loc=m, scale=s, moments="mv")
    np.testing.assert_allclose(out.mean[:, 0], ref_mean, rtol=1e-10)
    np.testing.assert_allclose(out.cov[:, 0, 0], ref_var, rtol=1e-9)
    np.testing.assert_allclose(out.log_prob, log_ndtr(m / s), rtol=1e-13)
    assert out.accurate.all()


def test_k1_far_tails_match_mpmath():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    a = np.array([-40.0, -3.0, 1.0, 2.5, 6.0, 40.0, 1e3, 1e5])
    log_prob, mean, var = truncated_standard(a)
    for i, ai in enumerate(a):
        x = mp.mpf(float(ai))
        p = mp.ncdf(-x)
        lam = mp.npdf(x) / p
        ref_var = 1 + x * lam - lam * lam if ai < 100 else None
        assert abs(log_prob[i] - float(mp.log(p))) <= 1e-14 * max(1, abs(log_prob[i]))
        assert mean[i] == pytest.approx(float(lam), rel=1e-13, abs=1e-300)
        if ref_var is not None:  # 1 - lam (lam - a) needs > 40 digits beyond
            assert var[i] == pytest.approx(float(ref_var), rel=1e-12)
    # Asymptotics for a -> inf: E = a + 1/a - 2/a^3, Var = 1/a^2 - 6/a^4.
    assert mean[-1] == pytest.approx(1e5 + 1e-5, rel=1e-15)
    assert var[-1] == pytest.approx(1e-10 - 6e-20, rel=1e-9)


def test_k1_extreme_means_are_finite():
    m = np.array([-1e3, -40.0, 40.0, 1e3, -1e8])
    out = orthant_moments(m[:, None], np.ones((5, 1, 1)))
    assert np.all(np.isfinite(out.log_prob))
    assert np.all(np.isfinite(out.mean)) and np.all(out.mean > 0)
    assert np.all(out.cov > 0)
    assert out.log_prob[0] == pytest.approx(
        -5e5 - np.log(1e3) - 0.5 * np.log(2 * np.pi)
    )
    # E[u | u > 0] = s (1/a - 2/a^3 + ...), a = -m/s: full relative accuracy
    # (m + s E[Z] would keep only 1e-4 of it at a = 1e8).
    assert out.mean[0, 0] == pytest.approx(1e-3 - 2e-9, rel=1e-12)
    assert out.mean[4, 0] == pytest.approx(1e-8, rel=1e-12)
    assert out.cov[4, 0, 0] == pytest.approx(1e-16, rel=1e-12)


# ---------------------------------------------------- bivariate probability


def test_bivariate_upper_matches_scipy_cdf():
    rng = np.random.default_rng(1)
    n = 400
    h = rng.normal(scale=2.5, size=n)
    k = rng.normal(scale=2.5, size=n)
    rho = rng.uniform(-0.95, 0.95, size=n)
    near = rng.random(n) < 0.4
    rho[near] = rng.choice([-1, 1], near.sum()) * rng.uniform(0.9, 0.9999, near.sum())
    rho[:20] = 0.0
    h[20:40] *= 4.0  # large |h|
    p = bivariate_upper(h, k, rho)
    ref = np.array(
        [
            multivariate_normal(cov=[[1, r], [r, 1]]).cdf([-hi, -ki])
            for hi, ki, r in zip(h, k, rho, strict=True)
        ]
    )
    np.testing.assert_allclose(p, ref, rtol=0, atol=1e-14)


def test_bivariate_upper_closed_forms():
    # P(Z1 > 0, Z2 > 0) = 1/4 + asin(rho) / (2 pi) (Sheppard); rho = 0 is
    # the product; infinite limits reduce to one dimension.
    rho = np.array([-0.99999, -0.93, -0.5, 0.0, 0.3, 0.924, 0.926, 0.99999])
    np.testing.assert_allclose(
        bivariate_upper(0.0, 0.0, rho), 0.25 + np.arcsin(rho) / (2 * np.pi), atol=1e-15
    )
    h = np.array([-3.0, 0.5, 7.0])
    np.testing.assert_allclose(
        bivariate_upper(h, 1.2, 0.0), norm.sf(h) * norm.sf(1.2), rtol=1e-14
    )
    np.testing.assert_allclose(bivariate_upper(h, -np.inf, 0.7), norm.sf(h), rtol=1e-13)
    with pytest.raises(ValueError, match="rho"):
        bivariate_upper(0.0, 0.0, 1.0)


# ------------------------------------------------------------- k = 2 moments


def _reference_quad(m, v):
    """E[u], Cov[u] and log P(u > 0) for k = 2 by 1-D adaptive quadrature
    (scipy.integrate.quad) over u1 of the closed-form conditional
    (inverse Mills ratio) moments of u2 given u1, centred in a second pass."""
    s1, s2 = np.sqrt(np.diag(v))
    rho = v[0, 1] / (s1 * s2)
    cs = s2 * np.sqrt(1 - rho * rho)

    def log_weight(x):
        cm = m[1] + rho * s2 * (x - m[0]) / s1
        return norm.logpdf(x, m[0], s1) + log_ndtr(cm / cs), cm

    upper = max(m[0], 0.0) + 12 * s1
    grid = np.linspace(0.0, upper, 20001)
    peak_at = grid[np.argmax(log_weight(grid)[0])]
    peak = log_weight(peak_at)[0]
    pts = [
        peak_at + d * s1
        for d in (0.0, 1e-3, 1e-2, 0.1, 1.0)
        if peak_at + d * s1 < upper
    ]

    def run(f):
        return np.array(
            [
                integrate.quad(
                    lambda x, j=j: f(x)[j],
                    0.0,
                    upper,
                    points=pts,
                    epsabs=0,
                    epsrel=1e-12,
                    limit=500,
                )[0]
                for j in range(3)
            ]
        )

    def conditional(x):
        lw, cm = log_weight(x)
        # u2 | u1 is N(cm, cs^2) truncated at 0: textbook inverse Mills
        # ratio (truncnorm.stats gives the same, 100 times slower).
        alpha = -cm / cs
        lam = np.exp(norm.logpdf(alpha) - norm.logsf(alpha))
        mu2 = cm + cs * lam
        v2 = cs * cs * (1.0 + alpha * lam - lam * lam)
        return np.exp(lw - peak), mu2, v2

    def first(x):
        w, mu2, _ = conditional(x)
        return w * np.array([1.0, x, mu2])

    mass, e1, e2 = run(first)
    e1, e2 = e1 / mass, e2 / mass

    def second(x):
        w, mu2, v2 = conditional(x)
        d1, d2 = x - e1, mu2 - e2
        return w * np.array([d1 * d1, v2 + d2 * d2, d1 * d2])

    c11, c22, c12 = run(second) / mass
    return peak + np.log(mass), np.array([e1, e2]), np.array([[c11, c12], [c12, c22]])


def _reference_dblquad(m, v):
    """The same by 2-D adaptive quadrature of the density (moderate cases)."""
    dist = multivariate_normal(m, v)
    sd = np.sqrt(np.diag(v))
    hi = np.maximum(m, 0) + 12 * sd

    def integral(g):
        return integrate.dblquad(
            lambda y, x: dist.pdf([x, y]) * g(x, y),
            0.0,
            hi[0],
            0.0,
            hi[1],
            epsabs=1e-14,
            epsrel=1e-12,
        )[0]

    p = integral(lambda x, y: 1.0)
    e = np.array([integral(lambda x, y: x), integral(lambda x, y: y)]) / p
    c11 = integral(lambda x, y: (x - e[0]) ** 2) / p
    c22 = integral(lambda x, y: (y - e[1]) ** 2) / p
    c12 = integral(lambda x, y: (x - e[0]) * (y - e[1])) / p
    return np.log(p), e, np.array([[c11, c12], [c12, c22]])


def _assert_moments(out, i, ref, rtol):
    lp, e, c = ref
    sd = np.sqrt(np.diag(c))
    assert out.log_prob[i] == pytest.approx(lp, rel=rtol, abs=rtol)
    mean_err = np.abs(out.mean[i] - e) / (np.abs(e) + sd)
    cov_err = np.abs(out.cov[i] - c) / np.outer(sd, sd)
    assert mean_err.max() <= rtol, (i, out.mean[i], e)
    assert cov_err.max() <= rtol, (i, out.cov[i], c)


CASES = [  # (m1, m2, s1, s2, rho)
    (0.0, 0.0, 1.0, 1.0, 0.0),
    (0.5, -1.0, 1.0, 2.0, 0.6),
    (-1.0, 0.7, 2.0, 0.5, -0.7),
    (1.5, 2.0, 1.5, 1.0, 0.3),
    (-0.3, -0.2, 1.0, 1.0, 0.95),
    (-0.3, 0.4, 1.0, 3.0, -0.95),
    (2.0, -2.5, 1.0, 1.0, 0.999),
    (-1.0, -1.0, 1.0, 1.0, -0.99),
    (1.0, -4.0, 0.8, 1.0, 0.9999),
    (-6.0, -5.0, 1.0, 1.0, 0.3),  # P ~ 1e-15: the tail quadrature
    (-3.0, -3.0, 1.0, 1.0, -0.9),  # P ~ 1e-43, Genz alone fails here
    (-9.0, 3.0, 1.0, 2.0, 0.8),
    # P ~ 8e-5 but a sliver: Tallis' E[Z^2] - E[Z]^2 keeps only ~1e-6 of
    # the variances, so the row must go to the tail quadrature.
    (1.652634966341095, -1.655275819624301, 1.0, 1.0, -0.99999),
]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_k2_moments_match_1d_quadrature():
    mean = np.array([c[:2] for c in CASES])
    cov = np.array([_cov2(*c[2:]) for c in CASES])
    out = orthant_moments(mean, cov)
    assert out.accurate.all()
    assert np.exp(out.log_prob[9]) < ACCURATE_FROM  # the tail path is tested
    for i in range(len(CASES)):
        _assert_moments(out, i, _reference_quad(mean[i], cov[i]), rtol=1e-9)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_k2_moments_match_dblquad(case):
    mean = np.array([CASES[case][:2]])
    cov = _cov2(*CASES[case][2:])[None]
    out = orthant_moments(mean, cov)
    _assert_moments(out, 0, _reference_dblquad(mean[0], cov[0]), rtol=1e-8)


def test_k2_zero_correlation_is_product_of_k1():
    rng = np.random.default_rng(2)
    n = 300
    m = rng.normal(scale=4.0, size=(n, 2))
    s = rng.uniform(0.3, 3.0, size=(n, 2))
    cov = np.zeros((n, 2, 2))
    cov[:, 0, 0], cov[:, 1, 1] = s[:, 0] ** 2, s[:, 1] ** 2
    out2 = orthant_moments(m, cov)
    out1 = [orthant_moments(m[:, [j]], cov[:, [j]][:, :, [j]]) for j in range(2)]
    np.testing.assert_allclose(
        out2.log_prob, out1[0].log_prob + out1[1].log_prob, rtol=1e-11, atol=1e-14
    )
    for j in range(2):
        np.testing.assert_allclose(out2.mean[:, j], out1[j].mean[:, 0], rtol=1e-10)
        np.testing.assert_allclose(out2.cov[:, j, j], out1[j].cov[:, 0, 0], rtol=1e-9)
    assert np.all(np.abs(out2.cov[:, 0, 1]) <= 1e-9 * s.prod(axis=1))


def test_k2_swap_symmetry_and_psd():
    rng = np.random.default_rng(3)
    n = 2000
    m = rng.normal(scale=3.0, size=(n, 2))
    s = rng.uniform(0.3, 3.0, size=(n, 2))
    rho = np.clip(rng.uniform(-1.1, 1.1, n), -0.99999, 0.99999)
    cov = np.stack([_cov2(*s[i], rho[i]) for i in range(n)])
    m_in, cov_in = m.copy(), cov.copy()
    out = orthant_moments(m, cov)
    np.testing.assert_array_equal(m, m_in)  # the caller's data untouched
    np.testing.assert_array_equal(cov, cov_in)
    swapped = orthant_moments(m[:, ::-1], cov[:, ::-1, ::-1])
    np.testing.assert_allclose(swapped.log_prob, out.log_prob, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(swapped.mean[:, ::-1], out.mean, rtol=1e-9, atol=1e-12)
    scale = np.sqrt(np.einsum("nii->ni", out.cov))
    cov_err = np.abs(swapped.cov[:, ::-1, ::-1] - out.cov)
    assert np.all(cov_err <= 1e-8 * scale[:, :, None] * scale[:, None, :])
    assert np.all(np.isfinite(out.log_prob)) and np.all(np.isfinite(out.cov))
    np.testing.assert_array_equal(out.cov, np.swapaxes(out.cov, 1, 2))
    assert np.all(
        np.linalg.eigvalsh(out.cov) >= -1e-12 * scale.max(axis=1)[:, None] ** 2
    )
    # Truncation to u > 0: the means are positive.
    assert np.all(out.mean > 0)


def test_k2_far_tail_matches_mpmath():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    a1, a2, rho = 3.0, 3.0, -0.9  # P ~ 1e-43: Genz's sum cancels entirely
    r = mp.sqrt(1 - mp.mpf(rho) ** 2)

    def f(z):
        return mp.npdf(z) * mp.ncdf((rho * z - a2) / r)

    pts = [a1] + [a1 + mp.mpf(10) ** e for e in np.linspace(-9, 1.5, 60)] + [mp.inf]
    log_p = float(mp.log(mp.quad(f, pts)))
    out = orthant_moments(np.array([[-a1, -a2]]), _cov2(1.0, 1.0, rho)[None])
    assert out.log_prob[0] == pytest.approx(log_p, abs=1e-10)
    assert out.accurate[0]
    both = log_bivariate_upper([a1, a2], [a2, a1], rho)
    np.testing.assert_allclose(both, log_p, rtol=0, atol=1e-10)
    # Where Genz is accurate the two agree.
    h, k, r = np.array([0.5, -1.0]), np.array([1.0, 2.0]), np.array([0.3, -0.95])
    np.testing.assert_allclose(
        log_bivariate_upper(h, k, r), np.log(bivariate_upper(h, k, r)), rtol=1e-14
    )


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        orthant_moments(np.zeros((2, 4)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="cov must have shape"):
        orthant_moments(np.zeros((2, 2)), np.zeros((2, 1, 1)))
    with pytest.raises(ValueError, match="positive"):
        orthant_moments(np.zeros((1, 1)), np.zeros((1, 1, 1)))
    with pytest.raises(ValueError, match="positive definite"):
        orthant_moments(np.zeros((1, 2)), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="finite"):
        orthant_moments(np.full((1, 1), np.nan), np.ones((1, 1, 1)))


def test_k2_extreme_inputs_are_finite():
    mean = np.array(
        [[-1e3, -1e3], [1e3, -1e3], [-40.0, 40.0], [-30.0, -30.0], [-1e6, 2.0]]
    )
    rho = [0.99999, -0.99999, 0.5, -0.99999, 0.3]
    cov = np.stack([_cov2(1.0, 1.0, r) for r in rho])
    out = orthant_moments(mean, cov)
    assert np.all(np.isfinite(out.log_prob)) and np.all(np.isfinite(out.cov))
    assert np.all(out.mean > 0)
    assert np.all(np.linalg.eigvalsh(out.cov) >= 0.0)
    np.testing.assert_array_equal(out.accurate, out.log_prob > -1e6)
    # Flagged, but still sensible: u1 far below its bound, u2 free, so u1
    # is its k = 1 tail (E ~ 1e-6, to the 1e-4 double precision leaves of
    # E[Z1] - a1 at a1 = 1e6) and u2 follows its regression on u1.
    assert out.mean[4, 0] == pytest.approx(1e-6, rel=1e-3)
    assert out.mean[4, 1] == pytest.approx(2.0 + 0.3 * (1e-6 + 1e6), rel=1e-12)
    assert out.cov[4, 1, 1] == pytest.approx(1 - 0.09, rel=1e-9)


# ------------------------------------------------------------------ k = 3


def _random_corr(rng, n, df=5):
    """Random correlation matrices (normalised Wishart with df degrees of
    freedom: small df gives strong correlations)."""
    a = rng.normal(size=(n, 3, df))
    s = a @ np.swapaxes(a, 1, 2)
    d = np.sqrt(np.einsum("nii->ni", s))
    return s / (d[:, :, None] * d[:, None, :])


def _truncnorm_moments(mu, sd):
    """Mass, first and second raw moments of N(mu, sd^2) on (0, inf)."""
    alpha = -mu / sd
    mass = norm.sf(alpha)
    lam = np.exp(norm.logpdf(alpha) - norm.logsf(alpha))
    mean = mu + sd * lam
    var = sd * sd * (1.0 + alpha * lam - lam * lam)
    return mass, mean, var + mean * mean


def _reference_3d(m, v):
    """log P(u > 0), E[u], Cov[u] for k = 3 by nested adaptive quadrature
    (scipy.integrate.quad_vec over u1, then over u2) of the closed-form
    truncated moments of u3 given (u1, u2).  Raw moments: moderate cases."""
    s = np.sqrt(np.diag(v))
    k12 = np.linalg.inv(v[:2, :2])
    beta = v[2, :2] @ k12
    sd3 = np.sqrt(v[2, 2] - beta @ v[:2, 2])
    lo = np.maximum(m, 0.0) + 10 * s
    dist12 = multivariate_normal(m[:2], v[:2, :2])

    def inner(x1):
        def g(x2):
            mu3 = m[2] + beta @ (np.array([x1, x2]) - m[:2])
            w, e3, e33 = _truncnorm_moments(mu3, sd3)
            dens = dist12.pdf([x1, x2]) * w
            x = np.array([x1, x2, e3])
            outer = np.outer(x, x)
            outer[2, 2] = e33
            return dens * np.concatenate([[1.0], x, outer[np.triu_indices(3)]])

        return integrate.quad_vec(g, 0.0, lo[1], epsabs=1e-15, epsrel=1e-11)[0]

    tot = integrate.quad_vec(inner, 0.0, lo[0], epsabs=1e-15, epsrel=1e-11)[0]
    p = tot[0]
    e = tot[1:4] / p
    raw = np.zeros((3, 3))
    raw[np.triu_indices(3)] = tot[4:] / p
    raw = raw + np.triu(raw, 1).T
    return np.log(p), e, raw - np.outer(e, e)


CASES_3D = [  # (mean, sds, correlations r12, r13, r23)
    ([0.3, -0.5, 0.8], [1.0, 2.0, 0.5], [0.5, -0.3, 0.2]),
    ([-0.5, 1.0, -1.0], [1.0, 1.0, 1.5], [0.9, 0.6, 0.7]),
    ([1.0, -0.2, 0.4], [0.7, 1.0, 1.0], [-0.8, 0.5, -0.6]),
]


def _cov3(sds, r):
    c = np.eye(3)
    c[0, 1] = c[1, 0] = r[0]
    c[0, 2] = c[2, 0] = r[1]
    c[1, 2] = c[2, 1] = r[2]
    return c * np.outer(sds, sds)


def test_k3_probability_matches_scipy_cdf():
    rng = np.random.default_rng(10)
    n = 16
    corr = _random_corr(rng, n, df=4)
    corr[:5] = _random_corr(rng, 5, df=3)  # some strong correlations
    corr[5] = _cov3([1, 1, 1], [0.99, 0.98, 0.975])
    corr[6] = _cov3([1, 1, 1], [-0.99, 0.5, -0.45])
    mean = rng.normal(scale=1.2, size=(n, 3))
    out = orthant_moments(mean, corr)
    # P(u > 0) = P(-u < 0) = Phi_3(m; R) by scipy's randomised quasi-Monte
    # Carlo.  Its own error reaches 4e-7 relative here (the spread of seeded
    # estimates on row 14), and an unseeded estimate once landed 1.5e-6 from
    # ours on row 12 and failed a CI run at rtol 1e-6.  So: the mean of
    # three seeded estimates (deterministic), to 5e-6.
    ref = np.mean(
        [
            [
                multivariate_normal(
                    np.zeros(3), corr[i], abseps=1e-12, releps=1e-10,
                    maxpts=2_000_000, seed=seed,
                ).cdf(mean[i])
                for i in range(n)
            ]
            for seed in range(3)
        ],
        axis=0,
    )  # fmt: skip
    np.testing.assert_allclose(np.exp(out.log_prob), ref, rtol=5e-6, atol=1e-12)
    assert out.accurate.all()


@pytest.mark.slow  # ~40 s of mpmath quadrature
def test_k3_tail_probability_matches_mpmath():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 30
    # P ~ 1e-12: conditioning on u1, the bivariate orthant probability of
    # (u2, u3) given u1 by mpmath's quadrature of phi(y) Phi(.) in turn.
    a = [4.0, 2.5, 3.0]
    r12, r13, r23 = 0.5, -0.2, 0.3
    s2, s3 = mp.sqrt(1 - r12**2), mp.sqrt(1 - r13**2)
    rho = (r23 - r12 * r13) / (s2 * s3)
    rr = mp.sqrt(1 - rho**2)

    def p2(z):
        b2, b3 = (a[1] - r12 * z) / s2, (a[2] - r13 * z) / s3
        return mp.quad(
            lambda y: mp.npdf(y) * mp.ncdf((rho * y - b3) / rr), [b2, b2 + 2, mp.inf]
        )

    p = mp.quad(lambda z: mp.npdf(z) * p2(z), [a[0], a[0] + 0.5, a[0] + 2, mp.inf])
    out = orthant_moments(-np.array([a]), _cov3([1, 1, 1], [r12, r13, r23])[None])
    assert out.log_prob[0] == pytest.approx(float(mp.log(p)), abs=1e-9)
    assert np.exp(out.log_prob[0]) < ACCURATE_FROM  # the tail path is tested


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("case", [0, 1])
def test_k3_moments_match_nested_quadrature(case):
    m, sds, r = CASES_3D[case]
    v = _cov3(sds, r)
    out = orthant_moments(np.array([m], dtype=float), v[None])
    _assert_moments(out, 0, _reference_3d(np.array(m, dtype=float), v), rtol=1e-8)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_k3_moments_match_nested_quadrature_more():
    m, sds, r = CASES_3D[2]
    v = _cov3(sds, r)
    out = orthant_moments(np.array([m], dtype=float), v[None])
    _assert_moments(out, 0, _reference_3d(np.array(m, dtype=float), v), rtol=1e-8)


def test_k3_moments_match_monte_carlo():
    rng = np.random.default_rng(11)
    m = np.array([0.2, -0.4, 0.5])
    v = _cov3([1.0, 1.5, 0.8], [0.6, -0.4, -0.3])
    draws = rng.multivariate_normal(m, v, size=2_000_000)
    kept = draws[np.all(draws > 0, axis=1)]
    out = orthant_moments(m[None], v[None])
    p_hat = len(kept) / len(draws)
    se_p = np.sqrt(p_hat * (1 - p_hat) / len(draws))
    assert abs(np.exp(out.log_prob[0]) - p_hat) < 5 * se_p
    se_mean = kept.std(axis=0) / np.sqrt(len(kept))
    assert np.all(np.abs(out.mean[0] - kept.mean(axis=0)) < 5 * se_mean)
    c = np.cov(kept.T)
    dev = kept - kept.mean(axis=0)
    se_cov = np.sqrt(np.var(dev[:, :, None] * dev[:, None, :], axis=0) / len(kept))
    assert np.all(np.abs(out.cov[0] - c) < 5 * se_cov)


def test_k3_zero_correlation_is_product_of_k1():
    rng = np.random.default_rng(12)
    n = 200
    m = rng.normal(scale=3.0, size=(n, 3))
    s = rng.uniform(0.3, 3.0, size=(n, 3))
    cov = np.zeros((n, 3, 3))
    for j in range(3):
        cov[:, j, j] = s[:, j] ** 2
    out3 = orthant_moments(m, cov)
    out1 = [orthant_moments(m[:, [j]], cov[:, [j]][:, :, [j]]) for j in range(3)]
    lp = sum(o.log_prob for o in out1)
    np.testing.assert_allclose(out3.log_prob, lp, rtol=1e-10, atol=1e-12)
    for j in range(3):
        np.testing.assert_allclose(out3.mean[:, j], out1[j].mean[:, 0], rtol=1e-9)
        np.testing.assert_allclose(out3.cov[:, j, j], out1[j].cov[:, 0, 0], rtol=1e-8)
    off = out3.cov[:, [0, 0, 1], [1, 2, 2]]
    assert np.all(np.abs(off) <= 1e-8 * s[:, [0, 0, 1]] * s[:, [1, 2, 2]])


def test_k3_block_diagonal_is_k2_times_k1():
    rng = np.random.default_rng(13)
    n = 300
    m = rng.normal(scale=2.0, size=(n, 3))
    s = rng.uniform(0.3, 3.0, size=(n, 3))
    rho = rng.uniform(-0.999, 0.999, size=n)
    cov = np.zeros((n, 3, 3))
    cov[:, :2, :2] = np.stack([_cov2(s[i, 0], s[i, 1], rho[i]) for i in range(n)])
    cov[:, 2, 2] = s[:, 2] ** 2
    out3 = orthant_moments(m, cov)
    out2 = orthant_moments(m[:, :2], cov[:, :2, :2])
    out1 = orthant_moments(m[:, 2:], cov[:, 2:, 2:])
    np.testing.assert_allclose(
        out3.log_prob, out2.log_prob + out1.log_prob, rtol=1e-9, atol=1e-11
    )
    scale = np.sqrt(np.einsum("nii->ni", out3.cov))
    err = np.abs(out3.mean[:, :2] - out2.mean) / (np.abs(out2.mean) + scale[:, :2])
    assert err.max() < 1e-8
    np.testing.assert_allclose(out3.mean[:, 2], out1.mean[:, 0], rtol=1e-9)
    cerr = np.abs(out3.cov[:, :2, :2] - out2.cov) / (
        scale[:, :2, None] * scale[:, None, :2]
    )
    assert cerr.max() < 1e-8
    assert np.all(np.abs(out3.cov[:, 2, :2]) <= 1e-8 * scale[:, 2:] * scale[:, :2])


def test_k3_permutation_and_psd():
    rng = np.random.default_rng(14)
    n = 400
    corr = _random_corr(rng, n, df=4)
    s = rng.uniform(0.5, 2.0, size=(n, 3))
    cov = corr * s[:, :, None] * s[:, None, :]
    m = rng.normal(scale=1.5, size=(n, 3))
    m_in, cov_in = m.copy(), cov.copy()
    out = orthant_moments(m, cov)
    np.testing.assert_array_equal(m, m_in)
    np.testing.assert_array_equal(cov, cov_in)
    perm = [2, 0, 1]
    p_out = orthant_moments(m[:, perm], cov[:, perm][:, :, perm])
    np.testing.assert_allclose(p_out.log_prob, out.log_prob, rtol=1e-9, atol=1e-11)
    scale = np.sqrt(np.einsum("nii->ni", out.cov))
    merr = np.abs(p_out.mean - out.mean[:, perm]) / (
        np.abs(out.mean[:, perm]) + scale[:, perm]
    )
    assert merr.max() < 1e-8
    sp = scale[:, perm]
    cerr = np.abs(p_out.cov - out.cov[:, perm][:, :, perm])
    assert np.all(cerr <= 1e-8 * sp[:, :, None] * sp[:, None, :])
    assert np.all(out.mean > 0) and out.accurate.all()
    assert np.all(
        np.linalg.eigvalsh(out.cov) >= -1e-10 * scale.max(axis=1)[:, None] ** 2
    )


def test_k3_bad_input():
    with pytest.raises(ValueError, match="positive definite"):
        orthant_moments(np.zeros((1, 3)), _cov3([1, 1, 1], [0.9, 0.9, -0.9])[None])
    with pytest.raises(ValueError, match="symmetric"):
        c = np.eye(3)[None].copy()
        c[0, 0, 1] = 0.5
        orthant_moments(np.zeros((1, 3)), c)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_k3_sliver_far_tail_matches_quadrature():
    # r13 = -0.97 with both bounds positive: log P ~ -2231 (a rough guess of
    # the density's peak was 700 units off and underflowed every weight).
    # Reference: adaptive quad over u3 (another component than the code
    # conditions on) of phi times log_bivariate_upper (tested vs mpmath).
    a = np.array([1.10966183, -0.29575802, 0.59896713])
    c = _cov3([1, 1, 1], [-0.13618465, -0.97177943, -0.10006555])
    perm = [2, 0, 1]
    ap, cp = a[perm], c[np.ix_(perm, perm)]
    s1, s2 = np.sqrt(1 - cp[0, 1] ** 2), np.sqrt(1 - cp[0, 2] ** 2)
    rho = (cp[1, 2] - cp[0, 1] * cp[0, 2]) / (s1 * s2)

    def ell(z):
        b1, b2 = (ap[1] - cp[0, 1] * z) / s1, (ap[2] - cp[0, 2] * z) / s2
        return norm.logpdf(z) + log_bivariate_upper(b1, b2, rho)

    grid = np.linspace(ap[0], ap[0] + 40, 4001)
    top, peak = ell(grid).max(), grid[np.argmax(ell(grid))]
    pts = [
        peak + d for d in (-0.1, -0.01, -1e-3, 0, 1e-3, 0.01, 0.1) if peak + d > ap[0]
    ]
    mass = integrate.quad(
        lambda z: np.exp(ell(z) - top),
        ap[0],
        ap[0] + 40,
        points=pts,
        epsrel=1e-13,
        limit=1000,
    )[0]
    out = orthant_moments(-a[None], c[None])
    assert out.log_prob[0] == pytest.approx(top + np.log(mass), rel=1e-11)
    assert out.accurate[0] and np.all(np.isfinite(out.cov))
