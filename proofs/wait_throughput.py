"""Derivation of the heavy-traffic invariants behind ``wait-throughput``, checked by SymPy.

Under the scaling lambda -> zeta lambda, M -> zeta M, d1 -> d1 / zeta the load rho and the
fluid iteration length Delta* do not change, the thresholds and the memory need scale by
zeta, and the fluid throughput is zeta sum_k lambda_k: what WAIT attains in the fluid limit.
The rate at which WAIT's gap closes is measured (queueing_llm.heavy_traffic), not derived.

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


def derive() -> Derivation:
    d = Derivation("WAIT's fluid throughput under heavy-traffic scaling (wait-throughput)",
                   ql.theorems["wait-throughput"].source)
    g = cap.fluid_solution(2)
    lam, w, d1, M = g["rates"], g["lifetimes"], g["d1"], g["M"]
    zeta = sp.Symbol("zeta", positive=True)
    scaled = {lam[0]: zeta * lam[0], lam[1]: zeta * lam[1], d1: d1 / zeta}
    load = lam[0] * w[0] + lam[1] * w[1]
    d.say("Scale the arrival rates and $M$ by $\\zeta$ and $d_1$ by $1/\\zeta$. The load "
          "$\\rho = d_1 \\sum_k \\lambda_k W_k$ is unchanged:")
    d.substitute("$\\rho$", d1 * load, scaled, d1 * load)
    d.substitute("so is $\\Delta^* = d_0/(1-\\rho)$", g["delta_star"], scaled, g["delta_star"])
    for k in range(2):
        d.substitute(f"the threshold $n_{k + 1}^*$ scales by $\\zeta$", g["thresholds"][k], scaled,
                     zeta * g["thresholds"][k])
    d.substitute("and the memory need $M^*$ too", g["memory_need"], scaled, zeta * g["memory_need"])
    bound = g["capacity_bound"]
    d.equal("feasibility $S \\le M/(d_0 + d_1 M)$ scales alike: the bound at $(\\zeta M, d_1/\\zeta)$ is "
            "$\\zeta$ times the bound", bound.subs({M: zeta * M, d1: d1 / zeta}), zeta * bound)
    d.say("In the fluid equilibrium every arrival is admitted and completes: the fluid throughput is "
          "$\\zeta \\sum_k \\lambda_k$, and the relative gap of a policy that keeps every stage at "
          "$n_k^*$ vanishes as $\\zeta \\to \\infty$.")
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "wait_throughput.tex")


if __name__ == "__main__":
    print(main(sys.argv))
