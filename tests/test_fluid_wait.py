"""WAIT and Nested WAIT theory ([ALSW25]): thresholds, segments, safety buffer, policy values."""

import math

import numpy as np
import pytest
import sympy as sp
from scipy.stats import binom

import queueing_llm as ql
from queueing_llm.policies import NestedWait, Wait, policy_from
from queueing_llm.scheduling import fluid_nested_wait, fluid_wait
from queueing_llm.theory import fluid_wait as fw


def example3_two_types():
    return ql.ContinuousBatching(
        [ql.RequestType(100, 100, ql.PoissonProcess(30)), ql.RequestType(200, 400, ql.PoissonProcess(5))],
        kv_capacity=100_000, iteration_time=ql.LinearIterationTime(0.015, 3e-7))


def test_example3_two_types_pinned():
    """REFERENCES section 2, Example 3 (prefill-stage convention): n* = (0.722, 0.120), M* = 30,250."""
    res = ql.theorems["wait-thresholds"].evaluate(example3_two_types(), prefill_stage=True)
    assert [round(float(n), 3) for n in res["thresholds"]] == [0.722, 0.120]
    assert float(res["delta_star"]) == pytest.approx(0.02408, abs=1e-5)
    assert float(res["batch_memory"]) == pytest.approx(30250, abs=1)
    assert res["feasible"] is True


def test_example3_nested_segments_pinned():
    """Segment 1 = stages 0..99 (Lambda_1 = 35/s), segment 2 = 100..399 (Lambda_2 = 5/s): n = 0.843, 0.120."""
    seg = fw.segments(example3_two_types(), prefill_stage=True)
    assert seg.boundaries == (100, 400) and seg.rates == (35, 5)
    assert [round(float(n), 3) for n in seg.thresholds] == [0.843, 0.120]
    assert seg.survival[1] == sp.Rational(1, 7)


def test_one_type_example_and_infeasible_example2():
    """REFERENCES section 2: one type (100, 200, 50/s): n* = 1.889, M* = 75,945; Example 2 at M = 50 infeasible."""
    one = ql.ContinuousBatching([ql.RequestType(100, 200, ql.PoissonProcess(50))], kv_capacity=100_000,
                                iteration_time=ql.LinearIterationTime(0.015, 3e-7))
    res = fw.wait_thresholds(one, prefill_stage=True)
    assert float(res.thresholds[0]) == pytest.approx(1.889, abs=1e-3)
    assert float(res.batch_memory) == pytest.approx(75945, abs=1)
    ex2 = ql.ContinuousBatching([ql.RequestType(2, 3, ql.PoissonProcess(2)),
                                 ql.RequestType(4, 1, ql.PoissonProcess(1))],
                                kv_capacity=50, iteration_time=ql.LinearIterationTime(1, 0.01))
    res2 = fw.wait_thresholds(ex2, prefill_stage=True)
    assert [round(float(n), 4) for n in res2.thresholds] == [3.1746, 1.5873]
    assert res2.feasible is False
    assert fw.wait_thresholds(ex2.__class__(ex2.types, kv_capacity=100, iteration_time=ex2.iteration_time),
                              prefill_stage=True).feasible is True


def test_slotted_thresholds_are_the_rates_and_memory_little():
    m = ql.ContinuousBatching([ql.RequestType(2, 3, 1.5), ql.RequestType(5, 2, 0.5)], kv_capacity=100)
    res = fw.wait_thresholds(m)
    assert res.thresholds == (sp.Rational(3, 2), sp.Rational(1, 2)) and res.delta_star == 1
    # independent: lambda_k * sum_j (l0 + 1 + j)
    assert res.batch_memory == sp.Rational(3, 2) * (3 + 4 + 5) + sp.Rational(1, 2) * (6 + 7)
    assert res.per_stage == ((sp.Rational(3, 2),) * 3, (sp.Rational(1, 2),) * 2)


