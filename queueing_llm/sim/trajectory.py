r"""What a run returns: per-iteration arrays and per-request records (MODEL.md section 2).

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


class Trajectory:
    r"""A simulated run of a :class:`~queueing_llm.model.ContinuousBatching` model.

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
        ``"events"`` or ``"fast"`` (both give the same trajectory for the same seed).
    initial_batch : tuple of tuple of int or None
    batch : int64 array (N, K, S)
        Stage counts :math:`x_{k,j}` after admission at iteration :math:`n`
        (:math:`S` = the largest decode length, or the largest one drawn if unbounded).
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
        batch: np.ndarray,
        queue: np.ndarray,
        memory: np.ndarray,
        arrivals: np.ndarray,
        admissions: np.ndarray,
        completions: np.ndarray,
        evictions: np.ndarray,
        rejections: np.ndarray,
        time: np.ndarray,
        requests: RequestRecords,
    ) -> None:
        self.model = model
        self.seed = seed
        self.iterations = iterations
        self.warmup = warmup
        self.saturated = saturated
        self.engine = engine
        self.initial_batch = initial_batch
        self.batch = batch
        self.queue = queue
        self.memory = memory
        self.arrivals = arrivals
        self.admissions = admissions
        self.completions = completions
        self.evictions = evictions
        self.rejections = rejections
        self.time = time
        self.requests = requests
        self.in_system = queue.sum(axis=1) + batch.sum(axis=(1, 2))

    def __repr__(self) -> str:
        mode = "saturated" if self.saturated else "open"
        return (
            f"Trajectory({self.iterations} iterations, {mode}, {len(self.requests)} requests, "
            f"seed={self.seed}, engine={self.engine!r})"
        )

    @property
    def kind(self) -> str:
        """``"saturated"`` or ``"open"``: the run kind of the :class:`queueing_llm.runs.Run` protocol."""
        return "saturated" if self.saturated else "open"

    @property
    def stages(self) -> int:
        """Size :math:`S` of the stage axis of :attr:`batch`."""
        return int(self.batch.shape[2])

    @property
    def batch_size(self) -> np.ndarray:
        """Batch members after admission at each iteration."""
        return self.batch.sum(axis=(1, 2))

    # -- summary -------------------------------------------------------------------
    def summary(self, warmup: int | None = None) -> dict[str, float]:
        r"""Long-run averages over the iterations :math:`n \ge` ``warmup``.

        Keys: ``throughput`` (completions per iteration), ``mean_queue``,
        ``mean_in_system``, ``mean_batch``, ``mean_memory`` (KV tokens),
        ``evictions_per_iteration``, ``arrivals_per_iteration``,
        ``rejections_per_iteration``, ``mean_sojourn`` (completion minus arrival iteration
        over the requests arrived at or after ``warmup`` that completed; ``nan`` if none);
        wall-clock runs add ``mean_latency``, ``mean_ttft`` and ``mean_tbt`` in seconds
        over the same requests (TBT over those with :math:`l_1 \ge 2`).
        """
        w = self.warmup if warmup is None else warmup
        check_real("warmup", w, low=0, high=self.iterations - 1, integer=True)
        w = int(w)
        span = self.iterations - w
        r = self.requests
        chosen = r.completed & ~r.initial & (r.arrival >= w)
        out = {
            "throughput": float(self.completions[w:].sum() / span),
            "mean_queue": float(self.queue[w:].sum(axis=1).mean()),
            "mean_in_system": float(self.in_system[w:].mean()),
            "mean_batch": float(self.batch_size[w:].mean()),
            "mean_memory": float(self.memory[w:].mean()),
            "evictions_per_iteration": float(self.evictions[w:].sum() / span),
            "arrivals_per_iteration": float(self.arrivals[w:].sum() / span),
            "rejections_per_iteration": float(self.rejections[w:].sum() / span),
            "mean_sojourn": _mean(r.sojourn[chosen]),
        }
        if self.model.is_wall_clock:
            out["mean_latency"] = _mean(r.latency[chosen])
            out["mean_ttft"] = _mean(r.ttft[chosen])
            tbt = r.tbt[chosen]
            out["mean_tbt"] = _mean(tbt[~np.isnan(tbt)])
        return out

    # -- provenance and export -------------------------------------------------------
    @property
    def metadata(self) -> dict[str, Any]:
        """What made this run: the model, the arguments, the versions (JSON-ready)."""
        import simpy
        import sympy

        from .. import __version__

        return {
            "model": self.model.to_dict(),
            "seed": self.seed,
            "iterations": self.iterations,
            "warmup": self.warmup,
            "saturated": self.saturated,
            "initial_batch": None if self.initial_batch is None else [list(r) for r in self.initial_batch],
            "engine": self.engine,
            "queueing_llm": __version__,
            "numpy": np.__version__,
            "sympy": sympy.__version__,
            "simpy": simpy.__version__,
            "python": platform.python_version(),
        }

    def to_csv(self, path: str | os.PathLike) -> tuple[Path, Path, Path]:
        """Write the run as long-format CSV files, each atomically (temporary file + rename).

        ``path`` gets the stage counts, one row per nonzero count:
        ``iteration,type,stage,count``. ``<stem>_flows.csv`` gets one row per iteration and
        type: ``iteration,type,queue,arrivals,admissions,completions,evictions,rejections,
        memory,time`` (memory and time are per iteration, repeated on each type's row).
        ``<stem>_meta.json`` gets :attr:`metadata`. Returns the three paths.
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
        meta_path = write_atomic(path.with_name(f"{stem}_meta.json"), json.dumps(self.metadata, indent=2) + "\n")
        return batch_path, flows_path, meta_path

    def equals(self, other: Trajectory) -> bool:
        """True if every array and every request record equals the other run's."""
        if not isinstance(other, Trajectory):
            raise ParameterError(f"can only compare with a Trajectory, got {type(other).__name__}")
        return all(np.array_equal(getattr(self, a), getattr(other, a)) for a in ARRAYS) and self.requests.equals(
            other.requests
        )


def _csv(header: str, rows: np.ndarray, formats: list[str]) -> str:
    buffer = io.StringIO()
    np.savetxt(buffer, rows, fmt=formats, delimiter=",", header=header, comments="")
    return buffer.getvalue()


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan
