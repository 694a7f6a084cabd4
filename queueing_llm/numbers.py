"""Conversions between user numbers, SymPy expressions and floats, and range checks.

Theory is exact where possible: a float given by a user (``0.3``) becomes the rational
with the same decimal literal (``3/10``), integers stay integers, ``math.inf`` becomes
``sympy.oo`` and SymPy symbols pass through unchanged.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import sympy as sp

from .errors import ParameterError, SymbolicValueError, describe

Number = int | float | sp.Expr


def to_sympy(value: Any) -> sp.Expr:
    """Exact SymPy form of a user number (float -> decimal rational, inf -> oo)."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got the boolean {value!r}")
    if isinstance(value, numbers.Integral):
        return sp.Integer(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isinf(v):
            return sp.oo if v > 0 else -sp.oo
        if math.isnan(v):
            return sp.nan
        return sp.Rational(repr(v))
    return sp.sympify(value)


def is_symbolic(value: Any) -> bool:
    """True if ``value`` is a SymPy expression with free symbols."""
    return isinstance(value, sp.Basic) and bool(value.free_symbols)


def is_infinite(value: Any) -> bool:
    """True for ``math.inf`` and ``sympy.oo``."""
    if isinstance(value, sp.Basic):
        return value == sp.oo
    return isinstance(value, numbers.Real) and math.isinf(float(value)) and float(value) > 0


def to_float(value: Any, name: str = "value") -> float:
    """Float form of a number; a clear error if it is symbolic."""
    if is_symbolic(value):
        raise SymbolicValueError(
            f"{name} = {describe(value)} is symbolic; give a number for numeric work"
        )
    if isinstance(value, sp.Basic):
        return float(value.evalf()) if value != sp.oo else math.inf
    return float(value)


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    allow_inf: bool = False,
    error: type[Exception] = ParameterError,
) -> None:
    """Raise ``error`` naming ``name``, ``value`` and the range unless the value fits.

    Symbolic values are accepted unchecked (their assumptions are the user's).
    """
    if is_symbolic(value):
        return
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    kind = "an integer" if integer else "a number"
    if allow_inf:
        kind += " or inf"
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, sp.Basic)):
        raise error(f"{name} must be {kind} in {rng}, got {describe(value)}")
    if is_infinite(value):
        if allow_inf:
            return
        raise error(f"{name} must be finite, {kind} in {rng}, got {describe(value)}")
    try:
        v = float(value)
    except TypeError:
        raise error(f"{name} must be {kind} in {rng}, got {describe(value)}") from None
    if math.isnan(v):
        raise error(f"{name} must be {kind} in {rng}, got nan")
    if integer and v != int(v):
        raise error(f"{name} must be {kind} in {rng}, got {describe(value)}")
    if low is not None and (v < low or (low_open and v == low)):
        raise error(f"{name} must be {kind} in {rng}, got {describe(value)}")
    if high is not None and (v > high or (high_open and v == high)):
        raise error(f"{name} must be {kind} in {rng}, got {describe(value)}")
