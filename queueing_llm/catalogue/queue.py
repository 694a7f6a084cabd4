r"""Built-in theorems of the model chapter, section 5, family B (the batch-capped queue, no memory limit).

Importing the module registers seven theorems (``evaluate`` keys in braces; extra keys
may follow):

``stability`` {capacity, stable}
    :math:`\lambda E[l_1] < B`, saturated throughput :math:`B/E[l_1]`.
``overload-drift`` {drift}
    :math:`\lim Q_n/n = (\lambda - B/E[l_1])^+`; ``one_step_drift`` :math:`\lambda - Bq` for
    geometric decode lengths.
``renewal-transient`` {limit, periodic}
    :math:`U(z) = 1/(1 - F(z))`; option ``n`` (terms of :math:`u_n`, default 20).
``equilibrium-stage`` {mean_stage, mean_kv}
    a saturated batch in equilibrium.
``stationary`` {mean_in_system, p_empty, mean_batch, mean_sojourn}
    Geo^X/Geo/B from the kernel roots; ``p_empty_error`` bounds the absolute error of a
    numeric ``p_empty`` (below the kernel-root route's 1e-15 accuracy the value is the GTH
    chain's, or an upper bound with ``p_empty_error`` equal to it; the reason says which).
``lyapunov-bounds`` {lower, upper}
    quadratic-Lyapunov bounds on the stationary mean number in system.
``waiting-cap`` {rejection_probability}
    option ``exact`` (rational arithmetic for rational finite laws).

Each check takes its theory value from the prediction ``evaluate`` returned and measures
the arrays of a simulated trajectory, or of a list of independent runs (replications); it
never simulates and never recomputes a theory value. One run: batch means after the
run's warm-up (MSER-5 if the run has none); several: replications. Every comparison is
two-sided (the theory value lies in the confidence interval, default level 0.95) except
``lyapunov-bounds`` (the interval meets the bounds) and the exact binomial interval of
``renewal-transient`` at one iteration. Each theorem declares its runs (``Theorem.runs``):
an open-system run, or a saturated run for the saturated-batch results. A run outside the
hypotheses (an unstable model for ``stationary``) gives a "does not apply" verdict.
"""


from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from ..checks import default_warmup, judge, judge_bounds, mean_interval, numeric, predicted, runs_list
from ..errors import ModelError, describe
from ..model import ContinuousBatching
from ..runs import open_run, saturated_run
from ..stats import DEFAULT_BATCHES, DEFAULT_LEVEL, binomial_ci, rate_ci, steady_state_ci
from ..theorems import Theorem, theorems
from ..theory import queue as tq
from ..theory import queue_stationary as qs
from ..theory import queue_waiting as qw
from ..verdict import Verdict

__all__ = ["STABILITY", "OVERLOAD_DRIFT", "RENEWAL_TRANSIENT", "EQUILIBRIUM_STAGE", "STATIONARY",
           "LYAPUNOV_BOUNDS", "WAITING_CAP", "STATIONARY_RUNS", "near_critical_replications", "relaxation_time"]

OPEN = (open_run(),)
SATURATED = (saturated_run(),)

NEAR_CRITICAL_REPLICATIONS = 8
"""Independent replications the stationary checks use near critical load."""

RELAXATION_SHARE = 10
"""Batch means need batches of at least this many relaxation times (else replications)."""


def relaxation_time(model: ContinuousBatching) -> float:
    r"""Heavy-traffic relaxation time of the number in system, in iterations (a heuristic).

    The M/M/1 relaxation time :math:`1/(\mu(1 - \sqrt\rho)^2)` (Morse 1955; Cohen, *The
    Single Server Queue*, II.2) with the batch's total service rate :math:`\mu = B/E[l_1]`
    and load :math:`\rho = \lambda E[l_1]/B`: it grows like :math:`(1-\rho)^{-2}`.
    ``inf`` for :math:`\rho \ge 1`; ``nan`` for a symbolic model or one without arrivals.
    """
    try:
        inp = tq.queue_inputs(model)
        lam, mean, B = (float(sp.sympify(x)) for x in (inp.lam, inp.mean_decode, inp.B))
    except (ModelError, TypeError, ValueError):
        return math.nan
    rho = lam * mean / B
    if rho >= 1:
        return math.inf
    return mean / (B * (1 - math.sqrt(rho)) ** 2)


