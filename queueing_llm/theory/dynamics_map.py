r"""The relaxed (real-valued) saturated map with evictions, and cycle detection.

One iteration of the relaxed map (the model chapter, section 2, saturated input, counts real):

1. **execute**: every cohort moves one stage up; stage :math:`l_1 - 1` completes;
2. **evict**: if the memory :math:`\sum w_{c,j} y_{c,j}` exceeds :math:`M`, remove requests
   least-progressed-first (stage 0, 1, ...), cutting every component of a stage by the same
   fraction, until the memory is exactly :math:`M`; evicted requests rejoin the head of the
   queue;
3. **admit**: evicted requests first (in proportion to what waits), then new requests in
   proportions :math:`p_c`, each costing :math:`w_{c,0}`, while memory is free (greedy) and,
   under ``rate_limited(x)``, at most :math:`x` per iteration.

After an eviction the memory is exactly :math:`M`, so nothing is admitted and the
``admit_after_eviction`` option makes no difference (the references chapter, section 1).

Exact mode iterates in rationals (:class:`fractions.Fraction`; the arrays hold
:class:`sympy.Rational`), so [ADLS26] Example 3's first eviction at :math:`n = 7` in state
:math:`(0, 778/243, 544/243)` comes out exactly; float mode is for long runs.

Source: [ADLS26], the saturated map and its relaxation (the model chapter, section 2, A.2-A.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from ..errors import ParameterError, PolicyError
from ..model import ContinuousBatching
from ..numbers import check_real
from ..policies import Greedy, RateLimited
from .dynamics_core import components, decode_horizon, require_finite_memory, to_fraction
from .dynamics_integer import resolve_rate

__all__ = ["RelaxedTrajectory", "relaxed_trajectory", "Cycle", "detect_cycle"]


@dataclass(frozen=True)
class RelaxedTrajectory:
    r"""A run of the relaxed saturated map, with the array layout of a simulated ``Trajectory``.

    Attributes
    ----------
    model : ContinuousBatching
    exact : bool
        True: entries are :class:`sympy.Rational`; False: floats.
    rate : sympy.Expr or None
        The admission cap per iteration (None: greedy).
    batch : ndarray (N, K, L)
        Stage counts per type after admission at iteration :math:`n` (``batch[0]`` is the
        initial state, or the first admission into an empty batch).
    component_batch : ndarray (N, C, L)
        The same per component (type and decode length).
    queue, admissions, completions, evictions : ndarray (N, K)
        Evicted requests waiting after admission; counts during iteration :math:`n`.
    memory : ndarray (N,)
        KV tokens after admission.
    """

    model: ContinuousBatching
    exact: bool
    rate: Any
    batch: np.ndarray
    component_batch: np.ndarray
    queue: np.ndarray
    admissions: np.ndarray
    completions: np.ndarray
    evictions: np.ndarray
    memory: np.ndarray
    saturated: bool = True
    warmup: int = 0
    seed: Any = None

    @property
    def kind(self) -> str:
        """``"relaxed"``: the run kind of the :class:`queueing_llm.runs.Run` protocol."""
        return "relaxed"

    @property
    def iterations(self) -> int:
        """Number :math:`N` of recorded iterations."""
        return int(self.batch.shape[0])

    @property
    def time(self) -> np.ndarray:
        """Iteration numbers (the slotted clock)."""
        return np.arange(self.iterations, dtype=float)

    def state(self, n: int) -> tuple[tuple[sp.Expr, ...], ...]:
        """Stage counts per type after admission at iteration ``n`` (SymPy numbers)."""
        return tuple(tuple(sp.sympify(v) for v in row) for row in self.batch[n])

    @property
    def first_eviction(self) -> int | None:
        """First iteration with an eviction (None if none)."""
        total = self.evictions.sum(axis=1)
        hits = np.nonzero(total > 0)[0]
        return int(hits[0]) if hits.size else None

    def throughput(self, start: int = 0) -> sp.Expr | float:
        """Completions per iteration over iterations ``start .. N-1``."""
        n = self.iterations - start
        if n <= 0:
            raise ParameterError(f"start must be below the {self.iterations} iterations, got {start}")
        total = self.completions[start:].sum()
        return sp.Rational(total) / n if self.exact else float(total) / n


def _rate(model: ContinuousBatching, rate: Any) -> Any:
    if rate is not None:
        check_real("rate", rate, low=0.0, low_open=True)
        return rate
    policy = model.policy
    if isinstance(policy, Greedy):
        return None
    if isinstance(policy, RateLimited):
        return resolve_rate(model)
    raise PolicyError(
        f"the relaxed map runs greedy and rate_limited admission, got policy {policy}; "
        "use policy='greedy' or ql.rate_limited(x)"
    )


def _initial(initial: Any, comps: Sequence, K: int, L: int, num: Any) -> list[list[Any]]:
    arr = np.asarray(initial, dtype=object)
    if arr.ndim == 1 and K == 1:
        arr = arr.reshape(1, -1)
    n_rows = len(comps)
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        raise ParameterError(
            f"initial must be stage counts of shape ({n_rows}, <= {L}) (one row per component), "
            f"got shape {arr.shape}"
        )
    state = []
    for c, comp in enumerate(comps):
        row = [num(0)] * L
        values = list(arr[c])
        if len(values) > L:
            raise ParameterError(f"initial row {c} has {len(values)} stages, more than L = {L}")
        for j, v in enumerate(values):
            check_real(f"initial[{c}][{j}]", v, low=0.0)
            if j >= int(comp.l1) and v != 0:
                raise ParameterError(f"initial[{c}][{j}] = {v}: stage {j} is beyond decode length {comp.l1}")
            row[j] = num(v)
        state.append(row)
    return state


def relaxed_trajectory(
    model: ContinuousBatching,
    iterations: int,
    initial: Any = None,
    *,
    exact: bool = True,
    rate: Any = None,
) -> RelaxedTrajectory:
    r"""Iterate the relaxed saturated map (greedy or rate-limited admission) with evictions.

    Parameters
    ----------
    model : ContinuousBatching
        Numeric model with finite :math:`M` and finite-support decode lengths; the policy
        must be ``greedy`` or ``rate_limited(x)`` (``x = x^*`` by default).
    iterations : int
        Number :math:`N` of recorded states (iterations :math:`0 .. N-1`).
    initial : array-like or None
        Stage counts after admission at iteration 0, one row per component (= per type for
        deterministic decode lengths); memory must not exceed :math:`M`. None: iteration 0
        admits into an empty batch.
    exact : bool
        Rational arithmetic (True) or floats.
    rate : number or None
        Admission cap per iteration overriding the model's policy.

    Notes
    -----
    The map is :math:`X_{n+1} = F(X_n)` of the model chapter, section 2 with real counts; each
    iteration executes, evicts least-progressed-first (every component of a stage cut by the
    same fraction) and admits. Source: [ADLS26], relaxed saturated dynamics.
    """
    M = require_finite_memory(model)
    check_real("iterations", iterations, low=1, integer=True)
    if model.is_symbolic:
        raise ParameterError("relaxed_trajectory iterates numbers: give numeric l0, l1, M and proportions")
    comps = components(model)
    L = decode_horizon(model)
    num = to_fraction if exact else (lambda v: float(sp.sympify(v)))
    zero = num(0)
    cap = _rate(model, rate)
    cap = None if cap is None else num(cap)
    Mn = num(M)
    p = [num(c.p) for c in comps]
    lengths = [int(c.l1) for c in comps]
    w = [[num(c.w(j)) for j in range(L)] for c in comps]
    S0 = sum((p[c] * w[c][0] for c in range(len(comps))), zero)
    eps = zero if exact else 1e-12 * float(Mn)
    C, K = len(comps), model.K
    state = [[zero] * L for _ in comps] if initial is None else _initial(initial, comps, K, L, num)
    backlog = [zero] * C

    def memory(x: list[list[Any]]) -> Any:
        return sum((x[c][j] * w[c][j] for c in range(C) for j in range(lengths[c])), zero)

    def admit(x: list[list[Any]], admitted: list[Any]) -> None:
        free = Mn - memory(x)
        budget = cap
        cost_b = sum((backlog[c] * w[c][0] for c in range(C)), zero)
        count_b = sum(backlog, zero)
        if count_b > eps and free > eps:
            s = min(Fraction(1) if exact else 1.0, free / cost_b)
            if budget is not None:
                s = min(s, budget / count_b)
            for c in range(C):
                a = backlog[c] * s
                x[c][0] += a
                admitted[c] += a
                backlog[c] -= a
            free -= s * cost_b
            budget = None if budget is None else budget - s * count_b
        if free > eps and not any(b > eps for b in backlog):
            a = free / S0
            if budget is not None:
                a = min(a, budget)
            for c in range(C):
                x[c][0] += p[c] * a
                admitted[c] += p[c] * a

    rec_state, rec_queue, rec_adm, rec_comp, rec_ev, rec_mem = [], [], [], [], [], []

    def record(x, adm, comp, ev) -> None:
        rec_state.append([row[:] for row in x])
        rec_queue.append(backlog[:])
        rec_adm.append(adm)
        rec_comp.append(comp)
        rec_ev.append(ev)
        rec_mem.append(memory(x))

    if initial is None:
        adm = [zero] * C
        admit(state, adm)
        record(state, adm, [zero] * C, [zero] * C)
    else:
        if memory(state) > Mn + eps:
            raise ParameterError(f"initial state holds {memory(state)} tokens, more than M = {M}")
        record(state, [zero] * C, [zero] * C, [zero] * C)
    for _ in range(1, int(iterations)):
        done = [state[c][lengths[c] - 1] for c in range(C)]
        new = [[zero] + state[c][: lengths[c] - 1] + [zero] * (L - lengths[c]) for c in range(C)]
        ev = [zero] * C
        excess = memory(new) - Mn
        for j in range(L):
            if excess <= eps:
                break
            held = sum((new[c][j] * w[c][j] for c in range(C)), zero)
            if held <= 0:
                continue
            f = min(Fraction(1) if exact else 1.0, excess / held)
            for c in range(C):
                cut = new[c][j] * f
                new[c][j] -= cut
                ev[c] += cut
                backlog[c] += cut
            excess -= f * held
        adm = [zero] * C
        admit(new, adm)
        state = new
        record(state, adm, done, ev)
    return _package(model, exact, cap, comps, K, L, rec_state, rec_queue, rec_adm, rec_comp, rec_ev, rec_mem)


def _package(model, exact, cap, comps, K, L, states, queue, adm, comp, ev, mem) -> RelaxedTrajectory:
    conv = (lambda v: sp.Rational(v.numerator, v.denominator)) if exact else float
    dtype = object if exact else float
    N, C = len(states), len(comps)
    cb = np.empty((N, C, L), dtype=dtype)
    for n, x in enumerate(states):
        for c in range(C):
            cb[n, c] = [conv(v) for v in x[c]]

    def per_type(rows: list[list[Any]]) -> np.ndarray:
        out = np.zeros((N, K), dtype=dtype) if not exact else np.full((N, K), sp.Integer(0), dtype=object)
        for n, row in enumerate(rows):
            for c, comp in enumerate(comps):
                out[n, comp.type_index] = out[n, comp.type_index] + conv(row[c])
        return out

    if all(comp.type_index == c for c, comp in enumerate(comps)) and C == K:
        batch = cb.copy()
    else:
        batch = np.zeros((N, K, L), dtype=dtype) if not exact else np.full((N, K, L), sp.Integer(0), dtype=object)
        for c, component in enumerate(comps):
            batch[:, component.type_index, :] = batch[:, component.type_index, :] + cb[:, c, :]
    memory = np.array([conv(m) for m in mem], dtype=dtype)
    return RelaxedTrajectory(
        model=model, exact=exact, rate=None if cap is None else (conv(cap)), batch=batch, component_batch=cb,
        queue=per_type(queue), admissions=per_type(adm), completions=per_type(comp), evictions=per_type(ev),
        memory=memory,
    )


@dataclass(frozen=True)
class Cycle:
    r"""A periodic regime found in a trajectory.

    Attributes
    ----------
    start : int
        First iteration of the periodic regime (the transient is ``0 .. start-1``).
    period : int
        Minimal period :math:`P`.
    throughput : sympy.Rational or float
        Completions per iteration over one period (exact for integer or rational runs).
    evictions : sympy.Rational or float
        Evictions per iteration over one period.
    admissions : sympy.Rational or float
        Admissions per iteration over one period.
    states : ndarray (P, ...)
        The batch states of one period.
    """

    start: int
    period: int
    throughput: Any
    evictions: Any
    admissions: Any
    states: np.ndarray

    def __str__(self) -> str:
        return f"cycle of period {self.period} from iteration {self.start}, throughput {self.throughput}"


def _arrays(trajectory: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    batch = getattr(trajectory, "component_batch", None)
    if batch is None:
        batch = trajectory.batch
    return (
        np.asarray(batch),
        np.asarray(trajectory.completions),
        getattr(trajectory, "evictions", None),
        getattr(trajectory, "admissions", None),
    )


def detect_cycle(
    trajectory: Any = None,
    *,
    batch: Any = None,
    completions: Any = None,
    queue: Any = None,
    include_queue: bool = True,
    tol: float | None = None,
    max_period: int | None = None,
    repeats: int = 2,
) -> Cycle | None:
    r"""Find the periodic regime at the end of a saturated trajectory.

    The trajectory (a simulated ``Trajectory`` or a :class:`RelaxedTrajectory`; or the arrays
    ``batch`` (N, ...) and ``completions`` (N, ...) given directly) is periodic from
    ``start`` with minimal period :math:`P` if its state (batch, and the waiting evicted
    requests when ``include_queue``) satisfies :math:`X_{n+P} = X_n` for every
    :math:`n \ge` ``start``; the last ``repeats`` periods must be observed. Integer and
    rational states are compared exactly; float states within ``tol`` (default
    :math:`10^{-9}` times the largest count). Returns None when no period
    :math:`\le` ``max_period`` (default :math:`N/\mathrm{repeats}`) fits.

    The throughput of the cycle is its completions over one period divided by :math:`P`
    (exact for integer and rational runs). Source: [ADLS26] (limit cycles, the model chapter, A.3-A.4).
    """
    if trajectory is not None:
        b, comp, ev, adm = _arrays(trajectory)
        q = getattr(trajectory, "queue", None) if include_queue else None
    else:
        if batch is None or completions is None:
            raise ParameterError("detect_cycle needs a trajectory or both batch= and completions=")
        b, comp, ev, adm = np.asarray(batch), np.asarray(completions), None, None
        q = queue if include_queue else None
    N = b.shape[0]
    if comp.shape[0] != N:
        raise ParameterError(f"batch has {N} rows but completions has {comp.shape[0]}")
    rows = b.reshape(N, -1)
    if q is not None:
        rows = np.concatenate([rows, np.asarray(q).reshape(N, -1)], axis=1)
    if repeats < 1:
        raise ParameterError(f"repeats must be >= 1, got {repeats}")
    max_period = N // (repeats + 1) if max_period is None else int(max_period)
    exact = rows.dtype == object or np.issubdtype(rows.dtype, np.integer)
    if exact:
        keys = [tuple(r) for r in rows] if rows.dtype == object else [r.tobytes() for r in rows]
        last = keys[-1]
        candidates = [N - 1 - i for i in range(N - 2, -1, -1) if keys[i] == last]

        def same(i: int, k: int) -> bool:
            return keys[i] == keys[k]
    else:
        scale = float(np.max(np.abs(rows))) if rows.size else 1.0
        eps = 1e-9 * max(scale, 1.0) if tol is None else float(tol)
        diffs = np.max(np.abs(rows - rows[-1]), axis=1)
        candidates = [N - 1 - i for i in range(N - 2, -1, -1) if diffs[i] <= eps]

        def same(i: int, k: int) -> bool:
            return bool(np.max(np.abs(rows[i] - rows[k])) <= eps)

    for P in candidates:
        if P > max_period or N < (repeats + 1) * P:
            break
        if not all(same(i, i - P) for i in range(N - repeats * P, N)):
            continue
        start = N - repeats * P - P
        while start > 0 and same(start - 1, start - 1 + P):
            start -= 1

        return Cycle(
            start=int(start), period=int(P), throughput=_per_iteration(comp, N, P, exact),
            evictions=_per_iteration(ev, N, P, exact), admissions=_per_iteration(adm, N, P, exact),
            states=b[N - P : N].copy(),
        )
    return None


def _per_iteration(arr: Any, N: int, P: int, exact: bool) -> Any:
    """Sum of ``arr`` over the last period, per iteration (exact for integer or rational data)."""
    if arr is None:
        return None
    total = np.asarray(arr)[N - P : N].sum()
    if exact:
        return total / P if isinstance(total, sp.Basic) else sp.Rational(int(total), P)
    return float(total) / P
