"""The validation layer at the boundary (issue 11 item 1): NumPy and Python numbers alike,
booleans/NaN/infinity refused where a finite value is needed, limits named, unordered or
keyed inputs refused or read right, theorem options and models checked."""

from __future__ import annotations

import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import queueing_llm as ql
from queueing_llm.numbers import MAX_INTEGER, MAX_RATE, check_options, check_real, plain, to_sympy

T = ql.RequestType(prompt=2, decode=3, arrivals=0.5)


@pytest.mark.parametrize("value", [np.int64(10), np.int32(10), np.uint8(10), np.float64(10.0), 10.0, Fraction(10)])
def test_numpy_and_python_numbers_are_the_same_prompt(value) -> None:
    t = ql.RequestType(prompt=value, decode=3)
    assert t == ql.RequestType(prompt=10, decode=3)
    assert type(t.prompt.value) is int and repr(t) == "RequestType(prompt=10, decode=3)"
    assert pickle.loads(pickle.dumps(t)) == t


def test_numpy_scalars_everywhere_a_number_is_accepted() -> None:
    m = ql.ContinuousBatching([ql.RequestType(prompt=np.int64(2), decode=np.int16(3), arrivals=np.float32(0.5))],
                              kv_capacity=np.int64(50), batch_cap=np.int64(4), waiting_cap=np.int64(3))
    assert m == ql.ContinuousBatching([T], kv_capacity=50, batch_cap=4, waiting_cap=3)
    assert type(m.kv_capacity) is int and type(m.batch_cap) is int
    assert ql.Geometric(np.float64(0.5)) == ql.Geometric(0.5) and ql.Binomial(np.int64(3), 0.5).n == 3
    assert ql.rate_limited(np.float64(2.5)).rate == 2.5


@pytest.mark.parametrize(("make", "message"), [
    (lambda: ql.RequestType(prompt=True, decode=3), "prompt must be an integer >= 0 or a law"),
    (lambda: ql.RequestType(prompt=np.bool_(True), decode=3), "prompt must be an integer >= 0 or a law"),
    (lambda: ql.Poisson(math.nan), r"Poisson mean must be a number in \[0, inf\), got nan"),
    (lambda: ql.Poisson(math.inf), r"Poisson mean must be finite"),
    (lambda: ql.Bernoulli(np.bool_(False)), r"Bernoulli p must be a number in \[0, 1\]"),
    (lambda: ql.ContinuousBatching([T], kv_capacity=-math.inf), r"kv_capacity must be a number or inf in \[1, inf\)"),
    (lambda: ql.ContinuousBatching([T], kv_capacity=math.nan), r"kv_capacity .* got nan"),
    (lambda: ql.ContinuousBatching([T], batch_cap=np.float64(math.nan)), r"batch_cap .* got nan"),
    (lambda: ql.LinearIterationTime(math.inf), "iteration_time d0 must be finite"),
])
def test_booleans_nan_and_infinity_are_refused(make, message) -> None:
    with pytest.raises(ql.ModelError, match=message):
        make()


@pytest.mark.parametrize(("make", "message"), [
    (lambda: ql.RequestType(prompt=2**63, decode=3), r"prompt must be at most 9007199254740992 \(2\^53"),
    (lambda: ql.RequestType(prompt=2, decode=3, arrivals=1e7),
     r"arrival rate must be at most 1000000 \(MAX_RATE.*got 10000000.0"),
    (lambda: ql.Poisson(1e30), "Poisson mean must be at most 1000000"),
    (lambda: ql.PoissonProcess(1e9), "PoissonProcess rate must be at most 1000000"),
    (lambda: ql.Binomial(2**70, 0.5), r"Binomial n must be at most 9007199254740992"),
    (lambda: ql.Deterministic(2**60), "Deterministic value must be at most"),
    (lambda: ql.Deterministic(2**53 + 1), "Deterministic value must be at most"),  # its float rounds to 2^53
    (lambda: ql.Deterministic(sp.Integer(2**53 + 1)), "Deterministic value must be at most"),
    (lambda: ql.Poisson(Fraction(10**22 + 1, 10**16)), r"Poisson mean must be at most"),
    (lambda: ql.FinitePMF({2**63: 1}), "FinitePMF value must be at most"),
    (lambda: ql.ContinuousBatching([T], kv_capacity=1e300), "kv_capacity must be at most 9007199254740992"),
    (lambda: ql.ContinuousBatching([T], batch_cap=2**60), "batch_cap must be at most"),
    (lambda: ql.Geometric(1e-300), r"Geometric q must be in \[2\^-40, 1\] for numbers"),
    (lambda: ql.Empirical([2**62]), r"Empirical samples must be integers in \[0, 2\^53\]"),
])
def test_too_large_values_are_refused_naming_the_limit(make, message) -> None:
    with pytest.raises(ql.ModelError, match=message):
        make()
    assert MAX_INTEGER == 2**53 and MAX_RATE == 1e6