def near_critical_replications(model: ContinuousBatching) -> int:
    r"""The ``replications_rule`` of ``stationary`` and ``lyapunov-bounds``: 8 independent
    replications when the declared run's batch-means batches (20 of 1,000 iterations) are
    shorter than :data:`RELAXATION_SHARE` relaxation times (:func:`relaxation_time` above
    100 iterations: load above about 0.8 for B = 4, E[l_1] = 4), else one run.

    Measured (Geo/Geo/4, :math:`q = 1/4`, 40 seeds, level 0.95): one run of 20,000
    iterations covers the stationary mean in system in 93 % of the seeds at load 0.75,
    78 % at 0.85, 72 % at 0.9 and 50 % at 0.95 (batches correlated: the interval is too
    narrow); 8 replications of 20,000 cover it in 95 %, 95 %, 90 % and 90 %.
    """
    tau = relaxation_time(model)
    batch = OPEN[0].iterations / DEFAULT_BATCHES
    return NEAR_CRITICAL_REPLICATIONS if tau * RELAXATION_SHARE > batch else 1


NEAR_CRITICAL_REASON = ("near critical load the number in system relaxes over more iterations than a tenth of a "
                        "batch of one run, so batch means are correlated and their interval too narrow; independent "
                        "replications are independent by construction")
STATIONARY_RUNS = (open_run(replications_rule=near_critical_replications, replications_reason=NEAR_CRITICAL_REASON),)

SOURCE_B = "The model chapter, section 5, family B; Bailey (1954); Bruneel and Kim (1993)"


# ----------------------------------------------------------------------------------
# helpers of the checks
# ----------------------------------------------------------------------------------








def _numeric(model: ContinuousBatching) -> None:
    if model.is_symbolic:
        raise ModelError("a check compares numbers: the model has symbolic parameters")




def _total(arr: Any) -> np.ndarray:
    a = np.asarray(arr)
    return a.reshape(a.shape[0], -1).sum(axis=1).astype(float)


def _check_saturated(runs: list, name: str) -> None:
    for i, r in enumerate(runs):
        if not bool(getattr(r, "saturated", False)):
            raise ModelError(f"{name} is about a saturated batch: run {i} was not simulated with saturated=True")


# ----------------------------------------------------------------------------------
# stability
# ----------------------------------------------------------------------------------
def _mu() -> sp.Symbol:
    return sp.Symbol("mu")


def _stability_statement(model: ContinuousBatching) -> sp.Basic:
    res = tq.stability(model)
    inp = tq.queue_inputs(model, arrivals=False)
    lam = inp.lam if inp.lam is not None else sp.Symbol("lambda", nonnegative=True)
    cond = sp.StrictLessThan(lam * inp.mean_decode, inp.B, evaluate=False)
    return sp.And(sp.Eq(_mu(), res.capacity, evaluate=False), sp.Equivalent(sp.Symbol("stable"), cond,
                                                                            evaluate=False), evaluate=False)


def _stability_evaluate(model: ContinuousBatching) -> dict:
    res = tq.stability(model)
    out = {"capacity": res.capacity, "stable": res.stable, "load": res.load, "throughput": res.throughput}
    if res.stable is None:
        out["reason"] = "saturated-only model: no arrival rate, stability undefined"
    return out


