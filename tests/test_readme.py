"""README's two commands exist, come first, and CI runs the test command verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md must open with a bash block of two commands"
    assert text.index("```bash") < text.index("## "), "the commands must come before any section"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_exactly_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert "queueing-llm" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_readme_tour_runs():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block and len([line for line in block.group(1).splitlines() if line.strip()]) <= 6
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["verdict"].holds and namespace["verdict"].theory > 0


def test_readme_and_contributing_document_the_quick_tier():
    readme = (ROOT / "README.md").read_text()
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    quick = '-m pytest -q -m "not slow"'
    assert quick in readme and quick in contributing
    assert readme.index(quick) > readme.index("## "), "the two top commands stay first and unchanged"
    setup = (ROOT / "setup.cfg").read_text()
    assert "--strict-markers" in setup and "slow:" in setup
    ci = (ROOT / ".ci" / "run").read_text()
    assert "not slow" not in ci  # CI runs the whole suite


def test_the_slow_marker_is_used():
    marked = [p.name for p in (ROOT / "tests").glob("test_*.py") if "@pytest.mark.slow" in p.read_text()]
    assert len(marked) >= 5, marked
