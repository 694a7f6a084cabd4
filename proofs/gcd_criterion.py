"""Derivation of the large-prompt limit and the gcd criterion (registry name ``gcd-criterion``).

Usage: ``python proofs/gcd_criterion.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``gcd_criterion.tex``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation, DerivationError
from queueing_llm.theory import dynamics as dyn

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


HALF = sp.Rational(1, 2)


def _two(decodes: tuple[int, int], prompt, p=HALF, M=10**6) -> ql.ContinuousBatching:
    return ql.ContinuousBatching(types=[ql.RequestType(prompt=prompt, decode=v) for v in decodes], kv_capacity=M,
                                 mix=(p, 1 - p))


def _radius(model: ql.ContinuousBatching, l0=None) -> sp.Float:
    """Spectral radius (6 digits), after the exact Schur-Cohn decision agrees with it."""
    rho = dyn.spectral_radius(model) if l0 is None else dyn.spectral_radius_at(model, l0)
    stable = dyn.is_stable(model) if l0 is None else dyn.stable_at(model, l0)
    if stable != (rho < 1):
        raise DerivationError(f"Schur-Cohn ({stable}) disagrees with the roots (radius {rho})")
    return sp.Float(rho, 6)


def derive() -> Derivation:
    d = Derivation("Large-prompt limit and the gcd criterion (gcd-criterion)", ql.theorems["gcd-criterion"].source)
    lam, s = dyn.LAMBDA, dyn.SCALE
    p, l0 = sp.symbols("p l_0", positive=True)
    model = _two((2, 3), l0, p)

    d.say("Two types with decode lengths 2 and 3 in proportions $p, 1-p$, common prompt $l_0 = s$; "
          "$F$ is linear in $s$ and its coefficient of $s$ is the limiting polynomial $A$.")
    F = dyn.survival_polynomial(dyn.with_prompts(model, s), lam)
    d.equal("$F$ with prompts $s$", F, (s + 1) * lam**2 + (s + 2) * lam + (1 - p) * (s + 3))
    A = dyn.limiting_polynomial(model, lam)
    d.equal("$A(\\lambda) = \\lim_{s\\to\\infty} F/s$", A, lam**2 + lam + 1 - p)
    d.polynomial("Closed form $(1-\\lambda)A = -R\\lambda^L + \\sum_k p_k r_k \\lambda^{L-l_{1,k}}$ "
                 "(telescoping sums, $R = 1$)", (1 - lam) * A, dyn.limiting_closed_form(model, lam), lam)
    d.say("On $|\\lambda| \\ge 1$ the closed form vanishes iff $R = \\sum_k p_k r_k \\lambda^{-l_{1,k}}$, which by "
          "the triangle inequality needs $\\lambda^{l_{1,k}} = 1$ for every $k$: the roots of $A$ on the circle are "
          "the $g$-th roots of unity other than 1, $g = \\gcd_k l_{1,k}$, and there are none outside.")
    F0, RHS = dyn.radial_identity(model)
    d.polynomial("Finite common prompt: $F = (l_0 + L) A - \\lambda A'$ exactly", F0, RHS, lam)
    d.say("Hence a root $\\lambda_0$ of $A$ moves to $\\lambda_0(1 + 1/(l_0 + L)) + O(l_0^{-2})$: radially "
          "outwards. With $g > 1$ the roots of unity leave the circle (unstable for every prompt); with $g = 1$ "
          "$\\rho(A) < 1$ and long enough prompts make the fixed point stable.")

    ex4 = _two((2, 3), 50, M=518)
    A4 = dyn.limiting_polynomial(ex4, lam)
    d.equal("Example 4 ($l_1 \\in \\{2, 3\\}$, $p = 1/2$): $A = \\lambda^2 + \\lambda + 1/2$", A4,
            lam**2 + lam + sp.Rational(1, 2))
    r4 = sp.roots(sp.Poly(A4, lam), multiple=True)
    d.equal("complex roots of modulus $1/\\sqrt 2$", sp.expand(r4[0] * sp.conjugate(r4[0])), sp.Rational(1, 2))
    d.equal("$g = \\gcd(2, 3)$", dyn.decode_gcd(ex4), 1)
    d.holds("at $l_0 = 50$ every root of $F$ is inside the circle (confirmed exactly by Schur-Cohn)",
            sp.Lt(_radius(ex4), 1, evaluate=False))
    ex5 = _two((2, 4), 50, M=626)
    A5 = dyn.limiting_polynomial(ex5, lam)
    d.polynomial("Example 5 ($l_1 \\in \\{2, 4\\}$): $A = (\\lambda + 1)(\\lambda^2 + 1/2)$", A5,
                 (lam + 1) * (lam**2 + sp.Rational(1, 2)), lam)
    d.substitute("the root $-1$ of unity ($g = 2$)", A5, {lam: -1}, 0)
    d.holds("and at $l_0 = 50$ it has moved outside: unstable (confirmed exactly by Schur-Cohn)",
            sp.Gt(_radius(ex5), 1, evaluate=False))
    cub = dyn.cubic_asymptotic()
    P, beta, N = sp.symbols("p beta N", positive=True)
    D = (1 - P) + P * beta
    d.say("Two types $a = \\beta N < N$ (proportion $p$ of the short one): near $\\lambda_0 = e^{2\\pi i j/N}$ with "
          "$\\lambda_0^{-a} = e^{i\\varphi}$, $\\varphi = 2\\pi/N$, put $\\lambda = \\lambda_0 e^{t/N}$ in "
          "$p\\lambda^{-a} + (1-p)\\lambda^{-N} = 1$ and expand $t = t_1\\varphi + t_2\\varphi^2$.")
    d.equal("first order", cub["t1"], sp.I * P / D)
    d.equal("second order", cub["t2"], -P * (1 - P) / (2 * D**3))
    d.equal("$1 - \\rho(A) \\sim -t_2 \\varphi^2 / N = 2\\pi^2 p(1-p)/((1-p)+p\\beta)^3 N^{-3}$", cub["gap"],
            2 * sp.pi**2 * P * (1 - P) / D**3 / N**3)

    pair = _two((2, 7), 50)
    lmin = dyn.l0_min(pair)
    d.say("The pair $(2, 7)$, $p = 1/2$: the smallest common prompt making every root of $F$ lie inside the "
          "circle, from the roots (exact Schur-Cohn search), against the first-order estimate "
          "$\\rho(A)(1 + 1/(l_0 + L)) < 1$.")
    d.holds(f"at $l_0 = {lmin}$ the spectral radius is below 1 (Schur-Cohn: stable)",
            sp.Lt(_radius(pair, lmin), 1, evaluate=False))
    d.holds(f"at $l_0 = {lmin - 1}$ it is above 1 (Schur-Cohn: unstable), so $l_0^{{\\min}} = {lmin}$",
            sp.Gt(_radius(pair, lmin - 1), 1, evaluate=False))
    d.holds("the first-order estimate is smaller", sp.Lt(dyn.first_order_l0(pair), lmin, evaluate=False))
    d.holds("and so is the published first-order value 15", sp.Lt(15, lmin, evaluate=False))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "gcd_criterion.tex")


if __name__ == "__main__":
    print(main(sys.argv))
