"""DaskEMImputer on a matrix larger than any worker's memory.

The cluster is a ``distributed.LocalCluster`` of 2 worker processes with 1
thread each and a memory limit of 1 GiB per worker (the nanny restarts a
worker that passes 95% of it).  The data, float64 with 20% of the cells
missing completely at random, are generated on the workers block by block
and written to disk as a stack of ``.npy`` files (``da.to_npy_stack``);
every pass of the fit reads them back with ``da.from_npy_stack`` (no memory
mapping), so nothing holds more than a few blocks at a time.

1. Out of core: 12,000,000 x 50 (4.47 GiB, 4.5x one worker's limit and 2.2x
   the two together) is fitted, then transformed and the result written
   back to disk.  Reported: wall time, EM iterations and passes over the
   data, each worker's peak resident set size (``VmHWM``, reset before each
   phase) against the limit, and that no worker was restarted (same PIDs).
2. Against the in-memory fit, on 1,000,000 x 50 (400 MB, which fits):
   ``EMImputer().fit(X)`` in this process (2 threads) against
   ``DaskEMImputer().fit`` on the same matrix read from disk, and persisted
   in the workers' memory (on a second cluster whose workers have twice the
   limit, room for their share of the persisted copy); the largest
   difference of the estimates.

The OS page cache keeps recently written files in memory, so "reading from
disk" here runs at memory speed; on a real cluster the reads cost what the
storage costs.

Usage::

    python benchmarks/dask_out_of_core.py            # about 10 minutes
    python benchmarks/dask_out_of_core.py --quick    # 1/10 of the rows
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import dask
import dask.array as da
import distributed
import numpy as np
from _report import machine_header, markdown_table, timed
from distributed import Client, LocalCluster, wait

from emimpute import EMImputer
from emimpute.dask import DaskEMImputer

GIB = 2**30
MB = 1e6


def _reset_peak():
    """Reset this process's peak RSS (Linux); run on every worker."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _peak_rss():
    """Peak resident set size since the last reset, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return float("nan")


def write_data(directory, n, p, rate, chunk_rows, seed=0):
    """Correlated normal rows with MCAR holes, generated on the workers."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(p, p))
    factor = np.linalg.cholesky(A @ A.T / p + np.eye(p))
    mean = np.linspace(-10.0, 10.0, p)
    generator = da.random.default_rng(seed)
    Z = generator.standard_normal((n, p), chunks=(chunk_rows, p))
    X = Z @ factor.T + mean
    holes = generator.random((n, p), chunks=(chunk_rows, p)) < rate
    da.to_npy_stack(directory, da.where(holes, np.nan, X), axis=0)


def phase(client, function):
    """Run ``function`` with each worker's peak RSS reset before it; return
    (seconds, result, peak RSS per worker in bytes)."""
    client.run(_reset_peak)
    seconds, result = timed(function)
    return seconds, result, list(client.run(_peak_rss).values())


def new_cluster(limit):
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=limit,
        dashboard_address=None,
    )
    return cluster, Client(cluster)


def out_of_core(scratch, n, p, rate, chunk, limit):
    """Part 1: fit and transform a matrix larger than any worker's limit."""
    cluster, client = new_cluster(limit)
    pids = client.run(os.getpid)
    big_dir = os.path.join(scratch, "big")
    print(f"writing {n:,} x {p} ...", file=sys.stderr)
    t_write, _, peak_write = phase(
        client, lambda: write_data(big_dir, n, p, rate, chunk)
    )
    X = da.from_npy_stack(big_dir, mmap_mode=None)
    print("fitting ...", file=sys.stderr)
    t_fit, imputer, peak_fit = phase(client, lambda: DaskEMImputer().fit(X))
    passes = 2 + imputer.n_em_steps_ + 1  # two set-up passes, then E-steps
    print("transforming ...", file=sys.stderr)
    out_dir = os.path.join(scratch, "imputed")
    t_transform, _, peak_transform = phase(
        client, lambda: da.to_npy_stack(out_dir, imputer.transform(X), axis=0)
    )
    n_nan = int(da.isnan(da.from_npy_stack(out_dir, mmap_mode=None)).sum().compute())
    restarted = client.run(os.getpid) != pids
    client.close()
    cluster.close()

    size, ratio = f"{X.nbytes / GIB:.2f} GiB", f"{X.nbytes / limit:.1f}x"

    def worst(peaks):
        return f"{max(peaks) / MB:,.0f} MB ({max(peaks) / limit:.0%})"

    rows = [
        ["write to .npy stack", t_write, peak_write],
        ["DaskEMImputer.fit", t_fit, peak_fit],
        ["transform, written to disk", t_transform, peak_transform],
    ]
    return [
        f"### Out of core: {n:,} x {p}\n",
        f"LocalCluster: 2 worker processes x 1 thread, memory limit "
        f"{limit / GIB:.2f} GiB each; blocks of {chunk:,} rows "
        f"({chunk * p * 8 / MB:.0f} MB); {rate:.0%} MCAR.\n",
        markdown_table(
            [
                "phase",
                "rows",
                "data",
                "data / worker limit",
                "time (s)",
                "peak RSS of the worst worker (of limit)",
            ],
            [
                [name, f"{n:,}", size, ratio, f"{seconds:.1f}", worst(peaks)]
                for name, seconds, peaks in rows
            ],
            align="lrrrrr",
        ),  # fmt: skip
        f"\nThe fit: {imputer.n_iter_} iterations, {imputer.n_em_steps_} EM "
        f"steps, so {passes} passes over the data ({t_fit / passes:.1f} s per "
        f"pass); converged: {imputer.converged_}. Missing cells left after "
        f"transform: {n_nan}. Workers restarted during these phases: "
        f"{'yes' if restarted else 'no'}.\n",
    ]


