"""Request mixing ([ADLS26] 5.2): routing, the mixing theorem, and the restarts it saves."""

import dataclasses
import math

import numpy as np
import pytest

import queueing_llm as ql
from queueing_llm.cluster import ROUTINGS, Cluster, coprime_routing
from queueing_llm.stats import replications_ci
from queueing_llm.testing import perturb
from queueing_llm.theory import dynamics as dyn


def four_types(M=600):
    return ql.ContinuousBatching([ql.RequestType(30, d, 0.5) for d in (6, 10, 9, 15)], kv_capacity=M)


def test_coprime_routing_maximises_gcd_one_engines():
    m = four_types()
    groups = coprime_routing(m.types, 2)
    gcds = [math.gcd(*[int(m.types[k].l1) for k in g]) for g in groups]
    assert sorted(k for g in groups for k in g) == [0, 1, 2, 3]
    assert gcds.count(1) == 1  # the most possible: {6,10,9,15} in two pairs always leaves a shared factor
    m2 = ql.ContinuousBatching([ql.RequestType(30, d, 0.5) for d in (2, 4, 3, 9)], kv_capacity=600)
    g2 = coprime_routing(m2.types, 2)
    assert [math.gcd(*[int(m2.types[k].l1) for k in g]) for g in g2] == [1, 1]


def test_routing_errors_name_the_problem():
    with pytest.raises(ql.ModelError, match="exactly one engine"):
        Cluster(four_types(), 2, [[0, 1], [1, 2, 3]])
    with pytest.raises(ql.ModelError, match="engines"):
        coprime_routing(four_types().types, 5)
    for bad in ("join_shortest_queue", 3, {0: [0]}, [[0, 1], "23"], [[0, 1.0], [2, 3]]):
        with pytest.raises(ql.ParameterError, match="routing"):
            Cluster(four_types(), 2, bad)
    wall = ql.ContinuousBatching([ql.RequestType(30, d, ql.PoissonProcess(10.0)) for d in (6, 9)], kv_capacity=600,
                                 iteration_time=ql.LinearIterationTime(0.01, 0.0))
    with pytest.raises(ql.ParameterError, match="routing 'round_robin_requests'.*seconds"):
        Cluster(wall, 2, "round_robin_requests")
    Cluster(wall, 2, [[0], [1]])  # by type the engines keep their own Poisson processes
    with pytest.raises(ql.ParameterError, match="weights apply to routing 'random' only"):
        Cluster(four_types(), 2, "round_robin_requests", weights=[0.5, 0.5])
    with pytest.raises(ql.ParameterError, match="sum to 1"):
        Cluster(four_types(), 2, "random", weights=[0.5, 0.6])
    with pytest.raises(ql.ParameterError, match="weights must hold 2"):
        Cluster(four_types(), 2, "random", weights=[1.0])
    with pytest.raises(ql.ParameterError, match="weights\\[0\\]"):
        Cluster(four_types(), 2, "random", weights=[1.5, -0.5])
    with pytest.raises(ql.ParameterError, match="once per seed"):
        Cluster(four_types(), 2, "random").simulate(10, replications=3)


def test_round_robin_is_round_robin_types():
    m = four_types()
    assert Cluster(m, 3, "round_robin").groups == Cluster(m, 3, "round_robin_types").groups == [[0, 3], [1], [2]]
    assert Cluster(m, 3, "round_robin_requests").groups == [[0, 1, 2, 3]] * 3
    assert set(ROUTINGS) == {"round_robin_types", "round_robin", "coprime", "round_robin_requests", "random"}


def test_mixing_evaluate_gcds_and_radii():
    v = ql.theorems["mixing"].evaluate(four_types(), routing=[[0, 1], [2, 3]])
    assert v["gcd_per_engine"] == [2, 3] and v["limiting_radius_per_engine"] == [1, 1] and v["stable"] is False
    assert ql.theorems["mixing"].applies(ql.default_model()) is not None


def test_mixing_check_holds_and_detects_wrong_radii():
    m = four_types()
    v = ql.verify("mixing", m)
    assert v.holds and v.test == "exact"
    for factor in (0.95, 1.05):
        assert ql.verify(perturb(ql.theorems["mixing"], "spectral_radius_per_engine", factor), m).status == "FAILS"
    runs = Cluster(m, 2, [[0, 1], [2, 3]]).relaxed_runs(2000)
    assert ql.theorems["mixing"].check(m, runs, routing=[[0, 1], [2, 3]]).holds


