"""record= levels, the streaming summary, units, quantiles, the memory guard and replications."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import queueing_llm as ql
from queueing_llm.sim import simulate
from queueing_llm.stats import QuantileSketch, StreamingSeries, batch_means_ci

T = ql.RequestType
WALL = ql.LinearIterationTime(0.02, 1e-5)
MODELS = {
    "greedy-open": (ql.ContinuousBatching([T(10, 40, 1.5)], kv_capacity=2000), {}),
    "fcfs-geometric": (ql.ContinuousBatching([T(2, ql.Geometric(0.1), 2.0)], batch_cap=25, policy="fcfs_cap"), {}),
    "saturated-two-types": (ql.ContinuousBatching([T(50, 2), T(50, 3)], kv_capacity=518), {"saturated": True}),
    "initial-static-saturated": (
        ql.ContinuousBatching([T(2, 3), T(4, ql.FinitePMF({1: 0.5, 6: 0.5}))], kv_capacity=60, batch_cap=6,
                              policy="static"),
        {"saturated": True, "initial_batch": [[1, 1], [2]]},
    ),
    "rate-limited-waiting-cap-initial": (
        ql.ContinuousBatching([T(10, 40, 1.6), T(3, 5, 0.5)], kv_capacity=2000, waiting_cap=9,
                              policy="rate_limited(1.3)"),
        {"initial_batch": [[2, 0, 3], [1]]},
    ),
    "wall-clock-one-type": (
        ql.ContinuousBatching([T(10, 40, ql.PoissonProcess(70.0))], kv_capacity=2000, iteration_time=WALL),
        {},
    ),
    "wall-clock": (
        ql.ContinuousBatching([T(10, 40, ql.PoissonProcess(70.0)), T(4, 8, 1.0)], kv_capacity=2000,
                              iteration_time=WALL),
        {},
    ),
}


@pytest.mark.parametrize("engine", ["events", "python", "fast"])
@pytest.mark.parametrize("case", list(MODELS))
def test_record_levels_agree(case, engine):
    model, options = MODELS[case]
    full = simulate(model, 700, seed=4, warmup=100, engine=engine, record="full", **options)
    iters = simulate(model, 700, seed=4, warmup=100, engine=engine, record="iterations", **options)
    summ = simulate(model, 700, seed=4, warmup=100, engine=engine, record="summary", **options)
    assert iters._batch is None  # the stage array is not built until asked for
    assert np.array_equal(iters.batch_sizes, full.batch.sum(axis=2))
    assert iters.equals(full)  # builds iters.batch on first access
    assert full.summary() == iters.summary()
    # key for key, every engine: sums of seconds are exact (ExactSum), whatever the chunks
    a, b = summ.summary(), full.summary()
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a), (a, b)
    levels = [0.1, 0.5, 0.9, 0.99, 1.0]
    r = full.requests
    chosen = r.completed & ~r.initial & (r.arrival >= 100)
    exact = np.quantile(r.latency[chosen], levels, method="inverted_cdf")
    got = summ.latency_quantiles(levels)
    tol = 1e-3 if model.is_wall_clock else 0.0
    assert np.allclose(got, exact, rtol=tol, atol=0)
    assert np.array_equal(full.latency_quantiles(levels), exact)
    ttft = np.quantile(r.ttft[chosen], [0.5, 0.9, 0.99], method="inverted_cdf")
    s = summ.summary()
    assert np.allclose([s["ttft_p50"], s["ttft_p90"], s["ttft_p99"]], ttft, rtol=tol, atol=0)
    for name in ("batch", "queue", "requests", "memory", "in_system"):
        with pytest.raises(ql.ParameterError, match=r"record='summary'.*record='iterations'"):
            getattr(summ, name)
    with pytest.raises(ql.ParameterError, match=r"warmup=0 to ql.simulate"):
        summ.summary(warmup=0)
    assert summ.ci("in_system").estimate == pytest.approx(full.summary()["mean_in_system"])


def test_batch_means_interval_from_the_stream_matches_the_array_one():
    run = simulate(MODELS["greedy-open"][0], 4000, seed=2, warmup=500)
    direct = batch_means_ci(run.in_system[500:])
    streamed = run.ci("in_system")
    assert streamed.estimate == pytest.approx(direct.estimate, rel=1e-12)
    assert streamed.low == pytest.approx(direct.low, rel=1e-12)
    assert streamed.high == pytest.approx(direct.high, rel=1e-12)


def test_streaming_series_chunks_equal_one_pass():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 50, 1003)
    a = StreamingSeries(1003)
    for chunk in np.array_split(y, 7):
        a.add(chunk)
    assert a.total == int(y.sum()) and a.peak == y.max()
    assert a.ci().estimate == pytest.approx(batch_means_ci(y).estimate)
    with pytest.raises(ql.ParameterError, match="length 1003"):
        a.add([1])


def test_quantile_sketch_relative_accuracy_and_merge():
    rng = np.random.default_rng(3)
    x = rng.lognormal(0, 2, 20_000)
    s, a, b = QuantileSketch(integer=False), QuantileSketch(integer=False), QuantileSketch(integer=False)
    s.add(x)
    a.add(x[:7000])
    b.add(x[7000:])
    a.merge(b)
    levels = [0.01, 0.25, 0.5, 0.9, 0.999]
    exact = np.quantile(x, levels, method="inverted_cdf")
    assert np.all(np.abs(s.quantiles(levels) / exact - 1) <= 1e-3)
    assert np.array_equal(a.quantiles(levels), s.quantiles(levels))
    ints = QuantileSketch(integer=True)
    k = rng.integers(0, 300, 5000)
    ints.add(k)
    assert np.array_equal(ints.quantiles(levels), np.quantile(k, levels, method="inverted_cdf"))


def test_units_label_every_key_and_wall_clock_rates():
    model = MODELS["wall-clock"][0]
    run = simulate(model, 2000, seed=1, warmup=200)
    s, units = run.summary(), run.summary_units()
    assert set(s) == set(units)
    assert units["throughput"] == "requests/iteration" and units["throughput_per_second"] == "requests/s"
    assert units["latency_p99"] == "s" and units["mean_memory"] == "KV tokens"
    elapsed = run.time[-1] - run.time[199]
    assert s["throughput_per_second"] == pytest.approx(run.completions[200:].sum() / elapsed)
    assert s["arrivals_per_second"] == pytest.approx(run.arrivals[200:].sum() / elapsed)
    assert s["tokens_per_second"] == pytest.approx(run.batch_size[199:-1].sum() / elapsed)
    assert s["latency_p50"] <= s["latency_p90"] <= s["latency_p99"]
    assert s["peak_memory"] == run.memory[200:].max()
    slotted = simulate(MODELS["greedy-open"][0], 2000, seed=1, warmup=200).summary_units()
    assert slotted["latency_p50"] == "iterations" and "throughput_per_second" not in slotted


def test_restarts_per_request_counts_evictions_of_the_chosen_requests():
    run = simulate(ql.ContinuousBatching([T(10, 40, 1.6)], kv_capacity=2000), 3000, seed=5, warmup=300)
    r = run.requests
    chosen = r.completed & ~r.initial & (r.arrival >= 300)
    assert run.summary()["restarts_per_request"] == r.evicted[chosen].sum() / chosen.sum() > 0


# -- the memory guard ----------------------------------------------------------------------
def test_a_run_above_the_memory_limit_is_refused_before_it_starts():
    model = ql.ContinuousBatching([T(10, 40, 1.2)], kv_capacity=2000)
    with pytest.raises(ql.ParameterError, match=r"record='iterations'.*above the memory limit.*record='summary'"):
        simulate(model, 10**9, seed=1)
    with pytest.raises(ql.ParameterError, match=r"record='full'.*record='iterations'"):
        simulate(model, 10**5, seed=1, record="full", memory_limit=10**6)
    with pytest.raises(ql.ParameterError, match=r"iterations = 1000000000000000000 is above the longest horizon"):
        simulate(model, 10**18, seed=1, record="summary")
    with pytest.raises(ql.ParameterError, match=r"saturated batch would hold about"):
        simulate(ql.ContinuousBatching([T(1, 2)], kv_capacity=10**12), 10, seed=1, saturated=True)
    with pytest.raises(ql.ParameterError, match=r"record must be one of 'full', 'iterations', 'summary'"):
        simulate(model, 10, record="everything")
    with pytest.raises(ql.ParameterError, match=r"memory_limit"):
        simulate(model, 10, memory_limit=-1)


def test_stage_array_is_guarded_on_first_access():
    run = simulate(ql.ContinuousBatching([T(10, 400, 0.12)], kv_capacity=20000), 3000, seed=1, memory_limit=5e6)
    assert run.batch_size.sum() > 0  # per-iteration sizes need no stage array
    with pytest.raises(ql.ParameterError, match=r"stage array Trajectory.batch .* above the memory limit"):
        _ = run.batch


@pytest.mark.parametrize("engine", ["events", "python", "fast"])
def test_long_tailed_decode_does_not_allocate_gibibytes(engine):
    model = ql.ContinuousBatching([T(2, ql.Geometric(1e-4), 0.5)], batch_cap=64, policy="fcfs_cap")
    tracemalloc.start()
    try:
        run = simulate(model, 200, seed=3, engine=engine, record="iterations")
        sizes = run.batch_sizes
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sizes.sum() > 0 and run.requests.decode.max() > 10_000
    assert peak < 64 * 2**20
    short = simulate(ql.ContinuousBatching([T(2, 20_000, 1.0)], batch_cap=8, policy="fcfs_cap"), 20, seed=1,
                     engine=engine, record="full")
    assert short.batch.shape == (20, 1, 20_000) and short.batch.sum() == short.batch_size.sum()


# -- replications --------------------------------------------------------------------------
def test_replications_are_independent_reproducible_and_give_intervals():
    model = MODELS["greedy-open"][0]
    reps = simulate(model, 1500, seed=7, warmup=200, replications=4, record="summary")
    assert len(reps) == 4 and len(set(reps.seeds)) == 4
    again = simulate(model, 1500, seed=7, warmup=200, replications=4, record="summary")
    assert reps.summaries == again.summaries
    one = simulate(model, 1500, seed=reps.seeds[2], warmup=200)
    assert reps.summaries[2] == one.summary()
    iv = reps.ci("throughput")
    values = [s["throughput"] for s in reps.summaries]
    assert iv == ql.replications_ci(values) and iv.method == "replications" and iv.n == 4
    assert reps.summary()["throughput"] == pytest.approx(np.mean(values))
    assert "throughput" in reps.cis()
    with pytest.raises(ql.ParameterError, match=r"replications must be an integer"):
        simulate(model, 100, replications=1)
    assert math.isfinite(reps.ci("mean_sojourn").half_width)


# -- the compiled kernel and its fallback --------------------------------------------------
def test_without_numba_the_fast_engine_falls_back_to_the_python_loop(monkeypatch):
    from queueing_llm.sim import kernel

    model = MODELS["greedy-open"][0]
    compiled = simulate(model, 500, seed=3)
    assert compiled.backend == ("numba" if kernel.numba_available() else "python")
    monkeypatch.setattr(kernel, "numba_available", lambda: False)
    fallback = simulate(model, 500, seed=3)
    assert fallback.backend == "python" and fallback.engine == "fast"
    assert fallback.equals(compiled)


def test_wall_clock_runs_outside_the_kernel_run_on_the_python_loop():
    from queueing_llm.sim import kernel

    reserve = ql.ContinuousBatching([T(10, 40, 1.2)], kv_capacity=2000, policy="reserve")
    wall = MODELS["wall-clock"][0]
    assert simulate(reserve, 50, seed=1).backend == ("numba" if kernel.numba_available() else "python")
    assert simulate(wall, 50, seed=1).backend == "python"


def test_kernel_summary_memory_does_not_grow_with_the_horizon():
    """The live state, not the horizon: the window of requests the kernel keeps stays small."""
    from queueing_llm.sim import kernel

    model = ql.ContinuousBatching([T(2, ql.Geometric(0.05), 0.95 * 16 * 0.05)], batch_cap=16, policy="fcfs_cap")
    peaks = []
    for N in (20_000, 200_000):
        tracemalloc.start()
        try:
            run = simulate(model, N, seed=1, record="summary")
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert run.backend == ("numba" if kernel.numba_available() else "python")
    if kernel.numba_available():
        assert peaks[1] < 1.5 * peaks[0] + 2**20, peaks


def test_an_overloaded_summary_run_is_refused_when_its_queue_would_not_fit():
    over = ql.ContinuousBatching([T(2, ql.Geometric(0.1), 5.0)], batch_cap=8, policy="fcfs_cap")  # 5 > 0.8/it
    with pytest.raises(ql.ParameterError, match=r"record='summary'\) would run out of memory"):
        simulate(over, 10**9, seed=1, record="summary", memory_limit=2**30)
    stable = ql.ContinuousBatching([T(2, ql.Geometric(0.1), 0.5)], batch_cap=8, policy="fcfs_cap")
    from queueing_llm.sim.config import prepare
    from queueing_llm.sim.resources import estimate_memory

    config = prepare(stable, 10**9, 1, False, None, 0, "fast", record="summary")
    assert estimate_memory(config, "summary", "numba")["total"] == 0


def test_replications_go_to_verify_as_independent_runs():
    m = ql.ContinuousBatching(ql.RequestType(2, ql.Geometric(0.25), arrivals=1.5), batch_cap=8, policy="fcfs_cap")
    reps = simulate(m, 6000, seed=11, warmup=500, replications=6)
    assert list(reps) == reps.runs and reps[0] is reps.runs[0]
    verdict = ql.verify("stationary", m, reps)
    assert verdict.interval is not None and verdict.interval.method == "replications" and verdict.interval.n == 6
    assert verdict.holds


def test_the_guard_counts_the_stage_array_wait_runs_keep():
    """WAIT runs store the (N, K, S) stage array with record='iterations' (stalls break the
    rebuild from admissions); the estimate counts it, so a limit that lets the same model
    under greedy admission through refuses it under WAIT, naming record='summary'."""
    from queueing_llm.sim.config import prepare
    from queueing_llm.sim.resources import estimate_memory

    greedy = ql.ContinuousBatching([T(10, 40, 1.2)], kv_capacity=2000)
    wait = greedy.with_policy(ql.Wait({0: 2}))
    N = 10**5
    est = {name: estimate_memory(prepare(m, N, 1, False, None, 0, "fast", None, "iterations", None),
                                 "iterations", "python")
           for name, m in (("greedy", greedy), ("wait", wait))}
    assert est["greedy"]["stage_array"] == 0
    assert est["wait"]["stage_array"] == pytest.approx(1.5 * 8 * N * 1 * 40)
    limit = (est["greedy"]["total"] + est["wait"]["total"]) / 2
    simulate(greedy, N, seed=1, engine="python", memory_limit=limit)  # passes the guard
    with pytest.raises(ql.ParameterError, match=r"record='iterations'.*stage array.*record='summary'"):
        simulate(wait, N, seed=1, memory_limit=limit)
