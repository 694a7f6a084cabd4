r"""The largest arrival rate a policy keeps stable, by bisection on a test of the queue's trend.

:func:`stable_range` answers "up to which load does this policy keep up?" by simulation.
At each arrival rate :math:`\lambda` it runs :math:`R` independent replications of
:math:`N` iterations and estimates the growth rate of the number in system over the second
half of each run, in batches (:func:`growth_test`); the Student interval of the batch
growths at level :math:`c` decides:

* **grows** (unstable) if its lower end is above 0: the queue grows linearly, with
  confidence :math:`c` (one-sided :math:`(1+c)/2`);
* **does not grow** otherwise.

A rate at which the policy does not exist counts as **unstable**: a callable policy such as
:func:`queueing_llm.fluid_wait` raises :class:`~queueing_llm.errors.ParameterError` when the
model has no fluid equilibrium at that rate (:class:`~queueing_llm.scheduling.NoEquilibriumError`,
a ``ParameterError``) (:math:`\rho \ge 1`: the load exceeds what the
engine computes), and no queue can then be stable; the test records the reason
(:attr:`RateTest.note`) and no simulation runs.

Bisection between a rate that does not grow and one that grows narrows the bracket to
``tolerance`` (relative) or ``max_steps`` halvings. The answer is the bracket
:math:`[\lambda_{\text{stable}}, \lambda_{\text{grows}}]`, with every tested rate and its
interval: how sure it is. A drift :math:`d` is detected when :math:`d\,N/2` is large against
the fluctuations of :math:`Y` over half a run, so near the limit a slowly growing queue can
be classed "does not grow": longer runs (``iterations``) sharpen the answer, more
replications tighten the interval. Metastable collapse (greedy admission, [ADLS26]) is seen
only if it happens within the horizon.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ParameterError, describe
from .model import ContinuousBatching
from .numbers import check_real
from .policies import Policy
from .scheduling import NoEquilibriumError
from .stats import DEFAULT_LEVEL, Interval, replications_ci

__all__ = ["RateTest", "StableRange", "stable_range", "growth_test", "resolve_policy"]


@dataclass(frozen=True)
class RateTest:
    """The trend test at one arrival rate: the growth interval and its decision."""

    rate: float
    growth: Interval
    grows: bool
    seconds: float
    note: str = ""
    """Empty, or why no run was made (the policy has no equilibrium at this rate: unstable)."""

    def __str__(self) -> str:
        if self.note:
            return f"rate {self.rate:.6g}: unstable, {self.note}"
        g = self.growth
        return (f"rate {self.rate:.6g}: growth {g.estimate:.4g} per iteration "
                f"[{g.low:.4g}, {g.high:.4g}] at {g.level_percent}: {'grows' if self.grows else 'does not grow'}")


@dataclass(frozen=True)
class StableRange:
    r"""The answer of :func:`stable_range`.

    Attributes
    ----------
    stable_rate : float
        The largest tested rate whose queue did not grow (``nan`` if even the lowest grew).
    unstable_rate : float
        The smallest tested rate whose queue grew (``inf`` if none did).
    tests : tuple of RateTest
        Every tested rate, in the order tested.
    unit : str
        ``"requests/s"`` (wall-clock arrivals) or ``"requests/iteration"``.
    level, iterations, replications : the test's settings
    exhausted : str
        Empty, or why the search stopped early (``max_steps`` or the time budget).
    """

    stable_rate: float
    unstable_rate: float
    tests: tuple
    unit: str
    level: float
    iterations: int
    replications: int
    exhausted: str = ""
    policy: str = ""
    details: dict = field(default_factory=dict)

    @property
    def resolution(self) -> float:
        """Relative width of the final bracket, :math:`(\\lambda_u - \\lambda_s)/\\lambda_u`."""
        if not math.isfinite(self.unstable_rate) or not math.isfinite(self.stable_rate):
            return math.inf
        return (self.unstable_rate - self.stable_rate) / self.unstable_rate

    def __str__(self) -> str:
        head = (f"{self.policy or 'policy'}: stable up to {self.stable_rate:.6g} {self.unit}, grows at "
                f"{self.unstable_rate:.6g} ({len(self.tests)} rates, {self.replications} replications of "
                f"{self.iterations} iterations, level {self.level:g})")
        none = [f"{t.rate:.6g}" for t in self.tests if t.note]
        if none:
            head += f"; no policy equilibrium (counted unstable) at {', '.join(none)}"
        return head + (f"; {self.exhausted}" if self.exhausted else "")


def resolve_policy(model: ContinuousBatching, policy: Any) -> ContinuousBatching:
    """``model`` with ``policy``: None keeps the model's, a name or a value replaces it, a
    callable ``model -> policy`` (e.g. :func:`queueing_llm.fluid_wait`) is evaluated on the model."""
    if policy is None:
        return model
    if callable(policy) and not isinstance(policy, Policy):
        return model.with_policy(policy(model))
    return model.with_policy(policy)


def _unit(model: ContinuousBatching) -> str:
    return "requests/s" if model.is_wall_clock else "requests/iteration"


GROWTH_BATCHES = 10
"""Batches per run of the trend test (:func:`growth_test`)."""


def growth_test(model: ContinuousBatching, replications: int, iterations: int, level: float,
                seed: Any, engine: str = "fast") -> tuple[Interval, bool]:
    r"""Growth interval of the number in system over the second half of ``replications`` runs
    and the decision "grows" (its lower end above 0).

    The second half of each run is cut into :data:`GROWTH_BATCHES` contiguous batches; the
    growth of a batch is :math:`(Y_{\text{end}} - Y_{\text{start}})/m`; the
    :math:`R \cdot` :data:`GROWTH_BATCHES` batch growths give a Student interval (batch means
    pooled over independent runs, so that even two replications give a usable interval).
    """
    from .sim import simulate  # the search sits above sim in the one-way flow

    seeds = np.random.SeedSequence(seed).spawn(replications)
    growths: list[float] = []
    for s in seeds:
        run = simulate(model, iterations, seed=int(s.generate_state(1)[0]), engine=engine)
        y = np.asarray(run.in_system, dtype=float)[iterations // 2:]
        edges = np.linspace(0, y.size - 1, GROWTH_BATCHES + 1).astype(int)
        growths += [(y[b] - y[a]) / (b - a) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    iv = replications_ci(growths, level)
    iv = Interval(iv.estimate, iv.low, iv.high, iv.level, "batch means over replications", iv.n, iterations // 2)
    return iv, bool(iv.low > 0)


def stable_range(
    build_model: Callable[[float], ContinuousBatching],
    policy: Any = None,
    rates: Sequence[float] = (0.5, 2.0),
    replications: int = 4,
    iterations: int = 20_000,
    level: float = DEFAULT_LEVEL,
    *,
    tolerance: float = 0.01,
    max_steps: int = 12,
    seed: int = 0,
    engine: str = "fast",
    time_budget: float | None = 600.0,
    progress: Callable[[str], Any] | None = None,
) -> StableRange:
    r"""The largest arrival rate at which ``policy`` keeps the queue stable (bisection).

    Parameters
    ----------
    build_model : callable ``rate -> ContinuousBatching``
        The model at a total arrival rate (per iteration, or per second for wall-clock models).
    policy : None, str, Policy or callable ``model -> Policy``
        The policy (a callable is evaluated at each rate: fluid thresholds depend on the rate).
    rates : (low, high)
        The bracket; ``low`` should not grow and ``high`` should (otherwise the answer says so:
        ``stable_rate = nan`` or ``unstable_rate = inf``).
    replications, iterations : int
        Runs per tested rate and their length.
    level : float in (0, 1)
        Confidence level of the growth interval.
    tolerance : float
        Stop when the bracket's relative width is below it.
    max_steps : int
        At most this many bisection steps.
    seed : int
        Base seed; the runs at the ``i``-th tested rate use ``SeedSequence((seed, i))``.
    time_budget : float or None
        Seconds; the search stops (and says so in ``exhausted``) when it is spent.
    progress : callable or None
        Called with one line per tested rate.

    Returns
    -------
    StableRange
    """
    if not callable(build_model):
        raise ParameterError(f"build_model must be a callable rate -> ContinuousBatching, got {describe(build_model)}")
    if isinstance(rates, (str, bytes)) or len(rates) != 2:
        raise ParameterError(f"rates must be a bracket (low, high), got {describe(rates)}")
    lo, hi = (float(r) for r in rates)
    check_real("rates low", lo, low=0.0, low_open=True)
    check_real("rates high", hi, low=lo, low_open=True)
    check_real("replications", replications, low=2, integer=True)
    check_real("iterations", iterations, low=100, integer=True)
    check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    check_real("tolerance", tolerance, low=0.0, low_open=True)
    check_real("max_steps", max_steps, low=0, integer=True)
    if time_budget is not None:
        check_real("time_budget", time_budget, low=0.0, low_open=True)
    started = time.monotonic()
    tests: list[RateTest] = []
    policy_name = ""

    def test(rate: float) -> RateTest:
        nonlocal policy_name
        t0 = time.monotonic()
        base = build_model(rate)
        if not isinstance(base, ContinuousBatching):
            raise ParameterError(f"build_model({rate}) must return a ContinuousBatching, got {describe(base)}")
        try:
            model = resolve_policy(base, policy)
        except NoEquilibriumError as err:
            nan = math.nan
            result = RateTest(rate, Interval(nan, nan, nan, level, "no run: the policy has no equilibrium", 0),
                              True, time.monotonic() - t0, note=f"the policy has no equilibrium here ({err})")
            tests.append(result)
            if progress is not None:
                progress(str(result))
            return result
        policy_name = str(model.policy)
        iv, grows = growth_test(model, int(replications), int(iterations), level, (seed, len(tests)), engine)
        result = RateTest(rate, iv, grows, time.monotonic() - t0)
        tests.append(result)
        if progress is not None:
            progress(str(result))
        return result

    unit = _unit(build_model(lo))
    settings = {"unit": unit, "level": level, "iterations": int(iterations), "replications": int(replications)}
    low_test = test(lo)
    if low_test.grows:
        return StableRange(math.nan, lo, tuple(tests), exhausted="the lowest rate already grows",
                           policy=policy_name, **settings)
    high_test = test(hi)
    if not high_test.grows:
        return StableRange(hi, math.inf, tuple(tests), exhausted="the highest rate does not grow: raise it",
                           policy=policy_name, **settings)
    exhausted = ""
    for step in range(int(max_steps) + 1):
        if (hi - lo) / hi <= tolerance:
            break
        if step == int(max_steps):
            exhausted = f"stopped after max_steps = {max_steps} halvings"
            break
        if time_budget is not None and time.monotonic() - started > time_budget:
            exhausted = f"time budget of {time_budget:g} s exceeded"
            break
        mid = (lo + hi) / 2
        if test(mid).grows:
            hi = mid
        else:
            lo = mid
    return StableRange(lo, hi, tuple(tests), exhausted=exhausted, policy=policy_name, **settings)
