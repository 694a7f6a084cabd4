r"""Checks of family A (saturated dynamics) where the theorems are tight, and the runs they need.

Every check takes its theory numbers from ``prediction`` (what ``evaluate`` returned) and
measures the runs; a run that violates a hypothesis (another policy, an integer run for a
relaxed statement, an open-system run) contributes "does not apply", never a failure. A
check given several runs compares every applicable one; it holds iff all comparisons
hold, and does not apply if no run applies. Comparisons are exact (integer runs, rational
relaxed maps) or within a stated tolerance (floating-point relaxed maps):

``fixed-point``
    a relaxed greedy run started at a uniform state (every stage :math:`p_c y`) stays
    there exactly iff :math:`y = x^*`; the measured :math:`x^*` is the level of a run that
    stays, equal to ``x_star``.
``rate-limited``
    a relaxed run under ``rate_limited(x)`` from an empty batch reaches a cycle whose
    throughput equals ``throughput``, with no eviction at all (exact).
``worst-cycle``
    the relaxed greedy map from an empty batch is on the worst cycle: its cycle throughput
    equals ``throughput`` exactly; with a run at :math:`x^*` the ratio of the two equals
    ``ratio``; the integer greedy system from an empty batch falls into the cycle of
    ``integer_throughput`` (exact iteration of the integer map, which the floors change:
    Example 2 gives 5/3, not 8/5). A relaxed run from another state must settle on a cycle
    at least as fast (one-sided).
``cycles``
    a run started on a catalogued cycle (relaxed: its exact state; integer: the floored
    state) is identified by its initial state, and its cycle throughput equals the
    catalogued value (relaxed) or the integer version in ``integer`` (exact).
``linear-map`` and ``gcd-criterion``
    the growth or contraction rate of deviations from :math:`x^*` in a relaxed float run
    started near it (:func:`~queueing_llm.theory.dynamics.deviation_rate`) matches
    ``spectral_radius`` within :data:`~queueing_llm.theory.dynamics.RATE_TOLERANCE` (1 %
    relative; measured error below 5e-4), and contraction matches ``stable``;
    ``gcd-criterion`` also measures :math:`l_0^{\min}` from runs at two consecutive common
    prompt lengths (no contraction at the lower, contraction at the upper).
``integer-rate-limit`` (its check and runs: :mod:`.dynamics_integer`)
    integer saturated runs: at ``rate_limited("integer")`` no eviction and completions at
    exactly the rate; at the next fraction above it (denominator :math:`\le l_1`) fewer
    completions than the rate; at the model's rate (:math:`x^*` by default) the cycle
    throughput equals ``congested_throughput``; with an unlimited memory the token-bucket
    pattern at that rate peaks at ``peak_memory`` tokens.

Power (the smallest relative error in ``evaluate``'s value that the check detects at the
default run sizes; tests/test_power_dynamics.py asserts 0.95 and 1.05 for every compared
quantity):

=========================  ==========================================================  ==========
theorem                    compared quantities                                         power
=========================  ==========================================================  ==========
``fixed-point``            ``x_star``                                                  any (exact)
``rate-limited``           ``throughput``                                              any (exact)
``worst-cycle``            ``throughput``, ``ratio``, ``integer_throughput``           any (exact)
``cycles``                 ``adjacent``, ``contiguous``, ``balanced``, ``integer``     any (exact)
``linear-map``             ``spectral_radius`` (``stable`` by contraction)             > 1 %
``gcd-criterion``          ``spectral_radius``; ``l0_min``                             > 1 %; any
``integer-rate-limit``     ``max_rate``, ``peak_memory``, ``congested_throughput``     any (exact)
``open-system``            ``integer_threshold``: rate limiting (exact cycle)          0.1 %
``open-system``            ``integer_threshold``: greedy and reserve, raised           3-7 %
``open-system``            ``integer_threshold``: greedy lowered; ``x_star``           none; < 0.63x
=========================  ==========================================================  ==========

"any (exact)": exact rational comparisons catch every nonzero error. Greedy's open-system
threshold is a lower bound on the congested throughput, which the integer system exceeds
by 3-7 % (1.03-1.07 on the default model after the collapse): only a threshold raised
above that is caught; ``x_star`` is an upper bound 55 % above it.

Source: [ADLS26] (the model chapter, A.1-A.6); the integer statements: the model chapter, section 3.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from ..checks import predicted
from ..model import ContinuousBatching
from ..policies import Greedy, RateLimited, rate_limited
from ..runs import RunSpec, relaxed_run, run_kind, saturated_run, spawn_seeds
from ..theory import dynamics as dyn
from ..verdict import EXACT, LOWER_BOUND, Verdict

__all__ = [
    "FIXED_POINT_RUNS", "RATE_LIMITED_RUNS", "WORST_CYCLE_RUNS", "CYCLES_RUNS", "LINEAR_RUNS", "GCD_RUNS",
    "fixed_point_check", "rate_limited_check", "worst_cycle_check", "cycles_check",
    "linear_map_check", "gcd_check", "integer_cycle_values", "CYCLE_RUN_CHOICES", "Comparison",
    "comparisons_verdict", "equal_comparison", "show", "flat_runs", "run_label", "policy_text", "rate_of_run",
    "same_model", "exact_equal",
]


# -- comparisons and their verdict ----------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """One comparison of a check: a prediction key against a measurement on one run."""

    quantity: str
    theory: Any
    estimate: Any
    holds: bool
    reason: str
    run: str
    test: str = EXACT


def _f(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, sp.Basic):
        return float(value.evalf()) if value.is_finite is not False else (math.inf if value == sp.oo else math.nan)
    return float(value)


def _flat(runs: Any) -> list:
    if isinstance(runs, Sequence) and not isinstance(runs, (str, bytes)):
        out: list = []
        for r in runs:
            out.extend(_flat(r))
        return out
    return [runs]


def _label(run: Any) -> str:
    kind = run_kind(run)
    policy = _policy_text(run)
    return f"{kind}, {policy}" if policy else kind


def _policy_text(run: Any) -> str:
    if run_kind(run) == "relaxed":
        return "greedy" if run.rate is None else f"rate_limited({run.rate})"
    return str(run.model.policy)


def _exact_eq(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return float(a) == float(b)
    return bool(sp.simplify(sp.nsimplify(a) - sp.nsimplify(b)) == 0)


def _equal(quantity: str, theory: Any, estimate: Any, run: Any, what: str, tol: float = 0.0) -> Comparison:
    """Exact equality (tol = 0) or relative tolerance ``tol`` (float relaxed runs)."""
    if tol == 0:
        holds = _exact_eq(theory, estimate)
        rule = "exactly"
    else:
        t, e = _f(theory), _f(estimate)
        holds = abs(e - t) <= tol * abs(t)
        rule = f"within relative tolerance {tol:g}"
    verb = "equals" if holds else "differs from"
    reason = f"{what} {_show(estimate)} {verb} {quantity} = {_show(theory)} {rule}"
    return Comparison(quantity, theory, estimate, holds, reason, run if isinstance(run, str) else _label(run))


def _show(value: Any) -> str:
    if isinstance(value, (sp.Rational, Fraction)) and not isinstance(value, sp.Integer) and value != int(value):
        return f"{value} ({float(value):.6g})"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _verdict(theorem: str, primary: str, comparisons: list[Comparison], skipped: list[str],
             prediction: dict) -> Verdict:
    """One verdict from the comparisons (holds iff all hold); does not apply if there are none."""
    notes = {"not_applicable": skipped} if skipped else {}
    if not comparisons:
        theory = prediction.get(primary, math.nan)
        theory = theory if isinstance(theory, (int, float, sp.Basic)) else math.nan
        return Verdict.not_applicable(theorem, primary, "; ".join(skipped) or "no run applies",
                                      theory=_f(theory), details=notes)
    failing = [c for c in comparisons if not c.holds]
    main = failing[0] if failing else next((c for c in comparisons if c.quantity == primary), comparisons[0])
    parts = [("FAILS: " if not c.holds else "") + f"{c.reason} ({c.run} run)" for c in comparisons]
    reason = "; ".join(parts)
    if skipped:
        reason += f". Not used: {'; '.join(skipped)}"
    details = {"comparisons": [{"quantity": c.quantity, "theory": _f(c.theory), "estimate": _f(c.estimate),
                                "holds": c.holds, "run": c.run, "test": c.test} for c in comparisons], **notes}
    test = LOWER_BOUND if all(c.test == LOWER_BOUND for c in comparisons) else EXACT
    runs = " + ".join(dict.fromkeys(c.run for c in comparisons))
    return Verdict(theorem, main.quantity, _f(main.theory), _f(main.estimate), None, not failing, reason, details,
                   test=test, run=runs)


# -- run properties --------------------------------------------------------------------------
def _greedy(run: Any) -> bool:
    if run_kind(run) == "relaxed":
        return run.rate is None
    return isinstance(run.model.policy, Greedy)


def _rate(run: Any) -> Any:
    """The numeric token-bucket rate of a rate-limited run (None for other policies)."""
    if run_kind(run) == "relaxed":
        return run.rate
    policy = run.model.policy
    if not isinstance(policy, RateLimited):
        return None
    return dyn.fixed_point(run.model) if policy.rate is None else dyn.resolve_rate(run.model, policy.rate)


def _exact_run(run: Any) -> bool:
    return run_kind(run) == "saturated" or (run_kind(run) == "relaxed" and run.exact)


def _tol(run: Any) -> float:
    return 0.0 if _exact_run(run) else 1e-9


def _started_empty(run: Any) -> bool:
    """Integer run without an initial batch, or relaxed run whose first state holds stage 0 only."""
    if run_kind(run) == "saturated":
        return run.initial_batch is None
    b = np.asarray(run.component_batch)
    return bool(all(v == 0 for v in b[0, :, 1:].ravel()))


def _initial_state(run: Any) -> list[list[Any]]:
    """Stage counts at iteration 0 per component (relaxed) or per type (integer)."""
    if run_kind(run) == "relaxed":
        return [list(row) for row in np.asarray(run.component_batch)[0]]
    if run.initial_batch is None:
        return [[0] * np.asarray(run.batch).shape[2]]
    return [list(row) for row in run.initial_batch]


def _cycle(run: Any) -> dyn.Cycle | None:
    return dyn.detect_cycle(run)


def _too_short(model: ContinuousBatching, run: Any) -> str | None:
    """A reason when the run is shorter than four decode lengths (a cycle of period up to l1
    must show three periods), else None."""
    L = int(dyn.decode_horizon(run.model))
    if run.iterations < 4 * L:
        return (f"a {_label(run)} run of {run.iterations} iterations: too short to show three periods of a cycle "
                f"of period l1 = {L}")
    return None


def _same_model(run: Any, model: ContinuousBatching) -> bool:
    """The run's model equals ``model`` up to the policy."""
    return dataclasses.replace(run.model, policy=model.policy) == model


