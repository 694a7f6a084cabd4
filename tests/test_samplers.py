"""The simulation's samplers (:mod:`queueing_llm.sim.samplers`) against NumPy's own.

Every sampler must return what ``Generator.poisson`` / ``Generator.geometric`` return for the
same generator, and leave the generator in the same state, over seeds and parameters drawn
by Hypothesis (on both sides of NumPy's switches: geometric search at p >= 1/3, Poisson PTRS
at lam >= 10), over several blocks in a row and when the bulk uniforms run short; what they
cannot draw exactly goes to NumPy (another bit generator, a buffered 32-bit half, a
symbolic law, a law subclass, a NumPy whose algorithms differ); and the 2^53 tail check of
:meth:`~queueing_llm.laws.Geometric.sample` runs exactly where the tail is not exactly 0.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm import laws
from queueing_llm.numbers import MAX_INTEGER
from queueing_llm.sim import draws, samplers
from queueing_llm.sim.kernel import numba_available

LOOP = samplers._compile() if numba_available() else None  # (numba imported: draws.sample takes the loop too)

THIRD = 0.333333333333333333333333  # NumPy's switch, as the C literal rounds it
BELOW_THIRD = math.nextafter(THIRD, 0.0)
BELOW_TEN = math.nextafter(10.0, 0.0)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

geometric_q = st.one_of(
    st.sampled_from([2.0**-40, 3e-12, 1e-9, 1e-6, 0.01, 0.25, BELOW_THIRD, THIRD, math.nextafter(THIRD, 1.0), 0.5,
                     1.0]),
    st.floats(2.0**-40, 1.0),
    st.floats(0.3, 0.36),
)
poisson_mean = st.one_of(
    st.sampled_from([0.0, 5e-324, 1e-9, 0.5, 2.432, 9.5, BELOW_TEN, 10.0, 10.5, 40.0]),
    st.floats(0.0, 12.0),
    st.floats(9.0, 10.0),
)
sizes = st.lists(st.integers(0, 3000), min_size=1, max_size=4)


def _same_as_numpy(law, numpy_draw, seed, block_sizes):
    """Blocks of ``draws.sample`` (and of the fast sampler itself, whatever the process's probe
    said) against NumPy's sampler called directly, a uniform between blocks; the values and
    the generator's state must agree after every block."""
    fast = samplers._build(law, True, LOOP)  # the compiled loop itself, whatever the process's probe said
    for draw in (lambda rng, size: draws.sample(law, rng, size), lambda rng, size: fast(rng, size) if size else
                 np.zeros(0, dtype=np.int64)):
        ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        for size in block_sizes:
            got = draw(ours, size)
            want = numpy_draw(theirs, size) if size else np.zeros(0, dtype=np.int64)
            assert got.dtype == np.int64 and got.shape == (size,)
            assert np.array_equal(got, want), (law, seed, size)
            assert ours.bit_generator.state == theirs.bit_generator.state
            assert ours.random() == theirs.random()


@settings(max_examples=150, deadline=None)
@given(q=geometric_q, seed=st.integers(0, 2**63), block_sizes=sizes)
def test_geometric_draws_are_numpys(q, seed, block_sizes):
    _same_as_numpy(ql.Geometric(q), lambda rng, size: rng.geometric(q, size), seed, block_sizes)


@settings(max_examples=150, deadline=None)
@given(lam=poisson_mean, seed=st.integers(0, 2**63), block_sizes=sizes)
def test_poisson_draws_are_numpys(lam, seed, block_sizes):
    _same_as_numpy(ql.Poisson(lam), lambda rng, size: rng.poisson(lam, size), seed, block_sizes)


@pytest.mark.parametrize("lam", [0.3, 2.432, BELOW_TEN])
def test_poisson_when_the_bulk_uniforms_run_short_or_long(monkeypatch, lam):
    """Too few uniforms per round (several rounds, rounds that finish no draw), far too
    many (most given back), rounds capped at 50 uniforms: the same draws and state as NumPy's."""
    for spread, slack, most in [(-6.0, -40.0, 1 << 20), (-1.0, 0.0, 1 << 20), (40.0, 5000.0, 1 << 20),
                                (3.0, 16.0, 50)]:
        monkeypatch.setattr(samplers, "_SPREAD", spread)
        monkeypatch.setattr(samplers, "_SLACK", slack)
        monkeypatch.setattr(samplers, "_ROUND", most)
        samplers._CACHE.clear()
        for seed in range(5):
            _same_as_numpy(ql.Poisson(lam), lambda rng, size: rng.poisson(lam, size), seed, [4096, 1, 37, 0, 500])


def _plain_mult(u, enlam, size):
    """NumPy's multiplication method written out: the draws the uniforms ``u`` finish (at
    most ``size``) and the uniforms they use."""
    draws, i = [], 0
    while len(draws) < size:
        x, prod, j = 0, 1.0, i
        while j < len(u):
            prod *= u[j]
            j += 1
            if prod <= enlam:
                break
            x += 1
        else:
            break
        draws.append(x)
        i = j
    return draws, i


