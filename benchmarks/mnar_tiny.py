"""Random search for slow selection-model fits of small matrices.

The issue: no fit of a matrix with at most 1,000 rows may take more than
1 s, whatever the data.  Fits of ``MNARSelectionImputer(link=...)`` with
default arguments on 39-59 rows took 20-37 s (psi running off to infinity;
the six cases are tests/models/data/selection_tiny_cases.npz).  This script
fits random designs for a time budget and reports how many took over 1 s
and the slowest ten, each with the seed that rebuilds it.

Design of seed s (:func:`design`): n rows, log-uniform in 10..``max_rows``
(1,000 by default), p = 2-4 columns, normal with a random mixing matrix
(correlated columns), rounded to 0-2 decimals or not (ties); column 0 hidden
above a random quantile (MNAR threshold), or at random, or cells of every
column hidden at random; probit for even s, logit for odd s.  Each fit runs
with default arguments (``random_state=0``) and is cut off at ``--cap``
seconds (SIGALRM, counted as a timeout).  Times are wall-clock on whatever
else the machine runs: noisy, so a fit just over 1 s is worth re-timing
(``--seed S`` fits one design again).

Usage::

    python benchmarks/mnar_tiny.py 300            # 5 minutes of fits
    python benchmarks/mnar_tiny.py 60 --start-seed 1000 --max-rows 60
    python benchmarks/mnar_tiny.py --seed 187     # re-time one design
    python benchmarks/mnar_tiny.py --quick        # 10 s smoke run
"""

import argparse
import signal
import sys
import time
import warnings

import numpy as np
from _report import machine_header, markdown_table

from emimpute import MNARSelectionImputer

KINDS = ("threshold", "random", "every column")
#: The issue's budget for one fit of at most 1,000 rows, in seconds.
BUDGET = 1.0


class FitTimeout(Exception):
    """Raised by SIGALRM when a fit passes ``--cap``."""


def _alarm(signum, frame):
    raise FitTimeout


def design(seed, max_rows=1000):
    """The matrix and description of seed ``seed`` (see the module notes).

    Returns
    -------
    X : ndarray of shape (n, p)
    info : dict
        n, p, kind, rounding and link.
    """
    rng = np.random.default_rng(seed)
    n = int(np.exp(rng.uniform(np.log(10), np.log(max_rows + 1))))
    p = int(rng.integers(2, 5))
    X = rng.normal(size=(n, p)) @ rng.normal(size=(p, p))
    decimals = int(rng.integers(-1, 3))  # -1: not rounded
    if decimals >= 0:
        X = np.round(X, decimals)
    kind = KINDS[int(rng.integers(3))]
    if kind == "threshold":
        X[X[:, 0] > np.quantile(X[:, 0], rng.uniform(0.3, 0.9)), 0] = np.nan
    elif kind == "random":
        X[rng.random(n) < 0.4, 0] = np.nan
    else:
        X[rng.random((n, p)) < 0.25] = np.nan
    if np.isnan(X[:, 0]).all() or not np.isnan(X).any():
        X[0, 0], X[1, 0] = np.nan, 1.0
    link = ("probit", "logit")[seed % 2]
    rounding = "none" if decimals < 0 else str(decimals)
    return X, {"n": n, "p": p, "kind": kind, "rounding": rounding, "link": link}


def fit_once(seed, max_rows, cap):
    """One fit of seed's design: a dict of its description, seconds, EM
    iterations and outcome (converged, stopped by psi, max_iter, timeout
    or the exception's name)."""
    X, info = design(seed, max_rows)
    signal.alarm(int(np.ceil(cap)))
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            imputer = MNARSelectionImputer(link=info["link"], random_state=0).fit(X)
        n_iter = imputer.n_iter_
        if imputer.converged_:
            outcome = "converged"
        elif any("psi passed" in str(w.message) for w in caught):
            outcome = "stopped: psi"
        else:
            outcome = "max_iter"
    except FitTimeout:
        n_iter, outcome = None, f"timeout ({cap:g} s)"
    except Exception as error:  # reported, not hidden: the search is for any
        n_iter, outcome = None, type(error).__name__
    finally:
        signal.alarm(0)
    seconds = time.perf_counter() - start
    return {
        "seed": seed,
        **info,
        "seconds": seconds,
        "n_iter": n_iter,
        "outcome": outcome,
    }


