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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sympy as sp

from ..derivation import write_atomic
from ..errors import ModelError, describe
from ..theorems import theorems
from ..verdict import Verdict

__all__ = [
    "VERDICT_COLUMNS",
    "THEOREM_COLUMNS",
    "verdict_rows",
    "theorem_rows",
    "format_value",
    "latex_escape",
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
        return str(value), sp.latex(value), number
    if isinstance(value, numbers.Integral):
        return str(int(value)), str(int(value)), float(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return repr(number), sp.latex(sp.Float(number)) if math.isfinite(number) else str(number), number
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
        ``None`` for booleans, text and symbolic expressions), ``title``, ``source`` and
        ``statement`` (the LaTeX of ``theorem.statement(model)``, repeated on each of the
        theorem's rows). Sources: each theorem's ``source``.

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
        statement = thm.latex(model)
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
                    }
                )
    return rows


# -- rendering -----------------------------------------------------------------------------

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
}


def latex_escape(text: str) -> str:
    r"""``text`` with LaTeX's special characters escaped (``_`` -> ``\_``, ``%`` -> ``\%``, ...)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


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


def to_latex(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    caption: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    math_columns: Sequence[str] = (),
    label: str | None = None,
    digits: int = 6,
) -> str:
    r"""A booktabs table (``\toprule``, ``\midrule``, ``\bottomrule``) of ``rows``.

    Text is escaped (:func:`latex_escape`), numbers are formatted to ``digits``
    significant digits and right-aligned, cells of ``math_columns`` are LaTeX math and
    set as ``$...$`` unescaped. With a caption (or label) the tabular sits in a
    ``table`` environment. Needs ``\usepackage{booktabs}``.

    Parameters
    ----------
    rows : sequence of dict
    columns : sequence of str
        The keys shown, in order (each row must have them).
    caption : str or None
        Escaped like text.
    headers : mapping or None
        Column name -> header text (default: the column name).
    math_columns : sequence of str
        Columns holding LaTeX math.
    label : str or None
        ``\label`` of the table.
    digits : int
        Significant digits of floats.
    """
    columns = _check_columns(rows, columns)
    headers = dict(headers or {})
    math_set = set(math_columns)
    align = "".join("r" if _is_numeric_column(rows, c) else "l" for c in columns)

    def cell(row: Mapping[str, Any], column: str) -> str:
        value = row[column]
        if column in math_set and value not in (None, ""):
            return f"${value}$"
        return latex_escape(format_value(value, digits))

    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule"]
    lines.append(" & ".join(latex_escape(headers.get(c, c)) for c in columns) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(cell(row, c) for c in columns) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption is None and label is None:
        return "\n".join(lines) + "\n"
    out = [r"\begin{table}[ht]", r"\centering"]
    if caption is not None:
        out.append(rf"\caption{{{latex_escape(caption)}}}")
    if label is not None:
        out.append(rf"\label{{{label}}}")
    return "\n".join(out + lines + [r"\end{table}"]) + "\n"


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
