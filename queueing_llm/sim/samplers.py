r"""NumPy's own Poisson and geometric draws, bit for bit, at a lower cost per block.

The simulation draws its arrival counts and decode lengths in blocks of thousands
(:mod:`.draws`). ``Generator.poisson`` and ``Generator.geometric`` evaluate what does not
change within a block anew for every draw (``exp(-lam)``, ``log1p(-p)``), each draw through
a call of NumPy's generic loop. The samplers here run NumPy's algorithms (NumPy's
``random/src/distributions/distributions.c``) with those constants evaluated once, on the
same uniforms from the same generator, so they return the same values and leave the
generator in the same state:

* **Geometric**, :math:`p < 1/3` (NumPy's switch: below it inversion, above it a
  sequential search): draw :math:`k` is :math:`\lceil E_k / (-\log(1 - p)) \rceil` with
  :math:`E_k` the generator's standard exponentials (ziggurat), one per draw, so one call
  of ``Generator.standard_exponential(size)`` consumes what ``geometric(p, size)`` consumes.
  NumPy divides :math:`-E_k` by ``log1p(-p)``; IEEE division is sign-symmetric, so the
  quotients are equal. Only laws whose tail beyond :math:`2^{53}` is exactly 0 in double
  precision (:func:`~queueing_llm.laws.geometric_tail_is_zero`, every numeric
  :class:`~queueing_llm.laws.Geometric`) take this path: their draws stay far from NumPy's
  saturation at the int64 maximum. :math:`p \ge 1/3` stays with NumPy (its search is cheap).
* **Poisson**, :math:`0 < \lambda < 10` (below NumPy's switch to the PTRS rejection
  method): the multiplication method, draw :math:`X` = the number of partial products
  :math:`U_1 U_2 \cdots U_j` above :math:`e^{-\lambda}`, which consumes :math:`X + 1`
  uniforms. The uniforms are drawn in bulk (``Generator.random``, the same ``next_double``
  stream), the products run in a small numba loop, and the uniforms drawn beyond the last
  complete draw are given back (``PCG64.advance`` by a negative count, exact modulo
  :math:`2^{128}`). This needs numba, already imported by the process (the compiled kernel
  imports it; the Python engines alone do not pay for the import), and a PCG64 generator
  with no buffered 32-bit half (``advance`` clears that buffer); otherwise, and for
  :math:`\lambda \ge 10`, NumPy draws. :math:`\lambda = 0` is NumPy's (no draw).

Both constants come from the C library (``math.exp``, ``math.log1p`` call the libm that
NumPy's C code calls). The first sampler built in a process, and the Poisson loop when it
is compiled, compare themselves with NumPy on fixed seeds and parameters on both sides of
each switch (:func:`exact`, :func:`_loop`); if any value or generator state differs (a
NumPy whose algorithms changed), those laws are drawn by NumPy. ``tests/test_samplers.py``
checks the equality over seeds and parameters drawn by Hypothesis.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from ..laws import Deterministic, Geometric, Law, Poisson, geometric_tail_is_zero
from ..numbers import to_float

__all__ = ["sampler", "exact", "GEOMETRIC_SEARCH_FROM", "POISSON_PTRS_FROM"]

Sampler = Callable[[np.random.Generator, int], np.ndarray]

GEOMETRIC_SEARCH_FROM = 0.333333333333333333333333
"""NumPy's switch (the same C literal): ``geometric(p)`` searches for ``p`` at or above it,
inverts below it."""

POISSON_PTRS_FROM = 10.0
"""NumPy's switch: ``poisson(lam)`` uses the PTRS rejection method for ``lam`` at or above it."""

_CACHE: dict[int, tuple[Law, Sampler]] = {}
_CACHE_SIZE = 256
_MULT: Any = None  # the compiled multiplication loop (None: not yet; False: not exact here)
_EXACT: bool | None = None


def _mult_py(u, enlam, out, k, width):
    """NumPy's ``random_poisson_mult`` over the uniforms ``u``: fill ``out[k:]``, one draw per
    run of uniforms whose running product stays above ``enlam`` (its length) plus the uniform
    ending it; stop at the end of ``out`` or before a draw the uniforms do not finish.
    Returns (index of the next draw to make, uniforms used).

    A draw first multiplies ``width`` uniforms without a branch and counts the products
    above ``enlam``: the products only decrease, so a count below ``width`` is the draw
    (the uniforms after its end are read, not used); otherwise it goes on one uniform at a
    time. Same values as the plain loop, fewer mispredicted branches."""
    i = 0
    n = u.size
    size = out.size
    while k < size:
        prod = 1.0
        x = 0
        j = i
        if i + width <= n:
            for t in range(width):
                prod *= u[i + t]
                x += prod > enlam
            if x < width:
                out[k] = x
                k += 1
                i += x + 1
                continue
            j = i + width
        while True:
            if j >= n:
                return k, i
            prod *= u[j]
            j += 1
            if prod > enlam:
                x += 1
            else:
                break
        out[k] = x
        k += 1
        i = j
    return k, i


def _compile() -> Any:
    """The multiplication loop compiled by numba (cached on disk)."""
    import numba

    return numba.njit(cache=True, nogil=True)(_mult_py)


def _loop() -> Any:
    """The compiled multiplication loop, once numba is imported in this process (the kernel
    imports it; a run of the Python engines alone does not pay for numba: its Poisson laws
    are drawn by NumPy, the same values). Checked against NumPy when compiled; False if it
    disagrees; None while numba is not imported."""
    global _MULT
    if _MULT is None and "numba" in sys.modules:
        loop = _compile()
        _MULT = loop if _agrees([Poisson(lam) for lam in (0.05, 2.432, 7.0, 9.999999999999998)], loop) else False
    return _MULT


