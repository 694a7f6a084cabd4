r"""The compiled kernel: the fast engine's loop in numba, the same trajectory bit for bit.

It executes MODEL.md section 2's iteration (execute, arrive, evict, admit) over arrays and
takes every random number from the same draws as the other engines, in the same order
(:mod:`queueing_llm.sim`, "Random-draw order"): the draws of a slotted open system or of
a saturated backlog do not depend on the dynamics, so Python draws them by blocks
(:data:`~.draws.ITERATION_BLOCK` iterations of arrivals, :data:`~.draws.BACKLOG_BLOCK`
backlog requests) and the kernel consumes them.

**What it covers** (:func:`kernel_applies`): slotted runs (no ``iteration_time``), open
systems with per-iteration arrival laws or saturated input, with or without an initial
batch, a waiting-room cap, ``admit_after_eviction=False``, and the policies ``greedy``,
``fcfs_cap``, ``rate_limited`` and ``static``. The ``reserve`` policy (a per-run memory
profile) and wall-clock runs (iteration times that depend on the state, Poisson processes
in seconds) run on the Python fast loop (:mod:`.fast`) automatically, as does everything
when numba cannot be imported.

**Bookkeeping.** The batch is an array of request ids in admission order (eviction takes
the last: lowest stage, most recently admitted); execution compacts it, dropping the
members that complete (admission + decode = n). The queue is a ring buffer (evicted
requests go to its head). Requests live in a *window* of ids ``[base, base + len)``:
after each chunk of iterations, the finished requests below the oldest live one leave the
window, as records (``record="full"``/``"iterations"``) or into the streaming
accumulators (``record="summary"``), so with ``record="summary"`` the memory is that of
the live requests, independent of the horizon.

The kernel is compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..model import PoissonProcess
from ..numbers import to_float
from ..policies import FcfsCap, Greedy, RateLimited, Static
from .draws import BACKLOG_BLOCK, ITERATION_BLOCK, RequestStream, _LawTape, draw_initial_batch, sample
from .policies import fixed_point_rate

__all__ = ["kernel_applies", "run_kernel", "numba_available", "KERNEL_POLICIES"]

KERNEL_POLICIES = ("greedy", "fcfs_cap", "rate_limited", "static")
"""Policies the compiled kernel executes; the others run on the Python fast loop."""

GREEDY, FCFS, RATE, STATIC = 0, 1, 2, 3
WAIT, IN, DONE, REJECTED = 0, 1, 2, 3
_BIG = float(2**62)

_LOOP: Any = None


def numba_available() -> bool:
    """True if numba imports (the kernel needs it; without it ``engine="fast"`` runs the Python loop)."""
    try:
        import numba  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means: no kernel
        return False
    return True


def _policy_code(policy: Any) -> int | None:
    if isinstance(policy, RateLimited):
        return RATE
    if isinstance(policy, Static):
        return STATIC
    if isinstance(policy, FcfsCap):
        return FCFS
    if type(policy) is Greedy:
        return GREEDY
    return None


def kernel_applies(config: Any) -> bool:
    """True if the compiled kernel runs ``config`` (slotted, a kernel policy, numba importable)."""
    model = config.model
    if config.wall_clock or _policy_code(model.policy) is None:
        return False
    if any(isinstance(t.arrivals, PoissonProcess) for t in model.types):
        return False
    return numba_available()


def _compile() -> Any:
    global _LOOP
    if _LOOP is None:
        import numba

        _LOOP = numba.njit(cache=True, nogil=True)(_loop_py)
    return _LOOP


def _loop_py(n0, n1, row0, policy, M, B, cap, skip_after_eviction, rate, fscal, iscal,
             base, typ, pr, dec, arr, state, adm, fadm, comp, nev,
             queue, batch, waiting, sizes, bounds, bounds_n0,
             saturated, bl_end, adm_bound,
             o_arr, o_adm, o_comp, o_ev, o_rej, o_queue, o_sizes, o_mem,
             log_ev, ev_t, ev_a, ev_n):
    """Iterations ``n0 .. n1-1``; stops early (status 1: backlog low, 2: eviction log full)
    at an iteration boundary. ``iscal`` = [mem, size, qhead, qlen, blen, bl_next, ev_cnt]."""
    mem = iscal[0]
    size = iscal[1]
    qhead = iscal[2]
    qlen = iscal[3]
    blen = iscal[4]
    bl_next = iscal[5]
    ev_cnt = iscal[6]
    tokens = fscal[0]
    qcap = queue.size
    n = n0
    status = 0
    while n < n1:
        if saturated and bl_end - bl_next < adm_bound:
            status = 1
            break
        if log_ev and ev_t.size - ev_cnt < blen:
            status = 2
            break
        row = n - row0
        # 1. execute: every member gains a token; members at their last stage complete
        mem += size
        w = 0
        for i in range(blen):
            r = batch[i]
            j = r - base
            if adm[j] + dec[j] == n:
                state[j] = DONE
                comp[j] = n
                size -= 1
                mem -= pr[j] + 1 + dec[j]
                t = typ[j]
                o_comp[row, t] += 1
                sizes[t] -= 1
            else:
                batch[w] = r
                w += 1
        blen = w
        # 2. arrive: the iteration's arrivals join the back of the queue (or are rejected)
        if not saturated:
            lo = bounds[n - bounds_n0]
            hi = bounds[n - bounds_n0 + 1]
            room = cap - qlen
            keep = hi if room >= hi - lo else lo + max(int(room), 0)
            for r in range(lo, hi):
                j = r - base
                t = typ[j]
                o_arr[row, t] += 1
                if r < keep:
                    queue[(qhead + qlen) % qcap] = r
                    qlen += 1
                    waiting[t] += 1
                else:
                    state[j] = REJECTED
                    o_rej[row, t] += 1
        # 3. evict while memory exceeds M: the most recent admission first
        evictions = 0
        while mem > M:
            blen -= 1
            r = batch[blen]
            j = r - base
            a = adm[j]
            mem -= pr[j] + 1 + n - a
            state[j] = WAIT
            qhead = (qhead - 1) % qcap
            queue[qhead] = r
            qlen += 1
            t = typ[j]
            waiting[t] += 1
            sizes[t] -= 1
            nev[j] += 1
            o_ev[row, t] += 1
            if log_ev:
                ev_t[ev_cnt] = t
                ev_a[ev_cnt] = a
                ev_n[ev_cnt] = n
                ev_cnt += 1
            evictions += 1
        size -= evictions
        # 4. admit: the rule takes the head of the queue, then (saturated) the backlog
        if policy == RATE:
            tokens = min(tokens + rate, rate + 1.0)
        static_open = size == 0
        if not (evictions > 0 and skip_after_eviction):
            while True:
                from_queue = qlen > 0
                if from_queue:
                    r = queue[qhead]
                elif saturated:
                    r = bl_next
                else:
                    break
                j = r - base
                if policy == FCFS:
                    ok = size < B
                elif policy == GREEDY:
                    ok = size < B and mem + pr[j] + 1 <= M
                elif policy == RATE:
                    ok = tokens >= 1.0 and size < B and mem + pr[j] + 1 <= M
                else:
                    ok = static_open and size < B and mem + pr[j] + 1 <= M
                if not ok:
                    break
                t = typ[j]
                if from_queue:
                    qhead = (qhead + 1) % qcap
                    qlen -= 1
                    waiting[t] -= 1
                else:
                    bl_next += 1
                    arr[j] = n
                    o_arr[row, t] += 1
                state[j] = IN
                adm[j] = n
                if fadm[j] < 0:
                    fadm[j] = n
                batch[blen] = r
                blen += 1
                size += 1
                mem += pr[j] + 1
                sizes[t] += 1
                o_adm[row, t] += 1
                if policy == RATE:
                    tokens -= 1.0
        o_mem[row] = mem
        for t in range(waiting.size):
            o_queue[row, t] = waiting[t]
            o_sizes[row, t] = sizes[t]
        n += 1
    iscal[0] = mem
    iscal[1] = size
    iscal[2] = qhead
    iscal[3] = qlen
    iscal[4] = blen
    iscal[5] = bl_next
    iscal[6] = ev_cnt
    fscal[0] = tokens
    return n, status


class _Window:
    """Per-request arrays of the ids ``[base, base + len)``, grown by blocks and trimmed."""

    NAMES = ("typ", "pr", "dec", "arr", "state", "adm", "fadm", "comp", "nev")

    def __init__(self) -> None:
        self.base = 0
        for name in self.NAMES:
            setattr(self, name, np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.typ.size)

    def append(self, typ: np.ndarray, pr: np.ndarray, dec: np.ndarray, arr: np.ndarray) -> None:
        m = typ.size
        fresh = {"typ": typ, "pr": pr, "dec": dec, "arr": arr, "state": np.zeros(m, dtype=np.int64),
                 "adm": np.full(m, -1, dtype=np.int64), "fadm": np.full(m, -1, dtype=np.int64),
                 "comp": np.full(m, -1, dtype=np.int64), "nev": np.zeros(m, dtype=np.int64)}
        for name in self.NAMES:
            setattr(self, name, np.concatenate([getattr(self, name), np.asarray(fresh[name], dtype=np.int64)]))

    def take(self, upto: int) -> dict[str, np.ndarray]:
        """Remove and return the ids ``[base, upto)``."""
        k = upto - self.base
        out = {name: getattr(self, name)[:k] for name in self.NAMES}
        out["id"] = np.arange(self.base, upto, dtype=np.int64)
        for name in self.NAMES:
            setattr(self, name, getattr(self, name)[k:].copy())
        self.base = upto
        return out


class _Backlog:
    """The saturated backlog's draws, block by block as :class:`~.draws.Backlog` draws them."""

    def __init__(self, model: Any, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self.K = model.K
        self.cumulative = np.cumsum([to_float(p, "mix") for p in model.proportions])

    def block(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = BACKLOG_BLOCK
        if self.K > 1:
            u = self.rng.random(size)
            types = np.minimum(np.searchsorted(self.cumulative, u, side="right"), self.K - 1).astype(np.int64)
        else:
            types = np.zeros(size, dtype=np.int64)
        prompts = np.zeros(size, dtype=np.int64)
        decodes = np.zeros(size, dtype=np.int64)
        for k, t in enumerate(self.model.types):
            where = np.flatnonzero(types == k)
            prompts[where] = sample(t.prompt, self.rng, where.size)
            decodes[where] = sample(t.decode, self.rng, where.size)
        return types, prompts, decodes


def _arrival_block(tapes: list[_LawTape], covered: int, K: int) -> tuple[np.ndarray, ...]:
    """One block of arrivals in queue order, as :meth:`~.draws.ArrivalSource._merge_block` merges it."""
    parts = [tape.draw_block() for tape in tapes]
    iterations = np.concatenate([p[0] for p in parts])
    types = np.concatenate([np.full(p[0].size, k, dtype=np.int64) for k, p in enumerate(parts)])
    offsets = np.concatenate([p[1] for p in parts])
    prompts = np.concatenate([p[2] for p in parts])
    decodes = np.concatenate([p[3] for p in parts])
    if K > 1:
        order = np.lexsort((offsets, iterations))
        iterations, types, prompts, decodes = iterations[order], types[order], prompts[order], decodes[order]
    per_iteration = np.bincount(iterations - covered, minlength=ITERATION_BLOCK)
    bounds = np.concatenate([[0], np.cumsum(per_iteration)]).astype(np.int64)
    return types, prompts, decodes, iterations.astype(np.int64), bounds


def _admission_bound(config: Any, policy: int, rate: float) -> int:
    """Most backlog requests one iteration can admit (the backlog kept ahead of the kernel)."""
    bound = config.B
    if policy != FCFS and not math.isinf(config.M):
        least = min(int(t.prompt.support_min) for t in config.model.types)
        bound = min(bound, config.M // (least + 1) + 1)
    if policy == RATE:
        bound = min(bound, math.floor(rate) + 2)
    if math.isinf(bound):  # pragma: no cover - refused by prepare()
        raise ParameterError("saturated input with no bound on admissions per iteration")
    return int(bound)


def run_kernel(config: Any) -> Any:
    """Simulate ``config`` with the compiled kernel (same trajectory as the other engines)."""
    from .result import build_trajectory, summary_trajectory
    from .summary import RunAccumulator
    from .trajectory import Residences

    loop = _compile()
    model, N, K, first = config.model, config.iterations, config.model.K, config.first
    record = config.record
    summary = record == "summary"
    policy = _policy_code(model.policy)
    rate = 0.0
    if policy == RATE:
        rate = fixed_point_rate(model) if model.policy.rate is None else to_float(model.policy.rate, "rate")
    M = float(config.M)
    B = float(config.B)
    cap = min(float(config.waiting_cap), _BIG)
    rng = np.random.default_rng(config.seed)
    win = _Window()
    iscal = np.zeros(7, dtype=np.int64)  # mem, size, qhead, qlen, blen, bl_next, ev_cnt
    fscal = np.zeros(1)
    waiting = np.zeros(K, dtype=np.int64)
    sizes = np.zeros(K, dtype=np.int64)
    batch = np.zeros(16, dtype=np.int64)
    queue = np.zeros(16, dtype=np.int64)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("arr", "adm", "comp", "ev", "rej", "queue", "sizes", "mem")}
    acc = RunAccumulator(N, config.warmup, False) if summary else None
    done_parts: list[dict[str, np.ndarray]] = []
    ev_parts: list[tuple[np.ndarray, ...]] = []
    n_initial = 0
    initial_stage = np.zeros(0, dtype=np.int64)

    def emit(part: dict[str, np.ndarray]) -> None:
        if summary:
            _feed_requests(acc, part, n_initial, initial_stage, N)
        else:
            done_parts.append(part)

    def emit_rows(block: dict[str, np.ndarray]) -> None:
        if summary:
            acc.add_iterations(block["comp"], block["arr"], block["rej"], block["ev"], block["queue"],
                               block["sizes"], block["mem"], np.arange(block["mem"].size, dtype=float))
        else:
            for k, v in block.items():
                rows[k].append(v)

    # iteration 0 with an initial batch: the given members (ids in admission order)
    if config.initial is not None:
        stream = RequestStream()
        stages = draw_initial_batch(model, rng, config.initial, stream)
        tokens = sum(p + 1 + j for p, j in zip(stream.prompt, stages, strict=True))
        if tokens > config.M:
            raise ParameterError(
                f"initial_batch holds {tokens} KV tokens with the prompts drawn for seed {config.seed}, "
                f"above kv_capacity = {config.M:g}"
            )
        n_initial = len(stream)
        initial_stage = np.asarray(stages, dtype=np.int64)
        win.append(np.asarray(stream.type, dtype=np.int64), np.asarray(stream.prompt, dtype=np.int64),
                   np.asarray(stream.decode, dtype=np.int64), np.zeros(n_initial, dtype=np.int64))
        win.state[:] = IN
        win.adm[:] = -initial_stage
        win.fadm[:] = 0
        batch = np.zeros(max(16, 2 * n_initial), dtype=np.int64)
        batch[:n_initial] = np.arange(n_initial)
        iscal[4] = n_initial
        iscal[1] = n_initial
        iscal[0] = tokens
        for t in stream.type:
            sizes[t] += 1
        counts = np.bincount(np.asarray(stream.type, dtype=np.int64), minlength=K).reshape(1, K)
        zeros = np.zeros((1, K), dtype=np.int64)
        emit_rows({"arr": counts, "adm": counts.copy(), "comp": zeros, "ev": zeros.copy(), "rej": zeros.copy(),
                   "queue": zeros.copy(), "sizes": counts.copy(), "mem": np.array([tokens], dtype=np.int64)})
        if policy == RATE:
            pass  # the token bucket starts empty; initial members are not admissions of the rule

    saturated = config.saturated
    tapes = [] if saturated else [_LawTape(k, model, rng, first) for k in range(K)]
    backlog = _Backlog(model, rng) if saturated else None
    adm_bound = _admission_bound(config, policy, rate) if saturated else 0
    bl_end = n_initial  # saturated: ids [n_initial, bl_end) drawn
    iscal[5] = n_initial
    log_ev = not summary
    ev_t = np.zeros(1024 if log_ev else 0, dtype=np.int64)
    ev_a = np.zeros_like(ev_t)
    ev_n = np.zeros_like(ev_t)
    bounds = np.zeros(2, dtype=np.int64)
    bounds_n0 = first
    covered = first
    progress, step = config.progress, config.progress_step
    report = step - 1 if progress is not None else -1
    while 0 <= report < first:
        report += step

    n = first
    while n < N:
        if not saturated and n >= covered:
            types, prompts, decodes, iters, rel = _arrival_block(tapes, covered, K)
            start_id = win.base + len(win)
            win.append(types, prompts, decodes, iters)
            bounds = rel + start_id
            bounds_n0 = covered
            covered += ITERATION_BLOCK
        if saturated and bl_end - iscal[5] < adm_bound:
            need = adm_bound - (bl_end - iscal[5])
            for _ in range(max(1, -(-need // BACKLOG_BLOCK))):
                types, prompts, decodes = backlog.block()
                win.append(types, prompts, decodes, np.full(types.size, -1, dtype=np.int64))
                bl_end += types.size
        # room for every live request in the queue ring and the batch array
        live = len(win) + 1
        if queue.size < live:
            queue = _regrow_ring(queue, iscal, live)
        if batch.size < live:
            batch = np.concatenate([batch, np.zeros(2 * live - batch.size, dtype=np.int64)])
        n1 = min(N, covered) if not saturated else min(N, n + ITERATION_BLOCK)
        if progress is not None and report < n1:
            n1 = report + 1
        m = n1 - n
        block = {k: np.zeros((m, K), dtype=np.int64) for k in ("arr", "adm", "comp", "ev", "rej", "queue", "sizes")}
        block["mem"] = np.zeros(m, dtype=np.int64)
        reached, status = loop(
            n, n1, n, policy, M, B, cap, not model.admit_after_eviction, rate, fscal, iscal,
            win.base, win.typ, win.pr, win.dec, win.arr, win.state, win.adm, win.fadm, win.comp, win.nev,
            queue, batch, waiting, sizes, bounds, bounds_n0,
            saturated, bl_end, adm_bound,
            block["arr"], block["adm"], block["comp"], block["ev"], block["rej"], block["queue"], block["sizes"],
            block["mem"], log_ev, ev_t, ev_a, ev_n,
        )
        emit_rows({k: v[: reached - n] for k, v in block.items()})
        if log_ev and (status == 2 or reached == N):
            c = int(iscal[6])
            ev_parts.append((ev_t[:c].copy(), ev_a[:c].copy(), ev_n[:c].copy()))
            iscal[6] = 0
            if status == 2 and ev_t.size < 2 * (iscal[4] + 1):
                ev_t = np.zeros(4 * (iscal[4] + 1), dtype=np.int64)
                ev_a, ev_n = np.zeros_like(ev_t), np.zeros_like(ev_t)
        n = reached
        if n == report + 1 and progress is not None:
            progress(n, N)
            report += step
        # finished requests below the oldest live id leave the window
        qlen, qhead, blen = int(iscal[3]), int(iscal[2]), int(iscal[4])
        oldest = iscal[5] if saturated else win.base + len(win)
        if not saturated and n < covered:
            oldest = bounds[n - bounds_n0]
        if qlen:
            idx = (qhead + np.arange(qlen)) % queue.size
            oldest = min(oldest, int(queue[idx].min()))
        if blen:
            oldest = min(oldest, int(batch[:blen].min()))
        if oldest > win.base and (summary or oldest - win.base > 65536):
            emit(win.take(int(oldest)))
    if progress is not None:
        progress(N, N)

    created = int(iscal[5]) if saturated else int(bounds[N - bounds_n0])
    rest = win.take(created)
    blen = int(iscal[4])
    live_ids = batch[:blen].copy()
    if summary:
        emit(rest)
        return summary_trajectory(config, "numba", acc)
    done_parts.append(rest)
    part = {k: np.concatenate([p[k] for p in done_parts]) for k in done_parts[0]}
    arrays = {k: np.concatenate(v) for k, v in rows.items()}
    records = _records(part, n_initial, initial_stage, N)
    comp, dec, typ = part["comp"], part["dec"], part["typ"]
    finished = comp >= 0
    ev = [np.concatenate([e[i] for e in ev_parts]) if ev_parts else np.zeros(0, dtype=np.int64) for i in range(3)]
    live_adm = part["adm"][live_ids]
    residences = Residences(
        np.concatenate([typ[finished], ev[0], typ[live_ids]]),
        np.concatenate([comp[finished] - dec[finished], ev[1], live_adm]),
        np.concatenate([comp[finished], ev[2], np.full(live_ids.size, N, dtype=np.int64)]),
    )
    S = config.stages if config.stages is not None else int(dec.max(initial=1))
    out = {
        "queue": arrays["queue"], "memory": arrays["mem"], "arrivals": arrays["arr"], "admissions": arrays["adm"],
        "completions": arrays["comp"], "evictions": arrays["ev"], "rejections": arrays["rej"],
        "time": np.arange(N, dtype=float), "batch_sizes": arrays["sizes"],
    }
    return build_trajectory(config, "numba", out, records, residences, S)


def _regrow_ring(queue: np.ndarray, iscal: np.ndarray, live: int) -> np.ndarray:
    qhead, qlen = int(iscal[2]), int(iscal[3])
    new = np.zeros(2 * live, dtype=np.int64)
    if qlen:
        new[:qlen] = queue[(qhead + np.arange(qlen)) % queue.size]
    iscal[2] = 0
    return new


def _first_tokens(part: dict[str, np.ndarray], n_initial: int, initial_stage: np.ndarray, N: int) -> np.ndarray:
    fadm = part["fadm"]
    ft = np.where((fadm >= 0) & (fadm + 1 < N), fadm + 1, -1)
    ids = part["id"]
    init = ids < n_initial
    if init.any():
        ft[init] = np.where(initial_stage[ids[init]] > 0, 0, ft[init])
    return ft


def _records(part: dict[str, np.ndarray], n_initial: int, initial_stage: np.ndarray, N: int) -> Any:
    from .trajectory import RequestRecords

    time = np.arange(N, dtype=float)
    return RequestRecords.build(
        type=part["typ"], prompt=part["pr"], decode=part["dec"], arrival=part["arr"], admission=part["fadm"],
        first_token=_first_tokens(part, n_initial, initial_stage, N), completion=part["comp"], evicted=part["nev"],
        arrival_time=part["arr"].astype(float), initial=part["id"] < n_initial, rejected=part["state"] == REJECTED,
        time=time,
    )


def _feed_requests(acc: Any, part: dict[str, np.ndarray], n_initial: int, initial_stage: np.ndarray, N: int) -> None:
    done = part["comp"] >= 0
    if not done.any():
        return
    sub = {k: v[done] for k, v in part.items()}
    ft = _first_tokens(sub, n_initial, initial_stage, N)
    acc.add_requests(sub["arr"], sub["comp"], sub["dec"], sub["nev"], sub["id"] < n_initial,
                     sub["arr"].astype(float), np.where(ft >= 0, ft, np.nan).astype(float),
                     sub["comp"].astype(float))
