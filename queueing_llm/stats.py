r"""Output analysis of simulated trajectories: confidence intervals and warm-up deletion.

Two ways to put a confidence interval on a long-run mean, both with a documented
confidence level (default 95 %):

* **independent replications** (:func:`replications_ci`): :math:`R` independent runs give
  :math:`R` i.i.d. estimates; the interval is :math:`\bar Y \pm t_{R-1, 1-\alpha/2} S/\sqrt R`;
* **batch means** (:func:`batch_means_ci`): one long run cut into :math:`b` contiguous
  batches whose means are treated as approximately i.i.d.; the same Student interval
  on the batch means.

Warm-up deletion by MSER-5 (:func:`mser5`): the truncation point :math:`d` (a multiple
of 5) that minimises :math:`\sum_{i>d}(\bar Y_i - \bar Y_{d})^2/(n-d)^2` over the 5-point
batch averages, searched over the first half of the run (White 1997; Franklin & White 2008).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

from .errors import ParameterError
from .numbers import check_real

__all__ = ["Interval", "replications_ci", "batch_means_ci", "mser5", "DEFAULT_LEVEL"]

DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval.

    Attributes
    ----------
    estimate, low, high : float
    level : float
        Confidence level in (0, 1).
    method : str
        ``"replications"`` or ``"batch-means"``.
    n : int
        Number of replications or batches the interval rests on.
    """

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def contains(self, value: float, slack: float = 0.0) -> bool:
        """True if ``value`` lies in ``[low - slack, high + slack]``."""
        return self.low - slack <= value <= self.high + slack


def _level(level: float) -> None:
    check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)


def _student(values: np.ndarray, level: float, method: str) -> Interval:
    n = int(values.size)
    mean = float(values.mean())
    if n < 2:
        raise ParameterError(f"a confidence interval needs at least 2 {method} values, got {n}")
    s = float(values.std(ddof=1))
    t = float(_st.t.ppf(0.5 + level / 2, n - 1))
    half = t * s / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, level, method, n)


def replications_ci(values: Sequence[float] | np.ndarray, level: float = DEFAULT_LEVEL) -> Interval:
    r"""Student-t interval from independent replications' estimates.

    :math:`\bar Y \pm t_{R-1,\,(1+c)/2}\, S / \sqrt{R}` at confidence level :math:`c`.
    """
    _level(level)
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ParameterError(f"values must be one-dimensional, got shape {arr.shape}")
    return _student(arr, level, "replications")


def batch_means_ci(
    series: Sequence[float] | np.ndarray, level: float = DEFAULT_LEVEL, batches: int = 20
) -> Interval:
    r"""Batch-means interval for the long-run mean of one (warmed-up) series.

    The series is cut into ``batches`` contiguous batches of equal length (the remainder
    at the start is dropped); the batch means :math:`\bar Y_1..\bar Y_b` get the Student
    interval :math:`\bar Y \pm t_{b-1,(1+c)/2} S_b/\sqrt b`. Twenty batches of at least a
    few hundred points each is the usual rule.
    """
    _level(level)
    check_real("batches", batches, low=2, integer=True)
    arr = np.asarray(series, dtype=float)
    if arr.ndim != 1:
        raise ParameterError(f"series must be one-dimensional, got shape {arr.shape}")
    size = arr.size // int(batches)
    if size < 1:
        raise ParameterError(
            f"series of length {arr.size} is too short for {batches} batches (need >= {batches})"
        )
    used = arr[arr.size - size * int(batches):]
    means = used.reshape(int(batches), size).mean(axis=1)
    return _student(means, level, "batch-means")


def mser5(series: Sequence[float] | np.ndarray) -> int:
    r"""MSER-5 warm-up truncation point (a number of initial observations to delete).

    Averages the series in batches of 5, :math:`Z_1..Z_m`, and returns :math:`5 d^*` with
    :math:`d^* = \arg\min_{0 \le d \le m/2} \frac{1}{(m-d)^2}\sum_{i>d} (Z_i - \bar Z_{d})^2`.
    """
    arr = np.asarray(series, dtype=float)
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
    sse = csq[d] - k * mean**2
    stat = sse / k**2
    return int(5 * d[int(np.argmin(stat))])
