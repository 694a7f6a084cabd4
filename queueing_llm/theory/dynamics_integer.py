r"""The integer saturated system: token-bucket admission, its peak memory, and exact cycles.

The relaxed map admits :math:`x^*` per iteration; the integer system (whole requests, the
simulators of :mod:`queueing_llm.sim`) cannot. A token bucket at a rational rate
:math:`x = p/q` (lowest terms) that never meets the memory limit admits, in iteration
:math:`n` from an empty batch (the model chapter, section 3),

.. math:: a_n = \lfloor (n+1) x \rfloor - \lfloor n x \rfloor, \qquad
          F(m) := \lfloor m x \rfloor,

a Beatty pattern of period :math:`q`. With :math:`w_j = l_0 + 1 + j` the memory after
admission at iteration :math:`n` is, by summation by parts (:math:`m = n + 1 - l_1`),

.. math:: \mathcal M_n = \sum_{j=0}^{l_1-1} w_j a_{n-j}
          = (l_0+1)\,\bigl(F(m+l_1) - F(m)\bigr) + \sum_{i=1}^{l_1-1} \bigl(F(m+i) - F(m)\bigr),

and :math:`F(m+i) - F(m) = \lfloor i x + f \rfloor` with :math:`f = \{m x\}`, which runs
through :math:`0, 1/q, \dots, (q-1)/q`. Each term increases with :math:`f`, and at
:math:`f = (q-1)/q` it equals :math:`\lceil i x \rceil` (:math:`ix = k/q`), so the **peak
memory** of the pattern is

.. math:: P(x) = \max_n \mathcal M_n = (l_0 + 1) \lceil l_1 x \rceil
          + \sum_{i=1}^{l_1 - 1} \lceil i x \rceil .

If :math:`P(x) \le M` the greedy check never binds and nothing is evicted (the memory
after execution is at most the memory after admission); if :math:`P(x) > M` the pattern
cannot be realised. :math:`P` is a non-decreasing, left-continuous step function of
:math:`x` that jumps only at fractions :math:`k/i` with :math:`i \le l_1`, and
:math:`P(x) \ge x C` (:math:`C = \sum_j w_j`, so every eviction-free rate is at most
:math:`x^* = M/C`), hence the **largest eviction-free rate**

.. math:: x_{\max} = \max\{x : P(x) \le M\}

is the largest fraction :math:`k/i \le x^*`, :math:`i \le l_1`, with :math:`P(k/i) \le M`
(:func:`max_eviction_free_rate`). On the default model (:math:`M = 2000`, :math:`l_0 = 10`,
:math:`l_1 = 40`): :math:`x_{\max} = 13/8` with :math:`P(13/8) = 2000`, while
:math:`P(x^* = 100/61) = 2024 > M`.

Above :math:`x_{\max}` the integer system falls into a cycle with evictions. Its
throughput (:func:`congested_throughput`) has no closed form here: it is computed exactly
by iterating the integer map (:func:`integer_cycle`, integers and a rational token bucket)
until a state repeats; on the default model at :math:`x^*` the cycle has period 40 and
completes 63 requests (throughput 63/40) with one eviction per period. The same exact
iteration gives the integer versions of the catalogued greedy cycles (started from the
floored cycle states of :func:`~.dynamics_cycles.cycle_state`), where the floors change the
relaxed values.

Source: the token bucket of the model chapter, section 3 on the integer system of [ADLS26] (section
5.1 rate-limited admission; the references chapter, section 1, "measured here in the integer system").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import sympy as sp

from ..errors import ModelError, ParameterError, PolicyError
from ..model import ContinuousBatching
from ..numbers import is_infinite, is_symbolic
from ..policies import Greedy, RateLimited, rate_limited
from .dynamics_core import fixed_point, require_finite_memory
from .dynamics_cycles import single_component

__all__ = [
    "INTEGER_RATE",
    "IntegerCycle",
    "token_bucket_admissions",
    "pattern_memory",
    "peak_memory",
    "peak_memory_expression",
    "max_eviction_free_rate",
    "resolve_rate",
    "resolve_policy",
    "integer_cycle",
    "congested_throughput",
    "integer_cycle_throughput",
]

INTEGER_RATE = "integer"
"""The rate value of ``rate_limited("integer")``: the largest eviction-free integer rate."""

_I = sp.Symbol("i", integer=True, positive=True)
X = sp.Symbol("x", positive=True)
"""The admission rate :math:`x` of the token bucket (symbol of :func:`peak_memory_expression`)."""


def _numeric_single(model: ContinuousBatching) -> tuple[int, int, int]:
    """``(l0, l1, M)`` as Python ints for a numeric one-type deterministic model."""
    M = require_finite_memory(model)
    c = single_component(model)
    if model.is_symbolic or any(is_symbolic(v) for v in (c.l0, c.l1, M)):
        raise ParameterError("the integer system needs numeric l0, l1 and M")
    values = {"prompt l0": c.l0, "decode l1": c.l1, "kv_capacity M": M}
    for name, v in values.items():
        if sp.sympify(v) != int(sp.floor(sp.sympify(v))):
            raise ParameterError(f"the integer system needs an integer {name}, got {v}")
    return int(c.l0), int(c.l1), int(M)


def _rational(rate: Any, name: str = "rate") -> Fraction:
    if is_symbolic(rate):
        raise ParameterError(f"{name} = {rate} is symbolic; the integer system needs a number")
    r = sp.nsimplify(sp.sympify(rate))
    if not r.is_Rational or r <= 0:
        raise ParameterError(f"{name} must be a positive rational number, got {rate}")
    return Fraction(int(r.p), int(r.q))


def _sym(f: Fraction) -> sp.Rational:
    return sp.Rational(f.numerator, f.denominator)


def token_bucket_admissions(rate: Any, count: int) -> list[int]:
    r"""The first ``count`` admissions :math:`a_n = \lfloor (n+1)x \rfloor - \lfloor nx \rfloor`
    of a token bucket at rate :math:`x` that never meets the memory limit (period: the
    denominator of :math:`x`). Source: the model chapter, section 3."""
    x = _rational(rate)
    return [math.floor((n + 1) * x) - math.floor(n * x) for n in range(int(count))]


def pattern_memory(model: ContinuousBatching, rate: Any) -> list[int]:
    r"""Memory after admission :math:`\mathcal M_n = \sum_j w_j a_{n-j}` over one period of the
    steady token-bucket pattern (iterations :math:`n = l_1 - 1 .. l_1 - 2 + q`): the direct
    computation that :func:`peak_memory` must match (``max`` of this list)."""
    l0, l1, _ = _numeric_single(model)
    x = _rational(rate)
    q = x.denominator
    a = token_bucket_admissions(x, l1 + q)
    return [sum((l0 + 1 + j) * a[n - j] for j in range(l1)) for n in range(l1 - 1, l1 - 1 + q)]


def peak_memory_expression(model: ContinuousBatching, x: sp.Expr = X) -> sp.Expr:
    r""":math:`P(x) = (l_0+1)\lceil l_1 x\rceil + \sum_{i=1}^{l_1-1} \lceil i x\rceil` (an
    unevaluated SymPy ``Sum`` for symbolic :math:`l_1`), the peak memory of the token-bucket
    pattern at rate :math:`x`; derivation in ``proofs/integer_rate_limit.py``."""
    c = single_component(model)
    return c.w(0) * sp.ceiling(c.l1 * x) + sp.Sum(sp.ceiling(_I * x), (_I, 1, c.l1 - 1))


def _peak(l0: int, l1: int, x: Fraction) -> int:
    p, q = x.numerator, x.denominator
    return (l0 + 1) * (-((-l1 * p) // q)) + sum(-((-i * p) // q) for i in range(1, l1))


def peak_memory(model: ContinuousBatching, rate: Any = None) -> sp.Integer:
    r"""Peak memory :math:`P(x)` of the steady token-bucket pattern at ``rate`` (default
    :math:`x^*`): the system is eviction-free at :math:`x` iff :math:`P(x) \le M`.
    Default model: :math:`P(100/61) = 2024`, :math:`P(13/8) = 2000`."""
    l0, l1, _ = _numeric_single(model)
    x = _rational(fixed_point(model) if rate is None else rate)
    return sp.Integer(_peak(l0, l1, x))


def max_eviction_free_rate(model: ContinuousBatching) -> sp.Rational:
    r"""The largest token-bucket rate :math:`x_{\max}` at which the integer system never evicts.

    :math:`P` (:func:`peak_memory`) is non-decreasing and only jumps after fractions
    :math:`k/i`, :math:`1 \le i \le l_1`; since :math:`xC \le P(x) \le xC + l_0 + l_1`, the
    answer lies in :math:`[(M - l_0 - l_1)/C, x^*]`. The candidates there are sorted and
    the last one with :math:`P \le M` is found by bisection (exact integers). Raises a
    :class:`~queueing_llm.ModelError` if even the smallest positive rate does not fit.
    """
    l0, l1, M = _numeric_single(model)
    C = sum(l0 + 1 + j for j in range(l1))
    xs = Fraction(M, C)
    low = max(Fraction(M - l0 - l1, C), Fraction(0))
    cands = sorted({Fraction(k, i) for i in range(1, l1 + 1)
                    for k in range(max(1, math.floor(low * i)), math.floor(xs * i) + 1)})
    cands = [f for f in cands if f <= xs]
    if not cands or _peak(l0, l1, cands[0]) > M:
        raise ModelError(f"no positive token-bucket rate keeps the integer system eviction-free (M = {M} "
                         f"does not hold l0 + l1 = {l0 + l1} tokens per request)")
    lo, hi = 0, len(cands) - 1  # invariant: P(cands[lo]) <= M
    if _peak(l0, l1, cands[hi]) <= M:
        return _sym(cands[hi])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _peak(l0, l1, cands[mid]) <= M:
            lo = mid
        else:
            hi = mid
    return _sym(cands[lo])


def resolve_rate(model: ContinuousBatching, rate: Any = None) -> Any:
    r"""The numeric admission rate meant by a rate value: ``None`` -> :math:`x^*`,
    ``"integer"`` -> :func:`max_eviction_free_rate`, a number -> itself (SymPy). Without
    ``rate`` the model's policy is read (it must be ``rate_limited``)."""
    if rate is None:
        policy = model.policy
        if not isinstance(policy, RateLimited):
            raise PolicyError(f"resolve_rate reads a rate_limited policy, the model has {policy}")
        rate = policy.rate
        if rate is None:
            return fixed_point(model)
    if isinstance(rate, str):
        if rate != INTEGER_RATE:
            raise PolicyError(f"a rate is a positive number, None (x*) or {INTEGER_RATE!r}, got {rate!r}")
        return max_eviction_free_rate(model)
    return sp.nsimplify(sp.sympify(rate))