def search(budget, start_seed, max_rows, cap):
    """Fit seeds start_seed, start_seed + 1, ... until ``budget`` seconds
    have passed; the list of fit records."""
    signal.signal(signal.SIGALRM, _alarm)
    records, seed, start = [], start_seed, time.perf_counter()
    while time.perf_counter() - start < budget:
        record = fit_once(seed, max_rows, cap)
        records.append(record)
        if record["seconds"] > BUDGET:
            print(
                f"seed {seed}: {record['seconds']:.2f} s {record['outcome']}",
                file=sys.stderr,
                flush=True,
            )
        seed += 1
    return records


def _row(r):
    shape = f"{r['n']} x {r['p']}"
    n_iter = "-" if r["n_iter"] is None else r["n_iter"]
    return [r["seed"], shape, r["kind"], r["rounding"], r["link"],
            f"{r['seconds']:.2f}", n_iter, r["outcome"]]  # fmt: skip


def _groups(records):
    """Rows of the table per (link, kind): fits, median, 95th percentile
    and largest time, fits over the budget."""
    rows = []
    for link in ("probit", "logit"):
        for kind in KINDS:
            times = [
                r["seconds"] for r in records if r["link"] == link and r["kind"] == kind
            ]
            if not times:
                continue
            q50, q95 = np.quantile(times, [0.5, 0.95])
            over = sum(t > BUDGET for t in times)
            rows.append([link, kind, len(times), f"{q50:.3f}", f"{q95:.3f}",
                         f"{max(times):.2f}", over])  # fmt: skip
    return rows


def report(records, budget, start_seed, max_rows):
    """The Markdown summary of a search."""
    over = [r for r in records if r["seconds"] > BUDGET]
    slowest = sorted(records, key=lambda r: -r["seconds"])[:10]
    outcomes = {}
    for r in records:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    lines = [
        "# Selection-model fits of small random matrices",
        "",
        machine_header(),
        "",
        f"Seeds {start_seed}..{start_seed + len(records) - 1}, "
        f"{budget:g} s budget, up to {max_rows} rows: **{len(records)} fits, "
        f"{len(over)} over {BUDGET:g} s** (wall-clock; other jobs share the "
        "machine, so times are noisy).",
        "",
        "Outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())),
        "",
        "## Slowest 10",
        "",
        markdown_table(
            [
                "seed",
                "n x p",
                "missing",
                "rounded",
                "link",
                "seconds",
                "EM iterations",
                "outcome",
            ],  # fmt: skip
            [_row(r) for r in slowest],
            align="lrlllrrl",
        ),
        "",
        "## By link and missingness",
        "",
        markdown_table(
            [
                "link",
                "missing",
                "fits",
                "median s",
                "95% s",
                "max s",
                f"> {BUDGET:g} s",
            ],  # fmt: skip
            _groups(records),
            align="llrrrrr",
        ),
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("budget", nargs="?", type=float, default=300.0,
                        help="seconds of fitting (default 300)")  # fmt: skip
    parser.add_argument("--start-seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=1000)
    parser.add_argument("--cap", type=float, default=60.0,
                        help="seconds after which one fit is cut off")  # fmt: skip
    parser.add_argument("--seed", type=int, help="fit this one design and stop")
    parser.add_argument("--quick", action="store_true", help="a 10 s smoke run")
    args = parser.parse_args(argv)
    if args.seed is not None:
        signal.signal(signal.SIGALRM, _alarm)
        record = fit_once(args.seed, args.max_rows, args.cap)
        print(markdown_table(
            ["seed", "n x p", "missing", "rounded", "link", "seconds",
             "EM iterations", "outcome"],
            [_row(record)], align="lrlllrrl",
        ))  # fmt: skip
        return
    budget = 10.0 if args.quick else args.budget
    records = search(budget, args.start_seed, args.max_rows, args.cap)
    print(report(records, budget, args.start_seed, args.max_rows))


if __name__ == "__main__":
    main()
