r"""Fluid-guided policies with their numbers: WAIT and Nested WAIT from the theorem registry.

The simulator never derives thresholds: a :class:`~queueing_llm.policies.Wait` or
:class:`~queueing_llm.policies.NestedWait` value carries them. The functions here sit above
both layers: they evaluate the registry (``wait-thresholds``, ``safety-buffer``) for a model
and return the policy value, rounded to positive integers.

Rounding of WAIT's thresholds (the fluid :math:`n_k^* = \lambda_k \Delta^*` is usually
fractional):

``"ceil"`` (default)
    :math:`\max(1, \lceil n_k^* \rceil)`: never below the fluid value, so the batch admits at
    least the arrivals of an iteration (the queue cannot grow for lack of admissions), at the
    price of a longer wait to fill a threshold.
``"floor"``, ``"nearest"``
    :math:`\max(1, \lfloor n_k^* \rfloor)`, :math:`\max(1, \mathrm{round}(n_k^*))`.
``total_limit=N``
    The authors' rule: :math:`n_k = \max(1, \lfloor N \lambda_k / \sum_i \lambda_i (o_i + 1) \rfloor)`
    and budgets :math:`N_k = N \lambda_k (o_k + 1) / \sum_i \lambda_i (o_i + 1)`, :math:`o_k` the
    mean output length.

When the rounded batch does not fit: WAIT's no-eviction guarantee needs
:math:`\sum_k n_k W_k \le M` with the *integer* thresholds (every stage holding
:math:`n_k`). Rounding up can break it when the fluid batch fits (default model:
:math:`n^* = 1.2 \to 2`, :math:`2 \times 1220 = 2440 > M = 2000`), and rounding down then
admits fewer than arrive (:math:`1 < 1.2`): no rounding both keeps up and fits. So
:func:`fluid_wait` keeps the rounding asked for and warns with :class:`ThresholdWarning`
(the run may evict; the ``wait-thresholds`` check then says "does not apply" for the
no-eviction claim).

Nested WAIT's defaults (:func:`fluid_nested_wait`):

* **stall** defaults to False. The authors' code (the references chapter, section 2;
  the model chapter, section 3) stops segment :math:`s` and the later ones whenever its entry holds fewer
  than its threshold: ``stall=True`` keeps that rule. With thresholds rounded up from
  fluid values below 1 (:math:`n_s \ge 1 > n_s^*`) a stalled segment is a conveyor that
  moves only when fed: it runs in a fraction :math:`\approx n_s^*/n_s` of the iterations,
  its members stay :math:`n_s/n_s^*` times longer and it holds :math:`n_s` requests per
  stage instead of :math:`n_s^*`. On [ALSW25]'s Example 3 (segment 2: 300 stages, one type-2
  request each, about 135,000 tokens against :math:`M = 100{,}000`) ``stall=True``
  completes 14.3 requests/s of 35 arriving, no type-2 request; ``stall=False`` keeps up
  (34.7/s over 6,000 iterations with its warm-up, no eviction). The authors' stall is right
  when thresholds are large (heavy traffic, :math:`n_s \approx n_s^*`); pass
  ``stall=True`` to get it; :func:`fluid_nested_wait` then warns (:class:`ThresholdWarning`)
  when the stalled segments' memory :func:`stalled_memory` plus the buffers exceeds :math:`M`.
* **boundaries**: :func:`queueing_llm.theory.fluid_wait.default_boundaries` (distinct decode
  lengths up to four of them, else quantiles).
* **buffer too large**: the buffers reserve memory that admission keeps free. If the
  reserved memory plus the fluid batch memory :math:`M^*` exceeds :math:`M`, the policy
  could not hold its own fluid batch: with explicit ``boundaries`` :func:`fluid_nested_wait`
  refuses (:class:`~queueing_llm.errors.ParameterError` naming the boundary, its buffer
  and the memory); with the default boundaries it drops the boundary whose buffer
  reserves the most memory, and again, until the buffers fit, and says so with a
  :class:`ThresholdWarning`.
* **no equilibrium** (:math:`\rho \ge 1`, overload): a
  :class:`~queueing_llm.errors.ParameterError` saying so, as :func:`fluid_wait`;
  :func:`queueing_llm.stable_range` counts such a rate as unstable.

Source: [ALSW25] sections 4-5 and the authors' simulator.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from .errors import NoEquilibriumError, ParameterError, describe
from .model import ContinuousBatching
from .numbers import to_float
from .policies import NestedWait, Wait
from .theorems import theorems

__all__ = ["fluid_wait", "fluid_nested_wait", "ROUNDINGS", "ThresholdWarning", "NoEquilibriumError",
           "rounded_batch_memory", "stalled_memory"]

ROUNDINGS = ("ceil", "floor", "nearest")


class ThresholdWarning(UserWarning):
    r"""The fluid-guided policy was built, but with something a user should look at: WAIT's
    rounded batch :math:`\sum_k n_k W_k` exceeds :math:`M` (the no-eviction guarantee does not
    apply), or Nested WAIT's default boundaries were thinned so that the buffers fit."""


