"""SQUAREM's extrapolation, and the unconstrained log-Cholesky
parameterisation of a covariance it extrapolates on.

The loop that uses them is :func:`emimpute.engine._driver.run_em`.

References
----------
Varadhan, R. & Roland, C. (2008). Simple and globally convergent methods for
accelerating the convergence of any EM algorithm. *Scand. J. Stat.* 35,
335-353.
"""

import numpy as np


def log_cholesky(covariance):
    """The lower triangle of chol(S), diagonal logged: unconstrained, and any
    value maps back to a positive definite matrix (:func:`from_log_cholesky`)."""
    factor = np.linalg.cholesky(covariance)
    rows, cols = np.tril_indices(len(covariance))
    values = factor[rows, cols].copy()
    diagonal = rows == cols
    values[diagonal] = np.log(values[diagonal])
    return values


def from_log_cholesky(values, p):
    """Inverse of :func:`log_cholesky` for a p x p matrix."""
    rows, cols = np.tril_indices(p)
    values = np.array(values[: len(rows)], dtype=float)
    diagonal = rows == cols
    values[diagonal] = np.exp(values[diagonal])
    factor = np.zeros((p, p))
    factor[rows, cols] = values
    return factor @ factor.T


def extrapolate(t0, t1, t2, step_max):
    """S3 step: (t0 + 2 a r + a^2 v, a) with a = |r| / |v| in [1, step_max],
    or (None, a) when there is no usable direction."""
    r = t1 - t0
    v = t2 - 2.0 * t1 + t0
    norm_v = np.linalg.norm(v)
    if norm_v == 0.0:
        return None, 1.0
    alpha = float(np.clip(np.linalg.norm(r) / norm_v, 1.0, step_max))
    point = t0 + 2.0 * alpha * r + alpha**2 * v
    return (point if np.all(np.isfinite(point)) else None), alpha
