r"""The exact stationary solver against a sparse truncated Markov chain, in the same run.

Issue 10, item 5: keep a benchmark row for the exact solver. Workload: the slotted FCFS
batch-capped queue (``policy="fcfs_cap"``), prompt 2, Poisson arrivals,

* ``B = 256``, decode Geometric(0.01), loads 0.95, 0.99, 0.999 (the issue's rows);
* ``B = 8``, decode Geometric(0.25), the same loads: here P(empty) is large enough
  (1e-5 to 1e-2) for the baseline to resolve it, so its agreement is a real check.

For each row:

* **solver**: ``ql.theorems["stationary"].evaluate(model)`` (the package's exact solver:
  kernel roots of the PGF, and for a P(empty) below 1e-9 a banded GTH chain, numba-compiled,
  or an upper bound when that chain exceeds its budget). The JSON's ``gth`` names the
  elimination that ran (``"numba"``, or ``"numpy"`` without numba: about ten times slower,
  with a budget four times smaller). The route is read from the ``reason`` it
  returns (``route`` = how the mean was obtained, ``p_empty_route`` = how P(empty) was).
* **baseline**: the number in system after admission as a Markov chain, written here
  independently of the package: from :math:`Y = n`,
  :math:`Y' = n - D + A`, :math:`D \sim \mathrm{Bin}(\min(n, B), q)`,
  :math:`A \sim \mathrm{Poisson}(\lambda)` (the model chapter, section 2), built as a
  ``scipy.sparse`` matrix on :math:`0..N-1` (the mass of a jump past the top kept in the top
  state) and solved with ``scipy.sparse.linalg.spsolve`` (state 0 pinned to 1, then
  normalised). :math:`N` grows by 1.5x from :math:`2B` until the top 20 % of the states carry
  less than ``--tail`` (1e-12): the stationary law decays geometrically above :math:`B`, so the
  mass lost beyond :math:`N` is smaller still. The search is not timed; each timed baseline
  run builds and solves the chain at the final :math:`N`.

Both run ``--repeat`` times, interleaved (solver, baseline, solver, ...), after one untimed
warm-up call of the solver (lazy imports); the table gives the median time of each and the
median of the paired ratios (baseline / solver in each round). In brackets beside the
solver's time, its PGF part alone (kernel roots and boundary probabilities, which give the
mean; ``solver_pgf_s``), timed separately in each round: the rest is the resolution of a
P(empty) below 1e-9.

Agreement: relative difference of the mean number in system, and of P(empty). The LU solve
of the baseline has an absolute accuracy of about 1e-16 per state (it is not componentwise
accurate: at B = 256 the true P(empty) is about 1e-106 and the baseline returns 2e-16 to
9e-16, rounding noise), so P(empty) is compared relatively only where the baseline's value
exceeds :data:`RESOLVED` (``p_empty_resolved``); elsewhere the row records that both values
are below the baseline's accuracy (``p_empty_abs_diff``). Where the solver returns an upper
bound for P(empty) (``p_empty_route == "upper bound"``), the row says so.

Usage::

    python benchmarks/bench_stationary.py                  # all rows, 3 rounds
    python benchmarks/bench_stationary.py --quick          # B = 256 at 0.95, 0.99 and the B = 8 rows, 1 round
    python benchmarks/bench_stationary.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve
from scipy.stats import binom, poisson

import queueing_llm as ql

RESOLVED = 1e-12
"""The baseline's P(empty) is compared relatively only above this (its LU solve is accurate
to about 1e-16 absolute)."""

FULL = [(256, 0.01, 0.95), (256, 0.01, 0.99), (256, 0.01, 0.999),
        (8, 0.25, 0.95), (8, 0.25, 0.99), (8, 0.25, 0.999)]
QUICK = [(256, 0.01, 0.95), (256, 0.01, 0.99), (8, 0.25, 0.95), (8, 0.25, 0.99), (8, 0.25, 0.999)]


def model(B: int, q: float, load: float) -> ql.ContinuousBatching:
    """The batch-capped queue at ``load`` = lambda / (B q)."""
    return ql.ContinuousBatching(ql.RequestType(2, ql.Geometric(q), arrivals=load * B * q),
                                 batch_cap=B, policy="fcfs_cap")


# ----------------------------------------------------------------------------------
# baseline: sparse truncated chain, independent of the package
# ----------------------------------------------------------------------------------
def poisson_pmf(lam: float, cut: float = 1e-20) -> np.ndarray:
    """P(A = 0), P(A = 1), ... of Poisson(lam), cut after the last value >= ``cut``."""
    k = np.arange(int(lam + 20 * np.sqrt(lam) + 40))
    p = poisson.pmf(k, lam)
    return p[: int(np.nonzero(p >= cut)[0].max()) + 1]


def transition_matrix(B: int, q: float, a: np.ndarray, N: int) -> sparse.csr_matrix:
    """Transition matrix of the number in system on ``0..N-1`` (CSR).

    Row ``n``: the law of ``n - D + A``; entry ``k`` of ``conv(Bin(s, q) reversed, a)`` is the
    probability of ``n - s + k``. Jumps past ``N - 1`` land in ``N - 1`` (duplicates summed).
    """
    rows, cols, vals = [], [], []
    for n in range(min(N, B + 1)):  # rows with fewer than B in the batch: each its own law
        s = n
        law = np.convolve(binom.pmf(np.arange(s + 1), s, q)[::-1], a)
        k = np.nonzero(law)[0]
        rows.append(np.full(k.size, n))
        cols.append(np.minimum(n - s + k, N - 1))
        vals.append(law[k])
    if N > B + 1:  # rows n > B share one law, shifted
        law = np.convolve(binom.pmf(np.arange(B + 1), B, q)[::-1], a)
        k = np.nonzero(law)[0]
        n = np.arange(B + 1, N)
        rows.append(np.repeat(n, k.size))
        cols.append(np.minimum((n[:, None] - B + k[None, :]).ravel(), N - 1))
        vals.append(np.tile(law[k], n.size))
    r, c, v = (np.concatenate(x) for x in (rows, cols, vals))
    return sparse.csr_matrix((v, (r, c)), shape=(N, N))


def solve_chain(P: sparse.csr_matrix) -> np.ndarray:
    r"""Stationary vector of ``P`` by sparse LU: :math:`\pi_0 = 1`,
    :math:`\pi_{1:} (I - P)_{1:,1:} = P_{0,1:}`, then normalised."""
    N = P.shape[0]
    M = (sparse.identity(N, format="csr") - P)[1:, 1:].T.tocsc()
    rhs = np.asarray(P[0, 1:].todense()).ravel()
    pi = np.concatenate([[1.0], spsolve(M, rhs)])
    return pi / pi.sum()


def baseline(B: int, q: float, a: np.ndarray, N: int) -> dict:
    """Build and solve the chain on ``0..N-1``: mean number in system, P(empty), top-20 % mass."""
    pi = solve_chain(transition_matrix(B, q, a, N))
    return {"mean_in_system": float(np.arange(N) @ pi), "p_empty": float(pi[0]),
            "top_mass": float(pi[int(0.8 * N):].sum())}


def truncation(B: int, q: float, a: np.ndarray, tail: float, max_states: int = 400_000) -> tuple[int, dict]:
    """Smallest ``N`` of the sequence 2B, 3B, 4.5B, ... whose top 20 % carry less than ``tail``."""
    N = 2 * B + 64
    while True:
        out = baseline(B, q, a, N)
        if out["top_mass"] < tail:
            return N, out
        N = int(1.5 * N)
        if N > max_states:
            raise RuntimeError(f"truncated chain did not reach tail {tail:g} below {max_states} states "
                               f"(top mass {out['top_mass']:.3g})")


# ----------------------------------------------------------------------------------
# the package's solver
# ----------------------------------------------------------------------------------
def routes(reason: str) -> tuple[str, str]:
    """(route of the mean, route of P(empty)) named in the solver's ``reason``."""
    if reason.startswith("PGF route"):
        mean = "pgf (kernel roots)"
    elif reason.startswith("chain route"):
        mean = "chain (banded GTH)"
    else:
        mean = reason.split(":")[0]
    if "upper bound" in reason:
        pe = "upper bound"
    elif "from the truncated chain" in reason or mean.startswith("chain"):
        pe = "chain (banded GTH)"
    else:
        pe = mean
    return mean, pe


