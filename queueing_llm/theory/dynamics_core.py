r"""Family A core: request components, the eviction-free fixed point and the linearised map.

Everything here is derived in SymPy from the primitives of a
:class:`~queueing_llm.model.ContinuousBatching` model (the model chapter, sections 1-2):

* stage memories :math:`w_{k,j} = l_{0,k} + 1 + j` (:meth:`RequestType.stage_memory`);
* admission proportions :math:`p_k` (:attr:`ContinuousBatching.proportions`);
* the saturated greedy admission rule: after execution the free memory
  :math:`M - \sum_{k,j} w_{k,j} x_{k,j}` is filled with new stage-0 requests, each costing
  :math:`w_{k,0}`, in proportions :math:`p_k`.

A random decode length with finite support is a mixture: a type-:math:`k` request with
:math:`P(l_1 = v) = \pi_v` is split into *components* :math:`(k, v)` with proportion
:math:`p_k \pi_v`. A random prompt enters through its mean (stage memory is linear in
:math:`l_0`, so the relaxed map of the mean-field is exact in the mean).

Source: [ADLS26] R. Ao, J. Dong, G. Luo, D. Simchi-Levi, *Service-Induced Congestion in
Memory-Constrained LLM Serving*, arXiv:2606.15555 (2026): the eviction-free fixed point and
the linearisation of the saturated map (the model chapter, section 5, A.1-A.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import sympy as sp

from ..errors import ModelError, ParameterError, SymbolicValueError
from ..laws import Deterministic, FinitePMF
from ..model import ContinuousBatching, RequestType
from ..numbers import is_infinite, is_symbolic, to_sympy
from . import roots as _roots
from .roots import StabilityResult

__all__ = [
    "LAMBDA",
    "Component",
    "components",
    "require_finite_memory",
    "decode_horizon",
    "stage_balance",
    "fixed_point",
    "fixed_point_state",
    "admission_map",
    "survival_coefficients",
    "survival_polynomial",
    "companion_matrix",
    "characteristic_polynomial",
    "survival_roots",
    "spectral_radius",
    "schur_cohn_stable",
    "stability",
    "is_stable",
    "enestrom_kakeya_bounds",
    "l1_two_solution",
    "first_eviction_l1_two",
    "to_fraction",
    "rate_limited_throughput",
    "components_or_none",
]

LAMBDA = sp.Symbol("lambda")
"""The variable :math:`\\lambda` of the survival polynomial."""

_J = sp.Symbol("j", integer=True, nonnegative=True)
_N = sp.Symbol("n", integer=True, positive=True)


@lru_cache(maxsize=512)
def _stage_sum(stage: sp.Expr) -> sp.Expr:
    r""":math:`\sum_{j=0}^{n-1} w_j` summed by SymPy once per stage-memory expression."""
    return sp.summation(stage, (_J, 0, _N - 1))


@dataclass(frozen=True)
class Component:
    r"""Requests of one type with one decode length: the unit of the relaxed map.

    Attributes
    ----------
    type_index : int
        Index :math:`k` of the request type in ``model.types``.
    request_type : RequestType
        The type (its :meth:`~RequestType.stage_memory` gives :math:`w_j`).
    p : sympy.Expr
        Admission proportion :math:`p_k P(l_1 = v)`.
    l1 : sympy.Expr
        The decode length :math:`v` (an integer or a symbol).
    stage : sympy.Expr or None
        :math:`w_j` as an expression in the stage symbol, ``request_type.stage_memory(j)``
        computed once per type by :func:`components` (a cache: the mean of a large empirical
        prompt law is not summed again at every stage); None: asked of the type each time.
    mean_prompt : sympy.Expr or None
        ``request_type.l0`` computed once per type by :func:`components` (same cache).
    """

    type_index: int
    request_type: RequestType
    p: sp.Expr
    l1: sp.Expr
    stage: sp.Expr | None = field(default=None, compare=False, repr=False)
    mean_prompt: sp.Expr | None = field(default=None, compare=False, repr=False)

    @property
    def l0(self) -> sp.Expr:
        """Mean prompt length :math:`E[l_0]` of the type."""
        return self.request_type.l0 if self.mean_prompt is None else self.mean_prompt

    def w(self, j: Any) -> sp.Expr:
        r"""Stage memory :math:`w_j = l_0 + 1 + j` (the model chapter, section 1)."""
        if self.stage is None:
            return self.request_type.stage_memory(j)
        return self.stage.xreplace({_J: to_sympy(j)})

    @property
    def lifetime_memory(self) -> sp.Expr:
        r""":math:`C = \sum_{j=0}^{l_1-1} w_j`, summed by SymPy."""
        return sp.factor(self.stage_sum())

    def stage_sum(self) -> sp.Expr:
        r""":math:`\sum_{j=0}^{l_1-1} w_j` (SymPy's sum over :math:`n` stages, at :math:`n = l_1`)."""
        stage = self.request_type.stage_memory(_J) if self.stage is None else self.stage
        return _stage_sum(stage).xreplace({_N: self.l1})


def require_finite_memory(model: ContinuousBatching) -> sp.Expr:
    """:math:`M` as SymPy; a :class:`ParameterError` if it is infinite (memory never binds)."""
    if not isinstance(model, ContinuousBatching):
        raise ParameterError(f"expected a ql.ContinuousBatching model, got {type(model).__name__}")
    if is_infinite(model.kv_capacity):
        raise ParameterError(
            "kv_capacity M is infinite: the memory-constrained dynamics need a finite M "
            "(give kv_capacity=<tokens>)"
        )
    return model.M


def components(model: ContinuousBatching) -> tuple[Component, ...]:
    r"""The components :math:`(k, v)` of the model: one per type and decode length.

    A deterministic decode (a number or a symbol) gives one component with proportion
    :math:`p_k`; a finite-support decode law gives one component per value :math:`v` with
    proportion :math:`p_k P(l_1 = v)`. Unbounded decode laws (geometric, Poisson) raise a
    :class:`ModelError`: the map has no finite horizon.
    """
    out: list[Component] = []
    for k, (t, p) in enumerate(zip(model.types, model.proportions, strict=True)):
        law = t.decode
        if isinstance(law, Deterministic):
            out.append(Component(k, t, sp.sympify(p), sp.sympify(law.value), t.stage_memory(_J), t.l0))
        elif isinstance(law, FinitePMF):
            stage, l0 = t.stage_memory(_J), t.l0
            for v, prob in law.probabilities:
                prob = to_sympy(prob)
                if prob != 0:
                    out.append(Component(k, t, to_sympy(p) * prob, sp.Integer(v), stage, l0))
        else:
            raise ModelError(
                f"type {k}: decode law {law!r} has unbounded support; the saturated map needs "
                "deterministic or finite-support decode lengths (use ql.FinitePMF or ql.Deterministic)"
            )
    return tuple(out)


def decode_horizon(model: ContinuousBatching) -> int:
    """:math:`L = \\max l_1` over the components (a number; symbolic decode lengths raise)."""
    comps = components(model)
    if any(is_symbolic(c.l1) for c in comps):
        raise SymbolicValueError(
            "the decode lengths are symbolic; this result needs numeric decode lengths l1 "
            f"(got {[c.l1 for c in comps]})"
        )
    return int(max(int(c.l1) for c in comps))


def stage_balance(model: ContinuousBatching, a: sp.Symbol) -> sp.Expr:
    r"""Memory of the stationary eviction-free batch admitting :math:`a` requests per iteration.

    Stationarity of the relaxed map without eviction shifts every cohort one stage up
    unchanged, so every stage :math:`j < l_1` of component :math:`c` holds :math:`p_c a`, and

    .. math:: \mathcal M(a) = \sum_c p_c\, a \sum_{j=0}^{l_{1,c}-1} w_{c,j}
              = a \sum_k p_k E[C_k].

    Unbounded decode laws use the mean lifetime memory :math:`E[C_k]` of the type
    (:attr:`RequestType.lifetime_memory`), i.e. stage :math:`j` holds :math:`p_k a P(l_1 > j)`.
    Source: [ADLS26], eviction-free fixed point.
    """
    try:
        comps = components(model)
    except ModelError:
        return sp.Add(*[p * a * t.lifetime_memory for t, p in zip(model.types, model.proportions, strict=True)])
    return sp.Add(*[c.p * a * c.stage_sum() for c in comps])


def fixed_point(model: ContinuousBatching) -> sp.Expr:
    r"""Eviction-free fixed point :math:`x^*` (admissions = completions per iteration).

    Solves the stationarity equation of the relaxed saturated map, the memory balance
    :math:`\mathcal M(x) = M` of :func:`stage_balance`, for :math:`x`:

    .. math:: x^* = \frac{M}{\sum_k p_k C_k}, \qquad
              x^* = \frac{2M}{l_1 (2 l_0 + l_1 + 1)} \text{ (one type)}.

    Valid for symbolic and numeric parameters. Source: [ADLS26], eviction-free fixed point
    (the model chapter, A.1).
    """
    M = require_finite_memory(model)
    x = sp.Symbol("x")
    solutions = sp.solve(sp.Eq(stage_balance(model, x), M), x)
    if len(solutions) != 1:
        raise ModelError(f"the memory balance has no unique solution: {solutions}")  # pragma: no cover
    x_star = solutions[0]
    if not is_symbolic(x_star) or model.K == 1:
        return sp.factor(x_star)
    # present x* = M / sum_k p_k C_k with the denominator collected in the prompts
    return M / sp.collect(sp.expand(M / x_star), [t.l0 for t in model.types])


def fixed_point_state(model: ContinuousBatching) -> tuple[tuple[sp.Expr, ...], ...]:
    r"""Stage counts of the fixed point, per type and stage :math:`j < L`:
    :math:`x_{k,j} = \sum_{c \in k,\, l_{1,c} > j} p_c x^*` (numeric decode lengths)."""
    xs = fixed_point(model)
    L = decode_horizon(model)
    comps = components(model)
    rows = []
    for k in range(model.K):
        rows.append(tuple(sp.Add(*[c.p * xs for c in comps if c.type_index == k and c.l1 > j]) for j in range(L)))
    return tuple(rows)


def survival_coefficients(model: ContinuousBatching) -> tuple[sp.Expr, ...]:
    r"""Coefficients :math:`S_m = \sum_{c:\, l_{1,c} > m} p_c\, w_{c,m}`, :math:`m = 0..L-1`.

    :math:`S_m a` is the memory, after execution, of a cohort of :math:`a` admissions that
    has executed :math:`m` iterations (the survivors are the components with
    :math:`l_1 > m`); :math:`S_0` is the mean cost of one admission. Source: [ADLS26],
    linearisation (the model chapter, A.2).
    """
    L = decode_horizon(model)
    comps = components(model)
    fast = _survival_fractions(comps, L)
    if fast is not None:
        return tuple(sp.Rational(x.numerator, x.denominator) for x in fast)
    return tuple(sp.Add(*[c.p * c.w(m) for c in comps if c.l1 > m]) for m in range(L))


def _survival_fractions(comps: tuple[Component, ...], L: int) -> list[Fraction] | None:
    r""":math:`S_m` in exact fractions in :math:`O(L + \#\text{components})` operations, or None
    (symbolic parameters, or a stage memory not affine in the stage).

    The stage memory of each type, :math:`w_j = b_0 + b_1 j` (``stage_memory`` read as a
    polynomial in :math:`j`), gives :math:`S_m = \sum_{c:\, l_{1,c} > m} p_c b_{0,c}
    + m \sum_{c:\, l_{1,c} > m} p_c b_{1,c}`: two suffix sums over the decode lengths.
    """
    const = [Fraction(0)] * (L + 1)
    slope = [Fraction(0)] * (L + 1)
    affine: dict[sp.Expr, tuple[Fraction, Fraction] | None] = {}
    for c in comps:
        stage = c.request_type.stage_memory(_J) if c.stage is None else c.stage
        if stage not in affine:
            poly = sp.Poly(stage, _J) if stage.free_symbols <= {_J} else None
            if poly is None or poly.degree() > 1:
                affine[stage] = None
            else:
                b1, b0 = (poly.all_coeffs() if poly.degree() == 1 else [sp.Integer(0), *poly.all_coeffs()])
                affine[stage] = (_rational(b0), _rational(b1)) if b0.is_Rational and b1.is_Rational else None
        pair = affine[stage]
        if pair is None or is_symbolic(c.p) or not c.p.is_Rational:
            return None
        p = _rational(c.p)
        v = int(c.l1)
        const[v - 1] += p * pair[0]  # the component survives stages m = 0 .. v-1
        slope[v - 1] += p * pair[1]
    out = [Fraction(0)] * L
    a = b = Fraction(0)
    for m in range(L - 1, -1, -1):
        a += const[m]
        b += slope[m]
        out[m] = a + m * b
    return out


def _rational(x: sp.Expr) -> Fraction:
    return Fraction(int(x.p), int(x.q))


def admission_map(model: ContinuousBatching) -> tuple[tuple[sp.Symbol, ...], tuple[sp.Expr, ...]]:
    r"""The eviction-free saturated map on the admission history, from the admission rule.

    State :math:`(a_n, a_{n-1}, \dots, a_{n-L+1})` (the cohorts admitted in the last
    :math:`L` iterations). After execution the cohort admitted :math:`m` iterations ago
    holds :math:`S_m a_{n+1-m}` tokens, and greedy admission fills the rest:

    .. math:: a_{n+1} = \frac{M - \sum_{m=1}^{L-1} S_m a_{n+1-m}}{S_0}.

    Returns the state symbols and the image of the state. Source: [ADLS26] (the model chapter, A.2).
    """
    M = require_finite_memory(model)
    S = survival_coefficients(model)
    L = len(S)
    a = sp.symbols(f"a0:{L}")
    after_execution = sp.Add(*[S[m] * a[m - 1] for m in range(1, L)])
    admitted = (M - after_execution) / S[0]
    return a, (admitted, *a[: L - 1])


def companion_matrix(model: ContinuousBatching, form: str = "admission") -> sp.Matrix:
    r"""Jacobian of the eviction-free saturated map (a companion matrix).

    ``form="admission"``: the Jacobian of :func:`admission_map`, first row
    :math:`(-S_1/S_0, \dots, -S_{L-1}/S_0, 0)`; its characteristic polynomial is
    :math:`\lambda F(\lambda)/S_0`.

    ``form="memory"``: the same map written on the invariant set
    :math:`\sum_m S_m a_{n-m} = M` (memory full after admission) by adding
    :math:`S^T/S_0` to the first row (the gradient of the constraint, zero on the set). For
    one type its first row is :math:`(\alpha, \dots, \alpha, \beta)` with
    :math:`\alpha = -1/(l_0+1)`, :math:`\beta = (l_0+l_1)/(l_0+1)` (the model chapter, A.2) and its
    characteristic polynomial is :math:`(\lambda - 1) F(\lambda)/S_0`.

    Source: [ADLS26], linearisation around the fixed point.
    """
    a, image = admission_map(model)
    J = sp.Matrix(image).jacobian(sp.Matrix(a))
    if form == "admission":
        return J
    if form == "memory":
        S = survival_coefficients(model)
        J = J.copy()
        for m in range(len(S)):
            J[0, m] = sp.simplify(J[0, m] + S[m] / S[0])
        return J
    raise ParameterError(f"form must be 'admission' or 'memory', got {form!r}")


def characteristic_polynomial(model: ContinuousBatching, form: str = "admission", lam: sp.Symbol = LAMBDA) -> sp.Expr:
    r""":math:`\det(\lambda I - B)` of :func:`companion_matrix` (Berkowitz), as an expression in ``lam``."""
    return sp.factor(companion_matrix(model, form).charpoly(lam).as_expr())


def survival_polynomial(model: ContinuousBatching, lam: sp.Symbol = LAMBDA) -> sp.Expr:
    r"""The characteristic ("survival") polynomial of the linearised map (the model chapter, A.2):

    .. math:: F(\lambda) = \sum_{m=0}^{L-1} \sum_{k:\, l_{1,k} > m} p_k (l_{0,k} + 1 + m)\,
              \lambda^{L-1-m} = \sum_{m<L} S_m \lambda^{L-1-m}.

    For one type with a symbolic decode length the unevaluated
    :math:`\sum_{m=0}^{l_1-1} w_m \lambda^{l_1-1-m}` is returned (``.doit()`` sums it).
    Source: [ADLS26], survival polynomial.
    """
    comps = components(model)
    if len(comps) == 1 and is_symbolic(comps[0].l1):
        c = comps[0]
        m = sp.Symbol("m", integer=True, nonnegative=True)
        return sp.Sum(c.w(m) * lam ** (c.l1 - 1 - m), (m, 0, c.l1 - 1))
    S = survival_coefficients(model)
    L = len(S)
    return sp.Add(*[S[m] * lam ** (L - 1 - m) for m in range(L)])


def _numeric_coefficients(model: ContinuousBatching) -> list[sp.Rational]:
    S = survival_coefficients(model)
    if any(is_symbolic(s) for s in S):
        raise SymbolicValueError(
            f"the survival polynomial has symbolic coefficients {list(S)}; give numbers for roots and radii"
        )
    return [sp.nsimplify(s) if not isinstance(s, sp.Rational) else s for s in S]


def survival_roots(model: ContinuousBatching) -> np.ndarray:
    r"""Numerical roots of :math:`F` (complex array: companion eigenvalues, or the Aberth
    iteration for large degrees, Aberth-polished; :func:`.roots.approximate_roots`)."""
    coeffs = _roots.exact_coefficients(_numeric_coefficients(model))
    if len(coeffs) == 1:
        return np.zeros(0, dtype=complex)
    return _roots.approximate_roots(coeffs)


def spectral_radius(model: ContinuousBatching, budget: float | str | None = "default") -> float | sp.Expr:
    r"""Spectral radius :math:`\rho = \max |\lambda|` over the roots of :math:`F`.

    Numeric models: a float (0 when every decode length is 1: the map is constant), the
    largest modulus of the float roots; :func:`stability` gives its certified enclosure.
    ``nan`` if the roots are not found within ``budget`` seconds (None: no limit;
    ``"default"``: :data:`.roots.DEFAULT_BUDGET`).
    Symbolic models: the exact :math:`\max |\lambda|` when SymPy finds the roots in radicals
    (:math:`L \le 3`), else a :class:`SymbolicValueError`. The fixed point is
    asymptotically stable iff :math:`\rho < 1`. Source: [ADLS26] (the model chapter, A.2).
    """
    S = survival_coefficients(model)
    if not any(is_symbolic(s) for s in S):
        if len(S) == 1:
            return 0.0
        deadline = _roots.deadline_after(budget)
        try:
            return float(np.max(np.abs(_roots.approximate_roots(_roots.exact_coefficients(S), deadline=deadline))))
        except _roots.OutOfBudget:
            return math.nan
    if len(S) > 3:
        raise SymbolicValueError(
            f"spectral radius of a degree-{len(S) - 1} survival polynomial with symbolic coefficients: "
            "give numbers for l0, p_k"
        )
    if len(S) == 1:
        return sp.Integer(0)
    F = survival_polynomial(model)
    moduli = [sp.simplify(sp.Abs(r)) for r in sp.roots(sp.Poly(F, LAMBDA), multiple=True)]
    return moduli[0] if len(moduli) == 1 else sp.Max(*moduli)


def to_fraction(value: Any) -> Fraction:
    """An exact :class:`fractions.Fraction` of a rational SymPy number or Python number."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    v = sp.nsimplify(value) if isinstance(value, float) else sp.sympify(value)
    if not v.is_Rational:
        raise SymbolicValueError(f"expected a rational number, got {value!r}")
    return Fraction(int(v.p), int(v.q))


def schur_cohn_stable(coefficients: Any) -> bool:
    r"""Exact Schur-Cohn test: are all roots of the polynomial strictly inside the unit circle?

    ``coefficients`` (real rationals, highest power first). Recursion (Schur 1917, Cohn 1922;
    Lehmer's form): :math:`p` of degree :math:`n \ge 1` has all zeros in :math:`|z| < 1` iff
    :math:`|p(0)| < |a_n|` and :math:`T p(z) = (a_n p(z) - p(0) p^*(z))/z` has, where
    :math:`p^*(z) = z^n p(1/z)`. Exact in rational arithmetic (no rounding), each
    :math:`Tp` made monic so the rationals stay small (:func:`.roots.schur_cohn`); no time
    limit: :func:`stability` has one.
    """
    return _roots.schur_cohn([to_fraction(x) for x in coefficients])


def stability(model: ContinuousBatching, budget: float | str | None = "default",
              progress: Callable[[int, int], Any] | bool | None = None) -> StabilityResult:
    r"""Is the eviction-free fixed point asymptotically stable, with how it was decided.

    Numeric models: :func:`.roots.stability` on :math:`F` (exact Schur-Cohn for small
    degrees, certified floating-point inclusion disks for large ones, exact where the
    certificate fails), within ``budget`` seconds (None: no limit; ``"default"``:
    :data:`.roots.DEFAULT_BUDGET`, read at call time, so setting it changes the theorems'
    evaluations too): a
    :class:`~.roots.StabilityResult` whose ``stable`` is True, False, or None when undecided
    within the budget, with the spectral radius and its certified enclosure.
    ``progress(done, total)`` follows a long exact test (None: a progress bar on standard error
    once it has run 2 s; False: silent). Source: [ADLS26] (the model chapter, A.2).
    """
    return _roots.stability(_numeric_coefficients(model), budget=budget, progress=progress)


def is_stable(model: ContinuousBatching, budget: float | str | None = "default") -> bool | None:
    r"""Is the eviction-free fixed point asymptotically stable (all roots of :math:`F` in
    :math:`|\lambda| < 1`)? Numeric models: :func:`stability` (exact or certified, never a
    rounding guess); None if undecided within ``budget`` seconds. One symbolic type is never
    stable (:func:`enestrom_kakeya_bounds`). Source: [ADLS26]."""
    comps = components(model)
    if not any(is_symbolic(c.l1) for c in comps):
        S = survival_coefficients(model)
        if not any(is_symbolic(s) for s in S):
            return stability(model, budget).stable
    if len({(c.l0, c.l1) for c in comps}) == 1:  # homogeneous: Enestrom-Kakeya (l1 >= 2 assumed)
        return bool(comps[0].l1 == 1)
    raise SymbolicValueError("stability of a multi-type model with symbolic parameters needs numbers")


def enestrom_kakeya_bounds(model: ContinuousBatching) -> tuple[sp.Expr, sp.Expr]:
    r"""Eneström-Kakeya annulus of the roots of :math:`F`: :math:`r_- \le |\lambda| \le r_+`.

    For :math:`F(\lambda) = \sum_i a_i \lambda^i` with positive coefficients,
    :math:`r_- = \min_i a_i/a_{i+1}`, :math:`r_+ = \max_i a_i/a_{i+1}`. Here
    :math:`a_i = S_{L-1-i}`. For one type :math:`a_i/a_{i+1} = w_{m+1}/w_m = 1 + 1/w_m`
    decreases in :math:`m`, so

    .. math:: \frac{l_0 + l_1}{l_0 + l_1 - 1} \le |\lambda| \le \frac{l_0 + 2}{l_0 + 1}:

    every root lies outside the unit circle and the fixed point is unstable (the homogeneous
    case of [ADLS26]). Needs :math:`L \ge 2`.
    """
    comps = components(model)
    if len(comps) == 1 and is_symbolic(comps[0].l1):
        c = comps[0]
        return sp.simplify(c.w(c.l1 - 1) / c.w(c.l1 - 2)), sp.simplify(c.w(1) / c.w(0))
    S = survival_coefficients(model)
    if len(S) < 2:
        raise ParameterError("every decode length is 1: F is a constant with no roots")
    ratios = [sp.simplify(S[m + 1] / S[m]) for m in range(len(S) - 1)]
    if all(not is_symbolic(r) for r in ratios):
        return min(ratios), max(ratios)
    if len(comps) == 1:
        return ratios[-1], ratios[0]
    return sp.Min(*ratios), sp.Max(*ratios)


def l1_two_solution(model: ContinuousBatching, a0: Any = None) -> dict[str, sp.Expr]:
    r"""Explicit solution of the relaxed map for one type with :math:`l_1 = 2` (no eviction).

    The stage-1 requests after execution are the previous admissions, so the admission rule
    gives :math:`a_{n+1} = (M - w_1 a_n)/w_0`; :func:`sympy.rsolve` solves it:

    .. math:: a_n = x^* + (a_0 - x^*) q^n, \quad x^* = \frac{M}{2 l_0 + 3}, \quad
              q = -\frac{l_0 + 2}{l_0 + 1}.

    Returns ``{"recurrence", "a_n", "x_star", "factor", "n"}`` (``n`` the index symbol,
    ``a0`` a symbol if not given). Source: [ADLS26], worked example (the references chapter, section 1).
    """
    M = require_finite_memory(model)
    comps = components(model)
    if len(comps) != 1 or comps[0].l1 != 2:
        raise ParameterError("l1_two_solution needs one request type with decode length l1 = 2")
    c = comps[0]
    n = sp.Symbol("n", integer=True, nonnegative=True)
    a = sp.Function("a")
    a0 = sp.Symbol("a_0") if a0 is None else sp.sympify(a0)
    recurrence = sp.Eq(a(n + 1), (M - c.w(1) * a(n)) / c.w(0))
    solution = sp.rsolve(recurrence.lhs - recurrence.rhs, a(n), {a(0): a0})
    x_star = sp.factor(sp.solve(sp.Eq(sp.Symbol("x"), (M - c.w(1) * sp.Symbol("x")) / c.w(0)), sp.Symbol("x"))[0])
    factor = sp.simplify(sp.diff(recurrence.rhs, a(n)))
    return {"recurrence": recurrence, "a_n": sp.simplify(solution), "x_star": x_star, "factor": factor, "n": n}


def first_eviction_l1_two(model: ContinuousBatching, a0: Any) -> int | float:
    r"""Iteration of the first eviction of the relaxed :math:`l_1 = 2` map from admissions
    :math:`a_0` at iteration 0 (``math.inf`` if never).

    Iteration :math:`n+1` evicts iff :math:`w_1 a_n > M`, i.e. the deviation
    :math:`d_n = (a_0 - x^*) q^n` exceeds :math:`T = M/w_1 - x^* = M (l_0+1)/((l_0+2)(2l_0+3))`.
    With :math:`|q| > 1`: the smallest :math:`n \ge \lceil \log(T/|d_0|)/\log|q| \rceil`
    (strictly above) whose sign :math:`\operatorname{sign}(d_0)(-1)^n` is positive. The
    closed form is confirmed by exact comparisons. Source: [ADLS26] (the references chapter, section 1).
    """
    sol = l1_two_solution(model)
    M = require_finite_memory(model)
    a0 = sp.nsimplify(sp.sympify(a0))
    xs, q = sol["x_star"], sol["factor"]
    c = components(model)[0]
    if any(is_symbolic(v) for v in (xs, q, a0)):
        raise SymbolicValueError("first_eviction_l1_two needs numeric l0, M and a0")
    d0 = a0 - xs
    T = M / c.w(1) - xs
    if d0 == 0:
        return math.inf
    # closed form start (floats may be off by one near ties: start two below, then exact steps)
    n = max(0, int(math.floor(math.log(float(T / abs(d0))) / math.log(float(abs(q))))) - 2)
    while not (d0 * q**n > T):
        n += 1
    return n + 1


def rate_limited_throughput(model: ContinuousBatching, rate: Any = None) -> dict[str, Any]:
    r"""Rate-limited admission at :math:`x \le x^*` per iteration ([ADLS26] section 5.1).

    Admitting :math:`\min(Q_n, S_n/(l_0+1), x)` per iteration from an empty batch, stage
    :math:`j` is filled after :math:`j` iterations and then holds :math:`p_c x`; the memory
    after admission rises to the stationary :math:`\mathcal M(x) = x \sum_k p_k C_k`
    (:func:`stage_balance`), which is :math:`\le M` iff :math:`x \le x^*`. After execution
    at stationarity the memory is :math:`\mathcal M(x) - x S_0 \le M - x S_0`, so the
    :math:`x` admissions always fit: no eviction, throughput :math:`x` (:math:`x^*` by
    default, the largest eviction-free throughput).

    Returns ``{"rate", "x_star", "memory", "free_after_execution", "throughput"}``; raises a
    :class:`ParameterError` when a numeric rate exceeds :math:`x^*`.
    """
    M = require_finite_memory(model)
    xs = fixed_point(model)
    x = xs if rate is None else sp.nsimplify(sp.sympify(rate))
    if not is_symbolic(x - xs) and x > xs:
        raise ParameterError(
            f"rate = {x} exceeds the fixed point x* = {xs}: rate limiting above x* does not prevent evictions"
        )
    memory = sp.factor(stage_balance(model, x))
    if len(components_or_none(model)) > 0:
        S0 = sp.Add(*[c.p * c.w(0) for c in components(model)])
    else:  # pragma: no cover - unbounded decode laws: mean admission cost
        S0 = sp.Add(*[p * t.stage_memory(0) for t, p in zip(model.types, model.proportions, strict=True)])
    return {
        "rate": x,
        "x_star": xs,
        "memory": memory,
        "free_after_execution": sp.factor(M - (memory - x * S0)),
        "throughput": x,
    }


def components_or_none(model: ContinuousBatching) -> tuple[Component, ...]:
    """:func:`components`, or an empty tuple for unbounded decode laws."""
    try:
        return components(model)
    except ModelError:
        return ()
