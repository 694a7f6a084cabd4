"""WAIT and Nested WAIT simulated ([ALSW25]): no eviction below the fluid limit, arrival-rate
throughput, cohort sizes, triggers and stalls, the safety buffer, and checks that can fail."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm.strategies import nested_wait_policies, wait_policies
from queueing_llm.testing import perturb


def one_type():
    return ql.ContinuousBatching([ql.RequestType(2, 3, 1.5)], kv_capacity=50)


def nested_model():
    return ql.ContinuousBatching([ql.RequestType(2, ql.FinitePMF({2: 0.5, 8: 0.5}), 6.0)], kv_capacity=5000)


@pytest.fixture(scope="module")
def wait_run():
    m = one_type()
    return m, ql.simulate(m.with_policy(ql.fluid_wait(m)), 8000, seed=11)


@pytest.fixture(scope="module")
def nested_run():
    m = nested_model()
    return m, ql.simulate(m.with_policy(ql.fluid_nested_wait(m)), 20000, seed=4)


def conserved(run):
    arrived = int(run.arrivals.sum())
    done = int(run.completions.sum())
    present = int(run.queue[-1].sum()) + int(run.batch[-1].sum())
    return arrived == done + present


def test_wait_fluid_thresholds_never_evict_and_hold_cohorts(wait_run):
    m, run = wait_run
    assert run.model.policy == ql.Wait({0: 2}) and run.backend == "python"  # the fast loop, not the kernel
    assert int(run.evictions.sum()) == 0 and conserved(run)
    # the rounded batch memory n * (w_0 + w_1 + w_2) = 2 * 12 is reached and never exceeded
    assert int(run.memory.max()) == 24
    v = ql.verify("wait-thresholds", m, run, quantity="per_stage")
    assert v.holds and v.test == "exact"
    assert ql.verify("wait-thresholds", m, run).holds


def test_wait_checks_detect_wrong_predictions(wait_run):
    m, run = wait_run
    thm = ql.theorems["wait-thresholds"]
    for factor in (0.95, 1.05):
        assert ql.verify(perturb(thm, "rates", factor), m, run).status == "FAILS"
    # integer rounding hides perturbations of the fluid threshold smaller than the distance to
    # the next integer (1.5 -> 2 for any factor in (0.67, 1.33]): 0.6 and 1.4 move the integer
    for factor in (0.6, 1.4):
        assert ql.verify(perturb(thm, "thresholds", factor), m, run, quantity="per_stage").status == "FAILS"


def test_wait_check_does_not_apply_to_greedy_runs():
    m = one_type()
    run = ql.simulate(m, 2000, seed=1)
    v = ql.verify("wait-thresholds", m, run)
    assert v.holds is None and v.status == "does not apply"


def test_strict_all_trigger_with_rounded_thresholds_congests():
    """Rounding both thresholds up to 1 breaks their proportion to the rates (1.0 and 0.5):
    the strict version forms a batch only when both types wait, so type 0 is admitted at
    most at type 1's rate 0.5 < 1.0 and its queue grows; "any" keeps up."""
    m = ql.ContinuousBatching([ql.RequestType(2, 3, 1.0), ql.RequestType(4, 1, 0.5)], kv_capacity=60)
    grows = ql.simulate(m.with_policy(ql.fluid_wait(m, trigger="all")), 4000, seed=2)
    keeps = ql.simulate(m.with_policy(ql.fluid_wait(m, trigger="any")), 4000, seed=2)
    g = ql.stats.rate_ci(np.asarray(grows.in_system, dtype=float), warmup=1000)
    assert g.low > 0.3  # about 1.0 - 0.5 per iteration
    k = ql.stats.rate_ci(np.asarray(keeps.in_system, dtype=float), warmup=1000)
    assert k.low <= 0 <= k.high
    assert conserved(grows) and conserved(keeps)


