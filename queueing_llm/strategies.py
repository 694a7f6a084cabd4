r"""Public `hypothesis <https://hypothesis.readthedocs.io>`_ strategies for laws, request
types, policies and models, for property-based tests of built-in and users' theorems.

``hypothesis`` is a test extra (``pip install 'queueing-llm[test]'``): ``import
queueing_llm`` does not import it, this module does. Every strategy draws exact numbers
(SymPy rationals with two decimals for probabilities, loads and rates, integers for
lengths and capacities) so the theory sees exact values and the simulator the same
values as floats.

Typical use, stated as in the papers ("for every stable batch-capped queue ..."):

.. code-block:: python

    from hypothesis import given, settings
    import queueing_llm.strategies as qs

    @settings(max_examples=10, deadline=None, derandomize=True)
    @given(qs.stable_queues(load=(0.3, 0.8), decode=("geometric",)))
    def test_mean_batch(model):
        ...

Strategies
----------
``probabilities``, ``finite_pmfs``, ``arrival_laws``, ``decode_laws``, ``prompt_laws``,
``request_types``, ``policies``, ``queues``, ``stable_queues``, ``overloaded_queues``,
``saturated_models``, ``seeds``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sympy as sp
from hypothesis import assume
from hypothesis import strategies as st

from .errors import ParameterError
from .laws import Bernoulli, Binomial, Deterministic, FinitePMF, Geometric, Law, Poisson
from .model import ContinuousBatching, RequestType
from .numbers import check_real
from .policies import WAIT_TRIGGERS, FcfsCap, Greedy, NestedWait, Policy, RateLimited, Reserve, Static, Wait

__all__ = [
    "probabilities",
    "finite_pmfs",
    "arrival_laws",
    "decode_laws",
    "prompt_laws",
    "request_types",
    "policies",
    "queues",
    "stable_queues",
    "overloaded_queues",
    "saturated_models",
    "seeds",
    "ARRIVAL_KINDS",
    "DECODE_KINDS",
    "POLICY_KINDS",
    "wait_policies",
    "nested_wait_policies",
]

ARRIVAL_KINDS = ("poisson", "bernoulli", "binomial", "finite")
"""Arrival-law families :func:`arrival_laws` can draw."""

DECODE_KINDS = ("deterministic", "geometric", "finite")
"""Decode-law families :func:`decode_laws` can draw."""

POLICY_KINDS = ("greedy", "rate_limited", "reserve", "static", "fcfs_cap")
"""Policy names :func:`policies` can draw."""

_STEP = 100  # probabilities, loads and rates are multiples of 1/100


def _kinds(name: str, kinds: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    bad = [k for k in kinds if k not in allowed]
    if not kinds or bad:
        raise ParameterError(f"{name} must be a non-empty subset of {allowed}, got {kinds!r}")
    return kinds


def _range(name: str, value: tuple[float, float], low: float, high: float) -> tuple[sp.Rational, sp.Rational]:
    """A closed range of multiples of 1/100 inside [low, high]."""
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ParameterError(f"{name} must be a pair (low, high), got {value!r}")
    a, b = (float(v) for v in value)
    if not (low <= a <= b <= high):
        raise ParameterError(f"{name} must satisfy {low:g} <= low <= high <= {high:g}, got {value!r}")
    ia, ib = math.ceil(a * _STEP - 1e-9), math.floor(b * _STEP + 1e-9)
    if ia > ib:
        raise ParameterError(f"{name} = {value!r} holds no multiple of 1/{_STEP}")
    return sp.Rational(ia, _STEP), sp.Rational(ib, _STEP)


def _rationals(low: sp.Rational, high: sp.Rational) -> st.SearchStrategy[sp.Rational]:
    return st.integers(int(low * _STEP), int(high * _STEP)).map(lambda k: sp.Rational(k, _STEP))


def probabilities(min_value: float = 0.05, max_value: float = 0.95) -> st.SearchStrategy[sp.Rational]:
    """Exact probabilities ``k/100`` in ``[min_value, max_value]`` (SymPy rationals)."""
    lo, hi = _range("probability range", (min_value, max_value), 0.0, 1.0)
    return _rationals(lo, hi)


def finite_pmfs(min_value: int = 0, max_value: int = 10, max_support: int = 4) -> st.SearchStrategy[FinitePMF]:
    """:class:`~queueing_llm.laws.FinitePMF` laws on 1 to ``max_support`` distinct integers in
    ``[min_value, max_value]``, with exact rational probabilities (integer weights 1..9
    normalised), every value with positive probability."""
    if not (0 <= min_value <= max_value) or max_support < 1:
        raise ParameterError(
            f"finite_pmfs needs 0 <= min_value <= max_value and max_support >= 1, "
            f"got {min_value}, {max_value}, {max_support}"
        )
    size = min(max_support, max_value - min_value + 1)

    @st.composite
    def draw_pmf(draw: Any) -> FinitePMF:
        values = draw(
            st.lists(st.integers(min_value, max_value), min_size=1, max_size=size, unique=True).map(sorted)
        )
        weights = draw(st.lists(st.integers(1, 9), min_size=len(values), max_size=len(values)))
        total = sum(weights)
        return FinitePMF({v: sp.Rational(w, total) for v, w in zip(values, weights, strict=True)})

    return draw_pmf()


def arrival_laws(
    max_mean: float = 2.0, kinds: Sequence[str] = ARRIVAL_KINDS, min_mean: float = 0.05
) -> st.SearchStrategy[Law]:
    r"""Arrivals per iteration with mean in ``[min_mean, max_mean]``.

    ``"poisson"``: ``Poisson(lambda)``; ``"bernoulli"``: ``Bernoulli(p)`` (mean at most 1);
    ``"binomial"``: ``Binomial(n, p)`` with ``n`` in 1..4 and ``p`` a multiple of 1/100;
    ``"finite"``: a finite PMF on ``{0..4}`` (mean checked against the range). Means are
    multiples of 1/100 except for finite PMFs and binomials.
    """
    kinds = _kinds("arrival kinds", kinds, ARRIVAL_KINDS)
    lo, hi = _range("arrival mean range", (min_mean, max_mean), 0.0, math.inf)

    @st.composite
    def draw_law(draw: Any) -> Law:
        kind = draw(st.sampled_from(kinds))
        if kind == "poisson":
            return Poisson(draw(_rationals(lo, hi)))
        if kind == "bernoulli":
            assume(lo <= 1)
            return Bernoulli(draw(_rationals(lo, min(hi, sp.Integer(1)))))
        if kind == "binomial":
            n = draw(st.integers(1, 4))
            p_lo = sp.Rational(math.ceil(lo * _STEP / n), _STEP)
            p_hi = sp.Rational(math.floor(min(hi / n, 1) * _STEP), _STEP)
            assume(0 < p_lo <= p_hi)
            return Binomial(n, draw(_rationals(p_lo, p_hi)))
        law = draw(finite_pmfs(0, 4, 3))
        assume(lo <= law.mean <= hi)
        return law

    return draw_law()


def decode_laws(
    max_mean: float = 8.0, kinds: Sequence[str] = DECODE_KINDS, max_value: int = 12
) -> st.SearchStrategy[Law]:
    r"""Decode lengths :math:`l_1` on :math:`\{1, 2, \dots\}`.

    ``"deterministic"``: a constant in ``1..min(max_value, max_mean)``;
    ``"geometric"``: ``Geometric(q)`` with mean ``1/q <= max_mean`` (:math:`q` a multiple of
    1/100, unbounded support); ``"finite"``: a finite PMF on ``{1..max_value}`` with mean
    at most ``max_mean``.
    """
    kinds = _kinds("decode kinds", kinds, DECODE_KINDS)
    if max_mean < 1 or max_value < 1:
        raise ParameterError(f"decode_laws needs max_mean >= 1 and max_value >= 1, got {max_mean}, {max_value}")
    q_min = min(sp.Rational(math.ceil(_STEP / max_mean), _STEP), sp.Integer(1))

    @st.composite
    def draw_law(draw: Any) -> Law:
        kind = draw(st.sampled_from(kinds))
        if kind == "deterministic":
            return Deterministic(draw(st.integers(1, max(1, min(max_value, math.floor(max_mean))))))
        if kind == "geometric":
            return Geometric(draw(_rationals(q_min, sp.Integer(1))))
        law = draw(finite_pmfs(1, max_value, 4))
        assume(law.mean <= max_mean)
        return law

    return draw_law()


def prompt_laws(max_value: int = 20, kinds: Sequence[str] = ("deterministic", "finite")) -> st.SearchStrategy[Law]:
    r"""Prompt lengths :math:`l_0` on :math:`\{0, \dots, \text{max\_value}\}`: constants or finite PMFs."""
    kinds = _kinds("prompt kinds", kinds, ("deterministic", "finite"))
    options = []
    if "deterministic" in kinds:
        options.append(st.integers(0, max_value).map(Deterministic))
    if "finite" in kinds:
        options.append(finite_pmfs(0, max_value, 3))
    return st.one_of(*options)


def request_types(
    prompt: st.SearchStrategy[Law] | None = None,
    decode: st.SearchStrategy[Law] | None = None,
    arrivals: st.SearchStrategy[Law | None] | None = None,
) -> st.SearchStrategy[RequestType]:
    """:class:`~queueing_llm.model.RequestType` values from the given law strategies
    (defaults: :func:`prompt_laws`, :func:`decode_laws`, :func:`arrival_laws`)."""
    return st.builds(
        RequestType,
        prompt=prompt if prompt is not None else prompt_laws(),
        decode=decode if decode is not None else decode_laws(),
        arrivals=arrivals if arrivals is not None else arrival_laws(),
    )


def policies(kinds: Sequence[str] = POLICY_KINDS, max_rate: float = 5.0) -> st.SearchStrategy[Policy]:
    """Admission policies by name: ``Greedy()``, ``RateLimited(rate)`` (``rate`` ``None``
    = the fixed point x*, or a multiple of 1/100 in (0, ``max_rate``]), ``Reserve()``,
    ``Static()``, ``FcfsCap()``."""
    kinds = _kinds("policy kinds", kinds, POLICY_KINDS)
    options: list[st.SearchStrategy[Policy]] = []
    simple = {"greedy": Greedy, "reserve": Reserve, "static": Static, "fcfs_cap": FcfsCap}
    for k in kinds:
        if k == "rate_limited":
            _, top = _range("max_rate", (0.01, max_rate), 0, math.inf)
            options.append((st.none() | _rationals(sp.Rational(1, _STEP), top)).map(RateLimited))
        else:
            options.append(st.just(simple[k]()))
    return st.one_of(*options)


def wait_policies(types: int = 1, max_threshold: int = 8) -> st.SearchStrategy[Wait]:
    """WAIT policies for a model with ``types`` request types: a threshold in
    ``1..max_threshold`` per type, any trigger, with or without stall (see
    :class:`~queueing_llm.policies.Wait`; fluid thresholds come from ``ql.fluid_wait``)."""
    check_real("types", types, low=1, integer=True)
    check_real("max_threshold", max_threshold, low=1, integer=True)
    return st.builds(
        Wait,
        thresholds=st.fixed_dictionaries({k: st.integers(1, int(max_threshold)) for k in range(int(types))}),
        trigger=st.sampled_from(WAIT_TRIGGERS),
        stall=st.booleans(),
    )


def nested_wait_policies(max_boundary: int = 12, max_segments: int = 3,
                         max_threshold: int = 6) -> st.SearchStrategy[NestedWait]:
    """Nested WAIT policies: up to ``max_segments`` strictly increasing boundaries, the last
    equal to ``max_boundary`` (cover the longest decode length), thresholds in
    ``1..max_threshold`` and buffers in ``0..3``."""
    check_real("max_boundary", max_boundary, low=1, integer=True)
    check_real("max_segments", max_segments, low=1, integer=True)
    check_real("max_threshold", max_threshold, low=1, integer=True)
    inner_boundaries = (st.lists(st.integers(1, int(max_boundary) - 1), unique=True, max_size=int(max_segments) - 1)
                        if max_boundary > 1 else st.just([]))  # boundary 1: one segment only

    @st.composite
    def draw_policy(draw: Any) -> NestedWait:
        inner = draw(inner_boundaries)
        bounds = sorted(inner) + [int(max_boundary)]
        S = len(bounds)
        return NestedWait(boundaries=bounds,
                          thresholds=draw(st.lists(st.integers(1, int(max_threshold)), min_size=S, max_size=S)),
                          buffer=draw(st.lists(st.integers(0, 3), min_size=S, max_size=S)),
                          stall=draw(st.booleans()))

    return draw_policy()


def queues(
    load: tuple[float, float] = (0.2, 0.9),
    batch_caps: tuple[int, int] = (1, 8),
    arrivals: Sequence[str] = ("poisson", "bernoulli"),
    decode: Sequence[str] = ("geometric", "deterministic", "finite"),
    max_decode_mean: float = 8.0,
    max_prompt: int = 10,
    waiting_caps: tuple[int, int] | None = None,
) -> st.SearchStrategy[ContinuousBatching]:
    r"""One-type batch-capped queues (policy ``fcfs_cap``, no memory limit, the model chapter, 5.B)
    with load :math:`\rho = \lambda E[l_1] / B` in ``load`` (a multiple of 1/100).

    Draws :math:`B` in ``batch_caps``, a decode law (:func:`decode_laws` of the given
    kinds, mean at most ``max_decode_mean``), a constant prompt in ``0..max_prompt``,
    :math:`\rho`, and arrivals of mean :math:`\lambda = \rho B / E[l_1]` per iteration:
    ``Poisson(lambda)``, ``Bernoulli(lambda)`` (only when :math:`\lambda \le 1`; :math:`B`
    is then drawn at most :math:`E[l_1]/\rho`) or ``Binomial(n, lambda/n)`` with
    :math:`n = \lceil \lambda \rceil + 1`. With ``waiting_caps = (low, high)`` the
    waiting-room cap :math:`K` is drawn in that range (the model chapter, 5.B.7), else it is infinite.
    """
    kinds = _kinds("arrival kinds", arrivals, ("poisson", "bernoulli", "binomial"))
    if waiting_caps is not None and not (0 <= waiting_caps[0] <= waiting_caps[1]):
        raise ParameterError(f"waiting_caps must satisfy 0 <= low <= high, got {waiting_caps!r}")
    lo, hi = _range("load", load, 0.0, math.inf)
    if lo <= 0:
        raise ParameterError(f"load must be positive, got {load!r}")
    b_lo, b_hi = batch_caps
    if not (1 <= b_lo <= b_hi):
        raise ParameterError(f"batch_caps must satisfy 1 <= low <= high, got {batch_caps!r}")
    decode_strategy = decode_laws(max_decode_mean, decode)

    @st.composite
    def draw_model(draw: Any) -> ContinuousBatching:
        kind = draw(st.sampled_from(kinds))
        law = draw(decode_strategy)
        rho = draw(_rationals(lo, hi))
        mean = law.mean
        cap_high = b_hi
        if kind == "bernoulli":
            cap_high = min(b_hi, math.floor(mean / rho))
            assume(cap_high >= b_lo)
        B = draw(st.integers(b_lo, cap_high))
        lam = rho * B / mean
        if kind == "poisson":
            arr: Law = Poisson(lam)
        elif kind == "bernoulli":
            arr = Bernoulli(lam)
        else:
            n = math.ceil(lam) + 1
            arr = Binomial(n, lam / n)
        prompt = draw(st.integers(0, max_prompt))
        cap: Any = math.inf if waiting_caps is None else draw(st.integers(*waiting_caps))
        return ContinuousBatching(
            types=[RequestType(prompt=prompt, decode=law, arrivals=arr)],
            batch_cap=B,
            policy="fcfs_cap",
            waiting_cap=cap,
        )

    return draw_model()


def stable_queues(load: tuple[float, float] = (0.2, 0.9), **kwargs: Any) -> st.SearchStrategy[ContinuousBatching]:
    r"""Stable batch-capped queues, :math:`\rho = \lambda E[l_1]/B` in ``load`` :math:`\subset (0, 1)`;
    other keyword arguments as :func:`queues`."""
    if not load[1] < 1:
        raise ParameterError(f"stable_queues needs load below 1, got {load!r}")
    return queues(load=load, **kwargs)


def overloaded_queues(load: tuple[float, float] = (1.2, 2.0), **kwargs: Any) -> st.SearchStrategy[ContinuousBatching]:
    r"""Overloaded batch-capped queues, :math:`\rho = \lambda E[l_1]/B` in ``load``
    :math:`\subset (1, \infty)`, whose queue grows at rate :math:`\lambda - B/E[l_1]`;
    other keyword arguments as :func:`queues`."""
    if not load[0] > 1:
        raise ParameterError(f"overloaded_queues needs load above 1, got {load!r}")
    return queues(load=load, **kwargs)


def saturated_models(
    max_types: int = 2,
    max_prompt: int = 20,
    max_decode: int = 8,
    policy_kinds: Sequence[str] = ("greedy",),
    random_lengths: bool = False,
    max_memory_factor: int = 6,
) -> st.SearchStrategy[ContinuousBatching]:
    r"""Memory-constrained models for saturated runs (no arrival law, ``simulate(...,
    saturated=True)``) with :math:`M > \max_k (l_0 + l_1)`.

    Draws 1 to ``max_types`` types with constant prompts in ``0..max_prompt`` and constant
    decode lengths in ``1..max_decode`` (or, with ``random_lengths=True``, finite PMFs on
    those ranges), and :math:`M = \max_k(l_0+l_1) + 1 + e` with :math:`e` between 0 and
    ``max_memory_factor`` times :math:`\max_k (l_0 + l_1)`; the policy is drawn from
    ``policy_kinds`` (memory-aware names of :data:`POLICY_KINDS`, not ``fcfs_cap``).
    """
    if "fcfs_cap" in policy_kinds:
        raise ParameterError("saturated_models are memory-constrained; policy_kinds must not include 'fcfs_cap'")
    if max_types < 1 or max_decode < 1 or max_prompt < 0 or max_memory_factor < 0:
        raise ParameterError(
            "saturated_models needs max_types >= 1, max_decode >= 1, max_prompt >= 0, max_memory_factor >= 0, "
            f"got {max_types}, {max_decode}, {max_prompt}, {max_memory_factor}"
        )
    policy_strategy = policies(policy_kinds)

    @st.composite
    def draw_model(draw: Any) -> ContinuousBatching:
        types = []
        for _ in range(draw(st.integers(1, max_types))):
            if random_lengths:
                prompt: Any = draw(prompt_laws(max_prompt))
                decode: Any = draw(finite_pmfs(1, max_decode, 3))
            else:
                prompt = draw(st.integers(0, max_prompt))
                decode = draw(st.integers(1, max_decode))
            types.append(RequestType(prompt=prompt, decode=decode))
        need = int(max(t.max_tokens for t in types))
        M = need + 1 + draw(st.integers(0, max_memory_factor * need))
        return ContinuousBatching(types=types, kv_capacity=M, policy=draw(policy_strategy))

    return draw_model()


def seeds() -> st.SearchStrategy[int]:
    """Simulation seeds: integers in ``[0, 2**32 - 1]``."""
    return st.integers(0, 2**32 - 1)
