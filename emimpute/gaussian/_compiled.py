"""Threaded driver of the compiled E-step (``emimpute/gaussian/_fast_estep.c``).

The C function fills the missing cells of rows that all have k missing cells
with their conditional means and accumulates the sums the M-step needs (the
completed rows, the conditional covariances, the log-determinants of the
K_mm blocks); see the comment at the top of the C file.  It releases the
GIL, so the rows are shared out among threads, each with its own
accumulators, which are added up at the end.

When the package was installed without a C compiler the extension is absent,
:data:`complete_rows` is None, and the callers use the NumPy kernel of
:mod:`emimpute.gaussian._conditional` instead, which gives the same numbers.

The extension holds two copies of the kernel, one for any x86-64 CPU
("generic") and one for CPUs with AVX2 and FMA ("avx2"), and runs the
fastest the CPU supports.  The environment variable ``EMIMPUTE_KERNEL``,
read when this module is imported, forces a choice:

``generic`` or ``avx2``
    that copy (an error at import if the CPU cannot run it, or the
    extension was not built);
``numpy``
    no compiled code at all: the NumPy kernel;
unset, empty or ``auto``
    the default.

It exists so that the test suite can be run on every path (FMA rounds
``a * b + c`` once where the generic copy rounds twice, so the paths agree to
rounding, not bit for bit); :func:`kernel_path` says which one is in use.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:
    from emimpute.gaussian import _fast_estep
except ImportError:  # pragma: no cover - depends on the build
    _fast_estep = None

KERNEL_ENV = "EMIMPUTE_KERNEL"
KERNEL_CHOICES = ("auto", "generic", "avx2", "numpy")


def _choose_kernel(choice):
    """The ``complete_rows`` function for an ``EMIMPUTE_KERNEL`` value (None
    for the NumPy kernel), after switching the extension to the copy asked
    for.

    Raises
    ------
    ValueError
        If ``choice`` is not one of :data:`KERNEL_CHOICES`.
    RuntimeError
        If a compiled copy is asked for and the extension was not built or
        the CPU cannot run that copy.
    """
    choice = choice.strip().lower() or "auto"
    if choice not in KERNEL_CHOICES:
        raise ValueError(
            f"{KERNEL_ENV}={choice!r}: expected one of {', '.join(KERNEL_CHOICES)}"
        )
    if choice == "numpy" or (choice == "auto" and _fast_estep is None):
        return None
    if _fast_estep is None:
        raise RuntimeError(
            f"{KERNEL_ENV}={choice} asks for the compiled E-step, but "
            "emimpute.gaussian._fast_estep was not built (reinstall with a C "
            "compiler), "
            f"or set {KERNEL_ENV}=numpy"
        )
    if choice != "auto":
        runnable = dict(_fast_estep.kernel_paths())
        if choice not in runnable:
            raise RuntimeError(
                f"{KERNEL_ENV}={choice}: this build of "
                f"emimpute.gaussian._fast_estep has "
                f"no {choice!r} kernel (it has: {', '.join(runnable)})"
            )
        if not runnable[choice]:
            raise RuntimeError(
                f"{KERNEL_ENV}={choice}: this CPU cannot run the {choice!r} "
                "kernel (it needs AVX2 and FMA, x86-64-v3); unset "
                f"{KERNEL_ENV} or set it to generic or numpy"
            )
        _fast_estep.set_kernel_path(choice)
    return _fast_estep.complete_rows


complete_rows = _choose_kernel(os.environ.get(KERNEL_ENV, ""))

# Below this many rows a second thread costs more than it saves.
MIN_ROWS_PER_THREAD = 4096


def available():
    """True when the compiled E-step was built and may be used."""
    return complete_rows is not None


def kernel_path():
    """The E-step kernel in use: ``"avx2"`` or ``"generic"`` (the compiled
    copies), or ``"numpy"`` (the extension is absent or switched off)."""
    if complete_rows is None:
        return "numpy"
    return _fast_estep.get_kernel_path()


def default_threads():
    """Threads for the E-step: the CPUs this process may use, capped by
    ``OMP_NUM_THREADS`` when set (the usual way to limit the threads of
    scientific Python libraries, e.g. under joblib)."""
    try:
        n_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n_cpus = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    if limit.isdigit() and int(limit) > 0:
        n_cpus = min(n_cpus, int(limit))
    return max(n_cpus, 1)


def complete_blocks(
    blocks,
    mean,
    precision,
    *,
    want_cov_sum=True,
    want_cross=False,
    n_threads=None,
    distances=None,
):
    """Impute every block in place and return the sums the M-step needs.

    Parameters
    ----------
    blocks : list of (ndarray of shape (n_b, p), ndarray of shape (k_b, n_b))
        Each block's rows (float64, C-contiguous, overwritten with the
        completed rows) and their missing columns (int64, batch-last, as in
        :class:`emimpute.gaussian._conditional.Chunk`); every row of a block has k_b
        missing cells, 0 < k_b < p.
    mean, precision : ndarrays of shape (p,) and (p, p)
    want_cov_sum, want_cross : bool
        Whether to accumulate the conditional covariances, and the
        cross-products of the completed rows (in the same pass over the rows,
        instead of a BLAS call afterwards whose idle threads would spin
        against these ones at the next E-step).
    n_threads : int, optional
        By default :func:`default_threads`, fewer for few rows.
    distances : list of ndarrays of shape (n_b,), optional
        One float64 array per block, filled with each row's observed-part
        Mahalanobis distance d_o' inv(S_oo) d_o (the multivariate t's
        weights need it per row).  None (the normal model) skips that work.

    Returns
    -------
    row_sum : ndarray of shape (p,)
        Sum of the completed rows.
    cov_sum : ndarray of shape (p, p) or None
        Sum over rows of the conditional covariance C = inv(K_mm) placed on
        the row's (m, m) block.
    logdet_sum : float
        Sum over rows of log det K_mm.
    cross : ndarray of shape (p, p) or None
        Sum over rows of x x', x the completed row.

    Raises
    ------
    numpy.linalg.LinAlgError
        If some K_mm is not numerically positive definite.
    """
    p = mean.shape[0]
    mean = np.ascontiguousarray(mean, dtype=np.float64)
    precision = np.ascontiguousarray(precision, dtype=np.float64)
    n_rows = sum(len(rows) for rows, _ in blocks)
    n_threads = _threads_for(n_rows, n_threads)

    def run(part):
        # Thread `part` takes the same slice of every block, so the work is
        # balanced whatever the mix of k.
        row_sum = np.zeros(p)
        cov_sum = np.zeros(p * p) if want_cov_sum else None
        cross = np.zeros(p * p) if want_cross else None
        logdet = 0.0
        for index, (rows, missing) in enumerate(blocks):
            start, stop = _share(len(rows), part, n_threads)
            d2 = None if distances is None else distances[index][start:stop]
            logdet += complete_rows(
                rows[start:stop],
                missing,
                start,
                mean,
                precision,
                cov_sum,
                row_sum,
                cross,
                d2,
            )
        return row_sum, cov_sum, logdet, cross

    results = _in_threads(run, n_threads)
    row_sum = np.sum([result[0] for result in results], axis=0)
    logdet_sum = sum(result[2] for result in results)
    if np.isnan(logdet_sum):
        raise np.linalg.LinAlgError("a K_mm block is not positive definite")
    cov_sum = _symmetric(results, 1, p) if want_cov_sum else None
    cross = _symmetric(results, 3, p) if want_cross else None
    return row_sum, cov_sum, float(logdet_sum), cross


def mixture_blocks(
    blocks,
    means,
    precisions,
    log_norm,
    *,
    n_threads=None,
    logliks=None,
    responsibilities=None,
    write_means=False,
):
    """The E-step of a mixture of normals over the blocks' rows, threaded.

    Parameters
    ----------
    blocks : list of (ndarray of shape (n_b, p), ndarray of shape (k_b, n_b))
        As :func:`complete_blocks`; the rows are changed only with
        ``write_means``.
    means : ndarray of shape (K, p)
    precisions : ndarray of shape (K, p, p)
    log_norm : ndarray of shape (K,)
        log pi_c - log det S_c / 2 per component.
    n_threads : int, optional
        By default :func:`default_threads`, fewer for few rows.
    logliks, responsibilities : lists of ndarrays, optional
        One per block, of shapes (n_b,) and (n_b, K) (float64,
        C-contiguous), filled with each row's log-likelihood and
        responsibilities.
    write_means : bool
        Fill the missing cells with the mixture's conditional means
        sum_c tau_c c_c.

    Returns
    -------
    resp_sum : ndarray of shape (K,)
    row_sum : ndarray of shape (K, p)
        sum_i tau_ic xhat_ic, xhat_ic the row completed by component c's
        conditional mean.
    cross : ndarray of shape (K, p, p)
        sum_i tau_ic (xhat_ic xhat_ic' + C_ic).
    loglik : float
        The sum of the rows' log-likelihoods.

    Raises
    ------
    numpy.linalg.LinAlgError
        If some K_c,mm is not positive definite.
    """
    n_comp, p = means.shape
    means = np.ascontiguousarray(means, dtype=np.float64)
    precisions = np.ascontiguousarray(precisions, dtype=np.float64)
    log_norm = np.ascontiguousarray(log_norm, dtype=np.float64)
    n_rows = sum(len(rows) for rows, _ in blocks)
    n_threads = _threads_for(n_rows, n_threads)

    def part_of(arrays, index, start, stop):
        return None if arrays is None else arrays[index][start:stop]

    def run(part):
        resp_sum, row_sum = np.zeros(n_comp), np.zeros(n_comp * p)
        cross, loglik = np.zeros(n_comp * p * p), 0.0
        for index, (rows, missing) in enumerate(blocks):
            start, stop = _share(len(rows), part, n_threads)
            loglik += _fast_estep.mixture_rows(
                rows[start:stop],
                missing,
                start,
                means,
                precisions,
                log_norm,
                resp_sum,
                row_sum,
                cross,
                part_of(logliks, index, start, stop),
                part_of(responsibilities, index, start, stop),
                write_means,
            )
        return resp_sum, row_sum, cross, loglik

    results = _in_threads(run, n_threads)
    loglik = sum(result[3] for result in results)
    if np.isnan(loglik):
        raise np.linalg.LinAlgError("a K_mm block is not positive definite")
    lower = np.sum([result[2] for result in results], axis=0).reshape(n_comp, p, p)
    cross = lower + np.swapaxes(lower, 1, 2)
    cross[:, np.arange(p), np.arange(p)] *= 0.5
    return (
        np.sum([result[0] for result in results], axis=0),
        np.sum([result[1] for result in results], axis=0).reshape(n_comp, p),
        cross,
        float(loglik),
    )


def weighted_sums(data, weights, n_threads=None):
    """Sums of weighted rows and weighted cross-products, threaded.

    Parameters
    ----------
    data : ndarray of shape (n, p), float64, C-contiguous
    weights : ndarray of shape (n,), float64
    n_threads : int, optional
        By default :func:`default_threads`, fewer for few rows.

    Returns
    -------
    row_sum : ndarray of shape (p,)
        sum_r w_r x_r.
    cross : ndarray of shape (p, p)
        sum_r w_r x_r x_r'.
    """
    n, p = data.shape
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    n_threads = _threads_for(n, n_threads)

    def run(part):
        start, stop = _share(n, part, n_threads)
        row_sum, cross = np.zeros(p), np.zeros(p * p)
        _fast_estep.weighted_sums(data[start:stop], weights[start:stop], row_sum, cross)
        return row_sum, cross

    results = _in_threads(run, n_threads)
    row_sum = np.sum([result[0] for result in results], axis=0)
    return row_sum, _symmetric(results, 1, p)


def _threads_for(n_rows, n_threads):
    """Threads for ``n_rows`` rows: ``n_threads`` (by default
    :func:`default_threads`), fewer for few rows."""
    if n_threads is None:
        n_threads = default_threads()
    return int(max(1, min(n_threads, n_rows // MIN_ROWS_PER_THREAD)))


def _share(length, part, n_threads):
    """(start, stop) of thread ``part``'s slice of ``length`` rows."""
    return length * part // n_threads, length * (part + 1) // n_threads


def _in_threads(run, n_threads):
    """``[run(0), ..., run(n_threads - 1)]``, in threads when more than one
    (the kernel releases the GIL)."""
    if n_threads == 1:
        return [run(0)]
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(run, range(n_threads)))


def _symmetric(results, index, p):
    """Add up the threads' lower triangles and mirror them."""
    lower = np.sum([result[index] for result in results], axis=0).reshape(p, p)
    return lower + lower.T - np.diag(np.diag(lower))
