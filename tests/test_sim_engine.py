"""The simulators against the model chapter, section 2: the [ADLS26] worked trajectory, conservation,
memory Little's law, wall-clock mode and the validation of simulate's arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

import queueing_llm as ql
from queueing_llm.sim import simulate

T = ql.RequestType
ENGINES = ("events", "fast")


def worked_model(**kw) -> ql.ContinuousBatching:
    return ql.ContinuousBatching([T(prompt=2, decode=2)], kv_capacity=140, **kw)


# -- invariants checked on every run ------------------------------------------------------
def check_invariants(run: ql.Trajectory) -> None:
    """Conservation and memory bounds that must hold on any trajectory."""
    m = run.model
    N = run.iterations
    arrived = np.cumsum(run.arrivals.sum(axis=1))
    left = np.cumsum(run.completions.sum(axis=1)) + np.cumsum(run.rejections.sum(axis=1))
    np.testing.assert_array_equal(arrived, left + run.in_system)
    # memory after eviction and admission never above M
    assert np.all(run.memory <= float(m.M))
    assert np.all(run.queue >= 0) and np.all(run.batch >= 0)
    size = run.batch_size
    assert np.all(size <= float(m.B))
    # batch balance: members change by admissions - evictions - completions
    flow = (run.admissions - run.evictions - run.completions).sum(axis=1)
    np.testing.assert_array_equal(np.diff(size), flow[1:])
    # memory = sum of w_j over members (deterministic prompts)
    if all(t.prompt.support_min == t.prompt.support_max for t in m.types):
        w = np.array([[int(t.prompt.support_min) + 1 + j for j in range(run.stages)] for t in m.types])
        np.testing.assert_array_equal(run.memory, (run.batch * w[None]).sum(axis=(1, 2)))
    # no stage at or beyond a type's decode length
    for k, t in enumerate(m.types):
        top = t.decode.support_max
        if top < run.stages:
            assert run.batch[:, k, int(top) :].sum() == 0
    if math.isinf(float(m.waiting_cap)):
        assert run.rejections.sum() == 0
    assert np.all(np.diff(run.time) > 0)
    r = run.requests
    assert len(r) == run.arrivals.sum()
    done = r.completed & ~r.initial
    # no request completes before spending its decode length in the batch
    assert np.all(r.completion[done] - r.admission[done] >= r.decode[done])
    never_evicted = done & (r.evicted == 0)
    np.testing.assert_array_equal(r.completion[never_evicted] - r.admission[never_evicted], r.decode[never_evicted])
    assert np.all(r.arrival[done] <= r.admission[done])
    assert np.all(r.first_token[done] == r.admission[done] + 1)
    assert not np.any(r.rejected & (r.admission >= 0))
    np.testing.assert_array_equal(np.bincount(r.arrival[r.rejected], minlength=N), run.rejections.sum(axis=1))
    np.testing.assert_array_equal(r.evicted.sum(), run.evictions.sum())


# -- [ADLS26] worked trajectory --------------------------------------------------------------
WORKED_STATES = [(18, 21), (22, 18), (17, 22), (24, 17), (14, 24), (28, 14), (9, 28), (34, 9), (1, 34), (45, 1)]


@pytest.mark.parametrize("engine", ENGINES)
def test_worked_trajectory_of_adls26(engine):
    run = simulate(worked_model(), 40, saturated=True, initial_batch=[21, 19], engine=engine)
    states = [tuple(x) for x in run.batch[:, 0].tolist()]
    assert states[0] == (21, 19)
    assert states[1:11] == WORKED_STATES
    # first eviction: 45 stage-1 requests hold 180 > 140 tokens; 10 are evicted -> (0, 35)
    assert states[11] == (0, 35)
    evictions = run.evictions[:, 0]
    assert evictions[:11].sum() == 0 and evictions[11] == 10
    # then the limit cycle (46, 0) <-> (0, 35), 11 evictions per period
    assert states[12:] == [(46, 0), (0, 35)] * 14
    assert evictions[12:].tolist() == [0, 11] * 14
    # throughput 35/2 per iteration on the cycle, against the fixed point's 20
    assert run.completions[12:, 0].sum() * 2 == 35 * (40 - 12)
    assert run.memory[12:].tolist() == [138, 140] * 14
    check_invariants(run)


@pytest.mark.parametrize("engine", ENGINES)
def test_greedy_admits_floor_of_free_memory_over_l0_plus_1(engine):
    run = simulate(worked_model(), 12, saturated=True, initial_batch=[21, 19], engine=engine)
    x = run.batch[:, 0]
    for n in range(1, 11):  # no eviction before iteration 11
        after_execution = 4 * x[n - 1, 0]  # stage-0 requests moved to stage 1, stage 1 completed
        assert run.admissions[n, 0] == (140 - after_execution) // 3


@pytest.mark.parametrize("engine", ENGINES)
def test_iteration_zero_without_initial_batch_admits_its_arrivals(engine):
    m = ql.ContinuousBatching([T(2, 3, ql.Deterministic(2))], kv_capacity=24)
    run = simulate(m, 3, seed=0, engine=engine)
    assert run.arrivals[:, 0].tolist() == [2, 2, 2]
    assert run.batch[0, 0].tolist() == [2, 0, 0]
    assert run.batch[2, 0].tolist() == [2, 2, 2]
    assert run.time.tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("engine", ENGINES)
def test_eviction_order_lowest_stage_first_then_most_recent(engine):
    """The model chapter, section 2, step 3: lowest stage first regardless of type; within a stage the
    most recently admitted first; the victim loses its progress and rejoins the queue's head."""
    types = [T(10, 5, 0), T(10, 5, 0)]  # no arrivals: only the initial members
    # two members at stage 1 (type 0 admitted before type 1); 24 tokens, 26 after execution
    run = simulate(ql.ContinuousBatching(types, kv_capacity=25), 2, initial_batch=[[0, 1], [0, 1]], engine=engine)
    assert run.requests.type.tolist() == [0, 1]
    assert run.evictions[1].tolist() == [0, 1] and run.requests.evicted.tolist() == [0, 1]
    assert run.batch[1, 1].tolist() == [1, 0, 0, 0, 0] and run.batch[1, 0].tolist() == [0, 0, 1, 0, 0]
    # a type-1 member at stage 1 and a type-0 member at stage 0: the type-0 one goes first
    big = [T(10, 5, 0), T(3, 5, 0)]
    run = simulate(ql.ContinuousBatching(big, kv_capacity=17), 2, initial_batch=[[1], [0, 1]], engine=engine)
    assert run.requests.type.tolist() == [1, 0]  # ids: highest stage first
    assert run.requests.evicted.tolist() == [0, 1]
    assert run.evictions[1].tolist() == [1, 0]


