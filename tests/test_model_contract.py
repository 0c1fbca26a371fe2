"""The model contract, checked for every registered imputer.

Each registered estimator builds its :class:`~emimpute.engine._model.EMModel`
and start through its ``_build_model(X)`` hook; on small data (150 rows, 4
columns, one column missing not at random, one completely at random) the
model and the estimator must satisfy what the engine and everything around
it rely on:

- plain EM never decreases the objective (Dempster, Laird & Rubin 1977,
  Theorem 1; a generalised M-step keeps it, sec. 3), and its fixed point is
  a maximum (a direct maximisation from there finds nothing higher);
- SQUAREM reaches the optimum of plain EM, within the stopping rule's
  tolerance (tests/conftest.py) at the fit's own rate of convergence;
- the statistics of row blocks add up to those of the whole data (what
  chunked and Dask fits need), so the M-step from either is the same;
- transform leaves the observed cells as they are;
- draws (``sample_posterior=True``) have the conditional means and
  variances (``conditional_moments``, every registered model has it; for a
  model without it, the means of transform), within Monte Carlo error;
- a model file (JSON) gives the same transform;
- a Dask fit equals the in-memory fit, for models with a Dask shell.

``parametrize_with_checks`` runs in tests/test_common.py.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize, special

import emimpute  # noqa: F401  (registers the imputers)
from emimpute.engine._driver import run_em
from emimpute.engine._model import EMModel, sum_statistics
from emimpute.imputers._base import BaseEMImputer
from emimpute.imputers._registry import registered_imputers

ENTRIES = registered_imputers()
#: Settings of every estimator here (those it has): maximum likelihood, a
#: tight stopping rule.  Per model, its own settings for these data.
COMMON = {"ridge": 0.0, "tol": 1e-9, "max_iter": 20_000, "random_state": 0}
OWN = {"mnar": {"mnar_features": [0], "link": "probit"}}
#: Each case: a registered model with settings of its own.  Every model
#: runs with its defaults; the t model a second time with df fixed, where
#: its statistics add over row blocks (an estimated df needs two passes,
#: so the block test skips the default one).
CASES = {entry.name: (entry.name, {}) for entry in ENTRIES} | {
    "t-df5": ("t", {"df": 5.0})
}
NAMES = list(CASES)
TOL = COMMON["tol"]
#: Draws per missing cell in the Monte Carlo checks.
N_DRAWS = 300
#: A relative decrease of the objective larger than this is a failure
#: (rounding of sums of ~1e3 terms is far below it).
ROUNDING = 1e-10


def contract_data(seed=0, n=150):
    """x0 missing with P = Phi(-0.3 + z0) (MNAR), x1 missing completely at
    random (20%), x2 and x3 complete; correlated normal columns in
    different units."""
    rng = np.random.default_rng(seed)
    corr = 0.3 * np.ones((4, 4)) + 0.7 * np.eye(4)
    corr[0, 2] = corr[2, 0] = 0.6
    units = np.array([2.0, 0.5, 10.0, 1.0])
    Z = rng.multivariate_normal(np.zeros(4), corr, size=n)
    X = Z * units + np.array([1.0, -3.0, 50.0, 0.0])
    X[rng.random(n) < special.ndtr(-0.3 + Z[:, 0]), 0] = np.nan
    X[rng.random(n) < 0.2, 1] = np.nan
    return X


X = contract_data()


def _on_the_em_engine(case):
    """Whether the case's model runs on :func:`run_em` (``_build_model``).
    GaussianCopulaImputer's fit is stochastic (SAEM,
    :mod:`emimpute.engine._saem`): its objective is not evaluated and its
    iterates are random, so the deterministic contract below (monotone
    objective, fixed point, SQUAREM, statistics of blocks) is for the EM
    models; its SAEM is checked against the exact maximum likelihood
    estimate in tests/models/test_copula.py."""
    cls = next(entry.estimator for entry in ENTRIES if entry.name == CASES[case][0])
    return cls._build_model is not BaseEMImputer._build_model


EM_NAMES = [name for name in NAMES if _on_the_em_engine(name)]


def estimator(case, **extra):
    """The registered estimator of ``case`` (:data:`CASES`) with the common,
    its model's and the case's settings (those among its parameters)."""
    name, settings = CASES[case]
    cls = next(entry.estimator for entry in ENTRIES if entry.name == name)
    known = cls().get_params()
    wanted = {**COMMON, **OWN.get(name, {}), **settings, **extra}
    return cls(**{key: value for key, value in wanted.items() if key in known})


def model_and_start(name):
    """``(model, start)`` from the estimator's ``_build_model`` hook."""
    return estimator(name)._build_model(X)


