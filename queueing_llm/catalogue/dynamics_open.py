r"""Built-in theorem ``open-system`` (the model chapter, A.7): the open system's stability threshold.

``evaluate`` keys: ``stability_threshold`` (:math:`\theta` of the relaxed system),
``integer_threshold`` (the threshold of the integer system the simulator runs),
``stable``, ``x_star``, ``worst_cycle``, ``policy``, ``overflow_time`` (Gaussian
approximation of the mean iterations to the first eviction under greedy admission,
reported, not compared).

What is proved, and what the check tests:

* ``greedy``: every congested regime completes at least the worst cycle :math:`\theta =
  M/(l_1(l_0+l_1))`, and the congested regime is absorbing, so the queue is stable for
  :math:`\lambda < \theta` and, for :math:`\lambda > \theta`, grows once the system has
  collapsed into the congested regime. The collapse happens after a random time: below
  :math:`x^*` the system first lives in an eviction-free (metastable) regime that a
  fluctuation of the memory ends (:mod:`queueing_llm.theory.dynamics_collapse`). The check
  finds the collapse in each run (:func:`~queueing_llm.theory.dynamics.collapse_iteration`)
  and judges only the congested part; runs that never collapse are reported as
  metastable, with the collapse time estimated from all the runs, and do not make the
  verdict fail (if no run collapsed, the verdict does not apply: the runs are too short
  for the statement).
* ``rate_limited(x)``: in the relaxed system :math:`\theta = x`; the integer system
  congests at the throughput of ``integer-rate-limit`` (``congested_throughput``: 63/40 at
  :math:`x^* = 100/61` on the default model, :math:`x` itself up to ``max_rate`` = 13/8),
  which is ``integer_threshold``.
* ``reserve``: :math:`\theta` = the worst cycle; the integer cohorts hold
  :math:`\lfloor M/w_{l_1-1} \rfloor` requests (``integer_threshold``).

Known gap (``tests/test_open_system.py``): the integer rate-limited threshold is the
congested throughput of the saturated system *from an empty batch*. In the open system the
bucket (depth :math:`x + 1`) refills while the queue is empty and a burst can move the
integer system into another cycle of the integer map: with :math:`(l_0, l_1, M) = (1, 8,
88)`, :math:`x^* = x_{\max} = 2`, the open system at :math:`\lambda = 1.69` settles on 13/8
with 0.25 evictions per iteration and its queue grows; the check reports FAILS there,
correctly (neither the integer statement nor "rate limiting at :math:`x^*` is stable up to
:math:`x^*`" holds for that integer system). Such slow-evicting regimes are also below the
cascade criterion of :func:`~queueing_llm.theory.dynamics.collapse_iteration` (more than
:math:`l_1` evictions per :math:`l_1` iterations), which is used for greedy only.

The test, on the integer runs with :math:`\theta_{\rm int}` = ``integer_threshold``:
:math:`\lambda < \theta_{\rm int}`: the queue's growth interval reaches 0 (two-sided);
:math:`\lambda > \theta_{\rm int}`: the growth interval lies above 0, greedy evicts
persistently, and the congested throughput interval meets
:math:`[\theta_{\rm int}, x^*]` (greedy, reserve) or contains :math:`\theta_{\rm int}`
(rate limiting, an exact cycle); :math:`\lambda = \theta_{\rm int}`: the throughput does
not exceed :math:`x^*`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

from ..model import ContinuousBatching
from ..numbers import is_symbolic
from ..policies import Greedy, RateLimited, Reserve, policy_from
from ..runs import open_run, run_kind
from ..stats import Interval, batch_means_ci, replications_ci
from ..theorems import Theorem, theorems
from ..theory import dynamics as dyn
from ..verdict import BOUNDS, TWO_SIDED, UPPER_BOUND, Verdict
from .dynamics import SOURCE

__all__ = ["THETA", "OPEN_RUNS"]

THETA = sp.Symbol("theta")


def _f(value: Any) -> float:
    return float(value) if not isinstance(value, sp.Basic) else float(value.evalf())


def _open_statement(model: ContinuousBatching, policy: Any = None, rate: Any = None) -> sp.Basic:
    o = dyn.open_system(model, policy, rate)
    cond = sp.StrictLessThan(o.arrival_rate, THETA, evaluate=False)
    return sp.And(sp.Eq(THETA, o.threshold, evaluate=False), sp.Equivalent(sp.Symbol("stable"), cond, evaluate=False),
                  evaluate=False)


def _integer_threshold(model: ContinuousBatching, policy: Any, theta: Any) -> Any:
    """The threshold of the integer system: rate limiting congests at the integer token
    bucket's throughput, reserve at whole cohorts of floor(M/w_{l1-1}); greedy: theta."""
    pol = model.policy if policy is None else policy_from(policy)
    if model.is_symbolic or is_symbolic(theta):
        return sp.nan
    c = dyn.single_component(model)
    if any(sp.sympify(v) != sp.floor(sp.sympify(v)) for v in (c.l0, c.l1, model.M)):
        return theta
    if isinstance(pol, RateLimited):
        return dyn.congested_throughput(model, theta)
    if isinstance(pol, Reserve):
        return sp.floor(model.M / c.w(c.l1 - 1)) / c.l1
    return theta