@pytest.mark.parametrize("routing", [*ROUTINGS, [[0, 1], [2, 3]]], ids=str)
def test_verify_mixing_builds_the_runs_of_the_routing_asked_for(routing):
    m = four_types()
    v = ql.verify("mixing", m, routing=routing)
    assert v.holds is True and v.test == "exact"  # a real comparison, not "does not apply"
    assert v.run == f"relaxed, engine 1 of 2, routing {routing} + relaxed, engine 2 of 2, routing {routing}"
    # the measured rates are of this routing's engines: their radii, from the engines' own models
    radii = [float(dyn.spectral_radius(e)) for e in Cluster(m, 2, routing).engine_models()]
    assert v.details["measured"] == pytest.approx(radii, rel=1e-3)
    for factor in (0.95, 1.05):  # 5 % off: the verdict fails
        wrong = perturb(ql.theorems["mixing"], "spectral_radius_per_engine", factor)
        assert ql.verify(wrong, m, routing=routing).status == "FAILS"


def test_verify_mixing_runs_follow_the_engine_count_and_wrong_engines_do_not_apply():
    m = four_types()
    coprime, by_request = (sorted(float(dyn.spectral_radius(e)) for e in Cluster(m, 2, r).engine_models())
                           for r in ("coprime", "round_robin_requests"))
    assert coprime != pytest.approx(by_request, rel=0.01)  # the routings' predictions differ: the runs must too
    v = ql.verify("mixing", m, engines=3, routing="random")
    assert v.holds is True and v.run.count("relaxed, engine") == 3 and "engine 3 of 3, routing random" in v.run
    runs = Cluster(m, 2, "coprime").relaxed_runs(300)  # the default routing's engines, verified for another
    assert ql.verify("mixing", m, runs, routing="round_robin_requests").holds is None
    assert len(ql.theorems["mixing"].runs_for(engines=4, routing="round_robin_types")) == 4
    assert ql.theorems["mixing"].runs_for() == ql.theorems["mixing"].runs
    with pytest.raises(ql.ParameterError, match="engines must be an integer >= 1, got 0"):
        ql.verify("mixing", m, engines=0)


def test_verify_mixing_runs_of_another_routing_with_the_same_decodes_do_not_apply():
    """Types that differ only in their prompts: the coprime engines serve the same decode
    lengths as the asked routing's, but not the same types; their runs are not the routing's."""
    T = ql.RequestType
    m = ql.ContinuousBatching([T(30, 6, 0.5), T(4, 6, 0.5), T(30, 11, 0.5), T(4, 11, 0.5)], kv_capacity=600)
    asked = [[0, 2], [1, 3]]
    assert Cluster(m, 2, "coprime").groups != asked
    runs = Cluster(m, 2, "coprime").relaxed_runs(2000)
    v = ql.verify("mixing", m, runs, routing=asked)
    assert v.holds is None and "not of engine 1 of the routing" in v.reason
    assert ql.verify("mixing", m, runs).holds is True  # the runs are right for their own routing
    assert ql.verify("mixing", m, Cluster(m, 2, asked).relaxed_runs(2000), routing=asked).holds is True


def _node(decodes, M, l0=30):
    sat = ql.ContinuousBatching([ql.RequestType(l0, d) for d in decodes], kv_capacity=M)
    xs = float(dyn.fixed_point(sat))
    return ql.ContinuousBatching([ql.RequestType(l0, d, xs / len(decodes)) for d in decodes], kv_capacity=M)


@pytest.mark.parametrize(("M", "segregated", "mixed"), [
    (600, [(6, 10), (9, 15)], (6, 9, 10, 15)),        # [ADLS26] Table 4's node sets
    (1000, [(20, 40), (25, 50)], (20, 25, 40, 50)),    # Table 5's
])
def test_coprime_mixing_restarts_fewer_than_segregated_nodes(M, segregated, mixed):
    """Each node gets Poisson arrivals at its own x* (equal utilisation) for 500 iterations;
    the mixed node (gcd 1) restarts fewer requests than each segregated node (gcd > 1), by a
    difference whose 99% replication interval lies above 0."""
    def restarts(decodes, seeds):
        return [int(ql.simulate(_node(decodes, M), 500, seed=s).evictions.sum()) for s in seeds]

    mixed_r = restarts(mixed, range(100, 130))
    for i, s in enumerate(segregated):
        seg_r = restarts(s, range(200 + 30 * i, 230 + 30 * i))
        diff = replications_ci(np.array(seg_r) - np.array(mixed_r), 0.99)
        assert diff.low > 0, (s, diff)


# -- per-request routing: one pooled stream split request by request --------------------------

def small_pool(rates=(0.9, 0.7), M=600):
    return ql.ContinuousBatching([ql.RequestType(30, d, r) for d, r in zip((6, 9), rates, strict=True)], kv_capacity=M)


