"""queueing-llm compare and --policy wait / nested_wait on the command line."""

import json

import pytest

from queueing_llm.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_policy_wait_builds_the_fluid_thresholds_and_says_so(capsys):
    code, out, err = run_cli(capsys, "simulate", "--type", "2,3,1.5", "--kv-capacity", "50", "--policy", "wait",
                             "--iterations", "1000", "--seed", "1", "--json")
    assert code == 0, err
    assert "wait({0: 2}, trigger=any)" in err
    assert json.loads(out)["summary"]["evictions_per_iteration"] == 0


def test_policy_nested_wait_prints_thresholds_and_buffers(capsys):
    code, out, err = run_cli(capsys, "simulate", "--type", "2,pmf:{2:0.5,8:0.5},6", "--kv-capacity", "5000",
                             "--policy", "nested_wait", "--iterations", "500", "--seed", "1")
    assert code == 0, err
    assert "nested_wait(L=[2, 8], n=[6, 4])" in err and "buffers [0, 5]" in err


@pytest.mark.slow
def test_compare_quick_writes_its_files(capsys, tmp_path):
    code, out, err = run_cli(capsys, "compare", "--workload", "known", "--quick", "--policies", "greedy,WAIT",
                             "--rates", "6,10.5", "--output", str(tmp_path / "cmp"))
    assert code == 0, err
    assert "stable-limit ratio WAIT / greedy" in out
    for name in ("comparison.tex", "comparison.md", "comparison.csv", "latency_vs_load.png", "provenance.json"):
        assert (tmp_path / "cmp" / name).exists()
    assert "greedy at rate 6" in err  # progress on standard error


@pytest.mark.parametrize(("argv", "words"), [
    (["compare", "--workload", "known", "--policies", "greedy,bogus"], "unknown bogus"),
    (["compare", "--workload", "known", "--type", "2,3,1"], "not both"),
    (["compare", "--workload", "known", "--rates", "1,x"], "--rates"),
])
def test_compare_errors_are_one_line(capsys, argv, words):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
