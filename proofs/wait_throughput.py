"""Derivation of what ``wait-throughput`` states, checked by SymPy; and what it does not state.

Derived (each step checked): under the scaling lambda -> zeta lambda, M -> zeta M,
d1 -> d1 / zeta the load rho and the fluid iteration length Delta* do not change, the
thresholds and the memory need scale by zeta; in the fluid equilibrium WAIT completes
sum_k n_k*/Delta* = sum_k lambda_k requests per second, the fluid benchmark's throughput, so
the fluid model's gap is 0 at every zeta. Not derived: the gap of the stochastic system
(Poisson arrivals, integer thresholds) and how it grows with zeta; that is only measured
(queueing_llm.heavy_traffic.measure_gap; docs/fluid_policies.md), and no rate or limit of
it is stated.

Usage: ``python proofs/wait_throughput.py [OUTPUT_DIR]``; writes ``wait_throughput.tex``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import capacity as cap

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


def _at_scale(expr: sp.Expr, scaled: dict) -> sp.Expr:
    """``expr`` with the scaled parameters written in, kept unevaluated so the display shows them."""
    return expr.xreplace({k: sp.UnevaluatedExpr(v) for k, v in scaled.items()})


def derive() -> Derivation:
    d = Derivation("WAIT's fluid throughput under heavy-traffic scaling (wait-throughput)",
                   ql.theorems["wait-throughput"].source)
    g = cap.fluid_solution(2)
    lam, w, d1, M = g["rates"], g["lifetimes"], g["d1"], g["M"]
    zeta = sp.Symbol("zeta", positive=True)
    scaled = {lam[0]: zeta * lam[0], lam[1]: zeta * lam[1], d1: d1 / zeta}
    load = lam[0] * w[0] + lam[1] * w[1]
    delta, ns = g["delta_star"], g["thresholds"]
    d.say("Scale the arrival rates and $M$ by $\\zeta$ and $d_1$ by $1/\\zeta$. Each step below writes a "
          "quantity at the scaled parameters $(\\zeta\\lambda_1, \\zeta\\lambda_2, d_1/\\zeta, \\zeta M)$ on the "
          "left and its value in the unscaled parameters on the right.")
    d.equal("The load $\\rho = d_1 \\sum_k \\lambda_k W_k$ at the scaled parameters is the unscaled load:",
            _at_scale(d1 * load, scaled), d1 * load)
    d.equal("so is $\\Delta^* = d_0/(1-\\rho)$, the fluid iteration length:", _at_scale(delta, scaled), delta)
    for k in range(2):
        d.equal(f"The threshold $n_{k + 1}^* = \\lambda_{k + 1} \\Delta^*$ at the scaled parameters is $\\zeta$ "
                "times the unscaled threshold:", _at_scale(ns[k], scaled), zeta * ns[k])
    d.equal("and the memory need $M^* = \\sum_k n_k^* W_k$ at the scaled parameters is $\\zeta$ times $M^*$:",
            _at_scale(g["memory_need"], scaled), zeta * g["memory_need"])
    bound = g["capacity_bound"]
    d.equal("Feasibility $S \\le M/(d_0 + d_1 M)$ scales alike: the bound at $(\\zeta M, d_1/\\zeta)$ is "
            "$\\zeta$ times the bound:", _at_scale(bound, {M: zeta * M, d1: d1 / zeta}), zeta * bound)
    d.say("In the fluid equilibrium WAIT holds $n_k^*$ type-$k$ requests at every stage, so each iteration, of "
          "length $\\Delta^*$, completes $n_k^*$ of them. WAIT's fluid throughput is $\\sum_k n_k^*/\\Delta^*$:")
    def ratio(k: int, factor: sp.Expr = 1) -> sp.Expr:  # factor n_k*/Delta*, shown before it cancels
        return sp.UnevaluatedExpr(factor * -ns[k]) / sp.UnevaluatedExpr(-delta)  # -n/-delta: no "+ -" shown

    d.equal("it equals the arrival rate $\\sum_k \\lambda_k$, the fluid benchmark's throughput when feasible:",
            ratio(0) + ratio(1), lam[0] + lam[1])
    d.equal("At the scaled parameters the thresholds are $\\zeta n_k^*$ and the iteration length is $\\Delta^*$ "
            "(steps 3-5): WAIT's fluid throughput $\\sum_k \\zeta n_k^*/\\Delta^*$ is $\\zeta \\sum_k \\lambda_k$:",
            ratio(0, zeta) + ratio(1, zeta), zeta * (lam[0] + lam[1]))
    d.equal("so the fluid model's gap $\\mathrm{gap}^{\\mathrm{fluid}}_\\zeta = \\zeta\\sum_k\\lambda_k - "
            "\\sum_k \\zeta n_k^*/\\Delta^*$ is zero at every $\\zeta$:",
            zeta * (lam[0] + lam[1]) - ratio(0, zeta) - ratio(1, zeta), 0)
    d.say("Not derived, and not stated: the gap of the stochastic system (Poisson arrivals, integer "
          "thresholds) and its growth in $\\zeta$; neither a rate nor a limit of $\\mathrm{gap}_\\zeta/\\zeta$ "
          "follows from the steps above. It is measured, by the function measure\\_gap of the package's "
          "heavy\\_traffic module, with its fitted exponent and interval on the fluid-policies page of the docs.")
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "wait_throughput.tex")


if __name__ == "__main__":
    print(main(sys.argv))
