"""The standardising scale and the ridge prior built on it, written once.

Kernels (``emimpute.engine``, ``emimpute.models``) import this module: it
uses NumPy only.  The EM fits, the automatic ridge and the
data-augmentation sampler all measure columns by the same scale, so the
ridge prior means the same thing in every one of them.
"""

import numpy as np


def standardising_scale(scale):
    """Column scales for the prior and the tolerances.

    Parameters
    ----------
    scale : ndarray of shape (p,)
        The observed standard deviations (divisor n_obs) of the columns.

    Returns
    -------
    ndarray of shape (p,)
        ``scale`` where it is finite and positive; 1 where a constant or
        empty column has no scale of its own (keeps the arithmetic finite).

    Examples
    --------
    >>> import numpy as np
    >>> standardising_scale(np.array([2.0, 0.0, np.nan]))
    array([2., 1., 1.])
    """
    scale = np.asarray(scale, dtype=np.float64)
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def ridge_scatter(scale, ridge=1.0):
    """The scatter matrix of the ridge (inverse-Wishart) prior.

    ``ridge * diag(s**2)``, s the standardising scale: the prior adds
    ``ridge`` pseudo-observations with the observed variances and no
    correlation (the M-step ``S = (n S_ml + ridge diag(s**2)) / (n + ridge)``
    and the P-step of data augmentation, Schafer 1997, sec. 5.2.3).

    Parameters
    ----------
    scale : ndarray of shape (p,)
        Observed column standard deviations (made safe by
        :func:`standardising_scale`).
    ridge : float, default=1.0
        Prior strength in pseudo-observations.

    Returns
    -------
    ndarray of shape (p, p)

    Examples
    --------
    >>> import numpy as np
    >>> ridge_scatter(np.array([2.0, np.nan]), ridge=3.0)
    array([[12.,  0.],
           [ 0.,  3.]])
    """
    return float(ridge) * np.diag(standardising_scale(scale) ** 2)
