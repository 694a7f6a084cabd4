r"""Built-in theorem ``integer-rate-limit``: token-bucket admission in the integer system.

========================  ===================================================================
``integer-rate-limit``    ``max_rate``: largest eviction-free token-bucket rate :math:`x_{\max}`;
                          ``peak_memory``: peak :math:`P(x)` of the admission pattern at the
                          rate; ``congested_throughput``: the integer system's long-run
                          throughput at the rate
========================  ===================================================================

Options of ``evaluate``: ``rate`` (default: the model's ``rate_limited`` rate, else
:math:`x^*`; ``"integer"`` means :math:`x_{\max}`). Derivations in
:mod:`queueing_llm.theory.dynamics_integer` and ``proofs/integer_rate_limit.py``.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from ..checks import predicted
from ..model import ContinuousBatching
from ..policies import RateLimited, rate_limited
from ..runs import RunSpec, run_kind, spawn_seeds
from ..theorems import Theorem, theorems
from ..theory import dynamics as dyn
from ..theory.dynamics_integer import X as X_RATE
from ..verdict import Verdict
from . import dynamics_checks as checks
from .dynamics import SOURCE, _homogeneous_reason

__all__ = ["X_MAX", "INTEGER_RATE_RUNS", "integer_rate_check", "next_fraction"]

X_MAX = sp.Symbol("x_max")
PEAK = sp.Function("P")


def _rate_option(model: ContinuousBatching, rate: Any) -> Any:
    """The rate the theorem is evaluated at: ``rate``, else the model's rate-limited rate, else x*."""
    if rate is None:
        policy = model.policy
        rate = policy.rate if isinstance(policy, RateLimited) else None
    return dyn.fixed_point(model) if rate is None else dyn.resolve_rate(model, rate)


def _integer_reason(model: ContinuousBatching) -> str | None:
    reason = _homogeneous_reason(model)
    if reason is not None:
        return reason
    if model.is_symbolic:
        return "the integer system needs numeric l0, l1 and M"
    c = dyn.single_component(model)
    for name, v in (("prompt l0", c.l0), ("decode l1", c.l1), ("kv_capacity M", model.M)):
        if sp.sympify(v) != sp.floor(sp.sympify(v)):
            return f"the integer system needs an integer {name}, got {v}"
    return None


def _statement(model: ContinuousBatching, rate: Any = None) -> sp.Basic:
    x = X_RATE
    return sp.And(sp.Eq(PEAK(x), dyn.peak_memory_expression(model, x)),
                  sp.Eq(X_MAX, dyn.max_eviction_free_rate(model)))


def _evaluate(model: ContinuousBatching, rate: Any = None) -> dict:
    """``rate``: the token-bucket rate of ``peak_memory`` and ``congested_throughput``."""
    x = _rate_option(model, rate)
    return {
        "max_rate": dyn.max_eviction_free_rate(model),
        "peak_memory": dyn.peak_memory(model, x),
        "congested_throughput": dyn.congested_throughput(model, x),
    }


# -- check ---------------------------------------------------------------------------------
def next_fraction(x: Any, max_denominator: int) -> Fraction:
    """The smallest fraction above ``x`` with denominator at most ``max_denominator``."""
    r = sp.nsimplify(x)
    x = Fraction(int(r.p), int(r.q))
    return min(Fraction(math.floor(x * q) + 1, q) for q in range(1, int(max_denominator) + 1))


def _integer_policy(model: ContinuousBatching) -> Any:
    return rate_limited(dyn.max_eviction_free_rate(model))


def _above_policy(model: ContinuousBatching) -> Any:
    f = next_fraction(dyn.max_eviction_free_rate(model), int(dyn.single_component(model).l1))
    return rate_limited(sp.Rational(f.numerator, f.denominator))


def _model_rate_policy(model: ContinuousBatching) -> Any:
    if isinstance(model.policy, RateLimited):
        return dyn.resolve_policy(model).policy
    return rate_limited(dyn.fixed_point(model))


def _unlimited_memory(model: ContinuousBatching) -> ContinuousBatching:
    return dataclasses.replace(model, kv_capacity=math.inf)


def _token_bucket_run(index: int, iterations: int, policy: Any, label: str, transform: Any = None) -> RunSpec:
    """A saturated integer run; deterministic, its seed spawned per index only so that runs of
    equal models (the model's rate may be max_rate) are not taken for shared-seed replications."""

    def build(model: Any, seed: Any, n: int) -> Any:
        from ..sim import simulate

        return simulate(model, n, seed=spawn_seeds(seed, 4)[index], saturated=True, engine="fast")

    return RunSpec("saturated", label, build, iterations, policy, f"integer saturated run, {iterations} iterations",
                   transform)