def _open_evaluate(model: ContinuousBatching, policy: Any = None, rate: Any = None) -> dict:
    """``policy``: another covered policy (default the model's); ``rate``: an arrival rate
    per iteration other than the model's (a number or a symbol)."""
    o = dyn.open_system(model, policy, rate)
    theta_int = _integer_threshold(model, policy, o.threshold)
    lam = o.arrival_rate
    stable_int = sp.nan if theta_int is sp.nan or is_symbolic(lam) else bool(lam < theta_int)
    overflow = (sp.nan if model.is_symbolic or is_symbolic(lam)
                else sp.Float(dyn.gaussian_overflow_time(model, lam).time, 6))
    return {"stability_threshold": o.threshold, "integer_threshold": theta_int, "stable": o.stable,
            "integer_stable": stable_int, "x_star": o.x_star, "worst_cycle": o.worst_cycle, "policy": o.policy,
            "overflow_time": overflow}


def _total(run: Any, name: str) -> np.ndarray:
    arr = np.asarray(getattr(run, name), dtype=float)
    return arr.reshape(arr.shape[0], -1).sum(axis=1)


def _flat(runs: Any) -> list:
    if isinstance(runs, Sequence) and not isinstance(runs, (str, bytes)):
        return [r for item in runs for r in _flat(item)]
    return [runs]


REPLICATION_SEGMENTS = 3
"""Segments (runs, or their congested parts) from which the check puts Student intervals over
the per-segment estimates instead of batch means of the segments laid end to end."""


def _intervals(segments: list[tuple[Any, int]], level: float, batches: int) -> tuple[Interval, Interval, Interval]:
    r"""Growth of the number in system, throughput and evictions per iteration over the
    segments ``(run, start)``.

    At least :data:`REPLICATION_SEGMENTS` segments (independent replications, e.g. the
    declared ``ql.simulate(..., replications=4)``): each segment's own estimates
    (:math:`(Q_{end} - Q_d)/(n - 1 - d)`, mean completions and evictions per iteration after
    :math:`d`) get the Student interval of independent replications
    (:func:`~queueing_llm.stats.replications_ci`). Fewer: batch means of the per-iteration
    series of the segments laid end to end (two replications alone give :math:`t_1 = 12.7`
    and uselessly wide intervals)."""
    increments = [np.diff(np.asarray(run.in_system, dtype=float)[d:]) for run, d in segments]
    done = [_total(run, "completions")[d + 1:] for run, d in segments]
    evicted = [_total(run, "evictions")[d + 1:] for run, d in segments]
    if len(segments) >= REPLICATION_SEGMENTS:
        return tuple(replications_ci([float(x.mean()) for x in series], level)
                     for series in (increments, done, evicted))  # type: ignore[return-value]
    return (batch_means_ci(np.concatenate(increments), level, batches),
            batch_means_ci(np.concatenate(done), level, batches),
            batch_means_ci(np.concatenate(evicted), level, batches))


def _interval_words(interval: Interval, segments: int) -> str:
    """How the intervals were made, for the verdict's reason."""
    if interval.method == "replications":
        return f"Student intervals over the {segments} runs' estimates"
    return "batch means of " + (f"the {segments} segments laid end to end" if segments > 1 else "the run")


