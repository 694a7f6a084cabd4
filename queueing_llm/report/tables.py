r"""Tables of a report: theorem values and verdicts as rows, rendered as LaTeX, Markdown or CSV.

A *row* is a plain ``dict`` from column names to values; a list of rows is the one data
structure every renderer takes, so the same rows give a booktabs table for a paper
(:func:`to_latex`), a Markdown table for a notebook or a README (:func:`to_markdown`)
and a CSV file to redraw anything later (:func:`to_csv`).

* :func:`verdict_rows`: one row per :class:`~queueing_llm.verdict.Verdict` (theory,
  simulation estimate, confidence interval, holds, reason).
* :func:`theorem_rows`: one row per value of each applicable theorem's ``evaluate``
  (exact SymPy string and float) with the theorem's LaTeX statement; user-registered
  theorems get rows like the built-in ones.

Files are written atomically (a temporary file in the same folder, then a rename), so a
crash never leaves half a table.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sympy as sp

from ..derivation import write_atomic
from ..errors import ModelError, describe
from ..latex import allow_breaks, display_lines, summary_lines
from ..latex import escape_text as latex_escape
from ..latex import latex as paper_latex
from ..latex import text_with_math as latex_text
from ..theorems import theorems
from ..verdict import Verdict

__all__ = [
    "VERDICT_COLUMNS",
    "THEOREM_COLUMNS",
    "verdict_rows",
    "theorem_rows",
    "format_value",
    "latex_escape",
    "latex_number",
    "latex_text",
    "to_latex",
    "to_markdown",
    "to_csv",
    "read_csv",
]

VERDICT_COLUMNS = ("theorem", "quantity", "theory", "estimate", "ci_low", "ci_high", "level", "holds", "reason",
                   "run", "test", "status", "unit")
"""Columns of :func:`verdict_rows`."""

THEOREM_COLUMNS = ("theorem", "key", "exact", "value")
"""Columns of :func:`theorem_rows` shown in tables (rows also hold ``exact_latex``,
``title``, ``source`` and ``statement``)."""

MAX_ITEMS = 8
"""Entries of a list- or dict-valued ``evaluate`` result shown as rows (the rest counted)."""


# -- rows ----------------------------------------------------------------------------------


def verdict_rows(verdicts: Iterable[Verdict], runs: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    r"""One row per verdict: the theory value against the simulation's interval.

    Parameters
    ----------
    verdicts : iterable of Verdict
        E.g. the result of :func:`queueing_llm.verify_all`.
    runs : mapping or None
        Theorem name -> the kind of run its verdict was checked against (``"open"``,
        ``"saturated"``, ``"relaxed"``, ``"saturated, rate_limited(x*)"``, see
        :mod:`queueing_llm.report.passes`); the ``run`` column, ``None`` where unknown.

    Returns
    -------
    list of dict
        Keys :data:`VERDICT_COLUMNS`: ``theorem``, ``quantity``, ``theory``, ``estimate``
        (floats), ``ci_low``, ``ci_high`` (the level-:math:`c` interval
        :math:`[\hat\theta - h, \hat\theta + h]`, ``None`` for exact checks), ``level``
        (:math:`c`, ``None`` for exact checks), ``holds`` (True, False, or None when the
        theorem does not apply to the runs), ``reason``, ``run`` (the runs' label),
        ``test`` (``"two-sided CI"``, ``"exact"``, ``"one-sided bound (upper)"``, ...),
        ``status`` (``"holds"``, ``"FAILS"``, ``"does not apply"``) and ``unit``.
        Source of the decision rule: :mod:`queueing_llm.verify`.
    """
    runs = dict(runs or {})
    rows = []
    for i, v in enumerate(verdicts):
        if not isinstance(v, Verdict):
            raise ModelError(f"verdicts[{i}] must be a Verdict (ql.verify(...)), got {describe(v)}")
        iv = v.interval
        rows.append(
            {
                "theorem": v.theorem,
                "quantity": v.quantity,
                "theory": float(v.theory),
                "estimate": float(v.estimate),
                "ci_low": None if iv is None else float(iv.low),
                "ci_high": None if iv is None else float(iv.high),
                "level": None if iv is None else float(iv.level),
                "holds": v.holds,
                "reason": v.reason,
                "run": runs.get(v.theorem) or v.run or None,
                "test": v.test,
                "status": v.status,
                "unit": v.unit,
            }
        )
    return rows


def _exact(value: Any) -> tuple[str, str, float | None]:
    """(exact string, LaTeX, float or None) of one scalar ``evaluate`` value."""
    if value is None or isinstance(value, (bool, str)):
        return str(value), _latex_text(str(value)), None
    if isinstance(value, sp.Basic):
        if isinstance(value, sp.logic.boolalg.BooleanAtom):
            return str(value), _latex_text(str(value)), None
        number = float(value) if value.is_number and value.is_extended_real else None
        return str(value), paper_latex(value), number
    if isinstance(value, numbers.Integral):
        return str(int(value)), str(int(value)), float(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return repr(number), paper_latex(sp.Float(number)) if math.isfinite(number) else paper_latex(number), number
    return str(value), _latex_text(str(value)), None


def _latex_text(text: str) -> str:
    return r"\text{" + latex_escape(text) + "}"


def _flatten(key: str, value: Any, max_items: int) -> list[tuple[str, Any]]:
    """``evaluate`` entries as (key, scalar) pairs: dicts and sequences indexed ``key[i]``."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    else:
        return [(key, value)]
    out: list[tuple[str, Any]] = []
    for sub, item in items[:max_items]:
        out += _flatten(f"{key}[{sub}]", item, max_items)
    if len(items) > max_items:
        out.append((f"{key}[...]", f"{len(items) - max_items} more entries"))
    return out


def theorem_rows(model: Any, names: Sequence[str] | None = None, max_items: int = MAX_ITEMS) -> list[dict[str, Any]]:
    r"""One row per value of each applicable theorem's ``evaluate(model)``.

    Parameters
    ----------
    model : ContinuousBatching
        Numeric or symbolic.
    names : sequence of str or None
        Registry names; ``None`` means every registered theorem that applies to the model
        (built-in and user-registered alike). A named theorem that does not apply raises.
    max_items : int
        List- and dict-valued results (e.g. the renewal sequence :math:`u_n`) give one row
        per entry ``key[i]`` up to this many, then one row counting the rest.

    Returns
    -------
    list of dict
        Keys ``theorem``, ``key``, ``exact`` (``str`` of the SymPy value, e.g. ``"100/61"``
        for :math:`x^* = 2M / (l_1(2 l_0 + l_1 + 1))`), ``exact_latex``, ``value`` (float, or
        ``None`` for booleans, text and symbolic expressions), ``title``, ``source``,
        ``statement`` (the one-line LaTeX of ``theorem.statement(model)``, as
        ``theorem.latex(model)``), ``statement_lines`` (its ``align*`` lines, long sums
        broken, :func:`queueing_llm.latex.display_lines`) and ``statement_summary`` (the
        same with long sums elided, :func:`queueing_llm.latex.summary_lines`), the last
        four repeated on each of the theorem's rows. Sources: each theorem's ``source``.

    Raises
    ------
    ModelError
        An unknown name, a named theorem that does not apply, a bad ``max_items``, or an
        error of the theorem itself (never hidden).
    """
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
        raise ModelError(f"max_items must be an integer in [1, inf), got {describe(max_items)}")
    if names is None:
        chosen = [thm for thm in theorems.values() if thm.applies(model) is None]
    else:
        if isinstance(names, str):
            raise ModelError(f"names must be a sequence of theorem names, got the string {names!r}")
        chosen = [theorems[name] for name in names]
    rows = []
    for thm in chosen:
        values = thm.evaluate(model)
        if not isinstance(values, Mapping):
            raise ModelError(f"evaluate of theorem {thm.name!r} must return a dict, got {describe(values)}")
        expr = thm.statement(model)
        statement = paper_latex(expr)
        lines, summary = display_lines(expr), summary_lines(expr)
        for key, value in values.items():
            for flat_key, scalar in _flatten(str(key), value, max_items):
                exact, exact_latex, number = _exact(scalar)
                rows.append(
                    {
                        "theorem": thm.name,
                        "key": flat_key,
                        "exact": exact,
                        "exact_latex": exact_latex,
                        "value": number,
                        "title": thm.title,
                        "source": thm.source,
                        "statement": statement,
                        "statement_lines": lines,
                        "statement_summary": summary,
                    }
                )
    return rows


# -- rendering -----------------------------------------------------------------------------

def format_value(value: Any, digits: int = 6) -> str:
    """A cell as text: floats to ``digits`` significant digits, ``None`` empty, bools yes/no."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return f"{number:.{digits}g}"
    return str(value)


def _check_columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> tuple[str, ...]:
    if isinstance(columns, str) or not columns:
        raise ModelError(f"columns must be a non-empty sequence of column names, got {describe(columns)}")
    columns = tuple(columns)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ModelError(f"rows[{i}] must be a dict, got {describe(row)}")
        missing = [c for c in columns if c not in row]
        if missing:
            raise ModelError(f"rows[{i}] has no column {missing[0]!r}; it has {sorted(row)}")
    return columns


def _is_numeric_column(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    values = [row[column] for row in rows if row[column] is not None]
    return bool(values) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values
    )


TEXT_WIDTH = 345.0
"""Width of the text block of a default 10 pt ``article`` (pt): tables wider are split."""

_PT_PER_CHAR = {None: 5.0, "small": 4.5, "footnotesize": 4.0, "scriptsize": 3.5}
"""Width of a digit (pt) at each font size: the unit of the width estimates."""
_SIZES = ("small", "footnotesize", "scriptsize")


def latex_number(value: Any, digits: int = 6) -> str:
    r"""A number as LaTeX text: ``digits`` significant digits, ``1.5 \cdot 10^{-7}`` in math
    for exponents, ``$\infty$``/``$-\infty$`` for infinities, an em dash for NaN; non-numbers as
    :func:`format_value` escaped (``None`` empty, bools yes/no)."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        number = float(value)
        if math.isnan(number):
            return "---"  # no value (e.g. the estimate of a verdict that does not apply)
        if math.isinf(number):
            return r"$\infty$" if number > 0 else r"$-\infty$"
        text = f"{number:.{digits}g}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            return rf"${mantissa} \cdot 10^{{{int(exponent)}}}$"
        return text.replace("-", "$-$") if text.startswith("-") else text
    return latex_escape(format_value(value, digits))


def _si_format(values: Sequence[Any], digits: int) -> str:
    """siunitx ``table-format`` fitting the finite numbers of a column, as formatted."""
    sign, whole, frac, exp_sign, exp = "", 1, 0, "", 0
    for v in values:
        if v is None or isinstance(v, bool) or not math.isfinite(float(v)):
            continue
        text = str(int(v)) if isinstance(v, numbers.Integral) else f"{float(v):.{digits}g}"
        if text.startswith("-"):
            sign, text = "-", text[1:]
        mantissa, _, exponent = text.partition("e")
        head, _, tail = mantissa.partition(".")
        whole, frac = max(whole, len(head)), max(frac, len(tail))
        if exponent:
            exp_sign = "-" if exponent.startswith("-") or exp_sign == "-" else exp_sign
            exp = max(exp, len(str(abs(int(exponent)))))
    out = f"{sign}{whole}" + (f".{frac}" if frac else "")
    return out + (f"e{exp_sign}{exp}" if exp else "")


def _si_cell(value: Any, digits: int) -> str:
    """A cell of an siunitx ``S`` column: a bare number, anything else braced (text)."""
    if value is None:
        return "{}"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if isinstance(value, numbers.Integral):
            return str(int(value))
        if math.isfinite(float(value)):
            return f"{float(value):.{digits}g}"
    return "{" + latex_number(value, digits) + "}"


def _header(text: str, room: float) -> tuple[str, float]:
    """A header cell, stacked on several lines when its words are wider than ``room`` digit
    widths (at least 10), and its estimated width (:func:`_plain_width`)."""
    words, lines = str(text).split(), []
    for word in words:
        if lines and _plain_width(latex_text(lines[-1] + " " + word)) <= max(room, 10):
            lines[-1] += " " + word
        else:
            lines.append(word)
    width = max((_plain_width(latex_text(line)) for line in lines), default=0.0)
    if len(lines) <= 1:
        return latex_text(text), width
    return r"\begin{tabular}[b]{@{}c@{}}" + r" \\ ".join(latex_text(line) for line in lines) + r"\end{tabular}", width


_NARROW = {**dict.fromkeys("il.,:;'|!`I", 0.56), **dict.fromkeys("tfrsj()[]-/", 0.78), **dict.fromkeys("mw", 1.5),
           **dict.fromkeys("MW", 1.85), " ": 0.67}


def _char_width(ch: str) -> float:
    """Width of a character of Computer Modern Roman in digit widths (a digit is 0.5 em)."""
    if ch in _NARROW:
        return _NARROW[ch]
    return 1.45 if ch.isupper() else 1.0


def _plain_width(cell: str) -> float:
    """Rough printed width of a cell in digit widths (Computer Modern's widths by character
    class, :func:`_char_width`; commands and braces dropped; math by
    :func:`queueing_llm.latex.latex_width`)."""
    from ..latex import latex_width

    math_parts = re.findall(r"\$([^$]*)\$", cell)
    text = re.sub(r"\$[^$]*\$", "", cell)
    text = re.sub(r"\\[A-Za-z]+(\{\})?|[{}]", "", text)
    return sum(_char_width(ch) for ch in text) + sum(latex_width(m) for m in math_parts)


def _split_columns(columns: tuple[str, ...], widths: Mapping[str, float], repeat: Sequence[str],
                   budget: float) -> list[tuple[str, ...]]:
    """Consecutive groups of columns, each with the ``repeat`` columns first, within ``budget`` pt."""
    fixed = [c for c in repeat if c in columns]
    rest = [c for c in columns if c not in fixed]
    base = sum(widths[c] for c in fixed)
    groups: list[list[str]] = [[]]
    used = base
    for c in rest:
        if groups[-1] and used + widths[c] > budget:
            groups.append([])
            used = base
        groups[-1].append(c)
        used += widths[c]
    return [tuple(fixed + g) for g in groups]


def to_latex(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    caption: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    math_columns: Sequence[str] = (),
    label: str | None = None,
    digits: int = 6,
    siunitx: bool = False,
    longtable: bool = False,
    widths: Mapping[str, str] | None = None,
    size: str | None = None,
    text_width: float | None = TEXT_WIDTH,
    repeat: Sequence[str] = (),
    placement: str = "ht",
    tabcolsep: float | None = None,
) -> str:
    r"""A booktabs table (``\toprule``, ``\midrule``, ``\bottomrule``) of ``rows``.

    Text is escaped (:func:`latex_escape`; in captions and headers, parts between ``$``
    signs stay math, :func:`latex_text`), numbers are formatted to ``digits``
    significant digits and right-aligned (infinities as :math:`\infty`, exponents as
    :math:`\cdot 10^{n}`), cells of ``math_columns`` are LaTeX math and set as ``$...$``
    unescaped. With a caption (or label) the tabular sits in a ``table`` environment.
    Needs ``\usepackage{booktabs}`` (and ``array`` with ``widths``, ``siunitx`` with
    ``siunitx=True``, ``longtable`` with ``longtable=True``).

    Parameters
    ----------
    rows : sequence of dict
    columns : sequence of str
        The keys shown, in order (each row must have them).
    caption : str or None
        Escaped like text, ``$...$`` kept as math.
    headers : mapping or None
        Column name -> header text (default: the column name), escaped like the caption;
        a header wider than its column's cells is stacked on several lines.
    math_columns : sequence of str
        Columns holding LaTeX math.
    label : str or None
        ``\label`` of the table.
    digits : int
        Significant digits of floats.
    siunitx : bool
        Numeric columns as siunitx ``S`` columns aligned on the decimal point, with a
        ``table-format`` fitted to the column's numbers.
    longtable : bool
        A ``longtable`` (breaks across pages, the header repeated on each page) instead
        of a ``table`` float.
    widths : mapping or None
        Column name -> width (``"3cm"``, ``"0.2\linewidth"``): a ragged-right ``p{}``
        column whose text wraps (breaks allowed after ``_``, ``.``, ``/``, ``,``).
    size : {None, "small", "footnotesize", "scriptsize"}
        Font size of the table.
    text_width : float or None
        Width available in pt (default :data:`TEXT_WIDTH`): a table estimated wider is
        split into several tables of consecutive columns, each starting with the
        ``repeat`` columns (captions marked "part i of n"). None never splits.
    repeat : sequence of str
        Columns repeated in every part of a split table (e.g. the swept parameters).
    placement : str
        Float placement of the ``table`` environment.
    tabcolsep : float or None
        Space on each side of a column, in pt (LaTeX's default 6 pt when None).
    """
    columns = _check_columns(rows, columns)
    headers = dict(headers or {})
    widths = dict(widths or {})
    math_set = set(math_columns)
    if size not in (None, *_SIZES):
        raise ModelError(f"size must be one of None, {', '.join(_SIZES)}; got {describe(size)}")
    unknown = [c for c in [*widths, *repeat] if c not in columns]
    if unknown:
        raise ModelError(f"widths and repeat must name shown columns; {unknown[0]!r} is not in {list(columns)}")
    for c, length in widths.items():
        _length_pt(c, length)  # a bad length raises here, naming the column
    numeric = {c: _is_numeric_column(rows, c) and c not in math_set and c not in widths for c in columns}

    def cell(row: Mapping[str, Any], column: str) -> str:
        value = row[column]
        if column in math_set and value not in (None, ""):
            return f"${value}$"
        if siunitx and numeric[column]:
            return _si_cell(value, digits)
        text = latex_number(value, digits)
        return allow_breaks(text) if column in widths else text

    body = {c: [cell(row, c) for row in rows] for c in columns}
    content = {c: max([_plain_width(x) for x in body[c]], default=0.0) for c in columns}
    stacked = {c: _header(headers.get(c, c), content[c] if c not in widths else 1e9) for c in columns}
    head = {c: tex for c, (tex, _) in stacked.items()}
    if siunitx:
        head = {c: ("{" + h + "}" if numeric[c] else h) for c, h in head.items()}
    pt = _PT_PER_CHAR[size]
    pad = 2.0 * (6.0 if tabcolsep is None else float(tabcolsep))

    def spec(c: str) -> str:
        if c in widths:
            return rf">{{\raggedright\arraybackslash}}p{{{widths[c]}}}"
        if siunitx and numeric[c]:
            return f"S[table-format={_si_format([row[c] for row in rows], digits)}]"
        return "r" if numeric[c] else "l"

    def estimate(c: str) -> float:
        if c in widths:
            return _length_pt(c, widths[c]) + pad
        cells = content[c]
        if siunitx and numeric[c]:  # an S column reserves its table-format: sign, digits, point, exponent
            fmt = _si_format([row[c] for row in rows], digits)
            cells = max(cells, sum(map(int, re.findall(r"\d+", fmt))) + 0.6 * fmt.count(".") + 2.0 * ("e" in fmt))
        return pt * max(cells, stacked[c][1]) + pad

    groups = [columns]
    if text_width is not None:
        # 3% to spare: the estimates are rough (widths of Computer Modern by character class)
        groups = _split_columns(columns, {c: estimate(c) for c in columns}, repeat, 0.97 * text_width)
    parts = []
    for i, group in enumerate(groups):
        part_caption = caption
        if caption is not None and len(groups) > 1:
            part_caption = f"{caption} (part {i + 1} of {len(groups)})"
        part_label = label if i == 0 else None
        parts.append(_table(group, head, body, len(rows), "".join(spec(c) for c in group), part_caption,
                            part_label, longtable, size, placement, tabcolsep))
    return "\n".join(parts)


def _length_pt(column: str, length: str) -> float:
    """A TeX length in pt (cm, mm, in, pt, em; fractions of ``\\linewidth``/``\\textwidth``)."""
    m = re.fullmatch(r"\s*([0-9.]*)\s*(cm|mm|in|pt|em|\\linewidth|\\textwidth|\\columnwidth)\s*", length)
    if not m:
        raise ModelError(f"widths[{column!r}] must be a TeX length like '3cm' or '0.2\\linewidth', got {length!r}")
    factor = float(m.group(1) or 1)
    unit = {"cm": 28.45, "mm": 2.845, "in": 72.27, "pt": 1.0, "em": 10.0}.get(m.group(2), TEXT_WIDTH)
    return factor * unit


def _table(columns: tuple[str, ...], head: Mapping[str, str], body: Mapping[str, list[str]], n: int, spec: str,
           caption: str | None, label: str | None, longtable: bool, size: str | None, placement: str,
           tabcolsep: float | None) -> str:
    def row(cells: list[str]) -> str:  # a row must not start with "[": "\\[" takes it as a length
        text = " & ".join(cells) + r" \\"
        return "{}" + text if text.startswith("[") else text

    header = row([head[c] for c in columns])
    lines = [row([body[c][i] for c in columns]) for i in range(n)]
    cap = [] if caption is None else [rf"\caption{{{latex_text(caption)}}}"]
    lab = [] if label is None else [rf"\label{{{label}}}"]
    font_size = rf"\{size}" if size else ""
    sep = "" if tabcolsep is None else rf"\setlength{{\tabcolsep}}{{{float(tabcolsep):g}pt}}"
    if longtable:
        group = bool(font_size or sep)
        font = [rf"\begingroup{font_size}{sep}"] if group else []
        out = [*font, rf"\begin{{longtable}}{{{spec}}}"]
        if cap or lab:
            out.append("".join(cap + lab) + r" \\")
        out += [r"\toprule", header, r"\midrule", r"\endfirsthead", r"\toprule", header, r"\midrule", r"\endhead",
                r"\midrule",
                rf"\multicolumn{{{len(columns)}}}{{r}}{{\emph{{continued on the next page}}}} \\",
                r"\endfoot", r"\bottomrule", r"\endlastfoot", *lines, r"\end{longtable}"]
        if group:
            out.append(r"\endgroup")
        return "\n".join(out) + "\n"
    tabular = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", header, r"\midrule", *lines, r"\bottomrule",
               r"\end{tabular}"]
    if not cap and not lab:
        font = [rf"{{{font_size}{sep}"] if font_size or sep else []
        return "\n".join(font + tabular + (["}"] if font else [])) + "\n"
    font = [font_size + sep] if font_size or sep else []
    out = [rf"\begin{{table}}[{placement}]", r"\centering", *font, *cap, *lab]
    return "\n".join(out + tabular + [r"\end{table}"]) + "\n"


