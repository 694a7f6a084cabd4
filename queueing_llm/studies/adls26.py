r"""[ADLS26]'s experiments regenerated: request mixing (Tables 4, 5), rate limiting (Table 8),
the open system (Figure 6).

Every row holds our value, the paper's value where the paper states one, and a verdict:
``agree`` when the paper's value lies inside our interval widened by half a unit of the
paper's last stated digit (the paper rounds: its 1.33 stands for [1.325, 1.335], its 0
restarts for [0, 0.5]), ``disagree`` otherwise (with the settings we tried), ``no paper
value`` when the paper gives none. Settings follow the paper's description as restated in
the package's references chapter and issue 9:

* Tables 4 and 5: prompt :math:`l_0 = 30`, one node per decode set, :math:`M = 600` (Table 4:
  {6, 10}, {9, 15}, mixed {6, 9, 10, 15}) and :math:`M = 1000` (Table 5: {20, 40}, {25, 50},
  mixed), equal proportions, each node at its own :math:`x^*`, 500 iterations from an empty
  system; restarts (evictions) counted over the run and after a warm-up of a fifth of it
  (100 iterations: the references chapter states no warm-up for the paper's count, so both
  are shown).
* Table 8: :math:`M = 1000`, :math:`l_0 = l_1 = 20`, 4000 steps at :math:`x^* = 100/61` per
  step; greedy and rate-limited admission; throughput (requests per step) and evictions.
* Figure 6: the open system :math:`M = 2000`, :math:`l_0 = 10`, :math:`l_1 = 40` at
  :math:`\lambda = 1.2` (between the worst cycle 1.0 and :math:`x^* = 1.64`): the number in
  system over time under greedy and rate-limited admission.

Readings. Each setting of Tables 4, 5 and 8 is run under three readings of the paper's
experiment (:data:`READINGS`), each row says which:

``Poisson``
    Poisson arrivals at rate :math:`x^* p_k` per type, the integer system (admission after
    eviction). Random: the mean of independent replications with its Student interval.
``Regular``
    :class:`~queueing_llm.Regular` (Beatty) arrivals at the same rates, type :math:`k`
    receiving :math:`\lfloor (n+1) r_k \rfloor - \lfloor n r_k \rfloor` requests at
    iteration :math:`n` (all types at phase 0), the integer system: deterministic
    proportional arrivals. With one type (Table 8) nothing random is left: one run, the
    value is ``exact``. With several types the only draw left is the order, in the queue,
    of the same-iteration arrivals of different types (uniform offsets, the simulators'
    draw order): the mean of replications over that order with its interval.
``relaxed``
    The relaxed saturated map (:func:`~queueing_llm.theory.dynamics.relaxed_trajectory`,
    rational arithmetic): real-valued counts, an infinite backlog, every admission split in
    the exact proportions :math:`p_k` (deterministic proportional admission), from an
    empty batch; greedy, and for Table 8's rate-limited row the cap :math:`x^*`. No
    randomness: one ``exact`` value (restarts are then evicted fluid mass).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..laws import Regular
from ..model import ContinuousBatching, RequestType
from ..policies import rate_limited
from ..stats import replications_ci
from ..theory import dynamics as dyn

__all__ = ["Study", "run", "PAPER", "COLUMNS", "READINGS", "TRIED"]

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

MIXING_ITERATIONS = 500
"""Horizon of Tables 4 and 5 (iterations from an empty system)."""

WARMUP = MIXING_ITERATIONS // 5
"""Iterations left out of ``restarts after warm-up`` (a fifth of the run)."""

RATE_ITERATIONS = 4000
"""Horizon of Table 8 (steps from an empty system)."""

READINGS: dict[str, str] = {
    "Poisson": "Poisson arrivals at x* p_k per type, integer system, replications",
    "Regular": "Regular (Beatty) arrivals floor((n+1) r) - floor(n r) at the same rates, integer system "
               "(one type: one exact run; several: replications over the order of same-iteration arrivals)",
    "relaxed": "relaxed saturated map, real-valued counts, admissions split in the exact proportions p_k "
               "(deterministic proportional admission), from an empty batch, exact",
}
"""The readings each setting is run under (see the module docstring)."""

_READ = "; ".join(f"{name}: {text}" for name, text in READINGS.items())
_MIXING_TRIED = (f"{MIXING_ITERATIONS} iterations from an empty system, each node's own x*, greedy admission "
                 f"(after eviction too), restarts over the run and after a warm-up of {WARMUP}; readings {_READ}")
TRIED = {
    "Table 4": _MIXING_TRIED,
    "Table 5": _MIXING_TRIED,
    "Table 8": f"{RATE_ITERATIONS} steps from an empty system, arrivals at x*, greedy and rate_limited(x*) admission; "
               f"readings {_READ} (greedy, and capped at x*)",
}
"""The settings the code runs, by table, reported beside a disagreement."""

FILES = ("adls26.tex", "adls26.md", "adls26.csv", "figure6.png", "figure6.pdf", "provenance.json")
"""The files a study writes into its folder."""

COLUMNS = ("table", "setting", "reading", "quantity", "ours", "ci_low", "ci_high", "interval", "paper", "verdict")
"""Columns of a row; ``interval`` is ``exact`` (``ci_low``, ``ci_high`` empty) or the replication
interval's level and size."""