def _open_check(
    model: ContinuousBatching, runs: Any, prediction: dict, level: float = 0.95, warmup: Any = None,
    batches: int = 20,
) -> Verdict:
    r"""Regime by regime: stable below the integer threshold, growing above it after the collapse.

    ``warmup`` (default a tenth of the run) is deleted at the start of each run, and
    :math:`l_1` iterations after a greedy run's collapse. Growth, throughput and evictions
    per iteration get Student intervals at ``level``: over the per-run estimates when at
    least three runs are judged (independent replications, the declared runs), else
    ``batches`` batch means of the segments laid end to end (:func:`_intervals`). The
    collapse time is estimated from all the runs (one run collapses at most once: the
    congested regime is absorbing). See the module docstring for the comparisons.
    """
    theta_int = prediction["integer_threshold"]
    theta = prediction["stability_threshold"]
    threshold = theta if theta_int is sp.nan else theta_int
    xs = _f(prediction["x_star"])
    policy = dyn.resolve_policy(model).policy
    usable, skipped = [], []
    for run in _flat(runs):
        kind = run_kind(run)
        if kind != "open":
            skipped.append(f"a {kind} run: the statement is about the open system (arrivals and a queue)")
        elif run.model.policy != policy:
            skipped.append(f"a run under {run.model.policy}: the model's threshold is for {policy}")
        else:
            usable.append(run)
    quantity = "integer_threshold"
    if not usable:
        return Verdict.not_applicable("open-system", quantity, "; ".join(skipped), theory=_f(threshold))
    lam = _f(dyn.open_arrival_rate(model))
    th = _f(threshold)
    L = int(dyn.single_component(model).l1)
    lengths = [int(np.asarray(r.in_system).shape[0]) for r in usable]
    d = min(lengths) // 10 if warmup is None else int(warmup)
    if not 0 <= d <= min(lengths) - 2 * batches:
        return Verdict.not_applicable("open-system", quantity, f"warmup {d} leaves fewer than {2 * batches} "
                                      f"iterations in runs of {min(lengths)}", theory=th)
    collapses = [dyn.collapse_iteration(r.evictions, L) for r in usable]
    collapse = dyn.collapse_time_estimate(collapses, lengths, level)
    branch = "stable" if lam < th else ("congested" if lam > th else "critical")
    details: dict = {"branch": branch, "arrival_rate": lam, "threshold": th, "relaxed_threshold": _f(theta),
                     "x_star": xs, "collapse_iterations": collapses, "collapse_time": collapse,
                     "overflow_time": _f(prediction["overflow_time"]) if prediction.get("overflow_time") is not None
                     and prediction["overflow_time"] is not sp.nan else math.nan, "runs": len(usable)}
    segments = [(r, d) for r in usable]
    regime = ""
    if branch == "congested" and isinstance(policy, Greedy):
        collapsed = [(r, max(d, c + L)) for r, c in zip(usable, collapses, strict=True)
                     if c is not None and len(r.in_system) - max(d, c + L) >= 2 * batches]
        meta = len(usable) - len(collapsed)
        regime = (f"{len(collapsed)} of {len(usable)} runs collapsed into the congested regime (eviction cascade "
                  f"at {', '.join(str(c) for c in collapses if c is not None) or 'none'}), {meta} stayed "
                  f"eviction-free (metastable); mean collapse time {collapse}")
        if not collapsed:
            return Verdict.not_applicable(
                "open-system", quantity,
                f"metastable regime: arrival rate {lam:.4g} > threshold {th:.4g}, but {regime}; the statement "
                "(congestion after the collapse) needs runs that collapse", theory=th, details=details)
        segments = collapsed
    growth, thr, ev = _intervals(segments, level, batches)
    details.update({"growth": growth, "throughput": thr, "evictions": ev})
    g = f"growth {growth.estimate:.4g} per iteration [{growth.low:.4g}, {growth.high:.4g}]"
    t = f"throughput {thr.estimate:.4g} [{thr.low:.4g}, {thr.high:.4g}]"
    problems: list[str] = []
    evictions = float(sum(_total(r, "evictions").sum() for r in usable))
    if isinstance(policy, Reserve) and evictions > 0:
        problems.append(f"reserve evicted {evictions:g} times")
    if branch == "stable":
        test = TWO_SIDED
        if growth.low > 0:
            problems.append("the queue grows")
        what = "the queue must be stable (growth interval reaching 0)"
    elif branch == "congested":
        eps = 1e-9 * max(abs(th), xs, 1.0)
        if isinstance(policy, RateLimited):
            test, low, high = TWO_SIDED, th, th
            what = f"the queue must grow, the congested throughput being {th:.6g}"
            if not thr.low - eps <= th <= thr.high + eps:
                problems.append(f"the congested throughput interval misses {th:.6g}")
        else:
            test, low, high = BOUNDS, th, xs
            what = f"the queue must grow, the congested throughput in [{th:.4g}, {xs:.4g}]"
            if thr.high < low - eps or thr.low > high + eps:
                problems.append(f"the throughput is outside the congested range [{low:.4g}, {high:.4g}]")
        if not growth.low > 0:
            problems.append("the queue does not grow significantly")
        if isinstance(policy, Greedy) and not ev.low > 0:
            problems.append("greedy does not evict persistently")
        details.update({"congested_low": low, "congested_high": high})
    else:
        test = UPPER_BOUND
        what = "critical rate: no prediction beyond throughput <= x*"
        if thr.low > xs * (1 + 1e-9):
            problems.append(f"the throughput exceeds x* = {xs:.4g}")
    relation = {"stable": "<", "congested": ">", "critical": "="}[branch]
    reason = (f"{prediction['policy']}: arrival rate {lam:.4g} {relation} integer threshold {th:.4g} "
              f"(relaxed {_f(theta):.4g}): {what}; " + (f"{regime}; " if regime else "")
              + f"{g}, {t}, evictions {ev.estimate:.4g} per iteration"
              + ("" if not problems else f": {'; '.join(problems)}")
              + f" ({_interval_words(thr, len(segments))})")
    if skipped:
        reason += f". Not used: {'; '.join(skipped)}"
    details["excess_growth"] = growth.estimate - (lam - th)
    return Verdict("open-system", quantity, th, thr.estimate, thr, not problems, reason, details, test=test)


