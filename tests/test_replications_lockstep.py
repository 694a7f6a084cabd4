"""Replications run together (issue 10, item 3): ``ql.simulate(..., replications=R)`` validates
once and runs the R seeds on worker threads (:func:`queueing_llm.sim.kernel.run_kernels`); each
replication must stay, bit for bit, the run ``ql.simulate(m, N, seed=s, record=...)`` of its
spawned seed ``s``, whatever the record mode, the model and the number of workers. And the
compiled pass that accumulates a summary's per-iteration series (``kernel._series_py``) must
give :meth:`RunAccumulator.add_iterations`'s numbers exactly, chunk by chunk."""

from __future__ import annotations

import math
import os
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm import sim
from queueing_llm.sim import kernel, simulate
from queueing_llm.sim.config import prepare
from queueing_llm.sim.kernel import numba_available
from queueing_llm.sim.replications import replication_seeds
from queueing_llm.sim.resources import estimate_memory
from queueing_llm.sim.summary import RunAccumulator

T = ql.RequestType
WALL = ql.LinearIterationTime(0.02, 1e-5)
MODELS = {
    "fcfs-geometric": (ql.ContinuousBatching([T(2, ql.Geometric(0.1), 2.0)], batch_cap=25, policy="fcfs_cap"), {}),
    "greedy-evicting": (ql.ContinuousBatching([T(10, 40, 1.5)], kv_capacity=900), {}),
    "two-types": (ql.ContinuousBatching([T(3, 4, 0.4), T(ql.FinitePMF({1: 0.5, 6: 0.5}),
                                                         ql.FinitePMF({1: 0.4, 9: 0.6}), 0.6)],
                                        kv_capacity=120, batch_cap=9), {}),
    "saturated-initial": (ql.ContinuousBatching([T(50, 2), T(50, 3)], kv_capacity=518),
                          {"saturated": True, "initial_batch": [[1, 1], [2]]}),
    "wall-clock": (ql.ContinuousBatching([T(4, ql.Geometric(0.2), 1.2)], batch_cap=12, iteration_time=WALL), {}),
    "wall-poisson-process": (ql.ContinuousBatching([T(4, 6, ql.PoissonProcess(30.0))], kv_capacity=200,
                                                   iteration_time=WALL), {}),
    "reserve-waiting-cap": (ql.ContinuousBatching([T(5, 7, 1.1)], kv_capacity=150, policy="reserve", waiting_cap=4),
                            {}),
}


def _same_summary(a: dict, b: dict) -> bool:
    """Key for key and bit for bit (``repr`` tells every float apart, ``nan`` equal to ``nan``)."""
    return list(a) == list(b) and all(repr(a[k]) == repr(b[k]) for k in a)


def _same_accumulator(a, b) -> bool:
    """The streaming state behind two summaries: series totals, peaks and batch sums, sketches."""
    x, y = a._summary_accumulator(a.warmup), b._summary_accumulator(b.warmup)
    for name in RunAccumulator.SERIES:
        s, t = x.series[name], y.series[name]
        if (s.total, s.peak, s.seen) != (t.total, t.peak, t.seen) or s.sums.tobytes() != t.sums.tobytes():
            return False
    return all(np.array_equal(p.counts, q.counts) and p.count == q.count for p, q in
               ((x.latency, y.latency), (x.ttft, y.ttft)))


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("record", ["summary", "iterations", "full"])
def test_each_replication_is_the_run_of_its_seed(name, record):
    model, options = MODELS[name]
    for R, seed in ((2, 0), (5, 123_456)):
        reps = simulate(model, 700, seed=seed, warmup=50, replications=R, record=record, **options)
        assert reps.seeds == replication_seeds(seed, R) and len(reps) == R
        for run, s in zip(reps, reps.seeds, strict=True):
            one = simulate(model, 700, seed=s, warmup=50, record=record, **options)
            assert run.seed == s and run.backend == one.backend and run.record == one.record
            assert _same_summary(run.summary(), one.summary())
            assert record == "summary" or _same_summary(run.summary(warmup=0), one.summary(warmup=0))
            assert _same_accumulator(run, one)
            if record != "summary":
                assert run.equals(one)


@pytest.mark.skipif(not numba_available(), reason="numba not importable: the replications run on the Python loop")
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_worker_threads_do_not_change_any_replication(workers):
    """The threads of :func:`run_kernels` take the replications in any order: each result is
    still its own config's run (several workers are forced here, whatever the machine's cores)."""
    from queueing_llm.sim.kernel import run_kernel, run_kernels

    model, _ = MODELS["two-types"]
    config = prepare(model, 900, 0, False, None, 100, "fast", None, "summary", None)
    seeds = replication_seeds(77, 7)
    runs = run_kernels([replace(config, seed=s) for s in seeds], 0.0, workers)
    for run, s in zip(runs, seeds, strict=True):
        alone = run_kernel(replace(config, seed=s))
        assert run.seed == s and _same_summary(run.summary(), alone.summary()) and _same_accumulator(run, alone)
    assert len({r.summary()["throughput"] for r in runs}) > 1  # independent seeds, not one run copied


