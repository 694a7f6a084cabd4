"""Derivation of the [NSZ26] memory stability threshold (registry name ``nsz-threshold``), checked by SymPy.

Usage: ``python proofs/nsz_threshold.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``nsz_threshold.tex``. Reproduces the paper's 1:1 setting (the references chapter, section 3).
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import capacity as cap

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"
MEASURED_RATE = sp.Rational("3.387")  # [NSZ26] measured GPU rate, req/s, 1:1 workload


def uniform(low: int, high: int) -> ql.FinitePMF:
    """The discrete uniform law on {low, ..., high}."""
    return ql.FinitePMF({v: sp.Rational(1, high - low + 1) for v in range(low, high + 1)})


def derive() -> Derivation:
    d = Derivation("Memory stability threshold of [NSZ26] (nsz-threshold)", ql.theorems["nsz-threshold"].source)
    s, o, shat, q = sp.symbols("s o \\hat{s} q", positive=True, integer=True)
    i = sp.Symbol("i", integer=True, positive=True)

    d.say("$g(s, o)$ is the KV memory a request holds, summed over the iterations it spends in the batch: "
          "its prefill in chunks of $\\hat s$ tokens, then $o$ decode iterations.")
    dec = d.equal("Decode part: after decode step $i$ the request holds $s + i$ tokens",
                  sp.Sum(s + i, (i, 1, o)), cap.decode_memory(s, o))
    d.equal("which is the model chapter's lifetime memory $C = \\sum_{j<l_1} (l_0 + 1 + j)$ with $l_0 = s$, $l_1 = o$",
            dec, ql.RequestType(prompt=s, decode=o).lifetime_memory)

    m = sp.ceiling(s / shat)
    d.say("Prefill part, our reading of $\\hat s + 2\\hat s + \\dots + s$: the prompt is prefilled in "
          "$m = \\lceil s/\\hat s\\rceil$ iterations and holds $\\min(i\\hat s, s)$ tokens after chunk $i$; only "
          "the last chunk can be partial, so the series is $\\hat s, 2\\hat s, \\dots, (m-1)\\hat s$ and then $s$.")
    pre = d.equal("$P(s) = \\sum_{i=1}^{m-1} i\\hat s + s$", sp.Sum(i * shat, (i, 1, m - 1)) + s,
                  cap.prefill_memory(s, shat))
    d.equal("When $\\hat s$ divides $s = q\\hat s$ it is the paper's series $\\hat s(1 + 2 + \\dots + q)$",
            pre.subs(s, q * shat), sp.Sum(i * shat, (i, 1, q)))
    d.substitute("A partial last chunk: $s = 1000$, $\\hat s = 512$ gives $512 + 1000$", pre,
                 {s: 1000, shat: 512}, 1512)
    d.equal("So $g(s, o) = P(s) + o s + o(o+1)/2$", cap.nsz_g(s, o, shat), pre + dec)

    d.say("The 1:1 workload of [NSZ26]: $M = 131000$, $\\hat s = 512$, $s$ and $o$ independent and uniform on "
          "$\\{10, \\dots, 1600\\}$, $\\bar b = 0.0372$ s. Decode part from the moments:")
    law = uniform(10, 1600)
    model = ql.ContinuousBatching(types=[ql.RequestType(prompt=law, decode=law)], kv_capacity=131000)
    e_dec = cap.expect_polynomial(dec, {s: law, o: law})
    d.equal("$E[o s + o(o+1)/2] = E[o]E[s] + (E[o^2] + E[o])/2$", e_dec,
            law.mean**2 + (law.second_moment + law.mean) / 2)
    e_pre = cap.expect_function(lambda v: pre.xreplace({s: v, shat: 512}), law)
    res = cap.nsz_threshold(model, chunk=512, batch_time=0.0372)
    d.equal("$E[g] = E[P(s)] + E[\\text{decode part}]$ (the prefill part summed exactly over the support)",
            res.mean_g, e_pre + e_dec)
    mu_sym, delta_sym = sp.symbols("mu delta")
    M_, b_, Eg = sp.symbols("M \\bar{b} E[g]", positive=True)
    d.substitute("$\\mu = M / (\\bar b\\, E[g])$", M_ / (b_ * Eg),
                 {M_: 131000, b_: sp.Rational("0.0372"), Eg: res.mean_g}, res.mu)
    d.say(f"Numerically $E[g] = {float(res.mean_g):.6f}$, $\\mu = {float(res.mu):.6f}$ requests per second.")
    d.equal("$\\delta = \\max(s + o)/M = 3200/131000$", res.delta, sp.Rational(3200, 131000))
    d.holds("The measured GPU rate 3.387 req/s lies above $\\mu$ ...", sp.Lt(res.mu, MEASURED_RATE, evaluate=False))
    d.holds("... by less than the 10 % the paper reports for its predictions",
            sp.Lt((MEASURED_RATE - res.mu) / MEASURED_RATE, sp.Rational(1, 10), evaluate=False))

    d.say("Without prefill iterations (chunk = None, model chapter's abstraction) $g = C$ and $\\mu \\bar b = M/E[C]$, "
          "the multi-type fixed point $x^*$ of [ADLS26] and the memory Little bound.")
    l0, l1, M = sp.symbols("l_0 l_1 M", positive=True)
    abstract = cap.nsz_threshold(ql.ContinuousBatching(types=[ql.RequestType(l0, l1)], kv_capacity=M))
    d.equal("$\\mu = 2M/(l_1(2 l_0 + l_1 + 1))$", abstract.mu, 2 * M / (l1 * (2 * l0 + l1 + 1)))
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "nsz_threshold.tex")


if __name__ == "__main__":
    print(main(sys.argv))
