"""EMImputer against scikit-learn's imputers: fit_transform time and RMSE.

For every problem of ``problems.PROBLEMS`` (synthetic normal data with several
n, p, missing rates, MCAR and MAR; two scikit-learn data sets with MCAR holes)
each competitor's ``fit_transform`` is timed on the amputed matrix and scored
by the RMSE of the hidden cells, in units of each column's standard deviation
in the complete data (the synthetic columns have unit variance already).

Competitors, each a runner below: EMImputer() (defaults), IterativeImputer
(max_iter=10, random_state=0), KNNImputer() and SimpleImputer() (mean).
KNNImputer is O(n^2) and is skipped above n = 10,000; IterativeImputer is run
at n = 100,000 on the 20% problems only (about 30 s each at p = 30).

Usage::

    python benchmarks/compare_imputers.py            # everything, ~3.5 minutes
    python benchmarks/compare_imputers.py --quick    # n <= 1,000 and real data
    python benchmarks/compare_imputers.py --only "p=30 20% MCAR"
"""

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from _report import machine_header, markdown_table, timed
from problems import HEADLINE, PROBLEMS
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

from emimpute import EMImputer

# ---------------------------------------------------------------------------
# Competitors: how to build each, and on which problems to skip it

KNN_MAX_N = 10_000
ITERATIVE_LARGE_N = 100_000


@dataclass(frozen=True)
class Runner:
    name: str
    make: Callable[[], object]  # a fresh estimator
    skip: Callable[[object], str | None]  # (spec) -> reason to skip, or None


def _never(spec):
    return None


def _skip_knn(spec):
    if spec.n > KNN_MAX_N:
        return f"skipped: O(n^2), n > {KNN_MAX_N:,}"
    return None


def _skip_iterative(spec):
    if spec.n >= ITERATIVE_LARGE_N and spec.rate != 0.2:
        return "skipped: slow at n = 100,000 (run on the 20% problems only)"
    return None


RUNNERS = [
    Runner("EMImputer", EMImputer, _never),
    Runner(
        "IterativeImputer",
        lambda: IterativeImputer(max_iter=10, random_state=0),
        _skip_iterative,
    ),
    Runner("KNNImputer", KNNImputer, _skip_knn),
    Runner("SimpleImputer", SimpleImputer, _never),
]


# ---------------------------------------------------------------------------
# One run


@dataclass
class Result:
    seconds: float = float("nan")
    rmse: float = float("nan")
    n_iter: int | None = None
    n_em_steps: int | None = None
    converged: bool | None = None
    note: str = ""


def rmse_hidden(problem, X_imputed):
    """RMSE over the hidden cells, in standard deviations of each column."""
    sd = problem.X_complete.std(axis=0)
    error = (X_imputed - problem.X_complete) / sd
    return float(np.sqrt(np.mean(error[problem.mask] ** 2)))


def run(runner, problem, *, min_seconds=1.0, max_repeats=3):
    """Time ``fit_transform``: the median of up to ``max_repeats`` runs, as
    many as fit in ``min_seconds`` (at least one)."""
    times = []
    while True:
        estimator = runner.make()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            seconds, X_imputed = timed(estimator.fit_transform, problem.X_missing)
        times.append(seconds)
        if sum(times) >= min_seconds or len(times) >= max_repeats:
            break
    result = Result(float(np.median(times)), rmse_hidden(problem, X_imputed))
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        result.converged = False
    if isinstance(estimator, EMImputer):
        result.n_iter = estimator.n_iter_
        result.n_em_steps = estimator.n_em_steps_
        result.converged = estimator.converged_
    elif isinstance(estimator, IterativeImputer):
        result.n_iter = estimator.n_iter_
    return result


# ---------------------------------------------------------------------------
# Report


def _cell_time(result):
    if result.note:
        return "—"
    return f"{result.seconds:.3g}"


def _cell_rmse(result):
    if result.note:
        return "—"
    flag = "*" if result.converged is False else ""
    return f"{result.rmse:.4f}{flag}"


