"""The ``queueing-llm`` command.

``queueing-llm simulate`` simulates a continuous-batching model (the embedded default
model unless one is given) and prints its summary; ``queueing-llm report`` evaluates every
applicable theorem on the model, simulates it, verifies the theorems against the run and
prints a short table (``--output DIR`` writes report.md, LaTeX tables, CSV, figures and
provenance.json); ``queueing-llm sweep`` runs a grid over a parameter (``ql.sweep``) and
prints a table (``--output DIR`` writes CSV, Markdown and LaTeX); ``queueing-llm compare``
runs admission policies side by side over arrival rates and tests the papers' claims
(``ql.compare_policies``); ``queueing-llm paper adls26|alsw25`` regenerates a paper's
tables beside the paper's numbers (``ql.studies``). ``--policy wait`` and
``--policy nested_wait`` (also as a sweep's grid values) get the fluid thresholds of the
model at hand, printed on standard error.

A model is given by ``--type PROMPT,DECODE[,ARRIVALS]`` (repeatable; the fields take the
law syntax of :mod:`queueing_llm.spec`, e.g. ``2,geometric:0.25,1.5``), by ``--trace
NAME_OR_PATH`` (request types from a trace, :mod:`queueing_llm.traces`) or by a spec file
``--model FILE`` (TOML), with options such as ``--kv-capacity`` overriding the file.

Exit status: 0 success; 1 ``report --strict`` with a failed verdict; 2 bad input or any
other error (one line on standard error, ``queueing-llm: error: ...``; ``--traceback``
shows the traceback of an unexpected one; warnings are one line each too,
``queueing-llm: warning: ...``); 130 interrupted (Ctrl-C, one line); 141 the
reader of the output closed it (``| head``), silently.

Examples
--------
::

    queueing-llm simulate
    queueing-llm simulate --type 2,3,1.5 --kv-capacity 24 --iterations 50000 --json
    queueing-llm simulate --type 2,geometric:0.25,1.5 --batch-cap 8 --policy fcfs_cap
    queueing-llm simulate --type "2,pmf:{2:0.5,4:0.5},bernoulli:0.3" --kv-capacity 40
    queueing-llm simulate --trace azure-conv --iteration-seconds 0.03 --scale 16 \\
        --max-prompt 4096 --max-decode 512 --kv-capacity 4000
    queueing-llm report --output report/ --strict
    queueing-llm report --model model.toml --theorem memory-little
    queueing-llm sweep --grid rate=0.8,1.0,1.2 --iterations 5000 --output sweep/
    queueing-llm sweep --type 2,3,1.5 --kv-capacity 50 --grid policy=greedy,wait
    queueing-llm compare --workload example3 --quick --output cmp/
    queueing-llm paper adls26 --quick --output adls26/
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .compare import WORKLOADS, compare_policies, default_policies, default_rates, json_ready, select_policies
from .errors import ModelError, ParameterError
from .progress import ProgressBar
from .spec import (
    SpecError,
    SpecFile,
    build_model,
    build_type,
    load_spec,
    parse_grid,
    parse_number,
    parse_type,
    with_value,
)

EXIT_OK = 0
EXIT_FAILED = 1
"""``report --strict``: a verdict failed."""
EXIT_USAGE = 2
"""Bad input or an error: one line on standard error."""
EXIT_INTERRUPTED = 130
"""Interrupted by Ctrl-C (128 + SIGINT)."""
EXIT_BROKEN_PIPE = 141
"""The reader of the output closed it (``| head``; 128 + SIGPIPE): no message."""

SEED_BITS = 32
"""A seed drawn when none is given is an integer below :math:`2^{32}` (short to copy)."""

SWEEP_FILES = ("sweep.csv", "sweep.csv.json", "sweep.md", "sweep.tex")
"""The files ``queueing-llm sweep --output DIR`` writes."""

_PROG = "queueing-llm"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)}\n")


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _typed(name: str, **options: Any):
    """An argparse ``type`` reading a number with :func:`queueing_llm.spec.parse_number`."""

    def convert(text: str) -> Any:
        try:
            return parse_number(text, name, **options)
        except SpecError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = name
    return convert


def _version() -> str:
    from . import __version__

    return __version__


# -- the parser ----------------------------------------------------------------------------


def _add_model_options(parser: argparse.ArgumentParser, policy: bool = True) -> None:
    """The model options shared by ``simulate``, ``report``, ``sweep`` and ``compare`` (which
    takes no ``--policy``: it is parsed, hidden from the help, and refused with a pointer to
    ``--policies``)."""
    g = parser.add_argument_group("model (default: the embedded default model)")
    g.add_argument("--model", metavar="FILE", help="model spec file (TOML); the options below override it")
    g.add_argument("--type", dest="types", action="append", metavar="PROMPT,DECODE[,ARRIVALS]",
                   help="a request type (repeat for several): prompt and decode lengths as integers or laws "
                        "(geometric:0.25, pmf:{2:0.5,4:0.5}, empirical:[3,5,8], binomial:5:0.2, ...), arrivals "
                        "per iteration as a Poisson mean or a law (bernoulli:0.3), process:RATE for requests "
                        "per second; no ARRIVALS: saturated runs only")
    g.add_argument("--trace", metavar="NAME_OR_PATH",
                   help="request types from a trace: a built-in name (azure-code, azure-conv) or a file")
    g.add_argument("--trace-format", metavar="FORMAT", help="trace file format: azure, mooncake, vidur or csv "
                                                            "(default: guessed)")
    g.add_argument("--iteration-seconds", metavar="TAU",
                   help="trace: seconds per decode step, for Poisson arrivals per iteration")
    g.add_argument("--max-prompt", metavar="TOKENS", help="trace: clip prompts to this many tokens")
    g.add_argument("--max-decode", metavar="TOKENS", help="trace: clip outputs to this many tokens")
    g.add_argument("--scale", metavar="S", help="trace: tokens per block (lengths in blocks, rounded up)")
    g.add_argument("--split", metavar="T1,T2,...", help="trace: one request type per prompt-length band")
    g.add_argument("--split-by", choices=("prompt", "output"), default=None,
                   help="trace: split by prompt (default) or output length")
    g.add_argument("--kv-capacity", metavar="M", help="KV budget M in tokens (default: inf, or 2000 for the "
                                                      "default model)")
    g.add_argument("--batch-cap", metavar="B", help="batch cap B (default inf)")
    g.add_argument("--waiting-cap", metavar="K", help="waiting-room cap K (default inf)")
    g.add_argument("--policy", help="greedy, rate_limited, rate_limited(X), reserve, static, fcfs_cap, "
                                    "wait or nested_wait (fluid thresholds, printed) (default greedy)"
                   if policy else argparse.SUPPRESS)
    g.add_argument("--mix", metavar="P1,P2,...", help="admission proportions, one per type")
    g.add_argument("--iteration-time", metavar="D0[,D1]",
                   help="seconds per iteration d0 + d1 * KV tokens (wall-clock mode)")


def _add_common(parser: argparse.ArgumentParser, *, seed_help: str) -> None:
    parser.add_argument("--iterations", type=_typed("--iterations", integer=True), default=None, metavar="N",
                        help="iterations to simulate (default 20000)")
    parser.add_argument("--seed", type=_typed("--seed", integer=True), default=None, help=seed_help)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--traceback", action="store_true",
                        help="show the traceback of an unexpected error instead of one line")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``queueing-llm`` (subcommands ``simulate``, ``report``, ``sweep``,
    ``compare``, ``paper``)."""
    parser = _Parser(prog=_PROG, description="Queueing theory of LLM inference.",
                     epilog="Exit status: 0 ok, 1 report --strict with a failed verdict, 2 error, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"{_PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sim = sub.add_parser("simulate", help="simulate a model and print its summary")
    _add_model_options(sim)
    _add_common(sim, seed_help="random seed (default: drawn, printed and recorded)")
    sim.add_argument("--warmup", type=_typed("--warmup", integer=True), default=None, metavar="N",
                     help="iterations left out of the summary (default 0)")
    sim.add_argument("--saturated", action="store_true", default=None, help="infinite backlog instead of arrivals")
    sim.add_argument("--engine", choices=("events", "fast"), default=None,
                     help="simulation engine: the SimPy reference or the fast engine (default fast; same trajectories)")

    rep = sub.add_parser("report", help="evaluate every applicable theorem, simulate, verify, write tables and figures")
    _add_model_options(rep)
    _add_common(rep, seed_help="random seed (default 1)")
    rep.add_argument("--level", type=_typed("--level"), default=None, metavar="C",
                     help="confidence level of the verdicts (default 0.95)")
    rep.add_argument("--theorem", dest="theorems", action="append", metavar="NAME",
                     help="only this registered theorem (repeat for several; default: every applicable one)")
    rep.add_argument("--output", default=None, metavar="DIR",
                     help="folder for report.md, LaTeX tables, CSV, figures and provenance.json")
    rep.add_argument("--strict", action="store_true", help="exit with status 1 when a verdict fails")

    swp = sub.add_parser("sweep", help="simulate and check the model over a grid of parameter values")
    _add_model_options(swp)
    _add_common(swp, seed_help="root seed of the sweep (default 0)")
    swp.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                     help="an axis of the grid (repeat for a product): kv_capacity, batch_cap, waiting_cap, policy "
                          "(wait and nested_wait get fluid thresholds per point), prompt, decode, rate (alias "
                          "arrivals), decode[1] for type 1, or a trace option")
    swp.add_argument("--replications", type=_typed("--replications", integer=True), default=None, metavar="R",
                     help="independent runs per point (default 1)")
    swp.add_argument("--warmup", type=_typed("--warmup", integer=True), default=None, metavar="N",
                     help="iterations left out of the summaries (default 0)")
    swp.add_argument("--engine", choices=("events", "fast"), default=None, help="simulation engine (default fast)")
    swp.add_argument("--level", type=_typed("--level"), default=None, metavar="C",
                     help="confidence level (default 0.95)")
    swp.add_argument("--theorem", dest="theorems", action="append", metavar="NAME",
                     help="evaluate and verify this theorem at every point (repeat for several)")
    swp.add_argument("--workers", type=_typed("--workers", integer=True), default=1, metavar="N",
                     help="processes to run the points on (default 1: in this process)")
    swp.add_argument("--output", default=None, metavar="DIR",
                     help=f"folder for {', '.join(SWEEP_FILES)}")
    cmp = sub.add_parser("compare", help="admission policies side by side over arrival rates ([ALSW25])")
    _add_model_options(cmp, policy=False)
    _add_common(cmp, seed_help="root seed (default 0)")
    cmp.add_argument("--workload", choices=sorted(WORKLOADS), default=None,
                     help="a built-in workload instead of the model options: example3 ([ALSW25] Example 3), "
                          "azure-conv (the Azure conversation trace), known (a small known-length model)")
    cmp.add_argument("--rates", metavar="R1,R2,...", default=None,
                     help="total arrival rates (default: the model's rate times 0.5, 0.75, 1, 1.25, 1.5)")
    cmp.add_argument("--policies", metavar="NAME,...", default=None,
                     help=f"policies to compare, case and spaces ignored (default all: "
                          f"{', '.join(default_policies())}); --policy does not apply here")
    cmp.add_argument("--replications", type=_typed("--replications", integer=True), default=None, metavar="R",
                     help="runs per point for the trend test (default 2)")
    cmp.add_argument("--quick", action="store_true", help="a small size for tests: 1500 iterations, 3 rates")
    cmp.add_argument("--output", default=None, metavar="DIR",
                     help="folder for comparison.tex, comparison.md, comparison.csv, figures and provenance.json")
    pap = sub.add_parser("paper", help="regenerate a paper's tables and figures beside the paper's numbers")
    pap.add_argument("study", choices=("adls26", "alsw25"),
                     help="adls26: [ADLS26] Tables 4, 5, 8 and Figure 6; alsw25: [ALSW25]'s fluid examples and "
                          "WAIT against greedy")
    pap.add_argument("--quick", action="store_true", help="a small size for tests (8 replications)")
    pap.add_argument("--seed", type=_typed("--seed", integer=True), default=0, help="root seed (default 0)")
    pap.add_argument("--output", default=None, metavar="DIR", help="folder for the tables, figure and provenance")
    pap.add_argument("--json", action="store_true", help="print the rows as JSON")
    pap.add_argument("--traceback", action="store_true", help="show the traceback of an unexpected error")
    return parser


# -- from the options to the model and the run ---------------------------------------------


def _spec_file(args: argparse.Namespace) -> SpecFile | None:
    return None if args.model is None else load_spec(args.model)


def _model_spec(args: argparse.Namespace, spec_file: SpecFile | None) -> tuple[dict[str, Any], str]:
    """The model spec of the options (over the spec file's) and the prefix of its errors."""
    spec: dict[str, Any] = dict(spec_file.model) if spec_file is not None else {}
    where = str(spec_file.path) if spec_file is not None else ""
    trace_options = {"iteration_seconds": args.iteration_seconds, "max_prompt": args.max_prompt,
                     "max_decode": args.max_decode, "scale": args.scale, "split": args.split,
                     "split_by": args.split_by, "format": args.trace_format}
    if args.types and args.trace:
        raise ParameterError("give --type or --trace, not both")
    if args.types:
        spec.pop("trace", None)
        spec["types"] = [build_type(parse_type(text), f"--type {text!r}") for text in args.types]
    elif args.trace:
        spec.pop("types", None)
        spec["trace"] = {"source": args.trace}
    given = {k: v for k, v in trace_options.items() if v is not None}
    if given:
        if spec.get("trace") is None:
            names = ", ".join("--" + k.replace("_", "-").replace("format", "trace-format") for k in given)
            verb = "needs" if len(given) == 1 else "need"
            raise ParameterError(f"{names} {verb} a trace (--trace NAME_OR_PATH, or [trace] in --model)")
        spec["trace"] = {**spec["trace"], **given}
    for key in ("kv_capacity", "batch_cap", "waiting_cap", "policy", "mix", "iteration_time"):
        value = getattr(args, key)
        if value is not None:
            spec[key] = value
    return spec, where


FLUID_POLICIES = ("wait", "nested_wait")
"""Policy names the command line completes with their fluid thresholds (ql.fluid_wait, ql.fluid_nested_wait)."""


def build_fluid_model(spec: dict[str, Any], where: str = "", context: str = "--policy") -> Any:
    """The model of ``spec``; a policy named ``wait`` or ``nested_wait`` (:data:`FLUID_POLICIES`)
    gets its fluid default (``ql.fluid_wait(model)``, ``ql.fluid_nested_wait(model)``) built
    for this model, and the thresholds chosen are printed on standard error (a note naming
    ``context``, e.g. a sweep's grid point)."""
    policy = spec.get("policy")
    fluid = policy.strip().lower() if isinstance(policy, str) and policy.strip().lower() in FLUID_POLICIES else None
    if fluid is None:
        return build_model(spec, where)
    model = build_model({**spec, "policy": "greedy"}, where)
    from .scheduling import fluid_nested_wait, fluid_wait

    chosen = fluid_wait(model) if fluid == "wait" else fluid_nested_wait(model)
    print(f"{_PROG}: note: {context} {fluid} uses the fluid thresholds {chosen}"
          + (f", buffers {list(chosen.buffer)}" if fluid == "nested_wait" else ""), file=sys.stderr)
    return model.with_policy(chosen)


def _model(args: argparse.Namespace, spec_file: SpecFile | None):
    spec, where = _model_spec(args, spec_file)
    return build_fluid_model(spec, where)


def _option(args: argparse.Namespace, spec_file: SpecFile | None, key: str, default: Any) -> Any:
    """The option ``key``: given on the command line, else the spec file's ``[run]``, else ``default``."""
    value = getattr(args, key, None)
    if value is not None:
        return value
    if spec_file is not None and key in spec_file.run:
        return spec_file.run[key]
    return default


def draw_seed() -> int:
    """A fresh seed below :math:`2^{32}` from the operating system's entropy (printed and
    recorded by the commands, so the run can be repeated with ``--seed``)."""
    return secrets.randbits(SEED_BITS)


def _writable_folder(path: str, option: str = "--output") -> Path:
    """``path`` as a folder files can be written into (created if needed), checked before the work."""
    folder = Path(path)
    if str(path) == "":
        raise ParameterError(f"{option} must be a folder path, got ''")
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"{option} {str(folder)!r} is an existing file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ParameterError(f"{option} folder {str(folder)!r} cannot be created: {err.strerror or err}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".queueing-llm-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ParameterError(f"cannot write into the {option} folder {str(folder)!r}: {err.strerror or err}") from None
    return folder


def _json_safe(value: Any) -> Any:
    """``value`` for strict JSON (:func:`queueing_llm.compare.json_ready`)."""
    return json_ready(value)


def _dumps(value: Any) -> str:
    return json.dumps(_json_safe(value), indent=2, allow_nan=False)


# -- the commands --------------------------------------------------------------------------


def describe_model(model: Any, width: int = 300) -> str:
    """``repr(model)``, with each law longer than ``width`` characters (a trace's empirical
    law) summarised as ``Empirical(<n values in [a, b]>, mean m)``; the full model is in ``--json``."""
    text = repr(model)
    if len(text) <= width:
        return text
    for t in model.types:
        for law in (t.prompt, t.decode, t.arrivals):
            full = repr(law)
            if len(full) > width and hasattr(law, "probabilities"):
                short = (f"{type(law).__name__}(<{len(law.probabilities)} values in [{law.support_min}, "
                         f"{law.support_max}]>, mean {float(law.mean):.6g})")
                text = text.replace(full, short)
    return text


def _format_summary(model: Any, summary: dict, iterations: int, warmup: int, seed: int, engine: str,
                    saturated: bool, backend: str = "", units: dict | None = None) -> str:
    """The summary as text, one key a line with its unit (``Trajectory.summary_units``), after a
    line naming the engine asked for and the backend that ran (``Trajectory.backend``)."""
    ran = f"engine {engine}, backend {backend}" if backend else f"engine {engine}"
    run = f"iterations: {iterations} (warm-up {warmup}), seed {seed}, {ran}"
    lines = [f"model: {describe_model(model)}", run + (", saturated" if saturated else "")]
    width = max(len(k) for k in summary)
    units = units or {}
    for key, value in summary.items():
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        unit = units.get(key, "")
        lines.append(f"  {key:<{width}}  {text}" + (f" {unit}" if unit else ""))
    return "\n".join(lines)


def _simulate(args: argparse.Namespace) -> int:
    from .sim import simulate

    spec_file = _spec_file(args)
    model = _model(args, spec_file)
    iterations = _option(args, spec_file, "iterations", 20_000)
    warmup = _option(args, spec_file, "warmup", 0)
    engine = _option(args, spec_file, "engine", "fast")
    saturated = _option(args, spec_file, "saturated", False)
    seed = _option(args, spec_file, "seed", None)
    seed = draw_seed() if seed is None else seed
    bar = ProgressBar(iterations if isinstance(iterations, int) else 1)
    try:
        run = simulate(model, iterations, seed=seed, saturated=saturated, warmup=warmup, engine=engine, progress=bar)
    finally:
        bar.close()
    summary = run.summary()
    units = run.summary_units()
    if args.json:
        print(_dumps({"version": _version(), "command": "simulate", "model": model.to_dict(), "seed": run.seed,
                      "iterations": run.iterations, "warmup": warmup, "engine": engine, "backend": run.backend,
                      "saturated": saturated, "summary": summary,
                      "units": {k: units[k] for k in summary if k in units}}))
    else:
        print(_format_summary(model, summary, run.iterations, warmup, run.seed, engine, saturated, run.backend,
                              units))
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from .report import report

    spec_file = _spec_file(args)
    model = _model(args, spec_file)
    iterations = _option(args, spec_file, "iterations", 20_000)
    seed = _option(args, spec_file, "seed", 1)
    level = _option(args, spec_file, "level", 0.95)
    names = _option(args, spec_file, "theorems", None)
    output = None if args.output is None else _writable_folder(args.output)
    bar = ProgressBar(iterations if isinstance(iterations, int) else 1)
    try:
        result = report(model, iterations=iterations, seed=seed, output=output, names=names, progress=bar,
                        level=level)
    except OSError as error:  # the folder passed the check but a file could not be written
        raise ParameterError(f"cannot write the report into the --output folder {str(output)!r}: "
                             f"{error.strerror or error}") from None
    finally:
        bar.close()
    if args.json:
        print(_dumps({"version": _version(), "command": "report", **json.loads(result.to_json())}))
    else:
        print(result.to_text())
    failed = [v for v in result.verdicts if v.holds is False]
    if args.strict and failed:
        names_failed = ", ".join(dict.fromkeys(v.theorem for v in failed))
        print(f"{_PROG}: {len(failed)} verdict(s) fail (--strict): {names_failed}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _grid_axes(args: argparse.Namespace, spec_file: SpecFile | None) -> dict[str, list[Any]]:
    axes: dict[str, list[Any]] = dict(spec_file.grid) if spec_file is not None else {}
    for text in args.grid or ():
        key, values = parse_grid(text)
        axes[key] = values
    if not axes:
        raise ParameterError("sweep needs a grid: --grid KEY=V1,V2,... (e.g. --grid rate=0.5,1.0,1.5) "
                             "or a [grid] table in --model")
    return axes


def _sweep_columns(result: Any) -> list[str]:
    """The columns printed on the terminal: the point, throughput and number in system, verdicts."""
    columns = result.columns
    keep = [c for c in columns if c.split("_ci_")[0] in ("throughput", "mean_in_system") and "_ci_" not in c]
    keep += [c for c in columns if c.endswith(".holds") or c.endswith(".skipped")]
    return [*result.point_keys, *(c for c in keep if c not in result.point_keys)]


def _ignore_interrupt() -> None:  # pragma: no cover - runs in worker processes
    """Workers leave Ctrl-C to the main process (which prints the one line)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _sweep(args: argparse.Namespace) -> int:
    from .derivation import write_atomic
    from .sweep import grid, sweep

    spec_file = _spec_file(args)
    spec, where = _model_spec(args, spec_file)
    build_model({**spec, "policy": "greedy"} if str(spec.get("policy", "")).strip().lower() in FLUID_POLICIES
                else spec, where)  # the base model: its errors come first
    axes = _grid_axes(args, spec_file)
    for key, values in axes.items():  # an unknown key is named before any run
        with_value(spec, key, values[0])
    points = grid(**axes)

    def build(**point: Any):
        current = spec
        for key, value in point.items():
            current = with_value(current, key, value)
        label = ", ".join(f"{k}={v}" for k, v in point.items())
        return build_fluid_model(current, f"{where + ': ' if where else ''}grid point {label}",
                                 f"grid point {label}: policy")

    iterations = _option(args, spec_file, "iterations", 20_000)
    seed = _option(args, spec_file, "seed", 0)
    names = _option(args, spec_file, "theorems", ())
    names = [names] if isinstance(names, str) else names
    output = None if args.output is None else _writable_folder(args.output)
    options = {"iterations": iterations, "seed": seed, "replications": _option(args, spec_file, "replications", 1),
               "warmup": _option(args, spec_file, "warmup", 0), "engine": _option(args, spec_file, "engine", "fast"),
               "theorems": tuple(names), "level": _option(args, spec_file, "level", 0.95)}
    bar = ProgressBar(len(points), label="sweeping")
    pool = None
    if args.workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(args.workers, initializer=_ignore_interrupt)
    elif args.workers < 1:
        raise ParameterError(f"--workers must be an integer >= 1, got {args.workers}")
    try:
        result = sweep(build, points, executor=pool, progress=bar, **options)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    if output is not None:
        try:
            result.to_csv(output / "sweep.csv")
            write_atomic(output / "sweep.md", result.to_markdown() + "\n")
            write_atomic(output / "sweep.tex", result.to_latex(caption=f"Sweep over {', '.join(axes)}.") + "\n")
        except OSError as error:
            raise ParameterError(f"cannot write the sweep into the --output folder {str(output)!r}: "
                                 f"{error.strerror or error}") from None
    if args.json:
        print(_dumps({"version": _version(), "command": "sweep", "grid": axes, "seed": seed,
                      "iterations": iterations, "columns": result.columns, "rows": result.rows,
                      "metadata": result.metadata, "paths": [] if output is None else
                      [str(output / name) for name in SWEEP_FILES]}))
    else:
        print(f"sweep over {', '.join(axes)}: {len(points)} points, {iterations} iterations, "
              f"{options['replications']} replication(s), seed {seed}")
        print(result.to_markdown(_sweep_columns(result)))
        if output is not None:
            print(f"files in {output}: {', '.join(SWEEP_FILES)}")
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    spec_file = _spec_file(args)
    if args.policy is not None:
        raise ParameterError(f"--policy does not apply to compare, which runs several policies: use --policies "
                             f"NAME,... (allowed: {', '.join(default_policies())})")
    if args.workload is not None:
        if args.types or args.trace or args.model:
            raise ParameterError("give --workload or a model (--type, --trace, --model), not both")
        model = WORKLOADS[args.workload]()
    else:
        model = _model(args, spec_file)
    output = None if args.output is None else _writable_folder(args.output)
    if args.rates is not None:
        texts = [t.strip() for t in args.rates.split(",")]
        if not any(texts):
            raise ParameterError(f"--rates must list at least one positive rate (R1,R2,...), got {args.rates!r}")
        rates = [float(parse_number(text, "--rates")) for text in texts if text]
    else:
        base = sum(float(t.arrival_rate) for t in model.types if t.arrival_rate is not None)
        rates = [base * f for f in (0.75, 1.0, 1.25)] if args.quick else default_rates(model)
    chosen = (default_policies() if args.policies is None else
              select_policies([n for n in args.policies.split(",") if n.strip()], "--policies"))
    iterations = _option(args, spec_file, "iterations", 1500 if args.quick else 20_000)
    seed = _option(args, spec_file, "seed", 0)
    replications = args.replications if args.replications is not None else 2
    result = compare_policies(model, chosen, rates, iterations=iterations, replications=replications, seed=seed,
                              progress=lambda line: print(f"{_PROG}: {line}", file=sys.stderr))
    if output is not None:
        result.write(output)
    if args.json:
        print(_dumps({"version": _version(), "command": "compare", "model": model.to_dict(), "rates": rates,
                      "seed": seed, "iterations": iterations, **result.to_dict()}))
    else:
        print(result.to_markdown())
        if "WAIT" in chosen and "greedy" in chosen:
            unit = result.units["rate"]
            print(f"\nstable-limit ratio WAIT / greedy: {result.ratio('WAIT')} (limits in {unit}: WAIT "
                  f"{result.limits['WAIT']}; greedy {result.limits['greedy']}; [ALSW25] report 1.2-1.3 on GPUs)")
        if output is not None:
            print(f"files in {output}: {', '.join(result.FILES)}")
    return EXIT_OK


def _paper(args: argparse.Namespace) -> int:
    from .studies import STUDIES

    output = None if args.output is None else _writable_folder(args.output)
    study = STUDIES[args.study].run(quick=args.quick, seed=args.seed,
                                    progress=lambda line: print(f"{_PROG}: {line}", file=sys.stderr))
    if output is not None:
        study.write(output)
    if args.json:
        print(_dumps({"version": _version(), "command": "paper", "study": args.study, "rows": study.rows,
                      "settings": study.settings}))
    else:
        print(study.to_markdown())
    return EXIT_OK


_COMMANDS = {"simulate": _simulate, "report": _report, "sweep": _sweep, "compare": _compare, "paper": _paper}


def _error(message: str) -> int:
    print(f"{_PROG}: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """Warnings on one line each, ``queueing-llm: warning: ...`` (not Python's two-line form)."""
    print(f"{_PROG}: warning: {_one_line(message)}", file=sys.stderr if file is None else file)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``queueing-llm`` console script; returns the exit status."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output went away (``| head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        return EXIT_BROKEN_PIPE
    except ModelError as error:
        return _error(str(error))
    except MemoryError as error:
        if args.traceback:
            raise
        return _error(f"out of memory ({error or 'MemoryError'}); a smaller --iterations, a bounded decode law "
                      "or a smaller model needs less")
    except Exception as error:  # the contract is one line: an unexpected error is named, not dumped
        if args.traceback:
            raise
        return _error(f"{type(error).__name__}: {error} (unexpected; rerun with --traceback to see where)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
