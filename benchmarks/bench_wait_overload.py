"""Cost of an overloaded WAIT / Nested WAIT run against its horizon, on both engines.

The model (two slotted types, Poisson arrivals, ``M = 200``) gets its policy from
``ql.fluid_wait`` / ``ql.fluid_nested_wait`` at its stable rates and is then run at 1.5 times
those rates, so the waiting room grows linearly with the horizon. An engine whose admission
step scans the whole waiting room costs time quadratic in the horizon (the ratio of
successive rows tends to 4 as the horizon doubles); one whose step costs what it admits
grows linearly (ratio 2). Prints the best of ``repeat`` wall times per engine and horizon.
Usage::

    python benchmarks/bench_wait_overload.py [horizons (comma-separated)] [repeat]
"""

from __future__ import annotations

import sys
import time
import warnings

import queueing_llm as ql

T = ql.RequestType


def model(factor: float) -> ql.ContinuousBatching:
    """Two slotted types at ``factor`` times their base rates (1 and 0.5 per iteration)."""
    return ql.ContinuousBatching([T(2, 5, ql.Poisson(1.0 * factor)), T(4, 10, ql.Poisson(0.5 * factor))],
                                 kv_capacity=200)


def main(horizons: list[int], repeat: int) -> None:
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
                print(f"{name:12s} {engine:7s} {n:7d} iterations  {best:8.3f} s  "
                      f"final queue {int(run.queue[-1].sum())}", flush=True)


if __name__ == "__main__":
    hs = [int(h) for h in sys.argv[1].split(",")] if len(sys.argv) > 1 else [2000, 4000, 8000]
    main(hs, int(sys.argv[2]) if len(sys.argv) > 2 else 2)
