r"""[ADLS26]'s experiments regenerated: request mixing (Tables 4, 5), rate limiting (Table 8),
the open system (Figure 6).

Every row holds our estimate with a replication confidence interval, the paper's value where
the paper states one, and a verdict: ``agree`` when the paper's value lies inside our
interval, ``disagree`` otherwise (with the settings we tried), ``no paper value`` when the
paper gives none. Settings follow the paper's description as restated in the package's
references chapter:

* Tables 4 and 5: prompt :math:`l_0 = 30`, one node per decode set, :math:`M = 600` (Table 4:
  {6, 10}, {9, 15}, mixed {6, 9, 10, 15}) and :math:`M = 1000` (Table 5: {20, 40}, {25, 50},
  mixed), equal proportions, Poisson arrivals at each node's own :math:`x^*` for 500
  iterations; restarts (evictions) counted over the run.
* Table 8: :math:`M = 1000`, :math:`l_0 = l_1 = 20`, 4000 steps, Poisson arrivals at
  :math:`x^* = 100/61` per step; greedy and rate-limited admission; throughput (requests per
  step) and evictions.
* Figure 6: the open system :math:`M = 2000`, :math:`l_0 = 10`, :math:`l_1 = 40` at
  :math:`\lambda = 1.2` (between the worst cycle 1.0 and :math:`x^* = 1.64`): the number in
  system over time under greedy and rate-limited admission.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model import ContinuousBatching, RequestType
from ..policies import rate_limited
from ..stats import replications_ci
from ..theory import dynamics as dyn

__all__ = ["Study", "run", "PAPER", "COLUMNS"]

PAPER: dict[tuple[str, str, str], float] = {
    ("Table 5", "{20, 40}", "restarts"): 248,
    ("Table 5", "{25, 50}", "restarts"): 190,
    ("Table 5", "{20, 25, 40, 50}", "restarts"): 105,
    ("Table 4", "{6, 9, 10, 15}", "restarts"): 0,
    ("Table 8", "greedy", "throughput"): 1.33,
    ("Table 8", "greedy", "evictions"): 2662,
    ("Table 8", "rate_limited(x*)", "throughput"): 1.61,
    ("Table 8", "rate_limited(x*)", "evictions"): 0,
}
"""The paper's values we compare with: (table, setting, quantity) -> value."""

TRIED = {
    "Table 4": "Poisson arrivals at the node's own x* for 500 iterations, admission after eviction (the paper's "
               "reading); zero restarts for the mixed node appear only with deterministic proportional admission",
    "Table 5": "Poisson arrivals at the node's own x* for 500 iterations, admission after eviction",
    "Table 8": "Poisson arrivals at x* = 100/61 per step for 4000 steps; also tried (issue 9): rates 1.4-2.0, "
               "no admission after eviction, the relaxed map, Gamma arrivals, saturated input (1.2437)",
}
"""The settings tried, by table, reported beside a disagreement."""

FILES = ("adls26.tex", "adls26.md", "adls26.csv", "figure6.png", "figure6.pdf", "provenance.json")
"""The files a study writes into its folder."""

COLUMNS = ("table", "setting", "quantity", "ours", "ci_low", "ci_high", "paper", "verdict")


def _node(decodes: tuple[int, ...], M: int, l0: int = 30) -> ContinuousBatching:
    saturated = ContinuousBatching([RequestType(l0, d) for d in decodes], kv_capacity=M)
    xs = float(dyn.fixed_point(saturated))
    return ContinuousBatching([RequestType(l0, d, xs / len(decodes)) for d in decodes], kv_capacity=M)


def _label(decodes: tuple[int, ...]) -> str:
    return "{" + ", ".join(str(d) for d in decodes) + "}"


def _row(table: str, setting: str, quantity: str, values: list[float], level: float) -> dict[str, Any]:
    iv = replications_ci(values, level)
    paper = PAPER.get((table, setting, quantity))
    if paper is None:
        verdict = "no paper value"
    elif iv.low <= paper <= iv.high:
        verdict = "agree"
    else:
        verdict = f"disagree (tried: {TRIED[table]})"
    return {"table": table, "setting": setting, "quantity": quantity, "ours": iv.estimate, "ci_low": iv.low,
            "ci_high": iv.high, "paper": "" if paper is None else paper, "verdict": verdict}