def against_in_memory(scratch, n, p, rate, chunk, limit, repeats=3):
    """Part 2: the same fit in memory, from disk and persisted."""
    small_dir = os.path.join(scratch, "small")
    # The in-memory fits run before any cluster is made: creating a
    # LocalCluster sets OMP_NUM_THREADS=1 in this process too (for its
    # workers), which would make EMImputer's compiled E-step single-threaded.
    # Each fit comes after a pause that lets OpenBLAS's threads go idle.
    with dask.config.set(scheduler="threads"):
        write_data(small_dir, n, p, rate, chunk)
        X_dask = da.from_npy_stack(small_dir, mmap_mode=None)
        X = X_dask.compute()
    memory_times = []
    for _ in range(repeats):
        time.sleep(1.0)
        seconds, reference = timed(lambda: EMImputer().fit(X))
        memory_times.append(seconds)
    t_memory = float(np.median(memory_times))
    # A new cluster with room for the persisted copy.
    cluster, client = new_cluster(2 * limit)
    t_disk, from_disk, _ = phase(client, lambda: DaskEMImputer().fit(X_dask))
    persisted = X_dask.persist()
    wait(persisted)
    t_persisted, from_memory, _ = phase(client, lambda: DaskEMImputer().fit(persisted))
    client.close()
    cluster.close()
    difference = max(
        np.max(np.abs(fit.covariance_ - reference.covariance_))
        for fit in (from_disk, from_memory)
    )
    return [
        f"### Against the in-memory fit: {n:,} x {p} ({X.nbytes / MB:,.0f} MB)\n",
        markdown_table(
            ["fit of the same matrix", "time (s)", "ratio to in-memory"],
            [
                [
                    f"EMImputer, in memory (2 threads; median "
                    f"of {repeats}: {', '.join(f'{t:.1f}' for t in memory_times)})",
                    f"{t_memory:.1f}",
                    "1.0x",
                ],
                [
                    "DaskEMImputer, read from disk at every pass",
                    f"{t_disk:.1f}",
                    f"{t_disk / t_memory:.1f}x",
                ],
                [
                    "DaskEMImputer, persisted in the workers' memory",
                    f"{t_persisted:.1f}",
                    f"{t_persisted / t_memory:.1f}x",
                ],
            ],
            align="lrr",
        ),  # fmt: skip
        f"\nThe Dask fits ran once each on a new cluster of 2 workers x 1 "
        f"thread with {2 * limit / GIB:.2f} GiB each; their iterations were "
        f"{from_disk.n_iter_} and {from_memory.n_iter_} against "
        f"{reference.n_iter_} in memory. Largest difference of the covariance "
        f"estimates from the in-memory fit: {difference:.1e}.\n",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=12_000_000)
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument(
        "--part", choices=["all", "out-of-core", "in-memory"], default="all"
    )
    args = parser.parse_args()
    n_big = args.rows // 10 if args.quick else args.rows
    settings = dict(p=50, rate=0.2, chunk=args.chunk_rows,
                    limit=dask.utils.parse_bytes(args.memory_limit))  # fmt: skip
    scratch = tempfile.mkdtemp(prefix="emimpute-dask-bench-")
    out = [
        machine_header(),
        f"- Dask {dask.__version__}, distributed {distributed.__version__}\n",
    ]
    try:
        # In-memory first: see against_in_memory.
        if args.part in ("all", "in-memory"):
            out += against_in_memory(scratch, n_big // 12, **settings)
        if args.part in ("all", "out-of-core"):
            out += out_of_core(scratch, n_big, **settings)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n".join(out))


if __name__ == "__main__":
    main()
