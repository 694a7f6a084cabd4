"""Family C theory (queueing_llm.theory.capacity): the references chapter, sections 2 and 3, symbolic pins,
independent hand algebra (hand-typed formulas live only here), edge cases and option validation."""

from fractions import Fraction
from math import ceil

import pytest
import sympy as sp

import queueing_llm as ql
from queueing_llm.theory import capacity as cap

l0, l1, M, lam, d0, d1 = sp.symbols("l0 l1 M lambda d0 d1", positive=True)


def wall_model(prompt, decode, rate, d0_, d1_, kv=sp.oo):
    return ql.ContinuousBatching(
        types=[ql.RequestType(prompt=prompt, decode=decode, arrivals=ql.PoissonProcess(rate))],
        kv_capacity=kv,
        iteration_time=ql.LinearIterationTime(d0_, d1_),
    )


def uniform(low, high):
    return ql.FinitePMF({v: sp.Rational(1, high - low + 1) for v in range(low, high + 1)})


# -- the references chapter, section 2: the worked fluid example ------------------------------------
@pytest.fixture(scope="module")
def worked():
    return wall_model(2, 3, 2, 1, 0.01, kv=50)


def test_worked_fluid_example_with_prefill_stage(worked):
    res = cap.fluid_benchmark(worked, prefill_stage=True)
    assert res.lifetimes == (14,)  # 2 + 3 + 4 + 5
    assert res.rho == sp.Rational(28, 100)
    assert res.delta_star == 1 / sp.Rational(72, 100)
    assert float(res.thresholds[0]) == pytest.approx(2.7778, abs=5e-5)
    assert float(res.memory_need) == pytest.approx(38.889, abs=5e-4)
    assert res.feasible is True
    assert res.capacity_bound == sp.Rational(100, 3)  # 50 / (1 + 0.01 * 50)


def test_worked_example_in_model_convention(worked):
    # w_j = l0 + 1 + j: W = 3 + 4 + 5 = 12, rho = 0.24, Delta* = 1/0.76
    res = cap.fluid_benchmark(worked, prefill_stage=False)
    assert res.lifetimes == (12,)
    assert res.rho == sp.Rational(24, 100)
    assert res.delta_star == 1 / sp.Rational(76, 100)
    assert res.memory_need == res.delta_star * 24


# -- fluid benchmark: symbolic pins and hand algebra ----------------------------------------
def test_fluid_symbolic_pins_with_prefill_stage():
    res = cap.fluid_benchmark(wall_model(l0, l1, lam, d0, d1, kv=M), prefill_stage=True)
    W = (l1 + 1) * (l0 + l1 / 2)  # hand: sum_{k=0}^{l1} (l0 + k)
    rho = d1 * lam * W
    assert sp.simplify(res.lifetimes[0] - W) == 0
    assert sp.simplify(res.rho - rho) == 0
    assert sp.simplify(res.delta_star - d0 / (1 - rho)) == 0
    assert sp.simplify(res.thresholds[0] - lam * d0 / (1 - rho)) == 0
    assert sp.simplify(res.memory_need - (d0 / d1) * rho / (1 - rho)) == 0
    assert sp.simplify(res.capacity_bound - M / (d0 + d1 * M)) == 0
    assert isinstance(res.feasible, sp.Le) and res.feasible.lhs == res.load  # a relation, not decided


def test_fluid_symbolic_pin_model_convention_two_types():
    la, lb = sp.symbols("lambda_a lambda_b", positive=True)
    m = ql.ContinuousBatching(
        types=[ql.RequestType(l0, 2, ql.PoissonProcess(la)), ql.RequestType(l0, 3, ql.PoissonProcess(lb))],
        iteration_time=ql.LinearIterationTime(d0, d1),
    )
    res = cap.fluid_benchmark(m)
    Wa, Wb = 2 * l0 + 3, 3 * l0 + 6  # hand: (l0+1)+(l0+2), (l0+1)+(l0+2)+(l0+3)
    rho = d1 * (la * Wa + lb * Wb)
    assert sp.simplify(res.delta_star - d0 / (1 - rho)) == 0
    assert sp.simplify(res.thresholds[1] - lb * d0 / (1 - rho)) == 0
    assert res.capacity_bound == 1 / d1  # M = oo: M/(d0 + d1 M) -> 1/d1


