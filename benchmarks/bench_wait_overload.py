"""Cost of an overloaded WAIT / Nested WAIT run against its horizon, on both engines.

Two scenarios, each policy from ``ql.fluid_wait`` / ``ql.fluid_nested_wait`` at stable rates
and the model then run at 1.5 times those rates, so the waiting room grows linearly with the
horizon:

* ``slotted``: two slotted types (prompts 2 and 4, decodes 5 and 10, Poisson 1 and 0.5 per
  iteration at the stable rates), ``M = 200``;
* ``wall-clock``: two types (100/100 and 200/400 tokens, Poisson processes of 60 and 10 per
  second at the stable rates), ``M = 100000``, iteration time ``0.015 + 3e-7 Z`` seconds.

An engine whose admission step scans the whole waiting room costs time quadratic in the
horizon (the ratio of successive rows tends to 4 as the horizon doubles); one whose step
costs what it admits grows linearly (ratio 2). Prints the best of ``repeat`` wall times per
scenario, policy, engine and horizon. Usage::

    python benchmarks/bench_wait_overload.py [horizons (comma-separated)] [repeat] [scenario]
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable

import queueing_llm as ql

T = ql.RequestType


def slotted(factor: float) -> ql.ContinuousBatching:
    """Two slotted types at ``factor`` times their base rates (1 and 0.5 per iteration)."""
    return ql.ContinuousBatching([T(2, 5, ql.Poisson(1.0 * factor)), T(4, 10, ql.Poisson(0.5 * factor))],
                                 kv_capacity=200)


def wall_clock(factor: float) -> ql.ContinuousBatching:
    """Two wall-clock types at ``factor`` times 60 and 10 requests per second."""
    return ql.ContinuousBatching(
        [T(100, 100, ql.PoissonProcess(60 * factor)), T(200, 400, ql.PoissonProcess(10 * factor))],
        kv_capacity=100_000, iteration_time=ql.LinearIterationTime(0.015, 3e-7))


SCENARIOS: dict[str, Callable[[float], ql.ContinuousBatching]] = {"slotted": slotted, "wall-clock": wall_clock}


def main(horizons: list[int], repeat: int, scenarios: list[str]) -> None:
    for scenario in scenarios:
        model = SCENARIOS[scenario]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ThresholdWarning: not the point here
            policies = {"WAIT": ql.fluid_wait(model(1.0)), "Nested WAIT": ql.fluid_nested_wait(model(1.0))}
        for name, policy in policies.items():
            m = model(1.5).with_policy(policy)
            for engine in ("events", "python"):
                for n in horizons:
                    best = float("inf")
                    for _ in range(repeat):
                        start = time.perf_counter()
                        run = ql.simulate(m, n, seed=1, engine=engine)
                        best = min(best, time.perf_counter() - start)
                    print(f"{scenario:10s} {name:12s} {engine:7s} {n:7d} iterations  {best:8.3f} s  "
                          f"final queue {int(run.queue[-1].sum())}", flush=True)


if __name__ == "__main__":
    hs = [int(h) for h in sys.argv[1].split(",")] if len(sys.argv) > 1 else [2000, 4000, 8000]
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    main(hs, reps, sys.argv[3].split(",") if len(sys.argv) > 3 else list(SCENARIOS))
