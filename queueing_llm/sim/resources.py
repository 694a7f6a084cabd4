r"""Memory guard of a simulation, announced before the run starts (issue: resource limits).

:func:`estimate_memory` predicts the bytes a run will hold from the model's means and the
kept ``record``; :func:`check_memory` refuses, before any work, a run above the limit
with the number and the options that change it. The estimate is deliberately simple
(expected counts times measured bytes per item), an order of magnitude, not a bound:

* requests created :math:`R`: open systems :math:`N \sum_k \lambda_k` (a Poisson process
  in seconds times the longest iteration :math:`d_0 + d_1 M`); saturated input
  :math:`N b / E[l_1]` with :math:`b = \min(B, M/(E[l_0] + 1 + E[l_1]/2))` the saturated batch;
* per-iteration arrays: :math:`8 N (8K + 3)` bytes; per request :data:`BYTES_PER_REQUEST`;
* ``record="summary"`` (every engine): no per-iteration array and, per request, only those
  still waiting at the end, the growth of an overloaded queue,
  :math:`N \max(0, \lambda - \mu)` with :math:`\mu = b / E[l_1]` the most the batch
  serves per iteration; the Python loop and SimPy also hold the requests of the chunk they
  have not fed yet (:data:`~.streaming.CHUNK` iterations, counted twice: :math:`2 \cdot 4096 R / N`
  requests at most :math:`R`), so for a stable model the estimate does not depend on :math:`N`;
* the stage array of ``record="full"`` (and of a first access to ``Trajectory.batch``;
  kept by WAIT and Nested WAIT runs with ``record="iterations"`` too, since their stalls
  break the stage = iteration - admission identity it is rebuilt from; never with
  ``record="summary"``, which feeds the batch sizes to the summary as it goes):
  :math:`1.5 \times 8 N K S` bytes, :math:`S` the largest decode length (for an unbounded
  law the expected largest of :math:`R` draws, about :math:`E[l_1](1 + \ln R)`).

The default limit is half the machine's physical memory (:func:`default_memory_limit`);
``ql.simulate(..., memory_limit=bytes)`` sets another (``math.inf``: no guard).
"""

from __future__ import annotations

import math
import os
from typing import Any

from ..errors import ParameterError

__all__ = ["estimate_memory", "check_memory", "check_stage_array", "default_memory_limit", "MAX_ITERATIONS",
           "MAX_SATURATED_BATCH", "BYTES_PER_REQUEST"]

MAX_ITERATIONS = 10**12
"""Longest horizon accepted (at 10^7 iterations per second, about 28 hours)."""

MAX_SATURATED_BATCH = 10**7
"""Largest saturated batch (requests in the batch at once) a run accepts."""

BYTES_PER_REQUEST = {"numba": 160, "python": 420, "simpy": 600}
"""Bytes held per request created, by backend, with per-request records kept (measured on
the B = 256 model: about 110, 390 and 575 bytes, rounded up)."""


def default_memory_limit() -> float:
    """Half the machine's physical memory in bytes (4 GiB if it cannot be read)."""
    try:
        return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 4.0 * 2**30


def _gib(x: float) -> str:
    return f"{x / 2**30:.3g} GiB" if x >= 2**27 else f"{x / 2**20:.3g} MiB"


def _mean(law: Any) -> float:
    try:
        return float(law.mean_value())
    except Exception:  # noqa: BLE001 - a law without a finite numeric mean: no estimate from it
        return math.nan


def _limit(memory_limit: float | None) -> float:
    return default_memory_limit() if memory_limit is None else float(memory_limit)


def _rate_limit(model: Any, config: Any) -> float | None:
    """The rate of a rate-limited policy as a float (None for other policies or no number)."""
    from ..policies import RateLimited

    if not isinstance(model.policy, RateLimited):
        return None
    try:
        from .policies import admission_rule

        return float(admission_rule(model, config.M, config.B).rate)
    except Exception:  # noqa: BLE001 - a rate the engines refuse is reported by them
        return None


def _keeps_stage_array(model: Any, record: str) -> bool:
    """Whether the run stores the (N, K, S) stage array as it goes."""
    from .scheduling import is_scheduled

    return record == "full" or (record == "iterations" and is_scheduled(model))


