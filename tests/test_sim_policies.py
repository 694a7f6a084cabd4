"""Admission policies of the model chapter, section 3 as the simulators execute them
(``queueing_llm.sim.policies``), the waiting-room cap and the admit-after-eviction option."""

from __future__ import annotations

import numpy as np
import pytest

import queueing_llm as ql
from queueing_llm.sim import fixed_point_rate, simulate
from queueing_llm.sim.policies import (
    FcfsCapAdmission,
    GreedyAdmission,
    RateLimitedAdmission,
    ReserveAdmission,
    StaticAdmission,
    admission_rule,
)

T = ql.RequestType
ENGINES = ("events", "fast")


def adls(policy: str, rate: float | None = None, **kw) -> ql.ContinuousBatching:
    """[ADLS26]'s example: l0 = 10, l1 = 40, M = 2000 (worst cycle 1.00, x* = 1.64)."""
    return ql.ContinuousBatching([T(10, 40, rate)], kv_capacity=2000, policy=policy, **kw)


# -- the rules as objects ------------------------------------------------------------------
def test_rule_objects_follow_the_policy_values():
    m = adls("greedy", 1.0)
    assert type(admission_rule(m, 2000, np.inf)) is GreedyAdmission
    assert type(admission_rule(adls("reserve", 1.0), 2000, np.inf)) is ReserveAdmission
    assert type(admission_rule(adls("static", 1.0), 2000, 5)) is StaticAdmission
    rl = admission_rule(adls("rate_limited", 1.0), 2000, np.inf)
    assert type(rl) is RateLimitedAdmission
    # x* = M / C with C = l1 (l0 + (l1 + 1)/2) = 40 * 30.5 = 1220 (hand-typed check)
    assert rl.rate == pytest.approx(2000 / 1220, rel=1e-15) == fixed_point_rate(m)
    assert admission_rule(adls("rate_limited(1.25)", 1.0), 2000, np.inf).rate == 1.25
    fcfs = ql.ContinuousBatching([T(1, 2, 1.0)], policy="fcfs_cap", batch_cap=3)
    assert type(admission_rule(fcfs, np.inf, 3)) is FcfsCapAdmission
    for rule in (GreedyAdmission, RateLimitedAdmission, ReserveAdmission, StaticAdmission, FcfsCapAdmission):
        assert ":math:" in rule.__doc__  # each rule states its formula


def test_greedy_rule_one_step_check():
    g = GreedyAdmission(M=140, B=40)
    assert g.allows(137, 0, 2, 2) and not g.allows(138, 0, 2, 2)  # 137 + 3 <= 140 < 138 + 3
    assert not g.allows(0, 40, 2, 2)


def test_token_bucket_meets_a_fractional_rate_with_depth_x_plus_1():
    rule = RateLimitedAdmission(M=np.inf, B=np.inf, rate=1.5)
    admitted = []
    for n in range(8):
        rule.begin(n, 0, 0)
        k = 0
        while rule.allows(0, 0, 1, 1):
            rule.admitted(n, 1, 1)
            k += 1
        admitted.append(k)
    assert admitted == [1, 2, 1, 2, 1, 2, 1, 2]
    # unused tokens carry over up to depth x + 1 = 2.5
    idle = RateLimitedAdmission(M=np.inf, B=np.inf, rate=1.5)
    for n in range(5):
        idle.begin(n, 0, 0)
    assert idle.tokens == 2.5


def test_reserve_rule_checks_the_peak_future_memory():
    r = ReserveAdmission(M=100, B=np.inf, horizon=10)
    r.begin(0, 0, 0)
    # a request with prompt 9, decode 10 peaks at 9 + 1 + 9 = 19 tokens at its last stage
    for _ in range(5):
        assert r.allows(0, 0, 9, 10)
        r.admitted(0, 9, 10)
    assert r.profile[9] == 95 and not r.allows(50, 5, 9, 10)  # would peak at 114 > 100
    assert r.allows(50, 5, 0, 1)  # a one-iteration request peaks now: 50 + 1 <= 100


