"""Shared machinery of the fuzz suites (tests/test_fuzz*.py): hostile values, the guard that
lets only package errors through, a per-example time limit, and the profiles.

Profiles (environment variables):

``QL_FUZZ_SCALE``
    Multiplies every fuzz test's ``max_examples`` (default 1: the CI profile, a couple of
    minutes on 2 cores). The nightly profile is ``QL_FUZZ_SCALE=20``
    (``QL_FUZZ_SCALE=20 python -m pytest -q tests/test_fuzz.py tests/test_fuzz_cli.py``);
    hypothesis then also explores non-derandomized inputs and shrinks a failure to a minimal
    example (at scale 1 the examples are derandomized and a failure is reported unshrunk, to
    keep CI short).
``QL_FUZZ_SECONDS``
    Per-example time limit in seconds (default 30): an example still running after it fails
    as a hang.
``QL_FUZZ_TALLY``
    A file path: instead of failing on the first raw exception, every raw exception (and
    hang) is appended to that file as ``target<TAB>type<TAB>message`` and the example passes.
    Used to count what a version of the package lets escape (issue 11's before/after numbers).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st

import queueing_llm.errors as qerrors

SCALE = max(1, int(os.environ.get("QL_FUZZ_SCALE", "1")))
SECONDS = float(os.environ.get("QL_FUZZ_SECONDS", "30"))
TALLY = os.environ.get("QL_FUZZ_TALLY")

PACKAGE_ERRORS: tuple[type[BaseException], ...] = tuple(
    obj for obj in vars(qerrors).values()
    if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning)
)
"""Every exception type of queueing_llm.errors (ModelError and its subclasses)."""


def fuzz_settings(examples: int) -> settings:
    """Settings of a fuzz test: ``examples`` x ``QL_FUZZ_SCALE`` examples, no hypothesis
    deadline (the guard's time limit bounds each example instead), reproducible in CI."""
    phases = [p for p in Phase if p is not Phase.shrink] if SCALE == 1 else list(Phase)  # CI: report, don't shrink
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=SCALE == 1,
                    suppress_health_check=list(HealthCheck), database=None, phases=phases)


class Hang(Exception):
    """An example ran past the per-example time limit."""


@contextlib.contextmanager
def time_limit(seconds: float = SECONDS) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread after ``seconds`` (SIGALRM; no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def record(target: str, exc: BaseException) -> None:
    """Fail with the raw exception, or append it to the tally file in tally mode."""
    if TALLY:
        message = str(exc).replace("\n", " ").replace("\t", " ")[:200]
        with open(TALLY, "a", encoding="utf-8") as fh:
            fh.write(f"{target}\t{type(exc).__name__}\t{message}\n")
        return
    raise AssertionError(f"{target}: a raw {type(exc).__name__} escaped: {exc}") from exc


_MISSING = object()


def guarded(target: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; a package error gives ``MISSING``; anything else (or a hang) is
    recorded by :func:`record`."""
    try:
        with time_limit():
            value = fn(*args, **kwargs)
    except PACKAGE_ERRORS as exc:
        event(f"{target}: {type(exc).__name__}")  # --hypothesis-show-statistics shows the mix
        return _MISSING
    except Exception as exc:  # noqa: BLE001 - the point: anything but a package error is a finding
        event(f"{target}: raw {type(exc).__name__}")
        record(target, exc)
        return _MISSING
    event(f"{target}: answered")
    return value


def ok(value: Any) -> bool:
    """True if a guarded call returned a value."""
    return value is not _MISSING


# -- hostile values -------------------------------------------------------------------------
SPECIAL = [0, 1, 2, 3, 10, -1, 0.5, 0.999, 1e-300, 1e-12, 1e7, 1e30, 2**53, 2**53 + 1, 2**63, -(2**63),
           math.inf, -math.inf, math.nan, True, False, None, "", "3", "abc",
           np.int64(10), np.float64(2.0), np.bool_(True), np.uint64(2**64 - 1), np.float32(0.25),
           Fraction(1, 3), sp.Rational(1, 2), sp.Integer(4), sp.Symbol("x"), sp.oo, -sp.oo, sp.nan, sp.zoo, sp.I,
           1 + 2j, [1, 2], (3,), {1: 2}, {0.5}, np.array([1, 2]), np.array(3), object()]


def hostile() -> st.SearchStrategy[Any]:
    """Numbers and non-numbers a user might pass anywhere a number is expected."""
    return st.one_of(
        st.sampled_from(SPECIAL),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-(10**6), 10**6).map(np.int64),
        st.floats(-1e6, 1e6).map(np.float64),
        st.text(max_size=5),
    )


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` values most of the time, hostile ones otherwise (so deep code is reached)."""
    return st.one_of(valid, valid, valid, hostile())
