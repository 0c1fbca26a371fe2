"""Conditional normal moments of missing cells, vectorised over rows.

For a row with observed cells o and missing cells m, under N(mu, S) with
precision K = inv(S) (Little & Rubin 2002, sec. 11.2, rewritten through K):

* conditional mean  c = mu_m - inv(K_mm) K_mo (x_o - mu_o)
* conditional cov   C = inv(K_mm)
* log det S_oo      = log det S + log det K_mm
* Mahalanobis term  d_o' inv(S_oo) d_o = d' K d - g_m' C g_m, with d = x - mu,
  d_m = 0 and g = d K, so that g_m = K_mo d_o.

One ``d @ K`` product serves every row; what remains per row is a small k x k
factorisation, done for all rows with the same k at once (batch-last stacks,
see :mod:`emimpute.gaussian._batched_cholesky`).  Rows are processed in chunks so that
memory stays a small multiple of one chunk, whatever n is.
"""

from dataclasses import dataclass

import numpy as np

from emimpute.gaussian import _compiled
from emimpute.gaussian._batched_cholesky import (
    SMALL_BATCH,
    batched_cholesky_inverse,
    gram_lower_rows,
)

LOG_2PI = np.log(2.0 * np.pi)


# A chunk whose rows share at most this fraction of distinct missingness
# patterns factorises each pattern's K_mm once instead of once per row.
SHARED_PATTERN_RATIO = 0.25


@dataclass(frozen=True)
class Chunk:
    """A block of rows that all have the same number k of missing cells.

    When few distinct patterns occur among them (as in surveys with skip
    logic or merged sources), ``patterns`` holds each distinct pattern once
    and ``pattern_index`` says which one each row has; otherwise both are
    None and every row is handled on its own.
    """

    rows: np.ndarray  # (n_chunk,) row indices into the data matrix
    missing: np.ndarray  # (k, n_chunk) missing column indices, batch-last
    patterns: np.ndarray | None = None  # (k, n_patterns)
    pattern_index: np.ndarray | None = None  # (n_chunk,)


def precision_and_logdet(covariance):
    """``inv(S)`` and ``log det S`` from one Cholesky factorisation.

    Raises ``numpy.linalg.LinAlgError`` if S is not positive definite.
    """
    factor = np.linalg.cholesky(covariance)
    inv_factor = np.linalg.inv(factor)
    return inv_factor.T @ inv_factor, 2.0 * np.log(np.diag(factor)).sum()


