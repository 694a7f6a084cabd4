"""Speed of the fast engine (compiled kernel or Python loop) against the SimPy engine, in the same process.

Runs each scenario once per engine (same seed, so the same trajectory), checks that the
trajectories are identical and prints the wall times and the speed ratios events / fast
and events / python (``engine="python"``: the Python fast loop). The targets of the engine
(requests/s against baselines, memory, import time) are in ``bench_targets.py``. Usage::

    python benchmarks/bench_engines.py [iterations]
"""

from __future__ import annotations

import sys
import time

import queueing_llm as ql
from queueing_llm.sim import simulate

T = ql.RequestType

SCENARIOS = {
    "default model (open, greedy, l0=10, l1=40, M=2000, 1.2/it)": (ql.default_model(), {}),
    "same, rate_limited(x*)": (
        ql.ContinuousBatching([T(10, 40, 1.2)], kv_capacity=2000, policy="rate_limited"),
        {},
    ),
    "saturated, l0=10, l1=40, M=2000, greedy": (
        ql.ContinuousBatching([T(10, 40)], kv_capacity=2000),
        {"saturated": True},
    ),
    "two random types (FinitePMF), M=1500": (
        ql.ContinuousBatching(
            [
                T(ql.FinitePMF({5: 0.5, 20: 0.5}), ql.FinitePMF({10: 0.3, 40: 0.7}), 0.8),
                T(3, ql.Empirical([2, 5, 9]), 1.0),
            ],
            kv_capacity=1500,
        ),
        {},
    ),
    "wall-clock, PoissonProcess 40/s, d0=0.02, d1=1e-5": (
        ql.ContinuousBatching(
            [T(10, 40, ql.PoissonProcess(40.0))], kv_capacity=2000, iteration_time=ql.LinearIterationTime(0.02, 1e-5)
        ),
        {},
    ),
}


def main(iterations: int = 20_000) -> None:
    print(f"{iterations} iterations per run")
    for name, (model, options) in SCENARIOS.items():
        simulate(model, 100, seed=0, engine="fast", **options)  # compile the kernel once
        t0 = time.perf_counter()
        events = simulate(model, iterations, seed=1, engine="events", **options)
        t1 = time.perf_counter()
        fast = simulate(model, iterations, seed=1, engine="fast", **options)
        t2 = time.perf_counter()
        python = simulate(model, iterations, seed=1, engine="python", **options)
        t3 = time.perf_counter()
        same = "identical" if events.equals(fast) and events.equals(python) else "DIFFERENT"
        print(
            f"{name}: events {t1 - t0:.2f} s, fast ({fast.backend}) {t2 - t1:.3f} s, python {t3 - t2:.3f} s; "
            f"events/fast {(t1 - t0) / (t2 - t1):.1f}x, events/python {(t1 - t0) / (t3 - t2):.1f}x ({same})"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
