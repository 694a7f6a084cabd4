"""The truncated-chain route of the stationary queue and its use as a fallback (issue 11 item 7,
issue 10 item 5).

The package's banded chain (queueing_llm/theory/queue_chain.py) is checked against the
independent dense reference of tests/markov_reference.py (built from the slot order by other
code); the stationary solver must never let an arithmetic error escape and must say which
route it took; P(empty) far below 1e-17 must be the chain's GTH value, not rounding noise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from markov_reference import slot_transition, stationary_chain
from scipy.stats import binom as binom_law
from scipy.stats import poisson

import queueing_llm as ql
from queueing_llm.theory import queue_chain as qc
from queueing_llm.theory import queue_stationary as qs


def cb(decode, arrivals, batch_cap: int) -> ql.ContinuousBatching:
    return ql.ContinuousBatching([ql.RequestType(prompt=2, decode=decode, arrivals=arrivals)],
                                 batch_cap=batch_cap, policy="fcfs_cap")


@pytest.mark.parametrize(("B", "q", "arrivals"), [
    (1, 0.5, np.array([0.6, 0.4])),
    (4, 0.3, poisson.pmf(np.arange(40), 1.08)),
    (8, 0.25, np.array([0.001, 0.999])),
    (16, 0.1, poisson.pmf(np.arange(60), 1.5)),
])
def test_banded_chain_matches_dense_reference(B, q, arrivals) -> None:
    got = qc.truncated_chain(B, q, arrivals)
    ref = stationary_chain(B, q, arrivals)
    n = int(0.8 * min(got.size, ref["size"]))  # below the truncation zones of both
    keep = ref["pi"][:n] > 1e-250
    rel = np.abs(got.pi[:n][keep] - ref["pi"][:n][keep]) / ref["pi"][:n][keep]
    assert rel.max() < 1e-9, rel.max()
    assert got.tail < 1e-14 and got.error_bound < 1e-13
    assert math.isclose(got.pi.sum(), 1.0, rel_tol=1e-12)


@pytest.mark.parametrize("arrivals", [ql.Bernoulli(0.999), ql.Bernoulli(0.99999)])
def test_stationary_falls_back_where_the_kernel_roots_fail(arrivals) -> None:
    """Issue 11: prompt 2, Geometric(0.25) decode, Bernoulli(0.999) arrivals, B = 8 raised
    KernelRootError; now the chain route answers, says so, and agrees with the reference."""
    m = cb(ql.Geometric(0.25), arrivals, 8)
    with pytest.raises(qs.KernelRootError):
        qs.kernel_roots(m)
    res = qs.stationary(m)
    assert res.route == "chain" and "chain route" in res.reason and "kernel roots failed" in res.reason
    ref = stationary_chain(8, 0.25, qs.arrival_pmf(m))
    assert math.isclose(res.mean_in_system, ref["mean_in_system"], rel_tol=1e-10)
    assert math.isclose(res.p_empty, ref["p_empty"], rel_tol=1e-10)
    assert math.isclose(res.mean_batch, float(arrivals.p) / 0.25, rel_tol=1e-12)
    assert np.allclose(res.boundary, ref["pi"][:8], rtol=1e-10, atol=0)


def test_kernel_root_error_is_a_package_error() -> None:
    assert issubclass(qs.KernelRootError, ql.ModelError) and issubclass(qs.KernelRootError, ArithmeticError)


@pytest.mark.slow
def test_binomial_arrivals_near_one_answer() -> None:
    """Binomial(5, 0.99) arrivals (P(A = 0) = 1e-10): whichever route, a finite answer that
    matches the reference chain."""
    for q, B, route in ((0.25, 32, "chain"), (0.5, 12, "pgf"), (0.9, 8, "pgf")):
        m = cb(ql.Geometric(q), ql.Binomial(5, 0.99), B)
        res = qs.stationary(m)
        ref = stationary_chain(B, q, qs.arrival_pmf(m))
        assert res.route == route, (q, B, res.reason)
        assert math.isclose(res.mean_in_system, ref["mean_in_system"], rel_tol=1e-8), (q, B)
        assert math.isclose(res.p_empty, ref["p_empty"], rel_tol=1e-8), (q, B, res.p_empty, ref["p_empty"])


def test_no_idle_iteration_chain_against_power_iteration() -> None:
    """P(A = 0) = 0: the states below min A are transient (probability 0); the chain route
    agrees with plain power iteration on a matrix built by the reference's slot transition."""
    a = np.array([0.0, 0.5, 0.5])
    m = cb(ql.Geometric(0.5), ql.FinitePMF({1: 0.5, 2: 0.5}), 8)
    res = qs.stationary(m)
    size = 200
    P = np.zeros((size, size))
    for n in range(size):
        low, dist, _ = slot_transition(n, 8, 0.5, a)
        for j, p in enumerate(dist):
            P[n, min(low + j, size - 1)] += p
    pi = np.full(size, 1.0 / size)
    for _ in range(3000):
        pi = pi @ P
    assert res.p_empty == 0.0
    assert math.isclose(res.mean_in_system, float(np.arange(size) @ pi), rel_tol=1e-9)