OPEN_RUNS = (open_run(
    20_000, replications=4, model_transform=dyn.resolve_policy,
    replications_reason="the collapse into the congested regime is a random transient that one run sees at most "
                        "once (the congested regime is absorbing): independent replications estimate the collapse "
                        "time and give one congested segment each"),)
"""Four independent replications of 20,000 iterations (``ql.simulate(..., replications=4)``);
``rate_limited("integer")`` is resolved to its number (the simulator reads numeric rates only)."""

theorems.register(Theorem(
    name="open-system",
    comparison="4 independent replications of 20,000 iterations of the open system (Student intervals over "
               "the replications): below integer_threshold the queue's growth interval reaches 0; above it, "
               "after the collapse (greedy), the growth interval lies above 0 and the throughput interval meets "
               "[integer_threshold, x*] (rate limiting: contains integer_threshold); runs that never collapse are "
               "reported as metastable",
    title="Open system: greedy admission is stable only below the worst cycle, rate limiting up to x*",
    hypotheses=("one request type, arrivals per iteration (Poisson or any law) with mean lambda, finite M",
                "unlimited batch cap and waiting room; policy greedy, rate_limited(x <= x*) or reserve",
                "while the queue is not empty the batch follows the saturated map of the policy",
                "relaxed system: stable iff lambda < theta; greedy and reserve: theta = M/(l1 (l0 + l1)); "
                "rate_limited(x): x",
                "integer system: rate_limited(x) congests at integer-rate-limit's congested throughput; reserve at "
                "floor(M/(l0 + l1))/l1",
                "greedy with theta < lambda < x*: the congested regime is absorbing but is reached after a random "
                "(metastable) time; the statement is about the regime after that collapse"),
    statement_fn=_open_statement, evaluate_fn=_open_evaluate, check_fn=_open_check, runs=OPEN_RUNS,
    source=f"{SOURCE}, worst-case cycle and section 5.1 (the model chapter, A.7)", applies_fn=dyn.open_system_reason,
))
