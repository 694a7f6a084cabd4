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

**One long run or independent replications.** A simulated spec builds one long run
(``replications=1``: its checks put batch-means intervals on long-run means) or, with
``replications=R >= 2``, ``ql.simulate(model, n, seed, replications=R)``: a
:class:`~queueing_llm.sim.Replications` of R independent runs of ``n`` iterations (seeds
spawned from the seed), on which the checks put Student intervals over the R per-run
estimates (:func:`queueing_llm.stats.replications_ci`). A theorem *prefers replications*
by declaring ``R >= 2`` with a sentence saying why (``RunSpec.replications_reason``): a
transient or absorbing event that one run sees at most once (the open system's collapse
into the congested regime), a rare event whose frequency is better estimated from
independent runs than from batches most of which see none (Nested WAIT's buffer
overflow). :meth:`RunSpec.with_replications` gives the same run with another count; it is
what ``ql.verify(..., replications=R)`` (force R) and ``replications=None`` (force one
run) use (docs/verdicts.md).

Both :class:`~queueing_llm.sim.Trajectory` and
:class:`~queueing_llm.theory.dynamics.RelaxedTrajectory` satisfy the :class:`Run` protocol
that :func:`queueing_llm.verify` accepts.

The module sits at verify's level of the one-way flow; it imports the simulator only
when a run is built, so the catalogue can declare runs without importing ``sim``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import ModelError, ParameterError, describe
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
    "replications_label",
    "choose_replications",
    "replications_option",
    "DECLARED",
    "check_replications",
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


REPLICATIONS_SUFFIX = re.compile(r", \d+ independent replications$")
"""The end of the label of a replicated run (``"open, 4 independent replications"``)."""


def replications_label(label: str, replications: int) -> str:
    """``label`` naming ``replications`` independent replications (``", R independent
    replications"`` appended, any former count replaced); 1: the label of one run."""
    base = REPLICATIONS_SUFFIX.sub("", label)
    return base if replications == 1 else f"{base}, {replications} independent replications"


def check_replications(replications: Any, name: str = "replications") -> int:
    """``replications`` as an int >= 1, or :class:`~queueing_llm.errors.ParameterError` naming it."""
    if isinstance(replications, bool) or not isinstance(replications, (int, np.integer)) or replications < 1:
        raise ParameterError(f"{name} must be an integer >= 1 (1: one long run, batch means; R >= 2: R independent "
                             f"replications, Student interval), got {describe(replications)}")
    return int(replications)