def test_limits_are_inclusive() -> None:
    assert ql.Deterministic(MAX_INTEGER).value == MAX_INTEGER
    assert float(ql.Poisson(MAX_RATE).mean) == MAX_RATE
    assert ql.Geometric(2.0**-40).q == 2.0**-40


@pytest.mark.parametrize(("keys", "message"), [
    ({"a": 1}, r"FinitePMF value must be an integer in \[0, inf\), got 'a'"),
    ({sp.Symbol("k"): 1}, "got the symbolic value k"),
    ({2.5: 1}, r"FinitePMF value must be an integer"),
    ({-1: 1}, r"FinitePMF value must be an integer in \[0, inf\), got -1"),
    (5, r"FinitePMF needs a dict value -> probability"),
    ([(1, 0.5, 3)], r"FinitePMF needs \(value, probability\) pairs"),
])
def test_finite_pmf_bad_keys(keys, message) -> None:
    with pytest.raises(ql.LawError, match=message):
        ql.FinitePMF(keys)


def test_finite_pmf_symbolic_probabilities_still_allowed() -> None:
    p = sp.Symbol("p", positive=True)
    assert ql.FinitePMF({1: p, 2: 1 - p}).is_symbolic


@pytest.mark.parametrize(("samples", "message"), [
    ([[1, 2], [3, 4]], r"one-dimensional, got shape \(2, 2\)"),
    (np.array([1 + 1j, 2]), "got dtype complex128"),
    ([1.5, 2], "got 1.5 at index 0"),
    ([True, False], "got dtype bool"),
    ([1, [2, 3]], "ragged"),
    ("123", "1-D sequence of integers"),
    ([], "at least one observation"),
    ([1, math.nan], "got nan at index 1"),
])
def test_empirical_refuses_what_it_used_to_reshape(samples, message) -> None:
    with pytest.raises(ql.LawError, match=message):
        ql.Empirical(samples)


def test_empirical_accepts_numpy_and_objects() -> None:
    assert ql.Empirical(np.array([3, 5, 5, 8], dtype=np.uint16)) == ql.Empirical([3, 5, 5, 8])
    assert ql.Empirical(np.array([3.0, 5.0])) == ql.Empirical([3, 5])
    assert ql.Empirical((np.int64(3), 5)) == ql.Empirical([3, 5])


def test_geometric_never_returns_saturated_draws() -> None:
    law = ql.Geometric(2.0**-40)
    draws = law.sample(np.random.default_rng(0), 1000)
    assert draws.max() < MAX_INTEGER


TWO = [ql.RequestType(prompt=1, decode=2, arrivals=0.3), ql.RequestType(prompt=5, decode=2, arrivals=0.7)]


def test_mix_as_a_dict_is_read_by_type_index_not_by_keys() -> None:
    m = ql.ContinuousBatching(TWO, mix={0: 0.3, 1: 0.7})
    assert m.proportions == (sp.Rational(3, 10), sp.Rational(7, 10))  # was (0, 1): the keys
    assert m == ql.ContinuousBatching(TWO, mix=[0.3, 0.7])
    assert hash(m) == hash(ql.ContinuousBatching(TWO, mix=(0.3, 0.7)))
    assert ql.ContinuousBatching(TWO, mix={np.int64(1): 0.7, np.int64(0): 0.3}) == m
    with pytest.raises(ql.ParameterError, match=r"keyed by the type indices 0..1.*got keys \['a', 'b'\]"):
        ql.ContinuousBatching(TWO, mix={"a": 0.3, "b": 0.7})


@pytest.mark.parametrize(("mix", "message"), [
    (1, "mix must be a list of 2 proportions in type order, got 1"),
    ({0.3, 0.7}, r"got a set \(no order"),
    ("ab", "mix must be a list of 2 proportions"),
    (np.array([[0.3, 0.7]]), r"1-D sequence of 2 proportions, got an array of shape \(1, 2\)"),
    ([0.3, math.nan], r"mix\[1\] must be a number in \[0, 1\], got nan"),
])
def test_mix_shapes_that_cannot_be_read_are_refused(mix, message) -> None:
    with pytest.raises(ql.ParameterError, match=message):
        ql.ContinuousBatching(TWO, mix=mix)


