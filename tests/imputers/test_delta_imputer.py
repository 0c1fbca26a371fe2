"""DeltaAdjustedImputer: exact adjustments of imputed cells only, the
difference between shifting once and shifting inside an iteration, use in
MultipleImputer, and the bridge to the logistic selection model."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import special

from emimpute import (
    DeltaAdjustedImputer,
    EMImputer,
    MNARSelectionImputer,
    MultipleImputer,
)


def correlated(n, seed, rate=0.3):
    rng = np.random.default_rng(seed)
    cov = [[4, 1.5, 1], [1.5, 1, 0.3], [1, 0.3, 1]]
    X = rng.multivariate_normal([10.0, 5.0, 0.0], cov, size=n)
    X_missing = X.copy()
    X_missing[:, :2][rng.random((n, 2)) < rate] = np.nan
    return pd.DataFrame(X_missing, columns=["income", "age", "score"])


@pytest.mark.parametrize(
    ("kind", "delta", "change"),
    [
        ("shift", 2.0, lambda mar, sd: mar + 2.0),
        ("scale", 1.1, lambda mar, sd: mar * 1.1),
        ("sd", 0.5, lambda mar, sd: mar + 0.5 * sd),
    ],
)
def test_only_imputed_cells_move_and_by_exactly_delta(kind, delta, change):
    data = correlated(300, seed=0)
    before = data.copy()
    mar = EMImputer().fit_transform(data)
    adjusted = DeltaAdjustedImputer(delta={"income": delta}, kind=kind).fit(data)
    out = adjusted.transform(data)
    pd.testing.assert_frame_equal(data, before)
    missing = data.isna().to_numpy()
    sd = data["income"].std(ddof=0)
    assert_allclose(out[missing[:, 0], 0], change(mar[missing[:, 0], 0], sd))
    assert_allclose(out[:, 1:], mar[:, 1:])  # other columns untouched
    assert_allclose(out[~missing], data.to_numpy()[~missing])
    assert adjusted.delta_[1] == (1.0 if kind == "scale" else 0.0)


def test_delta_for_every_column_and_by_position():
    data = correlated(200, seed=1).to_numpy()
    out = DeltaAdjustedImputer(delta=1.0).fit_transform(data)
    mar = EMImputer().fit_transform(data)
    missing = np.isnan(data)
    assert_allclose(out[missing], mar[missing] + 1.0)
    by_position = DeltaAdjustedImputer(delta={1: -1.0}).fit_transform(data)
    assert_allclose(by_position[missing[:, 1], 1], mar[missing[:, 1], 1] - 1.0)
    with pytest.raises(ValueError, match="not a column"):
        DeltaAdjustedImputer(delta={"wage": 1.0}).fit(correlated(50, seed=2))


def test_shifting_inside_an_iteration_realises_a_larger_shift():
    """What this class does not do, and why: chained regressions that shift
    income inside each round feed the shift into age, which feeds it back
    into income (the realised shift is delta / (1 - b_ia b_ai)).  Shifting
    once after imputation realises delta exactly."""
    data = correlated(4000, seed=3, rate=0.4).to_numpy()[:, :2]
    missing = np.isnan(data)
    both = missing.all(axis=1)

    def chained(delta, rounds=30):
        filled = np.where(missing, np.nanmean(data, axis=0), data)
        for _ in range(rounds):
            for j, other in ((0, 1), (1, 0)):
                rows = ~missing[:, j]
                slope, intercept = np.polyfit(filled[rows, other], filled[rows, j], 1)
                filled[missing[:, j], j] = (
                    intercept + slope * filled[missing[:, j], other]
                )
                if j == 0:
                    filled[missing[:, 0], 0] += delta
        return filled

    inside = chained(1.0)[both, 0].mean() - chained(0.0)[both, 0].mean()
    once = DeltaAdjustedImputer(delta={0: 1.0}).fit_transform(data)
    mar = EMImputer().fit_transform(data)
    assert once[both, 0].mean() - mar[both, 0].mean() == pytest.approx(1.0)
    assert inside > 1.2  # the feedback through age adds about 30% here


def test_inside_multiple_imputation():
    data = correlated(300, seed=4)
    shifted = MultipleImputer(
        DeltaAdjustedImputer(delta={"income": 1.0}), n_imputations=4, random_state=0
    ).fit(data)
    mar = MultipleImputer(n_imputations=4, random_state=0).fit(data)
    missing = data["income"].isna().to_numpy()
    gap = shifted.transform(data)[missing, 0] - mar.transform(data)[missing, 0]
    assert_allclose(gap, 1.0, atol=1e-9)  # same draws, moved by delta


def test_bridge_to_the_logistic_selection_model():
    """A logistic selection model with psi fixed tilts the respondents'
    distribution by exp(psi y); for a normal y given x with residual
    variance s^2 that is a shift of psi s^2 (the sign follows
    P(missing) = expit(alpha + psi y)).  Fitted to the same data, the two
    approaches impute about the same values."""
    rng = np.random.default_rng(5)
    n, psi = 20_000, 0.6
    x = rng.normal(size=n)
    y = 1.0 + 0.8 * x + rng.normal(size=n)
    missing = rng.random(n) < special.expit(-1.0 + psi * y)
    data = np.column_stack([np.where(missing, np.nan, y), x])
    selection = MNARSelectionImputer(link="logit", psi=psi).fit(data)
    mar = EMImputer().fit(data)
    cov = mar.covariance_
    residual = cov[0, 0] - cov[0, 1] ** 2 / cov[1, 1]
    delta = DeltaAdjustedImputer(delta={0: psi * residual}).fit(data)
    from_selection = selection.transform(data)[missing, 0].mean()
    from_delta = delta.transform(data)[missing, 0].mean()
    truth = y[missing].mean()
    assert from_delta == pytest.approx(truth, abs=0.05)
    assert from_selection == pytest.approx(from_delta, abs=0.05)


def test_pipeline_grid_search_and_pandas_output():
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    data = correlated(300, seed=6)
    out = DeltaAdjustedImputer(delta={"income": 1.0}).set_output(transform="pandas")
    frame = out.fit_transform(data)
    assert list(frame.columns) == ["income", "age", "score"]
    assert not frame.isna().any().any()
    pipeline = make_pipeline(DeltaAdjustedImputer(), LinearRegression())
    search = GridSearchCV(
        pipeline, {"deltaadjustedimputer__delta": [0.0, 0.5]}, cv=3
    ).fit(data[["income", "age"]], data["score"])
    assert search.best_params_["deltaadjustedimputer__delta"] in (0.0, 0.5)


@pytest.mark.parametrize(
    ("delta", "error", "message"),
    [
        (np.nan, ValueError, r"delta must be a finite number, got nan"),
        (np.inf, ValueError, r"delta must be a finite number, got inf"),
        ({"income": -np.inf}, ValueError, r"delta\['income'\] .* got -inf"),
        ({1: np.nan}, ValueError, r"delta\[1\] must be a finite number, got nan"),
        ({"income": "high"}, TypeError, r"delta\['income'\] .* got 'high'"),
        ({"income": None}, TypeError, r"delta\['income'\] .* got None"),
    ],
)
@pytest.mark.parametrize("kind", ["shift", "scale", "sd"])
def test_delta_must_be_finite(delta, error, message, kind):
    # nan and inf were accepted and gave NaN / inf cells (issue 12).
    data = correlated(60, seed=7)
    before = data.copy()
    with pytest.raises(error, match=message):
        DeltaAdjustedImputer(delta=delta, kind=kind).fit(data)
    pd.testing.assert_frame_equal(data, before)


def test_sd_delta_needs_a_standard_deviation():
    # A column with no observed value has no standard deviation: kind="sd"
    # would move its cells by NaN.
    data = correlated(60, seed=8).assign(empty=np.nan)
    imputer = DeltaAdjustedImputer(
        imputer=EMImputer(keep_empty_features=True),
        delta={"empty": 0.5},
        kind="sd",
    )
    with pytest.raises(ValueError, match="column 'empty': no observed value"):
        imputer.fit(data)
