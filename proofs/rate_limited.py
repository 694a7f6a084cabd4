"""Derivation: rate-limited admission at x* removes evictions (registry name ``rate-limited``).

Usage: ``python proofs/rate_limited.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``rate_limited.tex``.
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
    d = Derivation("Rate-limited admission (rate-limited)", ql.theorems["rate-limited"].source)
    l0, l1, M, x, n = sp.symbols("l_0 l_1 M x n", positive=True)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    model = ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=l1)], kv_capacity=M,
                                  policy=ql.rate_limited())
    w = dyn.components(model)[0].w
    xs = dyn.fixed_point(model)

    d.say("Admit $\\min(Q_n, S_n/(l_0+1), x)$ per iteration, starting from an empty batch. While memory does "
          "not bind, $x$ requests enter each iteration, so after $n < l_1$ iterations stages $0..n$ hold $x$ each.")
    d.equal("Memory after admission at iteration $n$", x * sp.Sum(w(j), (j, 0, n)).doit(),
            x * (n + 1) * (2 * l0 + n + 2) / 2)
    d.say("It increases with $n$ up to the stationary memory $\\mathcal M(x)$ reached at $n = l_1 - 1$:")
    stationary = dyn.stage_balance(model, x)
    d.substitute("", x * (n + 1) * (2 * l0 + n + 2) / 2, {n: l1 - 1}, stationary)
    r = dyn.rate_limited_throughput(model)
    d.substitute("$\\mathcal M(x) \\le M$ iff $x \\le x^*$: at $x = x^*$ the memory is exactly full", stationary,
                 {x: xs}, M)
    d.equal("After execution at stationarity the free memory is $x^* w_0$: the $x^*$ admissions always fit",
            r["free_after_execution"], xs * w(0))
    d.equal("so nothing is ever evicted and the throughput is the admission rate", r["throughput"], xs)
    d.say("Greedy admission instead fills the free memory at once and overshoots (linear-map, worst-cycle): "
          "its long-run throughput can fall to the worst cycle.")
    ex = {l0: 10, l1: 40, M: 2000}
    d.substitute("Example $M = 2000$, $l_0 = 10$, $l_1 = 40$: rate-limited throughput $x^* \\approx 1.64$",
                 xs, ex, sp.Rational(100, 61))
    d.substitute("against greedy's worst cycle 1.00", dyn.worst_cycle(model).throughput, ex, 1)
    num = ql.ContinuousBatching(types=[ql.RequestType(prompt=10, decode=40)], kv_capacity=2000,
                                policy=ql.rate_limited())
    run = dyn.relaxed_trajectory(num, 120)
    d.equal("Exact iteration of the relaxed map from an empty batch: no eviction in 120 iterations",
            sum(run.evictions[:, 0]), 0)
    d.equal("and from iteration 39 on the batch is the fixed point, throughput $x^*$",
            dyn.detect_cycle(run).throughput, sp.Rational(100, 61))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "rate_limited.tex")


if __name__ == "__main__":
    print(main(sys.argv))
