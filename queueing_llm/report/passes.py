r"""The runs of a report: exactly the runs each theorem declares.

A report simulates the model as an open system (arrivals, queue): the *open run*. Every
theorem declares the runs its check needs (``Theorem.runs``, :mod:`queueing_llm.runs`):
an open-system run, a saturated run (infinite backlog, optionally under another policy,
e.g. ``rate_limited(x*)``), or a run of the relaxed map (real counts, from a stated initial
state, optionally of a transformed model). The report builds exactly those runs, each
once per label (the declared open run at the report's size is the open run itself), and
verifies each theorem against its own runs with :func:`queueing_llm.verify`; nothing is
tried and caught. A theorem declaring no runs (a user's theorem written before
``Theorem.runs``) is verified against the open run.

Run sizes: open runs have the report's ``iterations``; saturated and relaxed runs
:math:`\min(N, \text{their default})` (5000 and 1500 iterations: they settle early). A
theorem that prefers independent replications (``RunSpec.replications``: ``open-system``,
``safety-buffer``) gets them, built by ``ql.simulate(..., replications=R)``, each of
:math:`N n / 20000` iterations (:meth:`~queueing_llm.runs.RunSpec.size`); its verdict's run
column ends in "R independent replications" and its interval is a Student interval over
the replications.
A declared run that cannot be built for the model (e.g. a relaxed map of a decode law
without finite support) is recorded with the reason, and the theorems needing it are
listed as not verified with that reason; so is a check that refuses the runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ModelError
from ..model import ContinuousBatching
from ..runs import OPEN, RELAXED, SATURATED, RunSpec, open_run
from ..theorems import Theorem, theorems
from ..verdict import Verdict
from ..verify import Verdicts, verify

__all__ = ["RUN_KINDS", "OPEN", "SATURATED", "RELAXED", "OPEN_RUN", "BACKEND_NAMES", "ReportRuns", "RunKinds",
           "backends_of", "describe_backends", "verify_declared", "verify_kinds"]

RUN_KINDS = (OPEN, SATURATED, RELAXED)
"""The kinds of run a theorem may declare."""

OPEN_RUN = open_run()
"""The report's open run, for theorems that declare none."""

BACKEND_NAMES = {"numba": "compiled kernel", "python": "Python loop", "simpy": "SimPy engine"}
"""What each simulation backend (``Trajectory.backend``) is: ``engine="fast"`` runs the compiled
kernel where it applies and the Python loop otherwise; ``engine="events"`` runs SimPy."""


def backends_of(run: Any) -> list[str]:
    """The simulation backends that ran (``Trajectory.backend``), in order of first appearance:
    one for a run, possibly several for replications or a list of runs; empty for a run
    without a backend (a relaxed map)."""
    out: list[str] = []
    for one in (run if isinstance(run, Sequence) else [run]):
        backend = getattr(one, "backend", None)
        if backend is not None and backend not in out:
            out.append(str(backend))
    return out


def describe_backends(backends: Sequence[str]) -> str:
    """``"backend numba (compiled kernel)"``, or for several
    ``"backends numba, python (compiled kernel, Python loop)"``."""
    if not backends:
        return "backend unknown"
    names = ", ".join(BACKEND_NAMES.get(b, b) for b in backends)
    return f"backend{'s' if len(backends) > 1 else ''} {', '.join(backends)} ({names})"


