r"""LaTeX of SymPy expressions as a paper sets them: names, relations, line breaks.

SymPy's :func:`sympy.latex` prints a symbol named ``x_star`` as ``x_{star}``, a word
such as ``evictions`` in math italic, joins the parts of a statement with ``\wedge`` and
keeps a 40-term polynomial on one line. This module prints the same expressions the way
a paper does, with plain ``amsmath`` only:

* :func:`symbol_latex`: ``x_star`` -> ``x^{*}``, ``x_worst`` -> ``x_{\mathrm{worst}}``,
  ``evictions`` -> ``\mathrm{evictions}``, ``rejection_rate_K_to_oo`` ->
  ``\mathrm{rejection\ rate}_{K \to \infty}``, ``E[KV]`` -> ``E[\mathrm{KV}]``; Greek
  names and SymPy's modifiers (``Zbar`` -> ``\bar{Z}``) as SymPy prints them.
* :func:`latex`: one line; the parts of a conjunction separated by ``,\quad``, floats
  to 6 significant digits, infinities as ``\infty``.
* :func:`display_lines`: the lines of an ``align*`` environment (each with one ``&``):
  one line per part of a conjunction, and a relation whose estimated width
  (:func:`latex_width`) exceeds ``width`` broken between the terms of its sides.
* :func:`summary_lines`: as :func:`display_lines`, with sums of more than ``max_terms``
  terms shown as their first terms, ``\cdots`` and the last term, and a note giving the
  number of terms (and the degree of a polynomial), for the body of a document whose
  appendix holds the full expression.

Widths are in *units* of about one digit (5 pt at 10 pt type); :data:`LINE_WIDTH` fits
the 345 pt text block of a default ``article`` with room for the alignment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sympy as sp
from sympy.core.function import _coeff_isneg
from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import LatexPrinter, translate

__all__ = [
    "LINE_WIDTH",
    "PaperPrinter",
    "allow_breaks",
    "display_lines",
    "escape_text",
    "latex",
    "latex_width",
    "relation_lines",
    "summary_lines",
    "symbol_latex",
    "text_with_math",
]

LINE_WIDTH = 56.0
"""Default budget of one display line, in :func:`latex_width` units (about 5 pt each)."""

_SUBSCRIPT_WORDS = {"to": r"\to", "oo": r"\infty", "inf": r"\infty", "infty": r"\infty"}
_BRACKETED = re.compile(r"^([A-Za-z][A-Za-z0-9]*)([\[(])(.*)([\])])$")


def _word(text: str) -> bool:
    """A word set upright: two letters or more that SymPy does not translate (Greek, modifiers)."""
    return len(text) > 1 and text.isalpha() and translate(text) == text


def _token(text: str) -> str:
    if text in _SUBSCRIPT_WORDS:
        return _SUBSCRIPT_WORDS[text]
    if _word(text):
        return rf"\mathrm{{{text}}}"
    return translate(text)


def _join_subscripts(tokens: Sequence[str]) -> str:
    out = ""
    for i, tok in enumerate(tokens):
        if i == 0:
            out = tok
        elif tok == r"\to" or tokens[i - 1] == r"\to":
            out += " " + tok
        else:
            out += ", " + tok
    return out


def symbol_latex(name: str) -> str:
    r"""LaTeX of a symbol's name, the way a paper writes it.

    ``x_star`` -> ``x^{*}``, ``l0`` -> ``l_{0}``, ``x_worst`` -> ``x_{\mathrm{worst}}``,
    ``x_balanced_d`` -> ``x_{\mathrm{balanced}, d}``, ``throughput`` ->
    ``\mathrm{throughput}``, ``rejection_rate_K_to_oo`` ->
    ``\mathrm{rejection\ rate}_{K \to \infty}``, ``Delta^*`` -> ``\Delta^{*}``,
    ``P(stage=j)`` -> ``P(\mathrm{stage} = j)``; a name holding ``{`` is taken as LaTeX.
    """
    if "{" in name or "\\" in name:
        return name
    bracketed = _BRACKETED.match(name)
    if bracketed:
        head, opening, inner, closing = bracketed.groups()
        parts = re.split(r"(\s*[=,+<>]\s*)", inner)
        body = "".join(f" {p.strip()} " if re.fullmatch(r"\s*[=,+<>]\s*", p) else symbol_latex(p) for p in parts)
        return f"{symbol_latex(head)}{opening}{body.strip()}{closing}"
    base, supers, subs = split_super_sub(name)
    words = [base]
    subs = list(subs)
    if _word(base):  # a name made of words: "rejection_rate" -> one upright name
        while subs and _word(subs[0]) and subs[0] not in _SUBSCRIPT_WORDS and subs[0] != "star":
            words.append(subs.pop(0))
    supers = [("*" if s == "star" else s) for s in supers] + ["*" for s in subs if s == "star"]
    subs = [s for s in subs if s != "star"]
    if len(words) > 1:
        tex = r"\mathrm{" + r"\ ".join(words) + "}"
    else:
        tex = _token(base)
    if supers:
        tex += "^{" + " ".join(translate(s) if s != "*" else "*" for s in supers) + "}"
    if subs:
        tex += "_{" + _join_subscripts([_token(s) for s in subs]) + "}"
    return tex


class PaperPrinter(LatexPrinter):
    r"""SymPy's LaTeX printer with a paper's conventions (see the module docstring)."""

    def __init__(self, settings: dict | None = None, digits: int = 6) -> None:
        super().__init__(settings)
        self.digits = digits

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        name = self._settings["symbol_names"].get(expr)
        return name if name is not None else symbol_latex(expr.name)

    _print_Dummy = _print_Symbol

    def _print_Float(self, expr: sp.Float) -> str:
        value = float(expr)
        if value != value:
            return r"\mathrm{NaN}"
        if value in (float("inf"), float("-inf")):
            return r"\infty" if value > 0 else r"-\infty"
        text = f"{value:.{self.digits}g}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"
        return text

    def _print_And(self, expr: sp.And) -> str:
        return r",\quad ".join(self._print(arg) for arg in _parts(expr))

    def _print_Equivalent(self, expr: sp.Equivalent) -> str:
        return r" \iff ".join(self._print(arg) for arg in expr.args)


def latex(expr: Any, digits: int = 6) -> str:
    r"""One-line LaTeX of ``expr`` with :class:`PaperPrinter` (``x^{*}``, ``\mathrm{}``
    for words, ``\infty``, parts of a conjunction separated by ``,\quad``)."""
    return PaperPrinter(digits=digits).doprint(sp.sympify(expr))


# -- text ------------------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": "$<$",
    ">": "$>$",
    "|": "$|$",
}


def escape_text(text: Any) -> str:
    r"""``text`` with LaTeX's special characters escaped (``_`` -> ``\_``, ``%`` -> ``\%``, ...;
    ``<``, ``>``, ``|`` as math, which every font encoding has)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def text_with_math(text: Any) -> str:
    r"""Text for LaTeX: escaped (:func:`escape_text`) except the parts between ``$`` signs,
    kept as math (``"rate $\lambda$ (1/s)"``); with an odd number of ``$`` all is escaped."""
    parts = str(text).split("$")
    if len(parts) % 2 == 0:
        return escape_text(text)
    return "".join(escape_text(p) if i % 2 == 0 else f"${p}$" for i, p in enumerate(parts))


