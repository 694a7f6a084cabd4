"""record="summary" on the Python fast loop: streamed, equal to the record="iterations" summary,
memory flat in the horizon (issue 10, item 1); the request tape that drops finished requests."""

from __future__ import annotations

import math
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from engine_cases import CASES, same
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm import strategies as qs
from queueing_llm.sim import fast, simulate, streaming
from queueing_llm.sim.config import prepare
from queueing_llm.sim.draws import RequestStream, RunDraws
from queueing_llm.sim.resources import check_memory, estimate_memory
from queueing_llm.sim.summary import ExactSum

T = ql.RequestType
N = 3 * streaming.CHUNK + 517  # several chunks and a partial one


_same = same


@pytest.fixture
def drops(monkeypatch):
    """The requests each record="summary" run of the Python loop forgot."""
    shifts: list[int] = []
    original = streaming.LoopSummary.drop

    def spy(self, oldest, lists):
        shift = original(self, oldest, lists)
        shifts.append(shift)
        return shift

    monkeypatch.setattr(streaming.LoopSummary, "drop", spy)
    return shifts


@pytest.mark.parametrize("case", list(CASES))
def test_streamed_summary_equals_the_iterations_summary(case, drops):
    model, options = CASES[case]
    iters = simulate(model, N, seed=5, warmup=700, engine="python", record="iterations", **options)
    summ = simulate(model, N, seed=5, warmup=700, engine="python", record="summary", **options)
    assert summ.backend == iters.backend == "python" and summ.record == "summary"
    a, b = iters.summary(), summ.summary()
    assert _same(a, b), {k: (a[k], b[k]) for k in a if not _same({k: a[k]}, {k: b[k]})}
    for key in ("in_system", "memory", "completions", "evictions"):
        assert summ.ci(key) == iters.ci(key)
    assert np.array_equal(summ.latency_quantiles([0.1, 0.5, 0.99]), iters.latency_quantiles([0.1, 0.5, 0.99]),
                          equal_nan=True) or model.is_wall_clock  # wall clock: the sketch, within 1e-3
    assert a["completed_requests"] > 100  # not vacuous
    assert sum(drops) > a["completed_requests"] / 2  # finished requests were forgotten as the run went


def test_fast_engine_summary_of_wait_streams_too(drops):
    """engine="fast" sends WAIT to the Python loop: the same streamed summary."""
    model, _ = CASES["wait"]
    run = simulate(model, N, seed=2, record="summary")
    assert run.backend == "python" and sum(drops) > 0
    assert _same(run.summary(), simulate(model, N, seed=2, engine="python").summary())


@pytest.mark.slow
def test_python_summary_memory_does_not_grow_with_the_horizon():
    """Peak traced memory of engine="python" record="summary": 2e4 and 2e5 iterations within
    0.5 MiB (measured: 2.34 and 2.43 MiB). Before the streaming summary the Python loop built the
    whole run and failed this: 7.0 and 70.7 MiB. record="iterations" grows: ~0.8 MiB at 2e3,
    ~5.6 MiB at 2e4 (2e5 is left out: under tracemalloc it would take several seconds more)."""
    model = ql.ContinuousBatching([T(2, ql.Geometric(0.25), 0.5)], batch_cap=8, policy="fcfs_cap")

    def peak(n: int, record: str) -> int:
        tracemalloc.start()
        try:
            run = simulate(model, n, seed=1, engine="python", record=record)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert run.backend == "python"

    peak(100, "summary")  # imports and first-call allocations out of the measurement
    short, long = peak(20_000, "summary"), peak(200_000, "summary")
    assert abs(long - short) < 2**19, (short, long)
    small, large = peak(2_000, "iterations"), peak(20_000, "iterations")
    assert large - small > 4 * 2**20 and large > 2 * long, (small, large, long)


# -- the memory estimate ----------------------------------------------------------------------
def test_estimate_of_a_python_summary_run_does_not_depend_on_the_horizon():
    fcfs = CASES["fcfs-cap-geometric"][0]
    wait = CASES["wait"][0]
    for model in (fcfs, wait):
        est = [estimate_memory(prepare(model, n, 1, False, None, 0, "python", None, "summary", None), "summary",
                               "python") for n in (10**5, 10**7, 10**9)]
        assert est[0]["total"] == est[1]["total"] == est[2]["total"] > 0
        assert est[0]["iterations"] == est[0]["stage_array"] == 0
    # a limit the summary run fits under and the iterations run (with WAIT's stage array) does not
    config = prepare(wait, 10**7, 1, False, None, 0, "python", None, "summary", None)
    summary = estimate_memory(config, "summary", "python")["total"]
    iterations = estimate_memory(config, "iterations", "python")
    assert iterations["stage_array"] > 0
    check_memory(config, "summary", "python", 2 * summary)
    with pytest.raises(ql.ParameterError, match=r"record='iterations'.*record='summary'"):
        check_memory(config, "iterations", "python", 2 * summary)
    # an overloaded model's queue grows with the horizon, and the estimate says so
    over = ql.ContinuousBatching([T(2, ql.Geometric(0.1), 5.0)], batch_cap=8, policy="fcfs_cap")
    grow = [estimate_memory(prepare(over, n, 1, False, None, 0, "python", None, "summary", None), "summary",
                            "python")["total"] for n in (10**5, 10**7)]
    assert grow[1] > 50 * grow[0]


