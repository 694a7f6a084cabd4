r"""Verification: a theorem's own prediction against an independent measurement on runs.

:func:`verify` takes the prediction from the theorem's ``evaluate`` (and nothing else),
the measurement from runs (given by the caller, or the runs the theorem declares in
``Theorem.runs``, built at their default sizes and seeded by ``seed=``), and returns the
check's :class:`~queueing_llm.verdict.Verdict`: theory value, estimate, confidence
interval, ``holds`` (True, False, or None when the runs violate a hypothesis: "does not
apply"), the test that decided (two-sided CI, exact, one-sided bound) and a sentence
saying why. :func:`verify_all` does it for every applicable registered theorem.

Authors of checks (built-in or their own, see ``docs/user_theorems.md``) build verdicts
with :func:`estimate_mean` (a confidence interval for the long-run mean of a per-iteration
series) and the judges :func:`judge`, :func:`judge_bounds`, :func:`judge_upper`,
:func:`judge_lower`, :func:`judge_exact` (the verdict, its test and its sentence), so
every check reads the same way:

.. code-block:: python

    def check(model, runs, prediction, level=0.95):
        iv = estimate_mean(runs, lambda run: run.batch.sum(axis=(1, 2)), level)
        return judge("mean-batch", "mean_batch", prediction["mean_batch"], iv)

The decision rule of a two-sided check is the confidence interval's: a statement about a
long-run mean holds if the theory value lies inside the level-:math:`c` interval of the
simulation (so a true statement is rejected with probability about :math:`1 - c`; use a
higher level, e.g. Bonferroni's :math:`1 - (1-c)/m`, when :math:`m` checks must pass
together).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .checks import judge, judge_bounds, judge_exact, judge_lower, judge_upper, mean_interval
from .errors import ModelError, NoEquilibriumError, ParameterError, describe
from .numbers import check_real
from .runs import DECLARED, build_runs, choose_replications, is_run, replications_option, run_kind
from .stats import DEFAULT_BATCHES, DEFAULT_LEVEL, Interval
from .theorems import Theorem, theorems
from .verdict import Verdict

__all__ = ["verify", "verify_all", "Verdicts", "estimate_mean", "judge", "judge_bounds", "judge_exact",
           "judge_upper", "judge_lower", "as_runs"]


def _flatten(runs: Any) -> list:
    if is_run(runs):
        return [runs]
    out = []
    for item in runs:
        nested = not is_run(item) and (isinstance(item, (list, tuple)) or _is_replications(item))
        out.extend(_flatten(item) if nested else [item])
    return out


def _allowed_models(model: Any, theorem: Theorem | None, options: dict | None = None) -> list:
    allowed = [model]
    specs = tuple(getattr(theorem, "runs", ()) or ())
    if theorem is not None and options:  # and those of the runs for these options (the check judges which apply)
        specs += theorem.runs_for(**options)
    for spec in specs:
        try:
            other = spec.model_for(model)
        except ModelError:  # a transform that does not apply to this model: no runs of it
            continue
        if all(other != m for m in allowed):
            allowed.append(other)
    return allowed


def as_runs(trajectory_or_runs: Any, model: Any = None, theorem: Theorem | None = None,
            options: dict[str, Any] | None = None) -> Any:
    """Validate one run or a non-empty list of runs (nested lists allowed: one entry per
    declared run, each a run or its replications).

    A run is anything with the attributes of the :class:`~queueing_llm.runs.Run` protocol: a
    simulated :class:`~queueing_llm.sim.Trajectory` or a
    :class:`~queueing_llm.theory.dynamics.RelaxedTrajectory`. Returns the argument
    unchanged. With ``model`` given, every run must have been built from ``model`` or from
    the model of one of ``theorem``'s declared runs (another policy, a transformed model;
    also the runs for the evaluate ``options`` when the theorem's runs depend on them,
    :meth:`~queueing_llm.theorems.Theorem.runs_for`); runs of one kind and one model must
    have distinct seeds (identical seeds are the same run, not independent replications).
    """
    if is_run(trajectory_or_runs):
        flat = [trajectory_or_runs]
    elif isinstance(trajectory_or_runs, Sequence) and not isinstance(trajectory_or_runs, (str, bytes)):
        if len(trajectory_or_runs) == 0:
            raise ModelError("runs must hold at least one run, got an empty list")
        flat = _flatten(trajectory_or_runs)
        for i, run in enumerate(flat):
            if not is_run(run):
                raise ModelError(
                    f"runs[{i}] must be a run (ql.simulate(...) or ql.theory.dynamics.relaxed_trajectory(...)), "
                    f"got {describe(run)}")
        groups: dict[tuple, list] = {}
        for run in flat:
            if run_kind(run) == "relaxed" or run.seed is None:
                continue
            key = (run_kind(run), repr(run.model))
            groups.setdefault(key, []).append(repr(run.seed))
        if any(len(set(seeds)) < len(seeds) for seeds in groups.values()):
            raise ModelError(
                "replications must be independent, but some runs share a seed; "
                "use queueing_llm.testing.simulate_replications or distinct seeds"
            )
    else:
        raise ModelError(
            "runs must be a run (ql.simulate(...), ql.theory.dynamics.relaxed_trajectory(...)) or a list of them, "
            f"got {describe(trajectory_or_runs)}"
        )
    if model is not None:
        allowed = _allowed_models(model, theorem, options)
        for i, run in enumerate(flat):
            if all(run.model != m for m in allowed):
                raise ModelError(
                    f"run {i} was built from a different model ({describe(run.model)}) "
                    f"than the one verified ({describe(model)}) or the models of the theorem's declared runs"
                )
    return trajectory_or_runs


def _theorem(theorem: Theorem | str) -> Theorem:
    if isinstance(theorem, Theorem):
        return theorem
    if isinstance(theorem, str):
        return theorems[theorem]
    raise ModelError(f"theorem must be a Theorem or a registry name, got {describe(theorem)}")


def _is_replications(runs: Any) -> bool:
    """True for a :class:`~queueing_llm.sim.Replications` (``ql.simulate(..., replications=R)``)."""
    return not is_run(runs) and hasattr(runs, "seeds") and hasattr(runs, "runs") and isinstance(runs, Sequence)


def _label(runs: Any) -> str:
    """The run label of runs given to verify: their kinds, and for a ``Replications`` its count."""
    if _is_replications(runs):
        kinds = sorted({run_kind(r) for r in runs})
        return f"{' + '.join(kinds)}, {len(runs)} independent replications"
    if not is_run(runs) and isinstance(runs, Sequence) and any(_is_replications(item) for item in runs):
        return " + ".join(_label(item) for item in runs)
    kinds = sorted({run_kind(r) for r in _flatten(runs)})
    return " + ".join(kinds)


def replication_count(runs: Any) -> int:
    """R if ``runs`` is (or holds) a ``Replications`` of R runs, else 0 (the largest count
    when several declared runs are replicated)."""
    if _is_replications(runs):
        return len(runs)
    if not is_run(runs) and isinstance(runs, Sequence):
        return max((replication_count(item) for item in runs), default=0)
    return 0


def declared_runs(thm: Theorem, model: Any, seed: int | None = None, iterations: int | None = None,
                  replications: Any = DECLARED, options: dict[str, Any] | None = None) -> tuple:
    """Build the runs ``thm`` declares for the evaluate ``options`` (:meth:`Theorem.runs_for`):
    ``(runs, label)``; one declared run is passed as built (a run or its replications),
    several as a list in the declared order. ``replications``: see :func:`verify`."""
    built = build_runs(thm, model, seed=seed, iterations=iterations, replications=replications, options=options)
    if len(built) == 1:
        spec, run = built[0]
        return run, spec.label
    return [run for _, run in built], " + ".join(spec.label for spec, _ in built)


def verify(
    theorem: Theorem | str,
    model: Any,
    runs: Any = None,
    level: float = DEFAULT_LEVEL,
    seed: int | None = None,
    replications: Any = DECLARED,
    **options: Any,
) -> Verdict:
    r"""Verdict of ``theorem`` for ``model``: its ``evaluate`` against a measurement on runs.

    Parameters
    ----------
    theorem : Theorem or str
        A theorem object or its registry name (``"stationary"``, ...).
    model : ContinuousBatching
        The model the runs were built from.
    runs : run, list of runs, or None
        One run (a simulated ``Trajectory``: batch means after warm-up deletion; or a
        ``RelaxedTrajectory``), or independent replications (a Student interval on the
        per-run estimates), or, for a theorem declaring several runs, one entry per
        declared run in order. None: the runs the theorem declares (``Theorem.runs``; for
        a theorem whose runs depend on its evaluate options, those for the options given,
        :meth:`Theorem.runs_for`: ``mixing`` with ``routing=R`` builds one relaxed run per
        engine of routing R), built at their default sizes.
    level : float in (0, 1)
        Confidence level :math:`c` of the interval (default 0.95).
    seed : int or None
        Seed of the runs built when ``runs`` is None (replications spawn theirs from it,
        so the verdict is reproducible).
    replications : ``"declared"``, None or int
        How the declared runs are built when ``runs`` is None (docs/verdicts.md, "One long
        run or independent replications"): ``"declared"`` (default) as the theorem
        declares them: one long run with batch-means intervals, or, where the theorem
        prefers them (``RunSpec.replications``, e.g. ``open-system``'s collapse and
        ``safety-buffer``'s rare overflows), ``ql.simulate(..., replications=R)``, on which
        the checks put Student intervals over the R per-run estimates
        (:func:`queueing_llm.stats.replications_ci`); ``None`` (or 1): every run as one long
        run; ``R >= 2``: every simulated run as R independent replications of its declared
        length (relaxed maps are deterministic and stay as declared). The verdict's
        ``run`` then ends in ``"R independent replications"`` and ``details["replications"]``
        is R (:attr:`Verdict.replications`). Any other value, or a value other than
        ``"declared"`` together with ``runs``, raises
        :class:`~queueing_llm.errors.ParameterError` naming ``replications``. (A theorem's
        own option named ``replications`` cannot be passed through ``verify``: the name is
        verify's.)
    **options
        Split by :meth:`Theorem.split_options`: the names ``evaluate`` takes go to
        ``evaluate`` (the prediction), the others to the check.

    Returns
    -------
    Verdict
        Theory value (from ``evaluate``), estimate, confidence interval, ``holds``
        (None: the runs violate a hypothesis), the test and the reason; ``run`` names the
        run kind used.

    Raises
    ------
    ModelError
        Unknown name, a theorem without a check, a theorem that does not apply to the
        model (the message gives the theorem's reason), runs from another model, no runs
        given and none declared.
    """
    thm = _theorem(theorem)
    _check_replications_option(replications, runs, thm)
    return _verify(thm, model, runs, level, seed, "", options, replications)


def _check_replications_option(replications: Any, runs: Any, thm: Theorem) -> None:
    """Validate ``replications=`` of :func:`verify` (ParameterError naming it)."""
    if isinstance(replications, str) and replications == DECLARED:
        return
    if runs is not None:
        raise ParameterError(f"replications={replications!r} chooses how verify builds the declared runs, but runs "
                             "were given; pass runs=None, or build the replications yourself "
                             "(ql.simulate(..., replications=R))")
    choose_replications(thm.runs, replications, thm.name)  # the value (and whether a run can be replicated)


def _verify(thm: Theorem, model: Any, runs: Any, level: float, seed: int | None, label: str,
            options: dict, replications: Any = DECLARED) -> Verdict:
    check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    if thm.check_fn is None:
        raise ModelError(f"theorem {thm.name!r} has no numerical check; it can be evaluated but not verified")
    ev, ch = thm.split_options(options)
    prediction = thm.evaluate(model, **ev)  # raises when the theorem does not apply to the model
    if runs is None:
        try:
            runs, label = declared_runs(thm, model, seed=seed, replications=replications, options=ev)
        except NoEquilibriumError as error:  # the declared runs need a fluid policy the model has not
            return Verdict.not_applicable(thm.name, str(ch.get("quantity") or "runs"),
                                          f"the declared runs cannot be built: {error}")
    as_runs(runs, model, thm, ev)
    verdict = thm.check_with(model, runs, prediction, level=level, **ch)
    if not verdict.run:
        verdict = verdict.replace(run=label or _label(runs))
    count = replication_count(runs)
    if count and "replications" not in verdict.details:
        verdict = verdict.replace(details={**verdict.details, "replications": count})
    return verdict


class Verdicts(list):
    """A list of :class:`~queueing_llm.verdict.Verdict` with ``skipped``: a dict from the
    names of the theorems not verified to the reason (no check, does not apply to the
    model, or the check refused these runs)."""

    def __init__(self, items: Iterable[Verdict] = (), skipped: dict[str, str] | None = None) -> None:
        super().__init__(items)
        self.skipped: dict[str, str] = dict(skipped or {})

    @property
    def failures(self) -> list[Verdict]:
        """The verdicts that FAIL (not those that do not apply)."""
        return [v for v in self if v.holds is False]

    @property
    def all_hold(self) -> bool:
        """True if no verdict fails and at least one holds ("does not apply" is no failure)."""
        return any(v.holds is True for v in self) and not self.failures

    def __str__(self) -> str:
        lines = [str(v) for v in self]
        lines += [f"{name}: skipped ({why})" for name, why in self.skipped.items()]
        return "\n".join(lines)


def verify_all(
    model: Any,
    runs: Any = None,
    names: Sequence[str] | None = None,
    level: float = DEFAULT_LEVEL,
    seed: int | None = None,
    replications: Any = DECLARED,
) -> Verdicts:
    """Verdicts of every registered theorem with a check that applies to ``model``.

    Parameters
    ----------
    model : ContinuousBatching
    runs : run, list of runs, or None
        The same runs for every theorem; None: each theorem's declared runs (a run
        declared by several theorems with the same label is built once).
    names : sequence of str or None
        Only these theorems (each must exist, have a check and apply: errors propagate);
        ``None`` means every registered theorem, skipping those without a check, those
        that do not apply to the model, those declaring no runs when ``runs`` is None,
        and those whose check refuses the given runs (a
        :class:`~queueing_llm.errors.ModelError`, e.g. a saturated-run theorem given an
        open-system run); ``Verdicts.skipped`` records each skipped name with its reason.
    level : float in (0, 1)
    seed : int or None
        Seed of the runs built when ``runs`` is None.
    replications : ``"declared"``, None or int
        As in :func:`verify`, for every theorem (a theorem none of whose runs can be
        replicated keeps its declared runs).
    """
    forced = replications_option(replications)
    if forced is not None and runs is not None:
        raise ParameterError(f"replications={replications!r} chooses how the declared runs are built, but runs "
                             "were given; pass runs=None")
    if runs is not None:
        as_runs(runs)
    cache: dict[tuple, Any] = {}

    def one(thm: Theorem) -> Verdict:
        if runs is not None:
            return verify(thm, model, runs, level)
        if not thm.runs:
            raise ModelError(f"theorem {thm.name!r} declares no runs (Theorem.runs); pass runs")
        specs = thm.runs
        if forced == 1 or (forced is not None and any(s.replicable for s in specs)):
            specs = choose_replications(specs, forced, thm.name)
        else:
            specs = choose_replications(specs, DECLARED, thm.name, model)
        built = []
        for spec in specs:
            key = (spec.label, spec.size(), seed)
            if key not in cache:
                cache[key] = spec.make(model, seed)
            built.append(cache[key])
        label = " + ".join(spec.label for spec in specs)
        return _verify(thm, model, built[0] if len(built) == 1 else built, level, seed, label, {})

    if names is not None:
        return Verdicts(one(_theorem(name)) for name in names)
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
            out.append(one(thm))
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
