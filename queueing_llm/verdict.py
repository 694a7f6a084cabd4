"""The verdict of a theorem against simulated (or relaxed) runs, and the name of the test it ran.

A verdict compares the theorem's own prediction (``Theorem.evaluate``) with an
independent measurement, and says which test decided:

``TWO_SIDED`` (``"two-sided CI"``)
    the theory value lies inside the confidence interval of a long-run mean;
``EXACT`` (``"exact"``)
    equality of exact numbers (integer runs, rational relaxed maps), or within a stated
    tolerance for floating-point relaxed maps;
``UPPER_BOUND`` / ``LOWER_BOUND`` (``"one-sided bound (upper)"`` / ``"(lower)"``)
    the statement is an inequality :math:`\\mu \\le U` (:math:`\\mu \\ge L`); it is rejected
    only when the whole interval lies beyond the bound, so a value far inside the bound
    still "holds": the test has power against one side only;
``BOUNDS`` (``"bounds (lower and upper)"``)
    both :math:`L \\le \\mu \\le U`;
``NOT_APPLICABLE`` (``"does not apply"``)
    the run violates a hypothesis of the theorem (evictions for memory Little's law, an
    unstable model for a stationary law): ``holds`` is None, never True nor False.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ModelError
from .stats import Interval

__all__ = ["Verdict", "TWO_SIDED", "EXACT", "UPPER_BOUND", "LOWER_BOUND", "BOUNDS", "NOT_APPLICABLE", "TESTS",
           "HOLDS", "FAILS", "DOES_NOT_APPLY"]

TWO_SIDED = "two-sided CI"
EXACT = "exact"
UPPER_BOUND = "one-sided bound (upper)"
LOWER_BOUND = "one-sided bound (lower)"
BOUNDS = "bounds (lower and upper)"
NOT_APPLICABLE = "does not apply"
TESTS = (TWO_SIDED, EXACT, UPPER_BOUND, LOWER_BOUND, BOUNDS, NOT_APPLICABLE)
"""The test names a verdict may carry."""

HOLDS = "holds"
FAILS = "FAILS"
DOES_NOT_APPLY = "does not apply"


@dataclass(frozen=True)
class Verdict:
    """Theory against simulation for one quantity.

    Attributes
    ----------
    theorem : str
        Registry name of the theorem.
    quantity : str
        The compared quantity (an ``evaluate`` key).
    theory : float
        The theoretical value, taken from ``evaluate`` (``inf`` for unstable models,
        ``nan`` if undefined or not applicable).
    estimate : float
        The measurement from the runs (``nan`` when the theorem does not apply).
    interval : Interval or None
        Confidence interval of the estimate (None for exact, deterministic checks).
    holds : bool or None
        Whether the measurement agrees with the statement; None when the runs violate a
        hypothesis of the theorem (the verdict says "does not apply").
    reason : str
        One sentence saying what was compared and why it holds, fails or does not apply.
    details : dict
        Other numbers behind the verdict.
    test : str
        The test that decided: one of :data:`TESTS` (default ``"two-sided CI"``).
    run : str
        Label of the run kind the verdict used (``"open"``, ``"saturated"``, ...).
    unit : str
        Unit of ``theory`` and ``estimate`` (``"per iteration"``, ``"tokens"``, ``"s"``, ...).
    """

    theorem: str
    quantity: str
    theory: float
    estimate: float
    interval: Interval | None
    holds: bool | None
    reason: str
    details: dict = field(default_factory=dict)
    test: str = field(default=TWO_SIDED, kw_only=True)
    run: str = field(default="", kw_only=True)
    unit: str = field(default="", kw_only=True)

    def __post_init__(self) -> None:
        if self.holds is not None and not isinstance(self.holds, bool):
            object.__setattr__(self, "holds", bool(self.holds))  # numpy bools from comparisons
        if self.holds is None:
            object.__setattr__(self, "test", NOT_APPLICABLE)
        elif self.test not in TESTS or self.test == NOT_APPLICABLE:
            raise ModelError(
                f"Verdict.test must be one of {[t for t in TESTS if t != NOT_APPLICABLE]} when holds is "
                f"True or False (holds=None means 'does not apply'), got {self.test!r}"
            )

    @classmethod
    def not_applicable(
        cls,
        theorem: str,
        quantity: str,
        reason: str,
        *,
        theory: Any = math.nan,
        run: str = "",
        details: dict | None = None,
        unit: str = "",
    ) -> Verdict:
        """A verdict for runs that violate a hypothesis: ``holds`` is None, the test
        ``"does not apply"``, the reason says which hypothesis and how."""
        value = float(theory) if not isinstance(theory, float) else theory
        return cls(theorem, quantity, value, math.nan, None, None, reason, dict(details or {}),
                   test=NOT_APPLICABLE, run=run, unit=unit)

    @property
    def status(self) -> str:
        """``"holds"``, ``"FAILS"`` or ``"does not apply"``."""
        if self.holds is None:
            return DOES_NOT_APPLY
        return HOLDS if self.holds else FAILS

    @property
    def applies(self) -> bool:
        """False when the runs violated a hypothesis (``holds`` is None)."""
        return self.holds is not None

    def __bool__(self) -> bool:
        return self.holds is True

    @property
    def replications(self) -> int | None:
        """R when the runs were R independent replications (``details["replications"]``, set
        by :func:`queueing_llm.verify`; the run label then ends in "R independent
        replications"), None for one run."""
        count = self.details.get("replications")
        return int(count) if isinstance(count, int) and not isinstance(count, bool) else None

    @property
    def ci(self) -> tuple[float, float] | None:
        """The confidence interval as ``(low, high)``."""
        return None if self.interval is None else (self.interval.low, self.interval.high)

    def replace(self, **changes: Any) -> Verdict:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        run = f", {self.run} run" if self.run else ""
        if self.holds is None:
            return f"{self.theorem}/{self.quantity}: does not apply{' (' + self.run + ' run)' if self.run else ''}. " \
                   f"{self.reason}"
        ci = "" if self.interval is None else (
            f" [{self.interval.low:.6g}, {self.interval.high:.6g}] at {self.interval.level_percent}"
        )
        return (
            f"{self.theorem}/{self.quantity}: theory {self.theory:.6g}, "
            f"simulation {self.estimate:.6g}{ci}: {self.status} ({self.test}{run}). {self.reason}"
        )
