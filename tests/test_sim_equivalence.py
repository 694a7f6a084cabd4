"""The fast engine gives the SimPy engine's trajectory bit for bit (same seed, same draws,
same decisions): every per-iteration array and every request record is identical."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import sympy as sp

import queueing_llm as ql
from queueing_llm.sim import simulate
from queueing_llm.sim.draws import ITERATION_BLOCK
from queueing_llm.sim.kernel import KERNEL_POLICIES, numba_available
from queueing_llm.sim.trajectory import ARRAYS

T = ql.RequestType
PMF_PROMPT = ql.FinitePMF({5: 0.5, 20: 0.5})
PMF_DECODE = ql.FinitePMF({10: 0.3, 40: 0.7})
WALL = ql.LinearIterationTime(0.02, 1e-5)

# name -> (model, simulate options, iterations)
CASES = {
    "greedy": (ql.default_model(), {}, 600),
    "greedy-congested": (ql.ContinuousBatching([T(10, 40, 1.5)], kv_capacity=2000), {}, 600),
    "reserve": (ql.ContinuousBatching([T(10, 40, 1.2)], kv_capacity=2000, policy="reserve"), {}, 600),
    "rate-limited-x*": (ql.ContinuousBatching([T(10, 40, 1.5)], kv_capacity=2000, policy="rate_limited"), {}, 600),
    "rate-limited-1.3-two-types": (
        ql.ContinuousBatching([T(10, 40, 0.9), T(4, 8, 1.0)], kv_capacity=1200, policy="rate_limited(1.3)"),
        {},
        600,
    ),
    "static": (ql.ContinuousBatching([T(5, PMF_DECODE, 2.0)], kv_capacity=900, batch_cap=20, policy="static"), {}, 600),
    "fcfs-cap-geometric": (
        ql.ContinuousBatching([T(2, ql.Geometric(0.1), 2.0)], batch_cap=25, policy="fcfs_cap"),
        {},
        600,
    ),
    "waiting-cap": (ql.ContinuousBatching([T(10, 40, 1.6)], kv_capacity=2000, waiting_cap=5), {}, 600),
    "no-admit-after-eviction": (
        ql.ContinuousBatching([T(10, 40, 1.6)], kv_capacity=2000, waiting_cap=9, admit_after_eviction=False),
        {},
        600,
    ),
    "random-laws-two-types": (
        ql.ContinuousBatching(
            [T(PMF_PROMPT, PMF_DECODE, 1.3), T(3, ql.Empirical([2, 5, 9]), ql.Bernoulli(0.4))], kv_capacity=1500
        ),
        {},
        600,
    ),
    "three-types-batch-cap": (
        ql.ContinuousBatching(
            [T(8, 12, 0.7), T(2, 30, ql.Binomial(3, 0.3)), T(PMF_PROMPT, 5, 1.1)],
            kv_capacity=1100,
            batch_cap=30,
            waiting_cap=40,
        ),
        {},
        600,
    ),
    "across-a-draw-block": (
        ql.ContinuousBatching([T(3, 5, 0.3), T(1, 2, 0.2)], kv_capacity=30),
        {},
        ITERATION_BLOCK + 9,
    ),
    "wall-clock-poisson-process": (
        ql.ContinuousBatching([T(10, 40, ql.PoissonProcess(70.0))], kv_capacity=2000, iteration_time=WALL),
        {},
        600,
    ),
    "wall-clock-mixed-reserve": (
        ql.ContinuousBatching(
            [T(10, 40, ql.PoissonProcess(20.0)), T(4, 8, 1.0)], kv_capacity=2000, iteration_time=WALL, policy="reserve"
        ),
        {},
        600,
    ),
    "wall-clock-one-law-static": (
        ql.ContinuousBatching([T(5, PMF_DECODE, 2.0)], kv_capacity=900, batch_cap=20, policy="static",
                              iteration_time=WALL),
        {},
        600,
    ),
    "wall-clock-poisson-reserve-initial": (
        ql.ContinuousBatching([T(10, 40, ql.PoissonProcess(60.0))], kv_capacity=2000, iteration_time=WALL,
                              policy="reserve"),
        {"initial_batch": [3, 0, 2]},
        400,
    ),
    "wall-clock-poisson-congested-waiting-cap": (
        ql.ContinuousBatching([T(10, 40, ql.PoissonProcess(90.0))], kv_capacity=2000, iteration_time=WALL,
                              waiting_cap=7),
        {},
        600,
    ),
    "wall-clock-laws-waiting-cap": (
        ql.ContinuousBatching(
            [T(10, 40, 0.9), T(PMF_PROMPT, 8, 1.0)], kv_capacity=1000, iteration_time=WALL, waiting_cap=6
        ),
        {},
        600,
    ),
    "saturated-worked": (ql.ContinuousBatching([T(2, 2)], kv_capacity=140), {"saturated": True}, 300),
    "saturated-rate-limited": (
        ql.ContinuousBatching([T(10, 40)], kv_capacity=2000, policy="rate_limited"),
        {"saturated": True},
        600,
    ),
    "saturated-rate-limited-exact-57/35": (
        ql.ContinuousBatching([T(10, 40)], kv_capacity=2000, policy=ql.RateLimited(sp.Rational(57, 35))),
        {"saturated": True},
        600,
    ),
    "saturated-mix": (
        ql.ContinuousBatching([T(50, 2), T(50, 3)], kv_capacity=518, mix=[0.5, 0.5]),
        {"saturated": True},
        600,
    ),
    "saturated-random-reserve": (
        ql.ContinuousBatching(
            [T(PMF_PROMPT, PMF_DECODE), T(3, ql.Empirical([2, 5, 9]))], kv_capacity=1500, policy="reserve"
        ),
        {"saturated": True},
        600,
    ),
    "saturated-static-wall-clock": (
        ql.ContinuousBatching(
            [T(2, 3)], kv_capacity=24, policy="static", batch_cap=6, iteration_time=ql.LinearIterationTime(0.01, 0.001)
        ),
        {"saturated": True},
        300,
    ),
    "saturated-fcfs-geometric": (
        ql.ContinuousBatching([T(2, ql.Geometric(0.1))], batch_cap=25, policy="fcfs_cap"),
        {"saturated": True},
        600,
    ),
    "initial-worked": (
        ql.ContinuousBatching([T(2, 2)], kv_capacity=140),
        {"saturated": True, "initial_batch": [21, 19]},
        60,
    ),
    "initial-saturated-two-types": (
        ql.ContinuousBatching([T(50, 2), T(50, 3)], kv_capacity=518),
        {"saturated": True, "initial_batch": [[1, 2], [2, 0, 1]]},
        300,
    ),
    "initial-open-random": (
        ql.ContinuousBatching(
            [T(PMF_PROMPT, PMF_DECODE, 1.3), T(3, ql.Empirical([2, 5, 9]), ql.Bernoulli(0.4))], kv_capacity=1500
        ),
        {"initial_batch": [[1, 2, 0, 5], [2, 0, 1]]},
        400,
    ),
    "initial-wall-clock-reserve": (
        ql.ContinuousBatching(
            [T(10, 40, ql.PoissonProcess(20.0)), T(4, 8, 1.0)], kv_capacity=2000, iteration_time=WALL, policy="reserve"
        ),
        {"initial_batch": [[3, 0, 2], [1, 1]]},
        400,
    ),
    "initial-geometric-fcfs": (
        ql.ContinuousBatching([T(2, ql.Geometric(0.3), 1.5)], batch_cap=9, policy="fcfs_cap"),
        {"initial_batch": [2, 0, 0, 0, 0, 3]},
        300,
    ),
}


def assert_identical(a: ql.Trajectory, b: ql.Trajectory) -> None:
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y), name
    for f in fields(a.requests):
        x, y = getattr(a.requests, f.name), getattr(b.requests, f.name)
        assert x.dtype == y.dtype, f.name
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f"requests.{f.name}"
    assert a.equals(b)
    sa, sb = a.summary(), b.summary()
    assert sa.keys() == sb.keys()
    assert np.array_equal(list(sa.values()), list(sb.values()), equal_nan=True)


GRID = [(case, seed) for case in CASES for seed in (0, 17) if seed == 0 or CASES[case][2] <= 1000]


@pytest.mark.parametrize("case, seed", GRID)
def test_engines_give_identical_trajectories(case, seed):
    model, options, N = CASES[case]
    events = simulate(model, N, seed=seed, engine="events", **options)
    fast = simulate(model, N, seed=seed, engine="fast", **options)
    python = simulate(model, N, seed=seed, engine="python", **options)
    assert events.engine == "events" and fast.engine == "fast" and python.backend == "python"
    assert fast.backend == ("numba" if kernel_applies_to(model, options) else "python")
    assert len(events.requests) > 10
    assert_identical(events, fast)
    assert_identical(events, python)


def kernel_applies_to(model, options) -> bool:
    """The documented coverage of the compiled kernel (queueing_llm.sim.kernel)."""
    one_stream = not model.is_wall_clock or options.get("saturated", False) or model.K == 1
    return numba_available() and one_stream and model.policy.name in KERNEL_POLICIES


def test_the_kernel_covers_most_of_the_grid():
    covered = [case for case, (model, options, _) in CASES.items() if kernel_applies_to(model, options)]
    assert len(covered) >= 20, covered
    assert {"wall-clock-poisson-process", "saturated-static-wall-clock"} <= set(covered)


def test_the_grid_exercises_what_it_claims():
    """Guard against a grid that would compare trivial runs."""
    seen = {"evictions": 0, "rejections": 0, "initial": 0, "unbounded": 0}
    for model, options, N in CASES.values():
        run = simulate(model, min(N, 600), seed=0, engine="fast", **options)
        seen["evictions"] += run.evictions.sum() > 0
        seen["rejections"] += run.rejections.sum() > 0
        seen["initial"] += run.requests.initial.any()
        seen["unbounded"] += np.isinf(model.max_decode)
    assert seen["evictions"] >= 10 and seen["rejections"] >= 4 and seen["initial"] >= 5 and seen["unbounded"] >= 3


def test_different_seeds_differ_and_same_seed_repeats():
    model, options, N = CASES["random-laws-two-types"]
    a = simulate(model, N, seed=1, engine="fast", **options)
    assert a.equals(simulate(model, N, seed=1, engine="fast", **options))
    assert not a.equals(simulate(model, N, seed=2, engine="fast", **options))
