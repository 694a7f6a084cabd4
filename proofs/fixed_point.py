"""Derivation of the eviction-free fixed point (registry name ``fixed-point``), checked by SymPy.

Usage: ``python proofs/fixed_point.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``fixed_point.tex``.
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
    d = Derivation("Eviction-free fixed point (fixed-point)", ql.theorems["fixed-point"].source)
    l0, l1, M, x, j = sp.symbols("l_0 l_1 M x j", positive=True)
    model = ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=l1)], kv_capacity=M)
    c = dyn.components(model)[0]

    d.say("Saturated relaxed map without eviction: every cohort moves one stage up unchanged, so a "
          "stationary batch holds the same number $x$ at every stage $j < l_1$, and greedy admission "
          "fills the memory left after execution.")
    d.equal("Stage memory (the model chapter, section 1)", c.w(j), l0 + 1 + j)
    balance = dyn.stage_balance(model, x)
    d.equal("Memory of the stationary batch, $\\sum_{j<l_1} w_j x$", balance, x * l1 * (2 * l0 + l1 + 1) / 2)
    xs = dyn.fixed_point(model)
    d.equal("Solving the memory balance $\\sum_j w_j x = M$ for $x$ (SymPy solve)", xs,
            2 * M / (l1 * (2 * l0 + l1 + 1)))
    d.substitute("check: $x^*$ fills the memory", balance, {x: xs}, M)
    after = balance.subs(x, xs) - c.w(0) * xs
    d.equal("After execution the stages $1..l_1-1$ hold $M - w_0 x^*$, so greedy admission adds exactly "
            "$x^*$: the point is stationary", (M - after) / c.w(0), xs)

    p = sp.Symbol("p", positive=True)
    a0, a1, b0, b1 = sp.symbols("l_{0a} l_{1a} l_{0b} l_{1b}", positive=True)
    two = ql.ContinuousBatching(
        types=[ql.RequestType(prompt=a0, decode=a1), ql.RequestType(prompt=b0, decode=b1)],
        kv_capacity=M, mix=(p, 1 - p),
    )
    d.say("Two types admitted in proportions $p, 1-p$: stage $j$ of type $k$ holds $p_k x$ for $j < l_{1,k}$.")
    Ca, Cb = (t.lifetime_memory for t in two.types)
    d.equal("Memory balance", dyn.stage_balance(two, x), x * (p * Ca + (1 - p) * Cb))
    d.equal("so $x^* = M / \\sum_k p_k C_k$", dyn.fixed_point(two), M / (p * Ca + (1 - p) * Cb))

    d.say("Numbers of the references chapter, section 1.")
    d.substitute("Example 2", xs, {l0: 2, l1: 3, M: 24}, 2)
    d.substitute("Rate-limited example ($x^* \\approx 1.64$)", xs, {l0: 10, l1: 40, M: 2000}, sp.Rational(100, 61))
    for name, decodes, M_ in (("Example 4", (2, 3), 518), ("Example 5", (2, 4), 626)):
        m = ql.ContinuousBatching(types=[ql.RequestType(prompt=50, decode=v) for v in decodes], kv_capacity=M_)
        d.equal(f"{name}: $x^* = {M_} / \\frac12(C_{decodes[0]} + C_{decodes[1]})$", dyn.fixed_point(m), 4)
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "fixed_point.tex")


if __name__ == "__main__":
    print(main(sys.argv))