def test_stall_freezes_the_batch_and_no_stall_runs_it():
    """No request arrives, so a threshold of 3 is never reached: with stall the batch is frozen
    from the first admission step on (iteration 0 is the given state and iteration 1 executes
    it); without, it completes."""
    m = ql.ContinuousBatching([ql.RequestType(2, 3, ql.Bernoulli(0.0))], kv_capacity=100)
    for stall, moves in ((True, False), (False, True)):
        p = ql.Wait({0: 3}, stall=stall)
        run = ql.simulate(m.with_policy(p), 10, seed=0, initial_batch=[1, 1, 0])
        if moves:
            assert int(run.completions.sum()) == 2 and int(run.batch[-1].sum()) == 0
        else:
            assert int(run.completions.sum()) == 0
            assert all(b.tolist() == [[0, 1, 1]] for b in run.batch[1:])


def test_nested_wait_buffer_holds_and_fails_when_halved(nested_run):
    m, run = nested_run
    assert run.model.policy.buffer == (0, 5) and int(run.evictions.sum()) == 0 and conserved(run)
    v = ql.verify("safety-buffer", m, run)
    assert v.holds and v.test == "one-sided bound (upper)"
    # the overflow event is rare (delta = 1e-3): a 5% smaller buffer changes its frequency by
    # less than the interval's width at this size; halving it multiplies it by about 15
    assert ql.verify(perturb(ql.theorems["safety-buffer"], "buffer", 0.5), m, run).status == "FAILS"


def test_saturated_wait_is_refused():
    m = one_type()
    with pytest.raises(ql.PolicyError, match="open system"):
        ql.simulate(m.with_policy(ql.Wait({0: 2})), 10, saturated=True)


def test_wall_clock_wait_completes_at_the_rate_per_second():
    m = ql.ContinuousBatching([ql.RequestType(20, 10, ql.PoissonProcess(40.0))], kv_capacity=4000,
                              iteration_time=ql.LinearIterationTime(0.01, 1e-5))
    run = ql.simulate(m.with_policy(ql.fluid_wait(m)), 20000, seed=5)
    v = ql.verify("wait-thresholds", m, run)
    assert v.holds and v.unit == "requests per second"
    assert ql.verify(perturb(ql.theorems["wait-thresholds"], "rates", 1.05), m, run).status == "FAILS"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=st.integers(0, 20), decode=st.integers(1, 8), rate=st.floats(0.2, 3.0), slack=st.floats(1.0, 3.0),
       trigger=st.sampled_from(["any", "all", "per_type"]), seed=st.integers(0, 2**16))
def test_wait_below_its_fluid_limit_never_evicts(prompt, decode, rate, slack, trigger, seed):
    """For every one-type model whose rounded batch memory n C fits in M, WAIT never evicts
    and every request is accounted for."""
    need = max(1, int(np.ceil(rate - 1e-12))) * decode * (prompt + 1 + (decode - 1) / 2)
    M = int(np.ceil(max(need * slack, prompt + decode + 1)))
    m = ql.ContinuousBatching([ql.RequestType(prompt, decode, rate)], kv_capacity=M)
    run = ql.simulate(m.with_policy(ql.fluid_wait(m, trigger=trigger)), 400, seed=seed)
    assert int(run.evictions.sum()) == 0
    assert conserved(run)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=nested_wait_policies(max_boundary=6), seed=st.integers(0, 2**16))
def test_every_nested_wait_policy_conserves_requests(policy, seed):
    law = ql.FinitePMF({1: 0.3, 3: 0.3, 6: 0.4})
    m = ql.ContinuousBatching([ql.RequestType(2, law, 1.5)], kv_capacity=200, policy=policy)
    run = ql.simulate(m, 300, seed=seed)
    assert conserved(run)
    assert int(run.memory.max()) <= 200 or int(run.evictions.sum()) > 0


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=wait_policies(types=2, max_threshold=4), seed=st.integers(0, 2**16))
def test_every_wait_policy_conserves_requests(policy, seed):
    m = ql.ContinuousBatching([ql.RequestType(2, 3, 1.0), ql.RequestType(1, 2, 0.7)], kv_capacity=40, policy=policy)
    run = ql.simulate(m, 300, seed=seed)
    assert conserved(run)