def _stability_check(model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = DEFAULT_LEVEL,
                     batches: int = DEFAULT_BATCHES) -> Verdict:
    r"""Completions per iteration (two-sided CI) against the predicted long-run throughput
    :math:`\min(\lambda, B/E[l_1])` of open-system runs, or against the capacity
    :math:`B/E[l_1]` for saturated runs (infinite backlog; also saturated-only models)."""
    _numeric(model)
    runs = runs_list(trajectory)
    saturated = [bool(getattr(r, "saturated", False)) for r in runs]
    if any(saturated) and not all(saturated):
        raise ModelError("stability: give open-system runs or saturated runs, not both")
    if all(saturated):  # an infinite backlog completes the saturated throughput B/E[l1]
        quantity, theory = "capacity", predicted(prediction, "capacity", "stability")
    else:
        quantity, theory = "throughput", predicted(prediction, "throughput", "stability")
        if theory is None:
            raise ModelError("stability: a saturated-only model (no arrival rate) has no open-system throughput; "
                             "give saturated runs (ql.simulate(..., saturated=True)) to check the capacity B/E[l1]")
    iv = mean_interval(runs, lambda r: _total(r.completions), level, batches)
    v = judge("stability", quantity, theory, iv,
              {"capacity": numeric(predicted(prediction, "capacity", "stability"), "capacity"),
               "stable": prediction.get("stable")})
    return v.replace(unit="completions per iteration")


STABILITY = theorems.register(Theorem(
    name="stability",
    title="Batch-capped queue: stable iff lambda E[l1] < B; saturated throughput B/E[l1]",
    hypotheses=(
        "Policy fcfs_cap: no memory limit, admit FCFS while fewer than B are in the batch (B finite).",
        "I.i.d. arrivals per iteration (any law with a PGF) and i.i.d. decode lengths l1 >= 1.",
    ),
    statement_fn=_stability_statement,
    evaluate_fn=_stability_evaluate,
    check_fn=_stability_check,
    source="The model chapter, section 5, B.1; Loynes (1962)",
    applies_fn=lambda m: tq.queue_reason(m, arrivals=False),
    runs=OPEN,
    comparison="completions per iteration of an open run (batch means) against the predicted throughput "
               "min(lambda, B/E[l1]): two-sided CI",
))


# ----------------------------------------------------------------------------------
# overload-drift
# ----------------------------------------------------------------------------------
def _drift_statement(model: ContinuousBatching) -> sp.Basic:
    inp = tq.queue_inputs(model)
    raw = inp.lam - inp.B / inp.mean_decode
    return sp.Eq(sp.Symbol("drift"), sp.Max(raw, 0, evaluate=False), evaluate=False)


def _drift_evaluate(model: ContinuousBatching) -> dict:
    inp = tq.queue_inputs(model)
    out = {
        "drift": tq.overload_drift(model),
        "raw_drift": sp.simplify(inp.lam - inp.B / inp.mean_decode),
        "capacity": tq.stability(model).capacity,
    }
    if tq.geometric_q(model) is not None:
        out["one_step_drift"] = tq.geometric_one_step_drift(model)
    st = tq.stability(model).stable
    if st is True:
        out["reason"] = "stable (lambda E[l1] < B): the queue does not grow, drift 0"
    return out


def _drift_check(model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = DEFAULT_LEVEL,
                 batches: int = DEFAULT_BATCHES) -> Verdict:
    r"""Growth rate of the number in system (batch means of its increments, two-sided CI)
    against the predicted drift :math:`(\lambda - B/E[l_1])^+`."""
    _numeric(model)
    runs = runs_list(trajectory)
    theory = predicted(prediction, "drift", "overload-drift")
    data = [np.asarray(r.in_system, dtype=float) for r in runs]
    w = default_warmup(runs)
    iv = rate_ci(data if len(data) > 1 else data[0], level, batches, w if isinstance(w, int) else 0)
    return judge("overload-drift", "drift", theory, iv).replace(unit="requests per iteration")


