"""verify through independent replications (issue 10, item 3): ``ql.simulate(..., replications=R)``
built by the run specs, chosen by the theorem (``RunSpec.replications``, ``replications_rule``)
or forced by ``ql.verify(..., replications=R | None)``; Student intervals over the replications."""

import math

import numpy as np
import pytest
from scipy import stats

import queueing_llm as ql
from queueing_llm import runs as qruns
from queueing_llm.catalogue.queue import near_critical_replications, relaxation_time
from queueing_llm.testing import perturb
from queueing_llm.verify import declared_runs


def queue(rate: float) -> ql.ContinuousBatching:
    """Geo^X/Geo/4 with q = 1/4 (capacity 1 completion per iteration): load = rate."""
    return ql.ContinuousBatching(ql.RequestType(2, ql.Geometric(0.25), arrivals=rate), batch_cap=4, policy="fcfs_cap")


def memory(rate: float) -> ql.ContinuousBatching:
    """[ADLS26]'s example under greedy admission (threshold 1, x* = 100/61)."""
    return ql.ContinuousBatching(types=[ql.RequestType(prompt=10, decode=40, arrivals=rate)], kv_capacity=2000)


# -- forced replications: power, the interval, reproducibility ------------------------------
def test_forced_replications_hold_and_catch_five_percent():
    m = queue(0.6)
    v = ql.verify("stability", m, seed=5, replications=6)
    assert v.holds is True, str(v)
    assert v.run == "open, 6 independent replications" and v.details["replications"] == v.replications == 6
    assert v.interval.method == "replications" and v.interval.n == 6
    assert "replications interval" in v.reason
    for factor in (0.95, 1.05):
        off = ql.verify(perturb("stability", "throughput", factor), m, seed=5, replications=6)
        assert off.status == "FAILS", str(off)
        assert off.interval == v.interval  # the same replications: only the prediction moved


def test_interval_is_the_student_interval_of_the_replications_summaries():
    """The verdict's interval, by hand: the R per-replication throughputs (each run's
    ``summary(warmup)``, the warm-up the check deleted) and t_{R-1, 0.975} S / sqrt(R)."""
    m, R, seed = queue(0.6), 6, 5
    v = ql.verify("stability", m, seed=seed, replications=R)
    reps = ql.simulate(m, qruns.OPEN_ITERATIONS, seed=seed, replications=R)  # what verify built
    d = v.interval.warmup
    values = np.array([run.summary(d)["throughput"] for run in reps])
    assert values.tolist() == reps.values("throughput", warmup=d)
    half = stats.t.ppf(0.975, R - 1) * values.std(ddof=1) / math.sqrt(R)
    assert v.estimate == pytest.approx(values.mean(), rel=1e-12)
    assert v.interval.low == pytest.approx(values.mean() - half, rel=1e-12)
    assert v.interval.high == pytest.approx(values.mean() + half, rel=1e-12)
    assert reps.ci("throughput", warmup=d).half_width == pytest.approx(half, rel=1e-12)
    # not the batch-means interval of one run (20 batches): another width
    one = ql.verify("stability", m, seed=seed, replications=None)
    assert one.interval.method == "batch-means" and one.interval.n == 20
    assert one.interval.half_width != pytest.approx(half, rel=1e-3)


def test_the_seed_makes_replicated_verdicts_reproducible():
    m = queue(0.6)
    a = ql.verify("stationary", m, seed=9, replications=4, quantity="mean_batch")
    b = ql.verify("stationary", m, seed=9, replications=4, quantity="mean_batch")
    c = ql.verify("stationary", m, seed=10, replications=4, quantity="mean_batch")
    assert a.interval == b.interval and a.estimate == b.estimate
    assert c.estimate != a.estimate


# -- declared replications (the theorem's choice) and the forced modes ------------------------
def test_open_system_declares_replications_and_one_run_can_be_forced():
    m = memory(1.8)  # collapses within ~100 iterations in every run
    v = ql.verify("open-system", m, seed=1)
    assert v.holds is True and v.run == "open, 4 independent replications" and v.details["replications"] == 4
    assert v.interval.method == "replications" and v.interval.n == 4
    assert "Student intervals over the 4 runs' estimates" in v.reason
    assert v.details["collapse_time"].runs == 4 and v.details["collapse_time"].collapses == 4
    for forced in (None, 1):
        one = ql.verify("open-system", m, seed=1, replications=forced)
        assert one.holds is True and one.run == "open" and one.replications is None
        assert one.interval.method == "batch-means" and one.details["collapse_time"].runs == 1
        assert "batch means of the run" in one.reason
    more = ql.verify("open-system", m, seed=1, replications=6)
    assert more.run == "open, 6 independent replications" and more.interval.n == 6
    spec = ql.theorems["open-system"].runs[0]
    assert spec.replications == 4 and "absorbing" in spec.replications_reason