def engine_counts(routes, engines, iterations, K):
    """Per-engine (iteration, type) counts of the routed pooled requests."""
    out = np.zeros((engines, iterations, K), dtype=np.int64)
    np.add.at(out, (routes["engine"], routes["iteration"], routes["type"]), 1)
    return out


@pytest.mark.parametrize("routing", ["round_robin_requests", "random"])
def test_every_pooled_arrival_reaches_exactly_one_engine(routing):
    """Conservation: the engines' arrivals are the pooled stream's routed requests, and they add
    up, iteration by iteration and type by type, to the arrivals of the pooled model simulated
    alone with the pooled seed (an independent draw of the same stream by the simulator)."""
    m, N, E = small_pool(), 5000, 3
    c = Cluster(m, E, routing)
    run = c.simulate(N, seed=11)
    routes = c.routes(N, seed=run.pool_seed)
    assert set(np.unique(routes["engine"]).tolist()) == set(range(E))
    per_engine = engine_counts(routes, E, N, m.K)
    for e in range(E):
        assert np.array_equal(run.runs[e].arrivals, per_engine[e])
    alone = ql.simulate(m, N, seed=run.pool_seed)
    assert np.array_equal(sum(r.arrivals for r in run.runs), alone.arrivals)
    assert int(alone.arrivals.sum()) == routes["type"].size == sum(int(r.arrivals.sum()) for r in run.runs)
    # the requests themselves (prompt, decode) travel with them
    for e in range(E):
        recs = run.runs[e].requests
        sel = routes["engine"] == e
        assert np.array_equal(np.sort(np.asarray(recs.decode)), np.sort(routes["decode"][sel]))


def test_round_robin_requests_counts_differ_by_at_most_one():
    m, N, E = small_pool(), 3000, 3
    run = Cluster(m, E, "round_robin_requests").simulate(N, seed=5)
    cumulative = np.stack([np.cumsum(r.arrivals.sum(axis=1)) for r in run.runs])
    assert cumulative[-1].sum() > 4000
    # engine 0 takes the first request, engine 1 the second, ...: at every iteration
    # engine 0 >= engine 1 >= ... >= engine E-1 >= engine 0 - 1
    assert np.all(np.diff(cumulative, axis=0) <= 0)
    assert np.all(cumulative[0] - cumulative[-1] <= 1)
    # "random" does not balance so: its counts drift apart
    rnd = Cluster(m, E, "random").simulate(N, seed=5)
    totals = [int(r.arrivals.sum()) for r in rnd.runs]
    assert max(totals) - min(totals) > 1


def test_per_request_runs_are_reproducible_and_engine_independent():
    m = small_pool(M=300)  # evicts
    c = Cluster(m, 2, "round_robin_requests")
    a, b = c.simulate(3000, seed=9), c.simulate(3000, seed=9)
    other = c.simulate(3000, seed=10)
    for ra, rb in zip(a.runs, b.runs, strict=True):
        for key in ("arrivals", "queue", "memory", "evictions", "completions"):
            assert np.array_equal(getattr(ra, key), getattr(rb, key))
    assert a.pool_seed == b.pool_seed != other.pool_seed
    assert not np.array_equal(a.runs[0].arrivals, other.runs[0].arrivals)
    assert sum(int(r.evictions.sum()) for r in a.runs) > 0
    for engine in ("events", "python"):
        e = c.simulate(3000, seed=9, engine=engine)
        for ra, re in zip(a.runs, e.runs, strict=True):
            assert np.array_equal(ra.memory, re.memory) and np.array_equal(ra.evictions, re.evictions)


def test_one_engine_per_request_is_the_pooled_run():
    """With E = 1 every request goes to the one engine: the run is the pooled model's run with
    the pooled seed, bit for bit."""
    m = small_pool(M=300)
    run = Cluster(m, 1, "round_robin_requests").simulate(5000, seed=4)
    alone = ql.simulate(m, 5000, seed=run.pool_seed)
    for key in ("arrivals", "queue", "memory", "evictions", "completions", "admissions"):
        assert np.array_equal(getattr(run.runs[0], key), getattr(alone, key))


def test_wall_clock_per_iteration_laws_split_the_same_way():
    """Wall-clock engines with per-iteration laws (several types: the Python loop and SimPy)."""
    m = dataclasses.replace(small_pool(), iteration_time=ql.LinearIterationTime(0.01, 1e-5))
    c = Cluster(m, 2, "round_robin_requests")
    fast, events = c.simulate(2000, seed=3, engine="python"), c.simulate(2000, seed=3, engine="events")
    routes = c.routes(2000, seed=fast.pool_seed)
    per_engine = engine_counts(routes, 2, 2000, m.K)
    for e in range(2):
        assert np.array_equal(fast.runs[e].arrivals, per_engine[e])
        assert np.array_equal(fast.runs[e].time, events.runs[e].time)


