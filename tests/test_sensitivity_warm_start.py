"""sensitivity_analysis(kind="psi") with warm starts: each grid point's fits
start from the nearest point already fitted, and the table is the one of
cold fits to within the fits' tolerance (tests/conftest.py)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import special
from sklearn.linear_model import LinearRegression

import emimpute.imputers._mnar_imputer as mnar_module
from emimpute import MNARSelectionImputer
from emimpute.sensitivity import _grid_order, sensitivity_analysis

COLUMNS = ["estimate", "std_error", "ci_low", "ci_high"]


def selection_data(n=2000, seed=0):
    """y on x0 and x1; x0 missing more often when high."""
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal([0, 0], [[1, 0.4], [0.4, 1]], size=n)
    y = 1.0 + X[:, 0] - 0.5 * X[:, 1] + rng.normal(size=n)
    X[rng.random(n) < special.ndtr(-0.4 + 0.8 * X[:, 0]), 0] = np.nan
    return X, y


@pytest.fixture
def kernel_calls(monkeypatch):
    """Every fit_selection_em call of the estimator shell: (warm, n_iter)."""
    calls = []
    kernel = mnar_module.fit_selection_em

    def recording(*args, init=None, **kwargs):
        result = kernel(*args, init=init, **kwargs)
        calls.append((init is not None, result.n_iter))
        return result

    monkeypatch.setattr(mnar_module, "fit_selection_em", recording)
    return calls


def test_warm_grid_gives_the_cold_table_with_fewer_iterations(
    kernel_calls, fit_tolerance
):
    X, y = selection_data()
    X_before, y_before = X.copy(), y.copy()
    grid = [0.0, -0.6, -0.3, 0.3, 0.6, 0.9]
    tables = {}
    for warm in (False, True):
        tables[warm] = sensitivity_analysis(
            LinearRegression(), X, y, column=0, deltas=grid, kind="psi",
            n_imputations=3, warm_start=warm,
        )  # fmt: skip
    assert_array_equal(X, X_before)
    assert_array_equal(y, y_before)
    cold_calls, warm_calls = (
        kernel_calls[: len(grid) * 3],
        kernel_calls[len(grid) * 3 :],
    )
    assert not any(w for w, _ in cold_calls)
    # Only the first grid point's three fits start cold.
    assert [w for w, _ in warm_calls] == [False] * 3 + [True] * 3 * (len(grid) - 1)
    # The iterations from the neighbour are no more than from the MAR start
    # (with psi held, EM's rate sets the count more than the start does);
    # what a warm fit saves is the MAR start itself (see the next test).
    assert sum(n for _, n in warm_calls) <= sum(n for _, n in cold_calls)
    cold, warm = tables[False], tables[True]
    assert_array_equal(warm[["delta", "term"]], cold[["delta", "term"]])
    assert warm.attrs["warm_start"] and not cold.attrs["warm_start"]
    # Pooled coefficients of draws from models within fit_tolerance of each
    # other (same random numbers): within it on the scale of the data.
    atol = fit_tolerance(1e-6, np.nanstd(np.column_stack([X, y])))
    assert_allclose(warm[COLUMNS], cold[COLUMNS], rtol=0, atol=atol)


def test_only_the_first_grid_point_fits_the_mar_start(monkeypatch):
    starts = []
    start = mnar_module.SelectionModel.start

    def counting(model, *args, **kwargs):
        starts.append(1)
        return start(model, *args, **kwargs)

    monkeypatch.setattr(mnar_module.SelectionModel, "start", counting)
    X, y = selection_data(800, seed=3)
    for warm, expected in ((False, 4 * 2), (True, 2)):
        starts.clear()
        sensitivity_analysis(
            LinearRegression(), X, y, column=0, deltas=[0.0, 0.2, 0.4, -0.2],
            kind="psi", n_imputations=2, warm_start=warm,
        )  # fmt: skip
        assert len(starts) == expected


def test_two_column_grid_warm_equals_cold(fit_tolerance):
    X, _ = selection_data(1500, seed=1)
    rng = np.random.default_rng(5)
    X[rng.random(len(X)) < special.ndtr(-1.0 - 0.5 * X[:, 1]), 1] = np.nan
    X = np.column_stack([X, rng.normal(size=len(X))])

    def mean_of_x0(values, y):
        return [values[:, 0].mean()], [values[:, 0].var(ddof=1) / len(values)]

    kwargs = dict(column=0, deltas=[0.0, 0.5], column2=1, deltas2=[0.0, -0.4],
                  kind="psi", n_imputations=2)  # fmt: skip
    warm = sensitivity_analysis(mean_of_x0, X, **kwargs)
    cold = sensitivity_analysis(mean_of_x0, X, warm_start=False, **kwargs)
    atol = fit_tolerance(1e-6, np.nanstd(X[:, 0]))
    assert_allclose(warm[COLUMNS], cold[COLUMNS], rtol=0, atol=atol)


def test_grid_order_walks_outwards_from_the_first_point():
    grid = [(0.0, None), (-1.0, None), (2.0, None), (1.0, None), (-0.5, None)]
    order, _ = _grid_order(grid)
    assert list(order) == [0, 4, 1, 3, 2]


def test_template_warm_start_setting_does_not_matter(fit_tolerance):
    X, y = selection_data(1000, seed=2)
    kwargs = dict(column=0, deltas=[0.0, 0.4], kind="psi", n_imputations=2)
    a = sensitivity_analysis(LinearRegression(), X, y, **kwargs,
                             imputer=MNARSelectionImputer(warm_start=True))  # fmt: skip
    b = sensitivity_analysis(LinearRegression(), X, y, **kwargs, warm_start=False)
    atol = fit_tolerance(1e-6, np.nanstd(np.column_stack([X, y])))
    assert_allclose(a[COLUMNS], b[COLUMNS], rtol=0, atol=atol)
