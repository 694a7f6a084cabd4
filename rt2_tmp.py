import time, numpy as np
import queueing_llm as ql
from queueing_llm.sim import routed
m = ql.ContinuousBatching([ql.RequestType(30, d, 0.4) for d in (6, 10, 9, 15)], kv_capacity=600)
for routing in ("coprime", "round_robin_requests", "random"):
    c = ql.Cluster(m, 2, routing)
    t=time.time(); run = c.simulate(100_000, seed=1, record="summary"); print(routing, round(time.time()-t,2), run.pooled()["throughput"], [s["arrivals_per_iteration"] for s in run.summaries()])
# count regenerations
calls = {"n": 0}
orig = routed._pooled_block
def counting(*a):
    calls["n"] += 1
    return orig(*a)
routed._pooled_block = counting
routed._CACHE.entries.clear()
ql.Cluster(m, 2, "round_robin_requests").simulate(4096*5, seed=7, record="summary")
print("pooled blocks drawn", calls["n"], "expected", 2*5)
