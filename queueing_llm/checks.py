r"""Building blocks of theorem checks: runs, long-run mean intervals, verdict sentences.

Shared by the built-in catalogue and by users' own theorems (re-exported from
:mod:`queueing_llm.verify`), so every check reads and decides the same way. The decision
rule is the confidence interval's: a statement about a long-run mean holds if the theory
value lies inside the level-:math:`c` interval of the simulation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import ModelError, describe
from .numbers import is_infinite, is_symbolic, to_float
from .stats import DEFAULT_BATCHES, DEFAULT_LEVEL, Interval, steady_state_ci
from .verdict import Verdict

__all__ = ["runs_list", "default_warmup", "mean_interval", "numeric", "judge", "judge_bounds"]


def runs_list(trajectory: Any) -> list:
    """One trajectory or a non-empty sequence of them, as a list."""
    if isinstance(trajectory, Sequence) and not isinstance(trajectory, (str, bytes)):
        runs = list(trajectory)
        if not runs:
            raise ModelError("runs must hold at least one trajectory, got an empty list")
        return runs
    return [trajectory]


def default_warmup(runs: list) -> int | str:
    """The runs' common positive ``warmup``, else ``"mser5"`` (MSER-5 deletion)."""
    own = {int(r.warmup) for r in runs}
    return own.pop() if len(own) == 1 and 0 not in own else "mser5"


def mean_interval(
    runs: Any,
    series: Callable[[Any], np.ndarray],
    level: float = DEFAULT_LEVEL,
    batches: int = DEFAULT_BATCHES,
    warmup: int | str | None = None,
) -> Interval:
    r"""Confidence interval of the long-run mean of a per-iteration series.

    One run: batch means :math:`\bar Y \pm t_{b-1} S_b/\sqrt b` after warm-up deletion;
    several runs: Student interval on the per-run means (independent replications), see
    :func:`queueing_llm.stats.steady_state_ci`. ``warmup=None`` uses :func:`default_warmup`.
    """
    items = runs_list(runs)
    if warmup is None:
        warmup = default_warmup(items)
    data = [np.asarray(series(r), dtype=float) for r in items]
    return steady_state_ci(data if len(data) > 1 else data[0], level, batches, warmup)


def numeric(x: Any, name: str) -> float:
    """A theory value as a float (``inf`` for ``oo``); symbolic values raise :class:`ModelError`."""
    if isinstance(x, bool):
        return float(x)
    if is_symbolic(x):
        raise ModelError(f"{name} = {describe(x)} is symbolic; a check needs a numeric model")
    return math.inf if is_infinite(x) else to_float(x, name)


def judge(
    theorem: str, quantity: str, theory: Any, interval: Interval, details: dict | None = None
) -> Verdict:
    r"""Verdict for a long-run mean: the statement holds iff the theory value lies in the interval.

    An infinite theory value (an unstable model's stationary mean) never holds against a
    finite simulation estimate: a finite run cannot confirm an infinite mean; check the
    growth of the queue (overload drift) instead. A ``nan`` theory value does not hold.
    """
    value = numeric(theory, f"theory value of {theorem}/{quantity}")
    est = float(interval.estimate)
    where = (f"the {interval.level_percent} {interval.method} interval "
             f"[{interval.low:.6g}, {interval.high:.6g}] (n={interval.n}")
    where += f", warm-up {interval.warmup})" if interval.warmup else ")"
    if math.isnan(value):
        holds, reason = False, f"the theory value is undefined for this model; simulation gives {est:.6g}"
    elif math.isinf(value):
        holds = False
        reason = (
            "the theory value is infinite (no stationary regime), which a finite run cannot confirm; "
            "verify the overload drift instead"
        )
    elif value in interval:
        holds = True
        reason = f"the theory value {value:.6g} lies inside {where} around the estimate {est:.6g}"
    else:
        half = interval.half_width
        off = abs(value - est) / half if half > 0 else math.inf
        side = "above" if value > interval.high else "below"
        reason = (
            f"the theory value {value:.6g} lies outside ({side}) {where}, "
            f"{off:.3g} half-widths from the estimate {est:.6g}"
        )
        holds = False
    return Verdict(theorem, quantity, value, est, interval, holds, reason, dict(details or {}))


def judge_bounds(
    theorem: str,
    quantity: str,
    lower: Any,
    upper: Any,
    interval: Interval,
    details: dict | None = None,
) -> Verdict:
    r"""Verdict for bounds :math:`L \le \mu \le U` on a long-run mean :math:`\mu`.

    Holds iff the confidence interval meets :math:`[L, U]`, i.e. the simulation does not
    reject the bounds at the interval's level. ``Verdict.theory`` is the violated bound
    nearest to the estimate, or the midpoint of :math:`[L, U]` when none is violated;
    ``details`` holds ``lower`` and ``upper``.
    """
    lo = numeric(lower, f"lower bound of {theorem}/{quantity}")
    hi = numeric(upper, f"upper bound of {theorem}/{quantity}")
    if lo > hi:
        raise ModelError(f"{theorem}/{quantity}: lower bound {lo:.6g} exceeds upper bound {hi:.6g}")
    est = float(interval.estimate)
    info = {"lower": lo, "upper": hi, **(details or {})}
    where = f"{interval.level_percent} {interval.method} interval [{interval.low:.6g}, {interval.high:.6g}]"
    if interval.high < lo:
        return Verdict(theorem, quantity, lo, est, interval, False,
                       f"the {where} lies below the lower bound {lo:.6g}", info)
    if interval.low > hi:
        return Verdict(theorem, quantity, hi, est, interval, False,
                       f"the {where} lies above the upper bound {hi:.6g}", info)
    mid = (lo + hi) / 2 if math.isfinite(hi) else lo
    return Verdict(theorem, quantity, mid, est, interval, True,
                   f"the {where} meets the bounds [{lo:.6g}, {hi:.6g}]", info)
