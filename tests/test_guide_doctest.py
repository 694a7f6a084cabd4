"""The examples of docs/guide.rst run as doctests and print what the guide says they print."""

import doctest
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.rst"


def test_guide_examples_print_what_the_guide_says():
    result = doctest.testfile(str(GUIDE), module_relative=False, report=True,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} guide examples print something else"
    assert result.attempted >= 25  # every example block is a doctest
