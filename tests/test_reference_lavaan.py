"""EMImputer against lavaan's full-information maximum likelihood (lavaan 0.6.14).

The fixture tests/reference/lavaan_fiml.json holds, for mice::nhanes,
datasets::airquality and the numeric columns of mice::boys (data in
tests/reference/boys.csv), lavaan's fit of the saturated normal model with
``missing = "ml"`` on columns standardised by their observed mean and SD,
the centre and scale used, lavaan's log-likelihood and its own EM estimate
of the saturated model.  ``Rscript tests/reference/lavaan_fiml.R``
regenerates it; these tests never need R.

lavaan maximises the observed-data likelihood directly (nlminb), EMImputer
by EM: two routes to one maximum likelihood estimate, each accurate to its
own stopping rule.

How close they must be
----------------------
* EMImputer, stopped at ``tol``, is within ``tol r / (1 - r)`` of the fixed
  point on the standardised scale, r the rate of convergence (largest
  fraction of missing information); ``fit_tolerance`` in tests/conftest.py
  bounds two such fits by ``(2 tol + 1e3 eps) / (1 - r)``, which we use as
  the EM share.  The rates assumed below are checked by
  :func:`test_assumed_rates_bound_the_measured_rates`.
* lavaan's optimum is as good as nlminb left it.  The script stores the
  Newton step ``solve(Hessian, gradient)`` at lavaan's estimate, which is its
  distance to the exact optimum to second order; we allow twice it (1e-8 to
  1e-7 on these data).
* Log-likelihoods: EM's objective converges at rate r**2, so relative error
  ``loglik_tolerance(tol, rate)``; lavaan's, half the Newton decrement
  ``n g' H^-1 g / 2``, bounded by ``n * npar * max|g| * max|step|``.
With tol = 1e-10 this gives 2e-9 (nhanes, airquality) and 4e-8 (boys, where
r = 0.993) for EM plus the Newton steps: about 1e-7 on standardised
parameters of order 1, and 1e-8 relative on the log-likelihoods.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from emimpute import EMImputer

REFERENCE = Path(__file__).parent / "reference"
LAVAAN = json.loads((REFERENCE / "lavaan_fiml.json").read_text())
CASES = list(LAVAAN["cases"])
TOL = 1e-10

# Rate of convergence assumed per data set (largest fraction of missing
# information), with a margin over the rate measured from plain EM's
# log-likelihood increments: about 0.62 (nhanes), 0.33 (airquality) and
# 0.993 (boys: tv is 70% missing and the remaining columns are nearly
# collinear through bmi = wgt / hgt^2).
RATE = {"nhanes": 0.9, "airquality": 0.9, "boys": 0.995}


def _data(name):
    """Raw data of a case (rows x columns, NaN for missing)."""
    case = LAVAAN["cases"][name]
    if "data" in case:
        columns = [case["data"][column] for column in case["columns"]]
        return np.array(columns, dtype=np.float64).T  # JSON null -> NaN
    boys = pd.read_csv(REFERENCE / "boys.csv")
    return boys[case["columns"]].to_numpy(dtype=np.float64)


def _standardised(name):
    """The data as lavaan saw them: (x - center) / scale with R's doubles."""
    case = LAVAAN["cases"][name]
    return (_data(name) - np.array(case["center"])) / np.array(case["scale"])


def _lavaan_accuracy(name):
    """Distance of lavaan's estimate to the exact optimum (twice its Newton
    step) and the error of its log-likelihood that this implies."""
    case = LAVAAN["cases"][name]
    optimizer = case["optimizer"]
    p = len(case["columns"])
    npar = p + p * (p + 1) // 2
    step = optimizer["max_abs_newton_step"]
    logl = case["n"] * npar * optimizer["max_abs_gradient"] * step
    return 2.0 * step, logl


