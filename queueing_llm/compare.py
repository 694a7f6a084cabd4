r"""Admission policies side by side over a grid of arrival rates ([ALSW25]'s comparison).

:func:`compare_policies` runs one model under several policies (greedy vLLM-like admission,
a batch cap, rate limiting at :math:`x^*`, reservation, WAIT and Nested WAIT with their fluid
thresholds) at several total arrival rates (the types keep the model's proportions), and
reports per policy and rate what a serving engineer reads: throughput, mean and p99 latency,
TTFT, restarts per request, peak memory, evictions, and whether the queue grew (the trend
test of :func:`queueing_llm.stable_range`), plus each policy's stable limit on the grid
(:class:`StableLimit`: the largest rate below the lowest rate whose queue grew, a lower
bound when no rate grew), ratios of limits that say when a side is censored
(:class:`LimitRatio`) and the papers' claims with what was measured and a verdict
(:meth:`PolicyComparison.claims`). :meth:`PolicyComparison.write` puts booktabs LaTeX,
Markdown and CSV tables (headers with units), the claims as JSON, figures (latency and TTFT
against load; memory over time near the stable limit) and a provenance file (versions, git
commit, the policy parameters at every rate) into a folder, atomically.

Sources: [ALSW25] sections 4-6 (WAIT, Nested WAIT, their comparison with vLLM-like
scheduling); [ADLS26] sections 4-5 (greedy eviction, rate limiting).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NoEquilibriumError, ParameterError, describe
from .model import ContinuousBatching, PoissonProcess
from .numbers import check_real, to_float
from .policies import Policy, rate_limited
from .stable_range import resolve_policy

__all__ = ["PolicyComparison", "compare_policies", "default_policies", "scale_arrivals", "wait_batch_memory",
           "COLUMNS", "WORKLOADS", "alsw25_example3", "azure_conversation", "known_lengths", "StableLimit",
           "LimitRatio", "CLAIMS", "select_policies", "policy_key", "stable_limit_of", "limit_ratio",
           "policy_parameters", "environment_of", "default_rates", "fluid_limit_rate"]

COLUMNS = ("policy", "rate", "throughput", "mean_latency", "latency_p99", "ttft_p50", "ttft_p99",
           "restarts_per_request", "peak_memory", "evictions", "evictions_per_iteration", "growth", "grows",
           "wait_memory")
"""Columns of a comparison row (per policy and arrival rate)."""

HEADERS = {"policy": "policy", "rate": "arrival rate", "throughput": "throughput", "mean_latency": "mean latency",
           "latency_p99": "p99 latency", "ttft_p50": "TTFT p50", "ttft_p99": "TTFT p99",
           "restarts_per_request": "restarts/request", "peak_memory": "peak memory",
           "evictions": "evictions", "evictions_per_iteration": "evictions/iteration", "growth": "queue growth",
           "grows": "grows",
           "wait_memory": "WAIT batch memory"}


def wait_batch_memory(model: ContinuousBatching) -> float:
    r"""The batch memory :math:`\sum_k n_k E[C_k]` of a WAIT policy's integer thresholds (``nan`` for
    other policies): WAIT never evicts when it fits in :math:`M` (deterministic lengths)."""
    from .policies import Wait

    if not isinstance(model.policy, Wait):
        return math.nan
    return float(sum(n * to_float(model.types[k].lifetime_memory, "lifetime memory")
                     for k, n in model.policy.thresholds.items()))


def scale_arrivals(model: ContinuousBatching, total_rate: float) -> ContinuousBatching:
    r"""The model with every type's arrival rate scaled by one factor so that they sum to
    ``total_rate`` (per iteration, or per second for :class:`~queueing_llm.model.PoissonProcess`
    arrivals). Poisson arrivals only (numbers, ``Poisson`` laws or ``PoissonProcess``)."""
    from .laws import Poisson

    rates = [t.arrival_rate for t in model.types]
    if any(r is None for r in rates):
        raise ParameterError("scale_arrivals needs arrival rates: a type has arrivals=None")
    base = sum(to_float(r, "arrival rate") for r in rates)
    check_real("total_rate", total_rate, low=0.0, low_open=True)
    factor = float(total_rate) / base
    types = []
    for k, t in enumerate(model.types):
        if isinstance(t.arrivals, PoissonProcess):
            arrivals: Any = PoissonProcess(to_float(t.arrivals.rate, "rate") * factor)
        elif isinstance(t.arrivals, Poisson):
            arrivals = Poisson(to_float(t.arrivals.mean, "mean") * factor)
        else:
            raise ParameterError(f"scale_arrivals scales Poisson arrivals; types[{k}] has {t.arrivals!r}")
        types.append(dataclasses.replace(t, arrivals=arrivals))
    return dataclasses.replace(model, types=types)


FLUID_GRID = (0.5, 0.75, 0.9, 1.0, 1.1, 1.25)
"""Default rates of a comparison, as multiples of the model's fluid limit (:func:`fluid_limit_rate`)."""

BASE_GRID = (0.5, 0.75, 1.0, 1.25, 1.5)
"""Default rates as multiples of the model's own rate, where the fluid limit is infinite."""


