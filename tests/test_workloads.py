"""Regular (Beatty) arrivals and fixed-workload runs (issue 9 items 2 and 3)."""

import numpy as np
import pytest
import sympy as sp

import queueing_llm as ql


def test_regular_counts_are_the_beatty_sequence():
    law = ql.Regular(sp.Rational(13, 8))
    n = np.arange(0, 40)
    expected = np.floor((n + 1) * 13 / 8).astype(int) - np.floor(n * 13 / 8).astype(int)
    assert law.counts(0, 40).tolist() == expected.tolist()
    assert law.counts(0, 8).sum() == 13 and law.mean == sp.Rational(13, 8)
    assert law.pgf().subs(sp.Symbol("z"), 1) == 1
    with pytest.raises(ql.LawError, match="Regular rate"):
        ql.Regular(-1)


@pytest.mark.parametrize("engine", ["events", "fast", "python"])
def test_every_engine_gets_the_same_regular_arrivals(engine):
    m = ql.ContinuousBatching([ql.RequestType(2, 3, ql.Regular(1.6)), ql.RequestType(1, 2, ql.Regular(0.25))],
                              kv_capacity=50)
    run = ql.simulate(m, 5000, seed=4, engine=engine)
    ref = ql.simulate(m, 5000, seed=4, engine="events")
    assert run.arrivals[:, 0].tolist() == ql.Regular(1.6).counts(0, 5000).tolist()
    assert np.array_equal(run.completions, ref.completions) and np.array_equal(run.memory, ref.memory)


def test_fixed_workload_stops_at_the_nth_completion_and_is_a_prefix():
    m = ql.ContinuousBatching([ql.RequestType(20, 10, ql.PoissonProcess(40.0))], kv_capacity=4000,
                              iteration_time=ql.LinearIterationTime(0.01, 1e-5))
    run = ql.simulate(m, 100_000, seed=3, requests=500)
    done = np.cumsum(run.completions.sum(axis=1))
    assert done[-1] >= 500 and done[-2] < 500  # the last iteration completes the 500th request
    longer = ql.simulate(m, run.iterations + 300, seed=3)
    assert np.array_equal(longer.completions[: run.iterations], run.completions)
    s = run.summary(warmup=10)
    assert s["throughput_per_second"] == pytest.approx(40, rel=0.1) and s["restarts_per_request"] == 0
    with pytest.raises(ql.ModelError, match="budget of iterations=50"):
        ql.simulate(m, 50, seed=3, requests=10**6)


def test_seed_may_be_a_seed_sequence_or_a_generator():
    """Either becomes one integer seed, recorded in the run: repeating with it gives the same run."""
    m = ql.default_model()
    for seed in (np.random.SeedSequence(5), np.random.default_rng(5)):
        run = ql.simulate(m, 300, seed=seed)
        again = ql.simulate(m, 300, seed=run.seed)
        assert isinstance(run.seed, int) and np.array_equal(run.memory, again.memory)
    a = ql.simulate(m, 300, seed=np.random.SeedSequence(5))
    b = ql.simulate(m, 300, seed=np.random.SeedSequence(5))
    assert a.seed == b.seed
    reps = ql.simulate(m, 200, seed=np.random.SeedSequence(7), replications=2)
    assert len(reps) == 2
    with pytest.raises(ql.ModelError, match="seed"):
        ql.simulate(m, 10, seed="abc")
