"""One place where every engine's output becomes a :class:`Trajectory` of the requested ``record``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .trajectory import RequestRecords, Residences, Trajectory

__all__ = ["build_trajectory", "summary_trajectory"]


def build_trajectory(
    config: Any,
    backend: str,
    arrays: dict[str, np.ndarray],
    requests: RequestRecords,
    residences: Residences | None,
    stages: int,
    batch: np.ndarray | None = None,
) -> Trajectory:
    """``arrays``: queue, memory, arrivals, admissions, completions, evictions, rejections,
    time (and optionally batch_sizes). ``batch``: the stage array if the engine has it; else
    it is built from ``residences`` now (``record="full"``) or on first access. An engine that
    stalls members (WAIT policies) passes ``batch`` always: there a stage is not
    ``n - admission``, so residences cannot rebuild it."""
    record = config.record
    if record == "full" and batch is None:
        from .fast import stage_counts

        batch = stage_counts(*residences.arrays(), config.iterations, config.model.K, stages)
    run = Trajectory(
        **_run_fields(config, backend),
        batch=batch if (record == "full" or batch is not None) else None,  # stalls (WAIT): the engine's own
        residences=residences,
        stages=stages,
        requests=requests,
        record="full" if record == "full" else "iterations",
        **arrays,
    )
    if record == "summary":
        return summary_trajectory(config, backend, run._summary_accumulator(config.warmup))
    return run


def summary_trajectory(config: Any, backend: str, accumulator: Any) -> Trajectory:
    """A ``record="summary"`` trajectory holding only ``accumulator``."""
    return Trajectory(**_run_fields(config, backend), record="summary", accumulator=accumulator)


def _run_fields(config: Any, backend: str) -> dict[str, Any]:
    """The fields every trajectory of ``config`` carries, whatever it records."""
    return {"model": config.model, "seed": config.seed, "iterations": config.iterations, "warmup": config.warmup,
            "saturated": config.saturated, "engine": config.engine, "initial_batch": config.initial,
            "backend": backend, "memory_limit": config.memory_limit}
