r"""The theorem registry: each statement tied to its derivation and its numerical check.

``ql.theorems`` is a mapping from names (``"fixed-point"``, ``"stationary"``, ...) to
:class:`Theorem` objects. A theorem knows

* its ``hypotheses`` (sentences) and ``source`` (paper and equation),
* ``statement(model, **options)``: a SymPy relation derived from the model's primitives,
* ``latex(model, **options)``: its LaTeX,
* ``evaluate(model, **options)``: a dict of named numbers (SymPy or float),
* ``check(model, trajectory, **options)``: a :class:`~queueing_llm.verdict.Verdict`
  against one simulated run or a list of independent runs.

Users register their own theorems with :meth:`TheoremRegistry.register` and get LaTeX,
verification and report rows like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from .errors import ModelError, describe
from .latex import latex as paper_latex
from .verdict import Verdict

__all__ = ["Theorem", "TheoremRegistry", "theorems", "UnknownTheoremError"]


class UnknownTheoremError(ModelError, KeyError):
    """A theorem name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class Theorem:
    """A named statement about a :class:`~queueing_llm.model.ContinuousBatching` model.

    Parameters
    ----------
    name : str
        Registry name (lower case, words joined by ``-``).
    title : str
        One line for tables and docs.
    hypotheses : tuple of str
        Sentences stating when the statement holds.
    statement : callable ``(model, **options) -> sympy.Basic``
        Derives the statement (usually an ``Eq`` or a relation) from the model.
    evaluate : callable ``(model, **options) -> dict``
        Named numbers of the statement for this model.
    check : callable ``(model, trajectory, **options) -> Verdict`` or None
        Compares the statement with simulated runs (one trajectory or a list of them).
    source : str
        Paper and equation number, e.g. ``"[ADLS26, Prop. 1]"``.
    applies : callable ``(model) -> str | None`` or None
        Returns None when the theorem applies to the model, else the reason it does not.
    """

    name: str
    title: str
    hypotheses: tuple[str, ...]
    statement_fn: Callable[..., sp.Basic] = field(repr=False)
    evaluate_fn: Callable[..., dict] = field(repr=False)
    check_fn: Callable[..., Verdict] | None = field(default=None, repr=False)
    source: str = ""
    applies_fn: Callable[[Any], str | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ModelError(f"theorem name must be a non-empty string, got {describe(self.name)}")
        object.__setattr__(self, "hypotheses", tuple(self.hypotheses))

    def applies(self, model: Any) -> str | None:
        """None if the theorem applies to ``model``, else the reason it does not."""
        return None if self.applies_fn is None else self.applies_fn(model)

    def _require(self, model: Any) -> None:
        reason = self.applies(model)
        if reason is not None:
            raise ModelError(f"theorem {self.name!r} does not apply to this model: {reason}")

    def statement(self, model: Any, **options: Any) -> sp.Basic:
        """The statement derived for ``model`` as a SymPy relation."""
        self._require(model)
        return self.statement_fn(model, **options)

    def latex(self, model: Any, **options: Any) -> str:
        r"""LaTeX of :meth:`statement` as a paper sets it (:func:`queueing_llm.latex.latex`:
        ``x^{*}``, words upright, parts of a conjunction separated by ``,\quad``)."""
        return paper_latex(self.statement(model, **options))

    def evaluate(self, model: Any, **options: Any) -> dict:
        """Named numbers of the statement for ``model`` (SymPy values or floats)."""
        self._require(model)
        return self.evaluate_fn(model, **options)

    def check(self, model: Any, trajectory: Any, **options: Any) -> Verdict:
        """Verdict of the statement against a simulated run (or a list of runs)."""
        self._require(model)
        if self.check_fn is None:
            raise ModelError(f"theorem {self.name!r} has no numerical check")
        return self.check_fn(model, trajectory, **options)


class TheoremRegistry(Mapping):
    """A mapping ``name -> Theorem`` with :meth:`register`."""

    def __init__(self) -> None:
        self._items: dict[str, Theorem] = {}

    def register(self, theorem: Theorem, *, replace: bool = False) -> Theorem:
        """Add ``theorem``; a name already taken raises unless ``replace=True``."""
        if not isinstance(theorem, Theorem):
            raise ModelError(f"register expects a Theorem, got {describe(theorem)}")
        if theorem.name in self._items and not replace:
            raise ModelError(
                f"a theorem named {theorem.name!r} is already registered (pass replace=True)"
            )
        self._items[theorem.name] = theorem
        return theorem

    def unregister(self, name: str) -> None:
        """Remove a theorem by name."""
        self[name]
        del self._items[name]

    def __getitem__(self, name: str) -> Theorem:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items))
            raise UnknownTheoremError(f"no theorem named {name!r}; known: {known}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"TheoremRegistry({sorted(self._items)})"


theorems = TheoremRegistry()
