r"""What a run returns: per-iteration arrays and per-request records (the model chapter, section 2).

Conventions. Iteration :math:`n` is *execute, arrive, evict, admit*; every per-iteration
array is observed after admission, every count is what happened during iteration
:math:`n`. A request admitted at iteration :math:`a` executes its stage 0 at
:math:`a + 1` (its first token) and, if never evicted, completes at :math:`a + l_1`; its
sojourn is its completion iteration minus its arrival iteration. Members of an initial
batch count as arrived and admitted at iteration 0 (``requests.initial`` marks them) and
are left out of the sojourn, latency, TTFT and TBT averages. Saturated runs count each
request taken from the infinite backlog as arriving (and admitted) at that iteration.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..model import ContinuousBatching
from ..numbers import check_real

__all__ = ["RequestRecords", "Trajectory"]


@dataclass(frozen=True, eq=False)
class RequestRecords:
    r"""One entry per request of a run, in request-id order (arrival order).

    Integer arrays (iteration numbers; ``-1`` for "never"): ``type``, ``prompt`` (tokens),
    ``decode`` (iterations), ``arrival``, ``admission`` (first admission), ``first_token``
    (the iteration executing its stage 0 for the first time), ``completion``, ``evicted``
    (times evicted). Float arrays (seconds in wall-clock runs, iteration numbers in slotted
    runs; ``nan`` for "never"): ``arrival_time``, ``first_token_time``, ``completion_time``.
    Boolean arrays: ``initial`` (member of the initial batch), ``rejected`` (turned away by
    the waiting-room cap).
    """

    type: np.ndarray
    prompt: np.ndarray
    decode: np.ndarray
    arrival: np.ndarray
    admission: np.ndarray
    first_token: np.ndarray
    completion: np.ndarray
    evicted: np.ndarray
    arrival_time: np.ndarray
    first_token_time: np.ndarray
    completion_time: np.ndarray
    initial: np.ndarray
    rejected: np.ndarray

    def __len__(self) -> int:
        return int(self.type.size)

    @classmethod
    def build(
        cls,
        *,
        type,
        prompt,
        decode,
        arrival,
        admission,
        first_token,
        completion,
        evicted,
        arrival_time,
        initial,
        rejected,
        time: np.ndarray,
    ) -> RequestRecords:
        """Assemble the records; token and completion times are read from ``time`` (the
        end of each iteration), ``0.0`` for a first token produced before iteration 0."""
        ints = {
            "type": type,
            "prompt": prompt,
            "decode": decode,
            "arrival": arrival,
            "admission": admission,
            "first_token": first_token,
            "completion": completion,
            "evicted": evicted,
        }
        arrays = {k: np.asarray(v, dtype=np.int64).reshape(-1) for k, v in ints.items()}
        initial = np.asarray(initial, dtype=bool).reshape(-1)
        first_token_time = _times(arrays["first_token"], time)
        completion_time = _times(arrays["completion"], time)
        return cls(
            **arrays,
            arrival_time=np.asarray(arrival_time, dtype=float).reshape(-1),
            first_token_time=first_token_time,
            completion_time=completion_time,
            initial=initial,
            rejected=np.asarray(rejected, dtype=bool).reshape(-1),
        )

    # -- derived quantities ---------------------------------------------------------
    @property
    def completed(self) -> np.ndarray:
        """Mask of the requests that completed within the run."""
        return self.completion >= 0

    @property
    def sojourn(self) -> np.ndarray:
        """Completion iteration minus arrival iteration (``nan`` if not completed)."""
        return np.where(self.completed, self.completion - self.arrival, np.nan)

    @property
    def latency(self) -> np.ndarray:
        """Completion time minus arrival time (seconds in wall-clock runs)."""
        return self.completion_time - self.arrival_time

    @property
    def ttft(self) -> np.ndarray:
        """Time to first token: first-token time minus arrival time."""
        return self.first_token_time - self.arrival_time

    @property
    def tbt(self) -> np.ndarray:
        r"""Mean time between tokens, :math:`(t_{\text{completion}} - t_{\text{first}})/(l_1 - 1)`
        (``nan`` for one-token requests and unfinished ones)."""
        gaps = np.where(self.decode > 1, self.decode - 1, np.nan)
        return (self.completion_time - self.first_token_time) / gaps

    def equals(self, other: RequestRecords) -> bool:
        """True if every array equals the other's (``nan`` equal to ``nan``)."""
        pairs = ((getattr(self, f.name), getattr(other, f.name)) for f in fields(self))
        return all(np.array_equal(a, b, equal_nan=a.dtype.kind == "f") for a, b in pairs)