# -- fixed point -----------------------------------------------------------------------------
def _fixed_state(model: ContinuousBatching) -> list[list[Any]]:
    return dyn.fixed_point_components(model)


FIXED_POINT_RUNS = (
    relaxed_run(60, initial=_fixed_state, exact=True, policy="greedy", label="relaxed, greedy, from x*",
                description="relaxed greedy map (exact rationals) started at the fixed point x*, 60 iterations"),
)


def _uniform_level(model: ContinuousBatching, run: Any) -> Any:
    """:math:`y` if the run's first state is :math:`p_c y` at every live stage of every component."""
    comps = dyn.components(run.model)
    b = np.asarray(run.component_batch)
    level = None
    for c, comp in enumerate(comps):
        for j in range(b.shape[2]):
            v = b[0, c, j]
            if j >= int(comp.l1):
                if v != 0:
                    return None
                continue
            y = v / comp.p if _exact_run(run) else float(v) / float(comp.p)
            if level is None:
                level = y
            elif (y != level) if _exact_run(run) else abs(y - level) > 1e-12 * max(abs(level), 1.0):
                return None
    return level


def fixed_point_check(model: ContinuousBatching, runs: Any, prediction: dict, level: float = 0.95) -> Verdict:
    r"""A relaxed greedy run from a uniform state stays there iff the level is :math:`x^*`.

    The measured fixed point is the level :math:`y` of a run that stays exactly (float runs:
    within :math:`10^{-9}` relative) at its initial state with throughput :math:`y` at every
    iteration; it must equal ``x_star``. A run from a uniform state that moves is a failure
    only if its level equals ``x_star`` (the theorem said it would stay); other runs do not
    apply (integer runs: see ``integer-rate-limit``; open runs; other policies)."""
    xs = predicted(prediction, "x_star", "fixed-point")
    comps, skipped = [], []
    for run in _flat(runs):
        kind = run_kind(run)
        if kind != "relaxed":
            skipped.append(f"a {kind} run: the fixed point is a statement about the relaxed map; integer "
                           "runs cannot hold x* per stage (judged by integer-rate-limit)")
            continue
        if not _greedy(run):
            skipped.append("a rate-limited relaxed run: the fixed point is judged on greedy runs (rate-limited)")
            continue
        y = _uniform_level(model, run)
        if y is None:
            skipped.append("a relaxed run not started at a uniform state (p_c y at every stage)")
            continue
        b = np.asarray(run.component_batch)
        done = np.asarray(run.completions).sum(axis=1)[1:]
        if _exact_run(run):
            stays = all(x == b[0].tolist() for x in (row.tolist() for row in b)) and all(d == y for d in done)
        else:
            scale = max(float(np.max(np.abs(b[0].astype(float)))), 1.0)
            stays = bool(np.max(np.abs(b.astype(float) - b[0].astype(float)[None])) <= 1e-9 * scale
                         and np.all(np.abs(done.astype(float) - float(y)) <= 1e-9 * max(float(y), 1.0)))
        if stays:
            comps.append(_equal("x_star", xs, y, run, f"the relaxed map stays at the uniform level y = {_show(y)} "
                                "(throughput y every iteration): measured x*", _tol(run)))
        elif _exact_eq(y, xs) if _exact_run(run) else abs(_f(y) - _f(xs)) <= 1e-9 * abs(_f(xs)):
            comps.append(Comparison("x_star", xs, y, False, f"the relaxed map started at x* = {_show(xs)} moves",
                                    _label(run)))
        else:
            skipped.append(f"a relaxed run from the uniform level {_show(y)}, which is not a fixed point (it moves)")
    return _verdict("fixed-point", "x_star", comps, skipped, prediction)


