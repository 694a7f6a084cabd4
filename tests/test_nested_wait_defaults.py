"""The fluid defaults of WAIT and Nested WAIT on the comparison's workloads, overloaded inputs,
rounded batches that do not fit, and the exact bound of the safety-buffer check.

Each test fails on the behaviour reviewed on 2026-12-01: Nested WAIT's defaults admitted
nothing on the Azure workload (32 segments, 54,944 tokens reserved against M = 6,250) and
stalled on [ALSW25]'s Example 3 (14.3 of 35 requests/s, no type-2 completion); overloaded
models raised a raw OverflowError or aborted ``stable_range``; ``wait-thresholds`` FAILED a
run whose rounded batch did not fit; the safety-buffer interval had negative ends.
"""

import dataclasses
import math
import warnings

import numpy as np
import pytest
from scipy import stats

import queueing_llm as ql
from queueing_llm.catalogue.fluid import overflow_spacing
from queueing_llm.compare import azure_conversation
from queueing_llm.scheduling import NoEquilibriumError, ThresholdWarning, rounded_batch_memory, stalled_memory
from queueing_llm.testing import perturb


def example3(factor=1.0):
    return ql.ContinuousBatching(
        [ql.RequestType(100, 100, ql.PoissonProcess(30 * factor)),
         ql.RequestType(200, 400, ql.PoissonProcess(5 * factor))],
        kv_capacity=100_000, iteration_time=ql.LinearIterationTime(0.015, 3e-7))


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [w for w in caught if issubclass(w.category, ThresholdWarning)]


# -- issue 1: Nested WAIT's fluid defaults keep up -------------------------------------------
@pytest.fixture(scope="module")
def azure():
    return azure_conversation()


def test_azure_defaults_have_few_segments_buffers_that_fit_and_admit(azure):
    p, warned = quiet(ql.fluid_nested_wait, azure)
    assert p.boundaries == (9, 27, 32) and not p.stall and not warned  # quantiles 0.5, 0.9 and the largest
    # one boundary per distinct length (the old default) is refused when asked for explicitly
    with pytest.raises(ql.ParameterError, match=r"safety buffers reserve .* kv_capacity M = 6250"):
        ql.fluid_nested_wait(azure, boundaries=list(range(1, 33)))
    ev = ql.theorems["safety-buffer"].evaluate(azure)
    need = float(ql.theorems["wait-thresholds"].evaluate(azure)["batch_memory"])
    assert ev["reserved_memory"] + need <= float(azure.M)
    run = ql.simulate(azure.with_policy(p), 3000, seed=1)
    t = np.asarray(run.time, dtype=float)
    done = np.asarray(run.completions).sum(axis=1)
    rate = done[1500:].sum() / (t[-1] - t[1499])
    assert int(run.evictions.sum()) == 0 and 0.9 * 5.530 < rate < 1.1 * 5.530


def test_example3_defaults_do_not_stall_and_keep_up():
    m = example3()
    p = ql.fluid_nested_wait(m)
    assert p.boundaries == (100, 400) and p.stall is False
    run = ql.simulate(m.with_policy(p), 4000, seed=3)
    t = np.asarray(run.time, dtype=float)
    done = np.asarray(run.completions)
    per_type = done[2000:].sum(axis=0) / (t[-1] - t[1999])
    assert per_type[1] > 0.8 * 5 and per_type.sum() > 0.9 * 35  # type 2 completes; 35 requests/s arrive
    assert int(run.evictions.sum()) == 0


def test_stall_true_is_the_authors_rule_and_warns_when_stalled_segments_cannot_fit():
    m = example3()
    p, warned = quiet(ql.fluid_nested_wait, m, stall=True)
    assert p.stall is True and len(warned) == 1 and "stall=True" in str(warned[0].message)
    # independent: segment 1 holds one request per stage of the mean prompt 800/7, segment 2 one type-2
    # request per stage 100..399
    seg1 = sum(800 / 7 + j + 1 for j in range(100))
    seg2 = sum(200 + j + 1 for j in range(100, 400))
    assert stalled_memory(m, p) == pytest.approx(seg1 + seg2) and seg1 + seg2 > 100_000


def test_buffers_that_do_not_fit_are_refused_or_thinned():
    m = ql.ContinuousBatching([ql.RequestType(2, ql.FinitePMF({2: 0.5, 8: 0.5}), 6.0)], kv_capacity=200)
    with pytest.raises(ql.ParameterError, match=r"safety buffers reserve .* kv_capacity M = 200"):
        ql.fluid_nested_wait(m, boundaries=[2, 8])
    p, warned = quiet(ql.fluid_nested_wait, m)
    assert p.boundaries == (8,) and p.buffer == (0,) and len(warned) == 1 and "dropped" in str(warned[0].message)
    # with room (M = 5000) the same boundaries are kept, buffer 5 at boundary 2
    roomy = dataclasses.replace(m, kv_capacity=5000)
    assert ql.fluid_nested_wait(roomy).buffer == (0, 5)


def test_non_integer_boundaries_are_refused_never_floored():
    with pytest.raises(ql.ParameterError, match=r"boundaries\[0\]"):
        ql.NestedWait(boundaries=[2.5, 199], thresholds=[1, 1])
    with pytest.raises(ql.PolicyError, match=r"thresholds\[0\]"):  # still a PolicyError too
        ql.Wait(thresholds={0: 1.5})
    with pytest.raises(ql.ParameterError, match=r"boundaries\[0\]"):
        ql.fluid_nested_wait(example3(), boundaries=[99.5, 400])
    with pytest.raises(ql.ParameterError, match=r"boundaries\[1\]"):
        ql.theorems["safety-buffer"].evaluate(example3(), boundaries=[100, 400.25])