def fluid_limit_rate(model: ContinuousBatching, rel_tol: float = 1e-4) -> float:
    r"""The largest total arrival rate (same type proportions) at which the fluid benchmark is
    feasible: the registry's ``fluid-benchmark`` evaluated on :func:`scale_arrivals` copies,
    bisected on its ``feasible`` flag (its equilibrium memory :math:`M^* \le M` and
    :math:`\rho < 1`; a slotted model is read as iterations of one time unit). ``inf`` if no
    rate is infeasible (no memory limit and no iteration time that grows with the batch) or
    if the fluid benchmark does not apply to the model. Per iteration, or per second for
    :class:`~queueing_llm.model.PoissonProcess` arrivals."""
    from .errors import ModelError
    from .model import LinearIterationTime
    from .theorems import theorems

    base = _check_model(model)
    # a slotted model is the wall-clock model whose iterations last one unit (d0 = 1, d1 = 0),
    # its Poisson arrivals per iteration a Poisson process per unit
    timed_model = model if model.is_wall_clock else dataclasses.replace(
        model, iteration_time=LinearIterationTime(1, 0),
        types=[dataclasses.replace(t, arrivals=PoissonProcess(to_float(t.arrival_rate, "arrival rate")))
               for t in model.types])

    def feasible(rate: float) -> bool:
        try:
            return bool(theorems["fluid-benchmark"].evaluate(scale_arrivals(timed_model, rate))["feasible"])
        except NoEquilibriumError:  # no equilibrium at this rate (rho >= 1)
            return False

    try:
        feasible(base)
    except ModelError:  # the fluid benchmark does not apply to this model: no finite limit known
        return math.inf

    from .numbers import MAX_RATE

    lo, hi = 0.0, base
    while feasible(hi):
        lo, hi = hi, 2 * hi
        if hi > MAX_RATE:  # feasible up to the largest rate a model accepts: no finite limit
            return math.inf
    while hi - lo > rel_tol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if feasible(mid) else (lo, mid)
    return lo


def default_rates(model: ContinuousBatching) -> list[float]:
    r"""The default grid of :func:`compare_policies`: the fluid limit (:func:`fluid_limit_rate`)
    times :data:`FLUID_GRID` (0.5 to 1.25, so the grid brackets the limit every policy is
    measured against), or the model's own rate times :data:`BASE_GRID` if the limit is infinite."""
    limit = fluid_limit_rate(model)
    if math.isfinite(limit):
        return [limit * f for f in FLUID_GRID]
    return [_check_model(model) * f for f in BASE_GRID]


def alsw25_example3() -> ContinuousBatching:
    r"""[ALSW25]'s Example 3 with two types: :math:`(l_0, l_1, \lambda) = (100, 100, 30/\mathrm{s})` and
    :math:`(200, 400, 5/\mathrm{s})`, :math:`d_0 = 0.015` s, :math:`d_1 = 3 \cdot 10^{-7}` s/token,
    :math:`M = 10^5` tokens."""
    from .model import LinearIterationTime, RequestType

    return ContinuousBatching([RequestType(100, 100, PoissonProcess(30)), RequestType(200, 400, PoissonProcess(5))],
                              kv_capacity=100_000, iteration_time=LinearIterationTime(0.015, 3e-7))


def azure_conversation(scale: int = 16, kv_tokens: int = 100_000) -> ContinuousBatching:
    r"""The shipped Azure 2023 conversation trace as one request type with Poisson arrivals in
    seconds, lengths in blocks of ``scale`` tokens (prompts clipped at 4096 tokens, outputs at
    512), a KV budget of ``kv_tokens`` tokens and [ALSW25]'s iteration time per decode step
    :math:`0.015 + 3 \cdot 10^{-7} Z` s, so one model iteration (``scale`` steps) lasts
    :math:`s (0.015 + 3 \cdot 10^{-7} s Z_{\text{blocks}})` seconds."""
    from .model import LinearIterationTime
    from .traces import load_trace

    rt = load_trace("azure-conv").request_type(iteration_seconds=None, max_prompt=4096, max_decode=512, scale=scale)
    return ContinuousBatching([rt], kv_capacity=kv_tokens // scale,
                              iteration_time=LinearIterationTime(scale * 0.015, scale * scale * 3e-7))


def known_lengths() -> ContinuousBatching:
    """A small known-length workload where memory binds: :math:`l_0 = 2`, :math:`l_1 = 4`,
    :math:`M = 200` tokens, 8 requests per iteration (:math:`x^* = 100/9`, greedy's worst cycle 8.33)."""
    from .model import RequestType

    return ContinuousBatching([RequestType(2, 4, 8.0)], kv_capacity=200)


WORKLOADS: dict[str, Callable[[], ContinuousBatching]] = {
    "example3": alsw25_example3, "azure-conv": azure_conversation, "known": known_lengths,
}
"""The comparison's workloads by name (``queueing-llm compare --workload NAME``)."""


