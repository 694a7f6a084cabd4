"""ql.stable_range: bisection on the queue's trend against the derived capacity B q, and how sure
the answer is (resolution, undetected_up_to, limit_low, HorizonWarning)."""

import math
import warnings

import numpy as np
import pytest
from scipy.stats import t as student

import queueing_llm as ql
from queueing_llm.stable_range import GROWTH_BATCHES, growth_test, stable_range


def capped(rate):
    return ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(0.25), rate)], batch_cap=8, policy="fcfs_cap")


B, Q = 25, 1 / 3  # greedy Geo/Geo/B, no memory limit: stable iff lambda < B q = 8.33 per iteration


def geo_geo_b(rate):
    return ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(Q), rate)], batch_cap=B, policy="greedy")


def wall_clock(rate, d0=0.02):  # d1 = 0: every iteration lasts d0 s, the limit is B q / d0 per second
    return ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(Q), ql.PoissonProcess(rate))], batch_cap=B,
                                 policy="greedy", iteration_time=ql.LinearIterationTime(d0, 0))


def limit_of(build, rate=1.0):
    """The derived capacity (registry entry ``stability``), per iteration."""
    return float(ql.theorems["stability"].evaluate(build(rate))["capacity"])


def test_the_known_limit_is_b_q():
    assert limit_of(geo_geo_b) == pytest.approx(B * Q, rel=1e-12)  # derived capacity = hand value B q
    assert limit_of(capped) == pytest.approx(2.0, rel=1e-12)


def test_stable_range_brackets_the_derived_capacity():
    capacity = limit_of(capped)  # B q = 2 per iteration
    with pytest.warns(ql.HorizonWarning, match="narrower than the resolution"):  # 4000 iterations: 2.03 passes
        r = stable_range(capped, rates=(1.0, 3.0), replications=4, iterations=4000, tolerance=0.02, seed=3)
    assert r.unit == "requests/iteration" and not r.exhausted
    assert 0.95 * capacity <= r.stable_rate < r.unstable_rate <= 1.1 * capacity
    assert r.relative_width <= 0.02 and r.horizon_limited
    assert r.limit_low <= capacity <= r.unstable_rate
    assert all(t.grows == (t.growth.low > 0) for t in r.tests)
    assert "stable up to" in str(r) and "resolution" in str(r)


def test_short_horizon_warns_and_its_range_covers_the_true_limit():
    """The reviewer's case: 3000 iterations call 8.406 > B q = 8.33 stable; the answer must say so."""
    limit = limit_of(geo_geo_b)
    with pytest.warns(ql.HorizonWarning, match=r"supports a limit in \[") as caught:
        r = stable_range(geo_geo_b, "greedy", rates=(2, 12), iterations=3000, replications=3)
    assert len(caught) == 1
    assert r.stable_rate > limit  # the misclassification the resolution has to own up to
    assert r.unstable_rate - r.stable_rate < r.resolution_rate and r.horizon_limited
    assert r.limit_low <= limit <= r.undetected_up_to  # the supported range covers the true limit
    assert r.limit_low <= limit <= r.unstable_rate
    # slotted: the rate resolution is the drift resolution; the throughput is below the rate it served
    assert r.iteration_length == pytest.approx(1.0) and r.resolution_rate == r.resolution
    assert r.throughput == pytest.approx(limit, rel=0.02)  # saturated at 8.406: it serves ~ B q
    assert r.undetected_up_to == pytest.approx(r.throughput + r.resolution)
    text = str(r)
    assert f"{r.undetected_up_to:.6g}" in text and f"{r.limit_low:.6g}" in text and "HorizonWarning" in text
    s, units = r.summary(), r.summary_units()
    assert s["resolution"] == r.resolution and units["resolution"] == "requests/iteration"
    assert s["horizon_limited"] == 1.0 and set(s) == set(units)


def test_long_horizon_does_not_warn_and_its_bracket_contains_the_limit():
    limit = limit_of(geo_geo_b)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ql.HorizonWarning)
        r = stable_range(geo_geo_b, "greedy", rates=(2, 12), iterations=48_000, replications=4, tolerance=0.02)
    assert not r.horizon_limited and not r.exhausted
    assert r.stable_rate <= limit <= r.unstable_rate
    assert r.limit_low <= limit
    # 8.25 is well inside the stable region (relaxation time ~ sigma^2 / d^2 ~ 2000 << N): its resolution is
    # in the 1/N regime and undetected_up_to is only a lower bound (module docstring, limit (i))
    assert r.undetected_up_to < limit < r.unstable_rate
    short = stable_range(geo_geo_b, "greedy", rates=(2, 12), iterations=3000, replications=3, tolerance=0.2)
    assert r.resolution < short.resolution / 2  # the resolution shrinks with the horizon


