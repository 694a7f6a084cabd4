"""record="summary" on the SimPy engine (engine="events"): streamed chunk by chunk into the one
RunAccumulator, equal key for key to the record="iterations" summary and to the other engines'
summaries, memory flat in the horizon (issue 10, item 1)."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from engine_cases import CASES, diff, same
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm import strategies as qs
from queueing_llm.sim import events, simulate, streaming
from queueing_llm.sim.config import prepare
from queueing_llm.sim.draws import RequestStream
from queueing_llm.sim.resources import estimate_memory

T = ql.RequestType
_same, _diff = same, diff


@pytest.fixture
def drops(monkeypatch):
    """How many drawn requests each SimPy run forgot (RequestStream.drop)."""
    dropped: list[int] = []
    original = RequestStream.drop

    def spy(self, upto):
        k = original(self, upto)
        dropped.append(k)
        return k

    monkeypatch.setattr(RequestStream, "drop", spy)
    return dropped


@pytest.mark.parametrize("case", list(CASES))
def test_streamed_summary_equals_the_iterations_summary_and_the_other_engines(case, drops, monkeypatch):
    """Chunks of 256 iterations (monkeypatched: several full chunks and a partial one in a
    short run): the summary of the streamed SimPy run equals, exactly and key for key, the
    record="iterations" summary of the same SimPy run and the record="summary" summaries of
    the Python loop and of engine="fast" (the kernel where it applies) for the same seed."""
    model, options = CASES[case]
    N, warmup = 3 * 256 + 101, 300
    monkeypatch.setattr(events, "CHUNK", 256)
    summ = simulate(model, N, seed=5, warmup=warmup, engine="events", record="summary", **options)
    iters = simulate(model, N, seed=5, warmup=warmup, engine="events", record="iterations", **options)
    assert summ.backend == iters.backend == "simpy" and summ.record == "summary"
    a, b = iters.summary(), summ.summary()
    assert _same(a, b), _diff(a, b)
    assert a["completed_requests"] > 50  # not vacuous
    for key in ("in_system", "memory", "completions", "evictions", "queue"):
        assert summ.ci(key) == iters.ci(key)
    for engine in ("python", "fast"):
        other = simulate(model, N, seed=5, warmup=warmup, engine=engine, record="summary", **options).summary()
        assert _same(b, other), (engine, _diff(b, other))
    levels = [0.1, 0.5, 0.99]
    assert np.array_equal(summ.latency_quantiles(levels), iters._summary_accumulator(None).latency.quantiles(levels),
                          equal_nan=True)
    created = a["arrivals_per_iteration"] * (N - warmup)
    assert sum(drops) > created / 2  # the drawn requests were forgotten as the run went


@pytest.mark.parametrize("case", ["greedy-evicts-waiting-cap-initial", "saturated-two-types", "wait-wall-clock"])
def test_streamed_summary_with_the_real_chunk(case):
    """The default chunk (streaming.CHUNK, shared with the Python loop), a partial last chunk,
    the warm-up ending in the second chunk."""
    model, options = CASES[case]
    N, warmup = streaming.CHUNK + 517, streaming.CHUNK + 3
    summ = simulate(model, N, seed=8, warmup=warmup, engine="events", record="summary", **options)
    iters = simulate(model, N, seed=8, warmup=warmup, engine="events", record="iterations", **options)
    fast = simulate(model, N, seed=8, warmup=warmup, engine="fast", record="summary", **options)
    assert _same(iters.summary(), summ.summary()) and _same(summ.summary(), fast.summary())
    assert summ.summary()["completed_requests"] > 20


def test_the_engine_keeps_only_the_live_requests(monkeypatch):
    """After a streamed run the engine holds no request records, no eviction log, logs of
    one chunk, and a request stream shorter than a chunk's arrivals."""
    model, _ = CASES["greedy-evicts-waiting-cap-initial"]
    monkeypatch.setattr(events, "CHUNK", 64)
    config = prepare(model, 2000, 3, False, [[2, 0, 3], [1]], 0, "events", None, "summary", None)
    engine = events.EventsEngine(config)
    run = engine.run()
    assert run.record == "summary" and run.summary()["evictions_per_iteration"] > 0
    assert engine.requests == [] and engine.evicted_log == [] and engine.finished == []
    assert engine.time.size == 64 and engine.n0 == 2000
    s = engine.stream
    assert s.end > 3000 and s.base >= engine.created - 1 and len(s) < 4096 * 3  # ids below created are gone
    assert len(engine.queue) <= 9 and len(engine.batch) < 200


@pytest.mark.parametrize("N", [1, 2, 255, 256, 257, 512])
def test_chunk_boundaries_and_one_iteration(N, monkeypatch):
    """Runs shorter than, equal to and just over a chunk; an initial batch and one iteration."""
    monkeypatch.setattr(events, "CHUNK", 256)
    model, options = CASES["saturated-static-initial"]
    summ = simulate(model, N, seed=4, engine="events", record="summary", **options)
    iters = simulate(model, N, seed=4, engine="events", record="iterations", **options)
    assert _same(iters.summary(), summ.summary())