@dataclass(frozen=True)
class RunSpec:
    """One run (or set of independent replications) a theorem's check needs.

    Parameters
    ----------
    kind : {"open", "saturated", "relaxed"}
    label : str
        Names the run in verdicts and reports (``"saturated, rate_limited(x*)"``); two specs
        with the same label and size build the same run, so the report builds it once. A
        replicated run's label ends in ``", R independent replications"``.
    build : callable ``(model, seed, iterations) -> run or list of runs``
        Builds one run from the model as given to verify (the spec's policy and transform
        are applied by :meth:`model_for` before ``build`` is called).
    iterations : int
        Default length (of each replication).
    policy : Policy, str, callable ``model -> Policy`` or None
        The admission policy of the run (None: the model's own).
    description : str
        One sentence for docs and report metadata.
    model_transform : callable ``model -> model`` or None
        Another model the run is built from (e.g. a prompt length changed); verify accepts
        runs of ``model_for(model)``.
    replications : int
        1: one long run (batch means); ``R >= 2``: the theorem prefers R independent
        replications (Student interval over the R per-run estimates), built by
        ``replicate``.
    replicate : callable ``(model, seed, iterations, R) -> Replications`` or None
        Builds R independent replications (``ql.simulate(..., replications=R)``); None: the
        run cannot be replicated by verify (a relaxed map is deterministic; a custom
        ``build`` handles its own ``replications``).
    replications_reason : str
        Why independent replications serve this check better than batch means of one run
        (shown in the docs and the report's run descriptions).
    replications_rule : callable ``model -> int`` or None
        Chooses the count from the model verify is given (before the spec's policy and
        transform), e.g. replications only near critical load; :meth:`resolved` applies it.
        None: ``replications`` as declared.
    """

    kind: str
    label: str
    build: Callable[[Any, Any, int], Any] = field(repr=False)
    iterations: int = OPEN_ITERATIONS
    policy: PolicyLike = None
    description: str = ""
    model_transform: Callable[[Any], Any] | None = field(default=None, repr=False)
    replications: int = 1
    replicate: Callable[[Any, Any, int, int], Any] | None = field(default=None, repr=False)
    replications_reason: str = ""
    replications_rule: Callable[[Any], int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in RUN_KINDS:
            raise ModelError(f"RunSpec.kind must be one of {list(RUN_KINDS)}, got {describe(self.kind)}")
        if not isinstance(self.label, str) or not self.label:
            raise ModelError(f"RunSpec.label must be a non-empty string, got {describe(self.label)}")
        if not callable(self.build):
            raise ModelError(f"RunSpec.build must be callable, got {describe(self.build)}")
        if self.replicate is not None and not callable(self.replicate):
            raise ModelError(f"RunSpec.replicate must be callable or None, got {describe(self.replicate)}")
        if self.replications_rule is not None and (not callable(self.replications_rule) or self.replicate is None):
            raise ModelError("RunSpec.replications_rule must be a callable model -> int on a spec with replicate, "
                             f"got {describe(self.replications_rule)}")
        check_real("iterations", self.iterations, low=1, integer=True)
        check_real("replications", self.replications, low=1, integer=True)

    @property
    def replicable(self) -> bool:
        """True if :meth:`with_replications` can build this run as independent replications."""
        return self.replicate is not None

    def with_replications(self, replications: int) -> RunSpec:
        """The same run built as ``replications`` independent replications (1: one long run).

        The label follows (:func:`replications_label`); a spec without ``replicate`` (a
        relaxed map, a custom build) raises :class:`~queueing_llm.errors.ParameterError`.
        """
        count = check_replications(replications)
        if count == self.replications and self.replications_rule is None:
            return self
        if not self.replicable:
            raise ParameterError(f"replications={count}: the {self.label!r} run ({self.kind}) cannot be built as "
                                 "independent replications (a deterministic relaxed map or a custom build)")
        return dataclasses.replace(self, replications=count, label=replications_label(self.label, count),
                                   replications_rule=None)

    def resolved(self, model: Any) -> RunSpec:
        """The spec with its ``replications_rule`` applied to ``model`` (itself without a rule)."""
        if self.replications_rule is None:
            return self
        count = self.replications_rule(model)
        try:
            return self.with_replications(count)
        except ParameterError as err:
            raise ModelError(f"RunSpec {self.label!r}: replications_rule returned a bad count: {err}") from None

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
        r"""The length to build (of each replication): the spec's default, or with
        ``iterations`` :math:`N` given: :math:`N` for one open run,
        :math:`\max(1, \mathrm{round}(N n / 20000))` for each of the replications of an open
        run declaring :math:`n` iterations (the declared total scaled by :math:`N` over the
        default :data:`OPEN_ITERATIONS`), and :math:`\min(N, n)` for saturated and relaxed
        runs (they settle early)."""
        if iterations is None:
            return int(self.iterations)
        check_real("iterations", iterations, low=1, integer=True)
        if self.kind != OPEN:
            return min(int(iterations), int(self.iterations))
        if self.replications > 1 and self.replicable:
            return max(1, round(int(iterations) * int(self.iterations) / OPEN_ITERATIONS))
        return int(iterations)

    def make(self, model: Any, seed: int | None = None, iterations: int | None = None) -> Any:
        """Build the run for ``model``: one run, or (``replications >= 2``) a
        :class:`~queueing_llm.sim.Replications` of independent runs seeded from ``seed``."""
        if self.replications_rule is not None:
            return self.resolved(model).make(model, seed, iterations)
        target = self.model_for(model)
        if self.replications > 1 and self.replicable:
            return self.replicate(target, seed, self.size(iterations), int(self.replications))
        return self.build(target, seed, self.size(iterations))


def _policy_label(policy: PolicyLike) -> str:
    if policy is None:
        return ""
    if isinstance(policy, (Policy, str)):
        text = str(policy_from(policy))
        return ", " + ("rate_limited(x*)" if text in ("rate_limited", "rate_limited()",
                                                     "rate_limited(None)") else text)
    return ", " + getattr(policy, "__name__", "policy")


def _simulated(saturated: bool, warmup: int = 0) -> tuple[Callable, Callable]:
    """The builders of one simulated run and of its independent replications."""

    def build(model: Any, seed: Any, n: int) -> Any:
        from .sim import simulate  # sim is imported when a run is built

        return simulate(model, n, seed=seed, saturated=saturated, warmup=warmup, engine="fast")

    def replicate(model: Any, seed: Any, n: int, replications: int) -> Any:
        from .sim import simulate

        return simulate(model, n, seed=seed, saturated=saturated, warmup=warmup, engine="fast",
                        replications=replications)

    return build, replicate


def open_run(
    iterations: int = OPEN_ITERATIONS,
    replications: int = 1,
    *,
    policy: PolicyLike = None,
    warmup: int = 0,
    label: str | None = None,
    model_transform: Callable[[Any], Any] | None = None,
    replications_reason: str = "",
    replications_rule: Callable[[Any], int] | None = None,
) -> RunSpec:
    """An open-system run of ``iterations`` iterations; ``replications`` >= 2: the theorem
    prefers that many independent replications of that length, built by
    ``ql.simulate(model, iterations, seed, replications=R)`` (a
    :class:`~queueing_llm.sim.Replications`, seeds spawned from the seed), and
    ``replications_reason`` says why; ``replications_rule`` (``model -> R``) chooses the
    count from the model instead. ``warmup`` is passed to ``simulate`` (the runs'
    warm-up, which the checks delete; 0: MSER-5)."""
    count = check_replications(replications)
    build, replicate = _simulated(False, warmup)
    text = f"open system, {iterations} iterations" + (f", {count} independent replications" if count > 1 else "")
    return RunSpec(OPEN, replications_label(label or f"open{_policy_label(policy)}", count), build, iterations,
                   policy, text, model_transform, count, replicate, replications_reason, replications_rule)


def saturated_run(
    iterations: int = SATURATED_ITERATIONS,
    policy: PolicyLike = None,
    *,
    replications: int = 1,
    label: str | None = None,
    model_transform: Callable[[Any], Any] | None = None,
    replications_reason: str = "",
    replications_rule: Callable[[Any], int] | None = None,
) -> RunSpec:
    """A saturated (infinite backlog) integer run, optionally under another ``policy``;
    ``replications`` >= 2 or ``replications_rule``: independent replications, as in
    :func:`open_run`."""
    count = check_replications(replications)
    build, replicate = _simulated(True)
    text = (f"saturated system (infinite backlog), {iterations} iterations"
            + (f", {count} independent replications" if count > 1 else ""))
    return RunSpec(SATURATED, replications_label(label or f"saturated{_policy_label(policy)}", count), build,
                   iterations, policy, text, model_transform, count, replicate, replications_reason, replications_rule)


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


DECLARED = "declared"
"""``replications=`` of :func:`queueing_llm.verify`: each run as the theorem declares it."""


def replications_option(replications: Any) -> int | None:
    """The value of a ``replications=`` option: None for ``"declared"``, 1 for None or 1
    (one long run), R for an integer R >= 2; anything else raises
    :class:`~queueing_llm.errors.ParameterError` naming ``replications``."""
    if isinstance(replications, str) and replications == DECLARED:
        return None
    if replications is None:
        return 1
    try:
        return check_replications(replications)
    except ParameterError:
        raise ParameterError(
            f"replications must be 'declared' (each run as the theorem declares it), None or 1 (one long run, "
            f"batch means) or an integer R >= 2 (R independent replications, Student interval), got "
            f"{describe(replications)}") from None


def choose_replications(specs: Any, replications: Any = DECLARED, theorem: str = "", model: Any = None) -> tuple:
    """The specs with the replication count a caller chose.

    ``replications``: ``"declared"`` (default): the specs as declared (a theorem that prefers
    replications gets them; a ``replications_rule`` is applied to ``model`` when it is
    given); ``None`` or 1: every replicated run built as one long run
    (batch means); ``R >= 2``: every simulated run that can be replicated built as R
    independent replications (relaxed maps are deterministic and stay as declared; a
    theorem with no such run raises). Bad values raise
    :class:`~queueing_llm.errors.ParameterError` naming ``replications``.
    """
    specs = tuple(specs)
    count = replications_option(replications)
    if count is None:
        return specs if model is None else tuple(s.resolved(model) for s in specs)
    if count == 1:
        return tuple(s.with_replications(1) if s.replicable else s for s in specs)
    if not any(s.replicable for s in specs):
        kinds = ", ".join(sorted({s.kind for s in specs})) or "none"
        raise ParameterError(f"replications={count}: theorem {theorem!r} declares no simulated run that can be "
                             f"replicated (its runs: {kinds}; relaxed maps and integer runs of deterministic "
                             "lengths do not depend on the seed, custom builds choose their own seeds)")
    return tuple(s.with_replications(count) if s.replicable else s for s in specs)


def build_runs(theorem: Any, model: Any, seed: int | None = None, iterations: int | None = None,
               replications: Any = DECLARED, options: dict[str, Any] | None = None) -> list[tuple]:
    """The runs ``theorem`` declares, built for ``model``: a list of ``(RunSpec, run)``.

    ``seed`` seeds every simulated run (replications spawn theirs from it); ``iterations``
    overrides the sizes (:meth:`RunSpec.size`); ``replications`` overrides the theorem's
    choice between one run and independent replications (:func:`choose_replications`);
    ``options``: the evaluate options, for a theorem whose runs depend on them
    (:meth:`~queueing_llm.theorems.Theorem.runs_for`: ``mixing``'s engines and routing). A
    theorem declaring no runs raises :class:`~queueing_llm.errors.ModelError` (pass runs to
    verify).
    """
    runs_for = getattr(theorem, "runs_for", None)
    specs = tuple((runs_for(**options) if options and runs_for is not None else getattr(theorem, "runs", ())) or ())
    if not specs:
        raise ModelError(f"theorem {getattr(theorem, 'name', theorem)!r} declares no runs (Theorem.runs); "
                         "pass the runs to verify")
    specs = choose_replications(specs, replications, getattr(theorem, "name", ""), model)
    return [(spec, spec.make(model, seed, iterations)) for spec in specs]
