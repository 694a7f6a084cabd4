"""Parameter sweeps: grid order, seeds independent of the executor, theorems per point, files."""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import queueing_llm as ql
from queueing_llm.errors import ModelError, ParameterError
from queueing_llm.report.tables import read_csv
from queueing_llm.sweep import CI_QUANTITIES, point_seeds, run_point


def fcfs(rate: float) -> ql.ContinuousBatching:
    """A Geo^X/Geo/8 queue: prompt 2, geometric decode with q = 1/4, Poisson arrivals."""
    return ql.ContinuousBatching(ql.RequestType(2, ql.Geometric(0.25), arrivals=rate), batch_cap=8,
                                 policy="fcfs_cap")


def fcfs_two(rate: float, prompt: int) -> ql.ContinuousBatching:
    return ql.ContinuousBatching(ql.RequestType(prompt, ql.Geometric(0.25), arrivals=rate), batch_cap=8,
                                 policy="fcfs_cap")


SMALL = dict(iterations=2_000, replications=2, seed=7, theorems=("stability",))


# -- grid ----------------------------------------------------------------------------------


def test_grid_is_the_cartesian_product_last_axis_fastest():
    points = ql.grid(rate=[0.5, 1.0, 1.5], prompt=(2, 4))
    assert len(points) == 6
    assert points == [
        {"rate": 0.5, "prompt": 2}, {"rate": 0.5, "prompt": 4},
        {"rate": 1.0, "prompt": 2}, {"rate": 1.0, "prompt": 4},
        {"rate": 1.5, "prompt": 2}, {"rate": 1.5, "prompt": 4},
    ]
    assert ql.grid(a=range(3)) == [{"a": 0}, {"a": 1}, {"a": 2}]
    assert len(ql.grid(a=[1, 2], b=[1, 2, 3], c=np.arange(4))) == 24


@pytest.mark.parametrize("axes, words", [
    ({}, "at least one axis"),
    ({"rate": []}, "'rate' is empty"),
    ({"rate": "abc"}, "'rate' must be a sequence"),
    ({"rate": 1.5}, "'rate' must be a sequence"),
])
def test_grid_rejects_empty_and_scalar_axes(axes, words):
    with pytest.raises(ParameterError, match=words):
        ql.grid(**axes)


# -- seeds ---------------------------------------------------------------------------------


def test_point_seeds_are_the_spawned_children_and_all_distinct():
    root = np.random.SeedSequence(3)
    children = root.spawn(5)
    for i, child in enumerate(children):
        expected = [int(c.generate_state(1, dtype=np.uint64)[0]) for c in child.spawn(4)]
        assert point_seeds(3, i, 4) == expected
    every = [s for i in range(50) for s in point_seeds(3, i, 4)]
    assert len(set(every)) == len(every)
    assert point_seeds(3, 0, 4) != point_seeds(4, 0, 4)


def test_a_point_does_not_depend_on_the_points_after_it():
    points = ql.grid(rate=[0.5, 1.0, 1.5])
    whole = ql.sweep(fcfs, points, **SMALL)
    prefix = ql.sweep(fcfs, points[:2], **SMALL)
    assert repr(prefix.rows) == repr(whole.rows[:2])
    # the row is run_point with the point's own seeds: nothing else enters it
    alone = run_point(fcfs(1.0), {"rate": 1.0}, point_seeds(7, 1, 2), 2_000, 0, "fast", ("stability",))
    assert repr(alone) == repr(whole.rows[1])
    # the point index, not the point, fixes the seeds: a point moved elsewhere gets other runs
    moved = ql.sweep(fcfs, [points[1], points[0]], **SMALL)
    assert moved.rows[0]["throughput"] != whole.rows[1]["throughput"]


def test_same_rows_in_process_with_threads_and_with_processes():
    points = ql.grid(rate=[0.5, 1.5], prompt=[2, 3])
    local = ql.sweep(fcfs_two, points, **SMALL)
    with ThreadPoolExecutor(2) as pool:
        threads = ql.sweep(fcfs_two, points, executor=pool, **SMALL)
    with ProcessPoolExecutor(2) as pool:
        procs = ql.sweep(lambda rate, prompt: fcfs_two(rate, prompt), points, executor=pool, **SMALL)
    assert len(local) == 4
    assert repr(threads.rows) == repr(local.rows)  # bit for bit: floats' repr round-trips
    assert repr(procs.rows) == repr(local.rows)
    assert [r["rate"] for r in procs.rows] == [0.5, 0.5, 1.5, 1.5]