# -- conservation on every run -----------------------------------------------------------
POLICIES = ["greedy", "rate_limited", "rate_limited(1.3)", "reserve", "static"]
OPEN = [
    (T(10, 40, 1.3), 2000, math.inf),
    (T(10, 40, 1.6), 2000, 8),
    (T(ql.FinitePMF({4: 0.5, 12: 0.5}), ql.FinitePMF({5: 0.4, 30: 0.6}), 1.2), 1500, 20),
]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", range(len(OPEN)))
def test_conservation_open(policy, case):
    rtype, M, cap = OPEN[case]
    m = ql.ContinuousBatching([rtype, T(3, 6, 0.5)], kv_capacity=M, policy=policy, waiting_cap=cap, batch_cap=70)
    check_invariants(simulate(m, 1500, seed=case, engine="fast"))


@pytest.mark.parametrize("policy", POLICIES)
def test_conservation_saturated(policy):
    m = ql.ContinuousBatching(
        [T(10, 40), T(ql.FinitePMF({2: 0.5, 6: 0.5}), ql.Empirical([1, 3, 7]))],
        kv_capacity=2000,
        policy=policy,
        mix=[0.3, 0.7],
        waiting_cap=5,
    )
    check_invariants(simulate(m, 1500, seed=4, saturated=True, engine="fast"))


@pytest.mark.parametrize("engine", ENGINES)
def test_conservation_events_engine_with_caps(engine):
    m = ql.ContinuousBatching([T(10, 40, 1.6), T(3, 6, 0.4)], kv_capacity=2000, waiting_cap=6, batch_cap=60)
    run = simulate(m, 800, seed=2, engine=engine)
    assert run.rejections.sum() > 0 and run.evictions.sum() > 0
    check_invariants(run)