def _batch_cap(model: ContinuousBatching) -> ContinuousBatching:
    """Greedy admission with a batch cap :math:`B = \\lfloor M / \\max_k (l_0 + l_1) \\rfloor`:
    a full batch of the largest requests fits, so it never evicts (Sarathi's batch_size_cap)."""
    largest = max(t.max_tokens for t in model.types)
    cap = max(1, int(to_float(model.M, "M") // largest))
    return dataclasses.replace(model, batch_cap=cap, policy="greedy")


def _fluid_wait(model: ContinuousBatching) -> Policy:
    from .scheduling import fluid_wait

    return fluid_wait(model)


def _fluid_nested_wait(model: ContinuousBatching) -> Policy:
    from .scheduling import fluid_nested_wait

    return fluid_nested_wait(model)


def default_policies() -> dict[str, Any]:
    """The policies of the comparison: label -> policy, or callable ``model -> policy`` (or
    ``model -> model`` for a change of the engine, e.g. a batch cap)."""
    return {
        "greedy": "greedy",
        "batch cap": _batch_cap,
        "rate_limited(x*)": rate_limited(),
        "reserve": "reserve",
        "WAIT": _fluid_wait,
        "Nested WAIT": _fluid_nested_wait,
    }


def policy_key(label: str) -> str:
    """A policy label in a canonical form: lower case, runs of spaces, ``_`` and ``-`` as one
    ``_`` (``"Nested WAIT"``, ``"nested_wait"`` and ``"nested-wait"`` are one key)."""
    return re.sub(r"[\s_\-]+", "_", str(label).strip().lower())


_ALIASES = {"rate_limited": "rate_limited(x*)"}
"""Further keys accepted by :func:`select_policies` (canonical key -> label)."""


def select_policies(names: Sequence[str], parameter: str = "policies") -> dict[str, Any]:
    """The entries of :func:`default_policies` named by ``names`` (labels matched case- and
    space-insensitively: ``WAIT``, ``wait``, ``Nested WAIT``, ``nested_wait``, ``batch_cap``,
    ``rate_limited``), in the order given.

    Raises
    ------
    ParameterError
        A name that is not a default policy, naming ``parameter`` and the allowed names.
    """
    known = default_policies()
    keys = {policy_key(label): label for label in known}
    keys.update({k: v for k, v in _ALIASES.items()})
    allowed = ", ".join(known)
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise ParameterError(f"{parameter} must be a list of policy names ({allowed}), got {describe(names)}")
    chosen: dict[str, Any] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise ParameterError(f"{parameter}[{i}] must be a policy name ({allowed}), got {describe(name)}")
        label = keys.get(policy_key(name))
        if label is None:
            raise ParameterError(f"{parameter}: unknown policy {name!r}; allowed (case and spaces ignored): "
                                 f"{allowed}")
        chosen[label] = known[label]
    if not chosen:
        raise ParameterError(f"{parameter} must name at least one policy ({allowed})")
    return chosen


def _model_for(model: ContinuousBatching, spec: Any) -> ContinuousBatching:
    if callable(spec) and not isinstance(spec, Policy):
        out = spec(model)
        return out if isinstance(out, ContinuousBatching) else model.with_policy(out)
    return resolve_policy(model, spec)


def policy_parameters(model: ContinuousBatching) -> dict[str, Any]:
    """The numbers a run's admission used: the policy (its text and fields: WAIT's thresholds,
    Nested WAIT's boundaries, thresholds, budgets and buffers, the rate cap) and the batch cap
    :math:`B` when finite (JSON-ready)."""
    policy = model.policy
    out: dict[str, Any] = {"policy": str(policy)}
    if dataclasses.is_dataclass(policy):
        for f in dataclasses.fields(policy):
            value = getattr(policy, f.name)
            out[f.name] = ({str(k): v for k, v in value.items()} if isinstance(value, Mapping)
                           else list(value) if isinstance(value, (tuple, list)) else value)
    cap = to_float(model.batch_cap, "batch_cap")
    if math.isfinite(cap):
        out["batch_cap"] = int(cap)
    return out


# -- the stable limit on a grid and what a ratio of limits can say -------------------------


@dataclass(frozen=True)
class StableLimit:
    r"""A policy's stable limit as far as a grid of rates tells it.

    The grid's rates are read in increasing order; the *first growth* is the lowest rate whose
    queue grew (the trend test). The limit :math:`\lambda^\dagger` is taken to lie in
    ``[value, upper)``: ``value`` is the largest grid rate below the first growth whose queue did
    not grow, ``upper`` the first growth. Rates above the first growth whose queue did not grow
    (a non-monotone trend, usually noise near the limit) are listed in ``nonmonotone`` and do
    not raise the limit.

    Attributes
    ----------
    value : float
        The largest stable grid rate below the first growth (``nan``: the queue grew at the
        lowest rate, or no run).
    upper : float
        The first rate whose queue grew (``inf``: none on the grid, so ``value`` is a lower bound).
    kind : {"bracketed", "lower bound", "upper bound", "not determined"}
        ``bracketed``: stable at ``value``, grows at ``upper``; ``lower bound``: stable at the
        top of the grid (or at the last rate that could be run), the limit is at least
        ``value``; ``upper bound``: the queue grew at the lowest rate, the limit is below it;
        ``not determined``: no rate could be run.
    nonmonotone : tuple of float
        Rates above ``upper`` whose queue did not grow.
    failed : tuple of float
        Rates whose run could not be made (an ``error`` row, e.g. no WAIT equilibrium).
    unstable_everywhere : bool
        The queue grew at every rate run.
    """

    value: float
    upper: float
    kind: str
    nonmonotone: tuple[float, ...] = ()
    failed: tuple[float, ...] = ()
    unstable_everywhere: bool = False

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)``: the grid says the limit lies in ``[low, high)`` (0 and ``inf`` when open)."""
        low = self.value if math.isfinite(self.value) else 0.0
        return low, self.upper

    def text(self, latex: bool = False) -> str:
        """The limit as a reader should take it: ``"≥ 52.5"`` (``"at least 52.5"`` for LaTeX),
        ``"43.75 (grows at 52.5)"``, ``"unstable at every rate (lowest 26.25)"``, ..."""
        ge, lt = ("at least ", "below ") if latex else ("≥ ", "< ")
        if self.kind == "bracketed":
            out = f"{self.value:.4g} (grows at {self.upper:.4g})"
        elif self.kind == "lower bound":
            out = ge + f"{self.value:.4g}" + (" (stable at the top of the grid)" if not self.failed else
                                               f" (not run at {', '.join(f'{r:.4g}' for r in self.failed)})")
        elif self.kind == "upper bound":
            out = (f"unstable at every rate ({lt}{self.upper:.4g})" if self.unstable_everywhere
                   else f"{lt}{self.upper:.4g} (grows at the lowest rate)")
        else:
            out = ("not determined (not run at " + ", ".join(f"{r:.4g}" for r in self.failed) + ")"
                   if self.failed else "not determined (no run)")
        if self.nonmonotone:
            out += f"; non-monotone: no growth at {', '.join(f'{r:.4g}' for r in self.nonmonotone)}"
        return out

    def __str__(self) -> str:
        return self.text()


def stable_limit_of(rows: Sequence[Mapping[str, Any]]) -> StableLimit:
    """The :class:`StableLimit` of one policy's rows (``rate``, ``grows``, or ``error``)."""
    ordered = sorted(rows, key=lambda r: r["rate"])
    value, upper, failed, nonmonotone = math.nan, math.inf, [], []
    ran = [r for r in ordered if "error" not in r]
    for r in ordered:
        if "error" in r:
            failed.append(float(r["rate"]))
            if math.isinf(upper):
                break  # not run: nothing is known above
            continue
        if math.isinf(upper):
            if r["grows"]:
                upper = float(r["rate"])
            else:
                value = float(r["rate"])
        elif not r["grows"]:
            nonmonotone.append(float(r["rate"]))
    failed = [float(r["rate"]) for r in ordered if "error" in r]
    if not ran:
        kind = "not determined"
    elif math.isinf(upper):
        kind = "lower bound" if math.isfinite(value) else "not determined"
    elif math.isfinite(value):
        kind = "bracketed"
    else:
        kind = "upper bound"
    return StableLimit(value, upper, kind, tuple(nonmonotone), tuple(failed),
                       unstable_everywhere=bool(ran) and all(r["grows"] for r in ran))


@dataclass(frozen=True)
class LimitRatio:
    r"""The ratio of two policies' stable limits as far as the grid tells it.

    With the limits in :math:`[a, a')` and :math:`[b, b')` (:class:`StableLimit`), the ratio of
    the true limits lies in :math:`[a/b', a'/b]` (``low``, ``high``). ``relation``: ``"="``
    when both limits are bracketed (``estimate`` :math:`= a/b`, known to the grid's spacing),
    ``"≥"`` when only the upper end is open (``low`` is the bound), ``"≤"`` when only the lower
    end is (``high`` is), ``"not determined"`` when neither end is bounded on this grid or when a
    limit's trend is non-monotone (a rate above its first growth did not grow: the verdicts
    near the limit are noise; longer runs decide)."""

    policy: str
    baseline: str
    estimate: float
    low: float
    high: float
    relation: str
    note: str = ""

    def __float__(self) -> float:
        return self.estimate if self.relation == "=" else math.nan

    def __str__(self) -> str:
        if self.relation == "=":
            return f"{self.estimate:.3g} (grid bounds {self.low:.3g} to {self.high:.3g})"
        if self.relation == "≥":
            return f"≥ {self.low:.3g}"
        if self.relation == "≤":
            return f"≤ {self.high:.3g}"
        return "not determined on this grid" + (f" ({self.note})" if self.note else "")


def _divide(a: float, b: float) -> float:
    if b == 0:
        return math.inf if a > 0 else math.nan
    return a / b


def limit_ratio(a: StableLimit, b: StableLimit, policy: str = "", baseline: str = "") -> LimitRatio:
    """The :class:`LimitRatio` of limit ``a`` to limit ``b``."""
    (a_low, a_high), (b_low, b_high) = a.bounds, b.bounds
    low = 0.0 if math.isinf(b_high) else _divide(a_low, b_high)
    high = _divide(a_high, b_low) if math.isfinite(a_high) else math.inf
    if a.kind == "bracketed" and b.kind == "bracketed":
        relation, estimate = "=", a.value / b.value
    elif low > 0 and math.isinf(high):
        relation, estimate = "≥", low
    elif (low == 0 or math.isnan(low)) and math.isfinite(high):
        relation, estimate = "≤", high
    else:
        relation, estimate = "not determined", math.nan
    wobbly = [name or "a limit" for name, lim in ((policy, a), (baseline, b)) if lim.nonmonotone]
    if wobbly:
        return LimitRatio(policy, baseline, math.nan, low, high, "not determined",
                          f"non-monotone trend of {' and '.join(wobbly)}")
    return LimitRatio(policy, baseline, estimate, low, high, relation)


# -- the papers' claims --------------------------------------------------------------------

CLAIMS = {
    "wait_no_evictions": ("WAIT with fluid thresholds never evicts on a known-length workload below its stable "
                          "limit", "[ALSW25] section 4"),
    "wait_range": ("WAIT's stable range is at least greedy's", "[ALSW25] sections 4-6"),
    "greedy_restarts": ("greedy's restarts grow near overload", "[ADLS26] section 4; [ALSW25] section 6"),
    "alsw25_gain": ("WAIT gains 20-30% throughput over vLLM-like (greedy) scheduling", "[ALSW25] section 6"),
}
"""The claims the comparison tests: key -> (claim, source)."""

HOLDS, FAILS, UNDETERMINED = "holds", "does not hold", "not determined"
"""The verdicts of a claim."""

GAIN = (1.2, 1.3)
"""[ALSW25]'s reported throughput ratio of WAIT to vLLM-like scheduling."""


def json_ready(value: Any) -> Any:
    """``value`` for strict JSON: non-finite floats as ``"inf"``, ``"-inf"``, ``"nan"``; numbers
    of NumPy or SymPy as Python numbers or text; tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    try:
        return json_ready(float(value))
    except (TypeError, ValueError):
        return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(json_ready(value), indent=2, allow_nan=False) + "\n"


def _blank(value: Any) -> Any:
    """NaN as an empty cell (no value: e.g. the metrics of a policy stable at no rate)."""
    return "" if isinstance(value, float) and math.isnan(value) else value


def _words(text: str) -> str:
    """``text`` with the relation signs as words (for pdflatex without Unicode input)."""
    return text.replace("≥ ", "at least ").replace("≤ ", "at most ").replace("< ", "below ")


def _rate_list(rates: Sequence[float]) -> str:
    return ", ".join(f"{r:.4g}" for r in rates)


def _gain_verdict(relation: str, low: float, high: float) -> str:
    """The verdict of "the ratio is in [1.2, 1.3]" given that it lies in [low, high]."""
    lo, hi = GAIN
    if relation == "not determined" or math.isnan(low) or math.isnan(high):
        return UNDETERMINED
    if lo <= low and high <= hi:
        return HOLDS
    if high < lo or low > hi:
        return FAILS
    return UNDETERMINED


@dataclass
class PolicyComparison:
    r"""The result of :func:`compare_policies`.

    Attributes
    ----------
    rows : list of dict
        One row per policy and arrival rate (:data:`COLUMNS`); failures are rows with
        ``error`` set (e.g. WAIT without an equilibrium at that rate).
    stable_limit : dict
        Policy -> the largest grid rate below the lowest rate whose queue grew (``nan`` if the
        queue grew at the lowest rate). A policy stable at the top of the grid has a limit of
        *at least* this: :attr:`limits` says which (:class:`StableLimit`).
    units : dict
        Column -> unit.
    settings : dict
        Iterations, replications, seed, level, the model, the policy parameters at every rate
        and the versions (provenance).
    """

    rows: list[dict[str, Any]]
    stable_limit: dict[str, float]
    units: dict[str, str]
    settings: dict[str, Any]
    runs_near_limit: dict[str, Any] = field(default_factory=dict, repr=False)
    model: ContinuousBatching | None = field(default=None, repr=False)

    @property
    def limits(self) -> dict[str, StableLimit]:
        """Policy -> its :class:`StableLimit` (bracketed, a lower bound, an upper bound)."""
        return {p: stable_limit_of([r for r in self.rows if r["policy"] == p]) for p in self.stable_limit}

    SUMMARY = ("policy", "stable_limit_text", "throughput", "mean_latency", "latency_p99", "ttft_p50",
               "restarts_per_request", "peak_memory")
    """Columns of the per-policy summary (:meth:`table`)."""

    def table(self) -> list[dict[str, Any]]:
        """Per policy: its stable limit (``stable_limit`` a number, ``stable_limit_text`` what it
        means) and the metrics at that rate (``at_rate``). A policy whose queue grew at the
        lowest rate has no metrics: its row says so instead of showing an unstable run."""
        out = []
        limits = self.limits
        for policy, limit in limits.items():
            row: dict[str, Any] = {"policy": policy, "stable_limit": limit.value, "stable_limit_text": limit.text(),
                                   "limit_kind": limit.kind}
            at = [r for r in self.rows if r["policy"] == policy and "error" not in r and r["rate"] == limit.value]
            if at:
                row["at_rate"] = at[0]["rate"]
                row.update({k: at[0][k] for k in COLUMNS if k not in ("policy", "rate", "grows", "growth")})
            else:
                row["at_rate"] = math.nan
                row.update({k: math.nan for k in COLUMNS if k not in ("policy", "rate", "grows", "growth")})
            out.append(row)
        return out

    def ratio(self, policy: str, baseline: str = "greedy") -> LimitRatio:
        """Stable-limit ratio of ``policy`` to ``baseline`` as far as the grid tells it
        (:class:`LimitRatio`: ``"="``, ``"≥"``, ``"≤"`` or not determined; ``float()`` of it is
        ``nan`` unless both limits are bracketed). [ALSW25] reports 1.2-1.3 for WAIT over vLLM."""
        limits = self.limits
        for name in (policy, baseline):
            if name not in limits:
                raise ParameterError(f"ratio: {name!r} is not a compared policy; compared: {', '.join(limits)}")
        return limit_ratio(limits[policy], limits[baseline], policy, baseline)

    def _label(self, key: str) -> str | None:
        return next((p for p in self.stable_limit if policy_key(p) == key), None)

    def _ran(self, policy: str) -> list[dict[str, Any]]:
        return sorted((r for r in self.rows if r["policy"] == policy and "error" not in r), key=lambda r: r["rate"])

    def claims(self) -> list[dict[str, str]]:
        """The papers' claims (:data:`CLAIMS`), what this comparison measured and the verdict
        (``holds``, ``does not hold``, ``not determined``).

        * WAIT never evicts below its limit: evictions of the WAIT runs (label ``WAIT``) at the
          rates up to its stable limit; not determined when the lengths are random, WAIT was not
          compared or is stable at no rate.
        * WAIT's stable range is at least greedy's: rate by rate; holds when WAIT did not grow at
          every rate where greedy did not, and at a rate where greedy grew; does not hold when
          greedy is stable at a rate where WAIT grows; otherwise not determined on this grid.
        * greedy's restarts grow near overload: restarts per request at greedy's first growing
          rate against the lowest rate (holds when they rise, does not hold otherwise); not
          determined when greedy grows at no rate of the grid (overload not reached).
        * [ALSW25]'s 20-30% gain: the ratio of the throughputs at the highest rate (both
          saturated: the capacity ratio; only greedy saturated: a lower bound) and the ratio of
          stable limits (:meth:`ratio`); holds when a measured ratio is within 1.2-1.3 and none
          contradicts it, does not hold when one excludes 1.2-1.3.
        """
        out = []
        wait, greedy = self._label("wait"), self._label("greedy")
        limits = self.limits
        model = self.model

        def add(key: str, measured: str, verdict: str) -> None:
            claim, source = CLAIMS[key]
            out.append({"claim": claim, "source": source, "measured": measured, "verdict": verdict})

        # 1. WAIT never evicts below its stable limit (known lengths)
        if wait is None:
            add("wait_no_evictions", "WAIT was not compared", UNDETERMINED)
        elif model is not None and not all(t.is_deterministic for t in model.types):
            add("wait_no_evictions", "does not apply: the workload's lengths are random (the claim is about known "
                                     "lengths)", UNDETERMINED)
        else:
            below = [r for r in self._ran(wait) if r["rate"] <= limits[wait].value]
            if not below:
                add("wait_no_evictions", f"WAIT is stable at no rate below its first growth: {limits[wait]}",
                    UNDETERMINED)
            else:
                evicting = [r for r in below if r["evictions"] > 0]
                if evicting:
                    add("wait_no_evictions", "evictions at rate(s) " + ", ".join(
                        f"{r['rate']:.4g} ({r['evictions']} evictions, batch memory {r['wait_memory']:.6g} tokens)"
                        for r in evicting), FAILS)
                else:
                    memory = max(r["wait_memory"] for r in below)
                    fits = "" if math.isnan(memory) else (
                        f"; rounded batch memory up to {memory:.6g} tokens, M = {to_float(model.M, 'M'):.6g}"
                        if model is not None else f"; rounded batch memory up to {memory:.6g} tokens")
                    add("wait_no_evictions", f"0 evictions in the runs at {_rate_list([r['rate'] for r in below])} "
                                             f"(up to its stable limit {limits[wait]}){fits}", HOLDS)
        # 2. WAIT's stable range is at least greedy's (rate by rate)
        if wait is None or greedy is None:
            add("wait_range", "WAIT and greedy were not both compared", UNDETERMINED)
        else:
            w = {r["rate"]: r["grows"] for r in self._ran(wait)}
            g = {r["rate"]: r["grows"] for r in self._ran(greedy)}
            both = sorted(set(w) & set(g))
            against = [r for r in both if w[r] and not g[r]]
            beyond = [r for r in both if g[r] and not w[r]]
            text = f"WAIT limit {limits[wait]}; greedy limit {limits[greedy]}"
            wobbly = [p for p in (wait, greedy) if limits[p].nonmonotone]
            if wobbly:
                add("wait_range", f"{text}; the trend of {' and '.join(wobbly)} is non-monotone on this grid "
                                  "(longer runs decide)", UNDETERMINED)
            elif against:
                add("wait_range", f"{text}; WAIT grows where greedy does not: {_rate_list(against)}", FAILS)
            elif beyond:
                add("wait_range", f"{text}; WAIT stable where greedy grows: {_rate_list(beyond)}", HOLDS)
            else:
                add("wait_range", f"{text}; no rate on this grid separates them (extend the grid)", UNDETERMINED)
        # 3. greedy's restarts grow near overload
        if greedy is None:
            add("greedy_restarts", "greedy was not compared", UNDETERMINED)
        else:
            ran = self._ran(greedy)
            growing = [r for r in ran if r["grows"]]
            near = growing[0] if growing else (ran[-1] if ran else None)
            if near is None or len(ran) < 2:
                add("greedy_restarts", "fewer than two greedy runs", UNDETERMINED)
            else:
                low = ran[0]
                text = (f"restarts/request {low['restarts_per_request']:.3g} at {low['rate']:.4g}, "
                        f"{near['restarts_per_request']:.3g} at {near['rate']:.4g} "
                        + ("(its first growing rate)" if growing else "(the top rate; greedy did not grow on this "
                                                                      "grid)"))
                if not growing:
                    add("greedy_restarts", text + ": overload not reached (extend the grid)", UNDETERMINED)
                elif near["restarts_per_request"] > max(low["restarts_per_request"], 0.0):
                    add("greedy_restarts", text, HOLDS)
                else:
                    add("greedy_restarts", text, FAILS)
        # 4. [ALSW25]'s 20-30% throughput gain
        if wait is None or greedy is None:
            add("alsw25_gain", "WAIT and greedy were not both compared", UNDETERMINED)
        else:
            verdicts, parts = [], []
            w = {r["rate"]: r for r in self._ran(wait)}
            g = {r["rate"]: r for r in self._ran(greedy)}
            both = sorted(set(w) & set(g))
            if both:
                top = both[-1]
                t = w[top]["throughput"] / g[top]["throughput"] if g[top]["throughput"] > 0 else math.nan
                if w[top]["grows"] and g[top]["grows"]:
                    parts.append(f"throughput ratio at {top:.4g} (both saturated): {t:.3g}")
                    verdicts.append(_gain_verdict("=", t, t))
                elif g[top]["grows"]:
                    parts.append(f"throughput ratio at {top:.4g} (only greedy saturated): ≥ {t:.3g}")
                    verdicts.append(_gain_verdict("≥", t, math.inf))
                elif w[top]["grows"]:
                    parts.append(f"throughput ratio at {top:.4g} (only WAIT saturated): ≤ {t:.3g}")
                    verdicts.append(_gain_verdict("≤", 0.0, t))
                else:
                    parts.append(f"throughput ratio at {top:.4g}: {t:.3g}, but both keep up with the arrivals there "
                                 "(not a capacity ratio)")
            r = self.ratio(wait, greedy)
            parts.append(f"stable-limit ratio WAIT / greedy: {r}")
            verdicts.append(_gain_verdict(r.relation, r.low, r.high))
            decided = set(verdicts) - {UNDETERMINED}
            verdict = decided.pop() if len(decided) == 1 else UNDETERMINED
            add("alsw25_gain", "; ".join(parts) + " ([ALSW25]: 1.2-1.3 on GPUs)", verdict)
        return out

    def to_markdown(self) -> str:
        """The papers' claims, the per-policy summary and the full grid as Markdown tables
        (headers with units)."""
        from .report.tables import to_markdown

        heads = self._headers()
        summary = [{heads[c]: _blank(r.get(c, "")) for c in self.SUMMARY} for r in self.table()]
        grid = [{heads[c]: r.get(c, r.get("error", "")) for c in COLUMNS} for r in self.rows]
        claims = self.claims()
        return ("Claims\n\n" + to_markdown(claims, ("claim", "measured", "verdict")) + "\n\nSummary (metrics at "
                "each policy's stable limit)\n\n" + to_markdown(summary, [heads[c] for c in self.SUMMARY])
                + "\n\nGrid\n\n" + to_markdown(grid, [heads[c] for c in COLUMNS]))

    def _headers(self) -> dict[str, str]:
        heads = {**HEADERS, "stable_limit_text": "stable limit", "at_rate": "at rate", "stable_limit": "stable limit"}
        return {c: (f"{h} ({self.units[c]})" if self.units.get(c) not in (None, "", h) else h)
                for c, h in heads.items()}

    def to_latex(self) -> str:
        """The claims, the per-policy summary and the grid as booktabs tables (the policy
        column repeated in every part when a table is split to fit the page)."""
        from .report.tables import to_latex

        heads = self._headers()
        limits = self.limits
        summary = [{**{c: r.get(c, "") for c in self.SUMMARY},
                    "stable_limit_text": limits[r["policy"]].text(latex=True)} for r in self.table()]
        claims = to_latex([{**c, "measured": _words(c["measured"])} for c in self.claims()],
                          ("claim", "measured", "verdict"), caption="The papers' claims in the model",
                          widths={"claim": "0.27\\linewidth", "measured": "0.4\\linewidth"}, size="small",
                          headers={"measured": "what we measured"}, longtable=True, repeat=("claim",))
        table = to_latex(summary, self.SUMMARY, caption="Admission policies compared (metrics at each policy's "
                         "stable limit)", headers=heads, repeat=("policy",), size="small",
                         widths={"stable_limit_text": "3cm"}, digits=4)
        grid_cols = tuple(c for c in COLUMNS if c != "wait_memory")
        grid = to_latex([{c: r.get(c, r.get("error", "")) if c != "policy" else r["policy"] for c in grid_cols}
                         for r in self.rows if "error" not in r], grid_cols, caption="Every policy and rate",
                        headers=heads, repeat=("policy", "rate"), size="small", digits=4, longtable=True)
        return claims + "\n" + table + "\n" + grid

    FILES = ("comparison.tex", "comparison.md", "comparison.csv", "claims.json", "latency_vs_load.png",
             "memory_near_limit.png", "provenance.json")
    """The files :meth:`write` puts into its folder."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: rows, units, limits (value, kind, text), the WAIT/greedy ratio, claims, settings."""
        limits = self.limits
        out: dict[str, Any] = {
            "units": self.units, "stable_limit": self.stable_limit,
            "limits": {p: {"value": lim.value, "upper": lim.upper, "kind": lim.kind, "text": lim.text(),
                           "nonmonotone": list(lim.nonmonotone), "failed": list(lim.failed)}
                       for p, lim in limits.items()},
            "rows": self.rows, "claims": self.claims(), "settings": self.settings,
        }
        wait, greedy = self._label("wait"), self._label("greedy")
        if wait is not None and greedy is not None:
            r = self.ratio(wait, greedy)
            out["ratio"] = {"policy": wait, "baseline": greedy, "relation": r.relation, "estimate": r.estimate,
                            "low": r.low, "high": r.high, "text": str(r)}
        return out

    def write(self, folder: str | Path) -> Path:
        """Tables (LaTeX, Markdown, CSV), the claims (JSON), figures and provenance into
        ``folder``, the whole folder in one step (:func:`queueing_llm.atomic.atomic_folder`: a
        re-run never leaves files of two runs side by side)."""
        from .atomic import atomic_folder, write_atomic
        from .report.tables import to_csv

        with atomic_folder(folder, owned=self.FILES) as out:
            write_atomic(out / "comparison.tex", self.to_latex())
            write_atomic(out / "comparison.md", self.to_markdown())
            to_csv([{c: r.get(c, "") for c in (*COLUMNS, "error")} for r in self.rows], out / "comparison.csv",
                   columns=(*COLUMNS, "error"))
            write_atomic(out / "claims.json", _dumps({"claims": self.claims(), "units": self.units}))
            self._figures(out)
            write_atomic(out / "provenance.json", _dumps(self.settings))
        return Path(folder)

    def _figures(self, out: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .report.figures import save_figure

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for policy in self.stable_limit:
            rows = [r for r in self.rows if r["policy"] == policy and "error" not in r]
            x = [r["rate"] for r in rows]
            axes[0].plot(x, [r["mean_latency"] for r in rows], marker="o", label=policy)
            axes[1].plot(x, [r["ttft_p50"] for r in rows], marker="o", label=policy)
        axes[0].set(xlabel=f"arrival rate ({self.units['rate']})",
                    ylabel=f"mean latency ({self.units['mean_latency']})", yscale="log")
        axes[1].set(xlabel=f"arrival rate ({self.units['rate']})", ylabel=f"TTFT p50 ({self.units['ttft_p50']})",
                    yscale="log")
        axes[0].legend(fontsize=8)
        save_figure(fig, out / "latency_vs_load.png")
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(8, 4))
        for policy, run in self.runs_near_limit.items():
            mem = np.asarray(run.memory)
            ax.plot(np.arange(mem.size)[-2000:], mem[-2000:], lw=0.8, label=policy)
        ax.set(xlabel="iteration", ylabel="KV tokens in use", title="memory near each policy's stable limit")
        ax.legend(fontsize=8)
        save_figure(fig, out / "memory_near_limit.png")
        plt.close(fig)


