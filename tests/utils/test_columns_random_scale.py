"""The one-place helpers: column lookup, seeding, the standardising scale
and ridge prior, the scikit-learn compatibility imports."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from emimpute.utils import _sklearn_compat
from emimpute.utils._columns import column_position, column_positions, describe
from emimpute.utils._random import child_seeds, resolve_random_state
from emimpute.utils._scale import ridge_scatter, standardising_scale

NAMES = ["age", "income", "10"]


@pytest.mark.parametrize(
    ("column", "position"), [("age", 0), ("income", 1), ("10", 2), (2, 2), (0, 0)]
)
def test_a_column_by_name_or_position(column, position):
    assert column_position(NAMES, column, "delta") == position


@pytest.mark.parametrize("column", ["wage", 3, -1, True, 1.0, None])
def test_an_unknown_column_is_named_with_the_parameter(column):
    with pytest.raises(ValueError, match=rf"delta names {column!r}, which is not"):
        column_position(NAMES, column, "delta")


def test_positions_sorted_without_repeats():
    assert_array_equal(column_positions(NAMES, ["income", 0, "age"], "x"), [0, 1])
    assert describe(NAMES, [0, 1]) == "columns 'age', 'income'"


def test_seeds_are_reproducible_and_distinct():
    assert_array_equal(child_seeds(7, size=4), child_seeds(7, size=4))
    assert len(set(child_seeds(7, size=100))) == 100
    rng = resolve_random_state(7)
    first, second = child_seeds(rng), child_seeds(rng)
    assert first != second  # a generator moves on; an int starts afresh
    # The seeds the estimators drew before this helper existed.
    assert child_seeds(7) == np.random.RandomState(7).randint(2**31 - 1)


def test_scale_and_ridge_prior():
    scale = np.array([2.0, 0.0, np.nan, np.inf])
    assert_array_equal(standardising_scale(scale), [2.0, 1.0, 1.0, 1.0])
    # The M-step (n S + ridge diag(s^2)) / (n + ridge) of a sample whose ML
    # covariance is 0 gives ridge s^2 / (n + ridge) on the diagonal.
    n, ridge = 10, 5.0
    prior = ridge_scatter(np.array([3.0, 0.5]), ridge)
    assert_array_equal(np.diag(prior) / (n + ridge), [45.0 / 15.0, 1.25 / 15.0])
    assert prior[0, 1] == 0.0


def test_the_compatibility_module_exports_what_it_names():
    for name in _sklearn_compat.__all__:
        assert getattr(_sklearn_compat, name) is not None
