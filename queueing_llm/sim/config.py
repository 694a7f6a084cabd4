r"""Validation of :func:`queueing_llm.simulate`'s arguments and the numeric parameters of a run.

Everything the engines need as plain Python numbers (``M``, ``B``, the waiting cap,
``d0``, ``d1``) is computed here once, so both engines read the same values.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ParameterError, SymbolicValueError, describe
from ..laws import Law
from ..model import ContinuousBatching, PoissonProcess
from ..numbers import check_real, is_infinite, is_symbolic, to_float
from ..policies import FcfsCap, RateLimited

__all__ = ["ENGINES", "RECORDS", "RunConfig", "prepare"]

ENGINES = ("events", "fast", "python")
"""``"events"``: the SimPy reference; ``"fast"``: the compiled kernel where it applies, else
the Python fast loop; ``"python"``: always the Python fast loop."""

RECORDS = ("full", "iterations", "summary")


@dataclass(frozen=True)
class RunConfig:
    """The validated arguments of one run with the model's parameters as Python numbers.

    Attributes
    ----------
    M, B, waiting_cap : int or float
        KV budget, batch cap and waiting-room cap (``math.inf`` when unlimited).
    d0, d1 : float
        Iteration time ``d0 + d1 Z`` in seconds (wall-clock runs; ``None`` if slotted).
    initial : tuple of tuple of int or None
        Stage counts of the initial batch, one tuple per type.
    first : int
        First iteration the loop executes (1 with an initial batch, else 0).
    stages : int or None
        The largest decode length when finite (the size of the stage axis), else None.
    progress : callable or None
        Called as ``progress(done, total)`` every :attr:`progress_step` iterations and at the end.
    """

    model: ContinuousBatching
    iterations: int
    seed: int
    saturated: bool
    warmup: int
    engine: str
    initial: tuple[tuple[int, ...], ...] | None
    M: float
    B: float
    waiting_cap: float
    wall_clock: bool
    d0: float | None
    d1: float | None
    stages: int | None
    progress: Callable[[int, int], Any] | None = None
    record: str = "iterations"
    memory_limit: float | None = None

    @property
    def progress_step(self) -> int:
        """Iterations between two calls of ``progress`` (about 200 calls per run)."""
        return max(1, self.iterations // 200)

    @property
    def K(self) -> int:
        return self.model.K

    @property
    def first(self) -> int:
        return 0 if self.initial is None else 1


def _number(value: Any) -> float:
    """A finite integer value as int, inf as math.inf, other reals as float."""
    if is_infinite(value):
        return math.inf
    v = to_float(value)
    return int(v) if v == int(v) else v


def _check_numeric(model: ContinuousBatching) -> None:
    named: list[tuple[str, Any]] = [
        ("kv_capacity", model.kv_capacity),
        ("batch_cap", model.batch_cap),
        ("waiting_cap", model.waiting_cap),
    ]
    for k, t in enumerate(model.types):
        named.append((f"types[{k}].prompt", t.prompt))
        named.append((f"types[{k}].decode", t.decode))
        if isinstance(t.arrivals, PoissonProcess):
            named.append((f"types[{k}] PoissonProcess rate", t.arrivals.rate))
        elif t.arrivals is not None:
            named.append((f"types[{k}].arrivals", t.arrivals))
    for k, p in enumerate(model.proportions):
        named.append((f"mix[{k}]", p))
    if model.iteration_time is not None:
        named.append(("iteration_time d0", model.iteration_time.d0))
        named.append(("iteration_time d1", model.iteration_time.d1))
    if isinstance(model.policy, RateLimited) and model.policy.rate is not None:
        named.append(("rate_limited rate", model.policy.rate))
    for name, value in named:
        symbolic = value.is_symbolic if isinstance(value, Law) else is_symbolic(value)
        if symbolic:
            raise SymbolicValueError(
                f"{name} = {describe(value)} is symbolic; simulate needs numbers (substitute the symbols first)"
            )


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        bound = f"[{low}, {high}]" if high is not None else f"[{low}, inf)"
        raise ParameterError(f"{name} must be an integer in {bound}, got {describe(value)}")
    check_real(name, value, low=low, high=high, integer=True)
    return int(value)


def _initial_batch(model: ContinuousBatching, initial_batch: Any, B: float) -> tuple[tuple[int, ...], ...]:
    K = model.K
    if isinstance(initial_batch, np.ndarray):
        initial_batch = initial_batch.tolist()
    if not isinstance(initial_batch, Sequence) or isinstance(initial_batch, str):
        raise ParameterError(
            "initial_batch must be a list of stage counts (a list of lists for several types), "
            f"got {describe(initial_batch)}"
        )
    rows: list[Any]
    nested = len(initial_batch) > 0 and all(
        isinstance(r, (Sequence, np.ndarray)) and not isinstance(r, str) for r in initial_batch
    )
    if K == 1 and not nested:
        rows = [initial_batch]
    elif nested and len(initial_batch) == K:
        rows = [list(r) for r in initial_batch]
    else:
        what = "a list of stage counts" if K == 1 else f"a list of {K} lists of stage counts (one per type)"
        raise ParameterError(f"initial_batch must be {what}, got {describe(initial_batch)}")
    out = []
    for k, row in enumerate(rows):
        limit = model.types[k].decode.support_max
        where = "initial_batch" if K == 1 else f"initial_batch[{k}]"
        if len(row) > limit:
            raise ParameterError(
                f"{where} has {len(row)} stages but type {k}'s decode length is at most {limit:g} "
                f"(stages 0..{limit - 1:g}); got {describe(list(row))}"
            )
        counts = []
        for j, c in enumerate(row):
            if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 0:
                raise ParameterError(f"{where}[{j}] must be an integer >= 0 (a stage count), got {describe(c)}")
            counts.append(int(c))
        out.append(tuple(counts))
    members = sum(sum(r) for r in out)
    if members > B:
        raise ParameterError(f"initial_batch holds {members} requests, above batch_cap = {B:g}")
    M = _number(model.kv_capacity)
    if all(t.prompt.support_min == t.prompt.support_max for t in model.types):
        tokens = sum(
            c * (int(model.types[k].prompt.support_min) + 1 + j) for k, r in enumerate(out) for j, c in enumerate(r)
        )
        if tokens > M:
            raise ParameterError(f"initial_batch holds {tokens} KV tokens, above kv_capacity = {M:g}")
    return tuple(out)


def resolve_seed(seed: Any) -> Any:
    """An integer seed from what ``simulate`` accepts: an int (or None) as given; a
    :class:`numpy.random.SeedSequence` gives the integer it generates, a
    :class:`numpy.random.Generator` an integer drawn from it (either is recorded in the run as
    that integer, so the run can be repeated with it)."""
    if isinstance(seed, np.random.SeedSequence):
        return int(seed.generate_state(2, dtype=np.uint64)[0] % (2**63))
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63))
    return seed


def prepare(
    model: Any,
    iterations: Any,
    seed: Any,
    saturated: Any,
    initial_batch: Any,
    warmup: Any,
    engine: Any,
    progress: Any = None,
    record: Any = "iterations",
    memory_limit: Any = None,
) -> RunConfig:
    """Validate the arguments of :func:`queueing_llm.simulate`; every bad value raises a
    :class:`~queueing_llm.errors.ModelError` naming the argument, the value and the range."""
    if not isinstance(model, ContinuousBatching):
        raise ParameterError(f"model must be a ql.ContinuousBatching, got {describe(model)}")
    _check_numeric(model)
    N = _check_int("iterations", iterations, 1)
    W = _check_int("warmup", warmup, 0, N - 1)
    seed = resolve_seed(seed)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    else:
        seed = _check_int("seed", seed, 0)
    if not isinstance(saturated, (bool, np.bool_)):
        raise ParameterError(f"saturated must be True or False, got {describe(saturated)}")
    saturated = bool(saturated)
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {', '.join(repr(e) for e in ENGINES)}, got {describe(engine)}")
    if not isinstance(record, str) or record not in RECORDS:
        raise ParameterError(f"record must be one of {', '.join(repr(r) for r in RECORDS)}, got {describe(record)}")
    if memory_limit is not None:
        check_real("memory_limit", memory_limit, low=0, low_open=True, allow_inf=True)
        memory_limit = float(memory_limit)
    if progress is not None and not callable(progress):
        raise ParameterError(f"progress must be None or a callable progress(done, total), got {describe(progress)}")
    M = _number(model.kv_capacity)
    B = _number(model.batch_cap)
    if saturated:
        unbounded = math.isinf(B) and (
            isinstance(model.policy, FcfsCap)
            or (math.isinf(M) and not (isinstance(model.policy, RateLimited) and model.policy.rate is not None))
        )
        if unbounded:
            raise ParameterError(
                f"saturated input under policy {model.policy} with kv_capacity = {M:g} and batch_cap = {B:g} "
                "admits infinitely many requests per iteration; give a finite kv_capacity or batch_cap"
            )
    else:
        for k, t in enumerate(model.types):
            if t.arrivals is None:
                raise ParameterError(
                    f"types[{k}] has arrivals=None (saturated-only); an open system needs an arrival law "
                    "for every type (or pass saturated=True)"
                )
    initial = None if initial_batch is None else _initial_batch(model, initial_batch, B)
    wall = model.is_wall_clock
    max_decode = model.max_decode
    return RunConfig(
        model=model,
        iterations=N,
        seed=seed,
        saturated=saturated,
        warmup=W,
        engine=engine,
        initial=initial,
        M=M,
        B=B,
        waiting_cap=_number(model.waiting_cap),
        wall_clock=wall,
        d0=to_float(model.iteration_time.d0) if wall else None,
        d1=to_float(model.iteration_time.d1) if wall else None,
        stages=None if math.isinf(max_decode) else int(max_decode),
        progress=progress,
        record=record,
        memory_limit=memory_limit,
    )
