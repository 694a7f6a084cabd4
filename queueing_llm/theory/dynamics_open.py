r"""Family A, item 7: the open system (Poisson arrivals) under a memory budget [ADLS26].

While the queue is not empty, admission only ever sees queued requests, so the batch
evolves by the *saturated* map of the policy (the model chapter, section 2), and the queue changes
by the arrival rate :math:`\lambda` minus the throughput of that congested regime. A
policy's open system is therefore stable below the smallest throughput its congested
regime can fall to, its **stability threshold** :math:`\theta`, and the queue grows at
:math:`\lambda - (\text{congested throughput})` above it. The thresholds derived here:

* ``greedy``: every cycle of the saturated map has throughput at least the worst-case
  (maximal-eviction) cycle's, :math:`M/(l_1(l_0+l_1))`, and from an empty batch the map
  falls into that cycle ([ADLS26], worst-case cycle): :math:`\theta = M/(l_1(l_0+l_1))`,
  **not** :math:`x^*`. Every rate between them congests (persistent eviction, growing
  queue), and the congested throughput lies in :math:`[\theta, x^*]`;
* ``rate_limited(x)``: admission at :math:`\min(Q_n, S_n/(l_0+1), x)` with
  :math:`x \le x^*` never evicts and completes exactly :math:`x` per iteration when
  congested ([ADLS26] section 5.1, :func:`~.dynamics_core.rate_limited_throughput`):
  :math:`\theta = x`, i.e. :math:`x^*` by default;
* ``reserve`` (FCFS admission under a peak-memory reservation, :func:`reserve_cohort_cycle`):
  a congested batch always holds at least :math:`M/w_{l_1-1}` requests, all of which
  complete within :math:`l_1` iterations, so the congested throughput is at least
  :math:`M/(l_1 (l_0 + l_1))`; from an empty batch it admits one cohort of exactly that
  size and nothing more until the cohort completes (cohort lock), which attains the
  bound: :math:`\theta = M/(l_1(l_0+l_1))`, the worst-cycle throughput again.

These are statements about the relaxed (real-valued) system. The integer system (whole
requests, ``ql.simulate``) agrees away from the thresholds but shifts them by a few
percent: measured on the example below, congested greedy completes 1.00 to 1.07 per
iteration (not exactly the worst cycle 1), reserve exactly 1 (cohorts of
:math:`\lfloor M/w_{l_1-1} \rfloor = 40`), and the rate-limited token bucket 1.575 to 1.600,
below :math:`x^* = 1.639`, so rate limiting at 1.62 already congests.

Source: [ADLS26] R. Ao, J. Dong, G. Luo, D. Simchi-Levi, *Service-Induced Congestion in
Memory-Constrained LLM Serving*, arXiv:2606.15555 (2026): worst-case cycle, rate-limited
admission (section 5.1) and the open-system example :math:`M = 2000`, :math:`l_0 = 10`,
:math:`l_1 = 40` (the model chapter, A.7, the references chapter, section 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..errors import ModelError, ParameterError, PolicyError
from ..model import ContinuousBatching, PoissonProcess
from ..numbers import is_infinite, is_symbolic
from ..policies import Greedy, Policy, RateLimited, Reserve, policy_from
from .dynamics_core import fixed_point, rate_limited_throughput
from .dynamics_cycles import CycleFormula, single_component, worst_cycle
from .dynamics_integer import resolve_rate

__all__ = [
    "OPEN_POLICIES",
    "OpenSystem",
    "open_arrival_rate",
    "reserve_cohort_cycle",
    "stability_threshold",
    "open_system",
    "open_system_reason",
]

OPEN_POLICIES = ("greedy", "rate_limited", "reserve")
"""Policies whose open-system stability threshold is derived here."""

_T = sp.Symbol("t", integer=True, nonnegative=True)


@dataclass(frozen=True)
class OpenSystem:
    r"""Stability of the open system of one policy (:func:`open_system`).

    Attributes
    ----------
    policy : str
        The policy (``"greedy"``, ``"rate_limited(x*)"``, ``"rate_limited(1.5)"``, ``"reserve"``).
    arrival_rate : sympy.Expr
        :math:`\lambda`, mean arrivals per iteration.
    threshold : sympy.Expr
        :math:`\theta`: stable for :math:`\lambda < \theta`.
    x_star : sympy.Expr
        Eviction-free fixed point :math:`x^*` (the largest eviction-free throughput).
    worst_cycle : sympy.Expr
        Worst-case cycle throughput :math:`M/(l_1(l_0+l_1))`.
    stable : bool or sympy relational
        :math:`\lambda < \theta` (a relation when the parameters are symbolic).
    congested : tuple of sympy.Expr
        Range :math:`[\underline c, \overline c]` of the congested (saturated) throughput of
        the relaxed system: :math:`[\theta, x^*]` for greedy and reserve, :math:`[x, x]`
        for rate limiting.
    drift : tuple of sympy.Expr
        Range of the queue's growth rate when congested, :math:`\lambda - \overline c`
        to :math:`\lambda - \underline c`.
    reason : str
        Which result fixes the threshold.
    """

    policy: str
    arrival_rate: sp.Expr
    threshold: sp.Expr
    x_star: sp.Expr
    worst_cycle: sp.Expr
    stable: Any
    congested: tuple[sp.Expr, sp.Expr]
    drift: tuple[sp.Expr, sp.Expr]
    reason: str


def open_system_reason(model: ContinuousBatching, policy: Any = None) -> str | None:
    """None if the open-system results cover ``model`` (with ``policy``, default its own),
    else the reason they do not."""
    found = _reason(model, policy)
    return None if found is None else found[0]


def _reason(model: ContinuousBatching, policy: Any) -> tuple[str, type[ModelError]] | None:
    found = _model_reason(model)
    if found is not None:
        return found, ParameterError
    pol = _policy(model, policy)
    if not isinstance(pol, (Greedy, RateLimited, Reserve)):
        return (f"policy {pol} is not covered: the open-system thresholds are derived for "
                f"{', '.join(OPEN_POLICIES)}"), PolicyError
    if isinstance(pol, RateLimited) and pol.rate is not None and not model.is_symbolic:
        xs = fixed_point(model)
        if not is_symbolic(xs) and resolve_rate(model, pol.rate) > xs:
            return (f"the policy's rate {pol.rate} exceeds x* = {xs}: rate limiting above x* does not prevent "
                    "evictions"), PolicyError
    return None


def _model_reason(model: ContinuousBatching) -> str | None:
    if not isinstance(model, ContinuousBatching):
        return f"expected a ql.ContinuousBatching model, got {type(model).__name__}"
    if is_infinite(model.kv_capacity):
        return "kv_capacity M is infinite: memory never binds and there are no memory-constrained dynamics"
    if model.K != 1:
        return f"the open-system result is for one request type with a deterministic decode length; got {model.K} types"
    try:
        single_component(model)
    except ModelError as exc:
        return str(exc)
    (t,) = model.types
    if t.arrivals is None:
        return "the model has no arrivals (saturated-only); the open-system result needs an arrival law per iteration"
    if isinstance(t.arrivals, PoissonProcess):
        return "arrivals are a PoissonProcess in seconds (wall-clock mode); the result is for arrivals per iteration"
    if not is_infinite(model.batch_cap):
        return (f"batch cap B = {model.batch_cap} is finite; the thresholds are derived for B = inf "
                "(a finite cap adds the bound B/l1)")
    if not is_infinite(model.waiting_cap):
        return (f"waiting-room cap {model.waiting_cap} is finite: the queue cannot grow, arrivals are rejected "
                "instead; the result is for an unlimited waiting room")
    return None


def _policy(model: ContinuousBatching, policy: Any) -> Policy:
    return model.policy if policy is None else policy_from(policy)


def _require(model: ContinuousBatching, policy: Any = None) -> Policy:
    found = _reason(model, policy)
    if found is not None:
        raise found[1](f"open-system stability: {found[0]}")
    return _policy(model, policy)


def open_arrival_rate(model: ContinuousBatching) -> sp.Expr:
    r""":math:`\lambda = E[A_n]`, the mean arrivals per iteration of a one-type open model
    (the mean of its arrival law; a number or a symbol). Source: the model chapter, section 2."""
    reason = _model_reason(model)
    if reason is not None:
        raise ParameterError(f"open-system arrival rate: {reason}")
    return sp.sympify(model.types[0].arrival_rate)


def reserve_cohort_cycle(model: ContinuousBatching) -> CycleFormula:
    r"""The congested regime of FCFS admission under peak-memory reservation (``reserve``).

    A cohort of :math:`c` requests admitted together holds :math:`c\,w_t`,
    :math:`w_t = l_0 + 1 + t`, after :math:`t` iterations. Its peak over its life
    :math:`0 \le t < l_1` is at the last stage, since :math:`w_{t+1} - w_t = 1 > 0`; from an
    empty batch with a long queue the rule admits the largest cohort whose peak fits,

    .. math:: c\, w_{l_1 - 1} = M, \qquad c = \frac{M}{l_0 + l_1},

    and then nothing: a candidate would add :math:`w_{l_1-1-s} > 0` to the cohort's peak,
    :math:`s` iterations after the cohort's admission. One cohort completes per period
    :math:`l_1`:

    .. math:: \theta_{\rm reserve} = \frac{M}{l_1 (l_0 + l_1)}.

    It is the least congested throughput: a candidate is refused only if some future
    memory :math:`R(t)` would exceed :math:`M` (relaxed: reach :math:`M`); the members alive at
    :math:`t` each hold at most :math:`w_{l_1-1}`, so at least :math:`M/w_{l_1-1}` members are
    present, and they all complete within :math:`l_1` iterations (in the integer system
    :math:`\lfloor M/w_{l_1-1} \rfloor`). Source: the reservation rule of the model chapter, section 3,
    with the memory accounting of [ADLS26].
    """
    c = single_component(model)
    size = sp.Symbol("c")
    # the stage memory grows by w_{t+1} - w_t = 1 > 0 token per iteration: the peak is at t = l1 - 1
    if not sp.simplify(c.w(_T + 1) - c.w(_T)).is_positive:  # pragma: no cover - w_j = l0 + 1 + j
        raise ModelError("stage memory does not increase with the stage")
    balance = sp.Eq(size * c.w(c.l1 - 1), model.M)
    solution = sp.solve(balance, size, dict=True)
    if len(solution) != 1:  # pragma: no cover - linear balance
        raise ModelError(f"the reserve cohort balance has no unique solution: {solution}")
    cohort = sp.factor(solution[0][size])
    return CycleFormula("reserve-cohort", balance, {size: cohort}, c.l1, cohort, sp.factor(cohort / c.l1))


def stability_threshold(model: ContinuousBatching, policy: Any = None) -> sp.Expr:
    r"""The stability threshold :math:`\theta` of the open system under ``policy``
    (default: the model's): stable for :math:`\lambda < \theta`.

    .. math:: \theta_{\rm greedy} = \theta_{\rm reserve} = \frac{M}{l_1 (l_0 + l_1)}, \qquad
              \theta_{{\rm rate\_limited}(x)} = x \le x^* = \frac{2M}{l_1(2 l_0 + l_1 + 1)}.

    Derived from the worst-case cycle (:func:`~.dynamics_cycles.worst_cycle`), the
    rate-limited throughput (:func:`~.dynamics_core.rate_limited_throughput`) and the
    reserve cohort (:func:`reserve_cohort_cycle`). Source: [ADLS26] (the model chapter, A.7).
    """
    return open_system(model, policy).threshold


def open_system(model: ContinuousBatching, policy: Any = None, rate: Any = None) -> OpenSystem:
    r"""Stability of the open system: threshold, congested throughput and queue drift.

    With :math:`\lambda` the arrival rate (``rate``, default the model's) and :math:`\theta`
    the policy's threshold (:func:`stability_threshold`), the queue is stable iff
    :math:`\lambda < \theta`; when congested it grows at
    :math:`\lambda - c`, :math:`c` the throughput of the congested regime, which lies in
    :math:`[\theta, x^*]` for greedy and reserve and equals :math:`x` under rate limiting.
    For greedy admission every rate in :math:`(M/(l_1(l_0+l_1)), x^*)` congests, whereas
    rate limiting at :math:`x^*` is stable up to :math:`x^*`: the gap is

    .. math:: x^* - \frac{M}{l_1(l_0+l_1)} = \frac{M (l_1 - 1)}{l_1 (l_0+l_1)(2 l_0 + l_1 + 1)}.

    Example (the references chapter, section 1): :math:`M = 2000`, :math:`l_0 = 10`, :math:`l_1 = 40`: greedy
    threshold 1, :math:`x^* = 100/61 \approx 1.64`. Source: [ADLS26] (the model chapter, A.7).
    """
    pol = _require(model, policy)
    lam = open_arrival_rate(model) if rate is None else sp.nsimplify(sp.sympify(rate))
    xs = fixed_point(model)
    worst = worst_cycle(model).throughput
    if isinstance(pol, Greedy):
        theta = worst
        congested = (worst, xs)
        reason = ("greedy: every cycle of the saturated map completes at least the worst-case cycle's "
                  "M/(l1 (l0 + l1)); the congested system falls to it, so greedy is stable only below it")
    elif isinstance(pol, Reserve):
        theta = reserve_cohort_cycle(model).throughput
        congested = (theta, xs)
        reason = ("reserve: a congested batch holds at least M/(l0 + l1) requests, all completing within l1 "
                  "iterations; from an empty batch FCFS reservation locks into cohorts of exactly that size")
    else:
        rate = None if pol.rate is None else resolve_rate(model, pol.rate)
        theta = rate_limited_throughput(model, rate)["throughput"]
        congested = (theta, theta)
        reason = ("rate_limited: admitting at most x <= x* per iteration never evicts and completes x per "
                  "iteration when congested")
    stable = sp.Lt(lam, theta)
    stable = bool(stable) if stable in (sp.true, sp.false) else stable
    drift = (lam - congested[1], lam - congested[0])
    return OpenSystem(str(pol), lam, theta, xs, worst, stable, congested, drift, reason)
