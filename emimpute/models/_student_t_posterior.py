"""Data augmentation for the multivariate t (statistical kernel).

The t as a scale mixture, x | w ~ N(mu, S / w), w ~ Gamma(nu/2, rate nu/2),
makes the Gibbs sampler of the normal model (:mod:`._normal_posterior`)
work with one more draw per row (Liu & Rubin 1995, sec. 5; Liu 1995):

* I-step: for each row, w_i ~ Gamma((nu + p_o,i)/2, rate (nu + d_i^2)/2),
  its conditional given the observed cells (d_i^2 the observed-part
  Mahalanobis distance), then the missing cells ~ N(c_i, C_i / w_i), with
  c_i and C_i the normal conditional mean and covariance under (mu, S).
  Integrating w out gives the conditional t of the missing cells.
* P-step: given the completed rows and the weights, with the Jeffreys
  prior (plus a ridge as an inverse-Wishart prior): S ~ inverse-Wishart(
  n - 1 + prior_df, A_w + prior_scatter), A_w = sum w_i (x_i - xbar_w)
  (x_i - xbar_w)' about the weighted mean xbar_w, then mu | S ~ N(xbar_w,
  S / sum w_i).

The degrees of freedom nu stay at the value given (the fitted ``df_``): the
draws reflect the uncertainty about the location, the scale and the missing
values, not about nu, whose posterior is flat far into the normal limit.

References
----------
Liu, C. & Rubin, D. B. (1995). ML estimation of the t distribution using EM
and its extensions, ECM and ECME. *Statistica Sinica* 5, 19-39.
Liu, C. (1995). Missing data imputation using the multivariate t
distribution. *J. Multivariate Anal.* 53, 139-158.
Schafer, J. L. (1997). *Analysis of Incomplete Multivariate Data*, sec. 5.4.
"""

import numpy as np

from emimpute.gaussian._conditional import conditional_moments
from emimpute.models._normal_posterior import parameter_draw
from emimpute.models._student_t import conditional_t


def draw_weights(X, mean, scale, df, rng):
    """Each row's weight w_i drawn from its conditional given the observed
    cells: Gamma((nu + p_o)/2, rate (nu + d^2)/2).  The expected weight
    (nu + p_o)/(nu + d^2) of :func:`conditional_t` gives the rate."""
    n_observed = np.count_nonzero(~np.isnan(X), axis=1)
    shape = 0.5 * (df + n_observed)
    expected = conditional_t(X, mean, scale, df).weights
    return rng.gamma(shape, 1.0 / (shape / expected))


def impute_step(X, mean, scale, df, rng):
    """One I-step: the completed rows and the weights they were drawn with."""
    weights = draw_weights(X, mean, scale, df, rng)
    centre = conditional_moments(X, mean, scale).completed
    draw = conditional_moments(X, mean, scale, rng=rng).completed
    # N(c, C / w) from a draw of N(c, C); observed cells (draw == centre) stay.
    completed = centre + (draw - centre) / np.sqrt(weights)[:, None]
    return completed, weights


def t_data_augmentation(
    X, mean, scale, df, n_iter, rng, prior_scatter=None, prior_df=0.0
):
    """Run ``n_iter`` I-steps (a P-step between each) from (mean, scale).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        NaN at missing cells.
    mean, scale : ndarrays
        Where the chain starts (the EM estimate: the burn-in is then short).
    df : float
        Degrees of freedom, held fixed.
    n_iter : int
        Number of I-steps; the last one's draw is returned.
    rng : numpy.random.RandomState
    prior_scatter, prior_df : optional
        An inverse-Wishart prior (a ridge) added to the P-step.

    Returns
    -------
    completed : ndarray of shape (n, p)
    mean, scale : ndarrays
        The parameters the last draw was made under.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> X = rng.standard_t(5, size=(50, 2))
    >>> X[::4, 1] = np.nan
    >>> completed, mean, scale = t_data_augmentation(
    ...     X, np.zeros(2), np.eye(2), 5.0, n_iter=3, rng=rng)
    >>> bool(np.isnan(completed).any()), completed[1, 1] == X[1, 1]
    (False, np.True_)
    """
    if n_iter < 1:
        raise ValueError(f"n_iter must be at least 1, got {n_iter}")
    for iteration in range(n_iter):
        completed, weights = impute_step(X, mean, scale, df, rng)
        if iteration == n_iter - 1:
            break
        mean, scale = parameter_draw(
            completed, rng, prior_scatter, prior_df, weights=weights
        )
    return completed, mean, scale