INTEGER_RATE_RUNS = (
    _token_bucket_run(0, 1000, _integer_policy, "saturated, rate_limited(integer)"),
    _token_bucket_run(1, 1000, _above_policy, "saturated, rate_limited(next fraction above max_rate)"),
    _token_bucket_run(2, 3000, _model_rate_policy, "saturated, rate_limited(model's rate)"),
    _token_bucket_run(3, 1000, _model_rate_policy, "saturated, rate_limited(model's rate), unlimited memory",
                      _unlimited_memory),
)
"""At max_rate, at the next fraction above it, at the model's rate (x* by default), and at
the model's rate with unlimited memory (the token-bucket pattern unconstrained)."""


def _rate_of_prediction(model: ContinuousBatching) -> Any:
    """The rate of the model's own run: its rate-limited rate, else x*."""
    return dyn.resolve_rate(model) if isinstance(model.policy, RateLimited) else dyn.fixed_point(model)


def integer_rate_check(model: ContinuousBatching, runs: Any, prediction: dict, level: float = 0.95) -> Verdict:
    r"""Integer token-bucket runs against ``max_rate``, ``congested_throughput`` and
    ``peak_memory`` (exact).

    * a run at a rate :math:`r` with no eviction and cycle throughput :math:`r`, together with
      a run at the next fraction above :math:`r` (denominator :math:`\le l_1`) whose cycle
      completes less than its rate (or evicts): measured ``max_rate`` :math:`= r`;
    * a run of the model at the evaluated rate: its cycle throughput against
      ``congested_throughput``;
    * a run with unlimited memory at that rate: the largest memory over its last
      denominator-many iterations against ``peak_memory``.
    """
    name = "integer-rate-limit"
    comps, skipped, free, short = [], [], {}, {}
    L = int(dyn.single_component(model).l1)
    for run in checks.flat_runs(runs):
        kind = run_kind(run)
        rate = checks.rate_of_run(run) if kind != "open" else None
        if kind != "saturated" or rate is None:
            skipped.append(f"a {kind} run under {checks.policy_text(run)}: the statement is about integer "
                           "saturated runs under a token bucket")
            continue
        r = sp.nsimplify(rate)
        if math.isinf(float(run.model.kv_capacity)):
            q = int(r.q)
            peak = int(np.asarray(run.memory)[-q:].max())
            comps.append(checks.equal_comparison(
                "peak_memory", predicted(prediction, "peak_memory", name), peak, run,
                f"with unlimited memory the token bucket at {checks.show(r)} peaks (last {q} iterations) at"))
            continue
        cycle = dyn.detect_cycle(run)
        if cycle is None:
            comps.append(checks.Comparison("congested_throughput", r, math.nan, False,
                                           f"no periodic regime within the run at rate {checks.show(r)}",
                                           checks.run_label(run)))
            continue
        evictions = int(np.asarray(run.evictions).sum())
        exact_at_rate = evictions == 0 and checks.exact_equal(cycle.throughput, r)
        (free if exact_at_rate else short)[r] = (cycle, evictions)
        if checks.same_model(run, model) and r == sp.nsimplify(_rate_of_prediction(model)):
            comps.append(checks.equal_comparison(
                "congested_throughput", predicted(prediction, "congested_throughput", name), cycle.throughput, run,
                f"at rate {checks.show(r)} the integer cycle (period {cycle.period}, {evictions} evictions in the "
                "run) completes"))
    for r in sorted(free):
        nxt = next_fraction(r, L)
        above = short.get(sp.Rational(nxt.numerator, nxt.denominator))
        if above is None:
            continue
        c_above, ev_above = above
        comps.insert(0, checks.equal_comparison(
            "max_rate", predicted(prediction, "max_rate", name), r,
            f"saturated, rate_limited({r}) and rate_limited({nxt})",
            f"no eviction and throughput exactly {checks.show(r)} at rate {checks.show(r)}, while at the next "
            f"fraction {nxt} the cycle completes {checks.show(c_above.throughput)} ({ev_above} evictions): "
            "measured max_rate"))
    return checks.comparisons_verdict(name, "max_rate", comps, skipped, prediction)


theorems.register(Theorem(
    name="integer-rate-limit",
    comparison="integer saturated runs: at max_rate no eviction and throughput exactly max_rate, at the next "
               "fraction above it less; at the model's rate (x*) the cycle throughput against congested_throughput; "
               "with unlimited memory the pattern's peak against peak_memory: exact",
    title="Token-bucket admission in the integer system: largest eviction-free rate",
    hypotheses=("saturated input, one request type with integer l0, l1 and M",
                "token bucket of depth x + 1 at a rational rate x (the model chapter, section 3), from an empty batch",
                "eviction-free at x iff the peak P(x) of the admission pattern is at most M"),
    statement_fn=_statement, evaluate_fn=_evaluate, check_fn=integer_rate_check,
    runs=INTEGER_RATE_RUNS,
    source=f"{SOURCE}, section 5.1 in the integer system (the model chapter, section 3)", applies_fn=_integer_reason,
))
