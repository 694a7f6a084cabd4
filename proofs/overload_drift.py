"""Derivation of the overload drift of the batch-capped queue (``overload-drift``).

Usage: ``python proofs/overload_drift.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``overload_drift.tex``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import queue as tq

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


def derive() -> Derivation:
    d = Derivation("Overload drift of the batch-capped queue (overload-drift)", ql.theorems["overload-drift"].source)
    lam, q, B, n, y = sp.symbols("lambda q B n y", positive=True)
    z = tq.Z
    d.say("In overload the batch is full from some iteration on; then $B/E[l_1]$ requests complete per "
          "iteration (renewal reward) while $\\lambda$ arrive, so $Q_n/n \\to \\lambda - B/E[l_1]$.")
    geo = ql.ContinuousBatching([ql.RequestType(prompt=3, decode=ql.Geometric(q), arrivals=ql.Poisson(lam))],
                                batch_cap=B, policy="fcfs_cap")
    raw = tq.queue_inputs(geo).lam - tq.stability(geo).capacity
    d.equal("geometric decode lengths: $\\lambda - B/E[l_1] = \\lambda - Bq$", raw, lam - B * q)
    d.equal("the fluid line $Q(n) = \\max(Q(0) + (\\lambda - Bq) n, 0)$ from $Q(0) = 0$",
            tq.fluid_queue(geo, 0, n), sp.Max(0, (lam - B * q) * n))
    d.say("Exact one-step drift with $y \\ge B$ present: every member completes with probability $q$, so "
          "$D \\sim \\mathrm{Bin}(B, q)$ and $E[z^{Y'} \\mid Y = y] = z^y A(z) (1 - q + q/z)^B$.")
    cond = z**y * sp.exp(lam * (z - 1)) * (1 - q + q / z) ** B
    d.equal("differentiating at $z = 1$ and subtracting $y$", sp.diff(cond, z).subs(z, 1) - y, lam - B * q)
    d.equal("which is the package's one-step drift", tq.geometric_one_step_drift(geo), lam - B * q)
    over = ql.ContinuousBatching([ql.RequestType(prompt=3, decode=ql.Geometric(sp.Rational(3, 10)),
                                                 arrivals=ql.Poisson(sp.Rational(3, 2)))], batch_cap=4,
                                 policy="fcfs_cap")
    d.equal("example $\\lambda = 3/2$, $B = 4$, $q = 3/10$: drift $3/2 - 6/5 = 3/10$", tq.overload_drift(over),
            sp.Rational(3, 10))
    stable = ql.ContinuousBatching([ql.RequestType(prompt=3, decode=5, arrivals=ql.Poisson(sp.Rational(1, 2)))],
                                   batch_cap=4, policy="fcfs_cap")
    d.equal("a stable model ($\\lambda = 1/2 < B/E[l_1] = 4/5$) has drift 0", tq.overload_drift(stable), 0)
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "overload_drift.tex")


if __name__ == "__main__":
    print(main(sys.argv))