_PAPER_QUANTITY = {"restarts after warm-up": "restarts"}
"""Our quantities compared with another of the paper's (the paper states one restart count)."""


def _saturated(decodes: Sequence[int], M: int, l0: int) -> ContinuousBatching:
    return ContinuousBatching([RequestType(l0, d) for d in decodes], kv_capacity=M)


def _node(decodes: tuple[int, ...], M: int, l0: int = 30, regular: bool = False) -> ContinuousBatching:
    """The node at its own :math:`x^*`, equal proportions: Poisson or Regular arrivals."""
    xs = dyn.fixed_point(_saturated(decodes, M, l0))
    rates = [Regular(xs / len(decodes)) if regular else float(xs) / len(decodes) for _ in decodes]
    return ContinuousBatching([RequestType(l0, d, r) for d, r in zip(decodes, rates, strict=True)], kv_capacity=M)


def _exact_run(model: ContinuousBatching) -> bool:
    """One type with Regular arrivals and fixed lengths: the run draws nothing that matters."""
    return model.K == 1 and isinstance(model.types[0].arrivals, Regular)


@cache
def _relaxed(decodes: tuple[int, ...], M: int, l0: int, iterations: int, capped: bool) -> tuple[Any, Any, Any]:
    """The relaxed saturated map from an empty batch (exact): per-iteration completions and
    evictions (sums over types), and the cap (None: greedy). Deterministic, so cached."""
    model = _saturated(decodes, M, l0)
    if capped:
        model = model.with_policy(rate_limited())
    tr = dyn.relaxed_trajectory(model, iterations, exact=True)
    return tuple(tr.completions.sum(axis=1)), tuple(tr.evictions.sum(axis=1)), tr.rate


def _label(decodes: tuple[int, ...]) -> str:
    return "{" + ", ".join(str(d) for d in decodes) + "}"


def _half_unit(value: float) -> float:
    """Half a unit of the last digit the paper states (0.005 for 1.33, 0.5 for 248 or 0)."""
    exponent = Decimal(str(value)).normalize().as_tuple().exponent
    return 0.5 * 10.0 ** min(int(exponent), 0)


