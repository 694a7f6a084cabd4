"""The PGF/kernel-root route of the stationary queue against an independent Markov chain.

The reference (tests/markov_reference.py) builds the chain of the number in system after
admission directly from the model chapter's slot order and solves it; it never sees the kernel, its
roots or the functional equation. Agreement is required to 8 significant digits (measured:
13 or more) on the grid B in {1, 2, 4, 16, 64}, loads 0.3 to 0.98, Poisson and Bernoulli
arrivals; Bernoulli arrivals need lambda = load * B * q <= 1, so q = min(0.3, 1/B) there.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from markov_reference import stationary_chain, waiting_chain

import queueing_llm as ql
from queueing_llm.theory import queue_stationary as qs
from queueing_llm.theory import queue_waiting as qw

LOADS = (0.3, 0.7, 0.9, 0.98)
DIGITS = 1e-8  # 8 significant digits


def model(lam: float, q: float, B: int, kind: str, waiting_cap: float = math.inf) -> ql.ContinuousBatching:
    arr = ql.Poisson(lam) if kind == "poisson" else ql.Bernoulli(lam)
    dec = ql.Geometric(q) if q < 1 else 1
    return ql.ContinuousBatching([ql.RequestType(prompt=1, decode=dec, arrivals=arr)], batch_cap=B,
                                 policy="fcfs_cap", waiting_cap=waiting_cap)


def q_for(B: int, kind: str) -> float:
    if kind == "poisson":
        return 0.3 if B <= 16 else 0.1
    return min(0.3, 1.0 / B)


def close(a: float, b: float, rel: float = DIGITS, abs_: float = 0.0) -> bool:
    return abs(a - b) <= max(rel * abs(b), abs_)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["poisson", "bernoulli"])
@pytest.mark.parametrize("B", [1, 2, 4, 16, 64])
def test_pgf_route_matches_markov_chain(B: int, kind: str) -> None:
    q = q_for(B, kind)
    for load in LOADS:
        lam = load * B * q
        m = model(lam, q, B, kind)
        ref = stationary_chain(B, q, qs.arrival_pmf(m))
        assert ref["tail"] < 1e-14
        got = qs.stationary(m)
        assert got.stable is True
        for key in ("mean_in_system", "mean_batch", "mean_sojourn"):
            assert close(float(getattr(got, key)), ref[key]), (B, kind, load, key, getattr(got, key), ref[key])
        # P(empty) can be 1e-44: the PGF route is accurate in absolute terms (~1e-16)
        assert close(got.p_empty, ref["p_empty"], abs_=1e-15), (B, kind, load, got.p_empty, ref["p_empty"])
        # the whole boundary law, not only its moments
        assert np.allclose(got.boundary, ref["pi"][:B], rtol=1e-8, atol=1e-15)


def test_reference_solvers_agree() -> None:
    """The chain's two solvers (banded GTH and SciPy sparse LU) agree: the reference itself is sound."""
    B, q, lam = 4, 0.3, 0.9 * 4 * 0.3
    ref = stationary_chain(B, q, qs.arrival_pmf(model(lam, q, B, "poisson")), lu=True)
    assert np.allclose(ref["pi"], ref["pi_lu"], rtol=0, atol=1e-12)
    n = np.arange(ref["size"])
    assert close(float(n @ ref["pi_lu"]), ref["mean_in_system"], rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("B", [2, 16, 64])
def test_bailey_closed_form_matches_general_route_and_chain(B: int) -> None:
    for load in (0.3, 0.9, 0.98):
        lam = load * B
        m = model(lam, 1.0, B, "poisson")
        roots = qs.kernel_roots(m)
        closed = qs.bailey(m, roots)
        general = qs.stationary(m)
        assert close(closed["mean_in_system"], general.mean_in_system, rel=1e-10)
        assert close(closed["p_empty"], general.p_empty, rel=1e-8, abs_=1e-15)
        ref = stationary_chain(B, 1.0, qs.arrival_pmf(m))
        assert close(closed["mean_in_system"], ref["mean_in_system"])


def test_bailey_boundary_law_is_the_ladder_law() -> None:
    """For q = 1 the numerator is sum p_n (z^B - z^n), so p_n / P(Y < B) = g_n (ladder law)."""
    m = model(5.0, 1.0, 8, "poisson")
    roots = qs.kernel_roots(m)
    g = qs.ladder_probabilities(roots)
    p = qs.stationary(m).boundary
    assert np.allclose(p / p.sum(), g, rtol=1e-9, atol=1e-15)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["poisson", "bernoulli"])
