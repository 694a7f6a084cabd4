"""The worked example of docs/user_theorems.md runs as written (so the docs cannot rot).

The page's ``python`` code blocks are executed in order in one namespace; the regression
tests the page defines (``test_*`` functions) are then called. The theorems the page
registers are unregistered afterwards even if a block fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import queueing_llm as ql

DOC = Path(__file__).resolve().parents[1] / "docs" / "user_theorems.md"
REGISTERED = ("mean-batch", "mean-batch-wrong")


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


@pytest.fixture
def clean_registry():
    before = set(ql.theorems)
    yield
    for name in REGISTERED:
        if name in ql.theorems and name not in before:
            ql.theorems.unregister(name)


def test_the_page_has_the_expected_blocks():
    blocks = code_blocks(DOC.read_text())
    assert len(blocks) == 8
    assert "ql.theorems.register(mean_batch)" in blocks[0]
    assert "assert_theorem_holds" in blocks[4]


def test_worked_example_runs(clean_registry, capsys):
    namespace: dict = {"__name__": "user_theorems_doc"}
    for i, block in enumerate(code_blocks(DOC.read_text())):
        exec(compile(block, f"{DOC.name}[block {i}]", "exec"), namespace)
        if i == 4:  # the regression tests the page writes must pass
            namespace["test_mean_batch_statement"]()
            namespace["test_mean_batch_holds"]()
            namespace["test_mean_batch_check_has_power"]()
    out = capsys.readouterr().out
    assert r"\bar{b} = \frac{\lambda}{q}" in out
    assert "{'mean_batch': 12/5}" in out
    assert "mean-batch/mean_batch: theory 2.4" in out and "holds" in out
    assert "does not apply to this model: the queue is unstable" in out
    assert "mean-batch-wrong/mean_batch" in out and "FAILS" in out
    assert r"\toprule" in out and "mean-batch" in out.split(r"\toprule")[1]  # report rows of a user theorem
    assert "mean-batch" not in ql.theorems  # the page unregisters its theorem


def test_registered_user_theorem_behaves_like_a_builtin(clean_registry):
    namespace: dict = {"__name__": "user_theorems_doc"}
    exec(compile(code_blocks(DOC.read_text())[0], "block 0", "exec"), namespace)
    thm = ql.theorems["mean-batch"]
    model = ql.ContinuousBatching(
        types=[ql.RequestType(prompt=3, decode=ql.FinitePMF({1: 0.5, 3: 0.5}), arrivals=ql.Bernoulli(0.5))],
        batch_cap=2,
        policy="fcfs_cap",
    )
    assert thm.evaluate(model) == {"mean_batch": 1}  # 0.5 * 2
    assert thm.latex(model) == r"\bar{b} = 1"
    with pytest.raises(ql.ModelError, match="needs policy fcfs_cap"):
        thm.statement(ql.default_model())
    with pytest.raises(ql.ModelError, match="already registered"):
        ql.theorems.register(thm)
