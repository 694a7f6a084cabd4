r"""Limit cycles of the saturated relaxed map for one request type (the model chapter, A.3-A.4).

Every cycle here is derived from its **memory balance**: at the iteration where the
evictions stop, the surviving cohorts fill the memory exactly,
:math:`\sum_j w_j x_j = M`, and the cohort sizes of the cycle solve these equations
(SymPy ``solve``). The throughput is the completions of one period over the period.
:func:`cycle_state` gives a state on each cycle, so that iterating the relaxed map
(:func:`~queueing_llm.theory.dynamics_map.relaxed_trajectory`) confirms it is periodic.

Cycles (one type, :math:`w_j = l_0 + 1 + j`):

* **worst** (maximal eviction): one cohort, cut to :math:`M/w_j` at every stage, period
  :math:`l_1`: throughput :math:`M/(l_1 (l_0 + l_1))` ([ADLS26], worst-case cycle);
* **adjacent**: two cohorts one stage apart, period :math:`l_1`:
  :math:`M/(w_{l_1-1}^2 - w_0 w_{l_1-2})`;
* **opposite** (:math:`l_1 = 2d`): two cohorts :math:`d` stages apart, period :math:`d`:
  :math:`M/(d (w_{d-1} + w_{l_1-1}))`;
* **contiguous block** :math:`c_i`: a cohort of :math:`(i+1) c` at stage :math:`i` and
  cohorts of :math:`c` on the block of stages :math:`i+1 .. l_1-1`, period :math:`l_1`:
  :math:`c_i = M/((i+1) w_i + \sum_{j>i} w_j)` (:math:`c_0 = x^*`, :math:`c_{l_1-1}` = worst,
  :math:`c_{l_1-2}` = adjacent);
* **evenly spaced** (balanced, :math:`l_1 = k d`): :math:`k` equal cohorts :math:`d` stages
  apart, period :math:`d`: :math:`M/(d \sum_{q=1}^{k} w_{qd-1}) = 2M/(l_1(2 l_0 + l_1 + d))`.

Source: [ADLS26] Propositions 2-4 (adjacent, opposite, contiguous-block and evenly spaced
cycles) and the worst-case cycle; the references chapter, section 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..errors import ModelError, ParameterError
from ..model import ContinuousBatching
from ..numbers import is_symbolic
from .dynamics_core import Component, components, fixed_point, require_finite_memory

__all__ = [
    "CycleFormula",
    "single_component",
    "worst_cycle",
    "adjacent_cycle",
    "opposite_cycle",
    "contiguous_cycle",
    "balanced_cycle",
    "cycle_throughputs",
    "cycle_state",
]

_J = sp.Symbol("j", integer=True, nonnegative=True)
_Q = sp.Symbol("q", integer=True, positive=True)
BLOCK = sp.Symbol("i", integer=True, nonnegative=True)
"""The block index :math:`i` of the contiguous-block cycles (symbolic default)."""
SPACING = sp.Symbol("d", integer=True, positive=True)
"""The spacing :math:`d` of the evenly spaced cycles (symbolic default)."""


@dataclass(frozen=True)
class CycleFormula:
    r"""A cycle derived from its memory balance.

    Attributes
    ----------
    name : str
    balance : sympy.Eq
        The memory balance at the binding iteration (unknown cohort size ``c``).
    sizes : dict
        Cohort sizes solving the balance.
    period : sympy.Expr
    completions : sympy.Expr
        Requests completed per period.
    throughput : sympy.Expr
        ``completions / period``.
    """

    name: str
    balance: Any
    sizes: dict
    period: sp.Expr
    completions: sp.Expr
    throughput: sp.Expr


def single_component(model: ContinuousBatching) -> Component:
    """The one (type, decode length) of a homogeneous model; a ModelError otherwise."""
    require_finite_memory(model)
    comps = components(model)
    if len({(c.l0, c.l1) for c in comps}) != 1:
        raise ModelError(
            "the cycle results are for one request type with a deterministic decode length; "
            f"this model has {len(comps)} distinct (prompt, decode) components"
        )
    return comps[0]


def _sum_w(c: Component, lo: Any, hi: Any) -> sp.Expr:
    return sp.summation(c.w(_J), (_J, lo, hi))


def _solve(balance: list, unknowns: list) -> dict:
    sol = sp.solve(balance, unknowns, dict=True)
    if len(sol) != 1:
        raise ModelError(f"the cycle balance has no unique solution: {sol}")  # pragma: no cover
    return {k: sp.factor(v) for k, v in sol[0].items()}


def worst_cycle(model: ContinuousBatching) -> CycleFormula:
    r"""The worst-case (maximal-eviction) cycle and its throughput :math:`M/(l_1(l_0+l_1))`.

    One cohort fills the memory at every stage (it is cut to :math:`x_j = M/w_j` as it
    grows); the balance at the last stage :math:`x\, w_{l_1-1} = M` gives the completions of
    a period of :math:`l_1` iterations. Ratio to :math:`x^*`:
    :math:`(2 l_0 + l_1 + 1)/(2 (l_0 + l_1)) \to 1/2`. Source: [ADLS26], worst-case cycle.
    """
    c = single_component(model)
    M = model.M
    x = sp.Symbol("c")
    balance = sp.Eq(x * c.w(c.l1 - 1), M)
    sizes = _solve([balance], [x])
    throughput = sp.factor(sizes[x] / c.l1)
    return CycleFormula("worst", balance, sizes, c.l1, sizes[x], throughput)


def adjacent_cycle(model: ContinuousBatching) -> CycleFormula:
    r"""Two cohorts one stage apart: :math:`M/(w_{l_1-1}^2 - w_0 w_{l_1-2})`.

    Cohort :math:`B` (size :math:`b`) leads cohort :math:`A` by one stage; :math:`A` is cut
    at every step. At the binding iteration :math:`A` holds :math:`a` at stage
    :math:`l_1 - 2` and :math:`B` holds :math:`b` at :math:`l_1 - 1`:
    :math:`a w_{l_1-2} + b w_{l_1-1} = M`; when :math:`B` completes, :math:`A` moves to the
    last stage and the next leading cohort is admitted into the rest:
    :math:`b w_0 + a w_{l_1-1} = M`. Completions :math:`a + b` per period :math:`l_1`
    (:math:`a = (l_1-1) b`). Needs :math:`l_1 \ge 2`. Source: [ADLS26], Proposition 2.
    """
    c = single_component(model)
    M = model.M
    a, b = sp.symbols("a b")
    L = c.l1
    balance = [sp.Eq(a * c.w(L - 2) + b * c.w(L - 1), M), sp.Eq(b * c.w(0) + a * c.w(L - 1), M)]
    sizes = _solve(balance, [a, b])
    completions = sp.factor(sizes[a] + sizes[b])
    return CycleFormula("adjacent", balance, sizes, L, completions, sp.factor(completions / L))


def opposite_cycle(model: ContinuousBatching) -> CycleFormula:
    r"""Two cohorts :math:`d = l_1/2` stages apart: :math:`M/(d (w_{d-1} + w_{l_1-1}))`.

    At the binding iteration the cohorts sit at stages :math:`d-1` and :math:`l_1-1`, each
    of size :math:`c`: :math:`c (w_{d-1} + w_{l_1-1}) = M`; one cohort completes every
    :math:`d` iterations. Needs an even :math:`l_1` (numeric) — symbolic :math:`l_1` is
    taken as :math:`2d`. Source: [ADLS26], Proposition 3.
    """
    c = single_component(model)
    L = c.l1
    if not is_symbolic(L) and int(L) % 2:
        raise ParameterError(f"the opposite cycle needs an even decode length l1, got {L}")
    d = L / 2
    x = sp.Symbol("c")
    balance = sp.Eq(x * (c.w(d - 1) + c.w(L - 1)), model.M)
    sizes = _solve([balance], [x])
    return CycleFormula("opposite", balance, sizes, d, sizes[x], sp.factor(sizes[x] / d))


def contiguous_cycle(model: ContinuousBatching, i: Any = BLOCK) -> CycleFormula:
    r"""Contiguous-block cycle :math:`c_i = M/((i+1) w_i + \sum_{j=i+1}^{l_1-1} w_j)`.

    At the binding iteration stage :math:`i` holds :math:`(i+1) c` and every stage of the
    block :math:`i+1 .. l_1-1` holds :math:`c`; the balance
    :math:`(i+1) c\, w_i + c \sum_{j>i} w_j = M` fixes :math:`c`. Then one cohort of
    :math:`c` completes and one of :math:`c` is admitted per iteration until the big cohort
    completes, whose memory is refilled by one admission cut back over :math:`i` stages:
    :math:`l_1 c` completions per period :math:`l_1`. :math:`0 \le i \le l_1 - 1`.
    Source: [ADLS26], Proposition 4 (contiguous blocks).
    """
    c = single_component(model)
    i = sp.sympify(i)
    if not is_symbolic(i) and not is_symbolic(c.l1) and not (0 <= int(i) < int(c.l1)):
        raise ParameterError(f"block index i must be in [0, l1 - 1] = [0, {c.l1 - 1}], got {i}")
    x = sp.Symbol("c")
    balance = sp.Eq((i + 1) * x * c.w(i) + x * _sum_w(c, i + 1, c.l1 - 1), model.M)
    sizes = _solve([balance], [x])
    completions = c.l1 * sizes[x]
    return CycleFormula("contiguous", balance, sizes, c.l1, completions, sp.factor(completions / c.l1))


def balanced_cycle(model: ContinuousBatching, d: Any = SPACING) -> CycleFormula:
    r"""Evenly spaced cycle (:math:`l_1 = k d`): :math:`M/(d \sum_{q=1}^{k} w_{qd-1})`.

    :math:`k` cohorts of size :math:`c`, :math:`d` stages apart; at the binding iteration
    they sit at stages :math:`d-1, 2d-1, \dots, kd-1`: :math:`c \sum_q w_{qd-1} = M`; one
    cohort completes every :math:`d` iterations. :math:`d = 1` is the fixed point,
    :math:`d = l_1` the worst cycle. Source: [ADLS26], Proposition 4 (evenly spaced cycles).
    """
    c = single_component(model)
    d = sp.sympify(d)
    if not is_symbolic(d) and not is_symbolic(c.l1) and (int(d) < 1 or int(c.l1) % int(d)):
        raise ParameterError(f"spacing d must divide the decode length l1 = {c.l1}, got {d}")
    k = c.l1 / d
    x = sp.Symbol("c")
    balance = sp.Eq(x * sp.summation(c.w(_Q * d - 1), (_Q, 1, k)), model.M)
    sizes = _solve([balance], [x])
    return CycleFormula("balanced", balance, sizes, d, sizes[x], sp.factor(sizes[x] / d))


def cycle_throughputs(model: ContinuousBatching) -> dict[str, Any]:
    r"""Throughputs of the catalogued cycles: ``worst``, ``adjacent``, ``opposite`` (``nan``
    for odd :math:`l_1`), ``contiguous`` (:math:`\{i: c_i\}`) and ``balanced``
    (:math:`\{d: \cdot\}` over the divisors of :math:`l_1`); expressions in the symbols
    :data:`BLOCK` and :data:`SPACING` when :math:`l_1` is symbolic. Source: [ADLS26]."""
    c = single_component(model)
    out: dict[str, Any] = {"worst": worst_cycle(model).throughput, "fixed_point": fixed_point(model)}
    L = c.l1
    out["adjacent"] = adjacent_cycle(model).throughput if (is_symbolic(L) or L >= 2) else sp.nan
    out["opposite"] = opposite_cycle(model).throughput if (is_symbolic(L) or int(L) % 2 == 0) else sp.nan
    if is_symbolic(L):
        out["contiguous"] = contiguous_cycle(model).throughput
        out["balanced"] = balanced_cycle(model).throughput
    else:
        out["contiguous"] = {i: contiguous_cycle(model, i).throughput for i in range(int(L))}
        out["balanced"] = {d: balanced_cycle(model, d).throughput for d in sp.divisors(int(L))}
    return out


def cycle_state(model: ContinuousBatching, kind: str, parameter: Any = None) -> tuple[sp.Expr, ...]:
    r"""A state (stage counts after admission) on a catalogued cycle of a numeric model.

    ``kind``: ``"worst"`` (:math:`(M/w_0, 0, \dots)`), ``"adjacent"`` (:math:`(a_0, b, 0,
    \dots)` right after the trailing cohort's admission), ``"opposite"`` (a new cohort at
    stage 0, the other of size :math:`c` at stage :math:`d`), ``"contiguous"`` (block
    ``parameter`` = :math:`i`: :math:`(i+1) c` at stage :math:`i`, :math:`c` above) or
    ``"balanced"`` (spacing ``parameter`` = :math:`d`: :math:`c` at stages
    :math:`d-1, 2d-1, \dots`). Iterating the relaxed map from it returns to it after one
    period, which the tests check exactly.
    """
    c = single_component(model)
    if is_symbolic(c.l1) or model.is_symbolic:
        raise ParameterError("cycle_state needs a numeric model")
    L, M = int(c.l1), model.M
    x = [sp.Integer(0)] * L
    if kind == "worst":
        x[0] = M / c.w(0)
    elif kind == "adjacent":
        f = adjacent_cycle(model)
        b = f.sizes[sp.Symbol("b")]
        x[0], x[1] = (M - b * c.w(1)) / c.w(0), b
    elif kind == "opposite":
        f = opposite_cycle(model)
        size, d = f.sizes[sp.Symbol("c")], L // 2
        x[0], x[d] = (M - size * c.w(d)) / c.w(0), size
    elif kind == "contiguous":
        i = int(parameter)
        size = contiguous_cycle(model, i).sizes[sp.Symbol("c")]
        x[i] = (i + 1) * size
        for j in range(i + 1, L):
            x[j] = size
    elif kind == "balanced":
        d = int(parameter)
        size = balanced_cycle(model, d).sizes[sp.Symbol("c")]
        for q in range(1, L // d + 1):
            x[q * d - 1] = size
    else:
        raise ParameterError(
            f"kind must be worst, adjacent, opposite, contiguous or balanced, got {kind!r}"
        )
    return tuple(sp.nsimplify(v) for v in x)
