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
    assert summ.summary() == full.summary() == iters.summary()
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