def test_replications_refuse_bad_arguments_once_naming_them():
    model, _ = MODELS["fcfs-geometric"]
    with pytest.raises(ql.ParameterError, match=r"warmup must be an integer in \[0, 99\]"):
        simulate(model, 100, seed=1, warmup=100, replications=3)
    with pytest.raises(ql.ParameterError, match=r"record must be one of"):
        simulate(model, 100, seed=1, replications=3, record="everything")


@st.composite
def small_runs(draw):
    K = draw(st.integers(1, 2))
    policy = draw(st.sampled_from(["greedy", "fcfs_cap", "rate_limited(1.5)", "static", "reserve"]))
    saturated = draw(st.booleans())
    wall = draw(st.booleans()) and (K == 1 or saturated)
    types = [T(draw(st.integers(0, 5)), draw(st.one_of(st.integers(1, 8), st.just(ql.FinitePMF({1: 0.3, 6: 0.7})))),
               ql.Poisson(draw(st.sampled_from([0.2, 0.8, 1.6])))) for _ in range(K)]
    try:
        model = ql.ContinuousBatching(types, kv_capacity=draw(st.integers(25, 140)), batch_cap=draw(st.integers(1, 10)),
                                      policy=policy, iteration_time=WALL if wall else None)
    except ql.ModelError:
        assume(False)
    return (model, saturated, draw(st.sampled_from(["summary", "iterations"])), draw(st.integers(2, 4)),
            draw(st.integers(0, 2**32)), draw(st.integers(1, 400)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(small_runs())
def test_replications_equal_single_runs_on_random_models(case):
    model, saturated, record, R, seed, N = case
    reps = simulate(model, N, seed=seed, saturated=saturated, replications=R, record=record, warmup=N // 3)
    for run in reps:
        one = simulate(model, N, seed=run.seed, saturated=saturated, record=record, warmup=N // 3)
        assert _same_summary(run.summary(), one.summary()) and _same_accumulator(run, one)
        if record != "summary":
            assert run.equals(one)


# -- the compiled accumulation of a summary's per-iteration series -----------------------------
@pytest.mark.skipif(not numba_available(), reason="numba not importable: no compiled pass to compare")
@pytest.mark.parametrize("N, warmup, chunks", [(1, 0, [1]), (7, 3, [2, 5]), (1000, 0, [1000]),
                                               (1003, 17, [1, 400, 3, 599]), (95, 90, [50, 45])])
def test_compiled_series_pass_equals_add_iterations(N, warmup, chunks):
    """``kernel._series`` over the same chunks gives the accumulator ``add_iterations`` builds:
    equal totals, peaks, batch sums (as bytes), edge batches and times, hence equal summaries
    and batch-means intervals (large values, so that a float sum would round differently)."""
    from queueing_llm.sim import kernel

    kernel._compile()
    rng = np.random.default_rng(N + warmup)
    K = 2
    rows = {k: rng.integers(0, 5, (N, K)) for k in ("comp", "arr", "rej", "ev")}
    rows["queue"] = rng.integers(0, 10**12, (N, K))  # partial sums beyond 2^53: float rounding shows
    rows["sizes"] = rng.integers(0, 300, (N, K))
    rows["mem"] = rng.integers(0, 10**13, N)
    rows["time"] = np.cumsum(rng.random(N))
    python = RunAccumulator(N, warmup, wall_clock=True)
    compiled = RunAccumulator(N, warmup, wall_clock=True)
    series = compiled.series["completions"]
    tot, peak = np.zeros(8, dtype=np.int64), np.full(8, np.iinfo(np.int64).min)
    sums, part = np.zeros((8, series.batches)), np.zeros((8, series.batches), dtype=np.int64)
    edges, times = np.zeros(2, dtype=np.int64), np.zeros(2)
    start = 0
    for m in chunks:
        chunk = {k: np.ascontiguousarray(v[start:start + m]) for k, v in rows.items()}
        python.add_iterations(chunk["comp"], chunk["arr"], chunk["rej"], chunk["ev"], chunk["queue"], chunk["sizes"],
                              chunk["mem"], chunk["time"])
        pad = {k: np.concatenate([v, np.zeros((3, *v.shape[1:]), dtype=v.dtype)]) for k, v in chunk.items()}
        kernel._series(pad["comp"], pad["arr"], pad["rej"], pad["ev"], pad["queue"], pad["sizes"], pad["mem"],
                       pad["time"], m, start, warmup, N, series.size, series.skip, tot, peak, sums, part, edges, times)
        assert not part.any()
        start += m
    compiled.load_iterations(tot, peak, sums, int(edges[0]), float(times[0]), int(edges[1]), float(times[1]))
    for name in RunAccumulator.SERIES:
        a, b = python.series[name], compiled.series[name]
        assert (a.total, a.peak, a.seen) == (b.total, b.peak, b.seen) and a.sums.tobytes() == b.sums.tobytes()
        if a.size >= 1:
            assert python.ci(name) == compiled.ci(name)
    assert (python.batch_before, python.batch_last, python.time_before) == (
        compiled.batch_before, compiled.batch_last, compiled.time_before)
    assert python.time_last == compiled.time_last and python.seen == compiled.seen == N
    assert _same_summary(python.summary(), compiled.summary())
    assert any(math.isfinite(v) for v in python.summary().values())


def test_load_iterations_takes_the_whole_run_only():
    acc = RunAccumulator(10, 0, wall_clock=False)
    acc.add_iterations(*([np.zeros((2, 1), dtype=np.int64)] * 6), np.zeros(2, dtype=np.int64), np.arange(2.0))
    with pytest.raises(ql.ParameterError, match="load_iterations takes the whole run"):
        acc.load_iterations(np.zeros(8), np.zeros(8), np.zeros((8, 2)), 0, 0.0, 0, 0.0)


# --- a replication set as one run: errors, progress, memory, cores (review of the worker threads)

def _sometimes_too_full():
    """An initial batch of 3 whose drawn prompts overflow kv_capacity for some seeds:
    replications 3, 8, 12, ... of seed 5 (checked below)."""
    return ql.ContinuousBatching([ql.RequestType(ql.FinitePMF({10: 0.5, 40: 0.5}), 5, 0.3)], kv_capacity=100)


def test_a_failed_replication_stops_the_set_and_raises_the_first_failure(monkeypatch):
    m = _sometimes_too_full()
    seeds = replication_seeds(5, 40)
    first_bad = None
    for i, s in enumerate(seeds):  # independently: the first seed whose initial batch does not fit
        try:
            ql.simulate(m, 50, seed=s, initial_batch=[3], engine="fast")
        except ql.ParameterError as err:
            first_bad, message = i, str(err)
            break
    assert first_bad is not None and first_bad > 0
    ql.simulate(m, 50, seed=1, engine="fast")  # the kernel loaded: every replication goes to the workers
    calls = []
    original = kernel.run_kernel
    monkeypatch.setattr(kernel, "run_kernel", lambda *a, **k: calls.append(1) or original(*a, **k))
    monkeypatch.setattr(sim, "usable_cores", lambda: 2)
    for _ in range(3):  # whichever worker fails first, the error is that of the lowest failed index
        calls.clear()
        with pytest.raises(ql.ParameterError) as caught:
            ql.simulate(m, 50, seed=5, initial_batch=[3], replications=40, engine="fast")
        assert str(caught.value) == message
        assert len(calls) <= first_bad + 1 + 2  # the set stopped: no replication started after the failure


def test_progress_counts_over_the_whole_set():
    m = ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(0.2), 0.5)], batch_cap=8)
    for engine in ("fast", "python", "events"):
        seen: list[tuple[int, int]] = []
        ql.simulate(m, 400, seed=2, replications=3, engine=engine, progress=lambda i, n, seen=seen: seen.append((i, n)))
        assert {n for _, n in seen} == {1200}
        assert [i for i, _ in seen] == sorted(i for i, _ in seen) and seen[-1] == (1200, 1200)


def test_the_memory_guard_counts_the_replications_kept():
    m = ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(0.05), 2.0)], batch_cap=64)
    one = estimate_memory(prepare(m, 20_000, 1, False, None, 0, "fast", None, "iterations", None),
                          "iterations", "numba")["total"]
    ql.simulate(m, 20_000, seed=1, record="iterations", memory_limit=1.5 * one)  # one run fits
    with pytest.raises(ql.ParameterError, match="4 replications of 20000 iterations.*fewer replications"):
        ql.simulate(m, 20_000, seed=1, record="iterations", replications=4, memory_limit=1.5 * one)
    reps = ql.simulate(m, 20_000, seed=1, record="summary", replications=4, memory_limit=1.5 * one)
    assert len(reps) == 4  # summaries are dropped to their accumulators: the set fits


