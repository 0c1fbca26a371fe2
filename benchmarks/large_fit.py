"""EMImputer on a large matrix: fit time and peak memory.

n = 1,000,000 rows, p = 50 columns, 20% MCAR (float64: 400 MB).  The data
are generated chunk by chunk straight into the one array, so the process
holds little more than X before the fit starts.

* Fit time: ``EMImputer().fit(X)`` timed with ``time.perf_counter``, in a
  run without tracing (target: under 60 s).
* Peak memory: a second fit under ``tracemalloc``, which sees NumPy's array
  allocations; the peak of memory allocated during the fit, relative to
  ``X.nbytes`` (target: under 4x).
* RSS for information: the process's peak resident set size during each fit
  (``VmHWM`` after resetting it via ``/proc/self/clear_refs``; where that is
  not possible, ``resource.getrusage`` whose peak also covers data
  generation).

Usage::

    python benchmarks/large_fit.py            # about 1 minute
    python benchmarks/large_fit.py --quick    # n = 100,000
"""

import argparse
import resource
import tracemalloc

import numpy as np
from _report import machine_header, markdown_table, timed
from problems import normal_data

from emimpute import EMImputer

MB = 1e6  # bytes; /proc reports kB of 1024 bytes


def make_data(n, p, rate, seed=0, chunk_rows=65536):
    """Normal data with MCAR holes, written in place chunk by chunk."""
    rng = np.random.default_rng(seed)
    X, _, _ = normal_data(n, p, rng, chunk_rows=chunk_rows)
    for start in range(0, n, chunk_rows):
        block = X[start : start + chunk_rows]
        block[rng.random(block.shape) < rate] = np.nan
    return X


def _reset_peak_rss():
    """Reset the kernel's peak RSS counter; False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _maxrss_mb():
    """Peak RSS since the process started (Linux: ru_maxrss is in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def _rss_mb():
    """(current RSS, peak RSS) in MB: /proc/self/status, else getrusage."""
    try:
        with open("/proc/self/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return (
            int(fields["VmRSS"].split()[0]) * 1024 / MB,
            int(fields["VmHWM"].split()[0]) * 1024 / MB,
        )
    except (OSError, KeyError, ValueError):
        return float("nan"), _maxrss_mb()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 100,000")
    args = parser.parse_args()
    n, p, rate = (100_000, 50, 0.2) if args.quick else (1_000_000, 50, 0.2)

    t_make, X = timed(make_data, n, p, rate)
    x_mb = X.nbytes / MB
    rss_data, _ = _rss_mb()
    checksum = np.nansum(X[:1000])

    # 1. Time, untraced.
    reset = _reset_peak_rss()
    t_fit, imputer = timed(EMImputer().fit, X)
    _, rss_peak_fit = _rss_mb()
    maxrss_total = _maxrss_mb()

    # 2. Memory, traced.  X was allocated before tracing started, so the
    # traced peak is what the fit allocates on top of its input.
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    t_traced, traced = timed(EMImputer().fit, X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    extra_mb = (peak - before) / MB

    # 3. For information: transform (a copy of X, filled).
    t_transform, completed = timed(imputer.transform, X)
    assert np.nansum(X[:1000]) == checksum, "fit modified its input"
    assert not np.isnan(completed).any()
    del completed

    print("## EMImputer on a large matrix\n")
    print(machine_header() + "\n")
    print(
        f"Data: n={n:,}, p={p}, {rate:.0%} MCAR ({np.isnan(X).mean():.2%} of "
        f"cells missing), float64, X.nbytes = {x_mb:.0f} MB; generated in "
        f"{t_make:.1f} s.\n"
    )
    same = np.allclose(imputer.covariance_, traced.covariance_)
    rows = [
        ["fit time (untraced)", f"**{t_fit:.1f} s**", "< 60 s"],
        [
            "iterations / EM steps / converged",
            f"{imputer.n_iter_} / {imputer.n_em_steps_} / {imputer.converged_}",
            "",
        ],
        [
            "time per EM step (fit time / n_em_steps_)",
            f"{t_fit / imputer.n_em_steps_:.2f} s",
            "",
        ],
        [
            "peak traced allocation during fit (tracemalloc)",
            f"{extra_mb:.0f} MB = **{extra_mb / x_mb:.2f}x X.nbytes**",
            "< 4x",
        ],
        [
            "X plus that peak",
            f"{x_mb + extra_mb:.0f} MB = {(x_mb + extra_mb) / x_mb:.2f}x X.nbytes",
            "",
        ],
        ["fit time under tracemalloc", f"{t_traced:.1f} s", ""],
        ["RSS after generating X", f"{rss_data:.0f} MB", ""],
        [
            "peak RSS during the untraced fit"
            + ("" if reset else " (getrusage: since process start)"),
            f"{rss_peak_fit:.0f} MB = {rss_peak_fit / x_mb:.2f}x X.nbytes",
            "",
        ],
        ["getrusage ru_maxrss after the untraced fit", f"{maxrss_total:.0f} MB", ""],
        ["transform time (copies X, for information)", f"{t_transform:.1f} s", ""],
    ]
    print(markdown_table(["measure", "value", "target"], rows, "lrr") + "\n")
    print(
        "Both fits give the same estimate: "
        f"{'yes' if same else '**no**'}. RSS includes the Python interpreter, "
        "NumPy, SciPy and scikit-learn (about 100-150 MB) and X itself."
    )


if __name__ == "__main__":
    main()