def test_b1_closed_form_matches_general_route_and_chain(kind: str) -> None:
    lam_s, q_s = sp.symbols("lambda q", positive=True)
    arr = ql.Poisson(lam_s) if kind == "poisson" else ql.Bernoulli(lam_s)
    sym = ql.ContinuousBatching([ql.RequestType(prompt=1, decode=ql.Geometric(q_s), arrivals=arr)], batch_cap=1,
                                policy="fcfs_cap")
    closed = qs.stationary_b1(sym)
    for q in (0.3, 0.8):
        for load in LOADS:
            lam = load * q
            m = model(lam, q, 1, kind)
            num = {k: float(v.subs({lam_s: sp.Float(lam, 30), q_s: sp.Float(q, 30)})) for k, v in closed.items()
                   if k != "pgf"}
            general = qs.stationary(m)
            ref = stationary_chain(1, q, qs.arrival_pmf(m))
            for key in ("mean_in_system", "p_empty", "mean_batch", "mean_sojourn"):
                assert close(num[key], float(getattr(general, key)), rel=1e-12), key
                assert close(num[key], ref[key]), key


@pytest.mark.parametrize("B,K,kind", [(1, 0, "bernoulli"), (1, 3, "poisson"), (4, 5, "poisson"), (4, 5, "bernoulli"),
                                      (16, 10, "poisson")])
def test_waiting_cap_chain_matches_reference(B: int, K: int, kind: str) -> None:
    q = 0.3 if kind == "poisson" else min(0.3, 1.0 / B)
    for load in (0.5, 0.98, 1.5):
        lam = min(load * B * q, 0.95) if kind == "bernoulli" else load * B * q
        m = model(lam, q, B, kind, waiting_cap=K)
        got = qw.waiting_cap_chain(m)
        ref = waiting_chain(B, K, q, qs.arrival_pmf(m))
        assert close(got.rejection_probability, ref["rejection_probability"], rel=1e-10, abs_=1e-15)
        assert close(got.mean_in_system, ref["mean_in_system"], rel=1e-10)
        assert np.allclose(got.distribution, ref["pi"], rtol=1e-9, atol=1e-15)


def test_waiting_cap_exact_rational_matches_float_chain() -> None:
    m = ql.ContinuousBatching(
        [ql.RequestType(prompt=1, decode=ql.Geometric(sp.Rational(1, 2)), arrivals=ql.Bernoulli(sp.Rational(3, 4)))],
        batch_cap=2, waiting_cap=3, policy="fcfs_cap")
    exact = qw.waiting_cap_chain(m, exact=True)
    assert isinstance(exact.rejection_probability, sp.Rational)
    ref = waiting_chain(2, 3, 0.5, np.array([0.25, 0.75]))
    assert close(float(exact.rejection_probability), ref["rejection_probability"], rel=1e-13)


@pytest.mark.slow
def test_waiting_cap_large_k_recovers_the_uncapped_queue_and_the_overload_rate() -> None:
    stable = model(0.9, 0.3, 4, "poisson", waiting_cap=400)
    res = qw.waiting_cap_chain(stable)
    assert res.rejection_probability < 1e-12
    assert close(res.mean_in_system, qs.stationary(model(0.9, 0.3, 4, "poisson")).mean_in_system, rel=1e-9)
    over = model(2.0, 0.3, 4, "poisson", waiting_cap=400)
    rate = qw.waiting_cap_chain(over).rejection_rate
    assert close(rate, float(qw.overload_rejection_rate(over)), rel=1e-9)  # lambda - B q = 0.8


def test_waiting_cap_with_an_arrival_every_iteration_balances_throughput() -> None:
    """Bernoulli(1) arrivals make the low states transient; the chain is still solved, and the
    accepted rate equals the completion rate q E[min(Y, B)] (an identity the solver does not use)."""
    m = model(1.0, 0.5, 1, "bernoulli", waiting_cap=2)
    res = qw.waiting_cap_chain(m)
    batch = float(np.minimum(np.arange(res.distribution.size), 1) @ res.distribution)
    assert 0 < res.rejection_probability < 1
    assert close(1.0 - res.rejection_rate, 0.5 * batch, rel=1e-12)
