r"""Output analysis of simulated trajectories: confidence intervals and warm-up deletion.

Every interval here is a two-sided Student-t interval with a documented confidence level
:math:`c` (default :data:`DEFAULT_LEVEL` = 0.95, i.e. 95 %): if the assumptions hold, it
covers the true long-run quantity with probability :math:`c`.

Two ways to put a confidence interval on a long-run mean:

* **independent replications** (:func:`replications_ci`): :math:`R` independent runs give
  :math:`R` i.i.d. estimates; the interval is :math:`\bar Y \pm t_{R-1, (1+c)/2} S/\sqrt R`;
* **batch means** (:func:`batch_means_ci`): one long run cut into :math:`b` contiguous
  batches whose means are treated as approximately i.i.d.; the same Student interval
  on the batch means.

:func:`steady_state_ci` chooses between them (one series: batch means; several:
replications) after deleting a warm-up; :func:`rate_ci` puts an interval on the growth
rate (drift per iteration) of a series, e.g. an overloaded queue; :func:`ratio_ci` on a
ratio of totals :math:`\sum Y / \sum X` (mean sojourn = total sojourn / completions);
:func:`binomial_ci` the exact (Clopper-Pearson) interval of a probability from
independent trials, valid for rare events where a Student interval degenerates.

Warm-up deletion by MSER-5 (:func:`mser5`): the truncation point :math:`d` (a multiple
of 5) that minimises :math:`\sum_{i>d}(\bar Y_i - \bar Y_{d})^2/(n-d)^2` over the 5-point
batch averages, searched over the first half of the run (White 1997; Franklin & White 2008).

References: A. M. Law, *Simulation Modeling and Analysis*, 5th ed., sections 9.4-9.5
(replications, batch means); K. P. White, "An effective truncation heuristic for bias
reduction in simulation output", *Simulation* 69 (1997); W. G. Cochran, *Sampling
Techniques*, 3rd ed., section 6.4 (ratio estimator); C. J. Clopper and E. S. Pearson,
"The use of confidence or fiducial limits illustrated in the case of the binomial",
*Biometrika* 26 (1934).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .numbers import check_real

__all__ = [
    "Interval",
    "replications_ci",
    "batch_means_ci",
    "mser5",
    "warmup_point",
    "steady_state_ci",
    "rate_ci",
    "ratio_ci",
    "binomial_ci",
    "batch_totals",
    "DEFAULT_LEVEL",
    "DEFAULT_BATCHES",
    "StreamingSeries",
    "QuantileSketch",
    "SKETCH_ACCURACY",
]

DEFAULT_LEVEL = 0.95
"""Default confidence level of every interval of the package (95 %)."""

DEFAULT_BATCHES = 20
"""Default number of batches of the batch-means method."""

SeriesLike = Sequence[float] | np.ndarray
RunsLike = SeriesLike | Sequence[SeriesLike]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval.

    Attributes
    ----------
    estimate, low, high : float
    level : float
        Confidence level in (0, 1).
    method : str
        ``"replications"``, ``"batch-means"`` or ``"ratio"``.
    n : int
        Number of replications or batches the interval rests on.
    warmup : int
        Observations deleted at the start of each series before estimating (0 if none).
    """

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n: int
    warmup: int = 0

    @property
    def half_width(self) -> float:
        """Half the interval's width, :math:`(high - low)/2`."""
        return (self.high - self.low) / 2

    @property
    def level_percent(self) -> str:
        """The level as a percentage with as many digits as it needs: ``"95%"``, ``"99.9%"``."""
        return f"{100 * self.level:.10g}%"

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def contains(self, value: float, slack: float = 0.0) -> bool:
        """True if ``value`` lies in ``[low - slack, high + slack]``."""
        return self.low - slack <= value <= self.high + slack

    def __str__(self) -> str:
        return (
            f"{self.estimate:.6g} [{self.low:.6g}, {self.high:.6g}] "
            f"({self.level_percent}, {self.method}, n={self.n})"
        )


def _t_ppf(q: float, df: int) -> float:
    """Student-t quantile (SciPy imported here, not at package import)."""
    from scipy import stats as st

    return float(st.t.ppf(q, df))


def _level(level: float) -> None:
    check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)


