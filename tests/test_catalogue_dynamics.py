"""Registry entries of family A (catalogue/dynamics.py): names, evaluate keys, symbolic
statement pins, options, laws through their moments, applicability, and checks against
their declared runs and against given runs (does-not-apply cases included). Power against
perturbed predictions: tests/test_power_dynamics.py."""

from __future__ import annotations

import math

import pytest
import sympy as sp

import queueing_llm as ql
from queueing_llm.theory import dynamics as dyn

R = sp.Rational
HALF = R(1, 2)
l0, l1, M = sp.symbols("l0 l1 M", positive=True)
lam = dyn.LAMBDA
T = ql.theorems

KEYS = {
    "fixed-point": {"x_star"},
    "linear-map": {"spectral_radius", "stable"},
    "worst-cycle": {"throughput", "ratio", "integer_throughput"},
    "cycles": {"adjacent", "opposite", "contiguous", "balanced", "integer"},
    "gcd-criterion": {"gcd", "limiting_radius", "spectral_radius", "stable", "l0_min"},
    "rate-limited": {"throughput"},
}


def single(prompt, decode, capacity, **kw):
    return ql.ContinuousBatching(types=[ql.RequestType(prompt=prompt, decode=decode)], kv_capacity=capacity, **kw)


def pair(decodes, prompt=50, capacity=10**6, p=HALF):
    return ql.ContinuousBatching(
        types=[ql.RequestType(prompt=prompt, decode=v) for v in decodes], kv_capacity=capacity, mix=(p, 1 - p)
    )


SYM = single(l0, l1, M)
EX2 = single(2, 3, 24)
EX4 = pair((2, 3), capacity=518)
EX5 = pair((2, 4), capacity=626)
RATE = single(10, 40, 2000)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_registered_with_exact_keys(name):
    thm = T[name]
    assert thm.name == name and thm.source.startswith("[ADLS26]") and thm.hypotheses
    model = EX4 if name == "gcd-criterion" else EX2
    assert set(thm.evaluate(model)) == KEYS[name]
    assert isinstance(thm.latex(model), str) and thm.latex(model)


def test_symbolic_statement_pins():
    assert T["fixed-point"].statement(SYM) == sp.Eq(sp.Symbol("x_star"), 2 * M / (l1 * (2 * l0 + l1 + 1)))
    assert T["fixed-point"].latex(SYM) == r"x^{*} = \frac{2 M}{l_{1} \left(2 l_{0} + l_{1} + 1\right)}"
    m = sp.Symbol("m", integer=True, nonnegative=True)
    F = sp.Sum(lam ** (l1 - 1 - m) * (l0 + 1 + m), (m, 0, l1 - 1))
    assert T["linear-map"].statement(SYM) == sp.Eq(sp.Function("F")(lam), F)
    xw, xs = sp.Symbol("x_worst"), sp.Symbol("x_star")
    assert T["worst-cycle"].statement(SYM) == sp.And(
        sp.Eq(xw, M / (l1 * (l0 + l1))), sp.Eq(xw / xs, sp.factor((2 * l0 + l1 + 1) / (2 * (l0 + l1))))
    )
    i, d = sp.Symbol("i", integer=True, nonnegative=True), sp.Symbol("d", integer=True, positive=True)
    assert T["cycles"].statement(SYM) == sp.And(
        sp.Eq(sp.Symbol("x_adjacent"), M / (l0 * l1 + l1**2 - l1 + 1)),
        sp.Eq(sp.Symbol("x_opposite"), 4 * M / (l1 * (4 * l0 + 3 * l1))),
        sp.Eq(sp.Symbol("c_i"), 2 * M / (i**2 + i + 2 * l0 * l1 + l1**2 + l1)),
        sp.Eq(sp.Symbol("x_balanced_d"), 2 * M / (l1 * (d + 2 * l0 + l1))),
    )
    assert T["rate-limited"].statement(SYM) == sp.And(
        sp.Eq(sp.Symbol("throughput"), 2 * M / (l1 * (2 * l0 + l1 + 1))), sp.Eq(sp.Symbol("evictions"), 0)
    )
    p = sp.Symbol("p", positive=True)
    two = pair((2, 3), prompt=l0, capacity=M, p=p)
    assert T["gcd-criterion"].statement(two) == sp.Eq(
        (1 - lam) * sp.Function("A")(lam), -(lam**3) + p * lam + 1 - p
    )
    assert T["fixed-point"].statement(two) == sp.Eq(sp.Symbol("x_star"), M / (l0 * (3 - p) - 3 * p + 6))


