"""Smoke test of ``benchmarks/bench_targets.py`` and ``benchmarks/bench_line.py`` (issue 10,
item 4): the scripts that measure the engine's targets still run and write every row.

The numbers themselves are machine-dependent and are not asserted here (speed is measured by
the scripts, not by timed tests); what is checked is that each table is there, that every rate
is a positive finite number, and that the simulated workloads did simulate requests.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.slow
def test_bench_targets_runs_and_writes_every_row(tmp_path):
    out = tmp_path / "targets.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_targets.py"), "--iterations", "20000", "--repeat", "1",
         "--memory", "10000", "--json", str(out)],
        capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert set(data["workloads"]) == {"B=256, Geometric(0.01), load 0.95", "B=8, Geometric(0.25), load 0.95"}
    rates = [row["requests_per_s"] for w in data["workloads"].values() for row in w.values() if isinstance(row, dict)]
    rates += [row["requests_per_s"] for h in data["replications"].values() for row in h.values()
              if isinstance(row, dict)]
    assert len(rates) >= 14 and all(math.isfinite(r) and r > 0 for r in rates)
    assert list(data["replications"]) == ["1000 iterations", "1250 iterations"]  # a row per horizon
    ratios = [h["ql / lockstep (paired median)"] for h in data["replications"].values()]
    assert all(math.isfinite(r) and r > 0 for r in ratios)
    assert data["memory"][0]["iterations"] == 10000
    assert 0 < data["import"]["import queueing_llm"] < 60


def test_bench_line_says_what_it_needs_without_line():
    """LINE is not a dependency: without it the script exits non-zero with one line naming it
    (the import of ``line_solver`` is blocked, so the test means the same wherever it runs)."""
    blocked = ("import runpy, sys; sys.modules['line_solver'] = None; sys.argv = sys.argv[1:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", blocked, str(ROOT / "benchmarks" / "bench_line.py"), "--repeat", "1"],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode != 0 and "pip install line-solver" in proc.stderr
