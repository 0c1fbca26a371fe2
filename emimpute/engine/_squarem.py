"""The EM iteration loop with SQUAREM acceleration, shared by every EM fit.

Each fit supplies its E-step (``evaluate``), M-step (``em_map``), objective
and a map of its parameters to an unconstrained vector; the loop below
does the rest: SQUAREM's S3 extrapolation with the adaptive step bound of
Varadhan & Roland (2008), a stabilising EM step after each extrapolation,
and a fall-back to the plain double EM step whenever the extrapolated point
does not raise the objective, so the objective never decreases.

References
----------
Varadhan, R. & Roland, C. (2008). Simple and globally convergent methods for
accelerating the convergence of any EM algorithm. *Scand. J. Stat.* 35,
335-353.
"""

from dataclasses import dataclass

import numpy as np


class SingularCovarianceError(ValueError):
    """The covariance estimate became singular (no finite likelihood)."""


@dataclass(frozen=True)
class Iterations:
    """Outcome of :func:`iterate`."""

    params: tuple
    stats: tuple  # the E-step at ``params``; stats[2] is the log-likelihood
    value: float  # the objective at ``params``
    path: list  # log-likelihood after each iteration
    n_iter: int
    n_steps: int  # evaluations of the EM map
    converged: bool


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


def _extrapolate(t0, t1, t2, step_max):
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


def iterate(
    params,
    *,
    evaluate,
    em_map,
    objective,
    to_vector,
    from_vector,
    change,
    max_iter,
    tol,
    accelerate=True,
    callback=None,
    singular_message="the covariance estimate became singular",
):
    """Run EM (optionally SQUAREM-accelerated) from ``params``.

    Parameters
    ----------
    params : tuple
        The starting parameters.
    evaluate : callable
        ``evaluate(params) -> stats`` (the E-step), or None when the
        covariance is not positive definite; ``stats[2]`` is the
        observed-data log-likelihood at ``params``.
    em_map : callable
        ``em_map(params, stats) -> params`` (the M-step).
    objective : callable
        ``objective(params, stats) -> float``, the value EM increases (the
        log-likelihood, plus the log prior of a ridge).
    to_vector, from_vector : callables
        Parameters to an unconstrained vector and back (``from_vector``
        receives the vector and the parameters it extrapolates from).
    change : callable
        ``change(old, new) -> float``, compared with ``tol``.
    max_iter, tol : int and float
        Stop when ``change`` and the relative change of the objective are
        both below ``tol``.
    accelerate : bool
    callback : callable, optional
        ``callback(iteration, loglik, change)``.

    Returns
    -------
    Iterations

    Raises
    ------
    SingularCovarianceError
    """

    def checked(candidate):
        stats = evaluate(candidate)
        if stats is None:
            raise SingularCovarianceError(singular_message)
        return stats

    stats = checked(params)
    value = objective(params, stats)
    path, n_steps, converged, step_max, iteration = [], 0, False, 1.0, 0
    for iteration in range(1, max_iter + 1):
        params1 = em_map(params, stats)
        stats1 = checked(params1)
        n_steps += 1
        new_params, new_stats = params1, stats1
        if accelerate:
            params2 = em_map(params1, stats1)
            try:
                vectors = [to_vector(p) for p in (params, params1, params2)]
                point, alpha = _extrapolate(*vectors, step_max)
            except np.linalg.LinAlgError:
                point, alpha = None, 1.0
            extrapolated = None if point is None else from_vector(point, params)
            stats_x = None if extrapolated is None else evaluate(extrapolated)
            n_steps += stats_x is not None
            if stats_x is not None and objective(extrapolated, stats_x) >= value:
                new_params = em_map(extrapolated, stats_x)  # the stabilising step
                if alpha == step_max:
                    step_max *= 4.0
            else:
                new_params = params2
                if alpha == step_max:
                    step_max = max(1.0, step_max / 4.0)
            new_stats = checked(new_params)
            n_steps += 1
        new_value = objective(new_params, new_stats)
        step_change = change(params, new_params)
        value_change = abs(new_value - value) / max(abs(new_value), 1.0)
        params, stats, value = new_params, new_stats, new_value
        path.append(stats[2])
        if callback is not None:
            callback(iteration, stats[2], step_change)
        if step_change < tol and value_change < tol:
            converged = True
            break
    return Iterations(params, stats, value, path, iteration, n_steps, converged)
