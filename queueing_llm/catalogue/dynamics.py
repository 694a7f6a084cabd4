r"""Built-in theorems of MODEL.md section 5, family A (memory-constrained dynamics, [ADLS26]).

Importing the module registers:

========================  ===================================================================
``fixed-point``           ``x_star``: eviction-free fixed point :math:`x^* = M/\sum_k p_k C_k`
``linear-map``            ``spectral_radius``, ``stable``: the linearised map and its roots
``worst-cycle``           ``throughput``, ``ratio``: :math:`M/(l_1(l_0+l_1))` and its ratio to x*
``cycles``                ``adjacent``, ``opposite``, ``contiguous``, ``balanced``
``gcd-criterion``         ``gcd``, ``limiting_radius``, ``spectral_radius``, ``stable``, ``l0_min``
``rate-limited``          ``throughput``: rate limiting at :math:`x \le x^*` never evicts
``open-system``           ``stability_threshold``, ``stable``, ``x_star``, ``worst_cycle``, ``policy``:
                          the open system is stable iff :math:`\lambda < \theta` (greedy and
                          reserve: the worst cycle; rate limiting: :math:`x \le x^*`)
========================  ===================================================================

Options of ``evaluate``: ``cycles`` takes ``block=i`` (one contiguous-block cycle :math:`c_i`)
and ``spacing=d`` (one evenly spaced cycle; by default all, as dicts by ``i`` and ``d``);
``gcd-criterion`` takes ``ratios`` (prompt ratios :math:`r_k` of the limit) and ``max_l0``
(search limit of ``l0_min``); ``rate-limited`` takes ``rate`` (default: the policy's rate,
else :math:`x^*`); ``open-system`` takes ``policy`` (another covered policy) and ``rate`` (an
arrival rate other than the model's). Options of ``check``: ``slack`` (``fixed-point``,
``worst-cycle``, ``rate-limited``), ``tol`` (``cycles``, float runs),
``warmup`` and ``batches`` (``open-system``).

Every ``statement`` is derived by :mod:`queueing_llm.theory.dynamics` from the model; every
``check`` reads a saturated trajectory: a simulated ``ql.simulate(..., saturated=True)`` run
(integer counts) or a :class:`~queueing_llm.theory.dynamics.RelaxedTrajectory` (real counts),
or a list of them (the verdict holds if it holds for each). The checks are deterministic
comparisons (exact for integer and rational runs), so they report no confidence interval;
``level`` is accepted for :func:`ql.verify <queueing_llm.verify.verify>` and unused. Checks
other than ``fixed-point`` and ``open-system`` refuse open-system runs with a
:class:`~queueing_llm.ModelError`. ``open-system`` is the exception in the other direction: it
reads open-system runs (``ql.simulate(model, N, seed=...)``), refuses saturated ones, and is a
statistical check with confidence intervals at ``level``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp

from ..errors import ModelError
from ..model import ContinuousBatching
from ..numbers import is_infinite, is_symbolic
from ..policies import Greedy, RateLimited, Reserve
from ..stats import Interval, batch_means_ci, rate_ci, replications_ci
from ..theorems import Theorem, theorems
from ..theory import dynamics as dyn
from ..verdict import Verdict

__all__ = ["SOURCE"]

SOURCE = "[ADLS26] Ao, Dong, Luo, Simchi-Levi, arXiv:2606.15555 (2026)"
X_STAR = sp.Symbol("x_star")


# -- applicability -------------------------------------------------------------------------
def _memory_reason(model: ContinuousBatching) -> str | None:
    if is_infinite(model.kv_capacity):
        return "kv_capacity M is infinite: memory never binds and there are no memory-constrained dynamics"
    return None


def _finite_decode_reason(model: ContinuousBatching) -> str | None:
    reason = _memory_reason(model)
    if reason is not None:
        return reason
    try:
        dyn.components(model)
    except ModelError as exc:
        return str(exc)
    return None


def _homogeneous_reason(model: ContinuousBatching) -> str | None:
    reason = _finite_decode_reason(model)
    if reason is not None:
        return reason
    if len({(c.l0, c.l1) for c in dyn.components(model)}) != 1:
        return "the cycle results are for one request type with a deterministic decode length"
    return None


def _gcd_reason(model: ContinuousBatching) -> str | None:
    reason = _finite_decode_reason(model)
    if reason is not None:
        return reason
    if any(is_symbolic(c.l1) for c in dyn.components(model)):
        return "the gcd criterion needs numeric decode lengths"
    return None


def _rate_reason(model: ContinuousBatching) -> str | None:
    reason = _memory_reason(model)
    if reason is not None:
        return reason
    policy = model.policy
    if isinstance(policy, RateLimited) and policy.rate is not None and not model.is_symbolic:
        xs = dyn.fixed_point(model)
        if sp.nsimplify(policy.rate) > xs:
            return (f"the policy's rate {policy.rate} exceeds x* = {xs}: "
                    "rate limiting above x* does not prevent evictions")
    return None


# -- helpers for checks --------------------------------------------------------------------
def _runs(trajectory: Any, saturated: bool = True) -> list:
    runs = list(trajectory) if isinstance(trajectory, (list, tuple)) else [trajectory]
    if saturated:
        for run in runs:
            if not getattr(run, "saturated", True):
                raise ModelError(
                    "this check needs saturated runs (ql.simulate(..., saturated=True) or "
                    "ql.theory.dynamics.relaxed_trajectory); got an open-system run"
                )
    return runs


def _require_greedy(runs: list, model: ContinuousBatching, name: str) -> list:
    for run in runs:
        greedy = run.rate is None if _is_relaxed(run) else isinstance(getattr(run, "model", model).policy, Greedy)
        if not greedy:
            raise ModelError(f"the {name} check is about greedy admission; this run used another policy")
    return runs


def _is_integer(run: Any) -> bool:
    return np.issubdtype(np.asarray(run.batch).dtype, np.integer)


def _is_relaxed(run: Any) -> bool:
    return isinstance(run, dyn.RelaxedTrajectory)


def _is_exact(run: Any) -> bool:
    return _is_integer(run) or (_is_relaxed(run) and run.exact)


def _f(value: Any) -> float:
    return float(value) if not isinstance(value, sp.Basic) else float(value.evalf())


def _tail_throughput(run: Any) -> tuple[Any, Any, str]:
    """Throughput of the detected cycle, else of the second half with the boundary term."""
    cycle = dyn.detect_cycle(run)
    if cycle is not None:
        return cycle.throughput, 0, f"cycle of period {cycle.period} from iteration {cycle.start}"
    N = int(np.asarray(run.batch).shape[0])
    start = N // 2
    W = N - start
    done = np.asarray(run.completions)[start:].sum()
    present = np.asarray(run.batch)[start].sum()
    exact = _is_integer(run) or (_is_relaxed(run) and run.exact)
    est = sp.Rational(int(done), W) if _is_integer(run) else (done / W if exact else float(done) / W)
    boundary = sp.Rational(int(present), W) if _is_integer(run) else (present / W if exact else float(present) / W)
    return est, boundary, f"no cycle found: iterations {start}..{N - 1}"


def _combine(verdicts: list[Verdict], pick: Any) -> Verdict:
    if len(verdicts) == 1:
        return verdicts[0]
    failing = [v for v in verdicts if not v.holds]
    chosen = failing[0] if failing else pick(verdicts, key=lambda v: v.estimate)
    reason = f"{len(verdicts) - len(failing)}/{len(verdicts)} runs agree. {chosen.reason}"
    return Verdict(chosen.theorem, chosen.quantity, chosen.theory, chosen.estimate, None, not failing, reason,
                   {"runs": [v.estimate for v in verdicts], **chosen.details})


# -- fixed point ---------------------------------------------------------------------------
def _fixed_point_statement(model: ContinuousBatching) -> sp.Basic:
    return sp.Eq(X_STAR, dyn.fixed_point(model))


def _fixed_point_evaluate(model: ContinuousBatching) -> dict:
    return {"x_star": dyn.fixed_point(model)}


def _fixed_point_check(
    model: ContinuousBatching, trajectory: Any, prediction: dict, slack: Any = 0, level: float = 0.95) -> Verdict:
    r"""Throughput of a saturated run :math:`\le x^*` + ``slack``.

    Over a cycle the memory after admission sums to at most :math:`P M`, and every request
    completed in it held :math:`C` token-iterations, so the cycle throughput is at most
    :math:`x^*` exactly, integer counts included (one deterministic type). Without a cycle
    the second half is used, plus the boundary term (requests present at its start)/window.
    """
    xs = dyn.fixed_point(model)
    verdicts = []
    for run in _runs(trajectory, saturated=False):
        est, boundary, where = _tail_throughput(run)
        bound = xs + boundary + sp.nsimplify(slack)
        holds = bool(est <= bound)
        verdicts.append(Verdict(
            "fixed-point", "x_star", _f(xs), _f(est), None, holds,
            f"saturated throughput {_f(est):.6g} ({where}) {'<=' if holds else '>'} x* + slack = {_f(bound):.6g}",
            {"bound": _f(bound), "slack": _f(slack), "boundary": _f(boundary)},
        ))
    return _combine(verdicts, max)


# -- linear map ----------------------------------------------------------------------------
def _linear_statement(model: ContinuousBatching) -> sp.Basic:
    return sp.Eq(sp.Function("F")(dyn.LAMBDA), dyn.survival_polynomial(model))


def _linear_evaluate(model: ContinuousBatching) -> dict:
    return {"spectral_radius": dyn.spectral_radius(model), "stable": dyn.is_stable(model)}


def _deviation_rate(model: ContinuousBatching, run: Any) -> dict:
    """Growth factor per iteration of the deviation from the fixed point (before any eviction)."""
    if not _is_relaxed(run) and _is_integer(run):
        raise ModelError(
            "this check compares the linearisation with a relaxed trajectory "
            "(ql.theory.dynamics.relaxed_trajectory); integer runs cannot contract below one request"
        )
    state = np.array(dyn.fixed_point_state(model), dtype=float)
    batch = np.asarray(run.batch, dtype=float)
    dev = np.max(np.abs(batch - state[None, :, : batch.shape[2]]), axis=(1, 2))
    first = run.first_eviction if _is_relaxed(run) else None
    end = len(dev) if first is None else first
    window = dev[:end]
    if window.size < 4 or window[0] == 0:
        rate = math.inf if first is not None else 0.0
    else:
        q = max(1, window.size // 4)
        head, tail = np.max(window[:q]), np.max(window[-q:])
        rate = 0.0 if tail == 0 else float((tail / head) ** (1.0 / (window.size - q)))
    return {"rate": rate, "first_eviction": first, "initial_deviation": float(dev[0]),
            "final_deviation": float(dev[end - 1]) if end else float(dev[0])}


def _stability_verdict(name: str, quantity: str, theory_rho: float, stable: bool, model, trajectory) -> Verdict:
    verdicts = []
    for run in _require_greedy(_runs(trajectory), model, name):
        d = _deviation_rate(model, run)
        converged = d["first_eviction"] is None and d["rate"] < 1
        holds = converged == stable
        what = "converges to" if converged else "leaves"
        evict = "" if d["first_eviction"] is None else f", first eviction at iteration {d['first_eviction']}"
        verdicts.append(Verdict(
            name, quantity, float(theory_rho), d["rate"], None, holds,
            f"the relaxed map {what} the fixed point (deviation factor {d['rate']:.6g} per iteration{evict}); "
            f"theory: spectral radius {float(theory_rho):.6g}, {'stable' if stable else 'unstable'}",
            d,
        ))
    return _combine(verdicts, max)


def _linear_check(
    model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = 0.95) -> Verdict:
    """A relaxed run started near :math:`x^*` converges iff :math:`\\rho(F) < 1`."""
    return _stability_verdict("linear-map", "spectral_radius", dyn.spectral_radius(model), dyn.is_stable(model),
                              model, trajectory)


# -- worst cycle ---------------------------------------------------------------------------
def _worst_statement(model: ContinuousBatching) -> sp.Basic:
    th = dyn.worst_cycle(model).throughput
    return sp.And(sp.Eq(sp.Symbol("x_worst"), th), sp.Eq(sp.Symbol("x_worst") / X_STAR,
                                                         sp.factor(th / dyn.fixed_point(model))))


def _worst_evaluate(model: ContinuousBatching) -> dict:
    th = dyn.worst_cycle(model).throughput
    return {"throughput": th, "ratio": sp.factor(th / dyn.fixed_point(model))}


def _worst_bound(model: ContinuousBatching, run: Any) -> sp.Expr:
    th = dyn.worst_cycle(model).throughput
    if not _is_integer(run):
        return th
    c = dyn.single_component(model)
    return sp.floor(model.M / c.w(c.l1 - 1)) / c.l1  # the integer worst cycle


def _worst_check(
    model: ContinuousBatching, trajectory: Any, prediction: dict, slack: Any = 0, level: float = 0.95) -> Verdict:
    r"""Cycle throughput :math:`\ge` the worst-cycle throughput - ``slack``.

    Relaxed runs: :math:`M/(l_1(l_0+l_1))` exactly. Integer runs: the integer worst cycle
    :math:`\lfloor M/w_{l_1-1} \rfloor / l_1` (it completes whole requests), which differs by
    less than :math:`1/l_1`.
    """
    verdicts = []
    for run in _require_greedy(_runs(trajectory), model, "worst-cycle"):
        bound = _worst_bound(model, run) - sp.nsimplify(slack)
        cycle = dyn.detect_cycle(run)
        if cycle is None:
            verdicts.append(Verdict("worst-cycle", "throughput", _f(bound), math.nan, None, False,
                                    "no periodic regime found in the run: run longer", {}))
            continue
        holds = bool(cycle.throughput >= bound)
        verdicts.append(Verdict(
            "worst-cycle", "throughput", _f(bound), _f(cycle.throughput), None, holds,
            f"cycle of period {cycle.period} has throughput {_f(cycle.throughput):.6g} "
            f"{'>=' if holds else '<'} worst-cycle bound {_f(bound):.6g}",
            {"period": cycle.period, "start": cycle.start, "bound": _f(bound)},
        ))
    return _combine(verdicts, min)


# -- other cycles --------------------------------------------------------------------------
def _cycles_statement(model: ContinuousBatching) -> sp.Basic:
    c = dyn.single_component(model)
    parts = [sp.Eq(sp.Symbol("x_adjacent"), dyn.adjacent_cycle(model).throughput)]
    if is_symbolic(c.l1) or int(c.l1) % 2 == 0:
        parts.append(sp.Eq(sp.Symbol("x_opposite"), dyn.opposite_cycle(model).throughput))
    parts.append(sp.Eq(sp.Symbol("c_i"), dyn.contiguous_cycle(model).throughput))
    parts.append(sp.Eq(sp.Symbol("x_balanced_d"), dyn.balanced_cycle(model).throughput))
    return sp.And(*parts)


def _cycles_evaluate(model: ContinuousBatching, block: Any = None, spacing: Any = None) -> dict:
    """``block`` = i selects one contiguous cycle, ``spacing`` = d one evenly spaced cycle;
    by default all of them (dicts by i and by d; expressions in i and d for symbolic l1)."""
    all_ = dyn.cycle_throughputs(model)
    return {
        "adjacent": all_["adjacent"],
        "opposite": all_["opposite"],
        "contiguous": all_["contiguous"] if block is None else dyn.contiguous_cycle(model, block).throughput,
        "balanced": all_["balanced"] if spacing is None else dyn.balanced_cycle(model, spacing).throughput,
    }


def _catalogue(model: ContinuousBatching) -> dict[str, Any]:
    all_ = dyn.cycle_throughputs(model)
    out = {"worst": all_["worst"], "fixed point": all_["fixed_point"], "adjacent": all_["adjacent"]}
    if all_["opposite"] is not sp.nan:
        out["opposite"] = all_["opposite"]
    out.update({f"contiguous c_{i}": v for i, v in all_["contiguous"].items()})
    out.update({f"balanced d={d}": v for d, v in all_["balanced"].items()})
    return out


def _cycles_check(
    model: ContinuousBatching, trajectory: Any, prediction: dict, tol: float = 1e-9, level: float = 0.95) -> Verdict:
    r"""The cycle a run settles on is one of the catalogued cycles.

    Relaxed runs: its throughput equals a catalogued value (exactly for rational runs,
    within ``tol`` relative for float runs). Integer runs do not reproduce the relaxed
    cycles exactly: the throughput must lie between the integer worst cycle and :math:`x^*`;
    the nearest catalogued cycle is reported.
    """
    runs = _require_greedy(_runs(trajectory), model, "cycles")  # refuse unsuitable runs before deriving
    cat = _catalogue(model)
    verdicts = []
    for run in runs:
        cycle = dyn.detect_cycle(run)
        if cycle is None:
            verdicts.append(Verdict("cycles", "throughput", math.nan, math.nan, None, False,
                                    "no periodic regime found in the run: run longer", {}))
            continue
        est = cycle.throughput
        name, value = min(cat.items(), key=lambda kv: abs(_f(kv[1]) - _f(est)))
        if _is_integer(run):
            low = _worst_bound(model, run)
            holds = bool(low <= est <= cat["fixed point"])
            reason = (f"integer cycle of period {cycle.period}, throughput {_f(est):.6g} "
                      f"{'within' if holds else 'outside'} [integer worst cycle {_f(low):.6g}, x* "
                      f"{_f(cat['fixed point']):.6g}]; nearest catalogued: {name}")
        else:
            exact = _is_relaxed(run) and run.exact
            holds = bool(sp.simplify(est - value) == 0) if exact else abs(_f(est) - _f(value)) <= tol * abs(_f(value))
            reason = (f"cycle of period {cycle.period}, throughput {_f(est):.6g}: "
                      f"{'the ' + name + ' cycle' if holds else 'not a catalogued cycle (nearest: ' + name + ')'}")
        verdicts.append(Verdict("cycles", "throughput", _f(value), _f(est), None, holds, reason,
                                {"cycle": name, "period": cycle.period, "start": cycle.start}))
    return _combine(verdicts, min)


# -- gcd criterion -------------------------------------------------------------------------
def _gcd_statement(model: ContinuousBatching, ratios: Any = None) -> sp.Basic:
    lam = dyn.LAMBDA
    return sp.Eq((1 - lam) * sp.Function("A")(lam), dyn.limiting_closed_form(model, lam, ratios))


def _gcd_evaluate(model: ContinuousBatching, ratios: Any = None, max_l0: int = 10**6) -> dict:
    """``ratios``: prompt ratios r_k of the limit (default: equal prompts -> 1, else the
    prompts); ``max_l0``: search limit of ``l0_min``."""
    return {
        "gcd": dyn.decode_gcd(model),
        "limiting_radius": dyn.limiting_radius(model, ratios),
        "spectral_radius": dyn.spectral_radius(model),
        "stable": dyn.is_stable(model),
        "l0_min": dyn.l0_min(model, max_l0=max_l0),
    }


def _gcd_check(
    model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = 0.95) -> Verdict:
    """A relaxed run started near :math:`x^*` converges iff the criterion says stable."""
    return _stability_verdict("gcd-criterion", "stable", dyn.spectral_radius(model), dyn.is_stable(model),
                              model, trajectory)


# -- rate-limited admission ----------------------------------------------------------------
def _rate_of(model: ContinuousBatching, rate: Any) -> Any:
    if rate is not None:
        return rate
    policy = model.policy
    return policy.rate if isinstance(policy, RateLimited) else None


def _rate_statement(model: ContinuousBatching, rate: Any = None) -> sp.Basic:
    r = dyn.rate_limited_throughput(model, _rate_of(model, rate))
    return sp.And(sp.Eq(sp.Symbol("throughput"), r["throughput"]), sp.Eq(sp.Symbol("evictions"), 0))


def _rate_evaluate(model: ContinuousBatching, rate: Any = None) -> dict:
    """``rate``: admissions per iteration (default: the policy's rate, else x*)."""
    return {"throughput": dyn.rate_limited_throughput(model, _rate_of(model, rate))["throughput"]}


def _rate_check(
    model: ContinuousBatching, trajectory: Any, prediction: dict, slack: Any = None, level: float = 0.95
) -> Verdict:
    r"""A rate-limited saturated run: throughput equals the rate (:math:`x^*`), no eviction.

    Relaxed runs: the throughput equals the rate exactly (cycle; else within the boundary
    term of the window) and nothing is ever evicted. Integer runs (token bucket, whole
    requests) cannot pack exactly :math:`x^*` per iteration and may evict: the guaranteed
    part is the upper bound (throughput at most the rate, memory Little's law); with
    ``slack`` the throughput must also be at least rate - ``slack``. The evictions per
    iteration and the deficit are reported in ``details`` (measured over random models:
    evictions in about 12 % of them, always fewer than greedy's; the deficit is below
    6 % once 100 requests are in flight, but can exceed greedy's worst cycle when fewer
    than 5 are).
    """
    x = prediction["throughput"]
    verdicts = []
    for run in _runs(trajectory):
        limited = run.rate is not None if _is_relaxed(run) else isinstance(
            getattr(run, "model", model).policy, RateLimited)
        if not limited:
            raise ModelError("the rate-limited check needs a run under rate-limited admission "
                             "(policy=ql.rate_limited(...)); this run admitted greedily")
        est, boundary, where = _tail_throughput(run)
        N = np.asarray(run.batch).shape[0]
        evictions = _f(np.asarray(run.evictions).sum())
        if _is_relaxed(run) or not _is_integer(run):
            tol = boundary if slack is None else sp.nsimplify(slack)
            close = abs(_f(est) - _f(x)) <= _f(tol) + (1e-9 * _f(x) if not _is_exact(run) else 0)
            if _is_exact(run):
                close = bool(abs(est - x) <= tol)
            holds = close and evictions == 0
            low, high = x - tol, x + tol
        else:
            high = x + boundary
            low = x - sp.nsimplify(slack) if slack is not None else sp.Integer(0)
            holds = bool(low <= est <= high)
        verdicts.append(Verdict(
            "rate-limited", "throughput", _f(x), _f(est), None, holds,
            f"throughput {_f(est):.6g} ({where}) {'within' if holds else 'outside'} [{_f(low):.6g}, {_f(high):.6g}] "
            f"around the rate {_f(x):.6g}; {evictions:g} evictions in {N} iterations",
            {"evictions": evictions, "evictions_per_iteration": evictions / N, "low": _f(low), "high": _f(high),
             "deficit": _f(x) - _f(est)},
        ))
    return _combine(verdicts, min)


# -- open system ---------------------------------------------------------------------------
THETA = sp.Symbol("theta")


def _open_statement(model: ContinuousBatching, policy: Any = None, rate: Any = None) -> sp.Basic:
    o = dyn.open_system(model, policy, rate)
    cond = sp.StrictLessThan(o.arrival_rate, THETA, evaluate=False)
    return sp.And(sp.Eq(THETA, o.threshold, evaluate=False), sp.Equivalent(sp.Symbol("stable"), cond, evaluate=False),
                  evaluate=False)


def _open_evaluate(model: ContinuousBatching, policy: Any = None, rate: Any = None) -> dict:
    """``policy``: another covered policy (default the model's); ``rate``: an arrival rate
    per iteration other than the model's (a number or a symbol)."""
    o = dyn.open_system(model, policy, rate)
    return {"stability_threshold": o.threshold, "stable": o.stable, "x_star": o.x_star,
            "worst_cycle": o.worst_cycle, "policy": o.policy}


def _open_runs(trajectory: Any, model: ContinuousBatching) -> list:
    runs = list(trajectory) if isinstance(trajectory, (list, tuple)) else [trajectory]
    for run in runs:
        if getattr(run, "saturated", False):
            raise ModelError("the open-system check needs open-system runs (ql.simulate(model, N, seed=...) "
                             "without saturated=True); got a saturated run")
        policy = getattr(getattr(run, "model", None), "policy", model.policy)
        if policy != model.policy:
            raise ModelError(f"the run used policy {policy}, the model {model.policy}: the open-system check "
                             "compares a run with the threshold of its own policy")
    return runs


def _total(run: Any, name: str) -> np.ndarray:
    arr = np.asarray(getattr(run, name), dtype=float)
    return arr.reshape(arr.shape[0], -1).sum(axis=1)


def _open_intervals(runs: list, level: float, warmup: Any, batches: int) -> tuple[Interval, Interval, Interval, int]:
    """Growth rate of the number in system, throughput and evictions per iteration."""
    N = min(int(np.asarray(run.in_system).shape[0]) for run in runs)
    d = N // 10 if warmup is None else int(warmup)
    if not 0 <= d <= N - 2 * batches:
        raise ModelError(f"warmup must be in [0, {N - 2 * batches}] for runs of {N} iterations, got {warmup}")
    series = [np.asarray(run.in_system, dtype=float)[d:] for run in runs]
    if len(runs) == 1:
        growth = rate_ci(series[0], level, batches)
        thr = batch_means_ci(_total(runs[0], "completions")[d:], level, batches)
        ev = batch_means_ci(_total(runs[0], "evictions")[d:], level, batches)
    else:
        growth = rate_ci(series, level, batches)
        thr = replications_ci([float(_total(r, "completions")[d:].mean()) for r in runs], level)
        ev = replications_ci([float(_total(r, "evictions")[d:].mean()) for r in runs], level)
    return growth, thr, ev, d


def _integer_congested_low(model: ContinuousBatching, theta: float) -> float:
    """Least congested throughput of the integer system under greedy or reserve admission:
    whole requests, :math:`\\lfloor M/w_{l_1-1} \\rfloor / l_1` (deterministic prompt)."""
    (t,) = model.types
    if not t.is_deterministic:
        return theta
    c = dyn.single_component(model)
    return _f(sp.floor(model.M / c.w(c.l1 - 1)) / c.l1)


def _open_check(
    model: ContinuousBatching, trajectory: Any, prediction: dict, level: float = 0.95, warmup: Any = None,
    batches: int = 20,
) -> Verdict:
    r"""Stable below the threshold, growing above it: confidence intervals on open-system runs.

    From the number in system :math:`Y_n` after ``warmup`` iterations (default a tenth of
    the run): the growth rate (:func:`~queueing_llm.stats.rate_ci`: batch means of the
    increments, or replications for a list of runs), the throughput and the evictions per
    iteration, each with a Student interval at ``level``.

    * :math:`\lambda < \theta` (stable): the growth interval must reach down to 0 (no
      linear growth). With an unlimited waiting room the increments are arrivals minus
      completions, so this is also "throughput equal to the arrivals within the interval".
    * :math:`\lambda > \theta` (congests): the growth interval must lie above 0, and the
      throughput interval must meet the congested range of the integer system:
      :math:`[\lfloor M/w_{l_1-1}\rfloor/l_1,\ x^*]` for greedy and reserve (at most the rate
      :math:`x` for rate limiting); greedy must also evict persistently (eviction interval
      above 0).
    * :math:`\lambda = \theta` (critical): no prediction beyond the memory bound: the
      throughput interval must reach down to :math:`x^*` or below.

    ``reserve`` never evicts: any eviction fails the check. Integer effects (measured on the
    REFERENCES example :math:`M = 2000`, :math:`l_0 = 10`, :math:`l_1 = 40`): congested greedy
    settles on cycles completing 1.00 to 1.07 per iteration, above the relaxed worst cycle 1
    (greedy at 1.02 stayed stable for :math:`10^5` iterations), and the integer token bucket
    on cycles completing 1.575 to 1.600, below :math:`x^* = 1.639` (rate limiting at 1.62
    grows at 0.029 per iteration). Rates within a few percent of :math:`\theta` can therefore
    go either way. Collapse under greedy is metastable, after a random time that grows
    quickly as :math:`\lambda` approaches :math:`\theta` (at 1.2: a few thousand iterations,
    4 seeds in 20 not within :math:`2 \cdot 10^4`), so runs must be long enough to see it.
    """
    o = dyn.open_system(model)
    runs = _open_runs(trajectory, model)
    lam, theta, xs = _f(o.arrival_rate), _f(o.threshold), _f(o.x_star)
    growth, thr, ev, d = _open_intervals(runs, level, warmup, batches)
    policy = model.policy
    evictions = float(sum(_total(r, "evictions").sum() for r in runs))
    g = f"growth {growth.estimate:.4g} per iteration [{growth.low:.4g}, {growth.high:.4g}]"
    t = f"throughput {thr.estimate:.4g} [{thr.low:.4g}, {thr.high:.4g}]"
    problems: list[str] = []
    if isinstance(policy, Reserve) and evictions > 0:
        problems.append(f"reserve evicted {evictions:g} times")
    if lam < theta:
        branch = "stable"
        if growth.low > 0:
            problems.append("the queue grows")
        low, high = -math.inf, math.inf
    elif lam > theta:
        branch = "congested"
        if isinstance(policy, RateLimited):
            low, high = 0.0, theta
        else:
            low, high = _integer_congested_low(model, theta), xs
        if not growth.low > 0:
            problems.append("the queue does not grow significantly")
        eps = 1e-9 * max(abs(low), abs(high), 1.0)  # float rounding of exact cycles (degenerate intervals)
        if thr.low > high + eps or thr.high < low - eps:
            problems.append(f"the throughput is outside the congested range [{low:.4g}, {high:.4g}]")
        if isinstance(policy, Greedy) and not ev.low > 0:
            problems.append("greedy does not evict persistently")
    else:
        branch = "critical"
        low, high = -math.inf, xs
        if thr.low > xs * (1 + 1e-9):
            problems.append(f"the throughput exceeds x* = {xs:.4g}")
    holds = not problems
    relation = {"stable": "<", "congested": ">", "critical": "="}[branch]
    expect = {"stable": "the queue must be stable", "congested": "the queue must grow",
              "critical": "critical rate, no prediction beyond throughput <= x*"}[branch]
    reason = (f"{o.policy}: arrival rate {lam:.4g} {relation} threshold {theta:.4g} ({expect}); {g}, {t}, "
              f"evictions {ev.estimate:.4g} per iteration" + ("" if holds else f": {'; '.join(problems)}"))
    details = {
        "branch": branch, "arrival_rate": lam, "threshold": theta, "x_star": xs, "worst_cycle": _f(o.worst_cycle),
        "growth": growth, "throughput": thr, "evictions": ev, "excess_growth": growth.estimate - (lam - theta),
        "congested_low": low, "congested_high": high, "warmup": d, "runs": len(runs),
    }
    return Verdict("open-system", "stability_threshold", theta, thr.estimate, thr, holds, reason, details)


# -- registration --------------------------------------------------------------------------
theorems.register(Theorem(
    name="fixed-point",
    title="Eviction-free fixed point of the saturated map",
    hypotheses=("saturated input (the queue never empties)", "finite KV budget M",
                "relaxed map: real-valued stage counts; prompts enter through their mean",
                "multi-type: admissions in proportions p_k"),
    statement_fn=_fixed_point_statement, evaluate_fn=_fixed_point_evaluate, check_fn=_fixed_point_check,
    source=f"{SOURCE}, eviction-free fixed point (MODEL.md A.1)", applies_fn=_memory_reason,
))
theorems.register(Theorem(
    name="linear-map",
    title="Linearised saturated map: survival polynomial and spectral radius",
    hypotheses=("saturated input, greedy admission, finite M", "deterministic or finite-support decode lengths",
                "linearisation around the eviction-free fixed point (no eviction)"),
    statement_fn=_linear_statement, evaluate_fn=_linear_evaluate, check_fn=_linear_check,
    source=f"{SOURCE}, linearisation and Enestrom-Kakeya (MODEL.md A.2)", applies_fn=_finite_decode_reason,
))
theorems.register(Theorem(
    name="worst-cycle",
    title="Worst-case (maximal-eviction) cycle and its throughput",
    hypotheses=("saturated input, greedy admission, finite M", "one request type, deterministic decode length",
                "every cycle of the relaxed map has at least this throughput"),
    statement_fn=_worst_statement, evaluate_fn=_worst_evaluate, check_fn=_worst_check,
    source=f"{SOURCE}, worst-case cycle (MODEL.md A.3)", applies_fn=_homogeneous_reason,
))
theorems.register(Theorem(
    name="cycles",
    title="Adjacent, opposite, contiguous-block and evenly spaced cycles",
    hypotheses=("saturated input, greedy admission, finite M", "one request type, deterministic decode length",
                "opposite: l1 even; evenly spaced: d divides l1; contiguous: 0 <= i < l1"),
    statement_fn=_cycles_statement, evaluate_fn=_cycles_evaluate, check_fn=_cycles_check,
    source=f"{SOURCE}, Propositions 2-4 (MODEL.md A.4)", applies_fn=_homogeneous_reason,
))
theorems.register(Theorem(
    name="gcd-criterion",
    title="Multi-type stability: limiting polynomial and the gcd criterion",
    hypotheses=("saturated input, greedy admission, finite M", "numeric deterministic or finite-support decodes",
                "large prompts l0_k = r_k s, s -> infinity, for the limiting polynomial",
                "l0_min: common prompt length for every type"),
    statement_fn=_gcd_statement, evaluate_fn=_gcd_evaluate, check_fn=_gcd_check,
    source=f"{SOURCE}, multi-type stability (MODEL.md A.5)", applies_fn=_gcd_reason,
))
theorems.register(Theorem(
    name="rate-limited",
    title="Rate-limited admission at x* removes evictions",
    hypotheses=("saturated input, finite M", "admit min(Q_n, S_n/(l0+1), x) per iteration with x <= x*",
                "relaxed map from an empty batch (integer runs: token bucket of depth x + 1)"),
    statement_fn=_rate_statement, evaluate_fn=_rate_evaluate, check_fn=_rate_check,
    source=f"{SOURCE}, section 5.1 (MODEL.md A.6)", applies_fn=_rate_reason,
))
theorems.register(Theorem(
    name="open-system",
    title="Open system: greedy admission is stable only below the worst cycle, rate limiting up to x*",
    hypotheses=("one request type, arrivals per iteration (Poisson or any law) with mean lambda, finite M",
                "unlimited batch cap and waiting room; policy greedy, rate_limited(x <= x*) or reserve",
                "while the queue is not empty the batch follows the saturated map of the policy",
                "stable iff lambda < theta; greedy and reserve: theta = M/(l1 (l0 + l1)); rate_limited(x): x"),
    statement_fn=_open_statement, evaluate_fn=_open_evaluate, check_fn=_open_check,
    source=f"{SOURCE}, worst-case cycle and section 5.1 (MODEL.md A.7)", applies_fn=dyn.open_system_reason,
))
