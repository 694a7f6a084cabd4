r"""Streaming summary of a run: the long-run averages of :meth:`Trajectory.summary` from
per-iteration chunks and finished requests, in memory independent of the horizon.

Both the full trajectory (one chunk: its arrays) and ``record="summary"`` runs (the engine
feeds chunks as it goes) go through :class:`RunAccumulator`, so the two give the same
numbers: every per-iteration quantity is an integer and is summed exactly, and the sums of
seconds (latency, TTFT, TBT) are exact too (:class:`ExactSum`), so they do not depend on how
the requests are chunked or ordered.

Units (:data:`UNITS`): counts per iteration, requests, KV tokens, and for latency and
time to first token seconds in wall-clock runs, iterations in slotted runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..stats import DEFAULT_BATCHES, DEFAULT_LEVEL, Interval, QuantileSketch, StreamingSeries

__all__ = ["RunAccumulator", "ExactSum", "QUANTILES", "UNITS", "summary_units"]

QUANTILES = (0.5, 0.9, 0.99)
"""Latency and TTFT quantile levels reported by :meth:`Trajectory.summary` (p50, p90, p99)."""

UNITS = {
    "throughput": "requests/iteration",
    "throughput_per_iteration": "requests/iteration",
    "mean_queue": "requests",
    "mean_in_system": "requests",
    "mean_batch": "requests",
    "mean_memory": "KV tokens",
    "peak_memory": "KV tokens",
    "peak_batch": "requests",
    "evictions_per_iteration": "evictions/iteration",
    "arrivals_per_iteration": "requests/iteration",
    "rejections_per_iteration": "requests/iteration",
    "tokens_per_iteration": "tokens/iteration",
    "restarts_per_request": "evictions/request",
    "completed_requests": "requests",
    "mean_sojourn": "iterations",
    "mean_latency": "s",
    "mean_ttft": "s",
    "mean_tbt": "s",
    "throughput_per_second": "requests/s",
    "tokens_per_second": "tokens/s",
    "arrivals_per_second": "requests/s",
    "mean_iteration_seconds": "s",
}


def _pct(q: float) -> str:
    return f"p{100 * q:g}"


def summary_units(wall_clock: bool) -> dict[str, str]:
    """The unit of every key :meth:`Trajectory.summary` returns for a slotted or wall-clock run."""
    time_unit = "s" if wall_clock else "iterations"
    units = dict(UNITS)
    for q in QUANTILES:
        units[f"latency_{_pct(q)}"] = time_unit
        units[f"ttft_{_pct(q)}"] = time_unit
    if not wall_clock:
        for key in ("mean_latency", "mean_ttft", "mean_tbt", "throughput_per_second", "tokens_per_second",
                    "arrivals_per_second", "mean_iteration_seconds"):
            del units[key]
    return units


class ExactSum:
    r"""The exact sum of float64 values fed in any chunks and any order.

    Every finite double is :math:`m 2^{e - 53}` with an integer :math:`|m| < 2^{53}`
    (``numpy.frexp``), an integer multiple of :math:`2^{-1074}`; the sum is kept as that
    integer multiple (a Python integer, grouped by exponent with 64-bit partial sums of
    26-bit halves of :math:`m`), so it does not depend on the chunking, and :meth:`mean`
    rounds once (Python's correctly rounded integer division). Non-finite values are
    summed apart as floats.
    """

    UNIT = 1074  # the sum is total * 2**-UNIT

    def __init__(self) -> None:
        self.total = 0
        self.special = 0.0

    def add(self, values: Any) -> None:
        x = np.asarray(values, dtype=float).reshape(-1)
        finite = np.isfinite(x)
        if not finite.all():
            self.special += float(x[~finite].sum())
            x = x[finite]
        if x.size == 0:
            return
        m, e = np.frexp(x)
        mant = (m * 2.0**53).astype(np.int64)  # exact: |m| < 1 has 53 significant bits
        order = np.argsort(e, kind="stable")
        e, mant = e[order], mant[order]
        starts = np.flatnonzero(np.concatenate([[True], e[1:] != e[:-1]]))
        high = np.add.reduceat(mant >> 26, starts)  # each |part| < 2^27: no overflow below 2^36 values
        low = np.add.reduceat(mant & ((1 << 26) - 1), starts)
        for E, a, b in zip(e[starts].tolist(), high.tolist(), low.tolist(), strict=True):
            v = (a << 26) + b
            shift = E - 53 + self.UNIT
            self.total += v << shift if shift >= 0 else v >> -shift  # exact: x is a multiple of 2^-1074

    def merge(self, other: ExactSum) -> None:
        self.total += other.total
        self.special += other.special

    def mean(self, count: int) -> float:
        """The sum divided by ``count``, rounded once (``nan`` for ``count == 0``)."""
        if count == 0:
            return math.nan
        if self.special != 0.0 or math.isnan(self.special):
            return (self.total / 2**self.UNIT + self.special) / count
        return self.total / (count << self.UNIT)


class RunAccumulator:
    r"""Accumulates one run over the iterations :math:`[w, N)` (the warm-up :math:`w` deleted).

    Feed :meth:`add_iterations` the per-iteration arrays of consecutive chunks of
    iterations (starting at 0) and :meth:`add_requests` the requests that completed.
    Memory: a few numbers per series, the batch sums of :class:`~queueing_llm.stats.StreamingSeries`
    and the quantile sketches.

    Parameters
    ----------
    iterations, warmup : int
        :math:`N` and :math:`w`.
    wall_clock : bool
        Times in seconds (latency sketches with relative accuracy); else iterations (exact).
    """

    SERIES = ("completions", "arrivals", "rejections", "evictions", "queue", "batch", "memory", "in_system")

    def __init__(self, iterations: int, warmup: int, wall_clock: bool, batches: int = DEFAULT_BATCHES) -> None:
        self.N = int(iterations)
        self.w = int(warmup)
        self.wall_clock = bool(wall_clock)
        span = self.N - self.w
        self.series = {name: StreamingSeries(span, batches if span >= batches else 2) for name in self.SERIES}
        self.seen = 0
        self.batch_before = 0  # batch size after admission at w - 1 (executed at w)
        self.batch_last = 0  # batch size after admission at N - 1
        self.time_before = 0.0  # end of iteration w - 1 (0 if w == 0)
        self.time_last = math.nan
        self.latency = QuantileSketch(integer=not wall_clock)
        self.ttft = QuantileSketch(integer=not wall_clock)
        self.completed = 0
        self.sojourn_total = 0
        self.restarts = 0
        self.latency_total = ExactSum()  # seconds (wall-clock runs)
        self.ttft_total = ExactSum()
        self.tbt_total = ExactSum()
        self.tbt_count = 0

    # -- feeding -----------------------------------------------------------------------
    def add_iterations(self, completions, arrivals, rejections, evictions, queue, batch, memory, time) -> None:
        """The next chunk: (n, K) count arrays (``queue``, ``batch``: after admission, by
        type), ``memory`` and ``time`` of shape (n,)."""
        n0 = self.seen
        n = int(np.shape(memory)[0])
        self.seen += n
        if self.seen > self.N:
            raise ParameterError(f"the run has {self.N} iterations; got {self.seen}")
        lo = max(self.w - n0, 0)
        batch_tot = np.asarray(batch).sum(axis=1)
        if n0 <= self.w - 1 < n0 + n:
            self.batch_before = int(batch_tot[self.w - 1 - n0])
            self.time_before = float(time[self.w - 1 - n0])
        if self.seen == self.N:
            self.batch_last = int(batch_tot[-1])
            self.time_last = float(time[-1])
        if lo >= n:
            return
        queue_tot = np.asarray(queue).sum(axis=1)
        values = {
            "completions": np.asarray(completions).sum(axis=1),
            "arrivals": np.asarray(arrivals).sum(axis=1),
            "rejections": np.asarray(rejections).sum(axis=1),
            "evictions": np.asarray(evictions).sum(axis=1),
            "queue": queue_tot,
            "batch": batch_tot,
            "memory": np.asarray(memory),
            "in_system": queue_tot + batch_tot,
        }
        for name, v in values.items():
            self.series[name].add(v[lo:])

    def load_iterations(self, totals: np.ndarray, peaks: np.ndarray, sums: np.ndarray, batch_before: int,
                        time_before: float, batch_last: int, time_last: float) -> None:
        r"""The whole run's per-iteration series at once, accumulated elsewhere exactly as
        :meth:`add_iterations` accumulates them (the compiled kernel, :mod:`.kernel`): for
        series :math:`s` in the order of :attr:`SERIES`, ``totals[s]`` the integer sum over
        :math:`[w, N)`, ``peaks[s]`` the maximum, ``sums[s]`` the batch sums of
        :class:`~queueing_llm.stats.StreamingSeries` (each chunk's integer partial sums
        added as floats, as :meth:`StreamingSeries.add` adds them). ``batch_before``,
        ``time_before``: the batch and time of iteration :math:`w - 1` (used if :math:`w > 0`);
        ``batch_last``, ``time_last``: those of iteration :math:`N - 1`."""
        if self.seen != 0:
            raise ParameterError(f"load_iterations takes the whole run; {self.seen} iterations were already added")
        for s, name in enumerate(self.SERIES):
            series = self.series[name]
            series.total = int(totals[s])
            series.peak = int(peaks[s])
            series.sums[:] = sums[s]
            series.seen = series.length
        self.seen = self.N
        if self.w > 0:
            self.batch_before = int(batch_before)
            self.time_before = float(time_before)
        self.batch_last = int(batch_last)
        self.time_last = float(time_last)

    def add_requests(self, arrival, completion, decode, evicted, initial, arrival_time, first_token_time,
                     completion_time) -> None:
        """Requests that completed (any order); those arrived before the warm-up or members
        of the initial batch are left out, as in :meth:`Trajectory.summary`. Times are
        floats (seconds or iteration numbers) or, in slotted runs, integer iterations."""
        arrival = np.asarray(arrival)
        keep = ~np.asarray(initial, dtype=bool) & (arrival >= self.w) & (np.asarray(completion) >= 0)
        count = int(keep.sum())
        if count == 0:
            return

        def chosen(x: Any) -> np.ndarray:
            x = np.asarray(x)
            return x if count == x.size else x[keep]

        arrival = chosen(arrival)
        completion = chosen(completion)
        self.completed += count
        self.sojourn_total += int((completion - arrival).sum())
        self.restarts += int(chosen(evicted).sum())
        at, ft, ct = chosen(arrival_time), chosen(first_token_time), chosen(completion_time)
        latency, ttft = ct - at, ft - at
        self.latency.add(latency)
        self.ttft.add(ttft)
        if self.wall_clock:
            self.latency_total.add(latency)
            self.ttft_total.add(ttft)
            d = chosen(decode)
            many = d > 1
            self.tbt_total.add((ct - ft)[many] / (d[many] - 1))
            self.tbt_count += int(many.sum())

    def add_request_counts(self, completed: int, sojourn_total: int, restarts: int, latency_counts: np.ndarray,
                           ttft_counts: np.ndarray) -> None:
        """Counts of chosen completed requests from a slotted engine that keeps them itself:
        histograms ``latency_counts[i]`` = requests of latency ``i`` iterations (TTFT alike)."""
        if self.wall_clock:
            raise ParameterError("request counts by iteration are for slotted runs")
        self.completed += completed
        self.sojourn_total += sojourn_total
        self.restarts += restarts
        self.latency.add_counts(latency_counts)
        self.ttft.add_counts(ttft_counts)

    def merge_requests(self, other: RunAccumulator) -> None:
        """Add the request-level accumulators of ``other`` (same run, another chunk of requests)."""
        self.completed += other.completed
        self.sojourn_total += other.sojourn_total
        self.restarts += other.restarts
        self.latency.merge(other.latency)
        self.ttft.merge(other.ttft)
        self.latency_total.merge(other.latency_total)
        self.ttft_total.merge(other.ttft_total)
        self.tbt_total.merge(other.tbt_total)
        self.tbt_count += other.tbt_count

    # -- results -----------------------------------------------------------------------
    def summary(self) -> dict[str, float]:
        """The summary dictionary (keys and units: :func:`summary_units`)."""
        if self.seen != self.N:
            raise ParameterError(f"the run is incomplete: {self.seen} of {self.N} iterations accumulated")
        span = self.N - self.w
        s = self.series
        done = self.completed
        out = {
            "throughput": s["completions"].total / span,
            "mean_queue": s["queue"].total / span,
            "mean_in_system": s["in_system"].total / span,
            "mean_batch": s["batch"].total / span,
            "mean_memory": s["memory"].total / span,
            "evictions_per_iteration": s["evictions"].total / span,
            "arrivals_per_iteration": s["arrivals"].total / span,
            "rejections_per_iteration": s["rejections"].total / span,
            "mean_sojourn": self.sojourn_total / done if done else math.nan,
        }
        out = {k: float(v) for k, v in out.items()}
        tokens = s["batch"].total - self.batch_last + (self.batch_before if self.w > 0 else 0)
        out["throughput_per_iteration"] = out["throughput"]
        out["tokens_per_iteration"] = float(tokens / span)
        out["peak_memory"] = float(s["memory"].peak)
        out["peak_batch"] = float(s["batch"].peak)
        out["completed_requests"] = float(done)
        out["restarts_per_request"] = float(self.restarts / done) if done else math.nan
        for name, sketch in (("latency", self.latency), ("ttft", self.ttft)):
            for q, v in zip(QUANTILES, sketch.quantiles(QUANTILES), strict=True):
                out[f"{name}_{_pct(q)}"] = float(v)
        if self.wall_clock:
            out["mean_latency"] = self.latency_total.mean(done)
            out["mean_ttft"] = self.ttft_total.mean(done)
            out["mean_tbt"] = self.tbt_total.mean(self.tbt_count)
            elapsed = self.time_last - self.time_before
            out["mean_iteration_seconds"] = elapsed / span
            per_s = (lambda x: x / elapsed) if elapsed > 0 else (lambda x: math.nan)
            out["throughput_per_second"] = per_s(s["completions"].total)
            out["tokens_per_second"] = per_s(tokens)
            out["arrivals_per_second"] = per_s(s["arrivals"].total)
        return out

    def ci(self, key: str, level: float = DEFAULT_LEVEL) -> Interval:
        """Batch-means interval of a per-iteration mean: ``key`` one of :attr:`SERIES`."""
        if key not in self.series:
            raise ParameterError(f"key must be one of {', '.join(self.SERIES)}, got {key!r}")
        return self.series[key].ci(level)
