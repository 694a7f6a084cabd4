"""Derivation of Nested WAIT's safety buffer (registry name ``safety-buffer``), checked by SymPy.

Usage: ``python proofs/safety_buffer.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``safety_buffer.tex``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import fluid_wait as fw

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


def derive() -> Derivation:
    d = Derivation("Nested WAIT's safety buffer (safety-buffer)", ql.theorems["safety-buffer"].source)
    q, th = sp.Symbol("q", positive=True), fw.THETA
    i = sp.Symbol("i", integer=True, nonnegative=True)
    m = 4
    d.say("At boundary $k$ a cohort of $m = n_{k-1}$ requests crosses segment $k-1$; each survives it with "
          "probability $q = q_k$, independently, so $Y \\sim \\mathrm{Bin}(m, q)$ join the entry queue of "
          "segment $k$, which takes $n = n_k$ per iteration. The moment generating function of $Y$ "
          "(binomial theorem, shown for $m = 4$):")
    mgf = sp.Sum(sp.binomial(m, i) * q**i * (1 - q) ** (m - i) * sp.exp(th * i), (i, 0, m))
    d.equal("$E[e^{\\theta Y}] = (1 - q + q e^{\\theta})^m$", mgf, (1 - q + q * sp.exp(th)) ** m)
    n = 2
    eq = fw.buffer_equation(m, q, n)
    d.equal("so $E[e^{\\theta (Y - n)}] = 1$ reads", eq.lhs, (1 - q + q * sp.exp(th)) ** m * sp.exp(-th * n))
    f = m * sp.log(1 - q + q * sp.exp(th)) - n * th
    d.substitute("Its logarithm $f(\\theta)$ vanishes at $\\theta = 0$", f, {th: 0}, 0)
    d.substitute("with slope $f'(0) = mq - n$ (negative drift when $mq < n$)", sp.diff(f, th), {th: 0}, m * q - n)
    d.equal("and $f''(\\theta) = m q (1-q) e^{\\theta}/(1 - q + q e^{\\theta})^2 > 0$: $f$ is convex",
            sp.diff(f, th, 2), m * q * (1 - q) * sp.exp(th) / (1 - q + q * sp.exp(th)) ** 2)
    d.say("so a unique root $\\theta_k > 0$ exists when $mq < n < m$. Then $e^{\\theta_k S_t}$, $S_t$ the "
          "random walk with increments $Y - n$, is a martingale, and Doob's inequality gives "
          "$P(\\sup_t S_t \\ge x) \\le e^{-\\theta_k x}$; the inventory in equilibrium is such a supremum. "
          "With $K$ boundaries, $b_k = \\ln(K/\\delta)/\\theta_k$ gives $\\sum_k e^{-\\theta_k b_k} = \\delta$.")
    K, delta, tk = sp.symbols("K delta theta_k", positive=True)
    d.equal("$e^{-\\theta_k b_k} = \\delta/K$", sp.exp(-tk * sp.log(K / delta) / tk), delta / K)
    d.say("Worked example: $m = 4$, $q = 1/4$, $n = 2$ at one boundary ($K = 1$), $\\delta = 10^{-3}$.")
    buf = fw.safety_buffer([4, 2], [1, sp.Rational(1, 4)], [0, 10], [10, 20], 1e-3)
    root = buf.theta[0]
    value = float(f.subs({q: sp.Rational(1, 4)}).subs(th, root))
    d.holds("the root $\\theta_2$ solves the equation to $10^{-9}$", sp.Lt(abs(sp.Float(value)), sp.Float(1e-9)))
    d.holds("and the buffer is $\\ln(1000)/\\theta_2$",
            sp.Lt(abs(sp.Float(buf.buffer[0] - math.log(1000) / root)), sp.Float(1e-9)))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "safety_buffer.tex")


if __name__ == "__main__":
    print(main(sys.argv))
