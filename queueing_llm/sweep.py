r"""Parameter sweeps: a grid of models, simulated and checked point by point, on any executor.

.. code-block:: python

    import queueing_llm as ql
    from concurrent.futures import ProcessPoolExecutor

    def build(rate):
        t = ql.RequestType(2, ql.Geometric(0.25), arrivals=rate)
        return ql.ContinuousBatching(t, batch_cap=8, policy="fcfs_cap")

    points = ql.grid(rate=[0.5, 1.0, 1.5])
    with ProcessPoolExecutor(2) as pool:
        result = ql.sweep(build, points, iterations=20_000, replications=4, seed=1,
                          theorems=("stability", "stationary"), executor=pool)
    result.to_csv("sweep.csv")

Reproducibility
---------------
Point :math:`i` (its position in ``points``) and replication :math:`r` run with the seed
drawn from ``numpy.random.SeedSequence(seed, spawn_key=(i, r))`` -- the :math:`r`-th
child of the :math:`i`-th child of ``SeedSequence(seed)`` (:meth:`~numpy.random.SeedSequence.spawn`),
so the streams are statistically independent and a point's results depend only on
``seed``, its index and the options: not on the executor, the number of workers, the
order in which points finish, or the points after it.

Executors
---------
``executor`` is any :class:`concurrent.futures.Executor`: ``ThreadPoolExecutor``,
``ProcessPoolExecutor``, or a Dask client's ``client.get_executor()``. The models are
built in the calling process (so ``build_model`` may be a lambda or a closure) and sent to
the workers with the point's seeds and options; a worker runs the top-level function
:func:`run_point`, which needs only picklable arguments (models, laws and policies are
immutable, picklable values). Theorems travel by registry name: a theorem registered by
the user must be registered in the workers too (import the module that registers it at
the top of the script, which process workers import again under the ``spawn`` and
``forkserver`` start methods).
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import numbers
import os
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from .atomic import atomic_files, write_atomic
from .errors import ModelError, ParameterError, describe
from .model import ContinuousBatching
from .numbers import check_real
from .report.tables import TEXT_WIDTH, to_csv, to_latex, to_markdown
from .stats import DEFAULT_LEVEL, replications_ci
from .theorems import theorems as registry
from .verify import verify

__all__ = ["grid", "sweep", "point_seeds", "run_point", "SweepResult", "CI_QUANTITIES"]

CI_QUANTITIES = ("throughput", "mean_in_system")
"""Summary quantities that get a replication interval (columns ``<q>_ci_low``, ``<q>_ci_high``)."""


# -- the grid ------------------------------------------------------------------------------


def grid(**axes: Iterable[Any]) -> list[dict[str, Any]]:
    r"""The cartesian product of the axes as a list of points (dicts).

    ``grid(a=[1, 2], b=["x", "y"])`` is ``[{"a": 1, "b": "x"}, {"a": 1, "b": "y"},
    {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]``: the axes in the order given, the last one
    varying fastest (:func:`itertools.product`), so the order is deterministic and the
    size is :math:`\prod_a |a|`.

    Parameters
    ----------
    **axes : iterable
        Axis name -> the values it takes (a list, tuple, range or array; a single value
        must be wrapped in a list; strings are refused, since they are iterables of letters).

    Raises
    ------
    ParameterError
        No axes, an empty axis, or an axis that is not a sequence of values.
    """
    if not axes:
        raise ParameterError("grid needs at least one axis, e.g. grid(rate=[0.5, 1.0]); got none (an empty grid)")
    values: dict[str, list[Any]] = {}
    for name, axis in axes.items():
        if isinstance(axis, (str, bytes, Mapping)) or not isinstance(axis, Iterable):
            raise ParameterError(
                f"grid axis {name!r} must be a sequence of values (wrap a single value in a list), got {describe(axis)}"
            )
        values[name] = list(axis)
        if not values[name]:
            raise ParameterError(f"grid axis {name!r} is empty, so the grid is empty; give it at least one value")
    names = list(values)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(values[n] for n in names))]


# -- seeds ---------------------------------------------------------------------------------


def point_seeds(seed: int, index: int, replications: int) -> list[int]:
    r"""The integer seeds of the replications of point ``index``.

    Seed :math:`r` is the first 64-bit word of ``SeedSequence(seed, spawn_key=(index, r))``,
    i.e. of ``SeedSequence(seed).spawn(n)[index].spawn(R)[r]`` for any :math:`n > index`
    (NumPy's :meth:`~numpy.random.SeedSequence.spawn`): independent streams that do not
    depend on how many points there are or where they run.
    """
    check_real("seed", seed, low=0, integer=True)
    check_real("index", index, low=0, integer=True)
    check_real("replications", replications, low=1, integer=True)
    return [
        int(np.random.SeedSequence(int(seed), spawn_key=(int(index), r)).generate_state(1, dtype=np.uint64)[0])
        for r in range(int(replications))
    ]


# -- one point (runs in a worker) ----------------------------------------------------------


def _as_cell(value: Any) -> Any:
    """An ``evaluate`` value as a table cell: numbers as floats (``oo`` -> ``inf``), booleans
    as bool, ``None`` and text unchanged, anything else (symbolic expressions, lists) as text."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, sp.logic.boolalg.BooleanAtom):
        return bool(value)
    if isinstance(value, sp.Basic):
        if value.is_number and value.is_extended_real:
            return float(value)
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def run_point(
    model: ContinuousBatching,
    point: Mapping[str, Any],
    seeds: Sequence[int],
    iterations: int,
    warmup: int,
    engine: str,
    theorem_names: Sequence[str],
    level: float = DEFAULT_LEVEL,
) -> dict[str, Any]:
    r"""One row of a sweep: simulate, summarise, evaluate and verify (the worker's job).

    Runs ``simulate(model, iterations, seed=s, warmup=warmup, engine=engine)`` for each
    seed in ``seeds``; the summary columns are the means over the :math:`R` runs of
    :meth:`~queueing_llm.sim.Trajectory.summary`; with :math:`R \ge 2`, the quantities of
    :data:`CI_QUANTITIES` get the Student interval
    :math:`\bar Y \pm t_{R-1,(1+c)/2} S/\sqrt R` (:func:`~queueing_llm.stats.replications_ci`,
    Law 2015, eq. (9.1)) as ``<q>_ci_low`` and ``<q>_ci_high``. For each theorem name:
    ``<name>.<key>`` for each value of its ``evaluate(model)``, and if it has a check the
    verdict of :func:`~queueing_llm.verify.verify` against the runs (``<name>.holds``: True,
    False, or None when the runs violate a hypothesis; ``<name>.status``, ``<name>.theory``,
    ``<name>.estimate``); a theorem that does not apply to the model
    gives ``<name>.skipped`` with the reason.

    A top-level function with picklable arguments, so any executor can run it.
    """
    from .sim import simulate  # sim is below sweep in the one-way flow

    runs = [simulate(model, iterations, seed=int(s), warmup=warmup, engine=engine) for s in seeds]
    summaries = [run.summary() for run in runs]
    row: dict[str, Any] = dict(point)
    for key in summaries[0]:
        row[key] = float(np.mean([s[key] for s in summaries]))
    if len(runs) >= 2:
        for key in CI_QUANTITIES:
            iv = replications_ci([s[key] for s in summaries], level)
            row[f"{key}_ci_low"] = float(iv.low)
            row[f"{key}_ci_high"] = float(iv.high)
    for name in theorem_names:
        thm = registry[name]
        reason = thm.applies(model)
        if reason is not None:
            row[f"{name}.skipped"] = f"does not apply: {reason}"
            continue
        values = thm.evaluate(model)
        if not isinstance(values, Mapping):
            raise ModelError(f"evaluate of theorem {name!r} must return a dict, got {describe(values)}")
        for key, value in values.items():
            row[f"{name}.{key}"] = _as_cell(value)
        if thm.check_fn is not None:
            verdict = verify(thm, model, runs if len(runs) > 1 else runs[0], level=level)
            row[f"{name}.holds"] = verdict.holds  # None: the run violates a hypothesis (does not apply)
            row[f"{name}.status"] = verdict.status
            row[f"{name}.theory"] = float(verdict.theory)
            row[f"{name}.estimate"] = float(verdict.estimate)
    return row


# -- the result ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    """The rows of a sweep, one per point, in the order of the points.

    Attributes
    ----------
    rows : list of dict
        The point's keys first, then the summary means, the replication intervals and the
        theorem columns (see :func:`run_point`); a column a row lacks is ``None``.
    point_keys : tuple of str
        The point's keys (the swept parameters).
    metadata : dict
        What made the rows: options, root seed, per-point seeds, versions (JSON-ready).
    """

    rows: list[dict[str, Any]]
    point_keys: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Every column, in order of first appearance (point keys first)."""
        seen: dict[str, None] = dict.fromkeys(self.point_keys)
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        """The values of one column, one per point (``None`` where a row lacks it)."""
        if name not in self.columns:
            raise ParameterError(f"no column {name!r}; columns are {self.columns}")
        return [row.get(name) for row in self.rows]

    def _full_rows(self, columns: Sequence[str]) -> list[dict[str, Any]]:
        return [{c: row.get(c) for c in columns} for row in self.rows]

    def _columns(self, columns: Sequence[str] | None) -> list[str]:
        if columns is None:
            return self.columns
        if isinstance(columns, str):
            raise ParameterError(f"columns must be a sequence of column names, got the string {columns!r}")
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise ParameterError(f"no column {unknown[0]!r}; columns are {self.columns}")
        return list(columns)

    def to_csv(self, path: str | os.PathLike, columns: Sequence[str] | None = None,
               metadata: bool = True) -> Path:
        """Write the rows as CSV atomically (:func:`queueing_llm.report.tables.to_csv`);
        with ``metadata`` also ``<path>.json`` (what made them), atomically. Returns the path."""
        cols = self._columns(columns)
        if not metadata:
            return to_csv(self._full_rows(cols), path, cols)
        with atomic_files(path, f"{os.fspath(path)}.json") as (csv_tmp, json_tmp):  # both or neither
            to_csv(self._full_rows(cols), csv_tmp, cols)
            write_atomic(json_tmp, json.dumps(self.metadata, indent=2, default=str) + "\n")
        return Path(path)

    def to_markdown(self, columns: Sequence[str] | None = None, digits: int = 6, *,
                    headers: Mapping[str, str] | None = None) -> str:
        """A Markdown table of the rows (:func:`queueing_llm.report.tables.to_markdown`);
        ``headers`` maps column names to header text (default: the column names)."""
        cols = self._columns(columns)
        return to_markdown(self._full_rows(cols), cols, digits=digits, headers=self._headers(cols, headers, False))

    def to_latex(self, columns: Sequence[str] | None = None, caption: str | None = None,
                 digits: int = 6, label: str | None = None, *, headers: Mapping[str, str] | None = None,
                 siunitx: bool = False, longtable: bool = False, widths: Mapping[str, str] | None = None,
                 size: str | None = None, text_width: float | None = TEXT_WIDTH) -> str:
        r"""A booktabs table of the rows (:func:`queueing_llm.report.tables.to_latex`).

        Headers default to readable words (``throughput_ci_low`` -> ``throughput CI low``,
        ``stationary.mean_in_system`` -> ``stationary: mean in system``; stacked when wider
        than the numbers); ``headers`` overrides them per column (``$...$`` is math: ``{"rate":
        r"$\lambda$"}``). ``siunitx=True`` aligns the numbers on the decimal point (``S``
        columns), ``longtable=True`` lets the table break across pages. Text columns
        with long cells (a theorem's reason for not applying) wrap in ``p{3.5cm}``
        columns unless ``widths`` says otherwise. A table wider than ``text_width`` pt is
        split into parts, each repeating the swept parameters (:attr:`point_keys`).
        Infinite values print as :math:`\infty`.
        """
        cols = self._columns(columns)
        rows = self._full_rows(cols)
        if widths is None:
            widths = {c: "3.5cm" for c in cols
                      if any(isinstance(r[c], str) and len(r[c]) > 24 for r in rows)}
        return to_latex(rows, cols, caption, digits=digits, label=label, headers=self._headers(cols, headers, True),
                        siunitx=siunitx, longtable=longtable, widths=widths, size=size, text_width=text_width,
                        repeat=[c for c in self.point_keys if c in cols])

    def _headers(self, cols: Sequence[str], headers: Mapping[str, str] | None, readable: bool) -> dict[str, str]:
        if headers is not None and not isinstance(headers, Mapping):
            raise ParameterError(f"headers must be a dict from column names to header text, got {describe(headers)}")
        unknown = [c for c in (headers or {}) if c not in cols]
        if unknown:
            raise ParameterError(f"headers name the column {unknown[0]!r}, not shown; columns are {list(cols)}")
        out = {c: _header(c) for c in cols} if readable else {}
        out.update(headers or {})
        return out


def _header(column: str) -> str:
    """A column name as header words (``_`` -> space, ``.`` -> ``: ``, ``ci`` -> ``CI``)."""
    words = column.replace(".", ": ").replace("_", " ").split(" ")
    return " ".join("CI" if w == "ci" else w for w in words)


# -- the sweep -----------------------------------------------------------------------------


def _check_points(points: Any) -> list[dict[str, Any]]:
    if isinstance(points, (str, bytes, Mapping)) or not isinstance(points, Iterable):
        raise ParameterError(f"points must be a list of dicts (e.g. ql.grid(rate=[...])), got {describe(points)}")
    out = list(points)
    if not out:
        raise ParameterError("points is empty (an empty grid): give at least one point")
    for i, p in enumerate(out):
        if not isinstance(p, Mapping) or not all(isinstance(k, str) for k in p):
            raise ParameterError(f"points[{i}] must be a dict of keyword arguments of build_model, got {describe(p)}")
    return [dict(p) for p in out]


def _check_theorems(names: Any) -> tuple[str, ...]:
    if isinstance(names, str):
        raise ParameterError(f"theorems must be a sequence of registry names, got the string {names!r}; "
                             f"write theorems=({names!r},)")
    if not isinstance(names, Iterable):
        raise ParameterError(f"theorems must be a sequence of registry names, got {describe(names)}")
    out = tuple(names)
    for name in out:
        if not isinstance(name, str):
            raise ParameterError(f"theorems must hold registry names (str), got {describe(name)}")
        registry[name]  # unknown names raise UnknownTheoremError listing the known ones
    return out


def _versions() -> dict[str, str]:
    from . import __version__

    return {"queueing_llm": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "sympy": sp.__version__}


def sweep(
    build_model: Callable[..., ContinuousBatching],
    points: Sequence[Mapping[str, Any]],
    *,
    iterations: int,
    seed: int = 0,
    replications: int = 1,
    warmup: int = 0,
    engine: str = "fast",
    theorems: Sequence[str] = (),
    executor: cf.Executor | None = None,
    progress: Callable[[int, int], Any] | None = None,
    level: float = DEFAULT_LEVEL,
) -> SweepResult:
    r"""Simulate and check a model at every point of a parameter grid.

    For point :math:`i` the model is ``build_model(**points[i])``; it is simulated
    ``replications`` times, :math:`R`, with the seeds of :func:`point_seeds` (``seed``,
    :math:`i`, :math:`R`), and :func:`run_point` turns the runs into a row: the mean over
    the runs of each :meth:`~queueing_llm.sim.Trajectory.summary` quantity, replication
    intervals :math:`\bar Y \pm t_{R-1,(1+c)/2} S/\sqrt R` of :data:`CI_QUANTITIES` when
    :math:`R \ge 2` (Law 2015, eq. (9.1)), and each named theorem's ``evaluate`` values and
    verdict (:func:`~queueing_llm.verify.verify`). Sources: the theorems' own sources.

    Parameters
    ----------
    build_model : callable ``(**point) -> ContinuousBatching``
        Called in this process (it need not be picklable); the models it returns travel
        to the workers.
    points : sequence of dict
        Keyword arguments of ``build_model``, e.g. :func:`grid`'s result.
    iterations : int >= 1
        Iterations per run.
    seed : int >= 0
        Root seed of the whole sweep.
    replications : int >= 1
        Independent runs per point.
    warmup : int
        Iterations deleted by the summaries (and by the checks' estimates), from 0 to
        ``iterations - 1``.
    engine : {"fast", "events"}
        Simulator engine (same trajectories for the same seed).
    theorems : sequence of str
        Registry names (``("stability", "stationary")``).
    executor : concurrent.futures.Executor or None
        Where the points run (``ProcessPoolExecutor(2)``, ``client.get_executor()`` of
        Dask, ...); ``None`` runs them here, one after another. The rows do not depend on it.
    progress : callable or None
        ``progress(done, total)`` after each finished point (in this process).
    level : float in (0, 1)
        Confidence level of the intervals and verdicts.

    Returns
    -------
    SweepResult

    Raises
    ------
    ModelError
        (``ParameterError`` or ``UnknownTheoremError``) naming the bad argument: an empty
        ``points``, ``iterations`` or ``replications`` below 1, a bad ``warmup``,
        ``engine`` or ``level``, an unknown theorem (the message lists the known ones),
        a ``build_model`` that is not callable or returns no model, an ``executor``
        without ``submit``. Errors inside a point (in a worker) propagate unchanged.
    """
    from .sim import ENGINES

    if not callable(build_model):
        raise ParameterError(f"build_model must be callable as build_model(**point), got {describe(build_model)}")
    pts = _check_points(points)
    check_real("iterations", iterations, low=1, integer=True)
    check_real("replications", replications, low=1, integer=True)
    check_real("seed", seed, low=0, integer=True)
    check_real("warmup", warmup, low=0, high=int(iterations) - 1, integer=True)
    check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {', '.join(ENGINES)}, got {describe(engine)}")
    names = _check_theorems(theorems)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ParameterError(f"executor must be a concurrent.futures.Executor (with submit) or None, "
                             f"got {describe(executor)}")
    if progress is not None and not callable(progress):
        raise ParameterError(f"progress must be callable as progress(done, total) or None, got {describe(progress)}")

    models = []
    for i, p in enumerate(pts):
        model = build_model(**p)
        if not isinstance(model, ContinuousBatching):
            raise ParameterError(f"build_model(**points[{i}]) must return a ContinuousBatching, got {describe(model)}")
        models.append(model)
    seeds = [point_seeds(seed, i, replications) for i in range(len(pts))]
    args = [(models[i], pts[i], seeds[i], int(iterations), int(warmup), engine, names, level) for i in range(len(pts))]

    total = len(pts)
    rows: list[dict[str, Any] | None] = [None] * total
    if executor is None:
        for i, a in enumerate(args):
            rows[i] = run_point(*a)
            if progress is not None:
                progress(i + 1, total)
    else:
        futures = {executor.submit(run_point, *a): i for i, a in enumerate(args)}
        try:
            for done, fut in enumerate(cf.as_completed(futures), start=1):
                rows[futures[fut]] = fut.result()
                if progress is not None:
                    progress(done, total)
        finally:
            for fut in futures:
                fut.cancel()
    keys = tuple(dict.fromkeys(k for p in pts for k in p))
    metadata = {
        "build_model": getattr(build_model, "__qualname__", repr(build_model)),
        "points": pts,
        "models": [m.to_dict() for m in models],
        "iterations": int(iterations),
        "seed": int(seed),
        "replications": int(replications),
        "point_seeds": seeds,
        "warmup": int(warmup),
        "engine": engine,
        "theorems": list(names),
        "level": float(level),
        "versions": _versions(),
    }
    return SweepResult([r for r in rows if r is not None], keys, metadata)

