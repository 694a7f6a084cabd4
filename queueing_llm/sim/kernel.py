r"""The compiled kernel: the fast engine's loop in numba, the same trajectory bit for bit.

It executes the model chapter, section 2's iteration (execute, arrive, evict, admit) over arrays and
takes every random number from the same draws as the other engines, in the same order
(:mod:`queueing_llm.sim`, "Random-draw order"), so every run it covers is bit-identical
to the SimPy engine's (``tests/test_sim_equivalence.py``; no run needs a distributional
comparison): the draws of per-iteration arrival laws or of a saturated backlog do not
depend on the dynamics, so Python draws them by blocks
(:data:`~.draws.ITERATION_BLOCK` iterations of arrivals, :data:`~.draws.BACKLOG_BLOCK`
backlog requests) and the kernel consumes them (a one-type slotted run never reads the
arrivals' uniform offsets: the generator jumps over them, ``PCG64.advance``, to the state
drawing them gives, :func:`~.draws.skip_uniforms`).

**What it covers** (:func:`kernel_applies`): the FCFS policies (``greedy``, ``fcfs_cap``,
``rate_limited``, ``static``, ``reserve`` with its circular memory profile in an array; not
WAIT and Nested WAIT, which stall members and run on the Python loop's stall-aware path,
:func:`~.fast.run_scheduled`),
slotted and wall-clock runs, open systems with per-iteration arrival laws, a one-type
Poisson process in seconds, or saturated input, with or without an initial batch, a
waiting-room cap, ``admit_after_eviction=False``. Not covered, and run on the Python fast
loop (:mod:`.fast`) automatically: wall-clock open systems with several types (their
arrivals are merged by rounded arrival times, and a Poisson tape is drawn when the
iteration's end, which depends on the state, passes its last draw, so the order of the
draws across types follows the dynamics). Everything
runs on the Python loop when numba cannot be imported. A one-type wall-clock run draws
from one stream only, so the kernel draws ahead by blocks and stops (status 4) when the
drawn arrivals end before the iteration does.

**Bookkeeping.** The batch is an array of request ids in admission order (eviction takes
the last live one: lowest stage, most recently admitted); a completion leaves a hole,
dropped when the array is compacted. Completions come from a calendar: a timing wheel of
buckets keyed by completion iteration (a power of 2 above the longest decode, or about 8
mean decodes), each a list of nodes from a small pool, with a binary min-heap for the
rare decodes beyond the wheel's span; an eviction leaves its node in place, and a node
whose member is no longer in the batch with that completion iteration is dropped when it
comes up. So an iteration costs :math:`O(1)` plus :math:`O(1)` per arrival, admission,
completion and eviction (:math:`O(\log)` for the heap's), not :math:`O(B)`; the memory
is updated in :math:`O(1)` (every member gains one token, a completing member frees
:math:`l_0 + 1 + l_1`). The queue is a ring buffer (evicted requests go to its head).
Requests live in a *window* of ids ``[base, base + len)``, one row of integers per
request: a per-iteration law's arrivals are drawn by blocks of iterations and their rows
written by the kernel when they arrive. After each chunk of iterations, the finished
requests below the oldest live one leave the window, as records (``record="full"`` /
``"iterations"``, one compiled pass per chunk) or into the streaming accumulators
(``record="summary"``; a slotted summary is counted in the kernel: completions, sojourn,
evictions and latency/TTFT histograms; the per-iteration series of every summary, totals,
peaks and batch sums, by a compiled pass over each chunk's rows, :func:`_series_py`), so
with ``record="summary"`` the memory is that of the live requests, independent of the
horizon.

**Replications** (:func:`run_kernels`): configs that differ only in the seed share the
model's constants (:func:`_plan`) and are run by one worker thread per core, each taking
the next replication when it finishes one; the loop and the series pass are compiled
``nogil`` and NumPy releases the GIL while it draws, so only a run's short Python
bookkeeping is serialised.

The kernel is compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..model import PoissonProcess
from ..numbers import to_float
from ..policies import FcfsCap, Greedy, RateLimited, Reserve, Static
from .draws import (
    BACKLOG_BLOCK,
    ITERATION_BLOCK,
    PROCESS_BLOCK,
    RequestStream,
    _LawTape,
    _ProcessTape,
    draw_backlog_block,
    draw_initial_batch,
    merge_tape_blocks,
)
from .policies import admission_rule

__all__ = ["kernel_applies", "run_kernel", "run_kernels", "numba_available", "KERNEL_POLICIES"]

KERNEL_POLICIES = ("greedy", "fcfs_cap", "rate_limited", "static", "reserve")
"""Policies the compiled kernel executes; the others run on the Python fast loop."""

GREEDY, FCFS, RATE, STATIC, RESERVE = 0, 1, 2, 3, 4
WAIT, IN, DONE, REJECTED = 0, 1, 2, 3
_BIG = float(2**62)
_INT_MIN = -(2**63)
_AHEAD = 4

_LOOP: Any = None
_ORDER = 8192  # initial sizes of the order array and of the calendar's node pool and heap (they grow)
_POOL = 1024
_compact: Any = None
_fill: Any = None
_gather: Any = None
_series: Any = None


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
    if isinstance(policy, Reserve):
        return RESERVE
    if type(policy) is Greedy:
        return GREEDY
    return None


def kernel_applies(config: Any) -> bool:
    """True if the compiled kernel runs ``config``: numba importable, and a slotted run, a
    saturated run or a one-type wall-clock run."""
    model = config.model
    if _policy_code(model.policy) is None:
        return False
    if config.wall_clock and not (config.saturated or model.K == 1):
        return False  # several wall-clock arrival streams interleave their draws with the dynamics
    if isinstance(model.policy, RateLimited):
        try:
            exact = _exact_rate(model, config)
        except Exception:  # noqa: BLE001 - the Python loop raises the rule's own error
            return False
        if exact is not None and exact.numerator + 2 * exact.denominator > 2**62:
            return False  # the exact bucket would overflow 64-bit integers
    return numba_available()


def _exact_rate(model: Any, config: Any) -> Fraction | None:
    """The rate-limited policy's rate as the exact fraction the engines' token bucket uses
    (:func:`~.policies.admission_rule`), ``None`` if infinite."""
    rate = admission_rule(model, config.M, config.B).rate
    if isinstance(rate, float) and math.isinf(rate):
        return None
    return Fraction(rate)


def _compile() -> Any:
    global _LOOP, _compact, _fill, _gather, _series
    if _LOOP is None:
        import numba

        jit = numba.njit(cache=True, nogil=True)
        _compact = jit(_compact_py)  # bound before the loop compiles: it calls them
        _fill = jit(_fill_py)
        _gather = jit(_gather_py)
        _series = jit(_series_py)
        _LOOP = jit(_loop_py)
    return _LOOP


def _compact_py(order, olen, W, base):
    """Drop the holes (-1, members finished) from ``order[:olen]``, admission order kept,
    and write each member's new position in its row (``W[j, 7]``); the new length."""
    w = 0
    for i in range(olen):
        r = order[i]
        if r >= 0:
            order[w] = r
            W[r - base, 7] = w
            w += 1
    return w


def _fill_py(Wall, Wfall, a, typ, pr, dec, arr, at):
    """Rows ``a ..`` of the window: drawn fields, then the fields of a request not yet arrived."""
    for i in range(typ.size):
        row = a + i
        Wall[row, 0] = typ[i]
        Wall[row, 1] = pr[i]
        Wall[row, 2] = dec[i]
        Wall[row, 3] = arr[i]
        Wall[row, 4] = WAIT  # no eviction yet
        Wall[row, 5] = -1
        Wall[row, 6] = -1
        Wall[row, 7] = -1
        Wfall[row, 0] = at[i]
        Wfall[row, 1] = np.nan
        Wfall[row, 2] = np.nan


def _series_py(comp, arr, rej, ev, queue, sizes, mem, time, m, n0, w, N, size, skip, totals, peaks, sums, part,
               edges, edge_times):
    """Rows ``0 .. m-1`` of a chunk (iterations ``n0 ..``) into the series of a summary, as
    :meth:`~.summary.RunAccumulator.add_iterations` adds them (:class:`~queueing_llm.stats.StreamingSeries`):
    for each series ``s`` (completions, arrivals, rejections, evictions, queue, batch, memory,
    in system; summed over types) the integer total and maximum over iterations ``>= w``, and
    the chunk's integer partial sums of the batches of ``size`` iterations (the first
    ``skip`` in none) added to ``sums[s]`` as floats; ``edges``/``edge_times``: the batch
    and time of iterations ``w - 1`` and ``N - 1``. ``part``: scratch, zero on entry and exit."""
    K = comp.shape[1]
    nb = sums.shape[1]
    i = 0
    while i < m and n0 + i < w:  # the warm-up (w < N): only the batch and time of iteration w - 1
        if n0 + i == w - 1:
            b = 0
            for t in range(K):
                b += sizes[i, t]
            edges[0] = b
            edge_times[0] = time[i]
        i += 1
    t0, t1, t2, t3, t4, t5, t6, t7 = totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], totals[6], \
        totals[7]
    p0, p1, p2, p3, p4, p5, p6, p7 = peaks[0], peaks[1], peaks[2], peaks[3], peaks[4], peaks[5], peaks[6], peaks[7]
    while i < m:
        c = 0
        a = 0
        rj = 0
        e = 0
        q = 0
        b = 0
        for t in range(K):
            c += comp[i, t]
            a += arr[i, t]
            rj += rej[i, t]
            e += ev[i, t]
            q += queue[i, t]
            b += sizes[i, t]
        mm = mem[i]
        y = q + b
        t0 += c
        t1 += a
        t2 += rj
        t3 += e
        t4 += q
        t5 += b
        t6 += mm
        t7 += y
        p0 = max(p0, c)
        p1 = max(p1, a)
        p2 = max(p2, rj)
        p3 = max(p3, e)
        p4 = max(p4, q)
        p5 = max(p5, b)
        p6 = max(p6, mm)
        p7 = max(p7, y)
        p = n0 + i - w - skip  # position in the batched part (the first skip values are in no batch)
        if size > 0 and p >= 0:
            k = p // size
            part[0, k] += c
            part[1, k] += a
            part[2, k] += rj
            part[3, k] += e
            part[4, k] += q
            part[5, k] += b
            part[6, k] += mm
            part[7, k] += y
        if n0 + i == N - 1:
            edges[1] = b
            edge_times[1] = time[i]
        i += 1
    totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], totals[6], totals[7] = t0, t1, t2, t3, t4, t5, \
        t6, t7
    peaks[0], peaks[1], peaks[2], peaks[3], peaks[4], peaks[5], peaks[6], peaks[7] = p0, p1, p2, p3, p4, p5, p6, p7
    for s in range(8):
        for k in range(nb):
            if part[s, k] != 0:
                sums[s, k] += float(part[s, k])
                part[s, k] = 0


