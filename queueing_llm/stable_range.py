r"""The largest arrival rate a policy keeps stable, by bisection on a test of the queue's trend.

:func:`stable_range` answers "up to which load does this policy keep up?" by simulation.
At each arrival rate :math:`\lambda` it runs :math:`R` independent replications of
:math:`N` iterations and estimates the growth rate of the number in system :math:`Y` over
the second half of each run, in batches (:func:`growth_test`); the Student interval of the
batch growths at level :math:`c` decides:

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
interval, and how sure it is in both directions:

* **"grows" is a confident statement**: the lower end of the growth interval is above 0.
* **"does not grow" is not**: it only says that the drift, if any, is below what the
  horizon can detect. :attr:`StableRange.resolution` quantifies it, and
  :attr:`StableRange.undetected_up_to` and :attr:`StableRange.limit_low` translate it into
  arrival rates (below). When the bracket is narrower than the resolution, the bisection
  resolved more than the horizon supports and :func:`stable_range` warns with
  :class:`HorizonWarning`.

**The resolution: what a horizon can detect.** *Diffusion approximation of the test.*
Near and above the stability limit the queue is rarely empty and :math:`Y` moves like a
Brownian motion with drift, :math:`Y_t \approx Y_0 + d\,t + \sigma W_t`, where :math:`d` is the drift per iteration
(arrivals minus completions) and :math:`\sigma^2` the long-run variance per iteration of
the increments :math:`A_n - C_n`. The test cuts the second half, :math:`n = N/2`
iterations, into :math:`K` (:data:`GROWTH_BATCHES`) batches of :math:`m = n/K`; a batch
growth has mean :math:`d` and variance :math:`\sigma^2/m`, the :math:`RK` batch growths are
independent, so the interval's half-width is

.. math::

    h = t_{RK-1,\,(1+c)/2}\,\frac{\sigma}{\sqrt{RKm}}
      = t_{RK-1,\,(1+c)/2}\,\sigma\,\sqrt{\frac{2}{RN}} \;\propto\; (RN)^{-1/2}.

The test flags "grows" when the estimated drift exceeds :math:`h`: a true drift
:math:`d = h` is flagged with probability about 1/2, :math:`d = 2h` with probability
about :math:`(1+c)/2`, and a queue growing slower than about :math:`h` per iteration is
classed "does not grow". :attr:`StableRange.resolution` is :math:`h` as *measured* (the
half-width of the growth interval) at the accepted stable rate: no model of
:math:`\sigma` is needed. Example (Geo/Geo/B, batch cap :math:`B`, decode lengths
Geometric(:math:`q`), Poisson arrivals): at saturation the increments are Poisson
(:math:`\lambda`) minus Binomial(:math:`B, q`), :math:`\sigma^2 = \lambda + Bq(1-q)`; for
:math:`B = 25`, :math:`q = 1/3`, :math:`\lambda \approx 8.4`, :math:`R = 3`,
:math:`N = 3000`, :math:`c = 0.95`: :math:`\sigma \approx 3.7`,
:math:`h \approx 2.045 \cdot 3.7 \cdot 0.0149 \approx 0.11` requests per iteration
(measured: 0.10), larger than the 0.07 by which the rate 8.406 exceeds the limit
:math:`Bq = 8.33`: a 3000-iteration search calls 8.406 "does not grow", and says that the
limit may lie anywhere in [8.30, 8.48] (``tests/test_stable_range.py``; at
:math:`N = 48\,000`, :math:`R = 4` the bracket [8.25, 8.41] holds the limit and no warning
is raised).

Well inside the stable region the queue is stationary, the batch growths are
differences of nearly independent values of :math:`Y` and the half-width falls as
:math:`1/N` (:math:`h \approx t\,\sigma_Y\sqrt{2K/R}/n`; the interval is then
conservative by :math:`\sqrt K`, because consecutive batch growths share an end point and
telescope). Near the limit the relaxation time :math:`\sigma^2/d^2` exceeds the horizon and
the diffusive :math:`N^{-1/2}` regime holds. So the resolution at the stable rate a
bisection accepts shrinks like :math:`N^{-1/2}`: four times longer runs (or four times
more replications) halve it.

*Fluid translation into arrival rates.* In the fluid approximation the queue at arrival
rate :math:`\lambda` drifts by :math:`(\lambda - X)\,\bar D` per iteration, where
:math:`X` is the throughput the engine sustains and :math:`\bar D` the mean iteration
length (1 iteration in slotted models; seconds in wall-clock models, whose rates are per
second). At the accepted stable rate :math:`\lambda_s` the runs measured the throughput
:math:`X_s` (:attr:`StableRange.throughput`, completions over the second halves) and
:math:`\bar D_s` (:attr:`StableRange.iteration_length`). Then

* :attr:`StableRange.resolution_rate` :math:`= h/\bar D_s`: the resolution as an
  arrival rate (requests/iteration or requests/s);
* :attr:`StableRange.undetected_up_to` :math:`= X_s + h/\bar D_s`: the largest rate whose
  fluid drift :math:`(\lambda - X_s)\bar D_s` stays below :math:`h`, i.e. the largest rate
  the test would class "does not grow" if the engine were saturated at :math:`\lambda_s`;
* :attr:`StableRange.limit_low` :math:`= \lambda_s - \max(g^+, 0)/\bar D_s`, with
  :math:`g^+` the upper end of the growth interval at :math:`\lambda_s`: if
  :math:`\lambda_s` is above the limit :math:`\lambda^*`, its drift
  :math:`(\lambda_s - \lambda^*)\bar D_s` is below :math:`g^+` (confidence
  :math:`(1+c)/2`), so :math:`\lambda^* \ge` ``limit_low``; if it is below, trivially.
  With the confident "grows" at :math:`\lambda_u`, the limit lies in
  [``limit_low``, :math:`\lambda_u`]: this, not :math:`\lambda_s`, is what the search
  supports.

*Limits of the fluid reading.* (i) :math:`h` is measured at :math:`\lambda_s`; when the
bracket is wide and :math:`\lambda_s` far below the limit, the queue there is stationary,
:math:`h` is in its :math:`1/N` regime and under-states the drift that would go unseen
near the limit (the bracket, not the resolution, is then the uncertainty). (ii) The drift
:math:`\lambda - X_s` is exact only when the engine is saturated at :math:`\lambda_s`
(the dangerous case, :math:`\lambda_s` above the limit: :math:`X_s \approx \lambda^*`);
when :math:`\lambda_s` is truly stable, :math:`X_s \approx \lambda_s` under-estimates the
capacity and ``undetected_up_to`` is a lower bound of the rates that would pass.
(iii) Policies whose throughput depends on the load in a non-fluid way (eviction storms,
metastable collapse under greedy admission, [ADLS26]) are seen only if they happen within
the horizon; a queue with a waiting-room cap rejects instead of growing. (iv) The
confidence statements are per tested rate; the bisection tests several rates and does not
correct for multiplicity.
"""

