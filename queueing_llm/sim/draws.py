r"""Every random draw of a run, in the one order both engines share.

A run owns one generator, ``numpy.random.default_rng(seed)``. The objects here are the
only code that draws from it; the engines (``events.py`` and ``fast.py``) call them at the
same logical points of the iteration loop, so the same seed gives the same requests on
both engines, bit for bit. The order is documented in :mod:`queueing_llm.sim`.

Requests live in one :class:`RequestStream`: the members of the initial batch first, then
(open system) the arrivals in queue order or (saturated input) the backlog in admission
order. A request's id counts the requests drawn before it (0, 1, 2, ...); the stream holds
the ids from :attr:`RequestStream.base` to :attr:`RequestStream.end` and can forget a prefix
of requests that have left (:meth:`RequestStream.drop`, used by ``record="summary"`` runs), so
what a run holds need not grow with the horizon. Dropping changes no draw and no id.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..laws import Deterministic, FinitePMF, Geometric, Law, Regular
from ..model import ContinuousBatching, PoissonProcess
from ..numbers import to_float
from .routed import RoutedArrivals
from .samplers import sampler

__all__ = [
    "ITERATION_BLOCK",
    "PROCESS_BLOCK",
    "BACKLOG_BLOCK",
    "RequestStream",
    "ArrivalSource",
    "Backlog",
    "draw_initial_batch",
    "draw_backlog_block",
    "RunDraws",
]

ITERATION_BLOCK = 4096
"""Iterations covered by one block of a per-iteration arrival law's draws."""

PROCESS_BLOCK = 1024
"""Arrivals in one block of a Poisson process's draws (wall-clock mode)."""

BACKLOG_BLOCK = 1024
"""Requests in one block of the saturated backlog's draws."""