def _cell_iter(result):
    if result.note or result.n_iter is None:
        return "—"
    if result.n_em_steps is None:
        return str(result.n_iter)
    return f"{result.n_iter} / {result.n_em_steps}"


def results_table(rows):
    headers = ["problem", "hidden"]
    for runner in RUNNERS:
        short = runner.name.removesuffix("Imputer")
        headers += [f"{short} s", f"{short} RMSE"]
        if runner.name == "EMImputer":
            headers.append("EM iter / steps")
        if runner.name == "IterativeImputer":
            headers.append("Iter rounds")
    lines = []
    for problem_name, hidden, results in rows:
        line = [problem_name, f"{hidden:.1%}"]
        for runner in RUNNERS:
            result = results[runner.name]
            line += [_cell_time(result), _cell_rmse(result)]
            if runner.name in ("EMImputer", "IterativeImputer"):
                line.append(_cell_iter(result))
        lines.append(line)
    return markdown_table(headers, lines)


def headline_table(results):
    em, it = results["EMImputer"], results["IterativeImputer"]
    ratio = it.seconds / em.seconds
    headers = ["", "EMImputer", "IterativeImputer", "ratio Iterative / EM"]
    lines = [
        [
            "fit_transform (s)",
            f"{em.seconds:.2f}",
            f"{it.seconds:.2f}",
            f"{ratio:.1f}x",
        ],
        ["RMSE hidden cells", f"{em.rmse:.4f}", f"{it.rmse:.4f}", ""],
        [
            "iterations",
            f"{em.n_iter} (EM steps {em.n_em_steps})",
            f"{it.n_iter} rounds",
            "",
        ],
    ]
    verdict = (
        f"EMImputer is {ratio:.1f}x faster (target >= 15x) with "
        f"{'lower' if em.rmse < it.rmse else 'HIGHER'} RMSE "
        f"({em.rmse:.4f} vs {it.rmse:.4f})."
    )
    return markdown_table(headers, lines, "lrrr") + "\n\n" + verdict


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="only n <= 1,000 and the real data"
    )
    parser.add_argument(
        "--only", default="", help="only problems whose name contains this text"
    )
    args = parser.parse_args()
    specs = [s for s in PROBLEMS if args.only in s.name]
    if args.quick:
        specs = [s for s in specs if s.kind != "synthetic" or s.n <= 1_000]

    rows, headline = [], None
    for spec in specs:
        problem = spec.make()
        results = {}
        for runner in RUNNERS:
            reason = runner.skip(spec)
            if reason:
                results[runner.name] = Result(note=reason)
            elif spec == HEADLINE and runner.name == "EMImputer":
                # The headline ratio's denominator: always the median of 3.
                results[runner.name] = run(runner, problem, min_seconds=np.inf)
            else:
                results[runner.name] = run(runner, problem)
        rows.append((problem.name, problem.missing_fraction, results))
        if spec == HEADLINE:
            headline = results
        print(f"  done {problem.name}", file=sys.stderr, flush=True)

    print("## EMImputer against scikit-learn imputers\n")
    print(machine_header() + "\n")
    if headline is not None:
        print(f"### Headline: {HEADLINE.name}\n")
        print(headline_table(headline) + "\n")
    print("### All problems\n")
    print(results_table(rows) + "\n")
    skipped = sorted(
        {r.note for _, _, results in rows for r in results.values() if r.note}
    )
    print(
        "Times: median wall-clock seconds of `fit_transform` (of 3 runs when one "
        "run takes under a second). RMSE: over the hidden cells, in standard "
        "deviations of each column of the complete data. `*`: the imputer "
        "warned that it did not converge (IterativeImputer with max_iter=10 "
        "usually does). EM iter / steps: `n_iter_` (SQUAREM cycles) / "
        "`n_em_steps_` (E-step + M-step evaluations). Iter rounds: "
        "IterativeImputer's `n_iter_`."
        + (" —: " + "; ".join(skipped) + "." if skipped else "")
    )


if __name__ == "__main__":
    main()
