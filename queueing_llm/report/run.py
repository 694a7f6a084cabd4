r"""The report job: evaluate every applicable theorem, simulate, verify, write the files.

:func:`report` takes one model (default: :func:`queueing_llm.default_model`), evaluates
each applicable registered theorem (built-in and user-registered), simulates the model
with the fast engine (the compiled kernel where it applies, else the Python loop; the
report names the backend that ran each run, ``Trajectory.backend``), verifies every
applicable theorem that has a check against the first run it accepts (the open-system
run, then for a finite KV budget a saturated run, a relaxed-map run and a saturated
rate-limited run, see :mod:`queueing_llm.report.passes`;
the theorems no run satisfies are recorded with their reasons, never dropped) and
returns a :class:`Report`. Given an ``output`` folder it writes,
each file atomically:

``report.md``         the whole report in Markdown (tables, reasons, statements, provenance)
``report.tex``        the whole report as a LaTeX article (:mod:`.document`; compiles with pdflatex)
``theorems.tex``      the statements and the values of the theorems (booktabs longtable)
``verdicts.tex``      theory against simulation (booktabs longtable) and the reasons
``verdicts.csv``      the verdict rows, every column
``trajectory.png``    queue, batch size and memory against the iteration, evictions marked (and ``.pdf``)
``stage_occupancy.png`` the stage counts over the last iterations (and ``.pdf``)
``provenance.json``   the model, seed, iterations, level, versions and git commit
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_folder, write_atomic
from ..errors import ParameterError, describe
from ..model import ContinuousBatching, default_model
from ..numbers import check_real
from ..stats import DEFAULT_LEVEL
from ..theorems import theorems
from ..verify import Verdicts
from .document import report_document, theorems_fragment, verdicts_fragment
from .figures import plot_stage_occupancy, plot_trajectory
from .passes import ReportRuns, backends_of, describe_backends, verify_declared
from .tables import (
    THEOREM_COLUMNS,
    VERDICT_COLUMNS,
    format_value,
    latex_escape,
    theorem_rows,
    to_csv,
    to_markdown,
    verdict_rows,
)

__all__ = ["Report", "report", "git_commit", "provenance"]

FILES = ("report.md", "report.tex", "theorems.tex", "verdicts.tex", "verdicts.csv", "trajectory.png",
         "trajectory.pdf", "stage_occupancy.png", "stage_occupancy.pdf", "provenance.json")
"""The files :func:`report` writes into its output folder."""

_VERDICT_TABLE = ("theorem", "quantity", "unit", "run", "test", "theory", "estimate", "ci_low", "ci_high", "status")
_HEADERS = {"ci_low": "CI low", "ci_high": "CI high", "exact": "exact value", "value": "float", "status": "verdict"}
_TRAJECTORY_CAPTION = "Queue, batch size and KV memory against the iteration (open-system run), evictions marked."
_STAGES_CAPTION = "Stage occupancy over the last iterations of the open-system run."


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the git checkout holding the package's source, or None.

    None when git is not installed, when ``path`` (default: this package's folder) is
    not in a checkout, or when the package's files are not tracked by that checkout (an
    installed copy inside some other repository must not report that repository's commit).
    """
    folder = Path(path) if path is not None else Path(__file__).resolve().parents[1]

    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except FileNotFoundError:  # git is not installed: no commit to record
            return None

    tracked = git("ls-files", "--error-unmatch", "--", "__init__.py")
    if tracked is None or tracked.returncode != 0:
        return None
    head = git("rev-parse", "HEAD")
    if head is None or head.returncode != 0:
        return None
    return head.stdout.strip() or None


def provenance(
    run: Any, level: float, names: Sequence[str] | None, runs: dict[str, dict] | None = None
) -> dict[str, Any]:
    """What made a report: the run's metadata (model, seed, iterations, engine, versions of
    queueing-llm, Python, NumPy, SymPy, SimPy), the confidence level, the theorem names
    asked for, matplotlib's version, the git commit of the package's checkout and, under
    ``"runs"``, the description of each run kind used (:attr:`Report.run_info`)."""
    import matplotlib

    out = dict(run.metadata)
    if runs is not None:
        out["runs"] = runs
    out["level"] = level
    out["theorems"] = None if names is None else list(names)
    out["matplotlib"] = matplotlib.__version__
    out["platform"] = platform.platform()
    out["git_commit"] = git_commit()
    return out


