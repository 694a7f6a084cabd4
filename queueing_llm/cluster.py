r"""Request mixing across engines ([ADLS26] section 5.2): routing request types to engines.

A :class:`Cluster` is several continuous-batching engines fed from one stream of typed
requests. Routing is by request type (each type goes to one engine), so each engine sees the
types routed to it with their own arrival processes: independent Poisson streams per type
stay independent Poisson streams per engine, and the engines are simulated independently
(seeds spawned from one seed), which is exact for per-type routing.

Routings:

* explicit type lists ``[[0, 2], [1, 3]]``;
* ``"round_robin"``: type :math:`k` to engine :math:`k \bmod E`;
* :func:`coprime_routing`: an assignment of the decode-length classes such that each engine's
  decode lengths have gcd 1 when possible ([ADLS26]'s remedy: by the gcd criterion an engine
  whose decode lengths share a factor :math:`g > 1` keeps :math:`g`-periodic eviction cycles
  however long the prompts), balancing the engines' loads :math:`\sum_k \lambda_k E[C_k]`.

The effective gcd and the limiting radius of every engine are the registry entry ``mixing``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ParameterError, describe
from .model import ContinuousBatching
from .numbers import is_symbolic, to_float

__all__ = ["Cluster", "ClusterRun", "coprime_routing", "routing_groups", "ROUTINGS"]

ROUTINGS = ("round_robin", "coprime")
"""Named routings (besides explicit type lists)."""


def _decode_value(t: Any, k: int) -> int:
    from .laws import Deterministic

    if not isinstance(t.decode, Deterministic) or is_symbolic(t.l1):
        raise ParameterError(f"routing by decode length needs deterministic numeric decode lengths; types[{k}] has "
                             f"{t.decode!r}")
    return int(to_float(t.l1, "decode"))


def _load(t: Any) -> float:
    return to_float(t.arrival_rate, "arrival rate") * to_float(t.lifetime_memory, "lifetime memory") \
        if t.arrival_rate is not None else to_float(t.lifetime_memory, "lifetime memory")


def coprime_routing(types: Sequence[Any], engines: int, max_search: int = 200_000) -> list[list[int]]:
    r"""Type lists, one per engine, such that each engine's decode lengths have gcd 1 when possible.

    Among the assignments of the types to ``engines`` engines (every engine non-empty), choose
    the one with the most engines of gcd 1, then the smallest largest load
    :math:`\max_e \sum_{k \in e} \lambda_k E[C_k]` (exhaustive up to ``max_search``
    assignments, greedy beyond: types by decreasing load, each to the engine that keeps the
    most gcd-1 engines, then the least loaded).
    """
    if isinstance(engines, bool) or not isinstance(engines, int) or engines < 1:
        raise ParameterError(f"engines must be an integer >= 1, got {describe(engines)}")
    K = len(types)
    if engines > K:
        raise ParameterError(f"engines = {engines} exceeds the number of types {K}: an engine would serve nothing")
    lengths = [_decode_value(t, k) for k, t in enumerate(types)]
    loads = [_load(t) for t in types]

    def score(assign: Sequence[int]) -> tuple[int, float]:
        groups = [[k for k in range(K) if assign[k] == e] for e in range(engines)]
        coprime = sum(math.gcd(*[lengths[k] for k in g]) == 1 for g in groups)
        return (-coprime, max(sum(loads[k] for k in g) for g in groups))

    if engines ** K <= max_search:
        best = None
        for assign in itertools.product(range(engines), repeat=K):
            if len(set(assign)) < engines:
                continue
            s = score(assign)
            if best is None or s < best[0]:
                best = (s, assign)
        assert best is not None
        chosen = best[1]
    else:
        order = sorted(range(K), key=lambda k: -loads[k])
        assign_list = [-1] * K
        for i, k in enumerate(order):
            if i < engines:
                assign_list[k] = i
                continue
            options = []
            for e in range(engines):
                trial = list(assign_list)
                trial[k] = e
                members = [j for j in range(K) if trial[j] == e]
                g = math.gcd(*[lengths[j] for j in members])
                options.append((g != 1, sum(loads[j] for j in members), e))
            assign_list[k] = min(options)[2]
        chosen = tuple(assign_list)
    return [[k for k in range(K) if chosen[k] == e] for e in range(engines)]


def routing_groups(model: ContinuousBatching, engines: int, routing: Any) -> list[list[int]]:
    """The type lists of a routing (``"round_robin"``, ``"coprime"`` or explicit lists)."""
    K = model.K
    if isinstance(routing, str):
        if routing == "round_robin":
            groups = [[k for k in range(K) if k % engines == e] for e in range(engines)]
        elif routing == "coprime":
            groups = coprime_routing(model.types, engines)
        else:
            raise ParameterError(f"routing must be one of {', '.join(ROUTINGS)} or type lists, got {routing!r}")
    else:
        if isinstance(routing, (bytes, dict, set)) or not isinstance(routing, Sequence):
            raise ParameterError(f"routing must be a name or a list of type lists, got {describe(routing)}")
        groups = [list(g) for g in routing]
    if len(groups) != engines:
        raise ParameterError(f"routing gives {len(groups)} engines, expected {engines}")
    seen = sorted(k for g in groups for k in g)
    if seen != list(range(K)):
        raise ParameterError(f"routing must send every type 0..{K - 1} to exactly one engine, got {groups}")
    if any(not g for g in groups):
        raise ParameterError(f"every engine needs at least one type, got {groups}")
    return groups


@dataclass(frozen=True)
class Cluster:
    r"""Engines sharing one stream of typed requests, routed by type.

    Parameters
    ----------
    model : ContinuousBatching
        The pooled model: every request type with its arrivals, and the engine parameters
        (KV budget, batch cap, policy) every engine has.
    engines : int
        Number of engines :math:`E`.
    routing : str or list of list of int
        ``"round_robin"``, ``"coprime"`` (:func:`coprime_routing`) or explicit type lists.
    """

    model: ContinuousBatching
    engines: int = 2
    routing: Any = "coprime"

    def __post_init__(self) -> None:
        if not isinstance(self.model, ContinuousBatching):
            raise ParameterError(f"model must be a ContinuousBatching, got {describe(self.model)}")
        if isinstance(self.engines, bool) or not isinstance(self.engines, int) or self.engines < 1:
            raise ParameterError(f"engines must be an integer >= 1, got {describe(self.engines)}")
        routing_groups(self.model, self.engines, self.routing)

    @property
    def groups(self) -> list[list[int]]:
        """The type indices each engine serves."""
        return routing_groups(self.model, self.engines, self.routing)

    def engine_models(self) -> list[ContinuousBatching]:
        """One model per engine: the pooled model restricted to the engine's types (admission
        proportions renormalised among them)."""
        out = []
        for g in self.groups:
            types = [self.model.types[k] for k in g]
            mix = None
            if self.model.mix is not None:
                p = [float(self.model.proportions[k]) for k in g]
                mix = [x / sum(p) for x in p]
            out.append(dataclasses.replace(self.model, types=types, mix=mix))
        return out

    def relaxed_runs(self, iterations: int = 3000, eps: float = 1e-4) -> list:
        """One relaxed saturated run per engine from a perturbation of size ``eps`` of its fixed
        point (the runs of the ``mixing`` check)."""
        from .theory import dynamics as dyn
        from .theory.dynamics_deviation import perturbed_fixed_point

        return [dyn.relaxed_trajectory(m, iterations, perturbed_fixed_point(m, eps), exact=False)
                for m in self.engine_models()]

    def simulate(self, iterations: int, seed: int | None = 0, **options: Any) -> ClusterRun:
        """Simulate every engine (independent seeds spawned from ``seed``); ``options`` go to
        :func:`queueing_llm.simulate` (``saturated``, ``warmup``, ``engine``, ...)."""
        from .sim import simulate

        seeds = np.random.SeedSequence(seed).spawn(self.engines)
        runs = [simulate(m, iterations, seed=int(s.generate_state(1)[0]), **options)
                for m, s in zip(self.engine_models(), seeds, strict=True)]
        return ClusterRun(self, runs)


@dataclass(frozen=True)
class ClusterRun:
    """The runs of a :class:`Cluster`'s engines."""

    cluster: Cluster
    runs: list

    def summaries(self, warmup: int | None = None) -> list[dict[str, float]]:
        """Each engine's :meth:`Trajectory.summary`."""
        return [r.summary(warmup) for r in self.runs]

    def pooled(self, warmup: int | None = None) -> dict[str, float]:
        """Cluster-wide numbers: throughput, evictions and arrivals per iteration summed over the
        engines; restarts (evictions) in total and per completed request."""
        sums = self.summaries(warmup)
        out = {key: float(sum(s[key] for s in sums)) for key in
               ("throughput", "evictions_per_iteration", "arrivals_per_iteration")}
        w = self.runs[0].warmup if warmup is None else warmup
        restarts = sum(int(np.asarray(r.evictions)[w:].sum()) for r in self.runs)
        done = sum(int(np.asarray(r.completions)[w:].sum()) for r in self.runs)
        out["restarts"] = float(restarts)
        out["restarts_per_request"] = restarts / done if done else math.nan
        return out
