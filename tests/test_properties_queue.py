"""Property-based verification of family B (the batch-capped queue) against simulation.

Each property is stated as in the model chapter, section 5.B ("for every stable Geo^X/Geo/B queue
...") over models drawn by the public strategies of ``queueing_llm.strategies``, and is
checked through ``ql.verify`` (the built-in theorems' checks), the code path users get.
Simulations use the fast engine and fixed seeds; hypothesis runs derandomized with few
examples, so every run of this file is identical.

Confidence levels. Every statistical check is a confidence interval at level
``LEVEL = 1 - ALPHA / CHECKS``: with at most ``CHECKS`` checks in this file a true
statement fails somewhere with probability at most ``ALPHA`` (Bonferroni). Nothing is
widened to make a test pass; each property has a negative control (the same check
against runs of a slightly different model) showing that it can fail.

Little's law is checked exactly on every trajectory as a sample-path identity: with
in-system counts observed after admission, a request that arrives at iteration a and
completes at iteration c is counted at a, ..., c - 1, so the sum of the in-system counts
over a run equals the sum of the requests' times in system (truncated at the horizon).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import queueing_llm as ql
import queueing_llm.strategies as qs
from queueing_llm.stats import binomial_ci, replications_ci
from queueing_llm.testing import assert_theorem_holds, simulate_replications

ALPHA = 0.05
# statistical checks below: stationary 12 models x 5, Lyapunov 7, drift 8 x 3 + 1, renewal
# 8 x 12, long run 5 x 3, waiting cap 5: 208, rounded up
CHECKS = 250
LEVEL = 1 - ALPHA / CHECKS  # 0.9998 per check
SEED = 20260315


def examples(n: int) -> settings:
    """Hypothesis settings of this file: ``n`` derandomized examples, no deadline, no database."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),  # no shrinking: a failure is reproduced as drawn
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def fcfs(decode, arrivals=None, B=4, waiting_cap=math.inf):
    return ql.ContinuousBatching(
        types=[ql.RequestType(prompt=1, decode=decode, arrivals=arrivals)],
        batch_cap=B,
        policy="fcfs_cap",
        waiting_cap=waiting_cap,
    )


def check_little(run) -> None:
    """Little's law as an exact sample-path identity on one trajectory."""
    req = run.requests
    N = run.iterations
    counted = ~req.rejected & (req.arrival < N)
    end = np.where(req.completion >= 0, req.completion, N)[counted]
    time_in_system = int((end - req.arrival[counted]).sum())
    assert int(run.in_system.sum()) == time_in_system, "sum of in-system counts != total time in system"
    assert np.array_equal(run.in_system, run.queue.sum(axis=1) + run.batch.sum(axis=(1, 2)))
    # flow balance from an empty start: arrivals - rejections - completions = number left in system
    net = run.arrivals.sum() - run.rejections.sum() - run.completions.sum()
    assert int(net) == int(run.in_system[-1])


def test_little_identity_negative_control():
    """One request's completion moved by one iteration breaks the identity."""
    run = ql.simulate(fcfs(ql.Geometric(0.25), ql.Poisson(0.6), B=4), 2_000, seed=SEED, engine="fast")
    check_little(run)
    done = np.flatnonzero(run.requests.completion >= 0)
    run.requests.completion[done[0]] += 1
    with pytest.raises(AssertionError, match="sum of in-system counts"):
        check_little(run)


# -- B.5 stationary mean, P(empty), sojourn; B.6 Lyapunov bounds; B.1 throughput -------------


@pytest.mark.slow
@examples(8)
@given(
    qs.stable_queues(
        load=(0.3, 0.8), batch_caps=(1, 8), arrivals=("poisson", "bernoulli"), decode=("geometric",),
        max_decode_mean=5,
    )
)
@example(fcfs(1, ql.Poisson(2.5), B=4))  # Bailey's bulk-service queue (l1 = 1, q = 1)
@example(fcfs(ql.Geometric(0.3), ql.Poisson(4.0), B=16))  # larger B, load 0.83
@example(fcfs(ql.Geometric(0.5), ql.Bernoulli(0.95), B=2))  # near-critical, load 0.95
@example(fcfs(ql.Geometric(0.1), ql.Poisson(6.08), B=64))  # B = 64, load 0.95
def test_stationary_quantities_inside_the_simulation_interval(model):
    iterations = 20_000
    runs = simulate_replications(model, iterations, 10, seed=SEED, engine="fast")
    for run in runs:
        check_little(run)
    for quantity in ("mean_in_system", "mean_batch", "mean_sojourn"):
        assert_theorem_holds("stationary", model, runs, level=LEVEL, quantity=quantity)
    # P(empty) by a Student interval on per-run fractions needs the empty state to be seen
    # often in every run (else the fractions are 0 and the interval collapses to [0, 0])
    if iterations * float(ql.theorems["stationary"].evaluate(model)["p_empty"]) >= 50:
        assert_theorem_holds("stationary", model, runs, level=LEVEL, quantity="p_empty")
    assert_theorem_holds("stability", model, runs, level=LEVEL)  # throughput = lambda


