"""Cholesky factorisation of many small SPD matrices at once.

The E-step needs, for every incomplete row, the inverse and the log
determinant of ``K_mm`` (the precision matrix restricted to the row's missing
cells).  NumPy's stacked LAPACK calls pay a fixed cost per matrix, which
dominates when there are millions of 2x2 ... 10x10 matrices.  Here the stack is
stored *batch-last*, shape ``(k, k, n)``, and the textbook column-by-column
algorithms loop over the k matrix indices only, each step being one vectorised
operation over all n matrices (Golub & Van Loan, *Matrix Computations*, 4th ed.,
Alg. 4.2.1 for the factorisation, 3.1.1 for the triangular inverse).  Only the
non-zero triangle is touched, so the work is about k^3 / 2 per matrix.
"""

import numpy as np

# Below this many matrices, NumPy's stacked LAPACK calls (a fixed cost per
# matrix) beat the vectorised loops (a fixed cost per matrix *entry*).
SMALL_BATCH = 128


def _cholesky_inverse_lapack(A):
    """:func:`batched_cholesky_inverse` through stacked LAPACK calls."""
    L = np.linalg.cholesky(np.moveaxis(A, 2, 0))  # raises LinAlgError
    W = np.tril(np.linalg.inv(L))  # exactly triangular, as callers rely on
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    return np.ascontiguousarray(np.moveaxis(W, 0, 2)), logdet


def batched_cholesky_inverse(A):
    """Inverse Cholesky factor and log determinant of a batch-last SPD stack.

    Parameters
    ----------
    A : ndarray of shape (k, k, n)
        ``A[:, :, i]`` is a symmetric positive definite matrix.

    Returns
    -------
    W : ndarray of shape (k, k, n)
        Lower triangular with ``W[:, :, i] = inv(cholesky(A[:, :, i]))``, so
        that ``inv(A_i) = W_i.T @ W_i``.
    logdet : ndarray of shape (n,)
        ``log det A_i``.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a matrix is not positive definite.

    Notes
    -----
    Stacks of fewer than ``SMALL_BATCH`` matrices go through NumPy's stacked
    LAPACK routines instead, which are faster there.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[4.0, 2.0], [2.0, 3.0]])[:, :, None]
    >>> W, logdet = batched_cholesky_inverse(A)
    >>> np.allclose(W[:, :, 0].T @ W[:, :, 0], np.linalg.inv(A[:, :, 0]))
    True
    >>> bool(np.isclose(logdet[0], np.log(8.0)))
    True
    """
    k, _, n = A.shape
    if n < SMALL_BATCH:
        return _cholesky_inverse_lapack(A)
    L = np.zeros_like(A)
    # A non-positive pivot gives NaN (or 0, then inf) in its matrix, which
    # propagates to that matrix's later pivots: one check after the loop.
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(k):
            pivot = A[j, j] - np.einsum("ln,ln->n", L[j, :j], L[j, :j])
            L[j, j] = np.sqrt(pivot)
            if j + 1 < k:
                below = A[j + 1 :, j] - np.einsum(
                    "iln,ln->in", L[j + 1 :, :j], L[j, :j]
                )
                L[j + 1 :, j] = below / L[j, j]
    diagonal = np.diagonal(L, axis1=0, axis2=1).T  # (k, n)
    if not np.all(diagonal > 0.0):
        raise np.linalg.LinAlgError("matrix is not positive definite")
    W = np.zeros_like(A)
    inverse_diagonal = 1.0 / diagonal
    for c in range(k):
        W[c, c] = inverse_diagonal[c]
        for i in range(c + 1, k):
            dot = np.einsum("ln,ln->n", L[i, c:i], W[c:i, c])
            W[i, c] = -dot * inverse_diagonal[i]
    return W, 2.0 * np.log(diagonal).sum(axis=0)


def gram_lower_rows(W):
    """Rows of the lower triangle of ``W_i.T @ W_i`` for a lower-triangular stack.

    With W from :func:`batched_cholesky_inverse`, ``W_i.T @ W_i = inv(A_i)``.

    Parameters
    ----------
    W : ndarray of shape (k, k, n)
        Lower triangular in its first two axes.

    Yields
    ------
    a : int
        Row index.
    row : ndarray of shape (a + 1, n)
        ``(W_i.T @ W_i)[a, :a + 1]`` for every i; ``row[a]`` is the diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[2.0, 0.0], [1.0, 3.0]])[:, :, None]
    >>> [row[:, 0].tolist() for _, row in gram_lower_rows(W)]
    [[5.0], [3.0, 9.0]]
    """
    k = W.shape[0]
    for a in range(k):
        # (W'W)[a, b] = sum over l >= a of W[l, a] W[l, b], as W[l, a] = 0 for l < a.
        yield a, np.einsum("ln,lbn->bn", W[a:, a], W[a:, : a + 1])
