"""Family A theory (queueing_llm.theory.dynamics): derivations against hand algebra, the
[ADLS26] examples of the references chapter, section 1, exact iteration of the relaxed map, cycle
detection, errors, and the proof scripts of the family."""

from __future__ import annotations

import math
import runpy
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import queueing_llm as ql
from queueing_llm.theory import dynamics as dyn

ROOT = Path(__file__).resolve().parents[1]
R = sp.Rational
l0, l1, M = sp.symbols("l0 l1 M", positive=True)
lam = dyn.LAMBDA


def single(prompt, decode, capacity, **kw):
    return ql.ContinuousBatching(types=[ql.RequestType(prompt=prompt, decode=decode)], kv_capacity=capacity, **kw)


HALF = R(1, 2)


def pair(decodes, prompt=50, capacity=10**6, p=HALF):
    return ql.ContinuousBatching(
        types=[ql.RequestType(prompt=prompt, decode=v) for v in decodes], kv_capacity=capacity, mix=(p, 1 - p)
    )


def w(j, prompt=l0):
    """Hand-typed stage memory of the model chapter, section 1."""
    return prompt + 1 + j


SYM = single(l0, l1, M)
EX2 = single(2, 3, 24)


# -- fixed point ---------------------------------------------------------------------------
def test_fixed_point_symbolic_pin_and_hand_algebra():
    xs = dyn.fixed_point(SYM)
    assert xs == 2 * M / (l1 * (2 * l0 + l1 + 1))  # structural pin of the derived expression
    hand_sum = l1 * (l0 + 1) + l1 * (l1 - 1) / 2  # sum_{j<l1} (l0 + 1 + j) by hand
    assert sp.simplify(xs - M / hand_sum) == 0


def test_fixed_point_multi_type_symbolic():
    p = sp.Symbol("p", positive=True)
    a0, b0, a1, b1 = sp.symbols("a0 b0 a1 b1", positive=True)
    m = ql.ContinuousBatching(
        types=[ql.RequestType(prompt=a0, decode=a1), ql.RequestType(prompt=b0, decode=b1)], kv_capacity=M,
        mix=(p, 1 - p),
    )
    C = [a1 * (a0 + (a1 + 1) / 2), b1 * (b0 + (b1 + 1) / 2)]
    assert sp.simplify(dyn.fixed_point(m) - M / (p * C[0] + (1 - p) * C[1])) == 0


@pytest.mark.parametrize(
    ("model", "x_star"),
    [(EX2, 2), (single(10, 40, 2000), R(100, 61)), (pair((2, 3), capacity=518), 4), (pair((2, 4), capacity=626), 4)],
)
def test_fixed_point_reference_values(model, x_star):
    assert dyn.fixed_point(model) == x_star


def test_fixed_point_state_example_2_and_random_decode_through_moments():
    assert dyn.fixed_point_state(EX2) == ((2, 2, 2),)
    # a finite-support decode law is a mixture: stage j holds x* P(l1 > j)
    m = single(4, ql.FinitePMF({2: R(1, 2), 4: R(1, 2)}), 500)
    xs = dyn.fixed_point(m)
    assert xs == 500 / (R(1, 2) * 2 * (4 + R(3, 2)) + R(1, 2) * 4 * (4 + R(5, 2)))
    assert dyn.fixed_point_state(m) == ((xs, xs, xs / 2, xs / 2),)
    # a random prompt enters through its mean
    mp = single(ql.FinitePMF({2: R(1, 2), 6: R(1, 2)}), 3, 100)
    assert dyn.fixed_point(mp) == dyn.fixed_point(single(4, 3, 100))


# -- linearisation -------------------------------------------------------------------------
def test_survival_polynomial_and_companion_forms_one_type():
    m = single(l0, 3, M)
    assert sp.expand(dyn.survival_polynomial(m) - (w(0) * lam**2 + w(1) * lam + w(2))) == 0
    B = dyn.companion_matrix(m)
    assert list(B.row(0)) == [-w(1) / w(0), -w(2) / w(0), 0]
    Bm = dyn.companion_matrix(m, "memory")
    alpha, beta = -1 / (l0 + 1), (l0 + 3) / (l0 + 1)  # the model chapter, A.2 with l1 = 3
    assert [sp.simplify(v - e) for v, e in zip(Bm.row(0), [alpha, alpha, beta], strict=True)] == [0, 0, 0]
    with pytest.raises(ql.ParameterError, match="form"):
        dyn.companion_matrix(m, "other")