@pytest.mark.slow
@examples(6)
@given(
    qs.stable_queues(
        load=(0.3, 0.85), batch_caps=(1, 8), arrivals=("poisson", "bernoulli", "binomial"), decode=("geometric",),
        max_decode_mean=5,
    )
)
@example(fcfs(1, ql.Poisson(2.5), B=4))
def test_lyapunov_bounds_hold_on_long_runs(model):
    run = ql.simulate(model, 100_000, seed=SEED, engine="fast")
    check_little(run)
    assert_theorem_holds("lyapunov-bounds", model, run, level=LEVEL)


@pytest.mark.slow
def test_stationary_negative_control():
    """A 10 % higher arrival rate than the theory's model is detected (the check has power)."""
    model = fcfs(ql.Geometric(0.25), ql.Poisson(0.6), B=4)
    other = fcfs(ql.Geometric(0.25), ql.Poisson(0.66), B=4)
    runs = simulate_replications(other, 20_000, 10, seed=SEED, engine="fast")
    verdict = ql.theorems["stationary"].check(model, runs, level=LEVEL)
    assert not verdict.holds, str(verdict)


# -- B.2 overload drift --------------------------------------------------------------------------


@pytest.mark.slow
@examples(8)
@given(
    qs.overloaded_queues(
        load=(1.2, 2.0), batch_caps=(1, 8), arrivals=("poisson", "bernoulli", "binomial"),
        decode=("geometric", "deterministic", "finite"), max_decode_mean=6,
    )
)
def test_queue_grows_at_the_derived_drift(model):
    run = ql.simulate(model, 20_000, seed=SEED, engine="fast")
    check_little(run)
    assert_theorem_holds("overload-drift", model, run, level=LEVEL)
    assert_theorem_holds("stability", model, run, level=LEVEL)  # throughput = B / E[l1]
    values = ql.theorems["overload-drift"].evaluate(model)
    if "one_step_drift" in values:
        # geometric l1: given Y_n >= B the increment A_n - Bin(B, q) is i.i.d. with mean lambda - B q
        y = run.in_system
        steps = np.diff(y)[y[:-1] >= int(model.B)]
        iv = replications_ci(steps, LEVEL)
        theory = float(values["one_step_drift"])
        assert iv.low <= theory <= iv.high, (theory, iv)


def test_overload_drift_negative_control():
    model = fcfs(ql.Geometric(0.25), ql.Poisson(1.5), B=4)  # drift 0.5
    other = fcfs(ql.Geometric(0.25), ql.Poisson(1.6), B=4)  # drift 0.6
    run = ql.simulate(other, 20_000, seed=SEED, engine="fast")
    assert not ql.theorems["overload-drift"].check(model, run, level=LEVEL).holds


def test_stable_queue_has_zero_drift():
    model = fcfs(ql.Geometric(0.25), ql.Poisson(0.6), B=4)
    run = ql.simulate(model, 20_000, seed=SEED, engine="fast")
    assert ql.theorems["overload-drift"].evaluate(model)["drift"] == 0
    assert_theorem_holds("overload-drift", model, run, level=LEVEL)


# -- B.3 renewal transient; B.4 equilibrium stage -------------------------------------------------

HORIZON = 12


@st.composite
def saturated_queues(draw):
    """fcfs_cap models without arrivals for saturated runs: B in 1..8, any decode law kind."""
    decode = draw(qs.decode_laws(max_mean=5, max_value=6))
    return fcfs(decode, None, B=draw(st.integers(1, 8)))


