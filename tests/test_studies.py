"""queueing-llm paper adls26: [ADLS26]'s tables regenerated beside the paper's numbers."""

import json

import pytest

from queueing_llm.cli import main
from queueing_llm.studies import adls26

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study():
    return adls26.run(quick=True, seed=0)


def test_rows_and_verdicts(study):
    rows = {(r["table"], r["setting"], r["quantity"]): r for r in study.rows}
    assert len(rows) == 10
    # what the model reproduces: Table 5's segregated nodes, rate limiting's zero evictions
    assert rows[("Table 5", "{20, 40}", "restarts")]["verdict"] == "agree"
    assert rows[("Table 8", "rate_limited(x*)", "evictions")]["ours"] == 0
    # what it does not: greedy's 1.33 requests/step (the package gives about 1.25), with the settings tried
    greedy = rows[("Table 8", "greedy", "throughput")]
    assert greedy["verdict"].startswith("disagree (tried:") and 1.2 < greedy["ours"] < 1.3
    # the qualitative finding holds (with a confidence bound in tests/test_cluster.py): the mixed
    # node restarts fewer than the segregated ones
    for table, mixed, seg in (("Table 4", "{6, 9, 10, 15}", ("{6, 10}", "{9, 15}")),
                              ("Table 5", "{20, 25, 40, 50}", ("{20, 40}",))):
        for s in seg:
            assert rows[(table, mixed, "restarts")]["ours"] < rows[(table, s, "restarts")]["ours"]


def test_write_and_cli(study, tmp_path, capsys):
    out = study.write(tmp_path / "a")
    for name in ("adls26.tex", "adls26.md", "adls26.csv", "figure6.png", "figure6.pdf", "provenance.json"):
        assert (out / name).stat().st_size > 0
    assert "\\toprule" in (out / "adls26.tex").read_text()
    code = main(["paper", "adls26", "--quick", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["study"] == "adls26"


def test_alsw25_fluid_examples_agree_and_a_wrong_value_would_not(tmp_path, monkeypatch):
    from queueing_llm.studies import alsw25

    s = alsw25.run(quick=True, seed=1)
    fluid = [r for r in s.rows if r["stated"] != ""]
    assert len(fluid) == 20 and all(r["verdict"] == "agree" for r in fluid)
    sims = {(r["example"], r["quantity"]): r for r in s.rows if r["stated"] == ""}
    assert sims[("Example 3, two types, WAIT", "throughput_per_second")]["ci_low"] < 35 < \
        sims[("Example 3, two types, WAIT", "throughput_per_second")]["ci_high"]
    wrong = dict(alsw25.EXAMPLES)
    model, stated = wrong["Example 2, M = 50"]
    wrong["Example 2, M = 50"] = (model, {**stated, "rho": 0.39})  # a stated value 5% off
    monkeypatch.setattr(alsw25, "EXAMPLES", wrong)
    rows = alsw25.run(quick=True, seed=1).rows
    assert next(r for r in rows if r["example"] == "Example 2, M = 50" and r["quantity"] == "rho")["verdict"] \
        == "disagree"
    out = s.write(tmp_path / "alsw25")
    assert "\\toprule" in (out / "alsw25.tex").read_text()