def _loop_py(n0, n1, row0, policy, M, B, cap, skip_after_eviction, rate_p, rate_q, fscal, iscal,
             base, W,
             queue, order, wheel, pool_id, pool_nx, pfree, hk, hid, waiting, sizes, bounds, bounds_n0,
             src_t, src_p, src_d, src_o, tstep, pstep, dstep, ostep,
             saturated, bl_end, adm_bound,
             o_arr, o_adm, o_comp, o_ev, o_rej, o_queue, o_sizes, o_mem,
             log_ev, ev_t, ev_a, ev_n,
             acc_on, w_arr, n_init, acc_i, lat_h, ttft_h, prof,
             wall, d0, d1, tape, has_rate, win_end, Wf, o_time, first_times):
    """Iterations ``n0 .. n1-1``; stops early at an iteration boundary with status 1
    (backlog low), 2 (eviction log full) or 3 (order or calendar array full).
    ``iscal`` = [mem, size, qhead, qlen, olen, bl_next, ev_cnt, hlen, next id, token bucket,
    free calendar nodes].
    The rate-limited bucket is exact (as :class:`~.policies.RateLimitedAdmission`): the rate
    is ``rate_p / rate_q`` and the bucket an integer count of ``1 / rate_q``.

    ``order``: ids in admission order; a member's position is in its row (``W[j, 7]``) and a
    completion leaves a hole (-1) there, dropped when the array is compacted. The
    completion calendar: ``wheel``, a timing wheel of ``S`` buckets (a power of 2): bucket
    ``c % S`` heads a singly linked list of nodes (``pool_id``: the id, ``pool_nx``: the
    next node; free nodes on the stack ``pfree``) of the members admitted to complete at
    iteration ``c``, for ``c`` in ``[n, n + S)``; a member admitted with a decode length
    ``>= S`` goes first to the overflow heap ``hk``/``hid`` (a binary min-heap of
    (completion iteration, id)) and moves to the wheel once its completion is within ``S``
    iterations. An eviction leaves its node in place: a node whose member is no longer in
    the batch with that completion iteration is stale and dropped when its bucket (or heap
    entry) comes up. The nodes live in a small pool, so walking a bucket touches the
    completing members' rows independently (no pointer chasing through the rows).

    ``first_times``: keep the first-token and completion times in ``Wf`` (a wall-clock summary
    reads them; records take them from the iteration times).

    With ``acc_on`` (``record="summary"``) each completing request that arrived at or after
    ``w_arr`` and is not an initial member (id >= ``n_init``) is counted into ``acc_i`` =
    [completed, total sojourn, evictions, longest latency, longest TTFT] and the latency and
    TTFT histograms (iterations).

    ``prof``: the reserve policy's circular memory profile (:class:`~.policies.ReserveAdmission`).

    Time: iteration n ends at ``end = t + d0 + d1 * memory`` (``wall``; ``fscal[1]`` = t)
    or at n. Arrivals (``tape``): 0, the ids ``bounds[n - bounds_n0] ..`` of a
    per-iteration law, whose rows the kernel writes when they arrive from the drawn block
    ``src_t``, ``src_p``, ``src_d``, ``src_o`` (type, prompt, decode, uniform offset; id
    ``bounds[0] + i`` at ``i * step``, a step 0 for a column constant over the block); 1, a Poisson process
    whose drawn arrivals are the ids below ``win_end`` with epochs ``at`` (status 4 when the
    drawn epochs do not reach ``end``; ``iscal[8]`` = next id); 2, none (saturated).
    ``W[j]``: the request ``base + j``'s integer fields, one 64-byte row (type, prompt, decode,
    arrival, state + 4 * evictions, latest admission, first admission, position in
    ``order``; a completed request's completion is its latest admission plus its decode),
    ``Wf[j]`` its arrival, first-token and completion times: one request's fields share
    cache lines."""
    mem = iscal[0]
    size = iscal[1]
    qhead = iscal[2]
    qlen = iscal[3]
    olen = iscal[4]
    bl_next = iscal[5]
    ev_cnt = iscal[6]
    hlen = iscal[7]
    tokens = iscal[9]  # the token bucket of rate_limited, in units of 1 / rate_q (exact)
    t_end = fscal[1]
    nxt = iscal[8]
    qmask = queue.size - 1  # the queue ring's size is a power of 2
    ocap = order.size
    hcap = hk.size
    wsize = wheel.size
    wmask = wsize - 1
    nfree = iscal[10]
    src0 = bounds[0]  # tape 0: the id of src_*[0]
    H = prof.size
    finite_M = M < np.inf
    keep_rec = not acc_on  # arrival times: records, or the requests of a wall-clock summary
    a_done, a_sojourn, a_evicted, a_lat, a_ttft = acc_i[0], acc_i[1], acc_i[2], acc_i[3], acc_i[4]
    n = n0
    status = 0
    while n < n1:
        if saturated and bl_end - bl_next < adm_bound:
            status = 1
            break
        if log_ev and ev_t.size - ev_cnt < size:
            status = 2
            break
        end = t_end + (d0 + d1 * mem) if wall else float(n)
        # the arrivals of this iteration: ids lo .. hi-1 (nothing changes before the checks)
        lo = 0
        hi = 0
        if tape == 0:
            lo = bounds[n - bounds_n0]
            hi = bounds[n - bounds_n0 + 1]
        elif tape == 1:
            lo = nxt
            hi = nxt
            if has_rate:
                if win_end <= nxt or Wf[win_end - 1 - base, 0] < end:
                    status = 4
                    break
                while hi < win_end and Wf[hi - base, 0] < end:
                    hi += 1
        # admissions this iteration are at most: the queue, the arrivals, the backlog bound
        need = qlen + size + (adm_bound if saturated else hi - lo)
        if olen + need > ocap:
            olen = _compact(order, olen, W, base)
        if olen + need > ocap or hlen + need > hcap or nfree < need + hlen:
            status = 3
            break
        row = n - row0
        for t in range(waiting.size):  # the row's counters (a chunk's rows are reused)
            o_arr[row, t] = 0
            o_adm[row, t] = 0
            o_comp[row, t] = 0
            o_ev[row, t] = 0
            o_rej[row, t] = 0
        # 1. execute: every member gains a token; members at their last stage complete
        i = olen - 1 if first_times else -1
        while i >= 0:  # the members admitted at n - 1 (the tail) produce their first token
            r = order[i]
            j = r - base
            if r < 0 or W[j, 5] != n - 1:
                break
            if W[j, 6] == n - 1:
                Wf[j, 1] = end
            i -= 1
        mem += size
        while hlen > 0 and hk[0] < n + wsize:  # overflow entries now within the wheel's span
            key = hk[0]
            r = hid[0]
            hlen -= 1
            if hlen > 0:  # pop the root: sift the last entry down
                lkey = hk[hlen]
                lid = hid[hlen]
                pos = 0
                while True:
                    c = 2 * pos + 1
                    if c >= hlen:
                        break
                    if c + 1 < hlen and hk[c + 1] < hk[c]:
                        c += 1
                    if hk[c] >= lkey:
                        break
                    hk[pos] = hk[c]
                    hid[pos] = hid[c]
                    pos = c
                hk[pos] = lkey
                hid[pos] = lid
            j = r - base
            if j >= 0 and W[j, 4] & 3 == IN and W[j, 5] + W[j, 2] == key:  # else stale: evicted since
                nfree -= 1
                k = pfree[nfree]
                h = key & wmask
                pool_id[k] = r
                pool_nx[k] = wheel[h]
                wheel[h] = k
        h = n & wmask
        k = wheel[h]
        wheel[h] = -1
        while k >= 0:  # the bucket of n: the members completing now, and stale nodes
            r = pool_id[k]
            pfree[nfree] = k
            nfree += 1
            k = pool_nx[k]
            j = r - base
            if j < 0 or W[j, 4] & 3 != IN or W[j, 5] + W[j, 2] != n:
                continue  # evicted since it was admitted (and maybe finished since)
            order[W[j, 7]] = -1
            W[j, 4] += DONE - IN
            if first_times:
                Wf[j, 2] = end
            size -= 1
            mem -= W[j, 1] + 1 + W[j, 2]
            t = W[j, 0]
            o_comp[row, t] += 1
            sizes[t] -= 1
            if acc_on and r >= n_init and W[j, 3] >= w_arr:
                lat = n - W[j, 3]
                ttft = W[j, 6] + 1 - W[j, 3]
                a_done += 1
                a_sojourn += lat
                a_evicted += W[j, 4] >> 2
                lat_h[lat] += 1
                ttft_h[ttft] += 1
                if lat > a_lat:
                    a_lat = lat
                if ttft > a_ttft:
                    a_ttft = ttft
        # 2. arrive: the iteration's arrivals join the back of the queue (or are rejected)
        if not saturated and hi > lo:
            room = cap - qlen
            keep = hi if room >= hi - lo else lo + max(int(room), 0)
            for r in range(lo, hi):
                j = r - base
                if tape == 0:  # the request's row, from the drawn block
                    s = r - src0
                    W[j, 0] = src_t[s * tstep]
                    W[j, 1] = src_p[s * pstep]
                    W[j, 2] = src_d[s * dstep]
                    W[j, 4] = WAIT  # no eviction yet
                    W[j, 5] = -1
                    W[j, 6] = -1
                    if keep_rec:
                        Wf[j, 0] = t_end + src_o[s * ostep] * (end - t_end) if wall else float(n)
                    if first_times:
                        Wf[j, 1] = np.nan
                        Wf[j, 2] = np.nan
                W[j, 3] = n
                t = W[j, 0]
                o_arr[row, t] += 1
                if r < keep:
                    queue[(qhead + qlen) & qmask] = r
                    qlen += 1
                    waiting[t] += 1
                else:
                    W[j, 4] = REJECTED
                    o_rej[row, t] += 1
        if not saturated:
            nxt = hi
        # 3. evict while memory exceeds M: the most recent admission first
        evictions = 0
        while mem > M:
            olen -= 1
            r = order[olen]
            if r < 0:
                continue
            j = r - base
            a = W[j, 5]
            mem -= W[j, 1] + 1 + n - a
            W[j, 4] += 4 + WAIT - IN  # one more eviction; its calendar node goes stale
            qhead = (qhead - 1) & qmask
            queue[qhead] = r
            qlen += 1
            t = W[j, 0]
            waiting[t] += 1
            sizes[t] -= 1
            o_ev[row, t] += 1
            if policy == RESERVE and finite_M:
                for tt in range(max(a, n), a + W[j, 2]):
                    prof[tt % H] -= W[j, 1] + 1 + tt - a
            if log_ev:
                ev_t[ev_cnt] = t
                ev_a[ev_cnt] = a
                ev_n[ev_cnt] = n
                ev_cnt += 1
            evictions += 1
        size -= evictions
        # 4. admit: the rule takes the head of the queue, then (saturated) the backlog
        if policy == RATE:
            tokens = min(tokens + rate_p, rate_p + rate_q)
        static_open = size == 0
        if policy == RESERVE:
            prof[(n - 1) % H] = 0  # iteration n - 1 is past
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
                    ok = size < B and mem + W[j, 1] + 1 <= M
                elif policy == RATE:
                    ok = tokens >= rate_q and size < B and mem + W[j, 1] + 1 <= M
                elif policy == STATIC:
                    ok = static_open and size < B and mem + W[j, 1] + 1 <= M
                else:
                    ok = size < B
                    if ok and finite_M:
                        w0 = W[j, 1] + 1
                        for jj in range(W[j, 2]):
                            if prof[(n + jj) % H] + w0 + jj > M:
                                ok = False
                                break
                if not ok:
                    break
                t = W[j, 0]
                if from_queue:
                    qhead = (qhead + 1) & qmask
                    qlen -= 1
                    waiting[t] -= 1
                else:
                    bl_next += 1
                    W[j, 3] = n
                    Wf[j, 0] = end
                    o_arr[row, t] += 1
                W[j, 4] += IN - WAIT
                W[j, 5] = n
                if W[j, 6] < 0:
                    W[j, 6] = n
                order[olen] = r
                W[j, 7] = olen
                olen += 1
                dec = W[j, 2]
                key = n + dec
                if dec < wsize:  # a node in the wheel bucket of its completion
                    nfree -= 1
                    k = pfree[nfree]
                    h = key & wmask
                    pool_id[k] = r
                    pool_nx[k] = wheel[h]
                    wheel[h] = k
                else:  # too far ahead: the overflow heap (sift up)
                    pos = hlen
                    hlen += 1
                    while pos > 0:
                        parent = (pos - 1) // 2
                        if hk[parent] <= key:
                            break
                        hk[pos] = hk[parent]
                        hid[pos] = hid[parent]
                        pos = parent
                    hk[pos] = key
                    hid[pos] = r
                size += 1
                mem += W[j, 1] + 1
                sizes[t] += 1
                o_adm[row, t] += 1
                if policy == RATE:
                    tokens -= rate_q
                elif policy == RESERVE and finite_M:
                    for tt in range(n, n + dec):
                        prof[tt % H] += W[j, 1] + 1 + tt - n
        o_mem[row] = mem
        o_time[row] = end
        t_end = end
        for t in range(waiting.size):
            o_queue[row, t] = waiting[t]
            o_sizes[row, t] = sizes[t]
        n += 1
    acc_i[0], acc_i[1], acc_i[2], acc_i[3], acc_i[4] = a_done, a_sojourn, a_evicted, a_lat, a_ttft
    iscal[0] = mem
    iscal[1] = size
    iscal[2] = qhead
    iscal[3] = qlen
    iscal[4] = _compact(order, olen, W, base)  # only live members: the window trim reads them
    iscal[5] = bl_next
    iscal[6] = ev_cnt
    iscal[7] = hlen
    iscal[9] = tokens
    iscal[10] = nfree
    fscal[1] = t_end
    iscal[8] = nxt
    return n, status


