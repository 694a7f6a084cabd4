r"""Admission policies as plain values (MODEL.md section 3).

A policy here is only a description: an immutable, printable, picklable value naming
the rule and its parameters. The simulators execute the rules (``sim/policies.py``);
the theory reads the same values. Select one by name (``policy="greedy"``) or by
value (``policy=ql.rate_limited(4)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import PolicyError, describe
from .numbers import check_real

__all__ = [
    "Policy",
    "Greedy",
    "RateLimited",
    "Reserve",
    "Static",
    "FcfsCap",
    "rate_limited",
    "policy_from",
    "POLICY_NAMES",
    "INTEGER_RATE",
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
    fewer than ``B`` requests (MODEL.md section 5, family B)."""

    name = "fcfs_cap"


POLICY_NAMES: dict[str, type[Policy]] = {
    "greedy": Greedy,
    "rate_limited": RateLimited,
    "reserve": Reserve,
    "static": Static,
    "fcfs_cap": FcfsCap,
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
        if text in POLICY_NAMES:
            return POLICY_NAMES[text]()
    raise PolicyError(
        f"policy must be one of {', '.join(sorted(POLICY_NAMES))} (or rate_limited(x)), "
        f"got {describe(value)}"
    )