@pytest.mark.slow
@examples(6)
@given(saturated_queues())
@example(fcfs(ql.FinitePMF({2: 0.5, 4: 0.5}), None, B=3))  # periodic: gcd 2
@example(fcfs(3, None, B=2))  # deterministic: completions B at multiples of 3
def test_renewal_transient_of_an_empty_saturated_batch(model):
    """Expected completions at iteration n are B u_n. The B slots of a saturated batch are
    independent renewal processes, so over R runs the completions at n are exactly
    Binomial(B R, u_n); the check compares the exact (Clopper-Pearson) interval with u_n."""
    R = 300
    runs = simulate_replications(model, HORIZON + 1, R, seed=SEED, saturated=True, engine="fast")
    for run in runs:
        check_little(run)
    B = int(model.B)
    values = ql.theorems["renewal-transient"].evaluate(model, n=HORIZON)
    for n in range(1, HORIZON + 1):
        verdict = assert_theorem_holds("renewal-transient", model, runs, level=LEVEL, iteration=n)
        total = sum(int(run.completions[n].sum()) for run in runs)
        assert verdict.interval == binomial_ci(total, B * R, LEVEL)
        assert verdict.theory == float(values["sequence"][n])
        assert float(values["completions"][n]) == pytest.approx(B * verdict.theory)
    period = int(values["period"])
    assert values["periodic"] == (period > 1)
    for n in range(1, HORIZON + 1):
        if n % period:
            assert all(run.completions[n].sum() == 0 for run in runs)  # u_n = 0 off the lattice


def test_renewal_check_at_a_rare_iteration():
    """Regression: with no completion seen at n the interval must not collapse to [0, 0]
    (the check used a Student interval before; it now uses the exact binomial one)."""
    model = fcfs(ql.FinitePMF({1: sp.Rational(1, 3), 6: sp.Rational(2, 3)}), None, B=1)  # u_5 = 3**-5
    runs = simulate_replications(model, 6, 300, seed=SEED, saturated=True, engine="fast")
    assert sum(int(run.completions[5].sum()) for run in runs) == 0  # no completion seen at n = 5
    assert_theorem_holds("renewal-transient", model, runs, level=LEVEL, iteration=5)


def aperiodic(model) -> bool:
    return int(ql.theorems["renewal-transient"].evaluate(model, n=1)["period"]) == 1


@pytest.mark.slow
@examples(5)
@given(saturated_queues().filter(aperiodic))
def test_long_run_completions_and_equilibrium_stage(model):
    """Aperiodic decode laws only: with a periodic law (support gcd d > 1) a batch started
    empty never forgets its phase, so completions and stages oscillate forever (B.3) and
    batch means do not estimate the Cesaro mean with a valid interval."""
    run = ql.simulate(model, 20_000, seed=SEED, saturated=True, engine="fast")
    check_little(run)
    assert_theorem_holds("renewal-transient", model, run, level=LEVEL)  # limit u_n -> 1/E[l1]
    for quantity in ("mean_kv", "mean_stage"):
        assert_theorem_holds("equilibrium-stage", model, run, level=LEVEL, quantity=quantity)


def test_renewal_negative_control():
    model = fcfs(ql.FinitePMF({1: 0.5, 3: 0.5}), None, B=4)
    other = fcfs(ql.FinitePMF({1: 0.4, 3: 0.6}), None, B=4)
    runs = simulate_replications(other, 3, 300, seed=SEED, saturated=True, engine="fast")
    assert not ql.theorems["renewal-transient"].check(model, runs, level=LEVEL, iteration=1).holds


# -- B.7 waiting-room cap ------------------------------------------------------------------------


@pytest.mark.slow
@examples(5)
@given(
    qs.queues(load=(0.5, 1.5), batch_caps=(1, 4), arrivals=("poisson", "bernoulli"), decode=("geometric",),
              max_decode_mean=4, waiting_caps=(0, 6))
)
def test_rejection_probability_of_a_waiting_room_cap(model):
    runs = simulate_replications(model, 20_000, 8, seed=SEED, engine="fast")
    for run in runs:
        check_little(run)
    assert_theorem_holds("waiting-cap", model, runs, level=LEVEL)


@pytest.mark.slow
def test_waiting_cap_negative_control():
    model = fcfs(ql.Geometric(0.5), ql.Poisson(1.0), B=2, waiting_cap=2)
    other = fcfs(ql.Geometric(0.5), ql.Poisson(1.2), B=2, waiting_cap=2)
    runs = simulate_replications(other, 20_000, 8, seed=SEED, engine="fast")
    assert not ql.theorems["waiting-cap"].check(model, runs, level=LEVEL).holds
