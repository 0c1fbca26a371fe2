"""EMImputer against Amelia's EM algorithm (Amelia 1.8.1), and the two ridge priors.

The fixture tests/reference/amelia_em.json holds Amelia's estimate of the
mean and covariance of datasets::airquality (Ozone, Solar.R, Wind, Temp; and
the same with Month and Day), from ``amelia(d, m = 1, boot.type = "none",
tolerance = 1e-10, empri = e)`` with e = 0, 5 and 5.7, as Amelia returned
it and un-permuted and un-scaled to the raw data's columns.
``Rscript tests/reference/amelia_em.R`` regenerates it; these tests never
need R.

Amelia's M-step with ``empri``
------------------------------
Read from Amelia 1.8.1's source: ``Amelia:::amelia.prep`` ->
``Amelia:::scalecenter`` (columns standardised by their observed mean and
R's ``sd()``, divisor n_obs - 1) -> ``Amelia:::amstack`` (rows sorted by
missingness pattern, columns by their number of missing cells) ->
``Amelia:::emarch`` -> the C++ routine ``emcore`` (src/em.cpp), which holds
the E-step and the M-step.  On the standardised data x, with n = nrow(x)
and k = p columns, each iteration of ``emcore``:

1. E-step: ``xplay`` is x with each missing cell replaced by its conditional
   mean (``sweep`` of theta on the observed columns), and ``hmcv``
   accumulates the conditional covariance block of the missing cells of
   every row; then ``hmcv += xplay' xplay`` and ``music = colSums(xplay)``.
   So music = T1 and hmcv = T2, the expected sums of the rows and of their
   cross-products (Little & Rubin 2002, eq. 11.4-11.5).
2. Prior, only ``if (empri > 0)``: with ``simple = T1 T1' / n`` and
   ``hold = empri * eye(k, k)``,
   ``hmcv = n / (n + empri + k + 2) * (hmcv - simple + hold) + simple``.
3. ``thetanew = [n, T1'; T1, hmcv] / n`` swept on its first position gives
   mu = T1 / n and Sigma = hmcv / n - mu mu'.

Since T2 - T1 T1' / n = n S_ml (S_ml = T2 / n - mu mu', the ML update):

    mu = T1 / n,    Sigma = (n S_ml + e I) / (n + e + p + 2)

on the standardised scale; on the raw scale the prior scatter is e diag(s^2)
with s the observed SD with divisor n_obs - 1.  The prior adds e
pseudo-observations to the scatter but e + p + 2 to the divisor, so even a
complete column's variance shrinks, by the factor (n + e n / (n - 1)) /
(n + e + p + 2).  e is ``int empri = emprir(0)``: a C++ conversion from
double, so empri is truncated towards zero (5.7 acts as 5, and any empri
below 1 as no prior at all, divisor n: the formula does not tend to the MLE
as e -> 0).  ``hold`` is computed once, before the loop: Amelia's
``autopri`` (raising empri by 0.01 n when the chain is non-monotone and
singular for more than 3 of the last 20 iterations) changes only the divisor;
the fixture records that it never acted here (no non-monotone or singular
iteration).

emimpute's ridge r (``emimpute.models._normal.m_step``) is
S = (n S_ml + r diag(s^2)) / (n + r) with s the observed SD with divisor
n_obs: r pseudo-observations in both.  A complete column's variance is then
exactly its ML variance whatever r, so on a complete column ridge = e gives
(n + e + p + 2) / (n + e n / (n - 1)) times Amelia's variance: 3.8% more on
airquality's four columns (n = 153, e = 5, p = 4), 5.0% with six.  Measured
on the incomplete columns: Ozone 4.3%, Solar.R 3.9% (four columns); 5.7%
and 5.2% (six).

How close they must be
----------------------
Amelia stops when no element of mu or Sigma (standardised by its SD with
divisor n_obs - 1) changes by more than ``tolerance`` in an iteration;
EMImputer when the largest change of mean and covariance standardised by
the SD with divisor n_obs, and the relative change of the objective, are
below ``tol``.  On EMImputer's scale Amelia's covariance criterion is
``tolerance * n_obs / (n_obs - 1)`` (at most 1.009 ``tolerance`` here),
its mean criterion smaller.  Each fit is then within ``t r / (1 - r)`` of
the fixed point, r the rate of EM (largest fraction of missing information,
0.33 measured on airquality in tests/test_reference_lavaan.py; 0.9 assumed),
so ``assert_same_fit`` of tests/conftest.py, ``(2 t + 1e3 eps) / (1 - r)``
with t the larger criterion, bounds their difference: 2e-9 on the
standardised scale with t = 1e-10.  The EM with Amelia's M-step written
below is run to 1e-13, so the same bound holds for it against Amelia.
Measured: 3e-11 (no prior) and 2.5e-11 (Amelia's prior).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from emimpute import EMImputer
from emimpute.models._normal import e_step, prepare_problem

REFERENCE = Path(__file__).parent / "reference"
AMELIA = json.loads((REFERENCE / "amelia_em.json").read_text())
CASES = list(AMELIA["cases"])
TOL = 1e-10
RATE = 0.9
#: Largest parameter change at which the EM with Amelia's M-step stops.
AMELIA_EM_TOL = 1e-13


def _data(name):
    """The case's raw data, rows x columns, NaN for missing (JSON null)."""
    case = AMELIA["cases"][name]
    return np.array(case["data"], dtype=np.float64).T


