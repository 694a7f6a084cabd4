"""The model object: primitives, immutability, and one test per validation message."""

import math
import pickle

import pytest
import sympy as sp

import queueing_llm as ql


def test_symbolic_single_type_primitives():
    l0, l1, M = sp.symbols("l0 l1 M", positive=True)
    m = ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=l1)], kv_capacity=M)
    t = m.types[0]
    assert t.stage_memory(0) == l0 + 1
    # independent hand algebra: sum_{j<l1} (l0 + 1 + j) = l1 (l0 + (l1 + 1)/2)
    assert sp.simplify(t.lifetime_memory - l1 * (l0 + (l1 + 1) / 2)) == 0
    assert m.is_symbolic and m.M == M and m.proportions == (1,)


def test_multi_type_proportions_default_to_rates():
    m = ql.ContinuousBatching([ql.RequestType(50, 2, 1.0), ql.RequestType(50, 3, 3.0)], kv_capacity=518)
    assert m.proportions == (sp.Rational(1, 4), sp.Rational(3, 4))
    m2 = ql.ContinuousBatching([ql.RequestType(50, 2), ql.RequestType(50, 3)], kv_capacity=518)
    assert m2.proportions == (sp.Rational(1, 2), sp.Rational(1, 2))
    # Example 4 of [ADLS26]: sum p_k C_k = (1/2)(2*51.5 + 3*52) = 129.5
    assert m2.mean_lifetime_memory == sp.Rational(259, 2)


def test_random_lengths_lifetime_memory_through_moments():
    t = ql.RequestType(ql.Poisson(3), ql.Geometric(0.2))
    # E[l0]E[l1] + (E[l1^2] + E[l1])/2 = 15 + (20 + 25 + 5)/2 = 40
    assert t.lifetime_memory == 40


def test_numbers_become_poisson_arrivals_and_types_are_values():
    t = ql.RequestType(prompt=2, decode=3, arrivals=1.5)
    assert t.arrivals == ql.Poisson(1.5) and t.arrival_rate == sp.Rational(3, 2)
    m = ql.default_model()
    assert pickle.loads(pickle.dumps(m)) == m
    assert "RequestType(prompt=10, decode=40" in repr(m)
    with pytest.raises(AttributeError):
        m.kv_capacity = 3


def test_wall_clock_mode():
    m = ql.ContinuousBatching(
        [ql.RequestType(2, 3, ql.PoissonProcess(2.0))], kv_capacity=50,
        iteration_time=ql.LinearIterationTime(1.0, 0.01),
    )
    assert m.is_wall_clock and m.iteration_time.seconds(10) == pytest.approx(1.1)


def test_policies_by_name_and_value():
    base = [ql.RequestType(2, 2)]
    assert isinstance(ql.ContinuousBatching(base, kv_capacity=140).policy, ql.Greedy)
    assert ql.ContinuousBatching(base, kv_capacity=140, policy="rate_limited(3.5)").policy == ql.rate_limited(3.5)
    assert ql.ContinuousBatching(base, kv_capacity=140, policy=ql.rate_limited()).policy.rate is None
    assert isinstance(ql.ContinuousBatching(base, batch_cap=4, policy="fcfs_cap").policy, ql.FcfsCap)


