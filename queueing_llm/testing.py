r"""Assertions for regression tests of theorems, built-in or a researcher's own.

A regression test of a theorem is usually three lines:

.. code-block:: python

    from queueing_llm.testing import assert_theorem_holds, simulate_replications

    runs = simulate_replications(model, iterations=20_000, replications=10, seed=1)
    assert_theorem_holds("stationary", model, runs, level=0.99)

* :func:`assert_theorem_holds` / :func:`assert_theorem_fails`: the
  :class:`~queueing_llm.verdict.Verdict` of :func:`queueing_llm.verify.verify`, with the
  verdict (theory, estimate, interval, reason) in the failure message;
* :func:`assert_statement_equals`: pins the derived SymPy statement to an expected one
  (:math:`\mathrm{simplify}(a - b) = 0` side by side), so a change in a derivation is seen;
* :func:`simulate_replications`: independent runs from one seed, the seeds spawned by
  :class:`numpy.random.SeedSequence` (statistically independent streams);
* :func:`perturb` / :func:`assert_detects`: power tests. A copy of a theorem whose
  ``evaluate`` returns one quantity scaled by a factor must be caught (FAILS) by
  ``verify`` on the same runs, so the check can fail:

  .. code-block:: python

      assert_detects("stationary", model, runs, "mean_in_system", factors=(0.95, 1.05))
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp

from .errors import ModelError, describe
from .numbers import check_real
from .stats import DEFAULT_LEVEL
from .theorems import Theorem
from .verdict import Verdict
from .verify import _theorem, declared_runs, verify

__all__ = [
    "assert_theorem_holds",
    "assert_theorem_fails",
    "assert_statement_equals",
    "simulate_replications",
    "replication_seeds",
    "perturb",
    "assert_detects",
    "detection_threshold",
]


def _message(verdict: Verdict, expected: str) -> str:
    lines = [f"expected the theorem to {expected}, but: {verdict}"]
    if verdict.details:
        lines.append("details: " + ", ".join(f"{k}={v!r}" for k, v in verdict.details.items()))
    return "\n".join(lines)


def assert_theorem_holds(
    theorem: Theorem | str, model: Any, runs: Any, level: float = DEFAULT_LEVEL, **options: Any
) -> Verdict:
    """Assert that ``theorem`` holds for ``model`` on the simulated ``runs`` at confidence ``level``.

    Returns the :class:`~queueing_llm.verdict.Verdict`; raises :class:`AssertionError`
    showing it when ``holds`` is False. A true statement fails with probability about
    ``1 - level`` (fixed seeds make the outcome reproducible).
    """
    verdict = verify(theorem, model, runs, level=level, **options)
    if not verdict.holds:
        raise AssertionError(_message(verdict, "hold"))
    return verdict


def assert_theorem_fails(
    theorem: Theorem | str, model: Any, runs: Any, level: float = DEFAULT_LEVEL, **options: Any
) -> Verdict:
    """Assert that the simulation rejects ``theorem`` (a negative control: a deliberately
    wrong statement, or a model outside the hypotheses, must be caught)."""
    verdict = verify(theorem, model, runs, level=level, **options)
    if verdict.holds is not False:
        raise AssertionError(_message(verdict, "fail"))
    return verdict


def _is_zero(expr: Any) -> bool:
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    for simplify in (sp.simplify, sp.cancel, sp.expand, sp.nsimplify):
        if simplify(expr) == 0:
            return True
    return False


def _parts(statement: Any) -> tuple[str, tuple]:
    if isinstance(statement, sp.Rel):
        return type(statement).__name__, (statement.lhs, statement.rhs)
    if isinstance(statement, sp.logic.boolalg.BooleanFunction):
        return type(statement).__name__, tuple(statement.args)
    return "Expr", (statement,)


def _equal(a: Any, b: Any) -> bool:
    kind_a, args_a = _parts(a)
    kind_b, args_b = _parts(b)
    if kind_a != kind_b or len(args_a) != len(args_b):
        return False
    if kind_a == "Expr":
        return _is_zero(args_a[0] - args_b[0])
    if isinstance(a, sp.Rel):
        return _is_zero(args_a[0] - args_b[0]) and _is_zero(args_a[1] - args_b[1])
    # And/Or of relations: every part of one equals some part of the other
    return all(any(_equal(x, y) for y in args_b) for x in args_a) and all(
        any(_equal(x, y) for x in args_a) for y in args_b
    )


def assert_statement_equals(theorem: Theorem | str, model: Any, expected: Any, **options: Any) -> sp.Basic:
    r"""Assert that the statement derived for ``model`` equals ``expected`` symbolically.

    Relations are compared side by side (:math:`\mathrm{simplify}(lhs_1 - lhs_2) = 0` and
    the same for the right-hand sides), conjunctions part by part. When the statement is
    a relation and ``expected`` a plain expression, ``expected`` is compared with the
    statement's right-hand side. Returns the statement.
    """
    statement = _theorem(theorem).statement(model, **options)
    target = sp.sympify(expected)
    if isinstance(statement, sp.Rel) and not isinstance(target, (sp.Rel, sp.logic.boolalg.BooleanFunction)):
        same = _is_zero(statement.rhs - target)
        shown = statement.rhs
    else:
        same = _equal(statement, target)
        shown = statement
    if not same:
        diff = ""
        if _parts(shown)[0] == "Expr" and _parts(target)[0] == "Expr":
            diff = f"\n  difference: {sp.simplify(shown - target)}"
        raise AssertionError(
            f"statement of {_theorem(theorem).name!r} differs from the expected one:\n"
            f"  derived:  {shown}\n  expected: {target}{diff}"
        )
    return statement


def replication_seeds(seed: int, replications: int) -> list[int]:
    """``replications`` independent integer seeds spawned from ``seed`` by
    :meth:`numpy.random.SeedSequence.spawn` (each child's first 64-bit state word)."""
    check_real("seed", seed, low=0, integer=True)
    check_real("replications", replications, low=1, integer=True)
    children = np.random.SeedSequence(int(seed)).spawn(int(replications))
    return [int(c.generate_state(1, dtype=np.uint64)[0]) for c in children]


def simulate_replications(
    model: Any,
    iterations: int,
    replications: int,
    seed: int,
    executor: Any = None,
    simulate: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> list:
    """Independent replications of ``model``: ``ql.simulate(model, iterations, seed=s_r, **kwargs)``
    for the seeds of :func:`replication_seeds`.

    Parameters
    ----------
    model : ContinuousBatching
    iterations : int
    replications : int >= 2
    seed : int >= 0
        Root seed; the same root gives the same runs.
    executor : concurrent.futures.Executor or None
        Runs the replications in parallel (``ProcessPoolExecutor``, a Dask client's
        executor, ...); None runs them one after another.
    simulate : callable or None
        The simulator (default ``queueing_llm.simulate``).
    **kwargs
        Passed to the simulator (``engine="fast"``, ``warmup=...``, ``saturated=True``, ...).
    """
    check_real("replications", replications, low=2, integer=True)
    if simulate is None:
        from .sim import simulate as simulate  # sim is below testing in the one-way flow
    if not callable(simulate):
        raise ModelError(f"simulate must be callable, got {describe(simulate)}")
    seeds = replication_seeds(seed, replications)
    if executor is None:
        return [simulate(model, iterations, seed=s, **kwargs) for s in seeds]
    futures = [executor.submit(simulate, model, iterations, seed=s, **kwargs) for s in seeds]
    return [f.result() for f in futures]


def _scale(value: Any, factor: Any, where: str) -> Any:
    if isinstance(value, bool) or value is None:
        raise ModelError(f"perturb: {where} is {describe(value)}, not a number to scale")
    if isinstance(value, dict):
        return {k: _scale(v, factor, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scale(v, factor, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, float):
        return value * float(factor)
    return sp.sympify(value) * factor


def _rational(factor: Any) -> Any:
    check_real("factor", factor, low=0.0, low_open=True)
    return sp.Rational(str(factor)) if isinstance(factor, float) else sp.nsimplify(factor)


def _apply(prediction: dict, quantity: Any, factor: Any) -> dict:
    out = dict(prediction)
    if callable(quantity):
        return quantity(out, factor)
    path = (quantity,) if isinstance(quantity, str) else tuple(quantity)
    if not path:
        raise ModelError("perturb: quantity must be a key, a non-empty path of keys/indices, or a callable")
    node: Any = out
    for depth, key in enumerate(path[:-1]):
        try:
            child = node[key]
        except (KeyError, IndexError, TypeError):
            raise ModelError(f"perturb: evaluate returned no {path[: depth + 1]!r}; keys: "
                             f"{sorted(map(str, node)) if isinstance(node, dict) else len(node)}") from None
        child = dict(child) if isinstance(child, dict) else list(child) if isinstance(child, (list, tuple)) else child
        node[key] = child
        node = child
    last = path[-1]
    try:
        value = node[last]
    except (KeyError, IndexError, TypeError):
        keys = sorted(map(str, node)) if isinstance(node, dict) else f"{len(node)} entries"
        shown = path[0] if len(path) == 1 else path
        raise ModelError(f"perturb: evaluate returned no {shown!r}; keys: {keys}") from None
    node[last] = _scale(value, factor, repr(path))
    return out


def perturb(theorem: Theorem | str, quantity: Any, factor: Any) -> Theorem:
    """A copy of ``theorem`` whose ``evaluate`` returns ``quantity`` multiplied by ``factor``.

    The copy is not registered; the check, the runs and the options are the original's,
    so ``verify(perturb(...), model, runs)`` measures the power of the check.

    Parameters
    ----------
    theorem : Theorem or str
    quantity : str, sequence or callable
        An ``evaluate`` key; a path of keys and list indices for nested values
        (``("contiguous", 3)``); or a callable ``(prediction, factor) -> prediction``.
        A dict or list value is scaled entry by entry.
    factor : float > 0
        Floats are turned into exact rationals (0.95 -> 19/20), so exact predictions stay
        exact.
    """
    thm = _theorem(theorem)
    f = _rational(factor)
    original = thm.evaluate_fn

    @functools.wraps(original)  # keeps the signature: the options split the same way
    def evaluate(model: Any, *args: Any, **kwargs: Any) -> dict:
        return _apply(original(model, *args, **kwargs), quantity, f)

    return dataclasses.replace(thm, evaluate_fn=evaluate)


def assert_detects(
    theorem: Theorem | str,
    model: Any,
    runs: Any,
    quantity: Any,
    /,
    factors: Sequence[float] = (0.95, 1.05),
    *,
    baseline: bool = True,
    **verify_kwargs: Any,
) -> list[Verdict]:
    """Assert that ``verify`` reports FAILS when ``quantity`` is scaled by each factor.

    The first four parameters are positional-only, so a check option named ``quantity``
    (e.g. ``quantity="p_empty"`` of ``stationary``) passes through ``verify_kwargs``.
    ``runs`` None builds the theorem's declared runs once (``seed`` and ``replications``
    from ``verify_kwargs``) and reuses them for every factor. With ``baseline=True`` (default)
    the unperturbed theorem must hold on the same runs, so the failures are due to the
    perturbation and not to the runs. Returns the verdicts of the perturbed copies.
    """
    thm = _theorem(theorem)
    if runs is None:
        building = ("level", "seed", "replications")
        ev, _ = thm.split_options({k: v for k, v in verify_kwargs.items() if k not in building})
        thm.evaluate(model, **ev)  # does-not-apply errors before building runs
        runs, _ = declared_runs(thm, model, seed=verify_kwargs.get("seed"),
                                **({"replications": verify_kwargs["replications"]} if "replications" in verify_kwargs
                                   else {}))
    # the runs are built: the options that build runs are not passed on with them
    kwargs = {k: v for k, v in verify_kwargs.items() if k not in ("seed", "replications")}
    if baseline:
        base = verify(thm, model, runs, **kwargs)
        if base.holds is not True:
            raise AssertionError(_message(base, "hold before the perturbation"))
    out = []
    for factor in factors:
        verdict = verify(perturb(thm, quantity, factor), model, runs, **kwargs)
        if verdict.holds is not False:
            raise AssertionError(
                f"{thm.name}: {quantity!r} scaled by {factor} was not detected\n" + _message(verdict, "fail"))
        out.append(verdict)
    return out


def detection_threshold(
    theorem: Theorem | str,
    model: Any,
    runs: Any,
    quantity: Any,
    /,
    side: str = "up",
    *,
    largest: float = 1.0,
    rtol: float = 1e-3,
    **verify_kwargs: Any,
) -> float:
    """The smallest relative error of ``quantity`` that ``verify`` detects on ``runs``.

    Bisection on the factor :math:`1 + e` (``side="up"``) or :math:`1 - e` (``"down"``),
    :math:`0 < e \\le` ``largest``, of :func:`perturb`: returns the smallest :math:`e` (to
    ``rtol``) for which the verdict FAILS, ``inf`` if even ``largest`` is not detected, 0
    if any change is (exact checks). The power of a check at the size of ``runs``.
    """
    if side not in ("up", "down"):
        raise ModelError(f"side must be 'up' or 'down', got {describe(side)}")
    thm = _theorem(theorem)
    sign = 1 if side == "up" else -1

    def caught(e: float) -> bool:
        return verify(perturb(thm, quantity, 1 + sign * e), model, runs, **verify_kwargs).holds is False

    if not caught(largest):
        return float("inf")
    if caught(rtol):
        lo, hi = 0.0, rtol
        if caught(1e-9):
            return 0.0
    else:
        lo, hi = rtol, largest
    while hi - lo > rtol * max(hi, 1e-12) and hi - lo > 1e-9:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if caught(mid) else (mid, hi)
    return hi