def _fit(name, empri):
    return AMELIA["cases"][name]["fits"][f"empri_{empri}"]


def _our_scale(X):
    """Observed SDs with divisor n_obs: EMImputer's standardising scale."""
    return np.nanstd(X, axis=0)


def _amelia_tolerance(X):
    """Amelia's stopping criterion on EMImputer's standardised scale: its
    covariance changes are measured in units of s_(n_obs - 1)**2, which is
    n_obs / (n_obs - 1) times s_(n_obs)**2."""
    n_obs = (~np.isnan(X)).sum(axis=0)
    return AMELIA["meta"]["tolerance"] * np.max(n_obs / (n_obs - 1))


def amelia_prior_em(X, empri, *, truncate=True, tol=AMELIA_EM_TOL, max_iter=10_000):
    """EM with Amelia's M-step under ``empri`` (see the module docstring).

    The E-step is emimpute's (``prepare_problem`` / ``e_step``, sums about
    the observed column means); the M-step is Amelia's:
    Sigma = (n S_ml + e diag(s**2)) / (n + e + p + 2), s the observed SD
    with divisor n_obs - 1, e = int(empri), and the ML update when e = 0.
    Plain EM (no acceleration), until the largest change of the mean and
    covariance, standardised by s, is below ``tol``.  ``truncate=False``
    uses empri as it is, to show what truncation changes.

    Returns
    -------
    mean, covariance, n_iter
    """
    e = int(empri) if truncate else empri  # emcore reads empri into a C++ int
    n, p = X.shape
    s = np.nanstd(X, axis=0, ddof=1)
    problem = prepare_problem(X)
    mean, covariance = problem.center, np.diag(s**2)
    outer = np.outer(s, s)
    for n_iter in range(1, max_iter + 1):
        stats = e_step(problem, mean, covariance)
        T1, T2 = stats.row_sum, stats.cross
        shift = T1 / n
        scatter = T2 - n * np.outer(shift, shift)  # n S_ml
        if e > 0:
            new_covariance = (scatter + e * np.diag(s**2)) / (n + e + p + 2)
        else:
            new_covariance = scatter / n
        new_mean = problem.center + shift
        change = max(
            np.max(np.abs(new_mean - mean) / s),
            np.max(np.abs(new_covariance - covariance) / outer),
        )
        mean, covariance = new_mean, new_covariance
        if change < tol:
            return mean, covariance, n_iter
    raise AssertionError(f"EM with Amelia's prior did not converge in {max_iter}")


def _assert_close_to_amelia(mean, covariance, fit, X, assert_same_fit):
    assert_same_fit(
        mean,
        covariance,
        fit["mean"],
        fit["covariance"],
        tol=max(TOL, AMELIA_EM_TOL, _amelia_tolerance(X)),
        scale=_our_scale(X),
        rate=RATE,
    )


# ---------------------------------------------------------------------------
# The fixture itself


def test_fixture_records_versions_and_settings():
    meta = AMELIA["meta"]
    assert meta["amelia_version"] == "1.8.1"
    assert meta["r_version"].startswith("R version 4.2.2")
    assert meta["regenerate"] == "Rscript tests/reference/amelia_em.R"
    assert meta["tolerance"] == TOL


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("empri", ["0", "5", "5.7"])
def test_fixture_is_amelia_output_unpermuted_and_unscaled(name, empri):
    X = _data(name)
    fit = _fit(name, empri)
    # Amelia's centre and scale: observed mean and sd() (divisor n_obs - 1).
    center, scale = np.array(fit["center"]), np.array(fit["scale"])
    assert_allclose(center, np.nanmean(X, axis=0), rtol=1e-13)
    assert_allclose(scale, np.nanstd(X, axis=0, ddof=1), rtol=1e-13)
    # Amelia's own output is in its column order p_order (columns by
    # number of missing cells) under the original labels; undone, and
    # un-scaled, it is the stored raw-scale estimate (an exact identity).
    order = np.array(fit["p_order"], dtype=int) - 1
    assert sorted(order) == list(range(X.shape[1]))
    back = np.argsort(order)
    mu = np.array(fit["amelia_mu"])[back]
    sigma = np.array(fit["amelia_covMatrices"])[np.ix_(back, back)]
    assert_allclose(center + scale * mu, fit["mean"], rtol=1e-15, atol=0)
    assert_allclose(sigma * np.outer(scale, scale), fit["covariance"], rtol=1e-15)
    # A complete column's standardised mean is 0 up to rounding: the first
    # entries of Amelia's mu (the complete columns) are, under other labels.
    complete = ~np.isnan(X).any(axis=0)
    assert np.all(np.abs(np.array(fit["amelia_mu"])[: complete.sum()]) < 1e-14)
    # Amelia's autopri never acted (see the module docstring).
    assert fit["n_nonmonotone"] == 0 and fit["n_singular"] == 0
    assert fit["sorted_input_max_difference"] == 0


@pytest.mark.parametrize("name", CASES)
def test_amelia_truncates_empri(name):
    # empri = 5.7 gives Amelia's empri = 5 estimate to the last bit.
    assert _fit(name, "5.7")["covariance"] == _fit(name, "5")["covariance"]
    assert _fit(name, "5.7")["mean"] == _fit(name, "5")["mean"]


# ---------------------------------------------------------------------------
# No prior: both are the maximum likelihood estimate


@pytest.mark.parametrize("name", CASES)
def test_emimputer_equals_amelia_without_prior(name, assert_same_fit):
    X = _data(name)
    imputer = EMImputer(tol=TOL, max_iter=5000).fit(X)
    assert imputer.converged_
    fit = _fit(name, "0")
    _assert_close_to_amelia(imputer.mean_, imputer.covariance_, fit, X, assert_same_fit)


# ---------------------------------------------------------------------------
# Amelia's prior: the formula read from emcore reproduces Amelia


@pytest.mark.parametrize("name", CASES)
def test_amelia_m_step_reproduces_amelia_with_empri(name, assert_same_fit):
    X = _data(name)
    mean, covariance, _ = amelia_prior_em(X, 5)
    _assert_close_to_amelia(mean, covariance, _fit(name, "5"), X, assert_same_fit)
    # And without the prior the same code is the ML fit Amelia gives.
    mean0, covariance0, _ = amelia_prior_em(X, 0)
    _assert_close_to_amelia(mean0, covariance0, _fit(name, "0"), X, assert_same_fit)


@pytest.mark.parametrize("name", CASES)
def test_amelia_matches_truncated_empri_only(name, assert_same_fit, fit_tolerance):
    # Amelia's empri = 5.7 estimate is the fixed point of the M-step with
    # e = 5; with e = 5.7 as it is, the estimate moves by far more than the
    # tolerance of the comparison.
    X = _data(name)
    fit = _fit(name, "5.7")
    mean, covariance, _ = amelia_prior_em(X, 5.7)
    _assert_close_to_amelia(mean, covariance, fit, X, assert_same_fit)
    _, untruncated, _ = amelia_prior_em(X, 5.7, truncate=False)
    scale = _our_scale(X)
    moved = np.max(np.abs(untruncated - fit["covariance"]) / np.outer(scale, scale))
    assert moved > 1e3 * fit_tolerance(_amelia_tolerance(X), rate=RATE)


# ---------------------------------------------------------------------------
# ridge is not empri: the same number gives other variances


@pytest.mark.parametrize("name", CASES)
def test_ridge_differs_from_amelia_empri(name, fit_tolerance):
    X = _data(name)
    n, p = X.shape
    e = 5
    amelia = np.diag(np.array(_fit(name, "5")["covariance"]))
    imputer = EMImputer(tol=TOL, max_iter=5000, ridge=e).fit(X)
    assert imputer.converged_
    ratio = np.diag(imputer.covariance_) / amelia
    complete = ~np.isnan(X).any(axis=0)
    # Complete columns: ours keeps the ML variance, Amelia's shrinks it by
    # (n + e n / (n - 1)) / (n + e + p + 2): a closed form, to the two fits'
    # stopping rules (relative, since the variances are standardised by
    # themselves).
    expected = (n + e + p + 2) / (n + e * n / (n - 1))
    atol = fit_tolerance(max(TOL, _amelia_tolerance(X)), rate=RATE)
    assert_allclose(ratio[complete], expected, rtol=0, atol=2 * atol)
    assert expected - 1 > 0.03  # 3.8% with four columns, 5.0% with six
    # Incomplete columns (Ozone, Solar.R): larger still, 3.9% to 5.7%.
    assert np.all(ratio[~complete] - 1 > expected - 1)
    assert np.all(ratio[~complete] - 1 < 0.06)
