"""The command line: summaries, JSON, and one-line errors with exit status 2."""

import io
import json
import subprocess
import sys

import pytest

from queueing_llm.cli import main
from queueing_llm.progress import ProgressBar


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_default_model_json_summary(capsys):
    code, out, err = run_cli(capsys, "simulate", "--iterations", "3000", "--seed", "1", "--json")
    assert code == 0, err
    summary = json.loads(out)
    for key in ("throughput", "mean_queue", "mean_in_system", "mean_batch", "mean_memory",
                "evictions_per_iteration", "mean_sojourn"):
        assert key in summary
    assert 0 < summary["mean_memory"] <= 2000


def test_typed_model_human_summary_is_reproducible(capsys):
    argv = ["simulate", "--type", "2,3,1.5", "--kv-capacity", "24", "--iterations", "2000", "--seed", "5"]
    code1, out1, _ = run_cli(capsys, *argv)
    code2, out2, _ = run_cli(capsys, *argv)
    assert code1 == code2 == 0 and out1 == out2
    assert "throughput" in out1 and "RequestType(prompt=2, decode=3" in out1


def test_saturated_worked_example_throughput(capsys):
    code, out, _ = run_cli(capsys, "simulate", "--type", "2,2", "--kv-capacity", "140", "--saturated",
                           "--iterations", "400", "--warmup", "100", "--seed", "0", "--json")
    assert code == 0
    # [ADLS26] worked example: greedy settles on the cycle (46, 0) <-> (0, 35), throughput 35/2
    assert json.loads(out)["throughput"] == pytest.approx(35 / 2, abs=0.1)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["simulate", "--type", "2,0,1"], "decode must be an integer in [1, inf), got 0"),
        (["simulate", "--type=-1,3,1"], "prompt must be an integer in [0, inf), got -1"),
        (["simulate", "--type", "2,3,-1"], "arrival rate must be a number in [0, inf), got -1"),
        (["simulate", "--kv-capacity", "30"], "kv_capacity must exceed max(l0 + l1) = 50"),
        (["simulate", "--batch-cap", "0"], "batch_cap must be an integer or inf in [1, inf), got 0"),
        (["simulate", "--policy", "fifo"], "policy must be one of"),
        (["simulate", "--iterations", "0"], "iterations"),
        (["simulate", "--type", "2;3"], "--type must be PROMPT,DECODE"),
        (["simulate", "--iterations", "many"], "--iterations"),
        (["simulate", "--engine", "gpu"], "--engine"),
    ],
)
def test_bad_input_one_line_exit_2_no_traceback(capsys, argv, fragment):
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse-level errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0] and "Traceback" not in err


@pytest.mark.slow
def test_console_entry_point_end_to_end():
    proc = subprocess.run([sys.executable, "-m", "queueing_llm", "simulate", "--kv-capacity", "30"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (
        "queueing-llm: error: kv_capacity must exceed max(l0 + l1) = 50 tokens (one request must fit), got 30"
    )


def test_progress_bar_silent_for_short_runs_and_reports_long_ones():
    ticks = iter([0.0, 0.5, 1.0, 3.0, 3.1, 6.0])
    stream = io.StringIO()
    bar = ProgressBar(100, stream=stream, clock=lambda: next(ticks))
    bar(10)  # 0.5 s: silent
    bar(20)  # 1.0 s: silent
    bar(60)  # 3.0 s: shown (non-tty: one line per quarter)
    bar(61)  # same quarter: silent
    bar(100)
    lines = stream.getvalue().splitlines()
    assert lines == ["simulating: 60/100 (60%) after 3.0s", "simulating: 100/100 (100%) after 6.0s"]
