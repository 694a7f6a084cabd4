r"""Built-in theorems of the model chapter, section 5, family A (memory-constrained dynamics, [ADLS26]).

Importing the module registers (``integer-rate-limit``: :mod:`.dynamics_integer`;
``open-system``: :mod:`.dynamics_open`):

========================  ===================================================================
``fixed-point``           ``x_star``: eviction-free fixed point :math:`x^* = M/\sum_k p_k C_k`
``linear-map``            ``spectral_radius``, ``stable``: the linearised map and its roots
``worst-cycle``           ``throughput``, ``ratio``: :math:`M/(l_1(l_0+l_1))` and its ratio to
                          x*; ``integer_throughput``: the integer system's cycle from empty
``cycles``                ``adjacent``, ``opposite``, ``contiguous``, ``balanced``; ``integer``:
                          integer versions of the cycles the default runs start on
``gcd-criterion``         ``gcd``, ``limiting_radius``, ``spectral_radius``, ``stable``, ``l0_min``
``rate-limited``          ``throughput``: rate limiting at :math:`x \le x^*` never evicts
========================  ===================================================================

Options of ``evaluate``: ``cycles`` takes ``block=i`` (one contiguous-block cycle :math:`c_i`)
and ``spacing=d`` (one evenly spaced cycle; by default all, as dicts by ``i`` and ``d``);
``gcd-criterion`` takes ``ratios`` (prompt ratios :math:`r_k` of the limit) and ``max_l0``
(search limit of ``l0_min``); ``rate-limited`` takes ``rate`` (default: the policy's rate,
``"integer"`` resolved, else :math:`x^*`).

Every ``statement`` is derived by :mod:`queueing_llm.theory.dynamics` from the model. The
checks (:mod:`.dynamics_checks`) compare ``evaluate``'s prediction where the theorem is
tight, on the runs each theorem declares in ``Theorem.runs`` (exact relaxed runs at
:math:`x^*`, from an empty batch and on the catalogued cycles; float relaxed runs near
:math:`x^*`; integer saturated runs): exact comparisons, or a stated tolerance for float
relaxed runs, no confidence interval (``level`` is accepted and unused). A run that
violates a hypothesis (another policy, an integer run for a relaxed statement, an open
run) makes the verdict "does not apply", never FAILS.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from ..errors import ModelError
from ..model import ContinuousBatching
from ..numbers import is_infinite, is_symbolic
from ..policies import RateLimited
from ..theorems import Theorem, theorems
from ..theory import dynamics as dyn
from . import dynamics_checks as checks

__all__ = ["SOURCE"]

SOURCE = "[ADLS26] Ao, Dong, Luo, Simchi-Levi, arXiv:2606.15555 (2026)"
X_STAR = sp.Symbol("x_star")


# -- applicability -------------------------------------------------------------------------
def _memory_reason(model: ContinuousBatching) -> str | None:
    if is_infinite(model.kv_capacity):
        return "kv_capacity M is infinite: memory never binds and there are no memory-constrained dynamics"
    return None


def _finite_decode_reason(model: ContinuousBatching) -> str | None:
    reason = _memory_reason(model)
    if reason is not None:
        return reason
    try:
        dyn.components(model)
    except ModelError as exc:
        return str(exc)
    return None


def _homogeneous_reason(model: ContinuousBatching) -> str | None:
    reason = _finite_decode_reason(model)
    if reason is not None:
        return reason
    if len({(c.l0, c.l1) for c in dyn.components(model)}) != 1:
        return "the cycle results are for one request type with a deterministic decode length"
    return None


def _cycles_reason(model: ContinuousBatching) -> str | None:
    reason = _homogeneous_reason(model)
    if reason is None:
        l1 = dyn.single_component(model).l1
        if not is_symbolic(l1) and int(l1) < 2:
            return "l1 = 1: every request completes after one iteration, so the map has no cycle but its fixed point"
    return reason


def _gcd_reason(model: ContinuousBatching) -> str | None:
    reason = _finite_decode_reason(model)
    if reason is not None:
        return reason
    if any(is_symbolic(c.l1) for c in dyn.components(model)):
        return "the gcd criterion needs numeric decode lengths"
    return None


def _rate_reason(model: ContinuousBatching) -> str | None:
    reason = _memory_reason(model)
    if reason is not None:
        return reason
    policy = model.policy
    if isinstance(policy, RateLimited) and policy.rate is not None and not model.is_symbolic:
        xs = dyn.fixed_point(model)
        if dyn.resolve_rate(model, policy.rate) > xs:
            return (f"the policy's rate {policy.rate} exceeds x* = {xs}: "
                    "rate limiting above x* does not prevent evictions")
    return None


# -- helpers for checks --------------------------------------------------------------------
def _f(value: Any) -> float:
    return float(value) if not isinstance(value, sp.Basic) else float(value.evalf())


# -- fixed point ---------------------------------------------------------------------------
def _fixed_point_statement(model: ContinuousBatching) -> sp.Basic:
    return sp.Eq(X_STAR, dyn.fixed_point(model))


def _fixed_point_evaluate(model: ContinuousBatching) -> dict:
    return {"x_star": dyn.fixed_point(model)}


# -- linear map ----------------------------------------------------------------------------
def _linear_statement(model: ContinuousBatching) -> sp.Basic:
    return sp.Eq(sp.Function("F")(dyn.LAMBDA), dyn.survival_polynomial(model))


def _linear_evaluate(model: ContinuousBatching) -> dict:
    return {"spectral_radius": dyn.spectral_radius(model), "stable": dyn.is_stable(model)}


# -- worst cycle ---------------------------------------------------------------------------
def _worst_statement(model: ContinuousBatching) -> sp.Basic:
    th = dyn.worst_cycle(model).throughput
    return sp.And(sp.Eq(sp.Symbol("x_worst"), th), sp.Eq(sp.Symbol("x_worst") / X_STAR,
                                                         sp.factor(th / dyn.fixed_point(model))))


def _worst_evaluate(model: ContinuousBatching) -> dict:
    """``integer_throughput``: the cycle the integer greedy system falls into from an empty
    batch (exact iteration of the integer map; numeric integer models only, else ``nan``)."""
    th = dyn.worst_cycle(model).throughput
    return {"throughput": th, "ratio": sp.factor(th / dyn.fixed_point(model)),
            "integer_throughput": _integer_or_nan(model, dyn.integer_cycle_throughput)}


def _integer_or_nan(model: ContinuousBatching, fn: Any) -> Any:
    """``fn(model)`` for numeric models with integer l0, l1 and M (the integer system); ``nan``
    otherwise (symbolic parameters, or a mean prompt that is not a whole number of tokens)."""
    c = dyn.single_component(model)
    values = (c.l0, c.l1, model.M)
    if model.is_symbolic or any(is_symbolic(v) for v in values):
        return sp.nan
    if any(sp.sympify(v) != sp.floor(sp.sympify(v)) for v in values):
        return sp.nan
    return fn(model)


# -- other cycles --------------------------------------------------------------------------
def _cycles_statement(model: ContinuousBatching) -> sp.Basic:
    c = dyn.single_component(model)
    parts = [sp.Eq(sp.Symbol("x_adjacent"), dyn.adjacent_cycle(model).throughput)]
    if is_symbolic(c.l1) or int(c.l1) % 2 == 0:
        parts.append(sp.Eq(sp.Symbol("x_opposite"), dyn.opposite_cycle(model).throughput))
    parts.append(sp.Eq(sp.Symbol("c_i"), dyn.contiguous_cycle(model).throughput))
    parts.append(sp.Eq(sp.Symbol("x_balanced_d"), dyn.balanced_cycle(model).throughput))
    return sp.And(*parts)


def _cycles_evaluate(model: ContinuousBatching, block: Any = None, spacing: Any = None) -> dict:
    """``block`` = i selects one contiguous cycle, ``spacing`` = d one evenly spaced cycle;
    by default all of them (dicts by i and by d; expressions in i and d for symbolic l1)."""
    all_ = dyn.cycle_throughputs(model)
    out = {
        "adjacent": all_["adjacent"],
        "opposite": all_["opposite"],
        "contiguous": all_["contiguous"] if block is None else dyn.contiguous_cycle(model, block).throughput,
        "balanced": all_["balanced"] if spacing is None else dyn.balanced_cycle(model, spacing).throughput,
        "integer": _integer_or_nan(model, checks.integer_cycle_values),
    }
    if out["opposite"] is sp.nan:  # odd l1: no opposite cycle (None, not a NaN number)
        out["opposite"] = None
    return out


# -- gcd criterion -------------------------------------------------------------------------
def _gcd_statement(model: ContinuousBatching, ratios: Any = None) -> sp.Basic:
    lam = dyn.LAMBDA
    return sp.Eq((1 - lam) * sp.Function("A")(lam), dyn.limiting_closed_form(model, lam, ratios))


def _gcd_evaluate(model: ContinuousBatching, ratios: Any = None, max_l0: int = 10**6) -> dict:
    """``ratios``: prompt ratios r_k of the limit (default: equal prompts -> 1, else the
    prompts); ``max_l0``: search limit of ``l0_min``."""
    return {
        "gcd": dyn.decode_gcd(model),
        "limiting_radius": dyn.limiting_radius(model, ratios),
        "spectral_radius": dyn.spectral_radius(model),
        "stable": dyn.is_stable(model),
        "l0_min": dyn.l0_min(model, max_l0=max_l0),
    }


# -- rate-limited admission ----------------------------------------------------------------
def _rate_of(model: ContinuousBatching, rate: Any) -> Any:
    """The rate option, else the policy's rate (``"integer"`` resolved), else None (x*)."""
    if rate is None:
        policy = model.policy
        rate = policy.rate if isinstance(policy, RateLimited) else None
    return None if rate is None else dyn.resolve_rate(model, rate)


