r"""The runs a theorem's check needs, declared once and built by verify and the report.

A theorem declares its runs in ``Theorem.runs`` as :class:`RunSpec` objects; with the runs
left out, :func:`queueing_llm.verify` builds them (:func:`build_runs`) at their default
sizes, seeded by ``seed=``, and the report builds exactly the runs its theorems declare.
Three kinds:

``"open"``
    ``ql.simulate(model, N, seed, engine="fast")``: the open system (arrivals, queue), one
    run or independent replications (:func:`open_run`).
``"saturated"``
    ``ql.simulate(model, N, seed, saturated=True, engine="fast")``: an infinite backlog,
    integer counts, optionally under another policy (:func:`saturated_run`).
``"relaxed"``
    :func:`queueing_llm.theory.dynamics.relaxed_trajectory`: the relaxed saturated map with
    real counts, from a given initial state, rational (``exact=True``) or floating point
    (:func:`relaxed_run`), optionally of a transformed model (e.g. another prompt length).

Both :class:`~queueing_llm.sim.Trajectory` and
:class:`~queueing_llm.theory.dynamics.RelaxedTrajectory` satisfy the :class:`Run` protocol
that :func:`queueing_llm.verify` accepts.

The module sits at verify's level of the one-way flow; it imports the simulator only
when a run is built, so the catalogue can declare runs without importing ``sim``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import ModelError, describe
from .numbers import check_real
from .policies import Policy, policy_from

__all__ = [
    "Run",
    "RunSpec",
    "RUN_KINDS",
    "OPEN",
    "SATURATED",
    "RELAXED",
    "open_run",
    "saturated_run",
    "relaxed_run",
    "build_runs",
    "is_run",
    "run_kind",
    "spawn_seeds",
    "OPEN_ITERATIONS",
    "SATURATED_ITERATIONS",
    "RELAXED_ITERATIONS",
]

OPEN = "open"
SATURATED = "saturated"
RELAXED = "relaxed"
RUN_KINDS = (OPEN, SATURATED, RELAXED)

OPEN_ITERATIONS = 20_000
"""Default length of an open-system run."""
SATURATED_ITERATIONS = 5000
"""Default length of a saturated run (the integer system settles on its cycle long before)."""
RELAXED_ITERATIONS = 1500
"""Default length of a relaxed run."""


@runtime_checkable
class Run(Protocol):
    """What :func:`queueing_llm.verify` accepts as a run: a simulated ``Trajectory`` or a
    ``RelaxedTrajectory`` (per-iteration arrays of shape ``(N, K, ...)``)."""

    kind: str
    model: Any
    seed: Any
    saturated: bool
    batch: np.ndarray
    completions: np.ndarray
    evictions: np.ndarray

    @property
    def iterations(self) -> int: ...  # pragma: no cover - protocol


_RUN_ATTRIBUTES = ("kind", "model", "seed", "saturated", "batch", "completions", "evictions", "iterations")


def is_run(obj: Any) -> bool:
    """True if ``obj`` has the attributes of the :class:`Run` protocol."""
    return all(hasattr(obj, a) for a in _RUN_ATTRIBUTES)


def run_kind(run: Any) -> str:
    """``"open"``, ``"saturated"`` or ``"relaxed"`` for a run."""
    kind = getattr(run, "kind", None)
    if kind in RUN_KINDS:
        return kind
    return SATURATED if getattr(run, "saturated", False) else OPEN


def spawn_seeds(seed: int | None, count: int) -> list[int | None]:
    """``count`` independent integer seeds spawned from ``seed`` by
    :meth:`numpy.random.SeedSequence.spawn` (``seed=None``: fresh entropy)."""
    check_real("count", count, low=1, integer=True)
    children = np.random.SeedSequence(seed).spawn(int(count))
    return [int(c.generate_state(1, dtype=np.uint64)[0]) for c in children]


PolicyLike = Policy | str | Callable[[Any], Any] | None


@dataclass(frozen=True)
class RunSpec:
    """One run (or set of replications) a theorem's check needs.

    Parameters
    ----------
    kind : {"open", "saturated", "relaxed"}
    label : str
        Names the run in verdicts and reports (``"saturated, rate_limited(x*)"``); two specs
        with the same label and size build the same run, so the report builds it once.
    build : callable ``(model, seed, iterations) -> run or list of runs``
        Builds the run from the model as given to verify (the spec's policy and transform
        are applied by :meth:`model_for` before ``build`` is called).
    iterations : int
        Default length.
    policy : Policy, str, callable ``model -> Policy`` or None
        The admission policy of the run (None: the model's own).
    description : str
        One sentence for docs and report metadata.
    model_transform : callable ``model -> model`` or None
        Another model the run is built from (e.g. a prompt length changed); verify accepts
        runs of ``model_for(model)``.
    replications : int
        Independent runs (seeds spawned from the seed); 1 gives one run.
    """

    kind: str
    label: str
    build: Callable[[Any, Any, int], Any] = field(repr=False)
    iterations: int = OPEN_ITERATIONS
    policy: PolicyLike = None
    description: str = ""
    model_transform: Callable[[Any], Any] | None = field(default=None, repr=False)
    replications: int = 1

    def __post_init__(self) -> None:
        if self.kind not in RUN_KINDS:
            raise ModelError(f"RunSpec.kind must be one of {list(RUN_KINDS)}, got {describe(self.kind)}")
        if not isinstance(self.label, str) or not self.label:
            raise ModelError(f"RunSpec.label must be a non-empty string, got {describe(self.label)}")
        if not callable(self.build):
            raise ModelError(f"RunSpec.build must be callable, got {describe(self.build)}")
        check_real("iterations", self.iterations, low=1, integer=True)
        check_real("replications", self.replications, low=1, integer=True)

    def model_for(self, model: Any) -> Any:
        """The model this run is built from: ``model`` with the spec's policy and transform."""
        out = model
        if self.policy is not None:
            policy = self.policy(model) if callable(self.policy) and not isinstance(self.policy, Policy) else \
                self.policy
            out = dataclasses.replace(out, policy=policy_from(policy))
        if self.model_transform is not None:
            out = self.model_transform(out)
        return out

    def size(self, iterations: int | None = None) -> int:
        """The length to build: the spec's default, or ``iterations`` for open runs and
        ``min(iterations, default)`` for saturated and relaxed runs (they settle early)."""
        if iterations is None:
            return int(self.iterations)
        check_real("iterations", iterations, low=1, integer=True)
        return int(iterations) if self.kind == OPEN else min(int(iterations), int(self.iterations))

    def make(self, model: Any, seed: int | None = None, iterations: int | None = None) -> Any:
        """Build the run (or replications) for ``model``."""
        return self.build(self.model_for(model), seed, self.size(iterations))


def _policy_label(policy: PolicyLike) -> str:
    if policy is None:
        return ""
    if isinstance(policy, (Policy, str)):
        text = str(policy_from(policy))
        return ", " + ("rate_limited(x*)" if text in ("rate_limited", "rate_limited()",
                                                     "rate_limited(None)") else text)
    return ", " + getattr(policy, "__name__", "policy")


def open_run(
    iterations: int = OPEN_ITERATIONS,
    replications: int = 1,
    *,
    policy: PolicyLike = None,
    warmup: int = 0,
    label: str | None = None,
    model_transform: Callable[[Any], Any] | None = None,
) -> RunSpec:
    """An open-system run (``replications`` > 1: independent replications, seeds spawned
    from the seed by :func:`spawn_seeds`)."""

    def build(model: Any, seed: Any, n: int) -> Any:
        from .sim import simulate  # sim is imported when a run is built

        if replications == 1:
            return simulate(model, n, seed=seed, warmup=warmup, engine="fast")
        return [simulate(model, n, seed=s, warmup=warmup, engine="fast") for s in spawn_seeds(seed, replications)]

    reps = "" if replications == 1 else f" x{replications}"
    return RunSpec(OPEN, label or f"open{_policy_label(policy)}{reps}", build, iterations, policy,
                   f"open system, {iterations} iterations" + (f", {replications} replications" if reps else ""),
                   model_transform, replications)


def saturated_run(
    iterations: int = SATURATED_ITERATIONS,
    policy: PolicyLike = None,
    *,
    replications: int = 1,
    label: str | None = None,
    model_transform: Callable[[Any], Any] | None = None,
) -> RunSpec:
    """A saturated (infinite backlog) integer run, optionally under another ``policy``."""

    def build(model: Any, seed: Any, n: int) -> Any:
        from .sim import simulate

        if replications == 1:
            return simulate(model, n, seed=seed, saturated=True, engine="fast")
        return [simulate(model, n, seed=s, saturated=True, engine="fast") for s in spawn_seeds(seed, replications)]

    reps = "" if replications == 1 else f" x{replications}"
    return RunSpec(SATURATED, label or f"saturated{_policy_label(policy)}{reps}", build, iterations, policy,
                   f"saturated system (infinite backlog), {iterations} iterations", model_transform, replications)


def relaxed_run(
    iterations: int = RELAXED_ITERATIONS,
    initial: Any = None,
    exact: bool = False,
    policy: PolicyLike = None,
    model_transform: Callable[[Any], Any] | None = None,
    *,
    label: str | None = None,
    description: str = "",
) -> RunSpec:
    """A run of the relaxed saturated map (real counts).

    ``initial``: None (an empty batch), stage counts, or a callable ``model -> state``
    (called on the transformed model). The map follows the model's policy (greedy or
    rate limiting), or ``policy`` when given; it is deterministic, so the seed is ignored.
    """

    def build(model: Any, seed: Any, n: int) -> Any:
        from .theory import dynamics as dyn

        start = initial(model) if callable(initial) else initial
        return dyn.relaxed_trajectory(model, n, start, exact=exact)

    what = "exact" if exact else "float"
    default = f"relaxed{_policy_label(policy)}"
    return RunSpec(RELAXED, label or default, build, iterations, policy,
                   description or f"relaxed saturated map ({what}), {iterations} iterations", model_transform)


def build_runs(theorem: Any, model: Any, seed: int | None = None, iterations: int | None = None) -> list[tuple]:
    """The runs ``theorem`` declares, built for ``model``: a list of ``(RunSpec, run)``.

    ``seed`` seeds every simulated run (replications spawn theirs from it); ``iterations``
    overrides the sizes (:meth:`RunSpec.size`). A theorem declaring no runs raises
    :class:`~queueing_llm.errors.ModelError` (pass runs to verify).
    """
    specs = tuple(getattr(theorem, "runs", ()) or ())
    if not specs:
        raise ModelError(f"theorem {getattr(theorem, 'name', theorem)!r} declares no runs (Theorem.runs); "
                         "pass the runs to verify")
    return [(spec, spec.make(model, seed, iterations)) for spec in specs]
