"""Derivation of the [ALSW25] fluid benchmark (registry name ``fluid-benchmark``), checked by SymPy.

Usage: ``python proofs/fluid_benchmark.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``fluid_benchmark.tex``.
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
    d = Derivation("Fluid benchmark with linear iteration time (fluid-benchmark)",
                   ql.theorems["fluid-benchmark"].source)
    l0, l1 = sp.symbols("l_0 l_1", positive=True)
    k = sp.Symbol("k", integer=True, nonnegative=True)
    t = ql.RequestType(prompt=l0, decode=l1)

    d.say("Lifetime memory $W$ (token-iterations) in the two stage-memory conventions.")
    d.equal(
        "With a prefill stage ([ALSW25]): $l_0 + k$ tokens at stages $k = 0, \\dots, l_1$",
        sp.Sum(cap.stage_memory_prefill(t, k), (k, 0, l1)),
        cap.lifetime_memory(t, prefill_stage=True),
    )
    d.equal("which is $(l_1 + 1)(l_0 + l_1/2)$", cap.lifetime_memory(t, prefill_stage=True),
            (l1 + 1) * (l0 + l1 / 2))
    d.equal(
        "Without (the model chapter): $w_j = l_0 + 1 + j$ at stages $j < l_1$, $W = C$",
        sp.Sum(t.stage_memory(k), (k, 0, l1 - 1)),
        cap.lifetime_memory(t, prefill_stage=False),
    )

    g = cap.fluid_solution(2)
    lam, w, d0, d1, S, M = g["rates"], g["lifetimes"], g["d0"], g["d1"], g["S"], g["M"]
    delta = sp.Symbol(r"\Delta", positive=True)
    d.say(
        "Fluid balance for two types: every iteration of length $\\Delta$ admits $n_k = \\lambda_k \\Delta$ "
        "type-$k$ requests (the arrivals during it), so every stage holds $n_k$ of them and the batch "
        "$\\sum_k n_k W_k$ tokens; the iteration lasts $\\Delta = d_0 + d_1 \\sum_k n_k W_k$. Its solution:"
    )
    load = lam[0] * w[0] + lam[1] * w[1]
    rho = d1 * load
    d.equal("$\\Delta^* = d_0 / (1 - \\rho)$, $\\rho = d_1 \\sum_k \\lambda_k W_k$", g["delta_star"],
            d0 / (1 - rho))
    d.substitute("which solves the balance", delta - d0 - d1 * delta * load, {delta: d0 / (1 - rho)}, 0)
    for i in range(2):
        d.equal(f"per-stage threshold $n_{i + 1}^* = \\lambda_{i + 1} \\Delta^*$", g["thresholds"][i],
                lam[i] * d0 / (1 - rho))
    d.equal("memory need $M^* = \\sum_k n_k^* W_k = \\Delta^* \\sum_k \\lambda_k W_k$", g["memory_need"],
            d0 / (1 - rho) * load)
    d.equal("$= (d_0/d_1)\\,\\rho/(1-\\rho)$", g["memory_need"], (d0 / d1) * rho / (1 - rho))

    d.say("The iteration time sees only the load $S = \\sum_k \\lambda_k W_k$: $M^*(S) = d_0 S/(1 - d_1 S)$, "
          "increasing on $\\rho = d_1 S < 1$:")
    need = g["need_of_load"]
    d.equal("$M^*(S)$", need, d0 * S / (1 - d1 * S))
    d.equal("$dM^*/dS = d_0/(1 - d_1 S)^2 > 0$", sp.diff(need, S), d0 / (1 - d1 * S) ** 2)
    d.equal("Solving $M^*(S) = M$ for $S$: the feasibility region is $S \\le M/(d_0 + d_1 M)$",
            g["capacity_bound"], M / (d0 + d1 * M))
    d.substitute("at the boundary $M^* = M$", need, {S: M / (d0 + d1 * M)}, M)
    d.equal("and there $1 - \\rho = d_0/(d_0 + d_1 M) > 0$, so feasibility implies $\\rho < 1$",
            1 - d1 * g["capacity_bound"], d0 / (d0 + d1 * M))

    d.say("Worked example (the references chapter, section 2): $l_0 = 2$, $l_1 = 3$, $\\lambda = 2$ per second, "
          "$d_0 = 1$, $d_1 = 0.01$, $M = 50$, with a prefill stage.")
    model = ql.ContinuousBatching(
        types=[ql.RequestType(prompt=2, decode=3, arrivals=ql.PoissonProcess(2))],
        kv_capacity=50,
        iteration_time=ql.LinearIterationTime(1, 0.01),
    )
    res = cap.fluid_benchmark(model, prefill_stage=True)
    one = {lam[0]: 2, w[0]: res.lifetimes[0], d0: 1, d1: sp.Rational(1, 100), lam[1]: 0, w[1]: 0}
    d.equal("$W = 2 + 3 + 4 + 5$", res.lifetimes[0], 14)
    d.substitute("$\\rho$", rho, one, res.rho)
    d.substitute("$\\Delta^* = 1/0.72$", g["delta_star"], one, res.delta_star)
    d.substitute("$n^* = \\lambda \\Delta^*$", g["thresholds"][0], one, res.thresholds[0])
    d.substitute("$M^*$", g["memory_need"], one, res.memory_need)
    d.holds("feasible: $S = 28 \\le 50/1.5$", sp.Le(res.load, res.capacity_bound, evaluate=False))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "fluid_benchmark.tex")


if __name__ == "__main__":
    print(main(sys.argv))
