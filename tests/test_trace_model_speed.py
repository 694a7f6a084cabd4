"""The model of docs/traces.md (issue 12, item 1): its theorems and its report finish quickly.

The survival polynomial of this model has degree 31 with coefficients over 19366 (the
trace's request count); the former unnormalised exact Schur-Cohn test doubled the size of
its rationals at every step and never finished. Measured on a loaded 2-core machine:
``linear-map`` and ``gcd-criterion`` evaluate in 0.03 s and 0.03-0.6 s; the report takes
about 1 s in a fresh process (4-7 s with the earlier report that also built the relaxed
run); before: ``linear-map`` unfinished after 90 s, the report killed after 420 s. The
time limits below leave a wide margin for loaded CI machines; they fail if the
computation regresses to anything like the former behaviour (minutes).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import queueing_llm as ql
from queueing_llm.theory import dynamics as dyn
from queueing_llm.theory import roots as R


@pytest.fixture(scope="module")
def trace_model() -> ql.ContinuousBatching:
    """Exactly the model built in docs/traces.md ("Build a model")."""
    trace = ql.load_trace("azure-conv")
    tau, s = 0.03, 16
    rt = trace.request_type(iteration_seconds=tau, max_prompt=4096, max_decode=512, scale=s)
    return ql.ContinuousBatching(types=[rt], kv_capacity=4000)


def test_stability_of_the_trace_model_is_certified_and_exact_agrees(trace_model):
    result = dyn.stability(trace_model)
    assert result.degree == 31 and result.method == "certified-float" and result.stable is True
    lo, hi = result.radius_bounds
    assert lo <= result.radius <= hi < 1 and hi - lo < 1e-9
    assert R.schur_cohn(dyn.survival_coefficients(trace_model)) is True  # the normalised exact test agrees


@pytest.mark.parametrize("name", ["linear-map", "gcd-criterion"])
def test_dynamics_theorems_evaluate_quickly(trace_model, name):
    start = time.monotonic()
    values = ql.theorems[name].evaluate(trace_model)
    elapsed = time.monotonic() - start
    assert values["stable"] is True and 0.95 < values["spectral_radius"] < 0.96
    assert elapsed < 10, f"{name} took {elapsed:.1f} s"


@pytest.mark.slow
def test_report_on_the_trace_model_finishes_within_a_minute(trace_model):
    start = time.monotonic()
    result = ql.report.report(trace_model, iterations=3000)
    elapsed = time.monotonic() - start
    assert elapsed < 60, f"the report took {elapsed:.1f} s"
    rows = {(row["theorem"], row["key"]): row["exact"] for row in result.theorem_rows}
    assert rows[("linear-map", "stable")] == "True" and rows[("gcd-criterion", "l0_min")] == "7"
    assert float(rows[("linear-map", "spectral_radius")]) == pytest.approx(0.9585181676403135, rel=1e-12)


def test_relaxed_map_of_the_trace_model_converges_as_certified(trace_model):
    """Independent of the roots: the relaxed map started 5% below x* (no eviction) returns to
    the fixed point at about rho = 0.9585 per iteration, as the certified 'stable' says."""
    state = np.array(dyn.fixed_point_state(trace_model), dtype=float)
    xs, L = float(dyn.fixed_point(trace_model)), dyn.decode_horizon(trace_model)
    start = [[float(c.p) * xs * (1 - 0.05 * (j % 3) / 3) if j < int(c.l1) else 0.0 for j in range(L)]
             for c in dyn.components(trace_model)]  # one row per component (decode length)
    run = dyn.relaxed_trajectory(trace_model, 400, start, exact=False)
    assert run.evictions.sum() == 0
    deviation = np.max(np.abs(np.asarray(run.batch, dtype=float) - state[None]), axis=(1, 2))
    assert deviation[-1] < 1e-4 * deviation[0]
    rho = dyn.stability(trace_model).radius
    assert deviation[300] / deviation[100] < (rho * 1.01) ** 200
