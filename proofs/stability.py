"""Derivation of the stability condition of the batch-capped queue (``stability``).

Usage: ``python proofs/stability.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``stability.tex``.
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
    d = Derivation("Stability of the batch-capped queue (stability)", ql.theorems["stability"].source)
    lam, q, B, p = sp.symbols("lambda q B p", positive=True)
    z = tq.Z
    d.say("A saturated batch keeps $B$ slots busy; each slot is a renewal process whose cycles are the "
          "decode lengths $l_1$, so by the renewal reward theorem it completes $1/E[l_1]$ requests per "
          "iteration, with $E[l_1] = F'(1)$.")
    geo = ql.ContinuousBatching([ql.RequestType(prompt=3, decode=ql.Geometric(q), arrivals=ql.Poisson(lam))],
                                batch_cap=B, policy="fcfs_cap")
    F = ql.Geometric(q).pgf(z)
    d.equal("geometric decode lengths: $E[l_1] = F'(1) = 1/q$", sp.diff(F, z).subs(z, 1), 1 / q)
    d.equal("saturated throughput $\\mu = B/E[l_1] = Bq$", tq.stability(geo).capacity, B * q)
    two = ql.ContinuousBatching(
        [ql.RequestType(prompt=3, decode=ql.FinitePMF({2: p, 5: 1 - p}), arrivals=ql.Poisson(lam))],
        batch_cap=B, policy="fcfs_cap")
    d.equal("decode lengths 2 and 5 with probabilities $p, 1-p$: $\\mu = B/(2p + 5(1-p))$",
            tq.stability(two).capacity, B / (2 * p + 5 * (1 - p)))
    d.say("The queue is positive recurrent iff arrivals are below the saturated throughput (Loynes): "
          "$\\lambda < B/E[l_1] \\iff \\lambda E[l_1] < B$.")
    cond = tq.stability(geo).condition
    d.equal("the derived condition $\\lambda E[l_1] < B$ reads $\\lambda/q < B$", cond.lhs - cond.rhs, lam / q - B)
    d.equal("multiplied by $q > 0$: $\\lambda - Bq < 0$, i.e. $\\lambda < \\mu$", q * (cond.lhs - cond.rhs),
            lam - tq.stability(geo).capacity)
    num = ql.ContinuousBatching([ql.RequestType(prompt=3, decode=ql.Geometric(sp.Rational(3, 10)),
                                                arrivals=ql.Poisson(sp.Rational(9, 10)))], batch_cap=4,
                                policy="fcfs_cap")
    res = tq.stability(num)
    d.equal("example $q = 3/10$, $B = 4$, $\\lambda = 9/10$: $\\mu = 6/5$", res.capacity, sp.Rational(6, 5))
    d.equal("load $\\rho = \\lambda E[l_1]/B = 3/4$", res.load, sp.Rational(3, 4))
    d.holds("stable", sp.Eq(sp.sympify(res.stable), sp.true))
    d.equal("long-run throughput $\\min(\\lambda, \\mu) = \\lambda$", res.throughput, sp.Rational(9, 10))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "stability.tex")


if __name__ == "__main__":
    print(main(sys.argv))
