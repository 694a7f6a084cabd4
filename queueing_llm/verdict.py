"""The verdict of a theorem against simulated runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from .stats import Interval

__all__ = ["Verdict"]


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
        The theoretical value (``inf`` for unstable models, ``nan`` if undefined).
    estimate : float
        The simulation's estimate.
    interval : Interval or None
        Confidence interval of the estimate (None for exact, deterministic checks).
    holds : bool
        Whether the simulation agrees with the statement.
    reason : str
        One sentence saying why.
    details : dict
        Other numbers behind the verdict.
    """

    theorem: str
    quantity: str
    theory: float
    estimate: float
    interval: Interval | None
    holds: bool
    reason: str
    details: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.holds

    @property
    def ci(self) -> tuple[float, float] | None:
        """The confidence interval as ``(low, high)``."""
        return None if self.interval is None else (self.interval.low, self.interval.high)

    def __str__(self) -> str:
        mark = "holds" if self.holds else "FAILS"
        ci = "" if self.interval is None else (
            f" [{self.interval.low:.6g}, {self.interval.high:.6g}] at {self.interval.level_percent}"
        )
        return (
            f"{self.theorem}/{self.quantity}: theory {self.theory:.6g}, "
            f"simulation {self.estimate:.6g}{ci}: {mark}. {self.reason}"
        )