# -- rate-limited ----------------------------------------------------------------------------
def _rate_policy(model: ContinuousBatching) -> Any:
    return model.policy if isinstance(model.policy, RateLimited) else rate_limited()


RATE_LIMITED_RUNS = (
    relaxed_run(160, exact=True, policy=_rate_policy, label="relaxed, rate_limited, from empty",
                description="relaxed map under the model's rate limit (x* by default), exact, from an empty batch"),
)


def rate_limited_check(model: ContinuousBatching, runs: Any, prediction: dict, level: float = 0.95) -> Verdict:
    r"""Relaxed rate-limited runs: cycle throughput equals ``throughput``, no eviction (exact)."""
    x = predicted(prediction, "throughput", "rate-limited")
    comps, skipped = [], []
    for run in _flat(runs):
        kind = run_kind(run)
        if kind != "relaxed":
            skipped.append(f"a {kind} run: the statement is about the relaxed map; integer token-bucket runs are "
                           "judged by integer-rate-limit")
            continue
        if run.rate is None:
            skipped.append("a greedy relaxed run: the statement is about rate-limited admission")
            continue
        cycle = _cycle(run)
        evictions = np.asarray(run.evictions).sum()
        if cycle is None:
            comps.append(Comparison("throughput", x, math.nan, False, "no periodic regime within the run", _label(run)))
            continue
        c = _equal("throughput", x, cycle.throughput, run,
                   f"the throughput of the cycle reached from iteration {cycle.start}", _tol(run))
        if evictions != 0:
            c = dataclasses.replace(c, holds=False, reason=c.reason + f", but {_show(evictions)} requests were evicted")
        else:
            c = dataclasses.replace(c, reason=c.reason + ", no eviction")
        comps.append(c)
    return _verdict("rate-limited", "throughput", comps, skipped, prediction)


