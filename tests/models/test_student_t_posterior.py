"""Data augmentation for the multivariate t (emimpute/models/_student_t_posterior.py):
the I-step's draws against the closed-form conditional t, the P-step's
draws against the inverse-Wishart and normal moments, and the chain against
the maximum likelihood estimate it should wander around."""

import numpy as np
from numpy.testing import assert_allclose

from emimpute.models._normal_posterior import parameter_draw
from emimpute.models._student_t import conditional_t, fit_student_t_em
from emimpute.models._student_t_posterior import impute_step, t_data_augmentation

SCALE = np.array([[1.0, 0.6, 0.3], [0.6, 2.0, 0.4], [0.3, 0.4, 1.5]])
MEAN = np.array([1.0, -1.0, 0.0])


def test_the_i_step_draws_from_the_conditional_t():
    """Weights then normal cells: integrated over the weight, the missing
    cells follow the conditional t of conditional_t (closed form)."""
    df, n = 8.0, 200_000
    X = np.array([[2.5, np.nan, np.nan], [np.nan, 0.3, np.nan]])
    reference = conditional_t(X, MEAN, SCALE, df, want_variance=True)
    completed, weights = impute_step(
        np.repeat(X, n, axis=0), MEAN, SCALE, df, np.random.RandomState(0)
    )
    assert (weights > 0).all()
    for i, row in enumerate(X):
        draws = completed[i * n : (i + 1) * n]
        missing = np.isnan(row)
        assert (draws[:, ~missing] == row[~missing]).all()
        variance = reference.variance[i, missing]
        # A t with dof = df + 1 = 9: excess kurtosis 6 / (dof - 4) = 1.2, so
        # the sample variance has standard error var * sqrt((2 + 1.2) / n).
        assert_allclose(
            draws[:, missing].mean(axis=0),
            reference.completed[i, missing],
            atol=5 * np.sqrt(variance.max() / n),
        )
        assert_allclose(
            draws[:, missing].var(axis=0), variance, rtol=5 * np.sqrt(3.2 / n)
        )


def test_the_p_step_draws_have_the_posterior_moments():
    """S ~ inverse-Wishart(n - 1, A_w) has mean A_w / (n - 1 - p - 1); mu
    given S is centred at the weighted mean."""
    rng = np.random.RandomState(1)
    completed = rng.normal(size=(30, 3))
    weights = rng.gamma(2.0, 0.5, size=30)
    centre = weights @ completed / weights.sum()
    deviation = completed - centre
    scatter = (deviation * weights[:, None]).T @ deviation
    draws = [parameter_draw(completed, rng, weights=weights) for _ in range(20_000)]
    means = np.array([mean for mean, _ in draws])
    scales = np.array([scale for _, scale in draws])
    expected = scatter / (30 - 1 - 3 - 1)
    # Monte Carlo: each mean of 20,000 draws within 5 of its standard errors.
    assert_allclose(
        scales.mean(axis=0),
        expected,
        atol=5 * scales.std(axis=0).max() / np.sqrt(len(draws)),
    )
    assert_allclose(
        means.mean(axis=0),
        centre,
        atol=5 * means.std(axis=0).max() / np.sqrt(len(draws)),
    )


def test_the_chain_wanders_around_the_maximum_likelihood_estimate():
    """With n = 400 rows the posterior is close to normal about the MLE: the
    average of the chain's location draws is within a few of its own
    standard deviations of the EM estimate."""
    rng = np.random.RandomState(2)
    X = MEAN + rng.standard_t(5, size=(400, 3)) @ np.linalg.cholesky(SCALE).T
    X[rng.random_sample(X.shape) < 0.2] = np.nan
    fit = fit_student_t_em(X, df=5.0, tol=1e-10)
    mean, scale, locations = fit.mean, fit.scale, []
    for _ in range(300):
        _, mean, scale = t_data_augmentation(X, mean, scale, 5.0, 2, rng)
        locations.append(mean)
    locations = np.array(locations)
    spread = locations.std(axis=0)
    assert (spread > 0).all()
    assert np.all(np.abs(locations.mean(axis=0) - fit.mean) < 4 * spread)