@pytest.mark.parametrize(
    "rate, d0_, d1_, kv",
    [(2, 1, 0.01, 50), (1, 2, 0.02, 30), (0.5, 1, 0.05, 12), (3, 1, 0.001, 200), (2, 1, 0, 40)],
)
def test_feasibility_matches_memory_need(rate, d0_, d1_, kv):
    # independent: fluid iteration by hand with Fractions, feasible iff M* <= M and rho < 1
    m = wall_model(2, 3, rate, d0_, d1_, kv=kv)
    res = cap.fluid_benchmark(m)
    S = Fraction(str(rate)) * 12
    rho = Fraction(str(d1_)) * S
    if rho < 1:
        need = Fraction(str(d0_)) / (1 - rho) * S
        assert res.memory_need == sp.Rational(need.numerator, need.denominator)
        assert res.feasible is (need <= kv)
    else:
        assert res.feasible is False
    assert res.feasible is bool(S <= Fraction(kv) / (Fraction(str(d0_)) + Fraction(str(d1_)) * kv))


def test_unstable_fluid_gives_infinite_delta_not_a_crash():
    res = cap.fluid_benchmark(wall_model(2, 3, 10, 1, 0.01))  # rho = 1.2
    assert res.rho == sp.Rational(6, 5)
    assert res.delta_star == sp.oo and res.memory_need == sp.oo and res.thresholds == (sp.oo,)
    assert res.feasible is False and "rho" in res.reason
    edge = cap.fluid_benchmark(wall_model(2, 3, sp.Rational(25, 3), 1, 0.01))  # rho = 1 exactly
    assert edge.rho == 1 and edge.delta_star == sp.oo


def test_fluid_without_memory_limit_and_without_slope():
    res = cap.fluid_benchmark(wall_model(2, 3, 2, 1, 0.01))
    assert res.capacity_bound == 100 and res.feasible is True
    flat = cap.fluid_benchmark(wall_model(2, 3, 2, sp.Rational(1, 2), 0, kv=40))
    assert flat.rho == 0 and flat.delta_star == sp.Rational(1, 2) and flat.memory_need == 12
    assert flat.capacity_bound == 80  # M / d0


def test_prefill_lifetime_with_random_lengths():
    t = ql.RequestType(ql.Poisson(3), ql.Geometric(sp.Rational(1, 5)))
    # hand: E[(l1+1) l0 + l1 (l1+1)/2] = E[l0](E[l1]+1) + (E[l1^2] + E[l1])/2 = 18 + (45 + 5)/2
    assert cap.lifetime_memory(t, prefill_stage=True) == 43
    assert cap.lifetime_memory(t, prefill_stage=False) == t.lifetime_memory == 40


def test_law_moments_from_pgf():
    a = sp.Symbol("a", positive=True)
    assert sp.expand(cap.law_moment(ql.Poisson(a), 3) - (a**3 + 3 * a**2 + a)) == 0
    # geometric q = 1/3 on {1, 2, ...}: E[X^3] = (q^2 - 6q + 6)/q^3 = 111
    assert cap.law_moment(ql.Geometric(sp.Rational(1, 3)), 3) == 111
    assert cap.law_moment(ql.Deterministic(4), 3) == 64 and cap.law_moment(ql.Poisson(2), 0) == 1


# -- memory Little's law ------------------------------------------------------------------
def test_memory_little_symbolic_pin():
    m = ql.ContinuousBatching(types=[ql.RequestType(l0, l1, lam)], kv_capacity=M)
    res = cap.memory_little(m)
    assert sp.simplify(res.mean_kv - lam * l1 * (l0 + (l1 + 1) / 2)) == 0
    assert res.throughput == lam and res.mean_iteration_time is None
    assert isinstance(res.necessary, sp.Le)


def test_memory_little_default_model_and_overload():
    res = cap.memory_little(ql.default_model())
    assert res.lifetime_memory == 1220 and res.mean_kv == 1464 and res.necessary is True  # 1.2 * 40 * 30.5
    over = ql.ContinuousBatching(types=[ql.RequestType(10, 40, 2)], kv_capacity=2000)
    assert cap.memory_little(over).necessary is False  # 2 * 1220 > 2000