@pytest.mark.skipif(LOOP is None, reason="numba not importable: no compiled loop")
@pytest.mark.parametrize("lam", [0.05, 1.0, 2.432, 7.0, BELOW_TEN])
def test_the_loop_at_every_width_is_the_plain_method(lam):
    """Any ``width`` of the branch-free first products, any start, uniforms that end inside
    a draw: the plain method's draws and count of uniforms used."""
    rng = np.random.default_rng(int(lam * 1000))
    enlam = math.exp(-lam)
    for trial in range(60):
        u = rng.random(int(rng.integers(1, 3000)))
        if trial % 3 == 0:
            u[rng.integers(0, u.size)] = 0.0  # a zero uniform ends its draw
        k0, size = int(rng.integers(0, 20)), int(rng.integers(20, 900))
        want, used = _plain_mult(u, enlam, size - k0)
        for width in (1, 2, 3, 5, 8, 13, 17):
            out = np.full(size, -1, dtype=np.int64)
            done, got_used = LOOP(u, enlam, out, k0, width)
            assert (done - k0, got_used) == (len(want), used)
            assert out[k0:done].tolist() == want


@pytest.mark.skipif(not numba_available(), reason="numba not importable: Poisson draws are NumPy's own")
def test_the_fast_paths_are_the_ones_taken():
    """The laws of the benchmark's workload do not go through NumPy's per-draw samplers (else
    the speed-up is gone without a test failing)."""
    assert samplers.exact()
    import numba  # noqa: F401  (the loop is used once numba is imported, as the kernel imports it)

    assert samplers._loop()  # compiled and probed against NumPy (the probe calls Poisson.sample) first
    for law in (ql.Geometric(0.01), ql.Geometric(BELOW_THIRD), ql.Poisson(2.432), ql.Poisson(BELOW_TEN)):
        rng = np.random.default_rng(0)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(type(law), "sample", lambda self, rng, size=None: pytest.fail(f"{self!r} drawn by NumPy"))
            samplers._CACHE.clear()
            assert draws.sample(law, rng, 100).size == 100
    samplers._CACHE.clear()


def test_what_cannot_be_drawn_exactly_is_drawn_by_numpy():
    law = ql.Poisson(2.4)
    # another bit generator (no exact rewind): NumPy's draws, same state
    a, b = np.random.Generator(np.random.MT19937(3)), np.random.Generator(np.random.MT19937(3))
    assert np.array_equal(draws.sample(law, a, 500), b.poisson(2.4, 500))
    assert np.array_equal(a.random(20), b.random(20))
    # a buffered 32-bit half (advance would clear it): kept
    a, b = np.random.default_rng(4), np.random.default_rng(4)
    a.integers(0, 7, dtype=np.int32)
    b.integers(0, 7, dtype=np.int32)
    assert a.bit_generator.state["has_uint32"] == 1
    assert np.array_equal(draws.sample(law, a, 500), b.poisson(2.4, 500))
    assert a.bit_generator.state == b.bit_generator.state
    assert a.integers(0, 2**31, dtype=np.int32) == b.integers(0, 2**31, dtype=np.int32)  # the buffered half
    # errors are the law's own
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        draws.sample(ql.Geometric(0.1), np.random.RandomState(0), 5)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        draws.sample(law, np.random.RandomState(0), 5)
    with pytest.raises(ql.LawError, match="symbolic"):
        draws.sample(ql.Poisson(sp.Symbol("lam")), np.random.default_rng(0), 5)


class _Halved(ql.Geometric):
    """A law subclass with its own sampler: the simulation must draw it by that sampler."""

    def sample(self, rng, size=None):
        return super().sample(rng, size) // 2