def allow_breaks(text: str) -> str:
    r"""Escaped text with break points after ``_`` and ``,``, and after ``.`` and ``/`` before a
    letter or bracket (not inside numbers), for ``p{}`` columns and running text."""
    return re.sub(r"(\\_|,)(?=\S)|([./])(?=[A-Za-z(\[])", lambda m: m.group(0) + r"\allowbreak{}", text)


# -- width -----------------------------------------------------------------------------------

_COMMAND = re.compile(r"\\([A-Za-z]+|.)")
_ZERO = {"left", "right", "displaystyle", "limits", "nolimits", "mathrm", "text", "operatorname", "mathit",
         "big", "Big", "bigl", "bigr", "Bigl", "Bigr"}
_SPACES = {"quad": 4.0, "qquad": 8.0, ",": 0.4, ";": 0.6, ":": 0.5, " ": 0.7, "!": -0.3}
_OPERATORS = {"leq", "geq", "le", "ge", "neq", "iff", "Leftrightarrow", "to", "cdot", "times", "in", "approx",
              "mid", "bmod", "wedge", "vee", "equiv", "sim"}


def _group(tex: str, i: int) -> tuple[str, int]:
    """The brace group (or single token) starting at ``tex[i]``; returns (content, next index)."""
    while i < len(tex) and tex[i] == " ":
        i += 1
    if i >= len(tex):
        return "", i
    if tex[i] == "{":
        depth = 0
        for j in range(i, len(tex)):
            depth += {"{": 1, "}": -1}.get(tex[j], 0)
            if depth == 0:
                return tex[i + 1:j], j + 1
        return tex[i + 1:], len(tex)
    if tex[i] == "\\":
        m = _COMMAND.match(tex, i)
        return m.group(0), m.end()
    return tex[i], i + 1


