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
``CREEP_ITER`` iterations, it maximises the profile log-likelihood

    l_p(psi) = max over the other parameters of l(psi, ...),

each value an EM fit with psi held (warm-started from the previous one), by
Brent's method (Brent 1973, ch. 5; ``scipy.optimize.minimize_scalar``), and
then resumes the free EM from the best point found, so that the stopping
rule and the result are EM's (the maximum of l_p is the maximum of l).
A psi running past ``PSI_LIMIT`` ends the search: the free EM then stops
there as it would have (the likelihood has no finite maximum in psi).

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

from emimpute.engine._driver import run_em

# Free EM iterations before a fit with one free psi counts as creeping.
# The benchmark fits converge in 15-40; the creeping ones were still moving
# psi by 1e-3 per iteration at 400.
CREEP_ITER = 50
# The search: first bracket width (per SD), Brent's relative tolerance in
# psi and its iterations; the held-psi fits' iteration cap.
PROFILE_STEP = 0.5
PROFILE_XTOL = 1e-4
PROFILE_MAXITER = 50
PROFILE_FIT_ITER = 200


class _RanOff(Exception):
    """psi passed the limit: no finite maximum in that direction."""


def can_profile(model, max_iter):
    """Whether a fit of ``model`` gets the search: one free psi, and room
    for more than ``CREEP_ITER`` iterations."""
    return int(np.count_nonzero(~model.held)) == 1 and max_iter > CREEP_ITER


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
    return state["best"][1], state["n_steps"]


def _with(values, index, value):
    """A copy of ``values`` with ``values[index] = value``."""
    values = np.array(values, dtype=float)
    values[index] = value
    return values