def _times(iterations: np.ndarray, time: np.ndarray) -> np.ndarray:
    out = np.full(iterations.shape, np.nan)
    done = iterations >= 0
    out[done] = time[iterations[done]]
    return out


ARRAYS = ("batch", "queue", "memory", "arrivals", "admissions", "completions", "evictions", "rejections", "time")

RECORDS = ("full", "iterations", "summary")
"""What a run keeps (``simulate(..., record=...)``): see :class:`Trajectory`."""


class _Recorded:
    """An array the run keeps unless it was made with ``record="summary"``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj._arrays.get(self.name)
        if value is None:
            raise ParameterError(
                f"this run was simulated with record={obj.record!r} and keeps no {self.name!r}; "
                "pass record='iterations' (per-iteration arrays and request records) or record='full' "
                "to ql.simulate"
            )
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj._arrays[self.name] = value


class Residences:
    r"""Stays in the batch, from which the stage counts are rebuilt: one entry per stay of a
    type-``type`` request admitted at ``start`` (``-stage`` for an initial member) that left
    (completion or eviction) at ``end`` (:math:`N` if still there). With ``requests``, the
    stays that ended in a completion are read from the records (admitted at completion
    minus decode length) and the arrays hold only the others."""

    def __init__(self, type: np.ndarray, start: np.ndarray, end: np.ndarray,
                 requests: RequestRecords | None = None) -> None:
        self.type = np.asarray(type, dtype=np.int64)
        self.start = np.asarray(start, dtype=np.int64)
        self.end = np.asarray(end, dtype=np.int64)
        self.requests = requests

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All stays as (type, start, end)."""
        r = self.requests
        if r is None:
            return self.type, self.start, self.end
        done = np.flatnonzero(r.completion >= 0)
        comp = r.completion[done]
        return (np.concatenate([r.type[done], self.type]), np.concatenate([comp - r.decode[done], self.start]),
                np.concatenate([comp, self.end]))

    def batch_sizes(self, N: int, K: int) -> np.ndarray:
        """Batch members by type after admission at each iteration, ``(N, K)``."""
        t, a, e = self.arrays()
        a = np.maximum(a, 0)
        e = np.minimum(e, N)
        keep = e > a
        diff = np.zeros((N + 1) * K, dtype=np.int64)
        np.add.at(diff, a[keep] * K + t[keep], 1)
        np.add.at(diff, e[keep] * K + t[keep], -1)
        return np.cumsum(diff.reshape(N + 1, K)[:N], axis=0)


