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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from .errors import ParameterError
from .model import ContinuousBatching, LinearIterationTime
from .numbers import check_real, to_float
from .stats import replications_ci

__all__ = ["GapMeasurement", "scale_heavy_traffic", "at_fluid_capacity", "measure_gap"]


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
    """Measured gaps (requests/s) per scaling, and the fitted exponent with its interval."""

    zetas: tuple
    fluid_throughput: tuple
    gaps: tuple
    exponent: float
    exponent_ci: tuple
    level: float

    def __str__(self) -> str:
        parts = ", ".join(f"zeta {z:g}: gap {g.estimate:.4g} [{g.low:.4g}, {g.high:.4g}]"
                          for z, g in zip(self.zetas, self.gaps, strict=True))
        lo, hi = self.exponent_ci
        return f"{parts}; fitted exponent {self.exponent:.3g} [{lo:.3g}, {hi:.3g}] at {self.level:.0%}"


def measure_gap(model: ContinuousBatching, zetas: Sequence[float] = (1, 4, 16, 64), *, fraction: float = 1.0,
                iterations: int = 4000, replications: int = 4, seed: int = 0, level: float = 0.95,
                policy: Any = None) -> GapMeasurement:
    r"""Measure WAIT's throughput gap to the fluid benchmark for each :math:`\zeta`.

    Each :math:`\zeta`: the model at ``fraction`` of its fluid capacity (:func:`at_fluid_capacity`),
    scaled (:func:`scale_heavy_traffic`), run under ``policy`` (default :func:`queueing_llm.fluid_wait`)
    for ``replications`` independent runs of ``iterations``; the gap of run :math:`r` is
    :math:`\zeta \sum_k \lambda_k - (\text{completions after the first fifth})/(\text{their seconds})`.
    """
    from .scheduling import fluid_wait
    from .sim import simulate
    from .stable_range import resolve_policy

    check_real("iterations", iterations, low=100, integer=True)
    check_real("replications", replications, low=2, integer=True)
    if len(zetas) < 3:
        raise ParameterError(f"zetas must hold at least 3 scalings for a fit with an interval, got {list(zetas)}")
    base = at_fluid_capacity(model, fraction)
    fluid, gaps = [], []
    for i, zeta in enumerate(zetas):
        m = resolve_policy(scale_heavy_traffic(base, zeta), fluid_wait if policy is None else policy)
        x = sum(to_float(t.arrival_rate, "rate") for t in m.types)
        seeds = np.random.SeedSequence((seed, i)).spawn(int(replications))
        values = []
        for s in seeds:
            run = simulate(m, int(iterations), seed=int(s.generate_state(1)[0]))
            start = int(iterations) // 5
            t = np.asarray(run.time, dtype=float)
            done = float(np.asarray(run.completions)[start + 1:].sum())
            values.append(x - done / (t[-1] - t[start]))
        fluid.append(x)
        gaps.append(replications_ci(values, level))
    logs = [(math.log(z), math.log(g.estimate)) for z, g in zip(zetas, gaps, strict=True) if g.estimate > 0]
    if len(logs) < 3:
        exponent, ci = math.nan, (math.nan, math.nan)
    else:
        fit = sps.linregress([a for a, _ in logs], [b for _, b in logs])
        t = sps.t.ppf((1 + level) / 2, len(logs) - 2)
        exponent, ci = float(fit.slope), (float(fit.slope - t * fit.stderr), float(fit.slope + t * fit.stderr))
    return GapMeasurement(tuple(zetas), tuple(fluid), tuple(gaps), exponent, ci, level)