@pytest.fixture(scope="module")
def fitted():
    """Each estimator fitted once to X, with means and with draws."""
    return {
        name: {
            False: estimator(name).fit(X),
            True: estimator(name, sample_posterior=True).fit(X),
        }
        for name in NAMES
    }


# ---------------------------------------------------------------------------
# The model on the engine


def _objective_path(model, params, n_steps):
    """The objective along ``n_steps`` plain EM steps (the map evaluated
    here, not by the driver)."""
    values = []
    for _ in range(n_steps):
        stats_ = model.e_step(params)
        values.append(model.objective(params, stats_))
        params = model.m_step(params, stats_)
    return np.array(values)


def _assert_never_decreases(values):
    steps = np.diff(values)
    assert np.all(steps >= -ROUNDING * np.abs(values[1:])), steps.min()


@pytest.mark.parametrize("name", EM_NAMES)
def test_plain_em_never_decreases_the_objective(name):
    model, start = model_and_start(name)
    # From the start, where it climbs (so the check is not vacuous) ...
    values = _objective_path(model, start, 60)
    _assert_never_decreases(values)
    assert values[-1] > values[0]
    # ... and the driver's path without acceleration (ridge 0: the path of
    # log-likelihoods is the objective).
    run = run_em(model, start, accelerate=False, max_iter=500, tol=1e-12)
    _assert_never_decreases(run.path)


@pytest.mark.parametrize("name", EM_NAMES)
def test_the_fixed_point_of_em_is_a_maximum(name, loglik_tolerance):
    """A direct maximisation of the objective (BFGS on the model's
    unconstrained vector, the objective from the E-step's log-likelihood
    alone) started at EM's fixed point finds nothing higher: the M-step
    maximises what it should (a biased M-step moves the fixed point)."""
    model, start = model_and_start(name)
    run = run_em(model, start, max_iter=COMMON["max_iter"], tol=TOL)

    def minus_objective(vector):
        params = model.from_vector(vector, run.params)
        stats_ = model.e_step(params)
        return np.inf if stats_ is None else -model.objective(params, stats_)

    direct = optimize.minimize(
        minus_objective, model.to_vector(run.params), method="BFGS",
        options={"gtol": 1e-6},
    )  # fmt: skip
    assert -direct.fun - run.value <= loglik_tolerance(TOL) * abs(run.value)


def _plain_run_and_rate(model, start):
    """Plain EM to the stopping rule, and its rate of convergence: the
    ratio of the last parameter changes (the largest fraction of missing
    information, Dempster, Laird & Rubin 1977, sec. 3)."""
    changes = []
    run = run_em(
        model, start, accelerate=False, max_iter=COMMON["max_iter"], tol=TOL,
        callback=lambda iteration, loglik, change: changes.append(change),
    )  # fmt: skip
    rate = changes[-1] / changes[-2]
    return run, rate


@pytest.mark.parametrize("name", EM_NAMES)
def test_squarem_reaches_the_optimum_of_plain_em(name, fit_tolerance, loglik_tolerance):
    model, start = model_and_start(name)
    plain, rate = _plain_run_and_rate(model, start)
    fast = run_em(model, start, accelerate=True, max_iter=COMMON["max_iter"], tol=TOL)
    assert plain.converged and fast.converged
    assert fast.n_steps < plain.n_steps
    rate = max(rate, 0.9)
    # model.change: the largest difference on the standardised scale, the
    # quantity the stopping rule bounds.
    assert model.change(plain.params, fast.params) <= fit_tolerance(TOL, rate=rate)
    relative = abs(fast.value - plain.value) / abs(plain.value)
    assert relative <= loglik_tolerance(TOL, rate=rate)


@pytest.mark.parametrize("name", EM_NAMES)
def test_statistics_of_row_blocks_add_up_to_the_whole(name):
    model, start = model_and_start(name)
    params = run_em(model, start, accelerate=False, max_iter=3).params
    blocks = np.array_split(np.random.default_rng(1).permutation(len(X)), 4)
    try:
        parts = [model.statistics_of(X[rows], params) for rows in blocks]
    except NotImplementedError as error:
        pytest.skip(f"{type(model).__name__}: {error}")
    total, whole = sum_statistics(parts), model.e_step(params)
    assert total.loglik == pytest.approx(whole.loglik, rel=1e-12)
    for field, value in vars(whole).items():
        if isinstance(value, np.ndarray):
            summed = getattr(total, field)
            assert_allclose(summed, value, rtol=0, atol=1e-11 * np.abs(value).max())
    # Every field, the non-array ones (pseudo-rows) included, through the
    # M-step: the same new parameters, to rounding.
    from_blocks = model.m_step(params, total)
    assert model.change(from_blocks, model.m_step(params, whole)) < 1e-10


