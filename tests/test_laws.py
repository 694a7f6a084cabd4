"""Laws: symbolic face against independent hand formulas, numeric face against the PGF."""

import math
import pickle

import numpy as np
import pytest
import sympy as sp

import queueing_llm as ql

z = sp.Symbol("z")
NUMERIC_LAWS = [
    ql.Poisson(1.5),
    ql.Bernoulli(0.3),
    ql.Binomial(4, 0.25),
    ql.Deterministic(3),
    ql.Geometric(0.4),
    ql.FinitePMF({1: 0.2, 3: 0.5, 7: 0.3}),
    ql.Empirical([3, 5, 5, 8]),
]


@pytest.mark.parametrize("law", NUMERIC_LAWS, ids=repr)
def test_pmf_sums_to_one_and_matches_pgf_coefficients(law):
    n = 60
    pmf = law.pmf_array(n)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    series = sp.series(law.pgf(z), z, 0, 8).removeO()
    for k in range(8):
        assert float(series.coeff(z, k)) == pytest.approx(pmf[k], abs=1e-12)


@pytest.mark.parametrize("law", NUMERIC_LAWS, ids=repr)
def test_mean_and_variance_match_pmf(law):
    k = np.arange(400)
    pmf = law.pmf_array(400)
    mean = float((k * pmf).sum())
    assert law.mean_value() == pytest.approx(mean, rel=1e-9)
    assert law.variance_value() == pytest.approx(float((k**2 * pmf).sum()) - mean**2, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("law", NUMERIC_LAWS, ids=repr)
def test_sampling_is_reproducible_and_unbiased(law):
    a = law.sample(np.random.default_rng(7), 20000)
    b = law.sample(np.random.default_rng(7), 20000)
    assert np.array_equal(a, b)
    se = math.sqrt(max(law.variance_value(), 1e-12) / a.size)
    assert abs(a.mean() - law.mean_value()) < 4.5 * se + 1e-12
    assert a.min() >= law.support_min and a.max() <= law.support_max


def test_symbolic_parameters_flow_through():
    q, lam, p = sp.symbols("q lambda p", positive=True)
    assert sp.simplify(ql.Geometric(q).mean - 1 / q) == 0
    assert sp.simplify(ql.Geometric(q).variance - (1 - q) / q**2) == 0
    assert sp.simplify(ql.Poisson(lam).pgf(z) - sp.exp(lam * (z - 1))) == 0
    assert sp.simplify(ql.Binomial(3, p).variance - 3 * p * (1 - p)) == 0
    assert ql.Geometric(q).is_symbolic and not ql.Geometric(0.5).is_symbolic
    with pytest.raises(ql.LawError, match="symbolic"):
        ql.Geometric(q).sample(np.random.default_rng(0), 3)


def test_floats_become_exact_rationals():
    assert ql.Poisson(0.3).mean == sp.Rational(3, 10)
    assert ql.Empirical([3, 5, 5, 8]).mean == sp.Rational(21, 4)


def test_laws_are_immutable_comparable_picklable():
    law = ql.FinitePMF({2: 0.5, 4: 0.5})
    assert pickle.loads(pickle.dumps(law)) == law
    assert ql.Geometric(0.2) == ql.Geometric(0.2) and ql.Geometric(0.2) != ql.Geometric(0.3)
    with pytest.raises(AttributeError):
        law.probabilities = ()
    assert "Geometric(q=0.2)" in repr(ql.Geometric(0.2))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ql.Poisson(-1), r"Poisson mean must be a number in \[0, inf\), got -1"),
        (lambda: ql.Bernoulli(1.5), r"Bernoulli p must be a number in \[0, 1\], got 1.5"),
        (lambda: ql.Binomial(-2, 0.5), r"Binomial n must be an integer in \[0, inf\), got -2"),
        (lambda: ql.Binomial(2.5, 0.5), r"Binomial n must be an integer"),
        (lambda: ql.Geometric(0), r"Geometric q must be a number in \(0, 1\], got 0"),
        (lambda: ql.Geometric(1.2), r"Geometric q must be a number in \(0, 1\], got 1.2"),
        (lambda: ql.Deterministic(-3), r"Deterministic value must be an integer in \[0, inf\), got -3"),
        (lambda: ql.FinitePMF({1: 0.3}), r"probabilities must sum to 1, got 0.3"),
        (lambda: ql.FinitePMF({-1: 1.0}), r"FinitePMF value must be an integer in \[0, inf\), got -1"),
        (lambda: ql.FinitePMF({}), r"at least one value"),
        (lambda: ql.Empirical([]), r"at least one observation"),
        (lambda: ql.Empirical([1, -2]), r"integers >= 0"),
        (lambda: ql.Poisson(float("nan")), r"Poisson mean must be a number in \[0, inf\), got nan"),
        (lambda: ql.Poisson("a lot"), r"Poisson mean must be a number"),
    ],
)
def test_validation_messages_name_parameter_value_and_range(make, message):
    with pytest.raises(ql.LawError, match=message):
        make()


def test_sampling_requires_a_generator():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        ql.Poisson(1.0).sample(42, 3)


def test_law_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        ql.Law()
