"""Request mixing ([ADLS26] 5.2): routing, the mixing theorem, and the restarts it saves."""

import math

import numpy as np
import pytest

import queueing_llm as ql
from queueing_llm.cluster import Cluster, coprime_routing
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
    with pytest.raises(ql.ModelError, match="routing must be one of"):
        Cluster(four_types(), 2, "random")
    with pytest.raises(ql.ModelError, match="engines"):
        coprime_routing(four_types().types, 5)


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