def _round_robin_variance(lam, E):
    """Stationary variance of one engine's per-iteration count when a Poisson(lam) stream is
    dealt round robin to E engines (the counter's phase uniform and independent of the
    iteration's count N): c = floor(N/E) + 1{the phase gives it one of the N mod E extra}."""
    from scipy.stats import poisson

    n = np.arange(0, int(lam + 60 * math.sqrt(lam) + 60))
    p = poisson.pmf(n, lam)
    q, r = n // E, n % E
    second = np.sum(p * (q**2 + (2 * q + 1) * r / E))
    return second - (lam / E) ** 2


def test_round_robin_of_poisson_is_erlang_thinned():
    """Round robin of a Poisson(3) stream to 3 engines: each engine's per-iteration count has
    mean 1 and the variance of round-robin (Erlang-3) thinning (computed above independently, 0.483), below
    Poisson's 1; random routing (independent thinning) keeps Poisson's variance. 95%
    replication intervals over 16 cluster runs; the variance test would fail for Poisson
    splitting."""
    lam, E = 3.0, 3
    m = ql.ContinuousBatching([ql.RequestType(5, 3, lam)], kv_capacity=10_000)
    exact = _round_robin_variance(lam, E)
    assert exact < 0.5 * lam / E

    def moments(routing):
        means, variances = [], []
        for s in range(16):
            run = Cluster(m, E, routing).simulate(4096, seed=1000 + s, record="iterations")
            x = run.runs[s % E].arrivals[100:, 0]
            means.append(x.mean())
            variances.append(x.var(ddof=1))
        return replications_ci(np.array(means), 0.95), replications_ci(np.array(variances), 0.95)

    mean, var = moments("round_robin_requests")
    assert mean.low <= lam / E <= mean.high
    assert var.low <= exact <= var.high and var.high < lam / E
    mean, var = moments("random")
    assert mean.low <= lam / E <= mean.high
    assert var.low <= lam / E <= var.high


def test_random_weights_give_binomial_shares():
    m, N = small_pool(), 20_000
    c = Cluster(m, 2, "random", weights=[0.2, 0.8])
    routes = c.routes(N, seed=2)
    n = routes["engine"].size
    share = float(np.mean(routes["engine"] == 0))
    assert abs(share - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n)
    # independent of the type: type 0's share at engine 0 is 0.2 as well
    t0 = routes["type"] == 0
    assert abs(float(np.mean(routes["engine"][t0] == 0)) - 0.2) < 4 * math.sqrt(0.16 / t0.sum())


def test_routed_arrivals_as_laws():
    import sympy as sp

    from queueing_llm.sim.routed import RoutedArrivals

    m = small_pool()
    rnd = Cluster(m, 2, "random", weights=[0.25, 0.75]).engine_models()[1].types[0].arrivals
    rr = Cluster(m, 3, "round_robin_requests").engine_models()[2].types[1].arrivals
    assert isinstance(rnd, RoutedArrivals) and isinstance(rr, RoutedArrivals)
    z = sp.Symbol("z")
    assert sp.simplify(rnd.pgf(z) - sp.exp(sp.Rational(9, 10) * sp.Rational(3, 4) * (z - 1))) == 0  # thinned Poisson
    from scipy.stats import poisson

    assert np.allclose(rnd.pmf(np.arange(6)), poisson.pmf(np.arange(6), 0.9 * 0.75))
    assert float(rr.mean) == pytest.approx(0.7 / 3)
    with pytest.raises(ql.LawError, match="no closed-form"):
        rr.pgf(z)
    import pickle

    assert pickle.loads(pickle.dumps(rr)) == rr and hash(pickle.loads(pickle.dumps(rr))) == hash(rr)
    assert rr != Cluster(m, 3, "round_robin_requests").engine_models(seed=1)[2].types[1].arrivals
    # sample() replays the engine's counts (no generator draw)
    counts = rr.sample(np.random.default_rng(0), 5000)
    routes = Cluster(m, 3, "round_robin_requests").routes(5000, seed=0)
    sel = (routes["engine"] == 2) & (routes["type"] == 1)
    assert np.array_equal(counts, np.bincount(routes["iteration"][sel], minlength=5000))


