r"""Step-by-step derivations checked by SymPy, with their LaTeX (used by ``proofs/``).

A :class:`Derivation` collects steps. Each step is checked when it is added:

* :meth:`Derivation.equal` asserts ``simplify(lhs - rhs) == 0`` (an identity);
* :meth:`Derivation.polynomial` asserts two polynomials in a variable are identical;
* :meth:`Derivation.substitute` records ``expr.subs(...)`` and checks the claimed result;
* :meth:`Derivation.holds` asserts a relation SymPy can decide (``True`` after simplify).

A failed step raises :class:`DerivationError` naming the step. :meth:`Derivation.latex`
renders the derivation as an ``align*`` environment per step, printed as a paper sets it
(:mod:`queueing_llm.latex`: ``x^{*}``, upright words, relations whose sides are too long
for the line broken between terms); :meth:`Derivation.write` writes it atomically
(temporary file, then rename). Titles and step sentences are LaTeX text (math between
``$`` signs); the source is plain text and is escaped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy as sp

from .atomic import file_mode as file_mode  # re-exported: their home is queueing_llm.atomic
from .atomic import write_atomic as write_atomic
from .latex import LINE_WIDTH, display_lines, latex_width, relation_lines, text_with_math
from .latex import latex as paper_latex

__all__ = ["Derivation", "DerivationError", "Step"]


class DerivationError(AssertionError):
    """A derivation step that SymPy could not verify."""


@dataclass(frozen=True)
class Step:
    """One checked step: a sentence and the LaTeX of the relation it establishes."""

    text: str
    latex: str
    """The ``align*`` lines of the relation, joined by ``\\\\`` (empty for a sentence)."""


def _is_zero(expr: sp.Expr) -> bool:
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    simplifiers = (
        sp.simplify,
        sp.expand,
        sp.cancel,
        lambda e: sp.simplify(sp.expand_power_base(e)),
        lambda e: sp.simplify(e.doit()),  # unevaluated Sum/Integral that simplify leaves half done
    )
    for simplifier in simplifiers:
        try:
            if simplifier(expr) == 0:
                return True
        except (TypeError, ValueError, NotImplementedError):  # pragma: no cover - sympy edge
            continue
    return False


@dataclass
class Derivation:
    """A titled sequence of SymPy-checked steps.

    Parameters
    ----------
    title : str
        Name of the result derived (the theorem's registry name, say).
    source : str
        The paper and equation the derivation follows.
    """

    title: str
    source: str = ""
    steps: list[Step] = field(default_factory=list)

    def say(self, text: str) -> None:
        """A sentence with no relation (context for the next steps)."""
        self.steps.append(Step(text, ""))

    def equal(self, text: str, lhs: Any, rhs: Any) -> sp.Expr:
        """Assert ``lhs == rhs`` as an identity; returns ``rhs``."""
        lhs, rhs = sp.sympify(lhs), sp.sympify(rhs)
        if not _is_zero(lhs - rhs):
            raise DerivationError(f"[{self.title}] step '{text}': {lhs} != {rhs}")
        self.steps.append(Step(text, _lines(relation_lines(lhs, "=", rhs))))
        return rhs

    def polynomial(self, text: str, lhs: Any, rhs: Any, variable: sp.Symbol) -> sp.Expr:
        """Assert ``lhs`` and ``rhs`` are the same polynomial in ``variable``."""
        lhs, rhs = sp.sympify(lhs), sp.sympify(rhs)
        diff = sp.Poly(sp.expand(lhs - rhs), variable)
        if not all(_is_zero(c) for c in diff.all_coeffs()):
            raise DerivationError(f"[{self.title}] step '{text}': polynomials differ by {diff.as_expr()}")
        self.steps.append(Step(text, _lines(relation_lines(lhs, "=", rhs))))
        return rhs

    def substitute(self, text: str, expr: Any, substitution: dict, result: Any) -> sp.Expr:
        """Assert ``expr.subs(substitution) == result``; returns ``result``."""
        expr, result = sp.sympify(expr), sp.sympify(result)
        got = expr.subs(substitution)
        if not _is_zero(got - result):
            raise DerivationError(f"[{self.title}] step '{text}': substitution gives {got}, not {result}")
        subs = "$, $".join(f"{paper_latex(k)} = {paper_latex(v)}" for k, v in substitution.items())
        # displayed as "expr evaluated at the substitution = result" (a bar with the values), so
        # the equality is true as printed even when a value contains the substituted symbols;
        # an expression too wide for the bar keeps the plain form, the values in the sentence
        at = sp.Subs(expr, tuple(substitution), tuple(sp.sympify(v) for v in substitution.values()))
        lhs = at if latex_width(paper_latex(at)) <= 0.6 * LINE_WIDTH else expr
        self.steps.append(Step(f"{text} (with ${subs}$)", _lines(relation_lines(lhs, "=", result))))
        return result

    def holds(self, text: str, relation: Any) -> sp.Basic:
        """Assert a relation (``sp.Eq``, ``sp.Lt``, ...) that SymPy decides to be true."""
        relation = sp.sympify(relation)
        verdict = sp.simplify(relation)
        if verdict is not sp.true:
            raise DerivationError(f"[{self.title}] step '{text}': could not verify {relation}")
        self.steps.append(Step(text, _lines(display_lines(relation))))
        return relation

    def latex(self) -> str:
        """The derivation as LaTeX: a heading, then each step's sentence and relation."""
        out = [f"\\subsection*{{\\raggedright {self.title}}}"]  # long titles wrap, never overfull
        if self.source:
            out.append(f"{{\\sloppy Source: {text_with_math(self.source)}.\\par}}")
        for i, step in enumerate(self.steps, 1):
            out.append(f"\\paragraph{{Step {i}.}} {step.text}")
            if step.latex:
                out.append("\\begin{align*}\n" + step.latex + "\n\\end{align*}")
        return "\n\n".join(out) + "\n"

    def write(self, path: str | os.PathLike) -> Path:
        """Write :meth:`latex` to ``path`` atomically; returns the path."""
        return write_atomic(path, self.latex())


def _lines(lines: list[str]) -> str:
    return " \\\\\n".join(lines)
