"""The performance targets of the engine, measured against baselines in the same run.

Workloads (slotted, FCFS batch-capped queue, Poisson arrivals at load 0.95):

* ``B=256``: batch cap 256, prompt 2, decode Geometric(0.01) (mean 100 iterations);
* ``B=8``: batch cap 8, decode Geometric(0.25).

For each, requests/s (completions per wall-clock second of simulation) of:

* ``ql fast``: ``ql.simulate(..., engine="fast")`` (the compiled kernel), ``record="summary"``
  and ``record="iterations"``;
* ``ql python``: the Python fast loop (``engine="python"``), on a shorter horizon;
* ``ql events``: the SimPy reference engine, on a shorter horizon;
* ``count kernel``: a numba kernel that simulates only the counts (batch size, queue;
  completions Binomial(x, q)), the fastest possible simulation of this model, not of the
  per-request model (it keeps no request);
* ``Ciw``: the same queue in Ciw (an M/M/B queue with exponential services of the same
  mean), if Ciw is installed (``pip install ciw``).

Then 128 replications of the B=256 workload, one row per horizon (``--iterations`` / 64
and / 16 iterations per replication, not shortened by ``--quick``: 15,625 and 62,500, the
targets of issue 10; ``--rep-iterations``): ``ql.simulate(..., replications=128, record="summary")`` (the
compiled kernel, validated once, the replications shared by one worker thread per core)
against issue 10's NumPy baseline, the counts-only queue vectorised over the replications
in lockstep; ``--repeat`` rounds, interleaved, and the median of the paired ratios.

The compiled kernel and the count kernel run ``--repeat`` times, interleaved (summary,
iterations, count kernel, summary, ...), so that they meet the same load of a shared
machine: the table gives the median of each and the median of the paired ratios
(``ql fast / count kernel`` in each round).

Then the peak resident memory of ``record="summary"`` runs of increasing horizon (each in
a fresh process, beside the memory of the same process after a short warm-up run), and the
time of ``import queueing_llm`` (fresh processes, median of 3) beside ``import numpy, simpy``
and ``import numpy, sympy, simpy``.

Usage::

    python benchmarks/bench_targets.py                 # 10^6 iterations, 5 rounds; memory at 1e5, 1e6, 1e7
    python benchmarks/bench_targets.py --quick         # 10^5 iterations; memory at 1e4, 1e5, 1e6
    python benchmarks/bench_targets.py --memory 100000,1000000,10000000,100000000
    python benchmarks/bench_targets.py --replications-only --repeat 3   # the replications table only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import queueing_llm as ql

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", "")}


def model(B: int, q: float, load: float = 0.95) -> ql.ContinuousBatching:
    lam = load * B * q
    return ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(q), lam)], batch_cap=B, policy="fcfs_cap")


def timed(f, *args, **kwargs):
    t = time.perf_counter()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - t


def ql_rate(m, N: int, engine: str, record: str, warm: bool = True) -> tuple[float, float]:
    if warm:
        ql.simulate(m, min(N, 2000), seed=0, engine=engine, record=record)  # compile / warm up
    run, dt = timed(ql.simulate, m, N, seed=1, engine=engine, record=record)
    done = run.summary(warmup=0)["throughput"] * N if record != "summary" else run.summary()["throughput"] * N
    return done / dt, dt


_COUNT = None


def count_rate(B: int, q: float, lam: float, N: int) -> tuple[float, float]:
    global _COUNT
    if _COUNT is None:
        import numba

        @numba.njit(cache=True)
        def count_kernel(N, B, q, lam, seed):
            np.random.seed(seed)
            x = 0
            queue = 0
            done = 0
            for _ in range(N):
                c = np.random.binomial(x, q)
                x -= c
                done += c
                queue += np.random.poisson(lam)
                a = min(B - x, queue)
                x += a
                queue -= a
            return done

        _COUNT = count_kernel
        _COUNT(100, B, q, lam, 0)
    done, dt = timed(_COUNT, N, B, q, lam, 1)
    return done / dt, dt


def paired_rates(m, B: int, q: float, lam: float, N: int, repeat: int) -> dict:
    """``repeat`` interleaved rounds of the compiled kernel (both records) and the count
    kernel: the median rate and seconds of each, and the median of the per-round ratios
    count kernel / ql fast (record='summary')."""
    for record in ("summary", "iterations"):
        ql.simulate(m, min(N, 2000), seed=0, engine="fast", record=record)  # compile / warm up
    count_rate(B, q, lam, 1000)
    runs: dict[str, list[tuple[float, float]]] = {"summary": [], "iterations": [], "count": []}
    for _ in range(max(repeat, 1)):
        runs["summary"].append(ql_rate(m, N, "fast", "summary", warm=False))
        runs["iterations"].append(ql_rate(m, N, "fast", "iterations", warm=False))
        runs["count"].append(count_rate(B, q, lam, N))
    out: dict = {k: (statistics.median(r for r, _ in v), statistics.median(d for _, d in v)) for k, v in runs.items()}
    out["ratio"] = statistics.median(c[0] / s[0] for c, s in zip(runs["count"], runs["summary"], strict=True))
    return out


def ciw_rate(B: int, q: float, lam: float, horizon: float) -> tuple[float, float] | None:
    try:
        import ciw
    except ImportError:
        return None
    net = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=lam)],
        service_distributions=[ciw.dists.Exponential(rate=q)],
        number_of_servers=[B],
    )
    ciw.seed(1)
    sim = ciw.Simulation(net)
    _, dt = timed(sim.simulate_until_max_time, horizon)
    return len(sim.get_all_records()) / dt, dt


def lockstep_rate(B: int, q: float, lam: float, N: int, R: int, seed: int = 1) -> tuple[float, float]:
    """The NumPy baseline of issue 10: R replications of the counts-only slotted queue in
    lockstep (one vector of R states; per iteration completions Binomial(x, q), arrivals
    Poisson(lam), admission up to B). Completions per second, summed over replications."""
    rng = np.random.default_rng(seed)

    def run() -> int:
        batch = np.zeros(R, dtype=np.int64)
        queue = np.zeros(R, dtype=np.int64)
        done = 0
        for _ in range(N):
            c = rng.binomial(batch, q)
            done += int(c.sum())
            batch -= c
            queue += rng.poisson(lam, R)
            admit = np.minimum(queue, B - batch)
            batch += admit
            queue -= admit
        return done

    done, dt = timed(run)
    return done / dt, dt


def replications_rate(m, N: int, R: int) -> tuple[float, float]:
    """``ql.simulate(..., replications=R, record="summary")``: completions per second over all
    R replications (the compiled kernel, replications side by side on the cores)."""
    ql.simulate(m, 2000, seed=0, record="summary", replications=2)  # compile / warm up
    reps, dt = timed(ql.simulate, m, N, seed=1, record="summary", replications=R)
    return sum(r.summary()["throughput"] * N for r in reps) / dt, dt


def paired_replications(N: int, R: int, repeat: int) -> dict:
    """``repeat`` interleaved rounds of :func:`replications_rate` and :func:`lockstep_rate` at
    ``N`` iterations per replication: the median rate and seconds of each and the median of
    the per-round ratios ql / lockstep."""
    B, q = 256, 0.01
    m, lam = model(B, q), 0.95 * B * q
    ours, base = [], []
    for _ in range(max(repeat, 1)):
        ours.append(replications_rate(m, N, R))
        base.append(lockstep_rate(B, q, lam, N, R))
    med = lambda v, i: statistics.median(x[i] for x in v)  # noqa: E731
    return {"ours": (med(ours, 0), med(ours, 1)), "lockstep": (med(base, 0), med(base, 1)),
            "ratio": statistics.median(a[0] / b[0] for a, b in zip(ours, base, strict=True))}


def replication_rows(N: int, args: argparse.Namespace) -> dict:
    """The replications table: one row per horizon (iterations per replication), ql against
    the NumPy lockstep baseline, paired rounds."""
    R = 128
    horizons = ([int(x) for x in args.rep_iterations.split(",")] if args.rep_iterations
                else [max(N // 64, 1000), max(N // 16, 1000)])
    print(f"## {R} replications of B=256, Geometric(0.01), load 0.95: ql.simulate(..., replications={R}, "
          f"record='summary') against NumPy in lockstep (counts only; median of {args.repeat} paired rounds)\n")
    print("| iterations per replication | ql requests/s, all replications | seconds | NumPy lockstep requests/s "
          "| seconds | ql / lockstep (paired median) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    out = {}
    for n in horizons:
        row = paired_replications(n, R, args.repeat)
        (rate, dt), (brate, bdt) = row["ours"], row["lockstep"]
        print(f"| {n} | {rate:.3g} | {dt:.2f} | {brate:.3g} | {bdt:.2f} | {row['ratio']:.2f}x |")
        out[f"{n} iterations"] = {
            f"ql.simulate(..., replications={R}, record='summary')": {"requests_per_s": rate, "seconds": dt},
            f"NumPy lockstep, {R} replications (counts only)": {"requests_per_s": brate, "seconds": bdt},
            "ql / lockstep (paired median)": row["ratio"],
        }
    print()
    return out


MEMORY_CHILD = """
import resource, sys, time
import queueing_llm as ql