@dataclass
class Study:
    """Rows of the regenerated tables, Figure 6's runs and the settings (provenance)."""

    rows: list[dict[str, Any]]
    figure_runs: dict[str, Any] = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_markdown(self) -> str:
        from ..report.tables import to_markdown

        return to_markdown(self.rows, COLUMNS)

    def to_latex(self) -> str:
        from ..report.tables import to_latex

        cols = ("table", "setting", "quantity", "ours", "ci_low", "ci_high", "paper", "agrees")
        rows = [{**r, "agrees": r["verdict"].split(" ")[0]} for r in self.rows]
        return to_latex(rows, cols, caption="[ADLS26] regenerated: our estimates (95% CI) beside the paper's",
                        headers={"ci_low": "CI low", "ci_high": "CI high", "agrees": "verdict"})

    def write(self, folder: str | Path) -> Path:
        """``adls26.tex``, ``adls26.md``, ``adls26.csv``, ``figure6.png`` (and PDF), ``provenance.json``."""
        from ..atomic import atomic_folder, write_atomic
        from ..report.tables import to_csv

        with atomic_folder(folder, owned=FILES) as out:  # the whole folder in one step
            write_atomic(out / "adls26.tex", self.to_latex())
            write_atomic(out / "adls26.md", self.to_markdown())
            to_csv(self.rows, out / "adls26.csv", columns=COLUMNS)
            self._figure(out)
            write_atomic(out / "provenance.json", json.dumps(self.settings, indent=2, default=str) + "\n")
        return Path(folder)

    def _figure(self, out: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..report.figures import save_figure

        fig, ax = plt.subplots(figsize=(8, 4))
        for label, run in self.figure_runs.items():
            ax.plot(np.asarray(run.in_system), lw=0.8, label=label)
        ax.set(xlabel="iteration", ylabel="requests in system",
               title="Figure 6: open system, M = 2000, l0 = 10, l1 = 40, lambda = 1.2")
        ax.legend()
        save_figure(fig, out / "figure6.png")
        save_figure(fig, out / "figure6.pdf")
        plt.close(fig)


def run(quick: bool = False, seed: int = 0, level: float = 0.95,
        progress: Callable[[str], Any] | None = None) -> Study:
    """Regenerate the tables and Figure 6 (``quick``: fewer replications and a shorter figure run)."""
    started = time.monotonic()
    reps = 8 if quick else 40
    say = progress or (lambda line: None)
    rows: list[dict[str, Any]] = []
    seeds = iter(np.random.SeedSequence(seed).spawn(10_000))

    def next_seed() -> int:
        return int(next(seeds).generate_state(1)[0])

    from ..sim import simulate

    for table, M, sets in (("Table 4", 600, ((6, 10), (9, 15), (6, 9, 10, 15))),
                           ("Table 5", 1000, ((20, 40), (25, 50), (20, 25, 40, 50)))):
        for decodes in sets:
            model = _node(decodes, M)
            values = [float(simulate(model, 500, seed=next_seed()).evictions.sum()) for _ in range(reps)]
            rows.append(_row(table, _label(decodes), "restarts", values, level))
            say(f"{table} {_label(decodes)}: {rows[-1]['ours']:.4g} restarts ({time.monotonic() - started:.0f} s)")
    base = ContinuousBatching([RequestType(20, 20, float(dyn.fixed_point(
        ContinuousBatching([RequestType(20, 20)], kv_capacity=1000))))], kv_capacity=1000)
    for name, policy in (("greedy", "greedy"), ("rate_limited(x*)", rate_limited())):
        model = base.with_policy(policy)
        runs = [simulate(model, 4000, seed=next_seed()) for _ in range(reps)]
        rows.append(_row("Table 8", name, "throughput", [float(r.completions.sum()) / 4000 for r in runs], level))
        rows.append(_row("Table 8", name, "evictions", [float(r.evictions.sum()) for r in runs], level))
        say(f"Table 8 {name}: {rows[-2]['ours']:.4g} requests/step ({time.monotonic() - started:.0f} s)")
    fig_model = ContinuousBatching([RequestType(10, 40, 1.2)], kv_capacity=2000)
    n = 20_000 if quick else 100_000
    figure = {name: simulate(fig_model.with_policy(policy), n, seed=seed)
              for name, policy in (("greedy", "greedy"), ("rate_limited(x*)", rate_limited()))}
    settings = {"study": "adls26", "quick": quick, "replications": reps, "seed": seed, "level": level,
                "figure_iterations": n, "seconds": time.monotonic() - started, "tried": TRIED}
    return Study(rows, figure, settings)
