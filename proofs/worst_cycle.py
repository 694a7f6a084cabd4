"""Derivation of the worst-case cycle (registry name ``worst-cycle``), checked by SymPy.

Usage: ``python proofs/worst_cycle.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``worst_cycle.tex``.
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
    d = Derivation("Worst-case (maximal-eviction) cycle (worst-cycle)", ql.theorems["worst-cycle"].source)
    l0, l1, M = sp.symbols("l_0 l_1 M", positive=True)
    c = sp.Symbol("c")  # the cohort size of dyn.worst_cycle
    model = ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=l1)], kv_capacity=M)
    w = dyn.components(model)[0].w

    d.say("A single cohort fills the memory: it is admitted as $M/w_0$ into an empty batch, and at every "
          "later stage $j$ the growth evicts it down to $M/w_j$ (least-progressed first; nothing else is "
          "in the batch, and after an eviction the memory is full so nothing is admitted).")
    f = dyn.worst_cycle(model)
    d.equal("Memory balance at the last stage: $c\\,w_{l_1-1} = M$", f.balance.lhs - f.balance.rhs,
            c * (l0 + l1) - M)
    d.equal("so $l_1 - 1$ iterations after admission the cohort completes $M/w_{l_1-1}$ requests",
            f.completions, M / w(l1 - 1))
    d.equal("per period of $l_1$ iterations: throughput $M/(l_1(l_0+l_1))$", f.throughput, M / (l1 * (l0 + l1)))
    ratio = f.throughput / dyn.fixed_point(model)
    d.equal("Ratio to the fixed point", ratio, (2 * l0 + l1 + 1) / (2 * (l0 + l1)))
    d.equal("$1 - $ ratio $= (l_1 - 1)/(2(l_0+l_1)) \\ge 0$", 1 - ratio, (l1 - 1) / (2 * (l0 + l1)))
    d.equal("which tends to 1/2 as $l_1 \\to \\infty$ (long outputs: half the throughput is lost)",
            sp.limit(ratio, l1, sp.oo), sp.Rational(1, 2))

    d.say("Example 2 ($l_0 = 2$, $l_1 = 3$, $M = 24$): the cycle $(8,0,0) \\to (0,6,0) \\to (0,0,24/5)$.")
    sizes = [M / w(j) for j in range(3)]
    for j, v in enumerate((8, 6, sp.Rational(24, 5))):
        d.substitute(f"stage {j}: $M/w_{j}$", sizes[j], {l0: 2, M: 24}, v)
    d.substitute("throughput $8/5$", f.throughput, {l0: 2, l1: 3, M: 24}, sp.Rational(8, 5))
    d.substitute("20\\% below $x^* = 2$", ratio, {l0: 2, l1: 3}, sp.Rational(4, 5))
    ex2 = ql.ContinuousBatching(types=[ql.RequestType(prompt=2, decode=3)], kv_capacity=24)
    run = dyn.relaxed_trajectory(ex2, 12, [dyn.cycle_state(ex2, "worst")])
    d.equal("exact iteration of the relaxed map from $(8, 0, 0)$ returns to it every 3 iterations with "
            "this throughput", dyn.detect_cycle(run).throughput, sp.Rational(8, 5))
    d.substitute("Rate-limited example ($M = 2000$, $l_0 = 10$, $l_1 = 40$): worst cycle 1.00", f.throughput,
                 {l0: 10, l1: 40, M: 2000}, 1)
    d.substitute("against $x^* = 100/61 \\approx 1.64$", dyn.fixed_point(model), {l0: 10, l1: 40, M: 2000},
                 sp.Rational(100, 61))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "worst_cycle.tex")


if __name__ == "__main__":
    print(main(sys.argv))
