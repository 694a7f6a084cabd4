"""The arrival draws of the compiled kernel: ``queueing_llm.sim.samplers`` on and off, in one process.

Workloads of ``bench_targets.py`` (slotted FCFS batch-capped queue, prompt 2, Poisson
arrivals at load 0.95): B = 256 with Geometric(0.01) decode, B = 8 with Geometric(0.25).

* **block**: one block of 4096 iterations of arrivals as the kernel draws it
  (``kernel._arrival_block``), with the samplers (NumPy's algorithms with each law's
  constants evaluated once) and without them (``Generator.poisson`` / ``geometric`` per
  draw, what the simulation did before); both give the same values, which the script checks;
* **kernel**: ``ql.simulate(..., engine="fast", record="summary")`` with the samplers on
  and off, and the numba count kernel of ``bench_targets.py``, in rotating order; the CPU
  time of the thread for each run (a shared machine's load moves it less than wall time),
  the median of each and the medians of the paired ratios.

Usage::

    python benchmarks/bench_draws.py                  # 10^6 iterations, 9 rounds
    python benchmarks/bench_draws.py --iterations 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

import numba  # noqa: F401 - imported first, as under the kernel: the Poisson loop is taken
import numpy as np

import queueing_llm as ql
from queueing_llm.sim import kernel, samplers
from queueing_llm.sim.draws import _LawTape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_targets  # noqa: E402 - the count kernel, from the benchmark next to this one


@contextlib.contextmanager
def numpy_draws():
    """Draw every law by ``law.sample`` (NumPy per draw), as before the samplers."""
    saved = samplers._EXACT
    samplers._EXACT = False
    samplers._CACHE.clear()
    try:
        yield
    finally:
        samplers._EXACT = saved
        samplers._CACHE.clear()


def model(B: int, q: float) -> ql.ContinuousBatching:
    return ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(q), 0.95 * B * q)], batch_cap=B, policy="fcfs_cap")


def block_times(m: ql.ContinuousBatching, rounds: int, per_round: int = 20) -> dict[str, float]:
    """Median microseconds of one arrival block, samplers on and off (interleaved rounds)."""
    tapes = {"on": [_LawTape(0, m, np.random.default_rng(1), 0)], "off": [_LawTape(0, m, np.random.default_rng(1), 0)]}
    for _ in range(3):  # the same values either way
        on = kernel._arrival_block(tapes["on"], 0, 1, False)
        with numpy_draws():
            off = kernel._arrival_block(tapes["off"], 0, 1, False)
        assert all(np.array_equal(a, b) for a, b in zip(on, off, strict=True))
    out: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(rounds):
        for name in ("on", "off"):
            with numpy_draws() if name == "off" else contextlib.nullcontext():
                t = time.thread_time()
                for _ in range(per_round):
                    kernel._arrival_block(tapes[name], 0, 1, False)
                out[name].append((time.thread_time() - t) / per_round * 1e6)
    return {name: statistics.median(v) for name, v in out.items()}


def kernel_times(m: ql.ContinuousBatching, B: int, q: float, N: int, rounds: int) -> dict:
    lam = 0.95 * B * q
    ql.simulate(m, 3000, seed=0, engine="fast", record="summary")  # compile / load
    bench_targets.count_rate(B, q, lam, 1000)

    def run(name: str, seed: int) -> float:
        t = time.thread_time()
        if name == "count":
            bench_targets._COUNT(N, B, q, lam, seed)
        else:
            with numpy_draws() if name == "off" else contextlib.nullcontext():
                ql.simulate(m, N, seed=seed, engine="fast", record="summary")
        return time.thread_time() - t

    names = ["on", "off", "count"]
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in names[r % 3:] + names[: r % 3]:
            times[name].append(run(name, r + 1))
    ratio = {f"{a}/{b}": statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))
             for a, b in (("off", "count"), ("on", "count"), ("off", "on"))}
    return {"seconds": {k: statistics.median(v) for k, v in times.items()}, "ratios": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10**6)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    print(f"# arrival draws, samplers on and off ({args.iterations} iterations, {args.rounds} rounds; "
          f"load {os.getloadavg()[0]:.1f})\n")
    print("| workload | block, on (µs) | block, off (µs) | kernel on (s) | kernel off (s) | count kernel (s) "
          "| off / on | on / count | off / count |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for B, q in ((256, 0.01), (8, 0.25)):
        m = model(B, q)
        block = block_times(m, args.rounds)
        k = kernel_times(m, B, q, args.iterations, args.rounds)
        s, r = k["seconds"], k["ratios"]
        print(f"| B={B}, Geometric({q}) | {block['on']:.0f} | {block['off']:.0f} | {s['on']:.3g} | {s['off']:.3g} "
              f"| {s['count']:.3g} | {r['off/on']:.2f}x | {r['on/count']:.2f}x | {r['off/count']:.2f}x |")


if __name__ == "__main__":
    main()
