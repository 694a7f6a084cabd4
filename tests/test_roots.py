"""Certified floating-point root location (queueing_llm.theory.roots) against exact answers.

Independent references: polynomials built from known rational roots (the truth is known),
closed-form radii (z^n - c), the original unnormalised Schur-Cohn recursion (copied below),
SymPy sums for the survival coefficients, and exhaustive exact scans for l0_min.
"""

from __future__ import annotations

import math
from fractions import Fraction as Fr

import numpy as np
import pytest
import sympy as sp
from hypothesis import event, given, settings
from hypothesis import strategies as st

import queueing_llm as ql
from queueing_llm.errors import ParameterError
from queueing_llm.theory import dynamics as dyn
from queueing_llm.theory import dynamics_limit as dl
from queueing_llm.theory import roots as R

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


def reference_schur_cohn(coefficients) -> bool:
    """The original recursion (no normalisation: sizes double each step; small degrees only)."""
    c = [Fr(x) for x in coefficients]
    while c and c[0] == 0:
        c.pop(0)
    while len(c) > 1:
        lead, const = c[0], c[-1]
        if abs(const) >= abs(lead):
            return False
        c = [lead * x - const * y for x, y in zip(c, reversed(c), strict=True)][:-1]
    return True


def poly_from_roots(real_roots, pairs, lead=Fr(1)):
    """Exact coefficients (highest first) of lead * prod (z - r) * prod (z^2 - 2 a z + a^2 + b^2)."""
    c = [Fr(lead)]
    factors = [[Fr(1), -Fr(r)] for r in real_roots]
    factors += [[Fr(1), -2 * Fr(a), Fr(a) ** 2 + Fr(b) ** 2] for a, b in pairs]
    for f in factors:
        out = [Fr(0)] * (len(c) + len(f) - 1)
        for i, x in enumerate(c):
            for j, y in enumerate(f):
                out[i + j] += x * y
        c = out
    return c


def in_some_disk(root: tuple[Fr, Fr], cert: R.RootCertificate) -> bool:
    """Exact test: the rational point lies in one of the certificate's disks."""
    re, im = root
    for z, r in zip(cert.centers, cert.radii, strict=True):
        if not math.isfinite(r):
            return True
        dx, dy = re - Fr(float(z.real)), im - Fr(float(z.imag))
        if dx * dx + dy * dy <= Fr(float(r)) ** 2:
            return True
    return False


rationals = st.fractions(min_value=Fr(-3, 2), max_value=Fr(3, 2), max_denominator=40)


@SETTINGS
@given(real_roots=st.lists(rationals, min_size=0, max_size=9),
       pairs=st.lists(st.tuples(rationals, st.fractions(min_value=Fr(1, 40), max_value=1, max_denominator=40)),
                      max_size=5),
       lead=st.sampled_from([Fr(1), Fr(-3, 7), Fr(250)]))
def test_certificate_contains_every_true_root_and_counts_them(real_roots, pairs, lead):
    c = poly_from_roots(real_roots, pairs, lead)
    if len(c) < 2:
        return
    truth = [(Fr(r), Fr(0)) for r in real_roots] + [(Fr(a), s * Fr(b)) for a, b in pairs for s in (1, -1)]
    moduli2 = [a * a + b * b for a, b in truth]
    cert = R.certify_roots(c)
    assert cert.degree == len(truth)
    for root in truth:
        assert in_some_disk(root, cert), (root, cert)
    rho = math.sqrt(max(moduli2))
    lo, hi = cert.radius_bounds
    assert lo <= rho * (1 + 1e-15) and rho * (1 - 1e-15) <= hi
    if any(m == 1 for m in moduli2):
        assert cert.inside is None  # a root on the circle: its disk meets the circle
        event("root on the circle")
    if cert.inside is not None:
        assert cert.inside == sum(m < 1 for m in moduli2)
        event("certified")
    else:
        event("not certified")
    result = R.stability(c, exact_degree=0, budget=None)
    assert result.stable == all(m < 1 for m in moduli2)


def test_clusters_are_counted_as_components():
    """A double root inside and a double root outside: disks of a cluster overlap, counts stay right."""
    c = poly_from_roots([Fr(1, 2), Fr(1, 2), Fr(3, 2), Fr(3, 2), Fr(-1, 5)], [])
    cert = R.certify_roots(c)
    assert cert.inside == 3
    lo, hi = cert.radius_bounds
    # a double root is located only to about sqrt(u) relative: the pair's disks are ~1e-4 wide
    assert lo <= 1.5 <= hi and hi - lo < 1e-3


@pytest.mark.parametrize("c, stable", [(Fr(1, 2), True), (Fr(2), False), (Fr(999, 1000), True)])
def test_closed_form_radius_at_large_degree(c, stable):
    """z^n - c: every root has modulus c^(1/n); degree 1500 goes through Aberth and the disks."""
    n = 1500
    coeffs = [Fr(1)] + [Fr(0)] * (n - 1) + [-c]
    result = R.stability(coeffs)
    assert result.method == "certified-float" and result.stable is stable
    lo, hi = result.radius_bounds
    rho = float(c) ** (1 / n)
    assert lo <= rho <= hi and hi - lo < 1e-8
    assert result.radius_error <= hi - lo


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.lists(st.fractions(min_value=-4, max_value=4, max_denominator=12), min_size=2, max_size=11))
def test_normalised_schur_cohn_equals_the_original_recursion(coeffs):
    if all(x == 0 for x in coeffs):
        return
    assert R.schur_cohn(coeffs) == reference_schur_cohn(coeffs) == dyn.schur_cohn_stable(coeffs)


