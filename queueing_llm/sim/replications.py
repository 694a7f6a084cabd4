r"""Independent replications of a run: ``ql.simulate(..., replications=R)``.

Replication :math:`r` uses the seed ``SeedSequence(seed).spawn(R)[r]`` reduced to a 63-bit
integer (recorded in :attr:`Replications.seeds`), so the replications are independent
streams and the whole set is reproducible from one seed. Confidence intervals are the
Student intervals of :func:`queueing_llm.stats.replications_ci` over the R per-run
summaries (Law 2015, section 9.4).

How they run (:func:`queueing_llm.simulate`): the R runs share everything but the seed, so
the arguments are validated (:func:`~.config.prepare`), the memory guard checked
(:func:`~.resources.check_memory`) and the model's constants (policy code, exact rate,
completion-wheel size, backlog proportions: ``kernel._plan``) computed once, and each
replication is that configuration with its seed. On the compiled kernel
(:func:`~.kernel.run_kernels`) the replications are shared by one worker thread per core
the process may use (its CPU affinity), each running replications one after another (the
first runs alone if the kernel is not yet compiled or loaded in the process): the
kernel's loop and the per-chunk pass that accumulates a summary's per-iteration series
are compiled ``nogil`` and NumPy releases the GIL while it draws, so
the threads run on separate cores and only the short Python bookkeeping of each run is
serialised. A failed replication stops the set and its error is raised (that of the
lowest failed index, as in sequence). With ``progress=`` (which then counts over the whole
set), on the Python and SimPy loops, or with ``requests=`` (each replication a fixed
workload with its own horizon, validated on its own) the replications run in sequence.
They are not vectorised into one state: each replication is exactly the run
``simulate(model, N, seed=s, record=...)`` of its seed ``s``
(``tests/test_replications_lockstep.py``), so a replication can be repeated on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..stats import DEFAULT_LEVEL, Interval, replications_ci

__all__ = ["Replications", "replication_seeds"]


def replication_seeds(seed: int | None, R: int) -> list[int]:
    """R independent 63-bit seeds spawned from ``seed`` (fresh entropy if ``None``)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ParameterError(f"seed must be an integer in [0, inf) or None, got {seed!r}")
    children = np.random.SeedSequence(None if seed is None else int(seed)).spawn(R)
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]


class Replications(Sequence):
    """R independent runs of one model: a sequence of :class:`Trajectory`, so it can be
    passed wherever a list of independent runs is taken (``ql.verify(theorem, model,
    reps)`` then puts replication intervals on the estimates, and its verdict's run says
    "R independent replications"). ``ql.verify`` builds one itself where a theorem prefers
    replications (``RunSpec.replications``, :mod:`queueing_llm.runs`) or when asked
    (``ql.verify(..., replications=R)``).

    Attributes
    ----------
    runs : list of Trajectory
    seed : int or None
        The seed the replication seeds were spawned from.
    seeds : list of int
    """

    def __init__(self, runs: list[Any], seed: int | None) -> None:
        self.runs = list(runs)
        self.seed = seed
        self.seeds = [r.seed for r in self.runs]

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: Any) -> Any:
        return self.runs[index]

    def __repr__(self) -> str:
        lengths = sorted({int(r.iterations) for r in self.runs})
        span = f"{lengths[0]}" if len(lengths) == 1 else f"{lengths[0]}-{lengths[-1]}"
        return f"Replications({len(self.runs)} runs of {span} iterations, seed={self.seed})"

    @property
    def iterations(self) -> int:
        """Iterations of each replication: the horizon, the same for all, or with
        ``requests=`` (each replication ends when its workload completes) the longest."""
        return max(int(r.iterations) for r in self.runs)

    @property
    def summaries(self) -> list[dict[str, float]]:
        """Each replication's :meth:`Trajectory.summary`."""
        return [r.summary() for r in self.runs]

    def summaries_after(self, warmup: int | None = None) -> list[dict[str, float]]:
        """Each replication's ``summary(warmup)`` (None: the runs' own warm-up)."""
        return [r.summary(warmup) for r in self.runs]

    def summary(self, warmup: int | None = None) -> dict[str, float]:
        """The mean over replications of every summary key."""
        rows = self.summaries_after(warmup)
        return {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}

    def values(self, key: str, warmup: int | None = None) -> list[float]:
        """The R per-replication values of a summary key (the data of :meth:`ci`)."""
        rows = self.summaries_after(warmup)
        if key not in rows[0]:
            raise ParameterError(f"key must be a summary key ({', '.join(rows[0])}), got {key!r}")
        return [row[key] for row in rows]

    def ci(self, key: str, level: float = DEFAULT_LEVEL, warmup: int | None = None) -> Interval:
        r"""Replication confidence interval of a summary key (``nan`` runs refused):
        :math:`\bar Y \pm t_{R-1,(1+c)/2} S/\sqrt R` over the R values of :meth:`values`."""
        values = self.values(key, warmup)
        if any(math.isnan(v) for v in values):
            raise ParameterError(f"{key} is nan in some replication (no completed request?): {values}")
        return replications_ci(values, level)

    def cis(self, level: float = DEFAULT_LEVEL, warmup: int | None = None) -> dict[str, Interval]:
        """Replication intervals of every summary key that is finite in all runs."""
        rows = self.summaries_after(warmup)
        return {
            k: replications_ci([row[k] for row in rows], level)
            for k in rows[0]
            if all(math.isfinite(row[k]) for row in rows)
        }
