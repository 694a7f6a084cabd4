"""Derivation of the renewal transient of a saturated batch (``renewal-transient``).

Usage: ``python proofs/renewal_transient.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``renewal_transient.tex``.
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
    d = Derivation("Renewal transient of completions (renewal-transient)", ql.theorems["renewal-transient"].source)
    z, q = tq.Z, sp.Symbol("q", positive=True)
    U, F = sp.symbols("U F")
    d.say("Each of the $B$ slots of a saturated batch, filled at iteration 0, refills at iteration $n$ with "
          "probability $u_n$: the last refill before $n$ was at $n - k$ with a decode length $k$, so "
          "$u_n = [n = 0] + \\sum_{k \\ge 1} f_k u_{n-k}$, i.e. $U = 1 + F U$.")
    d.equal("solving for $U$", sp.solve(sp.Eq(U, 1 + F * U), U)[0], 1 / (1 - F))
    two = ql.ContinuousBatching([ql.RequestType(prompt=2, decode=ql.FinitePMF({2: sp.Rational(1, 2),
                                                                               4: sp.Rational(1, 2)}))],
                                batch_cap=8, policy="fcfs_cap")
    Uz = tq.renewal_generating_function(two)
    d.equal("decode lengths 2 and 4 with probability 1/2 each", Uz, 1 / (1 - z**2 / 2 - z**4 / 2))
    series = sp.series(Uz, z, 0, 11).removeO()
    seq = tq.renewal_sequence(two, 10)
    d.polynomial("the recursion gives the series coefficients $u_0..u_{10}$", sum(u * z**k for k, u in
                                                                                   enumerate(seq)), series, z)
    lim = tq.renewal_limit(two)
    d.equal("$(1-z)U(z) \\to 1/E[l_1] = 1/3$ as $z \\to 1$", sp.limit((1 - z) * Uz, z, 1), lim.limit)
    d.equal("the support $\\{2, 4\\}$ has gcd $d = 2$: periodic", lim.period, 2)
    d.equal("$u_{2m} \\to d/E[l_1] = 2/3$", lim.residue_limits[0], sp.Rational(2, 3))
    d.equal("and $u_{2m+1} = 0$: the completions $B u_n$ oscillate forever", lim.residue_limits[1], 0)
    d.equal("explicitly $u_{2m} = 2/3 + (1/3)(-1/2)^m$ ($m = 5$)", seq[10], sp.Rational(2, 3) +
            sp.Rational(1, 3) * sp.Rational(-1, 2) ** 5)
    geo = ql.ContinuousBatching([ql.RequestType(prompt=2, decode=ql.Geometric(q))], batch_cap=8, policy="fcfs_cap")
    d.equal("geometric decode lengths: $U(z) = 1 + qz/(1 - z)$, so $u_n = q$ from $n = 1$ on",
            sp.simplify(tq.renewal_generating_function(geo) - 1 - q * z / (1 - z)), 0)
    d.polynomial("and the sequence is flat", sum(u * z**k for k, u in enumerate(tq.renewal_sequence(geo, 4))),
                 1 + q * (z + z**2 + z**3 + z**4), z)
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "renewal_transient.tex")


if __name__ == "__main__":
    print(main(sys.argv))
