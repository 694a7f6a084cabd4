"""Registry entries of family A (catalogue/dynamics.py): names, evaluate keys, symbolic
statement pins, options, laws through their moments, applicability, and checks against
relaxed and simulated saturated runs (including runs that must make a check fail)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
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
    "worst-cycle": {"throughput", "ratio"},
    "cycles": {"adjacent", "opposite", "contiguous", "balanced"},
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
    assert T["worst-cycle"].evaluate(EX2) == {"throughput": R(8, 5), "ratio": R(4, 5)}
    cyc = T["cycles"].evaluate(EX2)
    assert cyc["adjacent"] == R(24, 13) and cyc["opposite"] is sp.nan
    assert cyc["contiguous"] == {0: 2, 1: R(24, 13), 2: R(8, 5)} and cyc["balanced"] == {1: 2, 3: R(8, 5)}
    assert T["cycles"].evaluate(EX2, block=1, spacing=3) == {
        "adjacent": R(24, 13), "opposite": sp.nan, "contiguous": R(24, 13), "balanced": R(8, 5)
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


# -- checks on relaxed runs ----------------------------------------------------------------
def test_checks_on_example_3_relaxed_run():
    run = dyn.relaxed_trajectory(EX2, 40, [[R(5, 2), 2, R(17, 10)]])
    v = T["fixed-point"].check(EX2, run)
    assert v.holds and v.estimate == pytest.approx(1.6) and v.theory == 2
    assert T["worst-cycle"].check(EX2, run).holds
    c = T["cycles"].check(EX2, run)
    assert c.holds and c.details["cycle"] == "worst"
    lin = T["linear-map"].check(EX2, run)
    assert lin.holds and lin.details["first_eviction"] == 7 and lin.estimate > 1


def test_checks_on_the_adjacent_cycle():
    run = dyn.relaxed_trajectory(EX2, 15, [[R(72, 13), R(24, 13), 0]])
    c = T["cycles"].check(EX2, run)
    assert c.holds and c.details["cycle"] == "adjacent" and c.estimate == pytest.approx(24 / 13)


def test_gcd_checks_on_relaxed_runs():
    def near(model, scale):
        state = [[float(v) * (1 - scale * (j % 3) / 3) for j, v in enumerate(r)] for r in dyn.fixed_point_state(model)]
        return dyn.relaxed_trajectory(model, 600, state, exact=False)

    v4 = T["gcd-criterion"].check(EX4, near(EX4, 0.05))
    assert v4.holds and v4.estimate < 1 and v4.details["first_eviction"] is None
    v5 = T["gcd-criterion"].check(EX5, near(EX5, 0.05))
    assert v5.holds and v5.details["first_eviction"] is not None
    # a stable model judged against a diverging run must fail
    bad = near(EX5, 0.05)
    assert not T["gcd-criterion"].check(EX4, SimpleNamespace(batch=bad.batch[:, :, :3], completions=bad.completions,
                                                             evictions=bad.evictions, saturated=True)).holds


def test_rate_limited_check_relaxed_and_failure():
    m = single(10, 40, 2000, policy=ql.rate_limited())
    run = dyn.relaxed_trajectory(m, 120)
    v = T["rate-limited"].check(m, run)
    assert v.holds and v.estimate == pytest.approx(100 / 61) and v.details["evictions"] == 0
    half = dyn.relaxed_trajectory(m, 120, rate=R(50, 61))
    v = T["rate-limited"].check(m, half)  # a run at half the rate, judged against x*
    assert not v.holds and v.estimate == pytest.approx(50 / 61)
    assert T["rate-limited"].check(m, half, rate=R(50, 61)).holds
    greedy = dyn.relaxed_trajectory(single(10, 40, 2000), 200)
    with pytest.raises(ql.ModelError, match="rate-limited admission"):
        T["rate-limited"].check(m, greedy)
    with pytest.raises(ql.ModelError, match="rate-limited admission"):
        T["rate-limited"].check(m, ql.simulate(single(10, 40, 2000), 100, saturated=True, engine="fast"))


# -- checks on simulated (integer) runs -----------------------------------------------------
def test_checks_on_the_simulated_worked_trajectory():
    m = single(2, 2, 140)
    run = ql.simulate(m, 40, saturated=True, initial_batch=[21, 19], engine="fast")
    fp = T["fixed-point"].check(m, run)
    assert fp.holds and fp.estimate == 17.5 and fp.theory == 20
    wc = T["worst-cycle"].check(m, run)
    assert wc.holds and wc.theory == 17.5
    assert T["cycles"].check(m, run).holds
    via_verify = ql.verify("worst-cycle", m, run)
    assert via_verify.holds and via_verify.estimate == 17.5
    with pytest.raises(ql.ModelError, match="relaxed trajectory"):
        T["linear-map"].check(m, run)


def test_checks_refuse_open_system_runs():
    m = single(10, 40, 2000)
    open_run = ql.simulate(ql.default_model(), 300, seed=3, engine="fast")
    for name in ("worst-cycle", "cycles", "rate-limited"):
        with pytest.raises(ql.ModelError, match="saturated"):
            T[name].check(ql.default_model(), open_run)
    fp = T["fixed-point"].check(ql.default_model(), open_run)  # Little's law bound holds for any run
    assert fp.holds and fp.details["boundary"] > 0
    assert T["worst-cycle"].check(m, ql.simulate(m, 200, saturated=True, engine="fast")).holds


def fake_run(counts, completions):
    """A saturated one-type run with the given stage counts and completions."""
    counts = np.asarray(counts, dtype=np.int64)
    return SimpleNamespace(batch=counts[:, None, :], completions=np.asarray(completions, dtype=np.int64)[:, None],
                           evictions=np.zeros((len(counts), 1), dtype=np.int64),
                           queue=np.zeros((len(counts), 1), dtype=np.int64), saturated=True)


def test_checks_can_fail():
    m = single(2, 2, 140)
    # a fabricated cycle completing 25 per iteration (above x* = 20): fixed point violated
    too_fast = fake_run([[25, 25]] * 10, [25] * 10)
    v = T["fixed-point"].check(m, too_fast)
    assert not v.holds and v.estimate == 25
    # a cycle completing 10 per iteration (below the integer worst cycle 35/2)
    too_slow = fake_run([[10, 10]] * 10, [10] * 10)
    assert not T["worst-cycle"].check(m, too_slow).holds
    assert not T["cycles"].check(m, too_slow).holds
    assert not T["worst-cycle"].check(m, fake_run(np.arange(20).reshape(10, 2), [1] * 10)).holds  # no cycle
    combined = T["fixed-point"].check(m, [ql.simulate(m, 30, saturated=True, engine="fast"), too_fast])
    assert not combined.holds and "1/2 runs" in combined.reason


def test_rate_limited_check_on_integer_runs():
    m = single(10, 40, 2000, policy=ql.rate_limited())
    run = ql.simulate(m, 1500, saturated=True, engine="fast", seed=1)
    v = T["rate-limited"].check(m, run)
    # measured: the integer system (token bucket, whole requests) settles on a period-40 cycle
    # completing 63 requests (1.575 < x* = 1.639) with one eviction per period
    assert v.holds and v.estimate == pytest.approx(63 / 40) and v.details["evictions"] > 0
    assert not T["rate-limited"].check(m, run, slack=0).holds
    assert T["rate-limited"].check(m, run, slack=0.07).holds


def test_greedy_checks_refuse_rate_limited_runs():
    m = single(10, 40, 2000, policy=ql.rate_limited())
    relaxed = dyn.relaxed_trajectory(m, 50)
    simulated = ql.simulate(m, 50, saturated=True, engine="fast")
    for name in ("worst-cycle", "cycles", "linear-map"):
        with pytest.raises(ql.ModelError, match="greedy admission"):
            T[name].check(m, relaxed)
    with pytest.raises(ql.ModelError, match="greedy admission"):
        T["worst-cycle"].check(m, simulated)
    assert T["fixed-point"].check(m, simulated).holds  # the upper bound holds under any policy