def test_stationary_uses_replications_near_critical_load_only():
    """The rule: 8 replications when 10 relaxation times 1/(mu (1 - sqrt(rho))^2), mu = B/E[l1],
    exceed a batch of the declared run (1,000 iterations)."""
    assert relaxation_time(queue(0.75)) == pytest.approx(1 / (1 - math.sqrt(0.75)) ** 2)
    assert near_critical_replications(queue(0.75)) == 1 and near_critical_replications(queue(0.95)) == 8
    assert math.isinf(relaxation_time(queue(1.2)))
    low = ql.verify("stationary", queue(0.75), seed=2)
    assert low.run == "open" and low.interval.method == "batch-means"
    high = ql.verify("stationary", queue(0.95), seed=2)
    assert high.holds is True, str(high)
    assert high.run == "open, 8 independent replications" and high.interval.method == "replications"
    assert high.interval.n == 8
    forced = ql.verify("stationary", queue(0.95), seed=2, replications=None)
    assert forced.run == "open" and forced.interval.method == "batch-means"
    lyap = ql.verify("lyapunov-bounds", queue(0.95), seed=2)
    assert lyap.run == "open, 8 independent replications" and lyap.holds is True


def test_safety_buffer_replications_catch_a_halved_buffer():
    """Nested WAIT's overflows are rare (delta = 1e-3): the declared 4 replications of 5,000
    iterations hold with the predicted buffers and fail with the buffers halved."""
    m = ql.ContinuousBatching([ql.RequestType(2, ql.FinitePMF({2: 0.5, 8: 0.5}), 6.0)], kv_capacity=5000)
    runs, label = declared_runs(ql.theorems["safety-buffer"], m, seed=1)
    assert isinstance(runs, ql.sim.Replications) and len(runs) == 4 and runs.iterations == 5000
    assert label == "open, fluid Nested WAIT, 4 independent replications"
    v = ql.verify("safety-buffer", m, runs)
    assert v.holds is True and v.interval.method == "Clopper-Pearson, iterations 8 apart, 4 runs"
    assert v.run == "open, 4 independent replications"
    half = ql.verify(perturb("safety-buffer", "buffer", 0.5), m, runs)
    assert half.status == "FAILS" and half.interval.low > 1e-3


def test_forced_replications_of_a_transient_quantity():
    """renewal-transient at one iteration from an empty batch: R saturated replications make
    the completions Binomial(R B, u_n) (exact interval over R B slots)."""
    m = ql.ContinuousBatching(ql.RequestType(2, ql.Geometric(0.25)), batch_cap=8, policy="fcfs_cap")
    v = ql.verify("renewal-transient", m, seed=3, replications=20, iteration=2)
    assert v.holds is True and v.details["runs"] == 20 and v.interval.n == 20 * 8
    assert v.run == "saturated, 20 independent replications"


def test_verify_all_and_the_run_specs():
    verdicts = ql.verify_all(queue(0.6), names=["stability", "stationary"], seed=1, replications=3)
    assert [v.run for v in verdicts] == ["open, 3 independent replications"] * 2 and verdicts.all_hold
    spec = qruns.open_run(5000, replications=4)
    assert spec.label == "open, 4 independent replications" and spec.replicable
    assert spec.size(20_000) == 5000 and spec.size(100_000) == 25_000 and qruns.open_run().size(7) == 7
    assert spec.with_replications(1).label == "open" and spec.with_replications(2).label.endswith(", 2 independent "
                                                                                                   "replications")
    with pytest.raises(ql.ParameterError, match="replications"):
        qruns.relaxed_run(10).with_replications(3)


def test_the_report_uses_the_declared_replications():
    rep = ql.report.report(names=["open-system"])
    (row,) = rep.verdict_rows
    assert row["run"] == "open, 4 independent replications" and row["status"] == "holds"
    info = rep.run_info["open, 4 independent replications"]
    assert info["replications"] == 4 and info["iterations"] == 20_000 and "absorbing" in info["replications_reason"]
    assert isinstance(rep.runs["open, 4 independent replications"], ql.sim.Replications)
    assert "4 independent replications (why:" in rep.to_markdown()


# -- bad values ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -2, 2.5, "many", True, [4]])
def test_bad_replications_values_are_refused_naming_the_option(bad):
    with pytest.raises(ql.ParameterError, match="replications must be 'declared'.*got"):
        ql.verify("stability", queue(0.6), seed=1, replications=bad)
    with pytest.raises(ql.ParameterError, match="replications"):
        ql.verify_all(queue(0.6), names=["stability"], replications=bad)


def test_replications_with_given_runs_or_without_a_simulated_run_are_refused():
    m = queue(0.6)
    run = ql.simulate(m, 2000, seed=1)
    with pytest.raises(ql.ParameterError, match="replications=4 .*runs were given"):
        ql.verify("stability", m, run, replications=4)
    with pytest.raises(ql.ParameterError, match="replications=3: theorem 'fixed-point' declares no simulated run"):
        ql.verify("fixed-point", memory(1.2), replications=3)
    with pytest.raises(ql.ParameterError, match="replications must be an integer >= 1"):
        qruns.open_run(replications=0)


def test_assert_detects_builds_replications_once_and_catches_five_percent():
    """``testing.assert_detects(..., replications=R)`` with ``runs=None`` builds R replications
    (not one run) once and detects the throughput scaled by 0.95 and 1.05 on them."""
    from queueing_llm.testing import assert_detects

    verdicts = assert_detects("stability", queue(0.6), None, "throughput", seed=5, replications=6)
    assert [v.status for v in verdicts] == ["FAILS", "FAILS"]
    assert all(v.interval.method == "replications" and v.interval.n == 6 for v in verdicts)
