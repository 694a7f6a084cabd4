"""Property-based tests of family A ([ADLS26]) through the registry checks and the exact maps.

* the integer simulator, started near x* and run saturated under greedy admission, settles
  on exactly the cycle the exact integer map of the theory finds, whose throughput lies
  between the integer worst cycle floor(M/w_{l1-1})/l1 and x*;
* rate-limited admission at x* never evicts in the relaxed map and its throughput is x*;
* the integer token bucket: the peak formula P(x) equals the direct maximum of the pattern,
  the simulator at ``rate_limited("integer")`` never evicts and completes exactly
  ``max_rate``, and at x* it settles on ``congested_throughput`` (integer-rate-limit);
* with long prompts, the relaxed map of two types converges when the decode lengths are
  coprime and does not when their gcd exceeds 1, as the gcd criterion says, at the
  measured rate the spectral radius gives.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import event, given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm.theory import dynamics as dyn

T = ql.theorems
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


def single(prompt, decode, capacity, **kw):
    return ql.ContinuousBatching(types=[ql.RequestType(prompt=prompt, decode=decode)], kv_capacity=capacity, **kw)


def near_fixed_point(prompt: int, decode: int, capacity: int) -> list[int]:
    """Integer stage counts close to x* whose memory fits in M."""
    xs = int(2 * capacity // (decode * (2 * prompt + decode + 1)))
    counts = [xs] * decode
    j = decode - 1
    while sum((prompt + 1 + k) * c for k, c in enumerate(counts)) > capacity:
        counts[j] -= 1
        j = j - 1 if j > 0 else decode - 1
    return counts


@pytest.mark.slow
@SETTINGS
@given(prompt=st.integers(0, 30), decode=st.integers(1, 12), extra=st.integers(0, 600))
def test_greedy_integer_run_settles_on_the_exact_integer_cycle(prompt, decode, extra):
    capacity = prompt + decode + 1 + extra
    m = single(prompt, decode, capacity)
    start = near_fixed_point(prompt, decode, capacity)
    run = ql.simulate(m, 1500, saturated=True, initial_batch=start, engine="fast")
    cycle = dyn.detect_cycle(run)
    exact = dyn.integer_cycle(m, "greedy", start)
    assert cycle is not None and cycle.period == exact.period and cycle.throughput == exact.throughput
    low = sp.floor(sp.Rational(capacity, prompt + decode)) / decode
    assert low <= cycle.throughput <= dyn.fixed_point(m)


@SETTINGS
@given(prompt=st.integers(0, 30), decode=st.integers(1, 30), extra=st.integers(0, 3000),
       fraction=st.sampled_from([None, sp.Rational(1, 2), sp.Rational(9, 10)]))
def test_rate_limited_relaxed_map_never_evicts(prompt, decode, extra, fraction):
    capacity = prompt + decode + 1 + extra
    xs = dyn.fixed_point(single(prompt, decode, capacity))
    policy = ql.rate_limited() if fraction is None else ql.rate_limited(fraction * xs)
    m = single(prompt, decode, capacity, policy=policy)
    run = dyn.relaxed_trajectory(m, decode + 8)
    verdict = T["rate-limited"].check(m, run)
    assert verdict.holds, verdict.reason
    assert run.evictions.sum() == 0 and max(run.memory) <= capacity
    assert dyn.detect_cycle(run).throughput == (xs if fraction is None else fraction * xs)


@pytest.mark.slow
@settings(max_examples=15, deadline=None, derandomize=True)
@given(prompt=st.integers(0, 20), decode=st.integers(1, 25), load=st.integers(1, 120))
def test_integer_token_bucket(prompt, decode, load):
    """``load`` is about the number of requests in flight at x*."""
    capacity = max(prompt + decode + 1, load * (2 * prompt + decode + 1) // 2)
    m = single(prompt, decode, capacity)
    xs = dyn.fixed_point(m)
    assert dyn.peak_memory(m, xs) == max(dyn.pattern_memory(m, xs))  # formula against the direct maximum
    x_max = dyn.max_eviction_free_rate(m)
    assert x_max <= xs and dyn.peak_memory(m, x_max) <= capacity
    run = ql.simulate(single(prompt, decode, capacity, policy=ql.rate_limited(x_max)), 600, saturated=True,
                      engine="fast")
    assert run.evictions.sum() == 0 and dyn.detect_cycle(run).throughput == x_max
    congested = ql.simulate(single(prompt, decode, capacity, policy=ql.rate_limited()), 2500, saturated=True,
                            engine="fast")
    assert dyn.detect_cycle(congested).throughput == dyn.congested_throughput(m, xs)


def _prompt_for(model: ql.ContinuousBatching) -> int:
    """Coprime decodes: a common prompt with spectral radius at most halfway from rho(A) to 1."""
    target = 1 - (1 - dyn.limiting_radius(model)) / 2
    l0 = dyn.l0_min(model)
    while dyn.spectral_radius_at(model, l0) > target:
        l0 = int(l0 * 1.25) + 1
    return l0


PAIRS = [(a, b) for a in range(1, 9) for b in range(a + 1, 9)]


@SETTINGS
@given(decodes=st.one_of(st.sampled_from([q for q in PAIRS if math.gcd(*q) == 1]),
                         st.sampled_from([q for q in PAIRS if math.gcd(*q) > 1])).map(list),
       p=st.sampled_from([sp.Rational(1, 4), sp.Rational(1, 2), sp.Rational(3, 4)]),
       long_prompt=st.integers(20, 150), seed=st.integers(0, 2**16))
def test_gcd_criterion_decides_convergence_of_the_relaxed_map(decodes, p, long_prompt, seed):
    probe = ql.ContinuousBatching(types=[ql.RequestType(prompt=0, decode=v) for v in decodes], kv_capacity=10**6,
                                  mix=(p, 1 - p))
    coprime = math.gcd(*decodes) == 1
    event("coprime" if coprime else "gcd > 1")
    prompt = _prompt_for(probe) if coprime else long_prompt
    m = dyn.with_prompts(probe, prompt)
    m = ql.ContinuousBatching(types=m.types, kv_capacity=10**6, mix=(p, 1 - p))
    rng = np.random.default_rng(seed)
    state = [[float(v) * (1 - 0.05 * rng.random()) for v in row] for row in dyn.fixed_point_components(m)]
    run = dyn.relaxed_trajectory(m, 1500, state, exact=False)
    verdict = T["gcd-criterion"].check(m, run)
    assert verdict.holds, verdict.reason
    by = {c["quantity"]: c for c in verdict.details["comparisons"]}
    assert by["stable"]["estimate"] == coprime == T["gcd-criterion"].evaluate(m)["stable"]
