"""A sweep on a local Dask cluster gives the same rows as the sweep run in this process.

The cluster listens on the loopback interface only (``host="127.0.0.1"``) with two worker
processes of one thread each, so the models, seeds and options really are pickled, sent
to other interpreters and the rows sent back; Dask's task stream shows that every point
ran on a worker. The comparison is bit for bit (``repr`` of the rows: floats' ``repr``
round-trips), the contract of :func:`queueing_llm.sweep` (seeds fixed by the point index
and the root seed, not by the executor).
"""

from __future__ import annotations

import pytest

import queueing_llm as ql

distributed = pytest.importorskip(
    "distributed", reason="distributed is in the test extra (pip install '.[test]'); without it there is no cluster"
)


def batch_capped(rate: float, prompt: int) -> ql.ContinuousBatching:
    """A Geo^X/Geo/8 queue: geometric decode lengths with q = 1/4, Poisson arrivals."""
    return ql.ContinuousBatching(ql.RequestType(prompt, ql.Geometric(0.25), arrivals=rate), batch_cap=8,
                                 policy="fcfs_cap")


OPTIONS = dict(iterations=2_000, replications=2, seed=11, theorems=("stability", "stationary"))


@pytest.mark.slow
def test_sweep_on_a_local_dask_cluster_equals_the_in_process_sweep():
    points = ql.grid(rate=[0.5, 1.5], prompt=[2, 3])
    local = ql.sweep(batch_capped, points, **OPTIONS)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, protocol="tcp") as cluster, \
            distributed.Client(cluster) as client:
        workers = set(client.scheduler_info()["workers"])
        assert len(workers) == 2 and all(addr.startswith("tcp://127.0.0.1:") for addr in workers), workers
        with distributed.get_task_stream(client) as stream:
            on_dask = ql.sweep(batch_capped, points, executor=client.get_executor(), **OPTIONS)
    assert [r["rate"] for r in on_dask.rows] == [0.5, 0.5, 1.5, 1.5]
    assert repr(on_dask.rows) == repr(local.rows)
    assert on_dask.metadata["point_seeds"] == local.metadata["point_seeds"]
    # every point ran as a task on a worker of the cluster, none in this process
    tasks = [t for t in stream.data if "run_point" in str(t["key"])]
    assert len(tasks) == len(points), stream.data
    assert {t["worker"] for t in tasks} <= workers
    # the rows carry the theorems' values and verdicts, not only the summaries
    assert all("stationary.holds" in row and "stability.theory" in row for row in on_dask.rows)