def test_pooled_summary_combines_the_engines():
    m = small_pool(rates=(1.2, 1.0), M=300)  # evicts
    for routing in ("round_robin_requests", [[0], [1]]):
        run = Cluster(m, 2, routing).simulate(4000, seed=8, warmup=500)
        sums, pooled = run.summaries(), run.pooled()
        for key in ("throughput", "arrivals_per_iteration", "evictions_per_iteration", "mean_memory",
                    "completed_requests"):
            assert pooled[key] == pytest.approx(sum(s[key] for s in sums))
        restarts = sum(int(r.evictions[500:].sum()) for r in run.runs)
        assert pooled["restarts"] == restarts > 0
        # request-level means from the records: requests arrived at or after the warm-up that completed
        recs = [r.requests for r in run.runs]
        chosen = [(np.asarray(q.arrival) >= 500) & np.asarray(q.completed) & ~np.asarray(q.initial) for q in recs]
        done = sum(int(c.sum()) for c in chosen)
        assert pooled["completed_requests"] == done
        sojourn = sum(int((np.asarray(q.completion) - np.asarray(q.arrival))[c].sum())
                      for q, c in zip(recs, chosen, strict=True))
        assert pooled["mean_sojourn"] == pytest.approx(sojourn / done)
        evicted = sum(int(np.asarray(q.evicted)[c].sum()) for q, c in zip(recs, chosen, strict=True))
        assert pooled["restarts_per_request"] == pytest.approx(evicted / done)
        assert pooled["peak_memory"] == max(s["peak_memory"] for s in sums)


def test_saturated_engines_serve_the_pooled_mix():
    m = four_types()
    run = Cluster(m, 2, "round_robin_requests").simulate(500, seed=1, saturated=True)
    for r in run.runs:
        assert sorted(int(t.l1) for t in r.model.types) == [6, 9, 10, 15]
        assert np.all(r.completions[100:].sum(axis=0) > 0)  # every type completes at every engine


def test_mixing_per_request_gives_every_engine_the_full_set():
    m = four_types()
    v = ql.theorems["mixing"].evaluate(m, engines=3, routing="round_robin_requests")
    assert v["per_request"] is True and v["groups"] == [[0, 1, 2, 3]] * 3
    assert v["gcd_per_engine"] == [1, 1, 1] == Cluster(m, 3, "round_robin_requests").gcd_per_engine
    assert Cluster(m, 2, [[0, 1], [2, 3]]).gcd_per_engine == [2, 3]  # {6, 10} and {9, 15}
    even = ql.ContinuousBatching([ql.RequestType(30, d, 0.5) for d in (6, 10, 4)], kv_capacity=600)
    assert Cluster(even, 2, "random").gcd_per_engine == [2, 2]  # the full set {6, 10, 4}
    pooled_radius = float(dyn.spectral_radius(m))
    assert v["spectral_radius_per_engine"] == pytest.approx([pooled_radius] * 3)
    assert ql.theorems["mixing"].evaluate(m, routing=[[0, 1], [2, 3]])["per_request"] is False
    runs = Cluster(m, 2, "round_robin_requests").relaxed_runs(2000)
    assert ql.theorems["mixing"].check(m, runs, routing="round_robin_requests").holds
    # runs of other engines (the type routing's) do not apply to the per-request prediction
    other = Cluster(m, 2, [[0, 1], [2, 3]]).relaxed_runs(200)
    assert ql.theorems["mixing"].check(m, other, routing="round_robin_requests").holds is None


def test_cluster_docstring_example():
    import doctest

    import queueing_llm.cluster as mod

    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(mod.Cluster, "Cluster", globs={}):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 3 and result.failed == 0


def test_replay_memory_is_a_few_blocks():
    """The pooled stream is regenerated block by block: a long run keeps a few blocks, not the horizon."""
    from queueing_llm.sim import routed
    from queueing_llm.sim.draws import ITERATION_BLOCK

    run = Cluster(small_pool(), 2, "round_robin_requests").simulate(12 * ITERATION_BLOCK, seed=6, record="summary")
    assert run.pooled()["arrivals_per_iteration"] == pytest.approx(1.6, rel=0.02)
    kept = [len(entry["kept"]) for entry in routed._CACHE.entries.values()]
    assert kept and max(kept) <= routed._CACHED_BLOCKS < 12


def test_initial_batch_runs_start_the_pooled_stream_at_iteration_1():
    m, N = small_pool(), 3000
    c = Cluster(m, 2, "round_robin_requests")
    run = c.simulate(N, seed=12, initial_batch=[[2, 1], [1]])
    routes = c.routes(N, seed=run.pool_seed, first=1)
    assert routes["iteration"].min() >= 1
    per_engine = engine_counts(routes, 2, N, m.K)
    for e in range(2):
        arrivals = run.runs[e].arrivals.copy()
        arrivals[0] = 0  # iteration 0 holds the initial members
        assert np.array_equal(arrivals, per_engine[e])
    np_routing = Cluster(four_types(), 2, [np.array([0, 1]), [np.int64(2), 3]])
    assert np_routing.groups == [[0, 1], [2, 3]]


