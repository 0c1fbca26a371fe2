"""The EM driver (emimpute/engine/_driver.py) and the model interface
(emimpute/engine/_model.py), on toy models whose answer is known in closed
form, so that each property is checked apart from any statistical model."""

from dataclasses import dataclass

import numpy as np
import pytest
from numpy.testing import assert_allclose

from emimpute.engine._driver import best_start, run_em
from emimpute.engine._model import (
    EMModel,
    SingularCovarianceError,
    Statistics,
    sum_statistics,
)


@dataclass(frozen=True)
class _Quadratic(Statistics):
    point: np.ndarray


class LinearMap(EMModel):
    """An EM map theta -> target + rate (theta - target) with objective
    -|theta - target|^2 / 2: the fixed point is ``target``, the error
    shrinks by ``rate`` per step (the rate of linear convergence of EM), and
    the objective rises at every step."""

    def __init__(self, target, rate, singular_beyond=np.inf):
        self.target = np.asarray(target, dtype=float)
        self.rate = rate
        self.singular_beyond = singular_beyond

    def start(self):
        return self.target + 10.0

    def e_step(self, params):
        if np.max(np.abs(params - self.target)) > self.singular_beyond:
            return None
        loglik = -0.5 * float(np.sum((params - self.target) ** 2))
        return _Quadratic(loglik, params)

    def m_step(self, params, stats):
        return self.target + self.rate * (stats.point - self.target)

    def to_vector(self, params):
        return np.asarray(params, dtype=float)

    def from_vector(self, vector, like):
        return np.asarray(vector, dtype=float)


@pytest.mark.parametrize("accelerate", [False, True])
def test_run_em_reaches_the_fixed_point_and_never_lowers_the_objective(accelerate):
    model = LinearMap([1.0, -2.0, 3.0], rate=0.9)
    run = run_em(model, max_iter=2000, tol=1e-10, accelerate=accelerate)
    assert run.converged
    # Stopped when a step moved less than tol: the error of a contraction
    # with rate r is then below tol * r / (1 - r).
    assert_allclose(run.params, model.target, atol=1e-10 * 0.9 / 0.1 * 1.01)
    assert np.all(np.diff(run.path) >= 0)
    assert run.loglik == run.path[-1] == run.stats.loglik


def test_squarem_needs_far_fewer_em_steps_on_a_slow_map():
    model = LinearMap([0.5, 0.5], rate=0.99)
    plain = run_em(model, max_iter=10_000, tol=1e-8, accelerate=False)
    fast = run_em(model, max_iter=10_000, tol=1e-8, accelerate=True)
    assert plain.converged and fast.converged
    # Plain EM needs about log(tol / 10) / log(0.99) ~ 2000 steps; SQUAREM
    # solves a linear map's error in one extrapolation.
    assert plain.n_steps > 1500
    assert fast.n_steps < 20
    assert plain.n_iter == plain.n_steps


def test_a_singular_start_raises_with_the_models_message():
    model = LinearMap([0.0], rate=0.5, singular_beyond=1.0)
    model.singular_message = "toy model left its domain"
    with pytest.raises(SingularCovarianceError, match="toy model left its domain"):
        run_em(model)


class _NoExtrapolation(LinearMap):
    """Every extrapolated point is outside the domain (its E-step fails)."""

    def from_vector(self, vector, like):
        return _Extrapolated(vector)

    def e_step(self, params):
        return None if isinstance(params, _Extrapolated) else super().e_step(params)


class _Extrapolated(np.ndarray):
    def __new__(cls, values):
        return np.asarray(values, dtype=float).view(cls)


def test_a_failed_extrapolation_falls_back_to_the_double_em_step():
    """When no extrapolated point can be evaluated, each SQUAREM iteration is
    exactly two plain EM steps."""
    model = _NoExtrapolation([0.0, 1.0], rate=0.8)
    run = run_em(model, max_iter=5, tol=0.0, accelerate=True)
    expected = model.start()
    for _ in range(2 * run.n_iter):
        expected = model.m_step(expected, model.e_step(expected))
    assert run.n_iter == 5
    assert run.n_steps == 2 * run.n_iter
    assert_allclose(run.params, expected, rtol=1e-14)


def test_callback_sees_every_iteration():
    seen = []
    run = run_em(
        LinearMap([2.0], rate=0.5),
        tol=1e-12,
        accelerate=False,
        callback=lambda *args: seen.append(args),
    )
    assert [s[0] for s in seen] == list(range(1, run.n_iter + 1))
    assert [s[1] for s in seen] == list(run.path)


def test_best_start_keeps_the_start_with_the_highest_objective():
    near, far = LinearMap([0.0], rate=0.9), LinearMap([0.0], rate=0.9)
    best = best_start(
        [(far, np.array([50.0])), (near, np.array([1.0]))], max_iter=3, tol=1e-4
    )
    assert best.params[0] < 1.0


def test_statistics_add_field_by_field():
    @dataclass(frozen=True)
    class Sums(Statistics):
        total: np.ndarray
        optional: object = None

    parts = [Sums(float(i), np.full(2, i)) for i in range(4)]
    total = sum_statistics(parts)
    assert total.loglik == 6.0
    assert_allclose(total.total, [6.0, 6.0])
    assert total.optional is None
    with pytest.raises(TypeError):
        parts[0] + _Quadratic(0.0, np.zeros(2))


def test_statistics_with_a_structured_field_must_say_how_they_add():
    """A tuple field would be concatenated by +, silently: refused."""

    @dataclass(frozen=True)
    class Pairs(Statistics):
        pairs: tuple

    with pytest.raises(TypeError, match="Pairs.pairs"):
        Pairs(0.0, (1, 2)) + Pairs(0.0, (3, 4))


class _RunsOff(LinearMap):
    """A map whose fixed point is at infinity in practice: the model says
    when the parameters have run past its bound."""

    def m_step(self, params, stats):
        return stats.point * 2.0

    def out_of_bounds(self, params):
        return "ran off" if np.max(np.abs(params)) > 1e3 else None


def test_a_model_can_stop_a_run_that_runs_off():
    run = run_em(_RunsOff([0.0], rate=0.5), np.array([1.0]), accelerate=False)
    assert run.stopped == "ran off"
    assert not run.converged
    assert run.n_iter == 10  # 2**10 = 1024 is the first point past 1e3
    assert run_em(LinearMap([0.0], rate=0.5), tol=1e-8).stopped is None