def pgf_part(m: ql.ContinuousBatching) -> float | None:
    """Seconds of the solver's PGF part alone (kernel roots and boundary probabilities, which
    give the mean), without the P(empty) resolution; None if those internals are not there."""
    try:
        from queueing_llm.theory import queue_stationary as qs

        t = time.perf_counter()
        qs.boundary_probabilities(m, qs.kernel_roots(m))
        return time.perf_counter() - t
    except Exception:  # a diagnostic only: internal names may change
        return None


def gth_backend() -> str:
    """The GTH elimination the solver's P(empty) route runs: ``"numba"`` or ``"numpy"``."""
    try:
        from queueing_llm.theory import queue_chain as qc

        return "numba" if qc.gth_compiled() else "numpy"
    except Exception:  # a diagnostic only: internal names may change
        return "unknown"


def row(B: int, q: float, load: float, repeat: int, tail: float) -> dict:
    lam = load * B * q
    evaluate = ql.theorems["stationary"].evaluate
    t = time.perf_counter()
    evaluate(model(B, q, load))  # warm-up: lazy imports
    first = time.perf_counter() - t
    a = poisson_pmf(lam)
    t = time.perf_counter()
    N, _ = truncation(B, q, a, tail)
    search = time.perf_counter() - t
    t_solver, t_base, ratios, t_pgf = [], [], [], []
    for _ in range(repeat):
        m = model(B, q, load)
        t = time.perf_counter()
        sol = evaluate(m)
        t_solver.append(time.perf_counter() - t)
        t_pgf.append(pgf_part(model(B, q, load)))
        t = time.perf_counter()
        base = baseline(B, q, a, N)
        t_base.append(time.perf_counter() - t)
        ratios.append(t_base[-1] / t_solver[-1])
    mean_s, mean_b = float(sol["mean_in_system"]), base["mean_in_system"]
    pe_s, pe_b = float(sol["p_empty"]), base["p_empty"]
    route, pe_route = routes(sol["reason"])
    resolved = pe_b > RESOLVED
    return {
        "B": B, "q": q, "load": load, "lam": lam,
        "solver_s": statistics.median(t_solver), "baseline_s": statistics.median(t_base),
        "ratio": statistics.median(ratios), "ratios": ratios,
        "solver_pgf_s": None if None in t_pgf else statistics.median(t_pgf),
        "solver_times": t_solver, "baseline_times": t_base, "solver_first_call_s": first,
        "route": route, "p_empty_route": pe_route, "reason": sol["reason"],
        "baseline_states": N, "baseline_top_mass": base["top_mass"], "baseline_search_s": search,
        "mean_solver": mean_s, "mean_baseline": mean_b, "mean_rel_diff": abs(mean_s - mean_b) / abs(mean_b),
        "p_empty_solver": pe_s, "p_empty_error": float(sol["p_empty_error"]), "p_empty_baseline": pe_b,
        "p_empty_resolved": resolved,
        "p_empty_rel_diff": abs(pe_s - pe_b) / pe_b if resolved else None,
        "p_empty_abs_diff": abs(pe_s - pe_b),
    }


