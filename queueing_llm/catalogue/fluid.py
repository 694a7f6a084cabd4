r"""Built-in theorems of [ALSW25]'s fluid-guided scheduling: WAIT and Nested WAIT.

Importing the module registers (``evaluate`` keys in braces; extra keys may follow):

``wait-thresholds`` {thresholds, delta_star, per_stage, batch_memory, feasible}
    WAIT's fluid equilibrium: :math:`n_k^* = \lambda_k \Delta^*` per stage, the batch memory
    :math:`M^* = \sum_k n_k^* W_k` and feasibility :math:`M^* \le M`. Option
    ``prefill_stage`` (default False: the simulator's stage memories).
``safety-buffer`` {theta, buffer, reserved_memory, overflow_bound}
    Nested WAIT's buffers at the segment boundaries; options ``boundaries`` (default: the
    distinct decode lengths, or quantiles of a random law), ``overflow`` :math:`\delta`
    (default 1e-3), ``total_limit`` (the authors' rule for integer thresholds; default
    the rounded-up fluid thresholds).
``wait-throughput`` {fluid_throughput, gap}
    The fluid benchmark's throughput :math:`\sum_k \lambda_k` (when feasible) that WAIT
    attains in the fluid limit; ``gap`` is the derived fluid-limit relative gap (0). The
    rate at which the gap closes under heavy-traffic scaling is only measured, never stated.
"""

from __future__ import annotations

import math
from typing import Any

import sympy as sp

from ..errors import ParameterError, describe
from ..model import ContinuousBatching
from ..numbers import is_infinite
from ..theorems import Theorem, theorems
from ..theory import fluid_wait as fw

__all__ = ["WAIT_THRESHOLDS", "SAFETY_BUFFER", "WAIT_THROUGHPUT", "integer_segment_thresholds"]

SOURCE = "[ALSW25] Ao, Luo, Simchi-Levi, Wang, arXiv:2504.11320, sections 3-5"


def _wait_reason(model: ContinuousBatching) -> str | None:
    for k, t in enumerate(model.types):
        if t.arrivals is None:
            return f"types[{k}] has arrivals=None: WAIT's thresholds need arrival rates"
    try:
        fw._rates(model)
    except ParameterError as err:
        return str(err)
    return None


# -- wait-thresholds -------------------------------------------------------------------
def _wait_statement(model: ContinuousBatching, prefill_stage: bool = False) -> sp.Basic:
    res = fw.wait_thresholds(model, prefill_stage)
    parts = [sp.Eq(sp.Symbol(r"\Delta^{*}"), res.delta_star, evaluate=False)]
    parts += [sp.Eq(sp.Symbol(f"n^{{*}}_{{{k + 1}}}"), n, evaluate=False) for k, n in enumerate(res.thresholds)]
    parts.append(sp.Eq(sp.Symbol("M^{*}"), res.batch_memory, evaluate=False))
    if not is_infinite(model.M):
        parts.append(sp.Le(sp.Symbol("M^{*}"), model.M, evaluate=False))
    return sp.And(*parts, evaluate=False)


def _wait_evaluate(model: ContinuousBatching, prefill_stage: bool = False) -> dict:
    res = fw.wait_thresholds(model, prefill_stage)
    out = {"thresholds": res.thresholds, "delta_star": res.delta_star, "per_stage": res.per_stage,
           "batch_memory": res.batch_memory, "feasible": res.feasible, "rates": res.rates, "unit": res.unit}
    if res.reason:
        out["reason"] = res.reason
    return out


WAIT_THRESHOLDS = theorems.register(Theorem(
    name="wait-thresholds",
    title="WAIT's fluid equilibrium: thresholds n_k* = lambda_k Delta*, batch memory M* <= M",
    hypotheses=(
        "Every type has arrivals: ql.PoissonProcess rates per second with a linear iteration time "
        "(Delta* in seconds), or per-iteration laws in a slotted model (Delta* = 1 iteration).",
        "Fluid balance: each iteration admits lambda_k Delta* type-k requests; stage j then holds "
        "n_k* P(l1 > j) of them and the batch lambda_k Delta* W_k tokens of type k.",
        "WAIT admits n_k whenever n_k are waiting; with integer n_k >= n_k* and sum_k n_k W_k <= M "
        "(deterministic lengths) it never evicts.",
    ),
    statement_fn=_wait_statement,
    evaluate_fn=_wait_evaluate,
    source=f"{SOURCE}; fluid balance of the fluid-benchmark theorem",
    applies_fn=_wait_reason,
))