class Trajectory:
    r"""A simulated run of a :class:`~queueing_llm.model.ContinuousBatching` model.

    What it keeps depends on ``record`` (``ql.simulate(..., record=...)``):

    * ``"full"``: every array below and the request records;
    * ``"iterations"`` (the default): the same, but the stage array :attr:`batch` is
      rebuilt from the stays in the batch on first access (its size, :math:`8 N K S`
      bytes, is checked against the memory limit then);
    * ``"summary"``: no arrays and no records, only the streaming accumulators behind
      :meth:`summary`, :meth:`latency_quantiles` and :meth:`ci` (memory independent of the
      horizon); reading an array raises :class:`~queueing_llm.ParameterError` naming
      ``record=``.

    Attributes
    ----------
    model : ContinuousBatching
    seed : int
        The seed of ``numpy.random.default_rng`` (drawn and recorded if ``None`` was given).
    iterations : int
        Number of iterations :math:`N`.
    warmup : int
        Default warm-up deleted by :meth:`summary`.
    saturated : bool
    engine : str
        ``"events"``, ``"fast"`` or ``"python"`` (all give the same trajectory for the same seed).
    backend : str
        What executed the loop: ``"simpy"``, ``"numba"`` (the compiled kernel) or ``"python"``.
    record : str
        ``"full"``, ``"iterations"`` or ``"summary"``.
    initial_batch : tuple of tuple of int or None
    queue : int64 array (N, K)
        Requests waiting after admission (saturated runs: only evicted ones).
    memory : int64 array (N,)
        KV tokens :math:`\sum_{k,j} (l_0 + 1 + j)\, x_{k,j}` after admission.
    arrivals, admissions, completions, evictions, rejections : int64 arrays (N, K)
        Counts during iteration :math:`n`.
    time : float array (N,)
        End of iteration :math:`n` (seconds in wall-clock runs; :math:`n` in slotted runs).
    in_system : int64 array (N,)
        Waiting plus batch members after admission.
    requests : RequestRecords
    """

    queue = _Recorded()
    memory = _Recorded()
    arrivals = _Recorded()
    admissions = _Recorded()
    completions = _Recorded()
    evictions = _Recorded()
    rejections = _Recorded()
    time = _Recorded()
    requests = _Recorded()
    in_system = _Recorded()
    batch_sizes = _Recorded()

    def __init__(
        self,
        *,
        model: ContinuousBatching,
        seed: int,
        iterations: int,
        warmup: int,
        saturated: bool,
        engine: str,
        initial_batch: tuple | None,
        batch: np.ndarray | None = None,
        queue: np.ndarray | None = None,
        memory: np.ndarray | None = None,
        arrivals: np.ndarray | None = None,
        admissions: np.ndarray | None = None,
        completions: np.ndarray | None = None,
        evictions: np.ndarray | None = None,
        rejections: np.ndarray | None = None,
        time: np.ndarray | None = None,
        requests: RequestRecords | None = None,
        residences: Residences | None = None,
        stages: int | None = None,
        batch_sizes: np.ndarray | None = None,
        record: str = "full",
        accumulator: Any = None,
        backend: str | None = None,
        memory_limit: float | None = None,
    ) -> None:
        self._arrays: dict[str, Any] = {}
        self.model = model
        self.seed = seed
        self.iterations = iterations
        self.warmup = warmup
        self.saturated = saturated
        self.engine = engine
        self.backend = backend or ("simpy" if engine == "events" else "python")
        self.record = record
        self.initial_batch = initial_batch
        self._batch = batch
        self._residences = residences
        self._stages = stages if batch is None else int(batch.shape[2])
        self._accumulator = accumulator
        self._memory_limit = memory_limit
        self.requests_target: int | None = None  # set by simulate(..., requests=N): a fixed-workload run
        if record == "summary":
            return
        self.queue = queue
        self.memory = memory
        self.arrivals = arrivals
        self.admissions = admissions
        self.completions = completions
        self.evictions = evictions
        self.rejections = rejections
        self.time = time
        self.requests = requests
        if batch_sizes is None:
            if batch is not None:
                batch_sizes = batch.sum(axis=2)
            else:
                batch_sizes = residences.batch_sizes(iterations, model.K)
        self.batch_sizes = batch_sizes
        self.in_system = queue.sum(axis=1) + batch_sizes.sum(axis=1)

    def __repr__(self) -> str:
        mode = "saturated" if self.saturated else "open"
        count = f"{len(self.requests)} requests, " if self.record != "summary" else ""
        return (
            f"Trajectory({self.iterations} iterations, {mode}, {count}"
            f"seed={self.seed}, engine={self.engine!r}, record={self.record!r})"
        )

    @property
    def kind(self) -> str:
        """``"saturated"`` or ``"open"``: the run kind of the :class:`queueing_llm.runs.Run` protocol."""
        return "saturated" if self.saturated else "open"

    @property
    def batch(self) -> np.ndarray:
        r"""Stage counts :math:`x_{k,j}` after admission at iteration :math:`n`, an int64 array
        ``(N, K, S)`` (:math:`S` = the largest decode length, or the largest one drawn if
        unbounded); rebuilt on first access with ``record="iterations"``."""
        if self._batch is None:
            if self._residences is None:
                _Recorded.__get__(_BATCH, self)  # raises: record="summary"
            from .fast import stage_counts
            from .resources import check_stage_array

            N, K, S = self.iterations, self.model.K, self._stages
            check_stage_array(N, K, S, self._memory_limit)
            self._batch = stage_counts(*self._residences.arrays(), N, K, S)
        return self._batch

    @property
    def stages(self) -> int:
        """Size :math:`S` of the stage axis of :attr:`batch`."""
        if self._stages is None:
            _Recorded.__get__(_BATCH, self)  # raises: record="summary"
        return int(self._stages)

    @property
    def batch_size(self) -> np.ndarray:
        """Batch members after admission at each iteration."""
        return self.batch_sizes.sum(axis=1)

    # -- summary -------------------------------------------------------------------
    def _summary_accumulator(self, warmup: int | None) -> Any:
        from .summary import RunAccumulator

        w = self.warmup if warmup is None else warmup
        check_real("warmup", w, low=0, high=self.iterations - 1, integer=True)
        w = int(w)
        if self._accumulator is not None and w == self.warmup:
            return self._accumulator
        if self.record == "summary":
            raise ParameterError(
                f"this run was simulated with record='summary' and warmup={self.warmup}; its summary "
                f"cannot delete another warm-up ({w}): pass warmup={w} to ql.simulate, or record='iterations'"
            )
        acc = RunAccumulator(self.iterations, w, self.model.is_wall_clock)
        acc.add_iterations(self.completions, self.arrivals, self.rejections, self.evictions, self.queue,
                           self.batch_sizes, self.memory, self.time)
        r = self.requests
        step = 1 << 20  # requests per slice: bounded temporaries
        for lo in range(0, len(r), step):
            sl = slice(lo, lo + step)
            acc.add_requests(r.arrival[sl], r.completion[sl], r.decode[sl], r.evicted[sl], r.initial[sl],
                             r.arrival_time[sl], r.first_token_time[sl], r.completion_time[sl])
        if w == self.warmup:
            self._accumulator = acc
        return acc

    def summary(self, warmup: int | None = None) -> dict[str, float]:
        r"""Long-run averages over the iterations :math:`n \ge` ``warmup``; units in :meth:`summary_units`.

        Keys: ``throughput`` (completions per iteration; also ``throughput_per_iteration``),
        ``mean_queue``, ``mean_in_system``, ``mean_batch``, ``peak_batch`` (requests),
        ``mean_memory``, ``peak_memory`` (KV tokens), ``evictions_per_iteration``,
        ``arrivals_per_iteration``, ``rejections_per_iteration``, ``tokens_per_iteration``
        (batch members executed per iteration = tokens generated), ``mean_sojourn``
        (completion minus arrival iteration over the requests arrived at or after
        ``warmup`` that completed; ``nan`` if none), ``completed_requests`` and
        ``restarts_per_request`` (evictions per such request), ``latency_p50``,
        ``latency_p90``, ``latency_p99``, ``ttft_p50``, ``ttft_p90``, ``ttft_p99`` (inverted-CDF
        quantiles over the same requests; seconds in wall-clock runs, iterations otherwise).
        Wall-clock runs add, in seconds, ``mean_latency``, ``mean_ttft``, ``mean_tbt`` (TBT
        over requests with :math:`l_1 \ge 2`), ``mean_iteration_seconds``, and per second
        ``throughput_per_second`` (requests/s), ``tokens_per_second``, ``arrivals_per_second``
        (over the time from the end of iteration ``warmup - 1`` to the end of the run).
        A fixed-workload run (``simulate(..., requests=N)``) adds ``makespan`` (until the
        :math:`N`-th completion: the end of the last iteration in seconds in wall-clock runs,
        the number of iterations run otherwise) and ``requests_target`` (:math:`N`).
        """
        out = self._summary_accumulator(warmup).summary()
        if self.requests_target is not None:
            out["makespan"] = float(self.time[-1]) if self.model.is_wall_clock else float(self.iterations)
            out["requests_target"] = float(self.requests_target)
        return out

    def summary_units(self) -> dict[str, str]:
        """The unit of each key of :meth:`summary` (``"requests/iteration"``, ``"s"``, ...)."""
        from .summary import summary_units

        units = summary_units(self.model.is_wall_clock)
        if self.requests_target is not None:
            units["makespan"] = "s" if self.model.is_wall_clock else "iterations"
            units["requests_target"] = "requests"
        return units

    def latency_quantiles(self, levels: Any = (0.5, 0.9, 0.99), warmup: int | None = None,
                          which: str = "latency") -> np.ndarray:
        r"""Inverted-CDF quantiles of the latency (or ``which="ttft"``: the time to first
        token) over the requests of :meth:`summary` (seconds in wall-clock runs, iterations
        otherwise). Exact from the records; with ``record="summary"`` from the run's sketch
        (exact for iterations, within relative error 1e-3 for seconds). The ``latency_p*`` and
        ``ttft_p*`` keys of :meth:`summary` always come from the sketch, so every ``record``
        gives the same summary."""
        if which not in ("latency", "ttft"):
            raise ParameterError(f"which must be 'latency' or 'ttft', got {which!r}")
        if self.record == "summary":
            return getattr(self._summary_accumulator(warmup), which).quantiles(levels)
        from ..stats import QuantileSketch

        w = self.warmup if warmup is None else warmup
        check_real("warmup", w, low=0, high=self.iterations - 1, integer=True)
        r = self.requests
        chosen = r.completed & ~r.initial & (r.arrival >= int(w))
        values = getattr(r, which)[chosen]
        q = QuantileSketch().quantiles(levels)  # validates the levels
        if values.size == 0:
            return q
        return np.quantile(values, np.asarray(levels, dtype=float).reshape(-1), method="inverted_cdf")

    def ci(self, key: str = "in_system", level: float = 0.95, warmup: int | None = None) -> Any:
        """Batch-means confidence interval of a per-iteration mean (``key``: ``completions``,
        ``arrivals``, ``rejections``, ``evictions``, ``queue``, ``batch``, ``memory``,
        ``in_system``); available with every ``record``."""
        return self._summary_accumulator(warmup).ci(key, level)

    # -- provenance and export -------------------------------------------------------
    @property
    def metadata(self) -> dict[str, Any]:
        """What made this run: the model, the arguments, the versions (JSON-ready)."""
        from importlib.metadata import PackageNotFoundError, version

        import sympy

        try:
            simpy_version = version("simpy")
        except PackageNotFoundError:  # pragma: no cover - simpy is a dependency
            simpy_version = None

        from .. import __version__

        return {
            "model": self.model.to_dict(),
            "seed": self.seed,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "saturated": self.saturated,
            "initial_batch": None if self.initial_batch is None else [list(r) for r in self.initial_batch],
            "engine": self.engine,
            "backend": self.backend,
            "record": self.record,
            "requests": self.requests_target,
            "queueing_llm": __version__,
            "numpy": np.__version__,
            "sympy": sympy.__version__,
            "simpy": simpy_version,
            "python": platform.python_version(),
        }

    def to_csv(self, path: str | os.PathLike) -> tuple[Path, Path, Path, Path]:
        """Write the run as long-format CSV files, each atomically (temporary file + rename).

        ``path`` gets the stage counts, one row per nonzero count:
        ``iteration,type,stage,count``. ``<stem>_flows.csv`` gets one row per iteration and
        type: ``iteration,type,queue,arrivals,admissions,completions,evictions,rejections,
        memory,time`` (memory and time are per iteration, repeated on each type's row).
        ``<stem>_summary.csv`` gets :meth:`summary` (after the run's warm-up), one row per
        key: ``key,value,unit`` (latency and TTFT quantiles, restarts per request, peak
        memory, ...; units from :meth:`summary_units`). ``<stem>_meta.json`` gets
        :attr:`metadata`. Returns the four paths (stages, flows, summary, metadata).
        """
        from ..derivation import write_atomic

        path = Path(path)
        n, k, j = np.nonzero(self.batch)
        batch_rows = np.column_stack([n, k, j, self.batch[n, k, j]])
        batch_path = write_atomic(path, _csv("iteration,type,stage,count", batch_rows, ["%d"] * 4))
        N, K = self.iterations, self.model.K
        it = np.repeat(np.arange(N), K)
        columns = [it, np.tile(np.arange(K), N)]
        columns += [getattr(self, a).reshape(-1) for a in ("queue", "arrivals", "admissions", "completions")]
        columns += [getattr(self, a).reshape(-1) for a in ("evictions", "rejections")]
        columns += [self.memory[it], self.time[it]]
        header = "iteration,type,queue,arrivals,admissions,completions,evictions,rejections,memory,time"
        flows = _csv(header, np.column_stack(columns).astype(object), ["%d"] * 9 + ["%r"])
        stem = path.name[: -len(path.suffix)] if path.suffix else path.name
        flows_path = write_atomic(path.with_name(f"{stem}_flows.csv"), flows)
        units = self.summary_units()
        summary = "key,value,unit\n" + "".join(f"{k},{v!r},{units.get(k, '')}\n" for k, v in self.summary().items())
        summary_path = write_atomic(path.with_name(f"{stem}_summary.csv"), summary)
        meta_path = write_atomic(path.with_name(f"{stem}_meta.json"), json.dumps(self.metadata, indent=2) + "\n")
        return batch_path, flows_path, summary_path, meta_path

    def equals(self, other: Trajectory) -> bool:
        """True if every array and every request record equals the other run's."""
        if self.record == "summary" or getattr(other, "record", None) == "summary":
            raise ParameterError("runs made with record='summary' keep no arrays to compare")
        if not isinstance(other, Trajectory):
            raise ParameterError(f"can only compare with a Trajectory, got {type(other).__name__}")
        arrays = (*ARRAYS, "batch_sizes")  # batch_sizes is kept apart from the stage array: compared too
        return all(np.array_equal(getattr(self, a), getattr(other, a)) for a in arrays) and self.requests.equals(
            other.requests
        )


_BATCH = _Recorded()
_BATCH.name = "batch"


def _csv(header: str, rows: np.ndarray, formats: list[str]) -> str:
    buffer = io.StringIO()
    np.savetxt(buffer, rows, fmt=formats, delimiter=",", header=header, comments="")
    return buffer.getvalue()


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan
