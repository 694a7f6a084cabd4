r"""The fast engine: the same trajectories as the SimPy engine, bit for bit, many times faster.

It draws nothing of its own (the draws of :mod:`.draws`, in the same order) and asks the
same admission rules (:mod:`.policies`) the same questions; only the bookkeeping differs.
Two paths:

* :func:`run_fast`, the FCFS policies (``greedy``, ``fcfs_cap``, ``rate_limited``, ``static``,
  ``reserve``), below; the compiled kernel (:mod:`.kernel`) is this loop in numba.
* :func:`run_scheduled`, WAIT and Nested WAIT ([ALSW25]): they stall members, so a member's
  stage is not :math:`n - \text{admission}`; that path tracks stages per member and takes
  each admission step from the code it shares with SimPy (:mod:`.scheduling`). The kernel
  does not run them. Measured on batches of 100-160 members: about twice SimPy's speed for
  WAIT (an iteration costs the groups of the batch, not its members), about SimPy's speed
  for Nested WAIT (its partial stalls touch every stalled member).

The FCFS path:

* The batch is a deque of request ids in admission order. Because a member's stage is the
  number of iterations since its admission, "lowest stage first, within a stage the most
  recently admitted first" is exactly reverse admission order: eviction pops the right end.
* Completions come from a calendar: a member admitted at :math:`a` with decode length
  :math:`d` completes at :math:`a + d` unless evicted before (stale entries are skipped).
* Memory after execution is updated in :math:`O(1)`: every member gains one token, each
  completing member frees :math:`l_0 + 1 + l_1` (the model chapter, section 1).
* Per-iteration arrays are rebuilt after the run with NumPy: counts by ``bincount`` of the
  request records and the admission/eviction log; the queue from the balance
  :math:`Q_n = \sum_{m \le n} (A_m - R_m + E_m - \text{Adm}_m)`; the stage counts from the
  residences (admission :math:`a`, exit :math:`e`) by a cumulative sum along the diagonals
  :math:`x_{k,j}(n) = \#\{a = n - j,\; e > n\}`.

``record="summary"`` (both paths): the same loop hands its logs to :class:`~.streaming.LoopSummary`
every :data:`~.streaming.CHUNK` iterations, which feeds the summary and drops the requests that
left (the per-request lists are indexed by request id minus the stream's base, 0 otherwise).

Source: the model chapter, section 2; [ADLS26] section 2.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from itertools import chain
from typing import NamedTuple

import numpy as np

from .config import RunConfig
from .draws import RunDraws
from .policies import AdmissionRule, admission_rule
from .result import build_trajectory, summary_trajectory
from .scheduling import admission_plan, check_open_system, is_scheduled, select_admissions
from .streaming import CHUNK, DONE, IN, REJECTED, WAIT, LoopSummary
from .trajectory import RequestRecords, Residences, Trajectory

__all__ = ["run_fast", "run_scheduled", "stage_counts"]


def stage_counts(
    types: np.ndarray, starts: np.ndarray, ends: np.ndarray, iterations: int, K: int, S: int
) -> np.ndarray:
    r"""Stage counts ``(N, K, S)`` after admission from residences in the batch.

    A residence of a type-:math:`k` request admitted at :math:`a` (negative for an initial
    member at stage :math:`-a`) and gone at :math:`e` (completion or eviction) puts one
    request at stage :math:`n - a` for :math:`\max(a, 0) \le n < \min(e, N)`. In the
    coordinates (admission, stage) the residence is the segment :math:`a` fixed,
    :math:`j \in [\max(0, -a), e - a)`: a difference array along :math:`j` and a cumulative
    sum give :math:`G(a, k, j)`, and :math:`x_{k,j}(n) = G(n - j, k, j)`.
    """
    N = iterations
    t = np.asarray(types, dtype=np.int64)
    a = np.asarray(starts, dtype=np.int64)
    e = np.minimum(np.asarray(ends, dtype=np.int64), N)
    j0 = np.maximum(0, -a)
    j1 = e - a
    keep = j1 > j0
    t, a, j0, j1 = t[keep], a[keep], j0[keep], j1[keep]
    batch = np.zeros((N, K, S), dtype=np.int64)
    if a.size == 0:
        return batch
    # G is indexed by admission a in [lo, N) and stage j in [0, J]: no S^2 allocation
    lo = min(int(a.min()), 0)
    J = int(j1.max())
    G = np.zeros((N - lo) * K * (J + 1), dtype=np.int32)
    base = ((a - lo) * K + t) * (J + 1)
    np.add.at(G, base + j0, 1)
    np.add.at(G, base + j1, -1)
    G3 = G.reshape(N - lo, K, J + 1)
    np.cumsum(G3, axis=2, out=G3)
    for j in range(min(S, J)):
        first = max(0, j + lo)
        if first < N:
            batch[first:, :, j] = G3[first - j - lo : N - j - lo, :, j]
    return batch


def run_fast(config: RunConfig) -> Trajectory:
    """Simulate ``config`` with the fast engine (same trajectory as the SimPy engine)."""
    model = config.model
    if is_scheduled(model):
        return run_scheduled(config)
    N, first = config.iterations, config.first
    M, cap = config.M, config.waiting_cap
    skip_after_eviction = not model.admit_after_eviction
    wall, d0, d1 = config.wall_clock, config.d0, config.d1
    draws = RunDraws(config)
    stream, source, backlog = draws.stream, draws.source, draws.backlog
    rule = admission_rule(model, M, config.B)
    begin, allows, admitted, evicted_rule = rule.begin, rule.allows, rule.admitted, rule.evicted
    track_evictions, track_admissions = rule.tracks_evictions, rule.tracks_admissions
    track_begin = type(rule).begin is not AdmissionRule.begin
    slotted_source = source is not None and not wall
    bounds, b0 = (source.bounds, source.bounds_first) if slotted_source else ([], 0)
    typ, pr, dec = stream.type, stream.prompt, stream.decode  # grow (and drop, summary) in place with the stream
    IN_, WAIT_ = IN, WAIT
    # record="summary": fed chunk by chunk, the requests that left are dropped (streaming.py);
    # the lists are indexed by slot = id - base (base stays 0 otherwise)
    summ = LoopSummary(config, stream, draws.stages) if config.record == "summary" else None
    base = 0

    # per-request state, grown with the stream
    state: list[int] = []
    adm: list[int] = []  # latest admission
    completion: list[int] = []
    sat_arrival: list[int] = []  # saturated: arrival iteration of backlog requests
    sat_time: list[float] = []

    def grow() -> None:
        extra = len(typ) - len(state)
        state.extend([WAIT] * extra)
        adm.extend([-1] * extra)
        completion.extend([-1] * extra)
        if backlog is not None:
            sat_arrival.extend([-1] * extra)
            sat_time.extend([0.0] * extra)

    grow()
    order: deque[int] = deque()  # batch members in admission order
    queue: deque[int] = deque()
    cal: dict[int, list[int]] = {}
    ev_r: list[int] = []  # evictions: request, its admission, the iteration
    ev_a: list[int] = []
    ev_n: list[int] = []
    mem_log: list[int] = []
    time_log: list[float] = []
    size = 0
    mem = 0
    created = len(typ)

    # iteration 0 with an initial batch: the given members, oldest first
    for r, stage in enumerate(draws.stages):
        state[r] = IN
        adm[r] = -stage
        order.append(r)
        size += 1
        mem += pr[r] + 1 + stage
        cal.setdefault(dec[r] - stage, []).append(r)
        rule.present(-stage, pr[r], dec[r])
        if backlog is not None:
            sat_arrival[r] = 0
    if first == 1:
        mem_log.append(mem)
        time_log.append(0.0)

    order_pop, order_popleft, order_append = order.pop, order.popleft, order.append
    queue_popleft, queue_appendleft, queue_extend = queue.popleft, queue.appendleft, queue.extend
    cal_pop, cal_get = cal.pop, cal.get
    ev_r_append, ev_a_append, ev_n_append = ev_r.append, ev_a.append, ev_n.append
    mem_append, time_append = mem_log.append, time_log.append
    lists = {"state": state, "completion": completion, "adm": adm}  # the summary's view (mutated in place)
    if backlog is not None:
        lists.update(arrival=sat_arrival, arrival_time=sat_time)
    evictions_log = (ev_r, ev_a, ev_n)
    marks = _Checkpoints(config, summ, lists, None, evictions_log, mem_log, time_log, None)
    checkpoint = marks.next
    t = 0.0 if (wall or first == 1) else -1.0
    for n in range(first, N):
        end = t + (d0 + d1 * mem) if wall else float(n)
        # 1. execute: every member gains a token; completing members free l0 + 1 + l1
        mem += size
        due = cal_pop(n, None)
        if due is not None:
            for r in due:
                if state[r] == IN_ and adm[r] + dec[r] == n:
                    state[r] = DONE
                    completion[r] = n
                    size -= 1
                    mem -= pr[r] + 1 + dec[r]
            while order and state[order[0]] != IN_:
                order_popleft()
        # 2. arrive
        if source is not None:
            if not slotted_source:
                lo, hi = source.take(n, t, end)
            else:  # source.take inlined: the slotted stream is merged by blocks
                if n >= source.covered:
                    source.take(n, t, end)
                    bounds, b0 = source.bounds, source.bounds_first
                lo, hi = bounds[n - b0], bounds[n - b0 + 1]
            if hi > lo:
                if len(typ) > len(state):
                    grow()
                created = hi
                lo -= base  # ids to slots
                hi -= base
                room = cap - len(queue)
                if room >= hi - lo:
                    queue_extend(range(lo, hi))
                else:
                    keep = lo + max(int(room), 0)
                    queue_extend(range(lo, keep))
                    for r in range(keep, hi):
                        state[r] = REJECTED
        # 3. evict: reverse admission order = lowest stage first, most recent first
        evictions = 0
        if mem > M:
            while mem > M:
                r = order_pop()
                if state[r] != IN_:
                    continue
                a = adm[r]
                mem -= pr[r] + 1 + n - a
                state[r] = WAIT_
                queue_appendleft(r)
                ev_r_append(r)
                ev_a_append(a)
                ev_n_append(n)
                if track_evictions:
                    evicted_rule(n, a, pr[r], dec[r])
                evictions += 1
            size -= evictions
        # 4. admit
        if track_begin:
            begin(n, mem, size)
        if not (evictions and skip_after_eviction):
            while True:
                if queue:
                    r = queue[0]
                    if not allows(mem, size, pr[r], dec[r]):
                        break
                    queue_popleft()
                elif backlog is not None:
                    r = backlog.head() - base
                    if len(typ) > len(state):
                        grow()
                    if not allows(mem, size, pr[r], dec[r]):
                        break
                    backlog.pop()
                    sat_arrival[r] = n
                    sat_time[r] = end
                    created = r + base + 1
                else:
                    break
                state[r] = IN_
                adm[r] = n
                order_append(r)
                size += 1
                mem += pr[r] + 1
                c = n + dec[r]
                due = cal_get(c)
                if due is None:
                    cal[c] = [r]
                else:
                    due.append(r)
                if track_admissions:
                    admitted(n, pr[r], dec[r])
        mem_append(mem)
        time_append(end)
        t = end
        if n == checkpoint:  # a progress report, a summary chunk, or both
            if marks.reached(n):
                marks.flush(n + 1, created)
                shift = _forget(summ, created, base, list(lists.values()), state, queue, order)
                if shift:
                    _renumber(shift, queue, order)
                    _shift_calendar(cal, lambda due, s=shift: [r - s for r in due if r >= s])
                    base += shift
            checkpoint = marks.next

    summary = marks.finish(created)
    if summary is not None:
        return summary
    live = [r for r in order if state[r] == IN]
    return _assemble(config, draws, created, state, completion, sat_arrival, sat_time, evictions_log,
                     (live, [adm[r] for r in live]), mem_log, time_log)


class _Checkpoints:
    """Where a loop stops on its way: progress reports (every ``progress_step`` iterations)
    and, with ``record="summary"``, the chunks it hands to the summary (every
    :data:`~.streaming.CHUNK` iterations), both counted from iteration 0, the first ones at or
    after ``config.first``.

    The loop compares its iteration with :attr:`next` only (one comparison per iteration) and
    calls :meth:`reached` there; the other arguments are the loop's lists and logs that
    :meth:`.LoopSummary.flush` reads (mutated in place by the loop, cleared by the flush).
    """

    def __init__(self, config: RunConfig, summ: LoopSummary | None, lists: dict[str, list],
                 admissions: tuple | None, evictions: tuple, memory: list, time: list,
                 first_token: list | None) -> None:
        first, step = config.first, config.progress_step
        self.config, self.summ = config, summ
        self.progress, self.step, self.N = config.progress, step, config.iterations
        self.logs = (lists, admissions, evictions, memory, time, first_token)
        report = step - 1 if config.progress is not None else -1  # -1: never
        while 0 <= report < first:
            report += step
        flush_at = CHUNK - 1 if summ is not None else -1
        while 0 <= flush_at < first:
            flush_at += CHUNK
        self.report, self.flush_at = report, flush_at
        self.next = self._earliest()

    def _earliest(self) -> int:
        """The next report or chunk end, or N if neither comes."""
        return min(x for x in (self.report, self.flush_at, self.N) if x >= 0)

    def reached(self, n: int) -> bool:
        """At iteration ``n == next``: report progress if due, move :attr:`next` on; return
        whether a summary chunk ends with iteration ``n`` (the caller then calls
        :meth:`flush` and forgets the requests that left)."""
        if n == self.report:
            self.progress(n + 1, self.N)
            self.report += self.step
        chunk = n == self.flush_at
        if chunk:
            self.flush_at += CHUNK
        self.next = self._earliest()
        return chunk

    def flush(self, n1: int, created: int) -> None:
        """Feed the summary iterations up to ``n1 - 1`` (ids from ``created`` not arrived yet)."""
        self.summ.flush(n1, created, *self.logs)

    def finish(self, created: int) -> Trajectory | None:
        """The end of the run: the last progress report; with ``record="summary"`` the last
        chunk (if any iteration is left) and the summary trajectory, None otherwise (the
        caller assembles the whole run)."""
        N, summ = self.N, self.summ
        if self.progress is not None:
            self.progress(N, N)
        if summ is None:
            return None
        if summ.n0 < N:
            self.flush(N, created)
        return summary_trajectory(self.config, "python", summ.acc)


def _forget(summ: LoopSummary, created: int, base: int, lists: list[list], state: list[int],
            waiting: Iterable[int], order: deque) -> int:
    """Forget the requests below the oldest live one (``waiting``, in the batch ``order``, or
    not arrived: ids from ``created``) in the stream and the loop's per-request ``lists``;
    return the shift, 0 when it is not worth it yet. The caller moves the slots ``>= shift``
    left in its structures down by the shift (smaller ones are stale entries of requests that
    left)."""
    oldest = created - base  # in slots
    oldest = min(oldest, min(waiting, default=oldest))
    live = [r for r in order if state[r] == IN]
    if live:
        oldest = min(oldest, min(live))
    if oldest < CHUNK:  # not worth the renumbering yet
        return 0
    return summ.drop(oldest + base, lists)


def _shift_calendar(cal: dict, move: Callable[[list], list]) -> None:
    """Replace each calendar entry by ``move(entry)``, dropping the ones left empty (in place)."""
    moved = {c: move(due) for c, due in cal.items()}
    cal.clear()
    cal.update((c, due) for c, due in moved.items() if due)


def _renumber(shift: int, *deques: deque) -> None:
    """Slots of the requests left in each deque, moved down by ``shift`` (in place)."""
    for d in deques:
        kept = [r - shift for r in d if r >= shift]
        d.clear()
        d.extend(kept)


def _per_iteration(iterations: np.ndarray, types: np.ndarray, N: int, K: int) -> np.ndarray:
    return np.bincount(iterations * K + types, minlength=N * K).reshape(N, K).astype(np.int64)


def _assemble(
    config, draws, created, state, completion, sat_arrival, sat_time, evictions, live, mem_log, time_log
) -> Trajectory:
    """Records and per-iteration arrays from the run's state and its eviction log: the
    admissions are the residences' starts (a member's stage is the iterations since its
    admission), its first token the iteration after its first admission."""
    N = config.iterations
    c = created
    if config.saturated:
        arrival = np.asarray(sat_arrival[:c], dtype=np.int64)
        arrival_time = np.asarray(sat_time[:c], dtype=float)
    else:
        arrival = np.asarray(draws.stream.iteration[:c], dtype=np.int64)
        arrival_time = np.asarray(draws.stream.time[:c], dtype=float)
    cols = _Columns.of(draws, c, completion, evictions)
    res_r, res_start, res_end = cols.residences(live, N)
    res_type = cols.type[res_r]
    first_adm = np.full(c, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_adm, res_r, np.maximum(res_start, 0))
    admitted = first_adm < np.iinfo(np.int64).max
    first_adm = np.where(admitted, first_adm, -1)
    first_token = np.where(admitted & (first_adm + 1 < N), first_adm + 1, -1)
    stages = np.asarray(draws.stages, dtype=np.int64)
    first_token[: stages.size] = np.where(stages > 0, 0, first_token[: stages.size])
    admissions = _per_iteration(np.maximum(res_start, 0), res_type, N, config.model.K)
    return _build(config, draws, cols, state, (res_r, res_start, res_end), arrival, arrival_time, first_adm,
                  first_token, admissions, mem_log, time_log)


class _Columns(NamedTuple):
    """The run's requests ``0 .. c - 1`` and evictions as arrays, converted once for both the
    assembly's steps."""

    type: np.ndarray
    decode: np.ndarray
    completion: np.ndarray
    done: np.ndarray  # the requests that completed
    ev_r: np.ndarray  # evictions: request, its residence's start, the iteration
    ev_a: np.ndarray
    ev_n: np.ndarray

    @classmethod
    def of(cls, draws: RunDraws, c: int, completion: list[int], evictions: tuple) -> _Columns:
        stream = draws.stream
        comp = np.asarray(completion[:c], dtype=np.int64)
        return cls(np.asarray(stream.type[:c], dtype=np.int64), np.asarray(stream.decode[:c], dtype=np.int64),
                   comp, np.flatnonzero(comp >= 0), *(np.asarray(x, dtype=np.int64) for x in evictions))

    def residences(self, live: tuple, N: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The residences in the batch (request, start, end): the completed ones (start:
        completion minus decode length), the evicted ones, the ones still there at the end
        (``live``: members and their residences' starts)."""
        done, comp = self.done, self.completion
        live_r, live_a = (np.asarray(x, dtype=np.int64) for x in live)
        return (np.concatenate([done, self.ev_r, live_r]),
                np.concatenate([comp[done] - self.decode[done], self.ev_a, live_a]),
                np.concatenate([comp[done], self.ev_n, np.full(live_r.size, N, dtype=np.int64)]))


def _build(config, draws, cols, state, residences, arrival, arrival_time, first_adm, first_token, admissions,
           mem_log, time_log, counts=None) -> Trajectory:
    r"""What both paths' assemblies share: the records, the per-iteration counts, the queue
    from the balance :math:`Q_n = \sum_{m \le n} (A_m - R_m + E_m - \text{Adm}_m)` and the
    trajectory; the stage array comes from the ``residences`` (FCFS) or from the WAIT path's
    sparse ``counts`` (one dictionary (type, stage) -> members per iteration)."""
    N, K = config.iterations, config.model.K
    stream = draws.stream
    typ, decode, comp, done, ev_r, ev_n = cols.type, cols.decode, cols.completion, cols.done, cols.ev_r, cols.ev_n
    c = typ.size
    st = np.asarray(state[:c], dtype=np.int64)
    initial = np.zeros(c, dtype=bool)
    initial[: len(draws.stages)] = True
    rejected = st == REJECTED
    time = np.asarray(time_log, dtype=float)
    records = RequestRecords.build(
        type=typ,
        prompt=stream.prompt[:c],
        decode=decode,
        arrival=arrival,
        admission=first_adm,
        first_token=first_token,
        completion=comp,
        evicted=np.bincount(ev_r, minlength=c),
        arrival_time=arrival_time,
        initial=initial,
        rejected=rejected,
        time=time,
    )
    arrivals = _per_iteration(arrival, typ, N, K)
    rejections = _per_iteration(arrival[rejected], typ[rejected], N, K)
    completions = _per_iteration(comp[done], typ[done], N, K)
    evicted = _per_iteration(ev_n, typ[ev_r], N, K)
    queue = np.cumsum(arrivals - rejections + evicted - admissions, axis=0)
    S = config.stages if config.stages is not None else int(decode.max(initial=1))
    arrays = {
        "queue": queue,
        "memory": np.asarray(mem_log, dtype=np.int64),
        "arrivals": arrivals,
        "admissions": admissions,
        "completions": completions,
        "evictions": evicted,
        "rejections": rejections,
        "time": time,
    }
    res_r, res_start, res_end = residences
    batch = None if counts is None else _sparse_stages(counts, N, K, S)
    return build_trajectory(config, "python", arrays, records, Residences(typ[res_r], res_start, res_end), S,
                            batch=batch)


def run_scheduled(config: RunConfig) -> Trajectory:
    r"""Simulate a WAIT or Nested WAIT model ([ALSW25]) with the fast loop (same trajectory as
    the SimPy engine).

    The plan of each admission step comes from the step shared with the SimPy engine
    (:func:`~.scheduling.admission_plan`, :func:`~.scheduling.select_admissions`,
    :meth:`~.scheduling.Plan.go_flags`); only the bookkeeping is this loop's own:

    * **A clock instead of per-member stages.** The clock :math:`C` counts the iterations in
      which some member executes; a member holds an offset :math:`e` and its stage is
      :math:`C - e`. An iteration in which every member executes (WAIT's batch formed)
      costs :math:`O(1)` plus its completions, one in which none does (WAIT stalled) costs
      nothing; in an iteration where some members stall (Nested WAIT's entries and
      ``run_from``) each stalled member's offset grows by one, :math:`O(B)`.
    * **Completions** come from a calendar keyed by clock value :math:`e + l_1` (an entry made
      stale by a stall or an eviction is skipped, as in the FCFS loop).
    * **Eviction.** Along the admission order the stages never increase: a member admitted
      earlier entered stage 0 earlier and is never overtaken (a stall stops every stage from
      ``run_from`` up, and an entry releases its oldest members first). So "lowest stage
      first, most recently admitted first" is the end of the admission order: eviction pops
      it, as in the FCFS loop.
    * **The batch by (type, stage)**, which the plan reads, is kept as counts by (type,
      offset): :math:`O(\text{groups})` per iteration, a group being the members of one type
      admitted in one step and stalled alike.
    * The waiting room is one deque per type of (position, id); positions decrease at the
      head (evicted requests) and increase at the back (arrivals), so they order the whole
      room, and a plan's admissions are a prefix of each type's deque.
    * The stage counts after each admission step are logged sparsely and the stage array is
      built from them at the end (``record="summary"``: no log; the batch sizes are the
      balance of admissions, completions and evictions, :mod:`.streaming`).
    """
    model = config.model
    check_open_system(model, config.saturated)
    N, first, K = config.iterations, config.first, model.K
    M, cap = config.M, config.waiting_cap
    skip_after_eviction = not model.admit_after_eviction
    wall, d0, d1 = config.wall_clock, config.d0, config.d1
    draws = RunDraws(config)
    stream, source = draws.stream, draws.source
    rule = admission_rule(model, M, config.B)
    typ, pr, dec = stream.type, stream.prompt, stream.decode
    summ = LoopSummary(config, stream, draws.stages) if config.record == "summary" else None
    base = 0  # slot = id - base, as in run_fast

    state: list[int] = []
    offset: list[int] = []  # stage = clock - offset while in the batch
    entered: list[int] = []  # iteration of the latest admission minus the stage entered at
    first_adm: list[int] = []
    first_tok: list[int] = []
    completion: list[int] = []

    def grow() -> None:
        extra = len(typ) - len(state)
        state.extend([WAIT] * extra)
        offset.extend([0] * extra)
        entered.extend([-1] * extra)
        first_adm.extend([-1] * extra)
        first_tok.extend([-1] * extra)
        completion.extend([-1] * extra)

    grow()
    queues: list[deque[tuple[int, int]]] = [deque() for _ in range(K)]
    waiting = [0] * K
    queued = 0
    head = tail = 0  # next positions at the head (decreasing) and the back of the waiting room
    order: deque[int] = deque()  # batch members in admission order (stale entries skipped)
    cal: dict[int, list[tuple[int, int]]] = {}  # clock value -> (member, its entry) completing then
    groups: dict[tuple[int, int], int] = {}  # (type, offset) -> members
    fresh: list[int] = []  # members at stage 0, not executed yet
    adm_n: list[int] = []  # admissions: iteration, type
    adm_k: list[int] = []
    ev_r: list[int] = []  # evictions: request, its entry, the iteration
    ev_a: list[int] = []
    ev_n: list[int] = []
    count_log: list[dict[tuple[int, int], int]] = []  # stage counts after each admission step
    mem_log: list[float] = []
    time_log: list[float] = []
    clock = 0
    size = 0
    mem = 0
    created = len(typ)

    def schedule(r: int, c: int) -> None:
        """Member ``r`` (this residence: ``entered[r]``) completes at clock ``c`` unless stalled."""
        due = cal.get(c)
        if due is None:
            cal[c] = [(r, entered[r])]
        else:
            due.append((r, entered[r]))

    def join(r: int, k: int, e: int) -> None:
        """Member ``r`` of type ``k`` gets offset ``e``: its group and its completion."""
        offset[r] = e
        key = (k, e)
        groups[key] = groups.get(key, 0) + 1
        schedule(r, e + dec[r])

    def leave(r: int, k: int) -> None:
        """Member ``r`` of type ``k`` leaves its group (completion, eviction)."""
        key = (k, offset[r])
        left = groups[key] - 1
        if left:
            groups[key] = left
        else:
            del groups[key]

    for r, j in enumerate(draws.stages):  # the initial batch, highest stage first
        state[r] = IN
        entered[r] = -j
        first_adm[r] = 0
        if j > 0:
            first_tok[r] = 0
        else:
            fresh.append(r)
        join(r, typ[r], -j)
        order.append(r)
        size += 1
        mem += pr[r] + 1 + j
        adm_n.append(0)
        adm_k.append(typ[r])
    everyone: bool | None = True  # the initial batch executes at iteration 1
    live: list[int] = []
    flags: list[bool] = []
    go_tokens = mem
    if first == 1:
        mem_log.append(mem)
        time_log.append(0.0)
        count_log.append({(k, clock - e): c for (k, e), c in groups.items()})

    lists = {"state": state, "completion": completion}  # the summary's view (mutated in place)
    evictions_log, admissions_log = (ev_r, ev_a, ev_n), (adm_n, adm_k)
    marks = _Checkpoints(config, summ, lists, admissions_log, evictions_log, mem_log, time_log, first_tok)
    checkpoint = marks.next
    t = 0.0 if (wall or first == 1) else -1.0
    for n in range(first, N):
        end = t + (d0 + d1 * go_tokens) if wall else float(n)
        # 1. execute the members the last plan let run (everyone, no one, or by flags)
        if everyone is not False:
            clock += 1
            if everyone:
                mem += size
            else:  # stalled members keep their stage: their offset follows the clock
                stalled = [r for r, go in zip(live, flags, strict=True) if not go]
                mem += len(live) - len(stalled)
                shifted = Counter(zip(map(typ.__getitem__, stalled), map(offset.__getitem__, stalled), strict=True))
                for r in stalled:
                    offset[r] += 1
                for key, c in shifted.items():  # all out first: (k, e + 1) may be moving too
                    left = groups[key] - c
                    if left:
                        groups[key] = left
                    else:
                        del groups[key]
                for (k, e), c in shifted.items():
                    key = (k, e + 1)
                    groups[key] = groups.get(key, 0) + c
            for r in fresh:  # stage 0 executed: the first token
                if first_tok[r] < 0:
                    first_tok[r] = n
            fresh = []
            due = cal.pop(clock, None)
            if due is not None:
                for r, since in due:
                    if state[r] != IN or entered[r] != since:
                        continue  # completed or evicted since (a later residence has its own entry)
                    c = offset[r] + dec[r]
                    if c > clock:  # stalled since it was scheduled: later
                        schedule(r, c)
                    else:
                        state[r] = DONE
                        completion[r] = n
                        size -= 1
                        mem -= pr[r] + 1 + dec[r]  # it gained a token, then frees l0 + 1 + l1
                        leave(r, typ[r])
                while order and state[order[0]] != IN:
                    order.popleft()
        # 2. arrive
        lo, hi = source.take(n, t, end)
        if hi > lo:
            if len(typ) > len(state):
                grow()
            created = hi
            for r in range(lo - base, hi - base):
                if queued >= cap:
                    state[r] = REJECTED
                    continue
                k = typ[r]
                queues[k].append((tail, r))
                tail += 1
                waiting[k] += 1
                queued += 1
        # 3. evict: the end of the admission order is the lowest stage, most recently admitted
        evictions = 0
        while mem > M:
            r = order.pop()
            if state[r] != IN:
                continue
            k = typ[r]
            mem -= pr[r] + 1 + clock - offset[r]
            state[r] = WAIT
            size -= 1
            leave(r, k)
            head -= 1
            queues[k].appendleft((head, r))
            waiting[k] += 1
            queued += 1
            ev_r.append(r)
            ev_a.append(entered[r])
            ev_n.append(n)
            evictions += 1
        # 4. admit: the shared plan
        counts = {(k, clock - e): c for (k, e), c in groups.items()}
        plan = admission_plan(rule, waiting, counts)
        if not (evictions and skip_after_eviction):
            views = [((p, r, pr[r]) for p, r in q) for q in queues]
            for r in select_admissions(rule, plan, mem, size, views):
                k = typ[r]
                queues[k].popleft()  # the admissions of a type are a prefix of its queue
                waiting[k] -= 1
                queued -= 1
                state[r] = IN
                entered[r] = n
                if first_adm[r] < 0:
                    first_adm[r] = n
                join(r, k, clock)
                order.append(r)
                fresh.append(r)
                size += 1
                mem += pr[r] + 1
                adm_n.append(n)
                adm_k.append(k)
                counts[k, 0] = counts.get((k, 0), 0) + 1
        everyone = plan.uniform()
        if everyone is None:
            live = [r for r in order if state[r] == IN]
            order = deque(live)  # drop the completed members while at it
            flags = plan.go_flags([clock - offset[r] for r in live])
            if wall:
                go_tokens = sum(pr[r] + 1 + clock - offset[r] for r, go in zip(live, flags, strict=True) if go)
            if not any(flags):
                everyone = False
        elif wall:
            go_tokens = mem if everyone else 0
        mem_log.append(mem)
        time_log.append(end)
        if summ is None:
            count_log.append(counts)
        t = end
        if n == checkpoint:  # a progress report, a summary chunk, or both
            if marks.reached(n):
                marks.flush(n + 1, created)
                shift = _forget(summ, created, base, [state, offset, entered, first_adm, first_tok, completion],
                                state, (r for q in queues for _, r in q), order)
                if shift:
                    _renumber_scheduled(shift, queues, order, cal, fresh, live)
                    base += shift
            checkpoint = marks.next

    summary = marks.finish(created)
    if summary is not None:
        return summary
    live = [r for r in order if state[r] == IN]
    return _assemble_scheduled(config, draws, created, state, first_adm, first_tok, completion, admissions_log,
                               evictions_log, (live, [entered[r] for r in live]), count_log, mem_log, time_log)


def _renumber_scheduled(shift: int, queues: list[deque], order: deque, cal: dict, fresh: list[int],
                        live: list[int]) -> None:
    """The WAIT path's structures after :func:`_forget`: its waiting room is one deque of
    (position, slot) per type, its calendar holds (slot, entry) pairs, and ``fresh`` and
    ``live`` (members of the last plan, all in the batch) hold slots too (in place)."""
    for q in queues:
        kept = [(p, r - shift) for p, r in q]
        q.clear()
        q.extend(kept)
    _renumber(shift, order)
    _shift_calendar(cal, lambda due: [(r - shift, e) for r, e in due if r >= shift])
    fresh[:] = [r - shift for r in fresh]
    live[:] = [r - shift for r in live]


def _assemble_scheduled(config, draws, created, state, first_adm, first_tok, completion, admissions, evictions,
                        live, counts, mem_log, time_log) -> Trajectory:
    """Records, per-iteration arrays and the stage array of a scheduled run: the first
    admissions and first tokens as the loop kept them, the admissions from its log, the stage
    array from its sparse counts."""
    N, K = config.iterations, config.model.K
    c = created
    arrival = np.asarray(draws.stream.iteration[:c], dtype=np.int64)
    arrival_time = np.asarray(draws.stream.time[:c], dtype=float)
    cols = _Columns.of(draws, c, completion, evictions)
    adm_n, adm_k = (np.asarray(x, dtype=np.int64) for x in admissions)
    return _build(config, draws, cols, state, cols.residences(live, N), arrival, arrival_time, first_adm[:c],
                  first_tok[:c], _per_iteration(adm_n, adm_k, N, K), mem_log, time_log, counts)


def _sparse_stages(counts: list[dict[tuple[int, int], int]], N: int, K: int, S: int) -> np.ndarray:
    """The stage array ``(N, K, S)`` from one dictionary (type, stage) -> members per iteration
    (``record="summary"`` streams instead: streaming.py)."""
    batch = np.zeros((N, K, S), dtype=np.int64)
    groups = np.fromiter(map(len, counts), dtype=np.int64, count=len(counts))
    if groups.sum():
        keys = np.array(list(chain.from_iterable(counts)), dtype=np.int64).reshape(-1, 2)
        values = np.fromiter(chain.from_iterable(c.values() for c in counts), dtype=np.int64, count=int(groups.sum()))
        rows = np.repeat(np.arange(len(counts)), groups)
        batch[rows, keys[:, 0], keys[:, 1]] = values
    return batch
