r"""``record="summary"`` on the Python fast loop: the run fed to the summary chunk by chunk.

The loop (:mod:`.fast`) keeps its usual per-request lists, indexed by request id minus the
stream's base (:class:`~.draws.RequestStream`), and its logs of the current chunk (memory,
time, evictions; admissions on the WAIT path). Every :data:`CHUNK` iterations it calls
:meth:`LoopSummary.flush`, which

1. rebuilds the chunk's per-iteration counts by type from the events of the chunk, as the
   whole-run assembly does (:func:`~.fast.run_fast`'s ``_assemble``): arrivals and rejections
   of the requests created in the chunk, admissions, completions, evictions; the queue and
   the batch sizes are the running balances
   :math:`Q_n = Q_{n_0 - 1} + \sum_{n_0 \le m \le n} (A_m - R_m + E_m - \text{Adm}_m)` and
   :math:`X_n = X_{n_0 - 1} + \sum_{n_0 \le m \le n} (\text{Adm}_m - C_m - E_m)`;
2. feeds them and the requests that completed in the chunk to the one summary mechanism,
   :class:`~.summary.RunAccumulator` (which the compiled kernel and the whole-run summary
   feed too), so the summary equals the ``record="iterations"`` one key for key;
3. forgets the requests below the oldest one still waiting, in the batch or not yet
   arrived (:meth:`~.draws.RequestStream.drop`), and renumbers the loop's structures.

What the run holds is then the chunk's logs, the summary's accumulators and the requests
from the oldest live one on: it depends on the live state, not on the horizon.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .summary import RunAccumulator

__all__ = ["CHUNK", "LoopSummary", "WAIT", "IN", "DONE", "REJECTED"]

WAIT, IN, DONE, REJECTED = 0, 1, 2, 3
"""States of a request in the Python loop's lists: waiting (or not arrived), in the batch,
completed, turned away by the waiting-room cap."""

CHUNK = 4096
"""Iterations between two flushes of a ``record="summary"`` run of the Python loop."""


class LoopSummary:
    """The streaming summary of one Python-loop run (see the module docstring).

    Besides the accumulator it keeps, for the requests the stream holds, what the loop does not
    keep itself: the first admission, the first-token iteration and time, and the number of
    evictions (arrays aligned with the stream's base).
    """

    def __init__(self, config: Any, stream: Any, stages: list[int]) -> None:
        self.config = config
        self.stream = stream
        self.K = config.model.K
        self.N = config.iterations
        self.acc = RunAccumulator(config.iterations, config.warmup, config.wall_clock)
        self.n0 = 0  # first iteration not fed yet
        self.c0 = 0  # first id not yet counted as arrived
        self.n_initial = len(stages)
        self.stages = np.asarray(stages, dtype=np.int64)
        self.queue = np.zeros(self.K, dtype=np.int64)  # queue and batch by type after admission at n0 - 1
        self.batch = np.zeros(self.K, dtype=np.int64)
        self.fadm = np.zeros(0, dtype=np.int64)
        self.ftok = np.zeros(0, dtype=np.int64)
        self.ftt = np.zeros(0)
        self.nev = np.zeros(0, dtype=np.int64)

    # -- per-request arrays aligned with the stream ------------------------------------------
    def _window(self, size: int) -> None:
        extra = size - self.fadm.size
        if extra > 0:
            self.fadm = np.concatenate([self.fadm, np.full(extra, -1, dtype=np.int64)])
            self.ftok = np.concatenate([self.ftok, np.full(extra, -1, dtype=np.int64)])
            self.ftt = np.concatenate([self.ftt, np.full(extra, np.nan)])
            self.nev = np.concatenate([self.nev, np.zeros(extra, dtype=np.int64)])

    def _counts(self, iterations: np.ndarray, types: np.ndarray, m: int) -> np.ndarray:
        idx = (np.asarray(iterations, dtype=np.int64) - self.n0) * self.K + np.asarray(types, dtype=np.int64)
        return np.bincount(idx, minlength=m * self.K).reshape(m, self.K)

    # -- one chunk ------------------------------------------------------------------------
    def flush(self, n1: int, created: int, lists: dict[str, list], admissions: tuple | None,
              evictions: tuple[list, list, list], memory: list, time: list, first_token: list | None) -> None:
        """Feed iterations ``n0 .. n1 - 1`` and the requests completed in them (ids
        ``created`` and above have not arrived yet).

        ``lists``: the loop's per-request lists by slot (``state``, ``completion``; on the FCFS
        path ``adm``, the latest admission; ``arrival`` / ``arrival_time`` for saturated
        runs); ``admissions``: ``(iterations,
        types)`` of the chunk's admissions, or None to derive them from ``adm`` and the
        evictions (FCFS: a member's stage is the iterations since its admission);
        ``evictions``: slots, residence starts, iterations of the chunk's evictions;
        ``first_token``: the first-token iteration by slot (WAIT path) or None (FCFS: the
        first admission plus one). The chunk's logs are cleared."""
        n0, stream = self.n0, self.stream
        base = stream.base
        W = created - base
        m = n1 - n0
        self._window(W)
        st = np.asarray(lists["state"][:W], dtype=np.int64)
        comp = np.asarray(lists["completion"][:W], dtype=np.int64)
        typ = np.asarray(stream.type[:W], dtype=np.int64)
        if "arrival" in lists:  # saturated: backlog requests arrive when admitted
            arrival = np.asarray(lists["arrival"][:W], dtype=np.int64)
            arrival_time = np.asarray(lists["arrival_time"][:W], dtype=float)
        else:
            arrival = np.asarray(stream.iteration[:W], dtype=np.int64)
            arrival_time = np.asarray(stream.time[:W], dtype=float)
        times = np.asarray(time, dtype=float)
        ev_r, ev_a, ev_n = (np.asarray(x, dtype=np.int64) for x in evictions)
        new = slice(self.c0 - base, W)  # created in the chunk
        rejected = st[new] == REJECTED
        if admissions is None:  # residences that started in the chunk: current ones and evicted ones
            adm = np.maximum(np.asarray(lists["adm"][:W], dtype=np.int64), 0)
            current = np.flatnonzero(((st == IN) | (st == DONE)) & (adm >= n0))
            gone = np.maximum(ev_a, 0) >= n0
            adm_r = np.concatenate([current, ev_r[gone]])
            adm_n = np.concatenate([adm[current], np.maximum(ev_a[gone], 0)])
            first = np.full(W, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first, adm_r, adm_n)
            fresh = (self.fadm[:W] < 0) & (first < np.iinfo(np.int64).max)
            self.fadm[:W][fresh] = first[fresh]
            self.ftok[:W][fresh] = np.where(first[fresh] + 1 < self.N, first[fresh] + 1, -1)
            if n0 == 0 and self.n_initial:  # initial members past stage 0 had their first token before
                self.ftok[: self.n_initial][self.stages > 0] = 0
            adm_k = typ[adm_r]
        else:
            adm_n, adm_k = (np.asarray(x, dtype=np.int64) for x in admissions)
            self.ftok[:W] = np.asarray(first_token[:W], dtype=np.int64)
        tok = self.ftok[:W]
        now = np.flatnonzero((tok >= n0) & (tok < n1))
        self.ftt[now] = times[tok[now] - n0]
        np.add.at(self.nev, ev_r, 1)
        done = np.flatnonzero(comp >= n0)

        arrivals = self._counts(arrival[new], typ[new], m)
        rejections = self._counts(arrival[new][rejected], typ[new][rejected], m)
        admitted = self._counts(adm_n, adm_k, m)
        completions = self._counts(comp[done], typ[done], m)
        evicted = self._counts(ev_n, typ[ev_r], m)
        queue = self.queue + np.cumsum(arrivals - rejections + evicted - admitted, axis=0)
        batch = self.batch + np.cumsum(admitted - completions - evicted, axis=0)
        self.queue, self.batch = queue[-1].copy(), batch[-1].copy()
        self.acc.add_iterations(completions, arrivals, rejections, evicted, queue, batch,
                                np.asarray(memory, dtype=np.int64), times)
        if done.size:
            self.acc.add_requests(arrival[done], comp[done], np.asarray(stream.decode[:W], dtype=np.int64)[done],
                                  self.nev[done], done + base < self.n_initial, arrival_time[done], self.ftt[done],
                                  times[comp[done] - n0])
        self.n0, self.c0 = n1, created
        for log in (*evictions, memory, time, *(admissions or ())):
            log.clear()

    def drop(self, oldest: int, lists: list[list]) -> int:
        """Forget the requests below id ``oldest`` (none of them waiting, in the batch or still
        to arrive) in the stream, the loop's ``lists`` and the arrays here; return the shift."""
        shift = self.stream.drop(oldest)
        if shift:
            for column in lists:
                del column[:shift]
            self.fadm, self.ftok = self.fadm[shift:], self.ftok[shift:]
            self.ftt, self.nev = self.ftt[shift:], self.nev[shift:]
        return shift