# -- worst cycle -----------------------------------------------------------------------------
WORST_CYCLE_RUNS = (
    relaxed_run(250, exact=True, policy="greedy", label="relaxed, greedy, from empty",
                description="relaxed greedy map (exact) from an empty batch, 250 iterations"),
    FIXED_POINT_RUNS[0],
    # deterministic decode lengths: the integer run does not depend on the seed, so verify's
    # replications=R leaves it as one run (replicate=None)
    dataclasses.replace(saturated_run(2000, policy="greedy", label="saturated, greedy, from empty"), replicate=None),
)


def worst_cycle_check(model: ContinuousBatching, runs: Any, prediction: dict, level: float = 0.95) -> Verdict:
    r"""Worst-cycle throughput (relaxed, from empty: exact), its ratio to :math:`x^*` (with a
    run at :math:`x^*`), the integer version (integer run from empty: exact); relaxed runs
    from other states: cycle throughput :math:`\ge` ``throughput`` (one-sided)."""
    worst = predicted(prediction, "throughput", "worst-cycle")
    comps, skipped = [], []
    empty_value, xstar_value = None, None
    for run in _flat(runs):
        kind = run_kind(run)
        if kind == "open":
            skipped.append("an open-system run: the cycles are those of the saturated map")
            continue
        if not _greedy(run):
            skipped.append(f"a {kind} run under {_policy_text(run)}: the worst cycle is about greedy admission")
            continue
        if kind == "relaxed" and _uniform_level(model, run) is not None and not _started_empty(run):
            cycle = _cycle(run)
            if cycle is not None and cycle.period == 1:
                xstar_value = cycle.throughput
            continue
        cycle = _cycle(run)
        if cycle is None:
            too_short = _too_short(model, run)
            if too_short:
                skipped.append(too_short)
            else:
                comps.append(Comparison("throughput", worst, math.nan, False,
                                        "no periodic regime within the run", _label(run)))
            continue
        if kind == "saturated":
            if not _started_empty(run):
                skipped.append("an integer run from a given state: the integer worst cycle is derived from an "
                               "empty batch")
                continue
            comps.append(_equal("integer_throughput", predicted(prediction, "integer_throughput", "worst-cycle"),
                                cycle.throughput, run, f"the integer cycle (period {cycle.period}) throughput"))
        elif _started_empty(run):
            empty_value = cycle.throughput
            comps.append(_equal("throughput", worst, cycle.throughput, run,
                                f"the relaxed cycle from an empty batch (period {cycle.period}) throughput", _tol(run)))
        else:
            holds = bool(_f(cycle.throughput) >= _f(worst) * (1 - _tol(run)))
            comps.append(Comparison("throughput", worst, cycle.throughput, holds,
                                    f"the relaxed cycle of period {cycle.period} reached from iteration "
                                    f"{cycle.start} has throughput {_show(cycle.throughput)} "
                                    f"{'>=' if holds else '<'} the worst cycle's {_show(worst)}", _label(run),
                                    LOWER_BOUND))
    if empty_value is not None and xstar_value is not None:
        ratio = empty_value / xstar_value
        comps.append(Comparison("ratio", prediction["ratio"], ratio, _exact_eq(prediction["ratio"], ratio)
                                if isinstance(ratio, sp.Basic) else abs(_f(ratio) - _f(prediction["ratio"]))
                                <= 1e-9 * _f(prediction["ratio"]),
                                f"worst-cycle throughput over the throughput at x*: {_show(ratio)} against ratio = "
                                f"{_show(prediction['ratio'])}", "relaxed, greedy (from empty and from x*)"))
    return _verdict("worst-cycle", "throughput", comps, skipped, prediction)