def test_conservation_fcfs_cap_and_initial_batch():
    m = ql.ContinuousBatching([T(2, ql.Geometric(0.2), 2.6)], batch_cap=12, policy="fcfs_cap", waiting_cap=30)
    run = simulate(m, 2000, seed=5, initial_batch=[3, 1, 0, 2], engine="fast")
    check_invariants(run)
    assert run.rejections.sum() > 0


# -- memory Little's law -------------------------------------------------------------------
@pytest.mark.parametrize(
    "model",
    [
        ql.ContinuousBatching([T(10, 40, 0.8)], kv_capacity=2000),
        ql.ContinuousBatching(
            [
                T(ql.FinitePMF({5: 0.5, 20: 0.5}), ql.FinitePMF({10: 0.3, 40: 0.7}), 0.5),
                T(3, ql.Empirical([2, 5, 9]), 1.0),
            ],
            kv_capacity=1500,
        ),
    ],
    ids=["deterministic", "random-two-types"],
)
def test_memory_littles_law(model):
    r"""Mean KV in use = throughput x lifetime memory C: each request is observed after
    admission at stages 0..l1-1, holding sum_j w_j = C in total (the model chapter, section 1)."""
    run = simulate(model, 20_000, seed=3, engine="fast")
    assert run.evictions.sum() == 0  # otherwise evicted work adds memory-time
    w = 1000
    C = np.array([float(t.lifetime_memory) for t in model.types])
    series = run.memory[w:] - (run.completions[w:] * C).sum(axis=1)
    ci = ql.batch_means_ci(series)
    assert 0.0 in ci, ci
    # and with the theory's arrival rates (stable, no rejection: throughput = sum of rates)
    rate = sum(float(t.arrival_rate) * c for t, c in zip(model.types, C, strict=True))
    assert rate in ql.batch_means_ci(run.memory[w:])


