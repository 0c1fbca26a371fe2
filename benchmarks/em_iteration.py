"""Cost of one EM iteration, and what SQUAREM saves.

(a) One EM step (the kernel's ``e_step(problem, mean, cov)`` plus
``m_step``) at a fixed mean and covariance, divided by the time of one
``X.T @ X`` on the same matrix before amputation: the E-step must at least
form the cross-products of the completed data, so this ratio says how close
the kernel is to that floor.  They are timed in turn, several rounds after a
warm-up, so that drifts in the speed of a shared machine hit both, with a
pause after each ``X.T @ X``: OpenBLAS's worker threads keep spinning for
about 0.1 s after a call and would take a core from the E-step's threads (a
fit makes no large BLAS call between E-steps).  The NumPy kernel (used when
the package is built without a C compiler) is timed alongside, and so is
the time per EM step of whole fits, a check that needs no pause.

(b) Iterations, EM steps and wall time to convergence of EMImputer with and
without SQUAREM (``accelerate=True/False``, defaults otherwise) at 20%, 50%
and 70% MCAR, and whether both reach the same log-likelihood.

Usage::

    python benchmarks/em_iteration.py            # about 1 min
    python benchmarks/em_iteration.py --quick    # small sizes, seconds
"""

import argparse
import time

import numpy as np
from _report import machine_header, markdown_table, timed
from problems import normal_data, synthetic

from emimpute import EMImputer
from emimpute.gaussian import _compiled
from emimpute.models._normal import e_step, m_step, prepare_problem

# Longer than OpenBLAS's spin after a call (about 0.1 s here).
BLAS_IDLE = 0.2


def ampute_in_place(X, rate, rng, chunk_rows=65536):
    """MCAR holes written chunk by chunk (no full-size random array)."""
    n, p = X.shape
    for start in range(0, n, chunk_rows):
        block = X[start : start + chunk_rows]
        block[rng.random(block.shape) < rate] = np.nan


# ---------------------------------------------------------------------------
# (a) one iteration against X.T @ X


def iteration_cost(n, p, rate, repeats, seed=0, n_patterns=None):
    """Time X.T @ X, e_step (compiled and NumPy kernels) and m_step in turn.

    ``n_patterns``: instead of MCAR cells, each row takes one of this many
    random patterns (cells missing with probability ``rate``), as in surveys
    with skip logic; rows then share factorisations in the NumPy kernel."""
    rng = np.random.default_rng(seed)
    X_complete, mean, covariance = normal_data(n, p, rng)
    X = X_complete.copy()
    if n_patterns is None:
        ampute_in_place(X, rate, rng)
    else:
        patterns = rng.random((n_patterns, p)) < rate
        X[patterns[rng.integers(0, n_patterns, size=n)]] = np.nan
    t_prepare, problem = timed(prepare_problem, X)
    prior = np.diag(problem.scale**2)
    compiled = _compiled.complete_rows
    # The NumPy kernel gets its own plan: without the compiled kernel the plan
    # also looks for patterns shared within a chunk, which only it uses.
    _compiled.complete_rows = None
    try:
        numpy_problem = prepare_problem(X)
    finally:
        _compiled.complete_rows = compiled

    def numpy_e_step():
        _compiled.complete_rows = None
        try:
            return e_step(numpy_problem, mean, covariance)
        finally:
            _compiled.complete_rows = compiled

    # At the true parameters (close to the MLE): a typical late iteration.
    stats = e_step(problem, mean, covariance)  # warm-up
    numpy_e_step()
    X_complete.T @ X_complete  # warm-up (thread pool, page faults of the output)
    times = {"xtx": [], "e": [], "m": [], "numpy": []}
    for _ in range(repeats):
        times["xtx"].append(timed(lambda: X_complete.T @ X_complete)[0])
        time.sleep(BLAS_IDLE)
        times["e"].append(timed(e_step, problem, mean, covariance)[0])
        times["m"].append(
            timed(m_step, stats.row_sum, stats.cross, problem.n_rows, prior, 0)[0]
        )
        times["numpy"].append(timed(numpy_e_step)[0])
    t = {key: np.array(value) for key, value in times.items()}
    return {
        "xtx": float(np.median(t["xtx"])),
        "e_step": float(np.median(t["e"])),
        "m_step": float(np.median(t["m"])),
        "numpy_e_step": float(np.median(t["numpy"])),
        "ratio": float(np.median((t["e"] + t["m"]) / t["xtx"])),
        "ratio_of_minima": float(np.min(t["e"] + t["m"]) / np.min(t["xtx"])),
        "numpy_ratio": float(np.median((t["numpy"] + t["m"]) / t["xtx"])),
        "prepare": t_prepare,
        "chunks": len(problem.chunks),
        "X": X,
    }


def fit_step_cost(X, repeats):
    """Median over fits of (fit time - prepare_problem time) / EM steps."""
    t_prepare = timed(prepare_problem, X)[0]
    per_step = []
    for _ in range(repeats):
        seconds, fit = timed(EMImputer(tol=1e-8).fit, X)
        per_step.append((seconds - t_prepare) / fit.n_em_steps_)
    return float(np.median(per_step)), fit.n_em_steps_


# ---------------------------------------------------------------------------
# (b) SQUAREM against plain EM