def sample(law: Law, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` draws of ``law`` as an int64 array (no draw at all when ``size`` is 0): the
    values of ``law.sample(rng, size=size)`` and the generator's state after it, computed by
    :func:`.samplers.sampler` (cheaper for the Poisson and geometric laws, bit for bit)."""
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    return sampler(law)(rng, size)


def skip_uniforms(rng: np.random.Generator, count: int) -> bool:
    """Move ``rng`` past ``count`` uniform draws without computing them, if that gives the
    state drawing them gives (PCG64 with no 32-bit half buffered or left over: ``random()``
    takes one 64-bit output per draw, ``advance`` jumps the same outputs and clears that
    buffer); else False (nothing moved)."""
    bits = rng.bit_generator
    if type(bits) is not np.random.PCG64:
        return False
    state = bits.state
    if state["has_uint32"] or state["uinteger"]:
        return False
    bits.advance(count)
    return True


def sample_above(law: Law, rng: np.random.Generator, size: int, stage: int) -> np.ndarray:
    r"""``size`` draws of ``law`` conditioned on exceeding ``stage`` (decode lengths of
    initial-batch members that have already executed ``stage`` iterations).

    Deterministic: the value; Geometric: ``stage`` plus a fresh geometric draw
    (memoryless); finite PMF: a draw from the values above ``stage`` with renormalised
    probabilities; any other law: rejection sampling, one draw of ``size`` values at a time.
    """
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    if isinstance(law, Deterministic):
        return np.full(size, int(law.value), dtype=np.int64)
    if isinstance(law, Geometric):
        return stage + sample(law, rng, size)
    if isinstance(law, FinitePMF):
        values = law.values
        probs = law.pmf(values)
        keep = values > stage
        p = np.asarray(probs, dtype=float)[keep]
        return np.asarray(rng.choice(values[keep], size=size, p=p / p.sum()), dtype=np.int64)
    out = np.zeros(0, dtype=np.int64)
    for _ in range(10_000):
        draw = sample(law, rng, size)
        out = np.concatenate([out, draw[draw > stage]])
        if out.size >= size:
            return out[:size]
    raise ParameterError(f"initial_batch: decode law {law!r} almost never exceeds stage {stage}")


class RequestStream:
    """The requests of a run as parallel Python lists, indexed by request id minus :attr:`base`.

    Ids are counted, not list positions: the stream holds ids ``base .. end - 1``, and
    :meth:`drop` forgets the ids below a given one (requests that completed or were turned
    away and that no structure of the run refers to any more). Without a drop ``base`` is 0
    and the id is the position.

    Attributes
    ----------
    type, prompt, decode : list of int
        Drawn attributes (the stream may hold drawn requests that have not arrived yet).
    iteration, time : list
        Arrival iteration and arrival time of open-system arrivals (initial members: 0
        and 0.0; backlog requests: filled by the engine when admitted).
    base : int
        Id of the first request held.
    """

    def __init__(self) -> None:
        self.type: list[int] = []
        self.prompt: list[int] = []
        self.decode: list[int] = []
        self.iteration: list[int] = []
        self.time: list[float] = []
        self.base = 0

    def __len__(self) -> int:
        """Requests held (``end - base``)."""
        return len(self.type)

    @property
    def end(self) -> int:
        """Id of the next request drawn (requests drawn so far, dropped ones included)."""
        return self.base + len(self.type)

    def extend(self, types, prompts, decodes, iterations, times) -> None:
        self.type.extend(types)
        self.prompt.extend(prompts)
        self.decode.extend(decodes)
        self.iteration.extend(iterations)
        self.time.extend(times)

    def drop(self, upto: int) -> int:
        """Forget the ids below ``upto`` (in place: list aliases stay valid); return how many."""
        k = min(int(upto), self.end) - self.base
        if k <= 0:
            return 0
        for column in (self.type, self.prompt, self.decode, self.iteration, self.time):
            del column[:k]
        self.base += k
        return k


def draw_initial_batch(
    model: ContinuousBatching, rng: np.random.Generator, initial: tuple[tuple[int, ...], ...], stream: RequestStream
) -> list[int]:
    """Draw the members of the initial batch into ``stream``; return their stages by id.

    Order: stages from the highest down to 0, within a stage types in order; for each
    (stage j, type k) with ``x[k][j] > 0`` members: their prompts, then their decode lengths
    conditioned on exceeding j. Ids follow the same order, which is also the admission
    order (a higher stage was admitted earlier; within a stage, type order).
    """
    stages: list[int] = []
    depth = max((len(row) for row in initial), default=0)
    for j in range(depth - 1, -1, -1):
        for k, row in enumerate(initial):
            count = row[j] if j < len(row) else 0
            if count == 0:
                continue
            t = model.types[k]
            prompts = sample(t.prompt, rng, count)
            decodes = sample_above(t.decode, rng, count, j)
            stream.extend([k] * count, prompts.tolist(), decodes.tolist(), [0] * count, [0.0] * count)
            stages.extend([j] * count)
    return stages


class _LawTape:
    """Arrivals of one type with a per-iteration law, drawn in blocks of iterations."""

    def __init__(self, k: int, model: ContinuousBatching, rng: np.random.Generator, first: int):
        self.k = k
        self.law: Law = model.types[k].arrivals
        self.prompt: Law = model.types[k].prompt
        self.decode: Law = model.types[k].decode
        self.rng = rng
        self.first = first
        self.covered = first  # iterations [first, covered) are drawn
        self.held = first  # first iteration whose arrivals the lists below still hold
        self.dropped = 0  # arrivals forgotten (taken before iteration held)
        self.start: list[int] = [0]  # arrival count before each held iteration (from first)
        self.offset: list[float] = []
        self.prompts: list[int] = []
        self.decodes: list[int] = []

    def draw_columns(self, offsets: bool = True) -> tuple[Any, ...]:
        """Draw one block: the counts of ITERATION_BLOCK iterations, then one uniform offset
        per arrival, the prompts, the decode lengths (the one draw order of a per-iteration
        law, shared by the engines and the compiled kernel's driver). Returns
        ``(counts, offsets, prompts, decodes)``; a :class:`~queueing_llm.laws.Deterministic`
        prompt or decode column comes as its value (a Python int: its law draws nothing).

        ``offsets=False`` (a slotted run, which never reads them): the generator jumps over
        the offsets' uniforms where that leaves the state drawing them leaves
        (:func:`skip_uniforms`), and the offsets come as ``0.0``; otherwise they are drawn.
        A :class:`~.routed.RoutedArrivals` law (an engine's share of a pooled stream) is
        replayed from its own seed instead."""
        if isinstance(self.law, RoutedArrivals):
            _, drawn_offsets, prompts, decodes, counts = self.law.block(self.first, self.covered, ITERATION_BLOCK)
            self.covered += ITERATION_BLOCK
            return counts, drawn_offsets, prompts, decodes
        if isinstance(self.law, Regular):  # counts of these very iterations, no random draw
            counts = self.law.counts(self.covered, ITERATION_BLOCK)
        else:
            counts = sample(self.law, self.rng, ITERATION_BLOCK)
        total = int(counts.sum())
        drawn: np.ndarray | float = 0.0
        if offsets or not skip_uniforms(self.rng, total):
            drawn = self.rng.random(total)
        prompts, decodes = (int(sample(law, self.rng, 1)[0]) if isinstance(law, Deterministic)  # draws nothing
                            else sample(law, self.rng, total) for law in (self.prompt, self.decode))
        self.covered += ITERATION_BLOCK
        return counts, drawn, prompts, decodes

    def draw_block(self) -> tuple[np.ndarray, ...]:
        """Draw one block (:meth:`draw_columns`) as arrays: (arrival iteration, offset,
        prompt, decode, counts per iteration)."""
        first = self.covered
        counts, offsets, prompts, decodes = self.draw_columns()
        total = int(counts.sum())
        iterations = np.repeat(np.arange(first, first + ITERATION_BLOCK, dtype=np.int64), counts)
        prompts, decodes = (np.full(total, c, dtype=np.int64) if isinstance(c, int) else c for c in (prompts, decodes))
        return iterations, offsets, prompts, decodes, counts

    def cover(self, n: int, end: float) -> None:
        """Draw (and keep) blocks until iteration ``n`` is drawn; forget the iterations before
        ``n`` (taken already: iterations are taken in order) a block at a time."""
        if n - self.held >= ITERATION_BLOCK:
            i = n - self.held
            lo = self.start[i] - self.dropped
            del self.start[:i]
            del self.offset[:lo]
            del self.prompts[:lo]
            del self.decodes[:lo]
            self.held = n
            self.dropped += lo
        while n >= self.covered:
            _, offsets, prompts, decodes, counts = self.draw_block()
            self.start.extend((self.start[-1] + np.cumsum(counts)).tolist())
            self.offset.extend(offsets.tolist())
            self.prompts.extend(prompts.tolist())
            self.decodes.extend(decodes.tolist())

    def take(self, n: int, first: int, start: float, end: float) -> tuple[list, list, list]:
        i = n - self.held
        lo, hi = self.start[i] - self.dropped, self.start[i + 1] - self.dropped
        span = end - start
        times = [start + o * span for o in self.offset[lo:hi]]
        return times, self.prompts[lo:hi], self.decodes[lo:hi]


class _ProcessTape:
    """Arrivals of one type from a Poisson process in seconds, drawn in blocks of arrivals."""

    def __init__(self, k: int, model: ContinuousBatching, rng: np.random.Generator):
        self.k = k
        self.rate = to_float(model.types[k].arrivals.rate, f"types[{k}] PoissonProcess rate")
        self.prompt: Law = model.types[k].prompt
        self.decode: Law = model.types[k].decode
        self.rng = rng
        self.epochs: list[float] = []
        self.prompts: list[int] = []
        self.decodes: list[int] = []
        self.last = 0.0
        self.pos = 0

    def cover(self, n: int, end: float) -> None:
        if self.rate == 0:
            return
        if self.pos >= PROCESS_BLOCK:  # taken already (intervals are taken in order)
            del self.epochs[: self.pos]
            del self.prompts[: self.pos]
            del self.decodes[: self.pos]
            self.pos = 0
        while self.last < end:
            epochs, prompts, decodes = self.draw_block()
            self.prompts.extend(prompts.tolist())
            self.decodes.extend(decodes.tolist())
            self.epochs.extend(epochs.tolist())

    def draw_block(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw the next PROCESS_BLOCK arrivals: their exponential gaps, then the prompts, the
        decode lengths (the one draw order of a Poisson process, shared by the engines and
        the compiled kernel's driver). Returns (epochs in seconds, prompts, decodes)."""
        gaps = self.rng.exponential(1.0 / self.rate, PROCESS_BLOCK)
        epochs = self.last + np.cumsum(gaps)
        prompts = sample(self.prompt, self.rng, PROCESS_BLOCK)
        decodes = sample(self.decode, self.rng, PROCESS_BLOCK)
        self.last = float(epochs[-1])
        return epochs, prompts, decodes

    def take(self, n: int, first: int, start: float, end: float) -> tuple[list, list, list]:
        lo = self.pos
        hi = bisect_left(self.epochs, end, lo)  # the epochs before the interval's end
        self.pos = hi
        return self.epochs[lo:hi], self.prompts[lo:hi], self.decodes[lo:hi]


def merge_tape_blocks(tapes: list[_LawTape]) -> tuple[np.ndarray, ...]:
    """One block of every type's tape (:meth:`_LawTape.draw_block`, type by type) merged into
    queue order: by iteration, then offset, ties in type order (a stable sort). Returns
    ``(iterations, types, offsets, prompts, decodes)``. The one merge of the engines, the
    compiled kernel's driver and the routed streams (:mod:`.routed`)."""
    parts = [tape.draw_block() for tape in tapes]
    iterations = np.concatenate([p[0] for p in parts])
    types = np.concatenate([np.full(p[0].size, k, dtype=np.int64) for k, p in enumerate(parts)])
    offsets = np.concatenate([p[1] for p in parts])
    prompts = np.concatenate([p[2] for p in parts])
    decodes = np.concatenate([p[3] for p in parts])
    if len(tapes) > 1:
        order = np.lexsort((offsets, iterations))  # stable: ties keep type order
        iterations, types, offsets = iterations[order], types[order], offsets[order]
        prompts, decodes = prompts[order], decodes[order]
    return iterations, types, offsets, prompts, decodes


class ArrivalSource:
    r"""The arrivals of an open system, in queue order (see :mod:`queueing_llm.sim` for the draw order).

    ``take(n, start, end)`` appends iteration ``n``'s arrivals (its wall-clock interval is
    ``[start, end)``) to the stream and returns their ids ``lo .. hi-1`` in queue order
    (iterations are taken in increasing order). Slotted runs draw and merge whole blocks of
    iterations at once; wall-clock runs merge each iteration's arrivals by arrival time.

    Attributes
    ----------
    bounds, bounds_first : list of int, int
        Slotted runs: ``bounds[n - bounds_first]`` is the id of the first arrival of
        iteration ``n`` of the block merged last (``ITERATION_BLOCK + 1`` entries: the
        memory does not grow with the horizon).
    """

    def __init__(self, model: ContinuousBatching, rng: np.random.Generator, first: int, stream: RequestStream):
        self.K = model.K
        self.first = first
        self.stream = stream
        self.wall_clock = model.is_wall_clock
        self.tapes = [
            _ProcessTape(k, model, rng) if isinstance(t.arrivals, PoissonProcess) else _LawTape(k, model, rng, first)
            for k, t in enumerate(model.types)
        ]
        self.covered = first
        self.bounds: list[int] = [stream.end]  # slotted: id of the first arrival of each iteration of the block
        self.bounds_first = first

    def take(self, n: int, start: float, end: float) -> tuple[int, int]:
        if not self.wall_clock:
            while n >= self.covered:
                self._merge_block()
            i = n - self.bounds_first
            return self.bounds[i], self.bounds[i + 1]
        return self._take_interval(n, start, end)

    def _merge_block(self) -> None:
        iterations, types, _, prompts, decodes = merge_tape_blocks(self.tapes)
        per_iteration = np.bincount(iterations - self.covered, minlength=ITERATION_BLOCK)
        base = self.stream.end
        self.bounds = [base, *(base + np.cumsum(per_iteration)).tolist()]
        self.bounds_first = self.covered
        self.stream.extend(
            types.tolist(), prompts.tolist(), decodes.tolist(), iterations.tolist(), iterations.astype(float).tolist()
        )
        self.covered += ITERATION_BLOCK

    def _take_interval(self, n: int, start: float, end: float) -> tuple[int, int]:
        lo = self.stream.end
        if self.K == 1:
            tape = self.tapes[0]
            tape.cover(n, end)
            t, p, d = tape.take(n, self.first, start, end)
            self.stream.extend([0] * len(t), p, d, [n] * len(t), t)
            return lo, self.stream.end
        times: list[float] = []
        types: list[int] = []
        prompts: list[int] = []
        decodes: list[int] = []
        for tape in self.tapes:
            tape.cover(n, end)
            t, p, d = tape.take(n, self.first, start, end)
            times.extend(t)
            types.extend([tape.k] * len(t))
            prompts.extend(p)
            decodes.extend(d)
        if self.K > 1 and len(times) > 1:
            order = sorted(range(len(times)), key=times.__getitem__)  # stable: ties keep type order
            times = [times[i] for i in order]
            types = [types[i] for i in order]
            prompts = [prompts[i] for i in order]
            decodes = [decodes[i] for i in order]
        self.stream.extend(types, prompts, decodes, [n] * len(times), times)
        return lo, self.stream.end


class Backlog:
    r"""The infinite backlog of a saturated run (see :mod:`queueing_llm.sim` for the draw order).

    ``head()`` is the id of the next fresh request (drawing a block when needed);
    ``pop()`` takes it. Types follow the proportions :math:`p_k` of the model.
    """

    def __init__(self, model: ContinuousBatching, rng: np.random.Generator, stream: RequestStream):
        self.model = model
        self.rng = rng
        self.stream = stream
        self.K = model.K
        self.cumulative = np.cumsum([to_float(p, "mix") for p in model.proportions])
        self.next = stream.end

    def head(self) -> int:
        while self.next >= self.stream.end:
            self._draw_block()
        return self.next

    def pop(self) -> int:
        i = self.head()
        self.next += 1
        return i

    def _draw_block(self) -> None:
        types, prompts, decodes = draw_backlog_block(self.model, self.rng, self.cumulative)
        size = BACKLOG_BLOCK
        self.stream.extend(types.tolist(), prompts.tolist(), decodes.tolist(), [-1] * size, [float("nan")] * size)


def draw_backlog_block(model: ContinuousBatching, rng: np.random.Generator,
                       cumulative: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block of the saturated backlog (draw order 3 of :mod:`queueing_llm.sim`): with several
    types the block's types (uniforms against the cumulative proportions), then for each type in
    order its prompts, then its decode lengths. Shared by every engine, so their draws agree."""
    size = BACKLOG_BLOCK
    K = model.K
    if K > 1:
        u = rng.random(size)
        types = np.minimum(np.searchsorted(cumulative, u, side="right"), K - 1).astype(np.int64)
    else:
        types = np.zeros(size, dtype=np.int64)
    prompts = np.zeros(size, dtype=np.int64)
    decodes = np.zeros(size, dtype=np.int64)
    for k, t in enumerate(model.types):
        where = np.flatnonzero(types == k)
        prompts[where] = sample(t.prompt, rng, where.size)
        decodes[where] = sample(t.decode, rng, where.size)
    return types, prompts, decodes


class RunDraws:
    """The random side of one run: the generator, the request stream with the initial
    batch drawn, and the arrival source (open system) or the backlog (saturated input).

    Attributes
    ----------
    stages : list of int
        Stage of each initial-batch member, by id.
    source : ArrivalSource or None
    backlog : Backlog or None
    """

    def __init__(self, config) -> None:
        model = config.model
        self.rng = np.random.default_rng(config.seed)
        self.stream = RequestStream()
        self.stages: list[int] = []
        if config.initial is not None:
            self.stages = draw_initial_batch(model, self.rng, config.initial, self.stream)
            tokens = sum(p + 1 + j for p, j in zip(self.stream.prompt, self.stages, strict=True))
            if tokens > config.M:
                raise ParameterError(
                    f"initial_batch holds {tokens} KV tokens with the prompts drawn for seed {config.seed}, "
                    f"above kv_capacity = {config.M:g}"
                )
        self.source = None if config.saturated else ArrivalSource(model, self.rng, config.first, self.stream)
        self.backlog = Backlog(model, self.rng, self.stream) if config.saturated else None
