r"""WAIT's throughput gap to the fluid benchmark under heavy-traffic scaling, measured.

[ALSW25] compare WAIT with the fluid benchmark as the system is scaled up: arrival rates,
the KV budget :math:`M` and :math:`1/d_1` multiplied by :math:`\zeta` (so :math:`\rho`,
:math:`\Delta^*` stay fixed while :math:`n_k^* = \lambda_k \Delta^*` and :math:`M^*` grow like
:math:`\zeta`). What the package derives (registry entry ``wait-throughput``): the fluid
throughput :math:`\zeta \sum_k \lambda_k` and a relative gap that vanishes in the fluid limit.
What it only **measures** (this module): the gap
:math:`G(\zeta) = \zeta \sum_k \lambda_k - \text{WAIT's throughput}` at the fluid capacity
(the rates scaled so that :math:`M^* = M`), with a replication interval at every
:math:`\zeta`, and the exponent :math:`a` of a least-squares fit
:math:`\log G = a \log \zeta + b` with its Student interval. No rate is claimed beyond what
the fit shows.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ParameterError
from .model import ContinuousBatching, LinearIterationTime
from .numbers import check_real, to_float
from .stats import replications_ci

__all__ = ["GapMeasurement", "scale_heavy_traffic", "at_fluid_capacity", "measure_gap", "fit_exponent"]


def scale_heavy_traffic(model: ContinuousBatching, zeta: float) -> ContinuousBatching:
    r"""The model with arrival rates and :math:`M` times :math:`\zeta` and :math:`d_1` divided by it."""
    from .compare import scale_arrivals

    check_real("zeta", zeta, low=1.0)
    if model.iteration_time is None:
        raise ParameterError("heavy-traffic scaling needs a linear iteration time (d0, d1) and PoissonProcess arrivals")
    total = sum(to_float(t.arrival_rate, "rate") for t in model.types)
    it = model.iteration_time
    scaled = scale_arrivals(model, total * zeta)
    return dataclasses.replace(scaled, kv_capacity=to_float(model.M, "M") * zeta,
                               iteration_time=LinearIterationTime(it.d0, to_float(it.d1, "d1") / zeta))


def at_fluid_capacity(model: ContinuousBatching, fraction: float = 1.0) -> ContinuousBatching:
    r"""The model with its rates scaled by ``fraction`` times the largest common factor the fluid
    benchmark allows, :math:`M/(d_0 + d_1 M) / \sum_k \lambda_k W_k` (``fluid-benchmark``)."""
    from .compare import scale_arrivals
    from .theorems import theorems

    check_real("fraction", fraction, low=0.0, high=1.0, low_open=True)
    values = theorems["fluid-benchmark"].evaluate(model)
    factor = to_float(values["capacity_bound"] / values["load"], "capacity factor")
    total = sum(to_float(t.arrival_rate, "rate") for t in model.types)
    return scale_arrivals(model, total * factor * fraction)


@dataclass(frozen=True)
class GapMeasurement:
    """Measured gaps (requests/s) per scaling, and the fitted exponent with its interval.

    ``zetas``, ``fluid_throughput`` and ``gaps`` hold the scalings measured in full (every
    replication run); ``exhausted`` is empty, or says why the measurement stopped early (the
    time budget) and which scalings it left out. ``seconds``: wall-clock time spent.
    """

    zetas: tuple
    fluid_throughput: tuple
    gaps: tuple
    exponent: float
    exponent_ci: tuple
    level: float
    iterations: int = 0
    replications: int = 0
    fraction: float = 1.0
    seconds: float = 0.0
    exhausted: str = ""

    def __str__(self) -> str:
        parts = ", ".join(f"zeta {z:g}: gap {g.estimate:.4g} [{g.low:.4g}, {g.high:.4g}]"
                          for z, g in zip(self.zetas, self.gaps, strict=True))
        lo, hi = self.exponent_ci
        text = f"{parts}; fitted exponent {self.exponent:.3g} [{lo:.3g}, {hi:.3g}] at {self.level:.0%}"
        return text + (f" ({self.exhausted})" if self.exhausted else "")


def fit_exponent(zetas: Sequence[float], gaps: Sequence[float], level: float = 0.95) -> tuple[float, tuple]:
    r"""Least-squares exponent :math:`a` of :math:`\log G = a \log \zeta + b`, with its Student interval.

    :math:`\hat a = S_{xy}/S_{xx}` over the points with :math:`G > 0` (:math:`x = \log\zeta`,
    :math:`y = \log G`), standard error :math:`\sqrt{\mathrm{SSR}/((n-2) S_{xx})}`, interval
    :math:`\hat a \pm t_{n-2,(1+c)/2}\,\mathrm{se}` at level :math:`c` (ordinary least squares
    with independent normal errors in :math:`\log G`; Draper and Smith 1998, section 3.1).
    Returns ``(nan, (nan, nan))`` when fewer than 3 gaps are positive (no interval).
    """
    from scipy import stats as sps  # SciPy loads where it is used (import queueing_llm stays light)

    check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    if len(zetas) != len(gaps):
        raise ParameterError(f"zetas and gaps must have equal lengths, got {len(zetas)} and {len(gaps)}")
    pts = [(math.log(float(z)), math.log(float(g))) for z, g in zip(zetas, gaps, strict=True) if float(g) > 0]
    if len(pts) < 3:
        return math.nan, (math.nan, math.nan)
    x = np.array([a for a, _ in pts])
    y = np.array([b for _, b in pts])
    if np.ptp(x) == 0:
        raise ParameterError(f"zetas must not all be equal, got {list(zetas)}")
    fit = sps.linregress(x, y)
    t = float(sps.t.ppf((1 + level) / 2, len(pts) - 2))
    half = t * float(fit.stderr)
    return float(fit.slope), (float(fit.slope) - half, float(fit.slope) + half)


def measure_gap(model: ContinuousBatching, zetas: Sequence[float] = (1, 4, 16, 64), *, fraction: float = 1.0,
                iterations: int = 4000, replications: int = 4, seed: int = 0, level: float = 0.95,
                policy: Any = None, time_budget: float | None = 600.0,
                progress: Callable[[str], Any] | None = None) -> GapMeasurement:
    r"""Measure WAIT's throughput gap to the fluid benchmark for each :math:`\zeta`.

    Each :math:`\zeta`: the model at ``fraction`` of its fluid capacity (:func:`at_fluid_capacity`),
    scaled (:func:`scale_heavy_traffic`), run under ``policy`` (default :func:`queueing_llm.fluid_wait`)
    for ``replications`` independent runs of ``iterations``; the gap of run :math:`r` is
    :math:`\zeta \sum_k \lambda_k - (\text{completions after the first fifth})/(\text{their seconds})`,
    with a Student interval over the replications; the exponent comes from :func:`fit_exponent`.

    Cost: WAIT runs on the engine's Python loop (no compiled kernel covers it), whose work per
    iteration grows with the batch (about :math:`\zeta` times the thresholds) and the number of
    cohorts; a run's time grows about linearly in :math:`\zeta` (measured on Example 3, 1,000
    iterations: 0.2 s at :math:`\zeta = 1`, 1.2 s at :math:`\zeta = 64`).

    Parameters
    ----------
    time_budget : float or None
        Seconds (default 600). Before each run the time it would take is estimated (the last
        run's seconds, times the ratio of the scalings when the scaling changes); a run that
        would overrun the budget is not started, the scalings not measured in full are left
        out and ``exhausted`` says so. ``None``: no limit.
    progress : callable or None
        ``progress(message)`` after every run (scaling, replication, gap, seconds so far).
    """
    from .scheduling import fluid_wait
    from .sim import simulate
    from .stable_range import resolve_policy

    started = time.monotonic()
    check_real("iterations", iterations, low=100, integer=True)
    check_real("replications", replications, low=2, integer=True)
    if time_budget is not None:
        check_real("time_budget", time_budget, low=0.0, low_open=True)
    if len(zetas) < 3:
        raise ParameterError(f"zetas must hold at least 3 scalings for a fit with an interval, got {list(zetas)}")
    base = at_fluid_capacity(model, fraction)
    done_z, fluid, gaps = [], [], []
    exhausted, last, last_zeta = "", None, None
    for i, zeta in enumerate(zetas):
        m = resolve_policy(scale_heavy_traffic(base, zeta), fluid_wait if policy is None else policy)
        x = sum(to_float(t.arrival_rate, "rate") for t in m.types)
        seeds = np.random.SeedSequence((seed, i)).spawn(int(replications))
        values = []
        for r, s in enumerate(seeds):
            elapsed = time.monotonic() - started
            if time_budget is not None:
                estimate = 0.0 if last is None else last * (float(zeta) / float(last_zeta))
                if elapsed + estimate > time_budget:
                    exhausted = (f"time budget of {time_budget:g} s: stopped after {elapsed:.1f} s before "
                                 f"zeta {zeta:g} replication {r + 1} (estimated {estimate:.1f} s); scalings "
                                 f"not measured: {[float(z) for z in zetas[i:]]}")
                    break
            t0 = time.monotonic()
            run = simulate(m, int(iterations), seed=int(s.generate_state(1)[0]))
            start = int(iterations) // 5
            t = np.asarray(run.time, dtype=float)
            done = float(np.asarray(run.completions)[start + 1:].sum())
            values.append(x - done / (t[-1] - t[start]))
            last, last_zeta = time.monotonic() - t0, zeta
            if progress is not None:
                progress(f"zeta {zeta:g} replication {r + 1}/{replications}: gap {values[-1]:.4g} requests/s "
                         f"({time.monotonic() - started:.1f} s)")
        if exhausted:
            break
        done_z.append(zeta)
        fluid.append(x)
        gaps.append(replications_ci(values, level))
    if len(done_z) >= 3:
        exponent, ci = fit_exponent(done_z, [g.estimate for g in gaps], level)
    else:
        exponent, ci = math.nan, (math.nan, math.nan)
    return GapMeasurement(tuple(done_z), tuple(fluid), tuple(gaps), exponent, ci, level, int(iterations),
                          int(replications), float(fraction), time.monotonic() - started, exhausted)