def squarem_comparison(n, p, rates, repeats, seed=0):
    rows = []
    for rate in rates:
        problem = synthetic(n, p, rate, "MCAR", seed)
        fits = {}
        for accelerate in (True, False):
            times = []
            for _ in range(repeats):
                estimator = EMImputer(accelerate=accelerate)
                seconds, _ = timed(estimator.fit, problem.X_missing)
                times.append(seconds)
            fits[accelerate] = (float(np.median(times)), estimator)
        (t_sq, sq), (t_em, em) = fits[True], fits[False]
        sd = np.sqrt(np.diag(em.covariance_))
        d_param = max(
            np.max(np.abs(sq.mean_ - em.mean_) / sd),
            np.max(np.abs(sq.covariance_ - em.covariance_) / np.outer(sd, sd)),
        )
        for label, t, fit in (("SQUAREM", t_sq, sq), ("plain EM", t_em, em)):
            rows.append(
                [
                    f"{rate:.0%}",
                    label,
                    str(fit.n_iter_),
                    str(fit.n_em_steps_),
                    f"{t:.3f}",
                    "yes" if fit.converged_ else "**no**",
                    f"{fit.loglik_:.6f}",
                ]
            )
        rows.append(
            [
                f"{rate:.0%}",
                "plain / SQUAREM",
                f"{em.n_iter_ / sq.n_iter_:.1f}x",
                f"{em.n_em_steps_ / sq.n_em_steps_:.1f}x",
                f"{t_em / t_sq:.1f}x",
                "",
                f"Δ = {sq.loglik_ - em.loglik_:+.2e}; params Δ = {d_param:.1e}",
            ]
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    if args.quick:
        sizes, repeats, n_b = [(20_000, 30, None)], 3, 2_000
    else:
        sizes = [(100_000, 30, None), (100_000, 30, 12), (1_000_000, 50, None)]
        repeats, n_b = 7, 10_000

    print("## Cost of one EM iteration and the effect of SQUAREM\n")
    print(machine_header() + "\n")

    print("### (a) One EM step against one X.T @ X (20% MCAR)\n")
    kernel = "compiled (C)" if _compiled.available() else "NumPy (not compiled)"
    print(f"E-step kernel of this build: **{kernel}**.\n")
    rows = []
    for n, p, n_patterns in sizes:
        cost = iteration_cost(n, p, 0.2, repeats, n_patterns=n_patterns)
        time.sleep(BLAS_IDLE)
        per_step, n_steps = fit_step_cost(cost.pop("X"), 3)
        shared = "" if n_patterns is None else f", {n_patterns} patterns"
        rows.append(
            [
                f"n={n:,} p={p}{shared}",
                f"{cost['xtx'] * 1e3:.1f}",
                f"{cost['e_step'] * 1e3:.1f}",
                f"{cost['m_step'] * 1e3:.3f}",
                f"**{cost['ratio']:.1f}x**",
                f"{cost['ratio_of_minima']:.1f}x",
                f"{per_step * 1e3:.1f} ({per_step / cost['xtx']:.1f}x)",
                f"{cost['numpy_e_step'] * 1e3:.1f} ({cost['numpy_ratio']:.1f}x)",
                f"{cost['prepare'] * 1e3:.0f}",
                str(cost["chunks"]),
            ]
        )
        del cost
    headers = [
        "data",
        "X.T @ X (ms)",
        "e_step (ms)",
        "m_step (ms)",
        "EM step / X.T @ X",
        "same, min / min",
        "per EM step of a fit, ms (/ X.T @ X)",
        "NumPy kernel: e_step, ms (EM step / X.T @ X)",
        "prepare_problem (ms, once)",
        "chunks",
    ]
    print(markdown_table(headers, rows) + "\n")
    print(
        f"{repeats} rounds after a warm-up, each timing X.T @ X, a pause of "
        f"{BLAS_IDLE} s (OpenBLAS's threads spin for about 0.1 s after a call), "
        "e_step, m_step and the NumPy kernel's e_step in turn; times are "
        "medians, the ratio is the median of the rounds' ratios (e_step + "
        "m_step) / X.T @ X (and, next to it, the ratio of the fastest times). "
        "e_step runs at the true mean and covariance. X.T @ X is timed on the "
        "complete matrix; NumPy sends `X.T @ X` to BLAS syrk. 'per EM step of "
        "a fit': (fit time - prepare_problem) / EM steps, median of 3 fits of "
        "EMImputer(tol=1e-8), SQUAREM bookkeeping included. Target: EM step "
        "within 5x of X.T @ X. '12 patterns': every row has one of 12 random "
        "patterns (20% of cells each) instead of its own.\n"
    )
    n, p, _ = sizes[-1]

    p_b = 10
    print(f"### (b) SQUAREM against plain EM (n={n_b:,}, p={p_b}, MCAR)\n")
    rows = squarem_comparison(n_b, p_b, (0.2, 0.5, 0.7), 3)
    headers = [
        "missing",
        "method",
        "n_iter_",
        "n_em_steps_",
        "fit (s)",
        "converged",
        "loglik_",
    ]
    print(markdown_table(headers, rows, "llrrrll") + "\n")
    print(
        "EMImputer defaults (max_iter=500, tol=1e-6) apart from `accelerate`; "
        "fit times are medians of 3 fits. An iteration is one EM step without "
        "SQUAREM and up to three with it, so `n_em_steps_` is the comparable "
        "unit of work. Δ: loglik_ (SQUAREM) minus loglik_ (plain); params Δ: "
        "largest difference of the means and covariances, in standard "
        "deviations."
    )


if __name__ == "__main__":
    main()