def rounded_batch_memory(model: ContinuousBatching, thresholds: dict) -> float:
    r""":math:`\sum_k n_k W_k`: the batch memory when every stage of type :math:`k` holds
    :math:`n_k` requests (:math:`W_k` the lifetime memory, the simulator's convention), the
    memory WAIT's no-eviction guarantee needs to fit in :math:`M`."""
    from .theory.capacity import lifetime_memory

    return float(sum(int(thresholds.get(k, 0)) * to_float(lifetime_memory(t), f"W_{k}")
                     for k, t in enumerate(model.types)))


def stalled_memory(model: ContinuousBatching, policy: NestedWait) -> float:
    r"""Batch memory of Nested WAIT with ``stall=True`` when each segment moves only when fed:
    every stage :math:`j` of segment :math:`s` holds the survivors of a cohort of :math:`n_s`
    entrants, :math:`\sum_s n_s \sum_{j=L_{s-1}}^{L_s - 1} \sum_k \lambda_k P(l_{1,k} > j)
    (E[l_{0,k}] + j + 1) / \Lambda_s`, :math:`\Lambda_s = \sum_k \lambda_k P(l_{1,k} > L_{s-1})`
    (tokens). Above :math:`M` the stalled pipeline cannot hold its own cohorts."""
    import numpy as np

    top = int(policy.boundaries[-1])
    j = np.arange(top)
    alive, load = np.zeros(top), np.zeros(top)
    for t in model.types:
        lam = to_float(t.arrival_rate, "arrival rate")
        surv = 1.0 - np.cumsum(np.asarray(t.decode.pmf_array(top), dtype=float))  # P(l1 > j), j < top
        alive += lam * surv
        load += lam * surv * (to_float(t.l0, "mean prompt") + j + 1)
    total = 0.0
    for n, (low, high) in zip(policy.thresholds, policy.segments, strict=True):
        if low < top and alive[low] > 0:
            total += n * float(load[low:high].sum()) / float(alive[low])
    return total


def _no_equilibrium(reason: str, policy: str) -> NoEquilibriumError:
    return NoEquilibriumError(
        f"no {policy} equilibrium for this model: {reason}; lower the arrival rates "
        "(ql.stable_range counts such a rate as unstable)"
    )


def _round(value: float, rounding: str) -> int:
    if rounding == "ceil":
        return max(1, math.ceil(value - 1e-12))
    if rounding == "floor":
        return max(1, math.floor(value + 1e-12))
    return max(1, int(math.floor(value + 0.5)))


def _total_limit(total_limit: Any) -> float | None:
    if total_limit is None:
        return None
    if isinstance(total_limit, bool) or not isinstance(total_limit, (int, float)) or not 1 <= total_limit < math.inf:
        raise ParameterError(
            f"total_limit must be a finite number >= 1 (target batch size), got {describe(total_limit)}"
        )
    return float(total_limit)