def test_per_request_mixing_restarts_fewer_than_type_segregated_engines():
    """[ADLS26] 5.2 on one cluster: the Table 4 types {6, 10, 9, 15} (l0 = 30, M = 600) at a total
    rate of twice the mixed node's x*, over 2 engines for 500 iterations. Dealing requests round
    robin gives each engine the full set (gcd 1); routing the types as {6, 10} and {9, 15} gives
    gcds 2 and 3. The per-request cluster restarts fewer requests, by a difference whose 99%
    replication interval lies above 0 (measured: 101 [96, 105] against 149 [145, 153])."""
    decodes, M = (6, 10, 9, 15), 600
    xs = float(dyn.fixed_point(ql.ContinuousBatching([ql.RequestType(30, d) for d in decodes], kv_capacity=M)))
    m = ql.ContinuousBatching([ql.RequestType(30, d, 2 * xs / 4) for d in decodes], kv_capacity=M)

    def restarts(routing, seeds):
        return np.array([Cluster(m, 2, routing).simulate(500, seed=s).pooled()["restarts"] for s in seeds])

    diff = replications_ci(restarts([[0, 1], [2, 3]], range(30)) - restarts("round_robin_requests", range(30, 60)),
                           0.99)
    assert diff.low > 0, diff


# -- each engine's policy (issue 9 item 1, review): per-type data re-indexed -----------------------------


def test_wait_cluster_routed_by_type_runs_each_engine_on_its_own_types():
    """The reviewer's case: WAIT with routing by type raised ParameterError "unknown [2, 3]"."""
    m4 = four_types()
    run = Cluster(m4.with_policy(ql.fluid_wait(m4)), 2, "coprime").simulate(500, seed=0)
    assert len(run.runs) == 2 and run.pooled()["completed_requests"] > 0
    # distinct thresholds and budgets: each engine keeps its types' numbers, in its own indices
    wait = ql.Wait(thresholds={0: 1, 1: 2, 2: 3, 3: 4}, budgets={0: 6, 1: 20, 2: 27, 3: 60})
    c = Cluster(m4.with_policy(wait), 2, [[0, 3], [2, 1]])
    policies = [m.policy for m in c.engine_models()]
    assert policies[0].thresholds == {0: 1, 1: 4} and policies[0].budgets == {0: 6, 1: 60}
    assert policies[1].thresholds == {0: 3, 1: 2} and policies[1].budgets == {0: 27, 1: 20}
    assert all(p.trigger == "any" and p.stall for p in policies)
    # the engine runs are those of the restricted models built by hand, with the engines' seeds
    run = c.simulate(600, seed=3)
    seeds = np.random.SeedSequence(3).spawn(3)
    for e, (g, th) in enumerate((([0, 3], {0: 1, 1: 4}), ([2, 1], {0: 3, 1: 2}))):
        budgets = {i: wait.budgets[k] for i, k in enumerate(g)}
        by_hand = ql.ContinuousBatching([m4.types[k] for k in g], kv_capacity=600,
                                        policy=ql.Wait(thresholds=th, budgets=budgets))
        ref = ql.simulate(by_hand, 600, seed=int(seeds[e].generate_state(1)[0]))
        assert run.runs[e].equals(ref)
    # per-request routings give every engine every type: the value is unchanged
    per_request = Cluster(m4.with_policy(wait), 2, "round_robin_requests")
    assert [m.policy for m in per_request.engine_models()] == [wait, wait]
    assert ql.theorems["mixing"].evaluate(m4.with_policy(wait))["groups"] == [[0, 3], [1, 2]]


def test_nested_wait_has_no_per_type_data_and_runs_per_engine():
    m4 = four_types()
    nested = ql.fluid_nested_wait(m4)
    c = Cluster(m4.with_policy(nested), 2, "coprime")
    assert [m.policy for m in c.engine_models()] == [nested, nested]
    assert c.simulate(300, seed=1).pooled()["completed_requests"] > 0


