"""The compiled kernel's fast paths, each checked against an independent computation.

* the completion calendar (a timing wheel of nodes from a pool, an overflow heap, stale
  nodes of evicted members dropped when they come up) and the order array with holes: with
  a wheel of 4 buckets most members go through the heap and move to the wheel, and with
  tiny initial arrays the pool, the heap and the order array are compacted and grown;
  the trajectory must still be the SimPy engine's, bit for bit;
* a one-type arrival block drawn by the kernel (:func:`~queueing_llm.sim.kernel._arrival_block`)
  must consume the generator exactly as :meth:`~queueing_llm.sim.draws._LawTape.draw_block`
  (the uniforms a slotted run never reads are skipped with ``PCG64.advance``);
* ``record="summary"`` (the kernel counts the requests and keeps no time) must give the
  summary of the SimPy engine's full trajectory.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm.sim import kernel, simulate
from queueing_llm.sim.draws import _LawTape, skip_uniforms
from queueing_llm.sim.kernel import numba_available

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba not importable: no kernel to compare")

T = ql.RequestType
POLICIES = ["greedy", "fcfs_cap", "rate_limited", "static", "reserve"]


@st.composite
def small_wheel_runs(draw):
    """Open or saturated runs whose decodes mostly exceed a 4-bucket wheel, with evictions."""
    policy = draw(st.sampled_from(POLICIES))
    K = draw(st.integers(1, 2))
    types = []
    for _ in range(K):
        decode = draw(st.one_of(st.integers(1, 12), st.just(ql.FinitePMF({2: 0.3, 9: 0.7}))))
        if policy == "fcfs_cap" and draw(st.booleans()):
            decode = ql.Geometric(0.15)
        types.append(T(draw(st.integers(0, 5)), decode, draw(st.sampled_from([0.4, 1.1, 2.3]))))
    bounded = policy != "fcfs_cap"
    model = ql.ContinuousBatching(
        types,
        kv_capacity=draw(st.integers(30, 150)) if bounded else math.inf,
        batch_cap=draw(st.integers(2, 14)),
        policy=policy,
        admit_after_eviction=draw(st.booleans()),
    )
    initial = [[draw(st.integers(0, 1)) for _ in range(3)] for _ in range(K)] if draw(st.booleans()) else None
    options = {"saturated": draw(st.booleans()), "initial_batch": initial[0] if initial and K == 1 else initial}
    return model, options, draw(st.integers(0, 2**32))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(small_wheel_runs())
def test_a_small_wheel_with_its_overflow_heap_gives_the_reference_trajectory(monkeypatch, case):
    model, options, seed = case
    monkeypatch.setattr(kernel, "_wheel_size", lambda model: 4)
    monkeypatch.setattr(kernel, "_POOL", 2)  # grown on the way (status 3)
    monkeypatch.setattr(kernel, "_ORDER", 8)
    try:
        reference = simulate(model, 200, seed=seed, engine="events", record="full", **options)
    except ql.ModelError:  # an initial batch above the KV budget for the prompts drawn
        assume(False)
    fast = simulate(model, 200, seed=seed, engine="fast", record="full", **options)
    assert fast.backend == "numba"
    assert fast.equals(reference)
    summary = simulate(model, 200, seed=seed, engine="fast", record="summary", **options)
    assert summary.summary() == reference.summary()


def test_the_small_wheel_case_exercises_heap_migration_and_unlinking(monkeypatch):
    """A fixed case of the property above that surely has long decodes and evictions."""
    monkeypatch.setattr(kernel, "_wheel_size", lambda model: 4)
    model = ql.ContinuousBatching([T(3, ql.FinitePMF({2: 0.3, 9: 0.7}), 1.3)], kv_capacity=60, policy="greedy")
    reference = simulate(model, 400, seed=3, engine="events", record="full")
    fast = simulate(model, 400, seed=3, engine="fast", record="full")
    assert fast.equals(reference)
    assert reference.evictions.sum() > 20  # evicted members left stale nodes in the wheel or the heap
    assert (reference.requests.decode >= 4).sum() > 100  # members that waited on the overflow heap


@pytest.mark.parametrize("record", ["full", "summary"])
def test_tiny_initial_arrays_grow_and_compact_to_the_same_run(monkeypatch, record):
    """The B = 256 fcfs_cap workload of the benchmark, shortened, with a node pool of 2 and an
    order array of 8: the result equals the run with the default sizes."""
    model = ql.ContinuousBatching([T(2, ql.Geometric(0.01), 0.95 * 2.56)], batch_cap=256, policy="fcfs_cap")
    default = simulate(model, 3000, seed=2, engine="fast", record=record)
    monkeypatch.setattr(kernel, "_POOL", 2)
    monkeypatch.setattr(kernel, "_ORDER", 8)
    tiny = simulate(model, 3000, seed=2, engine="fast", record=record)
    if record == "full":
        assert tiny.equals(default)
        assert default.summary(warmup=0)["peak_batch"] > 200  # the arrays did have to grow
    assert tiny.summary() == default.summary()


@pytest.mark.parametrize(
    "arrivals, prompt, decode",
    [
        (ql.Poisson(2.4), 2, ql.Geometric(0.01)),
        (ql.Bernoulli(0.3), ql.FinitePMF({1: 0.5, 4: 0.5}), 7),
        (ql.Regular(1.5), ql.Empirical([2, 5, 9]), ql.Geometric(0.2)),
        (ql.Poisson(0.0), 3, 4),
    ],
)
@pytest.mark.parametrize("wall", [False, True])
def test_a_one_type_block_consumes_the_generator_as_the_shared_tape(arrivals, prompt, decode, wall):
    model = ql.ContinuousBatching([T(prompt, decode, arrivals)], batch_cap=50, policy="fcfs_cap")
    shared_rng, kernel_rng = np.random.default_rng(11), np.random.default_rng(11)
    shared, mine = _LawTape(0, model, shared_rng, 1), _LawTape(0, model, kernel_rng, 1)
    for block in range(3):
        _, offsets, prompts, decodes, counts = shared.draw_block()
        types, p, d, c, o = kernel._arrival_block([mine], 1 + block * 4096, 1, wall)
        assert np.array_equal(c, counts)  # a column constant over the block may come as its value
        assert np.array_equal(np.broadcast_to(p, prompts.shape), prompts)
        assert np.array_equal(np.broadcast_to(d, decodes.shape), decodes)
        assert np.array_equal(np.broadcast_to(types, decodes.shape), np.zeros_like(decodes))
        if wall:
            assert np.array_equal(o, offsets)
        assert shared_rng.bit_generator.state == kernel_rng.bit_generator.state
    assert shared_rng.random() == kernel_rng.random()


class _OwnPoisson(ql.Poisson):
    """An arrival law defined outside :mod:`queueing_llm.laws`: its blocks come from the tape's draw_block."""


def test_a_law_from_elsewhere_is_drawn_by_the_tape_itself(monkeypatch):
    calls = []
    original = _LawTape.draw_columns
    monkeypatch.setattr(_LawTape, "draw_columns", lambda self, offsets=True: calls.append(1) or original(self, offsets))
    own = ql.ContinuousBatching([T(2, ql.Geometric(0.05), _OwnPoisson(1.5))], batch_cap=40, policy="fcfs_cap")
    plain = ql.ContinuousBatching([T(2, ql.Geometric(0.05), ql.Poisson(1.5))], batch_cap=40, policy="fcfs_cap")
    a = simulate(own, 5000, seed=9, engine="fast", record="full")
    assert len(calls) == 2  # 5000 iterations: two blocks, both from the tape
    assert a.equals(simulate(plain, 5000, seed=9, engine="fast", record="full"))
    assert a.equals(simulate(own, 5000, seed=9, engine="events", record="full"))


def test_skipping_uniforms_equals_drawing_them_and_refuses_a_buffered_half():
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    a.random(1000)
    assert skip_uniforms(b, 1000)
    assert a.bit_generator.state == b.bit_generator.state
    b.integers(0, 7, dtype=np.int32)  # a 32-bit draw leaves half of a 64-bit output buffered
    before = b.bit_generator.state
    assert before["has_uint32"] == 1
    assert not skip_uniforms(b, 10)
    assert b.bit_generator.state == before
    b.integers(0, 7, dtype=np.int32)  # the buffered half taken: a stale copy stays in the state
    before = b.bit_generator.state
    assert before["has_uint32"] == 0 and before["uinteger"] != 0
    assert not skip_uniforms(b, 10)  # advance would zero it: the states would differ
    assert b.bit_generator.state == before
    legacy = np.random.Generator(np.random.MT19937(5))
    assert not skip_uniforms(legacy, 10)


@pytest.mark.parametrize(
    "decode, lowest",
    [(40, 41), (ql.FinitePMF({10: 0.3, 300: 0.7}), 301), (ql.Geometric(0.01), 800), (ql.Geometric(1e-9), 2**17)],
)
def test_the_wheel_spans_every_bounded_decode(decode, lowest):
    size = kernel._wheel_size(ql.ContinuousBatching([T(2, decode, 0.1)], batch_cap=50, policy="fcfs_cap"))
    assert size & (size - 1) == 0 and size >= 64
    assert lowest <= size <= max(2 * lowest, 64)
