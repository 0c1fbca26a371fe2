"""A profile-likelihood search in psi for selection-model fits that creep
(statistical kernel).

Why.  Where the data barely identify psi (the MNAR column nearly a linear
function of its covariates, so that psi x_j and gamma' x_c trade off),
the fraction of missing information along psi is close to 1 and EM
creeps: fits of 500-900 rows ran 500 iterations without converging, at
1-2 s, and stopped far from the maximum (on one, 0.13 below it in
log-likelihood, psi 3.0 instead of 13.1 per SD).  With psi held, the same
fits converge in a handful of iterations: the slow direction is psi
itself.  So when a fit with one free psi has not converged after
``CREEP_ITER`` iterations and psi is creeping (at its pace over the last
``PACE_ITER`` iterations it would not reach ``PSI_LIMIT`` within the fit's
remaining iterations), it maximises the profile log-likelihood

    l_p(psi) = max over the other parameters of l(psi, ...),

each value an EM fit with psi held (warm-started from the previous one), by
Brent's method (Brent 1973, ch. 5; ``scipy.optimize.minimize_scalar``), and
then resumes the free EM from the best point found, so that the stopping
rule and the result are EM's (the maximum of l_p is the maximum of l).
A psi running off to infinity (the missingness a step function of the
value: no finite maximum) moves fast, and EM is left to carry it past
``PSI_LIMIT``, where the fit stops: held-psi fits out there converge
slowly, and the search cost seconds where EM took a fraction of one.  A
search that reaches the limit ends there too, and so does one whose
held-psi fit does not converge within ``PROFILE_FIT_ITER`` iterations (a
gamma running off or creeping with psi held: psi is not the only slow
direction); EM then resumes from the best point found.

References
----------
Brent, R. P. (1973). *Algorithms for Minimization without Derivatives*.
Prentice-Hall.
Murphy, S. A. & van der Vaart, A. W. (2000). On profile likelihood. *JASA*
95, 449-465.
"""

from dataclasses import replace

import numpy as np
from scipy import optimize

from emimpute.engine._driver import joined_runs, later_callback, run_em

# Free EM iterations before a fit with one free psi may count as creeping,
# and the last of them that measure psi's pace.  The benchmark fits
# converge in 15-40 iterations.  At iteration 50 creeping fits (of
# benchmarks/mnar_tiny.py) had |psi| below 2 per SD, moving 0.01-0.3 per 10
# iterations; fits running off had |psi| 16-57, moving 3-16 per 10.
CREEP_ITER = 50
PACE_ITER = 10
# The search: first bracket width (per SD), Brent's relative tolerance in
# psi and its iterations; the held-psi fits' iteration cap.
PROFILE_STEP = 0.5
PROFILE_XTOL = 1e-4
PROFILE_MAXITER = 30
PROFILE_FIT_ITER = 50


class _RanOff(Exception):
    """The search ends: psi passed the limit, or a held-psi fit did not
    converge."""


def run_searching_psi(model, params, *, max_iter, tol, accelerate, callback, limit):
    """EM on ``model`` from ``params`` as :func:`run_em`, with the profile
    search in psi when a fit with one free psi creeps (see the module
    notes); the legs reported as one :class:`EMRun`."""
    settings = {"tol": tol, "accelerate": accelerate}
    if int(np.count_nonzero(~model.held)) != 1 or max_iter <= CREEP_ITER:
        return run_em(model, params, max_iter=max_iter, callback=callback, **settings)
    which = int(np.flatnonzero(~model.held)[0])
    run = run_em(
        model, params, max_iter=CREEP_ITER - PACE_ITER, callback=callback,
        **settings,
    )  # fmt: skip
    if _finished(run, max_iter):
        return run
    paced_from = float(run.params.coef.psi[which])
    run = _continued(model, run, PACE_ITER, callback, settings)
    if _finished(run, max_iter):
        return run
    psi, remaining = float(run.params.coef.psi[which]), max_iter - run.n_iter
    if _running_off(paced_from, psi, remaining, limit):
        return _continued(model, run, remaining, callback, settings)
    start, n_steps = profile_psi(model, run.params, limit=limit, **settings)
    rest = run_em(
        model, start, max_iter=remaining,
        callback=later_callback(callback, run.n_iter), **settings,
    )  # fmt: skip
    return joined_runs(run, rest, n_steps)


def _finished(run, max_iter):
    return run.converged or run.stopped is not None or run.n_iter >= max_iter


def _continued(model, run, n_iter, callback, settings):
    """``run`` continued for up to ``n_iter`` more iterations."""
    rest = run_em(
        model, run.params, max_iter=n_iter,
        callback=later_callback(callback, run.n_iter), **settings,
    )  # fmt: skip
    return joined_runs(run, rest)


def _running_off(before, after, remaining, limit):
    """Whether psi, from ``before`` to ``after`` over the last ``PACE_ITER``
    iterations, would pass ``limit`` within ``remaining`` more at that
    pace (then EM carries it there; no search)."""
    pace = (abs(after) - abs(before)) / PACE_ITER
    return pace > 0 and abs(after) + pace * remaining >= limit


def profile_psi(model, params, *, tol, accelerate, limit):
    """The best point of a profile search in the free psi from ``params``.

    Parameters
    ----------
    model : SelectionModel
        With exactly one free psi.
    params : SelectionParams
        Where the free EM got to (standardised scale).
    tol, accelerate
        Those of the held-psi EM fits.
    limit : float
        The largest |psi| per SD (``PSI_LIMIT``).

    Returns
    -------
    params : SelectionParams
        The held-psi fit with the highest objective (psi in it).
    n_steps : int
        EM-map evaluations spent.
    """
    held_model = model.holding(np.ones_like(model.held))
    which = int(np.flatnonzero(~model.held)[0])
    state = {"params": params, "best": None, "n_steps": 0}

    def negative_profile(psi):
        if not abs(psi) <= limit:
            raise _RanOff
        coef = state["params"].coef
        start = replace(
            state["params"], coef=replace(coef, psi=_with(coef.psi, which, psi))
        )
        run = run_em(
            held_model, start, max_iter=PROFILE_FIT_ITER, tol=tol,
            accelerate=accelerate,
        )  # fmt: skip
        state["params"], state["n_steps"] = run.params, state["n_steps"] + run.n_steps
        if state["best"] is None or run.value > state["best"][0]:
            state["best"] = (run.value, run.params)
        if not run.converged:
            # A gamma ran off, or crept, with psi held: the slow direction
            # is not psi alone, and the profile's values are not yet
            # maxima.  EM resumes from the best point (and stops as it
            # would have).
            raise _RanOff
        return -run.value

    psi0 = float(params.coef.psi[which])
    try:
        optimize.minimize_scalar(
            negative_profile,
            bracket=(psi0, psi0 + np.copysign(PROFILE_STEP, psi0)),
            method="brent",
            options={"xtol": PROFILE_XTOL, "maxiter": PROFILE_MAXITER},
        )
    except _RanOff:
        pass
    best = params if state["best"] is None else state["best"][1]
    return best, state["n_steps"]


def _with(values, index, value):
    """A copy of ``values`` with ``values[index] = value``."""
    values = np.array(values, dtype=float)
    values[index] = value
    return values