# -- wall-clock mode ---------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_wall_clock_with_d1_zero_is_the_slotted_model(engine):
    d0 = 0.05
    types = [T(10, 40, 1.0), T(4, 8, 0.6)]
    slotted = ql.ContinuousBatching(types, kv_capacity=1400)
    wall = ql.ContinuousBatching(types, kv_capacity=1400, iteration_time=ql.LinearIterationTime(d0, 0))
    a = simulate(slotted, 500, seed=9, engine=engine)
    b = simulate(wall, 500, seed=9, engine=engine)
    assert a.evictions.sum() > 0  # a run where the order of events matters
    for name in ("batch", "queue", "memory", "arrivals", "admissions", "completions", "evictions"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("type", "prompt", "decode", "arrival", "admission", "first_token", "completion", "evicted"):
        assert np.array_equal(getattr(a.requests, name), getattr(b.requests, name)), name
    assert np.array_equal(a.time, np.arange(500.0))
    np.testing.assert_allclose(b.time, (np.arange(500) + 1) * d0, rtol=1e-12)
    # slotted times are iteration numbers; wall-clock arrivals fall inside their iteration
    r = b.requests
    done = r.completed
    assert np.array_equal(a.requests.latency[done], a.requests.sojourn[done])
    lat = r.latency[done]
    assert np.all(lat > r.sojourn[done] * d0 - 1e-12) and np.all(lat <= (r.sojourn[done] + 1) * d0 + 1e-12)
    s = b.summary(warmup=100)
    assert {"mean_latency", "mean_ttft", "mean_tbt"} <= set(s)
    assert not {"mean_latency", "mean_ttft", "mean_tbt"} & set(a.summary())
    assert s["mean_tbt"] >= d0 and s["mean_ttft"] > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_wall_clock_poisson_process(engine):
    d0, d1 = 0.02, 2e-5
    m = ql.ContinuousBatching(
        [T(10, 40, ql.PoissonProcess(50.0))], kv_capacity=2000, iteration_time=ql.LinearIterationTime(d0, d1)
    )
    run = simulate(m, 1500, seed=11, engine=engine)
    check_invariants(run)
    # iteration n lasts d0 + d1 Z_n, Z_n = memory after admission at n-1
    dur = np.diff(np.concatenate([[0.0], run.time]))
    Z = np.concatenate([[0], run.memory[:-1]])
    np.testing.assert_allclose(dur, d0 + d1 * Z, rtol=1e-9)
    r = run.requests
    # arrivals fall in their iteration's interval [time[n-1], time[n])
    start = np.concatenate([[0.0], run.time])[r.arrival]
    assert np.all((r.arrival_time >= start) & (r.arrival_time < run.time[r.arrival]))
    done = r.completed
    ttft, lat, tbt = r.ttft[done], r.latency[done], r.tbt[done]
    assert np.all(ttft > 0) and np.all(lat >= ttft) and np.all(tbt > 0)
    np.testing.assert_allclose(lat, ttft + tbt * (r.decode[done] - 1), rtol=1e-9)
    # Poisson arrivals at 50 per second: E[A_n | s_n] = 50 s_n
    assert 0.0 in ql.batch_means_ci(run.arrivals[:, 0] - 50.0 * dur)
    s = run.summary(warmup=200)
    assert s["mean_ttft"] < s["mean_latency"]
    assert s["mean_tbt"] >= d0


# -- results on disk and provenance ---------------------------------------------------------
def test_to_csv_and_metadata(tmp_path):
    run = simulate(worked_model(), 14, saturated=True, initial_batch=[21, 19], seed=1, engine="fast")
    batch_path, flows_path, summary_path, meta_path = run.to_csv(tmp_path / "worked.csv")
    rows = batch_path.read_text().splitlines()
    assert rows[0] == "iteration,type,stage,count"
    assert "11,0,1,35" in rows and "10,0,0,45" in rows
    flows = flows_path.read_text().splitlines()
    assert flows[0].startswith("iteration,type,queue,arrivals,admissions,completions,evictions")
    assert flows[12].startswith("11,0,10,0,0,")  # iteration 11: 10 evicted waiting
    summary = dict((row.split(",")[0], row.split(",")[1:]) for row in summary_path.read_text().splitlines()[1:])
    assert summary_path.read_text().startswith("key,value,unit\n")
    assert set(summary) == set(run.summary()) >= {"latency_p99", "ttft_p50", "restarts_per_request", "peak_memory"}
    for key, (value, unit) in summary.items():  # the values as summary() gives them, with their units
        assert (float(value) == run.summary()[key] or value == "nan") and unit == run.summary_units()[key]
    meta = run.metadata
    assert meta["seed"] == 1 and meta["model"] == run.model.to_dict()
    assert {"queueing_llm", "numpy", "sympy"} <= set(meta)
    assert '"seed": 1' in meta_path.read_text()
    assert not list(tmp_path.glob(".*tmp"))


def test_summary_keys_and_warmup():
    run = simulate(ql.default_model(), 300, seed=1, warmup=100, engine="fast")
    s = run.summary()
    keys = {
        "throughput",
        "mean_queue",
        "mean_in_system",
        "mean_batch",
        "mean_memory",
        "evictions_per_iteration",
        "mean_sojourn",
        "arrivals_per_iteration",
        "rejections_per_iteration",
    }
    assert keys <= set(s)
    assert set(s) == set(run.summary_units())
    assert s["throughput"] == run.completions[100:].sum() / 200
    assert s == run.summary(warmup=100) and s != run.summary(warmup=0)
    assert s["mean_memory"] == run.memory[100:].mean()


def test_seed_none_is_recorded_and_reproducible():
    m = ql.default_model()
    a = simulate(m, 200)
    b = simulate(m, 200, seed=a.seed)
    assert isinstance(a.seed, int) and a.equals(b)
    assert not simulate(m, 200, seed=a.seed + 1).equals(a)


def test_progress_callback_does_not_change_the_run():
    calls: dict[str, list] = {"events": [], "fast": []}
    runs = {
        e: simulate(ql.default_model(), 400, seed=2, engine=e, progress=lambda d, t, e=e: calls[e].append((d, t)))
        for e in ENGINES
    }
    assert calls["events"] == calls["fast"]
    assert calls["fast"][0] == (2, 400) and calls["fast"][-1] == (400, 400)
    assert runs["fast"].equals(simulate(ql.default_model(), 400, seed=2, engine="fast"))
    with pytest.raises(ql.ParameterError, match=r"progress must be None or a callable"):
        simulate(ql.default_model(), 10, progress=3)


# -- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"iterations": 0}, ql.ParameterError, r"iterations must be an integer in \[1, inf\), got 0"),
        ({"iterations": 2.5}, ql.ParameterError, r"iterations must be an integer"),
        ({"iterations": True}, ql.ParameterError, r"iterations must be an integer"),
        ({"warmup": 10}, ql.ParameterError, r"warmup must be an integer in \[0, 9\], got 10"),
        ({"warmup": -1}, ql.ParameterError, r"warmup must be an integer in \[0, 9\], got -1"),
        ({"seed": -3}, ql.ParameterError, r"seed must be an integer in \[0, inf\), got -3"),
        ({"seed": "a"}, ql.ParameterError, r"seed must be an integer"),
        ({"engine": "turbo"}, ql.ParameterError, r"engine must be one of 'events', 'fast', 'python', got 'turbo'"),
        ({"saturated": "yes"}, ql.ParameterError, r"saturated must be True or False"),
        ({"initial_batch": [1, 2, 3]}, ql.ParameterError, r"initial_batch has 3 stages but type 0's decode length"),
        ({"initial_batch": [1, -2]}, ql.ParameterError, r"initial_batch\[1\] must be an integer >= 0"),
        ({"initial_batch": [1.5]}, ql.ParameterError, r"initial_batch\[0\] must be an integer >= 0"),
        ({"initial_batch": [30, 20]}, ql.ParameterError, r"initial_batch holds 170 KV tokens, above kv_capacity = 140"),
        ({"initial_batch": "21"}, ql.ParameterError, r"initial_batch must be a list of stage counts"),
        ({"initial_batch": [[1], [2]]}, ql.ParameterError, r"initial_batch must be a list of stage counts"),
    ],
)
def test_simulate_argument_validation(kwargs, error, match):
    args = {"iterations": 10, "saturated": True}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        simulate(worked_model(), **args)