OVERLOAD_DRIFT = theorems.register(Theorem(
    name="overload-drift",
    title="Overload drift of the batch-capped queue: Q_n/n -> lambda - B/E[l1]",
    hypotheses=(
        "Policy fcfs_cap with a finite batch cap B; i.i.d. arrivals per iteration with mean lambda.",
        "Overload lambda E[l1] > B (otherwise the drift is 0).",
        "Geometric l1 (parameter q): the one-step drift with at least B present is lambda - B q.",
    ),
    statement_fn=_drift_statement,
    evaluate_fn=_drift_evaluate,
    check_fn=_drift_check,
    source="The model chapter, section 5, B.2",
    applies_fn=lambda m: tq.queue_reason(m),
    runs=OPEN,
    comparison="growth per iteration of the number in system of an open run (batch means of the increments) "
               "against the drift: two-sided CI",
))


# ----------------------------------------------------------------------------------
# renewal-transient
# ----------------------------------------------------------------------------------
def _renewal_statement(model: ContinuousBatching) -> sp.Basic:
    return sp.Eq(sp.Function("U")(tq.Z), tq.renewal_generating_function(model), evaluate=False)


def _renewal_evaluate(model: ContinuousBatching, n: int = 20) -> dict:
    lim = tq.renewal_limit(model)
    inp = tq.queue_inputs(model, arrivals=False)
    out: dict[str, Any] = {
        "limit": lim.limit,
        "periodic": lim.periodic,
        "period": lim.period,
        "residue_limits": lim.residue_limits,
        "generating_function": tq.renewal_generating_function(model),
        "throughput_limit": sp.simplify(inp.B * lim.limit),
    }
    try:
        seq = tq.renewal_sequence(model, n)
    except ModelError as exc:  # symbolic deterministic l1: the sequence needs a number
        out["sequence_reason"] = str(exc)
    else:
        out["sequence"] = seq
        out["completions"] = [sp.Integer(0)] + [inp.B * u for u in seq[1:]]
    return out


def _renewal_check(model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = DEFAULT_LEVEL,
                   batches: int = DEFAULT_BATCHES, iteration: int | None = None) -> Verdict:
    r"""Completions of saturated runs started from an empty batch.

    ``iteration=None``: the long-run completions per iteration divided by :math:`B` against
    the predicted ``limit`` :math:`1/E[l_1]` (two-sided CI; the Cesaro limit, also for
    periodic laws). ``iteration=n``: the completions at iteration :math:`n` of :math:`R`
    independent runs are :math:`\mathrm{Bin}(RB, u_n)` (independent slots), so the exact
    Clopper-Pearson interval of :math:`u_n` is compared with the predicted
    ``sequence[n]`` (valid for rare completions too; evaluate option ``n`` must exceed
    ``iteration``).
    """
    _numeric(model)
    runs = runs_list(trajectory)
    _check_saturated(runs, "renewal-transient")
    B = numeric(model.B, "B")
    if iteration is None:
        theory = predicted(prediction, "limit", "renewal-transient")
        iv = mean_interval(runs, lambda r: _total(r.completions) / B, level, batches)
        return judge("renewal-transient", "limit", theory, iv).replace(unit="completions per slot per iteration")
    n = int(iteration)
    if not 1 <= n < min(int(np.asarray(r.completions).shape[0]) for r in runs):
        raise ModelError(f"iteration must lie in [1, iterations) of every run, got {describe(iteration)}")
    u = predicted(prediction, "sequence", "renewal-transient")
    if n >= len(u):
        raise ModelError(f"iteration={n} needs the renewal sequence up to u_{n}: pass the evaluate option "
                         f"n={n + 1} or more (got {len(u)} terms)")
    # the B slots of a batch started empty are independent renewal processes, so the completions
    # at iteration n of R runs are Binomial(R B, u_n): an exact interval, also when they are rare
    total = int(sum(int(_total(r.completions)[n]) for r in runs))
    iv = binomial_ci(total, len(runs) * int(B), level)
    return judge("renewal-transient", f"u_{n}", numeric(u[n], "u_n"), iv,
                 {"completions": total, "runs": len(runs)}).replace(unit="probability")


