"""Derivation of memory Little's law (registry name ``memory-little``), every step checked by SymPy.

Usage: ``python proofs/memory_little.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``memory_little.tex``.
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
    d = Derivation("Memory Little's law (memory-little)", ql.theorems["memory-little"].source)
    l0, l1, lam, M = sp.symbols("l_0 l_1 lambda M", positive=True)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    t = ql.RequestType(prompt=l0, decode=l1, arrivals=lam)

    d.say("A request at stage $j = 0, \\dots, l_1 - 1$ holds $w_j = l_0 + 1 + j$ KV tokens (model chapter, section 1).")
    C = d.equal(
        "Its lifetime memory is the sum of its stage memories",
        sp.Sum(t.stage_memory(j), (j, 0, l1 - 1)),
        l1 * (2 * l0 + l1 + 1) / 2,
    )
    d.equal("which is the model's lifetime memory $C$", t.lifetime_memory, C)

    d.say(
        "Observed after admission, a request admitted at iteration $m$ and never evicted adds $w_{n-m}$ to the "
        "memory $Z_n$ for $n = m, \\dots, m + l_1 - 1$. With admissions $a_0, \\dots, a_{T-1}$ (here $l_1 = 3$, "
        "$T = 4$), summing the memory over all iterations exchanges the two sums:"
    )
    a = sp.symbols("a_0:4")
    w = [sp.Integer(1) * (l0 + 1 + k) for k in range(3)]
    total = sp.Add(*[w[k] * a[n - k] for n in range(4 + 2) for k in range(3) if 0 <= n - k < 4])
    life = sp.Add(*w)
    d.equal("$\\sum_n Z_n = C \\sum_m a_m$", total, life * sp.Add(*a))

    d.say(
        "In general $\\sum_{n<N} Z_n = \\sum_{\\text{completed}} C_i$ plus the partial memory of the requests in "
        "flight at the ends. Dividing by $N$ and letting $N \\to \\infty$ in a stationary run without evictions, "
        "the mean memory per iteration is the throughput $\\Lambda$ (admissions = completions per iteration) "
        "times $E[C]$:"
    )
    model = ql.ContinuousBatching(types=[t], kv_capacity=M)
    d.equal("Memory Little's law, $\\bar Z = \\Lambda E[C]$", cap.memory_little(model).mean_kv, lam * C)

    d.say("Since $Z_n \\le M$ at every iteration, $\\Lambda E[C] \\le M$ is necessary for stability. "
          "For the default model ($l_0 = 10$, $l_1 = 40$, $\\lambda = 1.2$, $M = 2000$):")
    dm = ql.default_model()
    need = cap.memory_little(dm).mean_kv
    d.substitute("the mean memory", lam * C, {lam: sp.Rational(6, 5), l0: 10, l1: 40}, need)
    d.holds("and the necessary condition holds", sp.Le(need, dm.M, evaluate=False))

    d.say("Random lengths (prompt and decode independent): the expectation of the polynomial $C(l_0, l_1)$.")
    q = sp.Symbol("q", positive=True)
    tr = ql.RequestType(prompt=ql.FinitePMF({2: sp.Rational(1, 2), 6: sp.Rational(1, 2)}), decode=ql.Geometric(q))
    d.equal(
        "$E[C] = E[l_0] E[l_1] + (E[l_1^2] + E[l_1])/2$ for a geometric decode length",
        tr.lifetime_memory,
        cap.expect_polynomial(C, {l0: tr.prompt, l1: tr.decode}),
    )

    d.say(
        "Wall-clock arrivals: a Poisson process of rate $\\lambda$ per second and iteration time "
        "$d_0 + d_1 Z_n$ give $\\lambda \\bar s$ arrivals per iteration with $\\bar s = d_0 + d_1 \\bar Z$. "
        "Solving $\\bar Z = \\lambda \\bar s C$ and $\\bar s = d_0 + d_1 \\bar Z$:"
    )
    d0, d1 = sp.symbols("d_0 d_1", positive=True)
    mw = ql.ContinuousBatching(
        types=[ql.RequestType(prompt=l0, decode=l1, arrivals=ql.PoissonProcess(lam))],
        kv_capacity=M,
        iteration_time=ql.LinearIterationTime(d0, d1),
    )
    res = cap.memory_little(mw)
    d.equal("$\\bar Z = d_0 \\lambda C / (1 - d_1 \\lambda C)$, the fluid memory need $M^*$ of [ALSW25]",
            res.mean_kv, d0 * lam * C / (1 - d1 * lam * C))
    d.equal("and $\\bar s = d_0 / (1 - \\rho)$ with $\\rho = d_1 \\lambda C$", res.mean_iteration_time,
            d0 / (1 - d1 * lam * C))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "memory_little.tex")


if __name__ == "__main__":
    print(main(sys.argv))