# -- the request tape --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "case", ["fcfs-cap-geometric", "wall-clock", "wall-clock-one-type-initial", "greedy-evicts-waiting-cap-initial"])
def test_dropping_requests_changes_no_draw_and_no_id(case):
    """Two tapes of the same seed, one forgetting everything taken so far every iteration: the
    same ids and the same requests, and the dropping tape holds a bounded number of requests."""
    model, options = CASES[case]
    config = prepare(model, 20_000, 9, False, options.get("initial_batch"), 0, "python", None, "summary", None)
    keep, drop = RunDraws(config), RunDraws(config)
    t, held = 0.0, []
    for n in range(config.first, 20_000):
        end = t + 0.02 + 1e-5 * (n % 50)
        a, b = keep.source.take(n, t, end), drop.source.take(n, t, end)
        assert a == b
        s = drop.stream
        for i in range(*a):
            assert (s.type[i - s.base], s.prompt[i - s.base], s.decode[i - s.base], s.time[i - s.base]) == (
                keep.stream.type[i], keep.stream.prompt[i], keep.stream.decode[i], keep.stream.time[i])
        s.drop(a[1])
        held.append(len(s) + sum(len(getattr(tape, "offset", getattr(tape, "epochs", []))) for tape in
                                 drop.source.tapes))
        t = end
    assert drop.stream.base == drop.stream.end - len(drop.stream) > 10_000
    # what is held (about two blocks of draws: measured 2,048 to 8,707 of 22,000 to 43,000) does not grow
    half = len(held) // 2
    assert max(held) < keep.stream.end / 4 and max(held[half:]) <= 1.5 * max(held[:half])


def test_request_stream_ids_are_counted():
    s = RequestStream()
    s.extend([0, 1, 0], [5, 6, 7], [1, 2, 3], [0, 0, 1], [0.0, 0.0, 1.0])
    assert (len(s), s.base, s.end) == (3, 0, 3)
    assert s.drop(2) == 2 and (len(s), s.base, s.end) == (1, 2, 3) and s.prompt == [7]
    assert s.drop(1) == 0 and s.drop(99) == 1 and (len(s), s.base, s.end) == (0, 3, 3)
    s.extend([1], [8], [4], [2], [2.0])
    assert s.end == 4 and s.prompt[3 - s.base] == 8


# -- exact sums of seconds -----------------------------------------------------------------------
def test_exact_sum_does_not_depend_on_chunks_and_rounds_once():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.lognormal(0, 3, 3000), -rng.lognormal(-20, 5, 50), [5e-324, 1e-310, 0.0, 1e300]])
    one, parts = ExactSum(), ExactSum()
    one.add(x)
    for chunk in np.array_split(rng.permutation(x), 9):
        parts.add(chunk)
    exact = sum(Fraction(float(v)) for v in x) / x.size
    assert one.total == parts.total and one.mean(x.size) == parts.mean(x.size) == float(exact)
    assert math.isnan(ExactSum().mean(0))
    # float sums depend on the chunking; the exact one does not
    assert (1.0 + 1e-16) + 1e-16 != 1.0 + (1e-16 + 1e-16)
    a, b = ExactSum(), ExactSum()
    a.add([1.0, 1e-16])
    a.add([1e-16])
    b.add([1.0])
    b.add([1e-16, 1e-16])
    assert a.mean(1) == b.mean(1) == float(1 + 2 * Fraction(1e-16)) == 1.0 + 2e-16
    special = ExactSum()
    special.add([1.0, math.inf])
    assert special.mean(2) == math.inf


@pytest.mark.parametrize("case", ["fcfs-cap-geometric", "wait"])
def test_progress_reports_and_summary_chunks_interleave(case):
    """Progress reports and summary chunks share the loop's checkpoint: both happen, unchanged."""
    model, options = CASES[case]
    calls: dict[str, list[int]] = {"iterations": [], "summary": []}
    runs = {record: simulate(model, N, seed=3, warmup=100, engine="python", record=record,
                             progress=lambda done, total, c=calls[record]: c.append(done), **options)
            for record in calls}
    assert calls["iterations"] == calls["summary"] and len(calls["summary"]) == 201
    assert calls["summary"][-1] == N
    assert _same(runs["iterations"].summary(), runs["summary"].summary())


@st.composite
def _python_loop_runs(draw):
    """A model for the Python loop (FCFS open, overloaded or saturated; WAIT; Nested WAIT;
    slotted or wall-clock) and the simulate options."""
    kind = draw(st.sampled_from(["open", "overloaded", "saturated", "wait", "nested"]))
    options = {}
    if kind == "saturated":
        model = draw(qs.saturated_models(policy_kinds=("greedy", "static", "reserve", "rate_limited"),
                                         random_lengths=True))
        options["saturated"] = True
    else:
        load = (1.2, 2.0) if kind == "overloaded" else (0.3, 0.95)
        model = draw(qs.queues(load=load, waiting_caps=draw(st.sampled_from([None, (0, 6)]))))
        if kind == "wait":
            model = model.with_policy(draw(qs.wait_policies()))
        elif kind == "nested":
            model = model.with_policy(draw(qs.nested_wait_policies(max_boundary=8)))
        if draw(st.booleans()):
            model = ql.ContinuousBatching(model.types, batch_cap=model.batch_cap, waiting_cap=model.waiting_cap,
                                          policy=model.policy, iteration_time=ql.LinearIterationTime(0.02, 1e-3))
    return model, options


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=_python_loop_runs(), chunk=st.sampled_from([1, 7, 64]), seed=st.integers(0, 2**16))
def test_summary_equals_iterations_with_tiny_chunks(case, chunk, seed):
    """Chunks of 1 to 64 iterations: many flushes, many drops and renumberings, same summary."""
    model, options = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fast, "CHUNK", chunk)
        summ = simulate(model, 400, seed=seed, warmup=37, engine="python", record="summary", **options)
    iters = simulate(model, 400, seed=seed, warmup=37, engine="python", record="iterations", **options)
    assert _same(iters.summary(), summ.summary())
    assert summ.ci("in_system") == iters.ci("in_system")
