r"""The batch-capped queue as a truncated Markov chain, solved by banded GTH elimination.

The fallback route of :func:`~queueing_llm.theory.queue_stationary.stationary` when the
kernel roots cannot be found, and the route that resolves probabilities below the PGF
route's absolute accuracy (:math:`\approx 10^{-16}`).

The state is the number in system after admission, :math:`Y`. One iteration (the model chapter,
section 2) from :math:`Y = n`: the batch holds :math:`s = \min(n, B)` members, each completing
with probability :math:`q` (geometric decode lengths), then :math:`A` requests arrive:

.. math:: Y' = n - D + A,\qquad D \sim \mathrm{Bin}(s, q),\quad A \sim a_0, a_1, \dots

so the chain jumps down by at most :math:`B` and up by at most :math:`\max A`. It is
truncated at :math:`N` states, the mass of a jump past the top kept in the top state, and
solved by GTH elimination (Grassmann, Taksar and Heyman 1985) restricted to the band
(numba-compiled on a window of the band, vectorised, about 3-4e9 multiply-adds a second and
memory of states x up-band numbers; without numba a NumPy loop on the whole band, ten times slower):
no subtraction, so each probability, however small (:math:`10^{-80}`), is accurate to a few
ulps relative to itself for the truncated matrix. States below the smallest possible
arrival count are transient and carry probability 0.

**Truncation error.** :math:`N` doubles until the top 20 % of the states carry less than
``tail``. For :math:`n \ge B` the chain is a random walk with negative drift
:math:`\lambda - Bq`, so its stationary law decays geometrically,
:math:`\pi_{n+1}/\pi_n \to \eta < 1` (the reciprocal of the real kernel root outside the
unit disk); the mass lost beyond :math:`N` is then bounded by
:math:`\pi_{N'} \hat\eta / (1 - \hat\eta)`, :math:`\hat\eta` the largest ratio measured over
the top 20 % (excluding the top state, which holds the lumped mass), :math:`N'` the last
state before the top. :attr:`ChainResult.error_bound` is that bound plus the mass of the
top 20 %.

Sources: Grassmann, Taksar and Heyman (1985), Oper. Res. 33, 1107-1116 (GTH); Bruneel and
Kim (1993), ch. 4 (the chain of the Geo^X/Geo/B queue).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError

__all__ = ["ChainResult", "truncated_chain", "planned_work", "thinned", "decay_rate", "gth_compiled",
           "MAX_CHAIN_WORK", "MAX_CHAIN_BYTES"]

MAX_CHAIN_BYTES = 512 * 2**20
"""Largest band storage (bytes) the truncated chain may allocate before it refuses: states x
up-band numbers with the compiled elimination, states x band width with the NumPy one."""

MAX_CHAIN_WORK = 5 * 10**8
"""Largest elimination work (states x up-band x down-band multiply-adds) before it refuses:
about 0.15 s compiled (3-4e9 a second), five seconds with the NumPy loop (1e8 a second)."""


@dataclass(frozen=True)
class ChainResult:
    r"""Stationary law of the truncated chain.

    Attributes
    ----------
    pi : numpy.ndarray
        :math:`P(Y = n)`, :math:`n = 0..N-1`.
    size : int
        Number of states :math:`N`.
    tail : float
        Mass of the top 20 % of the states.
    error_bound : float
        Bound on the total-variation distance to the untruncated law (module notes).
    """

    pi: np.ndarray
    size: int
    tail: float
    error_bound: float


def _row_parts(B: int, q: float, a: np.ndarray, low: int,
               size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    r"""The band of the transition matrix on states ``low..size-1`` in three parts, ``W[i, j - i + down]``:
    ``head`` (the rows of states below :math:`B`, each its own law), ``mid`` (the one row shared
    by every state from :math:`B` up) and ``tail`` (the top ``up + 1`` rows, where the mass of a
    jump past the top stays in the top state; they override the other two). Row :math:`i` is
    ``tail[i - (N - len(tail))]`` if in the tail, else ``head[i]`` if :math:`i <` ``len(head)``,
    else ``mid`` (:func:`_rows` assembles them).

    From :math:`n` (row :math:`i = n - low`) with :math:`s = \min(n, B)` members the next
    state is :math:`n - s + m`, :math:`m = (s - D) + A`, i.e. band column :math:`m - s + B`.
    """
    down, up = B, a.size - 1
    width = down + up + 1
    n_states = size - low
    from scipy.stats import binom  # SciPy loads where it is used (import queueing_llm stays light)

    sizes = sorted({min(n, B) for n in range(low, min(max(B, low), size))} | {B})
    k = np.arange(B + 1)
    s_col = np.array(sizes)[:, None]
    # s - D ~ Bin(s, 1 - q) for every batch size s the rows need, in one call (zero above s)
    kept_all = (binom.pmf(k[None, :], s_col, 1 - q) if q < 1
                else np.broadcast_to((k == 0).astype(float), (len(sizes), B + 1)))
    kept_of = dict(zip(sizes, kept_all, strict=True))

    def row_of(s: int) -> np.ndarray:
        row = np.convolve(kept_of[s][: s + 1], a)
        return row / row.sum()

    n_head = min(max(B, low) - low, n_states)
    head = np.zeros((n_head, width))
    for n in range(low, low + n_head):
        s = min(n, B)
        row = row_of(s)
        head[n - low, down - s: down - s + row.size] = row
    mid = np.zeros(width)
    full = row_of(B)
    mid[: full.size] = full
    first_top = max(0, n_states - 1 - up)
    tail = np.array([head[i] if i < n_head else mid for i in range(first_top, n_states)]).reshape(-1, width)
    for i in range(first_top, n_states):  # mass above the top stays in the top state
        t = tail[i - first_top]
        top_col = n_states - 1 - i + down
        if top_col + 1 < width:
            t[top_col] += t[top_col + 1:].sum()
            t[top_col + 1:] = 0.0
    return head, mid, tail, down, up


def _assemble(head: np.ndarray, mid: np.ndarray, tail: np.ndarray, n: int) -> np.ndarray:
    """The full band (``n`` rows) from the parts of :func:`_row_parts`."""
    W = np.empty((n, mid.size))
    W[:] = mid
    W[: head.shape[0]] = head
    if tail.shape[0]:
        W[n - tail.shape[0]:] = tail
    return W


def _rows(B: int, q: float, a: np.ndarray, low: int, size: int) -> tuple[np.ndarray, int, int]:
    """Band of the transition matrix on states ``low..size-1``: ``W[i, j - i + down]``, every row
    stored (the input of :func:`_banded_gth_numpy`; :func:`_row_parts` has the maths)."""
    head, mid, tail, down, up = _row_parts(B, q, a, low, size)
    return _assemble(head, mid, tail, size - low), down, up


def _banded_gth_numpy(W: np.ndarray, down: int, up: int) -> np.ndarray:
    """Stationary vector of the banded stochastic matrix by GTH elimination (no subtraction), NumPy
    version: one vectorised step per state. The fallback when numba cannot be imported, and the
    independent reference of the compiled :func:`_gth_loop` in the tests. ``W`` is overwritten."""
    n = W.shape[0]
    for k in range(n - 1, 0, -1):
        lo_c, lo_r = max(0, k - down), max(0, k - up)
        cols = np.arange(lo_c, k)
        s = W[k, cols - k + down].sum()
        if not s > 0:
            raise ModelError(f"truncated chain: state {k} cannot reach the lower states (reducible chain)")
        rows = np.arange(lo_r, k)
        col_idx = k - rows + down
        W[rows, col_idx] /= s
        W[rows[:, None], cols[None, :] - rows[:, None] + down] += np.outer(W[rows, col_idx], W[k, cols - k + down])
    pi = np.zeros(n)
    pi[0] = 1.0
    for k in range(1, n):
        rows = np.arange(max(0, k - up), k)
        pi[k] = pi[rows] @ W[rows, k - rows + down]
    return pi / pi.sum()


def _gth_loop(head, mid, tail, n, down, up, pi):  # pragma: no cover - runs compiled; tested against NumPy
    """The loops of :func:`_banded_gth_numpy`, element by element, on a window of the band
    (compiled by :func:`_compiled_gth`). The inner loops run on slices starting at 0 (no
    negative-index wraparound for numba to check), so LLVM vectorises them.

    The same arithmetic: for each state ``k`` from the top, ``s`` = its rate to the lower states
    (a sum of non-negative entries), the entries ``W[i, k]`` of the rows ``i`` in ``k - up..k - 1``
    divided by ``s``, then ``W[i, c] += W[i, k] W[k, c]`` for ``c`` in ``k - down..k - 1``; all
    additions and multiplications of non-negative numbers. Only the rows ``k - up..k`` change at
    step ``k``, so they live in a ring of ``up + 1`` rows (row ``i`` in slot ``i % (up + 1)``,
    filled from ``head``/``mid``/``tail`` as in :func:`_row_parts` when it enters), and of the
    finished rows only the entries ``W[i, i+1..i+up]`` the back substitution needs are kept
    (``U``): memory ``n * up`` numbers instead of ``n * (down + up + 1)``. Writes the unnormalised
    stationary vector to ``pi`` and returns -1, or the first state ``k`` whose ``s`` is not
    positive."""
    width = down + up + 1
    L = up + 1
    nh = head.shape[0]
    nt = tail.shape[0]
    R = np.empty((L, width))
    U = np.empty((n, max(up, 1)))
    buf = np.empty(max(down, 1))  # the lower part of row k, apart from R: the update loop vectorises
    for j in range(max(0, n - L), n):
        r = R[j % L]
        if j >= n - nt:
            r[:] = tail[j - (n - nt)]
        elif j < nh:
            r[:] = head[j]
        else:
            r[:] = mid
    for k in range(n - 1, 0, -1):
        rk = R[k % L]
        lo_c = max(0, k - down)
        lo_r = max(0, k - up)
        m = k - lo_c
        s = 0.0
        src = rk[lo_c - k + down: down]  # columns lo_c..k-1 of row k
        for c in range(m):
            v = src[c]
            buf[c] = v
            s += v
        if not s > 0:
            return k
        for i in range(lo_r, k):
            ri = R[i % L]
            ik = k - i + down
            w = ri[ik] / s
            ri[ik] = w
            U[i, k - i - 1] = w  # final: later steps change only columns below theirs
            if w != 0.0:
                dst = ri[lo_c - i + down: k - i + down]  # columns lo_c..k-1 of row i
                for c in range(m):
                    dst[c] += w * buf[c]
        j = k - L
        if j >= 0:  # the row entering the window takes row k's slot
            if j >= n - nt:
                rk[:] = tail[j - (n - nt)]
            elif j < nh:
                rk[:] = head[j]
            else:
                rk[:] = mid
    pi[0] = 1.0
    for k in range(1, n):
        acc = 0.0
        for i in range(max(0, k - up), k):
            acc += pi[i] * U[i, k - i - 1]
        pi[k] = acc
    return -1


_GTH = None  # the compiled loop, False when numba cannot be imported


def _compiled_gth():
    """:func:`_gth_loop` compiled by numba (cached on disk), or None without numba. numba is
    imported here, on first use, so ``import queueing_llm`` stays light."""
    global _GTH
    if _GTH is None:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency; the NumPy loop still answers
            _GTH = False
        else:
            _GTH = numba.njit(cache=True, nogil=True)(_gth_loop)
    return _GTH or None


def gth_compiled() -> bool:
    """True if the GTH elimination runs compiled (numba imports); False: the NumPy loop, about
    ten times slower. Imports numba on first call."""
    return _compiled_gth() is not None


def _solve_parts(head: np.ndarray, mid: np.ndarray, tail: np.ndarray, n: int, down: int, up: int,
                 compiled: bool = True) -> np.ndarray:
    """Stationary vector of the banded chain given by the parts of :func:`_row_parts` (``n``
    states), by GTH elimination, no subtraction.

    Runs the numba-compiled :func:`_gth_loop` (about 3-4e9 multiply-adds a second, memory
    ``n * up`` numbers) when numba imports and ``compiled``, else :func:`_banded_gth_numpy` on
    the assembled band (about 1e8 a second, memory ``n * (down + up + 1)``). Both do the same
    operations in the same order except the summation order of ``s``, so they agree to a few
    ulps per step (measured: identical on B = 256, load 0.999, 37 462 states, to the one-loop
    compiled version; 1e-12 relative to the NumPy one)."""
    loop = _compiled_gth() if compiled else None
    if loop is None:
        return _banded_gth_numpy(_assemble(head, mid, tail, n), down, up)
    pi = np.zeros(n)
    k = int(loop(np.ascontiguousarray(head, dtype=np.float64), np.ascontiguousarray(mid, dtype=np.float64),
                 np.ascontiguousarray(tail, dtype=np.float64), int(n), int(down), int(up), pi))
    if k >= 0:
        raise ModelError(f"truncated chain: state {k} cannot reach the lower states (reducible chain)")
    return pi / pi.sum()


def _banded_gth(W: np.ndarray, down: int, up: int, compiled: bool = True) -> np.ndarray:
    """Stationary vector of the banded stochastic matrix ``W`` (``W[i, j - i + down]`` =
    :math:`P_{ij}`) by GTH elimination (:func:`_solve_parts` with every row in ``head``); the
    NumPy route overwrites ``W``."""
    width = W.shape[1]
    return _solve_parts(W, np.zeros(width), np.zeros((0, width)), W.shape[0], down, up, compiled)


def decay_rate(B: int, q: float, a: np.ndarray) -> float:
    r"""The geometric decay rate :math:`\eta = 1/s^*` of the stationary tail, :math:`s^* > 1`
    the real root of :math:`B \log(s / r(s)) = \log A(s)`, :math:`r(s) = q + (1-q)s` (the
    Cramér root of the walk's increment :math:`A - D`; 0 when the walk cannot climb).

    For :math:`n \ge B` the chain is a random walk with increment :math:`A - \mathrm{Bin}(B, q)`
    and :math:`E[(s^*)^{A - D}] = 1`, so :math:`\pi_n \sim c\,\eta^n` (Bruneel and Kim 1993, ch. 4).
    """
    j = np.flatnonzero(a > 0)
    loga = np.log(a[j])

    def f(s: float) -> float:
        x = loga + j * math.log(s)
        log_a = float(x.max() + math.log(np.exp(x - x.max()).sum()))
        return B * (math.log(s) - math.log(q + (1 - q) * s)) - log_a

    hi = 1.0 + 1e-9
    while f(hi) > 0:
        hi = 1 + 2 * (hi - 1)
        if hi > 1e12:
            return 0.0  # the walk never climbs this far: no geometric tail to speak of
    lo = 1.0 + (hi - 1) / 2 if hi > 1.0 + 1e-9 else 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 1.0 / hi


def _plan(B: int, q: float, arrivals: np.ndarray, tail: float) -> tuple[np.ndarray, int, int]:
    """The arrival law cut after its last positive mass, the lowest recurrent state and the
    first truncation size :func:`truncated_chain` tries."""
    a = np.asarray(arrivals, dtype=float)
    nz = np.flatnonzero(a > 0)
    if nz.size == 0:
        raise ModelError("truncated chain: the arrival law has no mass")
    a = a[: nz[-1] + 1]
    low = int(nz[0])  # Y' >= A: states below the smallest arrival count are transient
    size = low + B + max(256, 8 * (a.size - 1 + B))
    eta = decay_rate(B, q, a)
    if 0 < eta < 1:  # the top 20 % hold about eta^(0.8 N) / (1 - eta): start where that is below tail
        need = math.log(tail * (1 - eta)) / math.log(eta) / 0.8
        size = max(size, low + B + int(math.ceil(need)))
    elif eta >= 1:
        raise ModelError("truncated chain: the model is not stable (no decaying tail)")
    return a, low, size


def planned_work(B: int, q: float, arrivals: np.ndarray, tail: float = 1e-14) -> int:
    r"""The elimination work (multiply-adds) of the first truncation :func:`truncated_chain` tries:
    states :math:`\times` up-band :math:`\times` :math:`B`. Increasing in the arrival law's load
    (the decay rate :math:`\eta` grows towards 1), so it decides cheaply, before any solve,
    whether a model is within a work budget."""
    a, low, size = _plan(B, q, arrivals, tail)
    return (size - low) * max(a.size - 1, 1) * B


def thinned(arrivals: np.ndarray, theta: float, cut: float = 1e-20) -> np.ndarray:
    r"""The law of :math:`A' = \mathrm{Bin}(A, \theta)`: each arrival kept with probability :math:`\theta`.

    :math:`a'_j = \sum_i a_i \binom{i}{j} \theta^j (1-\theta)^{i-j}`. :math:`A' \le A` pathwise,
    so the chain fed by :math:`A'` stays below the chain fed by :math:`A` (the chain is monotone:
    from :math:`n \le n'` the departures satisfy :math:`D' - D \le \min(n', B) - \min(n, B) \le
    n' - n`) and its :math:`P(\text{empty})` is at least the original's. Poisson(:math:`\lambda`)
    thins to Poisson(:math:`\theta\lambda`). Trailing probabilities below ``cut`` are dropped, as
    the arrival laws themselves are cut.
    """
    from scipy.stats import binom  # SciPy loads where it is used (import queueing_llm stays light)

    a = np.asarray(arrivals, dtype=float)
    if not 0 <= theta <= 1:
        raise ModelError(f"thinning probability theta must lie in [0, 1], got {theta}")
    i = np.arange(a.size)
    kernel = binom.pmf(i[None, :], i[:, None], theta)  # row i: Bin(i, theta) on 0..i
    out = a @ kernel
    kept = np.flatnonzero(out >= cut)  # the tail cut of the arrival laws (queue_stationary.arrival_pmf)
    return out[: int(kept.max()) + 1] if kept.size else out[:1]


def truncated_chain(B: int, q: float, arrivals: np.ndarray, tail: float = 1e-14,
                    max_bytes: int = MAX_CHAIN_BYTES, max_work: int = MAX_CHAIN_WORK) -> ChainResult:
    r"""Stationary law of the queue's chain, truncated where the top 20 % carry < ``tail``.

    Parameters
    ----------
    B : int
        Batch cap.
    q : float
        Completion probability per member and iteration, :math:`0 < q \le 1`.
    arrivals : numpy.ndarray
        :math:`a_0, a_1, \dots`, the law of the arrivals per iteration (finite, cut tail).
    tail : float
        Truncation tolerance on the mass of the top 20 % of the states.
    max_bytes, max_work : int
        Limits of the band matrix and the elimination work; beyond them a
        :class:`~queueing_llm.errors.ModelError` names the size needed.

    Returns
    -------
    ChainResult
    """
    a, low, size = _plan(B, q, arrivals, tail)
    up = a.size - 1
    compiled = gth_compiled()
    while True:
        width = B + up + 1
        need_bytes = (size - low) * (max(up, 1) if compiled else width) * 8
        need_work = (size - low) * max(up, 1) * B
        if need_bytes > max_bytes or need_work > max_work:
            raise ModelError(
                f"the truncated chain needs {size - low} states (band {width}: {need_bytes / 2**20:.0f} MiB, "
                f"{need_work:.3g} operations) to reach a tail below {tail:g}, beyond its limits "
                f"({max_bytes / 2**20:.0f} MiB, {max_work:.3g}); the model is too close to critical load "
                "for the chain route"
            )
        head, mid, top_rows, down, upb = _row_parts(B, q, a, low, size)
        pi = _solve_parts(head, mid, top_rows, size - low, down, upb, compiled)
        top = pi[int(0.8 * pi.size):]
        if top.sum() < tail:
            break
        size = low + 2 * (size - low)
    body = top[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = body[1:] / body[:-1]
    ratios = ratios[np.isfinite(ratios)]
    eta = float(ratios.max()) if ratios.size else 0.0
    lost = math.inf if eta >= 1 else float(body[-1]) * eta / (1 - eta) if body.size else 0.0
    full = np.concatenate([np.zeros(low), pi])
    return ChainResult(full, size, float(top.sum()), float(top.sum()) + lost)