def test_numpy_mix_is_accepted() -> None:
    m = ql.ContinuousBatching(TWO, mix=np.array([0.25, 0.75]))
    assert m.proportions == (sp.Rational(1, 4), sp.Rational(3, 4)) and m.mix == (0.25, 0.75)


def test_bare_policy_base_class_is_refused() -> None:
    with pytest.raises(ql.PolicyError, match="bare Policy base class .* use one of fcfs_cap, greedy"):
        ql.ContinuousBatching([T], kv_capacity=50, policy=ql.Policy())


def test_unknown_evaluate_option_lists_the_known_ones() -> None:
    m = ql.default_model()
    with pytest.raises(ql.ModelError, match="'fixed-point' evaluate: unknown option 'bogus'; known options: none"):
        ql.theorems["fixed-point"].evaluate(m, bogus=1)
    with pytest.raises(ql.ModelError, match="unknown option 'bogus'; known options: block, spacing"):
        ql.theorems["cycles"].evaluate(m, bogus=1)
    with pytest.raises(ql.ModelError, match="statement: unknown option 'x'"):
        ql.theorems["fixed-point"].statement(m, x=1)


@pytest.mark.parametrize("model", [None, 3, "model", ql.RequestType(prompt=1, decode=2)])
def test_theorems_need_a_model(model) -> None:
    for name in ("fixed-point", "stationary", "memory-little"):
        theorem = ql.theorems[name]
        for call in (theorem.evaluate, theorem.statement, theorem.latex):
            with pytest.raises(ql.ModelError, match=f"theorem '{name}' needs a ql.ContinuousBatching model"):
                call(model)


def test_check_options_accepts_var_keywords_and_lists_names() -> None:
    def f(model, a=1, *, b=2):
        return a + b

    def g(model, **kw):
        return kw

    check_options(f, {"a": 1, "b": 2}, "f")
    check_options(g, {"anything": 1}, "g")
    with pytest.raises(ql.ParameterError, match="f: unknown option 'c'; known options: a, b"):
        check_options(f, {"c": 1}, "f")


def test_check_real_and_conversions() -> None:
    check_real("x", np.int64(3), low=0, integer=True)
    with pytest.raises(ql.ParameterError, match=r"x must be an integer in \[0, inf\), got np.True_"):
        check_real("x", np.bool_(True), low=0, integer=True)
    with pytest.raises(ql.ParameterError, match="must be finite"):
        check_real("x", -math.inf, low=0)
    with pytest.raises(ql.ParameterError, match="got 1j"):
        check_real("x", 1j)
    with pytest.raises(ql.ParameterError, match=r"got I"):
        check_real("x", sp.I)
    assert plain(np.int64(3)) == 3 and type(plain(np.float32(0.5))) is float
    assert to_sympy(Fraction(1, 3)) == sp.Rational(1, 3) and to_sympy(np.float64(0.1)) == sp.Rational(1, 10)
    with pytest.raises(ql.ParameterError, match="got the string"):
        to_sympy("{")


def test_arrival_laws_with_a_huge_mean_are_refused() -> None:
    for law in (ql.Binomial(2**53, 0.5), ql.FinitePMF({2**40: 1})):
        with pytest.raises(ql.ParameterError, match=r"arrivals .* have mean .* more than MAX_RATE = 1e\+06"):
            ql.RequestType(prompt=1, decode=2, arrivals=law)
    assert ql.RequestType(prompt=1, decode=2, arrivals=ql.Binomial(2**53, 1e-12)).arrivals.n == 2**53


def test_unknown_check_option_lists_the_known_ones() -> None:
    m = ql.default_model()
    with pytest.raises(ql.ModelError, match="theorem 'fixed-point' check .*: unknown option 'levle'; known options: "):
        ql.theorems["fixed-point"].check(m, None, levle=0.9)


def test_binomial_pmf_overflow_is_a_law_error() -> None:
    law = ql.Binomial(2**53, 1e-300)
    with pytest.raises(ql.LawError, match=r"the pmf overflows in floating point at n = 9007199254740992"):
        law.pmf(1)
    assert ql.Binomial(10, 0.5).pmf(5) == pytest.approx(252 / 1024)
