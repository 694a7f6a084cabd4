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

Source: [ALSW25] sections 4-5 and the authors' simulator.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import ParameterError, describe
from .model import ContinuousBatching
from .numbers import to_float
from .policies import NestedWait, Wait
from .theorems import theorems

__all__ = ["fluid_wait", "fluid_nested_wait", "ROUNDINGS"]

ROUNDINGS = ("ceil", "floor", "nearest")


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
        raise ParameterError(f"no WAIT equilibrium for this model: {values['reason']}")
    if limit is None:
        ns = {k: _round(to_float(n, f"n_{k}*"), rounding) for k, n in enumerate(values["thresholds"])}
        return Wait(thresholds=ns, trigger=trigger, stall=stall)
    rates = [to_float(r, "arrival rate") for r in values["rates"]]
    weights = [r * (to_float(t.l1, "mean decode length") + 1) for r, t in zip(rates, model.types, strict=True)]
    total = sum(weights)
    ns = {k: max(1, math.floor(limit * r / total)) for k, r in enumerate(rates)}
    budgets = {k: max(ns[k], math.floor(limit * w / total)) for k, w in enumerate(weights)}
    return Wait(thresholds=ns, trigger=trigger, stall=stall, budgets=budgets)


def fluid_nested_wait(model: ContinuousBatching, boundaries: Any = None, overflow: float = 1e-3,
                      total_limit: Any = None, stall: bool = True) -> NestedWait:
    r"""Nested WAIT with segments, thresholds and buffers from the ``safety-buffer`` theorem.

    Boundaries default to the distinct decode lengths (finite laws) or quantiles of the pooled
    decode law; thresholds are :math:`\max(1, \lceil \Lambda_s \Delta^* \rceil)` (or the authors'
    total-limit rule); the buffer at boundary :math:`k` is :math:`\lceil \ln(K/\delta)/\theta_k \rceil`
    requests so that the probability that some boundary inventory exceeds its buffer is at most
    ``overflow`` :math:`= \delta`.
    """
    _total_limit(total_limit)
    values = theorems["safety-buffer"].evaluate(model, boundaries=boundaries, overflow=overflow,
                                                 total_limit=total_limit)
    buffers = [0]
    for b in values["buffer"]:
        if math.isinf(b):
            raise ParameterError(
                "a boundary has no negative drift (n_{k-1} q_k >= n_k): no finite safety buffer; "
                "raise the later thresholds (total_limit) or move the boundaries"
            )
        buffers.append(math.ceil(b - 1e-12))
    return NestedWait(boundaries=list(values["boundaries"]), thresholds=list(values["thresholds"]),
                      budgets=list(values["budgets"]), buffer=buffers, stall=stall)
