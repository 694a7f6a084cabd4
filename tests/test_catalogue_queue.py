"""Registry entries of family B: names, keys, applicability, statements, and one check per
theorem against a short fixed-seed simulated run (fast engine)."""

from __future__ import annotations

import math

import pytest
import sympy as sp

import queueing_llm as ql
from queueing_llm.errors import ModelError

NAMES = ("stability", "overload-drift", "renewal-transient", "equilibrium-stage", "stationary",
         "lyapunov-bounds", "waiting-cap")


def cb(decode, arrivals=None, batch_cap=4, prompt=3, **kw):
    return ql.ContinuousBatching([ql.RequestType(prompt=prompt, decode=decode, arrivals=arrivals)],
                                 batch_cap=batch_cap, policy="fcfs_cap", **kw)


def sim(model, n, seed, **kw):
    return ql.simulate(model, n, seed=seed, engine="fast", **kw)


STABLE = cb(ql.Geometric(0.3), ql.Poisson(0.9))
OVER = cb(ql.Geometric(0.3), ql.Poisson(1.5))
CAPPED = cb(ql.Geometric(0.3), ql.Poisson(1.1), waiting_cap=5)
SATURATED = cb(ql.FinitePMF({2: 0.5, 4: 0.5}), batch_cap=8)


@pytest.fixture(scope="module")
def stable_run():
    return sim(STABLE, 40_000, 7)


def test_registered_with_sources_and_hypotheses() -> None:
    for name in NAMES:
        th = ql.theorems[name]
        assert th.name == name and th.hypotheses and th.source and th.check_fn is not None


@pytest.mark.parametrize(
    "model,name,fragment",
    [
        (ql.ContinuousBatching([ql.RequestType(prompt=1, decode=2, arrivals=0.5)], kv_capacity=50, batch_cap=4),
         "stability", "fcfs_cap"),
        (ql.ContinuousBatching([ql.RequestType(prompt=1, decode=2, arrivals=0.5)], policy="fcfs_cap"),
         "stationary", "finite batch cap"),
        (cb(3, None), "overload-drift", "no arrival law"),
        (cb(3, ql.Poisson(0.5)), "stationary", "geometric"),
        (cb(3, ql.Poisson(0.5)), "lyapunov-bounds", "geometric"),
        (cb(ql.Geometric(0.5), ql.Poisson(0.5)), "waiting-cap", "finite waiting_cap"),
        (ql.ContinuousBatching([ql.RequestType(prompt=1, decode=2, arrivals=ql.PoissonProcess(1.0))],
                               policy="fcfs_cap", batch_cap=4, iteration_time=ql.LinearIterationTime(1.0)),
         "stability", "per iteration"),
    ],
)
def test_applies_gives_the_reason(model, name, fragment) -> None:
    th = ql.theorems[name]
    reason = th.applies(model)
    assert reason is not None and fragment in reason
    with pytest.raises(ModelError, match="does not apply"):
        th.evaluate(model)


def test_saturated_only_models_get_the_saturated_theorems() -> None:
    for name in ("stability", "renewal-transient", "equilibrium-stage"):
        assert ql.theorems[name].applies(SATURATED) is None
    assert ql.theorems["stability"].evaluate(SATURATED)["capacity"] == sp.Rational(8, 3)


def test_statements_are_relations_with_latex() -> None:
    lam, q, B = sp.symbols("lambda q B", positive=True)
    sym = cb(ql.Geometric(q), ql.Poisson(lam), batch_cap=B, waiting_cap=3)
    for name in NAMES:
        st = ql.theorems[name].statement(sym)
        assert isinstance(st, sp.Basic) and not isinstance(st, sp.logic.boolalg.BooleanAtom), name
        assert ql.theorems[name].latex(sym), name
    stat = ql.theorems["stationary"].statement(STABLE)
    assert isinstance(stat, sp.Eq) and stat.lhs.has(sp.Function("P")(sp.Symbol("z")))