def test_p_empty_far_below_rounding_is_the_gth_value() -> None:
    """Issue 10 item 5: B = 64, load 0.98 has P(empty) ~ 1e-44; the PGF route alone returns
    rounding noise there. The result must match the componentwise-accurate GTH reference
    relatively, with a stated error bound."""
    B, q = 64, 0.1
    lam = 0.98 * B * q
    m = cb(ql.Geometric(q), ql.Poisson(lam), B)
    res = qs.stationary(m)
    ref = stationary_chain(B, q, qs.arrival_pmf(m))
    assert ref["p_empty"] < 1e-17
    assert res.route == "pgf" and "from the truncated chain" in res.reason
    assert math.isclose(res.p_empty, ref["p_empty"], rel_tol=1e-8), (res.p_empty, ref["p_empty"])
    assert 0 < res.p_empty_error < 1e-8 * res.p_empty


@pytest.mark.slow
def test_p_empty_beyond_the_chain_budget_is_an_upper_bound_not_noise() -> None:
    """B = 256 at load 0.999: the chain that would resolve P(empty) exceeds the budget; the value
    is then the GTH P(empty) of a chain with thinned arrivals, an upper bound, stated as such
    (error = value), never the PGF route's rounding noise (~1e-17 to 1e-24 there)."""
    q = 0.3
    m = cb(ql.Geometric(q), ql.Poisson(0.999 * 256 * q), 256)
    res = qs.stationary(m)
    assert 0 < res.p_empty == res.p_empty_error < 1e-30
    assert "upper bound" in res.reason


def test_p_empty_bound_route_brackets_the_exact_value(monkeypatch) -> None:
    """With the solve budget lowered so that load 0.98 is past it, the bound route must return a
    value between the exact P(empty) (dense GTH reference) and the exact P(empty) at a load that
    fits the budget (thinning can only raise P(empty); the thinned rate is the largest that fits)."""
    B, q = 64, 0.1
    m = cb(ql.Geometric(q), ql.Poisson(0.98 * B * q), B)
    fits = cb(ql.Geometric(q), ql.Poisson(0.9 * B * q), B)
    monkeypatch.setattr(qs, "RESOLVE_WORK", qc.planned_work(B, q, qs.arrival_pmf(fits), qs.RESOLVE_TAIL))
    assert qc.planned_work(B, q, qs.arrival_pmf(m), qs.RESOLVE_TAIL) > qs.RESOLVE_WORK
    res = qs.stationary(m)
    exact = stationary_chain(B, q, qs.arrival_pmf(m))["p_empty"]
    at_fit = qs.stationary(fits)
    assert "upper bound" in res.reason and res.p_empty == res.p_empty_error
    assert exact < res.p_empty <= at_fit.p_empty * (1 + 1e-9), (exact, res.p_empty, at_fit.p_empty)
    assert "from the truncated chain" in at_fit.reason  # the model inside the budget is solved exactly