def _rows(capacity: int) -> np.ndarray:
    """``capacity`` rows of 8 int64 (64 bytes) starting on a 64-byte boundary: a request's
    fields are one cache line."""
    buf = np.empty(capacity * 8 + 8, dtype=np.int64)
    skip = (-buf.__array_interface__["data"][0] % 64) // 8
    return buf[skip : skip + capacity * 8].reshape(capacity, 8)


class _Window:
    """Per-request fields of the ids ``[base, base + len)``, one row per request (``W``:
    integers, ``Wf``: times) in preallocated storage: new requests are written after the
    last, finished ones leave from the front by moving a start index; the live part is
    moved to the front only when the storage is full. ``win.dec`` etc. are column views."""

    INTS = ("typ", "pr", "dec", "arr", "sn", "adm", "fadm", "opos")  # sn: state + 4 * evictions
    FLOATS = ("at", "ftt", "ct")
    NAMES = INTS + FLOATS

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.base = 0  # id of storage row lo
        self.lo = 0
        self.hi = 0
        self.Wall = _rows(capacity)
        self.Wfall = np.empty((capacity, len(self.FLOATS)))

    def __len__(self) -> int:
        return self.hi - self.lo

    @property
    def W(self) -> np.ndarray:
        return self.Wall[self.lo : self.hi]

    @property
    def Wf(self) -> np.ndarray:
        return self.Wfall[self.lo : self.hi]

    def _column(self, name: str, lo: int, hi: int) -> np.ndarray:
        if name in self.INTS:
            return self.Wall[lo:hi, self.INTS.index(name)]
        return self.Wfall[lo:hi, self.FLOATS.index(name)]

    def __getattr__(self, name: str) -> np.ndarray:
        if name in _Window.NAMES:
            return self._column(name, self.lo, self.hi)
        raise AttributeError(name)

    def reserve(self, m: int) -> None:
        """Room for ``m`` more requests after the last (moving the live part to the front, or
        to larger storage, at most once)."""
        cap = self.Wall.shape[0]
        if self.hi + m > cap:
            live = self.hi - self.lo
            # moved within the storage if the live rows are few (a move costs them, and the
            # fresh pages of a larger storage cost more than the move); else doubled
            new_cap = cap if live + m <= cap and 4 * live <= cap else max(cap, 2 * (live + m))
            for attr in ("Wall", "Wfall"):
                old = getattr(self, attr)
                new = old if new_cap == cap else (
                    _rows(new_cap) if attr == "Wall" else np.empty((new_cap, old.shape[1]), dtype=old.dtype))
                new[:live] = old[self.lo : self.hi]
                setattr(self, attr, new)
            self.lo, self.hi = 0, live

    def extend_unset(self, m: int) -> None:
        """``m`` more ids whose rows the kernel writes before it reads them (arrivals of a drawn block)."""
        self.reserve(m)
        self.hi += m

    def append(self, typ: np.ndarray, pr: np.ndarray, dec: np.ndarray, arr: np.ndarray, at: np.ndarray) -> None:
        m = int(typ.size)
        self.reserve(m)
        _fill(self.Wall, self.Wfall, self.hi, *(np.ascontiguousarray(x, dtype=np.int64) for x in (typ, pr, dec, arr)),
              np.ascontiguousarray(at, dtype=float))
        self.hi += m

    def drop(self, upto: int) -> None:
        """Remove the ids ``[base, upto)`` (their fields are not read)."""
        self.lo += upto - self.base
        self.base = upto

    def take(self, upto: int) -> dict[str, np.ndarray]:
        """Remove the ids ``[base, upto)``; returns views of their fields, valid until the next append."""
        k = upto - self.base
        out = {name: self._column(name, self.lo, self.lo + k) for name in self.NAMES}
        out["id"] = np.arange(self.base, upto, dtype=np.int64)
        out["nev"] = out["sn"] >> 2
        out["comp"] = np.where(out["sn"] & 3 == DONE, out["adm"] + out["dec"], -1)
        self.lo += k
        self.base = upto
        return out