def _observed_loglik(X, mean, covariance):
    """Observed-data normal log-likelihood with the log(2 pi) constant,
    written out pattern by pattern (Little & Rubin 2002, eq. 11.1),
    independently of emimpute's kernels."""
    observed = ~np.isnan(X)
    total = 0.0
    for pattern in np.unique(observed, axis=0):
        if not pattern.any():
            continue
        rows = X[(observed == pattern).all(axis=1)][:, pattern]
        sigma = covariance[np.ix_(pattern, pattern)]
        centred = rows - mean[pattern]
        _, logdet = np.linalg.slogdet(sigma)
        quadratic = np.einsum("ij,ij->", centred @ np.linalg.inv(sigma), centred)
        k, m = pattern.sum(), rows.shape[0]
        total -= 0.5 * (m * k * np.log(2 * np.pi) + m * logdet + quadratic)
    return total


@pytest.fixture(scope="module")
def fits():
    """EMImputer at tol = 1e-10 on the standardised and on the raw data."""
    out = {}
    for name in CASES:
        standardised = EMImputer(tol=TOL, max_iter=5000).fit(_standardised(name))
        raw = EMImputer(tol=TOL, max_iter=5000).fit(_data(name))
        assert standardised.converged_ and raw.converged_
        out[name] = standardised, raw
    return out


def test_fixture_records_versions_and_settings():
    meta = LAVAAN["meta"]
    assert meta["lavaan"] == "0.6.14"
    assert meta["mice"] == "3.15.0"
    assert meta["R"].startswith("R version 4.2.2")
    assert meta["command"] == "Rscript tests/reference/lavaan_fiml.R"
    assert meta["nlminb_control"]["rel.tol"] == 1e-14


@pytest.mark.parametrize("name", CASES)
def test_fixture_data_match_the_stored_standardisation(name):
    # The centre and scale are the observed mean and SD (divisor n_obs - 1)
    # of the data the test reads, to rounding of R's and NumPy's sums.
    X = _data(name)
    case = LAVAAN["cases"][name]
    assert_allclose(np.nanmean(X, axis=0), case["center"], rtol=1e-13)
    assert_allclose(np.nanstd(X, axis=0, ddof=1), case["scale"], rtol=1e-13)
    # lavaan's n counts the rows with at least one observed value.
    assert case["n"] == int((~np.isnan(X)).any(axis=1).sum())


@pytest.mark.parametrize("name", CASES)
def test_mean_and_covariance_equal_lavaan_fiml(name, fits, fit_tolerance):
    case = LAVAAN["cases"][name]
    imputer = fits[name][0]
    lavaan_error, _ = _lavaan_accuracy(name)
    atol = fit_tolerance(TOL, rate=RATE[name]) + lavaan_error
    assert atol < 1e-6  # the comparison is worth making
    assert_allclose(imputer.mean_, case["mean"], rtol=0, atol=atol)
    assert_allclose(imputer.covariance_, case["covariance"], rtol=0, atol=atol)


@pytest.mark.parametrize("name", CASES)
def test_mean_and_covariance_equal_lavaans_own_em(name, fits, fit_tolerance):
    # lavaan's EM for the saturated model, run to a largest parameter change
    # of 1e-13: a second, independent EM at the same fixed point, so only
    # the two stopping rules separate them.
    case = LAVAAN["cases"][name]
    imputer = fits[name][0]
    atol = fit_tolerance(max(TOL, LAVAAN["meta"]["em_h1_tol"]), rate=RATE[name])
    assert_allclose(imputer.mean_, case["h1_mean"], rtol=0, atol=atol)
    assert_allclose(imputer.covariance_, case["h1_covariance"], rtol=0, atol=atol)


@pytest.mark.parametrize("name", CASES)
def test_loglik_equals_lavaan_logl(name, fits, loglik_tolerance):
    case = LAVAAN["cases"][name]
    imputer = fits[name][0]
    _, lavaan_error = _lavaan_accuracy(name)
    rtol = loglik_tolerance(TOL, rate=RATE[name])
    atol = lavaan_error + rtol * abs(case["logl"])
    assert abs(imputer.loglik_ - case["logl"]) <= atol
    assert abs(imputer.loglik_ - case["unrestricted_logl"]) <= atol