@pytest.mark.parametrize("decode", [2, 3, 5, 7])
def test_characteristic_polynomials_factor_through_F(decode):
    m = single(l0, decode, M)
    F = dyn.survival_polynomial(m)
    assert sp.simplify(dyn.characteristic_polynomial(m, "admission") - lam * F / w(0)) == 0
    assert sp.simplify(dyn.characteristic_polynomial(m, "memory") - (lam - 1) * F / w(0)) == 0
    # the symbolic-l1 survival sum agrees with the numeric one
    assert sp.simplify(dyn.survival_polynomial(SYM).subs(l1, decode).doit() - F) == 0


def test_characteristic_polynomial_multi_type():
    m = pair((2, 5), prompt=l0, capacity=M, p=R(1, 3))
    F = dyn.survival_polynomial(m)
    S0 = R(1, 3) * w(0) + R(2, 3) * w(0)
    assert sp.simplify(dyn.characteristic_polynomial(m) - lam * F / S0) == 0
    hand = [w(0), w(1), R(2, 3) * w(2), R(2, 3) * w(3), R(2, 3) * w(4)]  # S_m = sum_{k: l1_k > m} p_k w_m
    assert sp.expand(F - sum(c * lam ** (4 - i) for i, c in enumerate(hand))) == 0


def test_enestrom_kakeya_homogeneous_instability():
    low, high = dyn.enestrom_kakeya_bounds(SYM)
    assert sp.simplify(low - (l0 + l1) / (l0 + l1 - 1)) == 0
    assert sp.simplify(high - (l0 + 2) / (l0 + 1)) == 0
    assert dyn.is_stable(SYM) is False
    for prompt in (0, 3, 40):
        for decode in (2, 3, 6, 11):
            m = single(prompt, decode, 10**5)
            roots = np.abs(dyn.survival_roots(m))
            lo, hi = dyn.enestrom_kakeya_bounds(m)
            assert np.all(roots >= float(lo) - 1e-9) and np.all(roots <= float(hi) + 1e-9)
            assert np.all(roots > 1) and dyn.is_stable(m) is False
    assert dyn.is_stable(single(5, 1, 100)) is True  # l1 = 1: constant map, no root
    assert dyn.spectral_radius(single(5, 1, 100)) == 0.0


def test_spectral_radius_example_3_and_symbolic():
    assert dyn.spectral_radius(EX2) == pytest.approx(math.sqrt(5 / 3), rel=1e-12)
    assert np.allclose(np.abs(dyn.survival_roots(EX2)), math.sqrt(5 / 3))
    assert sp.simplify(dyn.spectral_radius(single(l0, 2, M)) - (l0 + 2) / (l0 + 1)) == 0
    assert sp.simplify(dyn.spectral_radius(single(l0, 3, M)) ** 2 - (l0 + 3) / (l0 + 1)) == 0
    with pytest.raises(ql.SymbolicValueError):
        dyn.spectral_radius(SYM)


def test_schur_cohn_agrees_with_numpy_roots():
    rng = np.random.default_rng(7)
    for _ in range(200):
        coeffs = [Fraction(int(c), int(d)) for c, d in zip(rng.integers(-9, 10, 5), rng.integers(1, 6, 5), strict=True)]
        if coeffs[0] == 0:
            continue
        rho = np.max(np.abs(np.roots([float(c) for c in coeffs])))
        if abs(rho - 1) > 1e-6:
            assert dyn.schur_cohn_stable(coeffs) == (rho < 1)
    assert dyn.schur_cohn_stable([1, 0, R(1, 2)]) is True  # roots +-i/sqrt(2)
    assert dyn.schur_cohn_stable([1, 0, 1]) is False  # roots on the circle: not strictly inside
    with pytest.raises(ql.ParameterError):
        dyn.schur_cohn_stable([0, 0])


