"""Models on which the engines' record="summary" paths are compared (tests/test_events_streaming.py,
tests/test_python_summary.py): every policy family, evictions, waiting caps, initial batches,
saturated input, wall-clock arrivals, WAIT and Nested WAIT; and exact summary comparison."""

from __future__ import annotations

import math

import queueing_llm as ql

T = ql.RequestType
WALL = ql.LinearIterationTime(0.02, 1e-5)
NESTED = T(2, ql.FinitePMF({2: 0.5, 8: 0.5}), 6.0)
CASES = {
    # FCFS variants (the kernel and the Python loop run them too)
    "fcfs-cap-geometric": (ql.ContinuousBatching([T(2, ql.Geometric(0.25), 1.9)], batch_cap=8, policy="fcfs_cap"),
                           {}),
    "greedy-evicts-waiting-cap-initial": (
        ql.ContinuousBatching([T(10, 40, 1.6), T(3, 5, 0.5)], kv_capacity=2000, waiting_cap=9),
        {"initial_batch": [[2, 0, 3], [1]]}),
    "rate-limited": (ql.ContinuousBatching([T(10, 40, 1.3)], kv_capacity=2000, policy="rate_limited(1.2)"), {}),
    "reserve": (ql.ContinuousBatching([T(10, ql.FinitePMF({5: 0.5, 60: 0.5}), 1.0), T(4, 8, 0.6)], kv_capacity=1500,
                                      policy="reserve"), {}),
    "static-overloaded-waiting-cap": (ql.ContinuousBatching([T(3, ql.FinitePMF({2: 0.5, 9: 0.5}), 2.5)],
                                                            kv_capacity=60, batch_cap=6, waiting_cap=20,
                                                            policy="static"), {}),
    "saturated-two-types": (ql.ContinuousBatching([T(50, 2), T(50, 3)], kv_capacity=518), {"saturated": True}),
    "saturated-static-initial": (
        ql.ContinuousBatching([T(2, 3), T(4, ql.FinitePMF({1: 0.5, 6: 0.5}))], kv_capacity=60, batch_cap=6,
                              policy="static"),
        {"saturated": True, "initial_batch": [[1, 1], [2]]}),
    # wall clock: Poisson processes in seconds, two types, an initial batch
    "wall-clock": (ql.ContinuousBatching([T(10, 40, ql.PoissonProcess(30.0)), T(4, 8, 0.5)], kv_capacity=2000,
                                         iteration_time=WALL), {}),
    "wall-clock-one-type-initial": (ql.ContinuousBatching([T(10, 40, ql.PoissonProcess(60.0))], kv_capacity=2000,
                                                          iteration_time=WALL), {"initial_batch": [1, 2]}),
    # WAIT and Nested WAIT (stalled members)
    "wait": (ql.ContinuousBatching([T(10, 40, 1.2)], kv_capacity=2000).with_policy(ql.Wait({0: 2})), {}),
    "wait-evicts-two-types": (ql.ContinuousBatching(
        [T(2, ql.FinitePMF({1: 0.3, 3: 0.3, 6: 0.4}), 2.0), T(1, 4, 1.0)], kv_capacity=40,
        policy=ql.Wait({0: 3, 1: 2}, trigger="any")), {}),
    "wait-initial": (ql.ContinuousBatching([T(2, 3, ql.Bernoulli(0.5))], kv_capacity=30, policy=ql.Wait({0: 2})),
                     {"initial_batch": [2, 1, 1]}),
    "wait-wall-clock": (ql.ContinuousBatching([T(20, 10, ql.PoissonProcess(40.0))], kv_capacity=400,
                                              iteration_time=ql.LinearIterationTime(0.01, 1e-5),
                                              policy=ql.Wait({0: 3})), {}),
    "nested-stall": (ql.ContinuousBatching([NESTED], kv_capacity=300, policy=ql.NestedWait(
        boundaries=[2, 8], thresholds=[5, 3], budgets=[40, 20], buffer=[0, 2], stall=True)), {}),
    "nested-no-stall": (ql.ContinuousBatching([NESTED], kv_capacity=300, policy=ql.NestedWait(
        boundaries=[2, 8], thresholds=[5, 3], budgets=[40, 20], buffer=[0, 2], stall=False)), {}),
}


def same(a: dict, b: dict) -> bool:
    """Key for key and exactly (every engine sums integers, and seconds with ExactSum)."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def diff(a: dict, b: dict) -> dict:
    return {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if not same({k: a.get(k)}, {k: b.get(k)})}
