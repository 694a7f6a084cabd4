"""WAIT and Nested WAIT run on the Python fast loop and give the SimPy engine's trajectory bit
for bit (issue 8, items 1 and 6); every policy conserves requests on both engines; the
admission step both engines share (``sim/scheduling.py``) does what its docstring says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm.sim.scheduling import Plan, ScheduledRule, select_admissions
from queueing_llm.strategies import nested_wait_policies, wait_policies

T = ql.RequestType
PMF_PROMPT = ql.FinitePMF({1: 0.5, 6: 0.5})
BOUNDED_DECODES = [1, 2, 4, ql.FinitePMF({1: 0.3, 3: 0.3, 6: 0.4}), ql.FinitePMF({2: 0.5, 5: 0.5})]
WALL = ql.LinearIterationTime(0.01, 1e-4)


def _max(law) -> int:
    return int(law) if isinstance(law, int) else int(law.support_max)


@st.composite
def scheduled_models(draw, tight: bool = False):
    """A small open model with a WAIT or Nested WAIT policy, slotted or wall-clock, and the
    ``simulate`` options (initial batch) to run it with. ``tight``: bounded laws, busy
    arrivals and a KV budget of one to two of the largest requests (evictions)."""
    K = draw(st.integers(1, 2))
    wall = draw(st.booleans())
    bounded = tight or draw(st.booleans())
    types = []
    for _ in range(K):
        prompt = draw(st.sampled_from([0, 1, 3, PMF_PROMPT]))
        decode = draw(st.sampled_from(BOUNDED_DECODES)) if bounded else ql.Geometric(draw(st.sampled_from([0.2, 0.4])))
        rate = draw(st.sampled_from([2.0, 3.0] if tight else [0.3, 1.2, 2.0, 3.0]))
        kind = draw(st.sampled_from(["poisson", "regular", "process"] if wall else ["poisson", "regular"]))
        arrivals = {"poisson": ql.Poisson(rate), "regular": ql.Regular(rate),
                    "process": ql.PoissonProcess(rate * 80)}[kind]
        types.append(T(prompt, decode, arrivals))
    options = {}
    if bounded:
        largest = max(_max(t.decode) for t in types)
        tokens = 7 + largest
        M = draw(st.integers(tokens, (2 if tight else 4) * tokens))
        caps = {"kv_capacity": M}
        if M >= 2 * tokens and draw(st.booleans()):  # one member at stage 0 and one at stage 1 if type 0 has that stage
            options["initial_batch"] = [[1, 1] if _max(types[0].decode) >= 2 else [1]] + [[0]] * (K - 1)
    else:
        largest = draw(st.integers(2, 10))  # Nested WAIT's last boundary; longer requests pass it
        caps = {"batch_cap": draw(st.integers(2, 12))}
    if draw(st.booleans()):
        caps["waiting_cap"] = draw(st.integers(0, 20))
    if draw(st.booleans()):
        caps["admit_after_eviction"] = False
    kind = draw(st.sampled_from(["wait", "nested_wait"]))
    if kind == "wait":
        chosen = draw(wait_policies(types=K, max_threshold=4))
        if draw(st.booleans()):
            chosen = ql.Wait(chosen.thresholds, trigger=chosen.trigger, stall=chosen.stall,
                             budgets={k: draw(st.integers(1, 12)) for k in range(K)})
    else:
        # the strategy needs a boundary above 1 to cut (a last boundary above the longest length is allowed)
        chosen = draw(nested_wait_policies(max_boundary=max(largest, 2), max_threshold=4))
    model = ql.ContinuousBatching(types, policy=chosen, iteration_time=WALL if wall else None, **caps)
    return model, options


def _pair(model, iterations, seed, **options):
    events = ql.simulate(model, iterations, seed=seed, engine="events", **options)
    fast = ql.simulate(model, iterations, seed=seed, engine="python", **options)
    return events, fast


def conserved(run) -> bool:
    """Arrived = completed + in the batch + waiting + rejected, at the end and from the records."""
    arrived = int(run.arrivals.sum())
    ends = (int(run.completions.sum()) + int(run.batch_sizes[-1].sum()) + int(run.queue[-1].sum())
            + int(run.rejections.sum()))
    records = run.requests
    done = int(np.count_nonzero(records.completion >= 0))
    return arrived == ends and len(records) == arrived and done == int(run.completions.sum())


@settings(max_examples=45, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=scheduled_models(), seed=st.integers(0, 2**16))
def test_python_loop_equals_simpy_on_scheduled_models(case, seed):
    model, options = case
    events, fast = _pair(model, 250, seed, **options)
    assert events.backend == "simpy" and fast.backend == "python"
    assert fast.equals(events)
    assert conserved(fast) and conserved(events)


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=scheduled_models(tight=True), seed=st.integers(0, 2**16))
def test_python_loop_equals_simpy_when_scheduled_runs_evict(case, seed):
    """Eviction pops the end of the admission order (lowest stage, most recent): the same
    victims as SimPy's sort by (stage, -admission order), stalls included."""
    model, options = case
    events, fast = _pair(model, 250, seed, **options)
    assert fast.equals(events)
    assert conserved(fast)


