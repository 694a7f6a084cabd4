r"""The SimPy engine: the reference simulator of the model chapter, section 2.

Two SimPy processes share the environment's clock (seconds in wall-clock runs, iterations
in slotted runs):

* :meth:`EventsEngine.iterations` runs the forward passes. Iteration :math:`n` lasts
  :math:`s_n = d_0 + d_1 Z_n` seconds, :math:`Z_n` the KV tokens of the batch it executes
  (one time unit in slotted runs), and then, in this order: **execute** (every member
  advances one stage; members that executed their last stage complete and free their
  memory), **arrive** (wait until the arrival process has put this interval's arrivals in
  the queue), **evict** (while memory exceeds :math:`M`: least-progressed first, i.e.
  lowest stage first regardless of type, and within a stage the most recently admitted
  first; an evicted request loses its KV and its progress and rejoins the head of the
  queue), **admit** (the policy's rule moves requests from the head of the queue into
  stage 0; evicted requests are at the head, so they go first).
* :meth:`EventsEngine.arrivals` (open systems) receives each iteration's interval and
  puts its arrivals into the back of the queue at their arrival times; an arrival that
  finds ``waiting_cap`` requests waiting is rejected and counted.

The queue is a :class:`~.waiting_room.WaitingRoom`: one FIFO per type whose positions order
the whole room, so WAIT and Nested WAIT read it by type at a cost independent of its length
(an overloaded run costs time linear in its horizon).

Saturated input has no arrival process: the admission step takes requests from an
infinite backlog once the queue of evicted requests is empty.

What the run keeps: every request it creates and per-iteration logs of the whole run,
assembled into a :class:`Trajectory` at the end; with ``record="summary"`` the logs hold one
chunk of :data:`~.streaming.CHUNK` iterations, and at the end of each chunk
(:meth:`EventsEngine.flush`) the chunk and the requests that completed in it go to the
summary (:class:`~.summary.RunAccumulator`, which every engine feeds), the logs are cleared
and the requests are forgotten: the queue and the batch hold the live ones, so memory does
not grow with the horizon.

Sources: [ADLS26] section 2 (the discrete-time model and the iteration order), [ALSW25]
(linear iteration time), the model chapter, sections 2-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from .config import RunConfig
from .draws import RunDraws
from .policies import admission_rule
from .result import build_trajectory, summary_trajectory
from .scheduling import ScheduledRule, admission_plan, check_open_system, select_admissions
from .streaming import CHUNK
from .summary import RunAccumulator
from .trajectory import RequestRecords, Residences, Trajectory
from .waiting_room import WaitingRoom

__all__ = ["Request", "EventsEngine", "run_events"]


@dataclass(eq=False, slots=True)
class Request:
    """One request: its drawn lengths, where it is, and its history."""

    id: int
    type: int
    prompt: int
    decode: int
    arrival: int
    arrival_time: float
    initial: bool = False
    stage: int = 0  # iterations executed since its (latest) admission
    admission: int = -1  # first admission
    admitted_at: int = -1  # latest admission
    seq: int = -1  # admission order: larger = more recently admitted
    first_token: int = -1
    completion: int = -1
    evicted: int = 0
    rejected: bool = False
    go: bool = True  # executes in the next iteration (False: stalled by a WAIT policy)
    first_token_time: float = float("nan")  # record="summary": the end of iteration first_token

    @property
    def tokens(self) -> int:
        r"""KV tokens held at its stage: :math:`w_j = l_0 + 1 + j`."""
        return self.prompt + 1 + self.stage


@dataclass(frozen=True)
class Interval:
    """The wall-clock interval ``[start, end)`` of iteration ``n``."""

    n: int
    start: float
    end: float


class EventsEngine:
    """A run of the SimPy engine; :meth:`run` returns the :class:`Trajectory`."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.model = config.model
        self.draws = RunDraws(config)
        self.stream = self.draws.stream
        self.rule = admission_rule(self.model, config.M, config.B)
        self.scheduled = isinstance(self.rule, ScheduledRule)  # plans by type, may stall members
        if self.scheduled:
            check_open_system(self.model, config.saturated)
        self.open = not config.saturated
        start = 0.0 if (config.wall_clock or config.initial is not None) else -1.0  # slotted: iteration n ends at n
        self.env = simpy.Environment(initial_time=start)
        self.intervals = simpy.Store(self.env)
        self.arrived = simpy.Store(self.env)
        self.queue: WaitingRoom[Request] = WaitingRoom(self.model.K)  # one FIFO per type, in queue order
        self.batch: list[Request] = []
        self.requests: list[Request] = []  # every request created (record="summary": none, see below)
        self.memory = 0
        self.next_seq = 0
        # record="summary" streams: the logs below hold one chunk of iterations (row n - n0), which
        # flush() feeds to the summary with the requests that completed in it, then forgets
        self.streaming = config.record == "summary"
        N, K = config.iterations, self.model.K
        rows = min(CHUNK, N) if self.streaming else N
        self.n0 = 0  # iteration of the logs' first row
        self.log = {
            name: np.zeros((rows, K), dtype=np.int64)
            for name in ("arrivals", "admissions", "completions", "evictions", "rejections", "queue")
        }
        self.memory_log = np.zeros(rows, dtype=np.int64)
        self.time = np.zeros(rows, dtype=float)
        # stalls (WAIT): stages are not n - admission, so the stage counts are recorded (summary: sizes do)
        self.full = config.record == "full" or (self.scheduled and config.record != "summary")
        self.stage_counts: list[np.ndarray] = []  # record="full": stage counts of each iteration
        self.sizes = np.zeros((rows, K), dtype=np.int64)  # else: batch members by type
        self.evicted_log: list[tuple[int, int, int]] = []  # (type, admission, iteration); not when streaming
        self.accumulator = RunAccumulator(N, config.warmup, config.wall_clock) if self.streaming else None
        self.started: list[Request] = []  # streaming: first token in the current chunk
        self.finished: list[Request] = []  # streaming: completed in the current chunk
        self.created = self.stream.end  # open systems: id of the next arrival to join
        if config.initial is not None:
            self.place_initial_batch()

    # -- the processes -------------------------------------------------------------
    def iterations(self):
        """The forward passes, one loop pass per iteration, in the order of the model chapter, section 2."""
        env = self.env
        for n in range(self.config.first, self.config.iterations):
            duration = self.duration()  # s_n = d0 + d1 * Z_n
            if self.open:
                self.intervals.put(Interval(n, env.now, env.now + duration))
            yield env.timeout(duration)  # the forward pass
            self.execute(n)  # 1. execute
            if self.open:
                yield self.arrived.get()  # 2. arrive: the interval's arrivals have joined
            evicted = self.evict(n)  # 3. evict
            self.admit(n, evicted)  # 4. admit
            self.record(n)
            if self.config.progress is not None and (n + 1) % self.config.progress_step == 0:
                self.config.progress(n + 1, self.config.iterations)

    def arrivals(self):
        """2. Arrive: each interval's arrivals join the back of the queue at their times."""
        env, stream = self.env, self.stream
        while True:
            interval = yield self.intervals.get()
            lo, hi = self.draws.source.take(interval.n, interval.start, interval.end)
            for i in range(lo, hi):
                when = stream.time[i - stream.base] if self.config.wall_clock else interval.start
                # one type with a per-iteration law: the arrivals come in draw order (as in a
                # slotted run), so a later one may carry an earlier time: no wait then
                yield env.timeout(max(when - env.now, 0.0))
                self.join(self.new_request(i, interval.n, stream.time[i - stream.base]))
            self.created = hi
            self.arrived.put(interval.n)

    # -- the steps -------------------------------------------------------------------
    def duration(self) -> float:
        r"""Length of the next iteration: :math:`d_0 + d_1 Z_n` seconds (slotted: 1)."""
        if not self.config.wall_clock:
            return 1.0
        if self.scheduled:  # only the members that execute hold the iteration's KV reads
            return self.config.d0 + self.config.d1 * sum(r.tokens for r in self.batch if r.go)
        return self.config.d0 + self.config.d1 * self.memory

    def execute(self, n: int) -> None:
        """1. Execute: every member advances one stage; members that executed their last
        stage complete and free their memory."""
        staying = []
        for r in self.batch:
            if not r.go:  # stalled: keeps its stage and its KV cache
                staying.append(r)
                continue
            self.memory -= r.tokens
            if r.stage == 0 and r.first_token < 0:
                r.first_token = n
                if self.streaming:
                    self.started.append(r)
            r.stage += 1
            if r.stage == r.decode:
                r.completion = n
                self.log["completions"][n - self.n0, r.type] += 1
                if self.streaming:
                    self.finished.append(r)
            else:
                self.memory += r.tokens
                staying.append(r)
        self.batch = staying

    def join(self, r: Request) -> None:
        """An arrival joins the back of the queue, or is rejected if ``waiting_cap`` wait."""
        self.keep(r)
        self.log["arrivals"][r.arrival - self.n0, r.type] += 1
        if len(self.queue) >= self.config.waiting_cap:
            r.rejected = True
            self.log["rejections"][r.arrival - self.n0, r.type] += 1
        else:
            self.queue.append(r)

    def evict(self, n: int) -> int:
        """3. Evict while memory exceeds M: lowest stage first regardless of type, within a
        stage the most recently admitted first; victims lose their progress and rejoin the
        head of the queue. Returns the number of evictions."""
        count = 0
        if self.memory <= self.config.M:
            return count
        for r in sorted(self.batch, key=lambda r: (r.stage, -r.seq)):
            if self.memory <= self.config.M:
                break
            self.batch.remove(r)
            self.memory -= r.tokens
            self.rule.evicted(n, r.admitted_at, r.prompt, r.decode)
            if not self.streaming:
                self.evicted_log.append((r.type, r.admitted_at, n))
            r.stage = 0
            r.evicted += 1
            self.queue.appendleft(r)
            self.log["evictions"][n - self.n0, r.type] += 1
            count += 1
        return count

    def admit(self, n: int, evicted: int) -> None:
        """4. Admit: the rule takes requests from the head of the queue (saturated input:
        then from the backlog) until it refuses one. Skipped after an eviction when the
        model says ``admit_after_eviction=False``."""
        if self.scheduled:
            self.admit_planned(n, evicted)
            return
        self.rule.begin(n, self.memory, len(self.batch))
        if evicted and not self.model.admit_after_eviction:
            return
        stream, backlog = self.stream, self.draws.backlog
        while True:
            r = self.queue.head()
            if r is not None:
                if not self.rule.allows(self.memory, len(self.batch), r.prompt, r.decode):
                    return
                self.queue.take(r)
            elif backlog is not None:
                i = backlog.head() - stream.base
                if not self.rule.allows(self.memory, len(self.batch), stream.prompt[i], stream.decode[i]):
                    return
                r = self.new_request(backlog.pop(), n, self.env.now)
                self.keep(r)
                self.log["arrivals"][n - self.n0, r.type] += 1
            else:
                return
            self.enter(r, n, stage=0)
            self.rule.admitted(n, r.prompt, r.decode)

    def admit_planned(self, n: int, evicted: int) -> None:
        """4. Admit under WAIT or Nested WAIT: the shared admission step of :mod:`.scheduling`
        (:func:`~.scheduling.admission_plan`, :func:`~.scheduling.select_admissions`,
        :meth:`~.scheduling.Plan.go_flags`) says what to admit and which members execute next
        iteration.

        The waiting room is read by type (:class:`~.waiting_room.WaitingRoom`): its counts per
        type and, lazily, the heads of the types' FIFOs, so the step costs what it admits plus
        :math:`O(K + B)`, not the length of the queue."""
        counts: dict[tuple[int, int], int] = {}
        for r in self.batch:
            key = (r.type, r.stage)
            counts[key] = counts.get(key, 0) + 1
        plan = admission_plan(self.rule, self.queue.counts(), counts)
        if not (evicted and not self.model.admit_after_eviction):
            chosen = select_admissions(self.rule, plan, self.memory, len(self.batch), self.queue.views())
            for r in chosen:  # a prefix of each type's FIFO
                self.enter(self.queue.take(r), n, stage=0)
        members = sorted(self.batch, key=lambda r: r.seq)  # admission order, oldest first
        for r, go in zip(members, plan.go_flags([r.stage for r in members]), strict=True):
            r.go = go

    def enter(self, r: Request, n: int, stage: int) -> None:
        """Put ``r`` in the batch at ``stage`` (admitted at iteration ``n - stage``)."""
        r.stage = stage
        r.admitted_at = n - stage
        if r.admission < 0:
            r.admission = max(n, 0)
        r.seq = self.next_seq
        self.next_seq += 1
        self.batch.append(r)
        self.memory += r.tokens
        self.log["admissions"][max(n, 0) - self.n0, r.type] += 1

    def record(self, n: int) -> None:
        """Observe the state after admission at iteration ``n`` (streaming: at the end of a
        chunk or of the run, :meth:`flush` it)."""
        K = self.model.K
        row = n - self.n0
        self.memory_log[row] = self.memory
        self.time[row] = self.env.now
        self.log["queue"][row] = self.queue.counts()
        if self.full:
            self.stage_counts.append(np.bincount([r.stage * K + r.type for r in self.batch], minlength=K))
        else:
            for r in self.batch:
                self.sizes[row, r.type] += 1
        if self.streaming and (row + 1 == self.time.size or n + 1 == self.config.iterations):
            self.flush(n + 1)

    def keep(self, r: Request) -> None:
        """A request is created: the run keeps it for its records (streaming: the queue and the
        batch hold it while it is live, and :meth:`flush` feeds it to the summary once completed)."""
        if not self.streaming:
            self.requests.append(r)

    def flush(self, end: int) -> None:
        """``record="summary"``: feed iterations ``n0 .. end - 1`` (the logs) and the requests
        that completed in them to the summary (:class:`~.summary.RunAccumulator`, the one the
        other engines and the whole-run summary feed), then clear the logs and forget the drawn
        requests already created (:meth:`~.draws.RequestStream.drop`: a :class:`Request` carries
        what the run still needs). First-token and completion times are the ends of their
        iterations, read from the chunk's ``time`` as the records read them from the run's."""
        m, n0 = end - self.n0, self.n0
        log, time = self.log, self.time[:m]
        self.accumulator.add_iterations(log["completions"][:m], log["arrivals"][:m], log["rejections"][:m],
                                        log["evictions"][:m], log["queue"][:m], self.sizes[:m],
                                        self.memory_log[:m], time)
        for r in self.started:
            r.first_token_time = float(time[r.first_token - n0])
        done = self.finished
        if done:
            def column(attribute: str, dtype: type) -> np.ndarray:
                return np.array([getattr(r, attribute) for r in done], dtype=dtype)

            self.accumulator.add_requests(
                column("arrival", np.int64), column("completion", np.int64), column("decode", np.int64),
                column("evicted", np.int64), column("initial", bool), column("arrival_time", float),
                column("first_token_time", float), time[column("completion", np.int64) - n0])
        self.started, self.finished = [], []
        for array in (*log.values(), self.sizes, self.memory_log, self.time):
            array.fill(0)
        self.n0 = end
        backlog = self.draws.backlog
        self.stream.drop(backlog.next if backlog is not None else self.created)

    # -- setup and result --------------------------------------------------------------
    def new_request(self, i: int, n: int, time: float) -> Request:
        s, j = self.stream, i - self.stream.base
        return Request(id=i, type=s.type[j], prompt=s.prompt[j], decode=s.decode[j], arrival=n, arrival_time=time)

    def place_initial_batch(self) -> None:
        """Iteration 0 is the given batch (ids in admission order: highest stage first)."""
        for i, stage in enumerate(self.draws.stages):
            r = self.new_request(i, 0, 0.0)
            r.initial = True
            if stage > 0:
                r.first_token = 0
                r.first_token_time = 0.0  # before iteration 0 (the records say the same)
            self.keep(r)
            self.log["arrivals"][0, r.type] += 1
            self.enter(r, 0, stage=stage)
            self.rule.present(-stage, r.prompt, r.decode)
        self.record(0)

    def run(self) -> Trajectory:
        self.env.process(self.iterations())
        if self.open:
            self.env.process(self.arrivals())
        self.env.run()
        if self.config.progress is not None:
            self.config.progress(self.config.iterations, self.config.iterations)
        if self.streaming:
            return summary_trajectory(self.config, "simpy", self.accumulator)
        return self.trajectory()

    def trajectory(self) -> Trajectory:
        config, K, N = self.config, self.model.K, self.config.iterations
        reqs = sorted(self.requests, key=lambda r: r.id)
        S = config.stages if config.stages is not None else max([r.decode for r in reqs], default=1)
        batch = None
        if self.full:
            batch = np.zeros((N, K, S), dtype=np.int64)
            for n, counts in enumerate(self.stage_counts):
                full = np.zeros(K * S, dtype=np.int64)
                full[: counts.size] = counts
                batch[n] = full.reshape(S, K).T
        records = RequestRecords.build(
            type=[r.type for r in reqs],
            prompt=[r.prompt for r in reqs],
            decode=[r.decode for r in reqs],
            arrival=[r.arrival for r in reqs],
            admission=[r.admission for r in reqs],
            first_token=[r.first_token for r in reqs],
            completion=[r.completion for r in reqs],
            evicted=[r.evicted for r in reqs],
            arrival_time=[r.arrival_time for r in reqs],
            initial=[r.initial for r in reqs],
            rejected=[r.rejected for r in reqs],
            time=self.time,
        )
        done = [r for r in reqs if r.completion >= 0]
        ev = self.evicted_log
        residences = Residences(
            [r.type for r in done] + [e[0] for e in ev] + [r.type for r in self.batch],
            [r.completion - r.decode for r in done] + [e[1] for e in ev] + [r.admitted_at for r in self.batch],
            [r.completion for r in done] + [e[2] for e in ev] + [N] * len(self.batch),
        )
        arrays = {
            "queue": self.log["queue"],
            "memory": self.memory_log,
            "arrivals": self.log["arrivals"],
            "admissions": self.log["admissions"],
            "completions": self.log["completions"],
            "evictions": self.log["evictions"],
            "rejections": self.log["rejections"],
            "time": self.time,
        }
        if not self.full:
            arrays["batch_sizes"] = self.sizes
        return build_trajectory(config, "simpy", arrays, records, residences, S, batch=batch)


def run_events(config: RunConfig) -> Trajectory:
    """Simulate ``config`` with the SimPy engine."""
    return EventsEngine(config).run()
