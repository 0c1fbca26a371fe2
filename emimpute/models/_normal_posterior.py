"""Data augmentation for the multivariate normal (statistical kernel).

Posterior draws of the missing values *and* the parameters, by the
two-step Gibbs sampler of Tanner & Wong (1987) as in Schafer (1997,
sec. 5.4) and R's ``norm::da.norm``:

* I-step: draw each row's missing cells from N(c, C) given its observed
  cells and the current (mu, S)
  (:func:`emimpute.gaussian._conditional.conditional_moments`);
* P-step: draw (mu, S) from their posterior given the completed data,
  S ~ inverse-Wishart(n - 1 + prior_df, A + prior_scatter), with A the
  completed data's scatter matrix about its mean, then
  mu | S ~ N(ybar, S / n) (the Jeffreys prior when there is no ridge;
  Schafer 1997, sec. 5.2.2).

After enough iterations the I-step's draw is a proper imputation: it
reflects the uncertainty about the parameters as well as about the missing
values.
"""

import numpy as np
from scipy import stats

from emimpute.gaussian._conditional import conditional_moments


def parameter_draw(completed, rng, prior_scatter=None, prior_df=0.0, weights=None):
    """One P-step: (mu, S) drawn from their posterior given complete data.

    With ``weights`` (the multivariate t's, given the row weights: Liu 1995)
    the mean and scatter are the weighted ones and mu | S ~ N(xbar_w,
    S / sum w); without, every row weighs 1.
    """
    n, p = completed.shape
    if weights is None:
        total, mean = n, completed.mean(axis=0)
        centred = completed - mean
        scatter = centred.T @ centred
    else:
        total = weights.sum()
        mean = weights @ completed / total
        centred = completed - mean
        scatter = (centred * weights[:, None]).T @ centred
    if prior_scatter is not None:
        scatter = scatter + prior_scatter
    df = n - 1 + prior_df
    if df <= p - 1:
        raise ValueError(
            f"data augmentation needs more rows than columns (n={n}, p={p}); "
            "use a ridge prior"
        )
    covariance = stats.invwishart.rvs(df=df, scale=scatter, random_state=rng)
    covariance = np.atleast_2d(covariance)
    draw = rng.multivariate_normal(mean, covariance / total)
    return draw, covariance


def data_augmentation(
    X, mean, covariance, n_iter, rng, prior_scatter=None, prior_df=0.0
):
    """Run ``n_iter`` I-steps (with a P-step between each) from (mean, cov).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        NaN at missing cells.
    mean, covariance : ndarrays
        Where the chain starts (the EM estimate is a good start: burn-in is
        then short).
    n_iter : int
        Number of I-steps; the last one's draw is returned.
    rng : numpy.random.RandomState
    prior_scatter, prior_df : optional
        An inverse-Wishart prior (a ridge), added to the scatter and the
        degrees of freedom of the P-step.

    Returns
    -------
    completed : ndarray of shape (n, p)
        The last I-step's draw.
    mean, covariance : ndarrays
        The parameters that draw was made under.
    """
    if n_iter < 1:
        raise ValueError(f"n_iter must be at least 1, got {n_iter}")
    for iteration in range(n_iter):
        completed = conditional_moments(X, mean, covariance, rng=rng).completed
        if iteration == n_iter - 1:
            break
        mean, covariance = parameter_draw(completed, rng, prior_scatter, prior_df)
    return completed, mean, covariance
