r"""Admission rules of the model chapter, section 3, executed by both engines.

A model's policy (``queueing_llm.policies``) is only a description; :func:`admission_rule`
turns it into a rule object with the per-run state the rule needs (a token bucket, a
memory reservation profile). Both engines drive a rule through the same calls, so they
take the same decisions:

* ``begin(n, memory, size)`` once per iteration, at the admission step (after execution
  and eviction), even in an iteration whose admission is skipped;
* ``allows(memory, size, prompt, decode)`` for the candidate at the head of the queue
  (FCFS: admission stops at the first candidate refused), then ``admitted(n, prompt,
  decode)`` if it is taken;
* ``evicted(n, admission, prompt, decode)`` after each eviction and ``present(admission,
  prompt, decode)`` for each member of an initial batch (admission ``-stage``).

``memory`` is the batch's KV tokens :math:`\sum_{k,j} w_{k,j} x_{k,j}` and ``size`` its
number of members, both after the admissions already made in this iteration. An admitted
request enters stage 0 and holds :math:`w_0 = l_0 + 1` tokens.

Source: [ADLS26] sections 2 and 5.1 (greedy and rate-limited admission), the model chapter, section 3.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import sympy as sp

from ..errors import PolicyError
from ..model import ContinuousBatching
from ..numbers import to_float
from ..policies import FcfsCap, Greedy, NestedWait, Policy, RateLimited, Reserve, Static, Wait
from .scheduling import scheduled_rule

__all__ = [
    "AdmissionRule",
    "GreedyAdmission",
    "RateLimitedAdmission",
    "ReserveAdmission",
    "StaticAdmission",
    "FcfsCapAdmission",
    "admission_rule",
    "register_rule",
    "RULES",
    "fixed_point_rate",
]


class AdmissionRule:
    r"""Base of the admission rules: batch cap only.

    Parameters
    ----------
    M : int or float
        KV budget in tokens (``math.inf`` if unlimited).
    B : int or float
        Batch cap (``math.inf`` if uncapped).
    """

    def __init__(self, M: float, B: float) -> None:
        self.M = M
        self.B = B

    tracks_evictions = False
    """True if the rule must be told about evictions (the fast engine skips the call otherwise)."""

    tracks_admissions = False
    """True if the rule must be told about admissions (the fast engine skips the call otherwise)."""

    def begin(self, n: int, memory: int, size: int) -> None:
        """Start the admission step of iteration ``n``."""

    def allows(self, memory: int, size: int, prompt: int, decode: int) -> bool:
        """True if the candidate (prompt, decode) is admitted now."""
        return size < self.B

    def admitted(self, n: int, prompt: int, decode: int) -> None:
        """The candidate was admitted at iteration ``n``."""

    def evicted(self, n: int, admission: int, prompt: int, decode: int) -> None:
        """A member admitted at ``admission`` was evicted at iteration ``n``."""

    def present(self, admission: int, prompt: int, decode: int) -> None:
        """A member of the initial batch, admitted at ``admission = -stage``."""


class GreedyAdmission(AdmissionRule):
    r"""Greedy (vLLM-like) admission, the [ADLS26] baseline.

    Admit the head of the queue while

    .. math:: \text{memory} + l_0 + 1 \le M \quad\text{and}\quad \text{size} < B,

    a one-step feasibility check with no reservation for the growth of the admitted
    requests (which may later force evictions). With a deterministic prompt and free memory
    :math:`S_n` this admits :math:`\lfloor S_n/(l_0+1) \rfloor` requests (the integer system
    of [ADLS26], Example 1).
    """

    def allows(self, memory: int, size: int, prompt: int, decode: int) -> bool:
        return size < self.B and memory + prompt + 1 <= self.M


class RateLimitedAdmission(GreedyAdmission):
    r"""Rate-limited admission ([ADLS26] section 5.1): greedy with at most :math:`x` admissions per iteration.

    A token bucket meets a fractional rate on average: at each iteration's admission step
    the bucket gains :math:`x` tokens and is capped at depth :math:`x + 1`,

    .. math:: b_n = \min(b_{n-1} + x,\; x + 1), \qquad b_{-1} = 0,

    and each admission needs and spends one token (besides the greedy check). ``rate=None``
    means the eviction-free fixed point :math:`x^* = M / \sum_k p_k C_k` of [ADLS26]
    (:func:`fixed_point_rate`).

    The bucket is kept in exact rationals (:class:`fractions.Fraction`): in floating point
    the cumulative tokens :math:`(n+1)x` fall just short of an integer when they should
    equal it (at :math:`x = 57/35`, :math:`n = 34`: 1.9999999 tokens instead of 2), which
    loses an admission and changes the cycle the integer system settles on.

    Parameters
    ----------
    rate : float or Fraction
        Admissions per iteration :math:`x > 0` (``math.inf``: no limit); a float is taken at
        its exact binary value.
    """

    tracks_admissions = True

    def __init__(self, M: float, B: float, rate: float | Fraction) -> None:
        super().__init__(M, B)
        self.rate = rate if math.isinf(rate) else Fraction(rate)
        self.tokens = Fraction(0) if not math.isinf(rate) else 0.0

    def begin(self, n: int, memory: int, size: int) -> None:
        self.tokens = min(self.tokens + self.rate, self.rate + 1)

    def allows(self, memory: int, size: int, prompt: int, decode: int) -> bool:
        return self.tokens >= 1 and size < self.B and memory + prompt + 1 <= self.M

    def admitted(self, n: int, prompt: int, decode: int) -> None:
        self.tokens -= 1


class ReserveAdmission(AdmissionRule):
    r"""Admission with memory reservation: never evicts.

    Each member (and the candidate) is assumed to grow to its own decode length
    :math:`l_1` (the simulator knows every request's sampled length). A member admitted at
    iteration :math:`a` with prompt :math:`p` and decode :math:`d` holds
    :math:`p + 1 + (t - a)` tokens after the execution of iteration :math:`t`, for
    :math:`a \le t < a + d`. The rule keeps the future profile
    :math:`R(t) = \sum_{\text{members}} [a \le t < a+d]\,(p + 1 + t - a)` and admits a
    candidate at iteration :math:`n` only if

    .. math:: \max_{0 \le j < d} \big(R(n + j) + p + 1 + j\big) \le M

    and the batch is below :math:`B`. From an empty batch the memory therefore never
    exceeds :math:`M` and no eviction ever happens.
    """

    tracks_evictions = True
    tracks_admissions = True

    def __init__(self, M: float, B: float, horizon: int) -> None:
        super().__init__(M, B)
        self.H = horizon + 1  # slots of a circular profile; horizon = largest decode length
        self.profile = [0] * self.H
        self.n = 0

    def _add(self, admission: int, prompt: int, decode: int, sign: int, since: int) -> None:
        H, R = self.H, self.profile
        for t in range(max(admission, since), admission + decode):
            R[t % H] += sign * (prompt + 1 + t - admission)

    def begin(self, n: int, memory: int, size: int) -> None:
        self.n = n
        self.profile[(n - 1) % self.H] = 0  # iteration n-1 is past

    def allows(self, memory: int, size: int, prompt: int, decode: int) -> bool:
        if size >= self.B:
            return False
        if math.isinf(self.M):
            return True
        H, R, n = self.H, self.profile, self.n
        w = prompt + 1
        for j in range(decode):
            if R[(n + j) % H] + w + j > self.M:
                return False
        return True

    def admitted(self, n: int, prompt: int, decode: int) -> None:
        if not math.isinf(self.M):
            self._add(n, prompt, decode, +1, n)

    def evicted(self, n: int, admission: int, prompt: int, decode: int) -> None:
        if not math.isinf(self.M):
            self._add(admission, prompt, decode, -1, n)

    def present(self, admission: int, prompt: int, decode: int) -> None:
        if not math.isinf(self.M):
            self._add(admission, prompt, decode, +1, 0)


class StaticAdmission(GreedyAdmission):
    r"""Static batching: admit only when the batch is empty.

    At an admission step that starts with an empty batch, admit FCFS while
    :math:`\text{memory} + l_0 + 1 \le M` and :math:`\text{size} < B` (up to :math:`B`
    requests, memory permitting); otherwise admit nothing until the batch has drained.
    """

    def __init__(self, M: float, B: float) -> None:
        super().__init__(M, B)
        self.open = False

    def begin(self, n: int, memory: int, size: int) -> None:
        self.open = size == 0

    def allows(self, memory: int, size: int, prompt: int, decode: int) -> bool:
        return self.open and size < self.B and memory + prompt + 1 <= self.M


class FcfsCapAdmission(AdmissionRule):
    r"""The classical batch-capped queue: no memory limit, admit FCFS while
    :math:`\text{size} < B` (the model chapter, section 5, family B)."""


def fixed_point_rate(model: ContinuousBatching) -> float:
    r"""The eviction-free fixed point :math:`x^* = M / \sum_k p_k E[C_k]` as a float.

    :math:`C_k = \sum_{j<l_1} w_j = l_1 (l_0 + (l_1+1)/2)` is the lifetime memory of a
    type-:math:`k` request (its mean for random lengths) and :math:`p_k` the admission
    proportions ([ADLS26] section 3, multi-type fixed point). ``inf`` when :math:`M` is.
    """
    return to_float(model.M / model.mean_lifetime_memory, "x* = M / mean lifetime memory")


def _exact_rate(value: Any) -> Fraction | float:
    """A rate as an exact :class:`~fractions.Fraction` (SymPy rationals and integers exactly,
    floats at their binary value); ``inf`` stays a float."""
    x = to_float(value, "rate_limited rate")
    if math.isinf(x):
        return x
    if isinstance(value, sp.Rational):
        return Fraction(int(value.p), int(value.q))
    if isinstance(value, (int, Fraction)):
        return Fraction(value)
    return Fraction(x)


def _rate_limited(model: ContinuousBatching, M: float, B: float) -> AdmissionRule:
    policy = model.policy
    if isinstance(policy.rate, str):
        raise PolicyError(
            f"policy {policy} names a rate derived by the theory layer; resolve it to a number before "
            "simulating: ql.theory.dynamics.resolve_policy(model)"
        )
    rate = _exact_rate(model.M / model.mean_lifetime_memory if policy.rate is None else policy.rate)
    return RateLimitedAdmission(M, B, rate)


def _reserve(model: ContinuousBatching, M: float, B: float) -> AdmissionRule:
    horizon = model.max_decode
    return ReserveAdmission(M, B, 1 if math.isinf(horizon) else int(horizon))


RuleFactory = Callable[[ContinuousBatching, float, float], Any]

RULES: dict[type[Policy], RuleFactory] = {
    Greedy: lambda model, M, B: GreedyAdmission(M, B),
    RateLimited: _rate_limited,
    Reserve: _reserve,
    Static: lambda model, M, B: StaticAdmission(M, B),
    FcfsCap: lambda model, M, B: FcfsCapAdmission(M, B),
    Wait: scheduled_rule,
    NestedWait: scheduled_rule,
}
"""The rule of each policy class: ``factory(model, M, B)`` returns a fresh rule object with its
per-run state. A new policy is a value in :mod:`queueing_llm.policies` (and its name in
``POLICY_NAMES``) plus one entry here (:func:`register_rule`)."""


def register_rule(policy_class: type[Policy], factory: RuleFactory) -> None:
    """Register the admission rule of a policy class (replacing any previous one)."""
    if not (isinstance(policy_class, type) and issubclass(policy_class, Policy)):
        raise PolicyError(f"policy_class must be a subclass of ql.Policy, got {policy_class!r}")
    RULES[policy_class] = factory


def admission_rule(model: ContinuousBatching, M: float, B: float) -> Any:
    """A fresh rule object (with its per-run state) for the model's policy: an
    :class:`AdmissionRule` (FCFS head-of-queue rules) or a
    :class:`~queueing_llm.sim.scheduling.ScheduledRule` (WAIT policies)."""
    factory = RULES.get(type(model.policy))
    if factory is None:
        raise PolicyError(f"no admission rule is registered for policy {model.policy} "
                          f"({type(model.policy).__name__}); register one with register_rule")
    return factory(model, M, B)
