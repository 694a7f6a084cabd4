r"""Deviations from the fixed point in the relaxed map: their measured growth or contraction rate.

Near the eviction-free fixed point the relaxed greedy map is linear (the model chapter, A.2): the
admissions obey the companion recursion of the survival polynomial :math:`F`, so a
deviation :math:`e_n` of the stage counts from :math:`x^*` behaves like
:math:`\|e_n\| \approx c\, \rho^n` (times a bounded oscillation when the dominant roots are
complex), :math:`\rho` the spectral radius of :math:`F`. :func:`deviation_rate` measures
:math:`\rho` from a relaxed run started at a small perturbation of :math:`x^*`
(:func:`perturbed_fixed_point`): it fits :math:`\log \|e_n\|` by least squares against
:math:`n` over the last two thirds of the linear window, the iterations before the first
eviction (growth) and before the deviation reaches the floating-point floor (contraction).

Accuracy measured on the catalogue models (float runs from a relative perturbation
:math:`10^{-4}`): relative error at most :math:`5 \cdot 10^{-4}` (Example 2: 4.3e-4 over a
28-iteration window; :math:`l_1 = 40`: 3e-5; Example 4: 9e-5; Example 5: 5e-15; the pairs
(2, 7), (3, 4), (2, 5): below 1e-4); runs at :math:`l_0^{\min} - 1` and :math:`l_0^{\min}`
resolve radii within :math:`10^{-7}` over 4000 iterations. Engines of a cluster serving
part of a model's types can do worse: up to :math:`3.1 \cdot 10^{-3}` (five types with
decode lengths 6, 10, 9, 15, 25, prompt 5, under coprime and three-engine round-robin
routing). :data:`RATE_TOLERANCE` and
:data:`CONTRACTION_MARGIN` are the tolerances the checks state.

Source: [ADLS26], the linearised map and the multi-type stability criterion (the model chapter, A.2,
A.5).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import ModelError, ParameterError
from ..model import ContinuousBatching, RequestType
from .dynamics_core import components, decode_horizon, fixed_point, require_finite_memory

__all__ = [
    "RATE_TOLERANCE",
    "CONTRACTION_MARGIN",
    "DeviationRate",
    "fixed_point_components",
    "perturbed_fixed_point",
    "common_prompt_model",
    "deviation_rate",
]

RATE_TOLERANCE = 0.01
"""Relative tolerance of the measured deviation rate against the spectral radius (1 %)."""

CONTRACTION_MARGIN = 1e-4
r"""A run *contracts* if its measured rate is below :math:`1 - 10^{-4}`; radii closer to 1
than this are beyond the resolution of the default runs."""

_FLOOR = 1e-12  # deviations below this fraction of the fixed state are floating-point noise


@dataclass(frozen=True)
class DeviationRate:
    r"""The measured growth or contraction of deviations from :math:`x^*` in one relaxed run.

    Attributes
    ----------
    rate : float
        Least-squares growth factor per iteration (``nan`` if the window is too short).
    window : tuple of int
        Iterations ``(start, end)`` of the fit (``end`` exclusive).
    first_eviction : int or None
        First iteration with an eviction (the end of the linear regime).
    contracts : bool
        ``rate < 1 - CONTRACTION_MARGIN`` and no eviction.
    initial_deviation, final_deviation : float
        Euclidean norm of the deviation at iteration 0 and at ``end - 1``.
    """

    rate: float
    window: tuple[int, int]
    first_eviction: int | None
    contracts: bool
    initial_deviation: float
    final_deviation: float


def fixed_point_components(model: ContinuousBatching) -> list[list[Any]]:
    r"""The fixed point per component (type and decode length) and stage: :math:`p_c x^*` at
    stages :math:`j < l_{1,c}`, 0 above (the rows :func:`~.dynamics_map.relaxed_trajectory`
    takes as ``initial`` and returns as ``component_batch``); SymPy numbers."""
    xs = fixed_point(model)
    L = decode_horizon(model)
    return [[c.p * xs if j < int(c.l1) else 0 * xs for j in range(L)] for c in components(model)]


def perturbed_fixed_point(model: ContinuousBatching, eps: float = 1e-4, seed: int = 0) -> list[list[float]]:
    r"""A state near the fixed point: stage counts :math:`p_c x^* (1 + \epsilon u_{c,j})`,
    :math:`u` uniform on :math:`[-1, 1]` from ``seed``, scaled down if its memory exceeds
    :math:`M` (one row per component, as :func:`~.dynamics_map.relaxed_trajectory` reads)."""
    M = float(require_finite_memory(model))
    rng = np.random.default_rng(seed)
    comps = components(model)
    rows = []
    for c, row in zip(comps, fixed_point_components(model), strict=True):
        rows.append([float(v) * (1 + eps * rng.uniform(-1, 1)) if j < int(c.l1) else 0.0 for j, v in enumerate(row)])
    memory = sum(float(c.w(j)) * v for c, row in zip(comps, rows, strict=True) for j, v in enumerate(row))
    if memory > M:
        rows = [[v * M / memory for v in row] for row in rows]
    return rows


def common_prompt_model(model: ContinuousBatching, l0: Any) -> ContinuousBatching:
    r"""The model with every type's prompt set to ``l0`` (same decodes, proportions, :math:`M`,
    policy): the models of :func:`~.dynamics_limit.l0_min`'s definition, with finite memory so
    that the relaxed map runs."""
    if int(l0) != l0 or l0 < 0:
        raise ParameterError(f"l0 must be a non-negative integer, got {l0}")
    types = [RequestType(prompt=int(l0), decode=t.decode, arrivals=t.arrivals) for t in model.types]
    return replace(model, types=types, mix=model.proportions)


def deviation_rate(model: ContinuousBatching, run: Any) -> DeviationRate:
    r"""Measured growth factor per iteration of the deviation from the fixed point.

    :math:`e_n` = the run's stage counts per component minus :math:`p_c x^*` (Euclidean
    norm over components and stages). The window ends at the first eviction and at the
    first :math:`n` with :math:`\|e_n\| < 10^{-12} \|x^*\|`; the fit uses its last two
    thirds (the dominant roots have taken over). ``run``: a
    :class:`~.dynamics_map.RelaxedTrajectory` of ``model`` under greedy admission.
    """
    batch = getattr(run, "component_batch", None)
    if batch is None:
        raise ModelError("the deviation rate is measured on a relaxed run (ql.theory.dynamics.relaxed_trajectory)")
    fixed = np.array([[float(v) for v in row] for row in fixed_point_components(model)])
    b = np.asarray(batch, dtype=float)
    if b.shape[1:] != fixed.shape:
        raise ModelError(f"the run's components/stages {b.shape[1:]} do not match the model's {fixed.shape}")
    e = np.sqrt(((b - fixed[None]) ** 2).sum(axis=(1, 2)))
    first = run.first_eviction
    end = len(e) if first is None else int(first)
    small = np.nonzero(e[:end] < _FLOOR * float(np.sqrt((fixed**2).sum())))[0]
    if small.size:
        end = int(small[0])
    start = end // 3
    if end - start < 3 or np.any(e[start:end] == 0):
        rate = float("nan")
    else:
        slope = np.polyfit(np.arange(start, end, dtype=float), np.log(e[start:end]), 1)[0]
        rate = float(np.exp(slope))
    contracts = first is None and bool(rate < 1 - CONTRACTION_MARGIN)
    return DeviationRate(rate, (start, end), first, contracts, float(e[0]), float(e[max(end - 1, 0)]))
