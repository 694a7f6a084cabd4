r"""The continuous-batching model (the model chapter): request types and the batching engine.

A :class:`ContinuousBatching` value is the single object from which the theory derives
its formulas and the simulators run their trajectories. Parameters may be numbers or
SymPy symbols; every numeric parameter is validated at construction and a bad value
raises a :class:`~queueing_llm.errors.ModelError` naming the parameter, the value and
the allowed range.

Conventions (the model chapter, section 1): a type-:math:`k` request has prompt :math:`l_0` and
decode length :math:`l_1`; at stage :math:`j = 0, \dots, l_1 - 1` it holds
:math:`w_j = l_0 + 1 + j` KV tokens; its lifetime memory is
:math:`C = \sum_{j<l_1} w_j = l_1 (l_0 + (l_1 + 1)/2)` token-iterations.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from .errors import ParameterError, describe
from .laws import Deterministic, Law, Poisson, as_law
from .numbers import (
    MAX_INTEGER,
    MAX_RATE,
    check_real,
    is_infinite,
    is_real_number,
    is_symbolic,
    plain,
    plain_integer,
    to_float,
    to_sympy,
)
from .policies import FcfsCap, policy_from

__all__ = [
    "PoissonProcess",
    "LinearIterationTime",
    "RequestType",
    "ContinuousBatching",
    "default_model",
]


@dataclass(frozen=True)
class PoissonProcess:
    r"""Arrivals in continuous time: a Poisson process of ``rate`` requests per second.

    Used in wall-clock mode (the model needs an ``iteration_time``): the arrivals of an
    iteration are those falling in its wall-clock interval (the model chapter, section 4).
    """

    rate: Any

    def __post_init__(self) -> None:
        check_real("PoissonProcess rate", self.rate, low=0.0, limit=MAX_RATE)
        object.__setattr__(self, "rate", plain(self.rate))


@dataclass(frozen=True)
class LinearIterationTime:
    r"""Iteration time :math:`s_n = d_0 + d_1 Z_n` seconds, :math:`Z_n` the batch's KV tokens
    ([ALSW25], the model chapter, section 4). With :math:`d_1 = 0` the slotted model is exact."""

    d0: Any
    d1: Any = 0

    def __post_init__(self) -> None:
        check_real("iteration_time d0", self.d0, low=0.0, low_open=True)
        check_real("iteration_time d1", self.d1, low=0.0)
        object.__setattr__(self, "d0", plain(self.d0))
        object.__setattr__(self, "d1", plain(self.d1))

    def seconds(self, kv_tokens: float) -> float:
        """Duration in seconds of an iteration whose batch holds ``kv_tokens`` tokens."""
        return to_float(self.d0, "d0") + to_float(self.d1, "d1") * kv_tokens


def _arrivals_from(value: Any, where: str) -> Law | PoissonProcess | None:
    if value is None or isinstance(value, PoissonProcess):
        return value
    if is_real_number(value) or isinstance(value, sp.Basic):
        check_real(f"{where} arrival rate", value, low=0.0, limit=MAX_RATE)
        return Poisson(plain(value))
    if isinstance(value, Law):
        if not value.is_symbolic and value.mean_value() > MAX_RATE:
            raise ParameterError(
                f"{where} arrivals {value!r} have mean {value.mean_value():.6g} per iteration, more than "
                f"MAX_RATE = {MAX_RATE:g} (the largest mean number of arrivals per iteration accepted)"
            )
        return value
    raise ParameterError(
        f"{where} arrivals must be a rate >= 0 (Poisson per iteration), a law, "
        f"ql.PoissonProcess(rate) or None, got {describe(value)}"
    )


@dataclass(frozen=True)
class RequestType:
    r"""One class of requests.

    Parameters
    ----------
    prompt : int or Law
        Prompt length :math:`l_0` in tokens (a law on :math:`\{0, 1, \dots\}`).
    decode : int or Law
        Decode length :math:`l_1` in iterations (a law on :math:`\{1, 2, \dots\}`).
    arrivals : float, Law, PoissonProcess or None
        Arrivals of this type per iteration (a number means Poisson with that mean),
        ``ql.PoissonProcess(rate)`` for a Poisson process in seconds (wall-clock mode),
        or ``None`` for saturated-only models.
    """

    prompt: Any
    decode: Any
    arrivals: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", as_law(self.prompt, "prompt", minimum=0))
        object.__setattr__(self, "decode", as_law(self.decode, "decode", minimum=1))
        object.__setattr__(self, "arrivals", _arrivals_from(self.arrivals, "RequestType"))

    def __repr__(self) -> str:
        def short(law: Law) -> str:
            return repr(law.value) if isinstance(law, Deterministic) else repr(law)

        parts = [f"prompt={short(self.prompt)}", f"decode={short(self.decode)}"]
        if self.arrivals is not None:
            parts.append(f"arrivals={self.arrivals!r}")
        return f"RequestType({', '.join(parts)})"

    # -- primitives used by theory and simulation ---------------------------------
    @property
    def l0(self) -> sp.Expr:
        """Mean prompt length :math:`E[l_0]` (the prompt length when deterministic)."""
        return self.prompt.mean

    @property
    def l1(self) -> sp.Expr:
        """Mean decode length :math:`E[l_1]` (the decode length when deterministic)."""
        return self.decode.mean

    @property
    def is_deterministic(self) -> bool:
        """True when both prompt and decode lengths are constants."""
        return isinstance(self.prompt, Deterministic) and isinstance(self.decode, Deterministic)

    @property
    def is_wall_clock(self) -> bool:
        """True if arrivals are a :class:`PoissonProcess` in seconds (wall-clock mode)."""
        return isinstance(self.arrivals, PoissonProcess)

    @property
    def arrival_rate(self) -> sp.Expr | None:
        """Mean arrivals per iteration (per second for a PoissonProcess); None if saturated-only."""
        if self.arrivals is None:
            return None
        if isinstance(self.arrivals, PoissonProcess):
            return to_sympy(self.arrivals.rate)
        return self.arrivals.mean

    def stage_memory(self, j: Any) -> sp.Expr:
        r"""KV tokens held at stage :math:`j`: :math:`w_j = l_0 + 1 + j` (the model chapter, section 1)."""
        return self.l0 + 1 + to_sympy(j)

    @property
    def lifetime_memory(self) -> sp.Expr:
        r"""Mean lifetime memory :math:`E[C] = E[\sum_{j<l_1} w_j]
        = E[l_0] E[l_1] + (E[l_1^2] + E[l_1])/2` token-iterations (prompt and decode
        independent), :math:`l_1 (l_0 + (l_1+1)/2)` when deterministic."""
        j, n = sp.symbols("j n", integer=True, nonnegative=True)
        if self.is_deterministic:
            return sp.factor(sp.summation(self.stage_memory(j), (j, 0, self.l1 - 1)))
        return sp.simplify(self.l0 * self.l1 + (self.decode.second_moment + self.l1) / 2)

    @property
    def max_tokens(self) -> float:
        """Largest KV footprint of one request, :math:`\\max(l_0) + \\max(l_1)` (inf if unbounded)."""
        return self.prompt.support_max + self.decode.support_max


def _mix_sequence(mix: Any, K: int) -> tuple:
    """The proportions of ``mix`` in type order: a sequence (list, tuple, 1-D array) or a
    dict keyed by the type indices ``0..K-1``. Sets (no order) and scalars are refused."""
    if isinstance(mix, Mapping):
        keys = list(mix)
        integral = all(isinstance(k, numbers.Integral) and is_real_number(k) for k in keys)
        if not integral or sorted(int(k) for k in keys) != list(range(K)):
            raise ParameterError(
                f"mix as a dict must be keyed by the type indices 0..{K - 1} (one proportion per type), "
                f"got keys {describe(list(mix))}; or give a list of {K} proportions"
            )
        return tuple(plain(mix[k]) for k in sorted(keys, key=int))
    if isinstance(mix, np.ndarray) and mix.ndim != 1:
        raise ParameterError(f"mix must be a 1-D sequence of {K} proportions, got an array of shape {mix.shape}")
    if isinstance(mix, (str, bytes, Set)) or not isinstance(mix, (Sequence, np.ndarray)):
        what = "a set (no order: which proportion is which type?)" if isinstance(mix, Set) else describe(mix)
        raise ParameterError(f"mix must be a list of {K} proportions in type order, got {what}")
    return tuple(plain(p) for p in mix)


def _as_types(types: Any) -> tuple[RequestType, ...]:
    if isinstance(types, RequestType):
        return (types,)
    if isinstance(types, Sequence) and not isinstance(types, str):
        out = tuple(types)
        if not out:
            raise ParameterError("types must hold at least one RequestType, got none")
        for i, t in enumerate(out):
            if not isinstance(t, RequestType):
                raise ParameterError(f"types[{i}] must be a RequestType, got {describe(t)}")
        return out
    raise ParameterError(f"types must be a RequestType or a list of them, got {describe(types)}")


@dataclass(frozen=True)
class ContinuousBatching:
    r"""A continuous-batching engine serving one or more request types (the model chapter).

    Parameters
    ----------
    types : RequestType or sequence of RequestType
    kv_capacity : int, sympy.Expr or inf
        KV budget :math:`M` in tokens; must exceed :math:`\max_k (l_0 + l_1)`.
    batch_cap : int or inf
        Batch cap :math:`B >= 1` (max requests in the batch, vLLM's ``max_num_seqs``).
    policy : str or Policy
        ``"greedy"``, ``"rate_limited"`` (or ``ql.rate_limited(x)``), ``"reserve"``,
        ``"static"``, ``"fcfs_cap"``.
    waiting_cap : int or inf
        Waiting-room cap :math:`K`: arrivals that find :math:`K` waiting are rejected.
    iteration_time : LinearIterationTime or None
        Seconds per iteration :math:`d_0 + d_1 Z_n`; required by PoissonProcess arrivals.
    mix : sequence of float or None
        Admission proportions :math:`p_k`; defaults to the arrival rates' proportions
        (equal proportions for saturated-only models).
    admit_after_eviction : bool
        True (the default, as in [ADLS26]): an iteration that evicted still admits into
        the memory left; False skips admission in such an iteration.
    """

    types: Any
    kv_capacity: Any = math.inf
    batch_cap: Any = math.inf
    policy: Any = "greedy"
    waiting_cap: Any = math.inf
    iteration_time: LinearIterationTime | None = None
    mix: Any = None
    admit_after_eviction: bool = True
    _mix: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        types = _as_types(self.types)
        object.__setattr__(self, "types", types)
        check_real("kv_capacity", self.kv_capacity, low=1, allow_inf=True, limit=MAX_INTEGER)
        check_real("batch_cap", self.batch_cap, low=1, integer=True, allow_inf=True, limit=MAX_INTEGER)
        check_real("waiting_cap", self.waiting_cap, low=0, integer=True, allow_inf=True, limit=MAX_INTEGER)
        for name in ("kv_capacity", "batch_cap", "waiting_cap"):
            object.__setattr__(self, name, plain_integer(getattr(self, name)))
        object.__setattr__(self, "policy", policy_from(self.policy))
        if self.iteration_time is not None and not isinstance(
            self.iteration_time, LinearIterationTime
        ):
            raise ParameterError(
                "iteration_time must be ql.LinearIterationTime(d0, d1) or None, "
                f"got {describe(self.iteration_time)}"
            )
        if any(t.is_wall_clock for t in types) and self.iteration_time is None:
            raise ParameterError(
                "PoissonProcess arrivals are in seconds and need iteration_time="
                "ql.LinearIterationTime(d0, d1); got iteration_time=None"
            )
        if not isinstance(self.admit_after_eviction, bool):
            raise ParameterError(
                f"admit_after_eviction must be True or False, got {describe(self.admit_after_eviction)}"
            )
        self._check_memory(types)
        self._check_policy_types(len(types))
        object.__setattr__(self, "_mix", self._proportions(types))

    def with_policy(self, policy: Any) -> ContinuousBatching:
        """A copy of the model with another admission ``policy`` (a name or a policy value)."""
        return dataclasses.replace(self, policy=policy)

    def _check_policy_types(self, K: int) -> None:
        thresholds = getattr(self.policy, "thresholds", None)
        if isinstance(thresholds, dict):
            missing = sorted(set(range(K)) - set(thresholds))
            extra = sorted(set(thresholds) - set(range(K)))
            if missing or extra:
                raise ParameterError(
                    f"policy {self.policy} needs one threshold per type index 0..{K - 1}; "
                    f"missing {missing}, unknown {extra}"
                )

    # -- validation ---------------------------------------------------------------
    def _check_memory(self, types: tuple[RequestType, ...]) -> None:
        M = self.kv_capacity
        if isinstance(self.policy, FcfsCap) and not is_infinite(M):
            raise ParameterError(
                f"policy fcfs_cap is the queue without a memory limit; kv_capacity must be inf, got {describe(M)}"
            )
        if is_infinite(M) or is_symbolic(M) or any(t.prompt.is_symbolic or t.decode.is_symbolic for t in types):
            return
        need = max(t.max_tokens for t in types)
        if math.isinf(need):
            raise ParameterError(
                f"kv_capacity = {describe(M)} is finite, so prompt and decode laws must be bounded; "
                "a type has an unbounded law (use a finite PMF or kv_capacity=inf)"
            )
        if not float(M) > need:
            raise ParameterError(
                f"kv_capacity must exceed max(l0 + l1) = {need:g} tokens (one request must fit), "
                f"got {describe(M)}"
            )

    def _proportions(self, types: tuple[RequestType, ...]) -> tuple:
        K = len(types)
        if self.mix is not None:
            mix = _mix_sequence(self.mix, K)
            object.__setattr__(self, "mix", mix)
            if len(mix) != K:
                raise ParameterError(f"mix must hold {K} proportions (one per type), got {len(mix)}")
            for k, p in enumerate(mix):
                check_real(f"mix[{k}]", p, low=0.0, high=1.0)
            total = sum(mix)
            if not is_symbolic(total) and abs(float(total) - 1) > 1e-9:
                raise ParameterError(f"mix proportions must sum to 1, got {float(total):.12g}")
            return tuple(to_sympy(p) for p in mix)
        rates = [t.arrival_rate for t in types]
        if K == 1:
            return (sp.Integer(1),)
        if any(r is None for r in rates):
            return tuple(sp.Rational(1, K) for _ in types)
        total = sp.Add(*rates)
        if not is_symbolic(total) and total == 0:
            return tuple(sp.Rational(1, K) for _ in types)
        return tuple(sp.simplify(r / total) for r in rates)

    # -- primitives ---------------------------------------------------------------
    @property
    def proportions(self) -> tuple:
        r"""Admission proportions :math:`p_k` (SymPy numbers or expressions)."""
        return self._mix

    @property
    def K(self) -> int:
        """Number of request types."""
        return len(self.types)

    @property
    def M(self) -> sp.Expr:
        """:math:`M` as a SymPy value (``oo`` if unlimited)."""
        return to_sympy(self.kv_capacity)

    @property
    def B(self) -> sp.Expr:
        """:math:`B` as a SymPy value (``oo`` if uncapped)."""
        return to_sympy(self.batch_cap)

    @property
    def is_symbolic(self) -> bool:
        """True if a capacity, cap, length or arrival parameter is a SymPy expression with symbols."""
        return (
            is_symbolic(self.kv_capacity)
            or is_symbolic(self.batch_cap)
            or any(t.prompt.is_symbolic or t.decode.is_symbolic for t in self.types)
            or any(
                isinstance(t.arrivals, Law) and t.arrivals.is_symbolic for t in self.types
            )
        )

    @property
    def is_wall_clock(self) -> bool:
        """True if iterations have a duration in seconds (an ``iteration_time`` is given)."""
        return self.iteration_time is not None

    @property
    def mean_lifetime_memory(self) -> sp.Expr:
        r""":math:`\sum_k p_k E[C_k]`, the mean lifetime memory of an admitted request."""
        return sp.simplify(sp.Add(*[p * t.lifetime_memory for p, t in zip(self.proportions, self.types, strict=True)]))

    @property
    def max_decode(self) -> float:
        """Largest decode length any type can have (inf if unbounded)."""
        return max(t.decode.support_max for t in self.types)

    def to_dict(self) -> dict:
        """A JSON-ready description of the model (for provenance files)."""
        return {
            "types": [
                {"prompt": repr(t.prompt), "decode": repr(t.decode), "arrivals": repr(t.arrivals)}
                for t in self.types
            ],
            "kv_capacity": str(self.kv_capacity),
            "batch_cap": str(self.batch_cap),
            "policy": str(self.policy),
            "waiting_cap": str(self.waiting_cap),
            "iteration_time": repr(self.iteration_time),
            "mix": [str(p) for p in self.proportions],
            "admit_after_eviction": self.admit_after_eviction,
        }


def default_model() -> ContinuousBatching:
    r"""The embedded default model of the main job.

    One type, prompt :math:`l_0 = 10`, decode :math:`l_1 = 40`, :math:`M = 2000` tokens,
    Poisson arrivals of 1.2 per iteration, greedy admission: the [ADLS26] example in which
    the arrival rate lies between the worst-cycle throughput (1.00) and the fixed point
    :math:`x^* \approx 1.64`, where greedy admission congests and rate limiting does not.
    """
    return ContinuousBatching(
        types=[RequestType(prompt=10, decode=40, arrivals=1.2)], kv_capacity=2000, policy="greedy"
    )