def test_the_workers_follow_the_cpu_affinity(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert sim.usable_cores() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert sim.usable_cores() == 3


def test_one_iteration_after_an_initial_batch_in_an_open_system():
    """The kernel's run of iteration 0 only (the initial batch) keeps its members (it lost
    them: an IndexError in record='iterations')."""
    m = ql.ContinuousBatching([ql.RequestType(2, 5, 1.0)], kv_capacity=300)
    for record in ("iterations", "full"):
        fast = ql.simulate(m, 1, seed=3, initial_batch=[3, 2, 1], record=record, engine="fast")
        assert fast.backend == "numba"
        assert fast.equals(ql.simulate(m, 1, seed=3, initial_batch=[3, 2, 1], record=record, engine="events"))


@pytest.mark.parametrize("engine, saturated, prompt, decode", [
    ("fast", False, 10**14, 50),  # KV memory about 1e15 per iteration: a 16,384-row chunk overflows int64
    ("fast", False, 10**14, ql.Geometric(0.02)),  # no bound on the memory before the run
    ("fast", True, 4 * 10**15, ql.Geometric(0.02)),
    ("python", True, 4 * 10**15, ql.Geometric(0.02)),  # a 4,096-row chunk of 4e16 overflows too
])
def test_the_summary_sums_of_huge_memories_are_exact(engine, saturated, prompt, decode):
    """The mean KV memory of a summary against the exact mean of the recorded series
    (Python integers), every engine's summary path (it wrapped around to 7.7e13 or to a
    negative mean)."""
    m = ql.ContinuousBatching([ql.RequestType(prompt, decode, None if saturated else 0.5)], batch_cap=10)
    kept = ql.simulate(m, 20_000, seed=1, saturated=saturated, warmup=0, record="iterations", engine=engine)
    exact = sum(int(x) for x in kept.memory) / kept.iterations
    assert exact > 9e14
    for record in ("summary", "iterations"):
        run = ql.simulate(m, 20_000, seed=1, saturated=saturated, warmup=0, record=record, engine=engine)
        assert run.summary()["mean_memory"] == pytest.approx(exact, rel=1e-12)


def test_fixed_workload_replications_name_their_horizons():
    m = ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(0.2), 0.5)], batch_cap=8)
    reps = ql.simulate(m, 10_000, seed=4, requests=30, replications=3)
    lengths = [r.iterations for r in reps]
    assert len(set(lengths)) > 1  # each replication ends when its 30 requests complete
    assert reps.iterations == max(lengths)
    assert f"3 runs of {min(lengths)}-{max(lengths)} iterations" in repr(reps)