def test_l1_two_solution_and_first_eviction():
    sol = dyn.l1_two_solution(single(l0, 2, M))
    n, a0 = sol["n"], sp.Symbol("a_0")
    assert sol["factor"] == -(l0 + 2) / (l0 + 1) or sp.simplify(sol["factor"] + (l0 + 2) / (l0 + 1)) == 0
    assert sp.simplify(sol["x_star"] - M / (2 * l0 + 3)) == 0
    hand = M / (2 * l0 + 3) + (a0 - M / (2 * l0 + 3)) * (-(l0 + 2) / (l0 + 1)) ** n
    for k in range(4):
        assert sp.simplify((sol["a_n"] - hand).subs(n, k)) == 0
    worked = single(2, 2, 140)
    assert dyn.first_eviction_l1_two(worked, 21) == 11
    assert dyn.first_eviction_l1_two(worked, 20) == math.inf
    for a in (R(41, 2), 19, R(37, 2), 25, 30, 34):  # closed form == exact iteration of the relaxed map
        run = dyn.relaxed_trajectory(worked, 60, [[a, (140 - 3 * a) / 4]])
        assert run.first_eviction == dyn.first_eviction_l1_two(worked, a)
    with pytest.raises(ql.ParameterError, match="l1 = 2"):
        dyn.l1_two_solution(EX2)


# -- the relaxed map: the references chapter, section 1 ----------------------------------------------
def test_example_3_exact_first_eviction_and_worst_cycle():
    run = dyn.relaxed_trajectory(EX2, 30, [[R(5, 2), 2, R(17, 10)]])
    assert run.first_eviction == 7
    assert run.state(7) == ((0, R(778, 243), R(544, 243)),)
    assert all(isinstance(v, sp.Rational) for v in run.batch[7, 0])
    assert run.evictions[:7].sum() == 0
    cycle = dyn.detect_cycle(run)
    assert cycle.period == 3 and cycle.throughput == R(8, 5)
    assert 16 <= cycle.start <= 17  # "the worst cycle is reached around n = 16-17"
    assert {run.state(n)[0] for n in (17, 18, 19)} == {(8, 0, 0), (0, 6, 0), (0, 0, R(24, 5))}


def test_example_2_cycles_by_exact_iteration():
    fixed = dyn.relaxed_trajectory(EX2, 10, [[2, 2, 2]])
    assert dyn.detect_cycle(fixed).period == 1 and dyn.detect_cycle(fixed).throughput == 2
    level1 = dyn.relaxed_trajectory(EX2, 12, [[R(72, 13), R(24, 13), 0]])
    cycle = dyn.detect_cycle(level1)
    assert (cycle.period, cycle.throughput, cycle.start) == (3, R(24, 13), 0)
    assert float(cycle.throughput) == pytest.approx(1.85, abs=0.005)
    worst = dyn.relaxed_trajectory(EX2, 12, [[8, 0, 0]])
    assert [worst.state(n)[0] for n in range(3)] == [(8, 0, 0), (0, 6, 0), (0, 0, R(24, 5))]
    assert dyn.detect_cycle(worst).throughput == R(8, 5) == R(4, 5) * dyn.fixed_point(EX2)


def test_worked_trajectory_relaxed_deviation_factor():
    # the relaxed l1 = 2 admissions multiply deviations from x* = 20 by -4/3 every iteration
    run = dyn.relaxed_trajectory(single(2, 2, 140), 8, [[21, R(139 - 63, 4)]])
    dev = [run.batch[n, 0, 0] - 20 for n in range(8)]
    assert all(dev[n + 1] == -R(4, 3) * dev[n] for n in range(7))