RENEWAL_TRANSIENT = theorems.register(Theorem(
    name="renewal-transient",
    title="Renewal transient of completions from an empty saturated batch: U(z) = 1/(1 - F(z))",
    hypotheses=(
        "A saturated batch of B slots (infinite backlog), empty before iteration 0, no memory limit.",
        "I.i.d. decode lengths with PGF F; expected completions at iteration n >= 1 are B u_n.",
        "u_n -> 1/E[l1] iff the gcd of the support of l1 is 1; otherwise u_n oscillates forever.",
    ),
    statement_fn=_renewal_statement,
    evaluate_fn=_renewal_evaluate,
    check_fn=_renewal_check,
    source="Feller, vol. 1, XIII.3 and XIII.11; the model chapter, section 5, B.3",
    applies_fn=lambda m: tq.queue_reason(m, arrivals=False),
    runs=SATURATED,
    comparison="completions per slot and iteration of a saturated run from an empty batch (batch means) "
               "against 1/E[l1]: two-sided CI; option iteration=n: Clopper-Pearson interval of u_n over "
               "replications",
))


# ----------------------------------------------------------------------------------
# equilibrium-stage
# ----------------------------------------------------------------------------------
def _stage_statement(model: ContinuousBatching) -> sp.Basic:
    res = tq.equilibrium_stage(model)
    j = sp.Symbol("j", integer=True, nonnegative=True)
    return sp.And(
        sp.Eq(sp.Symbol("P(stage=j)"), tq.stage_probability(model, j), evaluate=False),
        sp.Eq(sp.Symbol("E[stage]"), res.mean_stage, evaluate=False),
        sp.Eq(sp.Symbol("E[KV]"), res.mean_kv, evaluate=False),
        evaluate=False,
    )


def _stage_evaluate(model: ContinuousBatching) -> dict:
    res = tq.equilibrium_stage(model)
    return {"mean_stage": res.mean_stage, "mean_kv": res.mean_kv, "per_member_kv": res.per_member_kv}


def _mean_stage_series(run: Any) -> np.ndarray:
    b = np.asarray(run.batch, dtype=float)  # (N, K, S)
    stages = np.arange(b.shape[2], dtype=float)
    members = b.sum(axis=(1, 2))
    return (b * stages).sum(axis=(1, 2)) / np.maximum(members, 1.0)


def _stage_check(model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = DEFAULT_LEVEL,
                 batches: int = DEFAULT_BATCHES, quantity: str = "mean_kv") -> Verdict:
    """Mean KV (``memory``, tokens) or mean stage of the members of a saturated run against
    the prediction (two-sided CI)."""
    _numeric(model)
    runs = runs_list(trajectory)
    _check_saturated(runs, "equilibrium-stage")
    if quantity == "mean_kv":
        iv = mean_interval(runs, lambda r: np.asarray(r.memory, dtype=float), level, batches)
        theory = predicted(prediction, "mean_kv", "equilibrium-stage")
        return judge("equilibrium-stage", "mean_kv", theory, iv).replace(unit="tokens")
    if quantity == "mean_stage":
        iv = mean_interval(runs, _mean_stage_series, level, batches)
        theory = predicted(prediction, "mean_stage", "equilibrium-stage")
        return judge("equilibrium-stage", "mean_stage", theory, iv).replace(unit="stages")
    raise ModelError(f"quantity must be 'mean_kv' or 'mean_stage', got {describe(quantity)}")


EQUILIBRIUM_STAGE = theorems.register(Theorem(
    name="equilibrium-stage",
    title="Equilibrium stage law of a saturated batch P(stage = j) = P(l1 > j)/E[l1] and its mean KV",
    hypotheses=(
        "A saturated batch of B members (infinite backlog), no memory limit, in equilibrium.",
        "Stage j holds w_j = l0 + 1 + j KV tokens; observed after admission (new members at stage 0).",
    ),
    statement_fn=_stage_statement,
    evaluate_fn=_stage_evaluate,
    check_fn=_stage_check,
    source="Feller, vol. 1, XIII.10; the model chapter, section 5, B.4",
    applies_fn=lambda m: tq.queue_reason(m, arrivals=False),
    runs=SATURATED,
    comparison="mean KV tokens (option quantity='mean_stage': mean stage) of the members of a saturated run "
               "(batch means) against the prediction: two-sided CI",
))


