"""Weighted probit / logit regression against direct maximisation with
scipy.optimize and against replicated rows."""

import numpy as np
import pytest
from scipy import optimize, special, stats

from emimpute.models._binary_glm import (
    fit_binary_glm,
    log_cdf,
    log_probabilities,
    weighted_loglik,
)


def simulated(n, link, seed):
    rng = np.random.default_rng(seed)
    design = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    index = design @ np.array([-0.3, 0.8, -0.5])
    p = special.expit(index) if link == "logit" else special.ndtr(index)
    return design, rng.random(n) < p, rng.uniform(0.2, 2.0, size=n), rng


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_weighted_fit_is_the_maximum(link):
    design, outcome, weights, _ = simulated(500, link, 0)
    offset = 0.3 * design[:, 1]
    fit = fit_binary_glm(design, outcome, weights, link=link, offset=offset)
    assert fit.converged

    def negative(coef):
        return -weighted_loglik(coef, design, outcome, weights, link, offset)

    reference = optimize.minimize(negative, np.zeros(3), method="BFGS",
                                  options={"gtol": 1e-10})  # fmt: skip
    np.testing.assert_allclose(fit.coef, reference.x, atol=1e-6)
    assert fit.loglik >= -reference.fun - 1e-9


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_integer_weights_equal_replicated_rows(link):
    design, outcome, _, rng = simulated(200, link, 1)
    counts = rng.integers(1, 4, size=200)
    weighted = fit_binary_glm(design, outcome, counts, link=link)
    replicated = fit_binary_glm(
        np.repeat(design, counts, axis=0), np.repeat(outcome, counts), link=link
    )
    # Newton stops at a step below tol = 1e-10 and converges quadratically, so
    # each fit is within ~tol**2 of the optimum: what is left is the rounding
    # of sums over 200 or ~400 rows in another order (n eps ~ 1e-13).
    np.testing.assert_allclose(weighted.coef, replicated.coef, rtol=1e-9)
    assert weighted.loglik == pytest.approx(replicated.loglik, rel=1e-12)


def test_recovers_the_truth_in_a_large_sample():
    design, outcome, _, _ = simulated(200_000, "probit", 2)
    fit = fit_binary_glm(design, outcome, link="probit")
    np.testing.assert_allclose(fit.coef, [-0.3, 0.8, -0.5], atol=0.02)


def test_separated_data_do_not_converge_but_never_go_down():
    x = np.array([-2.0, -1.0, 1.0, 2.0])
    fit = fit_binary_glm(np.column_stack([np.ones(4), x]), x > 0, link="logit",
                         max_iter=30)  # fmt: skip
    assert not fit.converged
    assert fit.loglik > 4 * np.log(0.5)


def test_unknown_link():
    with pytest.raises(ValueError, match="link"):
        fit_binary_glm(np.ones((2, 1)), [0, 1], link="cloglog")


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_log_cdf_in_both_tails(link):
    # Against scipy's distributions: the normal and the logistic.
    x = np.array([-40.0, -8.0, -1.0, 0.0, 0.5, 8.0, 40.0])
    law = stats.norm if link == "probit" else stats.logistic
    np.testing.assert_allclose(log_cdf(x, link), law.logcdf(x), rtol=1e-12)
    log_p, log_q = log_probabilities(x, link)
    np.testing.assert_allclose(log_p, law.logcdf(x), rtol=1e-12)
    np.testing.assert_allclose(log_q, law.logsf(x), rtol=1e-12)


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_reported_loglik_is_the_weighted_loglik(link):
    # The value carried through the Newton steps (taken from the score
    # pass) is the log-likelihood at the coefficients returned.
    rng = np.random.default_rng(3)
    design = np.column_stack([np.ones(300), rng.normal(size=300)])
    outcome = rng.random(300) < special.expit(0.3 + design[:, 1])
    weights = rng.uniform(0.1, 2.0, 300)
    for max_iter in (0, 1, 2, 50):
        fit = fit_binary_glm(
            design, outcome, weights, link=link, max_iter=max_iter, offset=0.2
        )
        direct = weighted_loglik(fit.coef, design, outcome, weights, link, 0.2)
        assert np.isclose(fit.loglik, direct, rtol=1e-12)