def fluid_wait(model: ContinuousBatching, total_limit: Any = None, rounding: str = "ceil",
               trigger: str = "any", stall: bool = True) -> Wait:
    r"""WAIT with thresholds from the ``wait-thresholds`` theorem, rounded to positive integers.

    Parameters
    ----------
    model : ContinuousBatching
        Arrival rates per type (per second with a linear iteration time, or per iteration).
    total_limit : float or None
        The authors' target batch size :math:`N`; None: round the fluid thresholds.
    rounding : {"ceil", "floor", "nearest"}
        How a fractional :math:`n_k^*` becomes an integer (``max(1, .)`` in every case).
    trigger, stall
        Passed to :class:`~queueing_llm.policies.Wait`.

    Examples
    --------
    >>> import queueing_llm as ql
    >>> m = ql.ContinuousBatching([ql.RequestType(2, 3, 1.5)], kv_capacity=50)
    >>> ql.fluid_wait(m).thresholds
    {0: 2}
    """
    if rounding not in ROUNDINGS:
        raise ParameterError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {describe(rounding)}")
    limit = _total_limit(total_limit)
    values = theorems["wait-thresholds"].evaluate(model)
    if values["feasible"] is False and "reason" in values:
        raise _no_equilibrium(values["reason"], "WAIT")
    if limit is None:
        ns = {k: _round(to_float(n, f"n_{k}*"), rounding) for k, n in enumerate(values["thresholds"])}
        policy = Wait(thresholds=ns, trigger=trigger, stall=stall)
    else:
        rates = [to_float(r, "arrival rate") for r in values["rates"]]
        weights = [r * (to_float(t.l1, "mean decode length") + 1) for r, t in zip(rates, model.types, strict=True)]
        total = sum(weights)
        ns = {k: max(1, math.floor(limit * r / total)) for k, r in enumerate(rates)}
        budgets = {k: max(ns[k], math.floor(limit * w / total)) for k, w in enumerate(weights)}
        policy = Wait(thresholds=ns, trigger=trigger, stall=stall, budgets=budgets)
    M = to_float(model.M, "kv_capacity") if not model.is_symbolic else math.inf
    need = rounded_batch_memory(model, policy.thresholds)
    if need > M:
        fluid = [round(to_float(n, "n*"), 4) for n in values["thresholds"]]
        warnings.warn(ThresholdWarning(
            f"WAIT's rounded batch memory sum_k n_k W_k = {need:.6g} exceeds M = {M:.6g} (thresholds "
            f"{dict(policy.thresholds)} from the fluid values {fluid}): the no-eviction guarantee does not "
            "apply and the run may evict" + (
                "; rounding down would admit fewer than arrive" if rounding == "ceil" and limit is None
                and any(math.floor(n + 1e-12) < n for n in fluid) else "")), stacklevel=2)
    return policy