def _type(prompt, decode, weight):
    return ql.RequestType(prompt=prompt, decode=decode), weight


decodes = st.one_of(
    st.integers(1, 16),
    st.dictionaries(st.integers(1, 24), st.integers(1, 9), min_size=1, max_size=5).map(
        lambda d: ql.FinitePMF({v: Fr(w, sum(d.values())) for v, w in d.items()})),
)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(types=st.lists(st.tuples(st.integers(0, 60), decodes, st.integers(1, 5)), min_size=1, max_size=3))
def test_float_route_agrees_with_exact_schur_cohn_on_random_models(types):
    """Random small models: the certified float answer equals the exact one whenever it is given."""
    total = sum(w for _, _, w in types)
    m = ql.ContinuousBatching(types=[ql.RequestType(prompt=p, decode=d) for p, d, _ in types],
                              kv_capacity=10**6, mix=[Fr(w, total) for _, _, w in types])
    S = dyn.survival_coefficients(m)
    exact = reference_schur_cohn(S) if len(S) <= 12 else R.schur_cohn(S)
    forced = R.stability(S, exact_degree=0, budget=None)
    event(forced.method)
    assert forced.stable == exact
    assert dyn.is_stable(m) == exact
    if forced.method == "certified-float":
        assert (forced.radius_bounds[1] < 1) == exact
    lo, hi = forced.radius_bounds
    assert lo <= dyn.spectral_radius(m) <= hi


@settings(max_examples=40, deadline=None, derandomize=True)
@given(types=st.lists(st.tuples(st.integers(0, 60), decodes, st.integers(1, 5)), min_size=1, max_size=3))
def test_fast_survival_coefficients_equal_the_sympy_sums(types):
    total = sum(w for _, _, w in types)
    m = ql.ContinuousBatching(types=[ql.RequestType(prompt=p, decode=d) for p, d, _ in types],
                              kv_capacity=10**6, mix=[Fr(w, total) for _, _, w in types])
    comps = dyn.components(m)
    L = dyn.decode_horizon(m)
    by_sympy = [sp.Add(*[c.p * c.request_type.stage_memory(j) for c in comps if c.l1 > j]) for j in range(L)]
    assert list(dyn.survival_coefficients(m)) == by_sympy


def test_limiting_radius_equals_roots_of_the_symbolic_limit():
    cases = [
        ql.ContinuousBatching(types=[ql.RequestType(prompt=0, decode=2), ql.RequestType(prompt=0, decode=7)],
                              kv_capacity=10**6),
        ql.ContinuousBatching(types=[ql.RequestType(prompt=3, decode=4), ql.RequestType(prompt=9, decode=11)],
                              kv_capacity=10**6, mix=(Fr(1, 3), Fr(2, 3))),
    ]
    for m in cases:
        A = sp.Poly(dyn.limiting_polynomial(m), dyn.LAMBDA).all_coeffs()
        expected = float(np.max(np.abs(np.roots([float(x) for x in A]))))
        assert dyn.limiting_radius(m) == pytest.approx(expected, rel=1e-12)
    for ratios in [(1, 2), (Fr(1, 3), Fr(5, 7)), (0.5, 3)]:
        A = sp.Poly(dyn.limiting_polynomial(cases[0], dyn.LAMBDA, ratios), dyn.LAMBDA).all_coeffs()
        assert dyn.limiting_radius(cases[0], ratios) == pytest.approx(
            float(np.max(np.abs(np.roots([float(x) for x in A])))), rel=1e-12)
    # unequal mean prompts of empirical laws: the default ratios are non-integer rationals
    mixed = ql.ContinuousBatching(types=[
        ql.RequestType(prompt=ql.FinitePMF({3: Fr(1, 3), 4: Fr(2, 3)}), decode=3),
        ql.RequestType(prompt=ql.FinitePMF({1: Fr(1, 2), 8: Fr(1, 2)}), decode=5)], kv_capacity=10**6)
    A = sp.Poly(dyn.limiting_polynomial(mixed), dyn.LAMBDA).all_coeffs()
    assert dyn.limiting_radius(mixed) == pytest.approx(float(np.max(np.abs(np.roots([float(x) for x in A])))),
                                                        rel=1e-12)