def _random_band(rng: np.random.Generator, n: int, down: int, up: int, span: float) -> np.ndarray:
    """A random banded stochastic matrix in the chain's band layout (``W[i, j - i + down]``);
    every entry inside the band positive, drawn log-uniform over ``10**-span..1`` when ``span``."""
    W = np.zeros((n, down + up + 1))
    for i in range(n):
        lo, hi = max(0, i - down), min(n - 1, i + up)
        x = 10.0 ** rng.uniform(-span, 0, hi - lo + 1) if span else rng.uniform(0, 1, hi - lo + 1)
        W[i, lo - i + down: hi - i + down + 1] = x / x.sum()
    return W


@pytest.mark.parametrize(("n", "down", "up", "span"), [
    (300, 7, 3, 0), (500, 40, 12, 0), (1000, 256, 28, 0), (200, 5, 5, 100), (40, 17, 2, 100),
])
def test_compiled_gth_equals_numpy_gth(n, down, up, span) -> None:
    """Issue 10 item 5: the numba loop does the NumPy elimination's arithmetic (no subtraction),
    so both agree to a few ulps per entry, also where the entries span 1e-100..1 and the
    stationary probabilities fall to 1e-250 and below."""
    assert qc.gth_compiled()  # numba is a dependency: the compiled route is the one under test
    W = _random_band(np.random.default_rng(n + down), n, down, up, span)
    got = qc._banded_gth(W.copy(), down, up)
    ref = qc._banded_gth_numpy(W.copy(), down, up)
    keep = ref > 1e-280  # below that, subnormal numbers carry fewer digits
    assert keep.sum() > n // 2 and math.isclose(got.sum(), 1.0, rel_tol=1e-13)
    rel = np.abs(got[keep] - ref[keep]) / ref[keep]
    assert rel.max() < 1e-12, rel.max()
    assert np.all(got[~keep] < 1e-270)
    if span:
        assert ref[keep].min() < 1e-100  # the probabilities do span the range the test claims


@pytest.mark.parametrize(("B", "q", "arrivals", "low", "size"), [
    (256, 0.01, poisson.pmf(np.arange(29), 0.95 * 2.56), 0, 700),  # head, shared rows, top rows
    (8, 0.25, np.array([0.0, 0.001, 0.999]), 1, 300),  # states below min A transient
    (4, 0.9, np.array([0.0, 0.0, 0.5, 0.5]), 2, 6),  # no more states than the top rows: all lumped
    (4, 1.0, poisson.pmf(np.arange(20), 1.0), 0, 9),  # q = 1, fewer states than B + up
])
def test_windowed_compiled_gth_on_the_queue_chain(B, q, arrivals, low, size) -> None:
    """The compiled loop builds each row of the window from the parts (head, shared row, top
    rows); it must agree with the NumPy elimination of the assembled band, which equals the
    matrix written row by row."""
    head, mid, tail, down, up = qc._row_parts(B, q, arrivals, low, size)
    W, _, _ = qc._rows(B, q, arrivals, low, size)
    n = size - low
    assert np.allclose(W.sum(axis=1), 1.0, rtol=1e-13) and W.shape == (n, down + up + 1)
    got = qc._solve_parts(head, mid, tail, n, down, up)
    ref = qc._banded_gth_numpy(W, down, up)
    keep = ref > 1e-280
    assert keep.sum() > n // 2
    rel = np.abs(got[keep] - ref[keep]) / ref[keep]
    assert rel.max() < 1e-12, rel.max()


def test_compiled_gth_names_a_reducible_state() -> None:
    W = _random_band(np.random.default_rng(3), 50, 3, 2, 0)
    for i in range(20, 23):  # the states from 20 up cannot go below 20 (the band reaches 3 down)
        W[i, : 3 - (i - 20)] = 0.0
        W[i] /= W[i].sum()
    for compiled in (True, False):
        with pytest.raises(ql.ModelError, match="state 20 cannot reach the lower states"):
            qc._banded_gth(W.copy(), 3, 2, compiled=compiled)