# -- other cycles ----------------------------------------------------------------------------
def _contiguous_block(model: ContinuousBatching) -> int:
    return int(dyn.single_component(model).l1) // 2


def _balanced_spacing(model: ContinuousBatching) -> int:
    L = int(dyn.single_component(model).l1)
    proper = [d for d in sp.divisors(L) if 1 < d < L]
    return proper[0] if proper else L


CYCLE_RUN_CHOICES = {
    "adjacent": lambda model: ("adjacent", None),
    "contiguous": lambda model: ("contiguous", _contiguous_block(model)),
    "balanced": lambda model: ("balanced", _balanced_spacing(model)),
}
"""The catalogued cycles ``cycles`` runs by default: the adjacent cycle, the contiguous block
:math:`c_i` with :math:`i = \\lfloor l_1/2 \\rfloor`, the evenly spaced cycle with the smallest
spacing :math:`d > 1` dividing :math:`l_1` (:math:`d = l_1/2` is the opposite cycle)."""


@functools.lru_cache(maxsize=256)
def _cycle_state(model: ContinuousBatching, name: str, parameter: Any) -> tuple:
    """:func:`~queueing_llm.theory.dynamics.cycle_state`, cached (models are immutable values)."""
    return dyn.cycle_state(model, name, parameter)


