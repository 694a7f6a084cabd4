"""Derivation of WAIT's fluid equilibrium (registry name ``wait-thresholds``), checked by SymPy.

Usage: ``python proofs/wait_thresholds.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``wait_thresholds.tex``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import capacity as cap
from queueing_llm.theory import fluid_wait as fw

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


def derive() -> Derivation:
    d = Derivation("WAIT's fluid equilibrium (wait-thresholds)", ql.theorems["wait-thresholds"].source)
    l0, lam, n = sp.symbols("l_0 lambda n", positive=True)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    L = sp.Symbol("l_1", integer=True, positive=True)
    t = ql.RequestType(prompt=l0, decode=L)
    d.say("WAIT admits $n$ requests of a type whenever $n$ are waiting. In equilibrium every iteration "
          "admits $n$ and, with a deterministic decode length $l_1$, every stage $j < l_1$ holds $n$; the "
          "batch then holds $n \\sum_{j<l_1} w_j = n W$ tokens of the type:")
    d.equal("$\\sum_{j<l_1} n\\,w_j = n W$", sp.Sum(n * t.stage_memory(j), (j, 0, L - 1)),
            n * cap.lifetime_memory(t))
    g = cap.fluid_solution(1)
    d0, d1, lam1, w1 = g["d0"], g["d1"], g["rates"][0], g["lifetimes"][0]
    d.say("Admissions must equal the arrivals of an iteration, $n = \\lambda \\Delta$, and the iteration "
          "lasts $\\Delta = d_0 + d_1 n W$ (the fluid balance of the fluid-benchmark theorem). So:")
    d.equal("$n^* = \\lambda \\Delta^* = \\lambda d_0/(1 - d_1 \\lambda W)$", g["thresholds"][0],
            lam1 * d0 / (1 - d1 * lam1 * w1))
    d.equal("$M^* = n^* W$", g["memory_need"], g["thresholds"][0] * w1)
    d.say("A slotted model has $d_0 = 1$ iteration and $d_1 = 0$: the threshold is the arrival rate per "
          "iteration and $M^*$ is memory Little's law $\\lambda E[C]$.")
    d.substitute("$n^*$ at $d_0 = 1$, $d_1 = 0$", g["thresholds"][0], {d0: 1, d1: 0}, lam1)
    d.substitute("$M^*$ at $d_0 = 1$, $d_1 = 0$", g["memory_need"], {d0: 1, d1: 0}, lam1 * w1)

    d.say("Worked example, two types (REFERENCES section 2, Example 3): $(l_0, l_1, \\lambda) = "
          "(100, 100, 30/\\mathrm{s})$ and $(200, 400, 5/\\mathrm{s})$, $d_0 = 0.015$ s, $d_1 = 3 \\cdot 10^{-7}$ "
          "s/token, $M = 10^5$, with a prefill stage.")
    m = ql.ContinuousBatching([ql.RequestType(100, 100, ql.PoissonProcess(30)),
                               ql.RequestType(200, 400, ql.PoissonProcess(5))],
                              kv_capacity=100_000, iteration_time=ql.LinearIterationTime(0.015, 3e-7))
    res = fw.wait_thresholds(m, prefill_stage=True)
    d.holds("$\\Delta^* \\approx 24.08$ ms", sp.Lt(abs(res.delta_star - sp.Rational(2408, 100000)),
                                                 sp.Rational(1, 100000)))
    d.holds("$n^*_1 \\approx 0.722$", sp.Lt(abs(res.thresholds[0] - sp.Rational(722, 1000)), sp.Rational(1, 1000)))
    d.holds("$n^*_2 \\approx 0.120$", sp.Lt(abs(res.thresholds[1] - sp.Rational(120, 1000)), sp.Rational(1, 1000)))
    d.holds("$M^* \\approx 30{,}250 \\le M$",
            sp.And(sp.Lt(abs(res.batch_memory - 30250), 1), res.batch_memory <= 10**5))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "wait_thresholds.tex")


if __name__ == "__main__":
    print(main(sys.argv))
