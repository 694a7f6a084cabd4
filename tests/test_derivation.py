"""The derivation steps of ``proofs/`` (queueing_llm.derivation): checked by SymPy, displayed true."""

import pytest
import sympy as sp

from queueing_llm.derivation import Derivation, DerivationError

x, d, l1 = sp.symbols("x d l_1", positive=True)


def test_a_substitution_is_displayed_evaluated_at_its_values():
    """``expr = result`` would read false when the value contains the symbols (d -> l1):
    the display is ``expr|_{d = l1} = result``."""
    D = Derivation("t", "[test]")
    D.substitute("the worst cycle", x * (d + 1) / (2 * l1), {d: l1}, x * (l1 + 1) / (2 * l1))
    tex = D.steps[-1].latex
    assert r"\right|_{" in tex and r"d=l_{1}" in tex.replace(" ", "")
    assert "(with $d = l_{1}$)" in D.steps[-1].text


def test_a_wrong_substitution_is_refused():
    D = Derivation("t", "[test]")
    with pytest.raises(DerivationError, match="substitution gives"):
        D.substitute("wrong", x * (d + 1), {d: 1}, 3 * x)
