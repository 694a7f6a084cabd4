"""The compiled kernel against LINE's native discrete-event simulator (LDES), paired rounds.

Issue 10's target: at least 10x LINE's native simulator on the B = 256 workload of
``bench_targets.py`` (slotted FCFS batch-capped queue, prompt 2, Geometric(0.01) decode,
Poisson arrivals at load 0.95, 10^6 iterations). LINE simulates the M/M/256 queue with the
same means (arrival rate lambda and service rate q per time unit = per iteration), and its
run is given the same work: as many service completions (``samples``) as ql's run completed.
Each round times ql (``record="summary"``) then LINE (its ``ldes`` binary, called by
``SolverLDES``, the subprocess included: that is what a user of LINE waits for); the table
gives the medians and the median of the paired ratios.

LINE is not a dependency of queueing-llm: install it beside it in a separate environment
(``pip install line-solver`` needs Python >= 3.11 and a Java runtime for some of its solvers;
the LDES binary ships in the wheel)::

    python -m venv /tmp/line && /tmp/line/bin/pip install line-solver . && \\
        /tmp/line/bin/python benchmarks/bench_line.py --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_targets import model, ql_rate  # noqa: E402  (the same workload, the same measurement)


def line_rate(B: int, q: float, lam: float, completions: int, seed: int = 1) -> tuple[float, float]:
    """Completions per second of LINE's LDES on M/M/B with the same means, ``completions`` events."""
    import line_solver as ls

    net = ls.Network("mmB")
    source, queue, sink = ls.Source(net, "Source"), ls.Queue(net, "Queue", ls.SchedStrategy.FCFS), ls.Sink(net, "Sink")
    queue.setNumberOfServers(B)
    job = ls.OpenClass(net, "C")
    source.setArrival(job, ls.Exp(lam))
    queue.setService(job, ls.Exp(q))
    net.link(ls.Network.serialRouting(source, queue, sink))
    t = time.perf_counter()
    ls.SolverLDES(net, seed=seed, samples=int(completions), verbose=ls.VerboseLevel.SILENT).avg_table()
    dt = time.perf_counter() - t
    return completions / dt, dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=10**6)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    try:
        import line_solver  # noqa: F401
    except ImportError:
        sys.exit("bench_line.py needs LINE: pip install line-solver (see this script's docstring)")
    B, q, N = 256, 0.01, args.iterations
    m = model(B, q)
    lam = 0.95 * B * q
    ql_rate(m, 2000, "fast", "summary")  # compile and warm up
    ours, theirs, ratios = [], [], []
    for _ in range(args.repeat):
        rate, dt = ql_rate(m, N, "fast", "summary", warm=False)
        completions = int(round(rate * dt))
        line, _ = line_rate(B, q, lam, completions)
        ours.append(rate)
        theirs.append(line)
        ratios.append(rate / line)
    out = {"iterations": N, "rounds": args.repeat, "ql_requests_per_s": statistics.median(ours),
           "line_completions_per_s": statistics.median(theirs), "ql_over_line_paired_median": statistics.median(ratios),
           "ratios": ratios}
    print(f"# ql compiled kernel against LINE LDES (B = {B}, Geometric({q}), load 0.95, {N} iterations, "
          f"{args.repeat} paired rounds)\n")
    print("| simulator | requests/s (median) |\n| --- | ---: |")
    print(f"| ql fast, record='summary' | {out['ql_requests_per_s']:.3g} |")
    print(f"| LINE LDES (M/M/{B}, same completions) | {out['line_completions_per_s']:.3g} |")
    print(f"\nql / LINE, median of the paired ratios: {out['ql_over_line_paired_median']:.3g}x "
          f"(rounds: {', '.join(f'{r:.3g}' for r in ratios)})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
