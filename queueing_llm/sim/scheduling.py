r"""Admission plans of the fluid-guided policies WAIT and Nested WAIT ([ALSW25]).

Unlike the FCFS rules of :mod:`.policies`, which answer "is the head of the queue admitted
now?", these rules look at the waiting room by type and at the batch by stage, choose how
many requests to admit of each type, and may **stall** stages: a stalled member does not
execute in the next iteration (it keeps its stage and its KV cache). The engines apply a
:class:`Plan` at the admission step of iteration :math:`n`; it decides what iteration
:math:`n + 1` executes.

WAIT (:class:`~queueing_llm.policies.Wait`), per type :math:`j` with threshold :math:`n_j`
and budget :math:`N_j`: let :math:`o_j` be the type-:math:`j` members of the batch,
:math:`u_j = \min(n_j, N_j - o_j)` and :math:`q_j` the type-:math:`j` requests waiting.
Type :math:`j` is *ready* if :math:`q_j \ge u_j`.

* ``trigger="all"``: the batch forms iff every type is ready; then each type admits :math:`u_j`.
* ``trigger="any"``: it forms iff some type is ready; then each type admits
  :math:`\min(q_j, u_j)` (the authors' later version).
* ``trigger="per_type"``: it forms iff some type is ready; each ready type admits :math:`u_j`,
  the others nothing.

If the batch does not form, nothing is admitted and with ``stall=True`` the next iteration
executes nothing (an idle slot; :math:`d_0` seconds in wall-clock runs); with
``stall=False`` the members execute as usual.

Nested WAIT (:class:`~queueing_llm.policies.NestedWait`), segments
:math:`[L_{s-1}, L_s)`: a member at stage :math:`L_{s-1}` (:math:`s \ge 2`) has finished
segment :math:`s - 1` and waits at the entry of segment :math:`s` keeping its KV cache. For
:math:`s = 1, \dots, S` in order, with :math:`e_s` the requests at the entry (the waiting
room for :math:`s = 1`) and :math:`o_s` the members inside segment :math:`s`:
:math:`u_s = \min(n_s, N_s - o_s)`; if :math:`e_s < u_s` the segment is not ready, and with
``stall=True`` segments :math:`s, \dots, S` do not run in the next iteration (with
``stall=False`` only the entry waits); otherwise :math:`u_s` requests enter from the entry
(FCFS) and the segment runs. New requests are admitted (segment 1) only if their prompt
plus the reserved buffer memory :math:`\sum_{s \ge 2} b_s (\bar l_0 + 1 + L_{s-1})` fits.

Every admission also passes the one-step memory check of greedy admission
(:math:`\text{memory} + l_0 + 1 \le M`) and the batch cap :math:`B`.

**One admission step for both engines.** The SimPy engine (:mod:`.events`) and the Python
fast loop (:func:`~.fast.run_scheduled`) keep their own bookkeeping but take every decision
of the step from this module, in this order: :func:`admission_plan` (the waiting room by
type and the batch by (type, stage) -> the :class:`Plan`), :func:`select_admissions` (the
requests the plan admits, in order) and :meth:`Plan.go_flags` / :meth:`Plan.uniform` (which
members execute next iteration). ``tests/test_engines_wait.py`` checks that the two
engines then give the same trajectory bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model import ContinuousBatching
from ..numbers import to_float
from ..policies import NestedWait, Wait

__all__ = ["Plan", "ScheduledRule", "WaitRule", "NestedWaitRule", "scheduled_rule", "is_scheduled",
           "admission_plan", "select_admissions", "check_open_system"]


@dataclass
class Plan:
    """What the admission step does and what the next iteration executes.

    Attributes
    ----------
    admit_by_type : list of int or None
        Requests to admit per type, from the head of that type's waiting room (WAIT).
    admit_fcfs : int
        Requests to admit from the head of the waiting room, any type (Nested WAIT).
    run_from : int
        Members at stages ``>= run_from`` are stalled (do not execute); ``inf``: all run.
    release : dict
        Nested WAIT: entry stage -> number of members waiting there that enter (oldest
        admission first); the others stay stalled at the entry.
    entry_stages : tuple of int
        Nested WAIT's entry stages :math:`L_1, \\dots, L_{S-1}` (members there run only if released).
    """

    admit_by_type: list[int] | None = None
    admit_fcfs: int = 0
    run_from: float = float("inf")
    release: dict[int, int] = field(default_factory=dict)
    entry_stages: tuple[int, ...] = ()

    def runs(self, stage: int) -> bool:
        """True if a member at ``stage`` (not an entry stage) executes next iteration."""
        return stage < self.run_from

    def uniform(self) -> bool | None:
        """True if every member executes next iteration, False if none does, None if
        :meth:`go_flags` must decide member by member."""
        if self.entry_stages:
            return None
        if self.run_from == float("inf"):
            return True
        return False if self.run_from <= 0 else None

    def go_flags(self, stages: Sequence[int]) -> list[bool]:
        """Which members execute next iteration, from their stages in admission order (oldest
        first): a member at an entry stage runs if it is among the ``release[stage]`` oldest
        there; any other member runs if its stage is below ``run_from``. Both engines call it."""
        if not self.entry_stages:
            run_from = self.run_from
            if run_from == float("inf"):
                return [True] * len(stages)
            return [j < run_from for j in stages]
        released = {j: self.release.get(j, 0) for j in self.entry_stages}
        run_from = self.run_from
        out = []
        append = out.append
        for j in stages:
            left = released.get(j)
            if left is None:  # not an entry stage
                append(j < run_from)
            elif left:
                released[j] = left - 1
                append(True)
            else:
                append(False)
        return out


class ScheduledRule:
    """Base of the rules that plan per type and may stall stages."""

    def __init__(self, M: float, B: float) -> None:
        self.M = M
        self.B = B

    def plan(self, waiting: Sequence[int], by_type: Sequence[int], by_stage: Sequence[int]) -> Plan:
        """The plan for this admission step from the waiting counts per type, the batch's
        members per type and per stage."""
        raise TypeError(f"{type(self).__name__} must define plan()")  # pragma: no cover

    def evicted(self, n: int, admission: int, prompt: int, decode: int) -> None:
        """Plans read the batch at every step: evictions need no bookkeeping."""

    def present(self, admission: int, prompt: int, decode: int) -> None:
        """Plans read the batch at every step: an initial batch needs no bookkeeping."""

    def fits(self, memory: float, size: int, prompt: int) -> bool:
        """The one-step memory check and the batch cap."""
        return size < self.B and memory + prompt + 1 + self.reserve <= self.M

    reserve: float = 0.0
    """Memory kept free for Nested WAIT's buffers (tokens)."""

    entries: tuple[int, ...] = ()
    """Entry stages of Nested WAIT's segments 2..S (empty for WAIT)."""

    reads_stages: bool = True
    """False if :meth:`plan` ignores ``by_stage`` (WAIT): :func:`admission_plan` skips building it."""