def test_per_stage_occupancy_of_a_random_decode_law():
    law = ql.FinitePMF({1: sp.Rational(1, 2), 3: sp.Rational(1, 2)})
    m = ql.ContinuousBatching([ql.RequestType(2, law, 2)], kv_capacity=100)
    res = fw.wait_thresholds(m)
    assert res.per_stage == ((2, 1, 1),)
    assert res.batch_memory == 2 * 3 + 1 * 4 + 1 * 5


def test_rho_at_least_one_has_no_equilibrium():
    m = ql.ContinuousBatching([ql.RequestType(2, 3, ql.PoissonProcess(50))], kv_capacity=10**6,
                              iteration_time=ql.LinearIterationTime(1, 0.01))
    res = fw.wait_thresholds(m)
    assert res.delta_star == sp.oo and res.feasible is False and "rho" in res.reason
    with pytest.raises(ql.ParameterError, match="no WAIT equilibrium"):
        fluid_wait(m)


@pytest.mark.parametrize(("rounding", "expected"), [("ceil", 2), ("floor", 1), ("nearest", 2)])
def test_fluid_wait_rounding(rounding, expected):
    m = ql.ContinuousBatching([ql.RequestType(2, 3, 1.5)], kv_capacity=50)
    assert fluid_wait(m, rounding=rounding).thresholds == {0: expected}


def test_fluid_wait_total_limit_rule():
    """n_j = max(1, floor(N lambda_j / sum_i lambda_i (o_i + 1))) and budgets N lambda_j (o_j + 1) / sum."""
    m = ql.ContinuousBatching([ql.RequestType(2, 3, 2.0), ql.RequestType(4, 1, 1.0)], kv_capacity=500)
    w = fluid_wait(m, total_limit=40)
    total = 2.0 * 4 + 1.0 * 2
    assert w.thresholds == {0: math.floor(40 * 2 / total), 1: math.floor(40 * 1 / total)}
    assert w.budgets == {0: math.floor(40 * 8 / total), 1: math.floor(40 * 2 / total)}


def test_fluid_nested_wait_example3():
    p = fluid_nested_wait(example3_two_types())
    assert p.boundaries == (100, 400) and p.thresholds == (1, 1)
    # a cohort of 1 can never overflow a queue served 1 per iteration: no buffer needed
    assert p.buffer == (0, 0)


def test_safety_buffer_root_against_binomial_sum():
    """theta solves E[exp(theta (Y - n))] = 1, computed independently from the binomial pmf."""
    buf = fw.safety_buffer([6, 3], [1, 0.3], [0, 50], [10, 30], 1e-3)
    theta = buf.theta[0]
    y = np.arange(7)
    assert float(np.sum(binom.pmf(y, 6, 0.3) * np.exp(theta * (y - 3)))) == pytest.approx(1.0, abs=1e-10)
    assert buf.buffer[0] == pytest.approx(math.log(1 / 1e-3) / theta)
    assert buf.overflow_bound == pytest.approx(1e-3)
    assert buf.reserved_memory == pytest.approx((buf.buffer[0] + 3 - 1) * 50)  # b + n - 1 left waiting


def test_safety_buffer_bounds_a_simulated_boundary_queue():
    """Independent check: a Lindley recursion W <- max(0, W + Y - n) with Y ~ Bin(m, q) exceeds the
    buffer b = ln(1/delta)/theta with probability at most delta (exact binomial upper bound)."""
    m, q, n, delta = 6, 0.3, 3, 0.01
    buf = fw.safety_buffer([m, n], [1, q], [0, 1], [1, 2], delta)
    b = buf.buffer[0]
    rng = np.random.default_rng(7)
    steps = 200_000
    ys = rng.binomial(m, q, size=steps)
    w, over = 0, 0
    for y in ys:
        w = max(0, w + int(y) - n)
        over += w > b
    from queueing_llm.stats import binomial_ci

    iv = binomial_ci(int(over), steps, 0.999)
    assert iv.low <= delta  # the bound is not contradicted
    assert over / steps < delta


