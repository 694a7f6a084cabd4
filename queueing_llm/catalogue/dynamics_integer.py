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

from typing import Any

import sympy as sp

from ..model import ContinuousBatching
from ..policies import RateLimited
from ..theorems import Theorem, theorems
from ..theory import dynamics as dyn
from ..theory.dynamics_integer import X as X_RATE
from . import dynamics_checks as checks
from .dynamics import SOURCE, _homogeneous_reason

__all__ = ["X_MAX"]

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


theorems.register(Theorem(
    name="integer-rate-limit",
    title="Token-bucket admission in the integer system: largest eviction-free rate",
    hypotheses=("saturated input, one request type with integer l0, l1 and M",
                "token bucket of depth x + 1 at a rational rate x (MODEL.md section 3), from an empty batch",
                "eviction-free at x iff the peak P(x) of the admission pattern is at most M"),
    statement_fn=_statement, evaluate_fn=_evaluate, check_fn=checks.integer_rate_check,
    runs=checks.INTEGER_RATE_RUNS,
    source=f"{SOURCE}, section 5.1 in the integer system (MODEL.md section 3)", applies_fn=_integer_reason,
))
