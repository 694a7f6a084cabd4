r"""Waiting-room cap :math:`K` of the batch-capped queue (the model chapter, section 5, B.7).

Arrivals that find :math:`K` requests waiting are rejected (and counted). In the slot
order of the model chapter, section 2, the queue seen by the arrivals of iteration :math:`n` is the
queue after the previous admission, :math:`W = (Y - B)^+` (execution does not touch it), so
with :math:`A` arrivals

.. math:: \text{accepted} = \min(A, K - W),\qquad \text{rejected} = (A - (K - W))^+ .

With geometric decode lengths the number in system after admission is a finite Markov
chain on :math:`\{0, \dots, B + K\}`:

.. math:: Y' = Y - D + \min(A, K - (Y - B)^+),\qquad D \mid Y \sim \mathrm{Bin}(\min(Y, B), q),

solved here exactly (no truncation: the accepted arrivals take at most :math:`K - W + 1`
values, the last one with the tail :math:`P(A \ge K - W)`); the rejection probability is
:math:`E[\text{rejected}]/\lambda`. In overload the rejection rate tends, as :math:`K \to \infty`,
to :math:`\lambda - B/E[l_1]` per iteration for any decode law (the batch completes
:math:`B/E[l_1]` per iteration and the queue stays bounded).

Sources: the model chapter, section 5, B.7; Bruneel and Kim (1993), ch. 4 (finite buffers);
Grassmann, Taksar and Heyman (1985) (GTH solution of the finite chain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..errors import ModelError, ParameterError
from ..model import ContinuousBatching
from ..numbers import is_infinite, is_symbolic, to_float, to_sympy
from .queue import geometric_q, queue_inputs, queue_reason, stability
from .queue_stationary import gth

__all__ = [
    "waiting_cap_reason",
    "overload_rejection_rate",
    "WaitingCapResult",
    "waiting_cap_chain",
    "rejection_probability",
]


def waiting_cap_reason(model: Any) -> str | None:
    """None if the waiting-cap results apply to ``model``, else why not."""
    reason = queue_reason(model)
    if reason is not None:
        return reason
    if is_infinite(model.waiting_cap):
        return "needs a finite waiting_cap K (the waiting room is unlimited)"
    if geometric_q(model) is None:
        st = stability(model)
        if st.stable is not False:
            return ("the finite-K rejection probability needs geometric decode lengths (a finite chain); "
                    "for other decode laws only the overload rate lambda - B/E[l1] is known, and this "
                    "model is not overloaded")
    return None


def overload_rejection_rate(model: ContinuousBatching) -> sp.Expr:
    r"""Rejections per iteration in overload as :math:`K \to \infty`:

    .. math:: \lim_{K\to\infty} \lim_{n\to\infty} \frac{\text{rejections}_{0..n}}{n}
              = \left(\lambda - \frac{B}{E[l_1]}\right)^+ .

    Source: the model chapter, section 5, B.7.
    """
    inp = queue_inputs(model)
    raw = sp.simplify(inp.lam - inp.B / inp.mean_decode)
    decided = sp.simplify(sp.StrictGreaterThan(raw, 0))
    if decided == sp.true:
        return raw
    if decided == sp.false:
        return sp.Integer(0)
    return sp.Piecewise((raw, sp.StrictGreaterThan(raw, 0)), (0, True))


@dataclass(frozen=True)
class WaitingCapResult:
    r"""The finite chain of the capped queue.

    Attributes
    ----------
    rejection_probability : float or sympy.Rational
        :math:`P(\text{an arrival is rejected}) = E[\text{rejected}]/\lambda`.
    rejection_rate : float or sympy.Rational
        :math:`E[\text{rejected}]` per iteration.
    throughput : float or sympy.Rational
        :math:`\lambda - E[\text{rejected}] = q\,E[\min(Y, B)]`.
    mean_in_system : float or sympy.Rational
        :math:`E[Y]` after admission.
    distribution : numpy.ndarray or list
        :math:`P(Y = y)`, :math:`y = 0..B+K`.
    exact : bool
        True when solved in exact rational arithmetic.
    """

    rejection_probability: Any
    rejection_rate: Any
    throughput: Any
    mean_in_system: Any
    distribution: Any
    exact: bool


ROUNDING = 1e-12
"""Floating-point results outside :math:`[0, 1]` (probabilities) or below 0 (rates) by at
most this much are rounding and are clipped; a larger excursion raises
:class:`~queueing_llm.errors.ModelError` reporting it."""


def _clip(value: float, what: str, high: float = math.inf) -> float:
    """``value`` clipped to ``[0, high]`` if it lies within :data:`ROUNDING` of it, else an error."""
    if not (-ROUNDING <= value <= high + ROUNDING):
        raise ModelError(
            f"the waiting-cap chain gave {what} = {value!r}, outside [0, {high:g}] by more than the rounding "
            f"error {ROUNDING:g}: the floating-point solve is not trustworthy here (try exact=True)"
        )
    return min(max(value, 0.0), high)


def _accepted_law(a: list, c: int) -> list:
    """Law of min(A, c) from the PMF list ``a`` (exact or float), tail lumped at c."""
    head = [a[j] if j < len(a) else 0 for j in range(c)]
    return head + [1 - sum(head)]


def waiting_cap_chain(model: ContinuousBatching, exact: bool = False) -> WaitingCapResult:
    r"""Solve the finite chain of the capped queue with geometric decode lengths.

    Transition from :math:`y`: :math:`s = \min(y, B)` members, :math:`w = (y - B)^+` waiting,
    :math:`D \sim \mathrm{Bin}(s, q)`, accepted :math:`\min(A, K - w)`. ``exact=True`` solves
    in rational arithmetic (arrival laws with finite support and rational parameters);
    otherwise GTH in floating point (a dense solve when every iteration has an arrival, since
    the low states are then transient).

    Source: the model chapter, sections 2 and 5 (B.7).
    """
    reason = waiting_cap_reason(model)
    if reason is None and geometric_q(model) is None:
        reason = "the finite chain needs geometric decode lengths"
    if reason is not None:
        raise ModelError(reason)
    inp = queue_inputs(model)
    q = geometric_q(model)
    if model.is_symbolic or is_symbolic(q):
        raise ParameterError("the waiting-cap chain needs numeric parameters; the model has symbols")
    B, K = int(model.B), int(to_sympy(model.waiting_cap))
    n_states = B + K + 1
    if exact:
        amax = 0
        for law in inp.arrival_laws:
            if not math.isfinite(law.support_max):
                raise ParameterError(f"exact=True needs arrival laws with finite support, got {law!r}")
            amax += int(law.support_max)
        poly = sp.Poly(sp.expand(inp.arrival_pgf), sp.Symbol("z"))
        a = [sp.nsimplify(poly.coeff_monomial(sp.Symbol("z") ** j)) for j in range(amax + 1)]
        qq = sp.nsimplify(q)
        binom = lambda s, d: sp.binomial(s, d) * qq**d * (1 - qq) ** (s - d)  # noqa: E731
        P = sp.zeros(n_states, n_states)
    else:
        from scipy.stats import binom as _b

        from .queue_stationary import arrival_pmf

        a = list(arrival_pmf(model))
        qf = to_float(q)
        binom = lambda s, d: float(_b.pmf(d, s, qf))  # noqa: E731
        P = np.zeros((n_states, n_states))
    rej = []
    lam = inp.lam if exact else to_float(inp.lam)
    for y in range(n_states):
        s, w = min(y, B), max(y - B, 0)
        acc = _accepted_law(a, K - w)
        if exact:
            rej.append(lam - sum(j * p for j, p in enumerate(acc)))
        else:  # E[(A - c)^+] summed directly: non-negative, no cancellation against lambda
            c = K - w
            rej.append(float(sum((j - c) * p for j, p in enumerate(a) if j > c)))
        for d in range(s + 1):
            pd = binom(s, d)
            for j, pa in enumerate(acc):
                P[y, y - d + j] += pd * pa
    if exact:
        M = (P.T - sp.eye(n_states))
        M[0, :] = sp.ones(1, n_states)
        rhs = sp.zeros(n_states, 1)
        rhs[0] = 1
        pi = list(M.LUsolve(rhs))
    elif a[0] > 0:
        pi = list(gth(P))
    else:  # no iteration without arrivals: low states are transient, GTH needs irreducibility
        M = P.T - np.eye(n_states)
        M[0, :] = 1.0
        rhs = np.zeros(n_states)
        rhs[0] = 1.0
        pi = [_clip(float(x), "a stationary probability", 1.0) for x in np.linalg.solve(M, rhs)]
    rate = sum(p * r for p, r in zip(pi, rej, strict=True))
    mean = sum(y * p for y, p in enumerate(pi))
    if exact:
        rate, mean = sp.nsimplify(sp.simplify(rate)), sp.simplify(mean)
    if not exact:
        rate = _clip(float(rate), "the rejection rate", lam)
    prob = rate / lam if lam != 0 else (sp.Integer(0) if exact else 0.0)
    return WaitingCapResult(prob, rate, lam - rate, mean, pi if exact else np.asarray(pi), exact)


def rejection_probability(model: ContinuousBatching, exact: bool = False) -> Any:
    r"""Probability that an arrival is rejected by the waiting-room cap :math:`K`.

    Geometric decode lengths: the finite chain (:func:`waiting_cap_chain`). Other decode
    laws in overload: the :math:`K \to \infty` limit
    :math:`(\lambda - B/E[l_1])/\lambda = 1 - B/(\lambda E[l_1])`.

    Source: the model chapter, section 5, B.7.
    """
    reason = waiting_cap_reason(model)
    if reason is not None:
        raise ModelError(reason)
    if geometric_q(model) is not None and not model.is_symbolic:
        return waiting_cap_chain(model, exact=exact).rejection_probability
    inp = queue_inputs(model)
    return sp.simplify(overload_rejection_rate(model) / inp.lam)