# -- issue 2: overloaded inputs are answered ----------------------------------------------------
def test_overloaded_model_has_no_equilibrium_and_says_so():
    m = example3(3.0)
    with pytest.raises(NoEquilibriumError, match=r"rho = d1 sum_k lambda_k W_k = 1\.127"):
        ql.fluid_nested_wait(m)
    with pytest.raises(ql.ParameterError, match=r"no WAIT equilibrium.*rho = d1 sum_k lambda_k W_k = 1\.127"):
        ql.fluid_wait(m)
    ev = ql.theorems["safety-buffer"].evaluate(m)
    assert ev["feasible"] is False and math.isinf(ev["reserved_memory"]) and "1.127" in ev["reason"]
    assert str(ql.theorems["safety-buffer"].statement(m)) == "Eq(b, oo)"


def test_stable_range_counts_a_rate_without_equilibrium_as_unstable():
    def small(rate):  # rho = 1e-4 * rate * 65 >= 1 from rate 153.8 on
        return ql.ContinuousBatching([ql.RequestType(10, 5, ql.PoissonProcess(rate))], kv_capacity=2000,
                                     iteration_time=ql.LinearIterationTime(0.01, 1e-4))

    r = ql.stable_range(small, ql.fluid_wait, rates=(20, 400), iterations=1000, replications=2, max_steps=0)
    low, high = r.tests
    assert not low.note and not low.grows
    assert high.grows and "no equilibrium" in high.note and "rho = d1 sum_k lambda_k W_k = 2.6 >= 1" in high.note
    assert math.isnan(high.growth.estimate) and high.growth.n == 0  # no run was made
    assert r.stable_rate == 20 and r.unstable_rate == 400
    assert "no policy equilibrium (counted unstable) at 400" in str(r) and "unstable" in str(high)


# -- issue 3: a rounded batch that does not fit -------------------------------------------------
def test_fluid_wait_warns_when_the_rounded_batch_does_not_fit_and_the_check_does_not_apply():
    m = ql.default_model()
    p, warned = quiet(ql.fluid_wait, m)
    assert p.thresholds == {0: 2} and len(warned) == 1
    assert rounded_batch_memory(m, p.thresholds) == 2 * 40 * (10 + 41 / 2) == 2440
    assert "2440 exceeds M = 2000" in str(warned[0].message)
    model = m.with_policy(p)
    run = ql.simulate(model, 3000, seed=1)
    assert int(run.evictions.sum()) > 0
    v = ql.verify("wait-thresholds", model, run, quantity="per_stage")
    assert v.holds is None and "2440" in v.reason and "exceeds M = 2000" in v.reason
    # a fitting batch: no warning
    fits, none = quiet(ql.fluid_wait, ql.ContinuousBatching([ql.RequestType(2, 4, 8.0)], kv_capacity=200))
    assert fits.thresholds == {0: 8} and not none


# -- issue 4: the exact bound of the safety-buffer check ----------------------------------------
@pytest.fixture(scope="module")
def nested():
    m = ql.ContinuousBatching([ql.RequestType(2, ql.FinitePMF({2: 0.5, 8: 0.5}), 6.0)], kv_capacity=5000)
    return m, ql.simulate(m.with_policy(ql.fluid_nested_wait(m)), 12_000, seed=4)


def test_safety_buffer_check_uses_clopper_pearson_over_spaced_iterations(nested):
    m, run = nested
    p = run.model.policy
    ev = ql.theorems["safety-buffer"].evaluate(m)
    g = overflow_spacing(p, ev["survival"])
    # longest segment 8 - 2 = 6; boundary 2: Y ~ Bin(6, 1/2) against n = 4, var 1.5 / drift^2 1
    assert g == 6 + 2
    v = ql.verify("safety-buffer", m, run)
    assert v.interval.method.startswith("Clopper-Pearson, iterations 8 apart")
    assert 0.0 <= v.interval.low <= v.interval.estimate <= v.interval.high <= 1.0
    k, n = v.details["overflows"], v.details["trials"]
    assert n == len(range(1200, 12_000, 8))
    assert v.interval.high == pytest.approx(stats.beta.ppf(0.975, k + 1, n - k))  # scipy, not binomial_ci
    assert v.holds is True
    half = ql.verify(perturb(ql.theorems["safety-buffer"], "buffer", 0.5), m, run)
    assert half.status == "FAILS" and half.interval.low > 1e-3


def test_verify_on_an_overloaded_model_does_not_apply():
    """rho >= 1: no fluid policy, so the declared WAIT / Nested WAIT runs cannot be built:
    verify answers "does not apply" with the reason (it raised NoEquilibriumError)."""
    over = ql.ContinuousBatching(
        [ql.RequestType(100, 100, ql.PoissonProcess(90)), ql.RequestType(200, 400, ql.PoissonProcess(15))],
        kv_capacity=100_000, iteration_time=ql.LinearIterationTime(0.015, 3e-7))
    with pytest.raises(ql.NoEquilibriumError, match="rho"):
        ql.fluid_wait(over)
    for name in ("wait-thresholds", "safety-buffer", "wait-throughput"):
        v = ql.verify(name, over, seed=1)
        assert v.holds is None and v.status == "does not apply", str(v)
        assert "rho" in v.reason