def _markdown_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", r"\|").replace("\n", " ")


def to_markdown(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    headers: Mapping[str, str] | None = None,
    digits: int = 6,
) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (``|`` and ``\\`` escaped, numbers
    right-aligned and formatted to ``digits`` significant digits)."""
    columns = _check_columns(rows, columns)
    headers = dict(headers or {})
    rule = ["---:" if _is_numeric_column(rows, c) else "---" for c in columns]
    lines = ["| " + " | ".join(_markdown_cell(headers.get(c, c)) for c in columns) + " |"]
    lines.append("| " + " | ".join(rule) + " |")
    for row in rows:
        lines.append("| " + " | ".join(_markdown_cell(format_value(row[c], digits)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest round-trip representation
    return str(value)


def to_csv(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike, columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as CSV (header line, then one line per row) atomically; returns the path.

    ``columns`` defaults to the keys of the first row. Floats are written with ``repr``
    (exact round trip), ``None`` as an empty field, booleans as ``True``/``False``.
    """
    if columns is None:
        if not rows:
            raise ModelError("to_csv needs columns when rows is empty")
        columns = list(rows[0])
    columns = _check_columns(rows, columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row[c]) for c in columns])
    return write_atomic(path, buffer.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a CSV file written by :func:`to_csv`, every field as text."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
