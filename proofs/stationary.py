"""Derivation of the stationary law of the Geo^X/Geo/B queue (``stationary``).

Usage: ``python proofs/stationary.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``stationary.tex``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import queue as tq
from queueing_llm.theory import queue_stationary as qs

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


def _model(lam, q, B):
    dec = ql.Geometric(q) if q != 1 else 1
    return ql.ContinuousBatching([ql.RequestType(prompt=2, decode=dec, arrivals=ql.Poisson(lam))], batch_cap=B,
                                 policy="fcfs_cap")


def derive() -> Derivation:
    d = Derivation("Stationary number in system of Geo$^X$/Geo/$B$ (stationary)", ql.theorems["stationary"].source)
    lam, q, B = sp.symbols("lambda q B", positive=True)
    z = tq.Z
    r = q + (1 - q) * z
    dd = sp.Symbol("d", integer=True, nonnegative=True)
    d.say("After admission $Y$ are in system and $S = \\min(Y, B)$ in the batch; each member completes with "
          "probability $q$, then $A$ arrive: $Y' = Y - D + A$, $D \\mid Y \\sim \\mathrm{Bin}(S, q)$.")
    d.equal("fewer than $B$ present ($n = 3$): $E[z^{n-D}] = r(z)^n$, $r(z) = q + (1-q)z$",
            sp.Sum(sp.binomial(3, dd) * q**dd * (1 - q) ** (3 - dd) * z ** (3 - dd), (dd, 0, 3)).doit(), r**3)
    d.equal("a full batch ($B = 4$, $n = 6$): $z^n (1 - q + q/z)^B = z^{n-B} r(z)^B$",
            z**6 * (1 - q + q / z) ** 4, z**2 * r**4)
    m = _model(lam, q, B)
    K = qs.kernel(m)
    d.equal("multiplying the balance of $P(z) = E[z^Y]$ by $z^B$ isolates the kernel $K(z) = z^B - A(z) r(z)^B$",
            K, z**B - sp.exp(lam * (z - 1)) * r**B)
    d.say("and the functional equation $P(z) K(z) = A(z) \\sum_{n<B} p_n (z^B r^n - r^B z^n)$ with the $B$ "
          "unknown boundary probabilities $p_0..p_{B-1}$.")
    d.equal("$K(1) = 0$", K.subs(z, 1), 0)
    d.equal("$K'(1) = Bq - \\lambda$, positive iff stable", sp.diff(K, z).subs(z, 1), B * q - lam)
    p0, p1, p2 = sp.symbols("p_0 p_1 p_2")
    Q3 = sum(pn * (z**3 * r**n - r**3 * z**n) for n, pn in enumerate((p0, p1, p2)))
    d.equal("the numerator's slope at 1 ($B = 3$): $Q'(1) = q \\sum_n p_n (B - n)$, which must equal $K'(1)$ "
            "(normalisation $P(1) = 1$)", sp.diff(Q3, z).subs(z, 1), q * (3 * p0 + 2 * p1 + p2))
    one = _model(lam, q, 1)
    mean1 = qs.stationary_b1(one)["mean_in_system"]
    d.equal("$B = 1$: $p_0 = 1 - \\lambda/q$ and $E[Y] = \\lambda + (A''(1) + 2\\lambda(1-q))/(2(q - \\lambda))$",
            mean1, lam + (lam**2 + 2 * lam * (1 - q)) / (2 * (q - lam)))
    d.say("For $B > 1$ and $\\lambda < Bq$ the kernel has $B - 1$ zeros $z_k$ inside the unit disk besides 1; "
          "the numerator vanishes there. The package finds them by continuation in the arrival thinning "
          "$A(1 - t + tz)$, $t: 0 \\to 1$. Example: $B = 4$, $q = 3/10$, $\\lambda = 0.9$.")
    ex = _model(sp.Rational(9, 10), sp.Rational(3, 10), 4)
    roots = qs.kernel_roots(ex)
    d.equal("three roots", len(roots), 3)
    d.holds("all inside the unit disk", sp.Lt(sp.Float(float(np.abs(roots).max())), 1))
    Kn = sp.lambdify(z, qs.kernel(ex), "numpy")
    d.holds("kernel residual below $10^{-14}$", sp.Lt(sp.Float(float(np.abs(Kn(roots)).max())), sp.Float(1e-14)))
    g = qs.ladder_probabilities(roots)
    d.holds("$\\Pi(x) = (x-1)\\prod_k (x - z_k) = x^B - \\sum_j g_j x^j$ with $g \\ge 0$ summing to 1 (the ladder "
            "law from $B$)", sp.Lt(sp.Float(abs(float(g.sum()) - 1)), sp.Float(1e-12)))
    res = qs.stationary(ex)
    p = res.boundary
    A = np.exp(0.9 * (roots - 1))
    rr = 0.3 + 0.7 * roots
    num = np.abs(sum(p[n] * (A * rr**n - roots**n) for n in range(4))).max()
    d.holds("the boundary law from the censored chain ($x^m \\bmod \\Pi$) makes the numerator vanish at the roots",
            sp.Lt(sp.Float(float(num)), sp.Float(1e-14)))
    d.holds("and is normalised: $q \\sum_n p_n (B - n) = Bq - \\lambda$",
            sp.Lt(sp.Float(abs(0.3 * float(p @ (4 - np.arange(4))) - 0.3)), sp.Float(1e-13)))
    d.equal("mean batch $E[\\min(Y, B)] = \\lambda/q$ (rate balance, the slope of the equation at 1)",
            sp.Float(res.mean_batch), sp.Float(3.0))
    d.say(f"and $E[Y] = {res.mean_in_system:.12g}$ by the mean formula, $E[\\text{{sojourn}}] = E[Y]/\\lambda = "
          f"{res.mean_sojourn:.12g}$ (Little), $P(Y = 0) = {res.p_empty:.12g}$.")
    bail = _model(2, 1, 4)
    gen, closed = qs.stationary(bail), qs.bailey(bail)
    d.holds("Bailey's queue ($q = 1$, $B = 4$, $\\lambda = 2$): the general route equals the product formula "
            "$\\lambda + \\sum_k 1/(1 - z_k) - (B(B-1) - A''(1))/(2(B - \\lambda))$",
            sp.Lt(sp.Float(abs(gen.mean_in_system - closed["mean_in_system"])), sp.Float(1e-11)))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "stationary.tex")


if __name__ == "__main__":
    print(main(sys.argv))
