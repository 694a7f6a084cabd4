"""The ``queueing-llm`` command.

``queueing-llm simulate`` simulates a continuous-batching model (the embedded default
model unless types are given) and prints its summary; ``--json`` prints the summary as
JSON. ``queueing-llm report`` evaluates every applicable theorem on the model, simulates
it, verifies the theorems against the run and prints a short table (``--output DIR``
writes report.md, LaTeX tables, CSV, figures and provenance.json). Bad input prints one
line naming the parameter and exits with status 2.

Examples
--------
::

    queueing-llm simulate
    queueing-llm simulate --type 2,3,1.5 --kv-capacity 24 --iterations 50000 --json
    queueing-llm simulate --type 10,40 --kv-capacity 2000 --saturated --policy rate_limited
    queueing-llm report --output report/
    queueing-llm report --type 2,3,1.5 --batch-cap 8 --policy fcfs_cap --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from .errors import ModelError
from .model import ContinuousBatching, RequestType, default_model
from .progress import ProgressBar

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _number(text: str) -> float:
    if text.strip().lower() in ("inf", "infinity"):
        return math.inf
    value = float(text)
    return int(value) if value.is_integer() else value


def _type_spec(text: str) -> tuple[int, int, float | None]:
    """``PROMPT,DECODE[,RATE]`` -> (prompt, decode, rate or None)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(
            f"--type must be PROMPT,DECODE or PROMPT,DECODE,RATE (e.g. 10,40,1.2), got {text!r}"
        )
    try:
        prompt, decode = int(parts[0]), int(parts[1])
        rate = float(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--type must be integers PROMPT,DECODE and a number RATE, got {text!r}"
        ) from None
    return prompt, decode, rate


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model options shared by ``simulate`` and ``report``."""
    parser.add_argument("--type", dest="types", action="append", type=_type_spec, metavar="PROMPT,DECODE[,RATE]",
                        help="a request type: prompt tokens, decode iterations, Poisson arrivals per iteration "
                             "(repeat for several types; default: the embedded default model)")
    parser.add_argument("--kv-capacity", type=_number, default=None, metavar="M",
                        help="KV budget M in tokens (default: inf, or 2000 for the default model)")
    parser.add_argument("--batch-cap", type=_number, default=math.inf, metavar="B", help="batch cap B (default inf)")
    parser.add_argument("--waiting-cap", type=_number, default=math.inf, metavar="K",
                        help="waiting-room cap K (default inf)")
    parser.add_argument("--policy", default=None,
                        help="greedy, rate_limited, rate_limited(X), reserve, static or fcfs_cap (default greedy)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``queueing-llm`` (subcommands ``simulate`` and ``report``)."""
    parser = _Parser(prog="queueing-llm", description="Queueing theory of LLM inference.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sim = sub.add_parser("simulate", help="simulate a model and print its summary")
    _add_model_options(sim)
    sim.add_argument("--iterations", type=int, default=20_000, help="iterations to simulate (default 20000)")
    sim.add_argument("--warmup", type=int, default=0, help="iterations left out of the summary (default 0)")
    sim.add_argument("--seed", type=int, default=None, help="random seed (default: fresh entropy)")
    sim.add_argument("--saturated", action="store_true", help="infinite backlog instead of arrivals")
    sim.add_argument("--engine", choices=("events", "fast"), default="fast",
                     help="simulation engine: the SimPy reference or the fast engine (same trajectories)")
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    rep = sub.add_parser("report", help="evaluate every applicable theorem, simulate, verify, write tables and figures")
    _add_model_options(rep)
    rep.add_argument("--iterations", type=int, default=20_000, help="iterations to simulate (default 20000)")
    rep.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    rep.add_argument("--level", type=float, default=0.95, help="confidence level of the verdicts (default 0.95)")
    rep.add_argument("--theorem", dest="theorems", action="append", metavar="NAME",
                     help="only this registered theorem (repeat for several; default: every applicable one)")
    rep.add_argument("--output", default=None, metavar="DIR",
                     help="folder for report.md, LaTeX tables, CSV, figures and provenance.json")
    rep.add_argument("--json", action="store_true", help="print the report as JSON")
    rep.add_argument("--strict", action="store_true",
                     help="exit with status 1 when a verdict FAILS (a 'does not apply' verdict is no failure)")
    return parser


def _model_from(args: argparse.Namespace) -> ContinuousBatching:
    if not args.types:
        base = default_model()
        return ContinuousBatching(
            types=base.types,
            kv_capacity=base.kv_capacity if args.kv_capacity is None else args.kv_capacity,
            batch_cap=args.batch_cap,
            policy=args.policy or base.policy,
            waiting_cap=args.waiting_cap,
        )
    types = [RequestType(prompt=p, decode=d, arrivals=r) for p, d, r in args.types]
    return ContinuousBatching(
        types=types,
        kv_capacity=math.inf if args.kv_capacity is None else args.kv_capacity,
        batch_cap=args.batch_cap,
        policy=args.policy or "greedy",
        waiting_cap=args.waiting_cap,
    )


def _format_summary(model: ContinuousBatching, summary: dict, args: argparse.Namespace) -> str:
    lines = [f"model: {model!r}", f"iterations: {args.iterations} (warm-up {args.warmup}), seed {args.seed}"]
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}  {text}")
    return "\n".join(lines)


def _simulate(args: argparse.Namespace) -> int:
    from .sim import simulate

    model = _model_from(args)
    bar = ProgressBar(args.iterations)
    try:
        run = simulate(model, args.iterations, seed=args.seed, saturated=args.saturated,
                       warmup=args.warmup, engine=args.engine, progress=bar)
    finally:
        bar.close()
    summary = run.summary()
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True, default=float))
    else:
        print(_format_summary(model, summary, args))
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import report

    model = _model_from(args)
    bar = ProgressBar(args.iterations)
    try:
        result = report(model, iterations=args.iterations, seed=args.seed, output=args.output,
                        names=args.theorems, progress=bar, level=args.level)
    except OSError as error:  # an output folder that cannot be written: one line, exit 2
        raise ModelError(f"cannot write the report to --output {args.output!r}: {error.strerror or error}") from None
    finally:
        bar.close()
    print(result.to_json() if args.json else result.to_text(), end="" if args.json else "\n")
    return EXIT_FAILS if args.strict and result.failures else 0


EXIT_FAILS = 1
"""Exit status of ``queueing-llm report --strict`` when a verdict FAILS."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``queueing-llm`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "report":
            return _report(args)
    except ModelError as error:
        print(f"queueing-llm: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects first
    return EXIT_USAGE  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