# ----------------------------------------------------------------------------------
# stationary
# ----------------------------------------------------------------------------------
def _stationary_statement(model: ContinuousBatching) -> sp.Basic:
    return qs.functional_equation(model)


def _stationary_evaluate(model: ContinuousBatching) -> dict:
    return qs.stationary(model).as_dict()


def _sojourns(run: Any, warmup: int) -> np.ndarray:
    req = run.requests
    arr = np.asarray(req.arrival)
    comp = np.asarray(req.completion)
    keep = (comp >= 0) & (arr >= warmup)
    order = np.argsort(arr[keep], kind="stable")
    return (comp[keep] - arr[keep]).astype(float)[order]


_STATIONARY_UNITS = {"mean_in_system": "requests", "p_empty": "probability", "mean_batch": "requests",
                     "mean_sojourn": "iterations"}


def _stationary_check(model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = DEFAULT_LEVEL,
                      batches: int = DEFAULT_BATCHES, quantity: str = "mean_in_system") -> Verdict:
    r"""One of the predicted stationary quantities against the simulation (two-sided CI).

    ``mean_in_system`` (``in_system``), ``p_empty`` (indicator of an empty system),
    ``mean_batch`` (batch members), ``mean_sojourn`` (completion minus arrival iteration of
    the requests arriving after the warm-up, in arrival order; batch means or replications).
    An unstable model has no stationary law: the verdict says "does not apply".
    """
    _numeric(model)
    runs = runs_list(trajectory)
    series: dict[str, Callable[[Any], np.ndarray]] = {
        "mean_in_system": lambda r: np.asarray(r.in_system, dtype=float),
        "p_empty": lambda r: (np.asarray(r.in_system) == 0).astype(float),
        "mean_batch": lambda r: _total(r.batch),
    }
    if quantity not in series and quantity != "mean_sojourn":
        raise ModelError("quantity must be one of mean_in_system, p_empty, mean_batch, mean_sojourn, "
                         f"got {describe(quantity)}")
    theory = predicted(prediction, quantity, "stationary")
    if prediction.get("stable") is False:
        why = prediction.get("reason") or "the model is unstable"
        return Verdict.not_applicable("stationary", quantity, f"{why}: no stationary law to compare with",
                                      theory=numeric(theory, quantity), unit=_STATIONARY_UNITS[quantity])
    if quantity in series:
        iv = mean_interval(runs, series[quantity], level, batches)
    else:
        w = default_warmup(runs)
        if not isinstance(w, int):
            from ..stats import mser5

            w = max(mser5(np.asarray(r.in_system, dtype=float)) for r in runs)
        data = [_sojourns(r, w) for r in runs]
        iv = steady_state_ci(data if len(data) > 1 else data[0], level, batches, 0)
    return judge("stationary", quantity, theory, iv).replace(unit=_STATIONARY_UNITS[quantity])


STATIONARY = theorems.register(Theorem(
    name="stationary",
    title="Stationary number in system of the Geo^X/Geo/B queue from the kernel roots",
    hypotheses=(
        "Policy fcfs_cap, finite B, no memory limit; geometric decode lengths with one parameter q "
        "(each member completes with probability q per iteration).",
        "I.i.d. arrivals per iteration with PGF A(z), P(A = 0) > 0 when B > 1; lambda < B q.",
        "In system = waiting + batch, observed after admission (the model chapter, section 2).",
    ),
    statement_fn=_stationary_statement,
    evaluate_fn=_stationary_evaluate,
    check_fn=_stationary_check,
    source="Bruneel and Kim (1993), ch. 4; Bailey (1954) for q = 1; the model chapter, section 5, B.5",
    applies_fn=lambda m: tq.queue_reason(m, geometric=True),
    runs=STATIONARY_RUNS,
    comparison="mean number in system (option quantity: p_empty, mean_batch, mean_sojourn) of an open run "
               "(batch means; near critical load 8 independent replications, Student interval) against the "
               "prediction: two-sided CI; unstable model: does not apply",
))