class ReportRuns:
    """The runs of one report, built on first use, once per label.

    Parameters
    ----------
    model : ContinuousBatching
    open_run : Trajectory
        The report's open-system run (its seed seeds the other runs).
    iterations : int
        The report's iterations :math:`N`.

    Attributes
    ----------
    runs : dict
        Label -> run (or list of replications), for the runs built so far (``"open"`` always).
    info : dict
        Label -> JSON-ready description (kind, iterations, seed, policy, ...; for a simulated
        run ``engine``, the engine asked for, and ``backends``, the backends that ran:
        :func:`backends_of`), or ``{"error": why}`` when the declared run cannot be built for
        this model.
    """

    def __init__(self, model: ContinuousBatching, open_run: Any, iterations: int) -> None:
        self.model = model
        self.iterations = int(iterations)
        self.seed = open_run.seed
        self.runs: dict[str, Any] = {OPEN: open_run}
        self.info: dict[str, dict[str, Any]] = {OPEN: {
            "kind": OPEN, "iterations": int(open_run.iterations), "seed": self.seed, "policy": str(model.policy),
            "engine": "fast", "backends": backends_of(open_run), "saturated": False}}

    def _is_the_open_run(self, spec: RunSpec) -> bool:
        return (spec.kind == OPEN and spec.label == OPEN and spec.replications == 1 and spec.policy is None
                and spec.model_transform is None)

    def get(self, spec: RunSpec) -> Any:
        """The run ``spec`` declares, built now if needed; raises :class:`ModelError` (with the
        recorded reason) when it cannot be built for this model."""
        if self._is_the_open_run(spec):
            return self.runs[OPEN]
        label = spec.label
        if label in self.runs:
            return self.runs[label]
        if "error" in self.info.get(label, {}):
            raise ModelError(self.info[label]["error"])
        try:
            model = spec.model_for(self.model)
            run = spec.make(self.model, self.seed, self.iterations)
        except ModelError as err:  # recorded with its reason; the theorems needing it say so
            self.info[label] = {"kind": spec.kind, "error": f"the declared {label} run cannot be built: {err}"}
            raise ModelError(self.info[label]["error"]) from None
        self.runs[label] = run
        self.info[label] = _describe(spec, model, run, self.seed)
        return run


RunKinds = ReportRuns
"""Former name of :class:`ReportRuns`."""


def _describe(spec: RunSpec, model: ContinuousBatching, run: Any, seed: Any) -> dict[str, Any]:
    several = isinstance(run, Sequence)  # a list of runs or a Replications
    first = run[0] if several else run
    out: dict[str, Any] = {"kind": spec.kind, "iterations": int(first.iterations), "policy": str(model.policy),
                           "description": spec.description}
    if spec.kind == RELAXED:
        out["exact"] = bool(getattr(first, "exact", False))
        out["first_eviction"] = first.first_eviction
    else:
        out.update(seed=seed, engine="fast", backends=backends_of(run), saturated=spec.kind == SATURATED)
    if several:
        out["replications"] = len(run)
        if spec.replications_reason:
            out["replications_reason"] = spec.replications_reason
    return out


def _runs_of(thm: Theorem, runs: ReportRuns) -> tuple[Any, str]:
    specs = [spec.resolved(runs.model) for spec in thm.runs or (OPEN_RUN,)]  # a replications_rule applied
    built = [runs.get(spec) for spec in specs]
    label = " + ".join(spec.label for spec in specs)
    return (built[0] if len(built) == 1 else built), label


def verify_declared(
    model: ContinuousBatching, runs: ReportRuns, names: Sequence[str] | None, level: float
) -> tuple[Verdicts, dict[str, str]]:
    r"""Verdicts of the theorems (``names``, else every registered one that applies), each
    against the runs it declares.

    Returns
    -------
    (Verdicts, dict)
        The verdicts (``skipped``: name -> why not verified: no check, does not apply to
        the model, a declared run that cannot be built, or a check that refused the runs)
        and theorem name -> the label of its runs.
    """
    out = Verdicts()
    labels: dict[str, str] = {}
    chosen = list(theorems.items()) if names is None else [(name, theorems[name]) for name in names]
    for name, thm in chosen:
        if thm.check_fn is None:
            out.skipped[name] = "no numerical check"
            continue
        reason = thm.applies(model)
        if reason is not None:
            out.skipped[name] = f"does not apply: {reason}"
            continue
        try:
            built, label = _runs_of(thm, runs)
        except ModelError as err:
            out.skipped[name] = f"declared run not built: {err}"
            continue
        try:
            verdict: Verdict = verify(thm, model, built, level)
        except ModelError as err:  # recorded with its message, never silently dropped
            out.skipped[name] = f"check refused these runs: {err}"
            continue
        out.append(verdict.replace(run=label))
        labels[name] = label
    return out, labels


verify_kinds = verify_declared
"""Former name of :func:`verify_declared`."""