# -- reserve vs greedy ------------------------------------------------------------------------
def test_reserve_never_evicts_where_greedy_congests():
    """Arrival rate 1.2 between the worst-cycle throughput M/(l1(l0+l1)) = 1 and x* = 1.64:
    greedy evicts persistently and its queue grows ([ADLS26] section 5); reserve never evicts."""
    worst = 2000 / (40 * (10 + 40))
    assert worst < 1.2 < fixed_point_rate(adls("greedy", 1.2))
    greedy = simulate(adls("greedy", 1.2), 10_000, seed=1, engine="fast")
    reserve = simulate(adls("reserve", 1.2), 10_000, seed=1, engine="fast")
    assert greedy.evictions.sum() > 1000
    q = greedy.queue[:, 0]
    assert q[-1000:].mean() > q[4000:5000].mean() > q[:1000].mean() + 100  # growing
    assert reserve.evictions.sum() == 0
    assert np.all(reserve.memory <= 2000)
    # the events engine on a shorter stretch
    assert simulate(adls("reserve", 1.2), 1500, seed=2).evictions.sum() == 0


def test_reserve_in_saturation_locks_into_cohorts():
    """Saturated, reserve admits a cohort of M / (l0 + l1) = 40 requests and then waits for it
    to finish: the throughput is the worst cycle's M/(l1(l0+l1)) = 1, without evictions."""
    run = simulate(adls("reserve"), 400, saturated=True, engine="fast")
    assert run.evictions.sum() == 0
    assert run.admissions[:, 0].tolist() == ([40] + [0] * 39) * 10
    assert run.summary(warmup=40)["throughput"] == 1.0


# -- rate-limited admission in the saturated integer system --------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_rate_limited_at_x_star_saturated(engine):
    """At x* = 1.6393.. the integer system overflows M by rounding once per decode length:
    after a transient, exactly one eviction every 40 iterations and throughput 63/40 = 1.575
    (3.9 % below x*), against greedy's 4.5 evictions per iteration at throughput 1."""
    N, w = 2400, 400
    run = simulate(adls("rate_limited"), N, saturated=True, engine=engine)
    e = np.flatnonzero(run.evictions[w:, 0])
    assert run.evictions[w:, 0].sum() == (N - w) // 40 and np.all(np.diff(e) == 40)
    s = run.summary(warmup=w)
    assert s["throughput"] == 63 / 40
    greedy = simulate(adls("greedy"), N, saturated=True, engine="fast").summary(warmup=w)
    assert greedy["throughput"] == 1.0 and greedy["evictions_per_iteration"] > 4


def test_rate_limited_just_below_x_star_never_evicts():
    run = simulate(adls("rate_limited(1.6)"), 2000, saturated=True, engine="fast")
    assert run.evictions.sum() == 0
    assert run.summary(warmup=400)["throughput"] == 1.6


def test_rate_limited_open_system_is_stable_where_greedy_is_not():
    rl = simulate(adls("rate_limited", 1.2), 10_000, seed=1, engine="fast")
    greedy = simulate(adls("greedy", 1.2), 10_000, seed=1, engine="fast")
    assert rl.queue[-2000:].mean() < 20 < greedy.queue[-2000:].mean()
    assert rl.summary(warmup=1000)["throughput"] > greedy.summary(warmup=1000)["throughput"]


# -- static batching, fcfs_cap, random laws ----------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_static_admits_only_into_an_empty_batch(engine):
    decode = ql.FinitePMF({3: 0.5, 9: 0.5})
    m = ql.ContinuousBatching([T(5, decode, 2.0)], kv_capacity=600, batch_cap=12, policy="static")
    run = simulate(m, 600, seed=3, engine=engine)
    size = run.batch_size
    before = np.concatenate([[0], size[:-1]]) - run.completions.sum(axis=1) - run.evictions.sum(axis=1)
    admitting = run.admissions.sum(axis=1) > 0
    assert admitting.sum() > 20
    assert np.all(before[admitting] == 0)
    assert size.max() == 12 and np.all(size <= 12)


