r"""Simulators of the continuous-batching model (the model chapter, sections 2-4).

:func:`simulate` runs a model with one of three loops that give the same trajectory,
bit for bit, for the same seed:

* the compiled numba kernel (:mod:`.kernel`): the FCFS policies (``greedy``, ``fcfs_cap``,
  ``rate_limited``, ``static``, ``reserve``), slotted runs, saturated runs and one-type
  wall-clock runs (:func:`~.kernel.kernel_applies`);
* the Python fast loop (:mod:`.fast`): every model, including the fluid-guided policies WAIT
  and Nested WAIT (``ql.Wait``, ``ql.NestedWait``), which stall members and so run on its
  stall-aware path (:func:`~.fast.run_scheduled`), never on the kernel;
* SimPy (:mod:`.events`), the readable reference.

``engine="fast"`` (the default) takes the kernel where it applies and the Python loop
otherwise (WAIT and Nested WAIT always: ``Trajectory.backend == "python"``);
``engine="python"`` and ``engine="events"`` force the others. All execute the admission
rules of :mod:`.policies` and take every random number from :mod:`.draws`; the admission
step of WAIT and Nested WAIT (the plan, the requests it admits, the members it stalls) is
one piece of code both the Python loop and SimPy call (:mod:`.scheduling`).

What a run keeps (``record=``, :class:`Trajectory`), the memory guard that refuses a run
before it starts (:mod:`.resources`), the streaming summary (:mod:`.summary`) and
independent replications (:mod:`.replications`) are common to the three.

Random-draw order
-----------------
A run has one generator, ``rng = numpy.random.default_rng(seed)``; every draw comes from
it, in this order (a draw of a deterministic law consumes nothing; a draw of size 0
consumes nothing):

1. **Initial batch** (if given): for each stage :math:`j` from the highest down to 0,
   for each type :math:`k` in order with :math:`x_{k,j} > 0`: the :math:`x_{k,j}` prompts,
   then the :math:`x_{k,j}` decode lengths conditioned on exceeding :math:`j` (geometric:
   :math:`j` plus a fresh draw; finite PMF: renormalised above :math:`j`).
2. **Open system.** At the arrival step of iteration :math:`n`, for each type in order,
   the type's tape is extended, one block at a time, until it covers the iteration:

   * a per-iteration arrival law: a block covers the next 4096 iterations
     (``ITERATION_BLOCK``) and draws, in order, the 4096 counts, then one uniform offset in
     [0, 1) per arrival, then the prompts, then the decode lengths of those arrivals;
   * a ``PoissonProcess`` (wall-clock): a block draws 1024 exponential gaps of mean
     1/rate (``PROCESS_BLOCK``; the epochs are the running sums from 0), then 1024 prompts,
     then 1024 decode lengths; the tape covers the iteration once its last epoch is at or
     after the end of the iteration's interval.

   Per-iteration laws' tapes therefore extend together at iterations
   :math:`0, 4096, \dots` (from 1 with an initial batch), type by type. Queue order within
   an iteration: slotted, by offset (ties: type order; one type: in draw order);
   wall-clock, by arrival time (a per-iteration law's arrival comes at
   ``start + offset * duration``; ties: type order; one type with a per-iteration law: in
   draw order, as in a slotted run).
   The draws do not depend on the iteration time, so a wall-clock run with
   :math:`d_1 = 0` and per-iteration laws is the slotted run (same arrays and records up
   to the times; only an exact tie of two rounded arrival times could order them apart).
3. **Saturated input.** The backlog is drawn in blocks of 1024 requests
   (``BACKLOG_BLOCK``) when the admission step needs a request beyond the last drawn:
   with several types the block's 1024 types (uniforms compared with the cumulative
   proportions :math:`p_k`), then for each type in order the prompts, then the decode
   lengths of the block's requests of that type.

Request ids follow the same order: initial members (highest stage first), then arrivals in
queue order or backlog requests in admission order.

Time
----
Slotted runs: iteration :math:`n` ends at ``time[n] = n``. Wall-clock runs (the model has
an ``iteration_time``): iteration :math:`n` lasts :math:`d_0 + d_1 Z_n` seconds,
:math:`Z_n` the KV tokens of the batch it executes (the batch after admission at
:math:`n - 1`; none at iteration 0), so ``time[n]`` is the running sum and with
:math:`d_1 = 0` ``time[n] = (n + 1) d_0``. With an initial batch iteration 0 is the given
state at time 0 (no arrivals, no admission) and the loop starts at iteration 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..model import ContinuousBatching
from .config import ENGINES, RECORDS, RunConfig, prepare, resolve_seed
from .fast import run_fast
from .policies import admission_rule, fixed_point_rate
from .replications import Replications, replication_seeds
from .resources import _limit, check_memory
from .trajectory import RequestRecords, Trajectory

__all__ = [
    "simulate",
    "Trajectory",
    "RequestRecords",
    "RunConfig",
    "ENGINES",
    "RECORDS",
    "Replications",
    "admission_rule",
    "fixed_point_rate",
]


def simulate(
    model: ContinuousBatching,
    iterations: int,
    seed: int | None = None,
    saturated: bool = False,
    initial_batch: Any = None,
    warmup: int = 0,
    engine: str = "fast",
    progress: Callable[[int, int], Any] | None = None,
    record: str = "iterations",
    memory_limit: float | None = None,
    replications: int | None = None,
    requests: int | None = None,
) -> Trajectory | Replications:
    r"""Simulate ``iterations`` iterations of ``model`` (the model chapter, section 2).

    Each iteration: **execute** (every batch member advances one stage; those that executed
    their last stage complete), **arrive** (each type's arrivals join the back of the
    queue; with a waiting-room cap, arrivals that find it full are rejected), **evict**
    (while the memory :math:`\sum_{k,j} (l_0 + 1 + j) x_{k,j}` exceeds :math:`M`: lowest
    stage first regardless of type, within a stage the most recently admitted first; the
    victims lose their progress and rejoin the head of the queue), **admit** (the policy's
    rule, :mod:`queueing_llm.sim.policies`).

    Parameters
    ----------
    model : ContinuousBatching
        A numeric model (symbolic parameters raise :class:`~queueing_llm.SymbolicValueError`).
    iterations : int
        Number of iterations :math:`N \ge 1` (iterations :math:`0..N-1`).
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None
        Seed of ``numpy.random.default_rng``; ``None`` draws one; a ``SeedSequence`` gives the
        integer it generates and a ``Generator`` an integer drawn from it (the integer is
        recorded in the result either way, so the run can be repeated with it).
    saturated : bool
        Infinite backlog (overload, [ADLS26] sections 3-4): admitted types follow the
        proportions :math:`p_k` (``model.proportions``); evicted requests go first. If
        False, every type needs an arrival law.
    initial_batch : list of int, list of list of int, or None
        Stage counts :math:`x_{k,0}, x_{k,1}, \dots` of the batch after admission at
        iteration 0 (a list for one type, a list of lists for several); at most the largest
        decode length of stages, at most :math:`B` requests and :math:`M` tokens. ``None``:
        iteration 0 starts empty, receives its arrivals and admits.
    warmup : int
        Default number of initial iterations :meth:`Trajectory.summary` deletes, in
        :math:`[0, N)`.
    engine : {"fast", "events", "python"}
        ``"fast"`` (default): the compiled numba kernel (:mod:`.kernel`) where it applies
        (FCFS policies), otherwise the Python fast loop (WAIT and Nested WAIT always);
        ``"events"``: the SimPy reference engine;
        ``"python"``: the Python fast loop always. All give the same trajectory for the
        same seed (``Trajectory.backend`` says which loop ran).
    progress : callable or None
        ``progress(done, total)`` is called about every ``iterations / 200`` iterations and
        at the end (a progress bar, say); it does not change the trajectory.
    record : {"iterations", "full", "summary"}
        What the run keeps (:class:`Trajectory`): ``"iterations"`` (default) per-iteration
        arrays and per-request records, the stage array :attr:`Trajectory.batch` built on
        first access (WAIT and Nested WAIT runs store it as they go: their stalls break
        the rebuild from admissions); ``"full"`` the stage array too; ``"summary"`` only
        streaming accumulators (summary, latency and TTFT quantile sketches, counts,
        batch-means intervals; :mod:`.summary`): every engine (the compiled kernel, the
        Python loop, :mod:`.streaming`, and SimPy; every policy, WAIT and Nested WAIT
        included) feeds them as it goes and keeps only the live requests, so memory does
        not grow with the horizon (except the queue of an overloaded model). The summary
        equals, key for key, that of the same run with ``record="iterations"``.
    memory_limit : float or None
        Bytes a run may take; a run whose estimate (:mod:`.resources`) exceeds it is
        refused before it starts, naming ``record=``. ``None``: half the physical memory.
    replications : int or None
        ``R >= 2``: run R independent replications (seeds spawned from ``seed`` by
        ``numpy.random.SeedSequence``, :func:`~.replications.replication_seeds`) and return a
        :class:`Replications` with their summaries and replication confidence intervals.
        How they run (:mod:`.replications`): the arguments are validated, the memory
        estimate checked and the model's constants computed once for the set (the
        replications differ only in the seed); on the compiled kernel one worker thread per
        core runs its share of the replications one after another
        (:func:`~.kernel.run_kernels`; the kernel and NumPy's draws release the GIL), with
        ``progress`` (which then counts over the set: ``r N + i`` of ``R N``), on the other
        loops or with ``requests=`` (each validated on its own) they run in sequence. The
        memory guard counts the replications held at once; a failed replication stops the
        set and raises its error (the lowest failed index's). Replication :math:`r` is,
        bit for bit and whatever the record mode, ``simulate(model, iterations,
        seed=reps.seeds[r], ...)``; the threads change only the wall-clock time.

    Returns
    -------
    Trajectory, or Replications if ``replications`` is given

    Examples
    --------
    The worked trajectory of [ADLS26] (:math:`l_0 = l_1 = 2`, :math:`M = 140`, from
    (21, 19)) falls into the cycle (46, 0) <-> (0, 35):

    >>> import queueing_llm as ql
    >>> m = ql.ContinuousBatching([ql.RequestType(prompt=2, decode=2)], kv_capacity=140)
    >>> run = ql.simulate(m, 14, saturated=True, initial_batch=[21, 19])
    >>> run.batch[10:14, 0].tolist()
    [[45, 1], [0, 35], [46, 0], [0, 35]]

    Sources: [ADLS26] section 2 (model, greedy admission, eviction), [ALSW25] (linear
    iteration time), the model chapter, sections 2-4.

    A **fixed workload** (``requests=N``): the run stops at the iteration in which the
    :math:`N`-th request completes, and ``iterations`` is the budget (the run is refused, naming
    both, if :math:`N` requests do not complete within it). The trajectory then ends there:
    :meth:`Trajectory.summary` gives its ``makespan`` (seconds in wall-clock runs: the end
    of the last iteration, ``run.time[-1]``; otherwise the number of iterations run) beside
    requests per second, latency and restarts (after ``warmup``). Runs are causal and their
    draws come in blocks that do not depend on the horizon, so the run is the prefix of any
    longer run with the same seed. With
    ``replications=R`` each of the R replications is such a run (its own makespan).
    """
    seed = resolve_seed(seed)  # a SeedSequence or Generator becomes one integer, reused below
    if replications is not None:
        from ..numbers import check_real

        check_real("replications", replications, low=2, integer=True)
        seeds = replication_seeds(seed, int(replications))
        if requests is not None:  # each replication a fixed-workload run (its own horizon)
            # all R are kept (record != "summary"): each must fit in its share of the limit
            share = None if record == "summary" and memory_limit is None else (
                _limit(memory_limit) / (1 if record == "summary" else len(seeds)))
            return Replications([simulate(model, iterations, seed=s, saturated=saturated, initial_batch=initial_batch,
                                          warmup=warmup, engine=engine, progress=progress, record=record,
                                          memory_limit=share, requests=requests) for s in seeds], seed)
        # validated, sized and checked once: the replications differ only in the seed
        config = prepare(model, iterations, seeds[0], saturated, initial_batch, warmup, engine, progress, record,
                         memory_limit)
        backend = _backend(config)
        workers = 1 if progress is not None or backend != "numba" else usable_cores()
        # all R trajectories are kept; a summary run is dropped to its accumulators when done
        held = len(seeds) if record != "summary" else min(workers, len(seeds))
        estimate = check_memory(config, record, backend, memory_limit, runs=held)
        configs = [replace(config, seed=s) for s in seeds]
        if progress is not None:  # one count over the set: replication r at i of N reports r N + i of R N
            configs = [replace(c, progress=_offset_progress(progress, r * c.iterations, len(seeds) * c.iterations))
                       for r, c in enumerate(configs)]
        if backend == "numba":
            from .kernel import run_kernels

            return Replications(run_kernels(configs, estimate["requests_created"], workers), seed)
        return Replications([_run(c, backend, estimate) for c in configs], seed)
    if requests is not None:
        return _fixed_workload(model, iterations, requests, dict(
            seed=seed, saturated=saturated, initial_batch=initial_batch, warmup=warmup, engine=engine,
            progress=progress, record=record, memory_limit=memory_limit))
    config: RunConfig = prepare(
        model, iterations, seed, saturated, initial_batch, warmup, engine, progress, record, memory_limit
    )
    backend = _backend(config)
    return _run(config, backend, check_memory(config, record, backend, memory_limit))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system reports it,
    else ``os.cpu_count()``): the worker threads of a replication set."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this system
        return os.cpu_count() or 1


def _offset_progress(progress: Any, done: int, total: int) -> Any:
    """A run's progress callback ``(i, N)`` reported as ``(done + i, total)``."""

    def report(i: int, n: int) -> None:
        progress(done + i, total)

    return report


def _run(config: RunConfig, backend: str, estimate: dict[str, float]) -> Trajectory:
    """One validated run on ``backend`` (``estimate``: :func:`~.resources.check_memory`'s)."""
    if backend == "numba":
        from .kernel import run_kernel

        return run_kernel(config, estimate["requests_created"])
    if backend == "python":
        return run_fast(config)
    from .events import run_events  # SimPy is imported only for the reference engine

    return run_events(config)


def _fixed_workload(model: ContinuousBatching, budget: int, requests: int, options: dict) -> Trajectory:
    """Simulate until ``requests`` completions (see :func:`simulate`), doubling a horizon guess."""
    import numpy as np

    from ..errors import ParameterError
    from ..numbers import check_real

    check_real("requests", requests, low=1, integer=True)
    check_real("iterations", budget, low=1, integer=True)
    if options["seed"] is None:
        options["seed"] = int(np.random.SeedSequence().generate_state(1)[0])
    if options["record"] == "summary":
        raise ParameterError("requests=N needs the per-iteration completions: record='iterations' or 'full'")
    horizon = min(int(budget), 1024)
    while True:
        run = simulate(model, horizon, **options)
        done = np.cumsum(np.asarray(run.completions).sum(axis=1))
        if done[-1] >= requests:
            last = int(np.searchsorted(done, requests))
            run = simulate(model, last + 1, **options)
            run.requests_target = int(requests)
            return run
        if horizon >= budget:
            raise ParameterError(
                f"requests={requests}: only {int(done[-1])} requests completed within the budget of "
                f"iterations={budget}; raise iterations (the budget) or lower requests")
        horizon = min(2 * horizon, int(budget))


def _backend(config: RunConfig) -> str:
    if config.engine == "events":
        return "simpy"
    if config.engine == "fast":
        from .kernel import kernel_applies

        if kernel_applies(config):
            return "numba"
    return "python"
