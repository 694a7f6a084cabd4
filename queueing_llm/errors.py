"""Errors raised by queueing_llm.

Every invalid input raises a subclass of :class:`ModelError` (itself a
:class:`ValueError`) whose message names the parameter, the value received and the
allowed range, so a user never meets a traceback from deep inside NumPy or SymPy.
"""

from __future__ import annotations


class ModelError(ValueError):
    """Base class of every validation error of the package."""


class LawError(ModelError):
    """A probability law was given a parameter outside its range."""


class ParameterError(ModelError):
    """A model parameter (capacity, cap, rate, proportion, ...) is out of range."""


class OutputError(ParameterError):
    """A result cannot be written: the output folder cannot be created or written (the
    message names the folder and the system's reason)."""


class NoEquilibriumError(ParameterError):
    r"""The model has no fluid equilibrium (:math:`\rho \ge 1`: overload), so no fluid-guided
    policy (WAIT, Nested WAIT) exists for it. :func:`queueing_llm.stable_range` counts such a
    rate as unstable and :func:`queueing_llm.verify` answers "does not apply"."""


class PolicyError(ModelError):
    """An unknown policy name or an invalid policy parameter."""


class SymbolicValueError(ModelError):
    """A numeric operation (sampling, simulation) was asked of a symbolic parameter."""


class TraceError(ModelError):
    """A trace file is missing, unreadable or lacks a required column."""


class TraceWarning(UserWarning):
    """A trace loaded, but with something a user should look at (rows out of order, a
    timestamp far from all the others); the message names the rows and the span."""


def describe(value: object) -> str:
    """Short printable form of a value for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