# fixed cases that reach what the random ones may miss: evictions under WAIT, stalls that idle
# the batch, Nested WAIT entries that hold members, wall-clock stalled iterations of d0
TWO = [T(2, 3, 1.0), T(4, 1, 0.5)]
NESTED = T(2, ql.FinitePMF({2: 0.5, 8: 0.5}), 6.0)
FIXED = {
    **{f"wait-{trigger}-{stall}": (
        ql.ContinuousBatching(TWO, kv_capacity=60, policy=ql.Wait({0: 2, 1: 1}, trigger=trigger, stall=stall)), {})
       for trigger in ("all", "any", "per_type") for stall in (True, False)},
    "wait-evicts": (ql.ContinuousBatching([T(2, ql.FinitePMF({1: 0.3, 3: 0.3, 6: 0.4}), 2.0), T(1, 4, 1.0)],
                                          kv_capacity=40, policy=ql.Wait({0: 3, 1: 2}, trigger="any")), {}),
    "nested-stall": (ql.ContinuousBatching([NESTED], kv_capacity=300, policy=ql.NestedWait(
        boundaries=[2, 8], thresholds=[5, 3], budgets=[40, 20], buffer=[0, 2], stall=True)), {}),
    "nested-no-stall": (ql.ContinuousBatching([NESTED], kv_capacity=300, policy=ql.NestedWait(
        boundaries=[2, 8], thresholds=[5, 3], budgets=[40, 20], buffer=[0, 2], stall=False)), {}),
    "nested-geometric": (ql.ContinuousBatching([T(2, ql.Geometric(0.3), 2.0)], batch_cap=12, policy=ql.NestedWait(
        boundaries=[2, 5, 60], thresholds=[3, 2, 2], buffer=[0, 1, 1])), {}),
    "wall-clock-wait": (ql.ContinuousBatching([T(20, 10, ql.PoissonProcess(40.0))], kv_capacity=400,
                                              iteration_time=ql.LinearIterationTime(0.01, 1e-5),
                                              policy=ql.Wait({0: 3})), {}),
    "initial-batch": (ql.ContinuousBatching([T(2, 3, ql.Bernoulli(0.5))], kv_capacity=30, policy=ql.Wait({0: 2})),
                      {"initial_batch": [2, 1, 1]}),
}


@pytest.fixture(scope="module")
def fixed_runs():
    return {name: _pair(model, 1500, 3, **options) for name, (model, options) in FIXED.items()}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_python_loop_equals_simpy_on_fixed_cases(fixed_runs, name):
    events, fast = fixed_runs[name]
    assert fast.backend == "python" and fast.equals(events)
    assert conserved(fast)


def test_fixed_cases_reach_evictions_stalls_and_entries(fixed_runs):
    """The fixed cases are not vacuous: they evict, idle, hold members at entries."""
    assert int(fixed_runs["wait-evicts"][1].evictions.sum()) > 0
    # with stall, an iteration whose batch did not form executes nothing: no member advances
    idle = fixed_runs["wait-all-True"][1]
    assert int(idle.completions.sum()) > 0
    frozen = [n for n in range(1, 1500) if idle.batch[n].sum() and np.array_equal(idle.batch[n], idle.batch[n - 1])]
    assert frozen
    # Nested WAIT holds survivors at the entry stage 2 of segment 2
    held = fixed_runs["nested-stall"][1].batch[:, 0, 2]
    assert int(held.max()) > 0
    # a stalled wall-clock iteration lasts d0 = 0.01 s exactly
    wall = fixed_runs["wall-clock-wait"][1]
    assert np.any(np.isclose(np.diff(wall.time), 0.01, rtol=0, atol=1e-15))


def test_engine_fast_takes_the_python_loop_for_scheduled_policies():
    model, options = FIXED["wait-any-True"]
    run = ql.simulate(model, 50, seed=1)
    assert run.engine == "fast" and run.backend == "python"
    assert run.equals(ql.simulate(model, 50, seed=1, engine="events"))


def test_saturated_scheduled_runs_are_refused_on_both_engines():
    model = FIXED["wait-any-True"][0]
    for engine in ("events", "python", "fast"):
        with pytest.raises(ql.PolicyError, match="open system"):
            ql.simulate(model, 10, saturated=True, engine=engine)


# every policy conserves requests on both engines
FCFS_POLICIES = ["greedy", "rate_limited", "reserve", "static", "fcfs_cap"]


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(policy=st.sampled_from(FCFS_POLICIES + ["wait", "nested_wait"]), rate=st.sampled_from([0.5, 1.5, 3.0]),
       waiting_cap=st.sampled_from([math.inf, 5]), seed=st.integers(0, 2**16), data=st.data())
