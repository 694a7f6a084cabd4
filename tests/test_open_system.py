"""The open system under memory constraints (the model chapter, A.7, registry name ``open-system``).

Greedy admission is stable only below the worst-cycle throughput M/(l1 (l0 + l1)), not below
x*; rate limiting is stable up to x*; FCFS reservation locks into cohorts with the
worst-cycle throughput. Symbolic pins, hand algebra, the REFERENCES example (M = 2000,
l0 = 10, l1 = 40: worst cycle 1, x* = 100/61) at rates 0.9, 1.2 and 1.8 with fixed seeds,
checks that must fail, and a property test over random (l0, l1, M).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm.theory import dynamics as dyn

T = ql.theorems["open-system"]
KEYS = {"stability_threshold", "integer_threshold", "stable", "integer_stable", "x_star", "worst_cycle", "policy",
        "overflow_time"}
R = sp.Rational
l0, l1, M, lam, x = sp.symbols("l0 l1 M lambda x", positive=True)
THETA, STABLE = sp.Symbol("theta"), sp.Symbol("stable")
POLICIES = {"greedy": "greedy", "rate_limited": ql.rate_limited(), "reserve": "reserve"}


def model(rate, policy="greedy", prompt=10, decode=40, capacity=2000, **kw):
    return ql.ContinuousBatching(types=[ql.RequestType(prompt=prompt, decode=decode, arrivals=rate)],
                                 kv_capacity=capacity, policy=policy, **kw)


def run(m, iterations=20000, seed=1):
    return ql.simulate(dyn.resolve_policy(m), iterations, seed=seed, engine="fast")


# -- registry, statements, algebra -----------------------------------------------------------
def test_registered_with_exact_keys():
    assert T.name == "open-system" and T.source.startswith("[ADLS26]") and "A.7" in T.source
    for policy in POLICIES.values():
        assert set(T.evaluate(model(1.2, policy))) == KEYS
    assert "open-system" in ql.theorems and callable(dyn.stability_threshold)


def statement(theta):
    cond = sp.StrictLessThan(lam, THETA, evaluate=False)
    return sp.And(sp.Eq(THETA, theta, evaluate=False), sp.Equivalent(STABLE, cond, evaluate=False), evaluate=False)


def test_symbolic_statement_pins():
    worst = M / (l1 * (l0 + l1))
    xs = 2 * M / (l1 * (2 * l0 + l1 + 1))
    assert T.statement(model(lam, "greedy", l0, l1, M)) == statement(worst)
    assert T.statement(model(lam, "reserve", l0, l1, M)) == statement(worst)
    assert T.statement(model(lam, ql.rate_limited(), l0, l1, M)) == statement(xs)
    assert T.statement(model(lam, ql.rate_limited(x), l0, l1, M)) == statement(x)
    assert T.latex(model(lam, "greedy", l0, l1, M)) == (
        r"\theta = \frac{M}{l_{1} \left(l_{0} + l_{1}\right)},\quad "
        r"\mathrm{stable} \iff \lambda < \theta"
    )
    ev = T.evaluate(model(lam, "greedy", l0, l1, M))
    assert ev == {"stability_threshold": worst, "stable": sp.StrictLessThan(lam, worst), "x_star": xs,
                  "worst_cycle": worst, "policy": "greedy", "integer_threshold": sp.nan, "integer_stable": sp.nan,
                  "overflow_time": sp.nan}


def test_hand_algebra():
    """Independent hand formulas: the thresholds, the band greedy loses, the drifts, the cohort."""
    g = dyn.open_system(model(lam, "greedy", l0, l1, M))
    worst = M / (l1 * (l0 + l1))
    xs = M / (l1 * l0 + l1 * (l1 + 1) / 2)  # M / C, C = sum_{j<l1} (l0 + 1 + j)
    assert sp.simplify(g.threshold - worst) == 0 and sp.simplify(g.x_star - xs) == 0
    assert sp.simplify(g.x_star - g.threshold - M * (l1 - 1) / (l1 * (l0 + l1) * (2 * l0 + l1 + 1))) == 0
    assert sp.simplify(g.drift[1] - (lam - worst)) == 0 and sp.simplify(g.drift[0] - (lam - xs)) == 0
    coh = dyn.reserve_cohort_cycle(model(lam, "reserve", l0, l1, M))
    assert coh.sizes == {sp.Symbol("c"): M / (l0 + l1)} and coh.period == l1
    assert sp.simplify(coh.throughput - worst) == 0
    assert sp.simplify(dyn.stability_threshold(model(lam, "reserve", l0, l1, M)) - worst) == 0
    rl = dyn.open_system(model(lam, ql.rate_limited(x), l0, l1, M))
    assert rl.threshold == x and rl.congested == (x, x) and rl.drift == (lam - x, lam - x)
    assert dyn.open_arrival_rate(model(lam, "greedy", l0, l1, M)) == lam
    assert dyn.open_arrival_rate(model(ql.Bernoulli(R(1, 3)), "greedy", 2, 3, 24)) == R(1, 3)


def test_reference_numbers():
    """The references chapter, section 1: M = 2000, l0 = 10, l1 = 40: worst cycle 1.00, x* = 1.64."""
    g = T.evaluate(model(R(6, 5)))
    assert g == {"stability_threshold": 1, "stable": False, "x_star": R(100, 61), "worst_cycle": 1, "policy": "greedy",
                 "integer_threshold": 1, "integer_stable": False, "overflow_time": pytest.approx(424.13, abs=0.01)}
    # the integer token bucket at x* congests at 63/40 (integer-rate-limit), below x*: rate 1.62 congests
    rl = T.evaluate(model(R(162, 100), ql.rate_limited()))
    assert rl["stable"] is True and rl["integer_stable"] is False and rl["integer_threshold"] == R(63, 40)
    assert T.evaluate(model(R(162, 100), ql.rate_limited(R(13, 8))))["integer_threshold"] == R(13, 8)
    assert T.evaluate(model(1.2, "reserve"))["integer_threshold"] == 1  # cohorts of floor(2000/50) = 40
    assert float(g["x_star"]) == pytest.approx(1.64, abs=0.005)
    stable = {
        (0.9, "greedy"): True, (0.9, "rate_limited"): True, (0.9, "reserve"): True,
        (1.2, "greedy"): False, (1.2, "rate_limited"): True, (1.2, "reserve"): False,
        (1.8, "greedy"): False, (1.8, "rate_limited"): False, (1.8, "reserve"): False,
    }
    for (rate, name), expected in stable.items():
        ev = T.evaluate(model(rate, POLICIES[name]))
        assert ev["stable"] is expected
        assert ev["stability_threshold"] == (R(100, 61) if name == "rate_limited" else 1)
    assert T.evaluate(model(1.2), policy="rate_limited")["policy"] == "rate_limited(x*)"
    assert T.evaluate(model(1.2), policy="rate_limited")["stable"] is True
    assert T.evaluate(model(1.2), rate=R(99, 100))["stable"] is True
    assert T.evaluate(model(1.2, ql.rate_limited(1.5)))["stability_threshold"] == R(3, 2)
    assert T.evaluate(model(1.2), rate=lam)["stable"] == sp.StrictLessThan(lam, 1)
    assert ql.default_model() == model(1.2)  # the default model is this example, in greedy's congested band


def test_applicability_reasons():
    assert "infinite" in T.applies(model(1.2, capacity=math.inf))
    assert "saturated-only" in T.applies(model(None))
    wall = model(ql.PoissonProcess(2.0), iteration_time=ql.LinearIterationTime(0.01))
    assert "wall-clock" in T.applies(wall)
    assert "batch cap" in T.applies(model(1.2, batch_cap=64))
    assert "waiting-room cap" in T.applies(model(1.2, waiting_cap=100))
    assert "not covered" in T.applies(model(1.2, "static"))
    assert "exceeds x*" in T.applies(model(1.2, ql.rate_limited(2)))
    two = ql.ContinuousBatching(types=[ql.RequestType(10, 40, 0.5), ql.RequestType(10, 20, 0.5)], kv_capacity=2000)
    assert "one request type" in T.applies(two)
    same = ql.ContinuousBatching(types=[ql.RequestType(10, 40, 0.5), ql.RequestType(10, 40, 0.5)], kv_capacity=2000)
    assert "one request type" in T.applies(same)
    assert "deterministic decode" in T.applies(model(1.2, decode=ql.FinitePMF({30: R(1, 2), 50: R(1, 2)})))
    assert T.applies(model(1.2, ql.rate_limited(1.6))) is None
    with pytest.raises(ql.ModelError, match="does not apply"):
        T.evaluate(model(1.2, capacity=math.inf))
    with pytest.raises(ql.PolicyError, match="not covered"):
        dyn.open_system(model(1.2), policy="fcfs_cap")
    with pytest.raises(ql.ParameterError, match="saturated-only"):
        dyn.open_arrival_rate(model(None))


# -- the collapse: Gaussian first overflow, cascades, collapse time ---------------------------
def test_gaussian_overflow_time_hand_values():
    """Mean, variance and lag covariance of sum_j w_j A_{n-j}, w_j = 11..50, Poisson arrivals."""
    m = model(R(11, 10))
    mom = dyn.memory_moments(m)
    w = list(range(11, 51))
    assert mom == {"mean": R(11, 10) * sum(w), "variance": R(11, 10) * sum(v * v for v in w),
                   "lag_covariance": R(11, 10) * sum(a * b for a, b in zip(w, w[1:], strict=False))}
    approx = dyn.gaussian_overflow_time(m)
    assert approx.z == pytest.approx((2000 - 1342) / math.sqrt(46794))
    # the upcrossing rate lies between the tail probability times (1 - r) and the tail probability
    tail = 0.5 * math.erfc(approx.z / math.sqrt(2))
    assert tail * (1 - approx.lag_covariance / approx.variance) < approx.rate < tail
    assert approx.time == pytest.approx(2622.1, abs=0.1)
    assert dyn.gaussian_overflow_time(m, rate=1.2).time == pytest.approx(424.13, abs=0.01)
    assert dyn.gaussian_overflow_time(model(ql.Deterministic(1))).time == math.inf  # no fluctuation


def test_collapse_iteration_and_time_estimate():
    ev = np.zeros((300, 1), dtype=int)
    ev[[10, 50, 90]] = 5  # sporadic evictions: no cascade
    assert dyn.collapse_iteration(ev, 40) is None
    ev[200:240] = 2  # 80 evictions in 40 iterations
    assert dyn.collapse_iteration(ev, 40) == 220
    est = dyn.collapse_time_estimate([100, None, 300], [1000, 1000, 1000])
    assert est.estimate == 700 and est.collapses == 2 and est.exposure == 1400
    # exact chi-square limits, hand values from the chi-square quantiles
    assert est.low == pytest.approx(2800 / 14.4494, rel=1e-4) and est.high == pytest.approx(2800 / 0.484419, rel=1e-4)
    none = dyn.collapse_time_estimate([None, None], [500, 500])
    assert none.estimate == math.inf and none.high == math.inf and none.low == pytest.approx(2000 / 7.37776, rel=1e-4)


# -- checks on simulated runs of the REFERENCES example ---------------------------------------
def runs(m, iterations=6000, seeds=(1, 2)):
    return [run(m, iterations, seed=s) for s in seeds]


@pytest.mark.parametrize("rate,name,branch,test", [
    (0.9, "greedy", "stable", "two-sided CI"),
    (1.2, "rate_limited", "stable", "two-sided CI"),
    (1.3, "greedy", "congested", "bounds (lower and upper)"),
    (1.8, "rate_limited", "congested", "two-sided CI"),
    (1.8, "reserve", "congested", "bounds (lower and upper)"),
])
def test_reference_example_runs(rate, name, branch, test):
    m = model(rate, POLICIES[name])
    v = ql.verify("open-system", m, runs(m))
    assert v.holds is True, str(v)
    assert v.details["branch"] == branch and v.test == test
    growth = v.details["growth"]
    if branch == "stable":
        assert growth.low <= 0 <= growth.high
    else:
        assert growth.low > 0


def test_measured_congested_regimes():
    """Measured after the collapse: reserve locks into cohorts of 40 every 40 iterations
    (throughput exactly the worst cycle 1); greedy settles between the worst cycle and the
    contiguous-block cycle c_36 = 1000/943 with about 4 evictions per iteration; the integer
    token bucket at x* completes exactly 63/40 (integer-rate-limit), below x*."""
    v = ql.verify("open-system", model(1.8, "reserve"), runs(model(1.8, "reserve")))
    assert v.interval.low <= 1 <= v.interval.high and v.estimate == pytest.approx(1, abs=0.01)
    assert v.details["evictions"].estimate == 0
    m = model(1.8)
    v = ql.verify("open-system", m, runs(m))
    assert dyn.contiguous_cycle(m, 36).throughput == R(1000, 943)
    assert 1 <= v.interval.low and v.interval.high <= 1000 / 943 and v.details["evictions"].low > 3.5
    m = model(1.8, ql.rate_limited())
    v = ql.verify("open-system", m, runs(m))
    assert v.estimate == pytest.approx(63 / 40, abs=0.005) and v.theory == pytest.approx(63 / 40)


def test_rate_limiting_below_x_star_congests_in_the_integer_system():
    """At 1.62 < x* = 100/61 the relaxed statement says stable, the integer one (63/40) congests:
    the check uses the integer threshold and holds; up to max_rate = 13/8 nothing is lost."""
    m = model(1.62, ql.rate_limited())
    v = ql.verify("open-system", m, run(m, 8000))  # one run: batch means (two replications are too few here)
    assert v.holds is True and v.details["branch"] == "congested" and v.details["growth"].low > 0
    assert v.details["relaxed_threshold"] == pytest.approx(100 / 61)


def test_metastable_greedy_runs_say_so():
    """Greedy at 1.05 > theta = 1: the first overflow comes after about 8,400 iterations and
    the collapse much later; 3000-iteration runs stay eviction-free: does not apply, with
    the regime in the reason."""
    m = model(1.05)
    v = ql.verify("open-system", m, runs(m, 3000))
    assert v.holds is None and "metastable" in v.reason
    assert v.details["collapse_time"].collapses == 0 and v.details["collapse_time"].low > 1000
    # at 1.2, the declared 4 independent replications of 20000 iterations, seed 11: 3 of 4
    # collapse; only their congested parts are judged (Student interval over the 3 segments)
    m = model(1.2)
    v = ql.verify("open-system", m, seed=11)
    assert v.holds is True and v.details["collapse_iterations"].count(None) == 1
    assert "3 of 4 runs collapsed" in v.reason
    assert v.interval.method == "replications" and v.interval.n == 3


# -- checks that must fail or do not apply ---------------------------------------------------------
def fake(base, **arrays):
    fields = {"in_system": base.in_system, "completions": base.completions, "evictions": base.evictions}
    fields.update(arrays)
    return SimpleNamespace(kind="open", model=base.model, seed=base.seed, saturated=False, batch=base.batch,
                           iterations=base.iterations, **fields)


def test_check_fails_when_the_run_contradicts_the_threshold():
    stable_run = run(model(0.9, "reserve"), 6000)
    v = T.check_with(model(0.9, "reserve"), stable_run,
                     {**T.evaluate(model(0.9, "reserve")), "integer_threshold": R(8, 10)})
    assert v.holds is False and "does not grow" in v.reason
    # greedy below a (wrong) threshold: no collapse, so the congested claim cannot be tested
    v = T.check_with(model(0.9), run(model(0.9), 6000), {**T.evaluate(model(0.9)), "integer_threshold": R(8, 10)})
    assert v.holds is None and "metastable" in v.reason
    pred = T.evaluate(model(1.3))
    congested_run = run(model(1.3), 6000)
    v = T.check_with(model(1.3), congested_run, {**pred, "integer_threshold": R(14, 10)})
    assert v.holds is False and "the queue grows" in v.reason
    quiet = fake(congested_run, evictions=np.zeros_like(congested_run.evictions))
    assert T.check_with(model(1.3), quiet, pred).holds is None  # no cascade: metastable, does not apply
    res = run(model(0.9, "reserve"), 4000)
    assert T.check_with(model(0.9, "reserve"), fake(res, evictions=np.ones_like(res.evictions)),
                        T.evaluate(model(0.9, "reserve"))).holds is False  # reserve never evicts
    fast = fake(congested_run, completions=np.full_like(congested_run.completions, 2))
    v = T.check_with(model(1.3), fast, pred)
    assert v.holds is False and "outside the congested range" in v.reason


def test_critical_rate():
    m = model(1)  # exactly at the greedy threshold
    v = ql.verify("open-system", m, run(m, 4000))
    assert v.holds is True and v.details["branch"] == "critical" and v.test == "one-sided bound (upper)"
    base = run(m, 4000)
    assert T.check_with(m, fake(base, completions=np.full((4000, 1), 2)), T.evaluate(m)).holds is False


def test_other_runs_do_not_apply():
    m = model(1.2)
    assert ql.verify("open-system", m, ql.simulate(m, 200, saturated=True, engine="fast")).holds is None
    assert T.check_with(m, run(model(1.2, "reserve"), 500), T.evaluate(m)).holds is None
    assert ql.verify("open-system", m, run(m, 500), warmup=490).holds is None
    with pytest.raises(ql.ModelError, match="does not apply"):
        T.evaluate(model(1.2, "static"))


# -- property: random (l0, l1, M) ----------------------------------------------------------------
@st.composite
def memory_models(draw):
    """One type with l1 in [8, 48] and l0 <= l1 (greedy loses at least 22 % of x*, far from
    the integer band), M giving 15-60 requests in flight at x*."""
    decode = draw(st.integers(8, 48))
    prompt = draw(st.integers(1, min(30, decode)))
    in_flight = draw(st.integers(15, 60))
    return prompt, decode, in_flight * (2 * prompt + decode + 1) // 2


@pytest.mark.slow
@settings(max_examples=4, deadline=None, derandomize=True)
@given(memory_models())
def test_property_thresholds_against_simulation(params):
    """Below 0.8 x the worst cycle every policy is stable; at worst + 0.6 (x* - worst) reserve
    congests, rate limiting at max_rate stays stable, greedy congests or is metastable."""
    prompt, decode, capacity = params
    base = model(1, "greedy", prompt, decode, capacity)
    ev = T.evaluate(base)
    worst, xs = float(ev["worst_cycle"]), float(ev["x_star"])
    low, mid = round(0.8 * worst, 4), round(worst + 0.6 * (xs - worst), 4)
    policies = {**POLICIES, "rate_limited": ql.rate_limited("integer")}
    for rate in (low, mid):
        for name, policy in policies.items():
            m = model(rate, policy, prompt, decode, capacity)
            expected = rate == low or name == "rate_limited"
            if name == "rate_limited" and rate == mid:
                continue  # open-system integer rate limiting below max_rate can collapse: see the test below
            assert T.evaluate(m)["integer_stable"] is expected
            v = ql.verify("open-system", m, runs(m, 8000, seeds=(7, 8)))
            assert v.holds is not False, f"{params} {name} at {rate}: {v}"
            if v.holds:
                assert v.details["branch"] == ("stable" if expected else "congested")


def test_open_rate_limiting_can_collapse_below_max_rate():
    """A known gap of the integer statement (found by the property test above): with few
    requests in flight the token bucket's depth x + 1 lets a burst in after the queue
    empties, and the open integer system falls into another cycle of the integer map.
    (l0, l1, M) = (1, 8, 88): x* = max_rate = 2 and the saturated system from empty is
    eviction-free at 2, but the open system at lambda = 1.69 < 2 settles on 13/8 with 0.25
    evictions per iteration and a growing queue. The check reports FAILS, as it must: the
    integer threshold (congested throughput from an empty batch) is false here, and so is
    the relaxed statement "rate limiting at x* is stable up to x*" for the integer system."""
    m = model(1.6889, ql.rate_limited("integer"), 1, 8, 88)
    assert T.evaluate(m)["integer_threshold"] == 2 == dyn.max_eviction_free_rate(m)
    v = ql.verify("open-system", m, run(m, 8000, seed=7))
    assert v.holds is False and "the queue grows" in v.reason
    assert v.estimate == pytest.approx(13 / 8, abs=0.002) and v.details["evictions"].estimate > 0.2
