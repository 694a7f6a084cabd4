"""Power of the checks of families B and C (the model chapter, section 5): a wrong prediction is caught.

For every theorem and every quantity its check compares, the value ``evaluate`` returns is
scaled by 0.95 and 1.05 (:func:`queueing_llm.testing.perturb`) and ``verify`` must report
FAILS on the same runs, while the unperturbed theorem holds on them
(:func:`queueing_llm.testing.assert_detects` checks both). Bounds are made false by 5 %
(a lower bound moved 5 % above the true mean, an upper bound 5 % below it). Where a
rare event makes 5 % undetectable at CI sizes the factors are 0.8 and 1.2 and the reason
is written beside them. The runs are small (a second or two each) and seeded.
"""

from __future__ import annotations

import pytest
import sympy as sp

import queueing_llm as ql
from queueing_llm.testing import assert_detects

FIVE = (0.95, 1.05)


def cb(decode, arrivals=None, batch_cap=4, prompt=3, **kw):
    return ql.ContinuousBatching([ql.RequestType(prompt=prompt, decode=decode, arrivals=arrivals)],
                                 batch_cap=batch_cap, policy="fcfs_cap", **kw)


def sim(model, n, seed, **kw):
    return ql.simulate(model, n, seed=seed, engine="fast", **kw)


STABLE = cb(ql.Geometric(0.3), ql.Poisson(0.9))  # load 0.75
LIGHT = cb(ql.Geometric(0.5), ql.Poisson(0.6))  # load 0.3: an empty system is frequent (P = 0.30)
OVER = cb(ql.Geometric(0.3), ql.Poisson(1.5))  # drift 0.3 per iteration
CAPPED = cb(ql.Geometric(0.3), ql.Poisson(1.1), waiting_cap=5)
SATURATED = cb(ql.FinitePMF({2: 0.5, 4: 0.5}), batch_cap=8)
LITTLE = ql.ContinuousBatching(types=[ql.RequestType(ql.FinitePMF({2: 0.5, 6: 0.5}), ql.Geometric(0.25), 1.5)])
WALL = ql.ContinuousBatching(
    types=[ql.RequestType(prompt=2, decode=3, arrivals=ql.PoissonProcess(2))],
    iteration_time=ql.LinearIterationTime(1, 0.01),
)


@pytest.fixture(scope="module")
def stable_run():
    # 2 x 10^5 iterations (about a second): the mean number in system has a 2.1 % half-width
    return sim(STABLE, 200_000, 7)


@pytest.fixture(scope="module")
def saturated_run():
    return sim(SATURATED, 20_000, 3, saturated=True)


# -- family B -----------------------------------------------------------------------------------
def test_stability_throughput(stable_run):
    assert_detects("stability", STABLE, stable_run, "throughput", FIVE)


def test_stability_capacity_on_saturated_runs(saturated_run):
    v = ql.verify("stability", SATURATED, saturated_run)  # saturated-only model: B/E[l1] = 8/3
    assert v.holds and v.quantity == "capacity" and v.theory == pytest.approx(8 / 3)
    assert_detects("stability", SATURATED, saturated_run, "capacity", FIVE)


def test_overload_drift():
    # the drift is 0.3 requests per iteration: 5 % of it is 0.015 per iteration
    assert_detects("overload-drift", OVER, sim(OVER, 200_000, 11), "drift", FIVE)  # half-width 2.2 %


def test_renewal_transient_limit(saturated_run):
    assert_detects("renewal-transient", SATURATED, saturated_run, "limit", FIVE)


def test_renewal_transient_u_n():
    runs = [sim(SATURATED, 12, 1000 + s, saturated=True) for s in range(400)]
    # 400 runs x 8 slots = 3200 Bernoulli trials of u_6 = 0.625: the Clopper-Pearson half-width is
    # 0.017 = 2.7 % of u_6, so 5 % errors are caught
    assert_detects("renewal-transient", SATURATED, runs, "sequence", FIVE, iteration=6)


@pytest.mark.parametrize("quantity", ["mean_kv", "mean_stage"])
def test_equilibrium_stage(saturated_run, quantity):
    assert_detects("equilibrium-stage", SATURATED, saturated_run, quantity, FIVE, quantity=quantity)


@pytest.mark.parametrize("quantity", ["mean_in_system", "mean_batch", "mean_sojourn"])
def test_stationary(stable_run, quantity):
    assert_detects("stationary", STABLE, stable_run, quantity, FIVE, quantity=quantity)


def test_stationary_p_empty():
    # at load 0.75 the system is empty 3.8 % of the time (a 4 % half-width at 2 x 10^5 iterations);
    # the lighter model (empty 30 % of the time, half-width 1 %) tests the same estimator at 5 %
    assert_detects("stationary", LIGHT, sim(LIGHT, 200_000, 7), "p_empty", FIVE, quantity="p_empty")


def _false_lower(prediction, factor):
    """The lower bound moved to ``factor`` x the exact stationary mean (above it: false)."""
    return {**prediction, "lower": prediction["mean_in_system"] * factor}


def _false_upper(prediction, factor):
    """The upper bound moved to ``factor`` x the exact stationary mean (below it: false)."""
    return {**prediction, "upper": prediction["mean_in_system"] * factor}


def test_lyapunov_bounds_made_false_by_five_percent(stable_run):
    pred = ql.theorems["lyapunov-bounds"].evaluate(STABLE)
    assert pred["lower"] <= pred["mean_in_system"] <= pred["upper"]  # the true bounds hold exactly
    assert_detects("lyapunov-bounds", STABLE, stable_run, _false_lower, (1.05,))
    assert_detects("lyapunov-bounds", STABLE, stable_run, _false_upper, (0.95,))
    # how tight the true bounds are: the verdict states the gap relative to the stationary mean
    v = ql.verify("lyapunov-bounds", STABLE, stable_run)
    assert v.test == "bounds (lower and upper)" and "% of the exact stationary mean" in v.reason
    assert v.details["relative_gap"] == pytest.approx(float((pred["upper"] - pred["lower"]) / pred["mean_in_system"]))


def test_waiting_cap():
    # rejections are rare (probability about 0.04 at K = 5): 5 % of it needs a long run
    run = sim(CAPPED, 200_000, 5)
    assert_detects("waiting-cap", CAPPED, run, "rejection_probability", FIVE)


# -- family C -----------------------------------------------------------------------------------
def test_memory_little():
    run = sim(LITTLE, 20_000, 1, warmup=200)
    assert_detects("memory-little", LITTLE, run, "mean_kv", FIVE)


@pytest.mark.parametrize("quantity", ["delta_star", "memory_need"])
def test_fluid_benchmark(quantity):
    run = sim(WALL, 20_000, 3, warmup=200)
    assert_detects("fluid-benchmark", WALL, run, quantity, FIVE, quantity=quantity)


def test_nsz_threshold_mu():
    m = ql.default_model()
    assert_detects("nsz-threshold", m, None, "mu", FIVE, seed=1)
    # the one-sided bound on simulated runs catches a mu set below the measured rate
    limited = ql.ContinuousBatching(types=[ql.RequestType(2, 2)], kv_capacity=140, policy="rate_limited")
    run = sim(limited, 5000, 5, saturated=True, warmup=100)  # completes 20 = mu per iteration
    assert_detects("nsz-threshold", limited, run, "mu", (0.95,))
    assert ql.verify(ql.testing.perturb("nsz-threshold", "mu", sp.Rational(21, 20)), limited, run).holds  # one-sided
