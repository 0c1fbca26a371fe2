"""The one EM driver: any :class:`~emimpute.engine._model.EMModel`, plain or
SQUAREM-accelerated, with the stopping rule and the log-likelihood path.

The loop is SQUAREM's S3 scheme with the adaptive step bound of Varadhan &
Roland (2008), a stabilising EM step after each extrapolation, and a
fall-back to the plain double EM step whenever the extrapolated point does
not raise the objective, so the objective never decreases.  Models with
several modes get :func:`best_start`: short runs from each candidate, the
best one continued.

References
----------
Varadhan, R. & Roland, C. (2008). Simple and globally convergent methods for
accelerating the convergence of any EM algorithm. *Scand. J. Stat.* 35,
335-353.
"""

from dataclasses import dataclass

import numpy as np

from emimpute.engine._model import SingularCovarianceError
from emimpute.engine._squarem import extrapolate


@dataclass(frozen=True)
class EMRun:
    """Outcome of :func:`run_em`.

    ``stats`` is the E-step at ``params``, ``value`` the objective there,
    ``path`` the log-likelihood after each iteration and ``n_steps`` the
    evaluations of the EM map (the unit of cost comparable with and without
    acceleration); ``stopped`` is the model's reason when it stopped the run
    early (:meth:`~emimpute.engine._model.EMModel.out_of_bounds`).
    """

    params: object
    stats: object
    value: float
    path: np.ndarray
    n_iter: int
    n_steps: int
    converged: bool
    stopped: str | None = None

    @property
    def loglik(self):
        return float(self.stats.loglik)


class _Evaluator:
    """E-steps of one run, counted; a failed one raises or returns None."""

    def __init__(self, model):
        self.model = model
        self.n_steps = 0

    def checked(self, params):
        stats = self.model.e_step(params)
        if stats is None:
            raise SingularCovarianceError(self.model.singular_message)
        return stats

    def em_map(self, params, stats):
        """One EM step: M-step then E-step at the result."""
        new = self.model.m_step(params, stats)
        self.n_steps += 1
        return new, self.checked(new)


def _squarem_step(evaluator, params, stats, params1, stats1, value, step_max):
    """One SQUAREM cycle from (params, params1 = F(params)): the new point,
    its statistics, and the updated step bound."""
    model = evaluator.model
    params2 = model.m_step(params1, stats1)
    try:
        vectors = [model.to_vector(p) for p in (params, params1, params2)]
        point, alpha = extrapolate(*vectors, step_max)
    except np.linalg.LinAlgError:
        point, alpha = None, 1.0
    candidate = None if point is None else model.from_vector(point, params)
    stats_x = None if candidate is None else model.e_step(candidate)
    evaluator.n_steps += stats_x is not None
    if stats_x is not None and model.objective(candidate, stats_x) >= value:
        new_params = model.m_step(candidate, stats_x)  # the stabilising step
        step_max = step_max * 4.0 if alpha == step_max else step_max
    else:
        new_params = params2
        step_max = max(1.0, step_max / 4.0) if alpha == step_max else step_max
    evaluator.n_steps += 1
    return new_params, evaluator.checked(new_params), step_max


def run_em(
    model, params=None, *, max_iter=500, tol=1e-6, accelerate=True, callback=None
):
    """Run EM on ``model`` from ``params`` (default ``model.start()``).

    Parameters
    ----------
    model : EMModel
    params : parameters of the model, optional
    max_iter : int, default=500
        Maximum number of iterations (a SQUAREM cycle counts as one).
    tol : float, default=1e-6
        Stop when the largest change of the parameters on the standardised
        scale (``model.change``) and the relative change of the objective
        are both below ``tol``.
    accelerate : bool, default=True
        SQUAREM (scheme S3) with the fall-back to the plain EM step, so the
        objective never decreases between iterations.
    callback : callable, optional
        ``callback(iteration, loglik, change)`` after each iteration.

    Returns
    -------
    EMRun

    Raises
    ------
    SingularCovarianceError
        If an EM step reaches parameters without a finite likelihood.
    """
    evaluator = _Evaluator(model)
    params = model.start() if params is None else params
    stats = evaluator.checked(params)
    value = model.objective(params, stats)
    path, converged, step_max, iteration, stopped = [], False, 1.0, 0, None
    for iteration in range(1, max_iter + 1):
        params1, stats1 = evaluator.em_map(params, stats)
        new_params, new_stats = params1, stats1
        if accelerate:
            new_params, new_stats, step_max = _squarem_step(
                evaluator, params, stats, params1, stats1, value, step_max
            )
        new_value = model.objective(new_params, new_stats)
        step_change = model.change(params, new_params)
        value_change = abs(new_value - value) / max(abs(new_value), 1.0)
        params, stats, value = new_params, new_stats, new_value
        path.append(float(stats.loglik))
        if callback is not None:
            callback(iteration, float(stats.loglik), step_change)
        if step_change < tol and value_change < tol:
            converged = True
            break
        stopped = model.out_of_bounds(params)
        if stopped is not None:
            break
    return EMRun(
        params,
        stats,
        value,
        np.asarray(path),
        iteration,
        evaluator.n_steps,
        converged,
        stopped,
    )


def joined_runs(first, second, extra_steps=0):
    """One :class:`EMRun` of ``second`` continuing ``first`` (iterations,
    path and EM-map evaluations added up; ``extra_steps`` spent between
    them), as reported by a fit that ran EM in two legs."""
    return EMRun(
        second.params,
        second.stats,
        second.value,
        np.concatenate([first.path, second.path]),
        first.n_iter + second.n_iter,
        first.n_steps + extra_steps + second.n_steps,
        second.converged,
        second.stopped,
    )


def later_callback(callback, offset):
    """``callback`` seeing iteration numbers ``offset`` later (the second
    leg of a run continues the first's count); None stays None."""
    if callback is None:
        return None

    def report(iteration, loglik, change):
        callback(iteration + offset, loglik, change)

    return report


def shifted_callback(callback, offset):
    """``callback`` seeing the log-likelihood plus ``offset`` (a fit on
    standardised data reports it in the data's units: the offset is the
    Jacobian of the standardisation); None stays None."""
    if callback is None:
        return None

    def report(iteration, loglik, change):
        callback(iteration, loglik + offset, change)

    return report


def best_start(candidates, *, max_iter, tol, accelerate=True):
    """The best of short runs from several starts.

    Parameters
    ----------
    candidates : iterable of (EMModel, params)
        Each start with the model to run it under (a start may hold some
        parameters fixed, which is a model of its own).
    max_iter, tol, accelerate
        As in :func:`run_em`, for the short runs.

    Returns
    -------
    EMRun
        The run with the highest objective.
    """
    best = None
    for model, params in candidates:
        run = run_em(model, params, max_iter=max_iter, tol=tol, accelerate=accelerate)
        if best is None or run.value > best.value:
            best = run
    return best