def _check_model(model: Any) -> float:
    """The model's total arrival rate, after checking that :func:`scale_arrivals` can scale it."""
    from .laws import Poisson

    if not isinstance(model, ContinuousBatching):
        raise ParameterError(f"model must be a ContinuousBatching, got {describe(model)}")
    for k, t in enumerate(model.types):
        if t.arrivals is None:
            raise ParameterError(f"model: types[{k}] has no arrivals (a saturated model); compare_policies needs "
                                 "Poisson arrivals (a number, Poisson(mean) or PoissonProcess(rate)) to vary the "
                                 "arrival rate")
        if not isinstance(t.arrivals, (Poisson, PoissonProcess)):
            raise ParameterError(f"model: types[{k}] has arrivals {t.arrivals!r}; compare_policies varies Poisson "
                                 "arrivals only (a number, Poisson(mean) or PoissonProcess(rate))")
    return sum(to_float(t.arrival_rate, "arrival rate") for t in model.types)


def environment_of(run: Any, level: float) -> dict[str, Any]:
    """Versions of the package and its libraries, the platform and the git commit, from the
    provenance :func:`queueing_llm.report.provenance` writes (the keys about one run left out)."""
    from .report.run import provenance

    out = provenance(run, level, None)
    for key in ("model", "seed", "iterations", "warmup", "saturated", "initial_batch", "record", "level", "theorems",
                "runs", "memory_limit"):
        out.pop(key, None)
    return out