def resolve_policy(model: ContinuousBatching) -> ContinuousBatching:
    r"""The model with ``rate_limited("integer")`` replaced by ``rate_limited(x_max)``
    (:func:`max_eviction_free_rate`, a SymPy rational), ready for ``ql.simulate``; other
    models are returned unchanged (the simulators compute :math:`x^*` themselves).
    The simulators never import the theory, so a named rate is resolved here."""
    policy = model.policy
    if not isinstance(policy, RateLimited) or not isinstance(policy.rate, str):
        return model
    return replace(model, policy=rate_limited(resolve_rate(model)))


@dataclass(frozen=True)
class IntegerCycle:
    r"""The periodic regime of the integer saturated map (:func:`integer_cycle`).

    Attributes
    ----------
    start, period : int
        The state after admission at iteration ``start`` recurs at ``start + period``.
    throughput, evictions, admissions : sympy.Rational
        Per iteration over one period.
    peak_memory : int
        Largest memory after admission on the cycle.
    states : tuple
        Stage counts after admission over one period (from ``start``).
    """

    start: int
    period: int
    throughput: sp.Rational
    evictions: sp.Rational
    admissions: sp.Rational
    peak_memory: int
    states: tuple


def integer_cycle(
    model: ContinuousBatching,
    rate: Any = None,
    initial: Any = None,
    *,
    max_iterations: int = 100_000,
) -> IntegerCycle:
    r"""Iterate the integer saturated map exactly until a state repeats.

    One iteration (the model chapter, section 2, one type, saturated queue): execute (stage
    :math:`l_1 - 1` completes), evict lowest stage first while the memory exceeds
    :math:`M`, admit. Admission: ``rate=None`` or ``"greedy"`` follows the model's policy
    (greedy: :math:`\lfloor S_n / w_0 \rfloor`); a rate :math:`x` (or ``"integer"``) uses the
    token bucket :math:`b_n = \min(b_{n-1} + x, x + 1)` in rationals, one token per
    admission. The model's ``batch_cap`` and ``admit_after_eviction`` are honoured.
    ``initial``: stage counts after admission at iteration 0 (the bucket then starts
    empty at iteration 1); None: iteration 0 admits into an empty batch. The state is the
    stage counts and the bucket, so a repeat is a cycle of the deterministic map.
    """
    l0, l1, M = _numeric_single(model)
    if isinstance(rate, str) and rate == "greedy":
        x = None
    elif rate is None:
        policy = model.policy
        if isinstance(policy, Greedy):
            x = None
        elif isinstance(policy, RateLimited):
            x = _rational(resolve_rate(model))
        else:
            raise PolicyError(f"the integer map runs greedy and rate_limited admission, got policy {policy}")
    else:
        x = _rational(resolve_rate(model, rate))
    B = math.inf if is_infinite(model.batch_cap) else int(model.batch_cap)
    skip_after_eviction = not model.admit_after_eviction
    w = [l0 + 1 + j for j in range(l1)]
    zero = Fraction(0)

    def admit(state: list[int], mem: int, tokens: Fraction | None) -> tuple[int, Fraction | None]:
        if tokens is not None:
            tokens = min(tokens + x, x + 1)
        count = (M - mem) // w[0]
        if tokens is not None:
            count = min(count, math.floor(tokens))
        if B != math.inf:
            count = min(count, B - sum(state))
        count = max(count, 0)
        state[0] += count
        return count, (None if tokens is None else tokens - count)

    if initial is None:
        state = [0] * l1
        tokens = None if x is None else zero
        admitted, tokens = admit(state, 0, tokens)
    else:
        values = [int(v) for v in initial]
        if len(values) > l1 or any(v < 0 for v in values):
            raise ParameterError(f"initial must be at most l1 = {l1} non-negative stage counts, got {initial}")
        state = values + [0] * (l1 - len(values))
        if sum(a * b for a, b in zip(w, state, strict=True)) > M:
            raise ParameterError(f"initial state {initial} holds more than M = {M} tokens")
        tokens = None if x is None else zero
    seen: dict[tuple, int] = {}
    history: list[tuple[tuple, int, int, int, int]] = []  # (state, completions, evictions, admissions, memory)
    n = 0
    while True:
        key = (tuple(state), tokens)
        if key in seen:
            start = seen[key]
            period = n - start
            # completions of the iterations start+1 .. n (the transitions around the cycle)
            window = history[start + 1:]
            done = sum(h[1] for h in window)
            ev = sum(h[2] for h in window)
            adm = sum(h[3] for h in window)
            states = tuple(h[0] for h in history[start:n])
            peak = max(h[4] for h in history[start:n])
            return IntegerCycle(start, period, sp.Rational(done, period), sp.Rational(ev, period),
                                sp.Rational(adm, period), peak, states)
        seen[key] = n
        mem = sum(a * b for a, b in zip(w, state, strict=True))
        if not history:
            history.append((tuple(state), 0, 0, 0, mem))
        if n >= max_iterations:
            raise ModelError(f"the integer map found no cycle within max_iterations = {max_iterations}")
        # one iteration
        done = state[-1]
        state = [0] + state[:-1]
        mem = sum(a * b for a, b in zip(w, state, strict=True))
        evicted = 0
        for j in range(l1):
            if mem <= M:
                break
            k = min(state[j], -((M - mem) // w[j]))  # ceil((mem - M) / w_j)
            state[j] -= k
            mem -= k * w[j]
            evicted += k
        if evicted and skip_after_eviction:
            admitted = 0
            if tokens is not None:
                tokens = min(tokens + x, x + 1)
        else:
            admitted, tokens = admit(state, mem, tokens)
        mem += admitted * w[0]
        n += 1
        history.append((tuple(state), done, evicted, admitted, mem))


def congested_throughput(model: ContinuousBatching, rate: Any = None) -> sp.Rational:
    r"""Long-run throughput of the integer saturated system under a token bucket at ``rate``
    (default: the model's rate-limited policy, else :math:`x^*`), from an empty batch.

    At or below :math:`x_{\max}` (:math:`P(x) \le M`) it is :math:`x` exactly (no eviction);
    above, the throughput of the cycle the integer map falls into (:func:`integer_cycle`,
    exact). Default model at :math:`x^* = 100/61`: 63/40."""
    if rate is None:
        rate = resolve_rate(model) if isinstance(model.policy, RateLimited) else fixed_point(model)
    x = resolve_rate(model, rate)
    l0, l1, M = _numeric_single(model)
    if _peak(l0, l1, _rational(x)) <= M and is_infinite(model.batch_cap):
        return sp.nsimplify(x)
    return integer_cycle(model, x).throughput


def integer_cycle_throughput(model: ContinuousBatching, initial: Any = None) -> sp.Rational:
    r"""Throughput of the cycle the integer greedy map falls into from ``initial`` (stage
    counts; None: an empty batch, whose first admission :math:`\lfloor M/w_0 \rfloor` is the
    floored state of the worst cycle). Exact. Source: the model chapter, section 2, integer system."""
    return integer_cycle(model, "greedy", initial).throughput