class WaitRule(ScheduledRule):
    """WAIT's plan (module docstring)."""

    def __init__(self, M: float, B: float, policy: Wait, model: ContinuousBatching) -> None:
        super().__init__(M, B)
        K = model.K
        self.n = [policy.thresholds[k] for k in range(K)]
        if policy.budgets is None:  # every stage of the longest decode length holds n_j
            self.N = [n * t.decode.support_max for n, t in zip(self.n, model.types, strict=True)]
        else:
            self.N = [policy.budgets.get(k, float("inf")) for k in range(K)]
        self.trigger = policy.trigger
        self.stall = policy.stall

    reads_stages = False  # WAIT plans on the counts per type only

    def plan(self, waiting: Sequence[int], by_type: Sequence[int], by_stage: Sequence[int]) -> Plan:
        need = [max(0, min(n, N - o)) for n, N, o in zip(self.n, self.N, by_type, strict=True)]
        ready = [q >= u for q, u in zip(waiting, need, strict=True)]
        formed = all(ready) if self.trigger == "all" else any(ready)
        if not formed:
            return Plan(admit_by_type=[0] * len(need), run_from=0 if self.stall else float("inf"))
        if self.trigger == "all":
            take = need
        elif self.trigger == "any":
            take = [min(q, u) for q, u in zip(waiting, need, strict=True)]
        else:
            take = [u if r else 0 for u, r in zip(need, ready, strict=True)]
        return Plan(admit_by_type=list(take))


class NestedWaitRule(ScheduledRule):
    """Nested WAIT's plan (module docstring)."""

    def __init__(self, M: float, B: float, policy: NestedWait, model: ContinuousBatching) -> None:
        super().__init__(M, B)
        self.policy = policy
        self.segments = policy.segments
        self.entries = tuple(low for low, _ in self.segments[1:])
        prompt = sum(to_float(p * t.l0, "mean prompt") for p, t in zip(model.proportions, model.types, strict=True))
        self.reserve = float(sum(b * (prompt + 1 + low) for b, (low, _) in zip(policy.buffer[1:], self.segments[1:],
                                                                              strict=True)))
        self.stall = policy.stall

    def plan(self, waiting: Sequence[int], by_type: Sequence[int], by_stage: Sequence[int]) -> Plan:
        p = self.policy
        S = len(by_stage)

        def count(lo: int, hi: int) -> int:
            return sum(by_stage[j] for j in range(lo, min(hi, S)))

        plan = Plan(entry_stages=self.entries)
        for s, (low, high) in enumerate(self.segments):
            entry = sum(waiting) if s == 0 else (by_stage[low] if low < S else 0)
            inside = count(low, high) if s == 0 else count(low + 1, high)
            need = max(0, min(p.thresholds[s], p.budgets[s] - inside))
            if entry < need:
                if self.stall:
                    plan.run_from = low if s > 0 else 0
                    return plan
                continue
            if s == 0:
                plan.admit_fcfs = need
            else:
                plan.release[low] = need
        return plan


