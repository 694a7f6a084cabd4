"""ql.verify, verify_all, the verdict helpers and queueing_llm.testing, on small simulated runs.

The theorems used here are defined in this file (the mean batch of a stable fcfs_cap
queue, lambda E[l1], and deliberately wrong or incomplete variants), so the tests do not
depend on the built-in catalogue.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import sympy as sp

import queueing_llm as ql
from queueing_llm.errors import ModelError, ParameterError
from queueing_llm.sim import simulate
from queueing_llm.stats import Interval
from queueing_llm.testing import (
    assert_statement_equals,
    assert_theorem_fails,
    assert_theorem_holds,
    replication_seeds,
    simulate_replications,
)
from queueing_llm.theorems import UnknownTheoremError
from queueing_llm.verify import Verdicts, as_runs, estimate_mean, judge, judge_bounds, verify, verify_all

Z = sp.Symbol("z")
BBAR = sp.Symbol("bbar")


def mean_batch(model):
    (t,) = model.types
    return sp.diff(t.arrivals.pgf(Z), Z).subs(Z, 1) * sp.diff(t.decode.pgf(Z), Z).subs(Z, 1)


def batch_series(run):
    return run.batch.sum(axis=(1, 2))


def applies(model):
    if not isinstance(model.policy, ql.FcfsCap):
        return "needs policy fcfs_cap"
    return None


def make(name, value=mean_batch, check=True, applies_fn=applies, returns=None):
    def check_fn(model, runs, prediction, level=0.95):
        if returns is not None:
            return returns
        return judge(name, "mean_batch", prediction["mean_batch"], estimate_mean(runs, batch_series, level))

    return ql.Theorem(
        name=name,
        title=name,
        hypotheses=("fcfs_cap",),
        statement_fn=lambda m: sp.Eq(BBAR, value(m)),
        evaluate_fn=lambda m: {"mean_batch": value(m)},
        check_fn=check_fn if check else None,
        applies_fn=applies_fn,
    )


RIGHT = make("test-mean-batch")
WRONG = make("test-mean-batch-wrong", value=lambda m: m.types[0].arrival_rate)  # forgets E[l1]
NO_CHECK = make("test-no-check", check=False)
NEVER = make("test-never-applies", applies_fn=lambda m: "never applies (test)")
NOT_A_VERDICT = make("test-not-a-verdict", returns=3.0)

MODEL = ql.ContinuousBatching(
    types=[ql.RequestType(prompt=1, decode=ql.Geometric(0.25), arrivals=ql.Poisson(0.6))],
    batch_cap=4,
    policy="fcfs_cap",
)


@pytest.fixture(scope="module")
def run():
    return simulate(MODEL, 30_000, seed=3, engine="fast")


@pytest.fixture(scope="module")
def runs():
    return simulate_replications(MODEL, 3_000, 10, seed=5, engine="fast")


@pytest.fixture
def registered():
    names = []
    for thm in (RIGHT, WRONG, NO_CHECK, NEVER):
        ql.theorems.register(thm)
        names.append(thm.name)
    yield
    for name in names:
        ql.theorems.unregister(name)


# -- verify ---------------------------------------------------------------------------------


def test_verify_one_run_uses_batch_means(run):
    v = verify(RIGHT, MODEL, run)
    assert isinstance(v, ql.Verdict) and v.holds and bool(v)
    assert v.theory == pytest.approx(2.4) and v.interval.method == "batch-means" and v.interval.level == 0.95
    assert v.interval.low <= v.theory <= v.interval.high
    assert v.estimate == pytest.approx(batch_series(run)[v.interval.warmup :].mean(), rel=1e-3)
    assert "inside" in v.reason and "holds" in str(v)


def test_verify_replications_use_a_student_interval(runs):
    v = verify(RIGHT, MODEL, runs, level=0.99)
    assert v.holds and v.interval.method == "replications" and v.interval.n == 10 and v.interval.level == 0.99


def test_verify_by_registry_name(registered, run):
    assert verify("test-mean-batch", MODEL, run).holds
    assert ql.verify("test-mean-batch", MODEL, run).holds


def test_a_wrong_statement_is_rejected(run, runs):
    for data in (run, runs):
        v = verify(WRONG, MODEL, data, level=0.999)
        assert not v.holds and "above" not in v.reason and "below" in v.reason and "half-widths" in v.reason


def test_verify_errors_name_the_problem(run, registered):
    with pytest.raises(ModelError, match="has no numerical check"):
        verify(NO_CHECK, MODEL, run)
    with pytest.raises(ModelError, match="does not apply to this model: never applies"):
        verify(NEVER, MODEL, run)
    with pytest.raises(UnknownTheoremError, match="no theorem named 'nonexistent'"):
        verify("nonexistent", MODEL, run)
    with pytest.raises(ModelError, match="theorem must be a Theorem or a registry name"):
        verify(42, MODEL, run)
    with pytest.raises(ModelError, match="must return a Verdict"):
        verify(NOT_A_VERDICT, MODEL, run)
    with pytest.raises(ParameterError, match="level"):
        verify(RIGHT, MODEL, run, level=1.0)


def test_runs_are_validated(run):
    other = ql.ContinuousBatching(types=MODEL.types, batch_cap=5, policy="fcfs_cap")
    with pytest.raises(ModelError, match="different model"):
        verify(RIGHT, other, run)
    with pytest.raises(ModelError, match="share a seed"):
        verify(RIGHT, MODEL, [run, run])
    with pytest.raises(ModelError, match="empty list"):
        verify(RIGHT, MODEL, [])
    with pytest.raises(ModelError, match=r"runs\[1\] must be a run"):
        verify(RIGHT, MODEL, [run, np.zeros(3)])
    with pytest.raises(ModelError, match="must be a run"):
        verify(RIGHT, MODEL, batch_series(run))
    assert as_runs(run) is run and as_runs([run]) == [run]


def test_verify_all(registered, run):
    only = verify_all(MODEL, run, names=["test-mean-batch", "test-mean-batch-wrong"])
    assert isinstance(only, Verdicts) and [v.holds for v in only] == [True, False] and not only.all_hold
    everything = verify_all(MODEL, run)
    assert "test-mean-batch" in {v.theorem for v in everything}
    assert everything.skipped["test-no-check"] == "no numerical check"
    assert everything.skipped["test-never-applies"].startswith("does not apply: never applies")
    assert "test-no-check: skipped" in str(everything)
    with pytest.raises(ModelError, match="no numerical check"):
        verify_all(MODEL, run, names=["test-no-check"])


# -- verdict helpers -------------------------------------------------------------------------

IV = Interval(2.0, 1.9, 2.1, 0.95, "batch-means", 20, warmup=100)


def test_judge_outcomes():
    assert judge("t", "q", sp.Rational(199, 100), IV).holds
    v = judge("t", "q", 2.3, IV, {"note": 1})
    assert not v.holds and "above" in v.reason and "3 half-widths" in v.reason and v.details == {"note": 1}
    assert "warm-up 100" in v.reason
    inf = judge("t", "q", sp.oo, IV)
    assert not inf.holds and math.isinf(inf.theory) and "infinite" in inf.reason
    nan = judge("t", "q", float("nan"), IV)
    assert not nan.holds and "undefined" in nan.reason
    with pytest.raises(ModelError, match="symbolic"):
        judge("t", "q", sp.Symbol("x"), IV)


def test_judge_bounds_outcomes():
    assert judge_bounds("t", "mean", 1.0, 3.0, IV).holds
    assert judge_bounds("t", "mean", 2.05, sp.oo, IV).holds  # the interval meets [2.05, oo)
    low = judge_bounds("t", "mean", 2.2, 3.0, IV)
    assert not low.holds and low.theory == 2.2 and "below the lower bound" in low.reason
    high = judge_bounds("t", "mean", 1.0, 1.8, IV)
    assert not high.holds and high.theory == 1.8 and high.details == {"lower": 1.0, "upper": 1.8}
    with pytest.raises(ModelError, match="exceeds upper bound"):
        judge_bounds("t", "mean", 3.0, 1.0, IV)


def test_estimate_mean_uses_the_runs_own_warmup():
    run = simulate(MODEL, 4_000, seed=9, warmup=500, engine="fast")
    iv = estimate_mean(run, batch_series)
    assert iv.warmup == 500
    assert estimate_mean(run, batch_series, warmup=0).warmup == 0


# -- queueing_llm.testing ------------------------------------------------------------------


def test_assert_theorem_holds_and_fails(run):
    assert assert_theorem_holds(RIGHT, MODEL, run).holds
    with pytest.raises(AssertionError, match=r"expected the theorem to hold, but: test-mean-batch-wrong/mean_batch"):
        assert_theorem_holds(WRONG, MODEL, run)
    assert not assert_theorem_fails(WRONG, MODEL, run).holds
    with pytest.raises(AssertionError, match="expected the theorem to fail"):
        assert_theorem_fails(RIGHT, MODEL, run)


def test_assert_statement_equals():
    lam, q = sp.symbols("lambda q", positive=True)
    model = ql.ContinuousBatching(
        types=[ql.RequestType(prompt=0, decode=ql.Geometric(q), arrivals=ql.Poisson(lam))],
        batch_cap=2,
        policy="fcfs_cap",
    )
    statement = assert_statement_equals(RIGHT, model, lam / q)  # lambda*(1 + (1-q)/q) unsimplified
    assert isinstance(statement, sp.Eq) and statement.rhs != lam / q
    assert_statement_equals(RIGHT, model, sp.Eq(BBAR, lam * q / q**2))
    with pytest.raises(AssertionError, match=r"difference: -lambda \+ lambda/q"):
        assert_statement_equals(RIGHT, model, lam)
    with pytest.raises(AssertionError, match="differs from the expected one"):
        assert_statement_equals(RIGHT, model, sp.Eq(sp.Symbol("other"), lam / q))
    with pytest.raises(AssertionError, match="differs"):
        assert_statement_equals(RIGHT, model, sp.Le(BBAR, lam / q))


def test_assert_statement_equals_compares_conjunctions_part_by_part():
    x, a, b = sp.symbols("x a b", positive=True)
    both = ql.Theorem("test-and", "and", (), lambda m: sp.And(sp.Le(a, x), sp.Le(x, a + b)), lambda m: {})
    assert_statement_equals(both, MODEL, sp.And(sp.Le(x, b + a), sp.Le(a, x)))
    with pytest.raises(AssertionError):
        assert_statement_equals(both, MODEL, sp.And(sp.Le(x, b + 2 * a), sp.Le(a, x)))


def test_replication_seeds_are_reproducible_and_distinct():
    a = replication_seeds(7, 50)
    assert a == replication_seeds(7, 50) and len(set(a)) == 50
    assert not set(a) & set(replication_seeds(8, 50))
    assert replication_seeds(7, 3) == a[:3]  # spawning is prefix-stable
    with pytest.raises(ParameterError, match="replications"):
        replication_seeds(7, 0)


def test_simulate_replications_sequential_and_parallel_agree():
    seq = simulate_replications(MODEL, 500, 3, seed=2, engine="fast")
    with ThreadPoolExecutor(2) as pool:
        par = simulate_replications(MODEL, 500, 3, seed=2, executor=pool, engine="fast")
    assert [r.seed for r in seq] == replication_seeds(2, 3)
    assert all(a.equals(b) for a, b in zip(seq, par, strict=True))
    assert not seq[0].equals(seq[1])
    with pytest.raises(ParameterError, match="replications"):
        simulate_replications(MODEL, 500, 1, seed=2)


# -- the one route: prediction from evaluate, declared runs, test names ----------------------

from queueing_llm import runs as qruns  # noqa: E402
from queueing_llm.testing import assert_detects, perturb  # noqa: E402
from queueing_llm.verdict import EXACT, LOWER_BOUND, NOT_APPLICABLE, TWO_SIDED, UPPER_BOUND  # noqa: E402
from queueing_llm.verify import judge_exact, judge_lower, judge_upper  # noqa: E402


def test_verdict_status_and_not_applicable():
    v = ql.Verdict.not_applicable("t", "q", "the run evicted 3 times", theory=2.0, run="open")
    assert v.holds is None and v.status == "does not apply" and v.test == NOT_APPLICABLE and not bool(v)
    assert "does not apply" in str(v) and "evicted" in str(v)
    iv = Interval(1.0, 0.9, 1.1, 0.95, "batch-means", 20, 0)
    assert judge("t", "q", 1.0, iv).test == TWO_SIDED and "two-sided CI" in str(judge("t", "q", 1.0, iv))
    assert judge("t", "q", 2.0, iv).status == "FAILS"
    with pytest.raises(ModelError, match="Verdict.test"):
        ql.Verdict("t", "q", 1.0, 1.0, None, True, "r", test="does not apply")


def test_one_sided_and_exact_judges():
    iv = Interval(1.0, 0.9, 1.1, 0.95, "batch-means", 20, 0)
    up = judge_upper("t", "q", 2.0, iv)
    assert up.holds and up.test == UPPER_BOUND and "one-sided" in up.reason and "cannot detect" in up.reason
    assert not judge_upper("t", "q", 0.85, iv).holds
    assert judge_lower("t", "q", 0.95, iv).holds and judge_lower("t", "q", 0.5, iv).test == LOWER_BOUND
    assert not judge_lower("t", "q", 1.2, iv).holds
    ex = judge_exact("t", "q", sp.Rational(63, 40), sp.Rational(63, 40))
    assert ex.holds and ex.test == EXACT and ex.interval is None
    assert not judge_exact("t", "q", sp.Rational(63, 40), sp.Rational(63, 40) + sp.Rational(1, 10**9))
    assert judge_exact("t", "q", 1.0, 1.0 + 1e-12, tol=1e-9).holds
    assert not judge_exact("t", "q", 1.0, 1.01, tol=1e-9).holds


def test_split_options_and_prediction_is_what_evaluate_returned(run):
    seen = {}

    def evaluate(model, scale=1):
        return {"mean_batch": mean_batch(model) * scale}

    def check(model, runs, prediction, level=0.95, tag=None):
        seen.update(prediction=prediction, tag=tag)
        return judge("opt", "mean_batch", prediction["mean_batch"], estimate_mean(runs, batch_series, level))

    thm = ql.Theorem("opt", "opt", (), lambda m: sp.Eq(BBAR, 0), evaluate, check)
    assert thm.split_options({"scale": 2, "tag": "x", "level": 0.9}) == ({"scale": 2}, {"tag": "x", "level": 0.9})
    v = verify(thm, MODEL, run, scale=2, tag="x")
    assert seen["tag"] == "x" and seen["prediction"] == {"mean_batch": 2 * mean_batch(MODEL)}
    assert not v.holds and v.theory == pytest.approx(4.8)
    assert thm.check(MODEL, run, tag="y").holds and seen["tag"] == "y"


def test_perturbed_evaluate_is_caught(run):
    assert perturb(RIGHT, "mean_batch", 1.05).evaluate(MODEL) == {"mean_batch": sp.Rational(63, 25)}
    assert verify(RIGHT, MODEL, run).holds
    verdicts = assert_detects(RIGHT, MODEL, run, "mean_batch", factors=(0.9, 1.1))
    assert all(v.status == "FAILS" for v in verdicts)
    with pytest.raises(AssertionError, match="not detected"):
        assert_detects(RIGHT, MODEL, run, "mean_batch", factors=(1.0001,))
    with pytest.raises(ModelError, match="no 'nope'"):
        perturb(RIGHT, "nope", 1.1).evaluate(MODEL)
    nested = ql.Theorem("nested", "n", (), lambda m: sp.Eq(BBAR, 0), lambda m: {"c": {3: sp.Integer(2)}, "l": [1, 2]})
    assert perturb(nested, ("c", 3), 0.5).evaluate(MODEL)["c"][3] == 1
    assert perturb(nested, ("l", 1), 2).evaluate(MODEL)["l"] == [1, 4]
    assert perturb(nested, lambda p, f: {**p, "x": f}, 2).evaluate(MODEL)["x"] == 2


def test_verify_builds_declared_runs_from_the_seed():
    declared = ql.Theorem(
        "declared", "declared", (), RIGHT.statement_fn, RIGHT.evaluate_fn, RIGHT.check_fn, applies_fn=applies,
        runs=(qruns.open_run(iterations=4000, replications=4),),
    )
    a = verify(declared, MODEL, seed=7)
    b = verify(declared, MODEL, seed=7)
    assert a.holds and a.estimate == b.estimate and a.interval.method == "replications"
    assert a.run == "open, 4 independent replications" and a.details["replications"] == 4
    with pytest.raises(ModelError, match="declares no runs"):
        verify(RIGHT, MODEL)


def test_relaxed_runs_satisfy_the_run_protocol():
    from queueing_llm.theory import dynamics as dyn

    m = ql.ContinuousBatching(types=[ql.RequestType(prompt=10, decode=40)], kv_capacity=2000, policy="greedy")
    relaxed = dyn.relaxed_trajectory(m, 50, exact=False)
    sim = ql.simulate(m, 50, seed=1, saturated=True, engine="fast")
    assert relaxed.kind == "relaxed" and sim.kind == "saturated" and qruns.is_run(relaxed) and qruns.is_run(sim)
    assert isinstance(relaxed, qruns.Run) and as_runs([relaxed, sim], m) == [relaxed, sim]
    spec = qruns.relaxed_run(30, policy="rate_limited", model_transform=lambda mm: mm)
    built = spec.make(m)
    assert built.kind == "relaxed" and built.rate is not None and spec.label == "relaxed, rate_limited(x*)"


def test_verify_all_builds_each_theorems_declared_runs_once():
    queue = ql.ContinuousBatching(ql.RequestType(2, ql.Geometric(0.25), arrivals=1.5), batch_cap=8, policy="fcfs_cap")
    names = ["stability", "stationary", "renewal-transient", "equilibrium-stage"]
    verdicts = verify_all(queue, names=names, seed=3)
    assert [v.theorem for v in verdicts] == names and verdicts.all_hold
    assert [v.run for v in verdicts] == ["open", "open", "saturated", "saturated"]
    assert verdicts[0].estimate != verify_all(queue, names=["stability"], seed=4)[0].estimate  # seeded
    everything = verify_all(queue, seed=3)
    assert "renewal-transient" in {v.theorem for v in everything}  # declared saturated run, not refused
    assert not everything.failures


def test_runs_of_a_declared_transformed_model_are_accepted():
    import dataclasses

    from queueing_llm.theory import dynamics as dyn

    base = ql.ContinuousBatching(types=[ql.RequestType(prompt=10, decode=40)], kv_capacity=2000, policy="greedy")

    def shorter(model):
        return dataclasses.replace(model, types=(ql.RequestType(prompt=5, decode=40),))

    def count(model, runs, prediction, level=0.95):
        return judge_exact("transformed", "runs", prediction["runs"], len(runs))

    thm = ql.Theorem("transformed", "t", (), lambda m: sp.Eq(BBAR, 0), lambda m: {"runs": 2}, count,
                     runs=(qruns.relaxed_run(20), qruns.relaxed_run(20, model_transform=shorter, label="l0 = 5")))
    built = verify(thm, base)
    assert built.holds and built.run == "relaxed + l0 = 5" and built.test == "exact"
    given = [dyn.relaxed_trajectory(base, 20, exact=False), dyn.relaxed_trajectory(shorter(base), 20, exact=False)]
    assert verify(thm, base, given).holds
    other = dataclasses.replace(base, kv_capacity=3000)
    with pytest.raises(ModelError, match="different model"):
        verify(thm, base, [given[0], dyn.relaxed_trajectory(other, 20, exact=False)])