def test_memory_little_mixed_types_weights_by_arrivals():
    m = ql.ContinuousBatching([ql.RequestType(50, 2, 1), ql.RequestType(50, 3, 3)], kv_capacity=1000)
    res = cap.memory_little(m)
    assert res.mean_kv == 1 * 103 + 3 * 156 and res.throughput == 4
    assert res.lifetime_memory == sp.Rational(103 + 3 * 156, 4)


def test_memory_little_wall_clock_is_the_fluid_memory_need():
    m = wall_model(l0, l1, lam, d0, d1, kv=M)
    res, fluid = cap.memory_little(m), cap.fluid_benchmark(m)
    assert sp.simplify(res.mean_kv - fluid.memory_need) == 0
    assert sp.simplify(res.mean_iteration_time - fluid.delta_star) == 0
    num = cap.memory_little(wall_model(2, 3, 2, 1, 0.01, kv=50))
    assert num.mean_kv == sp.Rational(600, 19) and num.throughput == sp.Rational(50, 19)
    unstable = cap.memory_little(wall_model(2, 3, 10, 1, 0.01))
    assert unstable.mean_kv == sp.oo and unstable.necessary is False and "diverges" in unstable.reason


def test_memory_little_needs_arrivals():
    with pytest.raises(ql.ModelError, match="arrivals=None"):
        cap.memory_little(ql.ContinuousBatching(types=[ql.RequestType(2, 3)], kv_capacity=24))


# -- [NSZ26] threshold: the references chapter, section 3 ----------------------------------------------
MEASURED = 3.387  # [NSZ26] measured GPU rate (req/s), 1:1 workload


@pytest.fixture(scope="module")
def nsz_setting():
    law = uniform(10, 1600)
    model = ql.ContinuousBatching(types=[ql.RequestType(prompt=law, decode=law)], kv_capacity=131000)
    return cap.nsz_threshold(model, chunk=512, batch_time=0.0372)


def test_nsz_paper_setting_pinned(nsz_setting):
    res = nsz_setting
    assert res.mean_g == sp.Rational(1717480749, 1591)
    assert res.mu == sp.Rational(521052500000, 159725709657)
    assert float(res.mu) == pytest.approx(3.262171, abs=1e-6)
    assert res.delta == sp.Rational(3200, 131000)
    assert float(res.stable_rate) == pytest.approx(3.262171 * (1 - 3200 / 131000), abs=1e-6)


def test_nsz_relation_to_the_measured_rate(nsz_setting):
    # The measured rate lies above mu (the model's "unstable if lambda > mu" is a bound of the
    # abstraction, not of the GPU) and within the ~10 % accuracy [NSZ26] reports.
    mu = float(nsz_setting.mu)
    assert mu < MEASURED
    assert (MEASURED - mu) / MEASURED < 0.10


def test_nsz_expected_g_by_brute_force(nsz_setting):
    # independent hand computation with Fractions: prefill holds min(i*512, s) after chunk i
    vals = range(10, 1601)
    n = len(vals)

    def prefill(s):
        return sum(min(i * 512, s) for i in range(1, ceil(s / 512) + 1))

    e_pre = Fraction(sum(prefill(s) for s in vals), n)
    e_s = Fraction(sum(vals), n)
    e_o2 = Fraction(sum(v * v for v in vals), n)
    e_g = e_pre + e_s * e_s + (e_o2 + e_s) / 2  # E[o s + o (o+1)/2], s and o independent
    assert nsz_setting.mean_g == sp.Rational(e_g.numerator, e_g.denominator)
    # the continuous reading m = s/shat (s^2/(2 shat) + s/2) would give another mu
    e_cont = Fraction(sum(Fraction(s * s, 1024) + Fraction(s, 2) for s in vals), n) + e_g - e_pre
    assert abs(float(131000 / (Fraction("0.0372") * e_cont)) - float(nsz_setting.mu)) > 5e-4


