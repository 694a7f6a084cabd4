r"""[ALSW25]'s fluid examples regenerated from the registry, and WAIT against greedy on Example 3.

Rows: the worked examples of the fluid benchmark (the references chapter, section 2; the
convention with a prefill stage, :math:`W = (o+1) l + o(o+1)/2`) evaluated by the
``fluid-benchmark``, ``wait-thresholds`` and ``safety-buffer`` theorems, beside the values
the chapter states (rounded as stated: a row agrees when our exact value rounds to the
stated digits); then a simulated comparison of WAIT with greedy admission on Example 3
(mean latency and TTFT with replication intervals; there is no paper value to agree with).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model import ContinuousBatching, LinearIterationTime, PoissonProcess, RequestType
from ..stats import replications_ci
from ..theorems import theorems

__all__ = ["Study", "run", "COLUMNS"]

FILES = ("alsw25.tex", "alsw25.md", "alsw25.csv", "provenance.json")
"""The files a study writes into its folder."""

COLUMNS = ("example", "quantity", "ours", "ci_low", "ci_high", "stated", "verdict")


def _model(types: list[tuple[int, int, float]], M: float, d0: float, d1: float) -> ContinuousBatching:
    return ContinuousBatching([RequestType(p, o, PoissonProcess(r)) for p, o, r in types], kv_capacity=M,
                              iteration_time=LinearIterationTime(d0, d1))


EXAMPLES = {
    "worked (2, 3, 2/s), M = 50": (_model([(2, 3, 2)], 50, 1, 0.01),
                                   {"rho": 0.28, "delta_star": 1 / 0.72, "n*": 2.7778, "M*": 38.889}),
    "Example 2, M = 50": (_model([(2, 3, 2), (4, 1, 1)], 50, 1, 0.01),
                          {"rho": 0.37, "delta_star": 1.5873, "n*": 3.1746, "M*": 58.73, "scaling": 0.901}),
    "Example 2, M = 100": (_model([(2, 3, 2), (4, 1, 1)], 100, 1, 0.01), {"scaling": 1.351}),
    "Example 3, one type": (_model([(100, 200, 50)], 100_000, 0.015, 3e-7),
                            {"rho": 0.603, "delta_star": 0.03778, "n*": 1.889, "M*": 75945}),
    "Example 3, two types": (_model([(100, 100, 30), (200, 400, 5)], 100_000, 0.015, 3e-7),
                             {"rho": 0.377, "delta_star": 0.02408, "n*": 0.722, "M*": 30250, "scaling": 1.769,
                              "nested n_1": 0.843}),
}
"""Model and the values the references chapter states, by example."""


def _digits(stated: float) -> int:
    text = f"{stated:.10g}"
    return len(text.split(".")[1]) if "." in text else 0


def _computed(model: ContinuousBatching) -> dict[str, float]:
    fb = theorems["fluid-benchmark"].evaluate(model, prefill_stage=True)
    wt = theorems["wait-thresholds"].evaluate(model, prefill_stage=True)
    out = {"rho": float(fb["rho"]), "delta_star": float(fb["delta_star"]), "n*": float(wt["thresholds"][0]),
           "M*": float(fb["memory_need"]), "scaling": float(fb["capacity_bound"] / fb["load"])}
    if model.K == 2:
        from ..theory.fluid_wait import segments

        out["nested n_1"] = float(segments(model, prefill_stage=True).thresholds[0])
    return out


@dataclass
class Study:
    """Rows (fluid values against the stated ones; simulated latencies) and settings."""

    rows: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_markdown(self) -> str:
        from ..report.tables import to_markdown

        return to_markdown(self.rows, COLUMNS)

    def to_latex(self) -> str:
        """The rows as one booktabs table, the interval as ``[low, high]`` (the example and
        quantity repeated in every part if it is split to fit)."""
        from ..report.tables import latex_number, to_latex

        def interval(r: dict[str, Any]) -> str:
            return "" if r["ci_low"] == "" else f"[{latex_number(r['ci_low'], 3)}, {latex_number(r['ci_high'], 3)}]"

        level = self.settings.get("level", 0.95)
        rows = [{**r, "ci": interval(r), "verdict": "not stated" if r["verdict"] == "no stated value" else r["verdict"]}
                for r in self.rows]
        return to_latex(rows, ("example", "quantity", "ours", "ci", "stated", "verdict"),
                        caption=f"[ALSW25] fluid examples (exact) and WAIT against greedy ({level:.0%} CI over "
                                "replications)", headers={"ci": f"{level:.0%} CI"}, size="small", longtable=True,
                        widths={"example": "2.4cm", "quantity": "1.8cm"}, tabcolsep=2.5, digits=5,
                        repeat=("example", "quantity"))

    def write(self, folder: Any) -> Any:
        """``alsw25.tex``, ``alsw25.md``, ``alsw25.csv`` and ``provenance.json``."""
        import json
        from pathlib import Path

        from ..atomic import atomic_folder, write_atomic
        from ..report.tables import to_csv

        with atomic_folder(folder, owned=FILES) as out:  # the whole folder in one step
            write_atomic(out / "alsw25.tex", self.to_latex())
            write_atomic(out / "alsw25.md", self.to_markdown())
            to_csv(self.rows, out / "alsw25.csv", columns=COLUMNS)
            write_atomic(out / "provenance.json", json.dumps(self.settings, indent=2, default=str) + "\n")
        return Path(folder)


def run(quick: bool = False, seed: int = 0, level: float = 0.95,
        progress: Callable[[str], Any] | None = None) -> Study:
    """The fluid rows (exact, instant) and WAIT against greedy on Example 3 (``quick``: 3
    replications of 3000 iterations; else 8 of 20,000)."""
    started = time.monotonic()
    say = progress or (lambda line: None)
    rows: list[dict[str, Any]] = []
    for name, (model, stated) in EXAMPLES.items():
        ours = _computed(model)
        for quantity, value in stated.items():
            mine = ours[quantity]
            agree = round(mine, _digits(value)) == round(value, _digits(value))
            rows.append({"example": name, "quantity": quantity, "ours": mine, "ci_low": "", "ci_high": "",
                         "stated": value, "verdict": "agree" if agree else "disagree"})
    from ..scheduling import fluid_wait
    from ..sim import simulate

    model = EXAMPLES["Example 3, two types"][0]
    reps, n = (3, 3000) if quick else (8, 20_000)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(reps)]
    from ..compare import environment_of, policy_parameters

    parameters, environment = {}, {}
    for label, m in (("greedy", model), ("WAIT", model.with_policy(fluid_wait(model)))):
        parameters[label] = policy_parameters(m)
        runs = [simulate(m, n, seed=s) for s in seeds]
        environment = environment or environment_of(runs[0], level)
        summaries = [r.summary(warmup=n // 5) for r in runs]
        for key in ("mean_latency", "ttft_p50", "throughput_per_second"):
            iv = replications_ci([s[key] for s in summaries], level)
            rows.append({"example": f"Example 3, two types, {label}", "quantity": key, "ours": iv.estimate,
                         "ci_low": iv.low, "ci_high": iv.high, "stated": "", "verdict": "no stated value"})
        say(f"Example 3 {label}: mean latency {rows[-3]['ours']:.4g} s ({time.monotonic() - started:.0f} s)")
    return Study(rows, {"study": "alsw25", "quick": quick, "replications": reps, "iterations": n, "seed": seed,
                        "level": level, "policy_parameters": parameters, **environment,
                        "seconds": time.monotonic() - started})
