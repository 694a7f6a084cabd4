r"""Verification: a theorem's statement against simulated trajectories.

:func:`verify` asks a registered :class:`~queueing_llm.theorems.Theorem` to check itself
against one trajectory (batch means after warm-up deletion) or a list of independent
replications, and returns a :class:`~queueing_llm.verdict.Verdict`: the theory value,
the simulation's estimate, its confidence interval at the requested level, whether the
statement holds, and a sentence saying why. :func:`verify_all` does it for every
applicable registered theorem.

Authors of checks (built-in or their own, see ``docs/user_theorems.md``) build verdicts
with :func:`estimate_mean` (a confidence interval for the long-run mean of a per-iteration
series) and :func:`judge` / :func:`judge_bounds` (the verdict and its sentence), so every
check reads the same way:

.. code-block:: python

    def check(model, runs, level=0.95):
        iv = estimate_mean(runs, lambda run: run.batch.sum(axis=(1, 2)), level)
        return judge("mean-batch", "mean_batch", theory_value, iv)

The decision rule is the confidence interval's: a statement about a long-run mean holds
if the theory value lies inside the level-:math:`c` interval of the simulation (so a true
statement is rejected with probability about :math:`1 - c`; use a higher level, e.g.
Bonferroni's :math:`1 - (1-c)/m`, when :math:`m` checks must pass together).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .checks import judge, judge_bounds, mean_interval
from .errors import ModelError, describe
from .numbers import check_real
from .stats import DEFAULT_BATCHES, DEFAULT_LEVEL, Interval
from .theorems import Theorem, theorems
from .verdict import Verdict

__all__ = ["verify", "verify_all", "Verdicts", "estimate_mean", "judge", "judge_bounds", "as_runs"]


def _trajectory_type() -> type:
    from .sim import Trajectory  # sim is below verify in the one-way flow

    return Trajectory


def as_runs(trajectory_or_runs: Any, model: Any = None) -> Any:
    """Validate one trajectory or a non-empty list of independent trajectories.

    Returns the trajectory itself, or a list of trajectories. With ``model`` given, every
    run must have been simulated from an equal model; replications must have distinct
    seeds (identical seeds are the same run, not independent replications).
    """
    Trajectory = _trajectory_type()
    if isinstance(trajectory_or_runs, Trajectory):
        runs = [trajectory_or_runs]
        single = True
    elif isinstance(trajectory_or_runs, Sequence) and not isinstance(trajectory_or_runs, (str, bytes)):
        runs = list(trajectory_or_runs)
        single = False
        if not runs:
            raise ModelError("runs must hold at least one Trajectory, got an empty list")
        for i, run in enumerate(runs):
            if not isinstance(run, Trajectory):
                raise ModelError(f"runs[{i}] must be a Trajectory (ql.simulate(...)), got {describe(run)}")
        seeds = [run.seed for run in runs if run.seed is not None]
        if len(set(map(repr, seeds))) < len(seeds):
            raise ModelError(
                "replications must be independent, but some runs share a seed; "
                "use queueing_llm.testing.simulate_replications or distinct seeds"
            )
    else:
        raise ModelError(
            "trajectory_or_runs must be a Trajectory (ql.simulate(...)) or a list of them, "
            f"got {describe(trajectory_or_runs)}"
        )
    if model is not None:
        for i, run in enumerate(runs):
            if run.model != model:
                raise ModelError(
                    f"run {i} was simulated from a different model ({describe(run.model)}) "
                    f"than the one verified ({describe(model)})"
                )
    return runs[0] if single else runs


def _theorem(theorem: Theorem | str) -> Theorem:
    if isinstance(theorem, Theorem):
        return theorem
    if isinstance(theorem, str):
        return theorems[theorem]
    raise ModelError(f"theorem must be a Theorem or a registry name, got {describe(theorem)}")


def verify(
    theorem: Theorem | str,
    model: Any,
    trajectory_or_runs: Any,
    level: float = DEFAULT_LEVEL,
    **options: Any,
) -> Verdict:
    r"""Verdict of ``theorem`` for ``model`` against simulated runs.

    Parameters
    ----------
    theorem : Theorem or str
        A theorem object or its registry name (``"stationary"``, ...).
    model : ContinuousBatching
        The model the runs were simulated from.
    trajectory_or_runs : Trajectory or list of Trajectory
        One long run (the check uses batch means after warm-up deletion) or independent
        replications (a Student interval on the per-run estimates).
    level : float in (0, 1)
        Confidence level :math:`c` of the interval (default 0.95).
    **options
        Passed to the theorem's check (and on to its ``evaluate``).

    Returns
    -------
    Verdict
        Theory value, estimate, confidence interval, ``holds`` and the reason.

    Raises
    ------
    ModelError
        Unknown name, a theorem without a check, a theorem that does not apply to the
        model (the message gives the theorem's reason), runs from another model.
    """
    thm = _theorem(theorem)
    check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    if thm.check_fn is None:
        raise ModelError(f"theorem {thm.name!r} has no numerical check; it can be evaluated but not verified")
    runs = as_runs(trajectory_or_runs, model)
    verdict = thm.check(model, runs, level=level, **options)
    if not isinstance(verdict, Verdict):
        raise ModelError(f"the check of theorem {thm.name!r} must return a Verdict, got {describe(verdict)}")
    return verdict


class Verdicts(list):
    """A list of :class:`~queueing_llm.verdict.Verdict` with ``skipped``: a dict from the
    names of the theorems not verified to the reason (no check, does not apply to the
    model, or the check refused these runs)."""

    def __init__(self, items: Iterable[Verdict] = (), skipped: dict[str, str] | None = None) -> None:
        super().__init__(items)
        self.skipped: dict[str, str] = dict(skipped or {})

    @property
    def all_hold(self) -> bool:
        """True if every verdict holds (and there is at least one)."""
        return bool(self) and all(v.holds for v in self)

    def __str__(self) -> str:
        lines = [str(v) for v in self]
        lines += [f"{name}: skipped ({why})" for name, why in self.skipped.items()]
        return "\n".join(lines)


def verify_all(
    model: Any, runs: Any, names: Sequence[str] | None = None, level: float = DEFAULT_LEVEL
) -> Verdicts:
    """Verdicts of every registered theorem with a check that applies to ``model``.

    Parameters
    ----------
    model : ContinuousBatching
    runs : Trajectory or list of Trajectory
    names : sequence of str or None
        Only these theorems (each must exist, have a check and apply: errors propagate);
        ``None`` means every registered theorem, skipping those without a check, those
        that do not apply to the model and those whose check refuses these runs (a
        :class:`~queueing_llm.errors.ModelError`, e.g. a saturated-run theorem given an
        open-system run); ``Verdicts.skipped`` records each skipped name with its reason.
    level : float in (0, 1)
    """
    runs = as_runs(runs, model)
    if names is not None:
        return Verdicts(verify(name, model, runs, level) for name in names)
    out = Verdicts()
    for name, thm in theorems.items():
        if thm.check_fn is None:
            out.skipped[name] = "no numerical check"
            continue
        reason = thm.applies(model)
        if reason is not None:
            out.skipped[name] = f"does not apply: {reason}"
            continue
        try:
            out.append(verify(thm, model, runs, level))
        except ModelError as err:  # recorded with its message, never silently dropped
            out.skipped[name] = f"check refused these runs: {err}"
    return out


# -- helpers for authors of checks ---------------------------------------------------------


def estimate_mean(
    runs: Any,
    series: Callable[[Any], np.ndarray],
    level: float = DEFAULT_LEVEL,
    batches: int = DEFAULT_BATCHES,
    warmup: int | str | None = None,
) -> Interval:
    r"""Confidence interval of the long-run mean of a per-iteration series of the runs.

    Parameters
    ----------
    runs : Trajectory or list of Trajectory
    series : callable ``trajectory -> 1-D array``
        E.g. ``lambda run: run.in_system`` or ``lambda run: run.batch.sum(axis=(1, 2))``.
    level : float in (0, 1)
    batches : int
        Batches of the batch-means method (one run).
    warmup : int, ``"mser5"`` or None
        Points deleted at the start; ``None`` (default) uses the runs' own ``warmup``
        when it is positive and MSER-5 otherwise.

    Returns
    -------
    Interval
        One run: batch means :math:`\bar Y \pm t_{b-1} S_b/\sqrt b`; replications: Student
        interval on the per-run means (see :func:`queueing_llm.stats.steady_state_ci`).
    """
    return mean_interval(as_runs(runs), series, level, batches, warmup)
