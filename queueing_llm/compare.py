r"""Admission policies side by side over a grid of arrival rates ([ALSW25]'s comparison).

:func:`compare_policies` runs one model under several policies (greedy vLLM-like admission,
a batch cap, rate limiting at :math:`x^*`, reservation, WAIT and Nested WAIT with their fluid
thresholds) at several total arrival rates (the types keep the model's proportions), and
reports per policy and rate what a serving engineer reads: throughput, mean and p99 latency,
TTFT, restarts per request, peak memory, evictions, and whether the queue grew (the trend
test of :func:`queueing_llm.stable_range`), plus each policy's stable limit on the grid.
:meth:`PolicyComparison.write` puts booktabs LaTeX, Markdown and CSV tables, figures
(latency and TTFT against load; memory over time near the stable limit) and a provenance
file into a folder, atomically.

Sources: [ALSW25] sections 4-6 (WAIT, Nested WAIT, their comparison with vLLM-like
scheduling); [ADLS26] sections 4-5 (greedy eviction, rate limiting).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ParameterError, describe
from .model import ContinuousBatching, PoissonProcess
from .numbers import check_real, to_float
from .policies import Policy, rate_limited
from .stable_range import resolve_policy

__all__ = ["PolicyComparison", "compare_policies", "default_policies", "scale_arrivals", "wait_batch_memory",
           "COLUMNS", "WORKLOADS", "alsw25_example3", "azure_conversation", "known_lengths"]

COLUMNS = ("policy", "rate", "throughput", "mean_latency", "latency_p99", "ttft_p50", "ttft_p99",
           "restarts_per_request", "peak_memory", "evictions_per_iteration", "growth", "grows", "wait_memory")
"""Columns of a comparison row (per policy and arrival rate)."""

HEADERS = {"policy": "policy", "rate": "arrival rate", "throughput": "throughput", "mean_latency": "mean latency",
           "latency_p99": "p99 latency", "ttft_p50": "TTFT p50", "ttft_p99": "TTFT p99",
           "restarts_per_request": "restarts/request", "peak_memory": "peak memory",
           "evictions_per_iteration": "evictions/iteration", "growth": "queue growth", "grows": "grows",
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


def _model_for(model: ContinuousBatching, spec: Any) -> ContinuousBatching:
    if callable(spec) and not isinstance(spec, Policy):
        out = spec(model)
        return out if isinstance(out, ContinuousBatching) else model.with_policy(out)
    return resolve_policy(model, spec)


@dataclass
class PolicyComparison:
    r"""The result of :func:`compare_policies`.

    Attributes
    ----------
    rows : list of dict
        One row per policy and arrival rate (:data:`COLUMNS`); failures are rows with
        ``error`` set (e.g. WAIT without an equilibrium at that rate).
    stable_limit : dict
        Policy -> the largest grid rate whose queue did not grow (``nan`` if none).
    units : dict
        Column -> unit.
    settings : dict
        Iterations, replications, seed, level, the model.
    """

    rows: list[dict[str, Any]]
    stable_limit: dict[str, float]
    units: dict[str, str]
    settings: dict[str, Any]
    runs_near_limit: dict[str, Any] = field(default_factory=dict, repr=False)

    def table(self) -> list[dict[str, Any]]:
        """Per policy: its stable limit and the metrics at the highest rate it keeps stable."""
        out = []
        for policy, limit in self.stable_limit.items():
            rows = [r for r in self.rows if r["policy"] == policy and "error" not in r]
            at = [r for r in rows if r["rate"] == limit] or rows[:1]
            row = {"policy": policy, "stable_limit": limit}
            if at:
                row.update({k: at[0][k] for k in COLUMNS if k not in ("policy", "grows", "growth")})
            out.append(row)
        return out

    def ratio(self, policy: str, baseline: str = "greedy") -> float:
        """Stable-limit ratio of ``policy`` to ``baseline`` ([ALSW25] reports 1.2-1.3 for WAIT over vLLM)."""
        a, b = self.stable_limit.get(policy, math.nan), self.stable_limit.get(baseline, math.nan)
        return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan

    def to_markdown(self) -> str:
        """The per-policy summary and the full grid as Markdown tables."""
        from .report.tables import to_markdown

        summary_cols = ("policy", "stable_limit", "throughput", "mean_latency", "latency_p99", "ttft_p50",
                        "restarts_per_request", "peak_memory")
        table = [{c: r.get(c, "") for c in summary_cols} for r in self.table()]
        grid = [{c: r.get(c, r.get("error", "")) for c in COLUMNS} for r in self.rows]
        return (to_markdown(table, summary_cols) + "\n" + to_markdown(grid, COLUMNS))

    def to_latex(self) -> str:
        """The per-policy summary as a booktabs table."""
        from .report.tables import to_latex

        cols = ("policy", "stable_limit", "throughput", "mean_latency", "latency_p99", "ttft_p50",
                "restarts_per_request", "peak_memory")
        heads = {**HEADERS, "stable_limit": "stable limit"}
        units = {c: self.units.get(c, "") for c in cols}
        heads = {c: (f"{heads.get(c, c)} ({units[c]})" if units[c] else heads.get(c, c)) for c in cols}
        table = [{c: r.get(c, "") for c in cols} for r in self.table()]
        return to_latex(table, cols, caption="Admission policies compared", headers=heads)

    FILES = ("comparison.tex", "comparison.md", "comparison.csv", "latency_vs_load.png", "memory_near_limit.png",
             "provenance.json")
    """The files :meth:`write` puts into its folder."""

    def write(self, folder: str | Path) -> Path:
        """Tables (LaTeX, Markdown, CSV), figures and provenance into ``folder``, the whole folder
        in one step (:func:`queueing_llm.atomic.atomic_folder`: a re-run never leaves files of
        two runs side by side)."""
        from .atomic import atomic_folder, write_atomic
        from .report.tables import to_csv

        with atomic_folder(folder, owned=self.FILES) as out:
            write_atomic(out / "comparison.tex", self.to_latex())
            write_atomic(out / "comparison.md", self.to_markdown())
            to_csv([{c: r.get(c, "") for c in (*COLUMNS, "error")} for r in self.rows], out / "comparison.csv",
                   columns=(*COLUMNS, "error"))
            self._figures(out)
            write_atomic(out / "provenance.json", json.dumps(self.settings, indent=2, default=str) + "\n")
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


def compare_policies(
    model: ContinuousBatching,
    policies: Mapping[str, Any] | None = None,
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
        The engine and the request types; their arrival rates give the proportions.
    policies : mapping or None
        Label -> policy (a name, a value, a callable ``model -> policy`` evaluated at every
        rate, or a callable ``model -> model``); default :func:`default_policies`.
    rates : sequence of float or None
        Total arrival rates (per iteration, or per second for wall-clock arrivals); default
        the model's own rate times 0.5, 0.75, 1, 1.25, 1.5.
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
    """
    from .stable_range import growth_test

    if not isinstance(model, ContinuousBatching):
        raise ParameterError(f"model must be a ContinuousBatching, got {describe(model)}")
    base = sum(to_float(t.arrival_rate, "arrival rate") for t in model.types if t.arrival_rate is not None)
    grid = [base * f for f in (0.5, 0.75, 1.0, 1.25, 1.5)] if rates is None else [float(r) for r in rates]
    for i, r in enumerate(grid):
        check_real(f"rates[{i}]", r, low=0.0, low_open=True)
    check_real("iterations", iterations, low=100, integer=True)
    check_real("replications", replications, low=2, integer=True)
    chosen = default_policies() if policies is None else dict(policies)
    if not chosen:
        raise ParameterError("policies must name at least one policy")
    wall = model.is_wall_clock
    unit_time = "s" if wall else "iterations"
    units = {"rate": "requests/s" if wall else "requests/iteration", "throughput": "requests/s" if wall
             else "requests/iteration", "mean_latency": unit_time, "latency_p99": unit_time, "ttft_p50": unit_time,
             "ttft_p99": unit_time, "peak_memory": "tokens", "stable_limit": "requests/s" if wall
             else "requests/iteration", "growth": "requests/iteration"}
    rows: list[dict[str, Any]] = []
    limits: dict[str, float] = {}
    near: dict[str, Any] = {}
    started = time.monotonic()
    for label, spec in chosen.items():
        limits[label] = math.nan
        for i, rate in enumerate(grid):
            row: dict[str, Any] = {"policy": label, "rate": rate}
            try:
                m = _model_for(scale_arrivals(model, rate), spec)
            except ParameterError as err:  # e.g. no WAIT equilibrium at this rate: a row saying so
                row["error"] = str(err)
                rows.append(row)
                continue
            from .sim import simulate

            iv, grows = growth_test(m, int(replications), int(iterations), level, (seed, i), engine)
            run = simulate(m, int(iterations), seed=int(np.random.SeedSequence((seed, i)).generate_state(1)[0]),
                           engine=engine)
            s = run.summary(warmup=int(iterations) // 5)
            row.update(
                throughput=s["throughput_per_second"] if wall else s["throughput"],
                mean_latency=s["mean_latency"] if wall else s["mean_sojourn"],
                latency_p99=s["latency_p99"], ttft_p50=s["ttft_p50"], ttft_p99=s["ttft_p99"],
                restarts_per_request=s["restarts_per_request"], peak_memory=s["peak_memory"],
                evictions_per_iteration=s["evictions_per_iteration"], growth=iv.estimate, grows=grows,
                wait_memory=wait_batch_memory(m),
            )
            rows.append(row)
            if not grows:
                limits[label] = rate
                near[label] = run
            if progress is not None:
                progress(f"{label} at rate {rate:.4g}: throughput {row['throughput']:.4g}, "
                         f"{'grows' if grows else 'stable'} ({time.monotonic() - started:.0f} s)")
    settings = {"model": model.to_dict(), "rates": grid, "policies": list(chosen), "iterations": int(iterations),
                "replications": int(replications), "seed": seed, "level": level, "engine": engine,
                "seconds": time.monotonic() - started}
    return PolicyComparison(rows, limits, units, settings, near)
