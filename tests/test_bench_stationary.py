"""Smoke test of ``benchmarks/bench_stationary.py`` (issue 10, item 5): the exact stationary
solver against a sparse truncated chain written independently in the script.

The script runs with ``--quick`` in a subprocess; its JSON must hold the quick rows, and the
solver must agree with the chain:

* mean number in system: relative difference below :data:`MEAN_TOL` = 1e-10 (measured on the
  quick rows: at most 3e-13; both routes are accurate to about 1e-12 here, the chain truncated
  where its top 20 % carry less than 1e-12);
* P(empty), where the chain's sparse LU solve resolves it (above 1e-12): relative difference
  below :data:`P_EMPTY_TOL` = 1e-9 (measured: at most 2.4e-12, B = 8). At B = 256 the true
  P(empty) is about 1e-106, below the LU's absolute accuracy (~1e-16): there all the chain
  can check is that the solver's value and its stated error bound are both below 1e-14
  (the solver gets it from a banded GTH chain, or an upper bound: the ``p_empty_route``).

The checks recompute the differences from the raw values, so a wrong solver mean fails them
(:func:`test_checks_catch_a_wrong_mean`, :func:`test_tolerance_separates_neighbouring_loads`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_stationary.py"

MEAN_TOL = 1e-10
P_EMPTY_TOL = 1e-9
QUICK_ROWS = {(256, 0.95), (256, 0.99), (8, 0.95), (8, 0.99), (8, 0.999)}


def _bench():
    spec = importlib.util.spec_from_file_location("bench_stationary", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def problems(rows: list[dict]) -> list[str]:
    """What is wrong with the rows (empty when the solver agrees with the chain)."""
    out = []
    for r in rows:
        name = f"B={r['B']} load={r['load']}"
        rel = abs(r["mean_solver"] - r["mean_baseline"]) / abs(r["mean_baseline"])
        if not rel < MEAN_TOL:
            out.append(f"{name}: mean {r['mean_solver']!r} vs chain {r['mean_baseline']!r} (rel {rel:.2g})")
        pe, pb = r["p_empty_solver"], r["p_empty_baseline"]
        if pb > 1e-12:
            if not abs(pe - pb) / pb < P_EMPTY_TOL:
                out.append(f"{name}: P(empty) {pe!r} vs chain {pb!r}")
        elif not (0 <= pe < 1e-14 and pb < 1e-14 and 0 <= r["p_empty_error"] < 1e-14):
            out.append(f"{name}: unresolved P(empty) {pe!r} (error {r['p_empty_error']!r}) vs chain noise {pb!r}")
    return out


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[dict, float]:
    out = tmp_path_factory.mktemp("bench") / "stationary.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), elapsed


@pytest.mark.slow
def test_quick_rows_and_agreement(quick):
    data, elapsed = quick
    rows = data["rows"]
    assert {(r["B"], r["load"]) for r in rows} == QUICK_ROWS
    assert data["quick"] is True and data["repeat"] == 1
    for r in rows:
        assert r["solver_s"] > 0 and r["baseline_s"] > 0 and r["ratio"] > 0
        assert r["route"] and r["p_empty_route"]
        assert r["baseline_top_mass"] < data["tail"]
    assert problems(rows) == []
    assert elapsed < 60  # about 6-8 s on the shared 2-core machine


@pytest.mark.slow
def test_checks_catch_a_wrong_mean(quick):
    rows = quick[0]["rows"]
    for r in rows:
        wrong = {**r, "mean_solver": r["mean_solver"] * (1 + 1e-8)}
        assert problems([wrong]), r
        wrong = {**r, "p_empty_solver": r["p_empty_baseline"] * 1.001 if r["p_empty_baseline"] > 1e-12 else 1e-13}
        assert problems([wrong]), r


def test_tolerance_separates_neighbouring_loads():
    """The chain of one model and the solver of a model 1e-6 away in load differ by more than
    the tolerance: the check sees a solver answering a slightly wrong model."""
    import queueing_llm as ql

    b = _bench()
    B, q, load = 8, 0.25, 0.99
    N, base = b.truncation(B, q, b.poisson_pmf(load * B * q), 1e-12)
    for eps in (0.0, 1e-6):
        sol = ql.theorems["stationary"].evaluate(b.model(B, q, load * (1 + eps)))
        row = {"B": B, "load": load, "mean_solver": float(sol["mean_in_system"]),
               "mean_baseline": base["mean_in_system"], "p_empty_solver": float(sol["p_empty"]),
               "p_empty_baseline": base["p_empty"], "p_empty_error": float(sol["p_empty_error"])}
        assert bool(problems([row])) == (eps > 0), (eps, problems([row]))
