r"""Built-in theorem of [ADLS26] section 5.2: request mixing across engines.

``mixing`` {gcd_per_engine, limiting_radius_per_engine, stable}
    For a routing of the model's requests to engines (options ``engines``, default 2, and
    ``routing``, default ``"coprime"``; see :mod:`queueing_llm.cluster`): the gcd of each
    engine's decode lengths, the spectral radius of each engine's limiting polynomial
    (the large-prompt limit of the gcd criterion) and whether every engine is stable by the
    criterion (gcd 1 and long enough prompts: spectral radius of the engine's survival
    polynomial below 1). Routing by type gives each engine the decode lengths of its types;
    routing by request (``"round_robin_requests"``, ``"random"``) sends every type to every
    engine, so each engine's decode-length set is the full set, its gcd the pooled model's,
    and its saturated dynamics those of the pooled mix (``per_request`` says which).

Its check reads a relaxed run of each engine started near its fixed point
(:meth:`queueing_llm.cluster.Cluster.relaxed_runs`) and compares the measured rate at which
deviations grow or shrink with the engine's spectral radius (within 1 %). The runs it
declares depend on the options (:meth:`~queueing_llm.theorems.Theorem.runs_for`):
``ql.verify("mixing", m, engines=E, routing=R)`` builds one relaxed run per engine of routing
``R``, labelled with the routing; runs of engines serving other types than the routing's do
not apply.
"""

from __future__ import annotations

from typing import Any

from ..checks import predicted
from ..errors import ModelError, ParameterError, describe
from ..model import ContinuousBatching
from ..runs import RunSpec, relaxed_run
from ..theorems import Theorem, theorems
from ..theory import dynamics as dyn
from ..theory.dynamics_deviation import RATE_TOLERANCE, deviation_rate
from ..verdict import EXACT, Verdict

__all__ = ["MIXING"]


def _engines(model: ContinuousBatching, engines: int, routing: Any) -> list[ContinuousBatching]:
    from ..cluster import Cluster  # the routing rules sit above the registry

    return Cluster(model, engines, routing).engine_models()


def _faces(model: ContinuousBatching) -> list[tuple[str, ...]]:
    """An engine's types as its relaxed map and its routing see them: prompt, decode, arrival
    law (a per-request share named by its routing, engine, type and pooled law, not by the
    seed of the pooled stream), and the admission mix, in type order."""
    import re

    faces = [(repr(t.prompt), repr(t.decode), re.sub(r", seed=\d+", "", repr(t.arrivals))) for t in model.types]
    return faces + [("mix", repr(model.mix))]


def _mixing_reason(model: ContinuousBatching) -> str | None:
    from ..laws import Deterministic
    from ..numbers import is_infinite

    if model.K < 2:
        return "request mixing needs at least two request types"
    if is_infinite(model.M):
        return "kv_capacity M is infinite: no memory-constrained dynamics to mix"
    if not all(isinstance(t.decode, Deterministic) for t in model.types):
        return "routing by decode length needs deterministic decode lengths"
    return None


def _mixing_evaluate(model: ContinuousBatching, engines: int = 2, routing: Any = "coprime") -> dict:
    from ..cluster import Cluster  # the routing rules sit above the registry

    cluster = Cluster(model, engines, routing)
    parts = cluster.engine_models()
    return {
        "engines": engines,
        "routing": routing,
        "groups": cluster.groups,
        "per_request": cluster.per_request,
        "gcd_per_engine": [dyn.decode_gcd(m) for m in parts],
        "limiting_radius_per_engine": [dyn.limiting_radius(m) for m in parts],
        "spectral_radius_per_engine": [dyn.spectral_radius(m) for m in parts],
        "stable": all(bool(dyn.is_stable(m)) for m in parts),
    }


def _mixing_statement(model: ContinuousBatching, engines: int = 2, routing: Any = "coprime") -> Any:
    import sympy as sp

    values = _mixing_evaluate(model, engines, routing)
    parts = [sp.Eq(sp.Symbol(f"g_{{{e + 1}}}"), g, evaluate=False) for e, g in enumerate(values["gcd_per_engine"])]
    parts += [sp.Eq(sp.Symbol(f"\\rho_{{\\infty,{e + 1}}}"), sp.Float(float(r), 6), evaluate=False)
              for e, r in enumerate(values["limiting_radius_per_engine"])]
    return sp.And(*parts, evaluate=False)


