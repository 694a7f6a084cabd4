r"""Per-request routing: one pooled arrival stream split across engines, replayed per engine.

A :class:`PooledStream` is the open-system arrival stream of a pooled model (every type with
its per-iteration arrival law, its prompts and its decode lengths), drawn from one seed, and a
routing rule that sends each arriving request to one of :math:`E` engines:

* ``"round_robin_requests"``: the :math:`i`-th request of the pooled stream, in queue order
  (:mod:`queueing_llm.sim`, "Random-draw order"), goes to engine :math:`i \bmod E`;
* ``"random"``: each request independently to engine :math:`e` with probability :math:`w_e`
  (``weights``, equal by default): independent thinning, so engine :math:`e`'s type-:math:`k`
  counts have the PGF :math:`P_k(1 - w_e + w_e z)` (Poisson stays Poisson,
  :math:`\lambda_k w_e`).

The engines' share of type :math:`k` is the law :class:`RoutedArrivals` ``(stream, engine,
k)``: an engine model carries one per type, and the simulators' arrival tapes
(:class:`~.draws._LawTape`) replay it instead of drawing from the run's generator. Each
replay regenerates the pooled stream block by block from the stream's seed (the same draws as
:func:`queueing_llm.simulate` of the pooled model with that seed: the pooled tapes *are*
:class:`~.draws._LawTape`\ s) and keeps its engine's requests, with their prompts, decode
lengths, iterations and offsets, so the queue order within an iteration is the pooled order.
So every engine sees exactly its part of one stream (every pooled request at exactly one
engine), a run is reproducible from the seed, and the memory is one block, whatever the
horizon. Since the rules do not look at the engines' states, simulating the engines one
after the other on their parts is exact. State-dependent rules (join the shortest queue)
would need the engines stepped together and are not offered.

The blocks of the pooled stream are cached per thread (the last few), so the :math:`K` type
tapes of one engine share one regeneration; a new run restarts it from the seed.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..errors import LawError, ParameterError, describe
from ..laws import Law
from ..numbers import to_float, to_sympy

__all__ = ["REQUEST_ROUTINGS", "PooledStream", "RoutedArrivals", "route_block"]

REQUEST_ROUTINGS = ("round_robin_requests", "random")
"""Per-request routing rules (each pooled request to one engine, whatever its type)."""


@dataclass(frozen=True, eq=False)
class PooledStream:
    r"""The pooled arrival stream of ``model`` drawn from ``seed``, routed request by request.

    Parameters
    ----------
    model : ContinuousBatching
        The pooled model; every type needs a per-iteration arrival law (not a
        ``PoissonProcess`` in seconds, whose engines' clocks differ).
    rule : str
        One of :data:`REQUEST_ROUTINGS`.
    engines : int
        Number of engines :math:`E`.
    weights : tuple of float or None
        ``"random"``: the probabilities :math:`w_e` (``None``: :math:`1/E` each).
    seed : int
        Seed of the pooled stream: its arrivals are drawn by ``numpy.random.default_rng(seed)``
        exactly as :func:`queueing_llm.simulate` of ``model`` with ``seed`` draws them; the
        ``"random"`` rule's uniforms come from a generator spawned from ``seed``.
    """

    model: Any
    rule: str
    engines: int
    weights: tuple[float, ...] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        from ..model import PoissonProcess

        if self.rule not in REQUEST_ROUTINGS:
            raise ParameterError(f"routing rule must be one of {', '.join(REQUEST_ROUTINGS)}, got {self.rule!r}")
        for k, t in enumerate(self.model.types):
            if isinstance(t.arrivals, PoissonProcess):
                raise ParameterError(
                    f"routing {self.rule!r} splits per-iteration arrivals; types[{k}] has {t.arrivals!r} in seconds "
                    "(each engine keeps its own clock): give a per-iteration arrival law, or route by type")
        if self.rule == "random":
            w = self.probabilities
            if len(w) != self.engines:
                raise ParameterError(f"weights must hold {self.engines} probabilities (one per engine), got {len(w)}")
        elif self.weights is not None:
            raise ParameterError(f"weights apply to routing 'random' only, got weights with routing {self.rule!r}")

    @property
    def probabilities(self) -> tuple[float, ...]:
        """The routing probabilities :math:`w_e` of ``"random"`` (equal if ``weights`` is None)."""
        return tuple([1.0 / self.engines] * self.engines) if self.weights is None else tuple(self.weights)

    def _key(self) -> tuple:
        return (self.rule, self.engines, self.weights, self.seed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PooledStream) and self._key() == other._key() and self.model == other.model

    def __hash__(self) -> int:
        return hash(self._key() + (self.model.K,))

    def __repr__(self) -> str:
        w = "" if self.weights is None else f", weights={list(self.weights)}"
        return f"PooledStream({self.rule!r}, engines={self.engines}{w}, seed={self.seed}, K={self.model.K})"

    def blocks(self, first: int = 0) -> Any:
        """The routed blocks in order (a generator): for each block of ``ITERATION_BLOCK``
        iterations from ``first``, :func:`route_block`'s arrays."""
        from .draws import _LawTape, merge_tape_blocks

        rng = np.random.default_rng(self.seed)
        router = np.random.default_rng(np.random.SeedSequence(self.seed).spawn(1)[0])
        tapes = [_LawTape(k, self.model, rng, first) for k in range(self.model.K)]
        phase = 0
        while True:
            block = merge_tape_blocks(tapes)
            engine, phase = route_block(self, block[0].size, router, phase)
            yield block + (engine,)


def route_block(stream: PooledStream, size: int, rng: np.random.Generator, phase: int) -> tuple[np.ndarray, int]:
    r"""The engines of ``size`` consecutive pooled requests and the next phase.

    ``"round_robin_requests"``: request :math:`i` of the block goes to
    :math:`(\text{phase} + i) \bmod E`, the phase being the number of requests routed before
    it, mod :math:`E`. ``"random"``: one uniform per request from the routing generator
    (``default_rng(SeedSequence(seed).spawn(1)[0])``, apart from the arrivals' generator, so
    the pooled arrivals are those of the pooled model's run with ``seed`` whatever the rule),
    compared with the cumulative weights.
    """
    E = stream.engines
    if stream.rule == "round_robin_requests":
        engine = (phase + np.arange(size, dtype=np.int64)) % E
        return engine, (phase + size) % E
    cumulative = np.cumsum(stream.probabilities)
    u = rng.random(size)
    engine = np.minimum(np.searchsorted(cumulative, u, side="right"), E - 1).astype(np.int64)
    return engine, phase


class _Cache(threading.local):
    def __init__(self) -> None:
        self.entries: OrderedDict = OrderedDict()


_CACHE = _Cache()
_CACHED_STREAMS = 4
_CACHED_BLOCKS = 4


def _routed_block(stream: PooledStream, first: int, index: int) -> tuple[np.ndarray, ...]:
    """Block ``index`` of ``stream`` from ``first`` (regenerated from the seed when it is behind
    the thread's cached position)."""
    key = (stream, first)
    entry = _CACHE.entries.get(key)
    if entry is None or index < entry["next"] - _CACHED_BLOCKS:
        entry = {"gen": stream.blocks(first), "next": 0, "kept": OrderedDict()}
        _CACHE.entries[key] = entry
        while len(_CACHE.entries) > _CACHED_STREAMS:
            _CACHE.entries.popitem(last=False)
    _CACHE.entries.move_to_end(key)
    kept = entry["kept"]
    if index in kept:
        return kept[index]
    while entry["next"] <= index:
        kept[entry["next"]] = next(entry["gen"])
        entry["next"] += 1
        while len(kept) > _CACHED_BLOCKS:
            kept.popitem(last=False)
    return kept[index]


@dataclass(frozen=True)
class RoutedArrivals(Law):
    r"""Type ``k``'s arrivals at engine ``engine`` when ``stream`` is routed request by request.

    A per-iteration arrival law that the simulators replay rather than sample: the counts,
    offsets, prompts and decode lengths of the block of iterations a tape asks for
    (:meth:`block`) are the pooled stream's type-:math:`k` requests routed to the engine.

    Its face as a law on one iteration: mean :math:`\lambda_k w_e` (``"random"``) or
    :math:`\lambda_k / E` (``"round_robin_requests"``, the long-run share: the counter's phase
    is uniform in steady state when the pooled counts mix over :math:`\mathbb{Z}_E`, e.g.
    Poisson counts). ``"random"`` is independent thinning, with PGF
    :math:`P_k(1 - w_e + w_e z)`; round robin's per-iteration law has no closed form (counts
    of consecutive iterations are dependent), so its PGF and pmf raise :class:`LawError`.

    The stream's seed is part of the law: replications of one engine model
    (``simulate(..., replications=R)``) replay the same share; draw other pooled streams
    with other seeds (:meth:`queueing_llm.Cluster.simulate` once per seed).
    """

    stream: PooledStream
    engine: int
    k: int

    def __post_init__(self) -> None:
        E = self.stream.engines
        if isinstance(self.engine, bool) or not isinstance(self.engine, int) or not 0 <= self.engine < E:
            raise ParameterError(f"engine must be an integer in [0, {self.stream.engines - 1}], got "
                                 f"{describe(self.engine)}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or not 0 <= self.k < self.stream.model.K:
            raise ParameterError(f"k must be a type index in [0, {self.stream.model.K - 1}], got {describe(self.k)}")
        if not isinstance(self.pooled, Law):
            raise ParameterError(f"types[{self.k}] of the pooled model needs a per-iteration arrival law to be "
                                 f"routed, got {describe(self.pooled)}")

    def __repr__(self) -> str:
        return (f"RoutedArrivals({self.stream.rule!r}, engine {self.engine} of {self.stream.engines}, "
                f"type {self.k}, {self.pooled!r}, seed={self.stream.seed})")

    @property
    def pooled(self) -> Any:
        """The pooled law of type ``k``'s arrivals per iteration."""
        return self.stream.model.types[self.k].arrivals

    def _parameters(self) -> tuple:
        return self.pooled._parameters()

    def _share(self) -> sp.Expr:
        if self.stream.rule == "random":
            return to_sympy(self.stream.probabilities[self.engine])
        return sp.Rational(1, self.stream.engines)

    def pgf(self, z: Any = None) -> sp.Expr:
        if self.stream.rule != "random":
            raise LawError(f"{self!r}: per-request round robin has no closed-form per-iteration PGF "
                           "(the counts of consecutive iterations are dependent); its mean is lambda_k / E")
        z = sp.Symbol("z") if z is None else z
        w = self._share()
        return self.pooled.pgf(1 - w + w * z)

    @property
    def mean(self) -> sp.Expr:
        return self.pooled.mean * self._share()

    @property
    def support_max(self) -> float:
        return self.pooled.support_max

    def pmf(self, k):
        if self.stream.rule != "random":
            raise LawError(f"{self!r}: per-request round robin has no closed-form per-iteration pmf")
        from scipy.stats import binom

        w = to_float(self._share(), "weight")
        top = self.pooled.support_max
        if math.isinf(top):
            mean, sd = self.pooled.mean_value(), math.sqrt(max(self.pooled.variance_value(), 0.0))
            top = int(mean + 40 * sd + 50)
        n = np.arange(int(top) + 1)
        p_n = self.pooled.pmf_array(n.size)
        kk = np.asarray(k)
        out = np.array([float(np.sum(p_n * binom.pmf(int(j), n, w))) for j in kk.reshape(-1)]).reshape(kk.shape)
        return float(out) if out.ndim == 0 else out

    def sample(self, rng, size=None):
        """The engine's type-``k`` counts of the first ``size`` iterations (one count if ``size``
        is None), replayed from the stream's seed; ``rng`` is not used."""
        from .draws import ITERATION_BLOCK

        n = 1 if size is None else int(size)
        counts = []
        for b in range(-(-n // ITERATION_BLOCK)):
            counts.append(self.block(0, b * ITERATION_BLOCK, ITERATION_BLOCK)[4])
        out = np.concatenate(counts)[:n] if counts else np.zeros(0, dtype=np.int64)
        return int(out[0]) if size is None else out

    def block(self, first: int, covered: int, size: int) -> tuple[np.ndarray, ...]:
        """The tape's block of iterations ``covered .. covered + size - 1`` (runs start at
        ``first``): arrival iterations, offsets, prompts, decodes, counts per iteration, as
        :meth:`~.draws._LawTape.draw_block` returns them."""
        from .draws import ITERATION_BLOCK

        if size != ITERATION_BLOCK or (covered - first) % ITERATION_BLOCK:
            raise ParameterError(f"routed arrivals are replayed in blocks of {ITERATION_BLOCK} iterations from "
                                 f"first = {first}, got covered = {covered}, size = {size}")
        iterations, types, offsets, prompts, decodes, engine = _routed_block(
            self.stream, first, (covered - first) // ITERATION_BLOCK)
        keep = (engine == self.engine) & (types == self.k)
        its = iterations[keep]
        counts = np.bincount(its - covered, minlength=size).astype(np.int64)
        return its, offsets[keep], prompts[keep], decodes[keep], counts