def _rate_statement(model: ContinuousBatching, rate: Any = None) -> sp.Basic:
    r = dyn.rate_limited_throughput(model, _rate_of(model, rate))
    return sp.And(sp.Eq(sp.Symbol("throughput"), r["throughput"]), sp.Eq(sp.Symbol("evictions"), 0))


def _rate_evaluate(model: ContinuousBatching, rate: Any = None) -> dict:
    """``rate``: admissions per iteration (default: the policy's rate, else x*)."""
    return {"throughput": dyn.rate_limited_throughput(model, _rate_of(model, rate))["throughput"]}


# -- registration --------------------------------------------------------------------------
theorems.register(Theorem(
    name="fixed-point",
    comparison="a relaxed greedy run (exact rationals) started at the uniform state p_c x* stays there exactly, "
               "completing x* every iteration: exact",
    title="Eviction-free fixed point of the saturated map",
    hypotheses=("saturated input (the queue never empties)", "finite KV budget M",
                "relaxed map: real-valued stage counts; prompts enter through their mean",
                "multi-type: admissions in proportions p_k"),
    statement_fn=_fixed_point_statement, evaluate_fn=_fixed_point_evaluate, check_fn=checks.fixed_point_check,
    runs=checks.FIXED_POINT_RUNS,
    source=f"{SOURCE}, eviction-free fixed point (the model chapter, A.1)", applies_fn=_memory_reason,
))
theorems.register(Theorem(
    name="linear-map",
    comparison="growth factor per iteration of the deviation from x* (least squares) in a relaxed float run "
               "started 1e-4 from x*, before the first eviction, against spectral_radius: relative tolerance 1 %; "
               "contraction against stable",
    title="Linearised saturated map: survival polynomial and spectral radius",
    hypotheses=("saturated input, greedy admission, finite M", "deterministic or finite-support decode lengths",
                "linearisation around the eviction-free fixed point (no eviction)"),
    statement_fn=_linear_statement, evaluate_fn=_linear_evaluate, check_fn=checks.linear_map_check,
    runs=checks.LINEAR_RUNS,
    source=f"{SOURCE}, linearisation and Enestrom-Kakeya (the model chapter, A.2)", applies_fn=_finite_decode_reason,
))
theorems.register(Theorem(
    name="worst-cycle",
    comparison="cycle throughput of the relaxed greedy map from an empty batch (exact), its ratio to the "
               "run at x* (exact), the integer greedy cycle from an empty batch against integer_throughput (exact)",
    title="Worst-case (maximal-eviction) cycle and its throughput",
    hypotheses=("saturated input, greedy admission, finite M", "one request type, deterministic decode length",
                "every cycle of the relaxed map has at least this throughput"),
    statement_fn=_worst_statement, evaluate_fn=_worst_evaluate, check_fn=checks.worst_cycle_check,
    runs=checks.WORST_CYCLE_RUNS,
    source=f"{SOURCE}, worst-case cycle (the model chapter, A.3)", applies_fn=_homogeneous_reason,
))
theorems.register(Theorem(
    name="cycles",
    comparison="cycle throughput of relaxed runs started on the adjacent, a contiguous-block and an evenly "
               "spaced cycle (exact), and of integer runs from their floored states against integer (exact)",
    title="Adjacent, opposite, contiguous-block and evenly spaced cycles",
    hypotheses=("saturated input, greedy admission, finite M", "one request type, deterministic decode length",
                "opposite: l1 even; evenly spaced: d divides l1; contiguous: 0 <= i < l1"),
    statement_fn=_cycles_statement, evaluate_fn=_cycles_evaluate, check_fn=checks.cycles_check,
    runs=checks.CYCLES_RUNS,
    source=f"{SOURCE}, Propositions 2-4 (the model chapter, A.4)", applies_fn=_cycles_reason,
))
theorems.register(Theorem(
    name="gcd-criterion",
    comparison="as linear-map, plus l0_min measured by relaxed runs at common prompts l0_min - 1 (no "
               "contraction) and l0_min (contraction): exact",
    title="Multi-type stability: limiting polynomial and the gcd criterion",
    hypotheses=("saturated input, greedy admission, finite M", "numeric deterministic or finite-support decodes",
                "large prompts l0_k = r_k s, s -> infinity, for the limiting polynomial",
                "l0_min: common prompt length for every type"),
    statement_fn=_gcd_statement, evaluate_fn=_gcd_evaluate, check_fn=checks.gcd_check,
    runs=checks.GCD_RUNS,
    source=f"{SOURCE}, multi-type stability (the model chapter, A.5)", applies_fn=_gcd_reason,
))
theorems.register(Theorem(
    name="rate-limited",
    comparison="cycle throughput of the relaxed map under rate_limited(x) from an empty batch against "
               "throughput, and no eviction: exact",
    title="Rate-limited admission at x* removes evictions",
    hypotheses=("saturated input, finite M", "admit min(Q_n, S_n/(l0+1), x) per iteration with x <= x*",
                "relaxed map from an empty batch (integer runs: token bucket of depth x + 1)"),
    statement_fn=_rate_statement, evaluate_fn=_rate_evaluate, check_fn=checks.rate_limited_check,
    runs=checks.RATE_LIMITED_RUNS,
    source=f"{SOURCE}, section 5.1 (the model chapter, A.6)", applies_fn=_rate_reason,
))
