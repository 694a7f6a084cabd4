"""Derivation: the largest eviction-free token-bucket rate of the integer system
(registry name ``integer-rate-limit``).

Usage: ``python proofs/integer_rate_limit.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``integer_rate_limit.tex``.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import dynamics as dyn

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


def _bucket(x: Fraction, count: int) -> list[int]:
    """Admissions of a token bucket b_n = min(b_{n-1} + x, x + 1) that spends all whole tokens."""
    tokens, out = Fraction(0), []
    for _ in range(count):
        tokens = min(tokens + x, x + 1)
        a = int(tokens)
        tokens -= a
        out.append(a)
    return out


def derive() -> Derivation:
    d = Derivation("Largest eviction-free token-bucket rate (integer-rate-limit)",
                   ql.theorems["integer-rate-limit"].source)
    l0, x, f = sp.symbols("l_0 x f", positive=True)
    m, k = sp.symbols("m k", integer=True)
    d.say("A token bucket at rate $x = p/q$ gains $x$ tokens per iteration (depth $x + 1$) and admits one "
          "request per whole token. While memory never binds it spends all whole tokens, so after iteration $n$ "
          "it has admitted $\\lfloor (n+1)x \\rfloor$ in total and holds the fractional part $< 1$: the depth "
          "$x + 1$ never binds, and $a_n = \\lfloor (n+1)x\\rfloor - \\lfloor nx \\rfloor$.")
    for rate in (Fraction(100, 61), Fraction(13, 8), Fraction(7, 3)):
        direct = _bucket(rate, 3 * rate.denominator + 5)
        beatty = dyn.token_bucket_admissions(sp.Rational(rate.numerator, rate.denominator), len(direct))
        mismatches = sum(int(a != b) for a, b in zip(direct, beatty, strict=True))
        d.equal(f"Iterations (of the first {len(direct)}) where the bucket's admissions differ from the Beatty "
                f"pattern at $x = {rate}$", mismatches, 0)
    d.say("With $F(m) = \\lfloor m x \\rfloor$ and $w_j = l_0 + 1 + j$, the memory after admission at "
          "iteration $n$ is $\\sum_{j<l_1} w_j (F(n+1-j) - F(n-j))$. Summation by parts ($m = n + 1 - l_1$):")
    for L in (1, 2, 3, 5, 8, 40):
        Fs = sp.symbols(f"F_0:{L + 1}")
        lhs = sum((l0 + 1 + j) * (Fs[L - j] - Fs[L - 1 - j]) for j in range(L))
        rhs = (l0 + 1) * (Fs[L] - Fs[0]) + sum(Fs[i] - Fs[0] for i in range(1, L))
        if L in (3, 40):
            d.equal(f"$l_1 = {L}$ ($F_i$ = $F(m + i)$)", lhs, rhs)
        elif not sp.expand(lhs - rhs) == 0:  # pragma: no cover - the identity
            raise AssertionError(f"summation by parts fails at l1 = {L}")
    d.say("(checked for $l_1 = 1, 2, 3, 5, 8, 40$; the general case telescopes the same way).")
    frac = sp.Symbol("f", nonnegative=True)
    i = sp.Symbol("i", integer=True, positive=True)
    d.equal("Writing $mx = \\lfloor mx \\rfloor + f$, $0 \\le f < 1$, each difference depends on $f$ only",
            sp.floor(k + frac + i * x) - k, sp.floor(i * x + frac))
    d.say("so $\\mathcal M_n = (l_0+1)\\lfloor l_1 x + f\\rfloor + \\sum_{i=1}^{l_1-1} \\lfloor ix + f \\rfloor$, "
          "non-decreasing in $f$. As $m$ runs over the integers, $f = \\{mx\\}$ runs over $0, 1/q, \\dots, "
          "(q-1)/q$ ($p$, $q$ coprime), and at the largest value every floor is a ceiling:")
    grid = [sp.Eq(sp.floor(sp.Rational(kk, q) + sp.Rational(q - 1, q)), sp.ceiling(sp.Rational(kk, q)))
            for q in range(1, 13) for kk in range(0, 60)]
    d.holds("$\\lfloor k/q + (q-1)/q \\rfloor = \\lceil k/q \\rceil$ (checked for $q \\le 12$, $0 \\le k < 60$)",
            sp.And(*grid))
    model_sym = ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=40)], kv_capacity=sp.Symbol("M"))
    P = dyn.peak_memory_expression(model_sym, x)
    d.say("Hence the peak memory of the pattern is $P(x) = (l_0+1)\\lceil l_1 x \\rceil + "
          "\\sum_{i=1}^{l_1-1}\\lceil ix \\rceil$, here for $l_1 = 40$:")
    d.equal("", P, (l0 + 1) * sp.ceiling(40 * x) + sp.Sum(sp.ceiling(i * x), (i, 1, 39)))
    lsym = sp.Symbol("l_1", integer=True, positive=True)
    C = lsym * (l0 + (lsym + 1) / 2)
    d.equal("Dropping the ceilings gives $P(x) \\ge x C$, $C = \\sum_j w_j$ the lifetime memory: "
            "an eviction-free rate is at most $x^* = M/C$",
            (l0 + 1) * lsym + sp.Sum(i, (i, 1, lsym - 1)).doit(), C)
    d.say("If $P(x) \\le M$ the greedy check never binds and the memory after execution (at most the memory "
          "after admission) never exceeds $M$: no eviction, throughput $x$. $P$ is non-decreasing and jumps only "
          "after fractions $k/i$ with $i \\le l_1$, so $x_{\\max} = \\max\\{x : P(x) \\le M\\}$ is such a fraction.")
    default = ql.ContinuousBatching(types=[ql.RequestType(prompt=10, decode=40)], kv_capacity=2000)
    xs = dyn.fixed_point(default)
    d.equal("Default model $M = 2000$, $l_0 = 10$, $l_1 = 40$: $x^*$", xs, sp.Rational(100, 61))
    d.equal("the pattern at $x^*$ peaks above $M$", dyn.peak_memory(default, xs), 2024)
    d.equal("the direct maximum over one period of $\\sum_j w_j a_{n-j}$ agrees",
            max(dyn.pattern_memory(default, xs)), 2024)
    d.equal("$P(13/8)$ fills the memory exactly", dyn.peak_memory(default, sp.Rational(13, 8)), 2000)
    d.equal("the next fraction above, $57/35$ (denominator $\\le 40$), does not fit",
            dyn.peak_memory(default, sp.Rational(57, 35)), 2015)
    d.equal("so the largest eviction-free rate is", dyn.max_eviction_free_rate(default), sp.Rational(13, 8))
    cyc = dyn.integer_cycle(default, xs)
    d.say("Above $x_{\\max}$ the throughput is that of the cycle the integer map falls into, computed by "
          "exact iteration (integers and a rational bucket) until a state repeats. At $x^*$:")
    d.equal("period", cyc.period, 40)
    d.equal("throughput (63 completions per period, below $x^*$)", cyc.throughput, sp.Rational(63, 40))
    d.equal("evictions per iteration", cyc.evictions, sp.Rational(1, 40))
    above = dyn.integer_cycle(default, sp.Rational(57, 35))
    d.equal("Just above $x_{\\max}$, at $57/35$, the memory limit caps admission instead: throughput below "
            "the rate", above.throughput, sp.Rational(8, 5))
    d.equal("with no eviction", above.evictions, 0)
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "integer_rate_limit.tex")


if __name__ == "__main__":
    print(main(sys.argv))