def test_symbolic_evaluate():
    assert T["worst-cycle"].evaluate(SYM) == {
        "throughput": M / (l1 * (l0 + l1)),
        "ratio": sp.factor((2 * l0 + l1 + 1) / (2 * (l0 + l1))),
        "integer_throughput": sp.nan,  # the integer map needs numbers
    }
    three = single(l0, 3, M)
    ev = T["linear-map"].evaluate(three)
    assert ev["stable"] is False
    assert sp.simplify(ev["spectral_radius"] ** 2 - (l0 + 3) / (l0 + 1)) == 0
    cyc = T["cycles"].evaluate(SYM, block=0, spacing=l1)
    assert sp.simplify(cyc["contiguous"] - 2 * M / (l1 * (2 * l0 + l1 + 1))) == 0
    assert sp.simplify(cyc["balanced"] - M / (l1 * (l0 + l1))) == 0
    assert T["rate-limited"].evaluate(SYM, rate=sp.Symbol("x"))["throughput"] == sp.Symbol("x")


def test_reference_numbers():
    assert T["fixed-point"].evaluate(EX2) == {"x_star": 2}
    assert T["worst-cycle"].evaluate(EX2) == {"throughput": R(8, 5), "ratio": R(4, 5), "integer_throughput": R(5, 3)}
    cyc = T["cycles"].evaluate(EX2)
    assert cyc["adjacent"] == R(24, 13) and cyc["opposite"] is None  # odd l1: no opposite cycle
    assert cyc["contiguous"] == {0: 2, 1: R(24, 13), 2: R(8, 5)} and cyc["balanced"] == {1: 2, 3: R(8, 5)}
    assert T["cycles"].evaluate(EX2, block=1, spacing=3) == {
        "adjacent": R(24, 13), "opposite": None, "contiguous": R(24, 13), "balanced": R(8, 5),
        "integer": {"adjacent": R(5, 3), "contiguous": {1: R(5, 3)}, "balanced": {3: R(5, 3)}},
    }
    lin = T["linear-map"].evaluate(EX2)
    assert lin["spectral_radius"] == pytest.approx(math.sqrt(5 / 3)) and lin["stable"] is False
    g4 = T["gcd-criterion"].evaluate(EX4)
    assert g4["gcd"] == 1 and g4["stable"] is True and g4["l0_min"] == 2
    assert g4["limiting_radius"] == pytest.approx(1 / math.sqrt(2))
    assert g4["spectral_radius"] == pytest.approx(0.72, abs=0.005)
    g5 = T["gcd-criterion"].evaluate(EX5)
    assert g5 == {"gcd": 2, "limiting_radius": 1, "spectral_radius": pytest.approx(1.0194, abs=1e-4),
                  "stable": False, "l0_min": sp.oo}
    assert T["fixed-point"].evaluate(EX4) == T["fixed-point"].evaluate(EX5) == {"x_star": 4}
    assert T["gcd-criterion"].evaluate(pair((2, 7)))["l0_min"] == 18
    assert T["worst-cycle"].evaluate(RATE)["throughput"] == 1
    assert T["fixed-point"].evaluate(RATE) == {"x_star": R(100, 61)}
    # the opposite (= evenly spaced, d = 20) cycle of the default model (the report's Table 8 setting): 5/4,
    # also in the integer system from its floored state
    assert T["cycles"].evaluate(RATE)["opposite"] == R(5, 4) == T["cycles"].evaluate(RATE, spacing=20)["balanced"]
    assert dyn.integer_cycle_throughput(RATE, [int(sp.floor(v)) for v in dyn.cycle_state(RATE, "opposite")]) == R(5, 4)
    assert float(T["rate-limited"].evaluate(RATE)["throughput"]) == pytest.approx(1.64, abs=0.005)
    assert T["rate-limited"].evaluate(single(10, 40, 2000, policy=ql.rate_limited(1.5)))["throughput"] == R(3, 2)


def test_laws_through_their_moments():
    # a decode law with finite support is a mixture of decode lengths: same F as two types
    mixed = single(50, ql.FinitePMF({2: HALF, 3: HALF}), 518)
    assert T["gcd-criterion"].evaluate(mixed)["spectral_radius"] == pytest.approx(
        T["gcd-criterion"].evaluate(EX4)["spectral_radius"])
    assert T["fixed-point"].evaluate(mixed) == {"x_star": 4}
    assert T["gcd-criterion"].evaluate(single(50, ql.FinitePMF({2: HALF, 4: HALF}), 626))["gcd"] == 2
    # random prompts enter through their mean
    assert T["fixed-point"].evaluate(single(ql.FinitePMF({1: HALF, 3: HALF}), 3, 24)) == {"x_star": 2}
    # unbounded decode laws: x* through E[C] (memory Little's law), symbolic M
    q = R(1, 4)
    geo = single(2, ql.Geometric(q), M)
    EC = 2 * 4 + (ql.Geometric(q).second_moment + 4) / 2  # E[l0] E[l1] + (E[l1^2] + E[l1]) / 2
    assert sp.simplify(T["fixed-point"].evaluate(geo)["x_star"] - M / EC) == 0
    assert "unbounded support" in T["linear-map"].applies(geo)