@pytest.mark.parametrize("name", CASES)
def test_loglik_constants_agree_with_lavaan(name):
    # lavaan's logl includes -0.5 log(2 pi) per observed cell: the formula
    # written out here, evaluated at lavaan's own estimate, reproduces it to
    # rounding (an identity on fixed inputs), and without the constant it is
    # off by exactly that constant, far more than any tolerance above.
    case = LAVAAN["cases"][name]
    Z = _standardised(name)
    mean, covariance = np.array(case["mean"]), np.array(case["covariance"])
    ours = _observed_loglik(Z, mean, covariance)
    assert_allclose(ours, case["logl"], rtol=1e-12)
    constant = 0.5 * (~np.isnan(Z)).sum() * np.log(2 * np.pi)
    assert abs(ours + constant - case["logl"]) > 1e3 * abs(ours - case["logl"])
    # EMImputer's log-likelihood (score_samples, per row), evaluated at
    # lavaan's parameters put in place of its own, follows the same convention.
    imputer = EMImputer().fit(Z)
    imputer.mean_, imputer.covariance_ = mean, covariance
    assert_allclose(imputer.score_samples(Z).sum(), case["logl"], rtol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_raw_scale_fit_is_lavaans_fit_transformed_back(
    name, fits, fit_tolerance, loglik_tolerance
):
    # Affine equivariance: fitted on the raw columns, the estimate is
    # lavaan's standardised estimate mapped back, mean = c + s * mu and
    # covariance = D Sigma D with D = diag(s); the log-likelihood moves by
    # the Jacobian, -sum over observed cells of log s_j.
    case = LAVAAN["cases"][name]
    raw = fits[name][1]
    center, scale = np.array(case["center"]), np.array(case["scale"])
    lavaan_error, lavaan_logl_error = _lavaan_accuracy(name)
    atol = fit_tolerance(TOL, rate=RATE[name]) + lavaan_error
    mean = center + scale * np.array(case["mean"])
    covariance = np.outer(scale, scale) * np.array(case["covariance"])
    # Compared in units of s (means) and s s' (covariances), where the
    # tolerance is stated.
    outer = np.outer(scale, scale)
    assert_allclose(raw.mean_ / scale, mean / scale, rtol=0, atol=atol)
    assert_allclose(raw.covariance_ / outer, covariance / outer, rtol=0, atol=atol)
    observed = (~np.isnan(_data(name))).sum(axis=0)
    logl = case["logl"] - observed @ np.log(scale)
    rtol = loglik_tolerance(TOL, rate=RATE[name])
    assert abs(raw.loglik_ - logl) <= lavaan_logl_error + rtol * abs(logl)


def test_boys_csv_is_mice_boys():
    # 748 rows, the nine columns of mice::boys, and its numbers of missing
    # values per column (mice 3.15 documentation of boys).
    boys = pd.read_csv(REFERENCE / "boys.csv")
    assert boys.shape == (748, 9)
    assert list(boys.columns) == [
        "age",
        "hgt",
        "wgt",
        "bmi",
        "hc",
        "gen",
        "phb",
        "tv",
        "reg",
    ]
    missing = boys.isna().sum().to_dict()
    assert missing == {
        "age": 0,
        "hgt": 20,
        "wgt": 4,
        "bmi": 21,
        "hc": 46,
        "gen": 503,
        "phb": 503,
        "tv": 522,
        "reg": 3,
    }
    assert sorted(boys["gen"].dropna().unique()) == ["G1", "G2", "G3", "G4", "G5"]
    assert sorted(boys["phb"].dropna().unique()) == ["P1", "P2", "P3", "P4", "P5", "P6"]
    assert sorted(boys["reg"].dropna().unique()) == [
        "city",
        "east",
        "north",
        "south",
        "west",
    ]


@pytest.mark.parametrize("name", CASES)
def test_assumed_rates_bound_the_measured_rates(name):
    # Plain EM's log-likelihood increments shrink by r**2 per iteration
    # once the slowest direction dominates (Dempster, Laird & Rubin 1977,
    # sec. 3); their ratio over the last iterations before rounding sets in
    # measures r, which must stay below the rate the tolerances assume.
    imputer = EMImputer(tol=0.0, max_iter=300, accelerate=False)
    with pytest.warns(ConvergenceWarning):  # tol = 0 is never reached
        imputer.fit(_standardised(name))
    increments = np.diff(imputer.loglik_path_)
    increments = increments[increments > 1e-9]
    ratios = increments[-6:][1:] / increments[-6:][:-1]
    measured = np.sqrt(np.median(ratios))
    assert 0 < measured < RATE[name]
