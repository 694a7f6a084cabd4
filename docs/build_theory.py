"""Write the theory chapter's source, ``generated/theory.rst``, from the theorem registry.

For every registered theorem (built-in families A, B, C of the model chapter, section 5,
and any theorem registered by an imported module) the chapter shows its title, source,
hypotheses and its statement derived on an example model, as a ``.. math::`` directive
(one aligned line per part, long sums broken: :func:`queueing_llm.latex.display_lines`);
then every derivation written by the scripts of ``proofs/`` (LaTeX from
:class:`queueing_llm.derivation.Derivation`) converted to reStructuredText.

Usage::

    python docs/build_theory.py [OUT_DIR] [--proofs DIR]

``OUT_DIR`` defaults to ``docs/generated``; ``--proofs`` to ``OUT_DIR/proofs`` (run the
scripts of ``proofs/`` there first: ``make -C docs generated`` does both).

The example model of a theorem is the first of :data:`EXAMPLES` the theorem applies to
and whose statement derives within :data:`TIME_LIMIT` seconds; symbolic models come
first so that the chapter shows general formulas where the theory supports them. Models
that were tried and refused are named in the chapter with the reason.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import sympy as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import queueing_llm as ql  # noqa: E402
from queueing_llm.derivation import write_atomic  # noqa: E402
from queueing_llm.latex import display_lines  # noqa: E402

TIME_LIMIT = 30
"""Seconds allowed to derive one statement on one example model."""

FAMILIES = [
    ("queueing_llm.catalogue.dynamics", "A. Memory-constrained dynamics (saturated input) [ADLS26]"),
    ("queueing_llm.catalogue.queue", "B. The batch-capped queue (no memory limit)"),
    ("queueing_llm.catalogue.capacity", "C. Capacity with memory and time [NSZ26], [ALSW25]"),
]


def _symbolic_open() -> ql.ContinuousBatching:
    l0, l1, M, lam = sp.symbols("l0 l1 M lambda", positive=True)
    return ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=l1, arrivals=lam)], kv_capacity=M)


def _symbolic_saturated() -> ql.ContinuousBatching:
    l0, l1, M = sp.symbols("l0 l1 M", positive=True)
    return ql.ContinuousBatching(types=[ql.RequestType(prompt=l0, decode=l1)], kv_capacity=M)


def _symbolic_wall_clock() -> ql.ContinuousBatching:
    l0, l1, M, lam, d0, d1 = sp.symbols("l0 l1 M lambda d0 d1", positive=True)
    return ql.ContinuousBatching(
        types=[ql.RequestType(prompt=l0, decode=l1, arrivals=ql.PoissonProcess(lam))],
        kv_capacity=M,
        iteration_time=ql.LinearIterationTime(d0, d1),
    )


def _example2() -> ql.ContinuousBatching:
    return ql.ContinuousBatching(types=[ql.RequestType(prompt=2, decode=3)], kv_capacity=24)


def _example4() -> ql.ContinuousBatching:
    return ql.ContinuousBatching(types=[ql.RequestType(50, 2), ql.RequestType(50, 3)], kv_capacity=518)


def _fluid_example() -> ql.ContinuousBatching:
    return ql.ContinuousBatching(
        types=[ql.RequestType(prompt=2, decode=3, arrivals=ql.PoissonProcess(2))],
        kv_capacity=50,
        iteration_time=ql.LinearIterationTime(1, 0.01),
    )


def _batch_capped_queue() -> ql.ContinuousBatching:
    return ql.ContinuousBatching(
        types=[ql.RequestType(prompt=0, decode=ql.Geometric(sp.Rational(1, 4)), arrivals=1.5)],
        batch_cap=8,
        policy="fcfs_cap",
    )


def _waiting_room() -> ql.ContinuousBatching:
    return ql.ContinuousBatching(
        types=[ql.RequestType(prompt=0, decode=ql.Geometric(sp.Rational(1, 4)), arrivals=1.5)],
        batch_cap=8,
        policy="fcfs_cap",
        waiting_cap=10,
    )


EXAMPLES: list[tuple[str, Callable[[], ql.ContinuousBatching]]] = [
    ("symbolic, saturated: l0, l1, M", _symbolic_saturated),
    ("symbolic, Poisson arrivals lambda per iteration: l0, l1, M", _symbolic_open),
    ("symbolic, wall clock: l0, l1, M, lambda per second, d0 + d1 Z", _symbolic_wall_clock),
    ("[ADLS26] Example 4: l0 = 50, l1 in {2, 3}, M = 518, saturated", _example4),
    ("[ADLS26] Example 2: l0 = 2, l1 = 3, M = 24, saturated", _example2),
    ("the default model: l0 = 10, l1 = 40, M = 2000, lambda = 1.2", ql.default_model),
    ("[ALSW25] worked example: l0 = 2, l1 = 3, lambda = 2/s, d0 = 1, d1 = 0.01, M = 50", _fluid_example),
    ("batch-capped queue: geometric l1 (q = 1/4), lambda = 1.5, B = 8, fcfs_cap", _batch_capped_queue),
    ("batch-capped queue with a waiting room: as above, K = 10", _waiting_room),
]


class _TimeLimit(Exception):
    pass


def _alarm(signum, frame):  # pragma: no cover - only when a derivation is too slow
    raise _TimeLimit


def statement_on_example(theorem: ql.Theorem) -> tuple[str | None, str | None, list[str]]:
    """(example description, LaTeX, refusals) for the first example model that works."""
    refusals = []
    for label, make in EXAMPLES:
        model = make()
        reason = theorem.applies(model)
        if reason is not None:
            refusals.append(f"{label}: does not apply ({reason})")
            continue
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TIME_LIMIT)
        try:
            return label, " \\\\\n".join(display_lines(theorem.statement(model))), refusals
        except _TimeLimit:
            refusals.append(f"{label}: no statement within {TIME_LIMIT} s")
        except ql.ModelError as err:
            refusals.append(f"{label}: {err}")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    return None, None, refusals


def _heading(text: str, mark: str) -> str:
    return f"{text}\n{mark * len(text)}\n"


def _indent(text: str, by: str = "   ") -> str:
    return "\n".join(by + line if line.strip() else "" for line in text.splitlines())


def _inline(text: str) -> str:
    r"""LaTeX prose to reStructuredText: ``$x$`` becomes ``:math:`x```, ``\text{}`` kept."""
    text = text.replace("`", "'")
    return re.sub(r"\$([^$]+)\$", lambda m: f":math:`{m.group(1)}`", text)


def theorem_section(name: str, theorem: ql.Theorem) -> str:
    out = [_heading(f"{theorem.title} (``{name}``)", "~")]
    if theorem.source:
        out.append(f"*Source:* {theorem.source}\n")
    if theorem.hypotheses:
        out.append("*Hypotheses:*\n")
        out.extend(f"- {h}" for h in theorem.hypotheses)
        out.append("")
    label, tex, refusals = statement_on_example(theorem)
    if tex is None:
        out.append("*Statement:* none of the example models gives a statement:\n")
        out.extend(f"- {r}" for r in refusals)
        out.append("")
        return "\n".join(out)
    out.append(f"*Statement* on the example model ({label}):\n")
    out.append(".. math::\n\n" + _indent(tex) + "\n")
    failed = [r for r in refusals if "does not apply" not in r]
    if failed:
        out.append("Example models that apply but were tried first and refused:\n")
        out.extend(f"- {r}" for r in failed)
        out.append("")
    return "\n".join(out)


_STEP = re.compile(r"\\paragraph\{(Step \d+\.)\}\s*(.*)", re.S)
_ALIGN = re.compile(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", re.S)
_TITLE = re.compile(r"\\subsection\*\{(?:\\raggedright )?(.*)\}")
_SOURCE = re.compile(r"\{\\sloppy (Source: .*)\\par\}", re.S)


def derivation_rst(tex: str) -> str:
    """A :class:`~queueing_llm.derivation.Derivation` LaTeX text as reStructuredText."""
    out = []
    for block in tex.strip().split("\n\n"):
        block = block.strip()
        if not block:
            continue
        if m := _TITLE.fullmatch(block):
            out.append(_heading(_inline(m.group(1)), "^"))
        elif m := _ALIGN.fullmatch(block):
            out.append(".. math::\n\n" + _indent(m.group(1)) + "\n")
        elif m := _SOURCE.fullmatch(block):
            out.append(_inline(m.group(1)) + "\n")
        elif m := _STEP.fullmatch(block):
            out.append(f"**{m.group(1)}** {_inline(m.group(2))}\n")
        else:
            out.append(_inline(block) + "\n")
    return "\n".join(out)


def build(out_dir: Path, proofs_dir: Path) -> Path:
    """Write ``out_dir/theory.rst``; returns its path."""
    parts = [
        ".. This file is generated by docs/build_theory.py; do not edit.\n",
        _heading("Statements from the registry", "-"),
        "Each theorem of ``ql.theorems`` with its statement derived by SymPy on an example model "
        "(``theorem.latex(model)``).\n",
    ]
    grouped: dict[str, list[tuple[str, ql.Theorem]]] = {}
    for name, thm in ql.theorems.items():
        grouped.setdefault(thm.statement_fn.__module__, []).append((name, thm))
    known = {module for module, _ in FAMILIES}
    families = FAMILIES + [(m, f"Other theorems ({m})") for m in sorted(grouped) if m not in known]
    for module, title in families:
        if module not in grouped:
            continue
        parts.append(_heading(title, "^"))
        parts.extend(theorem_section(name, thm) for name, thm in grouped[module])
    parts.append(_heading("Derivations", "-"))
    texs = sorted(proofs_dir.glob("*.tex")) if proofs_dir.is_dir() else []
    if not texs:
        parts.append(f"No derivations found in ``{proofs_dir}``: run the scripts of ``proofs/`` "
                     "(``make -C docs generated``).\n")
    for tex in texs:
        parts.append(f".. Derivation from proofs/{tex.stem}.py\n")
        parts.append(derivation_rst(tex.read_text(encoding="utf-8")))
    return write_atomic(out_dir / "theory.rst", "\n".join(parts))


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=str(HERE / "generated"))
    parser.add_argument("--proofs", default=None, help="folder of the proofs' .tex files (default OUT_DIR/proofs)")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    proofs = Path(args.proofs) if args.proofs else out / "proofs"
    return build(out, proofs)


if __name__ == "__main__":
    print(main())