def test_resolution_scales_as_the_diffusion_approximation_says():
    """Above the limit the increments are Poisson(lambda) - Binomial(B, q): sigma^2 = lambda + B q (1 - q),
    half-width t sigma sqrt(2 / (R N)) (module docstring): 16 times the horizon, 4 times finer."""
    rate, reps = 9.0, 4
    sigma = math.sqrt(rate + B * Q * (1 - Q))
    half = {}
    for n in (2000, 32_000):
        iv, grows = growth_test(geo_geo_b(rate), reps, n, 0.95, seed=11)
        assert grows
        predicted = student.ppf(0.975, reps * GROWTH_BATCHES - 1) * sigma * math.sqrt(2 / (reps * n))
        assert iv.half_width == pytest.approx(predicted, rel=0.3)
        half[n] = iv.half_width
    ratio = half[2000] / half[32_000]
    assert 16 ** (1 / 3) < ratio < 16 ** (2 / 3)  # N^(-1/2) (ratio 4); not N^(-1) (16) nor N^(-3/2) (64)


def test_wall_clock_resolution_is_converted_with_the_mean_iteration_time():
    d0 = 0.02
    limit = B * Q / d0  # requests/s
    with pytest.warns(ql.HorizonWarning):
        r = stable_range(wall_clock, "greedy", rates=(100, 600), iterations=3000, replications=3)
    assert r.unit == "requests/s" and r.summary_units()["iteration_length"] == "s"
    assert r.iteration_length == pytest.approx(d0, rel=1e-9)
    assert r.resolution_rate == pytest.approx(r.resolution / d0)
    assert r.undetected_up_to == pytest.approx(r.throughput + r.resolution / d0)
    assert r.limit_low <= limit <= r.undetected_up_to and limit <= r.unstable_rate
    assert "requests/s" in str(r)


def test_no_stable_rate_no_resolution():
    low = stable_range(capped, rates=(2.5, 3.0), replications=3, iterations=2000)
    assert math.isnan(low.resolution) and math.isnan(low.undetected_up_to) and not low.horizon_limited
    assert low.stable_test is None and "resolution" not in str(low)
    assert np.isnan(low.summary()["limit_low"])


def test_stable_range_says_when_the_bracket_is_wrong():
    low = stable_range(capped, rates=(2.5, 3.0), replications=3, iterations=2000)
    assert math.isnan(low.stable_rate) and "lowest rate already grows" in low.exhausted
    high = stable_range(capped, rates=(0.5, 1.0), replications=3, iterations=2000)
    assert high.unstable_rate == math.inf and "does not grow" in high.exhausted
    assert high.resolution > 0 and not high.horizon_limited  # measured at the highest rate, no bracket


def test_stable_range_max_steps_and_policy_callable():
    r = stable_range(capped, policy=lambda m: "fcfs_cap", rates=(1.0, 3.0), replications=3, iterations=2000,
                     max_steps=1, tolerance=1e-6)
    assert "max_steps" in r.exhausted and len(r.tests) == 3 and r.policy == "fcfs_cap"


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"rates": (2.0, 1.0)}, "rates high"), ({"replications": 1}, "replications"),
    ({"level": 1.5}, "level"), ({"rates": (1.0,)}, "rates"), ({"iterations": 10}, "iterations"),
])
def test_stable_range_bad_input_names_the_parameter(kwargs, name):
    with pytest.raises(ql.ModelError, match=name):
        stable_range(capped, **kwargs)


def test_a_builder_that_does_not_return_a_model_is_named():
    """``build_model`` returning something else: one ParameterError naming it (was an
    AttributeError from inside the unit lookup)."""
    with pytest.raises(ql.ParameterError, match=r"build_model\(1\.0\) must return a ContinuousBatching"):
        stable_range(lambda rate: 3, "greedy", rates=(1.0, 2.0), replications=2, iterations=1000)