def test_every_policy_conserves_requests_on_both_engines(policy, rate, waiting_cap, seed, data):
    decode = ql.FinitePMF({1: 0.3, 3: 0.3, 6: 0.4})
    types = [T(2, decode, rate), T(1, 4, ql.Regular(rate / 2))]
    caps = {"kv_capacity": 60, "waiting_cap": waiting_cap, "batch_cap": 10}
    if policy == "wait":
        model = ql.ContinuousBatching(types, policy=data.draw(wait_policies(types=2, max_threshold=4)), **caps)
    elif policy == "nested_wait":
        model = ql.ContinuousBatching(types, policy=data.draw(nested_wait_policies(max_boundary=6)), **caps)
    else:
        if policy == "fcfs_cap":  # the queue without a memory limit
            caps["kv_capacity"] = math.inf
        model = ql.ContinuousBatching(types, policy=policy, **caps)
    for run in _pair(model, 300, seed):
        assert conserved(run)


# the shared admission step
class _Rule(ScheduledRule):
    """Memory budget M, no batch cap."""


def _queues(*items):
    """Per-type queues from (position, type, prompt) items."""
    out = [[], []]
    for position, k, prompt in items:
        out[k].append((position, (k, position), prompt))
    return out


def test_select_admissions_follows_the_waiting_room_order_within_quotas():
    rule = _Rule(M=100, B=math.inf)
    queues = _queues((0, 1, 1), (1, 0, 1), (2, 0, 1), (3, 1, 1), (4, 0, 1))
    chosen = select_admissions(rule, Plan(admit_by_type=[2, 1]), 0, 0, queues)
    assert chosen == [(1, 0), (0, 1), (0, 2)]  # type 1's first, then type 0's two, in queue order


def test_select_admissions_closes_a_type_whose_head_does_not_fit():
    rule = _Rule(M=20, B=math.inf)
    # memory 0: type 0's head needs 16 tokens and fits; the next type-0 request (16) does not,
    # which closes type 0; type 1's requests (2 tokens each) still enter behind it
    queues = _queues((0, 0, 15), (1, 0, 15), (2, 1, 1), (3, 0, 0), (4, 1, 1))
    chosen = select_admissions(rule, Plan(admit_by_type=[3, 2]), 0, 0, queues)
    assert chosen == [(0, 0), (1, 2), (1, 4)]


def test_select_admissions_fcfs_stops_at_the_first_head_that_does_not_fit():
    rule = _Rule(M=10, B=math.inf)
    queues = _queues((0, 0, 1), (1, 1, 8), (2, 0, 0))
    assert select_admissions(rule, Plan(admit_fcfs=3), 0, 0, queues) == [(0, 0)]
    assert select_admissions(rule, Plan(admit_fcfs=1), 0, 0, _queues((5, 1, 0), (2, 0, 0))) == [(0, 2)]


def test_go_flags_release_the_oldest_at_an_entry_and_stall_from_run_from():
    plan = Plan(run_from=6, release={3: 1}, entry_stages=(3, 6))
    # admission order, oldest first: stages never increase along it
    assert plan.go_flags([7, 6, 5, 3, 3, 1, 0]) == [False, False, True, True, False, True, True]
    assert Plan(run_from=0).go_flags([2, 1, 0]) == [False, False, False]
    assert Plan().go_flags([2, 1, 0]) == [True, True, True]


@pytest.mark.parametrize("name", ["nested-stall", "wall-clock-wait"])
def test_summary_records_of_scheduled_runs_equal_the_full_summary(fixed_runs, name):
    """record="summary" keeps batch sizes, not the stage array, on both engines: same numbers."""
    model, options = FIXED[name]
    full = fixed_runs[name][1].summary(warmup=100)
    for engine in ("python", "events"):
        run = ql.simulate(model, 1500, seed=3, engine=engine, record="summary", warmup=100, **options)
        assert run.record == "summary"
        got = run.summary()
        assert got.keys() == full.keys()
        assert all(got[k] == full[k] or (math.isnan(got[k]) and math.isnan(full[k])) for k in full)


def test_progress_and_fixed_workloads_of_scheduled_runs_agree():
    """A progress callback does not change a scheduled run; a fixed workload (requests=N) stops
    at the same completion on both engines."""
    model, options = FIXED["nested-stall"]
    calls = []
    run = ql.simulate(model, 600, seed=2, engine="python", progress=lambda done, total: calls.append((done, total)))
    assert run.equals(ql.simulate(model, 600, seed=2, engine="events"))
    assert calls[-1] == (600, 600) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    fast = ql.simulate(model, 5000, seed=2, engine="python", requests=300)
    slow = ql.simulate(model, 5000, seed=2, engine="events", requests=300)
    assert fast.equals(slow) and int(fast.completions.sum()) >= 300 > int(fast.completions[:-1].sum())


def test_the_kernel_says_no_to_scheduled_policies():
    from queueing_llm.sim.config import prepare
    from queueing_llm.sim.kernel import kernel_applies

    for name in ("wait-any-True", "nested-stall", "wall-clock-wait"):
        model = FIXED[name][0]
        config = prepare(model, 10, 1, False, None, 0, "fast", None, "iterations", None)
        assert not kernel_applies(config)
        greedy = prepare(model.with_policy(ql.Greedy()), 10, 1, False, None, 0, "fast", None, "iterations", None)
        assert kernel_applies(greedy) == ql.sim.kernel.numba_available()
