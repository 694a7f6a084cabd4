r"""Fluid-guided scheduling of [ALSW25]: WAIT thresholds, Nested WAIT segments and the safety buffer.

The fluid balance of :func:`queueing_llm.theory.capacity.fluid_equations` (every iteration
admits the arrivals of an iteration, :math:`n_k = \lambda_k \Delta`; the iteration lasts
:math:`\Delta = d_0 + d_1 \sum_k n_k W_k`) gives WAIT's per-stage thresholds. This module
derives, from the model's primitives:

* :func:`wait_thresholds`: :math:`n_k^*` per type, the occupancy of every stage
  (:math:`n_k^* P(l_{1,k} > j)` at stage :math:`j`), the batch memory
  :math:`M^* = \sum_k n_k^* W_k` and its feasibility :math:`M^* \le M`; in a slotted model
  (no iteration time, arrivals per iteration) :math:`\Delta^* = 1` iteration and
  :math:`n_k^* = \lambda_k`.
* :func:`segments`: Nested WAIT's segments between decode-length boundaries, the rate
  :math:`\Lambda_s` reaching each and the survival probabilities :math:`q_k` across each boundary.
* :func:`safety_buffer`: at boundary :math:`k` the survivors of a cohort,
  :math:`Y \sim \mathrm{Bin}(n_{k-1}, q_k)`, join a queue served :math:`n_k` per iteration;
  :math:`\theta_k > 0` solves :math:`E[e^{\theta (Y - n_k)}] = 1`, so
  :math:`P(\text{inventory} \ge x) \le e^{-\theta_k x}` (the exponential martingale
  :math:`e^{\theta_k S_t}` and Doob's inequality on the supremum of the random walk), and
  a buffer :math:`b_k = \ln(K/\delta)/\theta_k` over the :math:`K` boundaries keeps the
  probability that some inventory exceeds its buffer below :math:`\delta` (union bound).

Sources: [ALSW25] sections 3-5 (fluid benchmark, WAIT, Nested WAIT); the authors'
simulator for the total-limit rule and the segment budgets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import sympy as sp

from ..errors import ParameterError, describe
from ..laws import Deterministic, FinitePMF, Geometric
from ..model import ContinuousBatching, PoissonProcess
from ..numbers import check_real, is_infinite, is_symbolic, to_sympy
from .capacity import fluid_solution, lifetime_memory

__all__ = [
    "WaitThresholds",
    "wait_thresholds",
    "Segments",
    "segments",
    "default_boundaries",
    "MAX_DISTINCT_BOUNDARIES",
    "SafetyBuffer",
    "buffer_equation",
    "safety_buffer",
    "THETA",
]

THETA = sp.Symbol("theta", positive=True)
"""The exponent :math:`\\theta` of the exponential martingale."""


# ----------------------------------------------------------------------------------
# WAIT: the fluid equilibrium per stage
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WaitThresholds:
    r"""The fluid equilibrium of WAIT for a model (see :func:`wait_thresholds`).

    Attributes
    ----------
    thresholds : tuple
        :math:`n_k^* = \lambda_k \Delta^*` requests per stage, per type (exact).
    delta_star : sympy.Expr
        :math:`\Delta^*`: seconds per iteration (wall-clock model) or 1 (slotted model).
    per_stage : tuple of tuple
        Occupancy :math:`n_k^* P(l_{1,k} > j)` of stage :math:`j` for each type.
    batch_memory : sympy.Expr
        :math:`M^* = \sum_k n_k^* W_k` KV tokens.
    feasible : bool or sympy relation
        :math:`M^* \le M` (and :math:`\rho < 1`).
    rates : tuple
        :math:`\lambda_k` per unit of ``unit``.
    unit : str
        ``"second"`` (wall-clock) or ``"iteration"`` (slotted).
    reason : str
        Empty, or why the equilibrium does not exist.
    """

    thresholds: tuple
    delta_star: sp.Expr
    per_stage: tuple
    batch_memory: sp.Expr
    feasible: Any
    rates: tuple
    unit: str
    reason: str = ""


def _rates(model: ContinuousBatching) -> tuple[list[sp.Expr], str]:
    wall = [isinstance(t.arrivals, PoissonProcess) for t in model.types]
    for k, t in enumerate(model.types):
        if t.arrivals is None:
            raise ParameterError(f"WAIT thresholds need arrival rates: types[{k}] has arrivals=None")
    if any(wall) and not all(wall):
        raise ParameterError(
            "WAIT thresholds need all types in one time unit: mix of PoissonProcess and per-iteration laws"
        )
    if all(wall) and model.iteration_time is None:
        raise ParameterError("PoissonProcess arrivals need iteration_time=ql.LinearIterationTime(d0, d1)")
    return [to_sympy(t.arrival_rate) for t in model.types], ("second" if all(wall) else "iteration")


def _survival(law: Any, j: int) -> sp.Expr:
    r""":math:`P(l_1 > j)`: exact for deterministic, finite and geometric laws, else from the float pmf."""
    if isinstance(law, Deterministic):
        return sp.Integer(1) if to_sympy(law.value) > j else sp.Integer(0)
    if isinstance(law, FinitePMF):
        return sp.Add(*[to_sympy(p) for v, p in law.probabilities if v > j])
    if isinstance(law, Geometric):
        return (1 - to_sympy(law.q)) ** j
    return sp.Float(1.0 - float(np.sum(law.pmf_array(j + 1))), 17)


def wait_thresholds(model: ContinuousBatching, prefill_stage: bool = False) -> WaitThresholds:
    r"""WAIT's fluid thresholds and the batch they build ([ALSW25] section 4).

    Solves the fluid balance :math:`n_k = \lambda_k \Delta`,
    :math:`\Delta = d_0 + d_1 \sum_k n_k W_k` (:func:`~queueing_llm.theory.capacity.fluid_solution`)
    with :math:`W_k = E[C_k] = E[\sum_{j<l_1} w_j]` (``prefill_stage=False``, the simulator's
    memory) and substitutes the model. A slotted model (per-iteration arrival laws, no
    iteration time) is the case :math:`d_0 = 1` iteration, :math:`d_1 = 0`:
    :math:`n_k^* = \lambda_k` and :math:`M^* = \sum_k \lambda_k W_k`, memory Little's law.

    In equilibrium each iteration admits :math:`n_k^*` type-:math:`k` requests, so stage
    :math:`j` holds :math:`n_k^* P(l_{1,k} > j)` of them and the batch holds
    :math:`M^* = \sum_k n_k^* \sum_j P(l_{1,k} > j) w_{k,j} = \sum_k n_k^* W_k` tokens; WAIT
    never evicts when :math:`M^* \le M` (with integer thresholds :math:`n_k \ge n_k^*`: when
    :math:`\sum_k n_k W_k \le M` for deterministic lengths).
    """
    if not isinstance(prefill_stage, bool):
        raise ParameterError(f"prefill_stage must be True or False, got {describe(prefill_stage)}")
    rates, unit = _rates(model)
    lifetimes = [lifetime_memory(t, prefill_stage) for t in model.types]
    general = fluid_solution(len(rates))
    if unit == "second":
        d0, d1 = to_sympy(model.iteration_time.d0), to_sympy(model.iteration_time.d1)
    else:
        d0, d1 = sp.Integer(1), sp.Integer(0)
    subs = {general["d0"]: d0, general["d1"]: d1}
    subs.update(zip(general["rates"], rates, strict=True))
    subs.update(zip(general["lifetimes"], lifetimes, strict=True))
    rho = sp.simplify(d1 * sp.Add(*[lam * w for lam, w in zip(rates, lifetimes, strict=True)]))
    if not is_symbolic(rho) and rho >= 1:
        inf = tuple(sp.oo for _ in rates)
        return WaitThresholds(inf, sp.oo, tuple((sp.oo,) for _ in rates), sp.oo, False, tuple(rates), unit,
                              f"rho = d1 sum_k lambda_k W_k = {float(rho):.6g} >= 1: the fluid iteration length "
                              "Delta* = d0/(1 - rho) is infinite (the load exceeds what the engine computes)")
    delta = sp.simplify(general["delta_star"].subs(subs))
    ns = tuple(sp.simplify(n.subs(subs)) for n in general["thresholds"])
    need = sp.simplify(general["memory_need"].subs(subs))
    per_stage = []
    for n, t in zip(ns, model.types, strict=True):
        top = t.decode.support_max
        if is_symbolic(t.l1) or math.isinf(top):
            per_stage.append(())
        else:
            per_stage.append(tuple(n * _survival(t.decode, j) for j in range(int(top))))
    M = model.M
    if is_infinite(M):
        feasible: Any = True
    elif is_symbolic(need) or is_symbolic(M):
        feasible = sp.Le(need, M)
    else:
        feasible = bool(need <= M)
    return WaitThresholds(ns, delta, tuple(per_stage), need, feasible, tuple(rates), unit)


# ----------------------------------------------------------------------------------
# Nested WAIT: segments
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segments:
    r"""Nested WAIT's segments (see :func:`segments`).

    Attributes
    ----------
    boundaries : tuple of int
        :math:`L_1 < \dots < L_S`.
    rates : tuple
        :math:`\Lambda_s = \sum_k \lambda_k P(l_{1,k} > L_{s-1})`, the rate entering segment :math:`s`.
    survival : tuple
        :math:`q_s = \Lambda_s / \Lambda_{s-1}` for :math:`s \ge 2` (:math:`q_1 = 1`): the
        probability that a request entering segment :math:`s-1` reaches segment :math:`s`.
    thresholds : tuple
        Fluid thresholds :math:`n_s^* = \Lambda_s \Delta^*`.
    entry_memory : tuple
        Tokens a request waiting at the entry of segment :math:`s` holds, on average over the
        types reaching it: :math:`E[l_0 \mid l_1 > L_{s-1}] + 1 + L_{s-1}`.
    """

    boundaries: tuple
    rates: tuple
    survival: tuple
    thresholds: tuple
    entry_memory: tuple


MAX_DISTINCT_BOUNDARIES = 4
"""Finite decode laws with at most this many distinct lengths get one segment per length
(:func:`default_boundaries`); more distinct lengths get quantile boundaries."""


def default_boundaries(model: ContinuousBatching, quantiles: Sequence[float] = (0.5, 0.9, 0.99)) -> tuple[int, ...]:
    r"""Nested WAIT's default boundaries.

    The sorted distinct decode lengths when the laws are finite with at most
    :data:`MAX_DISTINCT_BOUNDARIES` distinct values (e.g. [ALSW25]'s Example 3: ``(100, 400)``),
    else the pooled decode law's ``quantiles`` (weights: the arrival rates) and its largest
    value (the support cut at :math:`10^{-9}` tail mass).

    Why a cap: every boundary makes the survivors of a segment wait at the next entry until
    its threshold fills, and needs a buffer; with one boundary per distinct length of a
    trace (32 on the Azure conversation trace in blocks of 16 tokens) the integer thresholds
    of the late segments stay far above their fluid values (at least 1 against 0.09 there),
    survivors wait at every boundary and a boundary whose drift is nearly zero needs a
    buffer of hundreds of requests (512 at boundary 26 there: 54,944 tokens reserved against
    :math:`M = 6250`). Quantile boundaries give 3 segments there, ``(9, 27, 32)``.
    """
    values: set[int] = set()
    finite = True
    for t in model.types:
        top = t.decode.support_max
        if is_symbolic(t.l1) or math.isinf(top):
            finite = False
            break
        if isinstance(t.decode, Deterministic):
            values.add(int(to_sympy(t.decode.value)))
        else:
            values.update(i for i in range(1, int(top) + 1) if float(t.decode.pmf(i)) > 0)
    if finite and len(values) <= MAX_DISTINCT_BOUNDARIES:
        return tuple(sorted(values))
    # quantiles of the pooled decode law (weights: arrival rates), support cut at 1e-9 tail mass
    weights = np.array([float(t.arrival_rate) for t in model.types])
    weights = weights / weights.sum()
    n = 1024
    while True:
        cdf = sum(w * np.cumsum(t.decode.pmf_array(n)) for w, t in zip(weights, model.types, strict=True))
        if cdf[-1] >= 1 - 1e-9 or n >= 2**22:
            break
        n *= 4
    out = {int(np.searchsorted(cdf, q)) for q in quantiles}
    out.add(int(np.searchsorted(cdf, min(cdf[-1], 1 - 1e-9))))
    out.discard(0)
    return tuple(sorted(out))


def segments(model: ContinuousBatching, boundaries: Sequence[int] | None = None,
             prefill_stage: bool = False) -> Segments:
    r"""The segments of Nested WAIT between ``boundaries`` ([ALSW25] section 5).

    Segment :math:`s` holds stages :math:`[L_{s-1}, L_s)`. The rate entering it is
    :math:`\Lambda_s = \sum_k \lambda_k P(l_{1,k} > L_{s-1})` and its fluid threshold
    :math:`n_s^* = \Lambda_s \Delta^*` (:math:`\Delta^*` of :func:`wait_thresholds`).
    """
    if boundaries is None:
        bounds = default_boundaries(model)
    else:
        if isinstance(boundaries, (str, bytes, dict, set)) or not hasattr(boundaries, "__iter__"):
            raise ParameterError(f"boundaries must be a list of positive integers, got {describe(boundaries)}")
        raw = list(boundaries)
        for i, b in enumerate(raw):
            check_real(f"boundaries[{i}]", b, low=1.0, integer=True)  # 2.5 is refused, never floored
        bounds = tuple(int(b) for b in raw)
    if not bounds or any(b <= a for a, b in pairwise(bounds)) or bounds[0] < 1:
        raise ParameterError(f"boundaries must be strictly increasing positive integers, got {list(bounds)}")
    wt = wait_thresholds(model, prefill_stage)
    lows = (0, *bounds[:-1])
    rates, entry = [], []
    for low in lows:
        alive = [(lam, _survival(t.decode, low), t)
                 for lam, t in zip(wt.rates, model.types, strict=True)]
        lam_s = sp.Add(*[lam * p for lam, p, _ in alive])
        rates.append(sp.simplify(lam_s))
        if lam_s == 0:
            entry.append(sp.nan)
        else:
            entry.append(sp.simplify(sp.Add(*[lam * p * t.l0 for lam, p, t in alive]) / lam_s + 1 + low))
    # a request at the entry of segment s has executed L_{s-1} stages: it holds l0 + 1 + L_{s-1}
    survival = [sp.Integer(1)] + [sp.simplify(b / a) if a != 0 else sp.nan for a, b in pairwise(rates)]
    thresholds = tuple(sp.simplify(r * wt.delta_star) for r in rates)
    return Segments(bounds, tuple(rates), tuple(survival), thresholds, tuple(entry))


# ----------------------------------------------------------------------------------
# the safety buffer
# ----------------------------------------------------------------------------------
def buffer_equation(cohort: Any, q: Any, served: Any) -> sp.Eq:
    r"""The equation :math:`E[e^{\theta (Y - n)}] = 1` for :math:`Y \sim \mathrm{Bin}(m, q)`.

    Derived from the binomial PGF: :math:`E[e^{\theta Y}] = (1 - q + q e^\theta)^m`, so the
    equation reads :math:`(1 - q + q e^\theta)^m e^{-\theta n} = 1`.
    """
    m, qq, n = to_sympy(cohort), to_sympy(q), to_sympy(served)
    closed = (1 - qq + qq * sp.exp(THETA)) ** m
    return sp.Eq(closed * sp.exp(-THETA * n), 1)


def _theta(m: int, q: float, n: int) -> float:
    r"""The positive root of :math:`m \ln(1 - q + q e^\theta) - n\theta = 0` (``inf`` if
    :math:`Y \le n` surely, ``0`` if the drift :math:`mq - n \ge 0`)."""
    if m <= n or q <= 0:
        return math.inf  # Y - n <= 0: the inventory never grows
    if m * q >= n:
        return 0.0  # no negative drift: no exponential bound
    from scipy.optimize import brentq

    def f(t: float) -> float:
        return m * math.log1p(q * math.expm1(t)) - n * t

    hi = 1.0
    while f(hi) <= 0:
        hi *= 2.0
        if hi > 1e6:
            return math.inf
    return float(brentq(f, 1e-12, hi, xtol=1e-14, rtol=1e-12))


@dataclass(frozen=True)
class SafetyBuffer:
    r"""The safety buffer of Nested WAIT (see :func:`safety_buffer`).

    Attributes
    ----------
    theta : tuple of float
        :math:`\theta_k` per boundary :math:`k = 2..S` (``inf``: no overflow possible;
        ``0``: no exponential bound, the buffer is infinite).
    buffer : tuple of float
        :math:`b_k = \ln(K/\delta)/\theta_k` requests.
    reserved_memory : float
        :math:`\sum_k (b_k + n_k - 1) \cdot` (tokens a waiting request holds at boundary
        :math:`k`): the requests left waiting at an entry after its segment takes its
        :math:`n_k` (see :func:`safety_buffer`).
    overflow_bound : float
        :math:`\sum_k e^{-\theta_k b_k}` (:math:`\le \delta`), the union bound on the
        probability that some inventory exceeds its buffer in equilibrium.
    boundaries : tuple of int
        The boundaries :math:`L_1, \dots, L_{S-1}` the buffers sit at (entries of segments 2..S).
    """

    theta: tuple
    buffer: tuple
    reserved_memory: float
    overflow_bound: float
    boundaries: tuple
    equations: tuple = ()


def safety_buffer(thresholds: Sequence[int], survival: Sequence[Any], entry_memory: Sequence[Any],
                  boundaries: Sequence[int], overflow: float = 1e-3) -> SafetyBuffer:
    r"""Buffers at the boundaries of Nested WAIT ([ALSW25] section 5, exponential-martingale bound).

    For boundary :math:`k` (entry of segment :math:`k = 2..S`): a cohort of
    :math:`n_{k-1}` requests crosses segment :math:`k - 1`, :math:`Y \sim \mathrm{Bin}(n_{k-1}, q_k)`
    survive it and join the entry queue of segment :math:`k`, which takes :math:`n_k` per
    iteration. The inventory is a reflected random walk with increments :math:`Y - n_k`;
    with :math:`\theta_k` the positive root of :math:`E[e^{\theta (Y - n_k)}] = 1`
    (:func:`buffer_equation`), :math:`e^{\theta_k S_t}` is a martingale and
    :math:`P(\sup_t S_t \ge x) \le e^{-\theta_k x}`. Over :math:`K = S - 1` boundaries
    :math:`b_k = \ln(K/\delta)/\theta_k` gives overflow probability at most :math:`\delta`.

    Nested WAIT serves an entry only when it holds its threshold, so its inventory
    :math:`W_{t+1} = W_t + Y_t - n_k 1\{W_t + Y_t \ge n_k\}` is not the Lindley process
    :math:`Z_{t+1} = (Z_t + Y_t - n_k)^+` of the bound; by induction
    :math:`W_t \le Z_t + n_k - 1`, so the requests waiting at the entry before its segment
    takes its share satisfy :math:`W_t + Y_t \le Z_{t+1} + 2 n_k - 1` and exceed
    :math:`b_k + 2 n_k - 1` with probability at most :math:`e^{-\theta_k b_k}`.

    Parameters
    ----------
    thresholds : sequence of int
        Integer thresholds :math:`n_1, \dots, n_S` of the segments.
    survival : sequence
        :math:`q_1, \dots, q_S` (:math:`q_1` unused).
    entry_memory : sequence
        Tokens held by a request waiting at each segment's entry.
    boundaries : sequence of int
        :math:`L_1, \dots, L_S`.
    overflow : float
        :math:`\delta \in (0, 1)`.
    """
    if not 0 < overflow < 1:
        raise ParameterError(f"overflow must be a probability in (0, 1), got {describe(overflow)}")
    S = len(thresholds)
    K = S - 1
    thetas, buffers, eqs = [], [], []
    reserved = 0.0
    bound = 0.0
    for k in range(1, S):
        m, n, q = int(thresholds[k - 1]), int(thresholds[k]), float(survival[k])
        eqs.append(buffer_equation(m, sp.nsimplify(survival[k]), n))
        th = _theta(m, q, n)
        b = 0.0 if math.isinf(th) else (math.inf if th == 0 else math.log(K / overflow) / th)
        thetas.append(th)
        buffers.append(b)
        # left waiting after service: at most Z + n_k - 1, Z the Lindley process bounded by b
        reserved += (b + n - 1) * float(entry_memory[k]) if (b or n > 1) else 0.0
        bound += 0.0 if math.isinf(th) else (1.0 if th == 0 else math.exp(-th * b))
    return SafetyBuffer(tuple(thetas), tuple(buffers), reserved, bound, tuple(int(b) for b in boundaries[:-1]),
                        tuple(eqs))