def test_an_index_taken_is_run_so_the_lowest_failure_is_raised(monkeypatch):
    """A worker that took index 1 just before another failed index 2 still runs it: the set
    raises index 1's error, as a sequential run would (it used to drop index 1)."""
    import itertools
    import time

    real_count = itertools.count

    class SlowOne:  # hands out index 1 late: index 2 is taken and fails meanwhile
        def __init__(self, start: int = 0) -> None:
            self.inner = real_count(start)

        def __next__(self) -> int:
            i = next(self.inner)
            if i == 1:
                time.sleep(0.3)
            return i

    m = ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(0.2), 0.5)], batch_cap=8)
    ql.simulate(m, 10, seed=1, engine="fast")  # the kernel loaded: every replication goes to the workers
    seeds = replication_seeds(3, 3)
    config = prepare(m, 10, seeds[0], False, None, 0, "fast", None, "summary", None)
    ran = []

    def fake(config, expected_requests=0.0, plan=None):
        i = seeds.index(config.seed)
        ran.append(i)
        if i >= 1:
            raise ql.ParameterError(f"replication {i} failed")
        return i

    monkeypatch.setattr(itertools, "count", SlowOne)
    monkeypatch.setattr(kernel, "run_kernel", fake)
    with pytest.raises(ql.ParameterError, match="replication 1 failed"):
        kernel.run_kernels([replace(config, seed=s) for s in seeds], 0.0, workers=2)
    assert sorted(ran) == [0, 1, 2]


def test_a_model_whose_memory_exceeds_the_64_bit_counts_is_refused():
    huge = ql.ContinuousBatching([ql.RequestType(2**53, 50, None)], batch_cap=1100)
    for engine in ("fast", "python", "events"):
        with pytest.raises(ql.ParameterError, match="batch_cap = 1100 .* give a finite kv_capacity"):
            ql.simulate(huge, 10, seed=1, saturated=True, engine=engine)
    fits = ql.ContinuousBatching([ql.RequestType(2**53, 50, None)], batch_cap=100)
    assert ql.simulate(fits, 10, seed=1, saturated=True).summary()["peak_memory"] > 2**59


def test_fixed_workload_replications_share_the_memory_limit():
    m = ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(0.05), 2.0)], batch_cap=64)
    one = estimate_memory(prepare(m, 20_000, 1, False, None, 0, "fast", None, "iterations", None),
                          "iterations", "numba")["total"]
    with pytest.raises(ql.ParameterError, match="would run out of memory"):
        ql.simulate(m, 20_000, seed=1, requests=30_000, record="iterations", replications=4, memory_limit=1.5 * one)
