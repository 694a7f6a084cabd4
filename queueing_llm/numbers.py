"""Conversions between user numbers, SymPy expressions and floats, and range checks.

Theory is exact where possible: a float given by a user (``0.3``) becomes the rational
with the same decimal literal (``3/10``), integers stay integers, ``math.inf`` becomes
``sympy.oo`` and SymPy symbols pass through unchanged.

This module is the package's one validation layer at the boundary: Python and NumPy
integers and reals are accepted alike (``np.int64(10)`` is ``10``), booleans are never
numbers, NaN and infinity are refused where a finite value is needed, and a value beyond
what the numeric face can represent is refused naming its limit (:data:`MAX_INTEGER`,
:data:`MAX_RATE`).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .errors import ParameterError, SymbolicValueError, describe

Number = int | float | sp.Expr

MAX_INTEGER = 2**53
"""Largest integer parameter accepted (token lengths, capacities, caps, trial counts):
:math:`2^{53}`, the largest range in which every integer is exact in floating point, far
inside the int64 arrays of the simulators (a sum of :math:`2^{10}` such values still fits)."""

MAX_RATE = 1e6
r"""Largest mean number of arrivals per iteration (or requests per second of a Poisson
process) accepted: far beyond any served batch, and small enough that the draws and the
arrival PMF stay within memory (a Poisson law of mean :math:`\lambda` spans about
:math:`\lambda + 12\sqrt{\lambda}` values)."""


_LIMITS = {
    MAX_INTEGER: "2^53, the largest integer exact in floating point: the numeric face's limit",
    MAX_RATE: "MAX_RATE, the largest mean number of arrivals per iteration or per second accepted",
}


def is_real_number(value: Any) -> bool:
    """True for Python and NumPy integers and reals (and Fractions); False for booleans
    (``bool`` and ``numpy.bool_``), complex numbers, strings and SymPy objects."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, numbers.Real)


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars turned into Python ``int``/``float`` (others unchanged),
    so a model built from ``np.int64(10)`` equals, prints and pickles as one built from ``10``."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def plain_integer(value: Any) -> Any:
    """:func:`plain`, and an integer-valued finite real (``10.0``) as the ``int`` 10."""
    value = plain(value)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def to_sympy(value: Any) -> sp.Expr:
    """Exact SymPy form of a user number (float -> decimal rational, inf -> oo)."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected a number, got the boolean {value!r}")
    if isinstance(value, numbers.Integral):
        return sp.Integer(int(value))
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isinf(v):
            return sp.oo if v > 0 else -sp.oo
        if math.isnan(v):
            return sp.nan
        return sp.Rational(repr(v))
    if isinstance(value, (str, bytes)):
        raise ParameterError(f"expected a number or a SymPy expression, got the string {describe(value)}")
    try:
        return sp.sympify(value, strict=True)
    except (sp.SympifyError, TypeError, ValueError):
        raise ParameterError(f"expected a number or a SymPy expression, got {describe(value)}") from None


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
    limit: float | None = None,
) -> None:
    """Raise ``error`` naming ``name``, ``value`` and the range unless the value fits.

    Python and NumPy numbers are accepted alike; booleans, strings, complex numbers and
    NaN never are. A value above ``limit`` (:data:`MAX_INTEGER`, :data:`MAX_RATE`: what the
    numeric face represents) is refused with a message naming the limit and why it exists. Symbolic values are accepted
    unchecked (their assumptions are the user's).
    """
    if is_symbolic(value):
        return
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    kind = "an integer" if integer else "a number"
    if allow_inf:
        kind += " or inf"
    if not (is_real_number(value) or isinstance(value, sp.Basic)):
        raise error(f"{name} must be {kind} in {rng}, got {describe(value)}")
    if is_infinite(value):
        if allow_inf:
            return
        raise error(f"{name} must be finite, {kind} in {rng}, got {describe(value)}")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise error(f"{name} must be {kind} in {rng}, got {describe(value)}") from None
    if math.isnan(v):
        raise error(f"{name} must be {kind} in {rng}, got nan")
    if math.isinf(v) and not (allow_inf and v > 0):
        finite = "" if allow_inf else "finite, "
        raise error(f"{name} must be {finite}{kind} in {rng}, got {describe(value)}")
    if integer and v != int(v):
        raise error(f"{name} must be {kind} in {rng}, got {describe(value)}")
    if low is not None and (v < low or (low_open and v == low)):
        raise error(f"{name} must be {kind} in {rng}, got {describe(value)}")
    if high is not None and (v > high or (high_open and v == high)):
        raise error(f"{name} must be {kind} in {rng}, got {describe(value)}")
    if limit is not None and (v > limit or _exceeds(value, limit)):
        why = _LIMITS.get(limit, "the numeric face's limit")
        raise error(f"{name} must be at most {limit:.16g} ({why}), got {describe(value)}")


def _exceeds(value: Any, limit: float) -> bool:
    """``value > limit`` compared exactly for an exact number (an int, a Fraction or a SymPy
    rational), whose float may round down onto the limit (``float(2**53 + 1) == 2**53``)."""
    if isinstance(value, (bool, float, np.floating)):
        return False
    if isinstance(value, sp.Basic) and value.is_Rational:
        value = Fraction(int(value.p), int(value.q))
    if isinstance(value, (numbers.Integral, Fraction)):
        return Fraction(value) > Fraction(limit)
    return False


def check_options(function: Callable[..., Any], options: Mapping[str, Any], where: str,
                  error: type[Exception] = ParameterError, skip: int = 1) -> None:
    """Raise ``error`` listing the known option names if ``options`` holds a keyword that
    ``function`` does not take (its first ``skip`` positional parameters are not options).

    A function with ``**kwargs`` accepts any name; its options are its own to check.
    """
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    known = [p.name for p in params[skip:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in options if k not in known]
    if unknown:
        names = ", ".join(known) if known else "none"
        raise error(f"{where}: unknown option {unknown[0]!r}; known options: {names}")