def fmt(r: dict) -> str:
    if r["p_empty_resolved"]:
        pe = f"{r['p_empty_rel_diff']:.1e}"
    else:
        pe = (f"n/a: {r['p_empty_solver']:.2g} ({r['p_empty_route']}) vs baseline noise "
              f"{r['p_empty_baseline']:.1g}")
    pgf = "?" if r["solver_pgf_s"] is None else f"{r['solver_pgf_s']:.2f}"
    return (f"| {r['B']} | {r['load']} | {r['solver_s']:.2f} ({pgf}) "
            f"| {r['baseline_s']:.2f} ({r['baseline_states']} states) "
            f"| {r['ratio']:.1f}x | {r['route']}; P(empty): {r['p_empty_route']} | {r['mean_rel_diff']:.1e} | {pe} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rows (no B = 256 at 0.999), one round")
    ap.add_argument("--repeat", type=int, default=None, help="rounds (default 3, or 1 with --quick)")
    ap.add_argument("--tail", type=float, default=1e-12, help="top-20%% mass of the truncated chain")
    ap.add_argument("--json", metavar="FILE", help="write the rows as JSON (atomically)")
    args = ap.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    if repeat < 1:
        ap.error(f"--repeat must be >= 1, got {repeat}")
    rows = []
    print("| B | load | solver (s) (PGF part) | sparse chain (s) | chain / solver | route "
          "| mean rel. diff | P(empty) rel. diff |")
    print("| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for B, q, load in (QUICK if args.quick else FULL):
        r = row(B, q, load, repeat, args.tail)
        rows.append(r)
        print(fmt(r), flush=True)
    gth = gth_backend()
    print(f"\nGTH elimination of the P(empty) route: {gth}")
    if args.json:
        out = {"quick": args.quick, "repeat": repeat, "tail": args.tail, "resolved_threshold": RESOLVED,
               "gth": gth, "rows": rows}
        folder = os.path.dirname(os.path.abspath(args.json))
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
