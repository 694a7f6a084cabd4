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
