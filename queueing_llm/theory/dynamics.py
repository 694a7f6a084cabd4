r"""Family A of the model chapter, section 5: memory-constrained dynamics under saturated input [ADLS26].

The results are derived in SymPy from the model's primitives (stage memories
:math:`w_j = l_0 + 1 + j`, the greedy admission rule, the proportions :math:`p_k`) and are
valid for symbolic and numeric parameters. This module gathers the public functions of

* :mod:`~queueing_llm.theory.dynamics_core`: components, the eviction-free fixed point
  :math:`x^*`, the linearised map (companion matrices, survival polynomial :math:`F`, roots,
  spectral radius, stability decided exactly or by certified floats within a time budget
  (:mod:`~queueing_llm.theory.roots`), Eneström-Kakeya bounds) and the explicit
  :math:`l_1 = 2` solution with its first-eviction time;
* :mod:`~queueing_llm.theory.dynamics_cycles`: worst-case, adjacent, opposite,
  contiguous-block and evenly spaced cycles from their memory balances;
* :mod:`~queueing_llm.theory.dynamics_limit`: the large-prompt limiting polynomial
  :math:`A`, the gcd criterion, :math:`l_0^{\min}` and the cubic asymptotic;
* :mod:`~queueing_llm.theory.dynamics_map`: exact (rational) and float iteration of the
  relaxed saturated map with evictions, and cycle detection on any trajectory;
* :mod:`~queueing_llm.theory.dynamics_collapse`: metastability of greedy admission in the
  open system: the Gaussian first-overflow time, eviction cascades and the collapse time
  estimated from runs;
* :mod:`~queueing_llm.theory.dynamics_deviation`: the measured growth or contraction
  rate of deviations from :math:`x^*` in relaxed runs (``linear-map``, ``gcd-criterion``);
* :mod:`~queueing_llm.theory.dynamics_integer`: the integer system: token-bucket
  admission patterns, their peak memory, the largest eviction-free rate and exact cycles
  of the integer map (``integer-rate-limit``);
* :mod:`~queueing_llm.theory.dynamics_open`: the open system (Poisson arrivals): the
  stability threshold of greedy, rate-limited and reserve admission, the congested
  throughput and the queue's drift (the model chapter, A.7).

Source: [ADLS26] R. Ao, J. Dong, G. Luo, D. Simchi-Levi, *Service-Induced Congestion in
Memory-Constrained LLM Serving*, arXiv:2606.15555 (2026).
"""

from .dynamics_collapse import (
    CollapseTime,
    OverflowApproximation,
    collapse_iteration,
    collapse_time_estimate,
    gaussian_overflow_time,
    memory_moments,
)
from .dynamics_core import (
    LAMBDA,
    Component,
    admission_map,
    characteristic_polynomial,
    companion_matrix,
    components,
    decode_horizon,
    enestrom_kakeya_bounds,
    first_eviction_l1_two,
    fixed_point,
    fixed_point_state,
    is_stable,
    l1_two_solution,
    rate_limited_throughput,
    require_finite_memory,
    schur_cohn_stable,
    spectral_radius,
    stability,
    stage_balance,
    survival_coefficients,
    survival_polynomial,
    survival_roots,
)
from .dynamics_cycles import (
    BLOCK,
    SPACING,
    CycleFormula,
    adjacent_cycle,
    balanced_cycle,
    contiguous_cycle,
    cycle_state,
    cycle_throughputs,
    opposite_cycle,
    single_component,
    worst_cycle,
)
from .dynamics_deviation import (
    CONTRACTION_MARGIN,
    RATE_TOLERANCE,
    DeviationRate,
    common_prompt_model,
    deviation_rate,
    fixed_point_components,
    perturbed_fixed_point,
)
from .dynamics_integer import (
    INTEGER_RATE,
    IntegerCycle,
    congested_throughput,
    integer_cycle,
    integer_cycle_throughput,
    max_eviction_free_rate,
    pattern_memory,
    peak_memory,
    peak_memory_expression,
    resolve_policy,
    resolve_rate,
    token_bucket_admissions,
)
from .dynamics_limit import (
    SCALE,
    asymptotic_gap,
    cubic_asymptotic,
    decode_gcd,
    first_order_l0,
    l0_min,
    limiting_closed_form,
    limiting_polynomial,
    limiting_radius,
    prompt_ratios,
    radial_identity,
    spectral_radius_at,
    stable_at,
    unit_circle_roots,
    with_prompts,
)
from .dynamics_map import Cycle, RelaxedTrajectory, detect_cycle, relaxed_trajectory
from .dynamics_open import (
    OPEN_POLICIES,
    OpenSystem,
    open_arrival_rate,
    open_system,
    open_system_reason,
    reserve_cohort_cycle,
    stability_threshold,
)

__all__ = [
    "LAMBDA", "Component", "admission_map", "characteristic_polynomial", "companion_matrix", "components",
    "decode_horizon", "enestrom_kakeya_bounds", "first_eviction_l1_two", "fixed_point", "fixed_point_state",
    "is_stable", "l1_two_solution", "rate_limited_throughput", "require_finite_memory", "schur_cohn_stable",
    "spectral_radius", "stability", "stage_balance", "survival_coefficients", "survival_polynomial", "survival_roots",
    "BLOCK", "SPACING", "CycleFormula", "adjacent_cycle", "balanced_cycle", "contiguous_cycle", "cycle_state",
    "cycle_throughputs", "opposite_cycle", "single_component", "worst_cycle",
    "CollapseTime", "OverflowApproximation", "collapse_iteration", "collapse_time_estimate",
    "gaussian_overflow_time", "memory_moments",
    "CONTRACTION_MARGIN", "RATE_TOLERANCE", "DeviationRate", "common_prompt_model", "deviation_rate",
    "fixed_point_components", "perturbed_fixed_point",
    "INTEGER_RATE", "IntegerCycle", "congested_throughput", "integer_cycle", "integer_cycle_throughput",
    "max_eviction_free_rate", "pattern_memory", "peak_memory", "peak_memory_expression", "resolve_policy",
    "resolve_rate", "token_bucket_admissions",
    "SCALE", "asymptotic_gap", "cubic_asymptotic", "decode_gcd", "first_order_l0", "l0_min",
    "limiting_closed_form", "limiting_polynomial", "limiting_radius", "prompt_ratios", "radial_identity",
    "spectral_radius_at", "stable_at", "unit_circle_roots", "with_prompts",
    "Cycle", "RelaxedTrajectory", "detect_cycle", "relaxed_trajectory",
    "OPEN_POLICIES", "OpenSystem", "open_arrival_rate", "open_system", "open_system_reason", "reserve_cohort_cycle",
    "stability_threshold",
]
