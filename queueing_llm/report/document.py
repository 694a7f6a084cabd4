r"""LaTeX documents of a report: ``report.tex`` and the fragments ``theorems.tex``, ``verdicts.tex``.

Everything here is text that goes into a paper unedited: it compiles with pdflatex in a
plain ``article`` (10 pt, default margins) with the packages of :data:`PACKAGES`, without
overfull boxes. The rules that make it so:

* statements are printed by :mod:`queueing_llm.latex` (``x^{*}``, words upright, one
  aligned line per part of a conjunction, long sums broken between terms); a statement
  with a sum longer than :data:`BODY_LINES` lines is summarised in the body (its first terms,
  :math:`\cdots`, its last term, the number of terms and the degree) and given in full
  in an appendix, where long displays may break across pages;
* tables are booktabs ``longtable``\ s in a small font with ragged-right ``p{}`` columns
  for text (names break after ``_``, ``.``, ``/``), numbers right-aligned with 4 or 6
  significant digits, :math:`\infty` for infinities; the verdicts' reasons are a list
  under the table rather than a column;
* figures are included as PDF (vector) at the width of the text.

:func:`report_document` is the whole report; :func:`theorems_fragment` and
:func:`verdicts_fragment` the two fragments meant for ``\input`` in the user's own paper.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..latex import allow_breaks
from .tables import latex_escape, latex_text, to_latex

__all__ = ["PACKAGES", "BODY_LINES", "FRAGMENT_LINES", "preamble", "report_document", "statement_block",
           "theorems_fragment", "verdicts_fragment", "wrap_document"]

PACKAGES = ("amsmath", "amssymb", "booktabs", "array", "longtable", "graphicx")
r"""Packages the generated LaTeX needs (``\usepackage{...}``); ``siunitx`` in addition for
tables written with ``siunitx=True``."""

BODY_LINES = 3
"""Lines of a statement shown in the body of ``report.tex``; a longer one with a long sum is
summarised there (:func:`queueing_llm.latex.summary_lines`) and printed in full in the appendix."""

FRAGMENT_LINES = 8
"""Lines of a statement shown in ``theorems.tex``; a longer one with a long sum is summarised."""


def _summarised(row: Mapping[str, Any], limit: int) -> bool:
    """Whether a statement has more than ``limit`` lines and a sum that summarising shortens."""
    return len(row["statement_lines"]) > limit and list(row["statement_summary"]) != list(row["statement_lines"])

_VERDICT_COLUMNS = ("theorem", "quantity", "theory", "estimate", "ci_low", "ci_high", "holds")
_VERDICT_HEADERS = {"theorem": "theorem", "quantity": "quantity", "theory": "theory", "estimate": "estimate",
                    "ci_low": "CI low", "ci_high": "CI high", "holds": "verdict"}
_VERDICT_WIDTHS = {"theorem": "1.9cm", "quantity": "2.3cm", "holds": "1.3cm"}
_THEOREM_WIDTHS = {"theorem": "2.6cm", "key": "3.4cm"}


def preamble(packages: Iterable[str] = PACKAGES) -> str:
    """``\\documentclass{article}`` and the ``\\usepackage`` lines of ``packages``."""
    lines = [r"\documentclass{article}"] + [rf"\usepackage{{{p}}}" for p in packages]
    return "\n".join(lines) + "\n"


def wrap_document(body: str, packages: Iterable[str] = PACKAGES) -> str:
    """``body`` in a minimal article with ``packages`` (for compiling a fragment alone)."""
    return preamble(packages) + "\\begin{document}\n" + body + "\n\\end{document}\n"


def _verdict_text(row: Mapping[str, Any]) -> str:
    """holds, FAILS or does not apply (the row's ``status``, else from ``holds``)."""
    if row.get("status"):
        return str(row["status"])
    holds = row.get("holds")
    return "does not apply" if holds is None else ("holds" if holds else "FAILS")


def _verdict_table_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The verdict rows with ``holds`` as a word and the unit after the quantity."""
    return [{**row, "holds": _verdict_text(row),
             "quantity": f"{row['quantity']} ({row['unit']})" if row.get("unit") else row["quantity"]}
            for row in rows]


def verdicts_fragment(rows: Sequence[Mapping[str, Any]], caption: str, label: str = "tab:verdicts") -> str:
    r"""``verdicts.tex``: theory against simulation as a ``longtable`` (theorem, quantity,
    theory, estimate, interval, verdict), and under it each verdict's reason with the run
    it was checked against and the kind of test (needs :data:`PACKAGES`)."""
    head = "% queueing-llm: theory against simulation (needs \\usepackage{booktabs,array,longtable})\n"
    if not rows:
        return head + "No theorem with a check applies to this model and run.\n"
    columns = [c for c in _VERDICT_COLUMNS if c in rows[0]]
    table = to_latex(_verdict_table_rows(rows), columns, caption, headers=_VERDICT_HEADERS,
                     widths={c: w for c, w in _VERDICT_WIDTHS.items() if c in columns}, digits=4,
                     size="small", longtable=True, label=label, tabcolsep=4)
    items = [rf"\item[{latex_escape(row['theorem'])}] ({_context(row)}) {_prose(row.get('reason', ''))}"
             for row in rows]
    reasons = ["\\paragraph{Reasons.}", "\\begingroup\\sloppy", "\\begin{description}", *items,
               "\\end{description}", "\\endgroup"]
    return head + table + "\n" + "\n".join(reasons) + "\n"


def _context(row: Mapping[str, Any]) -> str:
    """The verdict, the run and the kind of test of a verdict row, for its reason line."""
    parts = [_verdict_text(row)]
    if row.get("run"):
        parts.append(f"{_prose(row['run'])} run")
    if row.get("test") and row["test"] != parts[0]:  # a verdict that does not apply has no test
        parts.append(f"{_prose(row['test'])} test")
    return "; ".join(parts)


def _prose(text: Any) -> str:
    """Escaped running text with break points in long tokens (file names, dotted names)."""
    return allow_breaks(latex_escape(str(text)))


def statement_block(lines: Sequence[str]) -> str:
    """An ``align*`` environment of the given lines (each with one ``&``)."""
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}"


def _statements(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        out.setdefault(row["theorem"], row)
    return out


def _theorem_table(rows: Sequence[Mapping[str, Any]], label: str | None) -> str:
    from ..latex import latex_width

    shown = []
    for row in rows:
        exact = row["exact_latex"]
        if latex_width(exact) > 28:  # a long symbolic value: the statement above shows it
            exact = r"\text{(see the statement)}"
        shown.append({**row, "exact_latex": exact})
    return to_latex(shown, ("theorem", "key", "exact_latex", "value"),
                    "Theorem values for the model (exact and floating point).",
                    headers={"exact_latex": "exact", "value": "float"}, math_columns=("exact_latex",),
                    widths=_THEOREM_WIDTHS, size="small", longtable=True, label=label)


def _heading(name: str, row: Mapping[str, Any], level: str, label: str = "") -> str:
    """The theorem's name as a heading, then its title and source as a sloppy paragraph
    (long source names break without overfull lines)."""
    star = "" if level == "paragraph" else "*"  # paragraphs are unnumbered already
    return (rf"\{level}{star}{{{latex_escape(name)}}}{label}" + "\n"
            + rf"{{\sloppy {latex_text(row['title'])} ({_prose(row['source'])})\par}}")


def theorems_fragment(rows: Sequence[Mapping[str, Any]], model_text: str) -> str:
    r"""``theorems.tex``: each theorem's statement (display math, summarised beyond
    :data:`FRAGMENT_LINES` lines) and a ``longtable`` of the values (needs :data:`PACKAGES`)."""
    out = [f"% queueing-llm report: theorems of {model_text}",
           "% needs \\usepackage{amsmath,booktabs,array,longtable}", ""]
    for name, row in _statements(rows).items():
        full = list(row["statement_lines"])
        lines = list(row["statement_summary"]) if _summarised(row, FRAGMENT_LINES) else full
        out += [_heading(name, row, "paragraph"), statement_block(lines), ""]
    if rows:
        out.append(_theorem_table(rows, "tab:theorems"))
    return "\n".join(out)


def _figure(path: str, caption: str) -> str:
    return "\n".join([r"\begin{figure}[ht]", r"\centering", rf"\includegraphics[width=\linewidth]{{{path}}}",
                      rf"\caption{{{latex_text(caption)}}}", r"\end{figure}"])


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, Any]] = []
        for key, item in value.items():
            out += _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, (list, tuple)) and any(isinstance(v, (Mapping, list, tuple)) for v in value):
        out = []
        for i, item in enumerate(value):
            out += _flatten(item, f"{prefix}[{i}]")
        return out
    return [(prefix, value)]


def _key_value_table(pairs: Sequence[tuple[str, Any]], caption: str, label: str, digits: int = 6) -> str:
    rows = [{"name": k, "value": v if isinstance(v, (int, float)) and not isinstance(v, bool) else
             json.dumps(v) if isinstance(v, (list, tuple)) else v} for k, v in pairs]
    return to_latex(rows, ("name", "value"), caption, headers={"name": "name", "value": "value"},
                    widths={"name": "3.8cm", "value": "7cm"}, size="small", longtable=True, label=label,
                    digits=digits)


def report_document(report: Any, figures: Mapping[str, str] | None = None,
                    derivations: Sequence[str | Path] = ()) -> str:
    r"""``report.tex``: the whole report as one article.

    Sections: the model and its runs (summary table), theory against simulation (the
    verdict table and every reason, the theorems not verified and why), the statements
    (summarised beyond :data:`BODY_LINES` lines), the theorem values, the figures, and
    appendices: the full long statements, the derivations given and the provenance.

    Parameters
    ----------
    report : Report
        The outcome of :func:`queueing_llm.report.report`.
    figures : mapping or None
        File name (relative to the document, PDF) -> caption, e.g. ``{"trajectory.pdf":
        "..."}``; None: no figures.
    derivations : sequence of path
        LaTeX files written by :class:`queueing_llm.derivation.Derivation` (the scripts of
        ``proofs/``), inlined in an appendix.
    """
    model_text = _prose(repr(report.model))
    level = f"{100 * report.level:.10g}\\%"
    body = [r"\allowdisplaybreaks", r"\sloppy", r"\title{queueing-llm report}", r"\date{}", r"\begin{document}",
            r"\maketitle", ""]
    body += [r"\section{Model and runs}",
             rf"Model: {model_text}. The open-system run has {report.iterations} iterations, "
             rf"seed {report.seed}, {latex_escape(report.backend_text())}; verdicts use {level} confidence "
             "intervals.", ""]
    if report.backends_text():
        body += [_prose(report.backends_text()), ""]
    extra = {kind: info for kind, info in report.run_info.items() if kind != "open"}
    if extra:
        body.append("Theorems the open-system run cannot verify are checked against these runs "
                    "(column \\emph{run} of the verdicts):")
        body.append(r"\begin{itemize}")
        body += [rf"\item \emph{{{latex_escape(kind)}}}: {_prose(_describe(info))}" for kind, info in extra.items()]
        body.append(r"\end{itemize}")
    body.append(_key_value_table(list(report.summary.items()), "Summary of the open-system run.", "tab:summary"))
    caption = (f"Theory against simulation ({report.iterations} iterations, seed {report.seed}, "
               f"{100 * report.level:.10g}% confidence intervals).")
    body += [r"\section{Theory against simulation}", verdicts_fragment(report.verdict_rows, caption)]
    if report.skipped:
        body += [r"\paragraph{Not verified.}", r"\begin{description}"]
        body += [rf"\item[{latex_escape(name)}] {_prose(why)}" for name, why in report.skipped.items()]
        body.append(r"\end{description}")
    statements = _statements(report.theorem_rows)
    long = {name: row for name, row in statements.items() if _summarised(row, BODY_LINES)}
    body.append(r"\section{Statements}")
    if not statements:
        body.append("No registered theorem applies to this model.")
    for name, row in statements.items():
        body.append(_heading(name, row, "subsection"))
        if name in long:
            body += [statement_block(row["statement_summary"]),
                     rf"The full expression is in Appendix~\ref{{app:{_label(name)}}}.", ""]
        else:
            body += [statement_block(row["statement_lines"]), ""]
    if report.theorem_rows:
        body += [r"\section{Theorem values}", _theorem_table(report.theorem_rows, "tab:theorems")]
    if figures:
        body.append(r"\section{Figures}")
        body += [_figure(path, cap) for path, cap in figures.items()]
        body.append(r"\clearpage")
    body.append(r"\appendix")
    if long:
        body.append(r"\section{Full statements}")
        for name, row in long.items():
            body += [_heading(name, row, "subsection", rf"\label{{app:{_label(name)}}}"),
                     statement_block(row["statement_lines"]), ""]
    if derivations:
        body.append(r"\section{Derivations}")
        body += [Path(path).read_text(encoding="utf-8") for path in derivations]
    body += [r"\section{Provenance}", _key_value_table(_flatten(report.provenance), "What made this report.",
                                                       "tab:provenance")]
    body.append(r"\end{document}")
    return preamble() + "\n".join(body) + "\n"


def _label(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-:" else "-" for ch in name)


def _describe(info: Mapping[str, Any]) -> str:
    if "error" in info:
        return str(info["error"])
    from .run import _describe_run

    return _describe_run(dict(info))
