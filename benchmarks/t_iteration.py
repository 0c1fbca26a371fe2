"""Cost of one multivariate t EM iteration against one normal EM iteration.

One E-step plus M-step of the t model (:func:`t_e_step`: the compiled
E-step writing each row's observed-part Mahalanobis distance, the df
profiled by a Newton search on log df warm-started from the previous one,
the weights, and the weighted sums of the completed rows) against one of
the normal model (:func:`e_step`, the kernel behind ``EMImputer``), on the
same matrix: n=100,000, p=30, 20% of cells MCAR, normal data.  Both run at
the true mean and covariance (a late iteration).  They are timed in turn,
several rounds after a warm-up; the ratio is the median of the rounds'
ratios.  Target (issue 13): at most 1.5.

Also: the t with a fixed df (no search), and the time per EM step of whole
fits (``fit_student_t_em`` against ``fit_normal_em``, from the same start).

Usage::

    python benchmarks/t_iteration.py            # about 1 min
    python benchmarks/t_iteration.py --quick    # small sizes, seconds
"""

import argparse
import time

import numpy as np
from _report import machine_header, markdown_table, timed
from problems import normal_data

from emimpute.gaussian import _compiled
from emimpute.models._normal import (
    NormalModel,
    NormalParams,
    fit_normal_em,
    prepare_problem,
)
from emimpute.models._student_t import (
    StudentTModel,
    StudentTParams,
    fit_student_t_em,
    prepare_t_problem,
    t_e_step,
)

PAUSE = 0.05


def ampute(X, rate, rng):
    X[rng.random(X.shape) < rate] = np.nan
    return X


def iteration_times(n, p, rate, repeats, seed=0):
    """Median seconds of one normal and one t EM step, and their ratios."""
    rng = np.random.default_rng(seed)
    X_complete, mean, covariance = normal_data(n, p, rng)
    X = ampute(X_complete.copy(), rate, rng)
    normal = NormalModel.in_memory(prepare_problem(X, standardise=True))
    t_problem = prepare_t_problem(X)
    t_est = StudentTModel.in_memory(t_problem, "estimate")
    t_fixed = StudentTModel.in_memory(t_problem, 5.0)
    # The true parameters on the standardised scale of the problems.
    _, center, std = (None, np.nanmean(X, axis=0), np.nanstd(X, axis=0))
    mu, S = (mean - center) / std, covariance / np.outer(std, std)
    # A late iteration: the df search starts from the df it finds here.
    df0 = t_e_step(t_problem, mu, S, "estimate").df
    steps = {
        "normal": lambda: normal.m_step(None, normal.e_step(NormalParams(mu, S))),
        "t": lambda: t_est.m_step(None, t_est.e_step(StudentTParams(mu, S, df0))),
        "t_fixed": lambda: t_fixed.m_step(
            None, t_fixed.e_step(StudentTParams(mu, S, 5.0))
        ),
    }
    for step in steps.values():  # warm-up
        step()
    times = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            times[key].append(timed(step)[0])
            time.sleep(PAUSE)
    t = {key: np.array(value) for key, value in times.items()}
    return {
        "normal": float(np.median(t["normal"])),
        "t": float(np.median(t["t"])),
        "t_fixed": float(np.median(t["t_fixed"])),
        "ratio": float(np.median(t["t"] / t["normal"])),
        "ratio_fixed": float(np.median(t["t_fixed"] / t["normal"])),
        "df": df0,
        "X": X,
    }


def fit_step_times(X):
    """Seconds per EM step of whole fits (preparation included, divided out
    by the number of steps), normal and t."""
    seconds_n, normal = timed(fit_normal_em, X, tol=1e-6)
    seconds_t, t_fit = timed(fit_student_t_em, X, tol=1e-6)
    return (
        seconds_n / normal.n_em_steps,
        normal.n_em_steps,
        seconds_t / t_fit.n_em_steps,
        t_fit.n_em_steps,
        t_fit.df,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    n, repeats = (20_000, 5) if args.quick else (100_000, 15)
    p, rate = 30, 0.2
    print("## One multivariate t EM iteration against one normal EM iteration\n")
    print(machine_header() + "\n")
    print(f"E-step kernel: **{_compiled.kernel_path()}**.\n")
    cost = iteration_times(n, p, rate, repeats)
    per_n, steps_n, per_t, steps_t, df_fit = fit_step_times(cost.pop("X"))
    rows = [
        [
            f"n={n:,} p={p} {rate:.0%} MCAR",
            f"{cost['normal'] * 1e3:.1f}",
            f"{cost['t'] * 1e3:.1f}",
            f"**{cost['ratio']:.2f}x**",
            f"{cost['t_fixed'] * 1e3:.1f} ({cost['ratio_fixed']:.2f}x)",
            f"{per_n * 1e3:.1f} ({steps_n})",
            f"{per_t * 1e3:.1f} ({steps_t}; df {df_fit:.3g})",
        ]
    ]
    headers = [
        "data",
        "normal EM step (ms)",
        "t EM step, df estimated (ms)",
        "t / normal",
        "t, df fixed at 5 (ms, / normal)",
        "normal fit: ms per EM step (steps)",
        "t fit: ms per EM step (steps; df)",
    ]
    print(markdown_table(headers, rows) + "\n")
    print(
        f"{repeats} rounds after a warm-up, each timing one normal EM step "
        "(e_step + m_step of NormalModel), one t EM step with the df "
        "estimated (the search warm-started from the df it finds at these "
        "parameters, as in a late iteration) and one with the df fixed, in "
        "turn, at the true mean and covariance; times are medians, the ratio "
        "is the median of the rounds' ratios. Target: t / normal <= 1.5. "
        "The fits: fit_normal_em and fit_student_t_em (df estimated), "
        "tol=1e-6, preparation included in the time per step."
    )


if __name__ == "__main__":
    main()
