r"""Building blocks of theorem checks: runs, long-run mean intervals, verdict sentences.

Shared by the built-in catalogue and by users' own theorems (re-exported from
:mod:`queueing_llm.verify`), so every check reads and decides the same way. A check has
the signature ``check_fn(model, runs, prediction, level=..., **check_options)``, where
``prediction`` is the dict ``theorem.evaluate(model, **evaluate_options)`` returned; it
reads every theory value from ``prediction`` (:func:`predicted`) and never recomputes one.

The judges name the test they run (``Verdict.test``):

* :func:`judge`: two-sided, the theory value lies in the level-:math:`c` confidence
  interval of the simulated long-run mean;
* :func:`judge_bounds`: :math:`L \le \mu \le U`, rejected when the interval lies beyond
  a bound;
* :func:`judge_upper` / :func:`judge_lower`: one-sided bounds :math:`\mu \le U` /
  :math:`\mu \ge L`;
* :func:`judge_exact`: exact equality (integer or rational runs), or within a stated
  tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import ModelError, describe
from .numbers import is_infinite, is_symbolic, to_float
from .stats import DEFAULT_BATCHES, DEFAULT_LEVEL, Interval, steady_state_ci
from .verdict import BOUNDS, EXACT, LOWER_BOUND, TWO_SIDED, UPPER_BOUND, Verdict

__all__ = ["runs_list", "default_warmup", "mean_interval", "numeric", "predicted", "judge", "judge_bounds",
           "judge_exact", "judge_upper", "judge_lower"]


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


def predicted(prediction: Any, key: str, theorem: str = "") -> Any:
    """The theory value ``prediction[key]`` (the dict returned by ``evaluate``), with a clear
    error naming the keys when it is missing."""
    if not isinstance(prediction, dict):
        raise ModelError(f"prediction of {theorem or 'the theorem'} must be the dict evaluate returned, "
                         f"got {describe(prediction)}")
    if key not in prediction:
        raise ModelError(f"evaluate of {theorem or 'the theorem'} returned no {key!r}; keys: {sorted(prediction)}")
    return prediction[key]


def _where(interval: Interval) -> str:
    where = (f"the {interval.level_percent} {interval.method} interval "
             f"[{interval.low:.6g}, {interval.high:.6g}] (n={interval.n}")
    return where + (f", warm-up {interval.warmup})" if interval.warmup else ")")


def judge(
    theorem: str, quantity: str, theory: Any, interval: Interval, details: dict | None = None, *, run: str = ""
) -> Verdict:
    r"""Verdict for a long-run mean: the statement holds iff the theory value lies in the interval.

    An infinite theory value (an unstable model's stationary mean) never holds against a
    finite simulation estimate: a finite run cannot confirm an infinite mean; check the
    growth of the queue (overload drift) instead. A ``nan`` theory value does not hold.
    """
    value = numeric(theory, f"theory value of {theorem}/{quantity}")
    est = float(interval.estimate)
    where = _where(interval)
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
    return Verdict(theorem, quantity, value, est, interval, holds, reason, dict(details or {}), test=TWO_SIDED,
                   run=run)


def judge_bounds(
    theorem: str,
    quantity: str,
    lower: Any,
    upper: Any,
    interval: Interval,
    details: dict | None = None,
    *,
    run: str = "",
) -> Verdict:
    r"""Verdict for bounds :math:`L \le \mu \le U` on a long-run mean :math:`\mu`.

    Holds iff the confidence interval meets :math:`[L, U]`, i.e. the simulation does not
    reject the bounds at the interval's level. ``Verdict.theory`` is the violated bound,
    or the bound nearer to the estimate when none is violated (always a value of the
    prediction); ``details`` holds ``lower`` and ``upper``.
    """
    lo = numeric(lower, f"lower bound of {theorem}/{quantity}")
    hi = numeric(upper, f"upper bound of {theorem}/{quantity}")
    if lo > hi:
        raise ModelError(f"{theorem}/{quantity}: lower bound {lo:.6g} exceeds upper bound {hi:.6g}")
    est = float(interval.estimate)
    info = {"lower": lo, "upper": hi, **(details or {})}
    where = f"{interval.level_percent} {interval.method} interval [{interval.low:.6g}, {interval.high:.6g}]"
    kw = {"test": BOUNDS, "run": run}
    if interval.high < lo:
        return Verdict(theorem, quantity, lo, est, interval, False,
                       f"the {where} lies below the lower bound {lo:.6g}", info, **kw)
    if interval.low > hi:
        return Verdict(theorem, quantity, hi, est, interval, False,
                       f"the {where} lies above the upper bound {hi:.6g}", info, **kw)
    nearest = lo if abs(est - lo) <= abs(hi - est) else hi
    side = "lower" if nearest == lo else "upper"
    return Verdict(theorem, quantity, nearest, est, interval, True,
                   f"the {where} meets the bounds [{lo:.6g}, {hi:.6g}] (theory column: the {side} bound, the "
                   "nearer one)", info, **kw)


def _one_sided(
    theorem: str, quantity: str, bound: Any, interval: Interval, details: dict | None, run: str, upper: bool
) -> Verdict:
    side = "upper" if upper else "lower"
    value = numeric(bound, f"{side} bound of {theorem}/{quantity}")
    est = float(interval.estimate)
    where = _where(interval)
    info = {side: value, **(details or {})}
    if math.isnan(value):
        holds, reason = False, f"the {side} bound is undefined for this model"
    elif upper:
        holds = not interval.low > value
        reason = (f"one-sided: the statement mean <= {value:.6g} is rejected only if {where} lies entirely above "
                  f"it; it does {'not' if holds else ''} (lower end {interval.low:.6g})").replace("does  (", "does (")
        if holds and interval.high < value:
            reason += (f" (the estimate {est:.6g} lies below the bound: this test cannot detect a bound "
                       "that is too high)")
    else:
        holds = not interval.high < value
        reason = (f"one-sided: the statement mean >= {value:.6g} is rejected only if {where} lies entirely below "
                  f"it; it does {'not' if holds else ''} (upper end {interval.high:.6g})").replace("does  (", "does (")
        if holds and interval.low > value:
            reason += (f" (the estimate {est:.6g} lies above the bound: this test cannot detect a bound "
                       "that is too low)")
    return Verdict(theorem, quantity, value, est, interval, holds, reason, info,
                   test=UPPER_BOUND if upper else LOWER_BOUND, run=run)


def judge_upper(
    theorem: str, quantity: str, bound: Any, interval: Interval, details: dict | None = None, *, run: str = ""
) -> Verdict:
    r"""One-sided verdict for :math:`\mu \le U`: fails iff the interval lies above :math:`U`.

    The test has power against one side only (a bound :math:`U` far above the mean still
    holds); the reason says "one-sided" and, when the whole interval lies below :math:`U`,
    that the bound's tightness was not tested.
    """
    return _one_sided(theorem, quantity, bound, interval, details, run, upper=True)


def judge_lower(
    theorem: str, quantity: str, bound: Any, interval: Interval, details: dict | None = None, *, run: str = ""
) -> Verdict:
    r"""One-sided verdict for :math:`\mu \ge L`: fails iff the interval lies below :math:`L`."""
    return _one_sided(theorem, quantity, bound, interval, details, run, upper=False)


def _exact_equal(a: Any, b: Any) -> bool:
    import sympy as sp

    try:
        return bool(sp.simplify(sp.nsimplify(a) - sp.nsimplify(b)) == 0) if not (
            isinstance(a, float) or isinstance(b, float)) else float(a) == float(b)
    except (TypeError, ValueError, sp.SympifyError):
        return bool(a == b)


def judge_exact(
    theorem: str,
    quantity: str,
    theory: Any,
    estimate: Any,
    details: dict | None = None,
    *,
    tol: float = 0.0,
    relative: bool = True,
    what: str = "",
    run: str = "",
) -> Verdict:
    r"""Verdict for an exact statement: the measured value equals the theory value.

    ``tol=0`` (default): exact equality (integers, :class:`fractions.Fraction` or SymPy
    rationals compare exactly). ``tol > 0``: :math:`|\hat x - x| \le tol \cdot |x|`
    (``relative=True``) or :math:`\le tol`, for floating-point relaxed runs; the reason
    states the tolerance. ``what`` names the measurement in the reason (e.g. "the cycle's
    throughput").
    """
    value = numeric(theory, f"theory value of {theorem}/{quantity}")
    est = numeric(estimate, f"estimate of {theorem}/{quantity}")
    info = dict(details or {})
    label = what or "the measured value"
    if tol == 0:
        holds = _exact_equal(theory, estimate)
        rule = "exactly"
    else:
        scale = abs(value) if relative else 1.0
        holds = bool(abs(est - value) <= tol * scale)
        rule = f"within {'relative' if relative else 'absolute'} tolerance {tol:.3g}"
        info["tolerance"] = tol
    reason = (f"{label} {est:.10g} {'equals' if holds else 'differs from'} the theory value {value:.10g} {rule}"
              + ("" if holds else f" (difference {est - value:.3g})"))
    return Verdict(theorem, quantity, value, est, None, holds, reason, info, test=EXACT, run=run)
