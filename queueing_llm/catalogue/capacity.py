r"""Built-in theorems of MODEL.md section 5, family C (capacity with memory and time).

Importing the module registers three theorems:

``memory-little``
    Memory Little's law, mean KV in use = throughput :math:`\times E[C]`;
    ``evaluate`` keys ``mean_kv`` (and ``throughput``, ``lifetime_memory``,
    ``mean_iteration_time``, ``necessary``).
``fluid-benchmark``
    The [ALSW25] fluid benchmark with linear iteration time; keys ``rho``,
    ``delta_star``, ``thresholds``, ``memory_need``, ``feasible`` (and ``load``,
    ``capacity_bound``, ``lifetimes``); option ``prefill_stage`` (default False: MODEL.md's
    stage memories :math:`w_j = l_0 + 1 + j`, the simulator's convention; True:
    [ALSW25]'s convention with a prefill stage, as in REFERENCES.md section 2).
``nsz-threshold``
    The [NSZ26] stability threshold; keys ``mu``, ``delta`` (and ``mean_g``,
    ``stable_rate``); options ``chunk`` (prefill chunk size :math:`\hat s`, default None:
    prefill abstracted as in MODEL.md) and ``batch_time`` (:math:`\bar b` seconds per
    batch, default 1: :math:`\mu` per iteration).

The checks read the arrays of a simulated trajectory (or a list of independent runs);
they never simulate. The formulas come from :mod:`queueing_llm.theory.capacity`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from ..checks import default_warmup, judge, mean_interval, numeric, runs_list
from ..errors import ModelError, describe
from ..model import ContinuousBatching, PoissonProcess, RequestType
from ..numbers import is_infinite
from ..stats import DEFAULT_BATCHES, DEFAULT_LEVEL, Interval, rate_ci
from ..theorems import Theorem, theorems
from ..theory import capacity as cap
from ..verdict import Verdict

__all__ = ["MEMORY_LITTLE", "FLUID_BENCHMARK", "NSZ_THRESHOLD"]

SOURCE_LITTLE = "Little (1961) on token-iterations; [NSZ26, section 3]; MODEL.md section 5 C.1"
SOURCE_FLUID = "[ALSW25, section 3] (fluid benchmark, linear iteration time); REFERENCES.md section 2"
SOURCE_NSZ = "[NSZ26, section 3] (memory stability threshold); REFERENCES.md section 3"


# ----------------------------------------------------------------------------------
# helpers shared by the checks
# ----------------------------------------------------------------------------------








def _evictions(runs: list) -> int:
    return int(sum(int(np.asarray(r.evictions).sum()) for r in runs))


def _realized_lifetime() -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    r""":math:`C(l_0, l_1) = \sum_{j<l_1} w_j` as a NumPy function, from the derived polynomial."""
    l0, l1 = cap.L0, cap.L1
    expr = cap.lifetime_memory(RequestType(prompt=l0, decode=l1))
    return sp.lambdify((l0, l1), expr, "numpy")


def _completed_lifetime(run: Any) -> np.ndarray:
    """Per iteration, the total lifetime memory C of the requests completing in it."""
    req = run.requests
    done = np.asarray(req.completion) >= 0
    c = _realized_lifetime()(np.asarray(req.prompt, dtype=float)[done], np.asarray(req.decode, dtype=float)[done])
    n = int(np.asarray(run.memory).shape[0])
    return np.bincount(np.asarray(req.completion)[done].astype(np.int64), weights=c, minlength=n)[:n]


# ----------------------------------------------------------------------------------
# memory-little
# ----------------------------------------------------------------------------------
def _little_applies(model: ContinuousBatching) -> str | None:
    for k, t in enumerate(model.types):
        if t.arrivals is None:
            return f"types[{k}] has arrivals=None (saturated-only model); the law needs an arrival rate"
    return None


def _little_statement(model: ContinuousBatching) -> sp.Basic:
    res = cap.memory_little(model)
    return sp.Eq(sp.Symbol("Zbar"), res.mean_kv)


def _little_evaluate(model: ContinuousBatching) -> dict:
    res = cap.memory_little(model)
    out = {
        "mean_kv": res.mean_kv,
        "throughput": res.throughput,
        "lifetime_memory": res.lifetime_memory,
        "mean_iteration_time": res.mean_iteration_time,
        "necessary": res.necessary,
    }
    if res.reason:
        out["reason"] = res.reason
    return out


def _little_check(
    model: ContinuousBatching,
    trajectory: Any, prediction: dict,
    level: float = DEFAULT_LEVEL,
    batches: int = DEFAULT_BATCHES,
    against: str = "throughput",
) -> Verdict:
    r"""Mean memory per iteration against throughput :math:`\times` lifetime memory.

    ``against="throughput"`` (default), the law itself: the series
    :math:`D_n = Z_n - \sum_{i \text{ completes at } n} C_i` (memory after admission minus
    the realised lifetime memory of the requests completing in iteration :math:`n`) has
    long-run mean 0 in any run without evictions: summed over a run, both terms count
    the same token-iterations up to the requests in flight at the ends. Its interval
    (batch means, or replications) is shifted by the mean of the second term to give an
    interval for the mean memory; the law holds iff that mean lies inside. Averages are
    per iteration, not per second (a time average weights long iterations more and has
    another mean), and the realised :math:`C_i` are used rather than :math:`E[C]` times the
    completions (same mean in a stable run, less noise, and still right when completions
    are a length-biased sample, e.g. in overload). Evictions waste token-iterations and
    break the law; they are counted in ``details``.

    ``against="arrival_rate"``: the prediction :math:`\Lambda E[C]` of ``evaluate`` against
    the interval of the mean memory (needs a stable run).
    """
    if against not in ("throughput", "arrival_rate"):
        raise ModelError(f"against must be 'throughput' or 'arrival_rate', got {describe(against)}")
    runs = runs_list(trajectory)
    evictions = _evictions(runs)
    details = {"evictions": evictions, "mean_kv_predicted": numeric(cap.memory_little(model).mean_kv, "mean_kv")}
    if against == "arrival_rate":
        iv = mean_interval(runs, lambda r: r.memory, level, batches)
        theory = details["mean_kv_predicted"]
        return judge("memory-little", "mean_kv", theory, iv, details)
    diff = mean_interval(runs, lambda r: np.asarray(r.memory, dtype=float) - _completed_lifetime(r), level, batches)
    flows = mean_interval(runs, _completed_lifetime, level, batches)
    theory = flows.estimate  # throughput x mean lifetime memory, over the same iterations
    iv = Interval(theory + diff.estimate, theory + diff.low, theory + diff.high, diff.level, diff.method, diff.n,
                  diff.warmup)
    details["throughput_times_lifetime"] = theory
    verdict = judge("memory-little", "mean_kv", theory, iv, details)
    if not verdict.holds and evictions:
        verdict = Verdict(verdict.theorem, verdict.quantity, verdict.theory, verdict.estimate, verdict.interval,
                          False, verdict.reason + f"; the run evicted {evictions} times, and evicted progress "
                          "holds memory that no completion accounts for", verdict.details)
    return verdict




MEMORY_LITTLE = theorems.register(
    Theorem(
        name="memory-little",
        title="Memory Little's law: mean KV in use = throughput x mean lifetime memory",
        hypotheses=(
            "Every request type has arrivals (a rate per iteration, or a PoissonProcess per second "
            "with a linear iteration time).",
            "Stationary regime without evictions: each admitted request holds w_j = l0 + 1 + j tokens "
            "at stages j = 0..l1-1, C = sum_j w_j token-iterations in all.",
            "Memory is observed once per iteration, after admission (MODEL.md section 2).",
            "Since the memory never exceeds M, lambda E[C] <= M (per iteration) is necessary for stability.",
        ),
        statement_fn=_little_statement,
        evaluate_fn=_little_evaluate,
        check_fn=_little_check,
        source=SOURCE_LITTLE,
        applies_fn=_little_applies,
    )
)


# ----------------------------------------------------------------------------------
# fluid-benchmark
# ----------------------------------------------------------------------------------
def _fluid_applies(model: ContinuousBatching) -> str | None:
    if model.iteration_time is None:
        return "the fluid benchmark needs a linear iteration time (iteration_time=ql.LinearIterationTime(d0, d1))"
    for k, t in enumerate(model.types):
        if not isinstance(t.arrivals, PoissonProcess):
            return f"types[{k}] arrivals are not a ql.PoissonProcess (rates per second)"
    return None


def _fluid_statement(model: ContinuousBatching, prefill_stage: bool = False) -> sp.Basic:
    res = cap.fluid_benchmark(model, prefill_stage=prefill_stage)
    load = sp.Symbol("Lambda_W")
    parts = [
        sp.Eq(load, res.load),
        sp.Eq(sp.Symbol("rho"), res.rho),
        sp.Eq(sp.Symbol("Delta^*"), res.delta_star),
        *[sp.Eq(sp.Symbol(f"n^*_{k + 1}"), n) for k, n in enumerate(res.thresholds)],
        sp.Eq(sp.Symbol("M^*"), res.memory_need),
        sp.Le(load, res.capacity_bound),
    ]
    return sp.And(*parts, evaluate=False)


def _fluid_evaluate(model: ContinuousBatching, prefill_stage: bool = False) -> dict:
    res = cap.fluid_benchmark(model, prefill_stage=prefill_stage)
    out = {
        "rho": res.rho,
        "delta_star": res.delta_star,
        "thresholds": res.thresholds,
        "memory_need": res.memory_need,
        "feasible": res.feasible,
        "load": res.load,
        "capacity_bound": res.capacity_bound,
        "lifetimes": res.lifetimes,
        "prefill_stage": bool(prefill_stage),
    }
    if res.reason:
        out["reason"] = res.reason
    return out


def _fluid_check(
    model: ContinuousBatching,
    trajectory: Any, prediction: dict,
    level: float = DEFAULT_LEVEL,
    batches: int = DEFAULT_BATCHES,
) -> Verdict:
    r"""Mean iteration time of a wall-clock run against :math:`\Delta^*` (or the overload drift).

    In a stationary wall-clock run without evictions the fluid values are exact means,
    not only fluid limits: arrivals per iteration average :math:`\lambda_k \bar s`
    (Poisson arrivals during an iteration of length :math:`s_n`), memory Little's law gives
    :math:`\bar Z = \bar s \sum_k \lambda_k W_k`, and :math:`\bar s = d_0 + d_1 \bar Z`, so
    :math:`\bar s = \Delta^*` and :math:`\bar Z = M^*`. The check compares the mean
    iteration length :math:`s_n = t_n - t_{n-1}` (batch means or replications) with
    :math:`\Delta^*`, and reports the mean memory against :math:`M^*` in ``details``.
    When the benchmark is infeasible (:math:`\rho \ge 1` or :math:`M^* > M`) no policy can
    keep up, and the check asks the number in system to grow: the lower end of the
    interval of its drift per iteration must be positive.

    The simulator holds :math:`w_j = l_0 + 1 + j` tokens (no prefill stage), so the check
    needs ``prefill_stage=False``.
    """
    if prediction.get("prefill_stage", False) is not False:
        raise ModelError(
            "fluid-benchmark check: simulated runs hold w_j = l0 + 1 + j tokens (no prefill stage), "
            f"so prefill_stage must be False, got {describe(prediction.get('prefill_stage'))}"
        )
    runs = runs_list(trajectory)
    res = cap.fluid_benchmark(model, prefill_stage=False)
    evictions = _evictions(runs)
    details = {
        "rho": numeric(res.rho, "rho"),
        "memory_need": numeric(res.memory_need, "memory_need"),
        "evictions": evictions,
    }
    if res.feasible is not True:
        data = [np.asarray(r.in_system, dtype=float) for r in runs]
        iv = rate_ci(data if len(data) > 1 else data[0], level, batches, default_warmup(runs))
        holds = iv.low > 0
        why = res.reason or f"the memory need M* = {details['memory_need']:.6g} exceeds M"
        reason = (f"{why}; the number in system must grow: its drift per iteration has the "
                  f"{iv.level_percent} interval [{iv.low:.6g}, {iv.high:.6g}], "
                  + ("above 0" if holds else "not above 0"))
        return Verdict("fluid-benchmark", "overload_drift", 0.0, iv.estimate, iv, holds, reason, details)

    def durations(run: Any) -> np.ndarray:
        return np.diff(np.asarray(run.time, dtype=float), prepend=0.0)

    iv = mean_interval(runs, durations, level, batches)
    mem = mean_interval(runs, lambda r: r.memory, level, batches)
    details["mean_memory"] = mem.estimate
    details["mean_memory_ci"] = (mem.low, mem.high)
    verdict = judge("fluid-benchmark", "delta_star", numeric(res.delta_star, "delta_star"), iv, details)
    if evictions:
        verdict = Verdict(verdict.theorem, verdict.quantity, verdict.theory, verdict.estimate, verdict.interval,
                          verdict.holds, verdict.reason + f" (the run evicted {evictions} times; the exact "
                          "identity assumes none)", verdict.details)
    return verdict


FLUID_BENCHMARK = theorems.register(
    Theorem(
        name="fluid-benchmark",
        title="Fluid benchmark with linear iteration time: rho, Delta*, thresholds, memory need",
        hypotheses=(
            "Every type has ql.PoissonProcess arrivals (rates lambda_k per second).",
            "Iteration time d0 + d1 Z seconds for a batch holding Z KV tokens (model.iteration_time).",
            "W_k is the lifetime memory in token-iterations: with prefill_stage=False (default) "
            "W_k = E[C_k] = E[sum_{j<l1} (l0 + 1 + j)] as in MODEL.md; with prefill_stage=True "
            "W_k = E[sum_{k=0}^{l1} (l0 + k)] as in [ALSW25].",
            "Fluid balance: every iteration admits n_k = lambda_k Delta requests of type k and holds n_k "
            "at every stage.",
        ),
        statement_fn=_fluid_statement,
        evaluate_fn=_fluid_evaluate,
        check_fn=_fluid_check,
        source=SOURCE_FLUID,
        applies_fn=_fluid_applies,
    )
)


# ----------------------------------------------------------------------------------
# nsz-threshold
# ----------------------------------------------------------------------------------
def _nsz_applies(model: ContinuousBatching) -> str | None:
    if is_infinite(model.kv_capacity):
        return "the threshold mu = M / (bbar E[g]) needs a finite KV capacity M"
    return None


def _nsz_statement(model: ContinuousBatching, chunk: Any = None, batch_time: Any = 1) -> sp.Basic:
    res = cap.nsz_threshold(model, chunk=chunk, batch_time=batch_time)
    return sp.And(sp.Eq(sp.Symbol("mu"), res.mu), sp.Eq(sp.Symbol("delta"), res.delta), evaluate=False)


def _nsz_evaluate(model: ContinuousBatching, chunk: Any = None, batch_time: Any = 1) -> dict:
    res = cap.nsz_threshold(model, chunk=chunk, batch_time=batch_time)
    return {"mu": res.mu, "delta": res.delta, "mean_g": res.mean_g, "stable_rate": res.stable_rate,
            "batch_time": cap.check_batch_time(batch_time), "chunk": chunk}


def _nsz_check(
    model: ContinuousBatching,
    trajectory: Any, prediction: dict,
    level: float = DEFAULT_LEVEL,
    batches: int = DEFAULT_BATCHES,
) -> Verdict:
    r"""The necessary half of [NSZ26]: no policy completes more than :math:`\mu` per batch time.

    Over a run, :math:`\sum_n Z_n \le N M` and every completed request accounts for
    :math:`g` token-iterations, so the completions per iteration cannot exceed
    :math:`M/E[g] = \mu \bar b`. The check divides the run's completions per iteration by
    ``batch_time`` and holds iff the lower end of its interval is at most :math:`\mu`. With
    ``chunk=None`` (default) :math:`g = C`, the memory the simulator holds; a run without
    prefill iterations is not bound by a ``chunk`` given here. The sufficient half
    (stability below :math:`\mu(1-\delta)` under work-conserving policies) is not checked:
    under greedy admission with evictions [ADLS26] shows congestion below :math:`x^*`.
    """
    runs = runs_list(trajectory)
    bbar = numeric(prediction["batch_time"], "batch_time")
    mu = numeric(prediction["mu"], "mu")
    iv = mean_interval(runs, lambda r: np.asarray(r.completions, dtype=float).sum(axis=1) / bbar, level, batches)
    details = {"delta": numeric(prediction["delta"], "delta"),
               "stable_rate": numeric(prediction["stable_rate"], "stable_rate"),
               "mean_g": numeric(prediction["mean_g"], "mean_g"), "evictions": _evictions(runs)}
    where = f"the {iv.level_percent} {iv.method} interval [{iv.low:.6g}, {iv.high:.6g}] of the completion rate"
    holds = iv.low <= mu
    reason = f"{where} {'reaches down to' if holds else 'lies above'} mu = {mu:.6g}"
    return Verdict("nsz-threshold", "mu", mu, iv.estimate, iv, holds, reason, details)


NSZ_THRESHOLD = theorems.register(
    Theorem(
        name="nsz-threshold",
        title="[NSZ26] memory stability threshold mu = M / (bbar E[g]) and slack delta",
        hypotheses=(
            "Finite KV capacity M tokens; batch time bbar seconds (option batch_time, default 1: per iteration).",
            "g(s, o) = (shat + 2 shat + ... + s) + ((s+1) + ... + (s+o)): prefill in ceil(s/shat) chunks "
            "holding min(i shat, s) tokens after chunk i (option chunk; None: prefill abstracted, g = C), "
            "then o decode iterations.",
            "Unstable under any policy if lambda > mu; stable under a work-conserving policy if "
            "lambda < mu (1 - delta), delta = max(s + o)/M ([NSZ26]).",
        ),
        statement_fn=_nsz_statement,
        evaluate_fn=_nsz_evaluate,
        check_fn=_nsz_check,
        source=SOURCE_NSZ,
        applies_fn=_nsz_applies,
    )
)
