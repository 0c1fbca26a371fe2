"""MNARSelectionImputer as a scikit-learn estimator: recovery where MAR is
biased, EMImputer at psi = 0, imputations against simulation truth, the
pandas / Pipeline / GridSearchCV contract, and bad input."""

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import special
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline

from emimpute import EMImputer, MNARSelectionImputer


def incomes(n, seed, psi=1.0):
    """log income (standardised) goes missing more often when high; age and
    education are always observed."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.4, 0.5], [0.4, 1.0, 0.2], [0.5, 0.2, 1.0]])
    full = pd.DataFrame(
        rng.multivariate_normal([0.0, 0.0, 0.0], cov, size=n),
        columns=["income", "age", "education"],
    )
    index = -0.6 + psi * full["income"] + 0.3 * full["education"]
    data = full.copy()
    data.loc[rng.random(n) < special.ndtr(index), "income"] = np.nan
    return full, data


@pytest.fixture(scope="module")
def income_fit():
    full, data = incomes(20_000, seed=0)
    return full, data, MNARSelectionImputer(mnar_features=["income"]).fit(data)


def test_recovers_the_income_mean_that_mar_gets_wrong(income_fit):
    full, data, imputer = income_fit
    mar = EMImputer().fit(data)
    assert mar.mean_[0] < -0.25  # MAR: biased down
    assert abs(imputer.mean_[0]) < 0.04
    coef = imputer.selection_coef_.loc["income"]
    assert coef["psi"] == pytest.approx(1.0, abs=0.15)
    assert coef["gamma[education]"] == pytest.approx(0.3, abs=0.1)
    assert coef["gamma[age]"] == pytest.approx(0.0, abs=0.1)
    assert not coef["psi_fixed"]
    assert list(imputer.covariates_) == [1, 2]


def test_imputations_are_closer_to_the_hidden_truth(income_fit):
    full, data, imputer = income_fit
    hidden = data["income"].isna().to_numpy()
    truth = full["income"].to_numpy()[hidden].mean()
    mnar = imputer.transform(data)[hidden, 0].mean()
    mar = EMImputer().fit(data).transform(data)[hidden, 0].mean()
    assert abs(mnar - truth) < 0.05
    assert mar < truth - 0.4
    completed = imputer.transform(data)
    observed = ~data.isna().to_numpy()
    assert np.array_equal(completed[observed], data.to_numpy()[observed])


def test_draws_are_reproducible_and_spread_around_the_means(income_fit):
    full, data, imputer = income_fit
    hidden = data["income"].isna().to_numpy()
    # The fitted model, drawing (set_params changes no fitted attribute).
    drawing = copy.deepcopy(imputer).set_params(sample_posterior=True, random_state=3)
    first, again = drawing.transform(data), drawing.transform(data)
    assert np.array_equal(first, again)
    means = imputer.transform(data)[hidden, 0]
    draws = first[hidden, 0]
    assert draws.mean() == pytest.approx(means.mean(), abs=0.03)
    truth = full["income"].to_numpy()[hidden]
    # Draws carry the residual spread that conditional means lack.
    assert draws.var() == pytest.approx(truth.var(), rel=0.1)
    assert means.var() < 0.8 * truth.var()


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_psi_fixed_at_zero_is_emimputer(link, assert_same_fit):
    _, data = incomes(600, seed=1)
    data.loc[::7, "age"] = np.nan  # a MAR column too
    fixed = MNARSelectionImputer(link=link, psi=0.0, tol=1e-10)
    fixed.fit(data)
    mar = EMImputer(tol=1e-10).fit(data)
    assert_same_fit(
        fixed.mean_, fixed.covariance_, mar.mean_, mar.covariance_,
        tol=1e-10, scale=data.std(ddof=0).to_numpy(),
    )  # fmt: skip
    assert list(fixed.mnar_features_) == [0, 1]  # None: every incomplete column
    assert fixed.selection_coef_["psi_fixed"].all()
    assert "fixed (sensitivity analysis)" in fixed._record()


def test_the_record_states_the_mechanism(income_fit):
    _, _, imputer = income_fit
    text = imputer._record()
    coef = imputer.selection_coef_.loc["income"]
    assert "probit link" in text and "converged" in text
    assert f"{coef['psi']:+.4g} * income" in text
    assert "larger values of income are more likely to be missing" in text
    assert "missing at random (no missingness model): age, education" in text


def test_pandas_output_pipeline_and_grid_search_over_psi():
    full, data = incomes(1500, seed=2)
    imputer = MNARSelectionImputer(mnar_features=["income"]).set_output(
        transform="pandas"
    )
    out = imputer.fit_transform(data)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["income", "age", "education"]
    assert not out.isna().any().any()
    # Impute income, then predict education from it: psi on a grid.
    X, y = data[["income", "age"]], full["education"]
    pipeline = make_pipeline(
        MNARSelectionImputer(mnar_features=["income"], gamma=False),
        LinearRegression(),
    )
    search = GridSearchCV(
        pipeline, {"mnarselectionimputer__psi": [0.0, 1.0]}, cv=3
    ).fit(X, y)
    assert search.best_params_["mnarselectionimputer__psi"] in (0.0, 1.0)


def test_float32_in_float32_out():
    _, data = incomes(500, seed=4)
    out = MNARSelectionImputer().fit_transform(data.to_numpy(dtype=np.float32))
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mnar_features": ["salary"]}, "'salary', which is not a column"),
        ({"mnar_features": ["age"]}, "no missing value in column 'age'"),
        ({"psi": {"age": 0.5}}, "has no missingness model"),
        ({"psi": {"wage": 0.5}}, "'wage', which is not a column"),
    ],
)
def test_bad_arguments_name_the_column(arguments, message):
    _, data = incomes(300, seed=5)
    with pytest.raises(ValueError, match=message):
        MNARSelectionImputer(**arguments).fit(data)


def test_bad_data():
    _, data = incomes(300, seed=6)
    with_empty = data.assign(empty=np.nan)
    with pytest.warns(UserWarning, match="Skipping column 'empty'.* fills it"):
        filled = MNARSelectionImputer().fit_transform(with_empty)
    assert_array_equal(filled[:, -1], 0.0)  # kept, filled as SimpleImputer
    # Left out of the model: the other columns are imputed as without it.
    assert_array_equal(filled[:, :-1], MNARSelectionImputer().fit_transform(data))
    with pytest.warns(UserWarning, match="Skipping column 'empty'.* drops it"):
        dropped = MNARSelectionImputer(keep_empty_features=False).fit(with_empty)
    assert dropped.transform(with_empty).shape == data.shape
    assert list(dropped.get_feature_names_out()) == list(data.columns)
    with pytest.raises(TypeError, match="column 'city'"):
        MNARSelectionImputer().fit(data.assign(city="Paris"))
    before = data.copy()
    MNARSelectionImputer().fit_transform(data)
    pd.testing.assert_frame_equal(data, before)


def normal_conditional_mean(mean, cov, row):
    """E[x_m | x_o] = mu_m + S_mo S_oo^-1 (x_o - mu_o), the textbook formula
    (Little & Rubin 2002, sec. 11.2), solved directly on S_oo."""
    m = np.isnan(row)
    o = ~m
    return mean[m] + cov[np.ix_(m, o)] @ np.linalg.solve(
        cov[np.ix_(o, o)], row[o] - mean[o]
    )


@pytest.fixture(scope="module")
def covariate_gaps():
    """A fit in which age and education are never missing (covariates), and
    new rows in which they are."""
    _, data = incomes(1500, seed=7)
    new = data.iloc[:40].copy()
    new.iloc[::2, 1] = np.nan  # age
    new.iloc[::3, 2] = np.nan  # education
    return data, new


def test_covariate_missing_only_at_transform_is_imputed_under_mar(covariate_gaps):
    # A covariate never missing in fit was a hard error at transform, so
    # cross-validation scored NaN (issue 12).  Such cells are imputed under
    # MAR: their conditional mean given the row's observed cells under the
    # fitted normal part, whatever the other cells of the row.
    data, new = covariate_gaps
    imputer = MNARSelectionImputer(mnar_features=["income"]).fit(data)
    assert list(imputer.covariates_) == [1, 2]
    before = new.copy()
    with pytest.warns(UserWarning, match="column.* 'age', 'education'") as caught:
        out = imputer.transform(new)
    assert len([w for w in caught if "missing at random" in str(w.message)]) == 1
    pd.testing.assert_frame_equal(new, before)
    values = new.to_numpy()
    assert np.isfinite(out).all()
    observed = ~np.isnan(values)
    assert np.array_equal(out[observed], values[observed])
    # Covariate cells: the closed form.  An exact identity on fixed fitted
    # parameters, so the tolerance is rounding only.
    mean, cov = imputer.mean_, imputer.covariance_
    for i in np.flatnonzero(np.isnan(values[:, 1:]).any(axis=1)):
        missing = np.flatnonzero(np.isnan(values[i]))
        expected = normal_conditional_mean(mean, cov, values[i])
        covariate = missing > 0  # age and education; income is column 0
        assert_allclose(
            out[i, missing[covariate]], expected[covariate], rtol=1e-10, atol=1e-12
        )


def test_covariate_gaps_at_psi_zero_give_the_normal_conditional_mean(covariate_gaps):
    # With psi = 0 the missingness of income says nothing about its value,
    # so every missing cell (income too) is the normal conditional mean.
    data, new = covariate_gaps
    imputer = MNARSelectionImputer(mnar_features=["income"], psi=0.0).fit(data)
    with pytest.warns(UserWarning, match="missing at random"):
        out = imputer.transform(new)
    values = new.to_numpy()
    expected = values.copy()
    for i in np.flatnonzero(np.isnan(values).any(axis=1)):
        expected[i, np.isnan(values[i])] = normal_conditional_mean(
            imputer.mean_, imputer.covariance_, values[i]
        )
    assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


def test_covariate_gaps_with_draws_are_finite_and_reproducible(covariate_gaps):
    data, new = covariate_gaps
    imputer = MNARSelectionImputer(
        mnar_features=["income"], sample_posterior=True, random_state=0
    ).fit(data)
    with pytest.warns(UserWarning, match="missing at random"):
        first = imputer.transform(new)
    with pytest.warns(UserWarning, match="missing at random"):
        again = imputer.transform(new)
    assert np.isfinite(first).all()
    assert np.array_equal(first, again)


def test_cross_validation_with_covariate_holes_only_in_a_test_fold():
    full, data = incomes(600, seed=8)
    X, y = data[["income", "age"]].copy(), full["education"]
    # Age has holes in the first of five unshuffled folds only: when that
    # fold is the test fold, age was never missing in fit.
    X.iloc[:60:3, 1] = np.nan
    pipeline = make_pipeline(
        MNARSelectionImputer(mnar_features=["income"]), LinearRegression()
    )
    with pytest.warns(UserWarning, match="column 'age'"):
        scores = cross_val_score(pipeline, X, y, cv=KFold(5), error_score="raise")
    assert scores.shape == (5,)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize(
    ("psi", "message"),
    [
        (np.nan, r"psi must be a finite number, got nan"),
        (np.inf, r"psi must be a finite number, got inf"),
        (-np.inf, r"psi must be a finite number, got -inf"),
        ({"income": np.nan}, r"psi\['income'\] must be a finite number"),
        ({0: np.inf}, r"psi\[0\] must be a finite number, got inf"),
        ({"income": "high"}, r"psi\['income'\] must be a finite number"),
        ({"income": None}, r"psi\['income'\] must be a finite number"),
    ],
)
def test_psi_must_be_finite(psi, message):
    # nan gave a cryptic linear-algebra error and inf ran for 97 s (issue 12).
    _, data = incomes(300, seed=5)
    imputer = MNARSelectionImputer(mnar_features=["income"], psi=psi)
    with pytest.raises((ValueError, TypeError), match=message):
        imputer.fit(data)


@pytest.mark.parametrize("value", [1e8, -1e8, 1e300])
def test_psi_beyond_a_deterministic_cut_off_is_refused(value):
    # 1e8 per unit ran 140 s to a wrong mean; 1e300 overflowed.
    _, data = incomes(300, seed=5)
    imputer = MNARSelectionImputer(psi={"income": value})
    with pytest.raises(ValueError, match=r"psi\['income'\] = .* column 'income'"):
        imputer.fit(data)


def test_the_limit_on_psi_is_per_standard_deviation():
    # In units a million times smaller, 1e-5 per unit is under 1 per sd and
    # 1e-3 is about 900.
    _, data = incomes(300, seed=5)
    rescaled = data.assign(income=data["income"] * 1e6)
    imputer = MNARSelectionImputer(mnar_features=["income"], psi=1e-5)
    assert imputer.fit(rescaled).converged_
    with pytest.raises(ValueError, match="psi = 0.001 .* per standard") as err:
        imputer.set_params(psi=1e-3).fit(rescaled)
    per_sd = float(str(err.value).split(" is ")[1].split(" per ")[0])
    assert per_sd == pytest.approx(1e-3 * rescaled["income"].std(), rel=0.01)


@pytest.mark.parametrize(
    ("old", "new", "value"),
    [("selection", "link", "logit"), ("mnar_coef", "psi", 0.5)],
)
def test_renamed_parameters_still_work_for_one_release(old, new, value):
    # One name per concept (the kernels' link and psi): the old names are
    # deprecated aliases that warn, naming the new parameter, and fit the
    # same model as the new name.
    _, data = incomes(400, seed=9)
    with pytest.warns(FutureWarning, match=rf"'{old}' was renamed '{new}'"):
        before = MNARSelectionImputer(mnar_features=["income"], **{old: value})
        before.fit(data)
    after = MNARSelectionImputer(mnar_features=["income"], **{new: value}).fit(data)
    pd.testing.assert_frame_equal(before.selection_coef_, after.selection_coef_)
    assert_array_equal(before.transform(data), after.transform(data))
    assert before.summary().attrs["link"] == after.summary().attrs["link"]


def test_summary_is_the_coefficient_table(income_fit):
    _, _, imputer = income_fit
    table = imputer.summary()
    assert isinstance(table, pd.DataFrame)
    pd.testing.assert_frame_equal(table, imputer.selection_coef_)
    assert table.attrs["link"] == "probit" and table.attrs["converged"]


def test_scores_sum_to_the_log_likelihood_and_means_are_transforms(income_fit):
    """At the fitted parameters the E-step's log-likelihood is the
    observed-data log-likelihood, so the rows' scores sum to loglik_ (an
    identity, to rounding); conditional_moments' means are transform's."""
    _, data, imputer = income_fit
    scores = imputer.score_samples(data)
    assert scores.sum() == pytest.approx(imputer.loglik_, rel=1e-12)
    assert imputer.score(data) == pytest.approx(scores.mean(), rel=1e-15)
    mean, variance = imputer.conditional_moments(data)
    assert_allclose(mean, imputer.transform(data), rtol=0, atol=0)
    missing = data.isna().to_numpy()
    assert np.all(variance[~missing] == 0) and np.all(variance[missing] > 0)


def test_covariate_gaps_score_and_variance_use_the_mar_plug_in(covariate_gaps):
    """Rows whose covariates are missing only at transform: the covariate's
    variance is the normal conditional one given the observed cells; the
    score is log f(x_o) (scipy) plus log P(income's state | x_o) with the
    missingness model evaluated at the covariates' conditional means (the
    documented plug-in), by quadrature over a missing income."""
    from scipy import integrate, stats

    data, new = covariate_gaps
    imputer = MNARSelectionImputer(mnar_features=["income"]).fit(data)
    with pytest.warns(UserWarning, match="missing at random"):
        scores = imputer.score_samples(new)
    with pytest.warns(UserWarning, match="missing at random"):
        _, variance = imputer.conditional_moments(new)
    mean, cov = imputer.mean_, imputer.covariance_
    coef = imputer.selection_coef_.iloc[0]
    gamma = coef[["gamma[age]", "gamma[education]"]].to_numpy(float)
    values = new.to_numpy()
    for i in np.flatnonzero(np.isnan(values[:, 1:]).any(axis=1)):
        row = values[i]
        o, m = np.flatnonzero(~np.isnan(row)), np.flatnonzero(np.isnan(row))
        regression = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)])
        cond_mean = mean[m] + (row[o] - mean[o]) @ regression
        cond_var = np.diag(cov[np.ix_(m, m)] - cov[np.ix_(m, o)] @ regression)
        covariate = m > 0
        assert_allclose(variance[i, m[covariate]], cond_var[covariate], rtol=1e-10)
        plugged = row.copy()
        plugged[m] = cond_mean
        eta = coef["intercept"] + plugged[1:] @ gamma
        expected = 0.0  # a row with nothing observed: no density term
        if len(o):
            expected = stats.multivariate_normal.logpdf(
                row[o], mean[o], cov[np.ix_(o, o)]
            )
        if np.isnan(row[0]):
            nu, s = cond_mean[0], np.sqrt(cond_var[0])

            def integrand(y, nu=nu, s=s, eta=eta):
                return stats.norm.pdf(y, nu, s) * special.ndtr(eta + coef["psi"] * y)

            prob = integrate.quad(
                integrand, nu - 12 * s, nu + 12 * s, epsabs=0, epsrel=1e-12
            )[0]
            expected += np.log(prob)
        else:
            expected += special.log_ndtr(-(eta + coef["psi"] * row[0]))
        assert scores[i] == pytest.approx(expected, abs=1e-8)


def test_a_step_function_missingness_stops_psi_early():
    """Every value above a threshold is missing: the likelihood has no finite
    maximum in psi, which runs off to infinity.  The fit stops once psi
    passes PSI_LIMIT per standard deviation (not converged, saying why),
    instead of creeping on for max_iter iterations at the node cap (this
    data took 2-19 s before; regression cases of issue 14)."""
    rng = np.random.default_rng(0)
    X = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.6], [0.6, 1.0]], size=50)
    X[X[:, 0] > np.quantile(X[:, 0], 0.6), 0] = np.nan
    for link in ("probit", "logit"):
        with pytest.warns(ConvergenceWarning, match="no finite maximum in psi"):
            imputer = MNARSelectionImputer(link=link).fit(X)
        assert not imputer.converged_
        assert imputer.n_iter_ < 100
        psi_per_sd = abs(imputer.selection_coef_["psi"].iloc[0]) * np.nanstd(X[:, 0])
        assert psi_per_sd > 100
        completed = imputer.transform(X)
        assert np.isfinite(completed).all()
        # The imputed values lie above the observed ones, as the step says.
        assert completed[np.isnan(X[:, 0]), 0].min() > np.nanmax(X[:, 0]) - 0.5


# ------------------------------------------------------------- warm_start


def coefficients(imputer):
    """The fitted selection coefficients (intercept, psi, gammas) as floats."""
    return imputer.selection_coef_.drop(columns="psi_fixed").to_numpy(float)


def test_warm_start_at_a_neighbouring_psi_reaches_the_cold_fit(
    assert_same_fit, fit_tolerance, loglik_tolerance
):
    _, data = incomes(4000, seed=1)
    data_before = data.copy()
    warm = MNARSelectionImputer(["income"], psi=0.5, warm_start=True, random_state=0)
    warm.fit(data).set_params(psi=0.7).fit(data)
    cold = MNARSelectionImputer(["income"], psi=0.7, random_state=0).fit(data)
    pd.testing.assert_frame_equal(data, data_before)  # the caller's data untouched
    scale = data.std().to_numpy()
    assert_same_fit(
        warm.mean_, warm.covariance_, cold.mean_, cold.covariance_,
        tol=cold.tol, scale=scale,
    )  # fmt: skip
    # The coefficients are fitted on the standardised scale: psi and gamma
    # per standard deviation, the intercept as it is.
    coef_scale = np.r_[1.0, scale[0], scale[1:]]
    assert_allclose(
        coefficients(warm) * coef_scale, coefficients(cold) * coef_scale,
        rtol=0, atol=fit_tolerance(cold.tol),
    )  # fmt: skip
    assert warm.loglik_ == pytest.approx(cold.loglik_, rel=loglik_tolerance(cold.tol))
    assert warm.selection_coef_.loc["income", "psi"] == 0.7  # held as given


def test_warm_start_refit_needs_few_iterations_where_cold_needs_many():
    # psi estimated: a cold fit climbs from the MAR start (psi = 0) through
    # its starts; a refit on the same data starts at the optimum itself.
    _, data = incomes(4000, seed=1)
    cold = MNARSelectionImputer(["income"], random_state=0).fit(data)
    warm = MNARSelectionImputer(["income"], random_state=0, warm_start=True)
    warm.fit(data)
    assert warm.n_iter_ == cold.n_iter_ > 10  # the first fit is cold
    warm.fit(data)
    # A few steps to meet the stopping rule again (63 cold here).
    assert warm.n_iter_ <= cold.n_iter_ / 5
    assert warm.loglik_ >= cold.loglik_ - 1e-6 * abs(cold.loglik_)


def test_warm_start_with_other_columns_falls_back_to_a_cold_fit():
    _, data = incomes(2000, seed=2)
    data["age"] = data["age"].mask(np.random.default_rng(0).random(2000) < 0.2)
    warm = MNARSelectionImputer(["income"], warm_start=True, random_state=0).fit(data)
    changes = [
        {"mnar_features": ["income", "age"]},  # other MNAR columns
        {"link": "logit"},
        {"gamma": False},  # other covariates
    ]
    for change in changes:
        warm = copy.deepcopy(warm).set_params(mnar_features=["income"], link="probit",
                                              gamma=True).fit(data)  # fmt: skip
        warm.set_params(**change).fit(data)
        cold = clone(warm).set_params(warm_start=False).fit(data)
        # The same run from the same start: identical, not merely close.
        assert warm.n_iter_ == cold.n_iter_
        assert_array_equal(warm.mean_, cold.mean_)
        assert_array_equal(coefficients(warm), coefficients(cold))
    # Other never-missing columns (other covariates) on other data.
    complete_age = incomes(2000, seed=2)[1]
    warm.set_params(mnar_features=["income"], link="probit", gamma=True)
    warm.fit(data).fit(complete_age)
    cold = MNARSelectionImputer(["income"], random_state=0).fit(complete_age)
    assert warm.n_iter_ == cold.n_iter_
    assert_array_equal(coefficients(warm), coefficients(cold))


def test_warm_start_parameter_round_trips_and_survives_a_model_file(tmp_path):
    from emimpute._model_io import load_model, save_model

    imputer = MNARSelectionImputer(["income"], warm_start=True, random_state=0)
    assert clone(imputer).get_params()["warm_start"] is True
    with pytest.raises(ValueError, match="warm_start"):
        MNARSelectionImputer(warm_start="yes").fit(incomes(200, seed=0)[1])
    _, data = incomes(3000, seed=3)
    imputer.fit(data)
    path = tmp_path / "mnar.json"
    save_model(imputer, path)
    loaded = load_model(path)
    assert loaded.warm_start is True
    assert_array_equal(loaded.transform(data), imputer.transform(data))
    # The loaded fit is a warm start like the original one.
    loaded.fit(data)
    assert loaded.n_iter_ <= imputer.n_iter_ / 5
    assert loaded.loglik_ == pytest.approx(imputer.loglik_, rel=1e-6)


def _two_mnar_columns(seed=0, n=300):
    rng = np.random.default_rng(seed)
    X = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.3], [0.3, 1.0]], size=n)
    X[rng.random(X.shape) < 0.3] = np.nan
    return pd.DataFrame(X, columns=["a", "b"])


def test_steep_logit_rows_with_two_missing_cells_are_named():
    """Rows missing both MNAR columns under a steep logit curve are
    integrated on a grid of at most 24 nodes per axis: the fit says so and
    names the pair (psi held at 5 per unit: psi s about 5 on these unit-sd
    columns); a gentle curve, or the probit's closed forms, say nothing."""
    X = _two_mnar_columns()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # 3 steps
        with pytest.warns(UserWarning, match=r"in rows missing both a and b \(psi s"):
            MNARSelectionImputer(link="logit", psi=5.0, max_iter=3).fit(X)
    for link, psi in (("logit", 0.5), ("probit", 5.0)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            MNARSelectionImputer(link=link, psi=psi, max_iter=3).fit(X)
