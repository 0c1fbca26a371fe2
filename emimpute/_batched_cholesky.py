"""Cholesky factorisation of many small SPD matrices at once.

The E-step needs, for every incomplete row, the inverse and the log
determinant of ``K_mm`` (the precision matrix restricted to the row's missing
cells).  NumPy's stacked LAPACK calls pay a fixed cost per matrix, which
dominates when there are millions of 2x2 ... 10x10 matrices.  Here the stack is
stored *batch-last*, shape ``(k, k, n)``, and the textbook column-by-column
algorithms loop over the k matrix indices only, each step being one vectorised
operation over all n matrices (Golub & Van Loan, *Matrix Computations*, 4th ed.,
Alg. 4.2.1 for the factorisation, 3.1.1 for the triangular inverse).
"""

import numpy as np


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
    k = A.shape[0]
    L = np.zeros_like(A)
    # A non-positive pivot gives NaN (or 0, then inf) in its matrix, which
    # propagates to that matrix's later pivots: one check after the loop.
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(k):
            pivot = A[j, j] - (L[j, :j] ** 2).sum(axis=0)
            L[j, j] = np.sqrt(pivot)
            if j + 1 < k:
                below = A[j + 1 :, j] - (L[j + 1 :, :j] * L[j, :j]).sum(axis=1)
                L[j + 1 :, j] = below / L[j, j]
    diagonal = np.diagonal(L, axis1=0, axis2=1)
    if not np.all(diagonal > 0.0):
        raise np.linalg.LinAlgError("matrix is not positive definite")
    W = np.zeros_like(A)
    for i in range(k):
        W[i, i] = 1.0 / L[i, i]
        if i:
            W[i, :i] = -(L[i, :i, None] * W[:i, :i]).sum(axis=0) * W[i, i]
    return W, 2.0 * np.log(diagonal).sum(axis=-1)