@pytest.mark.slow
def test_p_empty_at_load_0999_b256_is_exact() -> None:
    """Issue 10 item 5: B = 256, Geometric(0.01), Poisson load 0.999 (P(empty) ~ 3e-113) was past
    the solve budget (an upper bound); with the compiled elimination it is solved exactly, with a
    stated relative error below 1e-9. Checked against the NumPy elimination of the chain
    truncated at tail 1e-8 (a different truncation, 2 s), and for monotonicity: below the
    exact value at load 0.99."""
    B, q = 256, 0.01
    m = cb(ql.Geometric(q), ql.Poisson(0.999 * B * q), B)
    a = qs.arrival_pmf(m)
    value, error, how = qs.resolve_p_empty(B, q, a, 0.0)
    assert "upper bound" not in how and "from the truncated chain" in how
    assert 0 < error < 1e-9 * value and 1e-120 < value < 1e-100
    aa, low, size = qc._plan(B, q, a, 1e-8)
    W, down, up = qc._rows(B, q, aa, low, size)
    ref = qc._banded_gth_numpy(W, down, up)[0]
    assert abs(value - ref) <= 1e-9 * ref, (value, ref)
    lighter = cb(ql.Geometric(q), ql.Poisson(0.99 * B * q), B)
    v99, _, how99 = qs.resolve_p_empty(B, q, qs.arrival_pmf(lighter), 0.0)
    assert "upper bound" not in how99 and value < v99 * 1e-1  # P(empty) falls with the load


def test_thinned_poisson_is_poisson_and_planned_work_grows_with_load() -> None:
    a = poisson.pmf(np.arange(120), 30.0)
    got = qc.thinned(a, 0.25)
    ref = poisson.pmf(np.arange(got.size), 7.5)
    assert np.allclose(got, ref, rtol=1e-9, atol=1e-300) and got[-1] >= 1e-20
    works = [qc.planned_work(64, 0.1, poisson.pmf(np.arange(80), r)) for r in (5.0, 6.0, 6.2, 6.3)]
    assert works == sorted(works) and works[0] < works[-1]
    with pytest.raises(ql.ModelError, match="theta"):
        qc.thinned(a, 1.5)


def test_chain_refuses_beyond_its_limits_with_the_size() -> None:
    a = poisson.pmf(np.arange(200), 0.999 * 76.8)
    with pytest.raises(ql.ModelError, match=r"needs \d+ states .* MiB"):
        qc.truncated_chain(256, 0.3, a, max_work=10**6)


def test_decay_rate_is_the_cramer_root() -> None:
    """eta = 1/s* with E[s*^(A - D)] = 1 for the full batch (checked by direct evaluation)."""
    B, q, lam = 4, 0.3, 1.0
    a = poisson.pmf(np.arange(60), lam)
    s = 1 / qc.decay_rate(B, q, a)
    d = binom_law.pmf(np.arange(B + 1), B, q)
    value = float(a @ s ** np.arange(a.size)) * float(d @ s ** (-np.arange(B + 1).astype(float)))
    assert s > 1 and math.isclose(value, 1.0, rel_tol=1e-9)


def test_waiting_cap_rejection_is_never_negative_rounding() -> None:
    """Issue 11: the float chain returned rejection probabilities of -1e-14 where rejections
    are rare (lambda minus the accepted mean cancels). Summed directly they are >= 0, and close
    to the exact rational solution."""
    from queueing_llm.theory import queue_waiting as qw

    for K, lam, B in ((60, 0.5, 8), (60, 1.5, 8), (20, 0.1, 4), (5, 1.0, 1)):
        m = ql.ContinuousBatching([ql.RequestType(prompt=1, decode=ql.Geometric(0.5), arrivals=ql.Poisson(lam))],
                                  batch_cap=B, policy="fcfs_cap", waiting_cap=K)
        r = qw.waiting_cap_chain(m)
        assert 0 <= r.rejection_probability <= 1 and r.rejection_rate >= 0, (K, lam, B, r.rejection_probability)


def test_waiting_cap_clip_reports_large_excursions() -> None:
    from queueing_llm.theory import queue_waiting as qw

    assert qw._clip(-1e-14, "x", 1.0) == 0.0 and qw._clip(1 + 1e-14, "x", 1.0) == 1.0
    with pytest.raises(ql.ModelError, match="outside \\[0, 1\\] by more than the rounding error"):
        qw._clip(-1e-6, "x", 1.0)
