"""Derivation of the waiting-room cap results (``waiting-cap``).

Usage: ``python proofs/waiting_cap.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``waiting_cap.tex``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import queue_waiting as qw

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


def derive() -> Derivation:
    d = Derivation("Waiting-room cap (waiting-cap)", ql.theorems["waiting-cap"].source)
    lam, B, l1 = sp.symbols("lambda B l_1", positive=True)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    d.say("The arrivals of an iteration see the queue $W = (Y - B)^+$ left by the previous admission; with "
          "room $c = K - W$, $\\min(A, c)$ are accepted and $(A - c)^+$ rejected.")
    c = 2
    pois = sp.exp(-lam) * lam**j / sp.factorial(j)
    rej = sp.Sum((j - c) * pois, (j, c + 1, sp.oo)).doit()
    acc = sum(k * pois.subs(j, k) for k in range(c)) + c * (1 - sum(pois.subs(j, k) for k in range(c)))
    d.equal("Poisson arrivals, room $c = 2$: $E[(A - c)^+] = \\lambda - E[\\min(A, c)]$", rej, lam - acc)
    half = sp.Rational(1, 2)
    m = ql.ContinuousBatching([ql.RequestType(prompt=1, decode=ql.Geometric(half), arrivals=ql.Bernoulli(half))],
                              batch_cap=1, waiting_cap=1, policy="fcfs_cap")
    res = qw.waiting_cap_chain(m, exact=True)
    pi0, pi1, pi2 = res.distribution
    d.say("Example $B = 1$, $K = 1$, $q = 1/2$, Bernoulli(1/2) arrivals: states 0, 1, 2 after admission. From "
          "2 one request waits, so the room is 0 and every arrival is rejected; the member completes w.p. 1/2. "
          "From 1 the member completes w.p. 1/2 and an arrival is accepted. Rows: execute, arrive, admit.")
    P = sp.Matrix([[half, half, 0], [sp.Rational(1, 4), half, sp.Rational(1, 4)],
                   [0, half, half]])
    pi = sp.Matrix([[pi0, pi1, pi2]])
    d.equal("the exact stationary vector solves $\\pi P = \\pi$", (pi * P - pi).norm(), 0)
    d.equal("rejections per iteration $= \\pi_2 \\cdot E[A] = \\pi_2/2$",
            res.rejection_rate, pi2 * half)
    d.equal("rejection probability", res.rejection_probability, pi2)
    over = ql.ContinuousBatching([ql.RequestType(prompt=1, decode=l1, arrivals=ql.Poisson(lam))], batch_cap=B,
                                 waiting_cap=10, policy="fcfs_cap")
    d.equal("in overload the batch completes $B/E[l_1]$ per iteration and the queue stays below $K$: as "
            "$K \\to \\infty$ the rejection rate is $(\\lambda - B/l_1)^+$",
            qw.overload_rejection_rate(over), sp.Piecewise((lam - B / l1, lam - B / l1 > 0), (0, True)))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "waiting_cap.tex")


if __name__ == "__main__":
    print(main(sys.argv))
