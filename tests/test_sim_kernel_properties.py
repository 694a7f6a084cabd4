"""Property: the compiled kernel gives the Python fast loop's trajectory, bit for bit, on
random models (types, laws, policies, caps, saturated or open, slotted or wall-clock,
initial batches). The fixed grid of ``test_sim_equivalence.py`` checks the same against
the SimPy engine; this test explores the corners (tiny caps, evictions, empty laws)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm.sim import simulate
from queueing_llm.sim.kernel import numba_available

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba not importable: no kernel to compare")

POLICIES = ["greedy", "fcfs_cap", "rate_limited", "rate_limited(0.7)", "rate_limited(2.5)", "static", "reserve"]


@st.composite
def runs(draw):
    K = draw(st.integers(1, 3))
    policy = draw(st.sampled_from(POLICIES))
    saturated = draw(st.booleans())
    wall = draw(st.booleans()) and (K == 1 or saturated)
    bounded = policy != "fcfs_cap" or draw(st.booleans())
    types = []
    for _ in range(K):
        prompt = draw(st.one_of(st.integers(0, 6), st.just(ql.FinitePMF({1: 0.5, 4: 0.5}))))
        if bounded:
            decode = draw(st.one_of(st.integers(1, 9), st.just(ql.FinitePMF({1: 0.2, 3: 0.3, 8: 0.5}))))
        else:
            decode = draw(st.one_of(st.integers(1, 9), st.just(ql.Geometric(0.3))))
        rate = draw(st.sampled_from([0.0, 0.3, 0.9, 1.7, 3.1]))
        if wall and not saturated and draw(st.booleans()):
            arrivals = ql.PoissonProcess(rate * 20)
        elif draw(st.booleans()) and rate <= 0.9:
            arrivals = ql.Bernoulli(rate)
        else:
            arrivals = ql.Poisson(rate)
        types.append(ql.RequestType(prompt, decode, arrivals))
    M = draw(st.integers(20, 160)) if bounded else math.inf
    B = draw(st.one_of(st.integers(1, 12), st.just(math.inf)))
    if saturated and (math.isinf(B) and (policy == "fcfs_cap" or math.isinf(M))):
        B = 10
    try:
        model = ql.ContinuousBatching(
            types,
            kv_capacity=M,
            batch_cap=B,
            policy=policy,
            waiting_cap=draw(st.one_of(st.just(math.inf), st.integers(0, 6))),
            admit_after_eviction=draw(st.booleans()),
            iteration_time=ql.LinearIterationTime(0.01, 1e-4) if wall else None,
        )
    except ql.ModelError:
        assume(False)
    initial = None
    if draw(st.booleans()):
        initial = [[draw(st.integers(0, 1)) for _ in range(2)] for _ in range(K)]
        initial = initial[0] if K == 1 else initial
    return model, {"saturated": saturated, "initial_batch": initial}, draw(st.integers(0, 2**32))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(runs())
def test_kernel_equals_the_python_loop(case):
    model, options, seed = case
    try:
        python = simulate(model, 150, seed=seed, engine="python", **options)
    except ql.ModelError:  # e.g. an initial batch above the KV budget for the prompts drawn
        assume(False)
    fast = simulate(model, 150, seed=seed, engine="fast", **options)
    assert fast.engine == "fast"
    assert fast.equals(python)
    a, b = fast.summary(warmup=20), python.summary(warmup=20)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a), (a, b)
