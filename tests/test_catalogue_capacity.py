"""Family C registry entries: names, evaluate keys, statements, options, applies reasons and checks.

The checks are exercised on small hand-built runs (an independent mini-simulation of the
eviction-free system, written here) and, at the end, on runs of ``ql.simulate``.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import sympy as sp

import queueing_llm as ql

T = ql.theorems
l0, l1, M, lam, d0, d1 = sp.symbols("l0 l1 M lambda d0 d1", positive=True)


def wall_model(prompt, decode, rate, d0_, d1_, kv=sp.oo):
    return ql.ContinuousBatching(
        types=[ql.RequestType(prompt=prompt, decode=decode, arrivals=ql.PoissonProcess(rate))],
        kv_capacity=kv,
        iteration_time=ql.LinearIterationTime(d0_, d1_),
    )


# -- names, keys, options ------------------------------------------------------------------
REQUIRED = {
    "memory-little": {"mean_kv"},
    "fluid-benchmark": {"rho", "delta_star", "thresholds", "memory_need", "feasible"},
    "nsz-threshold": {"mu", "delta"},
}


def test_registered_with_required_keys():
    wall = wall_model(2, 3, 2, 1, 0.01, kv=50)
    for name, keys in REQUIRED.items():
        thm = T[name]
        assert thm.name == name and thm.source and thm.hypotheses
        assert keys <= set(thm.evaluate(wall))


def test_fluid_options_and_worked_example():
    wall = wall_model(2, 3, 2, 1, 0.01, kv=50)
    out = T["fluid-benchmark"].evaluate(wall, prefill_stage=True)
    assert out["rho"] == sp.Rational(7, 25) and out["delta_star"] == sp.Rational(25, 18)
    assert out["thresholds"] == (sp.Rational(25, 9),) and out["memory_need"] == sp.Rational(350, 9)
    assert out["feasible"] is True
    default = T["fluid-benchmark"].evaluate(wall)  # default: the model chapter's w_j, W = 12
    assert default["lifetimes"] == (12,) and default["rho"] == sp.Rational(6, 25)
    # with the default convention the fluid memory need is memory Little's mean KV
    assert default["memory_need"] == T["memory-little"].evaluate(wall)["mean_kv"]


def test_nsz_options():
    law = ql.FinitePMF({v: sp.Rational(1, 1591) for v in range(10, 1601)})
    m = ql.ContinuousBatching(types=[ql.RequestType(law, law)], kv_capacity=131000)
    out = T["nsz-threshold"].evaluate(m, chunk=512, batch_time=0.0372)
    assert float(out["mu"]) == pytest.approx(3.262171, abs=1e-6) and out["delta"] == sp.Rational(16, 655)
    small = ql.ContinuousBatching(types=[ql.RequestType(2, 2)], kv_capacity=140)
    assert T["nsz-threshold"].evaluate(small)["mu"] == 20  # chunk None, batch_time 1: x* per iteration
    with pytest.raises(ql.ModelError, match="chunk"):
        T["nsz-threshold"].evaluate(small, chunk=0)
    with pytest.raises(ql.ModelError, match="batch_time"):
        T["nsz-threshold"].statement(small, batch_time=0)
    with pytest.raises(ql.ModelError, match="batch_time"):
        T["nsz-threshold"].evaluate(small, batch_time=-2)
    with pytest.raises(ql.ModelError, match="prefill_stage"):
        T["fluid-benchmark"].evaluate(wall_model(2, 3, 2, 1, 0.01), prefill_stage=1)


# -- statements (symbolic pins) ---------------------------------------------------------------
def test_memory_little_statement_symbolic():
    st = T["memory-little"].statement(ql.ContinuousBatching(types=[ql.RequestType(l0, l1, lam)], kv_capacity=M))
    assert isinstance(st, sp.Eq) and str(st.lhs) == "Zbar"
    assert sp.simplify(st.rhs - lam * l1 * (2 * l0 + l1 + 1) / 2) == 0


def _parts(statement):
    return {str(p.lhs): p for p in statement.args}


def test_fluid_statement_symbolic():
    st = T["fluid-benchmark"].statement(wall_model(l0, l1, lam, d0, d1, kv=M))
    assert isinstance(st, sp.And)
    eqs = {str(p.lhs): p.rhs for p in st.args if isinstance(p, sp.Eq)}
    C = l1 * (2 * l0 + l1 + 1) / 2
    assert sp.simplify(eqs["rho"] - d1 * lam * C) == 0
    assert sp.simplify(eqs["Delta^*"] - d0 / (1 - d1 * lam * C)) == 0
    assert sp.simplify(eqs["M^*"] - d0 * lam * C / (1 - d1 * lam * C)) == 0
    (bound,) = [p for p in st.args if isinstance(p, sp.Le)]
    assert sp.simplify(bound.rhs - M / (d0 + d1 * M)) == 0
    tex = T["fluid-benchmark"].latex(wall_model(l0, l1, lam, d0, d1, kv=M), prefill_stage=True)
    assert r"\Delta^{*}" in tex and r"\rho" in tex


def test_nsz_statement_symbolic():
    b = sp.Symbol("b", positive=True)
    st = T["nsz-threshold"].statement(ql.ContinuousBatching(types=[ql.RequestType(l0, l1)], kv_capacity=M),
                                      batch_time=b)
    eqs = {str(p.lhs): p.rhs for p in st.args}
    assert sp.simplify(eqs["mu"] - 2 * M / (b * l1 * (2 * l0 + l1 + 1))) == 0
    assert sp.simplify(eqs["delta"] - (l0 + l1) / M) == 0


# -- applies ---------------------------------------------------------------------------------
def test_applies_reasons():
    saturated = ql.ContinuousBatching(types=[ql.RequestType(2, 3)], kv_capacity=24)
    assert "arrivals=None" in T["memory-little"].applies(saturated)
    assert "iteration time" in T["fluid-benchmark"].applies(ql.default_model())
    slotted_clock = ql.ContinuousBatching(types=[ql.RequestType(2, 3, 1.0)],
                                          iteration_time=ql.LinearIterationTime(1, 0.01))
    assert "PoissonProcess" in T["fluid-benchmark"].applies(slotted_clock)
    assert "finite KV capacity" in T["nsz-threshold"].applies(wall_model(2, 3, 2, 1, 0.01))
    assert T["nsz-threshold"].applies(saturated) is None
    assert T["memory-little"].applies(ql.default_model()) is None
    with pytest.raises(ql.ModelError, match="does not apply"):
        T["memory-little"].evaluate(saturated)


# -- checks on hand-built runs (independent mini-simulation, no evictions) -------------------------
def mini_run(l0_, l1_, n, seed, rate=None, wall=None, waste=0):
    """Eviction-free system without memory limit: admit every arrival at once.

    Slotted: Poisson(rate) arrivals per iteration. Wall-clock (wall=(lam, d0, d1)): iteration n
    lasts d0 + d1 Z_{n-1} and brings Poisson(lam * duration) arrivals. ``waste`` adds that
    many tokens to every 10th observation (memory no completion accounts for).
    """
    rng = np.random.default_rng(seed)
    w = l0_ + 1 + np.arange(l1_)
    adm = np.zeros(n, dtype=np.int64)
    mem = np.zeros(n, dtype=np.int64)
    time = np.zeros(n)
    clock, z_prev = 0.0, 0
    for t in range(n):
        if wall is None:
            adm[t] = rng.poisson(rate)
        else:
            lam_, a, b = wall
            dur = a + b * z_prev
            clock += dur
            adm[t] = rng.poisson(lam_ * dur)
        time[t] = clock if wall is not None else t
        lo = max(0, t - l1_ + 1)
        mem[t] = int(np.dot(w[: t - lo + 1][::-1], adm[lo: t + 1]))
        z_prev = mem[t]
    comp = np.zeros(n, dtype=np.int64)
    comp[l1_:] = adm[: n - l1_]
    extra = np.zeros(n, dtype=np.int64)
    extra[::10] = waste
    admitted_at = np.repeat(np.arange(n), adm)
    completion = np.where(admitted_at + l1_ < n, admitted_at + l1_, -1)
    requests = SimpleNamespace(prompt=np.full(admitted_at.size, l0_), decode=np.full(admitted_at.size, l1_),
                               completion=completion)
    in_system = np.array([adm[max(0, t - l1_ + 1): t + 1].sum() for t in range(n)])
    return SimpleNamespace(warmup=50, memory=mem + extra, completions=comp[:, None],
                           evictions=(extra > 0).astype(np.int64)[:, None], requests=requests, time=time,
                           in_system=in_system, seed=seed)


def test_memory_little_check_on_hand_built_runs():
    model = ql.ContinuousBatching(types=[ql.RequestType(2, 3, 1.5)])
    good = T["memory-little"].check(model, mini_run(2, 3, 20000, seed=1, rate=1.5))
    assert good.holds, str(good)
    assert good.theory == pytest.approx(1.5 * 12, rel=0.03) and good.interval.low <= good.theory
    pred = T["memory-little"].check(model, mini_run(2, 3, 20000, seed=2, rate=1.5), against="arrival_rate")
    assert pred.holds and pred.theory == 18
    bad = T["memory-little"].check(model, mini_run(2, 3, 20000, seed=1, rate=1.5, waste=5))
    assert bad.holds is None and bad.status == "does not apply" and "evicted" in bad.reason  # a hypothesis
    own = T["memory-little"].check(model, mini_run(2, 3, 20000, seed=1, rate=1.5), against="throughput")
    assert own.holds and "identity check" in own.reason and own.theory != 18  # the run against itself
    reps = T["memory-little"].check(model, [mini_run(2, 3, 3000, seed=s, rate=1.5) for s in (3, 4, 5)])
    assert reps.holds and reps.interval.method == "replications"
    with pytest.raises(ql.ModelError, match="against"):
        T["memory-little"].check(model, mini_run(2, 3, 100, seed=1, rate=1.5), against="x")


def test_fluid_check_on_hand_built_wall_clock_run():
    model = wall_model(2, 3, 2, 1, 0.01)  # rho = 0.24, Delta* = 25/19
    run = mini_run(2, 3, 20000, seed=7, wall=(2, 1, 0.01))
    v = T["fluid-benchmark"].check(model, run)
    assert v.holds, str(v)
    assert v.theory == pytest.approx(25 / 19) and v.quantity == "delta_star"
    lo, hi = v.details["mean_memory_ci"]
    assert lo <= 600 / 19 <= hi  # M* = memory Little's mean KV, exact here
    with pytest.raises(ql.ModelError, match="prefill_stage"):
        T["fluid-benchmark"].check(model, run, prefill_stage=True)
    # a run that is not the model's: iterations too slow for Delta*
    slow = mini_run(2, 3, 20000, seed=7, wall=(2, 1.2, 0.01))
    assert not T["fluid-benchmark"].check(model, slow).holds


def test_nsz_check_on_hand_built_runs():
    model = ql.ContinuousBatching(types=[ql.RequestType(2, 3, 1.5)], kv_capacity=24)  # mu = 24/12 = 2
    v = T["nsz-threshold"].check(model, mini_run(2, 3, 20000, seed=3, rate=1.5))
    assert v.holds and v.theory == 2 and v.test == "one-sided bound (upper)" and "cannot detect" in v.reason
    over = T["nsz-threshold"].check(model, mini_run(2, 3, 20000, seed=3, rate=3.0))  # impossible in M = 24
    assert not over.holds and "one-sided" in over.reason


# -- checks on simulated runs (ql.simulate) ------------------------------------------------------
def test_memory_little_on_simulated_runs():
    from queueing_llm.verify import verify

    # random lengths, no memory limit: no evictions, the law holds with realised and with mean C
    m = ql.ContinuousBatching(types=[ql.RequestType(ql.FinitePMF({2: 0.5, 6: 0.5}), ql.Geometric(0.25), 1.5)])
    run = ql.simulate(m, 20000, seed=1, engine="fast", warmup=200)
    assert run.evictions.sum() == 0
    v = verify("memory-little", m, run)
    assert v.holds, str(v)
    assert T["memory-little"].evaluate(m)["mean_kv"] == 48  # 1.5 * (4 * 4 + (28 + 4)/2)
    assert T["memory-little"].check(m, run, against="arrival_rate").holds
    reps = [ql.simulate(m, 4000, seed=s, engine="fast", warmup=200) for s in (11, 12, 13, 14)]
    assert verify("memory-little", m, reps).holds
    # greedy admission above the worst-cycle throughput (17.5): evictions break the law
    over = ql.ContinuousBatching(types=[ql.RequestType(2, 2, 25)], kv_capacity=140)
    bad = T["memory-little"].check(over, ql.simulate(over, 5000, seed=2, engine="fast", warmup=200))
    assert bad.status == "does not apply" and "evicted" in bad.reason


def test_fluid_benchmark_on_simulated_wall_clock_runs():
    w = wall_model(2, 3, 2, 1, 0.01)  # rho = 0.24: Delta* = 25/19 s, M* = 600/19 tokens
    run = ql.simulate(w, 20000, seed=3, engine="fast", warmup=200)
    v = T["fluid-benchmark"].check(w, run)
    assert v.holds and v.quantity == "delta_star", str(v)
    lo, hi = v.details["mean_memory_ci"]
    assert lo <= 600 / 19 <= hi
    # M* = 56.25 > M = 50 (rho = 0.36 < 1): infeasible, the number in system grows
    tight = wall_model(2, 3, 3, 1, 0.01, kv=50)
    assert T["fluid-benchmark"].evaluate(tight)["feasible"] is False
    drift = T["fluid-benchmark"].check(tight, ql.simulate(tight, 5000, seed=4, engine="fast", warmup=200))
    assert drift.holds and drift.quantity == "overload_drift" and drift.interval.low > 0


def test_nsz_threshold_on_simulated_saturated_runs():
    greedy = ql.ContinuousBatching(types=[ql.RequestType(2, 2)], kv_capacity=140)  # mu = x* = 20
    run = ql.simulate(greedy, 5000, seed=5, saturated=True, engine="fast", warmup=100)
    v = T["nsz-threshold"].check(greedy, run)
    assert v.holds and v.theory == 20 and v.estimate == pytest.approx(17.5, abs=0.05)  # the worst cycle
    limited = ql.ContinuousBatching(types=[ql.RequestType(2, 2)], kv_capacity=140, policy="rate_limited")
    v2 = T["nsz-threshold"].check(limited, ql.simulate(limited, 5000, seed=5, saturated=True, engine="fast",
                                                       warmup=100))
    assert v2.holds and v2.estimate == pytest.approx(20, abs=0.05)  # rate limiting reaches mu


def test_nsz_tight_case_on_the_relaxed_rate_limited_map():
    from queueing_llm.verify import verify

    m = ql.default_model()  # mu = x* = 100/61, attained by the relaxed map rate-limited at x*
    v = verify("nsz-threshold", m, seed=1)
    assert v.holds and v.test == "exact" and v.run == "relaxed, rate_limited(x*)"
    assert v.theory == pytest.approx(100 / 61) and v.estimate == pytest.approx(100 / 61, rel=1e-12)
    text = " ".join(T["nsz-threshold"].hypotheses)
    assert "1.598" in text and "does NOT hold" in text  # the contradicted sufficient condition, stated
    chunked = verify("nsz-threshold", m, seed=1, chunk=4)
    assert chunked.status == "does not apply" and "chunk" in chunked.reason
    with pytest.raises(ql.ModelError, match="rate limiting"):
        from queueing_llm.theory import dynamics as dyn

        verify("nsz-threshold", m, dyn.relaxed_trajectory(m, 200, exact=False))  # greedy: not the tight case


def test_violated_hypotheses_do_not_apply():
    from queueing_llm.verify import verify

    # a batch cap too small for the arrivals: nothing is evicted but the queue grows without bound
    capped = ql.ContinuousBatching(types=[ql.RequestType(2, 3, 1.5)], batch_cap=2, policy="fcfs_cap")
    v = verify("memory-little", capped, ql.simulate(capped, 5000, seed=1, engine="fast"))
    assert v.status == "does not apply" and "grows" in v.reason and v.theory == 18
    # a wall-clock model whose greedy runs evict: the fluid identity assumes none
    tight = wall_model(2, 3, 2, 1, 0.01, kv=45)  # M* = 600/19 = 31.6 < 45: feasible, but greedy evicts
    assert T["fluid-benchmark"].evaluate(tight)["feasible"] is True
    run = ql.simulate(tight, 5000, seed=2, engine="fast")
    assert run.evictions.sum() == 2073
    v = verify("fluid-benchmark", tight, run)
    assert v.status == "does not apply" and "evicted 2073 times" in v.reason and v.theory == pytest.approx(25 / 19)