def latex_width(tex: str) -> float:
    r"""Estimated printed width of math LaTeX, in units of about one digit (5 pt at 10 pt).

    Letters and digits count 1, binary operators and relations 2.4 (with their spaces),
    sub- and superscripts 0.7 of their content, ``\frac{a}{b}`` the wider of ``a`` and
    ``b``, ``\left``/``\right`` nothing, other commands (Greek letters, ``\infty``) 1.1.
    An estimate that errs wide, for choosing line breaks; pdflatex has the last word.
    """
    width = 0.0
    i = 0
    while i < len(tex):
        ch = tex[i]
        if ch in "^_":
            content, i = _group(tex, i + 1)
            width += 0.7 * latex_width(content)
            continue
        if ch == "\\":
            m = _COMMAND.match(tex, i)
            name = m.group(1)
            i = m.end()
            if name in ("frac", "dfrac", "tfrac"):
                num, i = _group(tex, i)
                den, i = _group(tex, i)
                width += max(latex_width(num), latex_width(den)) + 0.6
            elif name in ("mathrm", "text", "operatorname", "mathit"):
                content, i = _group(tex, i)
                width += 0.95 * latex_width(content) if name != "text" else 1.0 * len(content)
            elif name in ("sum", "prod", "int"):
                width += 2.0
            elif name in _SPACES:
                width += _SPACES[name]
            elif name in _OPERATORS:
                width += 2.4
            elif name in _ZERO:
                pass
            elif name in ("{", "}", "|"):
                width += 1.0
            else:
                width += 1.1
            continue
        if ch in "{} ":
            i += 1
            continue
        if ch in "+-=<>":
            width += 2.4
        elif ch == "&":
            pass
        elif ch in ",;":
            width += 0.8
        elif ch in "()[]|":
            width += 0.8
        else:
            width += 1.0
        i += 1
    return width


# -- display lines ---------------------------------------------------------------------------

_RELATIONS = {sp.Eq: "=", sp.Ne: r"\neq", sp.Lt: "<", sp.Le: r"\leq", sp.Gt: ">", sp.Ge: r"\geq"}


def _terms(printer: PaperPrinter, expr: sp.Basic) -> list[tuple[str, str]]:
    """(sign, LaTeX) of each term of a sum in SymPy's printing order (one term otherwise)."""
    if not isinstance(expr, sp.Add):
        return [("", printer._print(expr))]
    out = []
    for i, term in enumerate(printer._as_ordered_terms(expr, order=None)):
        sign = "+" if i else ""
        if _coeff_isneg(term):
            sign, term = "-", -term
        tex = printer._print(term)
        if printer._needs_add_brackets(term):
            tex = rf"\left({tex}\right)"
        out.append((sign, tex))
    return out


def _pack(terms: list[tuple[str, str]], first: float, width: float) -> list[str]:
    """Terms packed greedily into lines: the first line has ``first`` units taken."""
    lines: list[str] = []
    current, used = "", first
    for sign, tex in terms:
        piece = (f" {sign} " if current else (f"{sign} " if sign else "")) + tex
        w = latex_width(piece)
        if current and used + w > width:
            lines.append(current)
            current, used = f"{sign} {tex}", 8.0 + latex_width(f"{sign} {tex}")
        else:
            current += piece
            used += w
    lines.append(current)
    return lines


