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
    # WAIT stable at the top rate 10.5: a lower bound, and so is the ratio (it printed "1.75" as a measurement)
    assert "stable-limit ratio WAIT / greedy: ≥" in out and "WAIT ≥ 10.5" in out
    assert "| claim | measured | verdict |" in out and "arrival rate (requests/iteration)" in out
    for name in ("comparison.tex", "comparison.md", "comparison.csv", "latency_vs_load.png", "provenance.json"):
        assert (tmp_path / "cmp" / name).exists()
    assert "greedy at rate 6" in err  # progress on standard error


@pytest.mark.parametrize(("argv", "words"), [
    (["compare", "--workload", "known", "--policies", "greedy,bogus"], "unknown policy 'bogus'; allowed"),
    (["compare", "--workload", "known", "--type", "2,3,1"], "not both"),
    (["compare", "--workload", "known", "--rates", "1,x"], "--rates"),
    (["compare", "--workload", "known", "--rates", ","], "--rates must list at least one"),
    (["compare", "--workload", "known", "--policy", "wait"], "--policy does not apply to compare"),
    (["compare", "--type", "2,3", "--rates", "1"], "types[0] has no arrivals"),
])
def test_compare_errors_are_one_line(capsys, argv, words):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_compare_policy_labels_ignore_case_and_spaces_and_json_has_units_and_claims(capsys):
    code, out, err = run_cli(capsys, "compare", "--workload", "known", "--policies", "GREEDY, wait ,Batch Cap",
                             "--rates", "6", "--iterations", "300", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["settings"]["policies"] == ["greedy", "WAIT", "batch cap"]
    assert doc["units"]["mean_latency"] == "iterations" and doc["units"]["rate"] == "requests/iteration"
    assert len(doc["claims"]) == 4 and {c["verdict"] for c in doc["claims"]} <= {"holds", "does not hold",
                                                                                  "not determined"}
    assert doc["settings"]["policy_parameters"]["batch cap"]["6"]["batch_cap"] == 33
    assert doc["settings"]["queueing_llm"] and "git_commit" in doc["settings"]
