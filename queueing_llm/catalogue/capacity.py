r"""Built-in theorems of the model chapter, section 5, family C (capacity with memory and time).

Importing the module registers three theorems:

``memory-little``
    Memory Little's law, mean KV in use = throughput :math:`\times E[C]`;
    ``evaluate`` keys ``mean_kv`` (and ``throughput``, ``lifetime_memory``,
    ``mean_iteration_time``, ``necessary``).
``fluid-benchmark``
    The [ALSW25] fluid benchmark with linear iteration time; keys ``rho``,
    ``delta_star``, ``thresholds``, ``memory_need``, ``feasible`` (and ``load``,
    ``capacity_bound``, ``lifetimes``); option ``prefill_stage`` (default False: the model chapter's
    stage memories :math:`w_j = l_0 + 1 + j`, the simulator's convention; True:
    [ALSW25]'s convention with a prefill stage, as in the references chapter, section 2).
``nsz-threshold``
    The [NSZ26] stability threshold; keys ``mu``, ``delta`` (and ``mean_g``,
    ``stable_rate``); options ``chunk`` (prefill chunk size :math:`\hat s`, default None:
    prefill abstracted as in the model chapter) and ``batch_time`` (:math:`\bar b` seconds per
    batch, default 1: :math:`\mu` per iteration).

The checks take their theory values from the prediction ``evaluate`` returned and read
the arrays of the runs the theorems declare (``Theorem.runs``); they never simulate. The
formulas come from :mod:`queueing_llm.theory.capacity`. A run that violates a hypothesis
(evictions for memory Little's law and the fluid identity, a growing queue) gives a "does
not apply" verdict with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from ..checks import default_warmup, judge, judge_exact, judge_upper, mean_interval, numeric, predicted, runs_list
from ..errors import ModelError, describe
from ..model import ContinuousBatching, PoissonProcess, RequestType
from ..numbers import is_infinite
from ..policies import rate_limited
from ..runs import open_run, relaxed_run, run_kind
from ..stats import DEFAULT_BATCHES, DEFAULT_LEVEL, Interval, rate_ci
from ..theorems import Theorem, theorems
from ..theory import capacity as cap
from ..verdict import LOWER_BOUND, Verdict

__all__ = ["MEMORY_LITTLE", "FLUID_BENCHMARK", "NSZ_THRESHOLD"]

SOURCE_LITTLE = "Little (1961) on token-iterations; [NSZ26, section 3]; the model chapter, section 5 C.1"
SOURCE_FLUID = "[ALSW25, section 3] (fluid benchmark, linear iteration time); the references chapter, section 2"
SOURCE_NSZ = "[NSZ26, section 3] (memory stability threshold); the references chapter, section 3"


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


def _growing(runs: list, level: float, batches: int) -> Interval | None:
    """The growth interval of the number in system when it lies above 0 (a queue that grows
    has no stationary regime), else None."""
    data = [np.asarray(r.in_system, dtype=float) for r in runs]
    w = default_warmup(runs)
    iv = rate_ci(data if len(data) > 1 else data[0], level, batches, w)
    return iv if iv.low > 0 else None


def _little_check(
    model: ContinuousBatching,
    trajectory: Any,
    prediction: dict,
    level: float = DEFAULT_LEVEL,
    batches: int = DEFAULT_BATCHES,
    against: str = "arrival_rate",
) -> Verdict:
    r"""Mean memory per iteration of an eviction-free open run against the predicted
    :math:`\Lambda E[C]` (two-sided CI).

    ``against="arrival_rate"`` (default), the theorem's prediction: ``evaluate``'s
    ``mean_kv`` :math:`= \Lambda E[C]` against the batch-means (or replications) interval of
    the memory after admission. The law is about a stationary run without evictions: a
    run that evicts (evicted progress holds memory no completion accounts for), a queue
    that grows, or a model with :math:`\Lambda E[C] > M` gives "does not apply" with the
    reason. Averages are per iteration, not per second.

    ``against="throughput"``, the identity behind the law (not the prediction): the series
    :math:`D_n = Z_n - \sum_{i \text{ completes at } n} C_i` (memory after admission minus
    the realised lifetime memory of the requests completing in iteration :math:`n`) has
    long-run mean 0 in any run without evictions; its interval, shifted by the mean of the
    second term, is an interval of the mean memory, compared with the run's own throughput
    times the realised lifetimes. It tests the accounting, not ``evaluate``.
    """
    if against not in ("throughput", "arrival_rate"):
        raise ModelError(f"against must be 'throughput' or 'arrival_rate', got {describe(against)}")
    runs = runs_list(trajectory)
    evictions = _evictions(runs)
    theory = predicted(prediction, "mean_kv", "memory-little")
    details = {"evictions": evictions, "mean_kv_predicted": numeric(theory, "mean_kv")}
    if evictions:
        return Verdict.not_applicable(
            "memory-little", "mean_kv", f"the run evicted {evictions} times: the law holds for eviction-free runs "
            "only (evicted progress holds memory that no completion accounts for)",
            theory=details["mean_kv_predicted"], details=details, unit="tokens (per iteration)")
    if against == "arrival_rate":
        if prediction.get("necessary") is False:
            return Verdict.not_applicable(
                "memory-little", "mean_kv", f"Lambda E[C] = {details['mean_kv_predicted']:.6g} exceeds M: no "
                "stationary regime", theory=details["mean_kv_predicted"], details=details,
                unit="tokens (per iteration)")
        grows = _growing(runs, level, batches)
        if grows is not None:
            return Verdict.not_applicable(
                "memory-little", "mean_kv", f"the number in system grows ({grows.estimate:.4g} per iteration, "
                f"{grows.level_percent} interval [{grows.low:.4g}, {grows.high:.4g}]): no stationary regime",
                theory=details["mean_kv_predicted"], details=details, unit="tokens (per iteration)")
        iv = mean_interval(runs, lambda r: np.asarray(r.memory, dtype=float), level, batches)
        return judge("memory-little", "mean_kv", theory, iv, details).replace(unit="tokens (per iteration)")
    diff = mean_interval(runs, lambda r: np.asarray(r.memory, dtype=float) - _completed_lifetime(r), level, batches)
    flows = mean_interval(runs, _completed_lifetime, level, batches)
    own = flows.estimate  # the run's throughput x realised lifetime memory, over the same iterations
    iv = Interval(own + diff.estimate, own + diff.low, own + diff.high, diff.level, diff.method, diff.n,
                  diff.warmup)
    details["throughput_times_lifetime"] = own
    v = judge("memory-little", "mean_kv", own, iv, details)
    return v.replace(reason="identity check (against='throughput': the run's own throughput x realised "
                     "lifetimes, not evaluate): " + v.reason, unit="tokens (per iteration)")


MEMORY_LITTLE = theorems.register(
    Theorem(
        name="memory-little",
        title="Memory Little's law: mean KV in use = throughput x mean lifetime memory",
        hypotheses=(
            "Every request type has arrivals (a rate per iteration, or a PoissonProcess per second "
            "with a linear iteration time).",
            "Stationary regime without evictions: each admitted request holds w_j = l0 + 1 + j tokens "
            "at stages j = 0..l1-1, C = sum_j w_j token-iterations in all.",
            "Memory is observed once per iteration, after admission (the model chapter, section 2).",
            "Since the memory never exceeds M, lambda E[C] <= M (per iteration) is necessary for stability.",
        ),
        statement_fn=_little_statement,
        evaluate_fn=_little_evaluate,
        check_fn=_little_check,
        source=SOURCE_LITTLE,
        applies_fn=_little_applies,
        runs=(open_run(),),
        comparison="mean KV tokens after admission per iteration of an eviction-free open run (batch means) "
                   "against Lambda E[C]: two-sided CI; a run that evicts or a growing queue: does not apply",
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
    quantity: str = "delta_star",
) -> Verdict:
    r"""Mean iteration time of a wall-clock run against :math:`\Delta^*` (or the overload drift).

    In a stationary wall-clock run without evictions the fluid values are exact means,
    not only fluid limits: arrivals per iteration average :math:`\lambda_k \bar s`
    (Poisson arrivals during an iteration of length :math:`s_n`), memory Little's law gives
    :math:`\bar Z = \bar s \sum_k \lambda_k W_k`, and :math:`\bar s = d_0 + d_1 \bar Z`, so
    :math:`\bar s = \Delta^*` and :math:`\bar Z = M^*`. The check compares the mean
    iteration length :math:`s_n = t_n - t_{n-1}` (batch means or replications) with
    :math:`\Delta^*` (two-sided CI); ``quantity="memory_need"`` compares the mean memory
    with :math:`M^*` instead. A run that evicts violates the hypothesis: "does not apply".
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
    if quantity not in ("delta_star", "memory_need"):
        raise ModelError(f"quantity must be 'delta_star' or 'memory_need', got {describe(quantity)}")
    evictions = _evictions(runs)
    memory_need = predicted(prediction, "memory_need", "fluid-benchmark")
    details = {
        "rho": numeric(predicted(prediction, "rho", "fluid-benchmark"), "rho"),
        "memory_need": numeric(memory_need, "memory_need"),
        "evictions": evictions,
    }
    if predicted(prediction, "feasible", "fluid-benchmark") is not True:
        data = [np.asarray(r.in_system, dtype=float) for r in runs]
        iv = rate_ci(data if len(data) > 1 else data[0], level, batches, default_warmup(runs))
        holds = bool(iv.low > 0)
        why = prediction.get("reason") or f"the memory need M* = {details['memory_need']:.6g} exceeds M"
        reason = (f"one-sided: {why}, so no policy keeps up and the number in system must grow: its drift per "
                  f"iteration has the {iv.level_percent} interval [{iv.low:.6g}, {iv.high:.6g}], "
                  + ("above 0" if holds else "not above 0"))
        return Verdict("fluid-benchmark", "overload_drift", 0.0, iv.estimate, iv, holds, reason, details,
                       test=LOWER_BOUND, unit="requests per iteration")
    if evictions:
        return Verdict.not_applicable(
            "fluid-benchmark", quantity, f"the run evicted {evictions} times: the exact identity "
            "Delta* = mean iteration time (and M* = mean memory) holds for eviction-free runs",
            theory=numeric(predicted(prediction, quantity, "fluid-benchmark"), quantity), details=details,
            unit="s per iteration" if quantity == "delta_star" else "tokens")

    def durations(run: Any) -> np.ndarray:
        return np.diff(np.asarray(run.time, dtype=float), prepend=0.0)

    iv = mean_interval(runs, durations, level, batches)
    mem = mean_interval(runs, lambda r: r.memory, level, batches)
    details["mean_iteration_time"] = iv.estimate
    details["mean_iteration_time_ci"] = (iv.low, iv.high)
    details["mean_memory"] = mem.estimate
    details["mean_memory_ci"] = (mem.low, mem.high)
    if quantity == "memory_need":
        return judge("fluid-benchmark", "memory_need", memory_need, mem, details).replace(unit="tokens")
    theory = predicted(prediction, "delta_star", "fluid-benchmark")
    return judge("fluid-benchmark", "delta_star", theory, iv, details).replace(unit="s per iteration")