def test_safety_buffer_no_negative_drift():
    buf = fw.safety_buffer([4, 1], [1, 0.5], [0, 1], [1, 2], 1e-3)
    assert buf.theta == (0.0,) and math.isinf(buf.buffer[0])
    none = fw.safety_buffer([2, 2], [1, 0.5], [0, 1], [1, 2], 1e-3)
    assert math.isinf(none.theta[0]) and none.buffer == (0.0,)


def test_policy_values_validate_and_bare_names_refused():
    with pytest.raises(ql.PolicyError, match="fluid_wait"):
        policy_from("wait")
    with pytest.raises(ql.PolicyError, match="fluid_nested_wait"):
        policy_from("nested_wait")
    with pytest.raises(ql.PolicyError, match="thresholds"):
        Wait(thresholds={})
    with pytest.raises(ql.PolicyError, match=r"Wait thresholds\[0\]"):
        Wait(thresholds={0: 0})
    with pytest.raises(ql.PolicyError, match="trigger"):
        Wait(thresholds={0: 1}, trigger="some")
    with pytest.raises(ql.PolicyError, match="strictly increasing"):
        NestedWait(boundaries=[5, 5], thresholds=[1, 1])
    with pytest.raises(ql.PolicyError, match="2 entries"):
        NestedWait(boundaries=[5, 9], thresholds=[1])
    p = NestedWait(boundaries=[3, 9], thresholds=[2, 1])
    assert p.budgets == (6, 6) and p.buffer == (0, 0) and p.segments == ((0, 3), (3, 9))
    assert hash(Wait({0: 2})) == hash(Wait({0: 2})) and Wait({0: 2}) == Wait({0: 2})


def test_statements_and_latex():
    m = example3_two_types()
    for name in ("wait-thresholds", "safety-buffer", "wait-throughput"):
        assert ql.theorems[name].latex(m)
    tp = ql.theorems["wait-throughput"].evaluate(m)
    assert tp["fluid_throughput"] == 35 and tp["gap"] == 0


def _binomial_theta(m, q, n):
    """Independent root of sum_y P(Y = y) exp(theta (y - n)) = 1, Y ~ Bin(m, q), by bisection."""
    ys = np.arange(m + 1)
    pmf = binom.pmf(ys, m, q)

    def f(t):
        return float(np.sum(pmf * np.exp(t * (ys - n)))) - 1.0

    lo, hi = 1e-9, 1.0
    while f(hi) <= 0:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return (lo + hi) / 2


def test_segment_threshold_avoids_a_near_zero_drift_when_memory_is_short():
    """A boundary fed by cohorts of 4 with survival 0.4625 (inflow 1.85): n = 2 leaves a drift of
    -0.15 and a buffer of about 25 requests; with 1,000 tokens per boundary to spare the rule
    takes n = 3 (buffer about 5), with unlimited memory it keeps the smallest, n = 2."""
    from queueing_llm.catalogue.fluid import integer_segment_thresholds

    seg = fw.Segments(boundaries=(10, 20), rates=(1.0, 0.4625), survival=(1, 0.4625), thresholds=(3.2, 1.48),
                      entry_memory=(sp.nan, 100))
    b2 = math.log(1 / 1e-3) / _binomial_theta(4, 0.4625, 2)
    b3 = math.log(1 / 1e-3) / _binomial_theta(4, 0.4625, 3)
    assert b2 > 20 and b3 < 6 and (b2 + 1) * 100 > 1000 >= (b3 + 2) * 100
    assert integer_segment_thresholds(seg)[0] == (4, 2)
    assert integer_segment_thresholds(seg, memory_budget=1000.0)[0] == (4, 3)
    assert integer_segment_thresholds(seg, memory_budget=1000.0)[1] == (40, 30)