def test_a_law_subclass_keeps_its_own_sample():
    a, b = np.random.default_rng(8), np.random.default_rng(8)
    assert np.array_equal(draws.sample(_Halved(0.05), a, 300), b.geometric(0.05, 300) // 2)


def test_a_numpy_that_draws_otherwise_turns_the_fast_paths_off(monkeypatch):
    """The probe at the first sampler of a process compares with NumPy: a changed algorithm
    (here: NumPy's geometric replaced) makes every law go through ``law.sample``."""
    original = np.random.Generator.geometric

    class Other(np.random.Generator):
        def geometric(self, p, size=None):
            return original(self, min(1.0, 1.5 * p), size)

    monkeypatch.setattr(np.random, "default_rng", lambda seed=None: Other(np.random.PCG64(seed)))
    monkeypatch.setattr(samplers, "_EXACT", None)
    samplers._CACHE.clear()
    try:
        assert not samplers.exact()
        rng = np.random.default_rng(2)
        law = ql.Geometric(0.01)
        assert np.array_equal(draws.sample(law, rng, 50), Other(np.random.PCG64(2)).geometric(0.01, 50))
    finally:
        samplers._CACHE.clear()


@pytest.mark.skipif(not numba_available(), reason="numba not importable: Poisson draws are NumPy's own")
def test_a_numpy_poisson_that_draws_otherwise_turns_the_loop_off(monkeypatch):
    original = np.random.Generator.poisson

    class Other(np.random.Generator):
        def poisson(self, lam=1.0, size=None):
            return original(self, lam, size) + 1

    monkeypatch.setattr(np.random, "default_rng", lambda seed=None: Other(np.random.PCG64(seed)))
    monkeypatch.setattr(samplers, "_MULT", None)
    samplers._CACHE.clear()
    try:
        assert samplers._loop() is False
        law = ql.Poisson(2.0)
        want = Other(np.random.PCG64(2)).poisson(2.0, 50)
        assert np.array_equal(draws.sample(law, np.random.default_rng(2), 50), want)
    finally:
        samplers._CACHE.clear()


def test_the_python_engines_alone_do_not_import_numba():
    """A SimPy-engine run with Poisson arrivals in a fresh process: NumPy's Poisson draws, no numba import."""
    code = ("import sys, queueing_llm as ql; "
            "m = ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(0.1), ql.Poisson(2.0))], batch_cap=8, "
            "policy='fcfs_cap'); ql.simulate(m, 5000, seed=1, engine='events'); print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.stdout.strip() == "False"


def _tail_is_zero_by_mpmath(q: float) -> bool:
    """(1 - q)^(2^53) in 60-digit arithmetic, below half the smallest positive double."""
    with mpmath.workdps(60):
        return mpmath.power(1 - mpmath.mpf(q), MAX_INTEGER) < mpmath.mpf(2) ** -1075


@pytest.mark.parametrize("q", [1.0, 0.5, 0.01, 2.0**-40, 1e-13, 8.4e-14, 8.2e-14, 1e-14, 1e-18])
def test_the_geometric_tail_beyond_2_to_the_53_is_zero_from_about_8e_minus_14(q):
    assert laws.geometric_tail_is_zero(q) == _tail_is_zero_by_mpmath(q)
    assert laws.geometric_tail_is_zero(q) == (q >= 8.3e-14)


def _with_q(q: float) -> ql.Geometric:
    """A Geometric law with a ``q`` below what the constructor accepts (only to reach the check)."""
    law = ql.Geometric(0.5)
    object.__setattr__(law, "q", q)
    return law


def test_the_tail_check_runs_only_where_a_draw_can_pass_2_to_the_53(monkeypatch):
    tiny = _with_q(1e-18)  # mean 10^18: the draws pass 2^53 (NumPy saturates them)
    with pytest.raises(ql.LawError, match=r"> 2\^53"):
        tiny.sample(np.random.default_rng(0), 10)
    with pytest.raises(ql.LawError, match=r"> 2\^53"):
        draws.sample(tiny, np.random.default_rng(0), 10)  # the simulation's path checks too
    edge = _with_q(1e-14)  # tail not exactly 0: still checked (its draws stay below 2^53)
    assert draws.sample(edge, np.random.default_rng(0), 1000).max() < MAX_INTEGER

    def no_max(*args, **kwargs):
        raise AssertionError("np.max called")

    monkeypatch.setattr(laws.np, "max", no_max)
    ql.Geometric(2.0**-40).sample(np.random.default_rng(0), 1000)  # tail exactly 0: no pass over the draws
    with pytest.raises(AssertionError, match="np.max called"):
        edge.sample(np.random.default_rng(0), 10)


def test_a_block_of_the_tape_is_numpys_draws_in_the_documented_order():
    """Counts, then one uniform per arrival, then prompts, then decode lengths, each by
    NumPy's own sampler: the tape's block rebuilt from NumPy calls."""
    model = ql.ContinuousBatching([ql.RequestType(ql.Poisson(1.5), ql.Geometric(0.02), ql.Poisson(2.432))],
                                  batch_cap=64, policy="fcfs_cap")
    rng, ref = np.random.default_rng(21), np.random.default_rng(21)
    tape = draws._LawTape(0, model, rng, 0)
    for _ in range(2):
        iterations, offsets, prompts, decodes, counts = tape.draw_block()
        want_counts = ref.poisson(2.432, draws.ITERATION_BLOCK)
        total = int(want_counts.sum())
        assert np.array_equal(counts, want_counts)
        assert np.array_equal(offsets, ref.random(total))
        assert np.array_equal(prompts, ref.poisson(1.5, total))
        assert np.array_equal(decodes, ref.geometric(0.02, total))
    assert rng.bit_generator.state == ref.bit_generator.state


def test_a_large_geometric_block_is_drawn_in_bounded_rounds():
    """Across round boundaries the values are NumPy's, and the float buffer is one round,
    not the whole block (peak within the int64 output plus two rounds of floats: the next
    round is drawn before the last one is freed)."""
    import tracemalloc

    law, size = ql.Geometric(0.01), 4 * samplers._ROUND + 3
    assert np.array_equal(draws.sample(law, np.random.default_rng(3), size),
                          law.sample(np.random.default_rng(3), size=size))
    rng = np.random.default_rng(4)
    tracemalloc.start()
    try:
        draws.sample(law, rng, size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * size + 2 * 8 * samplers._ROUND + (1 << 20), peak  # the whole block as floats: 16 * size
