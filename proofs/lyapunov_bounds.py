"""Derivation of the quadratic-Lyapunov bounds on the stationary mean (``lyapunov-bounds``).

Usage: ``python proofs/lyapunov_bounds.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``lyapunov_bounds.tex``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import queue as tq
from queueing_llm.theory import queue_stationary as qs

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


def derive() -> Derivation:
    d = Derivation("Quadratic-Lyapunov bounds (lyapunov-bounds)", ql.theorems["lyapunov-bounds"].source)
    lam, q, B, s2 = sp.symbols("lambda q B sigma^2", positive=True)
    EW, ES2 = sp.symbols("E_W E_S2", nonnegative=True)
    d.say("Stationarity of $Y^2$ with $Y' = Y - D + A$, $D \\mid Y \\sim \\mathrm{Bin}(S, q)$, $S = \\min(Y, B)$, "
          "$W = (Y - B)^+$: $E[D \\mid Y] = qS$, $E[D^2 \\mid Y] = q(1-q)S + q^2 S^2$, $YS = S^2 + BW$, and rate "
          "balance $E[S] = \\lambda/q$.")
    law = ql.FinitePMF({0: sp.Rational(1, 2), 1: sp.Rational(1, 4), 3: sp.Rational(1, 4)})
    m = ql.ContinuousBatching([ql.RequestType(prompt=2, decode=ql.Geometric(q), arrivals=law)], batch_cap=B,
                              policy="fcfs_cap")
    lam0, var0 = law.mean, law.variance
    ident = tq.lyapunov_identity(m).rhs
    hand = (var0 + (1 - q) * lam0 + 2 * lam0**2 / q - lam0**2 - q * (2 - q) * ES2) / (2 * (q * B - lam0))
    d.equal("solving $E[Y'^2] = E[Y^2]$ for $E[W]$ (arrivals 0, 1, 3 w.p. 1/2, 1/4, 1/4)", ident, hand)
    d.say("With $0 \\le S \\le B$ and $E[S] = \\lambda/q$: $(\\lambda/q)^2 \\le E[S^2] \\le B\\lambda/q$, and "
          "$E[W]$ decreases in $E[S^2]$.")
    bounds = tq.lyapunov_bounds(m)
    d.equal("upper bound $E[W] \\le (\\sigma^2 + (1-q)\\lambda)/(2(qB - \\lambda))$", bounds.queue_upper,
            (var0 + (1 - q) * lam0) / (2 * (q * B - lam0)))
    d.substitute("lower bound at $E[S^2] = B\\lambda/q$", hand, {ES2: B * lam0 / q}, bounds.queue_lower)
    bail = ql.ContinuousBatching([ql.RequestType(prompt=2, decode=1, arrivals=law)], batch_cap=B, policy="fcfs_cap")
    bb = tq.lyapunov_bounds(bail)
    d.equal("Bailey ($q = 1$): $E[Y] \\le \\sigma^2/(2(B - \\lambda)) + \\lambda$", bb.upper,
            var0 / (2 * (B - lam0)) + lam0)
    d.equal("and $E[Y] \\ge \\sigma^2/(2(B - \\lambda)) + \\lambda/2$ (the model chapter, B.6)", bb.lower,
            var0 / (2 * (B - lam0)) + lam0 / 2)
    ex = ql.ContinuousBatching([ql.RequestType(prompt=2, decode=ql.Geometric(sp.Rational(3, 10)),
                                               arrivals=ql.Poisson(sp.Rational(9, 10)))], batch_cap=4,
                               policy="fcfs_cap")
    eb = tq.lyapunov_bounds(ex)
    mean = qs.stationary(ex).mean_in_system
    d.holds("example $B = 4$, $q = 3/10$, Poisson $\\lambda = 9/10$: the exact mean lies between the bounds",
            sp.And(sp.Le(eb.lower, sp.Float(mean)), sp.Le(sp.Float(mean), eb.upper)))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "lyapunov_bounds.tex")


if __name__ == "__main__":
    print(main(sys.argv))
