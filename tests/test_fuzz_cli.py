"""Property-based fuzzing of the command line (issue 11 items 4 and 5): ``main([...])`` of both
subcommands with hostile option values.

Asserted for every argument list: no exception escapes ``main`` (a usage error's
``SystemExit(2)`` from argparse counts as return code 2), the return code is 0 or 2, and a
return code 2 comes with exactly one line on stderr. Runs are kept short (``--iterations``
at most 200 unless the fuzzer picks a hostile value that must be refused quickly); the
per-example time limit of tests/fuzz_support.py bounds the rest. Profiles: see
tests/fuzz_support.py.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from pathlib import Path

from fuzz_support import SECONDS, Hang, fuzz_settings, record, time_limit
from hypothesis import event, given
from hypothesis import strategies as st

from queueing_llm.cli import main

NUMBERS = st.one_of(
    st.sampled_from(["0", "1", "2", "8", "2000", "-1", "-inf", "inf", "nan", "1e7", "1e400", "9223372036854775808",
                     "2.5", "abc", "", "0x10", "1_000", "  3 ", "-0"]),
    st.integers(-5, 10**4).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
TYPES = st.one_of(
    st.tuples(NUMBERS, NUMBERS, NUMBERS).map(",".join),
    st.tuples(NUMBERS, NUMBERS).map(",".join),
    st.sampled_from(["2,3,1.5", "10,40,1.2", "2,3", "2,3,1e7", "9223372036854775808,3,1", "1,1,1,1", ",,", "a,b,c"]),
)
POLICY = st.sampled_from(["greedy", "rate_limited", "rate_limited(2)", "rate_limited(-1)", "rate_limited(x)",
                          "reserve", "static", "fcfs_cap", "fifo", ""])
ITERATIONS = st.one_of(st.integers(1, 200).map(str), st.sampled_from(["0", "-5", "1.5", "x", "1e3", "29"]))


@st.composite
def argv(draw) -> list[str]:
    command = draw(st.sampled_from(["simulate", "report"]))
    if draw(st.booleans()):  # half the runs valid, so the deep paths (simulation, report) are reached
        return valid_argv(draw, command)
    args = [command, "--iterations", draw(ITERATIONS)]
    options = {
        "--type": TYPES, "--kv-capacity": NUMBERS, "--batch-cap": NUMBERS, "--waiting-cap": NUMBERS,
        "--policy": POLICY, "--seed": st.one_of(st.integers(0, 2**70).map(str), NUMBERS),
    }
    if command == "simulate":
        options.update({"--warmup": st.sampled_from(["0", "1", "-1", "x"]), "--engine": st.sampled_from(
            ["events", "fast", "bogus"])})
    else:
        options.update({"--level": NUMBERS, "--theorem": st.sampled_from(
            ["fixed-point", "stationary", "memory-little", "nope", ""]),
            "--output": st.sampled_from(["OUT", "/proc/self/no/out", "/dev/null/out"])})
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=4, unique=True)):
        args += [name, draw(options[name])]
    if command == "simulate" and draw(st.booleans()):
        args.append("--saturated")
    if draw(st.booleans()):
        args.append("--json")
    if draw(st.integers(0, 19)) == 0:
        args.append(draw(st.sampled_from(["--bogus", "extra", "--iterations"])))
    return args


PROGRESS = re.compile(r"\d+/\d+ \(\d+%\) after [\d.]+s$|\r")


def valid_argv(draw, command: str) -> list[str]:
    args = [command, "--iterations", str(draw(st.integers(30, 200))), "--seed", str(draw(st.integers(0, 99)))]
    kind = draw(st.sampled_from(["default", "greedy", "queue"]))
    if kind == "greedy":
        args += ["--type", draw(st.sampled_from(["2,3,0.5", "10,40,1.2", "1,2,2.0"])), "--kv-capacity",
                 draw(st.sampled_from(["60", "200", "2000"])), "--policy",
                 draw(st.sampled_from(["greedy", "rate_limited", "reserve", "static", "rate_limited(1.5)"]))]
    elif kind == "queue":
        args += ["--type", draw(st.sampled_from(["1,1,0.5", "2,3,1.5"])), "--batch-cap",
                 draw(st.sampled_from(["2", "8"])), "--policy", "fcfs_cap"]
        if draw(st.booleans()):
            args += ["--waiting-cap", draw(st.sampled_from(["0", "3"]))]
    if command == "simulate":
        args += ["--engine", draw(st.sampled_from(["events", "fast"]))]
        if draw(st.booleans()):
            args.append("--saturated")
    else:
        if draw(st.booleans()):
            args += ["--output", "OUT"]
        if draw(st.booleans()):
            args += ["--theorem", draw(st.sampled_from(["fixed-point", "stability", "memory-little"]))]
    if draw(st.booleans()):
        args.append("--json")
    return args


def run_main(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


@fuzz_settings(30)
@given(args=argv())
def test_cli_main(args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        args = [str(Path(folder) / "out") if a == "OUT" else a for a in args]
        target = f"cli {args[0]}"
        try:
            with time_limit(SECONDS):
                code, err = run_main(args)
        except Hang as exc:
            record(target, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a traceback from the CLI is the finding
            record(target, exc)
            return
    event(f"{args[0]} exit {code}")
    lines = [line for line in err.splitlines() if line.strip()]
    lines = [line for line in lines if not PROGRESS.search(line)]  # the progress bar's lines are not errors
    if code not in (0, 2):
        record(target, RuntimeError(f"exit {code} for {args}: {err[-300:]}"))
    elif code == 2 and len(lines) != 1:
        record(target, RuntimeError(f"exit 2 with {len(lines)} lines on stderr for {args}: {err[-300:]}"))