# ----------------------------------------------------------------------------------
# lyapunov-bounds
# ----------------------------------------------------------------------------------
def _lyapunov_statement(model: ContinuousBatching) -> sp.Basic:
    res = tq.lyapunov_bounds(model)
    EY = sp.Symbol("E[Y]")
    return sp.And(sp.Le(res.lower, EY, evaluate=False), sp.Le(EY, res.upper, evaluate=False), evaluate=False)


def _lyapunov_evaluate(model: ContinuousBatching) -> dict:
    res = tq.lyapunov_bounds(model)
    out = {"lower": res.lower, "upper": res.upper, "queue_lower": res.queue_lower,
           "queue_upper": res.queue_upper, "stable": res.stable}
    if res.reason:
        out["reason"] = res.reason
    if res.stable is True and not model.is_symbolic:
        try:  # how tight: the gap against the exact stationary mean (kernel roots), when it exists
            exact = qs.stationary(model).mean_in_system
        except ModelError as exc:
            out["tightness_reason"] = str(exc)
        else:
            out["mean_in_system"] = exact
            out["relative_gap"] = sp.simplify((res.upper - res.lower) / exact) if exact != 0 else sp.oo
    return out


def _lyapunov_check(model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = DEFAULT_LEVEL,
                    batches: int = DEFAULT_BATCHES) -> Verdict:
    r"""The interval of the mean number in system must meet the predicted bounds
    :math:`[L, U]` (test: bounds; rejected when the interval lies beyond one of them).

    The reason states how tight the bounds are: their gap relative to the exact stationary
    mean (``evaluate``'s ``relative_gap``), i.e. how far off a mean could be and still pass.
    An unstable model has no stationary mean: "does not apply".
    """
    _numeric(model)
    runs = runs_list(trajectory)
    lo = predicted(prediction, "lower", "lyapunov-bounds")
    hi = predicted(prediction, "upper", "lyapunov-bounds")
    if prediction.get("stable") is False or math.isinf(numeric(lo, "lower")):
        why = prediction.get("reason") or "the model is unstable"
        return Verdict.not_applicable("lyapunov-bounds", "mean_in_system",
                                      f"{why}: the bounds are infinite; the overload drift describes this model",
                                      theory=numeric(lo, "lower"), unit="requests")
    iv = mean_interval(runs, lambda r: np.asarray(r.in_system, dtype=float), level, batches)
    info = {}
    v = judge_bounds("lyapunov-bounds", "mean_in_system", lo, hi, iv, info)
    if "relative_gap" in prediction:
        gap = numeric(prediction["relative_gap"], "relative_gap")
        exact = numeric(prediction["mean_in_system"], "mean_in_system")
        info = {**v.details, "relative_gap": gap, "mean_in_system": exact}
        tight = (f"; tightness: the gap U - L = {numeric(hi, 'upper') - numeric(lo, 'lower'):.4g} is "
                 f"{100 * gap:.3g}% of the exact stationary mean {exact:.6g}")
        v = v.replace(reason=v.reason + tight, details=info)
    return v.replace(unit="requests")


LYAPUNOV_BOUNDS = theorems.register(Theorem(
    name="lyapunov-bounds",
    title="Quadratic-Lyapunov bounds on the stationary mean number in system (geometric l1)",
    hypotheses=(
        "Policy fcfs_cap, finite B; geometric decode lengths with parameter q (q = 1: Bailey's queue).",
        "I.i.d. arrivals per iteration with mean lambda and variance sigma^2; lambda < B q.",
        "The bounds are on E[Y], the number in system after admission.",
    ),
    statement_fn=_lyapunov_statement,
    evaluate_fn=_lyapunov_evaluate,
    check_fn=_lyapunov_check,
    source="The model chapter, section 5, B.6 (Kingman-type quadratic drift)",
    applies_fn=lambda m: tq.queue_reason(m, geometric=True),
    runs=STATIONARY_RUNS,
    comparison="mean number in system of an open run (batch means; near critical load 8 independent "
               "replications) against [lower, upper]: the interval must meet the bounds; the relative gap "
               "(U - L)/E[Y] says how loose they are",
))


