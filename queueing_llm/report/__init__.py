"""Reports: LaTeX (booktabs), Markdown and CSV tables, matplotlib figures, the report job.

``queueing_llm.report.report(model)`` evaluates every applicable theorem, simulates the
model, verifies each theorem against the runs it declares (open system, saturated,
relaxed map, with their policies, :mod:`.passes`)
and (with ``output=``) writes report.md, report.tex (a LaTeX article that compiles with
pdflatex, :mod:`.document`), LaTeX tables, CSV, figures (PNG and PDF) and provenance;
``queueing-llm report`` is its command.
matplotlib is imported only when a figure is drawn.
"""

from .document import PACKAGES, report_document, theorems_fragment, verdicts_fragment, wrap_document
from .figures import plot_stage_occupancy, plot_trajectory, save_figure
from .passes import RUN_KINDS, ReportRuns, RunKinds, verify_declared, verify_kinds
from .run import FILES, Report, git_commit, provenance, report
from .tables import (
    THEOREM_COLUMNS,
    VERDICT_COLUMNS,
    format_value,
    latex_escape,
    latex_number,
    latex_text,
    read_csv,
    theorem_rows,
    to_csv,
    to_latex,
    to_markdown,
    verdict_rows,
)

__all__ = [
    "FILES",
    "PACKAGES",
    "RUN_KINDS",
    "Report",
    "ReportRuns",
    "RunKinds",
    "THEOREM_COLUMNS",
    "VERDICT_COLUMNS",
    "format_value",
    "git_commit",
    "latex_escape",
    "latex_number",
    "latex_text",
    "plot_stage_occupancy",
    "plot_trajectory",
    "provenance",
    "read_csv",
    "report",
    "report_document",
    "save_figure",
    "theorem_rows",
    "theorems_fragment",
    "to_csv",
    "to_latex",
    "to_markdown",
    "verdict_rows",
    "verdicts_fragment",
    "verify_declared",
    "verify_kinds",
    "wrap_document",
]