def chunk_rows_for(n_features, n_missing=1):
    """Rows per chunk: about 2 MB of float64 in the (n, p) and (k, k, n) blocks."""
    per_row = max(n_features, n_missing * n_missing, 1)
    return int(np.clip(2**18 // per_row, 256, 16384))


def plan_chunks(mask, rows, chunk_size=None, find_shared_patterns=True):
    """Group ``rows`` by their number of missing cells, then cut into chunks.

    Grouping over all rows first (not chunk by chunk) keeps the chunks large,
    so the per-operation overhead of NumPy is paid rarely.

    Parameters
    ----------
    mask : ndarray of bool, shape (n, p)
        True where a cell is missing.
    rows : ndarray of int
        The rows to plan for; rows with nothing missing are left out.
    chunk_size : int, optional
        Rows per chunk; by default from :func:`chunk_rows_for`.
    find_shared_patterns : bool, default=True
        Whether to look for patterns shared by the rows of a chunk (a sort
        per chunk).  Only the NumPy kernel uses them; the compiled one
        factorises every row's K_mm anyway, so its callers pass False.

    Returns
    -------
    list of Chunk
    """
    counts = mask[rows].sum(axis=1)
    order = np.argsort(counts, kind="stable")
    bounds = np.flatnonzero(np.diff(counts[order])) + 1
    chunks = []
    for group in np.split(order, bounds):
        k = int(counts[group[0]]) if len(group) else 0
        if k == 0:
            continue
        size = chunk_size or chunk_rows_for(mask.shape[1], k)
        for start in range(0, len(group), size):
            chunk_rows = rows[group[start : start + size]]
            # flatnonzero walks row-major: each row's k column indices are
            # contiguous and increasing.  (It is several times faster than
            # the 2-d nonzero, which builds an index array per axis.)
            chunk_mask = mask[chunk_rows]
            cols = (np.flatnonzero(chunk_mask) % mask.shape[1]).reshape(
                len(chunk_rows), k
            )
            if not find_shared_patterns:
                chunks.append(Chunk(chunk_rows, np.ascontiguousarray(cols.T)))
                continue
            _, first, index = np.unique(
                _pattern_keys(chunk_mask), return_index=True, return_inverse=True
            )
            if len(first) > SHARED_PATTERN_RATIO * len(cols):
                patterns = index = None
            else:
                patterns = np.ascontiguousarray(cols[first].T)
            chunks.append(
                Chunk(chunk_rows, np.ascontiguousarray(cols.T), patterns, index)
            )
    return chunks


def _pattern_keys(mask):
    """One key per row of ``mask`` that identifies its pattern exactly.

    Bits packed into an unsigned 64-bit integer when p <= 64 (fast to sort),
    into an opaque byte string otherwise.
    """
    packed = np.packbits(mask, axis=1, bitorder="little")
    width = packed.shape[1]
    if width <= 8:
        padded = np.zeros((len(mask), 8), dtype=np.uint8)
        padded[:, :width] = packed
        return padded.view(np.uint64).ravel()
    return np.ascontiguousarray(packed).view(np.dtype((np.void, width))).ravel()


@dataclass
class ChunkMoments:
    """E-step quantities of one chunk (see module docstring)."""

    completed: np.ndarray  # (n_chunk, p) rows with missing cells filled by c
    loglik: np.ndarray  # (n_chunk,) observed-data log-likelihood per row
    cov_sum: np.ndarray  # (p*p,) sum over rows of C scattered on its (m, m) block
    variance: np.ndarray  # (n_chunk, p) diag(C) at missing cells, 0 elsewhere
    factor: np.ndarray = None  # (k, k, n_chunk) W with C = W' W, if asked for
    # (n_chunk,) observed-part Mahalanobis distances d_o' inv(S_oo) d_o and
    # log det K_mm per row (the multivariate t needs them row by row)
    distance: np.ndarray = None
    logdet_mm: np.ndarray = None


def chunk_moments(
    block,
    chunk,
    mean,
    precision,
    logdet_cov,
    *,
    want_cov_sum=True,
    want_variance=False,
    want_factor=False,
    rng=None,
):
    """Conditional moments of the missing cells of a block of rows.

    Parameters
    ----------
    block : ndarray of shape (n_chunk, p), float64
        Rows that all have k missing cells; overwritten with the completed
        rows (the values at missing cells are ignored on input).
    chunk : Chunk
        The rows' missing columns (and shared patterns, if any).
    mean, precision : ndarrays of shape (p,) and (p, p)
    logdet_cov : float
        ``log det S``.
    want_cov_sum, want_variance, want_factor : bool
        Whether to accumulate the conditional covariances (for the M-step),
        to return the conditional variances per cell (for users), and to
        return each row's factor W of its conditional covariance C = W' W
        (W lower triangular, batch-last; for the selection model's nodes).
    rng : numpy.random.RandomState or None
        If given, missing cells are *drawn* from N(c, C) instead of set to c.

    Returns
    -------
    ChunkMoments
    """
    p = mean.shape[0]
    missing = chunk.missing
    deviation = block - mean
    positions = np.arange(len(block))[None, :]
    deviation[positions, missing] = 0.0  # d_m = 0, so that (d K)_m = K_mo d_o
    gradient = deviation @ precision
    quad = np.einsum("ij,ij->i", deviation, gradient)
    n_observed = p - missing.shape[0]
    # Factorise K_mm once per row, or once per distinct pattern when shared.
    factored = missing if chunk.patterns is None else chunk.patterns
    flat_index = factored[:, None, :] * p + factored[None, :, :]  # (k, k, .)
    W, logdet_mm = batched_cholesky_inverse(precision.ravel()[flat_index])
    cov_sum = None
    if chunk.patterns is None:
        if want_cov_sum:
            cov_sum = _scatter_conditional_covariances(W, missing, flat_index, p)
    else:
        if want_cov_sum:  # count * C of a pattern = (sqrt(count) W)' (sqrt(count) W)
            counts = np.bincount(chunk.pattern_index, minlength=factored.shape[1])
            cov_sum = _scatter_conditional_covariances(
                W * np.sqrt(counts), factored, flat_index, p
            )
        W, logdet_mm = W[:, :, chunk.pattern_index], logdet_mm[chunk.pattern_index]
    g = gradient[positions, missing]  # (k, n): K_mo d_o
    Wg = np.einsum("abn,bn->an", W, g)  # C g = W' (W g), as C = inv(K_mm) = W' W
    quad -= np.einsum("an,an->n", Wg, Wg)
    values = mean[missing] - np.einsum("lan,ln->an", W, Wg)
    if rng is not None:
        # W' z with z ~ N(0, I) has covariance W' W = C.
        z = rng.standard_normal(size=Wg.shape)
        values += np.einsum("lan,ln->an", W, z)
    block[positions, missing] = values
    variance = None
    if want_variance:
        variance = np.zeros_like(block)
        variance[positions, missing] = np.einsum("lan,lan->an", W, W)
    if n_observed == 0:  # nothing observed: density 1 exactly, not a rounding
        loglik = np.zeros(len(block))
    else:
        loglik = -0.5 * (n_observed * LOG_2PI + logdet_cov + logdet_mm + quad)
    return ChunkMoments(
        block,
        loglik,
        cov_sum,
        variance,
        W if want_factor else None,
        np.maximum(quad, 0.0),  # rounding can leave a tiny negative
        logdet_mm,
    )


def _scatter_conditional_covariances(W, missing, flat_index, p):
    """Sum over rows of C = W' W placed on each row's (m, m) block, flattened."""
    if W.shape[2] < SMALL_BATCH:  # few rows: fewest NumPy calls
        C = np.einsum("lan,lbn->abn", W, W)
        return np.bincount(flat_index.ravel(), weights=C.ravel(), minlength=p * p)
    # Many rows: only the lower triangle of each C, scattered onto the lower
    # triangle of the sum (each row's missing columns are increasing), mirrored.
    lower = np.zeros(p * p)
    for a, row in gram_lower_rows(W):
        index = missing[a] * p + missing[: a + 1]
        lower += np.bincount(index.ravel(), weights=row.ravel(), minlength=p * p)
    lower = lower.reshape(p, p)
    return (lower + lower.T - np.diag(np.diag(lower))).ravel()


@dataclass
class ConditionalMoments:
    """Result of :func:`conditional_moments`."""

    completed: np.ndarray  # (n, p) data with missing cells imputed
    variance: np.ndarray  # (n, p) conditional variance, 0 at observed cells
    loglik: np.ndarray  # (n,) observed-data log-likelihood of each row


def conditional_moments(
    X, mean, covariance, *, out=None, want_variance=False, want_loglik=False, rng=None
):
    """Impute every missing cell from N(mu, S) given its row's observed cells.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Data with NaN at missing cells.
    mean, covariance : ndarrays of shape (p,) and (p, p)
        Parameters of the normal model; ``covariance`` positive definite.
    out : ndarray of shape (n, p), optional
        Where to write the completed data (may be ``X`` itself, to impute in
        place); a new float64 array by default.
    want_variance, want_loglik : bool
        Also return the conditional variance of every cell and the
        observed-data log-likelihood of every row (otherwise ``None``).
    rng : numpy.random.RandomState, optional
        Draw the missing cells from their conditional distribution N(c, C)
        instead of setting them to the conditional mean c.

    Returns
    -------
    ConditionalMoments

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, np.nan], [np.nan, np.nan]])
    >>> result = conditional_moments(X, np.zeros(2), np.array([[1.0, 0.5], [0.5, 1.0]]),
    ...                              want_variance=True)
    >>> result.completed
    array([[1. , 0.5],
           [0. , 0. ]])
    >>> result.variance
    array([[0.  , 0.75],
           [1.  , 1.  ]])
    """
    n, p = X.shape
    precision, logdet_cov = precision_and_logdet(covariance)
    if out is None:
        out = np.array(X, dtype=np.float64)
    elif out is not X:
        out[...] = X  # complete rows are not touched below
    mask = np.isnan(X)
    incomplete = mask.any(axis=1)
    variance = np.zeros((n, p)) if want_variance else None
    loglik = np.empty(n) if want_loglik else None
    # Plain conditional means (transform) go through the compiled kernel.
    means_only = not (want_variance or want_loglik or rng is not None)
    compiled = means_only and _compiled.available()
    for chunk in plan_chunks(
        mask, np.flatnonzero(incomplete), find_shared_patterns=not compiled
    ):
        if compiled:
            if chunk.missing.shape[0] == p:  # nothing observed: the mean
                out[chunk.rows] = mean
                continue
            block = np.array(X[chunk.rows], dtype=np.float64)
            _compiled.complete_blocks(
                [(block, chunk.missing)], mean, precision, want_cov_sum=False
            )
            out[chunk.rows] = block
            continue
        moments = chunk_moments(
            np.array(X[chunk.rows], dtype=np.float64),
            chunk,
            mean,
            precision,
            logdet_cov,
            want_cov_sum=False,
            want_variance=want_variance,
            rng=rng,
        )
        out[chunk.rows] = moments.completed
        if want_variance:
            variance[chunk.rows] = moments.variance
        if want_loglik:
            loglik[chunk.rows] = moments.loglik
    if want_loglik:
        complete = np.flatnonzero(~incomplete)
        step = chunk_rows_for(p)
        for start in range(0, len(complete), step):
            rows = complete[start : start + step]
            deviation = np.asarray(X[rows], dtype=np.float64) - mean
            quad = np.einsum("ij,ij->i", deviation, deviation @ precision)
            loglik[rows] = -0.5 * (p * LOG_2PI + logdet_cov + quad)
    return ConditionalMoments(out, variance, loglik)