def _mixing_check(model: ContinuousBatching, runs: Any, prediction: dict, level: float = 0.95,
                  tolerance: float = RATE_TOLERANCE) -> Verdict:
    r"""Each engine's relaxed run near its fixed point: the measured growth or contraction rate
    of the deviations equals the engine's predicted spectral radius within ``tolerance``
    (relative; the measurement's error is at most :math:`5 \cdot 10^{-4}` on the catalogue
    models, :mod:`queueing_llm.theory.dynamics_deviation`, and was up to
    :math:`3.1 \cdot 10^{-3}` on the engines of a five-type model, ``T(5, d, 0.5)`` for d in
    6, 10, 9, 15, 25 under coprime and three-engine round-robin routing: a third of the
    tolerance; a prediction 5 % off fails). ``runs``: one relaxed run per engine, in
    engine order (:meth:`queueing_llm.cluster.Cluster.relaxed_runs`)."""
    items = list(getattr(runs, "runs", runs)) if not hasattr(runs, "batch") else [runs]
    radii = [float(r) for r in predicted(prediction, "spectral_radius_per_engine", "mixing")]
    if len(items) != len(radii):
        raise ModelError(f"mixing: {len(items)} runs for {len(radii)} engines; pass one relaxed run per engine")
    groups = prediction.get("groups")
    expected = (_engines(model, int(prediction["engines"]), prediction["routing"])
                if "routing" in prediction and "engines" in prediction else None)
    measured, problems = [], []
    for e, (run, rho) in enumerate(zip(items, radii, strict=True)):
        if getattr(run, "kind", "") != "relaxed":
            return Verdict.not_applicable("mixing", "spectral_radius_per_engine",
                                          "the check measures deviations in relaxed runs of each engine")
        if expected is not None and _faces(run.model) != _faces(expected[e]):
            return Verdict.not_applicable("mixing", "spectral_radius_per_engine",
                                          f"run {e + 1} is not of engine {e + 1} of the routing "
                                          f"{prediction.get('routing')!r} (types {groups[e]}); pass "
                                          f"Cluster(model, engines, routing).relaxed_runs()")
        d = deviation_rate(run.model, run)
        measured.append(d.rate)
        if not abs(d.rate - rho) <= tolerance * rho:
            problems.append(f"engine {e + 1}: measured {d.rate:.6g} against {rho:.6g}")
    holds = not problems
    reason = (f"deviation rates {[round(x, 6) for x in measured]} against spectral radii "
              f"{[round(x, 6) for x in radii]} within relative tolerance {tolerance:g}"
              + ("" if holds else ": " + "; ".join(problems)))
    worst = max(range(len(radii)), key=lambda e: abs(measured[e] - radii[e]) / radii[e])
    return Verdict("mixing", "spectral_radius_per_engine", radii[worst], measured[worst], None, holds, reason,
                   {"measured": measured, "gcds": prediction.get("gcd_per_engine")}, test=EXACT)


def _engine(e: int, engines: int, routing: Any) -> Any:
    def transform(model: ContinuousBatching) -> ContinuousBatching:
        return _engines(model, engines, routing)[e]

    return transform


def _near_fixed_point(model: ContinuousBatching) -> Any:
    from ..theory.dynamics_deviation import perturbed_fixed_point

    return perturbed_fixed_point(model)


def _mixing_runs(engines: int = 2, routing: Any = "coprime") -> tuple[RunSpec, ...]:
    """The runs of the check for these options: a relaxed run of each engine of the routing
    from a perturbation of its fixed point, labelled with the engine and the routing (the
    routing itself is validated when a run is built, as ``evaluate`` does)."""
    if isinstance(engines, bool) or not isinstance(engines, int) or engines < 1:
        raise ParameterError(f"engines must be an integer >= 1, got {describe(engines)}")
    return tuple(relaxed_run(2000, initial=_near_fixed_point, model_transform=_engine(e, engines, routing),
                             label=f"relaxed, engine {e + 1} of {engines}, routing {routing}",
                             description=f"relaxed saturated map (float) of engine {e + 1} of {engines} under "
                                         f"routing {routing}, from a perturbation of its fixed point, 2000 iterations")
                 for e in range(engines))


MIXING = theorems.register(Theorem(
    name="mixing",
    title="Request mixing: per-engine gcd of the decode lengths and limiting radius ([ADLS26] 5.2)",
    hypotheses=(
        "Requests routed to engines by type or by request (options engines, routing); each engine saturated, "
        "greedy, finite M; by request every engine serves every type.",
        "Deterministic decode lengths; an engine whose decode lengths share a factor g > 1 is unstable "
        "(limiting roots on the g-th roots of unity); gcd 1 and long prompts make it stable.",
    ),
    statement_fn=_mixing_statement,
    evaluate_fn=_mixing_evaluate,
    check_fn=_mixing_check,
    source="[ADLS26] Ao, Dong, Luo, Simchi-Levi, arXiv:2606.15555, section 5.2 (request mixing)",
    applies_fn=_mixing_reason,
    runs=_mixing_runs(),
    runs_fn=_mixing_runs,
    comparison="relaxed run of each engine near its fixed point: the deviations' growth rate against the "
               "engine's spectral radius, within 1 %",
))