@pytest.mark.parametrize("decodes, expected", [((2, 7), 18), ((5, 14), None)])
def test_l0_min_equals_an_exhaustive_exact_scan(decodes, expected):
    """Degree 13 > EXACT_DEGREE for (5, 14): the warm-started certified scan, checked exactly."""
    m = ql.ContinuousBatching(types=[ql.RequestType(prompt=0, decode=v) for v in decodes], kv_capacity=10**6)
    lmin = dyn.l0_min(m)
    if expected is not None:
        assert lmin == expected
    verdicts = [reference_schur_cohn(dl._coefficients_at(m, x)) if len(decodes) and max(decodes) <= 8
                else R.schur_cohn(dl._coefficients_at(m, x)) for x in range(lmin + 1)]
    assert verdicts[-1] is True and not any(verdicts[:-1])


def test_budget_gives_undecided_as_a_value():
    on_circle = [1] + [0] * 39 + [1]  # z^40 + 1: roots on the circle, no certificate
    slow = R.stability(on_circle, budget=0)
    assert slow.stable is None and not slow.decided and slow.method == "undecided"
    assert "budget" in slow.reason
    full = R.stability(on_circle, budget=None)
    assert full.stable is False and full.method == "exact" and full.decided
    m = ql.ContinuousBatching(types=[ql.RequestType(prompt=0, decode=2), ql.RequestType(prompt=0, decode=7)],
                              kv_capacity=10**6)
    assert dyn.is_stable(m, budget=0) is None
    assert dyn.stability(m, budget=0).stable is None
    assert dl.stable_at(m, 18, budget=0) is None
    assert dyn.l0_min(m, budget=0) is None
    assert math.isnan(dyn.spectral_radius(ql.ContinuousBatching(
        types=[ql.RequestType(prompt=3, decode=400)], kv_capacity=10**6), budget=0))
    assert dyn.is_stable(m) is False and dyn.l0_min(m) == 18  # prompt 0 is below l0_min


def test_default_budget_is_read_at_call_time(monkeypatch):
    """Theorems evaluate with the default budget: changing DEFAULT_BUDGET reaches them."""
    m = ql.ContinuousBatching(types=[ql.RequestType(prompt=20, decode=2), ql.RequestType(prompt=20, decode=7)],
                              kv_capacity=10**6)
    assert ql.theorems["linear-map"].evaluate(m)["stable"] is True
    monkeypatch.setattr(R, "DEFAULT_BUDGET", 0.0)
    assert dyn.is_stable(m) is None and R.stability([1, 0, Fr(1, 2)]).stable is None
    assert ql.theorems["linear-map"].evaluate(m)["stable"] is None
    assert R.stability([1, 0, Fr(1, 2)], budget=None).stable is True


@pytest.mark.parametrize("budget", [-1, "1", True, math.nan])
def test_bad_budget_names_the_parameter(budget):
    with pytest.raises(ParameterError, match="budget"):
        R.stability([1, 0, Fr(1, 2)], budget=budget)


def test_bad_coefficients_are_refused():
    with pytest.raises(ParameterError, match="zero polynomial"):
        R.stability([0, 0])
    with pytest.raises(ParameterError, match="not a rational"):
        R.stability([1, sp.sqrt(2)])
    with pytest.raises(ParameterError, match="finite"):
        R.stability([1, math.inf])
    with pytest.raises(ParameterError, match="method"):
        R.approximate_roots([1, 2], method="qr")


def test_progress_is_reported():
    seen = []
    assert R.schur_cohn([1, 0, 0, 0, Fr(1, 3)], progress=lambda done, total: seen.append((done, total))) is True
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    m = ql.ContinuousBatching(types=[ql.RequestType(prompt=0, decode=2), ql.RequestType(prompt=0, decode=7)],
                              kv_capacity=10**6)
    steps = []
    assert dyn.l0_min(m, progress=lambda done, total: steps.append(done)) == 18
    assert steps == list(range(19))
    assert dyn.l0_min(m, progress=False) == 18
    calls = []
    on_circle = poly_from_roots([Fr(-1)] + [Fr(k, 20) for k in range(1, 14)], [])  # degree 14, root -1
    assert R.stability(on_circle, progress=lambda done, total: calls.append((done, total))).stable is False
    assert calls and all(total == 14 for _, total in calls) and [d for d, _ in calls] == list(range(1, len(calls) + 1))


def test_default_progress_bar_draws_on_a_long_exact_test(capsys, monkeypatch):
    """The default bar is silent for its first 2 s; with no delay it draws at once."""
    from queueing_llm.progress import ProgressBar

    monkeypatch.setitem(ProgressBar.__init__.__kwdefaults__, "delay", 0.0)
    on_circle = poly_from_roots([Fr(-1)] + [Fr(k, 20) for k in range(1, 14)], [])
    assert R.stability(on_circle, budget=None).stable is False
    assert "Schur-Cohn, degree 14" in capsys.readouterr().err
    assert R.stability(on_circle, budget=None, progress=False).stable is False
    assert capsys.readouterr().err == ""


def test_small_degrees_stay_exact_and_large_ones_are_certified():
    small = R.stability([1, 0, Fr(1, 2)])
    assert small.method == "exact" and small.stable is True
    assert small.radius == pytest.approx(math.sqrt(0.5), rel=1e-14)
    big = R.stability([Fr(1)] + [Fr(0)] * 30 + [Fr(1, 2)])
    assert big.method == "certified-float" and big.stable is True and "inclusion disks" in big.reason
