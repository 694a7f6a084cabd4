"""Derivation of the linearised saturated map (registry name ``linear-map``), checked by SymPy.

Usage: ``python proofs/linear_map.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``linear_map.tex``.
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
    d = Derivation("Linearised saturated map and survival polynomial (linear-map)", ql.theorems["linear-map"].source)
    lam = dyn.LAMBDA
    l0, M, m = sp.symbols("l_0 M m", positive=True)
    model = ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=3)], kv_capacity=M)
    w = dyn.components(model)[0].w

    d.say("One type, $l_1 = 3$ (the general case is identical with more stages). State: the stage counts "
          "after admission $(x_0, x_1, x_2)$, which are the last three admissions $(a_n, a_{n-1}, a_{n-2})$.")
    a, image = dyn.admission_map(model)
    d.equal("Admission rule after execution (stages 1, 2 hold the previous $x_0, x_1$)", image[0],
            (M - w(1) * a[0] - w(2) * a[1]) / w(0))
    B = dyn.companion_matrix(model)
    d.equal("Jacobian: first row $-w_1/w_0, -w_2/w_0, 0$", B[0, 0] + B[0, 1], -(w(1) + w(2)) / w(0))
    F = dyn.survival_polynomial(model, lam)
    d.equal("Survival polynomial $F(\\lambda) = \\sum_m w_m \\lambda^{l_1-1-m}$", F,
            w(0) * lam**2 + w(1) * lam + w(2))
    d.polynomial("$\\det(\\lambda I - B) = \\lambda F(\\lambda)/w_0$",
                 dyn.characteristic_polynomial(model, "admission", lam), lam * F / w(0), lam)
    Bm = dyn.companion_matrix(model, "memory")
    d.say("On the invariant set $\\sum_j w_j x_j = M$ (memory full after admission) add $w^T/w_0$ to the "
          "first row (the gradient of the constraint): the form of the model chapter, A.2.")
    d.equal("$\\alpha = -1/(l_0+1)$", Bm[0, 0], -1 / (l0 + 1))
    d.equal("$\\beta = (l_0 + l_1)/(l_0+1)$", Bm[0, 2], (l0 + 3) / (l0 + 1))
    d.polynomial("with characteristic polynomial $(\\lambda - 1) F(\\lambda)/w_0$",
                 dyn.characteristic_polynomial(model, "memory", lam), (lam - 1) * F / w(0), lam)

    d.say("Homogeneous case, any $l_1 \\ge 2$: $F$ has positive coefficients $a_i = w_{l_1-1-i}$ "
          "(ascending powers), and the Enestrom-Kakeya theorem puts every root in "
          "$\\min_i a_i/a_{i+1} \\le |\\lambda| \\le \\max_i a_i/a_{i+1}$. The ratios are $w_{m+1}/w_m$.")
    r = (l0 + 2 + m) / (l0 + 1 + m)
    d.equal("$w_{m+1}/w_m - w_{m+2}/w_{m+1} = 1/(w_m w_{m+1}) > 0$: the ratios decrease in $m$",
            r - r.subs(m, m + 1), 1 / ((l0 + 1 + m) * (l0 + 2 + m)))
    l1 = sp.Symbol("l_1", positive=True)
    general = ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=l1)], kv_capacity=M)
    low, high = dyn.enestrom_kakeya_bounds(general)
    d.equal("so the smallest ratio is $w_{l_1-1}/w_{l_1-2}$", low, (l0 + l1) / (l0 + l1 - 1))
    d.equal("and $|\\lambda| - 1 \\ge 1/(l_0 + l_1 - 1) > 0$: every root lies outside the unit circle, the "
            "fixed point is unstable", low - 1, 1 / (l0 + l1 - 1))
    d.equal("(the largest ratio is $w_1/w_0$)", high, (l0 + 2) / (l0 + 1))

    d.say("Example 3 ($l_0 = 2$, $l_1 = 3$, $M = 24$): $F = 3\\lambda^2 + 4\\lambda + 5$ has complex roots "
          "(discriminant $16 - 60 < 0$) whose squared modulus is the product of the roots.")
    ex3 = F.subs(l0, 2)
    d.equal("$F$", ex3, 3 * lam**2 + 4 * lam + 5)
    roots = sp.roots(sp.Poly(ex3, lam), multiple=True)
    d.equal("$|\\lambda|^2 = 5/3$", sp.expand(roots[0] * sp.conjugate(roots[0])), sp.Rational(5, 3))

    two = ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=2)], kv_capacity=M)
    sol = dyn.l1_two_solution(two)
    n, a0 = sol["n"], sp.Symbol("a_0")
    d.say("$l_1 = 2$: the stage-1 requests after execution are the previous admissions, so "
          "$a_{n+1} = (M - w_1 a_n)/w_0$ (SymPy rsolve).")
    d.equal("Solution", sol["a_n"], sol["x_star"] + (a0 - sol["x_star"]) * sol["factor"] ** n)
    d.equal("with fixed point $M/(2l_0+3)$", sol["x_star"], M / (2 * l0 + 3))
    d.equal("and deviation factor $-(l_0+2)/(l_0+1)$", sol["factor"], -(l0 + 2) / (l0 + 1))
    worked = ql.ContinuousBatching(types=[ql.RequestType(prompt=2, decode=2)], kv_capacity=140)
    d.substitute("Worked trajectory ($l_0 = 2$, $M = 140$, $a_0 = 21$): $a_1 = 18 + 2/3$", sol["a_n"],
                 {l0: 2, M: 140, a0: 21, n: 1}, sp.Rational(56, 3))
    d.equal("first eviction when $w_1 a_n > M$: at iteration 11, as in the integer trajectory",
            dyn.first_eviction_l1_two(worked, 21), 11)
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "linear_map.tex")


if __name__ == "__main__":
    print(main(sys.argv))