def _elide(terms: list[tuple[str, str]], max_terms: int) -> list[tuple[str, str]]:
    if len(terms) <= max_terms:
        return terms
    return terms[:max_terms - 1] + [("+", r"\cdots")] + terms[-1:]


def _note(expr: sp.Basic) -> str:
    if not isinstance(expr, sp.Add):
        return ""
    note = f"{len(expr.args)} terms"
    symbols = sorted(expr.free_symbols, key=str)
    if len(symbols) == 1 and expr.is_polynomial(symbols[0]):
        note += f", degree {sp.degree(expr, symbols[0])} in "
        return rf"\quad\text{{({note}}}{PaperPrinter()._print(symbols[0])}\text{{)}}"
    return rf"\quad\text{{({note})}}"


def relation_lines(lhs: Any, relation: str, rhs: Any, width: float = LINE_WIDTH,
                   max_terms: int | None = None, digits: int = 6) -> list[str]:
    r"""``lhs relation rhs`` as ``align*`` lines, ``&`` before the relation, broken to ``width``.

    A line that is too wide is broken between the terms of ``rhs`` (continuation lines
    start ``&\quad + ...``); a wide ``lhs`` gets lines of its own (``& lhs``, broken
    between its terms) with the relation starting the next line. With ``max_terms``, a sum of more terms is elided
    (first terms, ``\cdots``, last term, then a note with the number of terms).
    """
    printer = PaperPrinter(digits=digits)
    lhs, rhs = sp.sympify(lhs), sp.sympify(rhs)
    left = printer._print(lhs)
    terms = _terms(printer, rhs)
    note = ""
    if max_terms is not None and len(terms) > max_terms:
        terms, note = _elide(terms, max_terms), _note(rhs)
    right = "".join((f" {s} " if k else (f"{s} " if s else "")) + t for k, (s, t) in enumerate(terms))
    whole = f"{left} &{relation} {right}{note}"
    if latex_width(whole) + 2.4 <= width:
        return [whole]
    if latex_width(left) > width / 3:  # the left side on lines of its own, the rest indented
        head = _pack(_terms(printer, lhs), 0.0, width)
        body = _pack(terms, 6.0, width)
        lines = [f"& {head[0]}"] + [rf"&\quad {line}" for line in head[1:]]
        lines += [rf"&\quad {relation} {body[0]}"] + [rf"&\qquad {line}" for line in body[1:]]
    else:
        body = _pack(terms, latex_width(left) + 2.4, width)
        lines = [f"{left} &{relation} {body[0]}"] + [rf"&\quad {line}" for line in body[1:]]
    if note:
        if latex_width(lines[-1] + note) <= width:
            lines[-1] += note
        else:
            lines.append("&" + note)
    return lines


def _parts(expr: sp.Basic) -> list[sp.Basic]:
    """The parts of a conjunction in SymPy's printing order (``default_sort_key``), or ``[expr]``."""
    return sorted(expr.args, key=sp.default_sort_key) if isinstance(expr, sp.And) else [expr]


def display_lines(expr: Any, width: float = LINE_WIDTH, max_terms: int | None = None,
                  digits: int = 6) -> list[str]:
    r"""The lines of an ``align*`` environment showing ``expr`` (join them with ``\\``).

    One line (or more, :func:`relation_lines`) per part of a conjunction (``sp.And``);
    relations (``=``, ``<``, ``\leq``, ..., ``\iff``) aligned at the relation; anything
    else on a line starting with ``&``.
    """
    printer = PaperPrinter(digits=digits)
    lines: list[str] = []
    for part in _parts(sp.sympify(expr)):
        rel = _RELATIONS.get(type(part))
        if rel is not None:
            lines += relation_lines(part.lhs, rel, part.rhs, width, max_terms, digits)
        elif isinstance(part, sp.Equivalent) and len(part.args) == 2:
            lines += relation_lines(part.args[0], r"\iff", part.args[1], width, max_terms, digits)
        else:
            lines.append("& " + printer._print(part))
    return lines


def summary_lines(expr: Any, width: float = LINE_WIDTH, max_terms: int = 4, digits: int = 6) -> list[str]:
    r""":func:`display_lines` with every sum of more than ``max_terms`` terms elided."""
    return display_lines(expr, width, max_terms=max_terms, digits=digits)