def _cycle_initial(kind: str, floored: bool):
    def initial(model: ContinuousBatching) -> list:
        name, parameter = CYCLE_RUN_CHOICES[kind](model)
        state = _cycle_state(model, name, parameter)
        return [int(sp.floor(v)) for v in state] if floored else [list(state)]
    initial.__name__ = f"{kind}_state"
    return initial


def _integer_cycle_run(kind: str, iterations: int = 3000) -> RunSpec:
    initial = _cycle_initial(kind, floored=True)
    index = list(CYCLE_RUN_CHOICES).index(kind)

    def build(model: Any, seed: Any, n: int) -> Any:
        from ..sim import simulate

        # deterministic runs; distinct seeds only so that verify does not take them for shared-seed replications
        own = spawn_seeds(seed, len(CYCLE_RUN_CHOICES))[index]
        return simulate(model, n, seed=own, saturated=True, initial_batch=initial(model), engine="fast")

    return RunSpec("saturated", f"saturated, greedy, from the floored {kind} cycle", build, iterations, "greedy",
                   f"integer greedy run from the floored state of the {kind} cycle, {iterations} iterations")


CYCLES_RUNS = tuple(
    relaxed_run(160, initial=_cycle_initial(kind, floored=False), exact=True, policy="greedy",
                label=f"relaxed, greedy, from the {kind} cycle",
                description=f"relaxed greedy map (exact) from a state on the {kind} cycle, 160 iterations")
    for kind in CYCLE_RUN_CHOICES
) + tuple(_integer_cycle_run(kind) for kind in CYCLE_RUN_CHOICES)


def integer_cycle_values(model: ContinuousBatching) -> dict:
    r"""Integer versions of the catalogued cycles the default runs start on: the throughput of
    the cycle the integer greedy map falls into from each floored cycle state (exact
    iteration, :func:`~queueing_llm.theory.dynamics.integer_cycle_throughput`); keys
    ``adjacent``, ``contiguous`` (:math:`\{i: \cdot\}`), ``balanced`` (:math:`\{d: \cdot\}`)."""
    out: dict = {}
    for kind, choose in CYCLE_RUN_CHOICES.items():
        name, parameter = choose(model)
        value = dyn.integer_cycle_throughput(model, _cycle_initial(kind, floored=True)(model))
        out[kind] = value if parameter is None else {parameter: value}
    return out


def _identify(model: ContinuousBatching, run: Any) -> tuple[str, Any] | None:
    """Which catalogued cycle state the run starts on (exact state, or floored for integer runs)."""
    c = dyn.single_component(model)
    L = int(c.l1)
    start = [v for v in _initial_state(run)[0]][:L]
    start = start + [0] * (L - len(start))
    floored = run_kind(run) == "saturated"
    options: list[tuple[str, Any]] = [choose(model) for choose in CYCLE_RUN_CHOICES.values()]
    options.append(("adjacent", None))
    if L % 2 == 0:
        options.append(("opposite", None))
    options += [("contiguous", i) for i in range(L)] + [("balanced", d) for d in sp.divisors(L)]
    for name, parameter in options:
        state = _cycle_state(model, name, parameter)
        if floored:
            state = tuple(int(sp.floor(v)) for v in state)
        if all(_exact_eq(a, b) if not isinstance(a, float) else abs(a - float(b)) <= 1e-9 * max(1.0, abs(a))
               for a, b in zip(start, state, strict=True)):
            return name, parameter
    return None


def _lookup(prediction: dict, key: str, name: str, parameter: Any, theorem: str = "cycles") -> Any:
    value = predicted(prediction, key, theorem) if key != name else predicted(prediction, name, theorem)
    if key == "integer":
        value = value.get(name) if isinstance(value, dict) else None
    if isinstance(value, dict):
        value = value.get(parameter)
    return value


