"""Measure the power of the checks of families B and C at the report's default run sizes.

For each theorem and compared quantity: build the runs the theorem declares (their default
sizes: open runs 20,000 iterations, saturated runs 5,000, relaxed runs 1,500; seed 1) and
find by bisection the smallest relative error of the value ``evaluate`` returns that
``verify`` detects, below and above (:func:`queueing_llm.testing.detection_threshold`).
Prints the Markdown table of ``docs/verdicts.md``::

    python docs/measure_power.py
"""

from __future__ import annotations

import queueing_llm as ql
from queueing_llm.runs import saturated_run
from queueing_llm.testing import detection_threshold
from queueing_llm.verify import declared_runs


def cb(decode, arrivals=None, batch_cap=4, prompt=3, **kw):
    return ql.ContinuousBatching([ql.RequestType(prompt=prompt, decode=decode, arrivals=arrivals)],
                                 batch_cap=batch_cap, policy="fcfs_cap", **kw)


STABLE = cb(ql.Geometric(0.3), ql.Poisson(0.9))
OVER = cb(ql.Geometric(0.3), ql.Poisson(1.5))
CAPPED = cb(ql.Geometric(0.3), ql.Poisson(1.1), waiting_cap=5)
SATURATED = cb(ql.FinitePMF({2: 0.5, 4: 0.5}), batch_cap=8)
LITTLE = ql.ContinuousBatching(types=[ql.RequestType(ql.FinitePMF({2: 0.5, 6: 0.5}), ql.Geometric(0.25), 1.5)])
WALL = ql.ContinuousBatching(
    types=[ql.RequestType(prompt=2, decode=3, arrivals=ql.PoissonProcess(2))],
    iteration_time=ql.LinearIterationTime(1, 0.01),
)


def _false_lower(p, f):
    return {**p, "lower": p["mean_in_system"] * f}


def _false_upper(p, f):
    return {**p, "upper": p["mean_in_system"] * f}


CASES = [
    # (theorem, quantity shown, model, model label, perturbed quantity, check options, sides)
    ("stability", "throughput", STABLE, "Geo/Geo/4, load 0.75", "throughput", {}, ("down", "up")),
    ("stability", "capacity", SATURATED, "saturated, l1 in {2, 4}, B 8", "capacity", {}, ("down", "up")),
    ("overload-drift", "drift", OVER, "Geo/Geo/4, lambda 1.5", "drift", {}, ("down", "up")),
    ("renewal-transient", "limit", SATURATED, "saturated, l1 in {2, 4}, B 8", "limit", {}, ("down", "up")),
    ("equilibrium-stage", "mean_kv", SATURATED, "saturated, l1 in {2, 4}, B 8", "mean_kv", {"quantity": "mean_kv"},
     ("down", "up")),
    ("equilibrium-stage", "mean_stage", SATURATED, "saturated, l1 in {2, 4}, B 8", "mean_stage",
     {"quantity": "mean_stage"}, ("down", "up")),
    ("stationary", "mean_in_system", STABLE, "Geo/Geo/4, load 0.75", "mean_in_system", {}, ("down", "up")),
    ("stationary", "p_empty", STABLE, "Geo/Geo/4, load 0.75", "p_empty", {"quantity": "p_empty"}, ("down", "up")),
    ("stationary", "mean_batch", STABLE, "Geo/Geo/4, load 0.75", "mean_batch", {"quantity": "mean_batch"},
     ("down", "up")),
    ("stationary", "mean_sojourn", STABLE, "Geo/Geo/4, load 0.75", "mean_sojourn", {"quantity": "mean_sojourn"},
     ("down", "up")),
    ("lyapunov-bounds", "lower (set above E[Y])", STABLE, "Geo/Geo/4, load 0.75", _false_lower, {}, ("up",)),
    ("lyapunov-bounds", "upper (set below E[Y])", STABLE, "Geo/Geo/4, load 0.75", _false_upper, {}, ("down",)),
    ("waiting-cap", "rejection_probability", CAPPED, "Geo/Geo/4, K 5, lambda 1.1", "rejection_probability", {},
     ("down", "up")),
    ("memory-little", "mean_kv", LITTLE, "no memory limit, lambda 1.5", "mean_kv", {}, ("down", "up")),
    ("fluid-benchmark", "delta_star", WALL, "wall clock, d0 1, d1 0.01", "delta_star", {}, ("down", "up")),
    ("fluid-benchmark", "memory_need", WALL, "wall clock, d0 1, d1 0.01", "memory_need",
     {"quantity": "memory_need"}, ("down", "up")),
    ("nsz-threshold", "mu", ql.default_model(), "default (M 2000, l0 10, l1 40)", "mu", {}, ("down", "up")),
]


def _pct(e: float, side: str, lyapunov: bool) -> str:
    if e == float("inf"):
        return "not detected"
    if e < 1e-6:  # exact checks: any change beyond the float tolerance
        return "any (exact)"
    value = 100 * e
    if lyapunov:  # a false bound: how far beyond the true mean it must lie
        return f"{value:.2g} % {'above' if side == 'up' else 'below'} E[Y]"
    return f"{'-' if side == 'down' else '+'}{value:.2g} %"


def main() -> None:
    rows = ["| theorem | quantity | test | model | runs (default sizes) | smallest error detected |",
            "|---|---|---|---|---|---|"]
    for name, shown, model, label, quantity, options, sides in CASES:
        thm = ql.theorems[name]
        if quantity == "capacity":  # a saturated-only model: the capacity on a saturated run of default size
            spec = saturated_run()
            runs, run_label, size = spec.make(model, 1), spec.label, spec.size()
        else:
            runs, run_label = declared_runs(thm, model, seed=1)
            size = thm.runs[0].size()
        base = ql.verify(thm, model, runs, **options)
        lyapunov = callable(quantity)
        found = []
        for side in sides:
            largest = 0.25 if lyapunov else 1.0 if side == "up" else 0.99  # a false bound stays inside [L, U]
            # lyapunov: the factor is relative to E[Y], so e is how false the bound is
            e = detection_threshold(thm, model, runs, quantity, side, largest=largest, **options)
            found.append(_pct(e, side, lyapunov))
        runs_text = f"{run_label}: {size} iterations"
        rows.append(f"| {name} | {shown} | {base.test} ({base.status}) | {label} | {runs_text} | "
                    f"{' / '.join(found)} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