from __future__ import annotations

import math
import time
import warnings
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

__all__ = ["HorizonWarning", "RateTest", "StableRange", "stable_range", "growth_test", "resolve_policy"]


class HorizonWarning(UserWarning):
    r""":func:`stable_range` resolved more than its horizon supports: the final bracket
    :math:`\lambda_u - \lambda_s` is narrower than the resolution (the smallest drift the
    trend test detects at :math:`\lambda_s`, as a rate). The accepted stable rate may then
    be above the limit; the message gives the range the search supports
    (:attr:`StableRange.limit_low` to :attr:`StableRange.unstable_rate`) and how much
    longer runs would be needed."""


@dataclass(frozen=True)
class RateTest:
    """The trend test at one arrival rate: the growth interval, its decision, and what the
    runs measured over their second halves (pooled over replications)."""

    rate: float
    growth: Interval
    grows: bool
    seconds: float
    note: str = ""
    """Empty, or why no run was made (the policy has no equilibrium at this rate: unstable)."""
    throughput: float = math.nan
    """Completions per unit of time (requests/iteration, or requests/s in wall-clock runs)."""
    iteration_length: float = math.nan
    """Mean length of an iteration: 1 in slotted runs, seconds in wall-clock runs."""

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

    How sure the answer is (module docstring: the diffusion and fluid approximations):
    :attr:`resolution` (smallest drift the test detects at ``stable_rate``, per iteration),
    :attr:`resolution_rate`, :attr:`throughput`, :attr:`undetected_up_to`,
    :attr:`limit_low` (in ``unit``) and :attr:`horizon_limited` (the bracket is narrower than
    the resolution: :func:`stable_range` warned with :class:`HorizonWarning`).
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

    resolution_unit = "requests/iteration"
    """Unit of :attr:`resolution`: growth of the number in system per iteration."""

    @property
    def stable_test(self) -> RateTest | None:
        """The test that accepted :attr:`stable_rate` (None if no rate was accepted)."""
        for t in reversed(self.tests):
            if t.rate == self.stable_rate and not t.grows:
                return t
        return None

    @property
    def relative_width(self) -> float:
        """Relative width of the final bracket, :math:`(\\lambda_u - \\lambda_s)/\\lambda_u`."""
        if not math.isfinite(self.unstable_rate) or not math.isfinite(self.stable_rate):
            return math.inf
        return (self.unstable_rate - self.stable_rate) / self.unstable_rate

    @property
    def resolution(self) -> float:
        r"""The smallest drift the test detects at :attr:`stable_rate`, in
        :attr:`resolution_unit` (requests per iteration): the half-width :math:`h` of its growth
        interval. A queue growing slower than about :math:`h` per iteration is classed "does not
        grow" (a drift :math:`h` is flagged with probability about 1/2). Diffusion
        approximation: :math:`h \approx t\,\sigma\sqrt{2/(RN)}`. ``nan`` without a stable rate."""
        t = self.stable_test
        return math.nan if t is None else float(t.growth.half_width)

    @property
    def iteration_length(self) -> float:
        """Mean iteration length at :attr:`stable_rate` (1 in slotted runs; seconds in wall-clock runs)."""
        t = self.stable_test
        return math.nan if t is None else float(t.iteration_length)

    @property
    def throughput(self) -> float:
        """Throughput measured at :attr:`stable_rate` (second halves, pooled), in :attr:`unit`."""
        t = self.stable_test
        return math.nan if t is None else float(t.throughput)

    @property
    def resolution_rate(self) -> float:
        r""":attr:`resolution` as an arrival rate in :attr:`unit`: :math:`h/\bar D_s` (fluid:
        a rate :math:`\delta` above the sustained throughput grows by :math:`\delta \bar D_s`
        per iteration)."""
        return self.resolution / self.iteration_length

    @property
    def undetected_up_to(self) -> float:
        r"""The largest arrival rate whose fluid drift :math:`(\lambda - X_s)\bar D_s` stays below
        the resolution: :math:`X_s + h/\bar D_s`, in :attr:`unit`. Rates up to it would be
        classed "does not grow" if the engine is saturated at :attr:`stable_rate`; a lower
        bound of them otherwise (module docstring)."""
        return self.throughput + self.resolution_rate

    @property
    def limit_low(self) -> float:
        r"""Lower end of the stability limit the search supports (fluid approximation):
        :math:`\lambda_s - \max(g^+, 0)/\bar D_s` with :math:`g^+` the upper end of the growth
        interval at :attr:`stable_rate`; the limit lies in [``limit_low``, ``unstable_rate``]."""
        t = self.stable_test
        if t is None:
            return math.nan
        return self.stable_rate - max(float(t.growth.high), 0.0) / float(t.iteration_length)

    @property
    def horizon_limited(self) -> bool:
        """True if the bracket is narrower than :attr:`resolution_rate`: the bisection resolved
        more than the horizon supports (:func:`stable_range` warned with :class:`HorizonWarning`)."""
        width = self.unstable_rate - self.stable_rate
        return bool(math.isfinite(width) and math.isfinite(self.resolution_rate) and width < self.resolution_rate)

    def summary(self) -> dict[str, float]:
        """The answer as numbers; units in :meth:`summary_units`."""
        return {"stable_rate": float(self.stable_rate), "unstable_rate": float(self.unstable_rate),
                "resolution": self.resolution, "resolution_rate": self.resolution_rate,
                "throughput": self.throughput, "iteration_length": self.iteration_length,
                "undetected_up_to": self.undetected_up_to, "limit_low": self.limit_low,
                "horizon_limited": float(self.horizon_limited), "relative_width": self.relative_width,
                "level": float(self.level), "iterations": float(self.iterations),
                "replications": float(self.replications), "rates_tested": float(len(self.tests))}

    def summary_units(self) -> dict[str, str]:
        """The unit of each key of :meth:`summary`."""
        rate = self.unit
        return {"stable_rate": rate, "unstable_rate": rate, "resolution": self.resolution_unit,
                "resolution_rate": rate, "throughput": rate,
                "iteration_length": "s" if rate == "requests/s" else "iterations",
                "undetected_up_to": rate, "limit_low": rate, "horizon_limited": "bool",
                "relative_width": "1", "level": "1", "iterations": "iterations", "replications": "runs",
                "rates_tested": "rates"}

    def sureness(self) -> str:
        """One sentence on how sure the "does not grow" side is (empty without a stable rate)."""
        if self.stable_test is None:
            return ""
        rate = "" if self.unit == "requests/iteration" else f" (= {self.resolution_rate:.4g} {self.unit})"
        text = (f"resolution {self.resolution:.4g} {self.resolution_unit} of queue growth at {self.stable_rate:.6g}"
                f"{rate}: a queue growing slower would not have been flagged; fluid approximation: rates up to "
                f"{self.undetected_up_to:.6g} {self.unit} would pass as stable, the limit is at least "
                f"{self.limit_low:.6g}")
        if self.horizon_limited:
            text += (f"; the bracket is narrower than the resolution (HorizonWarning): the search supports "
                     f"a limit in [{self.limit_low:.6g}, {self.unstable_rate:.6g}], not 'stable up to "
                     f"{self.stable_rate:.6g}'")
        return text

    def __str__(self) -> str:
        head = (f"{self.policy or 'policy'}: stable up to {self.stable_rate:.6g} {self.unit}, grows at "
                f"{self.unstable_rate:.6g} ({len(self.tests)} rates, {self.replications} replications of "
                f"{self.iterations} iterations, level {self.level:g})")
        none = [f"{t.rate:.6g}" for t in self.tests if t.note]
        if none:
            head += f"; no policy equilibrium (counted unstable) at {', '.join(none)}"
        sure = self.sureness()
        if sure:
            head += f"; {sure}"
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