def cycles_check(model: ContinuousBatching, runs: Any, prediction: dict, level: float = 0.95) -> Verdict:
    r"""Runs started on catalogued cycles: the cycle reached has the catalogued throughput
    (relaxed, exact) or the integer version (integer runs from the floored state, exact)."""
    comps, skipped = [], []
    for run in _flat(runs):
        kind = run_kind(run)
        if kind == "open" or not _greedy(run):
            skipped.append(f"a {kind} run under {_policy_text(run)}: the cycles are those of the saturated greedy map")
            continue
        found = _identify(model, run)
        if found is None:
            skipped.append(f"a {kind} run not started on a catalogued cycle state")
            continue
        name, parameter = found
        key = "integer" if kind == "saturated" else name
        theory = _lookup(prediction, key, name, parameter)
        tag = name if parameter is None else f"{name} ({'i' if name == 'contiguous' else 'd'} = {parameter})"
        if theory is None or (isinstance(theory, sp.Basic) and theory is sp.nan):
            skipped.append(f"a run from the {tag} cycle: evaluate gave no {'integer ' if key == 'integer' else ''}"
                           "value for it")
            continue
        cycle = _cycle(run)
        quantity = key if parameter is None or key == "integer" else name
        if cycle is None:
            comps.append(Comparison(quantity, theory, math.nan, False, f"no periodic regime from the {tag} cycle",
                                    _label(run)))
            continue
        what = (f"the integer cycle (period {cycle.period}) reached from the floored {tag} cycle: throughput"
                if kind == "saturated" else f"the cycle of period {cycle.period} from the {tag} state: throughput")
        comps.append(_equal(quantity, theory, cycle.throughput, run, what, _tol(run)))
    return _verdict("cycles", "adjacent", comps, skipped, prediction)


# -- linear map and gcd criterion ----------------------------------------------------------
MIN_WINDOW = 20
"""Least number of iterations in the fit window of a deviation rate (shorter: does not apply)."""

LINEAR_RUNS = (
    relaxed_run(3000, initial=dyn.perturbed_fixed_point, exact=False, policy="greedy",
                label="relaxed, greedy, near x*",
                description="relaxed greedy map (float) from x* perturbed by 1e-4 (relative), 3000 iterations"),
)


def _lower_prompt(model: ContinuousBatching) -> ContinuousBatching:
    """The model at the common prompt l0_min - 1 (l0_min = oo: twice the longest prompt)."""
    target = dyn.l0_min(model)
    if target == sp.oo:
        return dyn.common_prompt_model(model, 2 * max(_common_l0(model), 1))
    return dyn.common_prompt_model(model, max(int(target) - 1, 0))


def _upper_prompt(model: ContinuousBatching) -> ContinuousBatching:
    """The model at the common prompt l0_min (l0_min = oo: four times the longest prompt)."""
    target = dyn.l0_min(model)
    if target == sp.oo:
        return dyn.common_prompt_model(model, 4 * max(_common_l0(model), 1))
    return dyn.common_prompt_model(model, int(target))


def _common_l0(model: ContinuousBatching) -> int:
    return int(max(sp.ceiling(t.l0) for t in model.types))


GCD_RUNS = LINEAR_RUNS + (
    relaxed_run(4000, initial=dyn.perturbed_fixed_point, exact=False, policy="greedy", model_transform=_lower_prompt,
                label="relaxed, greedy, near x*, l0 = l0_min - 1",
                description="relaxed greedy map (float) near x* with every prompt set to l0_min - 1, 4000 iterations"),
    relaxed_run(4000, initial=dyn.perturbed_fixed_point, exact=False, policy="greedy", model_transform=_upper_prompt,
                label="relaxed, greedy, near x*, l0 = l0_min",
                description="relaxed greedy map (float) near x* with every prompt set to l0_min, 4000 iterations"),
)


def _prompt_of(run: Any) -> int | None:
    """The common prompt length of the run's model (None if the types differ)."""
    l0s = {sp.sympify(t.l0) for t in run.model.types}
    return int(next(iter(l0s))) if len(l0s) == 1 else None


