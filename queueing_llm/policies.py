r"""Admission policies as plain values (the model chapter, section 3).

A policy here is only a description: an immutable, printable, picklable value naming
the rule and its parameters. The simulators execute the rules (``sim/policies.py``);
the theory reads the same values. Select one by name (``policy="greedy"``) or by
value (``policy=ql.rate_limited(4)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from .errors import ParameterError, PolicyError, describe
from .numbers import check_real

__all__ = [
    "Policy",
    "Greedy",
    "RateLimited",
    "Reserve",
    "Static",
    "FcfsCap",
    "Wait",
    "NestedWait",
    "WAIT_TRIGGERS",
    "rate_limited",
    "policy_from",
    "POLICY_NAMES",
    "INTEGER_RATE",
    "PolicyParameterError",
]


INTEGER_RATE = "integer"
"""``rate_limited("integer")``: the largest eviction-free rate of the integer system."""


class Policy:
    """Base class of the admission policies; ``name`` is the registry name."""

    name: str = ""
    needs_memory_limit: bool = False

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Greedy(Policy):
    r"""vLLM-like greedy admission, the [ADLS26] baseline.

    Admit FCFS while the batch memory plus :math:`l_0 + 1` per admitted request fits in
    :math:`M` (a one-step check, no reservation for growth) and the batch is below
    :math:`B`. Growth of the admitted requests may later force evictions.
    """

    name = "greedy"


@dataclass(frozen=True)
class RateLimited(Policy):
    r"""Greedy admission with at most ``rate`` admissions per iteration ([ADLS26] section 5.1).

    Admits :math:`\min(Q_n, S_n/(l_0+1), x)` per iteration, :math:`S_n` the free memory.
    ``rate=None`` means the eviction-free fixed point :math:`x^*`; ``rate="integer"`` the
    largest rate at which the integer system never evicts (13/8 on the default model,
    below :math:`x^* = 100/61`). Both are resolved to numbers by the theory layer
    (``ql.theory.dynamics.resolve_rate``); the simulators read numeric rates only (see
    ``ql.theory.dynamics.resolve_policy``). In the integer system a fractional rate is met on average
    by a token bucket of depth :math:`x + 1`: each iteration adds :math:`x` tokens, an
    admission spends one, unused tokens carry over.
    """

    rate: Any = None
    name = "rate_limited"

    def __post_init__(self) -> None:
        if isinstance(self.rate, str):
            if self.rate != INTEGER_RATE:
                raise PolicyError(
                    f"rate_limited rate must be a positive number, None (x*) or {INTEGER_RATE!r}, got {self.rate!r}"
                )
        elif self.rate is not None:
            check_real("rate_limited rate", self.rate, low=0.0, low_open=True, error=PolicyError)

    @property
    def symbolic_rate(self) -> bool:
        """True if the rate is named (``None``: x*, ``"integer"``) rather than a number."""
        return self.rate is None or isinstance(self.rate, str)

    def __str__(self) -> str:
        if self.rate is None:
            return "rate_limited(x*)"
        return f"rate_limited({self.rate})"


@dataclass(frozen=True)
class Reserve(Policy):
    r"""Admit only if the peak future memory of all members fits.

    Each member is assumed to grow to its full decode length :math:`l_1` (known to the
    scheduler); a candidate is admitted only if
    :math:`\max_{t \ge 0} \sum_{r} w_r(t) \le M` over current members and the candidate.
    Never evicts.
    """

    name = "reserve"


@dataclass(frozen=True)
class Static(Policy):
    """Static batching: admit up to ``B`` requests (and what memory allows) only when the
    batch is empty."""

    name = "static"


@dataclass(frozen=True)
class FcfsCap(Policy):
    """The classical batch-capped queue: no memory limit, admit FCFS while the batch holds
    fewer than ``B`` requests (the model chapter, section 5, family B)."""

    name = "fcfs_cap"


WAIT_TRIGGERS = ("all", "any", "per_type")
"""Trigger rules of :class:`Wait`: admit when every type is ready, when some type is, or each
type independently."""


def _positive_int(name: str, value: Any) -> int:
    check_real(name, value, low=1.0, integer=True, error=PolicyParameterError)
    return int(value)


def _check_trigger(trigger: Any) -> None:
    if trigger not in WAIT_TRIGGERS:
        raise PolicyError(f"trigger must be one of {', '.join(WAIT_TRIGGERS)}, got {describe(trigger)}")


def _check_flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise PolicyError(f"{name} must be True or False, got {describe(value)}")


@dataclass(frozen=True)
class Wait(Policy):
    r"""WAIT, the fluid-guided policy of [ALSW25] for known output lengths.

    Type :math:`j` waits until :math:`n_j` of its requests are queued, then admits
    :math:`\min(n_j, N_j - \text{occupied}_j)` of them FCFS (:math:`N_j` its budget, the
    requests of type :math:`j` the batch may hold; default :math:`n_j l_{1,j}`, every stage
    holding :math:`n_j`). In steady state every stage holds :math:`n_j` type-:math:`j` requests
    and, when :math:`\sum_j n_j W_j \le M`, nothing is evicted.

    Parameters
    ----------
    thresholds : dict
        ``{type_index: n_j}``, positive integers, one per type of the model. Fluid values
        come from :func:`queueing_llm.fluid_wait` (the simulator never derives them).
    trigger : {"any", "all", "per_type"}
        ``"all"``: a batch admits only when every type has :math:`n_j` waiting (the authors'
        strict version); ``"any"``: when some type has (their later version; each ready type
        admits); ``"per_type"``: each type admits independently when it is ready.
    stall : bool
        True: an iteration in which no type is ready executes nothing (an idle slot, lasting
        :math:`d_0` in wall-clock runs), as in the authors' code; False: the batch keeps
        running and only admission waits.
    budgets : dict or None
        ``{type_index: N_j}`` (default :math:`n_j \max l_{1,j}`, resolved by the simulator).
    """

    thresholds: Any = None
    trigger: str = "any"
    stall: bool = True
    budgets: Any = None
    name = "wait"

    def __post_init__(self) -> None:
        if not isinstance(self.thresholds, dict) or not self.thresholds:
            raise PolicyError(
                "Wait needs thresholds={type_index: n_j} (positive integers); call ql.fluid_wait(model) "
                f"for the fluid thresholds, got thresholds={describe(self.thresholds)}"
            )
        clean = {}
        for key, value in self.thresholds.items():
            check_real("Wait thresholds key (a type index)", key, low=0.0, integer=True, error=PolicyError)
            k = int(key)
            clean[k] = _positive_int(f"Wait thresholds[{k}]", value)
        object.__setattr__(self, "thresholds", dict(sorted(clean.items())))
        _check_trigger(self.trigger)
        _check_flag("stall", self.stall)
        if self.budgets is not None:
            if not isinstance(self.budgets, dict):
                raise PolicyError(
                    f"Wait budgets must be a dict {{type_index: N_j}} or None, got {describe(self.budgets)}"
                )
            budgets = {}
            for key, value in self.budgets.items():
                if key not in self.thresholds:
                    raise PolicyError(f"Wait budgets has key {describe(key)} without a threshold")
                budgets[key] = _positive_int(f"Wait budgets[{key}]", value)
            object.__setattr__(self, "budgets", dict(sorted(budgets.items())))

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.thresholds.items()), self.trigger, self.stall,
                     None if self.budgets is None else tuple(self.budgets.items())))

    def __str__(self) -> str:
        n = ", ".join(f"{k}: {v}" for k, v in self.thresholds.items())
        return f"wait({{{n}}}, trigger={self.trigger}{'' if self.stall else ', no stall'})"


class PolicyParameterError(PolicyError, ParameterError):
    """A policy parameter out of range: both a :class:`~queueing_llm.errors.PolicyError` and a
    :class:`~queueing_llm.errors.ParameterError` (e.g. ``NestedWait(boundaries=[2.5, 199])``:
    a boundary is a stage index, never floored)."""


def _int_list(name: str, values: Any, length: int | None = None, minimum: int = 1) -> tuple[int, ...]:
    if isinstance(values, (str, bytes, dict, set)) or not hasattr(values, "__iter__"):
        raise PolicyParameterError(f"{name} must be a list of integers, got {describe(values)}")
    out = []
    for i, v in enumerate(values):
        check_real(f"{name}[{i}]", v, low=float(minimum), integer=True, error=PolicyParameterError)
        out.append(int(v))
    if length is not None and len(out) != length:
        raise PolicyParameterError(f"{name} must have {length} entries (one per segment), got {len(out)}")
    return tuple(out)


@dataclass(frozen=True)
class NestedWait(Policy):
    r"""Nested WAIT, the [ALSW25] policy for unknown output lengths.

    Decode stages are cut into segments at the boundaries :math:`L_1 < \dots < L_S`:
    segment :math:`s` holds stages :math:`[L_{s-1}, L_s)` (:math:`L_0 = 0`). Segment
    :math:`s` runs only when its entry stage holds :math:`\min(n_s, N_s - \text{occupied}_s)`
    requests: it then takes that many from its entry (new requests for :math:`s = 1`,
    survivors of segment :math:`s - 1` otherwise, which wait keeping their KV cache) and up
    to :math:`n_s` from each other stage of the segment. Survivors waiting at boundary
    :math:`k` are protected by a buffer of ``buffer[k]`` requests of reserved memory.

    Parameters
    ----------
    boundaries : list of int
        :math:`L_1 < \dots < L_S`, the last at least the longest decode length.
    thresholds : list of int
        :math:`n_s` per segment.
    budgets : list of int or None
        :math:`N_s` per segment (default :math:`n_s (L_s - L_{s-1})`).
    buffer : list of int or None
        Requests reserved at each segment's entry (default zeros), [ALSW25]'s safety buffer.
    stall : bool
        True (the authors' code, the references chapter, section 2): segment :math:`s` not ready stops
        segments :math:`s..S` for this iteration; False: only admission to the segment waits.
        :func:`queueing_llm.fluid_nested_wait` passes False by default: with thresholds rounded
        up from fluid values below 1 a stalled segment moves only when fed (see
        :mod:`queueing_llm.scheduling`).
    """

    boundaries: Any = None
    thresholds: Any = None
    budgets: Any = None
    buffer: Any = None
    stall: bool = True
    name = "nested_wait"

    def __post_init__(self) -> None:
        if self.boundaries is None or self.thresholds is None:
            raise PolicyError(
                "NestedWait needs boundaries=[L_1, ...] and thresholds=[n_1, ...]; call "
                "ql.fluid_nested_wait(model) for the fluid defaults"
            )
        bounds = _int_list("NestedWait boundaries", self.boundaries)
        if not bounds or any(b <= a for a, b in pairwise(bounds)):
            raise PolicyParameterError(
                f"NestedWait boundaries must be strictly increasing positive integers, got {list(bounds)}")
        S = len(bounds)
        object.__setattr__(self, "boundaries", bounds)
        object.__setattr__(self, "thresholds", _int_list("NestedWait thresholds", self.thresholds, S))
        if self.budgets is None:
            lows = (0, *bounds[:-1])
            budgets = tuple(n * (b - a) for n, a, b in zip(self.thresholds, lows, bounds, strict=True))
        else:
            budgets = _int_list("NestedWait budgets", self.budgets, S)
        object.__setattr__(self, "budgets", budgets)
        buffer = (0,) * S if self.buffer is None else _int_list("NestedWait buffer", self.buffer, S, minimum=0)
        object.__setattr__(self, "buffer", buffer)
        _check_flag("stall", self.stall)

    @property
    def segments(self) -> tuple[tuple[int, int], ...]:
        """The segments as ``(first stage, last stage + 1)``."""
        lows = (0, *self.boundaries[:-1])
        return tuple(zip(lows, self.boundaries, strict=True))

    def __str__(self) -> str:
        return f"nested_wait(L={list(self.boundaries)}, n={list(self.thresholds)})"


POLICY_NAMES: dict[str, type[Policy]] = {
    "greedy": Greedy,
    "rate_limited": RateLimited,
    "reserve": Reserve,
    "static": Static,
    "fcfs_cap": FcfsCap,
    "wait": Wait,
    "nested_wait": NestedWait,
}

_NEEDS_NUMBERS = {
    "wait": "pass ql.Wait(thresholds={type_index: n_j}) or call ql.fluid_wait(model) for the fluid thresholds",
    "nested_wait": "pass ql.NestedWait(boundaries=[...], thresholds=[...]) or call ql.fluid_nested_wait(model)",
}


def rate_limited(rate: Any = None) -> RateLimited:
    """The rate-limited policy admitting at most ``rate`` requests per iteration
    (``None``: the fixed point :math:`x^*`; ``"integer"``: the largest eviction-free rate
    of the integer system, ``integer-rate-limit``'s ``max_rate``)."""
    return RateLimited(rate)


def policy_from(value: Any) -> Policy:
    """A policy value from a name (``"greedy"``, ``"rate_limited"``, ``"rate_limited(3.5)"``)
    or a :class:`Policy`."""
    if isinstance(value, Policy):
        if not value.name:
            raise PolicyError(
                f"policy {describe(value)} is the bare Policy base class (no admission rule); use one of "
                f"{', '.join(sorted(POLICY_NAMES))} (or rate_limited(x))"
            )
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("rate_limited(") and text.endswith(")"):
            arg = text[len("rate_limited(") : -1].strip()
            if arg in ("", "x*", "None"):
                return RateLimited()
            if arg.strip("'\"") == INTEGER_RATE:
                return RateLimited(INTEGER_RATE)
            try:
                return RateLimited(float(arg))
            except ValueError:
                raise PolicyError(
                    f"policy {text!r}: the rate must be a positive number, got {arg!r}"
                ) from None
        if text in _NEEDS_NUMBERS:
            raise PolicyError(
                f"policy {text!r} carries thresholds, so a bare name is not enough: {_NEEDS_NUMBERS[text]}"
            )
        if text in POLICY_NAMES:
            return POLICY_NAMES[text]()
    raise PolicyError(
        f"policy must be one of {', '.join(sorted(POLICY_NAMES))} (or rate_limited(x)), "
        f"got {describe(value)}"
    )