@pytest.mark.parametrize(
    "s, chunk, expected",
    [(0, 512, 0), (1, 512, 1), (512, 512, 512), (513, 512, 512 + 513), (1000, 512, 1512),
     (1024, 512, 512 + 1024), (1600, 512, 512 + 1024 + 1536 + 1600), (7, 1, 28), (5, sp.oo, 5), (5, None, 0)],
)
def test_prefill_memory_reading(s, chunk, expected):
    assert cap.prefill_memory(s, chunk) == expected


def test_nsz_g_symbolic():
    s, o, shat, q = sp.symbols("s o shat q", positive=True, integer=True)
    # divisible case: shat (1 + ... + q) + o s + o (o+1)/2 with s = q shat
    g = cap.nsz_g(q * shat, o, shat)
    assert sp.simplify(g - (shat * q * (q + 1) / 2 + o * q * shat + o * (o + 1) / 2)) == 0
    assert sp.simplify(cap.decode_memory(s, o) - ql.RequestType(s, o).lifetime_memory) == 0


def test_nsz_symbolic_statement_pins():
    b, shat = sp.symbols("b shat", positive=True)
    m = ql.ContinuousBatching(types=[ql.RequestType(l0, l1)], kv_capacity=M)
    res = cap.nsz_threshold(m)
    assert sp.simplify(res.mu - 2 * M / (l1 * (2 * l0 + l1 + 1))) == 0  # = x*, the memory Little bound
    assert sp.simplify(res.delta - (l0 + l1) / M) == 0
    chunked = cap.nsz_threshold(m, chunk=shat, batch_time=b)
    c = sp.ceiling(l0 / shat)
    hand = l1 * l0 + l1 * (l1 + 1) / 2 + shat * c * (c - 1) / 2 + l0
    assert sp.simplify(chunked.mean_g - hand) == 0
    assert sp.simplify(chunked.mu - M / (b * hand)) == 0


def test_nsz_unchunked_and_mixture():
    m = ql.ContinuousBatching([ql.RequestType(4, 2), ql.RequestType(10, 3)], kv_capacity=100, mix=[0.25, 0.75])
    res = cap.nsz_threshold(m, chunk=sp.oo, batch_time=2)
    # hand: g = s + C; C = 2*4 + 3 = 11 and 3*10 + 6 = 36
    e_g = sp.Rational(1, 4) * (4 + 11) + sp.Rational(3, 4) * (10 + 36)
    assert res.mean_g == e_g and res.mu == 100 / (2 * e_g) and res.delta == sp.Rational(13, 100)


# -- option validation ------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [0, -3, 1.5, "512"])
def test_bad_chunk_is_a_model_error_naming_it(chunk):
    m = ql.ContinuousBatching(types=[ql.RequestType(2, 3)], kv_capacity=24)
    with pytest.raises(ql.ModelError, match="chunk"):
        cap.nsz_threshold(m, chunk=chunk)


@pytest.mark.parametrize("batch_time", [0, -1, -0.5, float("nan"), None])
def test_bad_batch_time_is_a_model_error_naming_it(batch_time):
    m = ql.ContinuousBatching(types=[ql.RequestType(2, 3)], kv_capacity=24)
    with pytest.raises(ql.ModelError, match="batch_time"):
        cap.nsz_threshold(m, batch_time=batch_time)


def test_other_bad_inputs():
    with pytest.raises(ql.ModelError, match="prefill_stage"):
        cap.fluid_benchmark(wall_model(2, 3, 2, 1, 0.01), prefill_stage="yes")
    with pytest.raises(ql.ModelError, match="PoissonProcess"):
        cap.fluid_benchmark(ql.ContinuousBatching(types=[ql.RequestType(2, 3, 1.0)],
                                                  iteration_time=ql.LinearIterationTime(1, 0.01)))
    with pytest.raises(ql.ModelError, match="iteration_time"):
        cap.fluid_benchmark(ql.ContinuousBatching(types=[ql.RequestType(2, 3, 1.0)]))
    with pytest.raises(ql.ModelError, match="finite kv_capacity"):
        cap.nsz_threshold(ql.ContinuousBatching(types=[ql.RequestType(2, 3)]))
    with pytest.raises(ql.ModelError, match="finite support"):
        cap.expected_g(ql.RequestType(ql.Poisson(3), 2), chunk=2)
