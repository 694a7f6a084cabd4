"""Independent reference for the batch-capped queue: the Markov chain built from the slot order.

Test-only helper. The state is the number in system after admission. One transition
follows the model chapter, section 2 literally: the batch holds ``min(n, B)`` members and the queue
``n - min(n, B)``; **execute**: each member completes independently with probability q
(geometric decode lengths); **arrive**: ``a`` requests, of which ``min(a, K - queue)`` are
accepted when a waiting cap K is set; **admit**: up to B (does not change the number in
system). Nothing here uses the PGF, the kernel or its roots; the chain is solved with
GTH elimination on the band of the SciPy sparse matrix (componentwise accurate, so the
truncation test sees the true tail), and optionally by SciPy sparse LU for comparison.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve
from scipy.stats import binom


def slot_transition(
    n: int, B: int, q: float, arrivals: np.ndarray, K: float = math.inf
) -> tuple[int, np.ndarray, float]:
    """Law of the next number in system from ``n``: ``(offset, probabilities of offset, offset+1, ...)``,
    and the expected rejections."""
    batch = min(n, B)
    queue = n - batch
    done = _completions(batch, q)  # completions d = 0..batch
    if math.isinf(K):
        accepted = arrivals
        rejected = 0.0
    else:
        room = int(K) - queue
        accepted = np.zeros(room + 1)
        head = arrivals[:room]
        accepted[: head.size] = head
        accepted[room] = max(1.0 - head.sum(), 0.0)
        mean_a = float(np.arange(arrivals.size) @ arrivals)
        rejected = mean_a - float(np.arange(room + 1) @ accepted)
    low = n - batch
    out = np.zeros(batch + accepted.size)
    for d, pd in enumerate(done):
        out[n - d - low: n - d - low + accepted.size] += pd * accepted
    return low, out, rejected


@lru_cache(maxsize=512)
def _completions(batch: int, q: float) -> np.ndarray:
    """Law of the completions of ``batch`` members, each completing with probability q."""
    return binom.pmf(np.arange(batch + 1), batch, q)


def _assemble(rows: list[tuple[int, np.ndarray]], size: int) -> sparse.csr_matrix:
    r, c, v = [], [], []
    for i, (low, dist) in enumerate(rows):
        idx = np.nonzero(dist)[0]
        vals = dist[idx]
        nz = idx + low
        over = nz >= size
        if over.any():  # truncation: the mass above the last state stays there
            vals = np.concatenate([vals[~over], [vals[over].sum()]])
            nz = np.concatenate([nz[~over], [size - 1]])
        r.extend([i] * nz.size)
        c.extend(nz.tolist())
        v.extend(vals.tolist())
    return sparse.csr_matrix((v, (r, c)), shape=(size, size))


def _solve(rows: list[tuple[int, np.ndarray]], size: int) -> np.ndarray:
    """Stationary vector by GTH elimination restricted to the band of the sparse matrix.

    Jumps go down by at most ``down`` and up by at most ``up`` states, and eliminating the
    highest state keeps that band, so each step touches an ``up x down`` block. GTH uses no
    subtraction, so even the far tail (1e-30) is accurate to a few ulps: the truncation
    test below measures the true tail, not rounding noise (an LU solve leaves an absolute
    noise of ~1e-16 per state there).
    """
    P = _assemble(rows, size).tocoo()
    down = int(max(0, (P.row - P.col).max()))
    up = int(max(0, (P.col - P.row).max()))
    A = P.toarray()
    for k in range(size - 1, 0, -1):
        lo_c, lo_r = max(0, k - down), max(0, k - up)
        s = A[k, lo_c:k].sum()
        A[lo_r:k, k] /= s
        A[lo_r:k, lo_c:k] += np.outer(A[lo_r:k, k], A[k, lo_c:k])
    pi = np.zeros(size)
    pi[0] = 1.0
    for k in range(1, size):
        lo_r = max(0, k - up)
        pi[k] = pi[lo_r:k] @ A[lo_r:k, k]
    return pi / pi.sum()


def _solve_lu(rows: list[tuple[int, np.ndarray]], size: int) -> np.ndarray:
    """The same stationary vector by SciPy sparse LU (state 0 pinned): an independent solver."""
    P = _assemble(rows, size)
    M = (sparse.identity(size, format="csr") - P)[1:, 1:].T.tocsc()
    rhs = np.asarray(P[0, 1:].todense()).ravel()
    pi = np.concatenate([[1.0], spsolve(M, rhs)])
    return pi / pi.sum()


def stationary_chain(
    B: int, q: float, arrivals: np.ndarray, tail: float = 1e-14, start: int = 256, lu: bool = False
) -> dict:
    """Stationary law of the truncated chain (banded GTH; the SciPy sparse LU solution is
    returned as ``pi_lu`` for comparison). The truncation level doubles until the top 20 %
    of the states carry less than ``tail``. Returns the law and its moments."""
    size = B + start
    while True:
        rows = [slot_transition(n, B, q, arrivals)[:2] for n in range(size)]
        pi = _solve(rows, size)
        top = pi[int(0.8 * size):]
        if top.sum() < tail:
            break
        size *= 2
        if size > 12_000:  # a reference that cannot converge must fail loudly
            raise RuntimeError(f"truncated chain did not reach the tail tolerance (top mass {top.sum():.3g})")
    n = np.arange(size)
    lam = float(np.arange(arrivals.size) @ arrivals)
    mean = float(n @ pi)
    return {
        "pi": pi,
        "pi_lu": _solve_lu(rows, size) if lu else None,
        "size": size,
        "tail": float(top.sum()),
        "mean_in_system": mean,
        "p_empty": float(pi[0]),
        "mean_batch": float(np.minimum(n, B) @ pi),
        "mean_sojourn": mean / lam,
    }


def waiting_chain(B: int, K: int, q: float, arrivals: np.ndarray) -> dict:
    """The finite chain 0..B+K of the capped queue (no truncation); rejection probability."""
    size = B + K + 1
    rows, rej = [], []
    for n in range(size):
        low, dist, r = slot_transition(n, B, q, arrivals, K)
        rows.append((low, dist))
        rej.append(r)
    pi = _solve(rows, size)
    lam = float(np.arange(arrivals.size) @ arrivals)
    rate = float(np.asarray(rej) @ pi)
    return {"pi": pi, "rejection_rate": rate, "rejection_probability": rate / lam,
            "mean_in_system": float(np.arange(size) @ pi)}
