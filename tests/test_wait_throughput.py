"""``wait-throughput`` (issue 8 item 2): what is derived, what is only measured.

The registry statement holds only what proofs/wait_throughput.py derives (the fluid
throughput and the fluid model's gap, 0); the proof displays only relations it checked; the
heavy-traffic gap is measured by ``heavy_traffic.measure_gap``, whose exponent fit
(:func:`fit_exponent`) is checked here on synthetic gaps with a known exponent and against a
hand computation, and whose time budget is checked on a small model.
"""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import queueing_llm as ql
from queueing_llm.derivation import Derivation
from queueing_llm.heavy_traffic import GapMeasurement, fit_exponent, measure_gap

ROOT = Path(__file__).resolve().parents[1]


def example3() -> ql.ContinuousBatching:
    return ql.ContinuousBatching([ql.RequestType(100, 100, ql.PoissonProcess(30)),
                                  ql.RequestType(200, 400, ql.PoissonProcess(5))], kv_capacity=100_000,
                                 iteration_time=ql.LinearIterationTime(0.015, 3e-7))


def _proof():
    spec = importlib.util.spec_from_file_location("wait_throughput_proof", ROOT / "proofs" / "wait_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the statement: nothing beyond the derivation ------------------------------------------
def test_statement_states_no_limit_of_the_stochastic_gap() -> None:
    th = ql.theorems["wait-throughput"]
    st = th.statement(example3())
    text = sp.latex(st)
    assert "lim" not in text and "zeta" not in text  # no heavy-traffic limit is stated
    eqs = {str(e.lhs): e.rhs for e in st.args}
    assert eqs == {"x_{fluid}": 35, r"\mathrm{gap}^{\mathrm{fluid}}": 0}
    assert th.evaluate(example3())["gap"] == 0 and th.evaluate(example3())["fluid_throughput"] == 35


def test_fluid_gap_is_computed_not_typed() -> None:
    """The statement's gap is sum lambda - sum n*/Delta* of the model's own fluid equilibrium: a
    corrupted threshold makes it non-zero (so the 0 is a computation that can come out otherwise)."""
    from queueing_llm.catalogue import fluid as cat
    from queueing_llm.theory import fluid_wait as fw

    res = fw.wait_thresholds(example3())
    assert cat._fluid_gap(res) == 0
    bad = type(res)(**{**res.__dict__, "thresholds": (res.thresholds[0] * 2, res.thresholds[1])})
    assert cat._fluid_gap(bad) != 0


def test_slotted_and_infeasible_models_answer() -> None:
    th = ql.theorems["wait-throughput"]
    slot = ql.ContinuousBatching([ql.RequestType(2, 3, ql.Poisson(0.5))], kv_capacity=100)
    assert th.evaluate(slot)["gap"] == 0
    over = ql.ContinuousBatching([ql.RequestType(100, 100, ql.PoissonProcess(3000))], kv_capacity=100_000,
                                 iteration_time=ql.LinearIterationTime(0.015, 3e-7))
    out = th.evaluate(over)
    assert out["feasible"] is False and "infinite" in out["reason"]
    assert isinstance(th.statement(over), sp.Eq)  # only x_fluid: no fluid equilibrium to take a gap of


# -- the proof: every displayed relation is the checked one --------------------------------
def test_proof_displays_only_checked_equalities(monkeypatch) -> None:
    """``Derivation.substitute`` displays ``expr = result`` with the substitution only in the text
    (an equality that reads as false, e.g. n_1* = zeta n_1*); the proof must not use it, and the
    scaled parameters must appear in the displayed left-hand sides."""
    def refuse(*args, **kwargs):
        raise AssertionError("substitute displays an unscaled left-hand side")

    monkeypatch.setattr(Derivation, "substitute", refuse)
    d = _proof().derive()
    steps = [s for s in d.steps if "threshold $n_1^*" in s.text]
    assert len(steps) == 1
    lhs, rhs = steps[0].latex.split("&=")
    assert r"\frac{d_{1}}{\zeta}" in lhs and r"\lambda_{1} \zeta" in lhs  # the scaled parameters, written in
    assert r"\zeta" in rhs
    assert "gap" in d.steps[-2].text and d.steps[-2].latex.rstrip().endswith("= 0")
    assert "Not derived" in d.steps[-1].text and not d.steps[-1].latex


def test_proof_step_fails_on_a_wrong_scaling() -> None:
    """The checked steps can fail: claiming the thresholds scale by zeta^2 is refused."""
    from queueing_llm.derivation import DerivationError
    from queueing_llm.theory import capacity as cap

    proof = _proof()
    g = cap.fluid_solution(2)
    zeta = sp.Symbol("zeta", positive=True)
    scaled = {g["rates"][0]: zeta * g["rates"][0], g["rates"][1]: zeta * g["rates"][1], g["d1"]: g["d1"] / zeta}
    d = Derivation("t")
    d.equal("ok", proof._at_scale(g["thresholds"][0], scaled), zeta * g["thresholds"][0])
    with pytest.raises(DerivationError):
        d.equal("wrong", proof._at_scale(g["thresholds"][0], scaled), zeta**2 * g["thresholds"][0])


# -- the fit ------------------------------------------------------------------------------
def test_fit_recovers_an_exact_power_law() -> None:
    zetas = (1, 4, 16, 64)
    a, (lo, hi) = fit_exponent(zetas, [3.0 * z**0.5 for z in zetas])
    assert a == pytest.approx(0.5, abs=1e-12) and hi - lo < 1e-9 and lo <= a <= hi


def test_fit_matches_a_hand_computation() -> None:
    zetas = np.array([1.0, 4.0, 16.0, 64.0])
    gaps = np.array([2.26, 6.08, 9.41, 15.3])
    a, (lo, hi) = fit_exponent(zetas, gaps, level=0.9)
    x, y = np.log(zetas), np.log(gaps)
    sxx = float(((x - x.mean()) ** 2).sum())
    slope = float(((x - x.mean()) * (y - y.mean())).sum()) / sxx
    resid = y - (y.mean() + slope * (x - x.mean()))
    se = math.sqrt(float((resid**2).sum()) / (x.size - 2) / sxx)
    t = stats.t.ppf(0.95, x.size - 2)
    assert a == pytest.approx(slope, rel=1e-12)
    assert (lo, hi) == pytest.approx((slope - t * se, slope + t * se), rel=1e-12)


def test_fit_interval_covers_the_true_exponent_at_its_level() -> None:
    """Synthetic gaps c zeta^a e^eps, eps ~ N(0, 0.3^2): over 1,000 data sets the 90 % interval
    covers a = 0.5 in a fraction whose exact binomial 99.9 % interval contains 0.9."""
    rng = np.random.default_rng(8)
    zetas = np.array([1.0, 4.0, 16.0, 64.0])
    n, covered = 1000, 0
    for _ in range(n):
        gaps = 2.0 * zetas**0.5 * np.exp(rng.normal(0, 0.3, zetas.size))
        _, (lo, hi) = fit_exponent(zetas, gaps, level=0.9)
        covered += lo <= 0.5 <= hi
    ci = stats.binomtest(covered, n).proportion_ci(0.999, method="exact")
    assert ci.low <= 0.9 <= ci.high, covered


def test_fit_needs_three_positive_gaps() -> None:
    a, ci = fit_exponent((1, 4, 16, 64), [1.0, -0.5, 2.0, 0.0])
    assert math.isnan(a) and all(math.isnan(c) for c in ci)
    a, _ = fit_exponent((1, 4, 16, 64), [1.0, -0.5, 2.0, 4.0])  # the negative gap is left out
    assert a == pytest.approx(fit_exponent((1, 16, 64), [1.0, 2.0, 4.0])[0])
    with pytest.raises(ql.ParameterError, match="equal lengths"):
        fit_exponent((1, 4, 16), [1.0, 2.0])


# -- measure_gap: its time budget and progress ----------------------------------------------
def small() -> ql.ContinuousBatching:
    return ql.ContinuousBatching([ql.RequestType(2, 3, ql.PoissonProcess(2))], kv_capacity=50,
                                 iteration_time=ql.LinearIterationTime(1, 0.01))


def test_measure_gap_respects_its_time_budget() -> None:
    stamps: list[float] = []
    messages: list[str] = []

    def progress(message: str) -> None:
        stamps.append(time.monotonic())
        messages.append(message)

    budget = 1.5
    t0 = time.monotonic()
    g = measure_gap(small(), zetas=(1, 4, 16, 64, 256), iterations=3000, replications=3, time_budget=budget,
                    progress=progress)
    elapsed = time.monotonic() - t0
    assert "time budget" in g.exhausted and len(g.zetas) < 5
    assert messages and all(m.startswith("zeta ") for m in messages)
    longest = max(b - a for a, b in zip([t0, *stamps], stamps, strict=False))
    assert elapsed <= budget + longest + 0.5, (elapsed, longest, messages)  # at most one run past the budget
    assert len(g.gaps) == len(g.zetas) == len(g.fluid_throughput)
    if len(g.zetas) < 3:
        assert math.isnan(g.exponent)
    assert g.seconds == pytest.approx(elapsed, abs=0.5) and g.iterations == 3000 and g.replications == 3
    assert "time budget" in str(g)


def test_measure_gap_without_pressure_measures_every_scaling() -> None:
    g = measure_gap(small(), zetas=(1, 2, 4), iterations=400, replications=2, time_budget=None)
    assert isinstance(g, GapMeasurement) and g.zetas == (1, 2, 4) and not g.exhausted
    expected = fit_exponent(g.zetas, [x.estimate for x in g.gaps], g.level)
    assert (g.exponent, g.exponent_ci) == expected or math.isnan(g.exponent)
    with pytest.raises(ql.ParameterError, match="time_budget"):
        measure_gap(small(), zetas=(1, 2, 4), iterations=400, replications=2, time_budget=0)