@dataclass(frozen=True, eq=False)
class Report:
    r"""The outcome of :func:`report`.

    Attributes
    ----------
    model : ContinuousBatching
    iterations, seed : int
    level : float
        Confidence level of the verdicts' intervals.
    theorem_rows : list of dict
        :func:`~queueing_llm.report.tables.theorem_rows` of the model.
    verdict_rows : list of dict
        :func:`~queueing_llm.report.tables.verdict_rows` of :attr:`verdicts`.
    verdicts : Verdicts
        The verdicts, with ``verdicts.skipped`` (name -> why not verified).
    summary : dict
        ``trajectory.summary()`` of the run.
    provenance : dict
        See :func:`provenance`.
    paths : dict
        File name -> path of each file written (empty without ``output``).
    trajectory : Trajectory
        The simulated open-system run.
    run_kinds : dict
        Theorem name -> the label of the runs its verdict used (``"open"``,
        ``"saturated, rate_limited(x*)"``, ``"relaxed"``, ... as declared in
        ``Theorem.runs``, :mod:`queueing_llm.report.passes`); also the ``run`` column.
    run_info : dict
        Run label -> description (kind, iterations, seed, policy, engine asked for, backends
        that ran, ...) of each run built.
    runs : dict
        Run label -> the run itself (``"open"`` is :attr:`trajectory`).
    """

    model: ContinuousBatching
    iterations: int
    seed: int
    level: float
    theorem_rows: list
    verdict_rows: list
    verdicts: Verdicts
    summary: dict
    provenance: dict
    paths: dict = field(default_factory=dict)
    trajectory: Any = field(default=None, repr=False)
    run_kinds: dict = field(default_factory=dict)
    run_info: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict, repr=False)

    @property
    def backends(self) -> dict[str, list[str]]:
        """Run label -> the simulation backends that ran it (``Trajectory.backend``:
        ``"numba"``, ``"python"`` or ``"simpy"``; several when replications differ), for every
        simulated run (a relaxed map has none)."""
        out = {label: list(info["backends"]) for label, info in self.run_info.items() if info.get("backends")}
        if "open" not in out and self.trajectory is not None and backends_of(self.trajectory):
            out = {"open": backends_of(self.trajectory), **out}
        return out

    def backend_text(self) -> str:
        """The backend of the open-system run, e.g. ``"backend numba (compiled kernel)"``."""
        return describe_backends(self.backends.get("open", []))

    def backends_text(self) -> str | None:
        """When the runs did not all run on the open run's backend, one sentence listing the
        backend of each simulated run; else None."""
        backends = self.backends
        if all(b == backends.get("open") for b in backends.values()):
            return None
        return "The runs ran on several backends: " + "; ".join(
            f"{label}: {describe_backends(b)}" for label, b in backends.items()) + "."

    @property
    def skipped(self) -> dict[str, str]:
        """Theorem name -> why it was not verified (no check, does not apply, run refused)."""
        return self.verdicts.skipped

    @property
    def all_hold(self) -> bool:
        """True if no verdict FAILS and at least one holds ("does not apply" is no failure)."""
        return self.verdicts.all_hold

    @property
    def failures(self) -> list[dict]:
        """The verdict rows that FAIL (not those that do not apply)."""
        return [row for row in self.verdict_rows if row["holds"] is False]

    def __repr__(self) -> str:
        held = sum(row["holds"] is True for row in self.verdict_rows)
        return (
            f"Report({self.model!r}, {self.iterations} iterations, seed={self.seed}: "
            f"{held}/{len(self.verdict_rows)} verdicts hold, {len(self.skipped)} theorems not verified)"
        )

    # -- text ------------------------------------------------------------------------------
    def to_text(self) -> str:
        """A short table for the terminal: one line per verdict, the reasons of failures,
        the names not verified grouped by reason, the files written."""
        s = self.summary
        lines = [
            f"model: {self.model!r}",
            f"run: {self.iterations} iterations, seed {self.seed}, {self.backend_text()}; "
            f"throughput {s['throughput']:.4g}, "
            f"mean queue {s['mean_queue']:.4g}, mean batch {s['mean_batch']:.4g}, "
            f"evictions {s['evictions_per_iteration']:.4g} per iteration",
        ]
        lines += [f"{kind} run: {_describe_run(info, why=False)}" for kind, info in self.run_info.items()
                  if kind != "open" and "error" not in info]
        if self.backends_text():
            lines.append(self.backends_text())
        lines.append("")
        level = f"{100 * self.level:.10g}% CI"
        table = [("theorem/quantity", "unit", "run", "test", "theory", "simulation", level, "verdict")]
        for row in self.verdict_rows:
            low, high = format_value(row["ci_low"], 5), format_value(row["ci_high"], 5)
            ci = "" if row["ci_low"] is None else f"[{low}, {high}]"
            na = row["holds"] is None
            table.append((f"{row['theorem']}/{row['quantity']}", row.get("unit") or "", self._run_cell(row.get("run")),
                          row["test"], format_value(row["theory"], 5), "" if na else format_value(row["estimate"], 5),
                          ci, row["status"]))
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        for r in table:
            lines.append("  ".join(cell.ljust(w) if i in (0, 1, 2, 3, 6) else cell.rjust(w)
                                   for i, (cell, w) in enumerate(zip(r, widths, strict=True))).rstrip())
        if not self.verdict_rows:
            lines.append("(no theorem with a check applies to this model and run)")
        for row in self.failures:
            lines.append(f"FAILS {row['theorem']}: {row['reason']}")
        for row in self.verdict_rows:
            if row["holds"] is None:
                lines.append(f"does not apply {row['theorem']}: {row['reason']}")
        groups: dict[str, list[str]] = {}
        for name, why in self.skipped.items():
            groups.setdefault(why.split(":", 1)[0], []).append(name)
        if groups:
            lines.append("not verified: " + "; ".join(f"{', '.join(n)} ({why})" for why, n in groups.items()))
        if self.paths:
            folder = Path(next(iter(self.paths.values()))).parent
            lines.append(f"files in {folder}: {', '.join(self.paths)}")
        return "\n".join(lines)

    def _run_cell(self, label: str | None) -> str:
        """The run column of the text table: the label, or for several runs their count by
        kind (the labels are listed above the table and in report.md)."""
        labels = (label or "").split(" + ")
        if len(labels) == 1:
            return labels[0]
        kinds: dict[str, int] = {}
        for one in labels:
            kind = self.run_info.get(one, {}).get("kind", "run")
            kinds[kind] = kinds.get(kind, 0) + 1
        return f"{len(labels)} runs: " + ", ".join(f"{n} {k}" for k, n in kinds.items())

    def __str__(self) -> str:
        return self.to_text()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: model, run, rows, reasons not verified, provenance, paths
        (non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"``)."""
        return _json_safe({
            "model": self.model.to_dict(),
            "iterations": self.iterations,
            "seed": self.seed,
            "level": self.level,
            "summary": self.summary,
            "runs": self.run_info,
            "verdicts": self.verdict_rows,
            "skipped": dict(self.skipped),
            "theorems": self.theorem_rows,
            "all_hold": self.all_hold,
            "provenance": self.provenance,
            "paths": {name: str(path) for name, path in self.paths.items()},
        })

    def to_json(self) -> str:
        """:meth:`to_dict` as strict JSON text."""
        return _dumps(self.to_dict())

    # -- files -----------------------------------------------------------------------------
    def to_markdown(self) -> str:
        """The report as Markdown (the text of ``report.md``)."""
        md = [f"# Report: `{self.model!r}`", ""]
        md += [f"{self.iterations} iterations, seed {self.seed}, {self.backend_text()}; "
               f"confidence level {100 * self.level:.10g}%.", ""]
        if self.backends_text():
            md += [self.backends_text(), ""]
        md += ["## Run summary", ""]
        md.append(to_markdown([{"quantity": k, "value": v} for k, v in self.summary.items()], ("quantity", "value")))
        extra = {kind: info for kind, info in self.run_info.items() if kind != "open"}
        if extra:
            md += ["Each theorem is verified against the runs it declares (column *run* of the verdicts):", ""]
            md += [f"- **{kind}**: {info['error'] if 'error' in info else _describe_run(info)}"
                   for kind, info in extra.items()]
            md.append("")
        md += ["## Theory against simulation", ""]
        if self.verdict_rows:
            md.append(to_markdown(self.verdict_rows, _VERDICT_TABLE, headers=_HEADERS))
            md += [f"- **{r['theorem']}** ({r['status'] if r['holds'] is None else r['status'] + ', ' + r['test']}): "
                   f"{r['reason']}" for r in self.verdict_rows]
        else:
            md.append("No theorem with a check applies to this model and run.")
        if self.skipped:
            md += ["", "### Not verified", ""]
            md += [f"- **{name}**: {why}" for name, why in self.skipped.items()]
        md += ["", "## Theorem values", ""]
        md.append(to_markdown(self.theorem_rows, THEOREM_COLUMNS, headers=_HEADERS) if self.theorem_rows
                  else "No registered theorem applies to this model.")
        md += ["## Statements", ""]
        for name, (title, source, statement) in _statements(self.theorem_rows).items():
            md += [f"- **{name}**: {title} ({source})", "", f"  $$ {statement} $$", ""]
        if "trajectory.png" in self.paths:
            md += ["## Figures", "", "![queue, batch and memory](trajectory.png)", "",
                   "![stage occupancy](stage_occupancy.png)", ""]
        md += ["## Provenance", "", "```json", _dumps(self.provenance).rstrip(), "```", ""]
        return "\n".join(md)

    def theorems_latex(self) -> str:
        """The statements (display math) and a booktabs table of the values (``theorems.tex``,
        :func:`~queueing_llm.report.document.theorems_fragment`)."""
        return theorems_fragment(self.theorem_rows, latex_escape(repr(self.model)))

    def verdicts_latex(self) -> str:
        """Booktabs table of theory against simulation and the reasons (``verdicts.tex``,
        :func:`~queueing_llm.report.document.verdicts_fragment`)."""
        caption = (f"Theory against simulation ({self.iterations} iterations, seed {self.seed}, "
                   f"{100 * self.level:.10g}% confidence intervals).")
        return verdicts_fragment(self.verdict_rows, caption)

    def to_latex(self) -> str:
        """The whole report as a LaTeX article (``report.tex``,
        :func:`~queueing_llm.report.document.report_document`), with the PDF figures."""
        return report_document(self, {"trajectory.pdf": _TRAJECTORY_CAPTION, "stage_occupancy.pdf": _STAGES_CAPTION})

    def write(self, output: str | Path) -> dict[str, Path]:
        """Write every file of :data:`FILES` into ``output`` (created if needed), each
        atomically; returns (and records in :attr:`paths`) name -> path."""
        target = _folder(output)
        with atomic_folder(target, owned=FILES) as folder:  # the whole folder in one step
            files = {
                "theorems.tex": write_atomic(folder / "theorems.tex", self.theorems_latex()),
                "verdicts.tex": write_atomic(folder / "verdicts.tex", self.verdicts_latex()),
                "verdicts.csv": to_csv(self.verdict_rows, folder / "verdicts.csv", columns=VERDICT_COLUMNS),
                "trajectory.png": plot_trajectory(self.trajectory, folder / "trajectory.png",
                                                  also=[folder / "trajectory.pdf"]),
                "trajectory.pdf": folder / "trajectory.pdf",
                "stage_occupancy.png": plot_stage_occupancy(self.trajectory, folder / "stage_occupancy.png",
                                                            also=[folder / "stage_occupancy.pdf"]),
                "stage_occupancy.pdf": folder / "stage_occupancy.pdf",
                "provenance.json": write_atomic(folder / "provenance.json", _dumps(self.provenance)),
            }
            self.paths.clear()
            self.paths.update(files)  # report.md links the figures just written
            self.paths["report.md"] = write_atomic(folder / "report.md", self.to_markdown())
            self.paths["report.tex"] = write_atomic(folder / "report.tex", self.to_latex())
        self.paths.update({name: target / path.name for name, path in self.paths.items()})
        return {name: self.paths[name] for name in FILES}


def _describe_run(info: dict, why: bool = True) -> str:
    """One line for a run's description (:attr:`Report.run_info`); ``why``: with the reason a
    theorem prefers independent replications (Markdown and LaTeX; not the terminal)."""
    reps = f", {info['replications']} independent replications" if info.get("replications") else ""
    if reps and why and info.get("replications_reason"):
        reps += f" (why: {info['replications_reason']})"
    if info.get("kind") == "relaxed":
        arithmetic = "rational" if info.get("exact") else "floating-point"
        evict = info.get("first_eviction")
        return (f"{info['iterations']} iterations of the {arithmetic} relaxed map ({info['policy']})"
                + (f": {info['description']}" if info.get("description") else "") + "; "
                + ("no eviction" if evict is None else f"first eviction at iteration {evict}"))
    kind = "saturated" if info.get("saturated") else "open system"
    ran = f", {describe_backends(info['backends'])}" if info.get("backends") else ""
    return f"{info['iterations']} iterations, seed {info['seed']}, policy {info['policy']}, {kind}{reps}{ran}"


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"``
    (strict JSON has no infinities)."""
    if isinstance(value, float) and not math.isfinite(value):
        return format_value(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _dumps(value: Any) -> str:
    return json.dumps(_json_safe(value), indent=2, allow_nan=False) + "\n"


def _statements(rows: list[dict]) -> dict[str, tuple[str, str, str]]:
    out: dict[str, tuple[str, str, str]] = {}
    for row in rows:
        out.setdefault(row["theorem"], (row["title"], row["source"], row["statement"]))
    return out


def _folder(output: Any) -> Path:
    if not isinstance(output, (str, Path)) or str(output) == "":
        raise ParameterError(f"output must be a folder path, got {describe(output)}")
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"output must be a folder, got the existing file {str(folder)!r}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # re-raised as the parameter's error, with the system's reason
        raise ParameterError(f"output folder {str(folder)!r} cannot be created: {err.strerror or err}") from None
    return folder


def report(
    model: ContinuousBatching | None = None,
    iterations: int = 20_000,
    seed: int | None = 1,
    output: str | Path | None = None,
    names: Sequence[str] | None = None,
    progress: Callable[[int, int], Any] | None = None,
    level: float = DEFAULT_LEVEL,
) -> Report:
    r"""Evaluate, simulate and verify every applicable theorem on ``model``; optionally write files.

    Steps: (1) :func:`~queueing_llm.report.tables.theorem_rows` of every registered theorem
    that applies to the model; (2) ``ql.simulate(model, iterations, seed, engine="fast")``;
    (3) every theorem with a check is verified (:func:`queueing_llm.verify`) at confidence
    level :math:`c` = ``level`` (a statement about a long-run mean holds iff the theory
    value lies in the level-:math:`c` interval of the simulation: batch means of one run,
    or a Student interval over independent replications where the theorem declares them,
    e.g. ``open-system`` and ``safety-buffer``; :mod:`queueing_llm.verify`,
    docs/verdicts.md) against the first run its check accepts: that open-system
    run, then, for a finite KV budget :math:`M` and only if some theorem needs them, a
    saturated run (``saturated=True``, :math:`\min(N, 5000)` iterations, same seed), the
    relaxed map near :math:`x^*` (:math:`\min(N, 1500)` iterations, floats) and a saturated
    run of the model with ``policy=ql.rate_limited()`` (family A of the model chapter, section 5,
    [ADLS26]; :mod:`queueing_llm.report.passes`); (4) with ``output``, the files of
    :data:`FILES`, each written atomically.

    Parameters
    ----------
    model : ContinuousBatching or None
        Default: :func:`queueing_llm.default_model` ([ADLS26] example: :math:`l_0 = 10`,
        :math:`l_1 = 40`, :math:`M = 2000`, :math:`\lambda = 1.2`, greedy).
    iterations : int
        Simulated iterations :math:`N \ge 1`.
    seed : int or None
        Seed of the run (``None`` draws one; the seed used is recorded).
    output : path-like or None
        Folder for the files (created if needed); None writes nothing.
    names : sequence of str or None
        Only these theorems (each must exist and apply to the model); None: all.
    progress : callable ``(done, total)`` or None
        Progress of the simulation (e.g. :class:`queueing_llm.progress.ProgressBar`).
    level : float in (0, 1)
        Confidence level of the verdicts.

    Returns
    -------
    Report

    Raises
    ------
    ModelError
        A bad model, iterations, seed, level, name or output folder (one message naming it).
    """
    from ..sim import simulate

    model = default_model() if model is None else model
    if not isinstance(model, ContinuousBatching):
        raise ParameterError(f"model must be a ContinuousBatching (or None for the default), got {describe(model)}")
    check_real("iterations", iterations, low=1, integer=True)
    check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    if names is not None:
        if isinstance(names, str):
            raise ParameterError(f"names must be a sequence of theorem names, got the string {names!r}")
        names = [theorems[name].name for name in names]  # unknown names raise here, before the run
    folder = None if output is None else _folder(output)
    rows = theorem_rows(model, names)
    run = simulate(model, int(iterations), seed=seed, engine="fast", progress=progress)
    runs = ReportRuns(model, run, int(iterations))
    verdicts, kinds = verify_declared(model, runs, names, level)
    result = Report(
        model=model,
        iterations=int(iterations),
        seed=run.seed,
        level=float(level),
        theorem_rows=rows,
        verdict_rows=verdict_rows(verdicts, kinds),
        verdicts=verdicts,
        summary=run.summary(),
        provenance=provenance(run, float(level), names, runs.info),
        trajectory=run,
        run_kinds=kinds,
        run_info=runs.info,
        runs=runs.runs,
    )
    if folder is not None:
        result.write(folder)
    return result
