"""ql.stable_range: bisection on the queue's trend against the derived capacity B/E[l1]."""

import math

import pytest

import queueing_llm as ql
from queueing_llm.stable_range import stable_range


def capped(rate):
    return ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(0.25), rate)], batch_cap=8, policy="fcfs_cap")


def test_stable_range_brackets_the_derived_capacity():
    capacity = float(ql.theorems["stability"].evaluate(capped(1.0))["capacity"])  # B q = 2 per iteration
    r = stable_range(capped, rates=(1.0, 3.0), replications=4, iterations=4000, tolerance=0.02, seed=3)
    assert r.unit == "requests/iteration" and not r.exhausted
    assert 0.95 * capacity <= r.stable_rate < r.unstable_rate <= 1.1 * capacity
    assert r.resolution <= 0.02
    assert all(t.grows == (t.growth.low > 0) for t in r.tests)
    assert "stable up to" in str(r)


def test_stable_range_says_when_the_bracket_is_wrong():
    low = stable_range(capped, rates=(2.5, 3.0), replications=3, iterations=2000)
    assert math.isnan(low.stable_rate) and "lowest rate already grows" in low.exhausted
    high = stable_range(capped, rates=(0.5, 1.0), replications=3, iterations=2000)
    assert high.unstable_rate == math.inf and "does not grow" in high.exhausted


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