def test_applicability_reasons():
    unlimited = single(2, 3, math.inf)
    for name in KEYS:
        assert "infinite" in T[name].applies(unlimited)
        with pytest.raises(ql.ModelError, match="does not apply"):
            T[name].evaluate(unlimited)
    assert "one request type" in T["worst-cycle"].applies(EX4)
    assert "one request type" in T["cycles"].applies(EX4)
    assert "numeric decode" in T["gcd-criterion"].applies(pair((l1, 3), capacity=M))
    assert "exceeds x*" in T["rate-limited"].applies(single(2, 3, 24, policy=ql.rate_limited(3)))
    assert T["rate-limited"].applies(single(2, 3, 24, policy=ql.rate_limited(2))) is None


# -- checks on their declared runs ----------------------------------------------------------
DEFAULT = single(10, 40, 2000)


@pytest.mark.parametrize(("name", "model", "quantity", "theory", "estimate"), [
    ("fixed-point", EX2, "x_star", 2, 2),
    ("fixed-point", DEFAULT, "x_star", 100 / 61, 100 / 61),
    ("rate-limited", DEFAULT, "throughput", 100 / 61, 100 / 61),
    ("worst-cycle", EX2, "throughput", 1.6, 1.6),
    ("worst-cycle", DEFAULT, "throughput", 1, 1),
    ("cycles", EX2, "adjacent", 24 / 13, 24 / 13),
    ("gcd-criterion", EX4, "l0_min", 2, 2),
    ("integer-rate-limit", DEFAULT, "max_rate", 1.625, 1.625),
])
def test_declared_runs_hold_exactly(name, model, quantity, theory, estimate):
    v = ql.verify(name, model, seed=1)
    assert v.holds is True and v.test == "exact" and v.quantity == quantity
    assert v.theory == pytest.approx(theory, rel=1e-12) and v.estimate == pytest.approx(estimate, rel=1e-12)
    assert all(c["holds"] for c in v.details["comparisons"])


def test_worst_cycle_integer_versions_and_ratio():
    # the floors change the value: Example 2's integer greedy system falls into a cycle of 5/3, not 8/5
    assert T["worst-cycle"].evaluate(EX2)["integer_throughput"] == R(5, 3)
    assert T["worst-cycle"].evaluate(single(2, 2, 140))["integer_throughput"] == R(35, 2)  # worked trajectory
    assert T["worst-cycle"].evaluate(DEFAULT)["integer_throughput"] == 1
    v = ql.verify("worst-cycle", DEFAULT, seed=2)
    by = {c["quantity"]: c for c in v.details["comparisons"]}
    assert by["ratio"]["estimate"] == pytest.approx(61 / 100) and by["integer_throughput"]["estimate"] == 1


def test_cycles_integer_versions():
    ev = T["cycles"].evaluate(single(2, 4, 60))
    assert ev["integer"] == {"adjacent": R(5, 2), "contiguous": {2: R(5, 2)}, "balanced": {2: 3}}
    assert T["cycles"].evaluate(DEFAULT)["integer"]["balanced"] == {2: R(531, 511)}
    v = ql.verify("cycles", single(2, 4, 60), seed=3)
    assert v.holds is True and len(v.details["comparisons"]) == 6  # three relaxed, three integer runs


def test_linear_map_measures_the_spectral_radius():
    for model, rho in ((EX2, math.sqrt(5 / 3)), (DEFAULT, 1.0400267781)):
        v = ql.verify("linear-map", model)
        assert v.holds is True and v.estimate == pytest.approx(rho, rel=1e-3)
        assert v.details["tolerance"] if "tolerance" in v.details else True
    v5 = ql.verify("gcd-criterion", EX5)
    assert v5.holds is True and v5.estimate == math.inf  # no contraction at l0 = 100 and 200: l0_min > 200


def test_l0_min_from_runs_at_consecutive_prompts():
    v = ql.verify("gcd-criterion", pair((2, 7)))  # l0_min = 18: radius 1.00076 at 17, 0.99848 at 18
    assert v.holds is True and v.estimate == 18
    assert "l0 = 17: rate 1.00076" in v.reason and "l0 = 18: rate 0.99848" in v.reason