def test_renewal_evaluate_option_n() -> None:
    out = ql.theorems["renewal-transient"].evaluate(SATURATED, n=6)
    assert out["sequence"] == [1, 0, sp.Rational(1, 2), 0, sp.Rational(3, 4), 0, sp.Rational(5, 8)]
    assert out["completions"][4] == 6 and out["periodic"] is True and out["limit"] == sp.Rational(1, 3)


def test_waiting_cap_evaluate_exact_option() -> None:
    half = sp.Rational(1, 2)
    m = cb(ql.Geometric(half), ql.Bernoulli(half), batch_cap=1, waiting_cap=1)
    assert ql.theorems["waiting-cap"].evaluate(m, exact=True)["rejection_probability"] == sp.Rational(1, 4)


# ----------------------------------------------------------------------------------
# one check per theorem against a short fixed-seed run
# ----------------------------------------------------------------------------------
def test_check_stability_throughput(stable_run) -> None:
    v = ql.theorems["stability"].check(STABLE, stable_run)
    assert v.holds, str(v)
    assert v.quantity == "throughput" and v.theory == pytest.approx(0.9)


def test_check_overload_drift() -> None:
    v = ql.theorems["overload-drift"].check(OVER, sim(OVER, 20_000, 11))
    assert v.holds, str(v)
    assert v.theory == pytest.approx(0.3)


def test_check_stationary_every_quantity(stable_run) -> None:
    for quantity in ("mean_in_system", "p_empty", "mean_batch", "mean_sojourn"):
        v = ql.theorems["stationary"].check(STABLE, stable_run, quantity=quantity)
        assert v.holds, str(v)


def test_check_stationary_has_power() -> None:
    """A run of a heavier model (load 0.9 instead of 0.75) is rejected by the theory of the lighter one."""
    heavy = cb(ql.Geometric(0.3), ql.Poisson(1.08))
    v = ql.theorems["stationary"].check(STABLE, sim(heavy, 40_000, 7))
    assert not v.holds and "outside" in v.reason


def test_check_lyapunov_bounds(stable_run) -> None:
    v = ql.theorems["lyapunov-bounds"].check(STABLE, stable_run)
    assert v.holds, str(v)
    assert v.details["lower"] <= v.details["upper"]


def test_check_waiting_cap() -> None:
    v = ql.theorems["waiting-cap"].check(CAPPED, sim(CAPPED, 40_000, 5))
    assert v.holds, str(v)


def test_check_renewal_transient_limit_and_replications() -> None:
    run = sim(SATURATED, 20_000, 3, saturated=True)
    assert ql.theorems["renewal-transient"].check(SATURATED, run).holds
    runs = [sim(SATURATED, 12, 1000 + s, saturated=True) for s in range(400)]
    v = ql.theorems["renewal-transient"].check(SATURATED, runs, iteration=6)
    assert v.holds and v.quantity == "u_6" and v.theory == pytest.approx(0.625)


def test_check_equilibrium_stage() -> None:
    run = sim(SATURATED, 20_000, 3, saturated=True)
    for quantity in ("mean_kv", "mean_stage"):
        v = ql.theorems["equilibrium-stage"].check(SATURATED, run, quantity=quantity)
        assert v.holds, str(v)


def test_check_errors_are_model_errors(stable_run) -> None:
    lam = sp.Symbol("lambda", positive=True)
    with pytest.raises(ModelError, match="symbolic"):
        ql.theorems["stationary"].check(cb(ql.Geometric(0.3), ql.Poisson(lam)), stable_run)
    with pytest.raises(ModelError, match="saturated"):
        ql.theorems["renewal-transient"].check(STABLE, stable_run)
    with pytest.raises(ModelError, match="quantity"):
        ql.theorems["stationary"].check(STABLE, stable_run, quantity="median")
    v = ql.theorems["stationary"].check(OVER, sim(OVER, 2_000, 1))  # unstable: a violated hypothesis
    assert v.holds is None and v.status == "does not apply" and math.isinf(v.theory) and "unstable" in v.reason