class _Backlog:
    """The saturated backlog's draws, block by block as :class:`~.draws.Backlog` draws them."""

    def __init__(self, model: Any, rng: np.random.Generator, cumulative: np.ndarray | None = None) -> None:
        self.model = model
        self.rng = rng
        self.K = model.K
        self.cumulative = (np.cumsum([to_float(p, "mix") for p in model.proportions]) if cumulative is None
                           else cumulative)

    def block(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return draw_backlog_block(self.model, self.rng, self.cumulative)


def _arrival_block(tapes: list[_LawTape], covered: int, K: int, wall: bool) -> tuple[Any, ...]:
    """One block of arrivals in queue order, as the engines take it: (types, prompts,
    decodes, counts per iteration, offsets); a column that is the same for every arrival of
    the block is that value (a Python scalar). One type: the tape's own columns
    (:meth:`~.draws._LawTape.draw_columns`; a slotted run never reads the offsets, so the
    generator skips them); several: :func:`~.draws.merge_tape_blocks`."""
    if K == 1:
        counts, offsets, prompts, decodes = tapes[0].draw_columns(offsets=wall)
        return 0, prompts, decodes, counts, offsets
    iterations, types, offsets, prompts, decodes = merge_tape_blocks(tapes)
    per_iteration = np.bincount(iterations - covered, minlength=ITERATION_BLOCK)
    return types, prompts, decodes, per_iteration, offsets


def _source_column(parts: tuple[Any, ...], sizes: list[int], dtype: Any) -> tuple[np.ndarray, int]:
    """One column of drawn blocks (``sizes`` arrivals each) for the kernel: (values, 1), or
    ([value], 0) when every block gave the same scalar (the kernel reads ``values[i * step]``)."""
    if all(not isinstance(p, np.ndarray) and p == parts[0] for p in parts):
        return np.array([parts[0]], dtype=dtype), 0
    return np.concatenate([np.broadcast_to(np.asarray(p, dtype=dtype), (m,)) for p, m in zip(parts, sizes,
                                                                                            strict=True)]), 1


class _Process:
    """A Poisson process in seconds (one type): the engines' tape's blocks
    (:meth:`~.draws._ProcessTape.draw_block`) as rows of the kernel's window."""

    def __init__(self, model: Any, rng: np.random.Generator) -> None:
        self.tape = _ProcessTape(0, model, rng)
        self.rate = self.tape.rate

    def block(self) -> tuple[np.ndarray, ...]:
        epochs, prompts, decodes = self.tape.draw_block()
        return np.zeros(PROCESS_BLOCK, dtype=np.int64), prompts, decodes, np.full(PROCESS_BLOCK, -1), epochs


def _wheel_size(model: Any) -> int:
    """Buckets of the completion wheel: a power of 2 above the longest decode length, or
    (unbounded decode laws) about 8 mean decode lengths, in ``[64, 2^17]``; longer decodes
    wait on the overflow heap until they come within reach."""
    longest = model.max_decode
    if math.isinf(longest):
        longest = 8 * max(t.decode.mean_value() for t in model.types)
    return 1 << min(max(int(longest) + 1, 64) - 1, (1 << 17) - 1).bit_length()


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


def _plan(config: Any) -> dict[str, Any]:
    """What a run needs from the model beyond the seed, computed once (replications share it):
    the policy's code and exact rate, the reserve profile's length, the completion wheel's
    size, the backlog's cumulative proportions and the most admissions per iteration."""
    model = config.model
    policy = _policy_code(model.policy)
    rate, rate_p, rate_q = 0.0, 0, 1
    if policy == RATE:
        exact = _exact_rate(model, config)
        if exact is None:  # an infinite rate: the bucket never empties, greedy admission
            policy = GREEDY
        else:
            rate_p, rate_q = exact.numerator, exact.denominator
            rate = float(exact)
    profile = 1
    if policy == RESERVE:  # as ReserveAdmission: horizon = the largest decode length (1 if unbounded)
        horizon = model.max_decode
        profile = (1 if math.isinf(horizon) else int(horizon)) + 1
    return {
        "policy": policy, "rate": rate, "rate_p": rate_p, "rate_q": rate_q, "profile": profile,
        "wheel": _wheel_size(model),
        "cumulative": np.cumsum([to_float(p, "mix") for p in model.proportions]) if config.saturated else None,
        "adm_bound": _admission_bound(config, policy, rate) if config.saturated else 0,
    }


_SUM_ROOM = 1 << 62
"""Room for the integer sum of a series over one call of the summary pass (below the int64 maximum)."""


def run_kernel(config: Any, expected_requests: float = 0.0, plan: dict[str, Any] | None = None) -> Any:
    """Simulate ``config`` with the compiled kernel (same trajectory as the other engines);
    ``expected_requests`` sizes the record store (it grows if needed); ``plan``:
    :func:`_plan` of a config of the same model and arguments (computed if ``None``)."""
    from .result import build_trajectory, summary_trajectory
    from .summary import RunAccumulator
    from .trajectory import Residences

    loop = _compile()
    model, N, K, first = config.model, config.iterations, config.model.K, config.first
    record = config.record
    summary = record == "summary"
    if plan is None:
        plan = _plan(config)
    policy, rate_p, rate_q = plan["policy"], plan["rate_p"], plan["rate_q"]
    M = float(config.M)
    B = float(config.B)
    prof = np.zeros(plan["profile"], dtype=np.int64)
    cap = min(float(config.waiting_cap), _BIG)
    rng = np.random.default_rng(config.seed)
    win = _Window()
    iscal = np.zeros(11, dtype=np.int64)  # mem, size, qhead, qlen, olen, bl_next, ev_cnt, hlen, nxt, tokens, nfree
    fscal = np.zeros(2)  # token bucket, end of the last iteration (seconds)
    wall = bool(config.wall_clock)
    d0 = float(config.d0) if wall else 0.0
    d1 = float(config.d1) if wall else 0.0
    saturated = config.saturated
    tape = 2 if saturated else (1 if isinstance(model.types[0].arrivals, PoissonProcess) else 0)
    waiting = np.zeros(K, dtype=np.int64)
    sizes = np.zeros(K, dtype=np.int64)
    batch = np.zeros(_ORDER, dtype=np.int64)  # the order array: ids in admission order (compacted when full)
    wheel = np.full(plan["wheel"], -1, dtype=np.int64)  # the calendar: bucket heads (nodes)
    pool_id = np.zeros(_POOL, dtype=np.int64)  # its nodes: ids, next nodes, the free ones
    pool_nx = np.zeros(_POOL, dtype=np.int64)
    pfree = np.arange(_POOL, dtype=np.int64)
    iscal[10] = pfree.size
    hk = np.zeros(_POOL, dtype=np.int64)  # its overflow heap: completion iterations
    hid = np.zeros(_POOL, dtype=np.int64)  # and ids
    queue = np.zeros(16, dtype=np.int64)
    # per-iteration arrays: the whole run (the kernel writes row n) or one reused chunk (summary)
    ahead = _AHEAD  # arrival blocks drawn per kernel call (the draws do not depend on the dynamics; few, so
    # that the drawn block and the rows it becomes stay in cache)
    span = min(N, ahead * ITERATION_BLOCK) if summary else N
    # (a summary's chunk rows are written by the kernel before they are read: no zeroing)
    alloc = np.empty if summary else np.zeros
    rows = {k: alloc((span, K), dtype=np.int64) for k in ("arr", "adm", "comp", "ev", "rej", "queue", "sizes")}
    rows["mem"] = alloc(span, dtype=np.int64)
    rows["time"] = alloc(span)
    acc = RunAccumulator(N, config.warmup, wall) if summary else None
    acc_on = summary and not wall  # slotted summaries are counted in the kernel
    store = None if summary else _Store(int(1.1 * min(expected_requests, 1e9)) + 1024)
    ev_parts: list[tuple[np.ndarray, ...]] = []
    n_initial = 0
    initial_stage = np.zeros(0, dtype=np.int64)

    acc_i = np.zeros(5, dtype=np.int64)  # summary: completed, total sojourn, evictions, longest latency and TTFT
    lat_h = np.zeros(1024 if summary else 1, dtype=np.int64)
    ttft_h = np.zeros_like(lat_h)

    def leave(upto: int) -> None:
        """The requests below ``upto`` leave the window: into the records, or (a wall-clock
        summary) into the accumulator; a slotted summary has counted them in the kernel."""
        if not summary:
            store.add(win, upto, n_initial, initial_stage, N, rows["time"])
        elif wall:
            _feed_wall(acc, win.take(upto), n_initial)
        else:
            win.drop(upto)

    if summary:  # the per-iteration series, accumulated by a compiled pass per chunk (_series_py)
        series = acc.series["completions"]
        s_tot = np.zeros(8, dtype=np.int64)
        s_exact = [0] * 8
        s_peak = np.full(8, _INT_MIN, dtype=np.int64)
        s_sums = np.zeros((8, series.batches))
        s_part = np.zeros((8, series.batches), dtype=np.int64)
        s_edges = np.zeros(2, dtype=np.int64)
        s_times = np.zeros(2)
    emitted = 0

    def emit_rows(m: int) -> None:
        nonlocal emitted
        if not summary:
            return
        # the pass sums each series over its rows in int64: split the chunk so that a sum
        # stays below _SUM_ROOM (the memory, and the requests in the system, at most the
        # live rows of the window, bound the values); the run's totals are Python integers
        largest = max(int(rows["mem"][:m].max(initial=0)), len(win) + n_initial, 1)
        step = max(1, _SUM_ROOM // largest)
        for lo in range(0, m, step):
            hi = min(m, lo + step)
            _series(rows["comp"][lo:hi], rows["arr"][lo:hi], rows["rej"][lo:hi], rows["ev"][lo:hi],
                    rows["queue"][lo:hi], rows["sizes"][lo:hi], rows["mem"][lo:hi], rows["time"][lo:hi], hi - lo,
                    emitted + lo, config.warmup, N, series.size, series.skip, s_tot, s_peak, s_sums, s_part, s_edges,
                    s_times)
            for k in range(8):
                s_exact[k] += int(s_tot[k])
            s_tot[:] = 0
        emitted += m

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
                   np.asarray(stream.decode, dtype=np.int64), np.zeros(n_initial, dtype=np.int64),
                   np.zeros(n_initial))
        win.sn[:] = IN
        win.ftt[initial_stage > 0] = 0.0  # their first token came before iteration 0
        win.adm[:] = -initial_stage
        win.fadm[:] = 0
        batch = np.zeros(max(_ORDER, 2 * n_initial), dtype=np.int64)
        batch[:n_initial] = np.arange(n_initial)
        win.opos[:] = np.arange(n_initial)
        keys = np.asarray(stream.decode, dtype=np.int64) - initial_stage
        by_key = np.argsort(keys, kind="stable")  # a sorted array is a min-heap (the first
        # iteration moves the entries within the wheel's span to it)
        hk = np.zeros(batch.size, dtype=np.int64)
        hid = np.zeros(batch.size, dtype=np.int64)
        hk[:n_initial] = keys[by_key]
        hid[:n_initial] = by_key
        iscal[7] = n_initial
        iscal[4] = n_initial
        if policy == RESERVE and not math.isinf(M):  # ReserveAdmission.present
            H = prof.size
            for p_, d_, a_ in zip(stream.prompt, stream.decode, (-initial_stage).tolist(), strict=True):
                for tt in range(max(a_, 0), a_ + d_):
                    prof[tt % H] += p_ + 1 + tt - a_
        iscal[1] = n_initial
        iscal[0] = tokens
        for t in stream.type:
            sizes[t] += 1
        counts = np.bincount(np.asarray(stream.type, dtype=np.int64), minlength=K)
        for values in rows.values():
            values[0] = 0
        for name in ("arr", "adm", "sizes"):
            rows[name][0] = counts
        rows["mem"][0] = tokens
        emit_rows(1)

    tapes = [_LawTape(k, model, rng, first) for k in range(K)] if tape == 0 else []
    process = _Process(model, rng) if tape == 1 else None
    has_rate = process is not None and process.rate > 0
    iscal[8] = n_initial
    backlog = _Backlog(model, rng, plan["cumulative"]) if saturated else None
    adm_bound = plan["adm_bound"]
    bl_end = n_initial  # saturated: ids [n_initial, bl_end) drawn
    iscal[5] = n_initial
    log_ev = not summary
    ev_t = np.zeros(1024 if log_ev else 0, dtype=np.int64)
    ev_a = np.zeros_like(ev_t)
    ev_n = np.zeros_like(ev_t)
    bounds = np.full(2, n_initial, dtype=np.int64)  # no iteration after the initial batch: only its members
    src_t = src_p = src_d = np.zeros(0, dtype=np.int64)
    src_o = np.zeros(0)
    tstep = pstep = dstep = ostep = 1
    bounds_n0 = first
    covered = first
    progress, step = config.progress, config.progress_step
    report = step - 1 if progress is not None else -1
    while 0 <= report < first:
        report += step

    n = first
    while n < N:
        if tape == 0 and n >= covered:
            bounds_n0 = covered
            blocks = []
            start_id = win.base + len(win)
            for _ in range(min(ahead, -(-(N - covered) // ITERATION_BLOCK))):
                blocks.append(_arrival_block(tapes, covered, K, wall))
                covered += ITERATION_BLOCK
            columns = list(zip(*blocks, strict=True))
            counts = np.concatenate(columns[3])
            block_sizes = [int(c.sum()) for c in columns[3]]
            src_t, tstep = _source_column(columns[0], block_sizes, np.int64)
            src_p, pstep = _source_column(columns[1], block_sizes, np.int64)
            src_d, dstep = _source_column(columns[2], block_sizes, np.int64)
            src_o, ostep = _source_column(columns[4], block_sizes, float)
            win.extend_unset(sum(block_sizes))  # the kernel writes their rows when they arrive
            bounds = np.empty(counts.size + 1, dtype=np.int64)
            bounds[0] = start_id
            np.cumsum(counts, out=bounds[1:])
            bounds[1:] += start_id
        if saturated and bl_end - iscal[5] < adm_bound:
            need = adm_bound - (bl_end - iscal[5])
            for _ in range(max(1, -(-need // BACKLOG_BLOCK))):
                types, prompts, decodes = backlog.block()
                fresh = np.full(types.size, -1, dtype=np.int64)
                win.append(types, prompts, decodes, fresh, np.full(types.size, np.nan))
                bl_end += types.size
        # room for every live request in the queue ring
        live = len(win) + 1
        if queue.size < live:
            queue = _regrow_ring(queue, iscal, live)
        n1 = min(N, covered) if tape == 0 else min(N, n + ahead * ITERATION_BLOCK)
        if progress is not None and report < n1:
            n1 = report + 1
        if summary:
            n1 = min(n1, n + span)
        if acc_on:
            # a latency in this chunk is below n1 minus the oldest live arrival
            qlen, qhead, olen = int(iscal[3]), int(iscal[2]), int(iscal[4])
            live_ids = np.concatenate([queue[(qhead + np.arange(qlen)) % queue.size], batch[:olen]])
            oldest_arrival = min(int(win.arr[live_ids - win.base].min()), n) if live_ids.size else n
            if lat_h.size <= n1 - oldest_arrival:
                grow = 2 * (n1 - oldest_arrival) + 1
                lat_h = np.concatenate([lat_h, np.zeros(grow - lat_h.size, dtype=np.int64)])
                ttft_h = np.concatenate([ttft_h, np.zeros(grow - ttft_h.size, dtype=np.int64)])
        reached, status = loop(
            n, n1, n if summary else 0, policy, M, B, cap, not model.admit_after_eviction, rate_p, rate_q, fscal, iscal,
            win.base, win.W,
            queue, batch, wheel, pool_id, pool_nx, pfree, hk, hid, waiting, sizes, bounds, bounds_n0,
            src_t, src_p, src_d, src_o, tstep, pstep, dstep, ostep,
            saturated, bl_end, adm_bound,
            rows["arr"], rows["adm"], rows["comp"], rows["ev"], rows["rej"], rows["queue"], rows["sizes"],
            rows["mem"], log_ev, ev_t, ev_a, ev_n,
            acc_on, config.warmup, n_initial, acc_i, lat_h, ttft_h, prof,
            wall, d0, d1, tape, has_rate, win.base + len(win), win.Wf, rows["time"], summary and wall,
        )
        emit_rows(reached - n)
        if log_ev and (status == 2 or reached == N):
            c = int(iscal[6])
            ev_parts.append((ev_t[:c].copy(), ev_a[:c].copy(), ev_n[:c].copy()))
            iscal[6] = 0
            if status == 2 and ev_t.size < 2 * (iscal[1] + 1):
                ev_t = np.zeros(4 * (iscal[1] + 1), dtype=np.int64)
                ev_a, ev_n = np.zeros_like(ev_t), np.zeros_like(ev_t)
        if status == 3:  # grow the order array and the calendar (wheel nodes, overflow heap)
            pool = pool_id.size
            extra = pool + int(iscal[3] + iscal[1] + iscal[7]) + int(adm_bound)
            pool_id = np.concatenate([pool_id, np.zeros(extra, dtype=np.int64)])
            pool_nx = np.concatenate([pool_nx, np.zeros(extra, dtype=np.int64)])
            nfree = int(iscal[10])
            pfree = np.concatenate([pfree[:nfree], np.arange(pool, pool + extra, dtype=np.int64),
                                    np.zeros(pool - nfree, dtype=np.int64)])
            iscal[10] = nfree + extra
            batch = np.concatenate([batch, np.zeros(batch.size + int(iscal[3] + iscal[1]), dtype=np.int64)])
            grow = hk.size + int(iscal[3] + iscal[1]) + int(adm_bound)
            hk = np.concatenate([hk, np.zeros(grow, dtype=np.int64)])
            hid = np.concatenate([hid, np.zeros(grow, dtype=np.int64)])
        if status == 4:  # the Poisson process's drawn epochs end before this iteration does
            drawn = [process.block() for _ in range(ahead)]
            win.append(*(np.concatenate(column) for column in zip(*drawn, strict=True)))
        n = reached
        if n == report + 1 and progress is not None:
            progress(n, N)
            report += step
        # finished requests below the oldest live id leave the window
        qlen, qhead, blen = int(iscal[3]), int(iscal[2]), int(iscal[4])
        oldest = {0: win.base + len(win), 1: int(iscal[8]), 2: int(iscal[5])}[tape]
        if tape == 0 and n < covered:
            oldest = bounds[n - bounds_n0]
        if qlen:
            idx = (qhead + np.arange(qlen)) % queue.size
            oldest = min(oldest, int(queue[idx].min()))
        if blen:
            oldest = min(oldest, int(batch[:blen].min()))
        if oldest > win.base:
            leave(int(oldest))
    if progress is not None:
        progress(N, N)

    created = {0: int(bounds[N - bounds_n0]) if tape == 0 else 0, 1: int(iscal[8]), 2: int(iscal[5])}[tape]
    blen = int(iscal[4])
    live_ids = batch[:blen].copy()
    live_adm = win.adm[live_ids - win.base].copy()
    leave(created)
    if summary:
        acc.load_iterations(s_exact, s_peak, s_sums, int(s_edges[0]), float(s_times[0]), int(s_edges[1]),
                            float(s_times[1]))
        if acc_on:
            acc.add_request_counts(int(acc_i[0]), int(acc_i[1]), int(acc_i[2]), lat_h[: acc_i[3] + 1],
                                   ttft_h[: acc_i[4] + 1])
        return summary_trajectory(config, "numba", acc)
    arrays = rows
    records = store.records(n_initial)
    ev = [np.concatenate([e[i] for e in ev_parts]) if ev_parts else np.zeros(0, dtype=np.int64) for i in range(3)]
    residences = Residences(
        np.concatenate([ev[0], records.type[live_ids]]),
        np.concatenate([ev[1], live_adm]),
        np.concatenate([ev[2], np.full(live_ids.size, N, dtype=np.int64)]),
        requests=records,
    )
    S = config.stages if config.stages is not None else int(records.decode.max(initial=1))
    out = {
        "queue": arrays["queue"], "memory": arrays["mem"], "arrivals": arrays["arr"], "admissions": arrays["adm"],
        "completions": arrays["comp"], "evictions": arrays["ev"], "rejections": arrays["rej"],
        "time": arrays["time"], "batch_sizes": arrays["sizes"],
    }
    return build_trajectory(config, "numba", out, records, residences, S)


def run_kernels(configs: list[Any], expected_requests: float = 0.0, workers: int = 1) -> list[Any]:
    """:func:`run_kernel` of each config (independent replications: configs that differ only in
    the seed), in order. If the kernel is not compiled yet the first runs alone (it compiles
    or loads the kernel); the replications are shared by ``workers`` threads, each running
    one replication after another (the kernel and NumPy's draws release the GIL, so the
    threads run on separate cores). Each result is the run :func:`run_kernel` gives alone:
    the threads share nothing but the list of configs and the plan (read only). A failed
    replication or an interrupt stops the set: the replications running finish, none
    starts, and the error raised is that of the lowest failed index (the one a sequential
    run would raise)."""
    out: list[Any] = [None] * len(configs)
    if not configs:
        return out
    plan = _plan(configs[0])
    start = 0
    if _LOOP is None or workers <= 1:
        out[0] = run_kernel(configs[0], expected_requests, plan)
        start = 1
    workers = max(1, min(int(workers), len(configs) - start))
    if workers == 1:
        for i in range(start, len(configs)):
            out[i] = run_kernel(configs[i], expected_requests, plan)
        return out
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from itertools import count

    next_index = count(start)  # next() of a count is atomic under the GIL: each index is taken once
    stop = threading.Event()  # set by a failed replication or an interrupt: no worker takes another
    errors: dict[int, BaseException] = {}

    def worker() -> None:
        while not stop.is_set():
            i = next(next_index)  # an index taken is run: every index below a failed one runs
            if i >= len(configs):
                return
            try:
                out[i] = run_kernel(configs[i], expected_requests, plan)
            except BaseException as error:  # noqa: BLE001 - handed to the caller below
                errors[i] = error
                stop.set()
                return

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for job in [pool.submit(worker) for _ in range(workers)]:
            job.result()
    except BaseException:  # an interrupt while waiting: the running replications finish, no new one starts
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)
    if errors:  # indices are taken in order and a taken one runs: every index below a failed one has run
        raise errors[min(errors)]
    return out


class _Store:
    """The finished requests' fields, appended chunk by chunk into arrays grown by 1.5x
    (few large allocations, which the allocator returns to the system when freed): one
    compiled pass over the window's rows per chunk (:func:`_gather_py`)."""

    INTS = ("typ", "pr", "dec", "arr", "fadm", "ft", "comp", "nev")

    def __init__(self, capacity: int) -> None:
        self.size = 0
        self.arrays = {name: np.empty(capacity, dtype=np.int64) for name in self.INTS}
        self.arrays["rej"] = np.empty(capacity, dtype=bool)
        for name in ("at", "ftt", "ct"):
            self.arrays[name] = np.empty(capacity)

    def add(self, win: _Window, upto: int, n_initial: int, initial_stage: np.ndarray, N: int,
            time: np.ndarray) -> None:
        """Move the requests below ``upto`` from the window to the store."""
        m = upto - win.base
        if self.size + m > self.arrays["at"].size:
            cap = max(int(1.5 * self.arrays["at"].size), self.size + m)
            for name, old in self.arrays.items():
                new = np.empty(cap, dtype=old.dtype)
                new[: self.size] = old[: self.size]
                self.arrays[name] = new
        a = self.arrays
        _gather(win.Wall, win.Wfall, win.lo, m, win.base, n_initial, initial_stage, N, self.size, time,
                a["typ"], a["pr"], a["dec"], a["arr"], a["fadm"], a["ft"], a["comp"], a["nev"], a["rej"], a["at"],
                a["ftt"], a["ct"])
        self.size += m
        win.take(upto)

    def records(self, n_initial: int) -> Any:
        """The records (views of the store: no copy, whose fresh pages would cost as much as
        the run on a busy machine)."""
        from .trajectory import RequestRecords

        a = {name: values[: self.size] for name, values in self.arrays.items()}
        self.arrays = {}
        initial = np.zeros(self.size, dtype=bool)
        initial[:n_initial] = True
        return RequestRecords(
            type=a["typ"], prompt=a["pr"], decode=a["dec"], arrival=a["arr"], admission=a["fadm"],
            first_token=a["ft"], completion=a["comp"], evicted=a["nev"], arrival_time=a["at"],
            first_token_time=a["ftt"], completion_time=a["ct"], initial=initial, rejected=a["rej"],
        )


def _gather_py(Wall, Wfall, lo, m, id0, n_initial, initial_stage, N, at0, time,
               typ, pr, dec, arr, fadm, ft, comp, nev, rej, at, ftt, ct):
    """Rows ``lo .. lo + m`` of the window (ids ``id0 ..``) into the record columns from
    ``at0``; the first token is the iteration after the first admission (none if that is
    not before ``N``), or 0 for an initial member past stage 0 (it came before iteration 0).
    Token and completion times are read from ``time`` (the end of each iteration; ``nan``
    for none), as :meth:`~.trajectory.RequestRecords.build` reads them."""
    for i in range(m):
        row = lo + i
        o = at0 + i
        r = id0 + i
        typ[o] = Wall[row, 0]
        pr[o] = Wall[row, 1]
        dec[o] = Wall[row, 2]
        arr[o] = Wall[row, 3]
        first = Wall[row, 6]
        fadm[o] = first
        ft[o] = first + 1 if first >= 0 and first + 1 < N else -1
        if r < n_initial and initial_stage[r] > 0:
            ft[o] = 0
        ftt[o] = time[ft[o]] if ft[o] >= 0 else np.nan
        state = Wall[row, 4] & 3
        comp[o] = Wall[row, 5] + Wall[row, 2] if state == DONE else -1
        ct[o] = time[comp[o]] if comp[o] >= 0 else np.nan
        nev[o] = Wall[row, 4] >> 2
        rej[o] = state == REJECTED
        at[o] = Wfall[row, 0]


def _regrow_ring(queue: np.ndarray, iscal: np.ndarray, live: int) -> np.ndarray:
    qhead, qlen = int(iscal[2]), int(iscal[3])
    new = np.empty(1 << (2 * live - 1).bit_length(), dtype=np.int64)  # a power of 2 >= 2 live (an entry
    # is written before it is read: the ring's entries are qhead .. qhead + qlen)
    if qlen:
        new[:qlen] = queue[(qhead + np.arange(qlen)) % queue.size]
    iscal[2] = 0
    return new


def _feed_wall(acc: Any, part: dict[str, np.ndarray], n_initial: int) -> None:
    """Finished requests of a wall-clock run into the accumulator (times in seconds)."""
    done = part["comp"] >= 0
    if not done.any():
        return
    sub = {k: part[k][done] for k in ("id", "arr", "comp", "dec", "nev", "at", "ftt", "ct")}
    acc.add_requests(sub["arr"], sub["comp"], sub["dec"], sub["nev"], sub["id"] < n_initial, sub["at"],
                     sub["ftt"], sub["ct"])