def test_worked_trajectory_simulated():
    m = single(2, 2, 140)
    run = ql.simulate(m, 20, saturated=True, initial_batch=[21, 19], engine="fast")
    expected = [(18, 21), (22, 18), (17, 22), (24, 17), (14, 24), (28, 14), (9, 28), (34, 9), (1, 34), (45, 1),
                (0, 35), (46, 0), (0, 35), (46, 0)]
    assert [tuple(r) for r in run.batch[1:15, 0].tolist()] == expected
    first = int(np.nonzero(run.evictions[:, 0])[0][0])
    assert first == 11 == dyn.first_eviction_l1_two(m, 21)
    cycle = dyn.detect_cycle(run)
    assert cycle.period == 2 and cycle.throughput == R(35, 2)
    assert {tuple(s[0]) for s in cycle.states.tolist()} == {(46, 0), (0, 35)}
    # integer admissions: floor of the relaxed map a_{n+1} = (M - 4 a_n)/3
    adm = run.batch[:11, 0, 0]
    assert all(adm[n + 1] == (140 - 4 * adm[n]) // 3 for n in range(10))


def test_relaxed_rate_limited_map_never_evicts():
    m = single(10, 40, 2000, policy=ql.rate_limited())
    run = dyn.relaxed_trajectory(m, 120)
    assert run.evictions.sum() == 0
    assert all(run.memory[n] <= 2000 for n in range(120))
    assert run.state(39)[0] == tuple([R(100, 61)] * 40)
    assert dyn.detect_cycle(run).throughput == R(100, 61)
    greedy = dyn.relaxed_trajectory(single(10, 40, 2000), 200, exact=False)
    assert dyn.detect_cycle(greedy).throughput == pytest.approx(1.0)  # the worst cycle, 1.00


def test_relaxed_map_multi_type_and_float_mode():
    ex4 = pair((2, 3), capacity=518)
    state = [list(r) for r in dyn.fixed_point_state(ex4)]
    run = dyn.relaxed_trajectory(ex4, 5, state)
    assert all(run.state(n) == run.state(0) for n in range(5))
    assert run.completions[1].sum() == 4
    f = dyn.relaxed_trajectory(EX2, 30, [[2.5, 2, 1.7]], exact=False)
    assert f.batch.dtype == float and f.first_eviction == 7
    assert f.batch[7, 0] == pytest.approx([0, 778 / 243, 544 / 243])
    assert dyn.detect_cycle(f).throughput == pytest.approx(1.6)
    assert f.throughput(18) == pytest.approx(1.6)  # four whole periods


def test_relaxed_map_errors():
    with pytest.raises(ql.ParameterError, match="more than M"):
        dyn.relaxed_trajectory(EX2, 5, [[9, 0, 0]])
    with pytest.raises(ql.ParameterError, match="beyond decode length"):
        dyn.relaxed_trajectory(pair((2, 3), capacity=518), 5, [[1, 1, 1], [1, 1, 1]])
    with pytest.raises(ql.ParameterError, match="shape"):
        dyn.relaxed_trajectory(EX2, 5, [[1, 1, 1], [1, 1, 1]])
    with pytest.raises(ql.PolicyError, match="greedy and rate_limited"):
        dyn.relaxed_trajectory(single(2, 3, 24, policy="static"), 5)
    with pytest.raises(ql.ParameterError, match="numeric"):
        dyn.relaxed_trajectory(SYM, 5)
    with pytest.raises(ql.ParameterError, match="infinite"):
        dyn.fixed_point(single(2, 3, math.inf))
    with pytest.raises(ql.ModelError, match="unbounded support"):
        dyn.components(single(2, ql.Geometric(R(1, 3)), math.inf))


# -- cycle detection -----------------------------------------------------------------------
def test_detect_cycle_on_arrays():
    batch = np.array([[5], [1], [2], [3], [1], [2], [3], [1], [2], [3]])
    comp = np.array([0, 0, 0, 4, 0, 0, 4, 0, 0, 4])
    cycle = dyn.detect_cycle(batch=batch, completions=comp)
    assert (cycle.start, cycle.period, cycle.throughput) == (1, 3, R(4, 3))
    assert dyn.detect_cycle(batch=np.arange(10).reshape(10, 1), completions=np.zeros(10)) is None
    noisy = np.array([[1.0], [2.0], [1.0 + 1e-12], [2.0], [1.0], [2.0], [1.0]])
    assert dyn.detect_cycle(batch=noisy, completions=np.ones(7)).period == 2
    assert dyn.detect_cycle(batch=noisy, completions=np.ones(7), tol=1e-15) is None
    with pytest.raises(ql.ParameterError):
        dyn.detect_cycle(batch=batch)
    with pytest.raises(ql.ParameterError, match="rows"):
        dyn.detect_cycle(batch=batch, completions=comp[:5])


# -- cycles: closed forms against hand algebra ---------------------------------------------
def test_worst_cycle_closed_form():
    f = dyn.worst_cycle(SYM)
    assert f.throughput == M / (l1 * (l0 + l1))
    ratio = sp.simplify(f.throughput / dyn.fixed_point(SYM))
    assert sp.simplify(ratio - (2 * l0 + l1 + 1) / (2 * (l0 + l1))) == 0
    assert sp.limit(ratio, l1, sp.oo) == R(1, 2)
    assert dyn.worst_cycle(single(10, 40, 2000)).throughput == 1


def test_other_cycles_closed_forms_from_references():
    i = sp.Symbol("i", integer=True, nonnegative=True)
    d = sp.Symbol("d", positive=True)
    adjacent = dyn.adjacent_cycle(SYM).throughput
    assert sp.simplify(adjacent - M / (w(l1 - 1) ** 2 - w(0) * w(l1 - 2))) == 0
    opposite = dyn.opposite_cycle(SYM).throughput  # l1 = 2 d'
    assert sp.simplify(opposite - M / (l1 / 2 * (w(l1 / 2 - 1) + w(l1 - 1)))) == 0
    contiguous = dyn.contiguous_cycle(SYM, i).throughput
    block = (l1 - 1 - i) * (l0 + 1) + (i + 1 + l1 - 1) * (l1 - 1 - i) / 2  # sum_{j=i+1}^{l1-1} w_j by hand
    assert sp.simplify(contiguous - M / ((i + 1) * w(i) + block)) == 0
    balanced = dyn.balanced_cycle(SYM, d).throughput
    k = l1 / d
    assert sp.simplify(balanced - M / (d * (k * l0 + d * k * (k + 1) / 2))) == 0  # sum_q (l0 + q d) by hand
    assert sp.simplify(contiguous.subs(i, l1 - 2) - adjacent) == 0
    assert sp.simplify(balanced.subs(d, l1 / 2) - opposite) == 0
    assert sp.simplify(balanced.subs(d, 1) - dyn.fixed_point(SYM)) == 0


@pytest.mark.parametrize(("prompt", "decode", "capacity"), [(2, 3, 24), (0, 4, 50), (5, 6, 400), (3, 12, 900)])
def test_cycle_states_are_periodic_with_their_throughput(prompt, decode, capacity):
    m = single(prompt, decode, capacity)
    th = dyn.cycle_throughputs(m)
    kinds = [("worst", None), ("adjacent", None)] + ([("opposite", None)] if decode % 2 == 0 else [])
    kinds += [("contiguous", i) for i in range(decode)] + [("balanced", q) for q in sp.divisors(decode)]
    for kind, par in kinds:
        run = dyn.relaxed_trajectory(m, 3 * decode + 4, [dyn.cycle_state(m, kind, par)])
        cycle = dyn.detect_cycle(run, include_queue=False)
        expected = th[kind] if par is None else th[kind][par]
        assert cycle is not None and cycle.start == 0, (kind, par)
        assert cycle.throughput == expected, (kind, par)
        assert dyn.worst_cycle(m).throughput <= expected <= dyn.fixed_point(m)


def test_cycle_errors():
    with pytest.raises(ql.ParameterError, match="even"):
        dyn.opposite_cycle(EX2)
    with pytest.raises(ql.ParameterError, match="divide"):
        dyn.balanced_cycle(EX2, 2)
    with pytest.raises(ql.ParameterError, match=r"\[0, 2\]"):
        dyn.contiguous_cycle(EX2, 3)
    with pytest.raises(ql.ModelError, match="one request type"):
        dyn.worst_cycle(pair((2, 3), capacity=518))
    with pytest.raises(ql.ParameterError, match="kind"):
        dyn.cycle_state(EX2, "spiral")
    assert dyn.cycle_throughputs(EX2)["opposite"] is sp.nan


# -- large prompts and the gcd criterion ---------------------------------------------------
def test_limiting_polynomial_examples_4_and_5():
    ex4, ex5 = pair((2, 3), capacity=518), pair((2, 4), capacity=626)
    assert sp.expand(dyn.limiting_polynomial(ex4) - (lam**2 + lam + R(1, 2))) == 0
    roots = np.roots([1, 1, 0.5])
    assert np.allclose(np.abs(roots), 1 / math.sqrt(2))
    assert dyn.limiting_radius(ex4) == pytest.approx(1 / math.sqrt(2))
    assert dyn.spectral_radius(ex4) == pytest.approx(0.72, abs=0.005)
    assert dyn.is_stable(ex4) and dyn.decode_gcd(ex4) == 1
    A5 = dyn.limiting_polynomial(ex5)
    assert A5.subs(lam, -1) == 0 and dyn.unit_circle_roots(ex5) == [-1]
    assert dyn.limiting_radius(ex5) == 1 and dyn.decode_gcd(ex5) == 2
    assert not dyn.is_stable(ex5) and dyn.spectral_radius(ex5) > 1
    assert dyn.l0_min(ex5) == sp.oo


def test_limiting_closed_form_against_hand_formula():
    p = sp.Symbol("p", positive=True)
    for decodes in ((2, 3), (3, 5), (2, 6)):
        m = pair(decodes, prompt=l0, capacity=M, p=p)
        L = max(decodes)
        hand = -lam**L + p * lam ** (L - decodes[0]) + (1 - p) * lam ** (L - decodes[1])  # R = 1
        assert sp.expand(dyn.limiting_closed_form(m) - hand) == 0
        assert sp.expand((1 - lam) * dyn.limiting_polynomial(m) - hand) == 0
        F, rhs = dyn.radial_identity(m)
        assert sp.expand(F - rhs) == 0
    # distinct prompts: r_k are the prompts
    m = ql.ContinuousBatching(types=[ql.RequestType(prompt=10, decode=2), ql.RequestType(prompt=30, decode=3)],
                              kv_capacity=10**4)
    hand = -(5 + 15) * lam**3 + 5 * lam + 15
    assert sp.expand(dyn.limiting_closed_form(m) - hand) == 0


def test_gcd_roots_of_unity():
    m = ql.ContinuousBatching(types=[ql.RequestType(prompt=9, decode=v) for v in (6, 9, 12)], kv_capacity=10**4)
    assert dyn.decode_gcd(m) == 3
    A = dyn.limiting_polynomial(m)
    for root in dyn.unit_circle_roots(m):
        assert abs(complex(A.subs(lam, root).evalf())) < 1e-12
    assert sp.rem(A, sp.cyclotomic_poly(3, lam), lam) == 0


def test_gcd_above_one_is_unstable_for_every_prompt():
    for decodes in ((2, 4), (3, 6), (4, 6)):
        m = pair(decodes)
        assert not any(dyn.stable_at(m, x) for x in [0, 1, 5, 20, 100, 400, 2000])


def test_l0_min_for_the_pair_2_7():
    m = pair((2, 7))
    lmin = dyn.l0_min(m)
    assert lmin == 18  # measured: exact Schur-Cohn search
    assert dyn.stable_at(m, lmin) and not dyn.stable_at(m, lmin - 1)
    assert dyn.spectral_radius_at(m, lmin) < 1 < dyn.spectral_radius_at(m, lmin - 1)
    assert lmin > 15  # the published first-order value
    assert dyn.first_order_l0(m) == 14 < lmin
    assert dyn.limiting_radius(m) == pytest.approx(0.95325, abs=1e-5)
    for x in range(lmin, lmin + 60, 7):
        assert dyn.stable_at(m, x)


def test_l0_min_bisection_branch_agrees_with_scan():
    m = pair((3, 5), p=R(1, 3))
    assert dyn.l0_min(m) == dyn.l0_min(m, scan=2)


@pytest.mark.slow
def test_cubic_asymptotic_derivation_and_numbers():
    p, beta, N = sp.symbols("p beta N", positive=True)
    cub = dyn.cubic_asymptotic()
    D = (1 - p) + p * beta
    assert sp.simplify(cub["gap"] - 2 * sp.pi**2 * p * (1 - p) / (D**3 * N**3)) == 0
    assert sp.simplify(cub["t1"] - sp.I * p / D) == 0
    assert float(dyn.asymptotic_gap(pair((2, 7)))) == pytest.approx(0.05415, abs=1e-5)
    for decodes, q in (((20, 61), R(3, 10)), ((40, 121), R(1, 2))):
        m = pair(decodes, p=q)
        gap = 1 - dyn.limiting_radius(m)
        assert gap == pytest.approx(float(dyn.asymptotic_gap(m)), rel=0.01)


def test_rate_limited_throughput_theory():
    r = dyn.rate_limited_throughput(SYM)
    assert r["throughput"] == dyn.fixed_point(SYM)
    assert sp.simplify(r["memory"] - M) == 0
    assert sp.simplify(r["free_after_execution"] - r["x_star"] * w(0)) == 0
    assert dyn.rate_limited_throughput(EX2, 1)["throughput"] == 1
    with pytest.raises(ql.ParameterError, match="exceeds"):
        dyn.rate_limited_throughput(EX2, 3)


# -- proof scripts -------------------------------------------------------------------------
PROOFS = ["fixed_point", "linear_map", "worst_cycle", "cycles", "gcd_criterion", "rate_limited"]


@pytest.mark.parametrize("name", PROOFS)
def test_proof_script_writes_its_tex(name, tmp_path):
    script = runpy.run_path(str(ROOT / "proofs" / f"{name}.py"), run_name="proof")
    path = script["main"](["proofs", str(tmp_path)])
    assert path == tmp_path / f"{name}.tex" and path.exists()
    text = path.read_text(encoding="utf-8")
    assert "\\paragraph{Step 1.}" in text and "\\begin{align*}" in text