def _student(values: np.ndarray, level: float, method: str, warmup: int = 0) -> Interval:
    n = int(values.size)
    if n < 2:
        raise ParameterError(f"a confidence interval needs at least 2 {method} values, got {n}")
    if not np.all(np.isfinite(values)):
        raise ParameterError(f"the {method} values must be finite numbers, got {values[~np.isfinite(values)][:3]}")
    mean = float(values.mean())
    s = float(values.std(ddof=1))
    t = _t_ppf(0.5 + level / 2, n - 1)
    half = t * s / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, level, method, n, warmup)


def _series(series: SeriesLike, name: str = "series") -> np.ndarray:
    arr = np.asarray(series, dtype=float)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def replications_ci(values: SeriesLike, level: float = DEFAULT_LEVEL) -> Interval:
    r"""Student-t interval from independent replications' estimates.

    :math:`\bar Y \pm t_{R-1,\,(1+c)/2}\, S / \sqrt{R}` at confidence level :math:`c`
    (Law 2015, eq. (9.1)).

    Parameters
    ----------
    values : 1-D array of float
        One estimate per independent replication (at least 2).
    level : float in (0, 1)
        Confidence level :math:`c` (default 0.95).
    """
    _level(level)
    return _student(_series(values, "values"), level, "replications")


def batch_totals(series: SeriesLike, batches: int = DEFAULT_BATCHES) -> np.ndarray:
    r"""Sums of ``series`` over ``batches`` contiguous batches of equal length.

    The remainder (``len(series) mod batches`` points) is dropped at the start, where a
    warm-up effect would be, not at the end. Batch :math:`i` of size :math:`m` sums
    :math:`Y_{r + (i-1)m + 1}, \dots, Y_{r + im}`.
    """
    check_real("batches", batches, low=2, integer=True)
    arr = _series(series)
    b = int(batches)
    size = arr.size // b
    if size < 1:
        raise ParameterError(f"series of length {arr.size} is too short for {b} batches (need >= {b})")
    used = arr[arr.size - size * b :]
    return used.reshape(b, size).sum(axis=1)


def batch_means_ci(
    series: SeriesLike, level: float = DEFAULT_LEVEL, batches: int = DEFAULT_BATCHES
) -> Interval:
    r"""Batch-means interval for the long-run mean of one (warmed-up) series.

    The series is cut into ``batches`` contiguous batches of equal length (the remainder
    at the start is dropped); the batch means :math:`\bar Y_1..\bar Y_b` get the Student
    interval :math:`\bar Y \pm t_{b-1,(1+c)/2} S_b/\sqrt b` (Law 2015, section 9.5.3).
    Twenty batches of at least a few hundred points each is the usual rule; the batches
    must be long compared with the series' correlation time.
    """
    _level(level)
    check_real("batches", batches, low=2, integer=True)
    arr = _series(series)
    size = arr.size // int(batches)
    means = batch_totals(arr, batches) / size
    return _student(means, level, "batch-means")