_SPREAD = 3.0
_SLACK = 16.0
_ROUND = 1 << 20  # uniforms drawn at most at once (8 MiB), whatever the number of draws asked


def _uniforms_for(draws: int, per: float, lam: float) -> int:
    """Uniforms to draw for ``draws`` Poisson draws: their mean count plus ``_SPREAD``
    standard deviations (more are drawn when short, the unused given back), at most
    ``_ROUND``."""
    return max(1, min(_ROUND, int(draws * per + _SPREAD * math.sqrt(draws * lam) + _SLACK)))


def _numpy(law: Law) -> Sampler:
    def draw(rng: np.random.Generator, size: int) -> np.ndarray:
        return np.asarray(law.sample(rng, size=size), dtype=np.int64).reshape(size)

    return draw


def _geometric_inversion(law: Geometric, p: float) -> Sampler:
    scale = -math.log1p(-p)  # NumPy: ceil(-E / log1p(-p)), the same quotient
    slow = _numpy(law)

    def draw(rng: np.random.Generator, size: int) -> np.ndarray:
        if not isinstance(rng, np.random.Generator):
            return slow(rng, size)  # the law's own error
        out = np.empty(size, dtype=np.int64)
        for lo in range(0, size, _ROUND):  # in rounds: one float buffer of at most _ROUND draws
            e = rng.standard_exponential(min(_ROUND, size - lo))  # (a stream drawn in pieces is
            np.divide(e, scale, out=e)  # the stream drawn at once)
            np.ceil(e, out=e)
            np.copyto(out[lo:lo + e.size], e, casting="unsafe")
        return out

    return draw


def _poisson_mult(law: Poisson, lam: float, loop: Any = None) -> Sampler:
    enlam = math.exp(-lam)
    per = lam + 1.0  # uniforms per draw: X + 1, mean lam + 1, variance lam
    width = max(2, round(lam + 2.0 * math.sqrt(lam)))  # fastest measured: 5 at lam = 2.4, 12 at 7
    slow = _numpy(law)

    def draw(rng: np.random.Generator, size: int) -> np.ndarray:
        mult = loop or _MULT or _loop()
        bits = getattr(rng, "bit_generator", None)
        if not mult or type(bits) is not np.random.PCG64:
            return slow(rng, size)
        state = bits.state
        if state["has_uint32"] or state["uinteger"]:  # advance() would clear the buffered half
            return slow(rng, size)
        out = np.empty(size, dtype=np.int64)
        k = 0
        n = _uniforms_for(size, per, lam)
        while k < size:
            u = rng.random(n)
            done, used = mult(u, enlam, out, k, width)
            if used < n:
                bits.advance(used - n)  # give back the uniforms of no finished draw
            n = 2 * n if done == k else _uniforms_for(size - done, per, lam)  # no draw finished: longer
            k = done
        return out

    return draw


def _deterministic(law: Deterministic, value: int) -> Sampler:
    slow = _numpy(law)

    def draw(rng: np.random.Generator, size: int) -> np.ndarray:
        if not isinstance(rng, np.random.Generator):
            return slow(rng, size)
        return np.full(size, value, dtype=np.int64)

    return draw


def _build(law: Law, fast: bool, loop: Any = None) -> Sampler:
    """The sampler of ``law``: NumPy's (``fast`` False, or a law without a fast path), or a
    fast one (``loop``: the Poisson multiplication loop to use, else the process's)."""
    kind = type(law)  # a subclass may draw otherwise: NumPy's path through its own sample()
    if not fast or kind not in (Geometric, Poisson, Deterministic) or law.is_symbolic:
        return _numpy(law)
    if kind is Deterministic:
        return _deterministic(law, int(law._num("value")))  # as Deterministic.sample
    if kind is Geometric:
        p = to_float(law.q, "Geometric.q")
        if p < GEOMETRIC_SEARCH_FROM and geometric_tail_is_zero(p):
            return _geometric_inversion(law, p)
        return _numpy(law)
    lam = to_float(law.mean_, "Poisson.mean_")
    if 0.0 < lam < POISSON_PTRS_FROM:
        return _poisson_mult(law, lam, loop)
    return _numpy(law)


def sampler(law: Law) -> Sampler:
    """A function ``(rng, size) -> int64 array of size draws`` that returns what
    ``law.sample(rng, size=size)`` returns and consumes ``rng`` as it does (errors included:
    a symbolic law or a generator of another kind goes through ``law.sample``). Built once
    per law object (a small cache keyed by identity)."""
    hit = _CACHE.get(id(law))
    if hit is not None and hit[0] is law:
        return hit[1]
    built = _build(law, exact())
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[id(law)] = (law, built)
    return built


def _agrees(cases: list[Law], loop: Any = None) -> bool:
    """The fast samplers of ``cases`` (with the Poisson loop ``loop``) against NumPy on fixed
    seeds: same values, same state."""
    for law in cases:
        fast = _build(law, True, loop)
        for seed in (0, 1):
            a, b = np.random.default_rng(seed), np.random.default_rng(seed)
            for size in (1, 37, 2000):
                if not np.array_equal(fast(a, size), np.asarray(law.sample(b, size=size), dtype=np.int64)):
                    return False
            if a.bit_generator.state != b.bit_generator.state:
                return False
    return True


def exact() -> bool:
    """True if this process's NumPy draws the geometric values the fast sampler computes
    (checked once, on both sides of NumPy's switch; the Poisson loop is checked when compiled)."""
    global _EXACT
    if _EXACT is None:
        _EXACT = _agrees([Geometric(q) for q in (0.01, 0.25, 0.3333333333333332, 2.0**-40, 1e-9)])
    return _EXACT