# -- safety-buffer ---------------------------------------------------------------------
def integer_segment_thresholds(seg: fw.Segments, total_limit: Any = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    r"""Integer thresholds and budgets of Nested WAIT's segments.

    Default: :math:`n_s = \max(1, \lceil n_s^* \rceil)` and :math:`N_s = n_s (L_s - L_{s-1})`.
    With ``total_limit`` :math:`N` the authors' rule: :math:`N_s = N c_s \Lambda_s / \sum_{s'}
    c_{s'} \Lambda_{s'}` (:math:`c_s = L_s - L_{s-1}`), :math:`n_s = \lceil N_s / c_s \rceil`.
    """
    lows = (0, *seg.boundaries[:-1])
    counts = [b - a for a, b in zip(lows, seg.boundaries, strict=True)]
    if total_limit is None:
        ns = tuple(max(1, math.ceil(float(n) - 1e-12)) for n in seg.thresholds)
        return ns, tuple(n * c for n, c in zip(ns, counts, strict=True))
    if isinstance(total_limit, bool) or not isinstance(total_limit, (int, float)) or total_limit < 1:
        raise ParameterError(f"total_limit must be a number >= 1 (target batch size), got {describe(total_limit)}")
    weights = [c * float(r) for c, r in zip(counts, seg.rates, strict=True)]
    total = sum(weights)
    budgets = [total_limit * w / total for w in weights]
    ns = tuple(max(1, math.ceil(b / c)) for b, c in zip(budgets, counts, strict=True))
    return ns, tuple(max(n, int(math.floor(b))) for n, b in zip(ns, budgets, strict=True))


def _buffer(model: ContinuousBatching, boundaries: Any = None, overflow: float = 1e-3,
            total_limit: Any = None) -> tuple[fw.Segments, tuple, tuple, fw.SafetyBuffer]:
    seg = fw.segments(model, boundaries)
    ns, budgets = integer_segment_thresholds(seg, total_limit)
    buf = fw.safety_buffer(ns, seg.survival, seg.entry_memory, seg.boundaries, overflow)
    return seg, ns, budgets, buf


def _buffer_statement(model: ContinuousBatching, boundaries: Any = None, overflow: float = 1e-3,
                      total_limit: Any = None) -> sp.Basic:
    seg, ns, _, buf = _buffer(model, boundaries, overflow, total_limit)
    parts = []
    for k, eq in enumerate(buf.equations, start=2):
        theta_k = sp.Symbol(rf"\theta_{{{k}}}")
        parts.append(eq.subs(fw.THETA, theta_k))
        parts.append(sp.Eq(sp.Symbol(f"b_{{{k}}}"), sp.log(sp.Integer(len(ns) - 1) / sp.nsimplify(overflow)) / theta_k,
                           evaluate=False))
    if not parts:
        return sp.Eq(sp.Symbol("b"), 0, evaluate=False)
    return sp.And(*parts, evaluate=False)


def _buffer_evaluate(model: ContinuousBatching, boundaries: Any = None, overflow: float = 1e-3,
                     total_limit: Any = None) -> dict:
    seg, ns, budgets, buf = _buffer(model, boundaries, overflow, total_limit)
    return {"theta": buf.theta, "buffer": buf.buffer, "reserved_memory": buf.reserved_memory,
            "overflow_bound": buf.overflow_bound, "boundaries": seg.boundaries, "thresholds": ns,
            "budgets": budgets, "fluid_thresholds": seg.thresholds, "segment_rates": seg.rates,
            "survival": seg.survival, "overflow": overflow}


SAFETY_BUFFER = theorems.register(Theorem(
    name="safety-buffer",
    title="Nested WAIT's safety buffer: b_k = ln(K/delta)/theta_k with E[exp(theta (Y - n_k))] = 1",
    hypotheses=(
        "Segments of decode stages between boundaries L_1 < ... < L_S; segment s admits n_s per iteration.",
        "Survivors of a cohort of n_{k-1} across segment k-1: Y ~ Binomial(n_{k-1}, q_k), "
        "q_k = P(l1 > L_{k-1} | l1 > L_{k-2}), independent across iterations.",
        "Negative drift n_{k-1} q_k < n_k (otherwise theta_k = 0 and no finite buffer exists).",
        "Union bound over the K = S - 1 boundaries: overflow probability at most delta.",
    ),
    statement_fn=_buffer_statement,
    evaluate_fn=_buffer_evaluate,
    source=f"{SOURCE}; exponential martingale and Doob's inequality",
    applies_fn=_wait_reason,
))


# -- wait-throughput -------------------------------------------------------------------
def _throughput_statement(model: ContinuousBatching) -> sp.Basic:
    res = fw.wait_thresholds(model)
    lam = sp.Add(*res.rates)
    return sp.And(sp.Eq(sp.Symbol("x_{fluid}"), lam, evaluate=False),
                  sp.Eq(sp.Symbol(r"\lim_{\zeta \to \infty} \mathrm{gap}_\zeta / \zeta"), 0, evaluate=False),
                  evaluate=False)


def _throughput_evaluate(model: ContinuousBatching) -> dict:
    res = fw.wait_thresholds(model)
    feasible = res.feasible is True
    out = {"fluid_throughput": sp.Add(*res.rates) if feasible else sp.nan, "gap": sp.Integer(0) if feasible else sp.nan,
           "unit": f"requests per {res.unit}", "feasible": res.feasible}
    if not feasible:
        out["reason"] = res.reason or "the fluid equilibrium needs more memory than M: no policy keeps up"
    return out


WAIT_THROUGHPUT = theorems.register(Theorem(
    name="wait-throughput",
    title="WAIT attains the fluid throughput in the heavy-traffic limit (gap rate measured, not stated)",
    hypotheses=(
        "Heavy-traffic scaling by zeta: arrival rates, M and 1/d1 multiplied by zeta.",
        "Feasible fluid benchmark (M* <= M); WAIT with the fluid thresholds.",
        "Derived: the fluid throughput sum_k lambda_k and a relative gap that vanishes in the fluid limit. "
        "The rate of the gap in zeta is only measured (ql.scheduling.measure_gap).",
    ),
    statement_fn=_throughput_statement,
    evaluate_fn=_throughput_evaluate,
    source=SOURCE,
    applies_fn=_wait_reason,
))