def mser5(series: SeriesLike) -> int:
    r"""MSER-5 warm-up truncation point (a number of initial observations to delete).

    Averages the series in batches of 5, :math:`Z_1..Z_m`, and returns :math:`5 d^*` with
    :math:`d^* = \arg\min_{0 \le d \le m/2} \frac{1}{(m-d)^2}\sum_{i>d} (Z_i - \bar Z_{d})^2`,
    :math:`\bar Z_d` the mean of :math:`Z_{d+1}..Z_m` (White 1997). Series shorter than
    20 points are not truncated (0).
    """
    arr = _series(series)
    m = arr.size // 5
    if m < 4:
        return 0
    z = arr[: 5 * m].reshape(m, 5).mean(axis=1)
    # suffix sums give every candidate in O(m)
    rev = z[::-1]
    csum = np.cumsum(rev)[::-1]
    csq = np.cumsum(rev**2)[::-1]
    d = np.arange(m // 2 + 1)
    k = m - d
    mean = csum[d] / k
    sse = np.maximum(csq[d] - k * mean**2, 0.0)
    stat = sse / k**2
    return int(5 * d[int(np.argmin(stat))])


def warmup_point(series: SeriesLike, warmup: int | str | None = "mser5") -> int:
    """Number of initial observations to delete: ``warmup`` if an integer, MSER-5 if
    ``"mser5"``, 0 if ``None``.

    An integer must lie in ``[0, len(series) - 2]`` so that at least two points remain.
    """
    arr = _series(series)
    if warmup is None:
        return 0
    if isinstance(warmup, str):
        if warmup != "mser5":
            raise ParameterError(f"warmup must be an integer >= 0, 'mser5' or None, got {warmup!r}")
        return mser5(arr)
    check_real("warmup", warmup, low=0, high=max(arr.size - 2, 0), integer=True)
    return int(warmup)


def _as_runs(data: RunsLike) -> list[np.ndarray] | np.ndarray:
    """One 1-D series, or a list of 1-D series (a 2-D array: one row per replication)."""
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            return data.astype(float)
        if data.ndim == 2:
            return [row.astype(float) for row in data]
        raise ParameterError(f"data must be a series (1-D) or replications (2-D), got shape {data.shape}")
    if isinstance(data, Sequence) and len(data) > 0 and all(
        isinstance(x, (Sequence, np.ndarray)) for x in data
    ):
        return [_series(x, f"replication {i}") for i, x in enumerate(data)]
    return _series(data)


def _common_warmup(runs: list[np.ndarray], warmup: int | str | None) -> int:
    shortest = min(r.size for r in runs)
    if shortest < 2:
        raise ParameterError(f"every replication needs at least 2 observations, the shortest has {shortest}")
    if isinstance(warmup, str) and warmup == "mser5":
        # MSER-5 on the across-replication average (Law 2015, section 9.5.1)
        return mser5(np.mean([r[:shortest] for r in runs], axis=0))
    return warmup_point(np.zeros(shortest), warmup)


def steady_state_ci(
    data: RunsLike,
    level: float = DEFAULT_LEVEL,
    batches: int = DEFAULT_BATCHES,
    warmup: int | str | None = "mser5",
) -> Interval:
    r"""Confidence interval of a long-run (steady-state) mean after warm-up deletion.

    * one series :math:`Y_1..Y_N`: delete the first :math:`d` points, then
      :func:`batch_means_ci` with ``batches`` batches;
    * several independent series (a list, or a 2-D array with one row per replication):
      delete the same :math:`d` points from each, take each replication's mean
      :math:`\bar Y^{(r)} = \frac{1}{N_r - d}\sum_{n>d} Y^{(r)}_n` and apply
      :func:`replications_ci`.

    Parameters
    ----------
    data : 1-D series or list of 1-D series
    level : float in (0, 1)
        Confidence level (default 0.95).
    batches : int >= 2
        Number of batches (one series only).
    warmup : int, ``"mser5"`` or None
        Points deleted at the start of each series; ``"mser5"`` (default) chooses
        :math:`d` by MSER-5 (on the across-replication average for replications).
    """
    _level(level)
    runs = _as_runs(data)
    if isinstance(runs, np.ndarray):
        d = warmup_point(runs, warmup)
        out = batch_means_ci(runs[d:], level, batches)
        return Interval(out.estimate, out.low, out.high, level, out.method, out.n, d)
    if len(runs) < 2:
        raise ParameterError(f"replications need at least 2 runs, got {len(runs)}")
    d = _common_warmup(runs, warmup)
    out = replications_ci([float(r[d:].mean()) for r in runs], level)
    return Interval(out.estimate, out.low, out.high, level, out.method, out.n, d)


def rate_ci(
    data: RunsLike,
    level: float = DEFAULT_LEVEL,
    batches: int = DEFAULT_BATCHES,
    warmup: int | str | None = 0,
) -> Interval:
    r"""Confidence interval of the growth rate (drift per observation) of a series.

    The rate of :math:`Q_0, Q_1, \dots, Q_N` is the long-run mean of its increments
    :math:`\Delta_n = Q_n - Q_{n-1}`, :math:`\lim_N Q_N/N`. One series: batch means of
    the increments, i.e. :math:`(Q_{e_i} - Q_{s_i})/m` over contiguous batches
    :math:`[s_i, e_i]` of length :math:`m`; replications: each run's
    :math:`(Q_N - Q_d)/(N - d)`. Used for the overload drift
    :math:`\lambda - B/E[l_1]` of the model chapter, section 5, B.2.

    Parameters
    ----------
    data : 1-D series or list of 1-D series (levels, not increments)
    level : float in (0, 1)
    batches : int >= 2
    warmup : int, ``"mser5"`` or None
        Points deleted from the increments' start (default 0; an overloaded queue has no
        stationary level, but its increments do, so MSER-5 on the increments is allowed).
    """
    runs = _as_runs(data)
    if isinstance(runs, np.ndarray):
        return steady_state_ci(np.diff(runs), level, batches, warmup)
    return steady_state_ci([np.diff(r) for r in runs], level, batches, warmup)


def ratio_ci(
    numerators: SeriesLike, denominators: SeriesLike, level: float = DEFAULT_LEVEL
) -> Interval:
    r"""Confidence interval of a ratio of totals :math:`R = \sum_i Y_i / \sum_i X_i`.

    The pairs :math:`(Y_i, X_i)` are i.i.d. (independent replications, or batches of one
    long run, see :func:`batch_totals`); by the delta method (Cochran 1977, section 6.4)

    .. math:: \hat R \pm t_{n-1,(1+c)/2}\,
              \frac{1}{\bar X}\sqrt{\frac{\sum_i (Y_i - \hat R X_i)^2}{n (n-1)}}.

    Example: the mean sojourn is total sojourn over completions, batch by batch.
    """
    _level(level)
    y = _series(numerators, "numerators")
    x = _series(denominators, "denominators")
    if y.size != x.size:
        raise ParameterError(f"numerators and denominators must have equal length, got {y.size} and {x.size}")
    n = int(y.size)
    if n < 2:
        raise ParameterError(f"a ratio interval needs at least 2 pairs, got {n}")
    if not x.sum() > 0:
        raise ParameterError(f"the denominators must have a positive total, got {x.sum():g}")
    r = float(y.sum() / x.sum())
    resid = y - r * x
    se = math.sqrt(float(resid @ resid) / (n * (n - 1))) / float(x.mean())
    t = _t_ppf(0.5 + level / 2, n - 1)
    return Interval(r, r - t * se, r + t * se, level, "ratio", n)


def binomial_ci(successes: int, trials: int, level: float = DEFAULT_LEVEL) -> Interval:
    r"""Exact (Clopper-Pearson) interval of a probability :math:`p` from :math:`k` successes
    in :math:`n` independent Bernoulli(:math:`p`) trials.

    With :math:`\alpha = 1 - c`, the limits are Beta quantiles
    :math:`p_L = B^{-1}(\alpha/2;\, k, n - k + 1)` (0 if :math:`k = 0`) and
    :math:`p_U = B^{-1}(1 - \alpha/2;\, k + 1, n - k)` (1 if :math:`k = n`); the coverage is
    at least :math:`c` for every :math:`p` (Clopper & Pearson 1934). Unlike a Student
    interval on 0/1 data it does not collapse to a point when no success (or no failure)
    is seen, so it is the interval for rare events such as completions at an early
    iteration, :math:`u_n`, or :math:`P(\text{empty})` over independent replications.
    """
    _level(level)
    check_real("trials", trials, low=1, integer=True)
    check_real("successes", successes, low=0, high=trials, integer=True)
    k, n = int(successes), int(trials)
    from scipy import stats as _st

    alpha = 1 - level
    low = 0.0 if k == 0 else float(_st.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(_st.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return Interval(k / n, low, high, level, "binomial", n)


# -- streaming accumulators (memory independent of the series' length) --------------------
class StreamingSeries:
    r"""Running total, maximum and batch sums of a series of known length, fed in chunks.

    The series :math:`Y_0, \dots, Y_{L-1}` arrives in contiguous chunks (:meth:`add`);
    the accumulator keeps :math:`\sum Y`, :math:`\max Y` and the ``batches`` batch sums of
    :func:`batch_totals` (batch size :math:`m = \lfloor L/b \rfloor`, the remainder
    :math:`L - bm` dropped at the start), so :meth:`ci` is :func:`batch_means_ci` of the
    whole series and its memory is :math:`O(b)` whatever :math:`L`. Integer series are
    summed exactly (Python integers).

    Parameters
    ----------
    length : int
        :math:`L \ge 1`, the number of values the series will have.
    batches : int
        Number of batches :math:`b \ge 2` (default :data:`DEFAULT_BATCHES`).
    """

    def __init__(self, length: int, batches: int = DEFAULT_BATCHES) -> None:
        if not (type(length) is int and length >= 1 and type(batches) is int and batches >= 2):  # fast path
            check_real("length", length, low=1, integer=True)
            check_real("batches", batches, low=2, integer=True)
        self.length = int(length)
        self.batches = int(batches)
        self.size = self.length // self.batches
        self.skip = self.length - self.size * self.batches
        self.sums = np.zeros(self.batches)
        self.total: float = 0
        self.peak = -math.inf
        self.seen = 0

    def add(self, values: SeriesLike) -> None:
        """Append the next chunk of the series."""
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ParameterError(f"a chunk must be one-dimensional, got shape {arr.shape}")
        if self.seen + arr.size > self.length:
            raise ParameterError(f"the series has length {self.length}; got {self.seen + arr.size} values")
        if arr.size == 0:
            return
        high, low = arr.max(), arr.min()
        high, low = getattr(high, "item", lambda: high)(), getattr(low, "item", lambda: low)()
        self.peak = max(self.peak, high)
        if arr.dtype.kind in "iu" and max(abs(high), abs(low)) * arr.size >= 1 << 63:
            arr = arr.astype(object)  # its int64 sums could overflow: Python integers, exact
        self.total += int(arr.sum()) if arr.dtype.kind in "iubO" else float(arr.sum())
        start = max(0, self.skip - self.seen)  # the remainder at the start is in no batch
        if self.size > 0 and start < arr.size:
            p = self.seen + start - self.skip  # position of arr[start] in the batched part
            local = arr[start:]
            first = p // self.size
            cuts = np.arange((first + 1) * self.size, p + local.size, self.size) - p
            starts = np.concatenate([[0], cuts]).astype(np.intp)
            self.sums[first : first + starts.size] += np.add.reduceat(local, starts).astype(float)
        self.seen += arr.size

    @property
    def mean(self) -> float:
        """Mean of the values seen so far (``nan`` before any)."""
        return self.total / self.seen if self.seen else math.nan

    def ci(self, level: float = DEFAULT_LEVEL) -> Interval:
        """Batch-means interval of the long-run mean (the series must be complete)."""
        _level(level)
        if self.seen != self.length:
            raise ParameterError(f"the series is incomplete: {self.seen} of {self.length} values seen")
        if self.size < 1:
            raise ParameterError(f"series of length {self.length} is too short for {self.batches} batches")
        return _student(self.sums / self.size, level, "batch-means")


SKETCH_ACCURACY = 1e-3
r"""Relative accuracy :math:`\alpha` of :class:`QuantileSketch` for real-valued data."""


class QuantileSketch:
    r"""Quantiles of a stream of non-negative values with memory independent of its length.

    * ``integer=True`` (iteration counts): an exact histogram of the values, so the
      quantiles are exact; memory :math:`O(\max)` of the values seen.
    * ``integer=False`` (seconds): the logarithmic buckets of DDSketch (Masson, Rim & Lee,
      "DDSketch: a fast and fully-mergeable quantile sketch with relative-error
      guarantees", PVLDB 12 (2019)): value :math:`x > 0` goes to bucket
      :math:`i = \lceil \log_\gamma x \rceil`, :math:`\gamma = (1+\alpha)/(1-\alpha)`, and
      a quantile is returned as :math:`2\gamma^i/(\gamma+1)`, within relative error
      :math:`\alpha` (:data:`SKETCH_ACCURACY`) of the exact one; zeros are counted apart.

    The quantile of level :math:`q` is the inverted-CDF one, the smallest value :math:`x`
    with :math:`F(x) \ge q` (``numpy.quantile(..., method="inverted_cdf")``).
    """

    def __init__(self, integer: bool = True, accuracy: float = SKETCH_ACCURACY) -> None:
        if not (type(accuracy) is float and 0.0 < accuracy < 1.0):  # fast path: a plain float in range
            check_real("accuracy", accuracy, low=0.0, high=1.0, low_open=True, high_open=True)
        self.integer = bool(integer)
        self.gamma = (1 + accuracy) / (1 - accuracy)
        self.log_gamma = math.log(self.gamma)
        self.counts = np.zeros(0, dtype=np.int64)
        self.offset = 0  # bucket index of counts[0] (real-valued mode)
        self.zeros = 0
        self.count = 0

    def add(self, values: SeriesLike) -> None:
        """Add values (``nan`` ignored; negative values refused)."""
        arr = np.asarray(values).reshape(-1)
        if arr.dtype.kind == "f":
            arr = arr[~np.isnan(arr)]
        if arr.size == 0:
            return
        if arr.dtype.kind in "iu" and self.integer:
            if arr.min() < 0:
                raise ParameterError(f"a quantile sketch takes values >= 0, got {arr.min()}")
            self.count += int(arr.size)
            self._grow(0, int(arr.max()) + 1)
            self.counts += np.bincount(arr, minlength=self.counts.size)
            return
        arr = arr.astype(float)
        if arr.min() < 0:
            raise ParameterError(f"a quantile sketch takes values >= 0, got {arr.min():g}")
        self.count += int(arr.size)
        if self.integer:
            idx = arr.astype(np.int64)
            if not np.array_equal(idx, arr):
                raise ParameterError("an integer quantile sketch takes integer values")
            self._grow(0, int(idx.max()) + 1)
            self.counts += np.bincount(idx, minlength=self.counts.size)
            return
        zero = arr == 0
        self.zeros += int(zero.sum())
        idx = np.ceil(np.log(arr[~zero]) / self.log_gamma).astype(np.int64)
        if idx.size:
            lo, hi = int(idx.min()), int(idx.max()) + 1
            if self.counts.size == 0:
                self.offset = lo
            self._grow(min(lo, self.offset), max(hi, self.offset + self.counts.size))
            self.counts += np.bincount(idx - self.offset, minlength=self.counts.size)

    def add_counts(self, counts: SeriesLike) -> None:
        """Integer mode: add a histogram, ``counts[i]`` values equal to ``i``."""
        if not self.integer:
            raise ParameterError("add_counts is for an integer sketch")
        c = np.asarray(counts, dtype=np.int64).reshape(-1)
        if c.size and c.min() < 0:
            raise ParameterError("histogram counts must be >= 0")
        nz = np.flatnonzero(c)
        if nz.size == 0:
            return
        c = c[: nz[-1] + 1]
        self._grow(0, c.size)
        self.counts[: c.size] += c
        self.count += int(c.sum())

    def _grow(self, lo: int, hi: int) -> None:
        if self.integer:
            if hi > self.counts.size:
                self.counts = np.concatenate([self.counts, np.zeros(hi - self.counts.size, dtype=np.int64)])
            return
        if lo < self.offset or hi > self.offset + self.counts.size:
            new = np.zeros(hi - lo, dtype=np.int64)
            new[self.offset - lo : self.offset - lo + self.counts.size] = self.counts
            self.counts, self.offset = new, lo

    def merge(self, other: QuantileSketch) -> None:
        """Add another sketch's values (same mode and accuracy)."""
        if other.integer != self.integer or other.gamma != self.gamma:
            raise ParameterError("can only merge sketches of the same mode and accuracy")
        if other.count == 0:
            return
        self.count += other.count
        self.zeros += other.zeros
        if self.integer:
            self._grow(0, other.counts.size)
            self.counts[: other.counts.size] += other.counts
            return
        if self.counts.size == 0:
            self.counts, self.offset = other.counts.copy(), other.offset
            return
        hi = max(self.offset + self.counts.size, other.offset + other.counts.size)
        self._grow(min(self.offset, other.offset), hi)
        start = other.offset - self.offset
        self.counts[start : start + other.counts.size] += other.counts

    def quantiles(self, levels: SeriesLike) -> np.ndarray:
        """The inverted-CDF quantiles at ``levels`` in [0, 1] (``nan`` if no value was added)."""
        q = np.asarray(levels, dtype=float).reshape(-1)
        if q.size and (np.isnan(q).any() or q.min() < 0 or q.max() > 1):
            raise ParameterError(f"quantile levels must lie in [0, 1], got {q.tolist()}")
        if self.count == 0:
            return np.full(q.size, math.nan)
        cum = self.zeros + np.cumsum(self.counts)
        # smallest value with F(x) >= q: rank ceil(q * count), at least 1
        ranks = np.maximum(np.ceil(q * self.count - 1e-9 * self.count), 1)
        out = np.empty(q.size)
        for i, r in enumerate(ranks):
            if r <= self.zeros:
                out[i] = 0.0
                continue
            b = int(np.searchsorted(cum, r))
            out[i] = float(b) if self.integer else 2 * self.gamma ** (b + self.offset) / (self.gamma + 1)
        return out
