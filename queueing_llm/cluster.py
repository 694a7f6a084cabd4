r"""Request mixing across engines ([ADLS26] section 5.2): routing requests to engines.

A :class:`Cluster` is :math:`E` continuous-batching engines (each with the pooled model's KV
budget, batch cap and policy) fed from one stream of typed requests by a routing rule.

**Routing by type** (each type to one engine). Each engine sees the types routed to it with
their own arrival processes: independent streams per type stay independent streams per engine,
so the engines are simulated independently (seeds spawned from one seed), which is exact.

* explicit type lists ``[[0, 2], [1, 3]]``;
* ``"round_robin_types"`` (alias ``"round_robin"``, its name before per-request routing
  existed): type :math:`k` to engine :math:`k \bmod E`;
* ``"coprime"`` (:func:`coprime_routing`): an assignment of the decode-length classes such
  that each engine's decode lengths have gcd 1 when possible ([ADLS26]'s remedy: by the gcd
  criterion an engine whose decode lengths share a factor :math:`g > 1` keeps
  :math:`g`-periodic eviction cycles however long the prompts), balancing the engines' loads
  :math:`\sum_k \lambda_k E[C_k]`.

**Routing by request** (every engine sees every type). One pooled arrival stream (per type,
per iteration, with prompts and decode lengths) is drawn from one seed and split request by
request (:mod:`queueing_llm.sim.routed`):

* ``"round_robin_requests"``: the :math:`i`-th pooled request, in queue order, to engine
  :math:`i \bmod E` (engines' counts differ by at most one at all times; a Poisson stream of
  rate :math:`\lambda` gives each engine a stream of rate :math:`\lambda/E` that is more
  regular than Poisson, Erlang-:math:`E` thinning);
* ``"random"``: each request independently to engine :math:`e` with probability :math:`w_e`
  (``weights``, equal by default): independent thinning, Poisson stays Poisson
  (:math:`\lambda_k w_e`).

Each engine is simulated on exactly its part of the pooled stream (replayed from the pooled
seed, block by block, memory independent of the horizon); the rules ignore the engines'
states, so this is exact. State-dependent rules (join the shortest queue, least memory) need
the engines stepped together and are not offered. Per-request routing needs per-iteration
arrival laws (a ``PoissonProcess`` in seconds is refused: each engine keeps its own clock).
With saturated input every engine serves the pooled mix.

The effective gcd and the limiting radius of every engine are the registry entry ``mixing``;
with per-request routing every engine's decode-length set is the full set.

**Each engine's policy** (:func:`engine_policy`). Every engine runs the pooled model's policy
*value*, with its per-type data re-indexed to the engine's types: a policy field that is a
dict keyed by type index (:class:`~queueing_llm.policies.Wait`'s ``thresholds`` and
``budgets``) keeps the entries of the engine's types, the pooled type :math:`g_i` becoming the
engine's type :math:`i` (its ``groups`` order); per-request routings give every engine every
type, so the value is unchanged. Nothing else is per type: Nested WAIT's thresholds, budgets
and buffers are per segment of decode stages (the boundaries stay valid, an engine's longest
decode length being at most the pooled one), a numeric rate cap is the same number at every
engine, and ``rate_limited()`` (:math:`x^*`) is resolved from each engine's own model.

The numbers are not recomputed. A policy value is a description whose numbers the user
chose (the simulators never derive thresholds), and the cluster does not change it silently.
How the re-indexed numbers compare with the engine's own fluid WAIT thresholds
:math:`n_k^* = \lambda_k \Delta^*`:

* Slotted model routed by type: they are equal. :math:`\Delta^* = 1` iteration and each type
  keeps its whole rate :math:`\lambda_k`, so ``fluid_wait(engine model)`` is the re-indexed
  ``fluid_wait(model)``.
* Linear iteration time: the engine's :math:`\Delta^*_e = d_0 / (1 - \rho_e)` falls with its
  own load :math:`\rho_e = d_1 \sum_{k \in e} \lambda_k W_k`, so the pooled thresholds are at
  least the engine's own and the engine waits longer. Its batch memory
  :math:`\sum_{k \in e} n_k W_k` is at most the pooled one, so it stays within :math:`M`
  whenever the pooled thresholds fit.
* Per-request routing: the engine's rates are :math:`\lambda_k / E` (or
  :math:`\lambda_k w_e`), so again the pooled thresholds are at least its own.

For the engines' own fluid policies pass ``policies=ql.fluid_wait`` (any function of the
engine's model), or give one policy value per engine (``policies=[...]``, each keyed by that
engine's type indices).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ParameterError, describe
from .model import ContinuousBatching
from .numbers import check_real, is_symbolic, to_float

__all__ = ["Cluster", "ClusterRun", "coprime_routing", "engine_policy", "routing_groups", "ROUTINGS",
           "TYPE_ROUTINGS", "REQUEST_ROUTINGS"]

TYPE_ROUTINGS = ("round_robin_types", "round_robin", "coprime")
"""Named routings by type (``"round_robin"`` is an alias of ``"round_robin_types"``)."""

REQUEST_ROUTINGS = ("round_robin_requests", "random")
"""Named routings by request (one pooled stream split request by request)."""

ROUTINGS = TYPE_ROUTINGS + REQUEST_ROUTINGS
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


def is_per_request(routing: Any) -> bool:
    """True if ``routing`` is a per-request rule (:data:`REQUEST_ROUTINGS`)."""
    return isinstance(routing, str) and routing in REQUEST_ROUTINGS


def routing_groups(model: ContinuousBatching, engines: int, routing: Any) -> list[list[int]]:
    """The type lists of a routing: ``"round_robin_types"`` (alias ``"round_robin"``),
    ``"coprime"`` or explicit lists; a per-request routing gives every engine every type."""
    K = model.K
    if isinstance(routing, str):
        if routing in ("round_robin_types", "round_robin"):
            groups = [[k for k in range(K) if k % engines == e] for e in range(engines)]
        elif routing == "coprime":
            groups = coprime_routing(model.types, engines)
        elif routing in REQUEST_ROUTINGS:
            return [list(range(K)) for _ in range(engines)]
        else:
            raise ParameterError(f"routing must be one of {', '.join(ROUTINGS)} or type lists, got {routing!r}")
    else:
        if isinstance(routing, (bytes, dict, set)) or not isinstance(routing, Sequence):
            raise ParameterError(f"routing must be a name ({', '.join(ROUTINGS)}) or a list of type lists, "
                                 f"got {describe(routing)}")
        groups = []
        for g in routing:
            if isinstance(g, (str, bytes, dict, set)) or not isinstance(g, (Sequence, np.ndarray)) \
                    or not all(isinstance(k, numbers.Integral) and not isinstance(k, (bool, np.bool_)) for k in g):
                raise ParameterError(f"routing type lists must be lists of type indices, got {describe(g)}")
            groups.append([int(k) for k in g])
    if len(groups) != engines:
        raise ParameterError(f"routing gives {len(groups)} engines, expected {engines}")
    seen = sorted(k for g in groups for k in g)
    if seen != list(range(K)):
        raise ParameterError(f"routing must send every type 0..{K - 1} to exactly one engine, got {groups}")
    if any(not g for g in groups):
        raise ParameterError(f"routing must give every engine at least one type, got {groups}")
    return groups


def engine_policy(policy: Any, group: Sequence[int]) -> Any:
    r"""The policy an engine serving the pooled types ``group`` runs: ``policy`` with its
    per-type data re-indexed to the engine's types.

    Every field of a policy value that is a dict keyed by type index (:class:`~queueing_llm.policies.Wait`'s
    ``thresholds`` and ``budgets``) keeps the entries of ``group``, pooled type ``group[i]``
    becoming type ``i``; every other field (per-segment lists, rates, flags) is kept as is. A
    policy given by name, or with no per-type data, is returned unchanged.

    Examples
    --------
    >>> import queueing_llm as ql
    >>> engine_policy(ql.Wait(thresholds={0: 1, 1: 2, 2: 3, 3: 4}, budgets={0: 6, 1: 20, 2: 27, 3: 60}), [1, 3])
    Wait(thresholds={0: 2, 1: 4}, trigger='any', stall=True, budgets={0: 20, 1: 60})
    """
    if not dataclasses.is_dataclass(policy) or isinstance(policy, type):
        return policy
    changes = {}
    for f in dataclasses.fields(policy):
        value = getattr(policy, f.name)
        if isinstance(value, dict):
            missing = [k for k in group if k not in value]
            if missing:
                raise ParameterError(f"policy {policy} has no {f.name} for the pooled types {missing} that an "
                                     f"engine serves (its types {list(group)})")
            changes[f.name] = {i: value[k] for i, k in enumerate(group)}
    return dataclasses.replace(policy, **changes) if changes else policy


def _policies(policies: Any, engines: int) -> Any:
    if policies is None or callable(policies):
        return policies
    if isinstance(policies, (str, bytes, dict, set)) or not isinstance(policies, Sequence):
        raise ParameterError(f"policies must be None, a function of an engine's model (e.g. ql.fluid_wait) or a "
                             f"list of {engines} policies (one per engine), got {describe(policies)}")
    if len(policies) != engines:
        raise ParameterError(f"policies must hold {engines} policies (one per engine), got {len(policies)}")
    return tuple(policies)


def _weights(weights: Any, engines: int, routing: Any) -> tuple[float, ...] | None:
    if weights is None:
        return None
    if routing != "random":
        raise ParameterError(f"weights apply to routing 'random' only, got weights with routing {routing!r}")
    if isinstance(weights, (str, bytes, dict, set)) or not isinstance(weights, (Sequence, np.ndarray)):
        raise ParameterError(f"weights must be a list of {engines} probabilities, got {describe(weights)}")
    values = list(weights.tolist() if isinstance(weights, np.ndarray) else weights)
    if len(values) != engines:
        raise ParameterError(f"weights must hold {engines} probabilities (one per engine), got {len(values)}")
    for e, w in enumerate(values):
        check_real(f"weights[{e}]", w, low=0.0, high=1.0)
    if abs(sum(float(w) for w in values) - 1.0) > 1e-9:
        raise ParameterError(f"weights must sum to 1, got {sum(float(w) for w in values):.12g}")
    return tuple(float(w) for w in values)


@dataclass(frozen=True)
class Cluster:
    r"""Engines sharing one stream of typed requests, routed by type or by request.

    Parameters
    ----------
    model : ContinuousBatching
        The pooled model: every request type with its arrivals, and the engine parameters
        (KV budget, batch cap, policy) every engine has.
    engines : int
        Number of engines :math:`E`.
    routing : str or list of list of int
        By type: explicit type lists, ``"round_robin_types"`` (alias ``"round_robin"``) or
        ``"coprime"`` (:func:`coprime_routing`). By request: ``"round_robin_requests"`` or
        ``"random"``. See :mod:`queueing_llm.cluster`.
    weights : list of float or None
        ``"random"`` only: the probability :math:`w_e` of each engine (equal if None).
    policies : None, callable or list
        Each engine's admission policy. None: the pooled model's policy with its per-type
        data re-indexed to the engine's types (:func:`engine_policy`; WAIT's thresholds are the
        pooled numbers, not recomputed from the engine's load, see :mod:`queueing_llm.cluster`).
        A function: ``policies(engine_model)`` for each engine, given the engine's model (with
        the re-indexed pooled policy), e.g. ``ql.fluid_wait`` for each engine's own fluid
        thresholds. A list: one policy (value or name) per engine, per-type data keyed by that
        engine's type indices.

    Examples
    --------
    >>> import queueing_llm as ql
    >>> m = ql.ContinuousBatching([ql.RequestType(30, d, 0.5) for d in (6, 9)], kv_capacity=600)
    >>> run = ql.Cluster(m, 2, "round_robin_requests").simulate(2000, seed=1)
    >>> [int(r.arrivals.sum()) for r in run.runs]  # every other request: counts differ by at most 1
    [1004, 1004]
    """

    model: ContinuousBatching
    engines: int = 2
    routing: Any = "coprime"
    weights: Any = None
    policies: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, ContinuousBatching):
            raise ParameterError(f"model must be a ContinuousBatching, got {describe(self.model)}")
        if isinstance(self.engines, bool) or not isinstance(self.engines, int) or self.engines < 1:
            raise ParameterError(f"engines must be an integer >= 1, got {describe(self.engines)}")
        routing_groups(self.model, self.engines, self.routing)
        object.__setattr__(self, "weights", _weights(self.weights, self.engines, self.routing))
        object.__setattr__(self, "policies", _policies(self.policies, self.engines))
        if self.per_request:
            self.stream(0)  # refuses arrivals it cannot split

    @property
    def per_request(self) -> bool:
        """True for a per-request routing (every engine serves every type)."""
        return is_per_request(self.routing)

    @property
    def groups(self) -> list[list[int]]:
        """The type indices each engine serves (all of them for a per-request routing)."""
        return routing_groups(self.model, self.engines, self.routing)

    @property
    def gcd_per_engine(self) -> list[int]:
        r"""The effective gcd of each engine's decode lengths (the ``mixing`` theorem's
        ``gcd_per_engine``): of its types' by type; of all the types' by request, since every
        engine serves every type."""
        from .theory.dynamics import decode_gcd

        return [int(decode_gcd(m)) for m in self.engine_models()]

    def stream(self, seed: int = 0) -> Any:
        """The pooled arrival stream drawn from ``seed`` and its per-request routing
        (:class:`~queueing_llm.sim.routed.PooledStream`; per-request routings only)."""
        from .sim.routed import PooledStream

        if not self.per_request:
            raise ParameterError(f"routing {self.routing!r} is by type: there is no pooled stream to split "
                                 f"(per-request routings: {', '.join(REQUEST_ROUTINGS)})")
        return PooledStream(self.model, self.routing, self.engines, self.weights, seed)

    def engine_models(self, seed: int = 0) -> list[ContinuousBatching]:
        """One model per engine. By type: the pooled model restricted to the engine's types
        (admission proportions renormalised among them). By request: the pooled model whose
        type-:math:`k` arrivals are the engine's share of the pooled stream drawn from
        ``seed`` (:class:`~queueing_llm.sim.routed.RoutedArrivals`; saturated-only types
        stay so). Each runs the engine's policy (``policies``; by default the pooled policy
        re-indexed to the engine's types, :func:`engine_policy`)."""
        if self.per_request:
            from .sim.routed import RoutedArrivals

            stream = self.stream(seed)
            out = []
            for e in range(self.engines):
                types = [t if t.arrivals is None else dataclasses.replace(t, arrivals=RoutedArrivals(stream, e, k))
                         for k, t in enumerate(self.model.types)]
                out.append(dataclasses.replace(self.model, types=types))
        else:
            out = []
            for g in self.groups:
                types = [self.model.types[k] for k in g]
                mix = None
                if self.model.mix is not None:
                    p = [float(self.model.proportions[k]) for k in g]
                    mix = [x / sum(p) for x in p]
                out.append(dataclasses.replace(self.model, types=types, mix=mix,
                                               policy=engine_policy(self.model.policy, g)))
        if self.policies is None:
            return out
        if callable(self.policies):
            return [m.with_policy(self.policies(m)) for m in out]
        return [m.with_policy(p) for m, p in zip(out, self.policies, strict=True)]

    def routes(self, iterations: int, seed: int = 0, first: int = 0) -> dict[str, np.ndarray]:
        """The pooled stream of iterations ``first .. iterations - 1`` with its routing, in
        queue order (per-request routings): arrays ``iteration``, ``type``, ``prompt``,
        ``decode`` and ``engine`` (each request at exactly one engine). The engines of
        ``simulate(iterations, seed=s)`` receive these requests for the pooled seed
        :attr:`ClusterRun.pool_seed` (``first=1`` for runs with an ``initial_batch``, which
        start at iteration 1)."""
        from .sim.draws import ITERATION_BLOCK

        check_real("iterations", iterations, low=1, integer=True, limit=10**9)
        check_real("first", first, low=0, high=1, integer=True)
        parts = []
        blocks = self.stream(seed).blocks(int(first))
        for _ in range(-(-int(iterations) // ITERATION_BLOCK)):
            parts.append(next(blocks))
        iteration, types, _, prompts, decodes, engine = (np.concatenate(c) for c in zip(*parts, strict=True))
        keep = iteration < iterations
        return {"iteration": iteration[keep], "type": types[keep], "prompt": prompts[keep],
                "decode": decodes[keep], "engine": engine[keep]}

    def relaxed_runs(self, iterations: int = 3000, eps: float = 1e-4) -> list:
        """One relaxed saturated run per engine from a perturbation of size ``eps`` of its fixed
        point (the runs of the ``mixing`` check)."""
        from .theory import dynamics as dyn
        from .theory.dynamics_deviation import perturbed_fixed_point

        return [dyn.relaxed_trajectory(m, iterations, perturbed_fixed_point(m, eps), exact=False)
                for m in self.engine_models()]

    def simulate(self, iterations: int, seed: int | None = 0, **options: Any) -> ClusterRun:
        """Simulate every engine; ``options`` go to :func:`queueing_llm.simulate`
        (``saturated``, ``warmup``, ``engine``, ``record``, ...).

        ``SeedSequence(seed)`` spawns one seed per engine (its own draws: initial batch,
        saturated backlog, and by type its arrivals) and, for a per-request routing, one more
        for the pooled stream (:attr:`ClusterRun.pool_seed`). For replications call this once
        per seed (``replications=`` is refused: one pooled stream per cluster run)."""
        from .sim import simulate

        if "replications" in options:
            raise ParameterError("Cluster.simulate runs one cluster; for replications call it once per seed, "
                                 f"got replications={options['replications']!r}")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        seeds = np.random.SeedSequence(seed).spawn(self.engines + 1)
        pool_seed = int(seeds[-1].generate_state(1)[0]) if self.per_request else None
        models = self.engine_models(pool_seed) if self.per_request else self.engine_models()
        runs = [simulate(m, iterations, seed=int(s.generate_state(1)[0]), **options)
                for m, s in zip(models, seeds[:-1], strict=True)]
        return ClusterRun(self, runs, pool_seed)


SUMMED = ("throughput", "throughput_per_iteration", "arrivals_per_iteration", "evictions_per_iteration",
          "rejections_per_iteration", "tokens_per_iteration", "mean_queue", "mean_in_system", "mean_batch",
          "mean_memory", "completed_requests", "throughput_per_second", "tokens_per_second", "arrivals_per_second")
"""Summary keys the pooled summary adds over the engines (rates and means of additive counts)."""

QUANTILE_LEVELS = (0.5, 0.9, 0.99)
"""Levels of the pooled ``latency_p*`` and ``ttft_p*`` keys (those of :meth:`Trajectory.summary`)."""

QUANTILE_KEYS = tuple(f"{which}_p{100 * q:g}" for which in ("latency", "ttft") for q in QUANTILE_LEVELS)
"""The pooled quantile keys: present only when the engines kept their request records."""

NOT_POOLED_FROM_SUMMARIES = QUANTILE_KEYS + ("mean_tbt",)
"""Keys :meth:`ClusterRun.pooled` leaves out of ``record="summary"`` runs: quantiles do not
pool from the engines' quantiles, and the mean time between tokens needs the number of
requests of two or more tokens, which the summary does not give."""


@dataclass(frozen=True)
class ClusterRun:
    """The runs of a :class:`Cluster`'s engines.

    Attributes
    ----------
    cluster : Cluster
    runs : list of Trajectory
        One run per engine, in engine order.
    pool_seed : int or None
        Seed of the pooled arrival stream (per-request routings; ``None`` by type).
    """

    cluster: Cluster
    runs: list
    pool_seed: int | None = None

    @property
    def wall_clock(self) -> bool:
        """True if the engines' iterations last :math:`d_0 + d_1 \\cdot` tokens seconds (the
        latencies are in seconds and each engine keeps its own clock)."""
        return bool(self.cluster.model.is_wall_clock)

    @property
    def records_kept(self) -> bool:
        """True if every engine kept its per-request records (``record="iterations"`` or
        ``"full"``): the pooled quantiles are then exact."""
        return all(r.record != "summary" for r in self.runs)

    def summaries(self, warmup: int | None = None) -> list[dict[str, float]]:
        """Each engine's :meth:`Trajectory.summary`."""
        return [r.summary(warmup) for r in self.runs]

    def _chosen(self, warmup: int | None) -> list[tuple[Any, np.ndarray]]:
        """Each engine's records and the mask of the requests its summary averages over."""
        out = []
        for r in self.runs:
            w = r.warmup if warmup is None else warmup
            check_real("warmup", w, low=0, high=r.iterations - 1, integer=True)
            q = r.requests
            out.append((q, q.completed & ~q.initial & (q.arrival >= int(w))))
        return out

    def pooled_quantiles(self, levels: Any = QUANTILE_LEVELS, warmup: int | None = None,
                         which: str = "latency") -> np.ndarray:
        r"""Inverted-CDF quantiles of the latency (``which="ttft"``: time to first token) over
        the requests of every engine that arrived at or after ``warmup`` and completed (members
        of an initial batch left out), exactly as :meth:`Trajectory.latency_quantiles` takes
        them for one engine: computed from the engines' request records put together, so
        exact. Seconds in wall-clock runs, iterations otherwise (:meth:`pooled_units`);
        ``nan`` if no request completed.

        Raises :class:`ParameterError` for ``record="summary"`` runs: the engines keep only
        their own quantile summaries, and a quantile of a union is not a function of the
        parts' quantiles.
        """
        if which not in ("latency", "ttft"):
            raise ParameterError(f"which must be 'latency' or 'ttft', got {which!r}")
        if not self.records_kept:
            raise ParameterError(
                "pooled quantiles need the engines' request records; these runs were simulated with "
                "record='summary' (each engine keeps only its own quantiles, which do not pool): pass "
                "record='iterations' to Cluster.simulate, or read each engine's summary")
        q = np.asarray(levels, dtype=float).reshape(-1)
        if q.size == 0 or np.isnan(q).any() or q.min() < 0 or q.max() > 1:
            raise ParameterError(f"quantile levels must lie in [0, 1], got {q.tolist()}")
        values = np.concatenate([getattr(rec, which)[chosen] for rec, chosen in self._chosen(warmup)])
        if values.size == 0:
            return np.full(q.size, math.nan)
        return np.quantile(values, q, method="inverted_cdf")

    def pooled(self, warmup: int | None = None) -> dict[str, float]:
        r"""Cluster-wide numbers from the engines' runs; units in :meth:`pooled_units`.

        * Summed over the engines (:data:`SUMMED`, the keys present): throughput, arrivals,
          evictions, rejections and tokens per iteration (every engine runs the same
          iterations :math:`w .. N-1`, so these are the cluster's totals divided by
          :math:`N - w`; in wall-clock runs each engine's iterations have their own
          durations), mean queue, batch, memory and requests in system, completed requests
          (arrived at or after ``warmup``); in wall-clock runs also the per-second rates
          (each engine's over its own elapsed time, summed).
        * Request-level means over the engines' completed requests: ``restarts_per_request``;
          ``mean_sojourn`` (iterations) in slotted runs only, since in wall-clock runs an
          iteration of one engine is not an iteration of another: they give instead
          ``mean_latency`` and ``mean_ttft`` (seconds, exact from the summaries) and
          ``mean_tbt`` (seconds, from the records; absent with ``record="summary"``, see
          :data:`NOT_POOLED_FROM_SUMMARIES`) and ``mean_iteration_seconds`` (the engines'
          mean, their iteration counts being equal).
        * ``latency_p50``, ``latency_p90``, ``latency_p99``, ``ttft_p50``, ``ttft_p90``,
          ``ttft_p99``: the exact inverted-CDF quantiles over every engine's requests
          (:meth:`pooled_quantiles`; seconds in wall-clock runs) when the engines kept their
          records (``record="iterations"`` or ``"full"``). With ``record="summary"`` these keys
          are **absent**: quantiles of a union do not follow from the engines' quantiles
          (each engine's are in :meth:`summaries`), and :meth:`pooled_quantiles` says so.
        * ``peak_memory`` and ``peak_batch``: the largest engine's. ``restarts``: evictions
          at iterations :math:`n \ge` ``warmup``, in total.
        """
        sums = self.summaries(warmup)
        wall = self.wall_clock
        out = {key: float(sum(s[key] for s in sums)) for key in SUMMED if all(key in s for s in sums)}
        done = [float(s["completed_requests"]) for s in sums]
        total = sum(done)

        def weighted(key: str) -> float:
            return sum(d * s[key] for d, s in zip(done, sums, strict=True) if d) / total if total else math.nan

        out["restarts_per_request"] = weighted("restarts_per_request")
        if wall:
            out["mean_latency"] = weighted("mean_latency")
            out["mean_ttft"] = weighted("mean_ttft")
            out["mean_iteration_seconds"] = float(np.mean([s["mean_iteration_seconds"] for s in sums]))
        else:
            out["mean_sojourn"] = weighted("mean_sojourn")
        for key in ("peak_memory", "peak_batch"):
            out[key] = float(max(s[key] for s in sums))
        w = self.runs[0].warmup if warmup is None else warmup
        out["restarts"] = float(round(sum(s["evictions_per_iteration"] * (r.iterations - w)
                                          for s, r in zip(sums, self.runs, strict=True))))
        if self.records_kept:
            for which in ("latency", "ttft"):
                values = self.pooled_quantiles(QUANTILE_LEVELS, warmup, which)
                for q, v in zip(QUANTILE_LEVELS, values, strict=True):
                    out[f"{which}_p{100 * q:g}"] = float(v)
            if wall:
                tbt = np.concatenate([rec.tbt[chosen & (rec.decode > 1)] for rec, chosen in self._chosen(warmup)])
                out["mean_tbt"] = float(tbt.mean()) if tbt.size else math.nan
        return out

    def pooled_units(self) -> dict[str, str]:
        """The unit of every key :meth:`pooled` returns for these runs (``"requests/iteration"``,
        ``"s"``, ...): the engines' :meth:`Trajectory.summary_units` for the keys it pools,
        ``"evictions"`` for ``restarts``. Latency and TTFT quantiles are in seconds in
        wall-clock runs, in iterations otherwise."""
        units = dict(self.runs[0].summary_units())
        units["restarts"] = "evictions"
        keys = self.pooled_keys()
        return {k: units[k] for k in keys}

    def pooled_keys(self) -> tuple[str, ...]:
        """The keys :meth:`pooled` returns for these runs (without computing them)."""
        keys = list(SUMMED) + ["restarts_per_request"]
        if self.wall_clock:
            keys += ["mean_latency", "mean_ttft", "mean_iteration_seconds"]
        else:
            keys = [k for k in keys if not k.endswith("_per_second")] + ["mean_sojourn"]
        keys += ["peak_memory", "peak_batch", "restarts"]
        if self.records_kept:
            keys += list(QUANTILE_KEYS) + (["mean_tbt"] if self.wall_clock else [])
        return tuple(keys)
