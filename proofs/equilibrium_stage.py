"""Derivation of the equilibrium stage law of a saturated batch (``equilibrium-stage``).

Usage: ``python proofs/equilibrium_stage.py [OUTPUT_DIR]`` (default ``docs/generated/proofs``);
writes ``equilibrium_stage.tex``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.theory import queue as tq

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "generated" / "proofs"


def derive() -> Derivation:
    d = Derivation("Equilibrium stage law of a saturated batch (equilibrium-stage)",
                   ql.theorems["equilibrium-stage"].source)
    l0, l1, B, q = sp.symbols("l_0 l_1 B q", positive=True)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    d.say("A slot of a saturated batch is a renewal process; its member's stage is the age of the current "
          "cycle, whose equilibrium law is $P(\\mathrm{stage} = j) = P(l_1 > j)/E[l_1]$ (Feller XIII.10).")
    det = ql.ContinuousBatching([ql.RequestType(prompt=l0, decode=l1)], batch_cap=B, policy="fcfs_cap")
    d.equal("deterministic $l_1$: uniform on $0..l_1-1$", tq.stage_probability(det, 0), 1 / l1)
    d.equal("the law sums to 1 because $\\sum_j P(l_1 > j) = E[l_1]$", sp.Sum(1 / l1, (j, 0, l1 - 1)).doit(), 1)
    res = tq.equilibrium_stage(det)
    d.equal("mean stage $F''(1)/(2F'(1)) = (l_1 - 1)/2$", res.mean_stage, (l1 - 1) / 2)
    kv = sp.Sum((l0 + 1 + j) / l1, (j, 0, l1 - 1)).doit()
    d.equal("mean KV of a member $\\sum_j w_j P(\\mathrm{stage}=j)$ with $w_j = l_0 + 1 + j$", res.per_member_kv,
            sp.simplify(kv))
    d.equal("$= C/l_1$, the lifetime memory per iteration", res.per_member_kv,
            sp.simplify(det.types[0].lifetime_memory / l1))
    d.equal("so a full batch holds $B(l_0 + (l_1 + 1)/2)$ tokens", res.mean_kv, B * (l0 + (l1 + 1) / 2))
    geo = ql.ContinuousBatching([ql.RequestType(prompt=l0, decode=ql.Geometric(q))], batch_cap=B, policy="fcfs_cap")
    d.equal("geometric $l_1$: $P(\\mathrm{stage} = j) = q(1-q)^j$ (memoryless)", tq.stage_probability(geo, j),
            q * (1 - q) ** j)
    d.equal("mean stage $(1-q)/q$", tq.equilibrium_stage(geo).mean_stage, (1 - q) / q)
    two = ql.ContinuousBatching([ql.RequestType(prompt=3, decode=ql.FinitePMF({2: sp.Rational(1, 2),
                                                                               4: sp.Rational(1, 2)}))],
                                batch_cap=8, policy="fcfs_cap")
    d.equal("decode lengths 2 and 4: mean stage $E[l_1(l_1-1)]/(2E[l_1]) = 7/6$",
            tq.equilibrium_stage(two).mean_stage, sp.Rational(7, 6))
    d.equal("mean KV of the batch $8 \\cdot E[C]/E[l_1] = 8 \\cdot (25/2)/3$", tq.equilibrium_stage(two).mean_kv,
            8 * two.mean_lifetime_memory / 3)
    return d


def main(argv: list[str]) -> Path:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    return derive().write(out / "equilibrium_stage.tex")


if __name__ == "__main__":
    print(main(sys.argv))