def is_scheduled(model: ContinuousBatching) -> bool:
    """True if the model's policy plans per type and may stall (its rule is a :class:`ScheduledRule`)."""
    from .policies import RULES

    return RULES.get(type(model.policy)) is scheduled_rule


def scheduled_rule(model: ContinuousBatching, M: float, B: float) -> ScheduledRule:
    """A fresh rule object for a WAIT or Nested WAIT policy."""
    if isinstance(model.policy, Wait):
        return WaitRule(M, B, model.policy, model)
    if isinstance(model.policy, NestedWait):
        return NestedWaitRule(M, B, model.policy, model)
    raise TypeError(f"policy {model.policy} is not a scheduled policy")


def check_open_system(model: ContinuousBatching, saturated: bool) -> None:
    """Refuse saturated input: a plan reads the waiting room by type (both engines call it)."""
    if saturated:
        from ..errors import PolicyError

        raise PolicyError(f"policy {model.policy} plans on the waiting room by type: it needs an "
                          "open system (arrivals), not saturated=True")


def admission_plan(rule: ScheduledRule, waiting: Sequence[int], batch: Mapping[tuple[int, int], int]) -> Plan:
    """The plan of one admission step, the one entry point both engines call.

    Parameters
    ----------
    rule : ScheduledRule
        The run's rule (:func:`scheduled_rule`).
    waiting : sequence of int
        Requests waiting per type (after this iteration's arrivals and evictions).
    batch : mapping (type, stage) -> int
        Members of the batch per type and stage (stalled members at the stage they hold).
    """
    by_type = [0] * len(waiting)
    by_stage: list[int] = []
    if not rule.reads_stages:
        for (k, _), c in batch.items():
            by_type[k] += c
        return rule.plan(list(waiting), by_type, by_stage)
    stages: dict[int, int] = {}
    for (k, j), c in batch.items():
        by_type[k] += c
        stages[j] = stages.get(j, 0) + c
    by_stage = [0] * (max((max(stages, default=0), *rule.entries)) + 1)
    for j, c in stages.items():
        by_stage[j] = c
    return rule.plan(list(waiting), by_type, by_stage)


def select_admissions(rule: ScheduledRule, plan: Plan, memory: float, size: int,
                      queues: Sequence[Iterable[tuple[Any, Any, int]]]) -> list[Any]:
    """The requests the plan admits, in admission order (both engines call it).

    ``queues[k]`` lists type ``k``'s waiting requests as ``(position, item, prompt)`` in queue
    order; positions are comparable across types and give the order of the whole waiting
    room (evicted requests, at its head, have the smallest). The iterables are read lazily
    and not changed: the engine removes the returned items (a prefix of each type's queue).

    WAIT (``plan.admit_by_type``): the waiting room is scanned in order; a request of type
    :math:`k` is taken while type :math:`k` still has quota, and the first type-:math:`k`
    request that does not fit (:meth:`ScheduledRule.fits`) closes type :math:`k` (FCFS
    within the type). Nested WAIT (``plan.admit_fcfs``): the head of the whole waiting room
    is taken until the count is reached or the head does not fit.
    """
    its = [iter(q) for q in queues]
    heads = [next(it, None) for it in its]
    quota = list(plan.admit_by_type) if plan.admit_by_type is not None else None
    fcfs = plan.admit_fcfs
    active = [h is not None and (quota is None or quota[k] > 0) for k, h in enumerate(heads)]
    chosen: list[Any] = []
    while quota is not None or fcfs > 0:
        best = -1
        for k, h in enumerate(heads):
            if active[k] and (best < 0 or h[0] < heads[best][0]):
                best = k
        if best < 0:
            break
        _, item, prompt = heads[best]
        if not rule.fits(memory, size, prompt):
            if quota is None:
                break
            active[best] = False  # FCFS within the type
            continue
        chosen.append(item)
        memory += prompt + 1
        size += 1
        if quota is not None:
            quota[best] -= 1
        else:
            fcfs -= 1
        heads[best] = next(its[best], None)
        active[best] = heads[best] is not None and (quota is None or quota[best] > 0)
    return chosen
