"""Batched Cholesky inverse against NumPy's LAPACK routines.

Identities on fixed inputs, so tolerances near machine precision: the
forward error of an inverse is below a small multiple of cond(A) * eps, and
these stacks have cond(A) < 2e5, so 1e-10 on the scale of the inverse holds
on any CPU (observed: 1.3e-14).
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from emimpute.gaussian._batched_cholesky import batched_cholesky_inverse


def random_spd_stack(k, n, seed):
    """``n`` random SPD k x k matrices, batch-last, with varied conditioning."""
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, k, k))
    scales = np.exp(rng.uniform(-2.0, 2.0, size=(n, k)))
    A = B @ B.transpose(0, 2, 1) + 0.1 * np.eye(k)
    A = A * scales[:, :, None] * scales[:, None, :]
    return np.ascontiguousarray(A.transpose(1, 2, 0))  # (k, k, n)


@pytest.mark.parametrize("k", range(1, 9))
def test_inverse_and_logdet_match_numpy(k, batch_path):
    n = 50
    A = random_spd_stack(k, n, seed=k)
    W, logdet = batched_cholesky_inverse(A)
    assert W.shape == (k, k, n)
    assert logdet.shape == (n,)
    stack = A.transpose(2, 0, 1)  # (n, k, k), NumPy's layout
    Ws = W.transpose(2, 0, 1)
    assert_allclose(np.triu(Ws, 1), 0.0)
    assert np.all(np.diagonal(Ws, axis1=1, axis2=2) > 0)
    inverse = Ws.transpose(0, 2, 1) @ Ws
    expected = np.linalg.inv(stack)
    scale = np.abs(expected).max(axis=(1, 2), keepdims=True)
    assert_allclose(inverse / scale, expected / scale, rtol=0, atol=1e-10)
    # W is the inverse of the lower Cholesky factor itself.
    identity = np.broadcast_to(np.eye(k), stack.shape)
    assert_allclose(Ws @ np.linalg.cholesky(stack), identity, atol=1e-10)
    sign, expected_logdet = np.linalg.slogdet(stack)
    assert np.all(sign == 1)
    assert_allclose(logdet, expected_logdet, rtol=1e-10, atol=1e-10)


def test_single_matrix_and_identity():
    A = np.eye(3)[:, :, None] * 4.0
    W, logdet = batched_cholesky_inverse(A)
    assert_allclose(W[:, :, 0], np.eye(3) / 2.0)
    assert logdet[0] == pytest.approx(3 * np.log(4.0))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_not_positive_definite_raises(k, batch_path):
    A = random_spd_stack(k, 10, seed=100 + k)
    # One matrix in the middle of the stack gets a negative eigenvalue.
    bad = A[:, :, 4]
    values, vectors = np.linalg.eigh(bad)
    values[0] = -1.0
    A[:, :, 4] = (vectors * values) @ vectors.T
    with pytest.raises(np.linalg.LinAlgError):
        batched_cholesky_inverse(A)


def test_singular_matrix_raises_linalg_error_without_warnings(batch_path):
    # A zero pivot (positive semi-definite, singular) must be reported as a
    # LinAlgError, like numpy.linalg.cholesky, not as a RuntimeWarning first.
    A = np.array([[1.0, 1.0], [1.0, 1.0]])[:, :, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(np.linalg.LinAlgError):
            batched_cholesky_inverse(A)