def test_integer_rate_limit_reference_numbers():
    ev = T["integer-rate-limit"].evaluate(DEFAULT)
    assert ev == {"max_rate": R(13, 8), "peak_memory": 2024, "congested_throughput": R(63, 40)}
    assert T["integer-rate-limit"].evaluate(DEFAULT, rate=R(13, 8)) == {
        "max_rate": R(13, 8), "peak_memory": 2000, "congested_throughput": R(13, 8)}
    # just above max_rate the memory caps admission (8/5 < 57/35, no eviction); evictions from 18/11
    assert dyn.integer_cycle(DEFAULT, R(57, 35)).evictions == 0
    assert T["integer-rate-limit"].evaluate(DEFAULT, rate=R(57, 35))["congested_throughput"] == R(8, 5)
    assert dyn.integer_cycle(DEFAULT, R(18, 11)).evictions == R(1, 40)
    assert T["integer-rate-limit"].statement(DEFAULT).args[0] == sp.Eq(sp.Symbol("x_max"), R(13, 8))
    v = ql.verify("integer-rate-limit", DEFAULT, seed=1)
    by = {c["quantity"]: c["estimate"] for c in v.details["comparisons"]}
    assert by == {"max_rate": 1.625, "congested_throughput": 1.575, "peak_memory": 2024}


def test_rate_limited_integer_policy():
    m = single(10, 40, 2000, policy=ql.rate_limited("integer"))
    assert str(m.policy) == "rate_limited(integer)"
    assert ql.policies.policy_from("rate_limited(integer)") == ql.rate_limited("integer")
    with pytest.raises(ql.PolicyError, match="resolve_policy"):
        ql.simulate(m, 10, saturated=True)
    run = ql.simulate(dyn.resolve_policy(m), 300, saturated=True, engine="fast")
    assert dyn.detect_cycle(run).throughput == R(13, 8) and run.evictions.sum() == 0
    assert dyn.relaxed_trajectory(m, 200).throughput(100) == R(13, 8)
    assert T["rate-limited"].evaluate(m)["throughput"] == R(13, 8)
    with pytest.raises(ql.PolicyError, match="'integer'"):
        ql.rate_limited("fast")


# -- given runs, and runs that violate a hypothesis ------------------------------------------
def test_example_3_relaxed_run():
    run = dyn.relaxed_trajectory(EX2, 40, [[R(5, 2), 2, R(17, 10)]])
    assert run.first_eviction == 7 and run.state(7) == ((0, R(778, 243), R(544, 243)),)
    wc = ql.verify("worst-cycle", EX2, run)  # not from an empty batch: the cycle reached is at least the worst
    assert wc.holds is True and wc.test == "one-sided bound (lower)" and wc.estimate == 1.6
    for name in ("fixed-point", "cycles", "rate-limited", "linear-map"):  # linear regime: 5 iterations only
        assert ql.verify(name, EX2, run).holds is None


def test_cycles_from_given_states():
    run = dyn.relaxed_trajectory(EX2, 15, [[R(72, 13), R(24, 13), 0]])  # the level-1 cycle of Example 2
    c = ql.verify("cycles", EX2, run)
    assert c.holds is True and c.estimate == pytest.approx(24 / 13)


def test_hypotheses_violated_do_not_apply():
    m = single(10, 40, 2000, policy=ql.rate_limited())
    relaxed = dyn.relaxed_trajectory(m, 50)
    simulated = ql.simulate(m, 50, saturated=True, engine="fast")
    for name in ("worst-cycle", "cycles", "linear-map", "fixed-point"):
        v = ql.verify(name, m, relaxed)
        assert v.holds is None and v.status == "does not apply"
    assert ql.verify("worst-cycle", m, simulated).holds is None
    assert ql.verify("rate-limited", m, simulated).holds is None  # integer runs: integer-rate-limit
    greedy = dyn.relaxed_trajectory(single(10, 40, 2000), 50)
    assert ql.verify("rate-limited", single(10, 40, 2000), greedy).holds is None
    open_run = ql.simulate(ql.default_model(), 300, seed=3, engine="fast")
    for name in ("worst-cycle", "cycles", "rate-limited", "fixed-point", "integer-rate-limit"):
        assert ql.verify(name, ql.default_model(), open_run).holds is None


def test_a_run_that_leaves_x_star_fails_fixed_point():
    # the exact fixed point of another model (M = 25 instead of 24) moves under EX2's map
    other = single(2, 3, 25)
    run = dyn.relaxed_trajectory(other, 10, dyn.fixed_point_components(EX2))
    v = T["fixed-point"].check_with(other, run, {"x_star": R(2)})
    assert v.holds is False and "moves" in v.reason