# ----------------------------------------------------------------------------------
# waiting-cap
# ----------------------------------------------------------------------------------
def _waiting_statement(model: ContinuousBatching, exact: bool = False) -> sp.Basic:
    lim = sp.Symbol("rejection_rate_K_to_oo")
    rate = sp.Eq(lim, qw.overload_rejection_rate(model), evaluate=False)
    if tq.geometric_q(model) is not None and not model.is_symbolic:
        value = qw.rejection_probability(model, exact=exact)
        value = value if isinstance(value, sp.Basic) else sp.Float(float(value), 15)
        prob = sp.Eq(sp.Symbol("P_rej"), value, evaluate=False)
        return sp.And(prob, rate, evaluate=False)
    return rate


def _waiting_evaluate(model: ContinuousBatching, exact: bool = False) -> dict:
    out: dict[str, Any] = {"overload_rejection_rate": qw.overload_rejection_rate(model),
                           "arrival_rate": tq.queue_inputs(model).lam}
    if tq.geometric_q(model) is not None and not model.is_symbolic:
        res = qw.waiting_cap_chain(model, exact=exact)
        conv = (lambda x: x) if res.exact else float
        out.update(rejection_probability=conv(res.rejection_probability), rejection_rate=conv(res.rejection_rate),
                   throughput=conv(res.throughput), mean_in_system=conv(res.mean_in_system), exact=res.exact)
    else:
        out["rejection_probability"] = qw.rejection_probability(model)
        why = "symbolic model" if model.is_symbolic else "no finite chain for this decode law"
        out["reason"] = f"{why}: the K -> oo limit (lambda - B/E[l1])^+/lambda of the rejection probability"
    return out


def _waiting_check(model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = DEFAULT_LEVEL,
                   batches: int = DEFAULT_BATCHES) -> Verdict:
    """Rejections per iteration divided by lambda against the predicted rejection probability
    of the finite chain (two-sided CI). Without a finite chain (non-geometric decode
    lengths) the prediction is the K -> oo limit, not a statement about this K: "does not
    apply"."""
    _numeric(model)
    runs = runs_list(trajectory)
    theory = predicted(prediction, "rejection_probability", "waiting-cap")
    if "exact" not in prediction:
        return Verdict.not_applicable(
            "waiting-cap", "rejection_probability",
            (prediction.get("reason") or "no finite chain") + "; a finite K is not compared with the limit",
            theory=numeric(theory, "rejection_probability"), unit="probability")
    lam = numeric(predicted(prediction, "arrival_rate", "waiting-cap"), "arrival_rate")
    iv = mean_interval(runs, lambda r: _total(r.rejections) / lam, level, batches)
    return judge("waiting-cap", "rejection_probability", theory, iv).replace(unit="probability")


WAITING_CAP = theorems.register(Theorem(
    name="waiting-cap",
    title="Waiting-room cap K: rejection probability (finite chain); overload rejection rate lambda - B/E[l1]",
    hypotheses=(
        "Policy fcfs_cap, finite B, finite waiting_cap K: arrivals finding K waiting are rejected.",
        "Geometric decode lengths for the exact finite-K probability; any decode law for the overload "
        "rate lambda - B/E[l1] as K -> oo.",
    ),
    statement_fn=_waiting_statement,
    evaluate_fn=_waiting_evaluate,
    check_fn=_waiting_check,
    source="The model chapter, section 5, B.7",
    applies_fn=qw.waiting_cap_reason,
    runs=OPEN,
    comparison="rejections per iteration of an open run divided by lambda (batch means) against the "
               "rejection probability of the finite chain: two-sided CI",
))