def peak_kb():
    # VmHWM: the peak RSS of this address space (ru_maxrss survives exec on Linux and
    # would report the parent's peak)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)

B, q = 256, 0.01
m = ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(q), 0.95 * B * q)], batch_cap=B, policy="fcfs_cap")
ql.simulate(m, 2000, seed=0, record="summary")
base = peak_kb()
t = time.perf_counter()
run = ql.simulate(m, int(sys.argv[1]), seed=1, record="summary")
dt = time.perf_counter() - t
print(base, peak_kb(), dt, run.summary()["throughput"])
"""


def memory_rows(horizons: list[int]) -> list[tuple[int, float, float, float]]:
    rows = []
    for N in horizons:
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(N)], capture_output=True, text=True,
                             env=ENV, check=True).stdout.split()
        base, peak, dt = float(out[0]) / 1024, float(out[1]) / 1024, float(out[2])
        rows.append((N, base, peak, dt))
    return rows


def import_time(statement: str, repeat: int = 3) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                                  check=True).stdout) for _ in range(repeat)]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=10**6)
    parser.add_argument("--memory", default=None, help="comma-separated horizons of the memory rows")
    parser.add_argument("--quick", action="store_true", help="10x shorter runs")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    parser.add_argument("--no-throughput", action="store_true", help="only the memory and import rows")
    parser.add_argument("--replications-only", action="store_true",
                        help="only the replications table (no other rows)")
    parser.add_argument("--rep-iterations", default=None,
                        help="comma-separated iterations per replication of the replications table "
                             "(default: --iterations / 64 and / 16, not shortened by --quick: 15625 and 62500)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of the compiled and count kernels (medians)")
    args = parser.parse_args()
    N = args.iterations // (10 if args.quick else 1)
    horizons = ([int(x) for x in args.memory.split(",")] if args.memory
                else [n // (10 if args.quick else 1) for n in (10**5, 10**6, 10**7)])
    results: dict = {"iterations": N, "workloads": {}, "memory": [], "import": {}}
    print(f"# queueing-llm engine targets ({N} iterations; {os.cpu_count()} cores; load "
          f"{os.getloadavg()[0]:.1f})\n")
    workloads = () if args.no_throughput or args.replications_only else (
        ("B=256, Geometric(0.01), load 0.95", 256, 0.01), ("B=8, Geometric(0.25), load 0.95", 8, 0.25)
    )
    for name, B, q in workloads:
        m = model(B, q)
        lam = 0.95 * B * q
        paired = paired_rates(m, B, q, lam, N, args.repeat)
        rows = {
            "ql fast, record='summary'": paired["summary"],
            "ql fast, record='iterations'": paired["iterations"],
            "ql python loop (N/10)": ql_rate(m, max(N // 10, 1000), "python", "summary"),
            "ql events, SimPy (N/50)": ql_rate(m, max(N // 50, 1000), "events", "summary"),
            "count kernel (numba, counts only)": paired["count"],
        }
        ciw = ciw_rate(B, q, lam, horizon=max(N // 200, 500))
        if ciw is not None:
            rows["Ciw (M/M/B, N/200 time units)"] = ciw
        ref = rows["ql fast, record='summary'"][0]
        print(f"## {name}\n")
        print("| simulator | requests/s | seconds | ql fast / this |")
        print("| --- | ---: | ---: | ---: |")
        for label, (rate, dt) in rows.items():
            print(f"| {label} | {rate:.3g} | {dt:.2f} | {ref / rate:.3g}x |")
        print(f"\ncount kernel / ql fast (record='summary'), median of {args.repeat} paired rounds: "
              f"{paired['ratio']:.2f}x\n")
        results["workloads"][name] = {k: {"requests_per_s": r, "seconds": d} for k, (r, d) in rows.items()}
        results["workloads"][name]["count kernel / ql fast summary (paired median)"] = paired["ratio"]
    if not args.no_throughput or args.replications_only:
        results["replications"] = replication_rows(args.iterations, args)  # the targets' horizons, even --quick
    if not args.replications_only:
        print("## Memory of record='summary' (B=256 model; fresh process per horizon)\n")
        print("| iterations | RSS after import + warm-up (MB) | peak RSS (MB) | seconds |")
        print("| ---: | ---: | ---: | ---: |")
        for N_, base, peak, dt in memory_rows(horizons):
            print(f"| {N_:.0e} | {base:.0f} | {peak:.0f} | {dt:.1f} |")
            results["memory"].append({"iterations": N_, "base_mb": base, "peak_mb": peak, "seconds": dt})
        print("\n## Import time (fresh process, median of 3)\n")
        print("| statement | seconds |")
        print("| --- | ---: |")
        for stmt in ("import queueing_llm", "import numpy, simpy", "import numpy, sympy, simpy"):
            t = import_time(stmt)
            results["import"][stmt] = t
            print(f"| `{stmt}` | {t:.2f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