# ---------------------------------------------------------------------------
# The estimator


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("draws", [False, True], ids=["means", "draws"])
def test_transform_leaves_observed_cells_unchanged(name, draws, fitted):
    original = X.copy()
    completed = fitted[name][draws].transform(X)
    observed = ~np.isnan(X)
    assert_array_equal(completed[observed], X[observed])
    assert not np.isnan(completed).any()
    assert_array_equal(X, original)  # the caller's data untouched


@pytest.mark.parametrize("name", NAMES)
def test_draws_have_the_conditional_moments(name, fitted):
    est = fitted[name][True]
    missing = np.isnan(X)
    draws = np.stack(
        [est.set_params(random_state=r).transform(X)[missing] for r in range(N_DRAWS)]
    )
    est.set_params(random_state=COMMON["random_state"])
    mean, var = draws.mean(axis=0), draws.var(axis=0, ddof=1)
    if hasattr(est, "conditional_moments"):
        ref_mean, ref_var = (value[missing] for value in est.conditional_moments(X))
        # The draws need not be normal (the selection model's are skewed,
        # the t model's heavy-tailed), so not chi2: s^2 is asymptotically
        # normal with variance (mu4 - sigma^4 (R - 3) / (R - 1)) / R (Cramer
        # 1946, sec. 27.4), mu4 the draws' fourth central moment.
        mu4 = ((draws - mean) ** 4).mean(axis=0)
        se_var = np.sqrt((mu4 - var**2 * (N_DRAWS - 3) / (N_DRAWS - 1)) / N_DRAWS)
        z_var = (var - ref_var) / se_var
        assert np.max(np.abs(z_var)) < 5.5, np.max(np.abs(z_var))
    else:
        # No conditional variances from this model: the draws' mean against
        # transform's conditional means, the spread estimated from the draws.
        ref_mean, ref_var = fitted[name][False].transform(X)[missing], var
    z = (mean - ref_mean) / np.sqrt(ref_var / N_DRAWS)
    assert np.max(np.abs(z)) < 5.5, np.max(np.abs(z))  # ~90 cells: P < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_model_file_round_trip_gives_the_same_transform(name, fitted, tmp_path):
    from emimpute._model_io import load_model, save_model

    for est in fitted[name].values():
        path = tmp_path / f"{name}.json"
        save_model(est, path)
        loaded = load_model(path)
        assert_array_equal(loaded.transform(X), est.transform(X))


def _dask_class(cls):
    """The Dask shell of an in-memory imputer class, or None."""
    from emimpute.dask import BlockwiseFitMixin, _in_memory_class

    pending = list(BlockwiseFitMixin.__subclasses__())
    while pending:
        candidate = pending.pop()
        pending.extend(candidate.__subclasses__())
        if _in_memory_class(candidate) is cls:
            return candidate
    return None


@pytest.mark.parametrize("name", NAMES)
def test_dask_fit_equals_in_memory_fit(name, fitted, assert_same_fit):
    da = pytest.importorskip("dask.array")
    local = fitted[name][False]
    dask_class = _dask_class(type(local))
    if dask_class is None and not _on_the_em_engine(name):
        pytest.skip(
            f"{type(local).__name__}'s Dask fit is stochastic (SAEM): it is "
            "compared with the in-memory fit in tests/test_dask_copula.py"
        )
    if dask_class is None:
        model, _ = model_and_start(name)
        adds = type(model).statistics_of is not EMModel.statistics_of
        reason = (
            f"no Dask shell for {type(local).__name__}: its model's statistics "
            f"{'add over row blocks (statistics_of)' if adds else 'do not add yet'}"
            ", but no BlockwiseFitMixin subclass gives it a _blockwise_kernel"
        )
        pytest.skip(reason)
    remote = dask_class(**local.get_params()).fit(da.from_array(X, chunks=(40, 4)))
    assert remote.n_blocks_ == 4
    assert_same_fit(
        remote.mean_, remote.covariance_, local.mean_, local.covariance_,
        tol=TOL, scale=np.nanstd(X, axis=0),
    )  # fmt: skip