def estimate_memory(config: Any, record: str, backend: str) -> dict[str, float]:
    """Predicted bytes of a run by component (``requests``, ``iterations``, ``stage_array``,
    ``total``) and the predicted counts (``requests_created``, ``saturated_batch``, ``stages``)."""
    model, N, K = config.model, config.iterations, config.model.K
    mean_prompt = max(_mean(t.prompt) for t in model.types)
    mean_decode = [max(_mean(t.decode), 1.0) for t in model.types]
    md = max(mean_decode)
    batch = 0.0
    if config.saturated:
        batch = config.B
        if not math.isinf(config.M):
            batch = min(batch, config.M / (min(_mean(t.prompt) for t in model.types) + 1))
        rate = _rate_limit(model, config)
        if rate is not None:  # at most rate + 1 admissions per iteration, each staying about E[l1]
            batch = min(batch, (rate + 1) * md)
        requests = N * min(batch, config.M / (mean_prompt + 1 + md / 2)) / md + batch
    else:
        rate = 0.0
        for t in model.types:
            if model.is_wall_clock and hasattr(t.arrivals, "rate"):
                M = config.M if not math.isinf(config.M) else (0 if math.isinf(config.B) else config.B * 2 * md)
                rate += float(t.arrivals.rate) * (config.d0 + config.d1 * M)
            else:
                rate += _mean(t.arrivals)
        requests = N * rate
    if math.isnan(requests):
        requests = 0.0
    # overload: the queue grows by (arrivals - the most the batch can serve) per iteration
    served = min(config.B, config.M / (mean_prompt + 1 + md / 2) if not math.isinf(config.M) else config.B) / md
    backlog = 0.0 if config.saturated or math.isnan(served) else max(0.0, requests / N - served) * N
    S = float(config.stages) if config.stages is not None else md * (1 + math.log(max(requests, 1.0)))
    streams = record == "summary"
    held = requests
    if streams:  # only the live requests (an overloaded queue grows with the horizon)
        from .streaming import CHUNK

        held = backlog + (min(requests, 2 * CHUNK * requests / N) if backend != "numba" else 0.0)
    out = {
        "requests_created": requests,
        "queue_growth": backlog,
        "saturated_batch": batch,
        "stages": S,
        "iterations": 0.0 if streams else 8.0 * N * (8 * K + 3),
        "requests": held * BYTES_PER_REQUEST[backend],
        "stage_array": 1.5 * 8 * N * K * S if _keeps_stage_array(model, record) else 0.0,
    }
    out["total"] = out["iterations"] + out["requests"] + out["stage_array"]
    return out


def check_token_range(config: Any) -> None:
    """Refuse a model whose KV memory in one iteration could exceed the 64-bit integers the
    engines count it in: with ``kv_capacity`` infinite, ``batch_cap`` times the largest
    request's tokens (its prompt alone if its decode length is unbounded) must stay below
    :math:`2^{62}`."""
    if not math.isinf(float(config.M)):
        return  # the memory is at most kv_capacity <= 2^53
    B = float(config.B)
    largest = 0.0
    for t in config.model.types:
        tokens = float(t.max_tokens)
        largest = max(largest, float(t.prompt.support_max) if math.isinf(tokens) else tokens)
    if not math.isinf(B) and B * largest >= 2.0**62:
        raise ParameterError(
            f"batch_cap = {B:g} requests of up to {largest:.6g} KV tokens could hold {B * largest:.3g} tokens in one "
            f"iteration, beyond the 64-bit counts of the simulation (2^62 = {2.0**62:.3g}); give a finite "
            "kv_capacity or a smaller batch_cap"
        )


def check_memory(config: Any, record: str, backend: str, memory_limit: float | None,
                 runs: int = 1) -> dict[str, float]:
    """Refuse (:class:`~queueing_llm.ParameterError`) a run whose estimate exceeds the limit;
    ``runs``: how many such runs are held at once (a replication set: all R when their
    trajectories are kept, one per worker with ``record="summary"``)."""
    N = config.iterations
    if N > MAX_ITERATIONS:
        raise ParameterError(
            f"iterations = {N} is above the longest horizon accepted, {MAX_ITERATIONS:.0e} (at 10^7 iterations "
            f"per second the run would take {N / 1e7 / 86400 / 365:.3g} years); use fewer iterations, or "
            "replications=R for more data"
        )
    check_token_range(config)
    est = estimate_memory(config, record, backend)
    if est["saturated_batch"] > MAX_SATURATED_BATCH:
        raise ParameterError(
            f"the saturated batch would hold about {est['saturated_batch']:.3g} requests (batch_cap = "
            f"{config.B:g}, kv_capacity = {config.M:g}), above {MAX_SATURATED_BATCH:.0e}; give a smaller "
            "kv_capacity or batch_cap"
        )
    limit = _limit(memory_limit)
    if est["total"] * runs > limit:
        parts = ", ".join(f"{k.replace('_', ' ')} {_gib(est[k])}" for k in ("iterations", "requests", "stage_array")
                          if est[k] > 0)
        hint = ("record='summary' (memory independent of the horizon)" if record != "summary"
                else "fewer iterations")
        if record == "full" and est["stage_array"] > 0:
            hint = "record='iterations' (no stage array) or " + hint
        held = f"{runs} replications of " if runs > 1 else ""
        fewer = ", fewer replications" if runs > 1 else ""
        raise ParameterError(
            f"simulate(..., record={record!r}) would run out of memory: it needs about "
            f"{_gib(est['total'] * runs)} for {held}{N} iterations "
            f"({parts}; about {est['requests_created']:.3g} requests), above the memory limit of "
            f"{_gib(limit)}; pass {hint}, fewer iterations{fewer}, or memory_limit= (bytes; math.inf: no guard)"
        )
    return est


def check_stage_array(N: int, K: int, S: int, memory_limit: float | None) -> None:
    """Refuse to build a stage array ``(N, K, S)`` above the memory limit."""
    need = 1.5 * 8 * N * K * S
    limit = _limit(memory_limit)
    if need > limit:
        raise ParameterError(
            f"the stage array Trajectory.batch ({N} iterations x {K} types x {S} stages) would need about "
            f"{_gib(need)}, above the memory limit of {_gib(limit)}; read batch_sizes / in_system instead, "
            "or simulate fewer iterations (memory_limit= in ql.simulate sets the limit)"
        )