def test_progress_reports_are_unchanged_by_streaming():
    model, _ = CASES["wait"]
    calls: dict[str, list[int]] = {"iterations": [], "summary": []}
    N = streaming.CHUNK + 33
    runs = {record: simulate(model, N, seed=3, engine="events", record=record,
                             progress=lambda done, total, c=calls[record]: c.append(done)) for record in calls}
    assert calls["iterations"] == calls["summary"] and calls["summary"][-1] == N
    assert _same(runs["iterations"].summary(), runs["summary"].summary())


KINDS = ("queue", "overloaded", "memory", "saturated", "wait", "nested")


@st.composite
def _runs(draw, kind: str):
    """A small model of ``kind`` the SimPy engine runs (FCFS batch-capped, stable or
    overloaded, with a waiting-room cap or not; memory-limited with greedy eviction,
    rate-limited, reserve or static admission, one or two types; saturated, with an initial
    batch or not; WAIT; Nested WAIT; slotted or wall-clock) and the simulate options."""
    options: dict = {}
    if kind == "saturated":
        model = draw(qs.saturated_models(policy_kinds=("greedy", "static", "reserve", "rate_limited"),
                                         random_lengths=True))
        options["saturated"] = True
        if draw(st.booleans()):  # one member of type 0 at stage 0 (M > l0 + l1 of every type)
            options["initial_batch"] = [1] if model.K == 1 else [[1]] + [[0]] * (model.K - 1)
        return model, options
    if kind == "memory":
        types = [T(draw(st.integers(0, 6)), draw(qs.decode_laws(6.0, ("deterministic", "finite"))),
                   ql.Poisson(draw(st.sampled_from([0.3, 0.8])))) for _ in range(draw(st.integers(1, 2)))]
        need = int(max(t.max_tokens for t in types))
        model = ql.ContinuousBatching(types, kv_capacity=draw(st.integers(need + 1, 4 * need)),
                                      policy=draw(st.sampled_from(["greedy", "reserve", "static",
                                                                   "rate_limited(0.7)"])),
                                      waiting_cap=draw(st.sampled_from([math.inf, 5])))
    else:
        load = (1.2, 2.0) if kind == "overloaded" else (0.3, 0.95)
        model = draw(qs.queues(load=load, waiting_caps=draw(st.sampled_from([None, (0, 6)]))))
        if kind == "wait":
            model = model.with_policy(draw(qs.wait_policies()))
        elif kind == "nested":
            model = model.with_policy(draw(qs.nested_wait_policies(max_boundary=8)))
    if draw(st.booleans()):
        model = ql.ContinuousBatching(model.types, kv_capacity=model.kv_capacity, batch_cap=model.batch_cap,
                                      waiting_cap=model.waiting_cap, policy=model.policy,
                                      iteration_time=ql.LinearIterationTime(0.02, 1e-3))
    return model, options


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), chunk=st.sampled_from([1, 7, 64]), seed=st.integers(0, 2**16))
def test_summary_equals_iterations_and_python_with_tiny_chunks(kind, data, chunk, seed):
    """Chunks of 1 to 64 iterations: many flushes and drops; the same summary as the
    record="iterations" SimPy run and the streamed Python loop, exactly."""
    model, options = data.draw(_runs(kind))
    try:
        iters = simulate(model, 300, seed=seed, warmup=37, engine="events", record="iterations", **options)
    except ql.ParameterError as err:  # only an initial batch the drawn prompts do not fit: no run to compare
        assert "initial_batch" in str(err), err
        assume(False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(events, "CHUNK", chunk)
        summ = simulate(model, 300, seed=seed, warmup=37, engine="events", record="summary", **options)
    python = simulate(model, 300, seed=seed, warmup=37, engine="python", record="summary", **options)
    assert _same(iters.summary(), summ.summary()), _diff(iters.summary(), summ.summary())
    assert _same(summ.summary(), python.summary())
    assert summ.ci("in_system") == iters.ci("in_system")


def _peak(model, N: int, record: str) -> int:
    tracemalloc.start()
    try:
        run = simulate(model, N, seed=1, engine="events", record=record)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert run.backend == "simpy"


@pytest.mark.slow
def test_events_summary_memory_does_not_grow_with_the_horizon():
    """Peak traced memory of engine="events" record="summary" at 10^4 and 10^5 iterations
    (measured: 1.48 and 1.59 MiB). Before the SimPy engine streamed, it built the whole run
    and failed this: 4.05 and 39.0 MiB (7.86 and 77.7 MiB at 2 x 10^4 and 2 x 10^5)."""
    model = ql.ContinuousBatching([T(2, ql.Geometric(0.25), 0.5)], batch_cap=8, policy="fcfs_cap")
    _peak(model, 100, "summary")  # imports and first-call allocations out of the measurement
    short, long = _peak(model, 10_000, "summary"), _peak(model, 100_000, "summary")
    assert long < 1.25 * short and long - short < 2**19, (short, long)


def test_estimate_of_an_events_summary_run_does_not_depend_on_the_horizon():
    model, _ = CASES["wait"]
    est = [estimate_memory(prepare(model, n, 1, False, None, 0, "events", None, "summary", None), "summary",
                           "simpy") for n in (10**5, 10**7, 10**9)]
    assert est[0]["total"] == est[1]["total"] == est[2]["total"] > 0
    assert est[0]["iterations"] == est[0]["stage_array"] == 0
    whole = estimate_memory(prepare(model, 10**7, 1, False, None, 0, "events", None, "iterations", None),
                            "iterations", "simpy")
    assert whole["total"] > 1000 * est[1]["total"]
