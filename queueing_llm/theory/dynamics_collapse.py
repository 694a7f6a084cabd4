r"""Metastable collapse of greedy admission in the open system (the model chapter, A.7).

Under greedy admission with :math:`\theta < \lambda < x^*` (:math:`\theta` the worst-cycle
throughput) the congested regime is absorbing, but from an empty system the batch first
lives in an **eviction-free regime**: every arrival is admitted at once, the batch holds
the arrivals of the last :math:`l_1` iterations and its memory after admission is

.. math:: M_n = \sum_{j=0}^{l_1-1} w_j A_{n-j}, \qquad
          E[M_n] = \lambda C, \quad \mathrm{Var}(M_n) = \sigma_A^2 \sum_j w_j^2, \quad
          \mathrm{Cov}(M_n, M_{n+1}) = \sigma_A^2 \sum_{j=0}^{l_1-2} w_j w_{j+1},

(:math:`A_n` i.i.d. arrivals with mean :math:`\lambda` and variance :math:`\sigma_A^2`,
:math:`C = \sum_j w_j`). A fluctuation that takes :math:`M_n` above :math:`M` forces the
first eviction. In the Gaussian approximation of this large deviation the overflows are
the upcrossings of the level :math:`M` by a stationary Gaussian sequence, whose rate per
iteration is

.. math:: \nu = P(M_n \le M < M_{n+1}) = \Phi(z) - \Phi_2(z, z; r), \qquad
          z = \frac{M - \lambda C}{\sigma_A \sqrt{\sum_j w_j^2}},\quad
          r = \frac{\sum_j w_j w_{j+1}}{\sum_j w_j^2},

so the mean time to the first eviction is about :math:`1/\nu`
(:func:`gaussian_overflow_time`). On the default model (:math:`M = 2000`, :math:`l_0 = 10`,
:math:`l_1 = 40`, Poisson arrivals) this gives 8,419, 2,622 and 424 iterations at
:math:`\lambda` = 1.05, 1.1, 1.2; the first evictions measured from an empty system take
2,738 [1,567, 5,299] iterations at 1.1 (12 runs) and 738 [478, 1,209] at 1.2 (20 runs, 95 %
intervals): the approximation is inside the interval at 1.1 and 40 % low at 1.2. Not every
overflow collapses: most are absorbed and the system returns to the eviction-free regime.
The **collapse** (first eviction cascade, :func:`collapse_iteration`: more than :math:`l_1` evictions within :math:`l_1`
consecutive iterations) comes much later; its mean time is estimated from runs by
:func:`collapse_time_estimate` (escape from a metastable regime is close to memoryless, so
the runs' collapse times are treated as exponential with right censoring at the run
length: maximum-likelihood mean = total observed time / collapses, exact chi-square
interval). Measured on the default model: mean collapse time 3.2e5 [1.4e5, 9.8e5]
iterations at :math:`\lambda = 1.1` (5 collapses in 12 runs of 2e5 iterations) and 1.16e4
[7.5e3, 1.9e4] at 1.2 (20 of 20 runs of 1e5), i.e. about 100 and 16 overflows per
collapse: the Gaussian overflow time is a lower bound of the collapse time, not an
approximation of it.

Source: the open system of [ADLS26] (the model chapter, A.7) and the references chapter, section 1 ("greedy
shows no growth over 2e5 iterations at lambda = 1.02-1.05 (metastable)"); upcrossing rate
of a Gaussian sequence (Rice's formula in discrete time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..errors import ParameterError
from ..model import ContinuousBatching
from ..numbers import check_real, to_float
from .dynamics_core import require_finite_memory
from .dynamics_cycles import single_component

__all__ = [
    "OverflowApproximation",
    "CollapseTime",
    "memory_moments",
    "gaussian_overflow_time",
    "collapse_iteration",
    "collapse_time_estimate",
]


@dataclass(frozen=True)
class OverflowApproximation:
    r"""The Gaussian approximation of the first overflow (:func:`gaussian_overflow_time`).

    Attributes
    ----------
    mean, variance, lag_covariance : float
        :math:`E[M_n]`, :math:`\mathrm{Var}(M_n)`, :math:`\mathrm{Cov}(M_n, M_{n+1})`.
    z : float
        Standardised distance of :math:`M` above the mean memory.
    rate : float
        Upcrossings of :math:`M` per iteration, :math:`\nu`.
    time : float
        :math:`1/\nu`, the approximate mean number of iterations to the first eviction.
    """

    mean: float
    variance: float
    lag_covariance: float
    z: float
    rate: float
    time: float


def memory_moments(model: ContinuousBatching, rate: Any = None) -> dict[str, sp.Expr]:
    r"""Mean, variance and lag-one covariance of the eviction-free memory
    :math:`M_n = \sum_j w_j A_{n-j}` (exact SymPy expressions; ``rate`` overrides the
    arrival mean :math:`\lambda`, keeping the law's index of dispersion
    :math:`\sigma_A^2/\lambda`)."""
    c = single_component(model)
    (t,) = model.types
    if t.arrivals is None:
        raise ParameterError("memory_moments needs an arrival law per iteration (the model has none)")
    lam = sp.sympify(t.arrivals.mean)
    var_a = sp.sympify(t.arrivals.variance)
    if rate is not None:
        new = sp.nsimplify(sp.sympify(rate))
        var_a, lam = var_a * new / lam, new
    j = sp.Symbol("j", integer=True, nonnegative=True)
    L = c.l1
    return {
        "mean": sp.simplify(lam * sp.summation(c.w(j), (j, 0, L - 1))),
        "variance": sp.simplify(var_a * sp.summation(c.w(j) ** 2, (j, 0, L - 1))),
        "lag_covariance": sp.simplify(var_a * sp.summation(c.w(j) * c.w(j + 1), (j, 0, L - 2))),
    }


def gaussian_overflow_time(model: ContinuousBatching, rate: Any = None) -> OverflowApproximation:
    r"""Approximate mean iterations from an empty system to the first eviction under greedy
    admission: :math:`1/\nu`, :math:`\nu = \Phi(z) - \Phi_2(z, z; r)` (module docstring).
    ``inf`` when the memory never exceeds :math:`M` (zero arrival variance)."""
    M = to_float(require_finite_memory(model), "kv_capacity M")
    mom = {k: to_float(v, k) for k, v in memory_moments(model, rate).items()}
    if mom["variance"] <= 0:
        return OverflowApproximation(mom["mean"], 0.0, 0.0, math.inf, 0.0, math.inf)
    sd = math.sqrt(mom["variance"])
    z = (M - mom["mean"]) / sd
    r = mom["lag_covariance"] / mom["variance"]
    from scipy import stats  # SciPy loads where it is used (import queueing_llm stays light)

    joint = stats.multivariate_normal(mean=[0.0, 0.0], cov=[[1.0, r], [r, 1.0]]).cdf([z, z])
    nu = max(float(stats.norm.cdf(z) - joint), 0.0)
    return OverflowApproximation(mom["mean"], mom["variance"], mom["lag_covariance"], z, nu,
                                 math.inf if nu == 0 else 1.0 / nu)


def collapse_iteration(evictions: Any, window: int) -> int | None:
    r"""First iteration :math:`n` at which more than ``window`` requests were evicted in the
    ``window`` iterations up to :math:`n` (an eviction cascade; ``window`` = :math:`l_1`,
    one decode lifetime), or None. ``evictions``: per-iteration counts (any shape
    ``(N, ...)``; summed over the other axes). Measured separation on the default model:
    eviction-free stretches have at most about 10 evictions per 40 iterations, the
    congested regime about 180."""
    check_real("window", window, low=1, integer=True)
    ev = np.asarray(evictions, dtype=float)
    ev = ev.reshape(ev.shape[0], -1).sum(axis=1)
    counts = np.convolve(ev, np.ones(int(window)))[: ev.shape[0]]
    hits = np.nonzero(counts > window)[0]
    return int(hits[0]) if hits.size else None


@dataclass(frozen=True)
class CollapseTime:
    r"""Mean time to collapse estimated from runs (:func:`collapse_time_estimate`).

    Attributes
    ----------
    estimate : float
        Total observed iterations over the number of collapses (``inf`` if none).
    low, high : float
        Exact chi-square interval at ``level`` (``high`` is ``inf`` with no collapse).
    collapses, runs : int
    exposure : float
        Total iterations observed before collapse or the end of the run.
    level : float
    """

    estimate: float
    low: float
    high: float
    collapses: int
    runs: int
    exposure: float
    level: float

    def __str__(self) -> str:
        return (f"{self.estimate:.4g} iterations [{self.low:.4g}, {self.high:.4g}] at {self.level:.0%} "
                f"({self.collapses} collapses in {self.runs} runs)")


def collapse_time_estimate(times: Any, lengths: Any, level: float = 0.95) -> CollapseTime:
    r"""Mean collapse time from runs: ``times[i]`` the collapse iteration of run ``i`` (None
    if it did not collapse), ``lengths[i]`` its number of iterations.

    With exponential collapse times censored at the run lengths, the maximum-likelihood
    mean is :math:`\hat\tau = T/k` (:math:`T` the total time observed before collapse or
    censoring, :math:`k` the collapses), with the interval
    :math:`[2T/\chi^2_{1-\alpha/2}(2k + 2),\ 2T/\chi^2_{\alpha/2}(2k)]` (upper limit
    :math:`\infty` when :math:`k = 0`), :math:`\alpha = 1 - ` ``level``.
    """
    check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    times, lengths = list(times), list(lengths)
    if len(times) != len(lengths) or not times:
        raise ParameterError(f"times and lengths must be non-empty and of equal length, got {len(times)} and "
                             f"{len(lengths)}")
    k = sum(t is not None for t in times)
    T = float(sum((t if t is not None else n) for t, n in zip(times, lengths, strict=True)))
    alpha = 1 - level
    from scipy import stats  # SciPy loads where it is used (import queueing_llm stays light)

    low = 2 * T / stats.chi2.ppf(1 - alpha / 2, 2 * k + 2)
    high = math.inf if k == 0 else 2 * T / stats.chi2.ppf(alpha / 2, 2 * k)
    return CollapseTime(math.inf if k == 0 else T / k, float(low), float(high), k, len(times), T, level)
