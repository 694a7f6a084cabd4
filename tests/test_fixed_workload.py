"""Fixed-workload runs (``simulate(..., requests=N)``, issue 9 item 3) with independent replications."""

import numpy as np

import queueing_llm as ql
from queueing_llm.sim.replications import replication_seeds


def test_fixed_workload_replications_are_r_fixed_workload_runs():
    """``requests=N, replications=R``: R runs, each stopping at its own N-th completion, equal
    to the fixed-workload run of its spawned seed (replications were silently ignored)."""
    m = ql.ContinuousBatching([ql.RequestType(20, 10, ql.PoissonProcess(40.0))], kv_capacity=4000,
                              iteration_time=ql.LinearIterationTime(0.01, 1e-5))
    reps = ql.simulate(m, 100_000, seed=3, requests=200, replications=3)
    assert isinstance(reps, ql.sim.Replications) and len(reps) == 3
    seeds = replication_seeds(3, 3)
    assert reps.seeds == seeds
    for run, seed in zip(reps, seeds, strict=True):
        done = np.cumsum(run.completions.sum(axis=1))
        assert done[-1] >= 200 and done[-2] < 200
        alone = ql.simulate(m, 100_000, seed=seed, requests=200)
        assert run.iterations == alone.iterations and np.array_equal(run.completions, alone.completions)
    makespans = [float(run.time[-1]) for run in reps]
    assert len(set(makespans)) > 1  # independent streams: different makespans


def test_fixed_workload_summary_has_the_makespan_with_its_unit():
    wall = ql.ContinuousBatching([ql.RequestType(20, 10, ql.PoissonProcess(40.0))], kv_capacity=4000,
                                 iteration_time=ql.LinearIterationTime(0.01, 1e-5))
    run = ql.simulate(wall, 100_000, seed=3, requests=300)
    s, units = run.summary(), run.summary_units()
    assert s["makespan"] == float(run.time[-1]) and units["makespan"] == "s"
    assert s["requests_target"] == 300 and run.metadata["requests"] == 300
    slotted = ql.ContinuousBatching([ql.RequestType(10, 40, 1.2)], kv_capacity=2000)
    run = ql.simulate(slotted, 100_000, seed=3, requests=300)
    assert run.summary()["makespan"] == run.iterations and run.summary_units()["makespan"] == "iterations"
    # an ordinary run has no makespan
    assert "makespan" not in ql.simulate(slotted, 500, seed=3).summary()