def test_progress_counts_finished_points():
    calls: list[tuple[int, int]] = []
    ql.sweep(fcfs, ql.grid(rate=[0.5, 1.0, 1.5]), iterations=500, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    calls.clear()
    with ThreadPoolExecutor(2) as pool:
        ql.sweep(fcfs, ql.grid(rate=[0.5, 1.0, 1.5]), iterations=500, executor=pool,
                 progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


# -- summaries and theorems ----------------------------------------------------------------


def test_rows_are_replication_means_with_intervals():
    result = ql.sweep(fcfs, [{"rate": 1.0}], iterations=3_000, replications=3, seed=2)
    runs = [ql.simulate(fcfs(1.0), 3_000, seed=s, engine="fast") for s in point_seeds(2, 0, 3)]
    row = result.rows[0]
    assert result.columns[0] == "rate" and result.point_keys == ("rate",)
    for key in ("throughput", "mean_queue", "mean_in_system", "mean_batch", "mean_sojourn"):
        assert row[key] == float(np.mean([r.summary()[key] for r in runs]))
    for key in CI_QUANTITIES:
        iv = ql.replications_ci([r.summary()[key] for r in runs])
        assert (row[f"{key}_ci_low"], row[f"{key}_ci_high"]) == (iv.low, iv.high)
    single = ql.sweep(fcfs, [{"rate": 1.0}], iterations=3_000)
    assert "throughput_ci_low" not in single.columns


def test_stationary_verdicts_hold_for_stable_rates_and_stability_flags_overload():
    rates = [0.5, 1.0, 1.5, 2.5]
    result = ql.sweep(fcfs, ql.grid(rate=rates), iterations=20_000, replications=3, seed=1,
                      theorems=("stability", "stationary"))
    rows = {row["rate"]: row for row in result.rows}
    for rate in rates[:3]:  # lambda < B q = 2
        row = rows[rate]
        assert row["stability.stable"] is True
        assert row["stationary.holds"] is True, row
        assert row["stationary.theory"] == row["stationary.mean_in_system"]
        assert row["mean_in_system_ci_low"] <= row["stationary.mean_in_system"] <= row["mean_in_system_ci_high"]
        assert row["stability.holds"] is True
        assert row["stability.theory"] == pytest.approx(rate)
    over = rows[2.5]
    assert over["stability.stable"] is False
    assert over["stability.load"] == 1.25 and over["stability.capacity"] == 2.0
    assert over["stationary.mean_in_system"] == math.inf  # oo as a float
    assert over["stationary.holds"] is None and over["stationary.status"] == "does not apply"  # unstable
    assert over["stability.holds"] is True and over["stability.theory"] == 2.0  # throughput capped at B q
    # the means grow with the load
    means = [rows[r]["stationary.mean_in_system"] for r in rates[:3]]
    assert means == sorted(means)


def test_a_theorem_that_does_not_apply_is_skipped_with_its_reason():
    def greedy(rate):
        return ql.ContinuousBatching(ql.RequestType(2, 3, arrivals=rate), kv_capacity=40)

    result = ql.sweep(greedy, [{"rate": 0.5}], iterations=500, theorems=("stationary",))
    row = result.rows[0]
    assert row["stationary.skipped"].startswith("does not apply:")
    assert "stationary.holds" not in row


# -- files and tables ----------------------------------------------------------------------


def test_csv_is_written_atomically_and_reads_back(tmp_path, monkeypatch):
    result = ql.sweep(fcfs, ql.grid(rate=[0.5, 1.0]), theorems=("stability",), **{
        k: v for k, v in SMALL.items() if k != "theorems"})
    path = result.to_csv(tmp_path / "sweep.csv")
    back = read_csv(path)
    assert list(back[0]) == result.columns
    assert [float(r["throughput"]) for r in back] == result.column("throughput")
    assert [r["stability.holds"] for r in back] == [str(v) for v in result.column("stability.holds")]
    meta = json.loads((tmp_path / "sweep.csv.json").read_text())
    assert meta["seed"] == 7 and meta["point_seeds"] == [point_seeds(7, i, 2) for i in range(2)]
    assert meta["points"] == [{"rate": 0.5}, {"rate": 1.0}]
    assert sorted(os.listdir(tmp_path)) == ["sweep.csv", "sweep.csv.json"]
    # a crash during the rename leaves the old file whole and no temporary file behind
    before = path.read_text()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ql.errors.OutputError, match="disk full"):  # named, a package error
        ql.sweep(fcfs, [{"rate": 0.7}], iterations=200).to_csv(path)
    assert path.read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["sweep.csv", "sweep.csv.json"]


def test_markdown_and_latex_tables():
    result = ql.sweep(fcfs, ql.grid(rate=[0.5, 1.0]), **SMALL)
    md = result.to_markdown(["rate", "throughput", "stability.holds"])
    assert md.splitlines()[0] == "| rate | throughput | stability.holds |"
    assert len(md.splitlines()) == 4
    tex = result.to_latex(["rate", "throughput", "stability.holds"], caption="Sweep")
    assert r"\toprule" in tex and r"\caption{Sweep}" in tex
    assert "stability:" in tex and "stability.holds" not in tex  # readable headers by default
    with pytest.raises(ParameterError, match="no column 'nope'"):
        result.to_markdown(["rate", "nope"])


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, words", [
    (dict(points=[]), "points is empty"),
    (dict(points={"rate": 1.0}), "points must be a list of dicts"),
    (dict(replications=0), "replications must be an integer in \\[1, inf\\)"),
    (dict(iterations=0), "iterations must be an integer in \\[1, inf\\)"),
    (dict(iterations=2.5), "iterations must be an integer"),
    (dict(seed=-1), "seed must be"),
    (dict(warmup=100), "warmup must be an integer in \\[0, 99\\]"),
    (dict(engine="quick"), "engine must be one of events, fast"),
    (dict(theorems="stability"), "theorems must be a sequence"),
    (dict(executor=object()), "executor must be a concurrent.futures.Executor"),
    (dict(build_model=5), "build_model must be callable"),
    (dict(build_model=lambda rate: rate), "must return a ContinuousBatching"),
])
def test_bad_arguments_name_the_parameter(kwargs, words):
    args = dict(build_model=fcfs, points=[{"rate": 1.0}], iterations=100)
    args.update(kwargs)
    with pytest.raises(ParameterError, match=words):
        ql.sweep(args.pop("build_model"), args.pop("points"), **args)


def test_unknown_theorem_lists_the_known_ones():
    with pytest.raises(ModelError, match="no theorem named 'stationarity'; known: .*stationary"):
        ql.sweep(fcfs, [{"rate": 1.0}], iterations=100, theorems=("stationarity",))
