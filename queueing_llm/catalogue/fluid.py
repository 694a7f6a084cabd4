r"""Built-in theorems of [ALSW25]'s fluid-guided scheduling: WAIT and Nested WAIT.

Importing the module registers (``evaluate`` keys in braces; extra keys may follow):

``wait-thresholds`` {thresholds, delta_star, per_stage, batch_memory, feasible}
    WAIT's fluid equilibrium: :math:`n_k^* = \lambda_k \Delta^*` per stage, the batch memory
    :math:`M^* = \sum_k n_k^* W_k` and feasibility :math:`M^* \le M`. Option
    ``prefill_stage`` (default False: the simulator's stage memories).
``safety-buffer`` {theta, buffer, reserved_memory, overflow_bound}
    Nested WAIT's buffers at the segment boundaries; options ``boundaries`` (default: the
    distinct decode lengths up to four of them, else quantiles of the pooled decode law),
    ``overflow`` :math:`\delta` (default 1e-3), ``total_limit`` (the authors' rule for
    integer thresholds; default the rounded-up fluid thresholds, raised where a boundary
    would lack drift or keep too much memory waiting: :func:`integer_segment_thresholds`).
    An overloaded model (:math:`\rho \ge 1`) is answered with ``feasible`` False, infinite
    buffers and the ``reason``. Its check is an exact (Clopper-Pearson) binomial bound over
    iterations spaced :func:`overflow_spacing` apart.
``wait-throughput`` {fluid_throughput, gap}
    The fluid benchmark's throughput :math:`\sum_k \lambda_k` (when feasible); ``gap`` is the
    fluid model's gap :math:`\sum_k \lambda_k - \sum_k n_k^*/\Delta^*`, computed (0: derived at
    every scaling in ``proofs/wait_throughput.py``). The stochastic gap under heavy-traffic
    scaling and its growth in :math:`\zeta` are only measured (``heavy_traffic.measure_gap``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp

from ..checks import judge, judge_exact, judge_upper, mean_interval, numeric, predicted, runs_list
from ..errors import ModelError, ParameterError, describe
from ..model import ContinuousBatching
from ..numbers import is_infinite
from ..policies import NestedWait, Wait
from ..runs import open_run
from ..stats import DEFAULT_BATCHES, DEFAULT_LEVEL
from ..theorems import Theorem, theorems
from ..theory import fluid_wait as fw
from ..verdict import Verdict

__all__ = ["WAIT_THRESHOLDS", "SAFETY_BUFFER", "SAFETY_BUFFER_RUN", "WAIT_THROUGHPUT", "integer_segment_thresholds",
           "overflow_spacing", "THRESHOLD_STEPS"]

SOURCE = "[ALSW25] Ao, Luo, Simchi-Levi, Wang, arXiv:2504.11320, sections 3-5"


def _wait_reason(model: ContinuousBatching) -> str | None:
    if is_infinite(model.M):
        return "kv_capacity M is infinite: memory never binds, and WAIT's thresholds are about memory"
    for k, t in enumerate(model.types):
        if t.arrivals is None:
            return f"types[{k}] has arrivals=None: WAIT's thresholds need arrival rates"
    try:
        fw._rates(model)
    except ParameterError as err:
        return str(err)
    return None


def _buffer_reason(model: ContinuousBatching) -> str | None:
    reason = _wait_reason(model)
    if reason is None and model.is_symbolic:
        return "the safety buffer solves its equation numerically: give the model numeric parameters"
    return reason


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
           "batch_memory": res.batch_memory, "feasible": res.feasible, "rates": res.rates}
    if res.reason:
        out["reason"] = res.reason
    return out


def _fluid_wait_policy(model: ContinuousBatching) -> Wait:
    from ..scheduling import fluid_wait  # above the registry: evaluated when the run is built

    return fluid_wait(model)


def _fluid_nested_policy(model: ContinuousBatching) -> NestedWait:
    from ..scheduling import fluid_nested_wait

    return fluid_nested_wait(model)


def _wait_policy_of(runs: list, kind: type, name: str) -> Any:
    policies = {r.model.policy for r in runs}
    if len(policies) != 1 or not isinstance(next(iter(policies)), kind):
        return None
    return next(iter(policies))


def _wait_check(model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = DEFAULT_LEVEL,
                batches: int = DEFAULT_BATCHES, quantity: str = "throughput") -> Verdict:
    r"""A WAIT run against the fluid equilibrium.

    ``quantity="throughput"`` (two-sided CI): completions per iteration (per second in wall-clock
    runs: completions over elapsed time, a ratio interval) against :math:`\sum_k \lambda_k`, the
    predicted rates. ``quantity="per_stage"`` (exact): the largest stage count of each type in
    the run equals the threshold :math:`\max(1, \lceil n_k^* \rceil)` the fluid value rounds to
    (WAIT admits cohorts of exactly that size), and the run never evicts. Its hypothesis is
    that the rounded batch fits, :math:`\sum_k n_k W_k \le M` with the run's integer
    thresholds (:func:`queueing_llm.scheduling.rounded_batch_memory`); when it does not
    (default model: :math:`2 \times 1220 = 2440 > 2000`) the verdict is "does not apply",
    with the reason. Runs under another policy, or a model without an equilibrium, do
    not apply.
    """
    runs = runs_list(trajectory)
    policy = _wait_policy_of(runs, Wait, "wait-thresholds")
    if policy is None:
        return Verdict.not_applicable("wait-thresholds", quantity, "the runs are not WAIT runs (ql.fluid_wait(model))")
    if prediction.get("feasible") is not True:
        return Verdict.not_applicable("wait-thresholds", quantity,
                                      prediction.get("reason", "the fluid equilibrium needs more than M"))
    if quantity == "throughput":
        rates = [numeric(r, "rate") for r in predicted(prediction, "rates", "wait-thresholds")]
        if model.is_wall_clock:
            from ..stats import ratio_ci

            def per_run(r: Any) -> tuple[float, float]:
                return float(np.asarray(r.completions).sum()), float(np.asarray(r.time)[-1])

            if len(runs) > 1:
                pairs = [per_run(r) for r in runs]
                iv = ratio_ci([p[0] for p in pairs], [p[1] for p in pairs], level)
            else:
                from ..stats import batch_totals

                r = runs[0]
                dur = np.diff(np.asarray(r.time, dtype=float), prepend=0.0)
                done = np.asarray(r.completions, dtype=float).sum(axis=1)
                num, den = batch_totals(done, batches), batch_totals(dur, batches)
                iv = ratio_ci(num, den, level)
            unit = "requests per second"
        else:
            iv = mean_interval(runs, lambda r: np.asarray(r.completions, dtype=float).sum(axis=1), level, batches)
            unit = "requests per iteration"
        return judge("wait-thresholds", "throughput", sum(rates), iv, {"policy": str(policy)}).replace(unit=unit)
    if quantity == "per_stage":
        from ..scheduling import rounded_batch_memory

        need = rounded_batch_memory(model, policy.thresholds)
        M = numeric(model.M, "kv_capacity")
        if need > M:
            return Verdict.not_applicable(
                "wait-thresholds", quantity,
                f"the rounded batch memory sum_k n_k W_k = {need:.6g} of the run's thresholds "
                f"{dict(policy.thresholds)} exceeds M = {M:.6g}: the hypothesis of the no-eviction claim "
                "(the rounded batch fits in M) is false").replace(unit="requests per stage")
        fluid = [numeric(n, "n*") for n in predicted(prediction, "thresholds", "wait-thresholds")]
        expected = [max(1, math.ceil(n - 1e-12)) for n in fluid]
        measured = [int(max(np.asarray(r.batch)[:, k, :].max() for r in runs)) for k in range(model.K)]
        evictions = int(sum(np.asarray(r.evictions).sum() for r in runs))
        details = {"fluid": fluid, "thresholds": dict(policy.thresholds), "evictions": evictions}
        verdicts = [judge_exact("wait-thresholds", f"per_stage[{k}]", e, m, details,
                                what=f"the largest stage count of type {k}")
                    for k, (e, m) in enumerate(zip(expected, measured, strict=True))]
        v = next((x for x in verdicts if not x.holds), verdicts[0])
        if v.holds and evictions:
            v = v.replace(holds=False, reason=v.reason + f"; but the run evicted {evictions} times")
        return v.replace(unit="requests per stage")
    raise ModelError(f"quantity must be 'throughput' or 'per_stage', got {describe(quantity)}")


WAIT_THRESHOLDS = theorems.register(Theorem(
    name="wait-thresholds",
    title="WAIT's fluid equilibrium: thresholds n_k* = lambda_k Delta*, batch memory M* <= M",
    hypotheses=(
        "Every type has arrivals: ql.PoissonProcess rates per second with a linear iteration time "
        "(Delta* in seconds), or per-iteration laws in a slotted model (Delta* = 1 iteration).",
        "Fluid balance: each iteration admits lambda_k Delta* type-k requests; stage j then holds "
        "n_k* P(l1 > j) of them and the batch lambda_k Delta* W_k tokens of type k.",
        "WAIT admits n_k whenever n_k are waiting; with integer n_k >= n_k* and sum_k n_k W_k <= M "
        "(deterministic lengths) it never evicts. The per_stage check does not apply to a run whose rounded "
        "batch sum_k n_k W_k exceeds M (ql.fluid_wait warns with ql.scheduling.ThresholdWarning).",
    ),
    statement_fn=_wait_statement,
    evaluate_fn=_wait_evaluate,
    check_fn=_wait_check,
    source=f"{SOURCE}; fluid balance of the fluid-benchmark theorem",
    applies_fn=_wait_reason,
    runs=(open_run(20_000, policy=_fluid_wait_policy, label="open, fluid WAIT"),),
    comparison="a WAIT run with the fluid thresholds rounded up: completions per iteration (or per second) "
               "against sum_k lambda_k, two-sided CI; option quantity='per_stage': the largest stage count "
               "equals the rounded threshold and nothing is evicted, exact",
))


# -- safety-buffer ---------------------------------------------------------------------
def integer_segment_thresholds(seg: fw.Segments, total_limit: Any = None, overflow: float = 1e-3,
                               memory_budget: float = math.inf) -> tuple[tuple[int, ...], tuple[int, ...]]:
    r"""Integer thresholds and budgets of Nested WAIT's segments.

    Default: segment by segment, the smallest admissible value is
    :math:`\max(1, \lceil n_s^* \rceil)`, raised where needed to the smallest integer above
    the mean inflow :math:`n_{s-1} q_s` of survivors (rounding each segment up on its own can
    leave a boundary without negative drift, and then no finite buffer exists). Among that
    value and the next :data:`THRESHOLD_STEPS` integers, :math:`n_s` is the smallest whose
    memory left waiting at the boundary, :math:`(b_s + n_s - 1) \bar m_s`
    (:math:`b_s = \ln(K/\delta)/\theta_s` the buffer, :math:`n_s - 1` the requests that wait
    normally, :math:`\bar m_s` the tokens of a request waiting there), is within
    ``memory_budget`` (per boundary; ``safety-buffer`` gives each of the :math:`K` boundaries
    :math:`(M - M^*)/(2K)`, half of what the fluid batch leaves free), else the one that
    minimises it: a drift :math:`n_{s-1} q_s - n_s` close to 0 makes :math:`\theta_s` small
    and the buffer huge (Azure conversation trace at 0.8 of its fluid limit: :math:`n = 2`
    against an inflow of 1.85 needs 25 requests of buffer, :math:`n = 3` about 5), so one
    more request per release is cheaper. Larger thresholds make survivors wait longer at
    the entry for a release, hence the smallest that fits. :math:`N_s = n_s (L_s - L_{s-1})`.
    With ``total_limit`` :math:`N` the
    authors' rule: :math:`N_s = N c_s \Lambda_s / \sum_{s'} c_{s'} \Lambda_{s'}`
    (:math:`c_s = L_s - L_{s-1}`), :math:`n_s = \lceil N_s / c_s \rceil` (not adjusted).
    """
    lows = (0, *seg.boundaries[:-1])
    counts = [b - a for a, b in zip(lows, seg.boundaries, strict=True)]
    if total_limit is None:
        K = len(seg.boundaries) - 1
        ns: list[int] = []
        for s, n in enumerate(seg.thresholds):
            value = max(1, math.ceil(float(n) - 1e-12))
            if s > 0:
                q = float(seg.survival[s])
                inflow = ns[-1] * q
                if inflow >= value:
                    value = math.floor(inflow) + 1
                size = float(seg.entry_memory[s]) if not sp.sympify(seg.entry_memory[s]).has(sp.nan) else 0.0

                def cost(v: int, m: int = ns[-1], q: float = q, size: float = size) -> float:
                    th = fw._theta(m, q, v)
                    b = 0.0 if math.isinf(th) else (math.inf if th == 0 else math.log(K / overflow) / th)
                    return (b + v - 1) * size

                options = range(value, value + THRESHOLD_STEPS + 1)
                value = next((v for v in options if cost(v) <= memory_budget), min(options, key=cost))
            ns.append(value)
        return tuple(ns), tuple(n * c for n, c in zip(ns, counts, strict=True))
    if isinstance(total_limit, bool) or not isinstance(total_limit, (int, float)) or total_limit < 1:
        raise ParameterError(f"total_limit must be a number >= 1 (target batch size), got {describe(total_limit)}")
    weights = [c * float(r) for c, r in zip(counts, seg.rates, strict=True)]
    total = sum(weights)
    budgets = [total_limit * w / total for w in weights]
    nt = tuple(max(1, math.ceil(b / c)) for b, c in zip(budgets, counts, strict=True))
    return nt, tuple(max(n, int(math.floor(b))) for n, b in zip(nt, budgets, strict=True))


THRESHOLD_STEPS = 4
"""How many integers above the smallest admissible threshold :func:`integer_segment_thresholds`
tries when it minimises the memory left waiting at a boundary."""


def _buffer(model: ContinuousBatching, boundaries: Any = None, overflow: float = 1e-3,
            total_limit: Any = None) -> tuple[fw.Segments, tuple, tuple, fw.SafetyBuffer]:
    if not 0 < overflow < 1:
        raise ParameterError(f"overflow must be a probability in (0, 1), got {describe(overflow)}")
    seg = fw.segments(model, boundaries)
    budget = math.inf
    if len(seg.boundaries) > 1 and not is_infinite(model.M) and not model.is_symbolic:
        need = float(fw.wait_thresholds(model).batch_memory)
        budget = max(0.0, (float(model.M) - need) / (2 * (len(seg.boundaries) - 1)))
    ns, budgets = integer_segment_thresholds(seg, total_limit, overflow, budget)
    buf = fw.safety_buffer(ns, seg.survival, seg.entry_memory, seg.boundaries, overflow)
    return seg, ns, budgets, buf


def _buffer_statement(model: ContinuousBatching, boundaries: Any = None, overflow: float = 1e-3,
                      total_limit: Any = None) -> sp.Basic:
    if fw.wait_thresholds(model).reason:  # overload: no equilibrium, no finite buffer
        return sp.Eq(sp.Symbol("b"), sp.oo, evaluate=False)
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
    r"""The buffers; an overloaded model (:math:`\rho \ge 1`, no fluid equilibrium) is answered
    with infinite buffers, ``feasible`` False and the ``reason``, never an exception."""
    res = fw.wait_thresholds(model)
    if res.reason:
        if not 0 < overflow < 1:
            raise ParameterError(f"overflow must be a probability in (0, 1), got {describe(overflow)}")
        return {"theta": (), "buffer": (), "reserved_memory": math.inf, "overflow_bound": math.nan,
                "boundaries": (), "thresholds": (), "budgets": (), "fluid_thresholds": res.thresholds,
                "segment_rates": (), "survival": (), "entry_memory": (), "overflow": overflow,
                "feasible": False, "reason": res.reason}
    seg, ns, budgets, buf = _buffer(model, boundaries, overflow, total_limit)
    return {"theta": buf.theta, "buffer": buf.buffer, "reserved_memory": buf.reserved_memory,
            "overflow_bound": buf.overflow_bound, "boundaries": seg.boundaries, "thresholds": ns,
            "budgets": budgets, "fluid_thresholds": seg.thresholds, "segment_rates": seg.rates,
            "survival": seg.survival, "entry_memory": seg.entry_memory, "overflow": overflow}


def _entry_level(run: Any, entry: int) -> np.ndarray:
    """Requests at a segment's entry stage after admission (before its segment takes its share)."""
    b = np.asarray(run.batch)
    return b[:, :, entry].sum(axis=1) if entry < b.shape[2] else np.zeros(b.shape[0], dtype=np.int64)


def overflow_spacing(policy: NestedWait, survival: Any) -> int:
    r"""Iterations between the overflow indicators the ``safety-buffer`` check treats as independent.

    :math:`g = \max_s (L_s - L_{s-1}) + \max_k \lceil \sigma_k^2 / \mu_k^2 \rceil`: the longest
    time a cohort spends executing one segment (after it the survivors reaching a boundary
    come from cohorts admitted later) plus the relaxation time of the slowest boundary walk,
    whose increments :math:`Y - n_k`, :math:`Y \sim \mathrm{Bin}(n_{k-1}, q_k)`, have mean
    :math:`\mu_k = n_{k-1} q_k - n_k < 0` and variance :math:`\sigma_k^2 = n_{k-1} q_k (1 - q_k)`
    (a reflected walk forgets its level in about :math:`\sigma^2/\mu^2` steps). A boundary
    that cannot overflow (:math:`n_{k-1} \le n_k`) adds nothing.
    """
    longest = max(b - a for a, b in policy.segments)
    relax = 0
    for k in range(1, len(policy.thresholds)):
        m, n = policy.thresholds[k - 1], policy.thresholds[k]
        q = float(survival[k]) if k < len(survival) else 1.0
        mu = m * q - n
        if m <= n or q <= 0 or mu >= 0:
            continue
        relax = max(relax, math.ceil(m * q * (1 - q) / (mu * mu)))
    return int(longest + relax)


def _buffer_check(model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = DEFAULT_LEVEL,
                  batches: int = DEFAULT_BATCHES) -> Verdict:
    r"""Frequency of iterations in which some boundary inventory exceeds its buffer, against
    the predicted overflow bound (one-sided, exact binomial upper test).

    At boundary :math:`k` the run's level is the number of members at the entry stage
    :math:`L_{k-1}` after admission, before the segment takes its :math:`n_k`; the event is
    that some level exceeds :math:`b_k + 2 n_k - 1` (the buffer over the requests that wait
    normally, see :func:`queueing_llm.theory.fluid_wait.safety_buffer`) with the predicted
    buffers :math:`b_k`. The bound is on the stationary probability of the event, so the
    data are iterations: after a warm-up of a tenth of each run, the indicators at
    iterations :math:`g` apart (:func:`overflow_spacing`) are treated as independent
    Bernoulli trials, pooled over the runs (independent replications, the declared runs, or
    one run); :math:`k` overflows among :math:`n` trials give the exact Clopper-Pearson
    interval (:func:`queueing_llm.stats.binomial_ci`), whose ends stay in :math:`[0, 1]`.
    Iterations rather than replications: one indicator per replication would need thousands
    of replications to see an event of probability :math:`10^{-3}`; consecutive iterations
    are not independent (an excess persists), hence the spacing. The verdict fails iff the
    interval lies entirely above the bound. The bound is loose by the constant of the
    Cramer-Lundberg asymptotics: the test detects a buffer made too small by a factor
    (halving it raises the frequency to about :math:`\sqrt\delta`), not one too large.
    """
    from ..stats import Interval, binomial_ci

    runs = runs_list(trajectory)
    policy = _wait_policy_of(runs, NestedWait, "safety-buffer")
    if policy is None:
        return Verdict.not_applicable("safety-buffer", "overflow", "the runs are not Nested WAIT runs")
    if prediction.get("reason"):
        return Verdict.not_applicable("safety-buffer", "overflow", prediction["reason"])
    bounds = list(predicted(prediction, "boundaries", "safety-buffer"))
    if list(policy.boundaries) != bounds:
        return Verdict.not_applicable("safety-buffer", "overflow",
                                      f"the runs use boundaries {list(policy.boundaries)}, the prediction {bounds}")
    buffers = [float(b) for b in predicted(prediction, "buffer", "safety-buffer")]
    delta = numeric(predicted(prediction, "overflow_bound", "safety-buffer"), "overflow_bound")
    if not buffers:
        return Verdict.not_applicable("safety-buffer", "overflow", "one segment: no boundary, no buffer")
    spacing = overflow_spacing(policy, prediction.get("survival", ()))

    def overflow(r: Any) -> np.ndarray:
        worst = np.zeros(np.asarray(r.memory).shape[0], dtype=bool)
        for k, b in enumerate(buffers, start=1):
            worst |= _entry_level(r, policy.boundaries[k - 1]) > b + 2 * policy.thresholds[k] - 1
        return worst

    events = trials = every = every_n = 0
    for r in runs:
        ev = overflow(r)
        start = ev.size // 10
        sample = ev[start::spacing]
        events += int(sample.sum())
        trials += int(sample.size)
        every += int(ev[start:].sum())
        every_n += int(ev[start:].size)
    if trials < 1:
        return Verdict.not_applicable("safety-buffer", "overflow",
                                      f"the runs are too short for one trial at spacing {spacing}")
    cp = binomial_ci(events, trials, level)
    iv = Interval(cp.estimate, cp.low, cp.high, level,
                  f"Clopper-Pearson, iterations {spacing} apart, {len(runs)} run{'s' if len(runs) > 1 else ''}",
                  trials, 0)
    details = {"buffers": buffers, "spacing": spacing, "overflows": events, "trials": trials,
               "frequency_all_iterations": every / every_n if every_n else math.nan}
    v = judge_upper("safety-buffer", "overflow", delta, iv, details)
    return v.replace(unit="fraction of iterations")


SAFETY_BUFFER_RUN = open_run(
    5000, replications=4, policy=_fluid_nested_policy, label="open, fluid Nested WAIT",
    replications_reason="an overflow is a rare event (delta = 1e-3): the check pools iterations spaced "
                        "overflow_spacing apart into one exact binomial bound, and four independent replications "
                        "of the same total length give independent starts and as many trials as one run of 20,000")
"""The declared runs of ``safety-buffer``: 4 independent replications of 5,000 iterations (the
cost of one 20,000-iteration run)."""

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
    check_fn=_buffer_check,
    source=f"{SOURCE}; exponential martingale and Doob's inequality",
    applies_fn=_buffer_reason,
    runs=(SAFETY_BUFFER_RUN,),
    comparison="4 independent replications of 5,000 iterations under Nested WAIT with the fluid thresholds and "
               "buffers: frequency of iterations in which some boundary inventory exceeds its buffer against "
               "the overflow bound, one-sided: exact binomial (Clopper-Pearson) interval over iterations spaced "
               "g apart (overflow_spacing) after a tenth of warm-up, pooled over the replications",
))


# -- wait-throughput -------------------------------------------------------------------
def _fluid_gap(res: Any) -> sp.Expr | None:
    r"""The fluid model's gap :math:`\sum_k \lambda_k - \sum_k n_k^*/\Delta^*` (WAIT completes :math:`n_k^*`
    type-:math:`k` requests per iteration of length :math:`\Delta^*`), computed from the fluid
    equilibrium (``proofs/wait_throughput.py`` derives that it is 0 at every scaling); None when
    :math:`\Delta^*` is not finite."""
    delta = sp.sympify(res.delta_star)
    if delta.is_finite is False or delta.has(sp.oo, sp.zoo, sp.nan):
        return None
    return sp.simplify(sp.Add(*res.rates) - sp.Add(*[n / res.delta_star for n in res.thresholds]))


def _throughput_statement(model: ContinuousBatching) -> sp.Basic:
    r""":math:`x_{fluid} = \sum_k \lambda_k` and the fluid gap :math:`\sum_k \lambda_k - \sum_k n_k^*/\Delta^*`
    (computed). No statement about the stochastic gap or its limit: that is only measured."""
    res = fw.wait_thresholds(model)
    lam = sp.Add(*res.rates)
    x_fluid = sp.Eq(sp.Symbol("x_{fluid}"), lam, evaluate=False)
    gap = _fluid_gap(res)
    if gap is None:
        return x_fluid
    return sp.And(x_fluid, sp.Eq(sp.Symbol(r"\mathrm{gap}^{\mathrm{fluid}}"), gap, evaluate=False), evaluate=False)


def _throughput_evaluate(model: ContinuousBatching) -> dict:
    r"""``fluid_throughput``: :math:`\sum_k \lambda_k` when the fluid benchmark is feasible, else the
    fluid capacity: the rates scaled by the largest common factor that keeps the benchmark
    feasible (:math:`M/M^*` in a slotted model; the fluid benchmark's
    :math:`M/(d_0 + d_1 M) / \sum_k \lambda_k W_k` with a linear iteration time). ``gap``: the fluid
    model's gap :func:`_fluid_gap` (0), never a statement about the stochastic system."""
    res = fw.wait_thresholds(model)
    total = sp.Add(*res.rates)
    feasible = res.feasible is True
    gap = _fluid_gap(res)
    out: dict[str, Any] = {"feasible": res.feasible, "gap": sp.Integer(0) if gap is None else gap}
    if feasible:
        out["fluid_throughput"] = total
        return out
    if res.unit == "second":
        fb = theorems["fluid-benchmark"].evaluate(model)
        factor = fb["capacity_bound"] / fb["load"]
    else:
        factor = model.M / res.batch_memory
    out["fluid_throughput"] = sp.simplify(total * sp.Min(1, factor))
    out["reason"] = res.reason or "the fluid equilibrium needs more memory than M: the fluid throughput is capped"
    return out


def _throughput_check(model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = DEFAULT_LEVEL,
                      batches: int = DEFAULT_BATCHES) -> Verdict:
    r"""A WAIT run's completions per unit of time against the fluid throughput (two-sided CI).

    Delegates the measurement to ``wait-thresholds``' throughput estimator (completions per
    iteration, or per second over the elapsed time in wall-clock runs), with the theory value
    ``fluid_throughput`` taken from this theorem's prediction. An infeasible benchmark does not
    apply (no finite fluid throughput to attain).
    """
    fluid = prediction.get("fluid_throughput")
    if prediction.get("feasible") is not True or fluid is None:
        return Verdict.not_applicable("wait-throughput", "fluid_throughput",
                                      prediction.get("reason", "the fluid benchmark is infeasible"))
    total = numeric(fluid, "fluid_throughput")
    v = _wait_check(model, trajectory, {"rates": [total], "feasible": True}, level, batches, "throughput")
    if v.holds is None:
        return v
    return v.replace(theorem="wait-throughput", quantity="fluid_throughput")


WAIT_THROUGHPUT = theorems.register(Theorem(
    name="wait-throughput",
    title="WAIT's fluid throughput equals the fluid benchmark's at every scaling (stochastic gap measured, not stated)",
    hypotheses=(
        "Heavy-traffic scaling by zeta: arrival rates, M and 1/d1 multiplied by zeta.",
        "Feasible fluid benchmark (M* <= M); WAIT with the fluid thresholds.",
        "Derived (proofs/wait_throughput.py): under the scaling rho, Delta* are unchanged and n_k*, M* scale "
        "by zeta; in the fluid equilibrium WAIT completes sum_k n_k*/Delta* = sum_k lambda_k, so the fluid "
        "model's gap is 0 at every zeta. Not derived: the stochastic system's gap and its growth in zeta, "
        "only measured (queueing_llm.heavy_traffic.measure_gap; no rate or limit is stated).",
    ),
    statement_fn=_throughput_statement,
    evaluate_fn=_throughput_evaluate,
    check_fn=_throughput_check,
    source=SOURCE,
    applies_fn=_wait_reason,
    runs=(open_run(20_000, policy=_fluid_wait_policy, label="open, fluid WAIT"),),
    comparison="a WAIT run with the fluid thresholds: completions per unit of time against the fluid "
               "throughput sum_k lambda_k, two-sided CI (the heavy-traffic gap is measured separately)",
))