def _deviation_comparisons(name: str, model: ContinuousBatching, runs: Any, prediction: dict,
                           with_l0: bool) -> Verdict:
    rho = predicted(prediction, "spectral_radius", name)
    stable = predicted(prediction, "stable", name)
    comps, skipped, by_prompt = [], [], {}
    for run in _flat(runs):
        kind = run_kind(run)
        if kind != "relaxed":
            skipped.append(f"a {kind} run: deviations of a fraction of a request from x* need the relaxed map")
            continue
        if not _greedy(run):
            skipped.append("a rate-limited relaxed run: the linearisation is about greedy admission")
            continue
        d = dyn.deviation_rate(run.model, run)
        if math.isnan(d.rate) or d.window[1] - d.window[0] < MIN_WINDOW:
            skipped.append(f"a relaxed run whose linear regime (before the first eviction, after the transient) "
                           f"spans {d.window[1] - d.window[0]} < {MIN_WINDOW} iterations: too short to measure the "
                           "rate (start it nearer x*, e.g. ql.theory.dynamics.perturbed_fixed_point)")
            continue
        if _same_model(run, model):
            c = _equal("spectral_radius", rho, d.rate, run,
                       f"the deviation from x* changes by a factor {d.rate:.6g} per iteration (least squares over "
                       f"iterations {d.window[0]}..{d.window[1] - 1}): measured spectral radius",
                       dyn.RATE_TOLERANCE)
            comps.append(c)
            agrees = d.contracts == bool(stable)
            comps.append(Comparison("stable", stable, d.contracts, agrees,
                                    f"the run {'contracts' if d.contracts else 'does not contract'} "
                                    f"(rate {'<' if d.contracts else '>='} 1 - {dyn.CONTRACTION_MARGIN:g}"
                                    + ("" if d.first_eviction is None else
                                       f"; first eviction at iteration {d.first_eviction}")
                                    + f"): stable = {bool(stable)} predicted", _label(run)))
        elif with_l0:
            l0 = _prompt_of(run)
            if l0 is None:
                skipped.append("a relaxed run of another model without a common prompt length")
                continue
            by_prompt[l0] = (d, run)
        else:
            skipped.append("a relaxed run of another model")
    if with_l0 and by_prompt:
        comps.append(_l0_comparison(prediction, by_prompt))
    return _verdict(name, "spectral_radius" if not by_prompt else "l0_min", comps, skipped, prediction)


def _l0_comparison(prediction: dict, by_prompt: dict) -> Comparison:
    target = predicted(prediction, "l0_min", "gcd-criterion")
    label = "relaxed, greedy, common prompts " + ", ".join(str(k) for k in sorted(by_prompt))
    observed = ", ".join(f"l0 = {k}: rate {d.rate:.6g} ({'contracts' if d.contracts else 'no contraction'})"
                         for k, (d, _) in sorted(by_prompt.items()))
    contracting = sorted(k for k, (d, _) in by_prompt.items() if d.contracts)
    # measured l0_min: a contracting prompt whose predecessor was run and does not contract (or l0 = 0)
    measured = None
    for k in contracting:
        below = by_prompt.get(k - 1)
        if k == 0 or (below is not None and not below[0].contracts):
            measured = k
            break
    if measured is not None:
        holds = _exact_eq(target, measured) if target != sp.oo else False
        return Comparison("l0_min", target, measured, holds,
                          f"{observed}: measured l0_min = {measured}, l0_min = {_show(target)} predicted", label)
    if not contracting:
        top = max(by_prompt)
        holds = bool(target == sp.oo or _f(target) > top)
        return Comparison("l0_min", target, math.inf, holds,
                          f"{observed}: no contraction up to l0 = {top} (l0_min > {top}); "
                          f"l0_min = {_show(target)} predicted", label, LOWER_BOUND)
    return Comparison("l0_min", target, math.nan, False,
                      f"{observed}: the contracting prompts are not preceded by a non-contracting run at l0 - 1 "
                      "(the runs cannot locate l0_min)", label)


def linear_map_check(model: ContinuousBatching, runs: Any, prediction: dict, level: float = 0.95) -> Verdict:
    r"""Measured deviation rate against ``spectral_radius`` (1 % relative) and ``stable``."""
    return _deviation_comparisons("linear-map", model, runs, prediction, with_l0=False)


def gcd_check(model: ContinuousBatching, runs: Any, prediction: dict, level: float = 0.95) -> Verdict:
    r"""As ``linear-map``, plus ``l0_min`` from runs at two consecutive common prompt lengths
    (exact: contraction at ``l0_min``, none at ``l0_min - 1``). ``gcd`` and
    ``limiting_radius`` are exact algebraic facts (tested against closed forms), not measured."""
    return _deviation_comparisons("gcd-criterion", model, runs, prediction, with_l0=True)


# -- the helpers other family A checks share (integer-rate-limit) ----------------------------
comparisons_verdict = _verdict
equal_comparison = _equal
show = _show
flat_runs = _flat
run_label = _label
policy_text = _policy_text
rate_of_run = _rate
same_model = _same_model
exact_equal = _exact_eq
