"""docs/fluid_policies.md: every Python block runs and prints the text block that follows it."""

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "fluid_policies.md"


@pytest.mark.slow
def test_page_examples_print_what_the_page_says():
    text = DOC.read_text(encoding="utf-8")
    pairs = re.findall(r"```python\n(.*?)```\s*```text\n(.*?)```", text, flags=re.S)
    assert len(pairs) == 4
    namespace: dict = {}
    for code, expected in pairs:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(DOC), "exec"), namespace)
        assert out.getvalue() == expected