FLUID_BENCHMARK = theorems.register(
    Theorem(
        name="fluid-benchmark",
        title="Fluid benchmark with linear iteration time: rho, Delta*, thresholds, memory need",
        hypotheses=(
            "Every type has ql.PoissonProcess arrivals (rates lambda_k per second).",
            "Iteration time d0 + d1 Z seconds for a batch holding Z KV tokens (model.iteration_time).",
            "W_k is the lifetime memory in token-iterations: with prefill_stage=False (default) "
            "W_k = E[C_k] = E[sum_{j<l1} (l0 + 1 + j)] as in the model chapter; with prefill_stage=True "
            "W_k = E[sum_{k=0}^{l1} (l0 + k)] as in [ALSW25].",
            "Fluid balance: every iteration admits n_k = lambda_k Delta requests of type k and holds n_k "
            "at every stage.",
        ),
        statement_fn=_fluid_statement,
        evaluate_fn=_fluid_evaluate,
        check_fn=_fluid_check,
        source=SOURCE_FLUID,
        applies_fn=_fluid_applies,
        runs=(open_run(),),
        comparison="mean iteration time in seconds of an eviction-free wall-clock open run (batch means) "
                   "against Delta* (option quantity='memory_need': mean memory against M*): two-sided CI; "
                   "infeasible benchmark: the queue must grow (one-sided); a run that evicts: does not apply",
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


def _tail_rate(run: Any) -> float:
    """Completions per iteration over the second half of a run."""
    done = np.asarray(run.completions, dtype=float)
    done = done.reshape(done.shape[0], -1).sum(axis=1)
    return float(done[done.size // 2:].mean())


def _nsz_check(
    model: ContinuousBatching,
    trajectory: Any,
    prediction: dict,
    level: float = DEFAULT_LEVEL,
    batches: int = DEFAULT_BATCHES,
    tol: float = 1e-9,
) -> Verdict:
    r"""The necessary half of [NSZ26] where it is tight, and as a bound elsewhere.

    Over a run, :math:`\sum_n Z_n \le N M` and every completed request accounts for
    :math:`g` token-iterations, so no policy completes more than :math:`M/E[g] = \mu \bar b`
    per iteration. In this model (``chunk=None``: :math:`g = C`, the memory the simulator
    holds) the bound is attained by the relaxed saturated map under rate limiting at
    :math:`x^* = M/E[C]`: from an empty batch it admits :math:`x^*` per iteration, never
    evicts, and completes exactly :math:`x^*` per iteration from iteration :math:`l_1` on.

    * A relaxed run (the declared run: ``rate_limited(x*)``): its completions per
      iteration over the second half, divided by ``batch_time``, must equal the predicted
      ``mu`` (exact, within relative ``tol`` for floating-point runs): a wrong
      :math:`\mu` fails on either side.
    * A simulated run (open or saturated, any policy): its completion rate must not exceed
      :math:`\mu` (one-sided upper bound, batch means); below the bound it is not tight
      (greedy's congested integer cycles complete about 61 % of it on the default model), so the verdict says
      the bound's tightness was not tested.

    ``chunk`` given (prefill in chunks holds memory the simulator does not), or a relaxed
    run for a model with a finite batch cap (the relaxed map has none): "does not apply".
    The sufficient half ([NSZ26]: stable under work-conserving policies below
    :math:`\mu(1-\delta)`) is not checked; greedy admission with evictions contradicts it
    in this model (hypotheses).
    """
    runs = runs_list(trajectory)
    bbar = numeric(predicted(prediction, "batch_time", "nsz-threshold"), "batch_time")
    mu = predicted(prediction, "mu", "nsz-threshold")
    mu_f = numeric(mu, "mu")
    details = {"delta": numeric(prediction["delta"], "delta"),
               "stable_rate": numeric(prediction["stable_rate"], "stable_rate"),
               "mean_g": numeric(prediction["mean_g"], "mean_g"), "evictions": _evictions(runs),
               "batch_time": bbar}
    unit = "completions per iteration" if bbar == 1 else "completions per second"
    if prediction.get("chunk") is not None:
        return Verdict.not_applicable(
            "nsz-threshold", "mu", f"chunk={prediction['chunk']}: chunked prefill holds memory the simulator "
            "(prefill abstracted, g = C) does not, so its runs are not bound by this mu", theory=mu_f,
            details=details, unit=unit)
    relaxed = [r for r in runs if run_kind(r) == "relaxed"]
    simulated = [r for r in runs if run_kind(r) != "relaxed"]
    if relaxed and simulated:
        raise ModelError("nsz-threshold: give relaxed runs or simulated runs, not both")
    if relaxed and not is_infinite(model.batch_cap):
        return Verdict.not_applicable(
            "nsz-threshold", "mu", f"batch cap B = {model.batch_cap}: the relaxed map has no batch cap, so its "
            "rate-limited run is not this model's tight case", theory=mu_f, details=details, unit=unit)
    if relaxed:
        verdicts = []
        for r in relaxed:
            if getattr(r, "rate", None) is None:
                raise ModelError("nsz-threshold: the relaxed run must use rate limiting at x* "
                                 "(ql.runs.relaxed_run(policy='rate_limited')); greedy does not attain mu")
            exact = bool(getattr(r, "exact", False))
            est = _tail_rate(r) / bbar
            first = r.first_eviction
            v = judge_exact("nsz-threshold", "mu", mu, est, {**details, "first_eviction": first},
                            tol=0.0 if exact else tol,
                            what="the completion rate of the relaxed map rate-limited at x* (second half)")
            if first is not None:
                v = v.replace(holds=False, reason=v.reason + f"; but it evicted at iteration {first}")
            verdicts.append(v)
        worst = next((v for v in verdicts if not v.holds), verdicts[0])
        return worst.replace(unit=unit, reason="tight case: " + worst.reason)
    iv = mean_interval(simulated, lambda r: np.asarray(r.completions, dtype=float).reshape(
        np.asarray(r.completions).shape[0], -1).sum(axis=1) / bbar, level, batches)
    return judge_upper("nsz-threshold", "mu", mu, iv, details).replace(unit=unit)


NSZ_THRESHOLD = theorems.register(
    Theorem(
        name="nsz-threshold",
        title="[NSZ26] memory stability threshold mu = M / (bbar E[g]) and slack delta",
        hypotheses=(
            "Finite KV capacity M tokens; batch time bbar seconds (option batch_time, default 1: per iteration).",
            "g(s, o) = (shat + 2 shat + ... + s) + ((s+1) + ... + (s+o)): prefill in ceil(s/shat) chunks "
            "holding min(i shat, s) tokens after chunk i (option chunk; None: prefill abstracted, g = C), "
            "then o decode iterations.",
            "Necessary condition (proved for any policy): no policy completes more than mu per batch time, "
            "so the system is unstable if lambda > mu. In this model (chunk=None, g = C) mu = M/E[C] = x* per "
            "iteration, attained exactly by the relaxed map rate-limited at x* (the check's tight case).",
            "[NSZ26]'s sufficient condition, stability under a work-conserving policy for lambda < mu (1 - delta), "
            "delta = max(s + o)/M, does NOT hold in this model: greedy admission with evictions congests at "
            "lambda = 1.2 < mu (1 - delta) = 1.598 on the default model (M = 2000, l0 = 10, l1 = 40; [ADLS26]). "
            "It is stated for reference and not checked.",
        ),
        statement_fn=_nsz_statement,
        evaluate_fn=_nsz_evaluate,
        check_fn=_nsz_check,
        source=SOURCE_NSZ,
        applies_fn=_nsz_applies,
        runs=(relaxed_run(policy=rate_limited(), label="relaxed, rate_limited(x*)",
                          description="relaxed saturated map rate-limited at x* from an empty batch (float)"),),
        comparison="completion rate of the relaxed map rate-limited at x* (second half) against mu: exact "
                   "(relative tolerance 1e-9, float map); simulated runs: completion rate <= mu, one-sided bound",
    )
)
