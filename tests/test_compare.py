"""ql.compare_policies: policies side by side over arrival rates, with the papers' claims tested."""

import json

import pytest

import queueing_llm as ql
from queueing_llm.compare import COLUMNS, compare_policies, scale_arrivals


def known_lengths():
    """A known-length workload: l0 = 2, l1 = 4, M = 200 tokens, so C = 18, x* = 100/9 = 11.1 and
    greedy's worst cycle M/(l1 (l0 + l1)) = 8.33 per iteration."""
    return ql.ContinuousBatching([ql.RequestType(2, 4, 8.0)], kv_capacity=200)


@pytest.fixture(scope="module")
def comparison():
    m = known_lengths()
    policies = {"greedy": "greedy", "WAIT": ql.fluid_wait, "reserve": "reserve"}
    return compare_policies(m, policies, rates=[6.0, 9.0, 10.5], iterations=3000, replications=2, seed=1)


def test_scale_arrivals_keeps_proportions():
    m = ql.ContinuousBatching([ql.RequestType(2, 3, 1.5), ql.RequestType(4, 1, 0.5)], kv_capacity=60)
    s = scale_arrivals(m, 4.0)
    assert [float(t.arrival_rate) for t in s.types] == [3.0, 1.0]
    with pytest.raises(ql.ModelError, match="total_rate"):
        scale_arrivals(m, -1)


def test_rows_cover_every_policy_and_rate(comparison):
    assert len(comparison.rows) == 9
    assert all(set(COLUMNS) <= set(r) for r in comparison.rows)
    assert comparison.units["mean_latency"] == "iterations"


def test_wait_never_evicts_when_its_rounded_batch_fits(comparison):
    """[ALSW25]: WAIT with fluid thresholds never evicts on a known-length workload below its
    limit; in the integer system this needs the rounded batch memory sum_k ceil(n_k*) C_k <= M
    (at 10.5 per iteration: 11 x 18 = 198 <= 200)."""
    rows = [r for r in comparison.rows if r["policy"] == "WAIT"]
    assert all(r["wait_memory"] <= 200 for r in rows)
    assert all(r["evictions_per_iteration"] == 0 and r["restarts_per_request"] == 0 for r in rows)
    assert comparison.stable_limit["WAIT"] == 10.5


def test_wait_stable_range_is_at_least_greedys_and_greedy_restarts_grow(comparison):
    """Greedy congests above its worst cycle 8.33 (at 9.0 its queue grows and every request is
    restarted about once); WAIT and reservation keep up to 10.5."""
    assert comparison.stable_limit["greedy"] == 6.0
    greedy = [r for r in comparison.rows if r["policy"] == "greedy"]
    assert greedy[0]["restarts_per_request"] == 0 and greedy[1]["restarts_per_request"] > 0.5 and greedy[1]["grows"]
    assert comparison.ratio("WAIT") == pytest.approx(10.5 / 6.0)


def test_write_tables_figures_and_provenance(comparison, tmp_path):
    out = comparison.write(tmp_path / "cmp")
    for name in ("comparison.tex", "comparison.md", "comparison.csv", "latency_vs_load.png",
                 "memory_near_limit.png", "provenance.json"):
        assert (out / name).stat().st_size > 0
    assert "\\toprule" in (out / "comparison.tex").read_text()
    assert json.loads((out / "provenance.json").read_text())["iterations"] == 3000
    assert "\\toprule" in comparison.to_latex()


def test_bad_input_names_the_parameter():
    with pytest.raises(ql.ModelError, match=r"rates\[0\]"):
        compare_policies(known_lengths(), rates=[-1.0])
    with pytest.raises(ql.ModelError, match="policies"):
        compare_policies(known_lengths(), policies={}, rates=[0.1])


def test_measure_gap_scales_and_fits():
    """Heavy-traffic scaling keeps rho and Delta* and multiplies n* and M*; the gap is measured
    at the fluid capacity with replication intervals and a fitted exponent (no rate claimed)."""
    from queueing_llm.heavy_traffic import at_fluid_capacity, measure_gap, scale_heavy_traffic

    m = ql.ContinuousBatching([ql.RequestType(2, 3, ql.PoissonProcess(2))], kv_capacity=50,
                              iteration_time=ql.LinearIterationTime(1, 0.01))
    cap = at_fluid_capacity(m)
    fb = ql.theorems["fluid-benchmark"].evaluate(cap)
    assert fb["memory_need"] == pytest.approx(50) and fb["feasible"] is True
    big = ql.theorems["fluid-benchmark"].evaluate(scale_heavy_traffic(cap, 4))
    assert float(big["rho"]) == pytest.approx(float(fb["rho"])) and float(big["memory_need"]) == pytest.approx(200)
    g = measure_gap(m, zetas=(1, 2, 4), iterations=1500, replications=2)
    assert len(g.gaps) == 3 and all(x.estimate > 0 for x in g.gaps)  # at capacity WAIT falls short
    assert g.exponent_ci[0] <= g.exponent <= g.exponent_ci[1]
    with pytest.raises(ql.ModelError, match="zetas"):
        measure_gap(m, zetas=(1, 2))
