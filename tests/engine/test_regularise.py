"""The automatic ridge kernel (emimpute.engine._regularise), called directly."""

from types import SimpleNamespace

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from emimpute.engine._model import SingularCovarianceError
from emimpute.engine._regularise import (
    LADDER,
    NOISE,
    degenerate_columns,
    describe_problems,
    fit_with_automatic_ridge,
    small_eigen_columns,
)


def test_degenerate_columns_before_fitting():
    found = degenerate_columns([5, 1, 4, 0, 3], [2.0, 0.0, 0.0, np.nan, 1.0])
    assert_array_equal(found["single"], [1])
    assert_array_equal(found["constant"], [2])
    assert degenerate_columns([5, 4], [1.0, 2.0]) == {}


def test_small_eigen_columns_finds_the_columns_of_a_linear_relation():
    # x2 = x0 + x1 exactly: the covariance of (x0, x1, x2, x3) is singular
    # along (1, 1, -1, 0), which x3 (independent) has no part in.
    loadings = np.array([[1.0, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    covariance = loadings @ np.diag([1.0, 2.0, 3.0]) @ loadings.T
    scale = np.sqrt(np.diag(covariance))
    assert_array_equal(small_eigen_columns(covariance, scale, 1e-10), [0, 1, 2])
    assert len(small_eigen_columns(np.eye(3), np.ones(3), 1e-10)) == 0


def fake_fit(singular_below=0.0, covariance=None):
    """A fit that is singular at ridge <= singular_below; records its calls."""
    calls = []

    def fit(ridge, min_tol):
        calls.append((ridge, min_tol))
        if ridge <= singular_below:
            raise SingularCovarianceError("singular")
        return SimpleNamespace(covariance=covariance, converged=True)

    return fit, calls


def test_a_proper_mle_is_kept_and_a_user_ridge_used_as_given():
    fit, calls = fake_fit(singular_below=-1.0, covariance=np.eye(2))
    kept = fit_with_automatic_ridge(fit, ridge=0.0, n_rows=10, scale=np.ones(2))
    assert kept.ridge == 0.0 and kept.problems == {} and calls == [(0.0, 0.0)]
    given = fit_with_automatic_ridge(fit, ridge=3.0, n_rows=10, scale=np.ones(2))
    assert given.ridge == 3.0 and given.problems == {}


def test_the_smallest_proper_rung_with_its_rounding_floor():
    covariance = np.array([[1.0, 1.0], [1.0, 1.0 + 1e-8]])  # collinear
    n = 50
    fit, calls = fake_fit(singular_below=LADDER[0] * n, covariance=covariance)
    fitted = fit_with_automatic_ridge(fit, ridge=0.0, n_rows=n, scale=np.ones(2))
    assert fitted.ridge == LADDER[1] * n
    assert calls[-1] == (LADDER[1] * n, NOISE / LADDER[1])
    assert_array_equal(fitted.problems["collinear"], [0, 1])


def test_known_degenerate_columns_skip_the_fit_without_a_prior():
    fit, calls = fake_fit(covariance=np.diag([1.0, 1e-9]))
    known = {"constant": np.array([1])}
    fitted = fit_with_automatic_ridge(
        fit, ridge=0.0, n_rows=20, scale=np.ones(2), known=known
    )
    assert calls[0][0] == LADDER[0] * 20  # no attempt at ridge 0
    assert list(fitted.problems) == ["constant"]  # x1 is not also "collinear"


def test_every_rung_singular_raises():
    fit, _ = fake_fit(singular_below=np.inf)
    with pytest.raises(SingularCovarianceError):
        fit_with_automatic_ridge(fit, ridge=0.0, n_rows=5, scale=np.ones(2))


def test_the_message_names_columns_and_shortens_long_lists():
    names = [f"c{j}" for j in range(12)]
    problems = {"constant": np.array([3]), "collinear": np.arange(10)}
    message = describe_problems(problems, names, 2e-7)
    assert "no variance in column 'c3'" in message
    assert "'c7' and 2 more" in message and "ridge=2e-07" in message