@pytest.mark.parametrize("engine", ENGINES)
def test_fcfs_cap_with_geometric_decode(engine):
    """The batch-capped queue: no memory limit, geometric decode (each member completes with
    probability q per iteration), batch never above B and full whenever requests wait."""
    B, q = 8, 0.25
    m = ql.ContinuousBatching([T(3, ql.Geometric(q), 1.6)], batch_cap=B, policy="fcfs_cap")
    run = simulate(m, 3000, seed=4, engine=engine)
    size = run.batch_size
    assert np.all(size <= B) and size.max() == B
    waiting = run.queue[:, 0] > 0
    assert waiting.any() and np.all(size[waiting] == B)
    assert run.evictions.sum() == 0
    # Little's law on the batch: each request is a member for exactly its l1 iterations, so
    # mean members = mean over iterations of the decode lengths of the requests completing
    w = 300
    r = run.requests
    done_decode = np.bincount(r.completion[r.completed], weights=r.decode[r.completed], minlength=run.iterations)
    assert 0.0 in ql.batch_means_ci(size[w:] - done_decode[w:])
    done = r.completed & (r.arrival >= w)
    assert np.all(r.decode >= 1) and r.decode.max() > 20  # geometric tail
    assert np.all(r.completion[done] - r.admission[done] == r.decode[done])


def test_finite_pmf_prompts_are_charged_their_own_memory():
    prompts = ql.FinitePMF({0: 0.25, 7: 0.5, 30: 0.25})
    m = ql.ContinuousBatching([T(prompts, 5, 2.0)], kv_capacity=400)
    run = simulate(m, 400, seed=6, engine="fast")
    r = run.requests
    assert set(np.unique(r.prompt)) == {0, 7, 30}
    assert run.evictions.sum() == 0
    # memory after admission = sum over members of prompt + 1 + stage
    for n in range(0, 400, 7):
        inside = (r.admission >= 0) & (r.admission <= n) & ((r.completion > n) | (r.completion < 0))
        assert run.memory[n] == (r.prompt[inside] + 1 + n - r.admission[inside]).sum()


# -- waiting-room cap ---------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_waiting_cap_rejects_arrivals_that_find_it_full(engine):
    cap = 4
    m = ql.ContinuousBatching([T(2, 6, 3.0)], batch_cap=10, policy="fcfs_cap", waiting_cap=cap)
    run = simulate(m, 500, seed=7, engine=engine)
    assert run.rejections.sum() > 100
    assert np.all(run.queue[:, 0] <= cap)  # no evictions without a memory limit
    # before iteration n's arrivals the queue is queue[n-1]; arrivals beyond the room are rejected
    before = np.concatenate([[0], run.queue[:-1, 0]])
    room = np.maximum(cap - before, 0)
    np.testing.assert_array_equal(run.rejections[:, 0], np.maximum(run.arrivals[:, 0] - room, 0))


# -- admit after eviction ------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_admit_after_eviction_option(engine):
    """On [ADLS26]'s worked example the option changes nothing: with l1 = 2 only stage-1
    requests are left after execution and 4 | 140, so an eviction always leaves the memory at
    exactly M. On Example 2 (l0 = 2, l1 = 3, M = 24) from an empty batch it matters: skipping
    admission after an eviction falls into the worst cycle (8,0,0) -> (0,6,0) -> (0,0,4)."""
    worked = ql.ContinuousBatching([T(2, 2)], kv_capacity=140)
    skip = ql.ContinuousBatching([T(2, 2)], kv_capacity=140, admit_after_eviction=False)
    a = simulate(worked, 40, saturated=True, initial_batch=[21, 19], engine=engine)
    b = simulate(skip, 40, saturated=True, initial_batch=[21, 19], engine=engine)
    assert a.evictions.sum() > 0 and a.equals(b)
    a = simulate(ql.ContinuousBatching([T(2, 3)], kv_capacity=24), 30, saturated=True, engine=engine)
    b = simulate(
        ql.ContinuousBatching([T(2, 3)], kv_capacity=24, admit_after_eviction=False), 30, saturated=True, engine=engine
    )
    assert a.batch[2, 0].tolist() == [1, 0, 4]  # evicted 2 and admitted 1 into the memory left
    assert b.batch[:9, 0].tolist() == [[8, 0, 0], [0, 6, 0], [0, 0, 4]] * 3
    evicting = b.evictions[:, 0] > 0
    assert np.all(b.admissions[evicting, 0] == 0) and np.any(a.admissions[a.evictions[:, 0] > 0, 0] > 0)
    assert b.summary(warmup=3)["throughput"] < a.summary(warmup=3)["throughput"]