def test_engine_fluid_thresholds_equal_the_pooled_ones_only_when_slotted_and_by_type():
    """n_k* = lambda_k Delta*: slotted (Delta* = 1) and routed by type, the engine keeps lambda_k, so
    its own fluid thresholds are the pooled ones re-indexed; with a linear iteration time the
    engine's lighter load shortens Delta*_e = d0 / (1 - rho_e), so `policies=ql.fluid_wait` differs."""
    rates = (0.4, 1.3, 2.2, 0.7)
    slotted = ql.ContinuousBatching([ql.RequestType(30, d, r) for d, r in zip((6, 10, 9, 15), rates, strict=True)],
                                    kv_capacity=20_000)
    pooled = ql.fluid_wait(slotted)
    assert pooled.thresholds == {0: 1, 1: 2, 2: 3, 3: 1}
    c = Cluster(slotted.with_policy(pooled), 2, [[1, 3], [0, 2]])
    own = Cluster(slotted.with_policy(pooled), 2, [[1, 3], [0, 2]], policies=ql.fluid_wait)
    assert [m.policy for m in c.engine_models()] == [m.policy for m in own.engine_models()]
    assert c.engine_models()[0].policy.thresholds == {0: 2, 1: 1}
    # by request each engine sees lambda_k / 2: its own fluid thresholds are ceil(lambda_k / 2)
    rr = Cluster(slotted.with_policy(pooled), 2, "round_robin_requests", policies=ql.fluid_wait)
    assert [m.policy.thresholds for m in rr.engine_models()] == [{0: 1, 1: 1, 2: 2, 3: 1}] * 2
    assert [m.policy for m in Cluster(slotted.with_policy(pooled), 2, "round_robin_requests").engine_models()] \
        == [pooled, pooled]

    wall = ql.ContinuousBatching([ql.RequestType(30, d, ql.PoissonProcess(500.0)) for d in (6, 10, 9, 15)],
                                 kv_capacity=40_000, iteration_time=ql.LinearIterationTime(0.01, 1e-6))
    pooled = ql.fluid_wait(wall)
    remapped = Cluster(wall.with_policy(pooled), 2, "coprime").engine_models()
    own = Cluster(wall.with_policy(pooled), 2, "coprime", policies=ql.fluid_wait).engine_models()
    for e, g in enumerate(Cluster(wall, 2, "coprime").groups):
        assert remapped[e].policy.thresholds == {i: pooled.thresholds[k] for i, k in enumerate(g)}
        assert own[e].policy == ql.fluid_wait(remapped[e])
        # the engine's own Delta*_e is shorter: strictly smaller thresholds at this load
        assert all(own[e].policy.thresholds[i] < remapped[e].policy.thresholds[i] for i in range(len(g)))


def test_policies_per_engine_and_their_errors():
    m4 = four_types()
    c = Cluster(m4, 2, "coprime", policies=[ql.Wait(thresholds={0: 2, 1: 1}), "reserve"])
    models = c.engine_models()
    assert models[0].policy.thresholds == {0: 2, 1: 1} and str(models[1].policy) == "reserve"
    assert c.simulate(200, seed=2).pooled()["completed_requests"] > 0
    with pytest.raises(ql.ParameterError, match="policies must hold 2 policies"):
        Cluster(m4, 2, "coprime", policies=["greedy"])
    with pytest.raises(ql.ParameterError, match="policies must be None, a function"):
        Cluster(m4, 2, "coprime", policies="greedy")
    with pytest.raises(ql.ParameterError, match="unknown \\[2\\]"):  # keyed by pooled indices, not the engine's
        Cluster(m4, 2, [[0, 1], [2, 3]], policies=[ql.Wait(thresholds={0: 1, 2: 1}), "greedy"]).engine_models()
    from queueing_llm.cluster import engine_policy

    with pytest.raises(ql.ParameterError, match="no thresholds for the pooled types \\[5\\]"):
        engine_policy(ql.Wait(thresholds={0: 1, 1: 1}), [0, 5])


# -- pooled latency and units (issue 9 item 1, review) -----------------------------------------------------


def _inverted_cdf(values, q):
    """The smallest value whose empirical CDF reaches q, by sorting (independent of numpy.quantile)."""
    v = np.sort(np.asarray(values))
    return float(v[max(math.ceil(q * v.size - 1e-9), 1) - 1])