BASE = [ql.RequestType(2, 2)]


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: ql.RequestType(-1, 2), ql.LawError, r"prompt must be an integer in \[0, inf\), got -1"),
        (lambda: ql.RequestType(2, 0), ql.LawError, r"decode must be an integer in \[1, inf\), got 0"),
        (lambda: ql.RequestType(2, 2.5), ql.LawError, r"decode must be an integer in \[1, inf\), got 2.5"),
        (lambda: ql.RequestType(2, ql.Poisson(2)), ql.LawError, r"decode must take values >= 1"),
        (lambda: ql.RequestType(2, "three"), ql.LawError, r"decode must be an integer >= 1 or a law"),
        (lambda: ql.RequestType(2, 2, -0.5), ql.ParameterError,
         r"arrival rate must be a number in \[0, inf\), got -0.5"),
        (lambda: ql.RequestType(2, 2, "fast"), ql.ParameterError, r"arrivals must be a rate >= 0"),
        (lambda: ql.PoissonProcess(-2), ql.ParameterError,
         r"PoissonProcess rate must be a number in \[0, inf\), got -2"),
        (lambda: ql.LinearIterationTime(0, 0.1), ql.ParameterError,
         r"iteration_time d0 must be a number in \(0, inf\)"),
        (lambda: ql.LinearIterationTime(1, -0.1), ql.ParameterError,
         r"iteration_time d1 must be a number in \[0, inf\)"),
        (lambda: ql.ContinuousBatching(BASE, kv_capacity=4), ql.ParameterError,
         r"kv_capacity must exceed max\(l0 \+ l1\) = 4 tokens"),
        (lambda: ql.ContinuousBatching(BASE, kv_capacity=-10), ql.ParameterError,
         r"kv_capacity must be a number or inf in \[1, inf\), got -10"),
        (lambda: ql.ContinuousBatching(BASE, batch_cap=0), ql.ParameterError,
         r"batch_cap must be an integer or inf in \[1, inf\), got 0"),
        (lambda: ql.ContinuousBatching(BASE, batch_cap=2.5), ql.ParameterError, r"batch_cap must be an integer"),
        (lambda: ql.ContinuousBatching(BASE, waiting_cap=-1), ql.ParameterError,
         r"waiting_cap must be an integer or inf in \[0, inf\), got -1"),
        (lambda: ql.ContinuousBatching(BASE, policy="fifo"), ql.PolicyError,
         r"policy must be one of fcfs_cap, greedy, nested_wait, rate_limited, reserve, static, wait .* got 'fifo'"),
        (lambda: ql.ContinuousBatching(BASE, policy="rate_limited(fast)"), ql.PolicyError,
         r"the rate must be a positive number, got 'fast'"),
        (lambda: ql.rate_limited(-1), ql.PolicyError, r"rate_limited rate must be a number in \(0, inf\), got -1"),
        (lambda: ql.ContinuousBatching(BASE, kv_capacity=100, policy="fcfs_cap"), ql.ParameterError,
         r"fcfs_cap .* kv_capacity must be inf, got 100"),
        (lambda: ql.ContinuousBatching([ql.RequestType(2, ql.Geometric(0.5))], kv_capacity=100),
         ql.ParameterError, r"laws must be bounded"),
        (lambda: ql.ContinuousBatching([ql.RequestType(2, 2, ql.PoissonProcess(1))]), ql.ParameterError,
         r"need iteration_time"),
        (lambda: ql.ContinuousBatching(BASE, iteration_time=(1, 2)), ql.ParameterError,
         r"iteration_time must be ql.LinearIterationTime"),
        (lambda: ql.ContinuousBatching([], kv_capacity=10), ql.ParameterError, r"at least one RequestType"),
        (lambda: ql.ContinuousBatching([2, 3]), ql.ParameterError, r"types\[0\] must be a RequestType, got 2"),
        (lambda: ql.ContinuousBatching(BASE * 2, mix=[0.5]), ql.ParameterError,
         r"mix must hold 2 proportions"),
        (lambda: ql.ContinuousBatching(BASE * 2, mix=[0.7, 0.7]), ql.ParameterError,
         r"mix proportions must sum to 1, got 1.4"),
        (lambda: ql.ContinuousBatching(BASE * 2, mix=[1.5, -0.5]), ql.ParameterError,
         r"mix\[0\] must be a number in \[0, 1\], got 1.5"),
        (lambda: ql.ContinuousBatching(BASE, admit_after_eviction="yes"), ql.ParameterError,
         r"admit_after_eviction must be True or False"),
    ],
)
def test_every_validation_error_names_parameter_value_and_range(make, error, message):
    with pytest.raises(error, match=message) as info:
        make()
    assert isinstance(info.value, ql.ModelError) and isinstance(info.value, ValueError)


def test_infinite_capacity_is_accepted():
    m = ql.ContinuousBatching(BASE, kv_capacity=math.inf, batch_cap=8, policy="fcfs_cap")
    assert m.M == sp.oo and m.B == 8
