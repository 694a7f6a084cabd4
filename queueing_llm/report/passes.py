r"""The run kinds of a report: each theorem is verified against the first run it accepts.

A report simulates the model as an open system (arrivals, queue). The theorems of family
A (MODEL.md section 5, [ADLS26]) are statements about the *saturated* system (the queue
never empties) or the *relaxed* map (real-valued stage counts), and their checks refuse
open-system runs. For a model with a finite KV budget :math:`M` the report therefore adds,
only when some theorem needs them:

``"open"``
    ``ql.simulate(model, N, seed, engine="fast")``: the report's run.
``"saturated"``
    ``ql.simulate(model, min(N, 5000), seed, saturated=True, engine="fast")``: the integer
    system settles on its cycle long before 5000 iterations (the default model: from
    iteration 0, period :math:`l_1 = 40`).
``"relaxed"``
    :func:`queueing_llm.theory.dynamics.relaxed_trajectory` in floating point, ``min(N, 1500)``
    iterations, started at the eviction-free fixed point :math:`x_{c,j} = p_c x^*`
    (:math:`j < l_{1,c}`) scaled by :math:`1 - 0.05\,(j \bmod 3)/3` (a deviation of at most
    3.3 %, deterministic), so the linear-map and gcd checks see whether the map returns to
    :math:`x^*` (:math:`\rho(F) < 1`) or leaves it.
``"saturated, rate_limited(x*)"``
    The saturated run of ``dataclasses.replace(model, policy=ql.rate_limited())`` (same
    seed and length as ``"saturated"``), verified against that model; only when the model's
    own policy is not rate limiting (the ``rate-limited`` theorem of [ADLS26] section 5.1).

Each theorem is tried on the kinds in this order and gets at most one verdict, labelled
with the kind it was checked against; a theorem refused by every kind is recorded in
``Verdicts.skipped`` with the reason of each kind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..errors import ModelError, describe
from ..model import ContinuousBatching
from ..numbers import is_infinite
from ..policies import RateLimited, rate_limited
from ..theorems import Theorem, theorems
from ..verdict import Verdict
from ..verify import Verdicts, verify

__all__ = ["RUN_KINDS", "OPEN", "SATURATED", "RELAXED", "RATE_LIMITED", "SATURATED_ITERATIONS",
           "RELAXED_ITERATIONS", "RELAXED_DEVIATION", "RunKinds", "verify_kinds"]

OPEN = "open"
SATURATED = "saturated"
RELAXED = "relaxed"
RATE_LIMITED = "saturated, rate_limited(x*)"
RUN_KINDS = (OPEN, SATURATED, RELAXED, RATE_LIMITED)
"""The run kinds, in the order a theorem is tried on them."""

SATURATED_ITERATIONS = 5000
"""Longest saturated run (the report's ``iterations`` if fewer)."""

RELAXED_ITERATIONS = 1500
"""Longest relaxed run (the report's ``iterations`` if fewer)."""

RELAXED_DEVIATION = 0.05
r"""The relaxed run starts at :math:`x^*` scaled by :math:`1 - \delta (j \bmod 3)/3`, :math:`\delta` this."""


class RunKinds:
    """The runs of one report, built on first use.

    Parameters
    ----------
    model : ContinuousBatching
    open_run : Trajectory
        The report's open-system run (its seed is reused by the saturated runs).
    iterations : int
        The report's iterations :math:`N`.

    Attributes
    ----------
    runs : dict
        Kind -> run, for the kinds built so far (``"open"`` always).
    info : dict
        Kind -> JSON-ready description (iterations, seed, policy, ...), or ``{"error": why}``
        when the kind cannot be built for this model.
    """

    def __init__(self, model: ContinuousBatching, open_run: Any, iterations: int) -> None:
        self.model = model
        self.iterations = int(iterations)
        self.seed = open_run.seed
        self.runs: dict[str, Any] = {OPEN: open_run}
        self.info: dict[str, dict[str, Any]] = {OPEN: {
            "iterations": int(open_run.iterations), "seed": self.seed, "policy": str(model.policy),
            "engine": "fast", "saturated": False}}
        self.rate_model: ContinuousBatching | None = None

    def kinds(self) -> tuple[str, ...]:
        """The kinds this model has: ``"open"`` only for an infinite KV budget; no
        rate-limited copy when the model's own policy limits the rate."""
        if is_infinite(self.model.kv_capacity):
            return (OPEN,)
        if isinstance(self.model.policy, RateLimited):
            return (OPEN, SATURATED, RELAXED)
        return RUN_KINDS

    def model_of(self, kind: str) -> ContinuousBatching:
        """The model a run of ``kind`` was simulated from (and its theorems verified against)."""
        if kind != RATE_LIMITED:
            return self.model
        if self.rate_model is None:
            self.rate_model = dataclasses.replace(self.model, policy=rate_limited())
        return self.rate_model

    def get(self, kind: str) -> Any:
        """The run of ``kind``, built now if needed; raises ModelError when it cannot be built."""
        if kind in self.runs:
            return self.runs[kind]
        if "error" in self.info.get(kind, {}):
            raise ModelError(self.info[kind]["error"])
        try:
            run, info = self._build(kind)
        except ModelError as err:  # e.g. a policy the relaxed map does not cover: remembered, not fatal
            self.info[kind] = {"error": f"no {kind} run for this model: {err}"}
            raise ModelError(self.info[kind]["error"]) from None
        self.runs[kind] = run
        self.info[kind] = info
        return run

    def _build(self, kind: str) -> tuple[Any, dict[str, Any]]:
        from ..sim import simulate
        from ..theory import dynamics as dyn

        if kind in (SATURATED, RATE_LIMITED):
            model = self.model_of(kind)
            n = min(self.iterations, SATURATED_ITERATIONS)
            run = simulate(model, n, seed=self.seed, saturated=True, engine="fast")
            return run, {"iterations": n, "seed": run.seed, "policy": str(model.policy), "engine": "fast",
                         "saturated": True}
        if kind == RELAXED:
            n = min(self.iterations, RELAXED_ITERATIONS)
            run = dyn.relaxed_trajectory(self.model, n, _near_fixed_point(self.model), exact=False)
            return run, {"iterations": n, "policy": str(self.model.policy), "exact": False,
                         "initial": f"x* per component, stage j scaled by 1 - {RELAXED_DEVIATION} (j mod 3)/3",
                         "first_eviction": run.first_eviction}
        raise ModelError(f"unknown run kind {kind!r}; the kinds are {list(RUN_KINDS)}")


def _near_fixed_point(model: ContinuousBatching) -> list[list[float]]:
    r"""Stage counts :math:`p_c x^* (1 - \delta (j \bmod 3)/3)` for :math:`j < l_{1,c}`, one row per component."""
    from ..theory import dynamics as dyn

    xs = float(dyn.fixed_point(model))
    L = dyn.decode_horizon(model)
    return [[float(c.p) * xs * (1 - RELAXED_DEVIATION * (j % 3) / 3) if j < int(c.l1) else 0.0 for j in range(L)]
            for c in dyn.components(model)]


def _check(thm: Theorem, kind: str, runs: RunKinds, level: float) -> Verdict:
    """The verdict of ``thm`` on the run of ``kind``; ModelError if the check refuses it."""
    run = runs.get(kind)
    model = runs.model_of(kind)
    if kind == RATE_LIMITED:
        reason = thm.applies(model)
        if reason is not None:
            raise ModelError(f"does not apply to the rate-limited model: {reason}")
    if kind != RELAXED:
        return verify(thm, model, run, level)
    verdict = thm.check(model, run, level=level)  # verify() takes simulated Trajectories only
    if not isinstance(verdict, Verdict):
        raise ModelError(f"the check of theorem {thm.name!r} must return a Verdict, got {describe(verdict)}")
    return verdict


def verify_kinds(
    model: ContinuousBatching, runs: RunKinds, names: Sequence[str] | None, level: float
) -> tuple[Verdicts, dict[str, str]]:
    r"""Verdicts of the theorems (``names``, else every registered one that applies), each
    against the first run kind of :meth:`RunKinds.kinds` its check accepts.

    Returns
    -------
    (Verdicts, dict)
        The verdicts (``skipped``: name -> why not verified, as in
        :func:`queueing_llm.verify_all`; a theorem refused by every kind gets
        ``"check refused these runs: <kind> run: <why>; ..."``) and theorem name -> run kind.
    """
    out = Verdicts()
    kinds_of: dict[str, str] = {}
    chosen = list(theorems.items()) if names is None else [(name, theorems[name]) for name in names]
    for name, thm in chosen:
        if thm.check_fn is None:
            out.skipped[name] = "no numerical check"
            continue
        if names is None:
            reason = thm.applies(model)
            if reason is not None:
                out.skipped[name] = f"does not apply: {reason}"
                continue
        refusals: list[tuple[str, str]] = []
        for kind in runs.kinds():
            try:
                verdict = _check(thm, kind, runs, level)
            except ModelError as err:  # recorded with its message, never silently dropped
                refusals.append((kind, str(err)))
                continue
            out.append(verdict)
            kinds_of[name] = kind
            break
        else:
            if len(refusals) == 1:
                out.skipped[name] = f"check refused these runs: {refusals[0][1]}"
            else:
                out.skipped[name] = "check refused these runs: " + "; ".join(f"{k} run: {why}" for k, why in refusals)
    return out, kinds_of