def test_pooled_latency_quantiles_are_exact_from_the_engines_records():
    m = small_pool(rates=(1.2, 1.0), M=300)  # evicts: latencies spread
    for routing in ("round_robin_requests", [[0], [1]]):
        run = Cluster(m, 2, routing).simulate(3000, seed=8, warmup=300, record="iterations")
        pooled, units = run.pooled(), run.pooled_units()
        assert set(pooled) == set(units) == set(run.pooled_keys())
        recs = [r.requests for r in run.runs]
        chosen = [np.asarray(q.completed) & ~np.asarray(q.initial) & (np.asarray(q.arrival) >= 300) for q in recs]
        latency = np.concatenate([(q.completion - q.arrival)[c] for q, c in zip(recs, chosen, strict=True)])
        ttft = np.concatenate([(q.first_token - q.arrival)[c] for q, c in zip(recs, chosen, strict=True)])
        assert latency.size == pooled["completed_requests"] > 1000
        for q in (0.5, 0.9, 0.99):
            assert pooled[f"latency_p{100 * q:g}"] == _inverted_cdf(latency, q)
            assert pooled[f"ttft_p{100 * q:g}"] == _inverted_cdf(ttft, q)
        assert units["latency_p99"] == units["ttft_p50"] == units["mean_sojourn"] == "iterations"
        assert run.pooled_quantiles([0.25, 0.75]).tolist() == [_inverted_cdf(latency, 0.25),
                                                                _inverted_cdf(latency, 0.75)]
    one = Cluster(m, 1, "round_robin_requests").simulate(2000, seed=2)
    s, p = one.summaries()[0], one.pooled()
    assert all(p[k] == s[k] for k in ("latency_p50", "latency_p90", "latency_p99", "ttft_p50", "ttft_p99"))


def test_pooled_wall_clock_latency_is_in_seconds_and_sojourn_is_not_mixed():
    wall = ql.ContinuousBatching([ql.RequestType(30, d, ql.PoissonProcess(30.0)) for d in (6, 9, 10, 15)],
                                 kv_capacity=600, iteration_time=ql.LinearIterationTime(0.01, 1e-5))
    run = Cluster(wall, 2, "coprime").simulate(3000, seed=1, warmup=200)
    pooled, units = run.pooled(), run.pooled_units()
    assert set(pooled) == set(units) == set(run.pooled_keys())
    assert "mean_sojourn" not in pooled  # iterations of different lengths at different engines
    recs = [r.requests for r in run.runs]
    chosen = [q.completed & ~q.initial & (q.arrival >= 200) for q in recs]
    seconds = np.concatenate([(q.completion_time - q.arrival_time)[c] for q, c in zip(recs, chosen, strict=True)])
    first = np.concatenate([(q.first_token_time - q.arrival_time)[c] for q, c in zip(recs, chosen, strict=True)])
    tbt = np.concatenate([((q.completion_time - q.first_token_time) / (q.decode - 1))[c & (q.decode > 1)]
                          for q, c in zip(recs, chosen, strict=True)])
    assert pooled["mean_latency"] == pytest.approx(seconds.mean(), rel=1e-12)
    assert pooled["mean_ttft"] == pytest.approx(first.mean(), rel=1e-12)
    assert pooled["mean_tbt"] == pytest.approx(tbt.mean(), rel=1e-12)
    for q in (0.5, 0.9, 0.99):
        assert pooled[f"latency_p{100 * q:g}"] == _inverted_cdf(seconds, q)
        assert pooled[f"ttft_p{100 * q:g}"] == _inverted_cdf(first, q)
    assert 0.05 < pooled["latency_p50"] < 1.0  # seconds, not iterations (a request lasts 6 to 15 of them)
    assert units["latency_p50"] == units["mean_latency"] == units["ttft_p99"] == "s"
    assert units["throughput_per_second"] == "requests/s"
    iteration_seconds = [float(np.diff(np.concatenate([[r.time[199]], r.time[200:]])).mean()) for r in run.runs]
    assert pooled["mean_iteration_seconds"] == pytest.approx(np.mean(iteration_seconds), rel=1e-9)


def test_pooled_summary_record_says_quantiles_cannot_be_pooled():
    m = small_pool(rates=(1.2, 1.0), M=300)
    c = Cluster(m, 2, "round_robin_requests")
    full = c.simulate(2000, seed=4, warmup=200, record="iterations")
    summary = c.simulate(2000, seed=4, warmup=200, record="summary")
    p_full, p_sum = full.pooled(), summary.pooled()
    assert set(p_full) - set(p_sum) == {"latency_p50", "latency_p90", "latency_p99", "ttft_p50", "ttft_p90",
                                        "ttft_p99"}
    assert set(p_sum) == set(summary.pooled_units()) == set(summary.pooled_keys())
    assert all(p_sum[k] == p_full[k] for k in p_sum)  # everything else pools from the summaries, exactly
    with pytest.raises(ql.ParameterError, match="record='summary'.*do not pool"):
        summary.pooled_quantiles()
    with pytest.raises(ql.ParameterError, match="which must be"):
        full.pooled_quantiles(which="tbt")
    with pytest.raises(ql.ParameterError, match="levels"):
        full.pooled_quantiles([1.5])