@dataclass(frozen=True)
class _Trend:
    growth: Interval
    grows: bool
    throughput: float
    iteration_length: float


def _trend(model: ContinuousBatching, replications: int, iterations: int, level: float,
           seed: Any, engine: str = "fast") -> _Trend:
    from .sim import simulate  # the search sits above sim in the one-way flow

    seeds = np.random.SeedSequence(seed).spawn(replications)
    growths: list[float] = []
    completed = 0.0
    elapsed = 0.0
    steps = 0
    half = iterations // 2
    for s in seeds:
        run = simulate(model, iterations, seed=int(s.generate_state(1)[0]), engine=engine)
        y = np.asarray(run.in_system, dtype=float)[half:]
        edges = np.linspace(0, y.size - 1, GROWTH_BATCHES + 1).astype(int)
        growths += [(y[b] - y[a]) / (b - a) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
        # the increments y[0] -> y[-1] are iterations half+1 .. N-1: their completions and time
        completed += float(np.asarray(run.completions)[half + 1:].sum())
        clock = np.asarray(run.time, dtype=float)
        elapsed += float(clock[-1] - clock[half])
        steps += iterations - 1 - half
    iv = replications_ci(growths, level)
    iv = Interval(iv.estimate, iv.low, iv.high, iv.level, "batch means over replications", iv.n, half)
    return _Trend(iv, bool(iv.low > 0), completed / elapsed, elapsed / steps)


def growth_test(model: ContinuousBatching, replications: int, iterations: int, level: float,
                seed: Any, engine: str = "fast") -> tuple[Interval, bool]:
    r"""Growth interval of the number in system over the second half of ``replications`` runs
    and the decision "grows" (its lower end above 0).

    The second half of each run is cut into :data:`GROWTH_BATCHES` contiguous batches; the
    growth of a batch is :math:`(Y_{\text{end}} - Y_{\text{start}})/m`; the
    :math:`R \cdot` :data:`GROWTH_BATCHES` batch growths give a Student interval (batch means
    pooled over independent runs, so that even two replications give a usable interval).
    Its half-width is the smallest drift the test detects (module docstring: about
    :math:`t\,\sigma\sqrt{2/(RN)}` near the stability limit).
    """
    trend = _trend(model, replications, iterations, level, seed, engine)
    return trend.growth, trend.grows


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
        The bracket, every test, and how sure the "does not grow" side is:
        :attr:`StableRange.resolution` (smallest detectable drift at the stable rate),
        :attr:`StableRange.undetected_up_to`, :attr:`StableRange.limit_low`.

    Warns
    -----
    HorizonWarning
        The final bracket is narrower than the resolution (as a rate): the bisection resolved
        more than ``iterations`` and ``replications`` support; the limit may be below
        ``stable_rate`` (down to :attr:`StableRange.limit_low`).
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

    def built(rate: float) -> ContinuousBatching:
        base = build_model(rate)
        if not isinstance(base, ContinuousBatching):
            raise ParameterError(f"build_model({rate}) must return a ContinuousBatching, got {describe(base)}")
        return base

    def test(rate: float) -> RateTest:
        nonlocal policy_name
        t0 = time.monotonic()
        base = built(rate)
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
        trend = _trend(model, int(replications), int(iterations), level, (seed, len(tests)), engine)
        result = RateTest(rate, trend.growth, trend.grows, time.monotonic() - t0,
                          throughput=trend.throughput, iteration_length=trend.iteration_length)
        tests.append(result)
        if progress is not None:
            progress(str(result))
        return result

    unit = _unit(built(lo))
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
    answer = StableRange(lo, hi, tuple(tests), exhausted=exhausted, policy=policy_name, **settings)
    if answer.horizon_limited:
        width = answer.unstable_rate - answer.stable_rate
        warnings.warn(
            f"stable_range: the bracket [{answer.stable_rate:.6g}, {answer.unstable_rate:.6g}] {answer.unit} "
            f"(width {width:.4g}) is narrower than the resolution {answer.resolution_rate:.4g} {answer.unit} "
            f"of {replications} replications of {iterations} iterations (a queue growing slower than "
            f"{answer.resolution:.4g} requests per iteration is not detected): the search supports a limit in "
            f"[{answer.limit_low:.6g}, {answer.unstable_rate:.6g}], not 'stable up to {answer.stable_rate:.6g}'; "
            f"about {(answer.resolution_rate / width) ** 2:.3g} times more iterations x replications would "
            f"resolve this bracket (resolution ~ (R N)^(-1/2))",
            HorizonWarning, stacklevel=2)
    return answer
