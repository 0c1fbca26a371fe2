"""Row blocks of the copula's Gibbs chains, run on threads (statistical
kernel).

Given R, the rows' latent vectors are independent, so a sweep of all rows
is the sweeps of blocks of rows, which threads can run side by side: NumPy
releases the GIL in its element-wise loops and in BLAS, which is where a
sweep spends its time.  Each block has its own random generator, drawn
from the caller's, and the blocks depend on the number of rows only
(:func:`block_bounds`), so the draws, and every result, are the same
whatever the number of threads.
"""

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from emimpute.models._copula_nominal import NominalBlock

# Rows per block: at most MAX_ROW_BLOCK, and at least MIN_ROW_BLOCK (a
# block's column is then 80 kB: the Python overhead of a thread's calls per
# column is small against its arithmetic) unless that leaves fewer than
# THREAD_BLOCKS blocks.  Measured, fit_transform of the benchmark's mixed
# data (p = 30) on 2 cores, three runs each: at n = 100,000, 4 blocks of
# 25,000 took 3.8-3.9 s against 4.1-4.2 s with 10 of 10,000 (fewer calls,
# each on more rows); at 50,000, 4 of 12,500 2.0 s against 2.3-2.4 s with
# 5 of 10,000 (3 and 2 per thread); at 20,000, 4 of 5,000 took 1.15 s
# against 1.0 s with 2 of 10,000.
MAX_ROW_BLOCK = 25_000
MIN_ROW_BLOCK = 10_000
THREAD_BLOCKS = 4


@functools.cache
def _pool():
    """One pool for the process, a thread per core available to it."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return ThreadPoolExecutor(max_workers=max(cores, 1))


@dataclass(frozen=True)
class RowBlock:
    """Rows ``rows`` (a slice) of a chain, with their nominal blocks and
    their own random generator."""

    rows: slice
    blocks: list
    rng: np.random.Generator


def block_bounds(n):
    """Where the row blocks of n rows start, and n: blocks of equal size
    (to a row), as few as ``MAX_ROW_BLOCK`` allows but at least
    ``THREAD_BLOCKS`` when each can keep ``MIN_ROW_BLOCK`` rows.

    Examples
    --------
    >>> block_bounds(5_000).tolist(), block_bounds(30_000).tolist()
    ([0, 5000], [0, 10000, 20000, 30000])
    >>> block_bounds(100_000).tolist()
    [0, 25000, 50000, 75000, 100000]
    """
    n_blocks = max(
        -(-n // MAX_ROW_BLOCK), min(THREAD_BLOCKS, n // MIN_ROW_BLOCK), min(n, 1)
    )
    return np.linspace(0, n, n_blocks + 1).round().astype(int)


def row_blocks(n, blocks, rng):
    """The :class:`RowBlock` s of n rows (nominal ``blocks`` cut to them)."""
    bounds = block_bounds(n)
    seeds = rng.integers(0, 2**63 - 1, size=len(bounds) - 1)
    out = []
    for start, end, seed in zip(bounds[:-1], bounds[1:], seeds, strict=True):
        rows = slice(int(start), int(end))
        part = [NominalBlock(b.dims, b.mu, b.level[rows]) for b in blocks]
        out.append(RowBlock(rows, part, np.random.default_rng(seed)))
    return out


def run_blocks(function, parts):
    """``[function(part) for part in parts]``, the calls on threads (one
    block: in this thread)."""
    if len(parts) == 1:
        return [function(parts[0])]
    return list(_pool().map(function, parts))
