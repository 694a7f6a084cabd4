"""Derivation of the adjacent, opposite, contiguous-block and evenly spaced cycles (``cycles``).

Usage: ``python proofs/cycles.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``cycles.tex``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import dynamics as dyn

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


def derive() -> Derivation:
    d = Derivation("Cycles of the saturated map (cycles)", ql.theorems["cycles"].source)
    l0, l1, M, dd = sp.symbols("l_0 l_1 M d", positive=True)
    i, j = sp.symbols("i j", integer=True, nonnegative=True)
    model = ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=l1)], kv_capacity=M)
    w = dyn.components(model)[0].w
    xs = dyn.fixed_point(model)
    worst = dyn.worst_cycle(model).throughput

    d.say("Each cycle is derived from its memory balance: at the iteration where the evictions stop, the "
          "surviving cohorts fill the memory exactly.")
    adj = dyn.adjacent_cycle(model)
    a, b = sp.symbols("a b")
    d.say("Adjacent: cohort $B$ (size $b$) one stage ahead of cohort $A$, which is cut at every step. "
          "Balances: $a w_{l_1-2} + b w_{l_1-1} = M$ and, after $B$ completes, $b w_0 + a w_{l_1-1} = M$.")
    d.equal("their solution has $a = (l_1 - 1) b$", adj.sizes[a], (l1 - 1) * adj.sizes[b])
    d.equal("so the period $l_1$ completes $l_1 b$: throughput $b = M/(w_{l_1-1}^2 - w_0 w_{l_1-2})$",
            adj.throughput, M / (w(l1 - 1) ** 2 - w(0) * w(l1 - 2)))
    opp = dyn.opposite_cycle(model)
    d.say("Opposite ($l_1 = 2d$): two equal cohorts $d$ stages apart, binding at stages $d-1$ and $l_1-1$: "
          "$c (w_{d-1} + w_{l_1-1}) = M$; one completes every $d$ iterations.")
    half = l1 / 2
    d.equal("throughput $M/(d(w_{d-1} + w_{l_1-1}))$", opp.throughput, M / (half * (w(half - 1) + w(l1 - 1))))
    con = dyn.contiguous_cycle(model, i)
    d.say("Contiguous block: $(i+1)c$ at stage $i$ and $c$ at each stage $i+1..l_1-1$; one $c$ completes and "
          "one is admitted per iteration until the big cohort completes and is replaced by one admission, "
          "cut back over $i$ stages: $l_1 c$ completions per period $l_1$.")
    d.equal("$c_i = M/((i+1) w_i + \\sum_{j>i} w_j)$", con.throughput,
            M / ((i + 1) * w(i) + sp.Sum(w(j), (j, i + 1, l1 - 1)).doit()))
    d.substitute("$c_0 = x^*$", con.throughput, {i: 0}, xs)
    d.substitute("$c_{l_1-1}$ is the worst cycle", con.throughput, {i: l1 - 1}, worst)
    d.substitute("$c_{l_1-2}$ is the adjacent cycle", con.throughput, {i: l1 - 2}, adj.throughput)
    bal = dyn.balanced_cycle(model, dd)
    q = sp.Symbol("q", integer=True, positive=True)
    d.say("Evenly spaced ($l_1 = kd$): $k$ equal cohorts $d$ stages apart, binding at $d-1, 2d-1, \\dots$.")
    d.equal("throughput $M/(d \\sum_{q=1}^{k} w_{qd-1})$", bal.throughput,
            M / (dd * sp.Sum(w(q * dd - 1), (q, 1, l1 / dd)).doit()))
    d.equal("$= 2M/(l_1 (2 l_0 + l_1 + d))$", bal.throughput, 2 * M / (l1 * (2 * l0 + l1 + dd)))
    d.substitute("$d = 1$: the fixed point", bal.throughput, {dd: 1}, xs)
    d.substitute("$d = l_1$: the worst cycle", bal.throughput, {dd: l1}, worst)
    d.substitute("$d = l_1/2$: the opposite cycle", bal.throughput, {dd: l1 / 2}, opp.throughput)

    d.say("Example 2 ($l_0 = 2$, $l_1 = 3$, $M = 24$), and exact iteration of the relaxed map from a state "
          "on each cycle.")
    d.substitute("level-1 (adjacent) cycle, throughput $24/13 \\approx 1.85$", adj.throughput,
                 {l0: 2, l1: 3, M: 24}, sp.Rational(24, 13))
    ex2 = ql.ContinuousBatching(types=[ql.RequestType(prompt=2, decode=3)], kv_capacity=24)
    start = dyn.cycle_state(ex2, "adjacent")
    z = sp.Symbol("z")
    d.polynomial("which passes through $(72/13, 24/13, 0)$ (stage $j$ is the coefficient of $z^j$)",
                 sum(v * z**k for k, v in enumerate(start)), sp.Rational(72, 13) + sp.Rational(24, 13) * z, z)
    cyc = dyn.detect_cycle(dyn.relaxed_trajectory(ex2, 12, [start]))
    d.equal("and returns to it after 3 iterations", cyc.period, 3)
    d.equal("with completions $72/13$ per period", cyc.throughput * cyc.period, sp.Rational(72, 13))
    ex6 = ql.ContinuousBatching(types=[ql.RequestType(prompt=3, decode=6)], kv_capacity=300)
    for kind, par in (("opposite", None), ("contiguous", 2), ("balanced", 2), ("balanced", 3)):
        run = dyn.relaxed_trajectory(ex6, 30, [dyn.cycle_state(ex6, kind, par)])
        formula = ql.theorems["cycles"].evaluate(ex6)[kind]
        formula = formula if par is None else formula[par]
        d.equal(f"$l_0 = 3$, $l_1 = 6$, $M = 300$: the {kind} cycle{'' if par is None else f' ({par})'} "
                "repeats with its throughput", dyn.detect_cycle(run).throughput, formula)
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "cycles.tex")


if __name__ == "__main__":
    print(main(sys.argv))
