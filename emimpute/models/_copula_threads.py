"""Row blocks of the copula's Gibbs chains, run on threads (statistical
kernel).

Given R, the rows' latent vectors are independent, so a sweep of all rows
is the sweeps of blocks of rows, which threads can run side by side: NumPy
releases the GIL in its element-wise loops and in BLAS, which is where a
sweep spends its time.  Each block has its own random generator, drawn
from the caller's, and blocks have a fixed size (``ROW_BLOCK``), so the
draws, and every result, are the same whatever the number of threads.
"""

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from emimpute.models._copula_nominal import NominalBlock

# Rows per block (a block's columns are then 80 kB each: large enough that
# a thread's Python overhead per column is small against its arithmetic).
ROW_BLOCK = 10_000


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


def row_blocks(n, blocks, rng):
    """The :class:`RowBlock` s of n rows (nominal ``blocks`` cut to them)."""
    starts = range(0, n, ROW_BLOCK)
    seeds = rng.integers(0, 2**63 - 1, size=len(starts))
    out = []
    for start, seed in zip(starts, seeds, strict=True):
        rows = slice(start, min(start + ROW_BLOCK, n))
        part = [NominalBlock(b.dims, b.mu, b.level[rows]) for b in blocks]
        out.append(RowBlock(rows, part, np.random.default_rng(seed)))
    return out


def run_blocks(function, parts):
    """``[function(part) for part in parts]``, the calls on threads (one
    block: in this thread)."""
    if len(parts) == 1:
        return [function(parts[0])]
    return list(_pool().map(function, parts))
