"""Smoke test of ``benchmarks/bench_draws.py``: it runs, checks that the samplers and NumPy
draw the same arrival blocks (an assertion inside the script), and writes both workloads'
rows with positive finite numbers (the numbers themselves are the script's to measure)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from queueing_llm.sim.kernel import numba_available

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.mark.slow
@pytest.mark.skipif(not numba_available(), reason="numba not importable: no kernel to time")
def test_bench_draws_runs_and_writes_both_rows():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_draws.py"), "--iterations", "5000",
                           "--rounds", "1"], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| B=")]
    assert [row.split("|")[1].strip() for row in rows] == ["B=256, Geometric(0.01)", "B=8, Geometric(0.25)"]
    for row in rows:
        numbers = [float(cell.strip().rstrip("x")) for cell in row.split("|")[2:-1]]
        assert len(numbers) == 8 and all(math.isfinite(x) and x > 0 for x in numbers)