def test_validation_of_models():
    with pytest.raises(ql.ParameterError, match=r"model must be a ql.ContinuousBatching"):
        simulate("model", 10)
    with pytest.raises(ql.ParameterError, match=r"types\[0\] has arrivals=None"):
        simulate(worked_model(), 10)
    import sympy as sp

    M = sp.Symbol("M", positive=True)
    sym = ql.ContinuousBatching([T(2, 2, 1.0)], kv_capacity=M)
    with pytest.raises(ql.SymbolicValueError, match=r"kv_capacity = M is symbolic"):
        simulate(sym, 10)
    lam = sp.Symbol("lam", positive=True)
    with pytest.raises(ql.SymbolicValueError, match=r"types\[0\].arrivals"):
        simulate(ql.ContinuousBatching([T(2, 2, ql.Poisson(lam))], kv_capacity=140), 10)
    unbounded = ql.ContinuousBatching([T(2, 2)], policy="fcfs_cap")
    with pytest.raises(ql.ParameterError, match=r"admits infinitely many requests per iteration"):
        simulate(unbounded, 10, saturated=True)
    two = ql.ContinuousBatching([T(2, 2), T(1, 3)], kv_capacity=140, batch_cap=5)
    with pytest.raises(ql.ParameterError, match=r"initial_batch must be a list of 2 lists"):
        simulate(two, 10, saturated=True, initial_batch=[1, 2])
    with pytest.raises(ql.ParameterError, match=r"initial_batch\[1\] has 4 stages .* at most 3"):
        simulate(two, 10, saturated=True, initial_batch=[[1], [1, 0, 0, 1]])
    with pytest.raises(ql.ParameterError, match=r"initial_batch holds 6 requests, above batch_cap = 5"):
        simulate(two, 10, saturated=True, initial_batch=[[1, 2], [3]])
    rnd = ql.ContinuousBatching([T(ql.FinitePMF({1: 0.5, 60: 0.5}), 2)], kv_capacity=140)
    with pytest.raises(ql.ParameterError, match=r"with the prompts drawn for seed 0, above kv_capacity = 140"):
        simulate(rnd, 10, saturated=True, initial_batch=[10], seed=0)
    assert issubclass(ql.ParameterError, ql.ModelError)