def _row(table: str, setting: str, reading: str, quantity: str, values: Sequence[Any], level: float,
         exact: bool = False) -> dict[str, Any]:
    """One row: ``exact`` rows take the single value, others the replications' interval."""
    paper = PAPER.get((table, setting, _PAPER_QUANTITY.get(quantity, quantity)))
    if exact:
        if len(values) != 1:
            raise ParameterError(f"an exact row takes one value, got {len(values)}")
        ours = low = high = float(values[0])
        cells = {"ci_low": "", "ci_high": "", "interval": "exact"}
    else:
        iv = replications_ci([float(v) for v in values], level)
        ours, low, high = iv.estimate, iv.low, iv.high
        cells = {"ci_low": low, "ci_high": high, "interval": f"{level:.0%} CI, {len(values)} replications"}
    if paper is None:
        verdict = "no paper value"
    elif low - _half_unit(paper) <= paper <= high + _half_unit(paper):
        verdict = "agree"
    else:
        verdict = f"disagree (tried: {TRIED[table]})"
    return {"table": table, "setting": setting, "reading": reading, "quantity": quantity, "ours": ours, **cells,
            "paper": "" if paper is None else paper, "verdict": verdict}


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
        """Two booktabs tables: the rows (the interval as ``[low, high]`` or ``exact``, the
        verdict as a word, a disagreement pointing to its note, "disagree (a)") and the notes:
        the settings tried for each table with a disagreement, in full. The label columns
        (table and setting, reading, quantity) are repeated in every part if the rows table
        is split to fit."""
        from ..report.tables import latex_number, to_latex

        notes = {t: chr(ord("a") + i) for i, t in enumerate(dict.fromkeys(
            r["table"] for r in self.rows if r["verdict"].startswith("disagree")))}

        def verdict(r: dict[str, Any]) -> str:
            if r["verdict"].startswith("disagree"):
                return f"disagree ({notes[r['table']]})"
            return r["verdict"]

        def interval(r: dict[str, Any]) -> str:
            if r["interval"] == "exact":
                return "exact"
            return f"[{latex_number(r['ci_low'], 4)}, {latex_number(r['ci_high'], 4)}]"

        rows = [{**r, "ci": interval(r), "verdict": verdict(r), "where": f"{r['table']}, {r['setting']}"}
                for r in self.rows]
        cols = ("where", "reading", "quantity", "ours", "ci", "paper", "verdict")
        level = self.settings.get("level", 0.95)
        table = to_latex(rows, cols, caption=f"[ADLS26] regenerated: our values ({level:.0%} CI over replications, "
                         "or exact) beside the paper's; notes give the settings tried where we disagree",
                         headers={"ci": f"{level:.0%} CI", "where": "table, setting"}, digits=4, size="small",
                         longtable=True, widths={"where": "2.2cm", "quantity": "1.7cm"}, tabcolsep=2.5,
                         repeat=("where", "reading", "quantity"))
        tried = [{"note": notes[t], "table": t, "settings tried": TRIED[t]} for t in notes]
        if not tried:
            return table
        return table + "\n" + to_latex(tried, ("note", "table", "settings tried"),
                                        caption="Notes: the settings tried for the tables we disagree with",
                                        widths={"settings tried": "0.6\\linewidth"}, size="small", longtable=True)

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
    """Regenerate the tables under the three readings and Figure 6 (``quick``: fewer
    replications and a shorter figure run; the exact readings are the same at both sizes)."""
    started = time.monotonic()
    reps = 8 if quick else 40
    say = progress or (lambda line: None)
    rows: list[dict[str, Any]] = []
    root = np.random.SeedSequence(seed)
    streams = {"Poisson": iter(root.spawn(10_000)), "Regular": iter(root.spawn(10_000))}

    def next_seed(reading: str) -> int:
        return int(next(streams[reading]).generate_state(1)[0])

    from ..sim import simulate

    def simulated(model: ContinuousBatching, iterations: int, reading: str) -> tuple[list[Any], bool]:
        exact = _exact_run(model)
        return [simulate(model, iterations, seed=next_seed(reading)) for _ in range(1 if exact else reps)], exact

    def restarts(evictions: Any) -> dict[str, float]:
        per_iteration = np.asarray(evictions).reshape(MIXING_ITERATIONS, -1).sum(axis=1)
        return {"restarts": per_iteration.sum(), "restarts after warm-up": per_iteration[WARMUP:].sum()}

    for table, M, sets in (("Table 4", 600, ((6, 10), (9, 15), (6, 9, 10, 15))),
                           ("Table 5", 1000, ((20, 40), (25, 50), (20, 25, 40, 50)))):
        for decodes in sets:
            for reading in ("Poisson", "Regular"):
                runs, exact = simulated(_node(decodes, M, regular=reading == "Regular"), MIXING_ITERATIONS, reading)
                counts = [restarts(r.evictions) for r in runs]
                for quantity in ("restarts", "restarts after warm-up"):
                    rows.append(_row(table, _label(decodes), reading, quantity, [c[quantity] for c in counts], level,
                                     exact))
            _, evictions, _ = _relaxed(decodes, M, 30, MIXING_ITERATIONS, False)
            relaxed = restarts(np.array(evictions, dtype=object))
            for quantity in ("restarts", "restarts after warm-up"):
                rows.append(_row(table, _label(decodes), "relaxed", quantity, [relaxed[quantity]], level, True))
            say(f"{table} {_label(decodes)}: restarts " + ", ".join(
                f"{r['reading']} {r['ours']:.4g}" for r in rows[-6:] if r["quantity"] == "restarts")
                + f" ({time.monotonic() - started:.0f} s)")
    xs = dyn.fixed_point(_saturated((20,), 1000, 20))
    for name, policy in (("greedy", "greedy"), ("rate_limited(x*)", rate_limited())):
        for reading, law in (("Poisson", float(xs)), ("Regular", Regular(xs))):
            model = ContinuousBatching([RequestType(20, 20, law)], kv_capacity=1000).with_policy(policy)
            runs, exact = simulated(model, RATE_ITERATIONS, reading)
            rows.append(_row("Table 8", name, reading, "throughput",
                             [float(r.completions.sum()) / RATE_ITERATIONS for r in runs], level, exact))
            rows.append(_row("Table 8", name, reading, "evictions", [float(r.evictions.sum()) for r in runs], level,
                             exact))
        completions, evictions, _ = _relaxed((20,), 1000, 20, RATE_ITERATIONS, name != "greedy")
        rows.append(_row("Table 8", name, "relaxed", "throughput", [sum(completions) / RATE_ITERATIONS], level, True))
        rows.append(_row("Table 8", name, "relaxed", "evictions", [sum(evictions)], level, True))
        say(f"Table 8 {name}: requests/step " + ", ".join(
            f"{r['reading']} {r['ours']:.4g}" for r in rows[-6:] if r["quantity"] == "throughput")
            + f" ({time.monotonic() - started:.0f} s)")
    fig_model = ContinuousBatching([RequestType(10, 40, 1.2)], kv_capacity=2000)
    n = 20_000 if quick else 100_000
    figure = {name: simulate(fig_model.with_policy(policy), n, seed=seed)
              for name, policy in (("greedy", "greedy"), ("rate_limited(x*)", rate_limited()))}
    from ..compare import environment_of

    policies = {"greedy": str(ContinuousBatching([RequestType(20, 20)], kv_capacity=1000).policy),
                "rate_limited(x*)": {"policy": str(rate_limited()), "x* of Table 8 (requests/step)": str(xs),
                                     "x* of Figure 6 (requests/step)": str(dyn.fixed_point(
                                         ContinuousBatching([RequestType(10, 40)], kv_capacity=2000)))}}
    settings = {"study": "adls26", "quick": quick, "replications": reps, "seed": seed, "level": level,
                "mixing_iterations": MIXING_ITERATIONS, "warmup": WARMUP, "rate_iterations": RATE_ITERATIONS,
                "readings": READINGS, "figure_iterations": n, "policy_parameters": policies,
                **environment_of(figure["greedy"], level), "seconds": time.monotonic() - started, "tried": TRIED}
    return Study(rows, figure, settings)