def compare_policies(
    model: ContinuousBatching,
    policies: Mapping[str, Any] | Sequence[str] | None = None,
    rates: Sequence[float] | None = None,
    *,
    iterations: int = 20_000,
    replications: int = 2,
    seed: int = 0,
    level: float = 0.95,
    engine: str = "fast",
    progress: Callable[[str], Any] | None = None,
) -> PolicyComparison:
    r"""Run ``model`` under each policy at each total arrival rate.

    Parameters
    ----------
    model : ContinuousBatching
        The engine and the request types with Poisson arrivals; their rates give the proportions.
    policies : mapping, sequence of str or None
        Label -> policy (a name, a value, a callable ``model -> policy`` evaluated at every
        rate, or a callable ``model -> model``); or a list of labels of
        :func:`default_policies` (:func:`select_policies`: case and spaces ignored); default
        every one of :func:`default_policies`.
    rates : sequence of float or None
        Total arrival rates, at least one (per iteration, or per second for wall-clock
        arrivals); default :func:`default_rates`: the fluid limit times 0.5, 0.75, 0.9, 1, 1.1,
        1.25 (or the model's own rate times 0.5 to 1.5 if the fluid limit is infinite).
    iterations, replications : int
        Each point's runs (replications give the growth interval of the trend test).
    seed : int
        Point ``i`` of policy ``p`` uses ``SeedSequence((seed, i))``: every policy sees the
        same arrivals at a rate (common random numbers) where the engines draw alike.
    level : float
        Confidence level of the trend test.

    Returns
    -------
    PolicyComparison
        Rows per policy and rate; the stable limit per policy is the largest grid rate below
        the lowest rate whose queue grew (:class:`StableLimit`: a policy stable at the top of
        the grid has a lower bound, one that grew at the lowest rate an upper bound).

    Raises
    ------
    ParameterError
        A model without Poisson arrivals, an empty or non-positive ``rates``, ``policies``
        neither a mapping nor a list of default labels, or empty.
    """
    from .stable_range import growth_test

    _check_model(model)
    if rates is None:
        grid = default_rates(model)
    else:
        if isinstance(rates, (str, bytes)) or not isinstance(rates, Sequence):
            raise ParameterError(f"rates must be a list of positive total arrival rates, got {describe(rates)}")
        if len(rates) == 0:
            raise ParameterError("rates must hold at least one positive total arrival rate, got []")
        grid = []
        for i, r in enumerate(rates):
            check_real(f"rates[{i}]", r, low=0.0, low_open=True)
            grid.append(float(r))
    check_real("iterations", iterations, low=100, integer=True)
    check_real("replications", replications, low=2, integer=True)
    if policies is None:
        chosen = default_policies()
    elif isinstance(policies, Mapping):
        chosen = dict(policies)
        if not chosen:
            raise ParameterError(f"policies must name at least one policy (labels of default_policies(): "
                                 f"{', '.join(default_policies())})")
        bad = [k for k in chosen if not isinstance(k, str)]
        if bad:
            raise ParameterError(f"policies: labels must be strings, got {describe(bad[0])}")
    else:
        if isinstance(policies, (str, bytes)) or not isinstance(policies, Sequence):
            raise ParameterError(f"policies must be a mapping label -> policy or a list of labels of "
                                 f"default_policies() ({', '.join(default_policies())}), got {describe(policies)}")
        chosen = select_policies(policies)
    wall = model.is_wall_clock
    unit_time = "s" if wall else "iterations"
    rate_unit = "requests/s" if wall else "requests/iteration"
    units = {"rate": rate_unit, "throughput": rate_unit, "mean_latency": unit_time, "latency_p99": unit_time,
             "ttft_p50": unit_time, "ttft_p99": unit_time, "restarts_per_request": "evictions/request",
             "peak_memory": "tokens", "evictions": "evictions", "evictions_per_iteration": "evictions/iteration",
             "stable_limit": rate_unit, "stable_limit_text": rate_unit, "at_rate": rate_unit,
             "growth": "requests/iteration", "wait_memory": "tokens"}
    rows: list[dict[str, Any]] = []
    limits: dict[str, float] = {}
    near: dict[str, Any] = {}
    parameters: dict[str, dict[str, Any]] = {}
    environment: dict[str, Any] = {}
    started = time.monotonic()
    for label, spec in chosen.items():
        parameters[label] = {}
        runs: dict[float, Any] = {}
        for i, rate in enumerate(grid):
            row: dict[str, Any] = {"policy": label, "rate": rate}
            try:
                m = _model_for(scale_arrivals(model, rate), spec)
            except ParameterError as err:  # e.g. no WAIT equilibrium at this rate: a row saying so
                row["error"] = str(err)
                rows.append(row)
                continue
            from .sim import simulate

            parameters[label][f"{rate:.6g}"] = policy_parameters(m)
            iv, grows = growth_test(m, int(replications), int(iterations), level, (seed, i), engine)
            run = simulate(m, int(iterations), seed=int(np.random.SeedSequence((seed, i)).generate_state(1)[0]),
                           engine=engine)
            if not environment:
                environment = environment_of(run, level)
            s = run.summary(warmup=int(iterations) // 5)
            row.update(
                throughput=s["throughput_per_second"] if wall else s["throughput"],
                mean_latency=s["mean_latency"] if wall else s["mean_sojourn"],
                latency_p99=s["latency_p99"], ttft_p50=s["ttft_p50"], ttft_p99=s["ttft_p99"],
                restarts_per_request=s["restarts_per_request"], peak_memory=s["peak_memory"],
                evictions=int(np.asarray(run.evictions).sum()),
                evictions_per_iteration=s["evictions_per_iteration"], growth=iv.estimate, grows=bool(grows),
                wait_memory=wait_batch_memory(m),
            )
            rows.append(row)
            runs[rate] = run
            if progress is not None:
                progress(f"{label} at rate {rate:.4g}: throughput {row['throughput']:.4g} {rate_unit}, "
                         f"{'grows' if grows else 'stable'} ({time.monotonic() - started:.0f} s)")
        limit = stable_limit_of([r for r in rows if r["policy"] == label])
        limits[label] = limit.value
        if limit.value in runs:
            near[label] = runs[limit.value]
    settings = {"model": model.to_dict(), "rates": grid, "policies": list(chosen), "iterations": int(iterations),
                "replications": int(replications), "seed": seed, "level": level, "engine": engine,
                "policy_parameters": parameters, "stable_limit_rule": "the largest grid rate below the lowest rate "
                "whose queue grows (a lower bound when no rate grows)", **environment,
                "seconds": time.monotonic() - started}
    return PolicyComparison(rows, limits, units, settings, near, model)
