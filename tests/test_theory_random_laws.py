"""Laws given with float probabilities are exact in theory: the same answers as rationals."""

import sympy as sp

import queueing_llm as ql

HALF = sp.Rational(1, 2)


def model(prob):
    return ql.ContinuousBatching(
        ql.RequestType(ql.FinitePMF({2: prob, 6: prob}), ql.FinitePMF({2: prob, 3: prob}), 1.0), kv_capacity=100
    )


def test_float_and_rational_probabilities_give_identical_theory():
    float_model, exact_model = model(0.5), model(HALF)
    for name in ("fixed-point", "linear-map", "gcd-criterion", "memory-little", "nsz-threshold"):
        theorem = ql.theorems[name]
        assert theorem.applies(float_model) is None, name
        assert theorem.evaluate(float_model) == theorem.evaluate(exact_model), name


def test_every_applicable_theorem_evaluates_a_random_length_model():
    m = model(0.5)
    evaluated = [name for name, t in ql.theorems.items() if t.applies(m) is None and t.evaluate(m)]
    assert {"fixed-point", "linear-map", "gcd-criterion"} <= set(evaluated)
