"""Amputation: realised proportions, and missingness that depends on what the
mechanism says and nothing else (checked on independent columns, so that a
dependence can only come from the mechanism)."""

import numpy as np
import pandas as pd
import pytest

from emimpute.ampute import ampute

N = 20_000


@pytest.fixture(scope="module")
def independent():
    """Three independent standard normal columns."""
    return np.random.default_rng(0).standard_normal((N, 3))


def std_difference(values, selected):
    a, b = values[selected], values[~selected]
    return (a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2)


@pytest.mark.parametrize("mechanism", ["MCAR", "MAR", "MNAR"])
@pytest.mark.parametrize("prop", [0.1, 0.5, 0.8])
def test_realised_proportion_of_incomplete_rows(independent, mechanism, prop):
    _, mask = ampute(
        independent, prop, mechanism=mechanism, random_state=1, return_mask=True
    )
    assert mask.any(axis=1).mean() == pytest.approx(prop, abs=0.015)
    # Default patterns remove one cell each.
    assert (mask.sum(axis=1) <= 1).all()


def test_proportion_of_cells(independent):
    patterns = [["x0"], ["x1", "x2"]]
    _, mask = ampute(
        independent, 0.3, patterns=patterns, by_cases=False, random_state=2,
        return_mask=True,
    )  # fmt: skip
    assert mask.mean() == pytest.approx(0.3, abs=0.01)
    with pytest.raises(ValueError, match="more than every row"):
        ampute(independent, 0.9, patterns=[["x0"]], by_cases=False)


def test_mcar_missingness_is_independent_of_every_value(independent):
    _, mask = ampute(
        independent, 0.5, mechanism="MCAR", random_state=3, return_mask=True
    )
    incomplete = mask.any(axis=1)
    for j in range(3):
        assert abs(std_difference(independent[:, j], incomplete)) < 0.04
        assert abs(std_difference(np.abs(independent[:, j]), incomplete)) < 0.04


@pytest.mark.parametrize(
    ("kind", "direction"),
    [("right", 1), ("left", -1), ("mid", 0), ("tail", 0)],
)
def test_mar_depends_on_the_chosen_driver_only(independent, kind, direction):
    """x0 goes missing depending on x1 (weight 1) and not on itself or x2."""
    _, mask = ampute(
        independent, 0.4, mechanism="MAR", patterns=[["x0"]], weights=[0, 1, 0],
        kind=kind, random_state=4, return_mask=True,
    )  # fmt: skip
    missing = mask[:, 0]
    driver = std_difference(independent[:, 1], missing)
    if direction:
        assert direction * driver > 0.5
    else:  # mid: central values of x1 go missing; tail: extreme ones
        spread = std_difference(np.abs(independent[:, 1]), missing)
        assert (spread < -0.3) if kind == "mid" else (spread > 0.3)
    for other in (0, 2):
        assert abs(std_difference(independent[:, other], missing)) < 0.04


@pytest.mark.parametrize(("kind", "sign"), [("right", 1), ("left", -1)])
def test_mnar_depends_on_the_value_itself(independent, kind, sign):
    _, mask = ampute(
        independent, 0.3, mechanism="MNAR", patterns=[["x0"]], kind=kind,
        random_state=5, return_mask=True,
    )  # fmt: skip
    missing = mask[:, 0]
    assert sign * std_difference(independent[:, 0], missing) > 0.5
    for other in (1, 2):
        assert abs(std_difference(independent[:, other], missing)) < 0.04


def test_default_mar_weights_use_the_observed_columns(independent):
    """mice's default: a pattern's score sums the variables it keeps."""
    _, mask = ampute(
        independent, 0.4, patterns=[[1, 0, 1]], random_state=6, return_mask=True
    )
    missing = mask[:, 1]
    assert std_difference(independent[:, 0], missing) > 0.3
    assert std_difference(independent[:, 2], missing) > 0.3
    assert abs(std_difference(independent[:, 1], missing)) < 0.04


def test_pattern_frequencies(independent):
    _, mask = ampute(
        independent, 0.5, mechanism="MCAR", patterns=[["x0"], ["x1", "x2"]],
        freq=[3, 1], random_state=7, return_mask=True,
    )  # fmt: skip
    first = mask[:, 0].sum()
    second = mask[:, 1].sum()
    assert first / (first + second) == pytest.approx(0.75, abs=0.02)
    assert (mask[:, 1] == mask[:, 2]).all()


def test_reproducible_and_the_input_is_left_alone():
    data = pd.DataFrame(
        {"a": np.arange(200), "b": np.linspace(0, 1, 200), "c": np.ones(200)},
        index=np.arange(200) + 1000,
    )
    before = data.copy()
    first = ampute(data, 0.3, random_state=8)
    again = ampute(data, 0.3, random_state=8)
    other = ampute(data, 0.3, random_state=9)
    pd.testing.assert_frame_equal(data, before)
    pd.testing.assert_frame_equal(first, again)
    assert not first.isna().equals(other.isna())
    assert list(first.columns) == ["a", "b", "c"]
    assert (first.index == data.index).all()
    kept = first.notna().to_numpy()
    assert (first.to_numpy()[kept] == data.to_numpy(dtype=float)[kept]).all()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"prop": 0.0}, "prop must be"),
        ({"prop": 1.0}, "prop must be"),
        ({"mechanism": "NMAR"}, "mechanism must be"),
        ({"patterns": [["x0", "x1", "x2"]]}, "every cell missing"),
        ({"patterns": [[1, 1, 1]]}, "no cell missing"),
        ({"patterns": [[5]]}, "patterns names 5, which is not a column"),
        ({"patterns": [[1, 0, 2]]}, "0/1 entries"),
        ({"patterns": [["height"]]}, "patterns names 'height', which is not a column"),
        ({"patterns": [["x0"]], "weights": [1, 1, 0]}, "column 'x0'.*MNAR"),
        ({"patterns": [["x0"]], "freq": [1, 2]}, "freq must hold 1"),
        ({"kind": "sideways"}, "kind must be"),
    ],
)
def test_bad_arguments(independent, arguments, message):
    arguments = {"prop": 0.5, **arguments}
    with pytest.raises(ValueError, match=message):
        ampute(independent[:100], **arguments)


def test_bad_data():
    X = np.ones((10, 2))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="missing values already in column 'x1'"):
        ampute(X)
    with pytest.raises(TypeError, match="column 'name'"):
        ampute(pd.DataFrame({"name": ["a", "b"], "v": [1.0, 2.0]}))
