r"""The theorem registry: each statement tied to its derivation and its numerical check.

``ql.theorems`` is a mapping from names (``"fixed-point"``, ``"stationary"``, ...) to
:class:`Theorem` objects. A theorem knows

* its ``hypotheses`` (sentences) and ``source`` (paper and equation),
* ``statement(model, **options)``: a SymPy relation derived from the model's primitives,
* ``latex(model, **options)``: its LaTeX,
* ``evaluate(model, **options)``: a dict of named numbers (SymPy or float),
* ``check(model, runs, **options)``: a :class:`~queueing_llm.verdict.Verdict` against one
  run or a list of runs: ``evaluate`` gives the prediction, the check measures the runs
  and compares (the check function has the signature
  ``check_fn(model, runs, prediction, level=..., **check_options)`` and takes every theory
  value from ``prediction``);
* ``runs``: the runs its check needs (:class:`~queueing_llm.runs.RunSpec`: open,
  saturated or relaxed, with which policy), which :func:`queueing_llm.verify` and the
  report build when the caller gives none; ``comparison``: the test in words.

Users register their own theorems with :meth:`TheoremRegistry.register` and get LaTeX,
verification and report rows like the built-in ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from .errors import ModelError, describe
from .latex import latex as paper_latex
from .numbers import check_options as reject_unknown_options
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
    check : callable ``(model, runs, prediction, level=..., **check_options) -> Verdict`` or None
        Compares ``prediction`` (the dict ``evaluate`` returned) with a measurement on the
        runs (one run or a list of them); never recomputes a theory value.
    source : str
        Paper and equation number, e.g. ``"[ADLS26, Prop. 1]"``.
    applies : callable ``(model) -> str | None`` or None
        Returns None when the theorem applies to the model, else the reason it does not.
    runs : tuple of RunSpec
        The runs the check needs (:mod:`queueing_llm.runs`); empty: the caller must give them.
    runs_fn : callable ``(**evaluate_options) -> tuple of RunSpec`` or None
        For a theorem whose runs depend on its evaluate options (``mixing``: one relaxed run
        per engine of the routing asked for): the runs for the options given
        (:meth:`runs_for`); ``runs`` are then those of the default options.
    comparison : str
        The comparison in words (quantity, estimator, test), for docs and reports.
    """

    name: str
    title: str
    hypotheses: tuple[str, ...]
    statement_fn: Callable[..., sp.Basic] = field(repr=False)
    evaluate_fn: Callable[..., dict] = field(repr=False)
    check_fn: Callable[..., Verdict] | None = field(default=None, repr=False)
    source: str = ""
    applies_fn: Callable[[Any], str | None] | None = field(default=None, repr=False)
    runs: tuple[Any, ...] = field(default=(), repr=False)
    comparison: str = ""
    runs_fn: Callable[..., Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ModelError(f"theorem name must be a non-empty string, got {describe(self.name)}")
        object.__setattr__(self, "hypotheses", tuple(self.hypotheses))
        object.__setattr__(self, "runs", self._specs(self.runs))
        if self.runs_fn is not None and not callable(self.runs_fn):
            raise ModelError(f"theorem {self.name!r}: runs_fn must be a callable (**evaluate_options) -> runs or "
                             f"None, got {describe(self.runs_fn)}")

    def _specs(self, runs: Any) -> tuple:
        runs = (runs,) if not isinstance(runs, (tuple, list)) else tuple(runs)
        for i, spec in enumerate(runs):
            if not all(hasattr(spec, a) for a in ("kind", "label", "build")):
                raise ModelError(f"theorem {self.name!r}: runs[{i}] must be a queueing_llm.runs.RunSpec, "
                                 f"got {describe(spec)}")
        return runs

    def runs_for(self, **options: Any) -> tuple:
        """The runs the check needs for these evaluate options: ``runs_fn(**options)`` for a
        theorem whose runs depend on them, ``runs`` otherwise (and with no options)."""
        if self.runs_fn is None or not options:
            return self.runs
        return self._specs(self.runs_fn(**options))

    def evaluate_option_names(self) -> frozenset[str]:
        """Names of the options ``evaluate`` takes (the keyword parameters of ``evaluate_fn``)."""
        params = list(inspect.signature(self.evaluate_fn).parameters.values())[1:]
        return frozenset(p.name for p in params
                         if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))

    def split_options(self, options: Mapping[str, Any] | None = None, **more: Any) -> tuple[dict, dict]:
        """Split options into ``(evaluate_options, check_options)``.

        Evaluate options are the names in the signature of ``evaluate_fn``; every other
        option goes to the check (``level``, ``batches``, ``quantity``, ...).
        """
        opts = {**dict(options or {}), **more}
        names = self.evaluate_option_names()
        return ({k: v for k, v in opts.items() if k in names}, {k: v for k, v in opts.items() if k not in names})

    def applies(self, model: Any) -> str | None:
        """None if the theorem applies to ``model``, else the reason it does not."""
        return None if self.applies_fn is None else self.applies_fn(model)

    def _require(self, model: Any) -> None:
        from .model import ContinuousBatching

        if not isinstance(model, ContinuousBatching):
            raise ModelError(f"theorem {self.name!r} needs a ql.ContinuousBatching model, got {describe(model)}")
        reason = self.applies(model)
        if reason is not None:
            raise ModelError(f"theorem {self.name!r} does not apply to this model: {reason}")

    def statement(self, model: Any, **options: Any) -> sp.Basic:
        """The statement derived for ``model`` as a SymPy relation."""
        self._require(model)
        reject_unknown_options(self.statement_fn, options, f"theorem {self.name!r} statement", error=ModelError)
        return self.statement_fn(model, **options)

    def latex(self, model: Any, **options: Any) -> str:
        r"""LaTeX of :meth:`statement` as a paper sets it (:func:`queueing_llm.latex.latex`:
        ``x^{*}``, words upright, parts of a conjunction separated by ``,\quad``)."""
        return paper_latex(self.statement(model, **options))

    def evaluate(self, model: Any, **options: Any) -> dict:
        """Named numbers of the statement for ``model`` (SymPy values or floats)."""
        self._require(model)
        reject_unknown_options(self.evaluate_fn, options, f"theorem {self.name!r} evaluate", error=ModelError)
        return self.evaluate_fn(model, **options)

    def check(self, model: Any, runs: Any, **options: Any) -> Verdict:
        """Verdict of the statement against a run (or a list of runs).

        Splits ``options`` (:meth:`split_options`), evaluates the prediction with the
        evaluate options and passes it to the check with the others. Prefer
        :func:`queueing_llm.verify`, which also validates the runs and can build them.
        """
        self._require(model)
        if self.check_fn is None:
            raise ModelError(f"theorem {self.name!r} has no numerical check")
        ev, ch = self.split_options(options)
        prediction = self.evaluate_fn(model, **ev)
        return self.check_with(model, runs, prediction, **ch)

    def check_with(self, model: Any, runs: Any, prediction: dict, **check_options: Any) -> Verdict:
        """The check alone, on a given ``prediction`` (the dict ``evaluate`` returned)."""
        if self.check_fn is None:
            raise ModelError(f"theorem {self.name!r} has no numerical check")
        evaluate_names = ", ".join(sorted(self.evaluate_option_names())) or "none"
        reject_unknown_options(self.check_fn, check_options, f"theorem {self.name!r} check (evaluate options: "
                               f"{evaluate_names})", error=ModelError, skip=3)
        verdict = self.check_fn(model, runs, prediction, **check_options)
        if not isinstance(verdict, Verdict):
            raise ModelError(f"the check of theorem {self.name!r} must return a Verdict, got {describe(verdict)}")
        return verdict


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