def fluid_nested_wait(model: ContinuousBatching, boundaries: Any = None, overflow: float = 1e-3,
                      total_limit: Any = None, stall: bool = False) -> NestedWait:
    r"""Nested WAIT with segments, thresholds and buffers from the ``safety-buffer`` theorem.

    Boundaries default to the distinct decode lengths when there are at most four of them,
    else quantiles of the pooled decode law
    (:func:`~queueing_llm.theory.fluid_wait.default_boundaries`); thresholds are
    :math:`\max(1, \lceil \Lambda_s \Delta^* \rceil)` raised where a boundary would lack
    negative drift (or the authors' total-limit rule); the buffer at boundary :math:`k` is
    :math:`\lceil \ln(K/\delta)/\theta_k \rceil` requests so that the probability that some
    boundary inventory exceeds its buffer is at most ``overflow`` :math:`= \delta`.

    ``stall`` defaults to False (module docstring: with thresholds rounded up from fluid
    values below 1 the authors' stall makes a segment move only when fed). The buffers'
    reserved memory plus the fluid batch memory :math:`M^*` must fit in :math:`M`:
    explicit ``boundaries`` whose buffers do not fit are refused (``ParameterError``); the
    default boundaries are thinned until they fit, with a :class:`ThresholdWarning`.

    Raises
    ------
    ParameterError
        No equilibrium (:math:`\rho \ge 1`), a boundary without a finite buffer, or buffers
        that do not fit with explicit ``boundaries``.
    """
    _total_limit(total_limit)
    fluid = theorems["wait-thresholds"].evaluate(model)
    if fluid["feasible"] is False and "reason" in fluid:
        raise _no_equilibrium(fluid["reason"], "Nested WAIT")
    if not isinstance(stall, bool):
        raise ParameterError(f"stall must be True or False, got {describe(stall)}")
    explicit = boundaries is not None
    bounds = None if boundaries is None else boundaries
    M = math.inf if model.is_symbolic else to_float(model.M, "kv_capacity")
    need = to_float(fluid["batch_memory"], "M*") if not model.is_symbolic else 0.0
    dropped: list[int] = []
    while True:
        values = theorems["safety-buffer"].evaluate(model, boundaries=bounds, overflow=overflow,
                                                     total_limit=total_limit)
        buffers = [0]
        for L, b in zip(values["boundaries"], values["buffer"], strict=False):
            if math.isinf(b):
                raise ParameterError(
                    f"boundary {L} has no negative drift (n_{{k-1}} q_k >= n_k): no finite safety buffer; "
                    "raise the later thresholds (total_limit) or move the boundaries"
                )
            buffers.append(math.ceil(b - 1e-12))
        reserved = float(values["reserved_memory"])
        if reserved + need <= M or len(values["boundaries"]) == 1:
            break
        # the boundary (entry of segment k+1) whose waiting requests reserve the most memory
        entry = [float(e) for e in values["entry_memory"][1:]]
        ns = values["thresholds"]
        cost = [(b + n - 1) * e for b, n, e in zip(values["buffer"], ns[1:], entry, strict=True)]
        worst = max(range(len(cost)), key=cost.__getitem__)
        L = values["boundaries"][worst]
        if explicit:
            raise ParameterError(
                f"the safety buffers reserve {reserved:.6g} tokens (boundary {L} the most: a buffer of "
                f"{values['buffer'][worst]:.4g} requests plus {ns[worst + 1] - 1} that wait there normally, about "
                f"{entry[worst]:.4g} tokens each) and the fluid batch needs M* = {need:.6g}: "
                f"more than kv_capacity M = {M:.6g} together; use fewer boundaries, a larger overflow "
                f"(now {overflow:g}) or a total_limit"
            )
        dropped.append(int(L))
        bounds = [b for b in values["boundaries"] if b != L]
    if dropped:
        warnings.warn(ThresholdWarning(
            f"Nested WAIT: default boundaries {sorted(dropped)} dropped so that the safety buffers' reserved "
            f"memory plus the fluid batch memory M* = {need:.6g} fits in M = {M:.6g}; boundaries now "
            f"{list(values['boundaries'])}"), stacklevel=2)
    policy = NestedWait(boundaries=list(values["boundaries"]), thresholds=list(values["thresholds"]),
                        budgets=list(values["budgets"]), buffer=buffers, stall=stall)
    if stall and not model.is_symbolic:
        held = stalled_memory(model, policy)
        if held + float(values["reserved_memory"]) > M:
            warnings.warn(ThresholdWarning(
                f"Nested WAIT with stall=True: segments that move only when fed hold about {held:.6g} tokens "
                f"(n_s per stage; fluid thresholds {[round(float(x), 3) for x in values['fluid_thresholds']]}) "
                f"plus {float(values['reserved_memory']):.6g} reserved, more than M = {M:.6g}: the queue is likely "
                "to grow; stall=False (the default) runs every segment each iteration"), stacklevel=2)
    return policy
